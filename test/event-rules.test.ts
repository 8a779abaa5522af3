import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {BadEvent, eventRules, trimBlanks} from '../src/core/kafka/event-rules.js'

/** The rules `log produce` and `ingest serve` share; each words a BadEvent its own way (tested with them). */
const NOW = Date.UTC(2026, 10, 20, 10, 0, 0)
const text = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))

function refusal(read: () => unknown): {problem: string; fix?: string} {
  try {
    read()
  } catch (error) {
    assert.ok(error instanceof BadEvent, String(error))
    return {problem: error.problem, ...(error.fix === undefined ? {} : {fix: error.fix})}
  }
  assert.fail('the event was accepted')
}

describe('event rules', () => {
  const rules = eventRules({keyField: 'webhook_id', timestampField: 'ts'})

  test('key and time, from the scan, a full parse, or an event parsed already', () => {
    const event = {webhook_id: 'hook-1', ts: NOW, body: {deep: [1, 2]}}
    assert.deepEqual(rules.read(text(event)), {key: 'hook-1', timestamp: NOW})
    assert.deepEqual(rules.readParsed(event), {key: 'hook-1', timestamp: NOW})
    // An exact integer key is its decimal text; an ISO time is read as parseTime reads it.
    assert.deepEqual(rules.read(text({webhook_id: 42, ts: new Date(NOW).toISOString()})), {key: '42', timestamp: NOW})
    const dotted = eventRules({keyField: 'user.id', timestampField: 'meta.ts'})
    assert.deepEqual(dotted.read(text({user: {id: 'u-7'}, meta: {ts: NOW}})), {key: 'u-7', timestamp: NOW})
    // Without a key field (ingest's key header) or a time field, neither is read.
    assert.deepEqual(eventRules({keyField: null}).read(text({any: 1})), {key: null, timestamp: null})
  })

  test('each rule refuses with one BadEvent, worded to follow "line N "', () => {
    assert.deepEqual(
      refusal(() => rules.read(text({ts: NOW}))),
      {problem: 'has no webhook_id field to key it by'},
    )
    assert.deepEqual(
      refusal(() => rules.read(text({webhook_id: 2 ** 60, ts: NOW}))),
      {problem: 'has a webhook_id that is not a string or an exact integer (large ids must be JSON strings)'},
    )
    assert.match(refusal(() => rules.read(text('{"webhook_id": '))).problem, /^is not valid JSON \(/)
    assert.deepEqual(
      refusal(() => rules.read(text('[1, 2]'))),
      {problem: 'is not a JSON object'},
    )
    assert.deepEqual(
      refusal(() => rules.readParsed('hook-1')),
      {problem: 'is not a JSON object'},
    )
    // The time rule is event-time.ts's, its fix naming the flag that would accept the value.
    const seconds = refusal(() => rules.read(text({webhook_id: 'hook-1', ts: Math.floor(NOW / 1000)})))
    assert.match(seconds.problem, /^has ts \d+, which looks like epoch seconds/)
    assert.equal(seconds.fix, 'pass --timestamp-unit s if ts holds epoch seconds')
    assert.deepEqual(
      refusal(() => rules.read(text({webhook_id: 'hook-1'}))),
      {
        problem: 'has no ts field',
        fix: 'give every event a ts in epoch ms or as an ISO 8601 time',
      },
    )
  })

  test('field names are checked once, naming the flag', () => {
    assert.throws(() => eventRules({keyField: 'user..id'}), {
      code: 'INVALID_ARGUMENT',
      message: "--key-field 'user..id' is not a field name",
    })
    assert.throws(() => eventRules({keyField: 'id', timestampField: '.ts'}), {
      code: 'INVALID_ARGUMENT',
      message: "--timestamp-field '.ts' is not a field name",
    })
  })

  test('trimBlanks drops JSON whitespace and a carriage return around an event, without a copy', () => {
    const line = Buffer.from(' \t{"a":1}\r')
    const trimmed = trimBlanks(line)
    assert.equal(trimmed.toString(), '{"a":1}')
    assert.equal(trimmed.buffer, line.buffer)
    assert.equal(trimBlanks(Buffer.from(' \r\n')).length, 0)
  })
})
