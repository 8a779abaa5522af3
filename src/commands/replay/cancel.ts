import {Args} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {withDatabase} from '../../core/db/database.js'
import {cancelJob, parseJobId, type CancelJobResult} from '../../core/replay/store/jobs/index.js'

export default class ReplayCancel extends ConnectedCommand<typeof ReplayCancel> {
  static override summary = "Cancel a replay job: an OPEN job at once, a running one at its worker's next heartbeat"
  static override examples = ['<%= config.bin %> replay cancel 42', '<%= config.bin %> replay cancel 42 --json']
  static override args = {id: Args.string({description: 'job id, as shown by `replay list`', required: true})}

  async run(): Promise<CancelJobResult> {
    const id = parseJobId(this.args.id)
    const result = await withDatabase(this.settings, (pool) => cancelJob(pool, id))
    if (result.outcome === 'cancelled') this.print(paint.green(`cancelled replay job ${id}`))
    else
      this.print(
        paint.yellow(
          `asked the worker running replay job ${id} (${result.job.owner ?? 'unknown'}) to cancel; it stops ` +
            'at its next heartbeat',
        ),
      )
    return result
  }
}
