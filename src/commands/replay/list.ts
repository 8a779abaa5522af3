import {Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {formatJobTable} from '../../cli/job-status.js'
import {withDatabase} from '../../core/db/database.js'
import {
  checkListJobsOptions,
  JOB_STATES,
  listJobs,
  MAX_LIST_LIMIT,
  type ReplayJob,
} from '../../core/replay/store/jobs/index.js'

export default class ReplayList extends ConnectedCommand<typeof ReplayList> {
  static override summary = 'List replay jobs, newest first'
  static override examples = [
    '<%= config.bin %> replay list',
    '<%= config.bin %> replay list --state ONGOING',
    '<%= config.bin %> replay list --webhook-id acme-prod --limit 10 --json',
  ]
  static override flags = {
    ...tableFlags,
    state: Flags.string({description: `only jobs in this state: ${JOB_STATES.join(', ')}`}),
    'webhook-id': Flags.string({description: 'only jobs of this webhook'}),
    limit: Flags.string({description: `at most this many jobs (1 to ${MAX_LIST_LIMIT})`, default: '50'}),
  }

  async run(): Promise<ReplayJob[]> {
    const options = checkListJobsOptions({
      state: this.flags.state,
      webhookId: this.flags['webhook-id'],
      limit: this.flags.limit,
    })
    const jobs = await withDatabase(this.settings, (pool) => listJobs(pool, options))
    this.print(formatJobTable(jobs))
    return jobs
  }
}
