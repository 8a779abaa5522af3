import type {ScanChunk} from './store/chunks/index.js'
import type {ClaimedJob} from './store/jobs/index.js'
import type {JobOutcome, JobProgress} from './run/run-job.js'

/**
 * What a replay worker reports while it runs: one set of event types, emitted by the worker (and
 * by the job runner through it), read by the Prometheus metrics, the JSON log lines and the
 * terminal dashboard alike. `ReplayWorker` is an `EventEmitter<WorkerEvents>`, so listeners get
 * these payloads typed.
 */
export interface JobEnd {
  job: ClaimedJob
  /**
   * ERROR: the run ended in a failure outside the job (the database down, a wrong secrets key).
   * BUG: it ended in an error replayctl did not expect, a bug (error has the stack).
   */
  outcome: JobOutcome | 'ERROR' | 'BUG'
  /** Set when the run ended in an error (outcome ERROR or BUG). */
  error?: Error
  /**
   * After a BUG, the state the worker left the job in: OPEN (runnable again later), FAILED or
   * CANCELLED, LEASE_LOST (another worker has it), or CLAIMED (that write failed: the job is taken
   * over once its heartbeat is stale).
   */
  leftIn?: 'OPEN' | 'FAILED' | 'CANCELLED' | 'LEASE_LOST' | 'CLAIMED'
  /** Why the job could not be put back in the queue (leftIn CLAIMED). */
  requeueError?: Error
  /** Why a job ended FAILED (its last_error). */
  reason?: string
}

/** One webhook request of a job that will be tried again. */
export interface DeliveryRetry {
  jobId: number
  offset: number
  attempt: number
  delayMs: number
  reason: string
}

/** Events a job's requests settled with (delivered to the webhook). */
export interface DeliveryDone {
  jobId: number
  offset: number
  status: number
  latencyMs: number
}

/** The database could not be reached (or a claim failed) several times in a row. */
export interface DatabaseError {
  error: Error
  /** consecutive failures, this one included */
  consecutive: number
  /** when the worker tries again; null when it gives up (--once, after its bound) */
  retryInMs: number | null
}

/** A finished job's final replay_job_status event, sent by the completion sweeper. */
export interface CompletionSwept {
  jobId: number
  webhookId: string
  state: 'FAILED' | 'CANCELLED'
  outcome: 'delivered' | 'failed'
  reason?: string
}

export interface WorkerEvents {
  /** The worker claimed a job and starts it. */
  'job-start': [job: ClaimedJob]
  'job-progress': [progress: JobProgress]
  /** A job ended for this worker: COMPLETED, FAILED, CANCELLED, RELEASED, LEASE_LOST, RETRY_LATER, ERROR or BUG. */
  'job-end': [end: JobEnd]
  'delivery-done': [done: DeliveryDone]
  'delivery-retry': [retry: DeliveryRetry]
  /** Nothing runnable: the worker polls again. */
  idle: []
  'db-error': [failure: DatabaseError]
  /** The database answers again after `failures` consecutive errors. */
  'db-recovered': [recovered: {failures: number}]
  /** The sweeper sent (or failed to send) an owed completion event. */
  'completion-swept': [swept: CompletionSwept]
  /** A sweep stopped on an error (the database, most likely); the next sweep carries on. */
  'sweep-error': [error: Error]
  /** An idle worker scanned a chunk of another worker's job (scale-out.ts). */
  'chunk-scanned': [chunk: ScanChunk]
  /** Scanning a chunk failed; the chunk is claimed again once its claim is stale. */
  'chunk-error': [error: Error]
  /** Kept for listeners written before 'db-error': the claim's error alone. */
  'claim-error': [error: Error]
}

export type WorkerEventName = keyof WorkerEvents
