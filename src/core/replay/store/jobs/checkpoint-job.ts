import {withRetry, type Pool} from '../../../db/database.js'
import {fencedUpdate, type Lease, type Progress, progressSet} from './model.js'

/**
 * Saves progress: the next offset to read and the running totals (absolute, not increments).
 * Also counts as a heartbeat. Fenced: throws LeaseLostError when the job is no longer ours.
 */
export async function checkpointJob(pool: Pool, input: Lease & Progress & {checkpointOffset: number}): Promise<void> {
  const progress = progressSet(input)
  await withRetry(pool, () =>
    fencedUpdate(pool, 'checkpoint', input, `${progress.sql}, heartbeat_at = NOW(3)`, progress.values, [
      'STARTED',
      'ONGOING',
    ]),
  )
}
