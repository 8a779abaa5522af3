import {Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {formatCount, paint, table} from '../../cli/output.js'
import {withDatabase} from '../../core/db/database.js'
import {checkListJobsOptions, JOB_STATES, listJobs, MAX_LIST_LIMIT, type JobState, type ReplayJob} from '../../core/replay/jobs/index.js'
import {isoTime} from '../../core/shared/time.js'

export default class ReplayList extends ConnectedCommand<typeof ReplayList> {
  static override summary = 'List replay jobs, newest first'
  static override examples = [
    '<%= config.bin %> replay list',
    '<%= config.bin %> replay list --state ONGOING',
    '<%= config.bin %> replay list --webhook-id acme-prod --limit 10 --json',
  ]
  static override flags = {
    state: Flags.string({description: `only jobs in this state: ${JOB_STATES.join(', ')}`}),
    'webhook-id': Flags.string({description: 'only jobs of this webhook'}),
    limit: Flags.string({description: `at most this many jobs (1 to ${MAX_LIST_LIMIT})`, default: '50'}),
  }

  async run(): Promise<ReplayJob[]> {
    const options = checkListJobsOptions({state: this.flags.state, webhookId: this.flags['webhook-id'], limit: this.flags.limit})
    const jobs = await withDatabase(this.settings, (pool) => listJobs(pool, options))
    if (jobs.length === 0) this.print('no replay jobs')
    else this.print(table(
      ['id', 'webhook', 'state', 'from', 'to', 'attempt', 'delivered', 'failed', 'owner', 'last error'],
      jobs.map((job) => [
        job.id,
        job.webhookId,
        colourState(job.state) + (job.cancelRequested && (job.state === 'STARTED' || job.state === 'ONGOING') ? ' (cancelling)' : ''),
        minute(job.fromMs),
        minute(job.toMs),
        `${job.attempt}/${job.maxAttempts}`,
        formatCount(job.delivered),
        formatCount(job.failed),
        job.owner,
        job.lastError === null ? null : job.lastError.split('\n')[0]!.slice(0, 60),
      ]),
    ))
    return jobs
  }
}

function minute(ms: number): string {
  return isoTime(ms).replace(/:\d\d\.\d{3}Z$/, 'Z')
}

function colourState(state: JobState): string {
  switch (state) {
    case 'COMPLETED': return paint.green(state)
    case 'FAILED': return paint.red(state)
    case 'CANCELLED': return paint.yellow(state)
    default: return state
  }
}
