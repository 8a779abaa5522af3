import {Args, Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {onInterrupt} from '../../cli/interrupt.js'
import {formatJobStatus, watchJob} from '../../cli/job-status.js'
import {uiMode} from '../../cli/progress.js'
import {withDatabase} from '../../core/db/database.js'
import {parseJobId} from '../../core/replay/jobs/index.js'
import {followJob, jobStatus, type JobStatus} from '../../core/replay/jobs-service.js'

export default class ReplayStatus extends ConnectedCommand<typeof ReplayStatus> {
  static override summary = 'Show a replay job: state, offsets, progress, counts, rate, ETA, last error'
  static override description =
    "Events/s and ETA are measured over delivery: from the start of delivery of the job's latest run, " +
    'or over the last interval with --watch; never over the time the job waited in the queue. With ' +
    '--watch it follows the job to its end: a live view on a terminal, a plain line per change ' +
    'otherwise, and only the final JSON with --json.'
  static override examples = [
    '<%= config.bin %> replay status 42',
    '<%= config.bin %> replay status 42 --watch',
    '<%= config.bin %> replay status 42 --json | jq .progressPercent',
  ]
  static override args = {id: Args.string({description: 'replay job id', required: true})}
  static override flags = {
    watch: Flags.boolean({description: 'follow the job until it completes, fails or is cancelled'}),
    interval: Flags.integer({description: 'seconds between updates with --watch', default: 1, min: 1}),
  }

  async run(): Promise<JobStatus> {
    const id = parseJobId(this.args.id)
    if (!this.flags.watch) {
      const status = await withDatabase(this.settings, (pool) => jobStatus(pool, id))
      this.print(formatJobStatus(status))
      return status
    }
    const mode = uiMode(this.jsonEnabled())
    const watcher = watchJob(mode)
    const stop = new AbortController()
    const removeInterrupt = onInterrupt(() => stop.abort())
    let final: JobStatus
    try {
      final = await followJob(
        this.settings,
        id,
        (status) => watcher.update(status),
        this.flags.interval * 1000,
        stop.signal,
      )
    } finally {
      removeInterrupt()
    }
    await watcher.stop()
    if (mode !== 'tty') this.print(formatJobStatus(final))
    return final
  }
}
