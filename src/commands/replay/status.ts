import {EventEmitter} from 'node:events'

import {Args, Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {details, formatCount, paint} from '../../cli/output.js'
import {uiMode} from '../../cli/progress.js'
import {withDatabase} from '../../core/db/database.js'
import {parseJobId} from '../../core/replay/jobs/index.js'
import {followJob, jobStatus, type JobStatus} from '../../core/replay/jobs-service.js'
import {isoTime} from '../../core/shared/time.js'

export default class ReplayStatus extends ConnectedCommand<typeof ReplayStatus> {
  static override summary = 'Show a replay job: state, offsets, progress, counts, rate, ETA, last error'
  static override description = 'With --watch it follows the job to its end: a live view on a terminal, a plain line per change otherwise, and only the final JSON with --json.'
  static override examples = ['<%= config.bin %> replay status 42', '<%= config.bin %> replay status 42 --watch', '<%= config.bin %> replay status 42 --json | jq .progressPercent']
  static override args = {id: Args.string({description: 'replay job id', required: true})}
  static override flags = {
    watch: Flags.boolean({description: 'follow the job until it completes, fails or is cancelled'}),
    interval: Flags.integer({description: 'seconds between updates with --watch', default: 1, min: 1}),
  }

  async run(): Promise<JobStatus> {
    const id = parseJobId(this.args.id)
    if (!this.flags.watch) {
      const status = await withDatabase(this.settings, (pool) => jobStatus(pool, id))
      this.print(render(status))
      return status
    }
    const mode = uiMode(this.jsonEnabled())
    const feed = new EventEmitter()
    let stopView: (() => Promise<void>) | undefined
    let lastLine = ''
    const final = await followJob(this.settings, id, (status) => {
      if (mode === 'plain') {
        const line = `${isoTime(Date.now())} job ${status.id} ${status.state} ${status.progressPercent === null ? '' : `${status.progressPercent.toFixed(1)}% `}delivered=${status.delivered} duplicates=${status.duplicates}${status.lastError ? ` error=${status.lastError}` : ''}`
        if (line.slice(25) !== lastLine.slice(25)) process.stderr.write(`${line}\n`)
        lastLine = line
      } else if (mode === 'tty') {
        if (!stopView) stopView = startView(feed, status)
        feed.emit('status', status)
      }
    }, this.flags.interval * 1000)
    await stopView?.()
    if (mode !== 'tty') this.print(render(final))
    return final
  }
}

function startView(feed: EventEmitter, initial: JobStatus): () => Promise<void> {
  const rendering = Promise.all([import('ink'), import('react'), import('../../cli/ui/job-view.js')]).then(([{render}, {createElement}, {JobView}]) =>
    render(createElement(JobView, {feed, initial}), {stdout: process.stderr, patchConsole: false}))
  return async () => {
    const app = await rendering
    await new Promise((resolve) => setTimeout(resolve, 150))
    app.unmount()
  }
}

function render(status: JobStatus): string {
  const state = status.state === 'COMPLETED' ? paint.green(status.state) : status.state === 'FAILED' || status.state === 'CANCELLED' ? paint.red(status.state) : paint.cyan(status.state)
  return details([
    ['job', status.id],
    ['webhook', status.webhookId],
    ['range', `${isoTime(status.fromMs)} .. ${isoTime(status.toMs)}`],
    ['state', `${state}${status.cancelRequested && !status.terminal ? ' (cancel requested)' : ''}${status.partial ? ' (partial: part of the range is no longer in the log)' : ''}`],
    ['attempt', `${status.attempt} of ${status.maxAttempts}`],
    ['owner', status.owner],
    ['heartbeat', status.heartbeatAgeSeconds === null ? null : `${status.heartbeatAgeSeconds.toFixed(1)} s ago`],
    // One line per partition read: several topics (cross-datacenter), or a partition count that changed.
    ...(status.sources && status.sources.length > 1
      ? status.sources.map((source): [string, string] => [`${source.topic}[${source.partition}]`, `${source.startOffset} → checkpoint ${source.checkpointOffset} → ${source.endOffset}`])
      : [
        ['partition', status.partition === null ? null : `${status.topic}[${status.partition}]`],
        ['offsets', status.startOffset === null ? null : `${status.startOffset} → checkpoint ${status.checkpointOffset} → ${status.endOffset}`],
      ] as Array<[string, string | null]>),
    ['progress', status.progressPercent === null ? null : `${status.progressPercent.toFixed(1)}%`],
    ['scanned', formatCount(status.scanned)],
    ['matched', formatCount(status.matched)],
    ['delivered', formatCount(status.delivered)],
    ['duplicates', formatCount(status.duplicates)],
    ['failed', formatCount(status.failed)],
    ['events/s', status.eventsPerSecond === null ? null : formatCount(Math.round(status.eventsPerSecond))],
    ['eta', status.etaSeconds === null ? null : `${Math.ceil(status.etaSeconds)} s`],
    ['last error', status.lastError],
    ...status.notes.map((note): [string, string] => ['note', note]),
  ])
}
