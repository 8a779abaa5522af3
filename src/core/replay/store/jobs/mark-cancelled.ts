import {withRetry, type Pool} from '../../../db/database.js'
import {fencedUpdate, type Lease, type Progress, progressSet} from './model.js'

/**
 * STARTED/ONGOING -> CANCELLED by the worker, after its heartbeat reported cancelRequested and it
 * stopped delivering. Saves the final progress (a retry resumes from it). Fenced.
 */
export async function markCancelled(pool: Pool, input: Lease & Progress): Promise<void> {
  const progress = progressSet(input)
  await withRetry(pool, () =>
    fencedUpdate(
      pool,
      'mark-cancelled',
      input,
      `${progress.sql}, state = 'CANCELLED', finished_at = COALESCE(finished_at, NOW(3)),
       last_error = COALESCE(last_error, 'cancelled by an operator')`,
      progress.values,
      ['STARTED', 'ONGOING', 'CANCELLED'],
    ),
  )
}
