import {EventEmitter} from 'node:events'

import type {JobState, ReplayJob} from '../core/replay/store/jobs/index.js'
import type {JobStatus} from '../core/replay/job-status.js'
import {isoTime} from '../core/shared/time.js'
import {details, type Detail, formatCount, formatDuration, paint, table} from './output.js'
import type {UiMode} from './progress.js'
import {mountView, type MountedView} from './ui/mount.js'

/** How replay jobs reach a person: one job's details, the job list, and a job followed live. */
export function formatJobStatus(status: JobStatus): string {
  const state =
    status.state === 'COMPLETED'
      ? paint.green(status.state)
      : status.state === 'FAILED' || status.state === 'CANCELLED'
        ? paint.red(status.state)
        : paint.cyan(status.state)
  return details([
    ['job', status.id],
    ['webhook', status.webhookId, 'middle'],
    ['range', `${isoTime(status.fromMs)} .. ${isoTime(status.toMs)}`],
    [
      'state',
      state +
        (status.cancelRequested && !status.terminal ? ' (cancel requested)' : '') +
        (status.partial ? ' (partial: part of the range is no longer in the log)' : ''),
    ],
    ['attempt', `${status.attempt} of ${status.maxAttempts}`],
    ['owner', status.owner, 'middle'],
    ['heartbeat', status.heartbeatAgeSeconds === null ? null : `${status.heartbeatAgeSeconds.toFixed(1)} s ago`],
    // One line per partition read: several topics (cross-datacenter), or a partition count that changed.
    ...(status.sources && status.sources.length > 1
      ? status.sources.map((source): [string, string] => [
          `${source.topic}[${source.partition}]`,
          `${source.startOffset} → checkpoint ${source.checkpointOffset} → ${source.endOffset}`,
        ])
      : ([
          ['partition', status.partition === null ? null : `${status.topic}[${status.partition}]`, 'middle'],
          [
            'offsets',
            status.startOffset === null
              ? null
              : `${status.startOffset} → checkpoint ${status.checkpointOffset} → ${status.endOffset}`,
          ],
        ] satisfies Detail[])),
    ['progress', status.progressPercent === null ? null : `${status.progressPercent.toFixed(1)}%`],
    ['scanned', formatCount(status.scanned)],
    ['matched', formatCount(status.matched)],
    ['delivered', formatCount(status.delivered)],
    ['duplicates', formatCount(status.duplicates)],
    ['failed', formatCount(status.failed)],
    ['events/s', status.eventsPerSecond === null ? null : formatCount(Math.round(status.eventsPerSecond))],
    ['eta', status.etaSeconds === null ? null : formatDuration(Math.ceil(status.etaSeconds) * 1000)],
    ['last error', status.lastError],
    ...status.notes.map((note): [string, string] => ['note', note]),
  ])
}

export function formatJobTable(jobs: ReplayJob[]): string {
  if (jobs.length === 0) return 'no replay jobs'
  return table(
    [
      {title: 'id', align: 'right'},
      {title: 'webhook', cut: 'middle'},
      'state',
      {title: 'from', drop: 4},
      {title: 'to', drop: 4},
      {title: 'attempt', drop: 1},
      {title: 'delivered', align: 'right'},
      {title: 'failed', align: 'right', drop: 3},
      {title: 'owner', cut: 'middle', drop: 2},
      {title: 'last error', cut: 'end', drop: 5},
    ],
    jobs.map((job) => [
      job.id,
      job.webhookId,
      colourState(job.state) +
        (job.cancelRequested && (job.state === 'STARTED' || job.state === 'ONGOING') ? ' (cancelling)' : ''),
      minute(job.fromMs),
      minute(job.toMs),
      `${job.attempt}/${job.maxAttempts}`,
      formatCount(job.delivered),
      formatCount(job.failed),
      job.owner,
      job.lastError === null ? null : job.lastError.split('\n')[0],
    ]),
  )
}

export interface JobWatcher {
  update(status: JobStatus): void
  stop(): Promise<void>
}

/**
 * A job followed to its end (`replay status --watch`): a live view on a terminal, a line on stderr
 * whenever something but the time changed otherwise, nothing under --json.
 */
export function watchJob(mode: UiMode): JobWatcher {
  if (mode === 'json') return {update: () => {}, stop: async () => {}}
  if (mode === 'plain') {
    let last = ''
    return {
      update: (status) => {
        const line = statusLine(status)
        if (line !== last) process.stderr.write(`${isoTime(Date.now())} ${line}\n`)
        last = line
      },
      stop: async () => {},
    }
  }
  const feed = new EventEmitter<{status: [JobStatus]}>()
  let view: Promise<MountedView> | undefined
  return {
    update: (status) => {
      view ??= mountView(async () => (await import('./ui/job-view.js')).JobView, {feed, initial: status})
      feed.emit('status', status)
    },
    stop: async () => (await view)?.unmount(),
  }
}

function statusLine(status: JobStatus): string {
  const progress = status.progressPercent === null ? '' : `${status.progressPercent.toFixed(1)}% `
  const rate = status.eventsPerSecond === null ? '' : ` events/s=${Math.round(status.eventsPerSecond)}`
  const error = status.lastError ? ` error=${status.lastError}` : ''
  return (
    `job ${status.id} ${status.state} ${progress}delivered=${status.delivered} duplicates=${status.duplicates}` +
    rate +
    error
  )
}

function minute(ms: number): string {
  return isoTime(ms).replace(/:\d\d\.\d{3}Z$/, 'Z')
}

function colourState(state: JobState): string {
  switch (state) {
    case 'COMPLETED':
      return paint.green(state)
    case 'FAILED':
      return paint.red(state)
    case 'CANCELLED':
      return paint.yellow(state)
    default:
      return state
  }
}
