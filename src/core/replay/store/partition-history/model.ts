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

/** A row of topic_partition_counts. */
export interface PartitionCountRow {
  partition_count: number | string
  first_seen_ms: number | string
}

export function toSighting(row: PartitionCountRow): PartitionCountSighting {
  return {partitionCount: Number(row.partition_count), firstSeenMs: Number(row.first_seen_ms)}
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
  history.forEach((sighting, index) => {
    const next = history[index + 1]
    if (next && sighting.partitionCount !== currentCount && next.firstSeenMs > fromMs)
      earlier.push({partitionCount: sighting.partitionCount, untilMs: next.firstSeenMs})
  })
  return earlier
}
