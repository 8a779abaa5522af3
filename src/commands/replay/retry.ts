import {Args} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {withDatabase} from '../../core/db/database.js'
import {parseJobId, retryJob, type ReplayJob} from '../../core/replay/store/jobs/index.js'

export default class ReplayRetry extends ConnectedCommand<typeof ReplayRetry> {
  static override summary = 'Queue a FAILED or CANCELLED replay job again; it resumes from its last checkpoint'
  static override examples = ['<%= config.bin %> replay retry 42']
  static override args = {id: Args.string({description: 'job id, as shown by `replay list`', required: true})}

  async run(): Promise<ReplayJob> {
    const id = parseJobId(this.args.id)
    const job = await withDatabase(this.settings, (pool) => retryJob(pool, id))
    const from =
      job.checkpointOffset === null
        ? 'from the start of its range'
        : `from offset ${job.checkpointOffset} of partition ${job.partition}`
    this.print(paint.green(`replay job ${id} is OPEN again; it will resume ${from}`))
    return job
  }
}
