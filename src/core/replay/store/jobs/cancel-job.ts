import {withRetry, withTransaction, type Pool} from '../../../db/database.js'
import {UserError} from '../../../shared/errors.js'
import {getJob} from './get-job.js'
import {jobNotFound, parseJobId, type ReplayJob} from './model.js'

export interface CancelJobResult {
  job: ReplayJob
  /**
   * cancelled: it was OPEN and is now CANCELLED.
   * requested: a worker holds it; it stops at its next heartbeat and marks it CANCELLED (if the
   *   worker is dead, the next claimer cancels it once its heartbeat goes stale).
   */
  outcome: 'cancelled' | 'requested'
}

/** Cancels a job: OPEN at once, STARTED/ONGOING by asking its worker. Finished -> JOB_STATE_CONFLICT. */
export async function cancelJob(pool: Pool, id: number | string): Promise<CancelJobResult> {
  const jobId = parseJobId(id)
  const outcome = await withRetry(pool, () =>
    withTransaction(pool, async (connection): Promise<CancelJobResult['outcome']> => {
      const [rows] = await connection.query('SELECT state FROM replay_jobs WHERE id = ? FOR UPDATE', [jobId])
      const job = (rows as {state: string}[])[0]
      if (!job) throw jobNotFound(jobId)
      switch (job.state) {
        case 'OPEN':
          await connection.query(
            "UPDATE replay_jobs SET state = 'CANCELLED', cancel_requested = 1, finished_at = NOW(3), " +
              "last_error = 'cancelled by an operator' WHERE id = ?",
            [jobId],
          )
          return 'cancelled'
        case 'STARTED':
        case 'ONGOING':
          await connection.query('UPDATE replay_jobs SET cancel_requested = 1 WHERE id = ?', [jobId])
          return 'requested'
        default:
          throw new UserError(
            'JOB_STATE_CONFLICT',
            `replay job ${jobId} is already ${job.state}`,
            job.state === 'COMPLETED'
              ? 'there is nothing to cancel'
              : `nothing to cancel; run it again with \`replayctl replay retry ${jobId}\``,
          )
      }
    }),
  )
  return {job: await getJob(pool, jobId), outcome}
}
