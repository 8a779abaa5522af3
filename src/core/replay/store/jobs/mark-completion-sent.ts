import {withRetry, type Pool} from '../../../db/database.js'
import {BugError, UserError} from '../../../shared/errors.js'
import {fencedUpdate, jobNotFound, selectJob} from './model.js'

/**
 * Records that the final replay_job_status event was delivered, so it is sent once. The job must
 * be finished. With the worker's lease token the write is fenced (LeaseLostError if the job was
 * retried meanwhile: the new run sends its own); without one (a sweeper or an operator settling a
 * job whose worker died) it is not.
 */
export async function markCompletionSent(pool: Pool, input: {id: number; leaseToken?: string}): Promise<void> {
  if (!Number.isSafeInteger(input.id) || input.id < 1)
    throw new BugError(`job id must be a positive integer, got ${input.id}`)
  if (input.leaseToken !== undefined) {
    const lease = {id: input.id, leaseToken: input.leaseToken}
    await withRetry(pool, () =>
      fencedUpdate(
        pool,
        'mark-completion-sent',
        lease,
        'completion_sent = 1',
        [],
        ['COMPLETED', 'FAILED', 'CANCELLED'],
      ),
    )
    return
  }
  const [result] = await withRetry(pool, () =>
    pool.query(
      "UPDATE replay_jobs SET completion_sent = 1 WHERE id = ? AND state IN ('COMPLETED', 'FAILED', 'CANCELLED')",
      [input.id],
    ),
  )
  if ((result as {affectedRows: number}).affectedRows === 0) {
    const row = await withRetry(pool, () => selectJob(pool, input.id))
    if (!row) throw jobNotFound(input.id)
    throw new UserError(
      'JOB_STATE_CONFLICT',
      `replay job ${input.id} is ${row.state}, not finished`,
      'mark the completion event sent only after the job is COMPLETED, FAILED or CANCELLED',
    )
  }
}
