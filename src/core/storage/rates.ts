import {callGroupReadOnly, type AdminClient} from '../kafka/client.js'
import {offsetsForTime, watermarks} from '../kafka/offsets.js'
import {type Message, readRanges} from '../kafka/range-reader.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'
import {BugError, invalidArgument, UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {isoTime} from '../shared/time.js'

/**
 * `topic rates`: how fast a topic is written, and read by a consumer group, per partition.
 *
 * Live rates come from a window: the high watermarks (and the group's committed offsets) at its
 * start and at its end. Records written = the difference of the watermarks, so the count is exact.
 * Bytes written are the sizes (key + value + headers, as producers sent them, before compression)
 * of exactly those records, read back once the window closes: the client library has no
 * DescribeLogDirs, and log dir sizes would in any case move in segment steps and with retention.
 * Records read by a group = the difference of its committed offsets, which is what it has
 * acknowledged (a consumer that commits every few seconds shows its reads in steps).
 *
 * History counts how many offsets each partition took per time bucket, from offsets by time at
 * every bucket edge: exact for a log whose CreateTimes grow with the offsets (a delivery_log);
 * where compaction removed records since, the offsets it left empty are still counted.
 */
export interface GroupPartitionRate {
  committedStart: number | null
  committedEnd: number | null
  /** Offsets committed during the window; null where the group had no commit at start or end. */
  read: number | null
  readPerSecond: number | null
  /** High watermark minus committed offset at the end of the window. */
  lag: number | null
}

export interface PartitionRate {
  partition: number
  highStart: number
  highEnd: number
  records: number
  recordsPerSecond: number
  /** Null when bytes were not measured (--no-bytes). */
  bytes: number | null
  bytesPerSecond: number | null
  group?: GroupPartitionRate
}

export interface RatesSample {
  topic: string
  group?: string
  from: string
  to: string
  seconds: number
  /** What bytes/s is measured from, or why it is not. */
  bytesSource: string
  partitions: PartitionRate[]
  total: {
    records: number
    recordsPerSecond: number
    bytes: number | null
    bytesPerSecond: number | null
    read: number | null
    readPerSecond: number | null
    lag: number | null
  }
}

export interface RatesOptions {
  topic: string
  group?: string
  /** Read the window's records back to measure bytes/s. */
  bytes: boolean
}

export interface RatesWindow {
  /** Ends the window now and measures it. */
  close(): Promise<RatesSample>
}

const BYTES_MEASURED =
  'key + value + header bytes of the records written in the window, read back (uncompressed, as produced)'
const BYTES_SKIPPED = 'not measured (--no-bytes)'

interface Marks {
  at: number
  high: Map<number, number>
  committed?: Map<number, number | null>
}

export async function openRatesWindow(settings: Settings, options: RatesOptions): Promise<RatesWindow> {
  const partitions = await withAdmin(settings, async (admin) =>
    (await topicMetadata(settings, admin, options.topic)).partitions.map((partition) => partition.partition),
  )
  const start = await marksNow(settings, options, partitions)
  if (options.group !== undefined && [...start.committed!.values()].every((offset) => offset === null)) {
    throw new UserError(
      'GROUP_NOT_FOUND',
      `consumer group '${options.group}' has no committed offsets for topic '${options.topic}'`,
      'check the group name; a group shows read rates once it has committed offsets for the topic',
    )
  }
  return {
    close: async () => measure(settings, options, partitions, start, await marksNow(settings, options, partitions)),
  }
}

/** Back-to-back windows of `intervalMs` (each starts where the last ended), until `count` or the signal. */
export async function* watchRates(
  settings: Settings,
  options: RatesOptions & {intervalMs: number; count?: number; signal?: AbortSignal},
): AsyncGenerator<RatesSample> {
  if (options.intervalMs < 100)
    throw invalidArgument(`--interval must be at least 100ms, got ${options.intervalMs}ms`, 'use e.g. --interval 5s')
  if (options.count !== undefined && options.count <= 0)
    throw invalidArgument(`--count must be 1 or more, got ${options.count}`, 'leave it out to watch until interrupted')
  let window = await openRatesWindow(settings, options)
  let windowEnds = Date.now() + options.intervalMs
  for (let taken = 0; options.count === undefined || taken < options.count; taken++) {
    if (!(await sleepUntil(windowEnds, options.signal))) return
    const {sample, next} = await closeAndReopen(settings, options, window)
    window = next
    windowEnds += options.intervalMs
    yield sample
  }
}

async function closeAndReopen(
  settings: Settings,
  options: RatesOptions,
  window: RatesWindow,
): Promise<{sample: RatesSample; next: RatesWindow}> {
  const sample = await window.close()
  // The next window starts at this one's end marks, so no record falls between two samples.
  const partitions = sample.partitions.map((rate) => rate.partition)
  const start: Marks = {
    at: Date.parse(sample.to),
    high: new Map(sample.partitions.map((rate) => [rate.partition, rate.highEnd])),
    ...(options.group === undefined
      ? {}
      : {committed: new Map(sample.partitions.map((rate) => [rate.partition, rate.group?.committedEnd ?? null]))}),
  }
  return {
    sample,
    next: {
      close: async () => measure(settings, options, partitions, start, await marksNow(settings, options, partitions)),
    },
  }
}

function sleepUntil(time: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false)
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', stop)
        resolve(true)
      },
      Math.max(0, time - Date.now()),
    )
    const stop = () => {
      clearTimeout(timer)
      resolve(false)
    }
    signal?.addEventListener('abort', stop, {once: true})
  })
}

async function marksNow(settings: Settings, options: RatesOptions, partitions: number[]): Promise<Marks> {
  return withAdmin(settings, async (admin) => {
    // Committed offsets first: a group can then never look ahead of the high watermark it is compared with.
    const committed =
      options.group === undefined
        ? undefined
        : await committedOffsets(settings, admin, options.group, options.topic, partitions)
    const at = Date.now()
    const marks = await watermarks(settings, admin, options.topic, partitions)
    return {at, high: new Map(marks.map((mark) => [mark.partition, mark.high])), ...(committed ? {committed} : {})}
  })
}

async function committedOffsets(
  settings: Settings,
  admin: AdminClient,
  group: string,
  topic: string,
  partitions: number[],
): Promise<Map<number, number | null>> {
  const [result] = await callGroupReadOnly<
    {groupId: string; error?: unknown; partitions: {topic: string; partition: number; offset: number}[]}[]
  >(
    settings,
    (results) => results[0]?.error,
    (cb, timeout) =>
      admin.listConsumerGroupOffsets(
        [{groupId: group, partitions: partitions.map((partition) => ({topic, partition}))}],
        {timeout},
        cb as never,
      ),
  )
  if (!result)
    throw new UserError(
      'KAFKA_REJECTED',
      `Kafka returned no committed offsets for group '${group}'`,
      'check the broker log',
    )
  const byPartition = new Map(
    result.partitions
      .filter((entry) => entry.topic === topic)
      .map((entry) => [entry.partition, entry.offset >= 0 ? entry.offset : null]),
  )
  return new Map(partitions.map((partition) => [partition, byPartition.get(partition) ?? null]))
}

async function measure(
  settings: Settings,
  options: RatesOptions,
  partitions: number[],
  start: Marks,
  end: Marks,
): Promise<RatesSample> {
  const seconds = Math.max(0.001, (end.at - start.at) / 1000)
  const ranges = partitions.map((partition) => {
    const [from, to] = [start.high.get(partition), end.high.get(partition)]
    if (from === undefined || to === undefined) throw new BugError(`partition ${partition} lacks a high watermark`)
    return {partition, start: from, end: to}
  })
  const bytes = options.bytes ? await bytesWritten(settings, options.topic, ranges) : undefined
  const perSecond = (value: number | null) => (value === null ? null : round(value / seconds))

  const rates: PartitionRate[] = ranges.map((range) => {
    const records = Math.max(0, range.end - range.start)
    const partitionBytes = bytes ? (bytes.get(range.partition) ?? 0) : null
    const rate: PartitionRate = {
      partition: range.partition,
      highStart: range.start,
      highEnd: range.end,
      records,
      recordsPerSecond: round(records / seconds),
      bytes: partitionBytes,
      bytesPerSecond: perSecond(partitionBytes),
    }
    if (options.group !== undefined) {
      const committedStart = start.committed?.get(range.partition) ?? null
      const committedEnd = end.committed?.get(range.partition) ?? null
      const read = committedStart === null || committedEnd === null ? null : committedEnd - committedStart
      rate.group = {
        committedStart,
        committedEnd,
        read,
        readPerSecond: perSecond(read),
        lag: committedEnd === null ? null : Math.max(0, range.end - committedEnd),
      }
    }
    return rate
  })

  const sum = (values: (number | null)[]) =>
    values.every((value) => value === null) ? null : values.reduce<number>((total, value) => total + (value ?? 0), 0)
  const totalRecords = rates.reduce((total, rate) => total + rate.records, 0)
  const totalBytes = bytes ? sum(rates.map((rate) => rate.bytes)) : null
  const read = sum(rates.map((rate) => rate.group?.read ?? null))
  return {
    topic: options.topic,
    ...(options.group === undefined ? {} : {group: options.group}),
    from: isoTime(start.at),
    to: isoTime(end.at),
    seconds: round(seconds),
    bytesSource: options.bytes ? BYTES_MEASURED : BYTES_SKIPPED,
    partitions: rates,
    total: {
      records: totalRecords,
      recordsPerSecond: round(totalRecords / seconds),
      bytes: totalBytes,
      bytesPerSecond: perSecond(totalBytes),
      read,
      readPerSecond: perSecond(read),
      lag: sum(rates.map((rate) => rate.group?.lag ?? null)),
    },
  }
}

async function bytesWritten(
  settings: Settings,
  topic: string,
  ranges: {partition: number; start: number; end: number}[],
): Promise<Map<number, number>> {
  const bytes = new Map<number, number>()
  for await (const batch of readRanges(settings, topic, ranges)) {
    for (const message of batch) bytes.set(message.partition, (bytes.get(message.partition) ?? 0) + recordSize(message))
  }
  return bytes
}

function recordSize(message: Message): number {
  let size =
    (message.value?.length ?? 0) +
    (Buffer.isBuffer(message.key)
      ? message.key.length
      : typeof message.key === 'string'
        ? Buffer.byteLength(message.key)
        : 0)
  for (const header of message.headers ?? []) {
    for (const [name, value] of Object.entries(header))
      size += Buffer.byteLength(name) + (Buffer.isBuffer(value) ? value.length : Buffer.byteLength(String(value)))
  }
  return size
}

function round(value: number): number {
  return Math.round(value * 100) / 100
}

export interface HistoryBucket {
  start: string
  end: string
  /** The bucket still running: it ends now, not at its full width. */
  partial: boolean
  records: number
  /** Records per partition, in the order of RateHistory.partitions. */
  byPartition: number[]
}

export interface RateHistory {
  topic: string
  bucketMs: number
  from: string
  to: string
  partitions: number[]
  buckets: HistoryBucket[]
  total: number
}

const MAX_BUCKETS = 1000

/**
 * Buckets are aligned to multiples of their width since the epoch (1h buckets start on UTC hours),
 * the last being the one running now; `historyMs` says how far back the first reaches.
 */
export async function rateHistory(
  settings: Settings,
  options: {topic: string; historyMs: number; bucketMs: number; now?: number},
): Promise<RateHistory> {
  if (options.bucketMs <= 0) throw invalidArgument('--bucket must be longer than 0', 'use e.g. --bucket 1h')
  if (options.historyMs < options.bucketMs)
    throw invalidArgument(`--history must be at least one --bucket long`, 'use e.g. --history 24h --bucket 1h')
  const count = Math.ceil(options.historyMs / options.bucketMs)
  if (count > MAX_BUCKETS)
    throw invalidArgument(
      `--history ${options.historyMs / options.bucketMs} buckets long is more than ${MAX_BUCKETS}`,
      'choose a wider --bucket or a shorter --history',
    )
  const now = options.now ?? Date.now()
  const lastStart = Math.floor(now / options.bucketMs) * options.bucketMs
  const firstStart = lastStart - (count - 1) * options.bucketMs
  const edges = Array.from({length: count}, (_, index) => firstStart + index * options.bucketMs)
  edges.push(now)

  return withAdmin(settings, async (admin) => {
    const partitions = (await topicMetadata(settings, admin, options.topic)).partitions.map(
      (partition) => partition.partition,
    )
    const offsets: number[][] = new Array(edges.length)
    // A few ListOffsets requests at a time: one per edge, each asking every partition at once.
    const concurrency = 8
    for (let first = 0; first < edges.length; first += concurrency) {
      const batch = edges.slice(first, first + concurrency)
      const found = await Promise.all(
        batch.map((edge) => offsetsForTime(settings, admin, options.topic, partitions, edge)),
      )
      found.forEach((result, index) => (offsets[first + index] = result.map((entry) => entry.offset)))
    }
    const buckets = edges.slice(0, -1).map((start, index) => {
      const [end, before, after] = [edges[index + 1], offsets[index], offsets[index + 1]]
      if (end === undefined || !before || !after) throw new BugError(`bucket ${index} lacks its end or its offsets`)
      const byPartition = before.map((offset, position) => Math.max(0, (after[position] ?? offset) - offset))
      return {
        start: isoTime(start),
        end: isoTime(end),
        partial: index === count - 1,
        records: byPartition.reduce((total, records) => total + records, 0),
        byPartition,
      }
    })
    return {
      topic: options.topic,
      bucketMs: options.bucketMs,
      from: isoTime(firstStart),
      to: isoTime(now),
      partitions,
      buckets,
      total: buckets.reduce((total, bucket) => total + bucket.records, 0),
    }
  })
}
