import type {Pool} from '../../db/database.js'
import type {Partitioner} from '../../kafka/partitioner.js'
import type {Settings} from '../../shared/settings.js'
import type {WebhookSecrets} from '../../webhooks/secrets.js'
import type {RetryPolicy, WebhookClient} from '../delivery/index.js'
import type {ClaimedJob, Counters, JobNote, SourcePlan} from '../store/jobs/index.js'
import {LeaseKeeper} from './lease.js'
import type {PreparedConsumer} from './prepared-consumer.js'
import {JobTally} from './tally.js'

/**
 * The run context: everything the steps of one job's run share, built once by openRun and passed
 * to every step as one object (graphile-worker's compiledSharedOptions is the model), so a step
 * names what it reads (`run.keeper`, `run.signals.shutdown`) instead of taking it by position.
 *
 *   RunContext   settings, pool, the claimed job, the worker's run settings, the lease keeper,
 *                the tally, the run's signals and its progress reporting
 *   PlannedRun   the same once planned and given the webhook's client: what deliver and finish take
 */

/** The worker's settings for every job it runs (its flags, documented in `replay worker`). */
export interface RunSettings {
  owner: string
  heartbeatMs: number
  /** The claimers' --stale-after: requests stop once the last confirmed heartbeat is nearly this old. */
  staleAfterMs: number
  checkpointMs: number
  maxInFlight: number
  /** Events delivery may run past the oldest undelivered one (bounds re-sends after a crash). */
  maxAhead?: number
  rateLimit?: number
  /** Offsets per scan chunk (0 or unset: sources are never chunked); see scale-out.ts. */
  chunkSize?: number
  timeoutMs: number
  retry?: Partial<RetryPolicy>
  allowPrivate: boolean
  partitioner: Partitioner
}

/** What the worker hands runJob for one job: its settings, its shutdown signals, where progress goes. */
export interface RunJobOptions extends RunSettings {
  /** Aborted on graceful shutdown: stop reading, checkpoint, hand the job back to OPEN. */
  shutdown: AbortSignal
  /** Aborted when the graceful window is over: cut in-flight requests too. */
  force: AbortSignal
  onProgress?: (progress: JobProgress) => void
  /** Where the webhook's signing secret is read from (opened once per worker). */
  secrets: WebhookSecrets
}

export interface JobProgress extends Counters {
  jobId: number
  webhookId: string
  phase: 'planning' | 'rebuilding' | 'delivering' | 'finishing'
  partition: number | null
  startOffset: number | null
  checkpointOffset: number | null
  endOffset: number | null
  inFlight: number
}

/**
 * Where a job's events lie in the log (plan.ts): its sources, in the job's topic order, each with
 * the checkpoint this run resumes it from, and what the replay may miss.
 */
export interface Plan {
  sources: SourcePlan[]
  /** The operator's sentences (`replay status`) and the customer's gaps (the completion event). */
  notes: JobNote[]
}

export interface RunSignals {
  /** Graceful shutdown: stop reading, let what is in flight settle, hand the job back. */
  shutdown: AbortSignal
  /** A forced shutdown or a cancel: stop sending too (requests in flight are cut). */
  stopSending: AbortSignal
  /** Stop reading: the lease is lost, a shutdown, or sending stopped. */
  stopReading: AbortSignal
}

export interface RunContext {
  readonly settings: Settings
  readonly pool: Pool
  readonly job: ClaimedJob
  readonly options: RunSettings
  readonly keeper: LeaseKeeper
  readonly tally: JobTally
  readonly signals: RunSignals
  /** Merges an update into the job's progress (counters taken from the tally) and passes it on. */
  readonly report: (update: Partial<JobProgress>) => void
}

/** A run once planned and given its webhook's client. */
export interface PlannedRun extends RunContext {
  readonly plan: Plan
  readonly client: WebhookClient
  /** Connected during the plan, for the first source read whole (not by scan chunks). */
  readonly consumer?: PreparedConsumer
}

export type OpenRunOptions = RunSettings & Pick<RunJobOptions, 'shutdown' | 'force' | 'onProgress'>

/**
 * Starts a run: the lease keeper's heartbeat begins, the signals are wired. `close` stops the
 * heartbeat and unhooks the signals; call it once the run is over, whatever its end.
 */
export function openRun(
  settings: Settings,
  pool: Pool,
  job: ClaimedJob,
  options: OpenRunOptions,
): {run: RunContext; close: () => void} {
  const {shutdown, force, onProgress, ...runSettings} = options
  const keeper = new LeaseKeeper(pool, {id: job.id, leaseToken: job.leaseToken}, runSettings)
  const stopSending = new AbortController()
  const onStopSending = () => stopSending.abort()
  force.addEventListener('abort', onStopSending)
  keeper.cancelled.addEventListener('abort', onStopSending)
  // Not AbortSignal.any: on Node 20 every call leaves an entry in each source's set of dependants
  // for good, and `shutdown` lives as long as the worker (one more per job run, never freed).
  const stopReading = new AbortController()
  const onStopReading = () => stopReading.abort()
  const readingSources = [keeper.lost, shutdown, stopSending.signal]
  for (const source of readingSources) {
    if (source.aborted) stopReading.abort()
    else source.addEventListener('abort', onStopReading, {once: true})
  }
  const signals: RunSignals = {shutdown, stopSending: stopSending.signal, stopReading: stopReading.signal}

  const tally = new JobTally()
  const progress: JobProgress = {
    ...tally.counters(),
    jobId: job.id,
    webhookId: job.webhookId,
    phase: 'planning',
    partition: job.partition,
    startOffset: job.startOffset,
    checkpointOffset: job.checkpointOffset,
    endOffset: job.endOffset,
    inFlight: 0,
  }
  const report = (update: Partial<JobProgress>) => {
    Object.assign(progress, tally.counters(), update)
    onProgress?.(progress)
  }
  const run: RunContext = {settings, pool, job, options: runSettings, keeper, tally, signals, report}
  const close = () => {
    keeper.stop()
    force.removeEventListener('abort', onStopSending)
    for (const source of readingSources) source.removeEventListener('abort', onStopReading)
  }
  return {run, close}
}
