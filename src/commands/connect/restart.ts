import {Args, Flags} from '@oclif/core'

import {ConnectCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {restartConnector, type ConnectorAction} from '../../core/connect/status.js'

export default class ConnectRestart extends ConnectCommand<typeof ConnectRestart> {
  static override summary = 'Restart a Kafka Connect connector and its tasks'
  static override description =
    'POST /connectors/<name>/restart?includeTasks=true: the connector and every task, or with --failed-only ' +
    'only those that are FAILED. A connector the worker does not know exits 3.'
  static override examples = [
    '<%= config.bin %> connect restart mirror-dc1-to-dc2',
    '<%= config.bin %> connect restart file-sink --failed-only',
  ]
  static override args = {name: Args.string({description: 'connector name', required: true})}
  static override flags = {
    'failed-only': Flags.boolean({description: 'restart only the connector or tasks that are FAILED'}),
  }

  async run(): Promise<ConnectorAction> {
    const result = await restartConnector(this.connect, this.args.name, {failedOnly: this.flags['failed-only']})
    const tasks = result.restartedTasks.length ? ` and tasks ${result.restartedTasks.join(', ')}` : ''
    this.print(paint.green(`restarting connector '${result.connector}'${tasks}`))
    return result
  }
}
