import {withRetry, type Pool} from '../db/database.js'

/**
 * The partition count of each delivery topic as the engine has seen it, with when each count was
 * first seen (database clock). Kafka places a key by hash modulo the count, so when a topic grows
 * a webhook's later events go to another partition; this history tells a replay which partitions
 * hold the webhook's events for which part of its range. Written at submit and at every plan.
 */
export interface PartitionCountSighting {
  partitionCount: number
  firstSeenMs: number
}

/** Records the count now, unless it was seen before (the first sighting's time is kept). */
export async function recordPartitionCount(pool: Pool, topic: string, partitionCount: number): Promise<void> {
  await withRetry(pool, () =>
    pool.query(
      'INSERT IGNORE INTO topic_partition_counts (topic, partition_count, first_seen_ms) VALUES (?, ?, ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000))',
      [topic, partitionCount],
    ),
  )
}

/** Every count seen for the topic, oldest sighting first. */
export async function partitionCountHistory(pool: Pool, topic: string): Promise<PartitionCountSighting[]> {
  const [rows] = await withRetry(pool, () =>
    pool.query(
      'SELECT partition_count, first_seen_ms FROM topic_partition_counts WHERE topic = ? ORDER BY first_seen_ms, partition_count',
      [topic],
    ),
  )
  return (rows as {partition_count: number; first_seen_ms: number | string}[]).map((row) => ({
    partitionCount: Number(row.partition_count),
    firstSeenMs: Number(row.first_seen_ms),
  }))
}

/**
 * The counts a replay of [fromMs, toMs) must also read, with the time each stopped being current
 * (the next count's first sighting): events of the range before that may still be in the key's
 * partition under that count. The current count is not among them.
 */
export function earlierCounts(
  history: PartitionCountSighting[],
  currentCount: number,
  fromMs: number,
): Array<{partitionCount: number; untilMs: number}> {
  const earlier: Array<{partitionCount: number; untilMs: number}> = []
  for (let index = 0; index < history.length - 1; index++) {
    const sighting = history[index]!
    const untilMs = history[index + 1]!.firstSeenMs
    if (sighting.partitionCount !== currentCount && untilMs > fromMs)
      earlier.push({partitionCount: sighting.partitionCount, untilMs})
  }
  return earlier
}
