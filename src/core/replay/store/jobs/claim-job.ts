import {randomBytes} from 'node:crypto'

import {
  lockFirstDue,
  withRetry,
  withTransaction,
  type Pool,
  type PoolConnection,
  type RetryOptions,
} from '../../../db/database.js'
import {BugError} from '../../../shared/errors.js'
import {type ClaimedJob, selectJob, toJob} from './model.js'

export interface ClaimOptions {
  /** who is claiming, for `replay list` and logs (host:pid, a pod name); at most 255 characters */
  owner: string
  /** a STARTED/ONGOING job whose heartbeat is older than this (database clock) is taken over */
  staleAfterMs: number
  /** how hard to retry transient failures (default: the pool's); a worker loop that backs off itself retries briefly */
  retry?: RetryOptions
}

// Jobs found stale with no attempts left (or with a cancel pending) are settled inside the claim;
// bound how many one claim settles so it stays short.
const MAX_SETTLED_PER_CLAIM = 20

/**
 * Claims the next runnable job, or returns null. In one short READ COMMITTED transaction:
 *
 *   1. the stalest STARTED/ONGOING job whose heartbeat_at < NOW(3) - staleAfter (its worker is
 *      presumed dead), else
 *   2. the oldest OPEN job with run_at <= NOW(3),
 *
 * locked with FOR UPDATE SKIP LOCKED so concurrent claimers never wait for or get the same row
 * (and only that row: see lockFirstDue in db/database.ts).
 * The job becomes STARTED with a fresh lease token, this owner, attempt + 1 and a heartbeat now.
 * A stale job that has used max_attempts becomes FAILED instead; a stale job whose cancel was
 * requested becomes CANCELLED (its worker is gone and cannot do it). Both clear the lease, so the
 * presumed-dead worker, if it is alive after all, is fenced out.
 *
 * Stale jobs come first: they have waited longest and block their webhook. The transaction ends
 * before this returns; never hold it while working.
 *
 * If the reply to COMMIT is lost, the retry claims another job and the first sits STARTED until
 * it goes stale and is taken over: at-least-once, never twice at the same time.
 */
export async function claimJob(pool: Pool, options: ClaimOptions): Promise<ClaimedJob | null> {
  if (!Number.isSafeInteger(options.staleAfterMs) || options.staleAfterMs < 1)
    throw new BugError(`staleAfterMs must be a positive integer, got ${options.staleAfterMs}`)
  if (!options.owner || options.owner.length > 255) throw new BugError('owner must be 1 to 255 characters')
  return withRetry(pool, () => withTransaction(pool, (connection) => claimIn(connection, options)), options.retry)
}

const STALE = `state IN ('STARTED', 'ONGOING') AND heartbeat_at < NOW(3) - INTERVAL ? MICROSECOND`
const RUNNABLE = `state = 'OPEN' AND run_at <= NOW(3)`

async function claimIn(connection: PoolConnection, options: ClaimOptions): Promise<ClaimedJob | null> {
  const staleAfterUs = options.staleAfterMs * 1000
  for (let settled = 0; settled <= MAX_SETTLED_PER_CLAIM; settled++) {
    let candidate = await lockFirstJob(connection, STALE, 'heartbeat_at, id', [staleAfterUs])
    if (candidate) {
      const staleFor = `no heartbeat for over ${Math.round(options.staleAfterMs / 1000)} s`
      if (candidate.cancel_requested) {
        await settle(connection, candidate.id, 'CANCELLED', `cancelled while its worker was gone (${staleFor})`)
        continue
      }
      if (candidate.attempt >= candidate.max_attempts) {
        await settle(
          connection,
          candidate.id,
          'FAILED',
          `gave up after ${candidate.attempt} of ${candidate.max_attempts} attempts: ` +
            `the last worker stopped (${staleFor})`,
        )
        continue
      }
    } else {
      candidate = await lockFirstJob(connection, RUNNABLE, 'run_at, id', [])
      if (!candidate) return null
      if (candidate.attempt >= candidate.max_attempts) {
        await settle(
          connection,
          candidate.id,
          'FAILED',
          `gave up after ${candidate.attempt} of ${candidate.max_attempts} attempts`,
        )
        continue
      }
    }

    const leaseToken = randomBytes(16).toString('hex')
    await connection.query(
      `UPDATE replay_jobs SET state = 'STARTED', lease_token = ?, owner = ?, attempt = attempt + 1,
         heartbeat_at = NOW(3), started_at = COALESCE(started_at, NOW(3)), finished_at = NULL
       WHERE id = ?`,
      [leaseToken, options.owner, candidate.id],
    )
    const row = await selectJob(connection, candidate.id)
    if (!row) throw new BugError(`replay job ${candidate.id} vanished inside its claim transaction`)
    return {...toJob(row), leaseToken}
  }
  // Many jobs settled in one go; the next claim carries on.
  return null
}

/** The first job matching `due`, in `order`, that no other claimer holds, locked (see lockFirstDue). */
async function lockFirstJob(
  connection: PoolConnection,
  due: string,
  order: string,
  values: unknown[],
): Promise<Candidate | undefined> {
  return lockFirstDue<{id: number}, Candidate>(
    connection,
    {sql: `SELECT id FROM replay_jobs WHERE ${due} ORDER BY ${order}`, values},
    ({id}) => ({
      sql: `SELECT id, attempt, max_attempts, cancel_requested FROM replay_jobs
       WHERE id = ? AND ${due} FOR UPDATE SKIP LOCKED`,
      values: [id, ...values],
    }),
  )
}

interface Candidate {
  id: number
  attempt: number
  max_attempts: number
  cancel_requested: number
}

async function settle(
  connection: PoolConnection,
  id: number,
  state: 'FAILED' | 'CANCELLED',
  reason: string,
): Promise<void> {
  await connection.query(
    `UPDATE replay_jobs SET state = ?, last_error = ?, finished_at = NOW(3), lease_token = NULL WHERE id = ?`,
    [state, reason, id],
  )
}
