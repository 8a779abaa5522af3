import {withRetry, type Pool} from '../../../db/database.js'
import {CHUNK_COLUMNS, type ChunkKey, type ChunkRow, type ScanChunk, toChunk} from './model.js'

/** A job's chunks in offset order (what `replay status` shows and the owner walks through). */
export async function listChunks(pool: Pool, jobId: number): Promise<ScanChunk[]> {
  return withRetry(pool, async () => {
    const [rows] = await pool.query(
      `SELECT ${CHUNK_COLUMNS} FROM replay_scan_chunks WHERE job_id = ? ORDER BY topic, \`partition\`, start_offset`,
      [jobId],
    )
    return (rows as ChunkRow[]).map(toChunk)
  })
}

/** One chunk's state, and its stored records once it is DONE (null while not done, or dense). */
export async function readChunkRecords(
  pool: Pool,
  key: ChunkKey,
): Promise<{chunk: ScanChunk; records: Buffer | null} | null> {
  return withRetry(pool, async () => {
    const [rows] = await pool.query(
      `SELECT ${CHUNK_COLUMNS}, IF(state = 'DONE', records, NULL) AS records FROM replay_scan_chunks
       WHERE job_id = ? AND topic = ? AND \`partition\` = ? AND start_offset = ?`,
      [key.jobId, key.topic, key.partition, key.startOffset],
    )
    const row = (rows as (ChunkRow & {records: Buffer | null})[])[0]
    return row ? {chunk: toChunk(row), records: row.records} : null
  })
}
