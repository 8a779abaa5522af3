import {EventEmitter} from 'node:events'

import type {JobProgress} from '../core/replay/run/run-job.js'
import type {ReplayWorker} from '../core/replay/worker.js'
import {plural} from '../core/shared/plural.js'

/**
 * What a person watching a worker sees, kept as plain state built from the worker's events
 * (core/replay/events.ts); the ink dashboard subscribes to 'change' (at most ten a second).
 */
export interface RunningJob extends JobProgress {
  /**
   * delivered events per second since this run began delivering (events of earlier runs, re-counted while
   * rebuilding, left out)
   */
  rate: number
  startedAt: number
  /** when the delivering phase began, and the delivered count then */
  delivering: {since: number; base: number} | null
}

export interface WorkerSnapshot {
  owner: string
  stopping: boolean
  running: RunningJob[]
  /** the last few things that happened: jobs ended, completion events swept */
  recent: {key: string; tone: 'good' | 'warn' | 'bad'; text: string}[]
  finishedCount: number
  /** set while the database is failing: what failed, how often in a row, when the next try is */
  database: {error: string; consecutive: number; retryAt: number | null} | null
}

const TONE: Record<string, WorkerSnapshot['recent'][number]['tone']> = {
  COMPLETED: 'good',
  RELEASED: 'warn',
  RETRY_LATER: 'warn',
  LEASE_LOST: 'warn',
  delivered: 'good',
}

export class WorkerModel extends EventEmitter<{change: []}> {
  private readonly running = new Map<number, RunningJob>()
  private readonly recent: WorkerSnapshot['recent'] = []
  private finishedCount = 0
  private lines = 0
  private database: WorkerSnapshot['database'] = null
  private pending = false

  constructor(
    private readonly worker: ReplayWorker,
    private readonly clock: () => number = Date.now,
  ) {
    super()
    worker.on('job-start', (job) => {
      this.running.set(job.id, {
        jobId: job.id,
        webhookId: job.webhookId,
        phase: 'planning',
        partition: job.partition,
        startOffset: job.startOffset,
        checkpointOffset: job.checkpointOffset,
        endOffset: job.endOffset,
        inFlight: 0,
        scanned: 0,
        matched: 0,
        delivered: 0,
        duplicates: 0,
        failed: 0,
        rate: 0,
        startedAt: this.clock(),
        delivering: null,
      })
      this.changed()
    })
    worker.on('job-progress', (progress) => {
      const job = this.running.get(progress.jobId)
      if (!job) return
      Object.assign(job, progress)
      if (progress.phase === 'delivering' && !job.delivering)
        job.delivering = {since: this.clock(), base: progress.delivered}
      if (job.delivering)
        job.rate =
          (progress.delivered - job.delivering.base) / Math.max(0.001, (this.clock() - job.delivering.since) / 1000)
      this.changed()
    })
    worker.on('job-end', ({job, outcome, error}) => {
      const last = this.running.get(job.id)
      this.running.delete(job.id)
      this.finishedCount++
      this.note(
        TONE[outcome] ?? 'bad',
        `job ${job.id} (${job.webhookId}) ${outcome}` +
          (last ? `: ${last.delivered} delivered, ${last.duplicates} ${plural(last.duplicates, 'duplicate')}` : '') +
          (error ? ` — ${error.message}` : ''),
      )
    })
    worker.on('completion-swept', (swept) => {
      this.note(
        TONE[swept.outcome] ?? 'bad',
        `job ${swept.jobId} (${swept.webhookId}) ${swept.state}: completion event ${swept.outcome}` +
          (swept.reason ? ` — ${swept.reason}` : ''),
      )
    })
    worker.on('db-error', ({error, consecutive, retryInMs}) => {
      this.database = {error: error.message, consecutive, retryAt: retryInMs === null ? null : Date.now() + retryInMs}
      this.changed()
    })
    worker.on('db-recovered', ({failures}) => {
      this.database = null
      this.note('good', `database available again after ${failures} ${plural(failures, 'error')}`)
    })
  }

  snapshot(): WorkerSnapshot {
    return {
      owner: this.worker.owner,
      stopping: this.worker.stopping,
      running: [...this.running.values()].map((job) => ({...job})),
      recent: [...this.recent],
      finishedCount: this.finishedCount,
      database: this.database && {...this.database},
    }
  }

  changed(): void {
    if (this.pending) return
    this.pending = true
    setTimeout(() => {
      this.pending = false
      this.emit('change')
    }, 100).unref()
  }

  private note(tone: WorkerSnapshot['recent'][number]['tone'], text: string): void {
    this.recent.push({key: String(++this.lines), tone, text: `${new Date().toISOString().slice(11, 19)} ${text}`})
    if (this.recent.length > 8) this.recent.shift()
    this.changed()
  }
}
