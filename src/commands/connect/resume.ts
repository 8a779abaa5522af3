import {Args} from '@oclif/core'

import {ConnectCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {setConnectorPaused, type ConnectorAction} from '../../core/connect/status.js'

export default class ConnectResume extends ConnectCommand<typeof ConnectResume> {
  static override summary = 'Resume a paused Kafka Connect connector and its tasks'
  static override description =
    'PUT /connectors/<name>/resume; the workers apply it within moments (see `connect status`). A connector ' +
    'the worker does not know exits 3.'
  static override examples = ['<%= config.bin %> connect resume file-sink']
  static override args = {name: Args.string({description: 'connector name', required: true})}

  async run(): Promise<ConnectorAction> {
    const result = await setConnectorPaused(this.connect, this.args.name, false)
    this.print(paint.green(`resuming connector '${result.connector}'`))
    return result
  }
}
