import {invalidArgument, UserError} from '../shared/errors.js'
import {offsetsForTime, watermarks} from './offsets.js'
import {type Partitioner, partitionFor} from './partitioner.js'
import {type Consumer, disconnect} from './client.js'
import {
  connectRangeConsumer,
  type Message,
  type PackedRecords,
  type PartitionRange,
  readPackedRanges,
} from './range-reader.js'
import type {Settings} from '../shared/settings.js'
import {topicMetadata, withAdmin} from './topics.js'

/**
 * `log read`: bounded reads. Each partition's range is fixed before the first fetch:
 *   start  --from-offset O (negative: O records before the end, like kcat -o -N), --since T
 *          (the first record at or after T), or the low watermark
 *   end    --to-offset O (exclusive), --until T (exclusive), capped at the high watermark seen at
 *          start, so a read always ends even while producers keep writing
 * With --key only the key's partition is read and only that key's records are kept.
 *
 * --follow (`follow`) lifts the high watermark cap: the read waits at the end for new records
 * until it is stopped (its signal), or until --to-offset, --until or --max is reached. An --until
 * the log already holds a record at or after ends each partition there as without --follow; a
 * later one ends a partition at the first record read at or after it (with --key: of that key).
 */
export interface ReadPlanOptions {
  topic: string
  partition?: number
  key?: string
  partitioner: Partitioner
  fromOffset?: number
  since?: number
  toOffset?: number
  until?: number
  follow?: boolean
}

export interface ReadPlan {
  topic: string
  key?: string
  /** end: Infinity for a partition read until stopped (--follow) */
  ranges: PartitionRange[]
  /** --follow: the read continues past the high watermark seen at start */
  follow?: boolean
  /** --follow with an --until not yet reached in some partition: a record at or after it ends its partition */
  until?: number
}

export interface ReadRecord {
  partition: number
  offset: number
  timestamp: number
  key: Buffer | null
  value: Buffer | null
  headers: {key: string; value: Buffer}[]
}

export async function planRead(settings: Settings, options: ReadPlanOptions): Promise<ReadPlan> {
  if (options.fromOffset !== undefined && options.since !== undefined)
    throw invalidArgument('--from-offset and --since both set the start', 'give only one of them')
  if (options.toOffset !== undefined && options.until !== undefined)
    throw invalidArgument('--to-offset and --until both set the end', 'give only one of them')
  if (options.partition !== undefined && options.key !== undefined)
    throw invalidArgument('--partition and --key both choose the partition', 'give only one of them')
  if (options.partition !== undefined && options.partition < 0)
    throw invalidArgument(
      `--partition must be 0 or more, got ${options.partition}`,
      'see `replayctl topic describe` for the partitions',
    )

  return withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, options.topic)
    const count = metadata.partitions.length
    let partitions = metadata.partitions.map((partition) => partition.partition)
    if (options.partition !== undefined) {
      if (options.partition >= count) {
        throw new UserError(
          'PARTITION_NOT_FOUND',
          `topic '${options.topic}' has no partition ${options.partition}`,
          `it has partitions 0..${count - 1}`,
        )
      }
      partitions = [options.partition]
    }
    if (options.key !== undefined) partitions = [partitionFor(options.key, count, options.partitioner)]

    const marks = await watermarks(settings, admin, options.topic, partitions)
    const sinceOffsets =
      options.since === undefined
        ? undefined
        : await offsetsForTime(settings, admin, options.topic, partitions, options.since)
    const untilOffsets =
      options.until === undefined
        ? undefined
        : await offsetsForTime(settings, admin, options.topic, partitions, options.until)

    // The three lists are answers for the same partitions, in the same order.
    const ranges = marks.map((mark, index) => {
      const [since, until] = [sinceOffsets?.[index], untilOffsets?.[index]]
      let start = mark.low
      if (options.fromOffset !== undefined)
        start =
          options.fromOffset < 0
            ? Math.max(mark.low, mark.high + options.fromOffset)
            : Math.max(mark.low, options.fromOffset)
      if (since) start = since.offset
      let end = options.follow ? Number.POSITIVE_INFINITY : mark.high
      if (options.toOffset !== undefined) end = Math.min(end, options.toOffset)
      // Not found (timestamp null): nothing at or after --until has been written yet.
      if (until && (!options.follow || until.timestamp !== null)) end = Math.min(end, until.offset)
      return {partition: mark.partition, start, end: Math.max(start, end)}
    })
    const untilLater = options.follow && untilOffsets?.some((found) => found.timestamp === null)
    return {
      topic: options.topic,
      ...(options.key === undefined ? {} : {key: options.key}),
      ranges,
      ...(options.follow ? {follow: true} : {}),
      ...(untilLater ? {until: options.until} : {}),
    }
  })
}

/**
 * The consumer for readRecords, connected ahead (e.g. while the plan is made), with less prefetched
 * than the range reader's default: a read of a whole topic of many partitions otherwise held 2 MB
 * fetches (8 MB of records once decompressed) and 4 MB queued, and peaked at 98-100 MiB RSS at
 * 300,000 records of 12 partitions and 102-107 MiB at 3,000,000. With these bounds: 89-93 and
 * 92-97 MiB, no slower on a loaded machine (issue #17). Replay scans keep the larger default.
 */
export function connectReadConsumer(settings: Settings): Promise<Consumer> {
  return connectRangeConsumer(settings, {
    'fetch.max.bytes': 1_048_576,
    'max.partition.fetch.bytes': 262_144,
    'queued.max.messages.kbytes': 1_024,
  })
}

/**
 * Yields the plan's records in packed batches (per-partition offset order), honouring --key
 * (filtered inside the client) and --max. A batch's buffers are reused once the next is asked
 * for: copy anything to keep. `consumer`: one connected ahead (connectReadConsumer), which the
 * read disconnects; `headers: false` for a caller that prints no headers.
 */
export async function* readRecords(
  settings: Settings,
  plan: ReadPlan,
  options: {max?: number; signal?: AbortSignal; consumer?: Promise<Consumer>; headers?: boolean} = {},
): AsyncGenerator<PackedRecords> {
  const key = plan.key === undefined ? undefined : Buffer.from(plan.key, 'utf8')
  let remaining = options.max ?? Number.POSITIVE_INFINITY
  if (remaining <= 0) {
    if (options.consumer) await disconnect(await options.consumer)
    return
  }
  const abort = new AbortController()
  const stop = () => abort.abort()
  options.signal?.addEventListener('abort', stop)
  try {
    for await (const records of readPackedRanges(settings, plan.topic, plan.ranges, {
      signal: abort.signal,
      key,
      consumer: options.consumer,
      headers: options.headers,
      follow: plan.follow,
      until: plan.until,
    })) {
      const indexes = records.indexes.length > remaining ? records.indexes.subarray(0, remaining) : records.indexes
      remaining -= indexes.length
      yield {batch: records.batch, indexes}
      if (remaining <= 0) break
    }
  } finally {
    options.signal?.removeEventListener('abort', stop)
  }
}

export function toReadRecord(message: Message): ReadRecord {
  return {
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp ?? -1,
    key: message.key === undefined || message.key === null ? null : Buffer.from(message.key as Buffer),
    value: message.value ?? null,
    headers: (message.headers ?? []).flatMap((header) =>
      Object.entries(header).map(([name, value]) => ({
        key: name,
        value: Buffer.isBuffer(value) ? value : Buffer.from(String(value)),
      })),
    ),
  }
}
