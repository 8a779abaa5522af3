import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {PassThrough, Readable} from 'node:stream'
import {after, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {loadNative} from '../src/core/kafka/client.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {produce} from '../src/core/kafka/produce.js'
import {apacheTool, BIN, BROKERS, deleteTopics, nth, partitionDir, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * The Kafka-facing toolkit checked against Apache Kafka's own tools on the real local broker:
 * ConsoleProducer's placement of keys, GetOffsetShell's offsets by time, ConfigCommand's view of
 * topic configs, DumpLogSegments' view of compression.
 */
const run = promisify(execFile)
const created: string[] = []

async function createTopic(prefix: string, partitions: number, extra: string[] = []): Promise<string> {
  const topic = uniqueName(prefix)
  const result = await runCli(['topic', 'create', topic, '--partitions', String(partitions), '--json', ...extra])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

function ndjson(events: object[]): string {
  return events.map((event) => JSON.stringify(event)).join('\n') + '\n'
}

after(async () => {
  await deleteTopics(created)
})

describe('log partition-for', () => {
  it("agrees with the partitions Apache's ConsoleProducer picks for the same keys", async () => {
    const topic = await createTopic('pf', 7)
    const keys = Array.from({length: 60}, (_, index) => `webhook-${index * 7919}`)
    await apacheTool(
      'org.apache.kafka.tools.ConsoleProducer',
      [
        '--bootstrap-server',
        BROKERS,
        '--topic',
        topic,
        '--property',
        'parse.key=true',
        '--property',
        'key.separator=|',
      ],
      keys.map((key) => `${key}|v`).join('\n') + '\n',
    )
    const {stdout} = await run('kcat', ['-b', BROKERS, '-C', '-t', topic, '-e', '-q', '-f', '%k %p\n'])
    const placed = new Map(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string]),
    )
    assert.equal(placed.size, keys.length)
    for (const key of keys) {
      const ours = await runCli(['log', 'partition-for', key, '--partitions', '7', '--json'])
      assert.equal(ours.code, 0, ours.stderr)
      assert.equal(ours.json.partition, Number(placed.get(key)), key)
      assert.deepEqual(Object.keys(ours.json).sort(), ['key', 'partition', 'partitioner', 'partitions'])
    }
  })

  it('with --topic reads the partition count and adds the leader and watermarks', async () => {
    const topic = await createTopic('pft', 5)
    await runCli(['log', 'produce', '-t', topic], {input: ndjson([{webhook_id: 'w1'}, {webhook_id: 'w1'}])})
    const result = await runCli(['log', 'partition-for', 'w1', '--topic', topic, '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.partitions, 5)
    assert.equal(result.json.partition, partitionFor('w1', 5))
    assert.equal(result.json.leader, 1)
    assert.equal(result.json.high - result.json.low, 2)
  })
})

describe('log produce', () => {
  it('writes keyed records with CreateTime from a field, placed by murmur2, snappy-compressed on disk', async () => {
    const topic = await createTopic('prod', 4)
    // Recent times: the topic keeps 5 days, and older records would be deleted under the test.
    const base = Date.now() - 3_600_000
    const events = Array.from({length: 200}, (_, index) => ({
      webhook_id: `w${index % 10}`,
      ts: base + index,
      body: 'x'.repeat(200),
    }))
    const result = await runCli(
      ['log', 'produce', '-t', topic, '--timestamp-field', 'ts', '--header', 'source=test', '--json'],
      {input: ndjson(events)},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.events, 200)

    const {stdout} = await run('kcat', ['-b', BROKERS, '-C', '-t', topic, '-e', '-q', '-f', '%k %p %T %h\n'])
    const lines = stdout.trim().split('\n')
    assert.equal(lines.length, 200)
    for (const line of lines) {
      const [key, partition, timestamp, headers] = line.split(' ')
      assert.equal(Number(partition), partitionFor(key!, 4), `key ${key}`)
      assert.ok(Number(timestamp) >= base && Number(timestamp) < base + 200)
      assert.equal(headers, 'source=test')
    }

    const describe = await runCli(['topic', 'describe', topic, '--json'])
    assert.equal(describe.code, 0, describe.stderr)
    assert.equal(describe.json.configs['compression.type'], 'snappy')
    assert.equal(describe.json.configs['cleanup.policy'], 'delete')
    assert.equal(describe.json.configs['retention.ms'], String(5 * 86_400_000))
    assert.equal(describe.json.messages, 200)
    const fromApache = await apacheTool('kafka.admin.ConfigCommand', [
      '--bootstrap-server',
      BROKERS,
      '--entity-type',
      'topics',
      '--entity-name',
      topic,
      '--describe',
    ])
    assert.match(fromApache, /compression\.type=snappy/)

    const dir = await partitionDir(topic, partitionFor('w0', 4))
    const segment = readdirSync(dir).find((name) => name.endsWith('.log'))!
    const dump = await apacheTool('kafka.tools.DumpLogSegments', ['--files', join(dir, segment)])
    const codecs = [...dump.matchAll(/compresscodec: (\w+)/g)].map((match) => match[1])
    assert.ok(codecs.length > 0, dump)
    assert.deepEqual([...new Set(codecs)], ['snappy'])
  })

  it('stops at a bad line, keeps what came before, and says how to continue', async () => {
    const topic = await createTopic('bad', 1)
    const input =
      `${JSON.stringify({webhook_id: 'a'})}\n${JSON.stringify({webhook_id: 'b'})}\nnot json\n` +
      `${JSON.stringify({webhook_id: 'c'})}\n`
    const result = await runCli(['log', 'produce', '-t', topic], {input})
    assert.equal(result.code, 2)
    assert.match(
      result.stderr,
      /line 3 of stdin is not valid JSON.*the 2 events before it were written.*--skip-lines 2/,
    )
    assert.equal(result.stderr.trim().split('\n').length, 1)
    const resumed = await runCli(['log', 'produce', '-t', topic, '--skip-lines', '3', '--json'], {input})
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.equal(resumed.json.events, 1)
    const read = await runCli(['log', 'read', '-t', topic, '--json'])
    assert.deepEqual(
      read.json.records.map((record: {key: string}) => record.key),
      ['a', 'b', 'c'],
    )
  })

  it("reports the whole run's seconds: the checking pass of a file and the wait for input too", async () => {
    const topic = await createTopic('secs', 1)
    const lines = ndjson(Array.from({length: 100}, (_, index) => ({webhook_id: `w${index % 5}`, n: index})))
    // The checking pass reads a stream the test ends: it lasts at least from when produce opens it until then.
    let opened = 0
    let ended = 0
    const result = await produce(testSettings(), {
      topic,
      input: Readable.from([Buffer.from(lines)]),
      recheck: () => {
        opened = Date.now()
        const checking = new PassThrough()
        checking.write(lines)
        setTimeout(() => {
          ended = Date.now()
          checking.end()
        }, 1500)
        return checking
      },
      source: 'test',
      keyField: 'webhook_id',
      headers: [],
      partitioner: 'murmur2',
      skipLines: 0,
    })
    assert.equal(result.events, 100)
    assert.ok(opened > 0 && ended > opened)
    const beforeWritingMs = Math.round(result.seconds * 1000) - Math.round(result.writeSeconds * 1000)
    assert.ok(beforeWritingMs >= ended - opened, `${JSON.stringify(result)}: the check took ${ended - opened} ms`)

    // From stdin the run lasts at least from its first records being written until the input ends, and the
    // command reports no more than the process took.
    const started = Date.now()
    const child = spawn(process.execPath, [BIN, 'log', 'produce', '-t', topic, '--json'], {
      env: {PATH: process.env.PATH, REPLAYCTL_BROKERS: BROKERS, REPLAYCTL_CONFIG: '/nonexistent'},
    })
    try {
      let stdout = ''
      child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
      const closed = new Promise((resolve) => child.on('close', resolve))
      child.stdin.write(lines)
      const deadline = Date.now() + 60_000
      const firstHalf = result.events + 100
      while ((await runCli(['topic', 'describe', topic, '--no-configs', '--json'])).json.messages < firstHalf)
        assert.ok(Date.now() < deadline, 'the first lines from stdin were never written')
      const written = Date.now()
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const inputEnded = Date.now()
      child.stdin.end(lines)
      assert.equal(await closed, 0)
      const wallMs = Date.now() - started
      const reportedMs = Math.round(JSON.parse(stdout).seconds * 1000)
      assert.equal(JSON.parse(stdout).events, 200)
      assert.ok(reportedMs >= inputEnded - written, `${stdout}: ${inputEnded - written} ms of input`)
      assert.ok(reportedMs <= wallMs, `${stdout}: the process took ${wallMs} ms`)
    } finally {
      if (child.exitCode === null) child.kill()
    }
  })
})

describe('log seek', () => {
  it("finds the same offsets by time as Apache's GetOffsetShell", async () => {
    const topic = await createTopic('seek', 3)
    const base = Date.now() - 3_600_000
    const events = Array.from({length: 300}, (_, index) => ({webhook_id: `k${index % 17}`, ts: base + index * 1000}))
    assert.equal(
      (await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts'], {input: ndjson(events)})).code,
      0,
    )

    for (const time of [base - 1, base + 100_500, base + 299_000, base + 10_000_000]) {
      const ours = await runCli(['log', 'seek', '-t', topic, '--since', String(time), '--json'])
      assert.equal(ours.code, 0, ours.stderr)
      const apache = await apacheTool('org.apache.kafka.tools.GetOffsetShell', [
        '--bootstrap-server',
        BROKERS,
        '--topic',
        topic,
        '--time',
        String(time),
      ])
      const theirs = new Map(
        apache
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [, partition, offset] = line.split(':')
            return [Number(partition), Number(offset)]
          }),
      )
      const high = await runCli(['log', 'seek', '-t', topic, '--since', '+1d', '--json'])
      for (const found of ours.json.since.offsets) {
        const expected = theirs.get(found.partition)
        if (expected === undefined || expected < 0) {
          // Apache prints nothing (or -1) where no record is that late; we give the end offset.
          assert.equal(found.timestamp, null)
          assert.equal(found.offset, high.json.since.offsets[found.partition].offset)
        } else {
          assert.equal(found.offset, expected, `partition ${found.partition} at ${time}`)
          assert.ok(found.timestamp >= time)
        }
      }
    }
  })

  it('with --key and --until gives only the key partition and an exclusive end', async () => {
    const topic = await createTopic('seekkey', 4)
    const base = Date.now() - 600_000
    const events = Array.from({length: 100}, (_, index) => ({webhook_id: 'hot', ts: base + index * 1000}))
    await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts'], {input: ndjson(events)})
    const result = await runCli([
      'log',
      'seek',
      '-t',
      topic,
      '--key',
      'hot',
      '--since',
      String(base + 10_000),
      '--until',
      String(base + 20_000),
      '--json',
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(result.json.since.offsets, [
      {partition: partitionFor('hot', 4), offset: 10, timestamp: base + 10_000},
    ])
    assert.deepEqual(result.json.until.offsets, [
      {partition: partitionFor('hot', 4), offset: 20, timestamp: base + 20_000},
    ])
  })
})

describe('log read', () => {
  it('reads exact ranges by offset and by time, and filters by key', async () => {
    const topic = await createTopic('read', 2)
    const base = Date.now() - 600_000
    const events = Array.from({length: 100}, (_, index) => ({
      webhook_id: index % 2 ? 'odd' : 'even',
      n: index,
      ts: base + index * 1000,
    }))
    await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts'], {input: ndjson(events)})
    const partition = partitionFor('odd', 2)

    const byOffset = await runCli([
      'log',
      'read',
      '-t',
      topic,
      '-p',
      String(partition),
      '--from-offset',
      '5',
      '--to-offset',
      '9',
      '--json',
    ])
    assert.deepEqual(
      byOffset.json.records.map((record: {offset: number}) => record.offset),
      [5, 6, 7, 8],
    )

    const byKey = await runCli([
      'log',
      'read',
      '-t',
      topic,
      '--key',
      'odd',
      '--since',
      String(base + 10_000),
      '--until',
      String(base + 20_000),
      '--format',
      'raw',
    ])
    assert.deepEqual(
      byKey.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).n),
      [11, 13, 15, 17, 19],
    )

    const last = await runCli(['log', 'read', '-t', topic, '-p', String(partition), '--from-offset', '-3', '--json'])
    assert.equal(last.json.count, 3)
    const max = await runCli(['log', 'read', '-t', topic, '--max', '7', '--format', 'json'])
    assert.equal(max.stdout.trim().split('\n').length, 7)
    const record = JSON.parse(nth(max.stdout.split('\n'), 0))
    assert.deepEqual(Object.keys(record), ['partition', 'offset', 'timestamp', 'key', 'headers', 'value'])
  })

  it('ends on empty topics and empty ranges', async () => {
    const topic = await createTopic('empty', 3)
    const all = await runCli(['log', 'read', '-t', topic, '--json'], {timeoutMs: 20_000})
    assert.equal(all.code, 0, all.stderr)
    assert.equal(all.json.count, 0)
    const future = await runCli(['log', 'read', '-t', topic, '--since', '+1h', '--json'], {timeoutMs: 20_000})
    assert.equal(future.json.count, 0)
    const beyond = await runCli(['log', 'read', '-t', topic, '--from-offset', '50', '--to-offset', '100', '--json'], {
      timeoutMs: 20_000,
    })
    assert.equal(beyond.json.count, 0)
  })

  it('ends on compacted ranges whose last offsets are gone', async () => {
    const topic = await createTopic('compact', 1, [
      '--compact',
      '--config',
      'segment.ms=100',
      '--config',
      'min.cleanable.dirty.ratio=0.001',
      '--config',
      'delete.retention.ms=0',
      '--config',
      'min.compaction.lag.ms=0',
    ])
    // Many versions of a few keys over several segments, plus one key per round that survives,
    // so the cleaner leaves long gaps between the survivors.
    for (let round = 0; round < 4; round++) {
      const events = [
        {webhook_id: `once-${round}`},
        ...Array.from({length: 49}, (_, index) => ({webhook_id: `k${index % 3}`, round})),
      ]
      await runCli(['log', 'produce', '-t', topic], {input: ndjson(events)})
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    let records: {offset: number; key: string}[] = []
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      records = (await runCli(['log', 'read', '-t', topic, '--json'])).json.records
      if (records.length < 100) break
      await runCli(['log', 'produce', '-t', topic], {input: ndjson([{webhook_id: 'roll'}])})
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    assert.ok(records.length < 100, `the cleaner compacted the topic (${records.length} records left)`)
    const survivors = records.filter((record) => record.key.startsWith('once-')).map((record) => record.offset)
    assert.deepEqual(survivors, [0, 50, 100, 150])
    // Offsets 1..49 are gone: a range ending inside the gap has no record at end - 1, nor after 0.
    const bounded = await runCli(['log', 'read', '-t', topic, '--to-offset', '40', '--json'], {timeoutMs: 20_000})
    assert.equal(bounded.code, 0, bounded.stderr)
    assert.deepEqual(
      bounded.json.records.map((record: {offset: number}) => record.offset),
      [0],
    )
    const inside = await runCli(['log', 'read', '-t', topic, '--from-offset', '10', '--to-offset', '40', '--json'], {
      timeoutMs: 20_000,
    })
    assert.equal(inside.json.count, 0)
  })

  it('ends on transactional ranges that end in a commit marker', async () => {
    const topic = await createTopic('txn', 1)
    const native = await loadNative()
    const producer = new native.Producer({
      'bootstrap.servers': BROKERS,
      'transactional.id': uniqueName('txn'),
      log_level: 0,
      dr_cb: false,
    })
    await new Promise<void>((resolve, reject) => producer.connect({}, (error) => (error ? reject(error) : resolve())))
    await new Promise<void>((resolve, reject) =>
      producer.initTransactions(10_000, (error) => (error ? reject(error) : resolve())),
    )
    for (let batch = 0; batch < 2; batch++) {
      await new Promise<void>((resolve, reject) =>
        producer.beginTransaction((error) => (error ? reject(error) : resolve())),
      )
      for (let index = 0; index < 5; index++) producer.produce(topic, 0, Buffer.from(`{"n":${index}}`), 'k')
      await new Promise<void>((resolve, reject) =>
        producer.commitTransaction(10_000, (error) => (error ? reject(error) : resolve())),
      )
    }
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()))

    const describe = await runCli(['topic', 'describe', topic, '--no-configs', '--json'])
    assert.equal(describe.json.partitions[0].high, 12, 'ten records and two commit markers')
    const read = await runCli(['log', 'read', '-t', topic, '--json'], {timeoutMs: 20_000})
    assert.equal(read.code, 0, read.stderr)
    assert.deepEqual(
      read.json.records.map((record: {offset: number}) => record.offset),
      [0, 1, 2, 3, 4, 6, 7, 8, 9, 10],
    )
  })
})
