import assert from 'node:assert/strict'
import {createRequire} from 'node:module'
import {after, before, describe, it} from 'node:test'

import {
  connectConsumer,
  disconnect,
  loadNative,
  type Consumer,
  type Message,
  type PackedMessageBatch,
} from '../src/core/kafka/client.js'
import {readPackedRanges, readRanges} from '../src/core/kafka/range-reader.js'
import {UserError} from '../src/core/shared/errors.js'
import {deleteTopics, nth, produceStock, readToEnd, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * The client patch (patches/@confluentinc+kafka-javascript+1.10.1.patch): consumePacked must hand
 * over exactly what consume() does — every field of every record, null keys and values, empty
 * ones, headers (repeated names, empty and binary values), timestamps — and its key filter must
 * keep exactly the records with that key while counting the others. Checked on the real broker,
 * old path against new on the same offsets.
 */
const topic = uniqueName('packed')
const PARTITIONS = 2
const RECORDS = 3000
const base = Date.now() - 3_600_000

function recordFor(index: number): {
  key: Buffer | null
  value: Buffer | null
  headers?: {[name: string]: Buffer}[]
  timestamp: number
} {
  const key = index % 7 === 0 ? null : index % 11 === 0 ? Buffer.alloc(0) : Buffer.from(`key-${index % 5}`)
  const value =
    index % 13 === 0
      ? null
      : index % 17 === 0
        ? Buffer.alloc(0)
        : Buffer.from(JSON.stringify({index, text: 'é'.repeat(index % 50)}))
  const headers: {[name: string]: Buffer}[] | undefined =
    index % 3 === 0
      ? undefined
      : [{trace: Buffer.from(`t${index}`)}, {trace: Buffer.alloc(0)}, {bïnary: Buffer.from([0, 255, index % 256])}]
  return {key, value, ...(headers ? {headers} : {}), timestamp: base + index}
}

before(async () => {
  assert.equal((await runCli(['topic', 'create', topic, '--partitions', String(PARTITIONS), '--json'])).code, 0)
  await produceStock(topic, RECORDS, (index) => ({...recordFor(index), partition: index % PARTITIONS}))
})

after(async () => {
  await deleteTopics([topic])
})

const readAll = (consume: (consumer: Consumer) => Promise<Message[] | undefined>) =>
  readToEnd(topic, PARTITIONS, consume)

const oldPath = (consumer: Consumer) =>
  new Promise<Message[]>((resolve, reject) =>
    consumer.consume(700, (error, messages) => (error ? reject(error) : resolve(messages))),
  )
const packed = (consumer: Consumer, keyFilter?: Buffer) =>
  new Promise<PackedMessageBatch>((resolve, reject) =>
    consumer.consumePacked(700, {keyFilter: keyFilter ?? null}, (error, batch) =>
      error ? reject(error) : resolve(batch),
    ),
  )

/** Buffers compared by bytes, so views into a batch equal the copies consume() makes. */
function plain(message: Message): unknown {
  return JSON.parse(
    JSON.stringify(message, (_, value) =>
      value && value.type === 'Buffer' && Array.isArray(value.data)
        ? `bytes:${Buffer.from(value.data).toString('hex')}`
        : value,
    ),
  )
}

describe('consumePacked (client patch)', () => {
  it('is the patched build: the native method is there', async () => {
    const native = await loadNative()
    assert.equal(typeof (native.KafkaConsumer.prototype as {consumePacked?: unknown}).consumePacked, 'function')
    const consumer = await connectConsumer(testSettings())
    try {
      assert.equal(
        typeof (consumer as unknown as {_client: {consumePacked?: unknown}})._client.consumePacked,
        'function',
        'the native addon was built without the patch: rebuild it (scripts/setup.sh)',
      )
    } finally {
      await disconnect(consumer)
    }
  })

  it('a build without the patch makes reads stop with DEPENDENCY_MISSING, naming the fix', async () => {
    const binding = createRequire(import.meta.url)('@confluentinc/kafka-javascript/librdkafka.js') as {
      KafkaConsumer: {prototype: Record<string, unknown>}
    }
    const consumePacked = binding.KafkaConsumer.prototype.consumePacked
    delete binding.KafkaConsumer.prototype.consumePacked
    try {
      await assert.rejects(
        async () => {
          for await (const batch of readRanges(testSettings(), topic, [{partition: 0, start: 0, end: 10}]))
            assert.fail(`read ${batch.length} records`)
        },
        (error: unknown) =>
          error instanceof UserError &&
          error.code === 'DEPENDENCY_MISSING' &&
          /scripts\/setup\.sh/.test(error.fix ?? ''),
      )
    } finally {
      binding.KafkaConsumer.prototype.consumePacked = consumePacked
    }
  })

  it('gives every field of every record exactly as consume() does', async () => {
    const expected = await readAll(oldPath)
    const actual = await readAll(async (consumer) => (await packed(consumer)).toMessages())
    assert.equal(expected.length, RECORDS)
    assert.equal(actual.length, RECORDS)
    for (let index = 0; index < RECORDS; index++) {
      assert.deepEqual(
        Object.keys(nth(actual, index)).sort(),
        Object.keys(nth(expected, index)).sort(),
        `fields of record ${index}`,
      )
      assert.deepEqual(plain(nth(actual, index)), plain(nth(expected, index)), `record ${index}`)
    }
    // The cases the data was built to cover did occur, as written.
    const byIndex = new Map(
      actual.map((message) => [
        JSON.parse(message.value?.length ? message.value.toString() : '{"index":-1}').index as number,
        message,
      ]),
    )
    const withNothing = actual.filter((message) => message.value === null && message.key === null)
    assert.ok(withNothing.length > 0)
    const sample = byIndex.get(1)!
    assert.equal(sample.timestamp, base + 1)
    assert.deepEqual(sample.key, Buffer.from('key-1'))
    assert.deepEqual(sample.headers, [
      {trace: Buffer.from('t1')},
      {trace: Buffer.alloc(0)},
      {bïnary: Buffer.from([0, 255, 1])},
    ])
    assert.equal(byIndex.get(3)!.headers, undefined)
    // Written with an empty key; both paths give null.
    assert.equal(byIndex.get(22)!.key, null)
  })

  it('with a key filter keeps exactly that key and counts what it skipped', async () => {
    const expected = (await readAll(oldPath)).filter(
      (message) =>
        message.key !== null && message.key !== undefined && Buffer.from('key-2').equals(message.key as Buffer),
    )
    let scanned = 0
    const lastOffsets = new Map<number, number>()
    const actual = await readAll(async (consumer) => {
      const batch = await packed(consumer, Buffer.from('key-2'))
      for (const partition of batch.scanned) {
        scanned += partition.count
        assert.ok(partition.lastOffset > (lastOffsets.get(partition.partition) ?? -1))
        lastOffsets.set(partition.partition, partition.lastOffset)
      }
      return batch.toMessages()
    })
    assert.ok(expected.length > 100)
    assert.deepEqual(actual.map(plain), expected.map(plain))
    assert.equal(scanned, RECORDS)
    // The client hands a key written empty back as null (on both paths): an empty filter matches
    // exactly what the old path's empty keys are, and never a null key.
    const emptyExpected = (await readAll(oldPath)).filter(
      (message) => message.key !== null && message.key !== undefined && (message.key as Buffer).length === 0,
    )
    const empty = await readAll(async (consumer) => (await packed(consumer, Buffer.alloc(0))).toMessages())
    assert.deepEqual(empty.map(plain), emptyExpected.map(plain))
  })

  it('with reuse writes a batch into the buffers of one handed back, and gives the same records', async () => {
    const expected = await readAll(oldPath)
    let previous: PackedMessageBatch | undefined
    let offered = 0
    let reused = 0
    const actual = await readAll(async (consumer) => {
      const buffers = previous ? new Set([previous.data.buffer, previous.index.buffer]) : new Set()
      const batch = await new Promise<PackedMessageBatch>((resolve, reject) =>
        consumer.consumePacked(700, {reuse: previous ?? null}, (error, next) =>
          error ? reject(error) : resolve(next),
        ),
      )
      if (previous) {
        offered++
        // Offered once only: a second offer could have two batches written into the same buffers.
        const again = previous
        assert.throws(() => consumer.consumePacked(700, {reuse: again}, () => {}), /already offered/)
        if (buffers.has(batch.data.buffer) && buffers.has(batch.index.buffer)) reused++
      }
      // Compared as copies: the next call writes over this batch's buffers.
      const copies = batch.toMessages().map(plain) as Message[]
      previous = batch
      return copies
    })
    assert.deepEqual(actual, expected.map(plain))
    assert.ok(offered >= 3, `offered ${offered} batches`)
    assert.ok(reused > 0, 'no batch was written into buffers handed back')
  })

  it('with headers: false gives the same records without their headers', async () => {
    const expected = (await readAll(oldPath)).map((message) => {
      const {headers, ...rest} = message
      assert.ok(headers === undefined || headers.length > 0)
      return plain(rest)
    })
    const actual = await readAll(async (consumer) => {
      const batch = await new Promise<PackedMessageBatch>((resolve, reject) =>
        consumer.consumePacked(700, {headers: false}, (error, next) => (error ? reject(error) : resolve(next))),
      )
      assert.equal(batch.headerIndex.length, 0)
      return batch.toMessages()
    })
    assert.deepEqual(actual.map(plain), expected)
  })

  it('reports a consumer error as consume() does, and never at the cost of records taken with it', async () => {
    // auto.offset.reset=error makes an offset past the end a consumer error event for its partition.
    const native = await loadNative()
    const outOfRange = async (
      assignment: {topic: string; partition: number; offset: number}[],
      consume: (consumer: Consumer) => Promise<string>,
    ) => {
      const consumer = new native.KafkaConsumer(
        {
          'bootstrap.servers': testSettings().brokers,
          'group.id': uniqueName('packed-error'),
          'enable.auto.commit': false,
          'enable.partition.eof': true,
        },
        {'auto.offset.reset': 'error'},
      )
      await new Promise<void>((resolve, reject) => consumer.connect({}, (error) => (error ? reject(error) : resolve())))
      consumer.setDefaultConsumeTimeout(200)
      consumer.assign(assignment)
      const outcomes: string[] = []
      try {
        for (let call = 0; call < 4; call++) outcomes.push(await consume(consumer))
      } finally {
        await disconnect(consumer)
      }
      return outcomes
    }
    const describeError = (error: {code: number; message: string}) => `error ${error.code}: ${error.message}`
    const stock = (consumer: Consumer) =>
      new Promise<string>((resolve) =>
        consumer.consume(700, (error, messages) =>
          resolve(error ? describeError(error) : `${messages.length} records`),
        ),
      )
    const packedCall = (consumer: Consumer) =>
      new Promise<string>((resolve) =>
        consumer.consumePacked(700, null, (error, batch) =>
          resolve(error ? describeError(error) : `${batch.length} records`),
        ),
      )

    const alone = [{topic, partition: 0, offset: 1_000_000}]
    const expected = await outOfRange(alone, stock)
    assert.match(nth(expected, 0), /^error -140: /)
    assert.deepEqual(await outOfRange(alone, packedCall), expected)

    // With records of another partition in the same calls, every record still arrives.
    const records = new Set<string>()
    await outOfRange([...alone, {topic, partition: 1, offset: 0}], async (consumer) => {
      const outcome = await new Promise<PackedMessageBatch | string>((resolve) =>
        consumer.consumePacked(700, null, (error, batch) => resolve(error ? describeError(error) : batch)),
      )
      if (typeof outcome === 'string') return outcome
      for (let index = 0; index < outcome.length; index++)
        records.add(`${outcome.partition(index)}:${outcome.offset(index)}`)
      return `${outcome.length} records`
    })
    assert.equal(records.size, RECORDS / PARTITIONS)
  })

  it('readRanges yields the same records as the old path, with and without a key, and reports progress', async () => {
    const expected = (await readAll(oldPath)).filter(
      (message) => message.partition === 1 && message.offset >= 100 && message.offset < 1200,
    )
    const settings = testSettings()
    const read = async (key?: Buffer) => {
      const messages: Message[] = []
      let scannedTo = 0
      for await (const batch of readRanges(settings, topic, [{partition: 1, start: 100, end: 1200}], {
        batchSize: 97,
        key,
        onScanned: (_, next) => (scannedTo = next),
      })) {
        // Views into a batch must stay valid after the next batch was fetched.
        messages.push(...batch)
      }
      return {messages, scannedTo}
    }
    const all = await read()
    assert.deepEqual(all.messages.map(plain), expected.map(plain))
    assert.equal(all.scannedTo, 1200)
    const keyed = await read(Buffer.from('key-4'))
    assert.deepEqual(
      keyed.messages.map(plain),
      expected.filter((message) => message.key && Buffer.from('key-4').equals(message.key as Buffer)).map(plain),
    )
    assert.equal(keyed.scannedTo, 1200)

    // readPackedRanges: the same records, left packed in batches whose buffers are reused.
    const packedRecords: unknown[] = []
    const buffers = new Set<ArrayBufferLike>()
    let batches = 0
    for await (const {batch, indexes} of readPackedRanges(settings, topic, [{partition: 1, start: 100, end: 1200}], {
      batchSize: 97,
    })) {
      batches++
      buffers.add(batch.data.buffer)
      for (const index of indexes) packedRecords.push(plain(batch.message(index)))
    }
    assert.deepEqual(packedRecords, expected.map(plain))
    assert.ok(buffers.size < batches, `${batches} batches in ${buffers.size} buffers`)
  })
})
