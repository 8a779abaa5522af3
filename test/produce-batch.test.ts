import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {
  connectProducer,
  disconnect,
  KafkaCode,
  loadNative,
  type Message,
  type Producer,
} from '../src/core/kafka/client.js'
import {murmur2} from '../src/core/kafka/partitioner.js'
import {type Headers, RecordBatch} from '../src/core/kafka/record-batch.js'
import {RecordWriter} from '../src/core/kafka/record-writer.js'
import {deleteTopics, nth, produceStock, readToEnd, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * The client patch's produceBatch (patches/@confluentinc+kafka-javascript+1.10.1.patch): what it
 * writes must be what produce() writes for the same records — keys, null and empty values,
 * timestamps, headers, explicit partitions and the partitioner's placement — and its one callback
 * per call must account for every record it took: acknowledged, or failed by index. Checked on
 * the real broker, old path against new.
 */
const PARTITIONS = 3
const RECORDS = 2000
const base = Date.now() - 3_600_000
const topics: string[] = []
/** Kafka's MESSAGE_TOO_LARGE, which librdkafka also gives a record over message.max.bytes. */
const MSG_SIZE_TOO_LARGE = 10

interface TestRecord {
  key: Buffer | null
  value: Buffer | null
  timestamp: number
  partition: number
  headers?: Headers
}

// produce() writes a zero-length Buffer without memory behind it (Buffer.alloc(0)) as null: an
// empty view into a real allocation is what keeps "empty" on the old path.
const EMPTY = Buffer.alloc(1).subarray(0, 0)

function recordFor(index: number): TestRecord {
  const key = index % 7 === 0 ? null : index % 11 === 0 ? EMPTY : Buffer.from(`key-${index % 5}-é`)
  const value =
    index % 13 === 0
      ? null
      : index % 17 === 0
        ? EMPTY
        : Buffer.from(JSON.stringify({index, text: 'é'.repeat(index % 50)}))
  const headers: Headers | undefined =
    index % 3 === 0
      ? undefined
      : [{trace: Buffer.from(`t${index}`)}, {trace: Buffer.alloc(0)}, {bïnary: Buffer.from([0, 255, index % 256])}]
  // Null keys go where the partitioner puts them at random: those are written to a partition.
  const partition = key === null || index % 4 === 0 ? index % PARTITIONS : -1
  return {key, value, timestamp: base + index, partition, ...(headers ? {headers} : {})}
}

async function createTopic(prefix: string, partitions = PARTITIONS): Promise<string> {
  const topic = uniqueName(prefix)
  topics.push(topic)
  assert.equal((await runCli(['topic', 'create', topic, '--partitions', String(partitions), '--json'])).code, 0)
  return topic
}

interface Report {
  acknowledged: number
  failures: {index: number; error: {code: number}}[]
}

/** Sends records start.. of the batch; resolves with where it stopped and the one report. */
function send(
  producer: Producer,
  topic: string,
  batch: RecordBatch,
  start = 0,
): {next: number; report: Promise<Report>} {
  let calls = 0
  let resolve: (report: Report) => void = () => {}
  const report = new Promise<Report>((settle) => (resolve = settle))
  const next = producer.produceBatch(
    topic,
    {data: batch.data, index: batch.index.subarray(0, batch.length * 8), headerIndex: batch.headerIndex, start},
    (result) => {
      assert.equal(++calls, 1, 'the callback is called once per produceBatch call')
      resolve(result)
    },
  )
  return {next, report}
}

const readAll = (topic: string, partitions = PARTITIONS) => readToEnd(topic, partitions)

/** Buffers compared by bytes; the offset and topic are where a record went, not what it is. */
function plain(message: Message): unknown {
  const {topic: _topic, size: _size, ...rest} = message
  return JSON.parse(
    JSON.stringify(rest, (_, value) =>
      value && value.type === 'Buffer' && Array.isArray(value.data)
        ? `bytes:${Buffer.from(value.data).toString('hex')}`
        : value,
    ),
  )
}

after(async () => {
  await deleteTopics(topics)
})

describe('produceBatch (client patch)', () => {
  let stockTopic: string
  let batchTopic: string

  before(async () => {
    stockTopic = await createTopic('batch-stock')
    batchTopic = await createTopic('batch-new')
    await produceStock(stockTopic, RECORDS, (index) => {
      const record = recordFor(index)
      return {...record, partition: record.partition < 0 ? null : record.partition}
    })
  })

  it('is the patched build: the native method is there', async () => {
    const native = await loadNative()
    assert.equal(typeof native.Producer.prototype.produceBatch, 'function')
    assert.equal(native.Producer.PRODUCE_BATCH_STRIDE, 8)
    assert.equal(native.Producer.PRODUCE_BATCH_HEADER_STRIDE, 4)
  })

  it('writes every record exactly as produce() does, and calls back once per call with the count', async () => {
    const producer = await connectProducer(testSettings(), {extra: {'linger.ms': 5}})
    let deliveryEvents = 0
    producer.on('delivery-report', () => deliveryEvents++)
    producer.setPollInBackground(true)
    try {
      // Three calls, one of them reusing the first call's buffers once it returned.
      const batch = new RecordBatch(16, 64)
      const reports: Promise<Report>[] = []
      for (let index = 0; index < RECORDS; index++) {
        const record = recordFor(index)
        batch.add(record.key, record.value, record.timestamp, record.partition, record.headers)
        if (index === 700 || index === 1500 || index === RECORDS - 1) {
          const {next, report} = send(producer, batchTopic, batch)
          assert.equal(next, batch.length)
          reports.push(report)
          batch.clear()
        }
      }
      const results = await Promise.all(reports)
      assert.deepEqual(results, [
        {acknowledged: 701, failures: []},
        {acknowledged: 800, failures: []},
        {acknowledged: 499, failures: []},
      ])
      assert.equal(deliveryEvents, 0, 'batch records are not reported one by one')
    } finally {
      await disconnect(producer)
    }

    const expected = await readAll(stockTopic)
    const actual = await readAll(batchTopic)
    assert.equal(expected.length, RECORDS)
    const indexes = (messages: Message[]) =>
      messages.map(
        (message) =>
          `${message.partition}:${message.value?.length ? JSON.parse(message.value.toString()).index : 'none'}`,
      )
    assert.deepEqual(indexes(actual), indexes(expected))
    assert.deepEqual(actual.map(plain), expected.map(plain))
    // What the data was built to cover did occur: explicit partitions, murmur2 placement (of the
    // empty key too), null and empty values, headers.
    const byIndex = new Map(
      actual
        .filter((message) => message.value?.length)
        .map((message) => [JSON.parse(message.value!.toString()).index as number, message]),
    )
    assert.equal(byIndex.get(1)!.partition, (murmur2(Buffer.from('key-1-é')) & 0x7fffffff) % PARTITIONS)
    assert.equal(byIndex.get(22)!.partition, (murmur2(Buffer.alloc(0)) & 0x7fffffff) % PARTITIONS)
    assert.equal(byIndex.get(8)!.partition, 8 % PARTITIONS)
    assert.deepEqual(byIndex.get(1)!.headers, [
      {trace: Buffer.from('t1')},
      {trace: Buffer.alloc(0)},
      {bïnary: Buffer.from([0, 255, 1])},
    ])
    assert.equal(byIndex.get(1)!.timestamp, base + 1)
    assert.ok(actual.some((message) => message.value === null))
    assert.ok(actual.some((message) => message.value !== null && message.value.length === 0))
  })

  it(
    'reports each record that fails by its index: too large when queued, a partition that does ' + 'not exist',
    async () => {
      const topic = await createTopic('batch-failures', 2)
      const producer = await connectProducer(testSettings(), {extra: {'linger.ms': 5, 'message.max.bytes': 100_000}})
      producer.setPollInBackground(true)
      try {
        const batch = new RecordBatch()
        for (let index = 0; index < 50; index++) {
          const value = Buffer.from(index === 7 ? 'x'.repeat(200_000) : `value ${index}`)
          batch.add(`key ${index}`, value, null, index === 31 ? 5 : index === 40 ? 1 : -1)
        }
        const {next, report} = send(producer, topic, batch)
        assert.equal(next, 50)
        const result = await report
        assert.equal(result.acknowledged, 48)
        assert.deepEqual(
          result.failures.map((failure) => failure.index),
          [7, 31],
        )
        assert.equal(nth(result.failures, 0).error.code, MSG_SIZE_TOO_LARGE)
        assert.equal(nth(result.failures, 1).error.code, KafkaCode.UNKNOWN_PARTITION_LOCAL)
      } finally {
        await disconnect(producer)
      }
      const written = await readAll(topic, 2)
      assert.equal(written.length, 48)
      assert.ok(!written.some((message) => ['value 7', 'value 31'].includes(message.value!.toString())))
    },
  )

  it(
    'stops where the queue is full, reports only what it took, and takes the rest later (polling, ' + 'then flush)',
    async () => {
      const topic = await createTopic('batch-queue-full', 1)
      const producer = await connectProducer(testSettings(), {
        extra: {'linger.ms': 50, 'queue.buffering.max.messages': 100},
      })
      try {
        const batch = new RecordBatch()
        for (let index = 0; index < 1000; index++) batch.add(null, Buffer.from(`value ${index}`), base + index, 0)
        let start = 0
        let acknowledged = 0
        let calls = 0
        while (start < batch.length) {
          const {next, report} = send(producer, topic, batch, start)
          assert.ok(next > start && next <= batch.length, `took ${next - start} from ${start}`)
          assert.ok(next - start <= 100, 'no more than the queue holds')
          calls++
          // Delivery reports served by polling here (no background thread).
          while (true) {
            const settled = await Promise.race([report, new Promise((resolve) => setTimeout(resolve, 10, null))])
            if (settled) {
              const result = settled as Report
              assert.deepEqual(result.failures, [])
              assert.equal(result.acknowledged, next - start)
              acknowledged += result.acknowledged
              break
            }
            producer.poll()
          }
          start = next
        }
        assert.equal(acknowledged, 1000)
        assert.ok(calls >= 10)

        // flush() serves the reports too.
        const more = new RecordBatch()
        for (let index = 0; index < 50; index++) more.add(null, Buffer.from(`more ${index}`), base, 0)
        const {next, report} = send(producer, topic, more)
        assert.equal(next, 50)
        await new Promise<void>((resolve, reject) =>
          producer.flush(10_000, (error) => (error ? reject(error) : resolve())),
        )
        assert.deepEqual(await report, {acknowledged: 50, failures: []})
      } finally {
        await disconnect(producer)
      }
      const written = await readAll(topic, 1)
      assert.deepEqual(
        written.slice(0, 1000).map((message) => message.value!.toString()),
        Array.from({length: 1000}, (_, index) => `value ${index}`),
      )
      assert.equal(written.length, 1050)
    },
  )

  it('RecordWriter waits for room when the queue fills, and writes every record once, in order', async () => {
    const topic = await createTopic('batch-writer-queue-full', 1)
    const writer = await RecordWriter.open(testSettings({librdkafka: {'queue.buffering.max.messages': '300'}}), topic)
    let waits = 0
    for (let index = 0; index < 5000; index++) {
      const waiting = writer.write(`k${index}`, Buffer.from(`v${index}`), base + index, undefined, {
        partition: 0,
        lineNumber: index + 1,
      })
      if (waiting) {
        waits++
        await waiting
      }
    }
    const stats = await writer.close()
    assert.deepEqual(stats, {written: 5000, acknowledged: 5000, failed: 0, bytes: stats.bytes})
    assert.ok(waits > 0, 'the queue filled up')
    const written = await readAll(topic, 1)
    assert.deepEqual(
      written.map((message) => message.value!.toString()),
      Array.from({length: 5000}, (_, index) => `v${index}`),
    )
  })

  it('refuses an index that points outside its data before queueing anything', async () => {
    const topic = await createTopic('batch-bad-index', 1)
    const producer = await connectProducer(testSettings())
    try {
      const batch = new RecordBatch()
      batch.add('a', Buffer.from('ok'), null, 0)
      batch.add('b', Buffer.from('ok'), null, 0)
      const length = nth(batch.index, 1 * 8 + 4)
      batch.index[1 * 8 + 4] = batch.data.length + 1
      assert.throws(() => send(producer, topic, batch), RangeError)
      batch.index[1 * 8 + 4] = length
      batch.index[1 * 8] = Number.NaN
      assert.throws(() => send(producer, topic, batch), RangeError, 'a partition that is not a number')
    } finally {
      await disconnect(producer)
    }
    assert.equal((await readAll(topic, 1)).length, 0)
  })
})
