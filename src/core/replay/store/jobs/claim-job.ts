import {randomBytes} from 'node:crypto'

import {withRetry, withTransaction, type Pool, type PoolConnection, type RetryOptions} from '../../../db/database.js'
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
 * (and only that row: see lockFirstDue).
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

// How many due jobs one claim looks at before giving up for this round (others hold the rest).
const CANDIDATES = 8

const STALE = `state IN ('STARTED', 'ONGOING') AND heartbeat_at < NOW(3) - INTERVAL ? MICROSECOND`
const RUNNABLE = `state = 'OPEN' AND run_at <= NOW(3)`

async function claimIn(connection: PoolConnection, options: ClaimOptions): Promise<ClaimedJob | null> {
  const staleAfterUs = options.staleAfterMs * 1000
  for (let settled = 0; settled <= MAX_SETTLED_PER_CLAIM; settled++) {
    let candidate = await lockFirstDue(connection, STALE, 'heartbeat_at, id', [staleAfterUs])
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
      candidate = await lockFirstDue(connection, RUNNABLE, 'run_at, id', [])
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

/**
 * The first of the jobs matching `due` (in `order`) that no other claimer holds, locked. Found by
 * a plain read, then locked by key with `due` checked again, because InnoDB keeps a lock on every
 * row a locking read examines until the transaction ends, matching or not: a range scan's first
 * row past its end included, which is often a running job. A claimer stalled between such a read
 * and its COMMIT (a frozen process, a VM pause, a cut-off network) would keep that job's row
 * locked, and every other claimer, skipping locked rows, would pass it by: a job no one could take
 * over.
 */
async function lockFirstDue(
  connection: PoolConnection,
  due: string,
  order: string,
  values: unknown[],
): Promise<Candidate | undefined> {
  const [found] = await connection.query(
    `SELECT id FROM replay_jobs WHERE ${due} ORDER BY ${order} LIMIT ${CANDIDATES}`,
    values,
  )
  for (const {id} of found as {id: number}[]) {
    const [locked] = await connection.query(
      `SELECT id, attempt, max_attempts, cancel_requested FROM replay_jobs
       WHERE id = ? AND ${due} FOR UPDATE SKIP LOCKED`,
      [id, ...values],
    )
    const candidate = (locked as Candidate[])[0]
    if (candidate) return candidate
  }
  return undefined
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
