import {createServer, type Server} from 'node:http'

import {Counter, Gauge, Registry, collectDefaultMetrics} from 'prom-client'

import {UserError} from '../shared/errors.js'
import type {JobProgress} from './run/run-job.js'
import type {ReplayWorker} from './worker.js'

/**
 * Prometheus metrics for a worker (prom-client), served on /metrics, built from the worker's
 * events (events.ts). Counters grow by the
 * difference between successive progress reports of a job, so a resumed job is not counted twice
 * within one worker.
 */
export async function serveMetrics(worker: ReplayWorker, host: string, port: number): Promise<Server> {
  const registry = new Registry()
  collectDefaultMetrics({register: registry, prefix: 'replayctl_'})
  const jobs = new Counter({
    name: 'replayctl_jobs_total',
    help: 'Replay jobs this worker ran, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  })
  const active = new Gauge({name: 'replayctl_jobs_active', help: 'Replay jobs running now', registers: [registry]})
  const events = new Counter({
    name: 'replayctl_events_total',
    help: 'Events handled, by kind (scanned, matched, delivered, duplicates)',
    labelNames: ['kind'],
    registers: [registry],
  })
  const inFlight = new Gauge({
    name: 'replayctl_deliveries_in_flight',
    help: 'Webhook requests under way',
    registers: [registry],
  })
  const lag = new Gauge({
    name: 'replayctl_job_offsets_remaining',
    help: 'Offsets between a job checkpoint and its end',
    labelNames: ['job_id', 'webhook_id'],
    registers: [registry],
  })

  const swept = new Counter({
    name: 'replayctl_completion_events_swept_total',
    help: 'Owed completion events the sweeper sent, by outcome (delivered, failed)',
    labelNames: ['outcome'],
    registers: [registry],
  })
  const chunks = new Counter({
    name: 'replayctl_scan_chunks_total',
    help: "Scan chunks of other workers' jobs this worker scanned while idle",
    registers: [registry],
  })
  const bugs = new Counter({
    name: 'replayctl_job_run_bugs_total',
    help: 'Job runs that ended in a bug in replayctl (each logged with its stack; the job resumes from its checkpoint)',
    registers: [registry],
  })
  const databaseErrors = new Counter({
    name: 'replayctl_database_errors_total',
    help: 'Claims that failed because the database could not be reached',
    registers: [registry],
  })

  const last = new Map<number, JobProgress>()
  const kinds = ['scanned', 'matched', 'delivered', 'duplicates'] as const
  worker.on('job-start', () => active.inc())
  worker.on('job-progress', (progress) => {
    const before = last.get(progress.jobId)
    for (const kind of kinds) {
      const grown = progress[kind] - (before?.[kind] ?? 0)
      if (grown > 0) events.inc({kind}, grown)
    }
    last.set(progress.jobId, {...progress})
    inFlight.set([...last.values()].reduce((sum, job) => sum + job.inFlight, 0))
    if (progress.endOffset !== null && progress.checkpointOffset !== null) {
      lag.set(
        {job_id: String(progress.jobId), webhook_id: progress.webhookId},
        progress.endOffset - progress.checkpointOffset,
      )
    }
  })
  worker.on('job-end', ({job, outcome}) => {
    active.dec()
    jobs.inc({outcome})
    if (outcome === 'BUG') bugs.inc()
    last.delete(job.id)
    lag.remove({job_id: String(job.id), webhook_id: job.webhookId})
  })

  worker.on('db-error', () => databaseErrors.inc())
  worker.on('chunk-scanned', () => chunks.inc())
  worker.on('completion-swept', ({outcome}) => swept.inc({outcome}))

  const server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end('see /metrics\n')
      return
    }
    registry.metrics().then(
      (text) => response.writeHead(200, {'content-type': registry.contentType}).end(text),
      (error: Error) => response.writeHead(500).end(error.message),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new UserError(
          'INVALID_ARGUMENT',
          `cannot serve metrics on ${host}:${port} (${error.code ?? error.message})`,
          'choose a free --metrics-port',
        ),
      ),
    )
    server.listen(port, host, () => resolve())
  })
  return server
}
