import {withRetry, type Pool} from '../../../db/database.js'

/** Forgets a finished job's chunks (and the records they kept). */
export async function dropChunks(pool: Pool, jobId: number): Promise<void> {
  await withRetry(pool, () => pool.query('DELETE FROM replay_scan_chunks WHERE job_id = ?', [jobId]))
}
