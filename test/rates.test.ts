import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'

import {bar, sparkline} from '../src/cli/chart.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {openRatesWindow} from '../src/core/storage/rates.js'
import {apacheTool, BROKERS, deleteTopics, isOneLineError, nth, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * `topic rates` on the real broker. Live rates are checked by what they count (records and bytes
 * written in a window that saw a known set of records, offsets a group committed as set by
 * Apache's ConsumerGroupCommand), never by a rate level, which depends on the machine's speed.
 * History is checked with records given CreateTimes in known hour buckets.
 */
const created: string[] = []
const HOUR = 3_600_000

after(async () => {
  await deleteTopics(created)
})

async function createTopic(prefix: string, partitions: number): Promise<string> {
  const topic = uniqueName(prefix)
  const result = await runCli(['topic', 'create', topic, '--partitions', String(partitions), '--json'])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

async function produce(topic: string, events: object[]): Promise<string[]> {
  const lines = events.map((event) => JSON.stringify(event))
  const result = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts', '--json'], {
    input: lines.join('\n') + '\n',
  })
  assert.equal(result.code, 0, result.stderr)
  return lines
}

function resetGroup(group: string, topic: string, to: string[]): Promise<string> {
  return apacheTool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', [
    '--bootstrap-server',
    BROKERS,
    '--group',
    group,
    '--topic',
    topic,
    '--reset-offsets',
    ...to,
    '--execute',
  ])
}

describe('topic rates (live)', () => {
  it('counts exactly the records and bytes written in the window, per partition', async () => {
    const topic = await createTopic('rates', 4)
    await produce(
      topic,
      Array.from({length: 20}, (_, index) => ({webhook_id: `before-${index}`, ts: Date.now()})),
    )
    const window = await openRatesWindow(testSettings(), {topic, bytes: true})
    const events = Array.from({length: 100}, (_, index) => ({
      webhook_id: `w${index % 9}`,
      ts: Date.now(),
      pad: 'x'.repeat(index),
    }))
    const lines = await produce(topic, events)
    const sample = await window.close()

    const expectedRecords = [0, 0, 0, 0]
    const expectedBytes = [0, 0, 0, 0]
    events.forEach((event, index) => {
      const partition = partitionFor(event.webhook_id, 4)
      expectedRecords[partition] = nth(expectedRecords, partition) + 1
      expectedBytes[partition] =
        nth(expectedBytes, partition) + Buffer.byteLength(event.webhook_id) + Buffer.byteLength(nth(lines, index))
    })
    assert.deepEqual(
      sample.partitions.map((rate) => rate.records),
      expectedRecords,
    )
    assert.deepEqual(
      sample.partitions.map((rate) => rate.bytes),
      expectedBytes,
    )
    assert.equal(sample.total.records, 100)
    assert.equal(
      sample.total.bytes,
      expectedBytes.reduce((a, b) => a + b, 0),
    )
    for (const rate of sample.partitions) assert.equal(rate.highEnd - rate.highStart, rate.records)
    // The rates are the counts over the measured seconds. Both are rounded to hundredths, so the
    // shown seconds may be off by 0.005 s: a relative error of 0.005 / seconds on a short window.
    const close = (rate: number, count: number) =>
      Math.abs(rate - count / sample.seconds) <= (count / sample.seconds) * (0.006 / sample.seconds + 0.001) + 0.01
    assert.ok(close(sample.total.recordsPerSecond, 100), `${sample.total.recordsPerSecond}/s over ${sample.seconds} s`)
    assert.ok(
      close(sample.total.bytesPerSecond!, sample.total.bytes!),
      `${sample.total.bytesPerSecond} B/s over ${sample.seconds} s`,
    )
  })

  it('with --group counts the offsets the group committed in the window, and its lag', async () => {
    const topic = await createTopic('rates_group', 3)
    const group = uniqueName('readers')
    await produce(
      topic,
      Array.from({length: 30}, (_, index) => ({webhook_id: `a${index}`, ts: Date.now()})),
    )
    await resetGroup(group, topic, ['--to-earliest'])

    const window = await openRatesWindow(testSettings(), {topic, group, bytes: false})
    await produce(
      topic,
      Array.from({length: 45}, (_, index) => ({webhook_id: `b${index}`, ts: Date.now()})),
    )
    await resetGroup(group, topic, ['--to-latest'])
    const sample = await window.close()

    assert.equal(sample.group, group)
    assert.equal(sample.total.records, 45)
    for (const rate of sample.partitions) {
      assert.equal(rate.group!.committedStart, 0)
      assert.equal(rate.group!.committedEnd, rate.highEnd)
      assert.equal(rate.group!.read, rate.highEnd, `partition ${rate.partition} read everything it holds`)
      assert.equal(rate.group!.lag, 0)
    }
    assert.equal(sample.total.read, 75)
    assert.equal(sample.bytesSource, 'not measured (--no-bytes)')
    assert.equal(sample.total.bytes, null)

    // The CLI: a group left behind by 75 records shows that lag and no reads.
    await resetGroup(group, topic, ['--to-earliest'])
    const cli = await runCli(['topic', 'rates', topic, '--group', group, '--interval', '1s', '--json'])
    assert.equal(cli.code, 0, cli.stderr)
    assert.deepEqual({read: cli.json.total.read, lag: cli.json.total.lag}, {read: 0, lag: 75})
    // Apache's ConsumerGroupCommand sees the same lag per partition.
    const described = await apacheTool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', [
      '--bootstrap-server',
      BROKERS,
      '--group',
      group,
      '--describe',
    ])
    const apacheLag = new Map(
      [...described.matchAll(new RegExp(`^${group}\\s+${topic}\\s+(\\d+)\\s+\\d+\\s+\\d+\\s+(\\d+)`, 'gm'))].map(
        (match) => [Number(match[1]), Number(match[2])],
      ),
    )
    assert.equal(apacheLag.size, 3, described)
    for (const rate of cli.json.partitions)
      assert.equal(rate.group.lag, apacheLag.get(rate.partition), `partition ${rate.partition}`)

    const unknown = await runCli(['topic', 'rates', topic, '--group', uniqueName('nobody'), '--interval', '1s'])
    assert.equal(unknown.code, 3, unknown.stderr)
    assert.ok(isOneLineError(unknown), unknown.stderr)
  })

  it('--watch samples back to back: each window starts where the last ended', async () => {
    const topic = await createTopic('rates_watch', 2)
    const result = await runCli(['topic', 'rates', topic, '--interval', '1s', '--watch', '--count', '3', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const {samples} = result.json
    assert.equal(samples.length, 3)
    for (let index = 1; index < samples.length; index++) {
      assert.equal(samples[index].from, samples[index - 1].to)
      assert.deepEqual(
        samples[index].partitions.map((rate: {highStart: number}) => rate.highStart),
        samples[index - 1].partitions.map((rate: {highEnd: number}) => rate.highEnd),
      )
    }

    const table = await runCli(['topic', 'rates', topic, '--interval', '1s'])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /records\/s\s+bytes\/s/)
    assert.match(table.stdout, /total/)

    const endless = await runCli(['topic', 'rates', topic, '--watch', '--json'])
    assert.equal(endless.code, 2)
    assert.equal(endless.json.error.code, 'INVALID_ARGUMENT')
    assert.match(endless.json.error.message, /--watch under --json needs --count/)
    for (const args of [
      ['--interval', 'soon'],
      ['--interval', '10ms'],
      ['--watch', '--count', '0'],
    ]) {
      const refused = await runCli(['topic', 'rates', topic, ...args])
      assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.stderr}`)
      assert.ok(isOneLineError(refused), refused.stderr)
    }
  })
})

describe('topic rates --history', () => {
  it('counts the records each partition took per bucket, exactly, from records with known CreateTimes', async () => {
    const topic = await createTopic('rates_history', 3)
    const currentHour = Math.floor(Date.now() / HOUR) * HOUR
    const times = [
      ...Array.from({length: 7}, (_, index) => currentHour - 5 * HOUR + 10 * 60_000 + index),
      ...Array.from({length: 4}, (_, index) => currentHour - 3 * HOUR + 60_000 + index),
      ...Array.from({length: 10}, () => currentHour - HOUR),
      currentHour - 1,
      ...Array.from({length: 3}, () => currentHour),
    ]
    const events = times.map((ts, index) => ({webhook_id: `h${index % 5}`, ts}))
    await produce(topic, events)

    const result = await runCli(['topic', 'rates', topic, '--history', '8h', '--bucket', '1h', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const history = result.json
    assert.equal(history.buckets.length, 8)
    assert.deepEqual(history.partitions, [0, 1, 2])
    for (const bucket of history.buckets) {
      const start = Date.parse(bucket.start)
      const end = Date.parse(bucket.end)
      const inBucket = events.filter((event) => event.ts >= start && event.ts < end)
      assert.equal(bucket.records, inBucket.length, bucket.start)
      assert.deepEqual(
        bucket.byPartition,
        [0, 1, 2].map(
          (partition) => inBucket.filter((event) => partitionFor(event.webhook_id, 3) === partition).length,
        ),
        bucket.start,
      )
    }
    const at = (ms: number) => history.buckets.find((bucket: {start: string}) => Date.parse(bucket.start) === ms)
    assert.equal(at(currentHour - 5 * HOUR).records, 7)
    assert.equal(at(currentHour - 4 * HOUR).records, 0)
    assert.equal(at(currentHour - 3 * HOUR).records, 4)
    assert.equal(at(currentHour - HOUR).records, 11)
    assert.equal(at(currentHour).records, 3)
    assert.equal(history.total, 25)
    assert.equal(history.buckets.at(-1).partial, true)

    const drawn = await runCli(['topic', 'rates', topic, '--history', '8h', '--bucket', '1h'])
    assert.equal(drawn.code, 0, drawn.stderr)
    assert.match(drawn.stdout, /records per 1h \(UTC\), 25 in all/)
    assert.match(drawn.stdout, /│█+.* 11\n/)
    assert.match(drawn.stdout, /\(so far\)/)

    for (const args of [
      ['--history', '1h', '--bucket', '2h'],
      ['--history', '1000d', '--bucket', '1m'],
      ['--history', 'yesterday'],
    ]) {
      const refused = await runCli(['topic', 'rates', topic, ...args])
      assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.stderr}`)
      assert.ok(isOneLineError(refused), refused.stderr)
    }
  })

  it('draws sparklines and bars in block characters', () => {
    assert.equal(sparkline([0, 1, 2, 4]), '·▃▅█')
    assert.equal(sparkline([3, 3], 6), '▅▅')
    assert.equal(bar(4, 8, 4), '██')
    assert.equal(bar(1, 1000, 4), '▏')
    assert.equal(bar(0, 10, 4), '')
  })
})
