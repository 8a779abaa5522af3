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
export {
  ACTIVE_STATES,
  JOB_STATES,
  LeaseLostError,
  parseJobId,
  parseJobState,
  TERMINAL_STATES,
  type ClaimedJob,
  type Counters,
  type Gap,
  type JobNote,
  type JobState,
  type Lease,
  type Progress,
  type ReplayJob,
  type SourcePlan,
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
