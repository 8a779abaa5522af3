import type {ReplayWorker} from '../core/replay/worker.js'

/**
 * The worker's log: one JSON object per line on stderr, for journald and log shippers, built from
 * the worker's events (core/replay/events.ts). Without --json every line is written; under --json
 * (stdout holds the one result document) only warnings and errors, so a cron job stays quiet until
 * something is wrong.
 */
export type LogLevel = 'info' | 'warn' | 'error'

export interface WorkerLogOptions {
  /** the lowest level written */
  minLevel: LogLevel
  /** at most one progress line per job per this many ms */
  progressEveryMs?: number
  write?: (line: string) => void
}

const RANK: Record<LogLevel, number> = {info: 0, warn: 1, error: 2}

export function logWorker(worker: ReplayWorker, options: WorkerLogOptions): () => void {
  const write = options.write ?? ((line: string) => process.stderr.write(line))
  const progressEveryMs = options.progressEveryMs ?? 5000
  const log = (level: LogLevel, msg: string, fields: object = {}) => {
    if (RANK[level] < RANK[options.minLevel]) return
    write(`${JSON.stringify({time: new Date().toISOString(), level, msg, worker: worker.owner, ...fields})}\n`)
  }
  const lastLogged = new Map<number, number>()
  log('info', 'worker started')
  worker.on('job-start', (job) =>
    log('info', 'job claimed', {
      job: job.id,
      webhook: job.webhookId,
      attempt: job.attempt,
      checkpoint: job.checkpointOffset,
    }),
  )
  worker.on('job-progress', (progress) => {
    if (Date.now() - (lastLogged.get(progress.jobId) ?? 0) < progressEveryMs) return
    lastLogged.set(progress.jobId, Date.now())
    log('info', 'job progress', {
      job: progress.jobId,
      phase: progress.phase,
      checkpoint: progress.checkpointOffset,
      end: progress.endOffset,
      delivered: progress.delivered,
      duplicates: progress.duplicates,
      scanned: progress.scanned,
    })
  })
  worker.on('job-end', ({job, outcome, error, reason, leftIn, requeueError}) => {
    lastLogged.delete(job.id)
    if (outcome === 'BUG') {
      // The stack is what a report of the bug needs; the job's state says whether it will resume.
      log('error', 'job run ended in a bug in replayctl; please report it', {
        job: job.id,
        webhook: job.webhookId,
        outcome,
        error: error?.message,
        stack: error?.stack,
        leftIn,
        ...(requeueError ? {requeueError: requeueError.message} : {}),
      })
      return
    }
    log(outcome === 'ERROR' ? 'error' : 'info', 'job ended', {
      job: job.id,
      webhook: job.webhookId,
      outcome,
      ...(error ? {error: error.message} : {}),
      ...(reason ? {reason} : {}),
    })
  })
  worker.on('delivery-retry', (retry) =>
    log('warn', 'delivery retrying', {
      job: retry.jobId,
      offset: retry.offset,
      attempt: retry.attempt,
      retryInMs: retry.delayMs,
      reason: retry.reason,
    }),
  )
  worker.on('db-error', ({error, consecutive, retryInMs}) =>
    log(
      retryInMs === null ? 'error' : 'warn',
      retryInMs === null ? 'database unavailable, giving up' : 'database unavailable',
      {error: error.message, consecutive, ...(retryInMs === null ? {} : {retryInMs})},
    ),
  )
  worker.on('db-recovered', ({failures}) => log('info', 'database available again', {failures}))
  worker.on('completion-swept', (swept) =>
    log(swept.outcome === 'failed' ? 'warn' : 'info', 'completion event swept', {
      job: swept.jobId,
      webhook: swept.webhookId,
      state: swept.state,
      outcome: swept.outcome,
      ...(swept.reason ? {reason: swept.reason} : {}),
    }),
  )
  worker.on('chunk-scanned', (chunk) =>
    log('info', 'chunk scanned', {
      job: chunk.jobId,
      topic: chunk.topic,
      partition: chunk.partition,
      start: chunk.startOffset,
      end: chunk.endOffset,
      scanned: chunk.scanned,
      matched: chunk.matched,
      dense: chunk.dense,
    }),
  )
  worker.on('chunk-error', (error) => log('warn', 'chunk scan failed', {error: error.message}))
  worker.on('sweep-error', (error) => log('warn', 'completion sweep failed', {error: error.message}))
  return () => log('info', 'worker stopped')
}
