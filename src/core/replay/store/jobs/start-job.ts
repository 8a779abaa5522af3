import {withRetry, type Pool} from '../../../db/database.js'
import {BugError} from '../../../shared/errors.js'
import {getJob} from './get-job.js'
import {
  checkCount,
  fencedUpdate,
  type JobNote,
  type Lease,
  type ReplayJob,
  type SourcePlan,
  sourcesJson,
} from './model.js'

export interface StartJobInput extends Lease {
  partition: number
  partitionCount: number
  /** first offset at or after fromMs */
  startOffset: number
  /** first offset at or after toMs (exclusive end) */
  endOffset: number
  /** Every partition the job reads; kept when an earlier run stored them (their checkpoints hold). */
  sources?: SourcePlan[]
  /** Replaces the job's notes when given. */
  notes?: JobNote[]
}

/**
 * STARTED -> ONGOING once the worker knows where the range lies in the log. The checkpoint is kept
 * from an earlier attempt (resume there), else set to startOffset; it never points before
 * startOffset. Records where this run starts delivering from (time, delivered count, checkpoint),
 * which rates are measured from. Returns the job, whose checkpointOffset is where to read from. Fenced.
 */
export async function startJob(pool: Pool, input: StartJobInput): Promise<ReplayJob> {
  checkCount(input.partition, 'partition')
  checkCount(input.startOffset, 'startOffset')
  checkCount(input.endOffset, 'endOffset')
  if (!Number.isSafeInteger(input.partitionCount) || input.partitionCount <= input.partition) {
    throw new BugError(`partitionCount ${input.partitionCount} must be an integer above partition ${input.partition}`)
  }
  await withRetry(pool, () =>
    fencedUpdate(
      pool,
      'start',
      input,
      // The run_* columns first: MySQL applies assignments left to right, and they read the state
      // and checkpoint as they were (STARTED: this run's first start; ONGOING: a retried write).
      `run_started_at = IF(state = 'STARTED', NOW(3), run_started_at),
     run_start_delivered = IF(state = 'STARTED', delivered, run_start_delivered),
     run_start_checkpoint = IF(state = 'STARTED', GREATEST(COALESCE(checkpoint_offset, ?), ?), run_start_checkpoint),
     state = 'ONGOING', \`partition\` = ?, partition_count = ?, start_offset = ?, end_offset = ?,
     checkpoint_offset = GREATEST(COALESCE(checkpoint_offset, ?), ?), sources = COALESCE(sources, ?),
     notes = COALESCE(?, notes), heartbeat_at = NOW(3)`,
      [
        input.startOffset,
        input.startOffset,
        input.partition,
        input.partitionCount,
        input.startOffset,
        input.endOffset,
        input.startOffset,
        input.startOffset,
        input.sources ? sourcesJson(input.sources) : null,
        input.notes ? JSON.stringify(input.notes) : null,
      ],
      ['STARTED', 'ONGOING'],
    ),
  )
  return getJob(pool, input.id)
}
