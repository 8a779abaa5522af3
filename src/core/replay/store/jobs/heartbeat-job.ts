import {withRetry, type Pool} from '../../../db/database.js'
import {checkLease, type Lease} from './model.js'

export interface HeartbeatResult {
  /** another worker owns the job now (or it was released or retried): stop delivering at once */
  leaseLost: boolean
  /** an operator asked to cancel: stop, save progress, then call markCancelled */
  cancelRequested: boolean
}

/**
 * Proves the worker is alive: heartbeat_at = NOW(3), fenced by the lease. Call it well within the
 * stale-after that claimers use (a third of it, say), and on leaseLost stop without another write.
 */
export async function heartbeatJob(pool: Pool, lease: Lease): Promise<HeartbeatResult> {
  checkLease(lease)
  return withRetry(pool, async () => {
    const [result] = await pool.query(
      'UPDATE replay_jobs SET heartbeat_at = NOW(3) ' +
        "WHERE id = ? AND lease_token = ? AND state IN ('STARTED', 'ONGOING')",
      [lease.id, lease.leaseToken],
    )
    if ((result as {affectedRows: number}).affectedRows === 0) return {leaseLost: true, cancelRequested: false}
    // MariaDB has no UPDATE ... RETURNING; a second read, fenced the same way.
    const [rows] = await pool.query('SELECT cancel_requested FROM replay_jobs WHERE id = ? AND lease_token = ?', [
      lease.id,
      lease.leaseToken,
    ])
    const row = (rows as {cancel_requested: number}[])[0]
    return row
      ? {leaseLost: false, cancelRequested: row.cancel_requested !== 0}
      : {leaseLost: true, cancelRequested: false}
  })
}
