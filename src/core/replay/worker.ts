import {EventEmitter} from 'node:events'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {openPool, type Pool} from '../db/database.js'
import {claimJob, failJob, getJob, handOverCompletion, LeaseLostError, type ClaimedJob} from './store/jobs/index.js'
import {sweepCompletions} from './completion-sweeper.js'
import {runJob, type JobOutcome, type JobProgress, type RunJobOptions} from './run/run-job.js'
import {scanNextChunk} from './scale-out.js'
import type {Settings} from '../shared/settings.js'
import {BugError, UserError} from '../shared/errors.js'
import {loadSecretKey} from '../webhooks/secret-key.js'
import {WebhookSecrets} from '../webhooks/secrets.js'
import type {JobEnd, WorkerEvents} from './events.js'

/**
 * The replay worker: a loop that claims runnable jobs from MySQL (never more than `concurrency`
 * at once) and runs each to an end. Workers on any number of machines share the queue through
 * the database alone.
 *
 * Shutdown (SIGTERM from systemd, Ctrl-C): stop claiming; each running job stops reading, waits
 * for its in-flight deliveries, saves its checkpoint and goes back to OPEN, so another worker
 * resumes it at once. After `graceMs` in-flight requests are cut as well (their events stay
 * below the checkpoint and are delivered again by whoever resumes).
 *
 * --once (cron): work until no job is runnable and none is running, sweep once, then return.
 *
 * With `chunkSize` set, a worker that finds no job to claim scans a chunk of a job another worker
 * is delivering (scale-out.ts) before it sleeps: scale-out of one large job's reading.
 *
 * Every few seconds (and once before --once returns) the completion sweeper sends the final
 * "Incomplete" event of jobs that ended without their worker (completion-sweeper.ts).
 *
 * The key of the webhook secrets is loaded before anything else, and checked against the rows once
 * the database answers: a missing or wrong key ends the worker at once (SECRET_KEY_MISSING,
 * SECRET_KEY_WRONG) instead of failing every job. A key rotated while it runs stops it the same way
 * (gracefully) at the first job that cannot read its secret.
 *
 * Database errors (MySQL down, a failed claim) do not end the worker: it backs off exponentially
 * (from the poll interval, capped at 30 s) and reports each one ('db-error'); with --once it gives
 * up with DATABASE_UNAVAILABLE after `maxDatabaseErrors` in a row.
 *
 * A job run that ends in an error runJob does not turn into an outcome is a bug in replayctl, not
 * a state of the job: it ends the job's run with outcome BUG and its error (stack included) to the
 * listeners, and the job goes back to the queue from its checkpoint, its last_error saying so
 * (failJob: OPEN after BUG_RETRY_MS while attempts remain, then FAILED for `replay retry`). A
 * long-running worker carries on with other jobs; with --once, run() then ends in a BugError.
 *
 * Events: see events.ts (WorkerEvents). The dashboard, the log lines and the metrics listen to them.
 */
/** What each job is run with: the same settings runJob takes (documented there). */
type JobSettings = Pick<
  RunJobOptions,
  | 'heartbeatMs'
  | 'staleAfterMs'
  | 'checkpointMs'
  | 'maxInFlight'
  | 'maxAhead'
  | 'rateLimit'
  | 'chunkSize'
  | 'retry'
  | 'allowPrivate'
  | 'partitioner'
>

export interface WorkerOptions extends JobSettings {
  concurrency: number
  once: boolean
  pollIntervalMs: number
  /** runJob's timeoutMs: the time allowed for one webhook request. */
  deliveryTimeoutMs: number
  owner?: string
  /** How often the completion sweeper looks for owed events (default 5 s). */
  sweepIntervalMs?: number
  /** With `once`: consecutive database errors before giving up (DATABASE_UNAVAILABLE). */
  maxDatabaseErrors?: number
}

function pickJobSettings(options: WorkerOptions): JobSettings {
  const {
    heartbeatMs,
    staleAfterMs,
    checkpointMs,
    maxInFlight,
    maxAhead,
    rateLimit,
    chunkSize,
    retry,
    allowPrivate,
    partitioner,
  } = options
  return {
    heartbeatMs,
    staleAfterMs,
    checkpointMs,
    maxInFlight,
    maxAhead,
    rateLimit,
    chunkSize,
    retry,
    allowPrivate,
    partitioner,
  }
}

const DEFAULT_MAX_DATABASE_ERRORS = 5
const DEFAULT_SWEEP_INTERVAL_MS = 5_000
const DATABASE_BACKOFF_CAP_MS = 30_000
// The loop backs off itself; inside one claim only a short retry (a deadlock, a dropped connection).
const CLAIM_RETRY = {maxAttempts: 3, maxElapsedMs: 2_000}
/** A job whose run hit a bug is not run again at once: the same bug would likely end it again. */
export const BUG_RETRY_MS = 60_000

/**
 * Errors a job run may end in that are not bugs. The database being down leaves the job claimed
 * with its checkpoint, taken over once stale; a wrong secrets key released the job and stops the
 * worker (runJob).
 */
function isKnownRunFailure(error: unknown): error is UserError {
  return error instanceof UserError && (error.code === 'DATABASE_UNAVAILABLE' || error.code === 'SECRET_KEY_WRONG')
}

/** Exponential from the poll interval, capped, with jitter so restarted workers do not stampede. */
export function databaseBackoff(failures: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(DATABASE_BACKOFF_CAP_MS, Math.max(baseMs, 100) * 2 ** (failures - 1))
  return Math.round(ceiling * (0.75 + random() / 4))
}

export interface WorkerSummary {
  owner: string
  jobs: Partial<Record<JobOutcome | 'ERROR' | 'BUG', number>>
  seconds: number
}

export class ReplayWorker extends EventEmitter<WorkerEvents> {
  readonly owner: string
  private readonly shutdown = new AbortController()
  private readonly force = new AbortController()
  private readonly running = new Map<number, Promise<void>>()
  private readonly outcomes: WorkerSummary['jobs'] = {}
  private wake: (() => void) | undefined
  private sweeping: Promise<void> | undefined
  private lastSweepAt = 0
  /** A key that stopped matching the secrets (rotated while this worker ran): it ends the run. */
  private wrongKey: UserError | undefined
  /** The first bug a job run ended in: with --once, it ends the run. */
  private firstBug: Error | undefined

  constructor(
    private readonly settings: Settings,
    private readonly options: WorkerOptions,
  ) {
    super()
    this.owner = options.owner ?? `${hostname()}:${process.pid}`
  }

  get activeJobs(): number {
    return this.running.size
  }

  get stopping(): boolean {
    return this.shutdown.signal.aborted
  }

  /** Graceful first: running jobs checkpoint and go back to OPEN; forceful after `graceMs`. */
  stop(graceMs: number): void {
    if (this.shutdown.signal.aborted) {
      this.force.abort()
      return
    }
    this.shutdown.abort()
    this.wake?.()
    setTimeout(() => this.force.abort(), graceMs).unref()
  }

  async run(): Promise<WorkerSummary> {
    const started = Date.now()
    const key = loadSecretKey(this.settings.secretKey)
    let pool: Pool | undefined
    let secrets: WebhookSecrets | undefined
    let failures = 0
    let lastFailure: Error | undefined
    try {
      while (!this.stopping) {
        // Busy or idle, every worker sweeps on its interval.
        if (pool && secrets) this.sweep(pool, secrets)
        if (this.running.size >= this.options.concurrency) {
          await this.nextWake(this.options.pollIntervalMs)
          continue
        }
        let job: ClaimedJob | null = null
        try {
          pool ??= await openPool(this.settings.mysqlUrl, {timeoutMs: this.settings.timeoutMs})
          secrets ??= await WebhookSecrets.open(pool, key)
          job = await claimJob(pool, {owner: this.owner, staleAfterMs: this.options.staleAfterMs, retry: CLAIM_RETRY})
        } catch (error) {
          // A wrong URL or credentials will not heal by waiting.
          if (error instanceof UserError && error.code !== 'DATABASE_UNAVAILABLE') throw error
          failures++
          lastFailure = error as Error
          const giveUp =
            this.options.once && failures >= (this.options.maxDatabaseErrors ?? DEFAULT_MAX_DATABASE_ERRORS)
          const retryInMs = giveUp ? null : databaseBackoff(failures, this.options.pollIntervalMs)
          this.emit('claim-error', lastFailure)
          this.emit('db-error', {error: lastFailure, consecutive: failures, retryInMs})
          if (retryInMs === null) break
          await this.nextWake(retryInMs)
          continue
        }
        if (failures > 0) this.emit('db-recovered', {failures})
        failures = 0
        if (job) {
          this.start(pool, secrets, job)
          continue
        }
        if (this.options.once && this.running.size === 0) {
          // A cron worker settles what is owed before it leaves.
          this.sweep(pool, secrets, true)
          await this.sweeping
          break
        }
        // Nothing to claim: help scan the chunks of jobs other workers are delivering.
        if ((this.options.chunkSize ?? 0) > 0 && (await this.scanChunk(pool))) continue
        this.emit('idle')
        await this.nextWake(this.options.pollIntervalMs)
      }
      await Promise.all([...this.running.values(), this.sweeping])
    } finally {
      await pool?.end().catch(() => {})
    }
    if (this.wrongKey) throw this.wrongKey
    if (this.firstBug && this.options.once) throw this.bugSummary(this.firstBug)
    if (failures > 0 && this.options.once && !this.stopping) {
      throw new UserError(
        'DATABASE_UNAVAILABLE',
        `gave up after ${failures} database errors in a row: ${lastFailure?.message}`,
        'check --mysql-url / REPLAYCTL_MYSQL_URL and that MySQL is up; the next run carries on where this one stopped',
        {cause: lastFailure},
      )
    }
    return {owner: this.owner, jobs: this.outcomes, seconds: (Date.now() - started) / 1000}
  }

  private start(pool: Pool, secrets: WebhookSecrets, job: ClaimedJob): void {
    this.emit('job-start', job)
    const work = runJob(this.settings, pool, job, {
      ...pickJobSettings(this.options),
      owner: this.owner,
      secrets,
      timeoutMs: this.options.deliveryTimeoutMs,
      shutdown: this.shutdown.signal,
      force: this.force.signal,
      onProgress: (progress: JobProgress) => this.emit('job-progress', progress),
    })
      .then(
        async (outcome) => {
          this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1
          // The reason a job failed is in its row (the runner wrote it there), not in the outcome.
          const reason = outcome === 'FAILED' ? await failureReason(pool, job.id) : undefined
          this.emit('job-end', {job, outcome, ...(reason ? {reason} : {})})
        },
        async (error: unknown) => {
          if (!isKnownRunFailure(error)) return this.runHitBug(pool, job, error)
          this.outcomes.ERROR = (this.outcomes.ERROR ?? 0) + 1
          this.emit('job-end', {job, outcome: 'ERROR', error})
          if (error.code === 'SECRET_KEY_WRONG' && !this.wrongKey) {
            this.wrongKey = error
            this.shutdown.abort()
            this.wake?.()
          }
        },
      )
      .finally(() => {
        this.running.delete(job.id)
        this.wake?.()
      })
    this.running.set(job.id, work)
  }

  /**
   * A job run that ended in a bug: the job goes back to the queue from its checkpoint (counters and
   * checkpoint as last saved, so no event is skipped), with the bug as its last_error. When even
   * that write fails, the job stays claimed and another worker takes it over once it is stale.
   */
  private async runHitBug(pool: Pool, job: ClaimedJob, thrown: unknown): Promise<void> {
    const error = thrown instanceof Error ? thrown : new BugError(`a job run was rejected with ${String(thrown)}`)
    this.firstBug ??= error
    this.outcomes.BUG = (this.outcomes.BUG ?? 0) + 1
    const lease = {id: job.id, leaseToken: job.leaseToken}
    let leftIn: JobEnd['leftIn']
    let requeueError: Error | undefined
    try {
      const state = await failJob(pool, {
        ...lease,
        error: `stopped by a bug in replayctl (${error.message}); it resumes from its checkpoint`,
        retryInMs: BUG_RETRY_MS,
      })
      // Ended for good: the final event is owed, and the sweeper sends it.
      if (state !== 'OPEN') await handOverCompletion(pool, lease)
      leftIn = state
    } catch (writeError) {
      if (writeError instanceof LeaseLostError) leftIn = 'LEASE_LOST'
      else {
        leftIn = 'CLAIMED'
        requeueError = writeError instanceof Error ? writeError : new Error(String(writeError))
      }
    }
    this.emit('job-end', {job, outcome: 'BUG', error, leftIn, ...(requeueError ? {requeueError} : {})})
  }

  /** How a --once run that saw bugs ends: exit 1, with the first bug's stack (all are in the log). */
  private bugSummary(first: Error): BugError {
    const count = this.outcomes.BUG ?? 0
    const bug = new BugError(
      `${count} job ${count === 1 ? 'run' : 'runs'} ended in a bug in replayctl (each logged with its stack); ` +
        `the first: ${first.message}`,
      {cause: first},
    )
    if (first.stack) bug.stack = first.stack
    return bug
  }

  /** Starts a completion sweep in the background when one is due and none is under way. */
  private sweep(pool: Pool, secrets: WebhookSecrets, now = false): void {
    if (
      this.sweeping ||
      (!now && Date.now() - this.lastSweepAt < (this.options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS))
    )
      return
    this.lastSweepAt = Date.now()
    this.sweeping = sweepCompletions(
      pool,
      {
        allowPrivate: this.options.allowPrivate,
        secrets,
        deliveryTimeoutMs: this.options.deliveryTimeoutMs,
        retry: this.options.retry,
        // Like a claim: the loop (next sweep) is the retry, so a stop is not held up by a database that is down.
        claimRetry: CLAIM_RETRY,
        // A send under way may finish within the grace period, as a job's requests may.
        signal: this.force.signal,
      },
      (swept) => this.emit('completion-swept', swept),
    )
      .then(
        () => {},
        (error: Error) => {
          this.emit('sweep-error', error)
        },
      )
      .finally(() => (this.sweeping = undefined))
  }

  /** Scans one chunk if there is one; false when there was none (or scanning failed). */
  private async scanChunk(pool: Pool): Promise<boolean> {
    try {
      const chunk = await scanNextChunk(this.settings, pool, {
        owner: this.owner,
        staleAfterMs: this.options.staleAfterMs,
        signal: this.shutdown.signal,
      })
      if (chunk) this.emit('chunk-scanned', chunk)
      return chunk !== null
    } catch (error) {
      // Stopped mid-scan: the chunk's claim goes stale and another worker scans it.
      if (!this.stopping) this.emit('chunk-error', error as Error)
      return false
    }
  }

  private async nextWake(ms: number): Promise<void> {
    const woken = new Promise<void>((resolve) => (this.wake = resolve))
    await Promise.race([woken, sleep(ms)])
    this.wake = undefined
  }
}

/** A FAILED job's reason from its row; when the row cannot be read, says so instead of nothing. */
async function failureReason(pool: Pool, jobId: number): Promise<string | undefined> {
  try {
    return (await getJob(pool, jobId)).lastError ?? undefined
  } catch (error) {
    return `its reason could not be read (${(error as Error).message}); see \`replayctl replay status ${jobId}\``
  }
}
