import {withRetry, type Pool} from '../../../db/database.js'
import {BugError} from '../../../shared/errors.js'
import {CHUNK_COLUMNS, type ChunkRow, type ScanChunk, toChunk} from './model.js'

/**
 * Cuts [startOffset, endOffset) of one partition into chunks of `chunkSize` offsets, once: the
 * chunks of a job's partition are planned by its first run and kept, so a run resumed after a
 * crash (from its checkpoint, perhaps by a worker with another --scan-chunk) finds the same
 * chunks, and the scans already done, instead of cutting overlapping ones. Only the job's owner
 * plans, under its lease, so two plans never race. Returns the chunks that reach past `from`.
 */
export async function planChunks(
  pool: Pool,
  input: {
    jobId: number
    topic: string
    partition: number
    startOffset: number
    endOffset: number
    chunkSize: number
    from?: number
  },
): Promise<ScanChunk[]> {
  if (!Number.isSafeInteger(input.chunkSize) || input.chunkSize < 1)
    throw new BugError(`chunkSize must be a positive integer, got ${input.chunkSize}`)
  const select = async () => {
    const [found] = await pool.query(
      `SELECT ${CHUNK_COLUMNS} FROM replay_scan_chunks
       WHERE job_id = ? AND topic = ? AND \`partition\` = ? AND end_offset > ? ORDER BY start_offset`,
      [input.jobId, input.topic, input.partition, input.from ?? input.startOffset],
    )
    return (found as ChunkRow[]).map(toChunk)
  }
  return withRetry(pool, async () => {
    const [planned] = await pool.query(
      'SELECT 1 FROM replay_scan_chunks WHERE job_id = ? AND topic = ? AND `partition` = ? LIMIT 1',
      [input.jobId, input.topic, input.partition],
    )
    if ((planned as unknown[]).length === 0) {
      const rows: (string | number)[][] = []
      for (let start = input.startOffset; start < input.endOffset; start += input.chunkSize) {
        rows.push([
          input.jobId,
          input.topic,
          input.partition,
          start,
          Math.min(start + input.chunkSize, input.endOffset),
        ])
      }
      if (rows.length > 0)
        await pool.query(
          'INSERT IGNORE INTO replay_scan_chunks (job_id, topic, `partition`, start_offset, end_offset) VALUES ?',
          [rows],
        )
    }
    return select()
  })
}
