import {withRetry, type Pool} from '../../../db/database.js'
import {fencedUpdate, type Lease, type Progress, progressSet} from './model.js'

/**
 * ONGOING -> COMPLETED, with the final progress. Fenced. The lease stays on the row so that the
 * same call retried after a lost reply matches again, and so markCompletionSent can follow.
 */
export async function completeJob(pool: Pool, input: Lease & Progress): Promise<void> {
  const progress = progressSet(input)
  await withRetry(pool, () =>
    fencedUpdate(
      pool,
      'complete',
      input,
      `${progress.sql}, state = 'COMPLETED', finished_at = COALESCE(finished_at, NOW(3)), heartbeat_at = NOW(3)`,
      progress.values,
      ['STARTED', 'ONGOING', 'COMPLETED'],
    ),
  )
}
