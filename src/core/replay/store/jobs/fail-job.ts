import {withRetry, withTransaction, type Pool} from '../../../db/database.js'
import {BugError} from '../../../shared/errors.js'
import {checkLease, type Lease, LeaseLostError, type Progress, progressSet} from './model.js'

export interface FailJobInput extends Lease, Progress {
  /** why, for `replay list` and the operator; stored up to 4000 characters */
  error: string
  /**
   * Try again later instead of failing for good: the job goes back to OPEN with run_at = now +
   * retryInMs, if it has attempts left (attempt < max_attempts) and no cancel is pending.
   */
  retryInMs?: number
}

/**
 * This attempt failed. Saves progress and the error; the job becomes FAILED (retry it with
 * retryJob), or OPEN again when retryInMs is given and attempts remain, or CANCELLED when a cancel
 * was pending. Returns the state it ended in. Fenced.
 */
export async function failJob(pool: Pool, input: FailJobInput): Promise<'FAILED' | 'OPEN' | 'CANCELLED'> {
  checkLease(input)
  if (input.retryInMs !== undefined && (!Number.isSafeInteger(input.retryInMs) || input.retryInMs < 0)) {
    throw new BugError(`retryInMs must be a non-negative integer, got ${input.retryInMs}`)
  }
  const progress = progressSet(input)
  const error = input.error.length > 4000 ? `${input.error.slice(0, 4000)}...` : input.error
  return withRetry(pool, () =>
    withTransaction(pool, async (connection) => {
      const [rows] = await connection.query(
        // FAILED too: the same call retried after a lost reply finds its own earlier write.
        'SELECT state, attempt, max_attempts, cancel_requested FROM replay_jobs ' +
          "WHERE id = ? AND lease_token = ? AND state IN ('STARTED', 'ONGOING', 'FAILED') FOR UPDATE",
        [input.id, input.leaseToken],
      )
      const job = (rows as {state: string; attempt: number; max_attempts: number; cancel_requested: number}[])[0]
      if (!job) throw new LeaseLostError(input.id, 'fail')
      if (job.state === 'FAILED') return 'FAILED'
      if (job.cancel_requested) {
        await connection.query(
          `UPDATE replay_jobs SET ${progress.sql}, state = 'CANCELLED', last_error = ?, finished_at = NOW(3)
         WHERE id = ?`,
          [...progress.values, error, input.id],
        )
        return 'CANCELLED'
      }
      if (input.retryInMs !== undefined && job.attempt < job.max_attempts) {
        // Back in the queue: the lease is cleared, so this worker's writes stop matching.
        await connection.query(
          `UPDATE replay_jobs SET ${progress.sql}, state = 'OPEN', last_error = ?,
           run_at = NOW(3) + INTERVAL ? MICROSECOND,
           lease_token = NULL, owner = NULL, heartbeat_at = NULL
         WHERE id = ?`,
          [...progress.values, error, input.retryInMs * 1000, input.id],
        )
        return 'OPEN'
      }
      await connection.query(
        `UPDATE replay_jobs SET ${progress.sql}, state = 'FAILED', last_error = ?, finished_at = NOW(3) WHERE id = ?`,
        [...progress.values, error, input.id],
      )
      return 'FAILED'
    }),
  )
}
