import {withRetry, withTransaction, type Pool} from '../../../db/database.js'
import {checkLease, type Lease, LeaseLostError, type Progress, progressSet} from './model.js'

/**
 * Graceful hand-back (a worker shutting down): STARTED/ONGOING -> OPEN, runnable at once by
 * another worker, keeping the checkpoint and counters. The attempt it used is given back
 * (attempt - 1): a clean handoff is not a failure. If a cancel was pending the job becomes
 * CANCELLED instead. Returns the state it ended in. Fenced.
 */
export async function releaseJob(pool: Pool, input: Lease & Progress): Promise<'OPEN' | 'CANCELLED'> {
  checkLease(input)
  const progress = progressSet(input)
  return withRetry(pool, () =>
    withTransaction(pool, async (connection) => {
      const [rows] = await connection.query(
        'SELECT cancel_requested FROM replay_jobs ' +
          "WHERE id = ? AND lease_token = ? AND state IN ('STARTED', 'ONGOING') FOR UPDATE",
        [input.id, input.leaseToken],
      )
      const job = (rows as {cancel_requested: number}[])[0]
      if (!job) throw new LeaseLostError(input.id, 'release')
      if (job.cancel_requested) {
        await connection.query(
          `UPDATE replay_jobs SET ${progress.sql}, state = 'CANCELLED', finished_at = NOW(3),
           last_error = COALESCE(last_error, 'cancelled by an operator') WHERE id = ?`,
          [...progress.values, input.id],
        )
        return 'CANCELLED'
      }
      await connection.query(
        `UPDATE replay_jobs SET ${progress.sql}, state = 'OPEN', run_at = NOW(3),
         attempt = IF(attempt > 0, attempt - 1, 0),
         lease_token = NULL, owner = NULL, heartbeat_at = NULL
       WHERE id = ?`,
        [...progress.values, input.id],
      )
      return 'OPEN'
    }),
  )
}
