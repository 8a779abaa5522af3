import {lockFirstDue, withRetry, withTransaction, type Pool, type RetryOptions} from '../../../db/database.js'
import {BugError} from '../../../shared/errors.js'
import {JOB_COLUMNS, type JobRow, type ReplayJob, toJob} from './model.js'

export interface ClaimCompletionOptions {
  /** the claim holds this long; the sender must be done (or have given up) well before */
  holdMs: number
  /** sends tried per job before the sweeper gives up on it */
  maxAttempts: number
  /** only jobs that finished at most this long ago (an old job's event would surprise its receiver) */
  maxAgeMs: number
  /** how hard to retry transient failures (default: the pool's) */
  retry?: RetryOptions
}

// A job owes its completion event (the webhook's validity is checked when it is found).
const OWED = `j.completion_sent = 0 AND j.state IN ('FAILED', 'CANCELLED') AND j.lease_token IS NULL
  AND j.finished_at > NOW(3) - INTERVAL ? MICROSECOND
  AND j.completion_attempts < ? AND (j.completion_claimed_until IS NULL OR j.completion_claimed_until < NOW(3))`

/**
 * Claims the sending of one owed completion event, or returns null. A job owes one when it ended
 * FAILED or CANCELLED without a lease (lease_token NULL: a stale claim settled it, it was
 * cancelled while OPEN, or its worker handed the sending over: handOverCompletion; a worker that
 * sends the event itself keeps its token),
 * its event is not sent, its webhook is valid, and it has attempts left.
 *
 * In one READ COMMITTED transaction the job is locked with FOR UPDATE SKIP LOCKED and its claim
 * set to NOW(3) + holdMs, so concurrent sweepers never pick the same job until the claim lapses.
 * Record the event sent with markCompletionSent() ({id} only: no lease is involved).
 */
export async function claimCompletion(
  pool: Pool,
  options: ClaimCompletionOptions,
): Promise<(ReplayJob & {completionAttempt: number}) | null> {
  for (const name of ['holdMs', 'maxAttempts', 'maxAgeMs'] as const) {
    const value = options[name]
    if (!Number.isSafeInteger(value) || value < 1)
      throw new BugError(`${name} must be a positive integer, got ${value}`)
  }
  return withRetry(
    pool,
    () =>
      withTransaction(pool, async (connection) => {
        const values = [options.maxAgeMs * 1000, options.maxAttempts]
        const candidate = await lockFirstDue<{id: number}, {id: number; completion_attempts: number}>(
          connection,
          {
            sql: `SELECT j.id FROM replay_jobs j
             WHERE ${OWED}
               AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = j.webhook_id AND w.state = 'valid')
             ORDER BY j.finished_at, j.id`,
            values,
          },
          ({id}) => ({
            sql: `SELECT j.id, j.completion_attempts FROM replay_jobs j
             WHERE j.id = ? AND ${OWED} FOR UPDATE SKIP LOCKED`,
            values: [id, ...values],
          }),
        )
        if (!candidate) return null
        await connection.query(
          'UPDATE replay_jobs SET completion_attempts = completion_attempts + 1, ' +
            'completion_claimed_until = NOW(3) + INTERVAL ? MICROSECOND WHERE id = ?',
          [options.holdMs * 1000, candidate.id],
        )
        const [rows] = await connection.query(`SELECT ${JOB_COLUMNS} FROM replay_jobs WHERE id = ?`, [candidate.id])
        const [claimed] = rows as JobRow[]
        if (!claimed) throw new BugError(`replay job ${candidate.id} vanished while locked for its completion event`)
        return {...toJob(claimed), completionAttempt: candidate.completion_attempts + 1}
      }),
    options.retry,
  )
}
