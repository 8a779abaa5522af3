import {withRetry, type Pool} from '../../../db/database.js'
import {jobNotFound, parseJobId, type ReplayJob, selectJob, toJob} from './model.js'

/** One job by id; JOB_NOT_FOUND when there is none. */
export async function getJob(pool: Pool, id: number | string): Promise<ReplayJob> {
  const jobId = parseJobId(id)
  const row = await withRetry(pool, () => selectJob(pool, jobId))
  if (!row) throw jobNotFound(jobId)
  return toJob(row)
}
