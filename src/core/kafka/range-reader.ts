import {
  connectConsumer,
  disconnect,
  kafkaError,
  type Consumer,
  type Message,
  type PackedMessageBatch,
} from './client.js'
import {BugError, UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'

/**
 * Reads fixed offset ranges [start, end) of a topic's partitions and always ends.
 *
 * The consumer is assigned the partitions directly (no group, no rebalancing, nothing committed)
 * and fetches large batches. A partition is finished when any of these is seen:
 *   - a record at or past `end - 1`           (the normal case)
 *   - the consumer's position at or past `end` (compaction or transaction markers left a gap
 *                                               right before `end`: no record will have end - 1)
 *   - end of partition (EOF)                  (`end` lies beyond what the log holds; read-committed
 *                                               consumers see EOF at the last stable offset)
 * so empty, compacted and transactional ranges end as surely as plain ones.
 *
 * Batches come from the client's packed consume (patches/: one buffer per batch, built on the
 * consume worker thread), and the next batch is fetched while the caller works on this one. A
 * `key` filter is applied inside the client: other keys' records are never copied out of
 * librdkafka, which is what makes scanning a quiet webhook's partition cheap. Keys and values are
 * views into their batch's buffer: copy one to keep it long after the batch.
 *
 * librdkafka's prefetch queue is bounded (see PREFETCH) so a long read holds a few batches in
 * memory, not the partition.
 */
export interface PartitionRange {
  partition: number
  /** First offset to read. */
  start: number
  /** First offset not to read. */
  end: number
}

export interface RangeReaderOptions {
  /** Records per consume call (default 2000): a batch is one native call and one buffer. */
  batchSize?: number
  signal?: AbortSignal
  consumerConfig?: Record<string, string | number | boolean>
  /** Yield only records whose key is exactly these bytes (null keys never match). */
  key?: Buffer
  /** false: records come without their headers, which then cost librdkafka nothing to parse. */
  headers?: boolean
  /**
   * After each batch (once the caller is done with what was yielded for it): the partition has
   * been read up to `nextOffset` (exclusive), matching records or not. With `key` set, this is the
   * only sign of progress through stretches without a match.
   */
  onScanned?: (partition: number, nextOffset: number) => void
  /**
   * A consumer from connectRangeConsumer (or its connect still under way) to read with instead of
   * connecting one; the reader disconnects it when done, like its own.
   */
  consumer?: Consumer | Promise<Consumer>
  /**
   * Keep reading at the end of the log (`log read --follow`): end of partition does not finish a
   * range; only its `end` (which may be Infinity), `until` or the signal do.
   */
  follow?: boolean
  /** A record with a CreateTime at or after this ends its partition there (not read). */
  until?: number
}

export type {Message, PackedMessageBatch}

/**
 * The records of one batch a range kept, left packed: `batch.value(i)`, `batch.offset(i)`, ...
 * for each i of `indexes`, in order. The batch's buffers are written over by a later batch, so
 * nothing of it may be used once the caller asks for the next one (copy what must be kept).
 */
export interface PackedRecords {
  batch: PackedMessageBatch
  indexes: Uint32Array
}

/**
 * Prefetch bounds: fetches of at most 2 MB, 512 KB per partition, and up to 4 MB of records queued.
 * librdkafka decompresses a whole fetch response before it queues any of it (1 MB of snappy is ~4
 * MB of these records), so a partition's fetches are kept small: the next one is decompressed on
 * librdkafka's thread while the consume worker packs the last. With 4 MB per partition the two
 * took turns (300,000 records of one partition: 0.52-0.58 s CPU and 0.80-0.90 s in the bare
 * consume loop, against 0.32-0.43 s and 0.49-0.87 s with 1 MB, and 20 MB less resident memory).
 * Halving 1 MB / 8 MB queued to these took a whole `log read` of them from 103-107 MB peak RSS to
 * 96-98 MB, no slower (bench/RESULTS.md, issue #17).
 */
const PREFETCH = {
  'fetch.max.bytes': 2_097_152,
  'max.partition.fetch.bytes': 524_288,
  'queued.min.messages': 20_000,
  'queued.max.messages.kbytes': 4_096,
}

/**
 * One batch of a single partition's read: what the filter kept, and how far the read got.
 * `scanned` is the number of records the client consumed for this batch below the range's end,
 * kept or filtered out (exact; the one batch that crosses the end subtracts the offsets past the
 * end, which under-counts only where compaction left gaps there).
 */
export interface ScannedBatch {
  /** the records kept (all of them, or only those with the key), in offset order */
  messages: Message[]
  /** every offset below this was read; nothing kept lies between the messages and it */
  scannedTo: number
  /** records read for this batch */
  scanned: number
}

export async function* readRanges(
  settings: Settings,
  topic: string,
  ranges: PartitionRange[],
  options: RangeReaderOptions = {},
): AsyncGenerator<Message[]> {
  for await (const batch of readBatches(settings, topic, ranges, options)) {
    if (batch.kept.length) yield keptMessages(batch)
    if (options.onScanned)
      for (const progress of batch.progress) options.onScanned(progress.partition, progress.nextOffset)
  }
}

/**
 * One partition's range as ScannedBatch: every batch is yielded, with or without kept records,
 * so a caller filtering by key still sees the read move through stretches without a match.
 */
export async function* readScanned(
  settings: Settings,
  topic: string,
  range: PartitionRange,
  options: Omit<RangeReaderOptions, 'onScanned'> = {},
): AsyncGenerator<ScannedBatch> {
  let scannedTo = range.start
  for await (const batch of readBatches(settings, topic, [range], options)) {
    let scanned = 0
    for (const progress of batch.progress) {
      scannedTo = Math.max(scannedTo, progress.nextOffset)
      scanned += progress.count
    }
    yield {messages: keptMessages(batch), scannedTo, scanned}
  }
}

/**
 * Like readRanges, but the records stay in their packed batch (no object per record), and the
 * batch's buffers are reused for the batch after next: the read holds a fixed few buffers rather
 * than one per batch until the garbage collector gets to it. Nothing yielded may be used after
 * the caller asks for the next batch.
 */
export async function* readPackedRanges(
  settings: Settings,
  topic: string,
  ranges: PartitionRange[],
  options: Omit<RangeReaderOptions, 'onScanned'> = {},
): AsyncGenerator<PackedRecords> {
  for await (const batch of readBatches(settings, topic, ranges, {...options, recycle: true})) {
    if (batch.kept.length) yield {batch: batch.batch, indexes: batch.kept}
  }
}

/**
 * The consumer readRanges would connect, connected ahead (e.g. while the ranges are still being
 * planned) and handed to it with `consumer`.
 */
export function connectRangeConsumer(
  settings: Settings,
  consumerConfig: RangeReaderOptions['consumerConfig'] = {},
): Promise<Consumer> {
  return connectConsumer(settings, {
    ...PREFETCH,
    // librdkafka waits this long before fetching again once its queue was over the thresholds
    // (default 1 s); a reader that drains the queue quickly would sit idle for most of that.
    'fetch.queue.backoff.ms': 1,
    ...consumerConfig,
  })
}

interface PackedProgress {
  partition: number
  nextOffset: number
  count: number
}

interface ReadBatch {
  batch: PackedMessageBatch
  /** indexes into batch of the records below their range's end */
  kept: Uint32Array
  progress: PackedProgress[]
}

/** The kept records as objects (their keys and values views into the batch). */
function keptMessages(read: ReadBatch): Message[] {
  return Array.from(read.kept, (index) => read.batch.message(index))
}

async function* readBatches(
  settings: Settings,
  topic: string,
  ranges: PartitionRange[],
  options: Omit<RangeReaderOptions, 'onScanned'> & {recycle?: boolean},
): AsyncGenerator<ReadBatch> {
  // Copies: `until` moves a range's end to where it is reached.
  const open = new Map(ranges.filter((range) => range.end > range.start).map((range) => [range.partition, {...range}]))
  if (open.size === 0) {
    if (options.consumer) await disconnect(await options.consumer)
    return
  }

  const consumer = await (options.consumer ?? connectRangeConsumer(settings, options.consumerConfig))
  // Return a batch as soon as the fetched queue runs dry instead of waiting out the timeout for
  // every missing message of the batch (which stalls each batch and the end of every range).
  ;(
    consumer as unknown as {setDefaultIsTimeoutOnlyForFirstMessage(value: boolean): void}
  ).setDefaultIsTimeoutOnlyForFirstMessage(true)
  consumer.setDefaultConsumeTimeout(200)
  const finished = new Set<number>()
  if (!options.follow) consumer.on('partition.eof', (eof: {partition: number}) => finished.add(eof.partition))
  const batchSize = options.batchSize ?? 2_000
  // With recycle, the previous batch is done with once the caller asks for the next: the batch
  // after the one being handed over is written into its buffers.
  let done: PackedMessageBatch | undefined
  let yielded: PackedMessageBatch | undefined
  const fetch = () => {
    const reuse = done
    done = undefined
    return consumePacked(settings, consumer, batchSize, topic, {
      keyFilter: options.key ?? null,
      reuse: reuse ?? null,
      headers: options.headers ?? true,
    })
  }
  let inFlight: Promise<PackedMessageBatch> | undefined
  try {
    assertPatchedBuild(consumer)
    consumer.assign([...open.values()].map((range) => ({topic, partition: range.partition, offset: range.start})))
    inFlight = fetch()
    while (open.size > 0 && !options.signal?.aborted) {
      if (!inFlight) throw new BugError('the next packed batch was not requested')
      const batch = await inFlight
      inFlight = undefined
      if (options.recycle) {
        done = yielded
        yielded = batch
      }
      if (options.until !== undefined) endAtTime(batch, open, options.until, finished)
      const progress: PackedProgress[] = []
      for (const scanned of batch.scanned) {
        const range = open.get(scanned.partition)
        if (!range) continue
        if (scanned.lastOffset + 1 >= range.end) finished.add(scanned.partition)
        const pastEnd = Math.max(0, scanned.lastOffset + 1 - range.end)
        progress.push({
          partition: scanned.partition,
          nextOffset: Math.min(scanned.lastOffset + 1, range.end),
          count: Math.max(0, scanned.count - pastEnd),
        })
      }
      const kept = keptIndexes(batch, open)
      if (batch.scanned.length === 0 || finished.size > 0) closeFinished(consumer, topic, open, finished)
      // Fetch the next batch on the worker thread while the caller handles this one.
      if (open.size > 0 && !options.signal?.aborted) inFlight = fetch()
      if (kept.length || progress.length) yield {batch, kept, progress}
    }
  } finally {
    // The consume call must be over before the consumer is closed under it.
    await inFlight?.catch(() => {})
    await disconnect(consumer)
  }
}

/** Indexes of the batch's records below their range's end (all of them but at a range's end). */
function keptIndexes(batch: PackedMessageBatch, open: Map<number, PartitionRange>): Uint32Array {
  const kept = new Uint32Array(batch.length)
  let count = 0
  for (let index = 0; index < batch.length; index++) {
    const range = open.get(batch.partition(index))
    if (range && batch.offset(index) < range.end) kept[count++] = index
  }
  return count === kept.length ? kept : kept.subarray(0, count)
}

/** Ends each partition at its first record in the batch with a CreateTime at or after `until`. */
function endAtTime(
  batch: PackedMessageBatch,
  open: Map<number, PartitionRange>,
  until: number,
  finished: Set<number>,
): void {
  for (let index = 0; index < batch.length; index++) {
    const range = open.get(batch.partition(index))
    const offset = batch.offset(index)
    if (range && offset < range.end && batch.timestamp(index) >= until) {
      range.end = Math.max(range.start, offset)
      finished.add(range.partition)
    }
  }
}

function closeFinished(
  consumer: Consumer,
  topic: string,
  open: Map<number, PartitionRange>,
  finished: Set<number>,
): void {
  const positions = consumer.position([...open.keys()].map((partition) => ({topic, partition})))
  for (const position of positions) {
    if (position.offset !== undefined && position.offset >= 0 && position.offset >= open.get(position.partition)!.end)
      finished.add(position.partition)
  }
  const done = [...finished].filter((partition) => open.has(partition))
  if (done.length === 0) return
  for (const partition of done) open.delete(partition)
  consumer.pause(done.map((partition) => ({topic, partition})))
}

function consumePacked(
  settings: Settings,
  consumer: Consumer,
  size: number,
  topic: string,
  options: {keyFilter: Buffer | null; reuse: PackedMessageBatch | null; headers: boolean},
): Promise<PackedMessageBatch> {
  return new Promise((resolve, reject) => {
    consumer.consumePacked(size, options, (error, batch) =>
      error ? reject(kafkaError(settings, error, topic)) : resolve(batch),
    )
  })
}

/** `npm ci` alone builds the client before patch-package patches it; scripts/setup.sh rebuilds. */
function assertPatchedBuild(consumer: Consumer): void {
  if (typeof (consumer as unknown as {_client?: {consumePacked?: unknown}})._client?.consumePacked === 'function')
    return
  throw new UserError(
    'DEPENDENCY_MISSING',
    "the Kafka client was built without replayctl's patch (patches/), so it cannot read in packed batches",
    'run scripts/setup.sh, which rebuilds @confluentinc/kafka-javascript after patch-package',
  )
}
