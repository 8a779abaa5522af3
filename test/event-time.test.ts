import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {eventTimeReader} from '../src/core/kafka/event-time.js'
import {deleteTopics, isOneLineError, runCli, uniqueName} from './helpers.js'
import {post, readTopic, startServer, stopServer, type Server} from './ingest-harness.js'

/**
 * --timestamp-field values (issue 14): epoch seconds, microseconds and nanoseconds read as ms
 * would stamp records in 1970 or tens of millennia ahead, so they are refused with the flag that
 * reads them (--timestamp-unit), by `log produce` and `ingest serve` alike, and nothing of the
 * input is written; times before 2000 or more than an hour ahead (what a Kafka 4 broker refuses by
 * default) need --allow-any-timestamp. What reached the topic is read back with kcat.
 */
const created: string[] = []
const dir = mkdtempSync(join(tmpdir(), 'event-time-'))
after(async () => {
  await deleteTopics(created)
  rmSync(dir, {recursive: true, force: true})
})

async function createTopic(prefix: string): Promise<string> {
  const topic = uniqueName(`etime_${prefix}`)
  // Kept forever: records stamped before 2000 must still be there when read back; and the broker
  // takes times days ahead (Kafka 4 refuses more than an hour by default).
  const result = await runCli([
    'topic',
    'create',
    topic,
    '--partitions',
    '1',
    '--config',
    'retention.ms=-1',
    '--config',
    'message.timestamp.after.max.ms=31536000000',
  ])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

const nowS = Math.floor(Date.now() / 1000) - 3600
const line = (ts: unknown, n = 1) => JSON.stringify({webhook_id: 'w', n, ts})

describe('the timestamp rule', () => {
  const read = eventTimeReader({field: 'ts', now: () => Date.UTC(2026, 11, 4, 13)})
  it('reads epoch ms and ISO 8601, and names the unit a misread number is in', () => {
    assert.equal(read(1_796_390_189_000), 1_796_390_189_000)
    assert.equal(read('2026-12-03T10:00:00.250Z'), Date.UTC(2026, 11, 3, 10, 0, 0, 250))
    assert.equal(read('2026-12-03T12:00:00+02:00'), Date.UTC(2026, 11, 3, 10))
    assert.equal(read('1796390189000'), 1_796_390_189_000)
    for (const [value, unit] of [
      [1_796_390_189, 's'],
      [1_796_390_189.5, 's'],
      [1_796_390_189_000_000, 'us'],
      [1.796390189e18, 'ns'],
      ['1796390189', 's'],
    ] as const) {
      const problem = read(value)
      assert.equal(typeof problem, 'object', String(value))
      assert.match((problem as {fix: string}).fix, new RegExp(`^pass --timestamp-unit ${unit} `))
    }
    assert.match(JSON.stringify(read(946_684_799_999)), /before 2000.*--allow-any-timestamp/)
    // As far ahead as a Kafka 4 broker takes by default (message.timestamp.after.max.ms, 1 hour), no further.
    assert.equal(read(Date.UTC(2026, 11, 4, 14)), Date.UTC(2026, 11, 4, 14))
    assert.equal(read('2026-12-04T13:59:59Z'), Date.UTC(2026, 11, 4, 13, 59, 59))
    for (const ahead of [Date.UTC(2026, 11, 4, 14, 0, 0, 1), '2026-12-04T15:00:00Z'])
      assert.match(
        JSON.stringify(read(ahead)),
        new RegExp(
          '"problem":"has ts \\S+ \\(\\S+\\), more than an hour ahead, which Kafka refuses by default ' +
            '\\(message.timestamp.after.max.ms\\)","fix":"pass --allow-any-timestamp if such times are meant ' +
            'and the topic\'s message.timestamp.after.max.ms allows them"',
        ),
      )
    assert.match(JSON.stringify(read(-5)), /not a time/)
    assert.match(JSON.stringify(read(null)), /neither a number nor a string/)
    assert.match(JSON.stringify(read(undefined)), /has no ts field/)
  })

  it('converts the unit given, and allows any time from 1970 on when told', () => {
    assert.equal(eventTimeReader({field: 'ts', unit: 's'})(1_796_390_189), 1_796_390_189_000)
    assert.equal(eventTimeReader({field: 'ts', unit: 'us'})(1_796_390_189_123_456), 1_796_390_189_123)
    assert.equal(eventTimeReader({field: 'ts', unit: 'ns'})('1796390189123456789'), 1_796_390_189_123)
    const any = eventTimeReader({field: 'ts', allowAnyTime: true})
    assert.equal(any(123), 123)
    assert.equal(any('1999-12-31T23:59:59Z'), Date.UTC(1999, 11, 31, 23, 59, 59))
    assert.equal(any(4_102_444_800_000), 4_102_444_800_000)
    assert.match(JSON.stringify(any('1969-12-31')), /before 1970/)
  })
})

describe('log produce --timestamp-field', () => {
  it(
    'refuses epoch seconds, microseconds and nanoseconds in a file, naming the line and the flag, ' +
      'and writes nothing',
    async () => {
      const topic = await createTopic('units')
      const file = join(dir, 'units.ndjson')
      const good = Array.from({length: 5}, (_, index) => line((nowS + index) * 1000, index + 1))
      for (const [ts, unit, name] of [
        [nowS, 's', 'epoch seconds'],
        [nowS * 1_000_000, 'us', 'epoch microseconds'],
        [`${nowS}000000000`, 'ns', 'epoch nanoseconds'],
      ] as const) {
        writeFileSync(
          file,
          [
            ...good.slice(0, 3),
            typeof ts === 'string' ? `{"webhook_id":"w","n":4,"ts":${ts}}` : line(ts, 4),
            ...good.slice(3),
          ].join('\n') + '\n',
        )
        const result = await runCli(['log', 'produce', '-t', topic, '-f', file, '--timestamp-field', 'ts'])
        assert.equal(result.code, 2, result.stderr)
        assert.ok(isOneLineError(result), result.stderr)
        assert.match(
          result.stderr,
          new RegExp(
            `line 4 of .*units\\.ndjson has ts ${ts}, which looks like ${name} .*nothing was ` +
              `written: pass --timestamp-unit ${unit} `,
          ),
        )
      }
      assert.deepEqual(await readTopic(topic), [])
    },
  )

  it('--timestamp-unit s stores the right CreateTime; ISO 8601 strings are read as UTC ms', async () => {
    const topic = await createTopic('unit_s')
    const seconds = [nowS, nowS + 1, nowS + 60]
    const result = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts', '--timestamp-unit', 's'], {
      input: seconds.map((ts, n) => line(ts, n)).join('\n') + '\n',
    })
    assert.equal(result.code, 0, result.stderr)
    const iso = ['2026-01-02T03:04:05.678Z', '2026-01-02T05:04:05+02:00', '2026-01-02']
    const isoResult = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts'], {
      input: iso.map((ts, n) => line(ts, n + 3)).join('\n') + '\n',
    })
    assert.equal(isoResult.code, 0, isoResult.stderr)
    assert.deepEqual(
      (await readTopic(topic)).map((record) => record.timestamp),
      [
        ...seconds.map((ts) => ts * 1000),
        Date.UTC(2026, 0, 2, 3, 4, 5, 678),
        Date.UTC(2026, 0, 2, 3, 4, 5),
        Date.UTC(2026, 0, 2),
      ],
    )
  })

  it('refuses times before 2000 and more than an hour ahead unless --allow-any-timestamp', async () => {
    const topic = await createTopic('bounds')
    const old = Date.UTC(1999, 11, 31, 23)
    // Within a day but past the broker's default hour: refused as the broker would refuse it.
    const ahead = Date.now() + 3 * 3_600_000
    for (const [ts, why] of [
      [old, 'before 2000'],
      [ahead, 'more than an hour ahead, which Kafka refuses by default \\(message.timestamp.after.max.ms\\)'],
      ['1999-06-01T00:00:00Z', 'before 2000'],
    ] as const) {
      const result = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts'], {input: `${line(ts)}\n`})
      assert.equal(result.code, 2, result.stderr)
      assert.ok(isOneLineError(result), result.stderr)
      assert.match(
        result.stderr,
        new RegExp(
          `line 1 of stdin has ts .*, ${why}; the 0 events before it were written: ` +
            'pass --allow-any-timestamp if such times are meant',
        ),
      )
    }
    assert.deepEqual(await readTopic(topic), [])
    const allowed = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts', '--allow-any-timestamp'], {
      input: `${line(old, 1)}\n${line(ahead, 2)}\n`,
    })
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.deepEqual(
      (await readTopic(topic)).map((record) => record.timestamp),
      [old, ahead],
    )
  })

  it('--timestamp-unit without --timestamp-field is a usage error', async () => {
    const result = await runCli(['log', 'produce', '-t', 'any', '--timestamp-unit', 's'], {input: `${line(1)}\n`})
    assert.equal(result.code, 2, result.stderr)
    assert.ok(isOneLineError(result), result.stderr)
    assert.match(result.stderr, /--timestamp-unit.*--timestamp-field/)
  })
})

describe('ingest serve --timestamp-field', () => {
  let topic: string
  let server: Server
  let secondsTopic: string
  let seconds: Server
  before(async () => {
    topic = await createTopic('ingest')
    secondsTopic = await createTopic('ingest_s')
    server = await startServer(['-t', topic, '--timestamp-field', 'ts'])
    seconds = await startServer([
      '-t',
      secondsTopic,
      '--timestamp-field',
      'ts',
      '--timestamp-unit',
      's',
      '--allow-any-timestamp',
    ])
  })
  after(async () => {
    await stopServer(server)
    await stopServer(seconds)
  })

  it(
    'answers 400 for seconds, microseconds, nanoseconds and out-of-bounds times, and writes nothing ' +
      'of the request',
    async () => {
      const good = line(nowS * 1000)
      for (const [ts, pattern] of [
        [nowS, /looks like epoch seconds .*--timestamp-unit s /],
        [nowS * 1_000_000, /looks like epoch microseconds .*--timestamp-unit us /],
        [`${nowS}000000000`, /looks like epoch nanoseconds .*--timestamp-unit ns /],
        [Date.UTC(1990, 0, 1), /before 2000.*--allow-any-timestamp/],
        [Date.now() + 2 * 3_600_000, /more than an hour ahead.*--allow-any-timestamp/],
      ] as const) {
        const bad = typeof ts === 'string' ? `{"webhook_id":"w","ts":${ts}}` : line(ts, 2)
        const answer = await post(server.url, `${good}\n${bad}\n`)
        assert.equal(answer.status, 400, String(ts))
        assert.equal(answer.json.line, 2)
        assert.equal(answer.json.written, 0)
        assert.match(answer.json.error, new RegExp(`^line 2 has ts ${ts}`))
        assert.match(answer.json.error, pattern)
        assert.match(answer.json.error, /nothing of this request was written/)
      }
      const iso = await post(server.url, `${line('2026-01-02T03:04:05.006Z')}\n`)
      assert.equal(iso.status, 200, JSON.stringify(iso.json))
      assert.deepEqual(
        (await readTopic(topic)).map((record) => record.timestamp),
        [Date.UTC(2026, 0, 2, 3, 4, 5, 6)],
      )
    },
  )

  it('--timestamp-unit s stores seconds as ms; --allow-any-timestamp lets a time before 2000 through', async () => {
    const answer = await post(seconds.url, `${line(nowS, 1)}\n${line(946_684_799, 2)}\n`)
    assert.equal(answer.status, 200, JSON.stringify(answer.json))
    assert.deepEqual(
      (await readTopic(secondsTopic)).map((record) => record.timestamp),
      [nowS * 1000, 946_684_799_000],
    )
  })
})
