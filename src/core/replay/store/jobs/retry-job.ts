import {mysqlErrorCode, withRetry, withTransaction, type Pool} from '../../../db/database.js'
import {UserError} from '../../../shared/errors.js'
import {getJob} from './get-job.js'
import {jobInProgress, jobNotFound, parseJobId, type ReplayJob} from './model.js'

/**
 * FAILED or CANCELLED -> OPEN, runnable now, with a fresh attempt budget. The checkpoint and
 * counters are kept, so the next worker resumes where the last one stopped rather than
 * re-delivering the whole range. Another active job for the same webhook -> JOB_IN_PROGRESS (the
 * unique key decides, not a prior check).
 */
export async function retryJob(pool: Pool, id: number | string): Promise<ReplayJob> {
  const jobId = parseJobId(id)
  let webhookId: string | undefined
  try {
    await withRetry(pool, () =>
      withTransaction(pool, async (connection) => {
        const [rows] = await connection.query('SELECT state, webhook_id FROM replay_jobs WHERE id = ? FOR UPDATE', [
          jobId,
        ])
        const job = (rows as {state: string; webhook_id: string}[])[0]
        if (!job) throw jobNotFound(jobId)
        webhookId = job.webhook_id
        if (job.state !== 'FAILED' && job.state !== 'CANCELLED') {
          throw new UserError(
            'JOB_STATE_CONFLICT',
            `replay job ${jobId} is ${job.state}; only FAILED or CANCELLED jobs can be retried`,
            job.state === 'COMPLETED'
              ? 'to deliver the range again, submit a new replay with `replayctl replay submit`'
              : `it is still active; cancel it first with \`replayctl replay cancel ${jobId}\` if it should start over`,
          )
        }
        await connection.query(
          `UPDATE replay_jobs SET state = 'OPEN', attempt = 0, run_at = NOW(3), lease_token = NULL, owner = NULL,
           heartbeat_at = NULL, finished_at = NULL, cancel_requested = 0, completion_sent = 0
         WHERE id = ?`,
          [jobId],
        )
      }),
    )
  } catch (error) {
    if (mysqlErrorCode(error) === 'ER_DUP_ENTRY' && webhookId !== undefined) throw await jobInProgress(pool, webhookId)
    throw error
  }
  return getJob(pool, jobId)
}
