import {EventEmitter} from 'node:events'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {openPool, type Pool} from '../db/database.js'
import type {RetryPolicy} from './delivery/index.js'
import {claimJob, type ClaimedJob} from './jobs/index.js'
import type {Partitioner} from '../kafka/partitioner.js'
import {runJob, type JobOutcome, type JobProgress} from './run-job.js'
import type {Settings} from '../shared/settings.js'

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
 * --once (cron): work until no job is runnable and none is running, then return.
 *
 * Events: 'job-start' (job), 'job-progress' (JobProgress), 'job-end' ({job, outcome, error?}),
 * 'idle', 'claim-error' (error). The dashboard, the log lines and the metrics listen to these.
 */
export interface WorkerOptions {
  concurrency: number
  once: boolean
  pollIntervalMs: number
  heartbeatMs: number
  staleAfterMs: number
  checkpointMs: number
  maxInFlight: number
  /** Events delivery may run past the oldest undelivered one (bounds re-sends after a crash). */
  maxAhead?: number
  rateLimit?: number
  deliveryTimeoutMs: number
  retry?: Partial<RetryPolicy>
  allowPrivate: boolean
  partitioner: Partitioner
  owner?: string
}

export interface WorkerSummary {
  owner: string
  jobs: Partial<Record<JobOutcome | 'ERROR', number>>
  seconds: number
}

export class ReplayWorker extends EventEmitter {
  readonly owner: string
  private readonly shutdown = new AbortController()
  private readonly force = new AbortController()
  private readonly running = new Map<number, Promise<void>>()
  private readonly outcomes: WorkerSummary['jobs'] = {}
  private wake: (() => void) | undefined

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
    const pool = await openPool(this.settings.mysqlUrl, {timeoutMs: this.settings.timeoutMs})
    try {
      while (!this.stopping) {
        if (this.running.size >= this.options.concurrency) {
          await this.nextWake(this.options.pollIntervalMs)
          continue
        }
        let job: ClaimedJob | null = null
        try {
          job = await claimJob(pool, {owner: this.owner, staleAfterMs: this.options.staleAfterMs})
        } catch (error) {
          this.emit('claim-error', error)
          await this.nextWake(this.options.pollIntervalMs * 4)
          continue
        }
        if (job) {
          this.start(pool, job)
          continue
        }
        if (this.options.once && this.running.size === 0) break
        this.emit('idle')
        await this.nextWake(this.options.pollIntervalMs)
      }
      await Promise.all(this.running.values())
    } finally {
      await pool.end().catch(() => {})
    }
    return {owner: this.owner, jobs: this.outcomes, seconds: (Date.now() - started) / 1000}
  }

  private start(pool: Pool, job: ClaimedJob): void {
    this.emit('job-start', job)
    const work = runJob(this.settings, pool, job, {
      owner: this.owner,
      heartbeatMs: this.options.heartbeatMs,
      staleAfterMs: this.options.staleAfterMs,
      checkpointMs: this.options.checkpointMs,
      maxInFlight: this.options.maxInFlight,
      maxAhead: this.options.maxAhead,
      rateLimit: this.options.rateLimit,
      timeoutMs: this.options.deliveryTimeoutMs,
      retry: this.options.retry,
      allowPrivate: this.options.allowPrivate,
      partitioner: this.options.partitioner,
      shutdown: this.shutdown.signal,
      force: this.force.signal,
      onProgress: (progress: JobProgress) => this.emit('job-progress', progress),
    }).then(
      (outcome) => {
        this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1
        this.emit('job-end', {job, outcome})
      },
      (error: unknown) => {
        // The job stays claimed with its last checkpoint and is taken over once it goes stale.
        this.outcomes.ERROR = (this.outcomes.ERROR ?? 0) + 1
        this.emit('job-end', {job, outcome: 'ERROR', error})
      },
    ).finally(() => {
      this.running.delete(job.id)
      this.wake?.()
    })
    this.running.set(job.id, work)
  }

  private async nextWake(ms: number): Promise<void> {
    const woken = new Promise<void>((resolve) => (this.wake = resolve))
    await Promise.race([woken, sleep(ms)])
    this.wake = undefined
  }
}
