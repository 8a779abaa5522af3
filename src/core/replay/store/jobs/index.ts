/**
 * The replay job queue in MySQL. One file per SQL operation; each takes the pool.
 *
 *                 submit                        retry (attempt = 0; checkpoint kept)
 *                   |            +--------------------------------------------------+
 *                   v            v                                                  |
 *   cancel  +----- OPEN <--------+-- release (attempt - 1), fail with retryInMs      |
 *   (OPEN)  |       | claim: attempt + 1, new lease token, heartbeat = NOW(3)         |
 *           v       v                                                               |
 *     CANCELLED   STARTED --start--> ONGOING --complete--> COMPLETED                |
 *           ^       |                  |                                            |
 *           |       +------------------+--fail--> FAILED ------------------------->-+
 *           |       |   (heartbeat older than stale-after: claimed again with a new  |
 *           |       |    lease, or FAILED once max_attempts are used up)             |
 *           |       +-- cancel sets cancel_requested; the worker sees it in its      |
 *           +---------- heartbeat and calls markCancelled ------------------------->-+
 *
 * Active states are OPEN, STARTED and ONGOING; the database allows at most one active job per
 * webhook (a UNIQUE key on a generated column), so submit and retry never check-then-insert.
 *
 * Fencing: claim writes a fresh random lease_token. Every later write by a worker (heartbeat,
 * start, checkpoint, complete, fail, markCancelled, release, markCompletionSent) carries
 * `WHERE id = ? AND lease_token = ?`. A worker presumed dead whose job was taken over matches no
 * row: heartbeat returns {leaseLost: true}, the others throw LeaseLostError, and the worker must
 * stop delivering at once. The token is cleared whenever someone other than the owner moves the
 * job (stale takeover, retry, release), and kept on the owner's own terminal write so that a
 * write retried after a lost reply is idempotent.
 *
 * Times: fromMs/toMs are the replay range in epoch ms (to exclusive); every *At field is an ISO
 * 8601 UTC string read from the database clock.
 */
import type {JobState} from './model.js'

export interface Counters {
  scanned: number
  matched: number
  delivered: number
  duplicates: number
  failed: number
}

/**
 * One partition a job reads, as planned: [startOffset, endOffset) and the checkpoint below which
 * every event of it was delivered (or read and not meant for delivery).
 */
/**
 * What a replay may have missed, in terms a customer can be told (no topics, partitions or
 * offsets): the range started before the oldest event still held, or a partition count changed at
 * a time not recorded. `unknown` is a note stored by a replayctl from before gaps were recorded.
 */
export type Gap = {kind: 'before-log'; heldFromMs: number} | {kind: 'partition-growth'} | {kind: 'unknown'}

/** A note on a job: the operator's sentence, and the gap it describes for the customer. */
export interface JobNote {
  text: string
  gap: Gap
}

export interface SourcePlan {
  topic: string
  partition: number
  partitionCount: number
  startOffset: number
  endOffset: number
  checkpointOffset: number
}

export interface ReplayJob extends Counters {
  id: number
  webhookId: string
  /** The first (or only) topic. */
  topic: string
  /** Every topic the job reads, merged in timestamp order (cross-datacenter copies); [topic] by default. */
  topics: string[]
  fromMs: number
  toMs: number
  /** Read on past `to` until the first record at or after to + lateGraceMs, keeping events in [from, to). */
  lateGraceMs: number
  state: JobState
  attempt: number
  maxAttempts: number
  owner: string | null
  heartbeatAt: string | null
  runAt: string
  partition: number | null
  partitionCount: number | null
  startOffset: number | null
  checkpointOffset: number | null
  endOffset: number | null
  /** The plan with one checkpoint per partition read; null before the first run plans it. */
  sources: SourcePlan[] | null
  /** What the replay may miss, in the operator's sentences (a partition count that changed at an unknown time, ...). */
  notes: string[]
  /** What each note means for the customer, in the same order: the completion event tells them. */
  gaps: Gap[]
  /** Submitted with --allow-partial: the range reaches before the oldest record the log still holds. */
  partial: boolean
  lastError: string | null
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  cancelRequested: boolean
  completionSent: boolean
  /** Where the latest run began delivering (ONGOING): rates are measured from here. */
  run: {startedAt: string; startDelivered: number; startCheckpoint: number | null} | null
}

/** A job as returned to the worker that claimed it: with the token its writes must carry. */
export interface ClaimedJob extends ReplayJob {
  leaseToken: string
}

/** Identifies the worker's lease in every fenced write. */
export interface Lease {
  id: number
  leaseToken: string
}

/** Progress a worker may save with any fenced write; absent fields keep their stored values. */
export interface Progress {
  checkpointOffset?: number
  sources?: SourcePlan[]
  counters?: Partial<Counters>
}

export {
  ACTIVE_STATES,
  JOB_STATES,
  LeaseLostError,
  parseJobId,
  parseJobState,
  TERMINAL_STATES,
  type JobState,
} from './model.js'
export {cancelJob, type CancelJobResult} from './cancel-job.js'
export {checkpointJob} from './checkpoint-job.js'
export {claimJob, type ClaimOptions} from './claim-job.js'
export {completeJob} from './complete-job.js'
export {failJob, type FailJobInput} from './fail-job.js'
export {getJob} from './get-job.js'
export {handOverCompletion} from './hand-over-completion.js'
export {heartbeatJob, type HeartbeatResult} from './heartbeat-job.js'
export {checkListJobsOptions, listJobs, MAX_LIST_LIMIT, type ListJobsOptions} from './list-jobs.js'
export {markCancelled} from './mark-cancelled.js'
export {markCompletionSent} from './mark-completion-sent.js'
export {releaseJob} from './release-job.js'
export {retryJob} from './retry-job.js'
export {startJob, type StartJobInput} from './start-job.js'
export {checkRangeOrder, submitJob, type SubmitJobInput} from './submit-job.js'
export {claimCompletion, type ClaimCompletionOptions} from './claim-completion.js'
