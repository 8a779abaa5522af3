import {withRetry, type Pool} from '../../../db/database.js'

/** Records the count now, unless it was seen before (the first sighting's time is kept). */
export async function recordPartitionCount(pool: Pool, topic: string, partitionCount: number): Promise<void> {
  await withRetry(pool, () =>
    pool.query(
      'INSERT IGNORE INTO topic_partition_counts (topic, partition_count, first_seen_ms)' +
        ' VALUES (?, ?, ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000))',
      [topic, partitionCount],
    ),
  )
}
