import {connectConsumer, disconnect, kafkaError, type Consumer, type Message} from './client.js'
import type {Settings} from '../shared/settings.js'

/**
 * Reads fixed offset ranges [start, end) of a topic's partitions and always ends.
 *
 * The consumer is assigned the partitions directly (no group, no rebalancing, nothing committed)
 * and fetches large batches. A partition is finished when any of these is seen:
 *   - a record at or past `end`               (the normal case)
 *   - the consumer's position at or past `end` (compaction or transaction markers left a gap
 *                                               right before `end`: no record will have end - 1)
 *   - end of partition (EOF)                  (`end` lies beyond what the log holds; read-committed
 *                                               consumers see EOF at the last stable offset)
 * so empty, compacted and transactional ranges end as surely as plain ones.
 */
export interface PartitionRange {
  partition: number
  /** First offset to read. */
  start: number
  /** First offset not to read. */
  end: number
}

export interface RangeReaderOptions {
  /** Records per consume call: large batches amortise the native call. */
  batchSize?: number
  signal?: AbortSignal
  consumerConfig?: Record<string, string | number | boolean>
}

export type {Message}

export async function* readRanges(settings: Settings, topic: string, ranges: PartitionRange[], options: RangeReaderOptions = {}): AsyncGenerator<Message[]> {
  const open = new Map(ranges.filter((range) => range.end > range.start).map((range) => [range.partition, range]))
  if (open.size === 0) return

  const consumer = await connectConsumer(settings, {
    'fetch.max.bytes': 52_428_800,
    'max.partition.fetch.bytes': 8_388_608,
    'queued.min.messages': 200_000,
    // librdkafka waits this long before fetching again once its queue was over the thresholds
    // (default 1 s); a reader that drains the queue quickly would sit idle for most of that.
    'fetch.queue.backoff.ms': 1,
    ...options.consumerConfig,
  })
  // Return a batch as soon as the fetched queue runs dry instead of waiting out the timeout for
  // every missing message of the batch (which stalls each batch and the end of every range).
  ;(consumer as unknown as {setDefaultIsTimeoutOnlyForFirstMessage(value: boolean): void}).setDefaultIsTimeoutOnlyForFirstMessage(true)
  consumer.setDefaultConsumeTimeout(200)
  const finished = new Set<number>()
  consumer.on('partition.eof', (eof: {partition: number}) => finished.add(eof.partition))
  try {
    consumer.assign([...open.values()].map((range) => ({topic, partition: range.partition, offset: range.start})))
    const batchSize = options.batchSize ?? 10_000
    while (open.size > 0 && !options.signal?.aborted) {
      const messages = await consumeBatch(settings, consumer, batchSize, topic)
      const kept = messages.filter((message) => {
        const range = open.get(message.partition)
        if (!range) return false
        if (message.offset < range.end) return true
        finished.add(message.partition)
        return false
      })
      if (kept.length) yield kept
      if (messages.length === 0 || finished.size > 0) closeFinished(consumer, topic, open, finished)
    }
  } finally {
    await disconnect(consumer)
  }
}

function closeFinished(consumer: Consumer, topic: string, open: Map<number, PartitionRange>, finished: Set<number>): void {
  const positions = consumer.position([...open.keys()].map((partition) => ({topic, partition})))
  for (const position of positions) {
    if (position.offset !== undefined && position.offset >= 0 && position.offset >= open.get(position.partition)!.end) finished.add(position.partition)
  }
  const done = [...finished].filter((partition) => open.has(partition))
  if (done.length === 0) return
  for (const partition of done) open.delete(partition)
  consumer.pause(done.map((partition) => ({topic, partition})))
}

function consumeBatch(settings: Settings, consumer: Consumer, size: number, topic: string): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    consumer.consume(size, (error, messages) => (error ? reject(kafkaError(settings, error, topic)) : resolve(messages)))
  })
}
