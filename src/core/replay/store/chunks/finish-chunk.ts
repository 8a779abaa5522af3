import {withRetry, type Pool} from '../../../db/database.js'
import type {ClaimedChunk} from './model.js'

export interface ChunkResult {
  scanned: number
  matched: number
  /** the encoded matching records, or null when the chunk is dense */
  records: Buffer | null
}

/**
 * Stores a scan's result and marks the chunk DONE. Fenced by the claim's lease token: returns
 * false (and writes nothing) when the chunk was claimed again meanwhile or its job ended.
 */
export async function finishChunk(pool: Pool, chunk: ClaimedChunk, result: ChunkResult): Promise<boolean> {
  return withRetry(pool, async () => {
    const [outcome] = await pool.query(
      `UPDATE replay_scan_chunks SET state = 'DONE', lease_token = NULL,
       scanned = ?, matched = ?, records = ?, dense = ?
       WHERE job_id = ? AND topic = ? AND \`partition\` = ? AND start_offset = ? AND lease_token = ?`,
      [
        result.scanned,
        result.matched,
        result.records,
        result.records === null,
        chunk.jobId,
        chunk.topic,
        chunk.partition,
        chunk.startOffset,
        chunk.leaseToken,
      ],
    )
    return (outcome as {affectedRows: number}).affectedRows === 1
  })
}
