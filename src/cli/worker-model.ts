import {EventEmitter} from 'node:events'

import type {ClaimedJob} from '../core/replay/jobs/index.js'
import type {JobProgress} from '../core/replay/run-job.js'
import type {ReplayWorker} from '../core/replay/worker.js'

/**
 * What a person watching a worker sees, kept as plain state built from the worker's events; the
 * ink dashboard subscribes to 'change' (at most ten a second).
 */
export interface RunningJob extends JobProgress {
  rate: number
  startedAt: number
}

export interface WorkerSnapshot {
  owner: string
  stopping: boolean
  running: RunningJob[]
  finished: {key: string; outcome: string; text: string}[]
  finishedCount: number
}

export class WorkerModel extends EventEmitter {
  private readonly running = new Map<number, RunningJob>()
  private readonly finished: WorkerSnapshot['finished'] = []
  private finishedCount = 0
  private pending = false

  constructor(private readonly worker: ReplayWorker) {
    super()
    worker.on('job-start', (job: ClaimedJob) => {
      this.running.set(job.id, {
        jobId: job.id, webhookId: job.webhookId, phase: 'planning', partition: job.partition, startOffset: job.startOffset,
        checkpointOffset: job.checkpointOffset, endOffset: job.endOffset, inFlight: 0,
        scanned: 0, matched: 0, delivered: 0, duplicates: 0, failed: 0, rate: 0, startedAt: Date.now(),
      })
      this.changed()
    })
    worker.on('job-progress', (progress: JobProgress) => {
      const job = this.running.get(progress.jobId)
      if (!job) return
      Object.assign(job, progress, {rate: progress.delivered / Math.max(0.001, (Date.now() - job.startedAt) / 1000)})
      this.changed()
    })
    worker.on('job-end', ({job, outcome, error}: {job: ClaimedJob; outcome: string; error?: Error}) => {
      const last = this.running.get(job.id)
      this.running.delete(job.id)
      this.finishedCount++
      const text = `${new Date().toISOString().slice(11, 19)} job ${job.id} (${job.webhookId}) ${outcome}${last ? `: ${last.delivered} delivered, ${last.duplicates} duplicates` : ''}${error ? ` — ${error.message}` : ''}`
      this.finished.push({key: `${job.id}-${this.finishedCount}`, outcome, text})
      if (this.finished.length > 8) this.finished.shift()
      this.changed()
    })
  }

  snapshot(): WorkerSnapshot {
    return {
      owner: this.worker.owner,
      stopping: this.worker.stopping,
      running: [...this.running.values()].map((job) => ({...job})),
      finished: [...this.finished],
      finishedCount: this.finishedCount,
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
}
