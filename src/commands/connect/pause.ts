import {Args} from '@oclif/core'

import {ConnectCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {setConnectorPaused, type ConnectorAction} from '../../core/connect/status.js'

export default class ConnectPause extends ConnectCommand<typeof ConnectPause> {
  static override summary = 'Pause a Kafka Connect connector and its tasks'
  static override description =
    'PUT /connectors/<name>/pause; the workers apply it within moments (see `connect status`). A connector ' +
    'the worker does not know exits 3.'
  static override examples = ['<%= config.bin %> connect pause file-sink']
  static override args = {name: Args.string({description: 'connector name', required: true})}

  async run(): Promise<ConnectorAction> {
    const result = await setConnectorPaused(this.connect, this.args.name, true)
    this.print(paint.green(`pausing connector '${result.connector}'`))
    return result
  }
}
