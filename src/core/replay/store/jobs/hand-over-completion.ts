import {withRetry, type Pool} from '../../../db/database.js'
import {checkLease, type Lease} from './model.js'

/**
 * A worker that ended its own job FAILED or CANCELLED without sending the final event (a cancel
 * stops every send, and a job failed on a Kafka error has no webhook client) gives up its lease,
 * so the completion sweeper sends the Incomplete event, exactly once, as for jobs ended without
 * their worker. Not an error when nothing matches: a retried call after a lost reply, or an event
 * already sent.
 */
export async function handOverCompletion(pool: Pool, lease: Lease): Promise<void> {
  checkLease(lease)
  await withRetry(pool, () =>
    pool.query(
      'UPDATE replay_jobs SET lease_token = NULL ' +
        "WHERE id = ? AND lease_token = ? AND state IN ('FAILED', 'CANCELLED') AND completion_sent = 0",
      [lease.id, lease.leaseToken],
    ),
  )
}
