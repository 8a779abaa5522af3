import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {UserError} from '../src/core/shared/errors.js'
import {parseDuration, parseTime} from '../src/core/shared/time.js'

const NOW = Date.UTC(2026, 10, 21, 12, 0, 0)

describe('parseTime', () => {
  it('reads ISO 8601, taking a missing zone as UTC', () => {
    assert.equal(parseTime('2026-11-20T10:00:00.000Z', 't', NOW), Date.UTC(2026, 10, 20, 10))
    assert.equal(parseTime('2026-11-20T10:00', 't', NOW), Date.UTC(2026, 10, 20, 10))
    assert.equal(parseTime('2026-11-20', 't', NOW), Date.UTC(2026, 10, 20))
    assert.equal(parseTime('2026-11-20T12:00+02:00', 't', NOW), Date.UTC(2026, 10, 20, 10))
    assert.equal(parseTime('2026-11-20T05:30-0430', 't', NOW), Date.UTC(2026, 10, 20, 10))
    assert.equal(parseTime('2026-11-20T10:00:00.5Z', 't', NOW), Date.UTC(2026, 10, 20, 10, 0, 0, 500))
  })

  it("reads Twitter's yyyymmddhhmm as UTC and other digit strings as epoch ms", () => {
    assert.equal(parseTime('202611201000', 't', NOW), Date.UTC(2026, 10, 20, 10))
    assert.equal(parseTime('1763632800000', 't', NOW), 1763632800000)
    assert.equal(parseTime('0', 't', NOW), 0)
  })

  it('reads relative times: bare and minus are in the past, plus in the future', () => {
    assert.equal(parseTime('now', 't', NOW), NOW)
    assert.equal(parseTime('2h', 't', NOW), NOW - 2 * 3_600_000)
    assert.equal(parseTime('5d', 't', NOW), NOW - 5 * 86_400_000)
    assert.equal(parseTime('-90m', 't', NOW), NOW - 90 * 60_000)
    assert.equal(parseTime('+10m', 't', NOW), NOW + 10 * 60_000)
    assert.equal(parseTime('1w', 't', NOW), NOW - 7 * 86_400_000)
  })

  it('rejects impossible dates and anything else with a usage error naming the flag', () => {
    for (const bad of [
      '2026-02-30',
      '202613011000',
      '2026-11-20T25:00',
      'yesterday',
      '',
      '5 days',
      '12:00',
      '2026-11-20T10:00Zjunk',
    ]) {
      assert.throws(
        () => parseTime(bad, '--since', NOW),
        (error: unknown) => {
          assert.ok(error instanceof UserError)
          assert.equal(error.code, 'INVALID_TIME')
          assert.equal(error.exitCode, 2)
          assert.match(error.line, /--since/)
          return true
        },
        bad,
      )
    }
  })
})

describe('parseDuration', () => {
  it('reads retention durations', () => {
    assert.equal(parseDuration('5d'), 432_000_000)
    assert.equal(parseDuration('36h'), 129_600_000)
    assert.throws(() => parseDuration('5 days'), UserError)
    assert.throws(() => parseDuration('-1d'), UserError)
  })
})
