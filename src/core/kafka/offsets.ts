import {BugError} from '../shared/errors.js'
import {callReadOnly, loadAdmin, type AdminClient} from './client.js'
import type {Settings} from '../shared/settings.js'
import {readRanges} from './range-reader.js'

/**
 * Offsets, asked of the partition leaders with one ListOffsets request per broker.
 *
 *   low watermark   the first offset still in the log (retention and compaction move it up)
 *   high watermark  the offset the next record will get; a bounded read ends here
 *   offset for time the first offset whose record timestamp is >= the time; when no record is that
 *                   late, the high watermark (nothing at or after the time has been written yet)
 */
export interface Watermarks {
  partition: number
  low: number
  high: number
}

export interface OffsetForTime {
  partition: number
  offset: number
  /** Timestamp of the record at `offset`; null when no record is at or after the time. */
  timestamp: number | null
}

export async function watermarks(
  settings: Settings,
  admin: AdminClient,
  topic: string,
  partitions: number[],
): Promise<Watermarks[]> {
  const api = await loadAdmin()
  const [low, high] = await Promise.all([
    listOffsets(settings, admin, topic, partitions, api.OffsetSpec.EARLIEST),
    listOffsets(settings, admin, topic, partitions, api.OffsetSpec.LATEST),
  ])
  return partitions.map((partition) => ({
    partition,
    low: low(partition).offset,
    high: high(partition).offset,
  }))
}

export async function offsetsForTime(
  settings: Settings,
  admin: AdminClient,
  topic: string,
  partitions: number[],
  time: number,
): Promise<OffsetForTime[]> {
  const api = await loadAdmin()
  const [found, high] = await Promise.all([
    listOffsets(settings, admin, topic, partitions, new api.OffsetSpec(time)),
    listOffsets(settings, admin, topic, partitions, api.OffsetSpec.LATEST),
  ])
  return partitions.map((partition) => {
    const hit = found(partition)
    return hit.offset >= 0
      ? {partition, offset: hit.offset, timestamp: hit.timestamp >= 0 ? hit.timestamp : null}
      : {partition, offset: high(partition).offset, timestamp: null}
  })
}

/**
 * The partitions holding no record from at or before `time`: empty, or their oldest record (at the
 * low watermark) is later. Answered by ListOffsets alone (the first offset after `time` is the low
 * watermark, or nothing is after it and the partition is empty), so unlike oldestRecords no
 * consumer is connected and nothing is fetched: two round trips on a connected admin client.
 */
export async function partitionsYoungerThan(
  settings: Settings,
  admin: AdminClient,
  topic: string,
  partitions: number[],
  time: number,
): Promise<number[]> {
  const api = await loadAdmin()
  const [low, after] = await Promise.all([
    listOffsets(settings, admin, topic, partitions, api.OffsetSpec.EARLIEST),
    offsetsForTime(settings, admin, topic, partitions, time + 1),
  ])
  return after.filter((found) => found.offset <= low(found.partition).offset).map((found) => found.partition)
}

/** The answer per partition; every partition asked for is answered (or the whole request fails). */
async function listOffsets(settings: Settings, admin: AdminClient, topic: string, partitions: number[], spec: unknown) {
  const results = await callReadOnly<{partition: number; offset: number; timestamp: number}[]>(
    settings,
    topic,
    (cb, timeout) =>
      admin.listOffsets(
        partitions.map((partition) => ({topic, partition, offset: spec as never})),
        {timeout},
        cb as never,
      ),
  )
  const byPartition = new Map(results.map((result) => [result.partition, result]))
  return (partition: number) => {
    const result = byPartition.get(partition)
    if (!result) throw new BugError(`ListOffsets answered nothing for ${topic}:${partition}`)
    return result
  }
}

export interface OldestRecord {
  partition: number
  /** The low watermark. */
  low: number
  high: number
  /** CreateTime of the first record still held; null when the partition holds none. */
  timestamp: number | null
}

/**
 * The oldest record each partition still holds (at its low watermark) and its time: what retention
 * or delete-records have left. A few records are read past the watermark, since the first offset
 * may be a transaction marker that carries no record.
 */
export async function oldestRecords(
  settings: Settings,
  admin: AdminClient,
  topic: string,
  partitions: number[],
): Promise<OldestRecord[]> {
  const marks = await watermarks(settings, admin, topic, partitions)
  const found = new Map<number, number>()
  const ranges = marks
    .filter((mark) => mark.high > mark.low)
    .map((mark) => ({partition: mark.partition, start: mark.low, end: Math.min(mark.high, mark.low + 16)}))
  for await (const batch of readRanges(settings, topic, ranges)) {
    for (const message of batch)
      if (message.timestamp !== undefined && !found.has(message.partition))
        found.set(message.partition, message.timestamp)
  }
  return marks.map((mark) => ({...mark, timestamp: found.get(mark.partition) ?? null}))
}
