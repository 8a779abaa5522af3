import {withRetry, type Pool} from '../../../db/database.js'
import {toSighting, type PartitionCountRow, type PartitionCountSighting} from './model.js'

/** Every count seen for the topic, oldest sighting first. */
export async function partitionCountHistory(pool: Pool, topic: string): Promise<PartitionCountSighting[]> {
  const [rows] = await withRetry(pool, () =>
    pool.query(
      'SELECT partition_count, first_seen_ms FROM topic_partition_counts WHERE topic = ?' +
        ' ORDER BY first_seen_ms, partition_count',
      [topic],
    ),
  )
  return (rows as PartitionCountRow[]).map(toSighting)
}
