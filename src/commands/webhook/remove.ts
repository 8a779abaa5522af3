import {Args} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {withDatabase} from '../../core/db/database.js'
import {removeWebhook, validateWebhookId, type RemoveWebhookResult} from '../../core/webhooks/store.js'

export default class WebhookRemove extends ConnectedCommand<typeof WebhookRemove> {
  static override summary = 'Remove a webhook and its finished replay jobs; refused while a replay for it is active'
  static override examples = ['<%= config.bin %> webhook remove acme-prod']
  static override args = {id: Args.string({description: 'webhook id', required: true})}

  async run(): Promise<RemoveWebhookResult> {
    validateWebhookId(this.args.id)
    const result = await withDatabase(this.settings, (pool) => removeWebhook(pool, this.args.id))
    this.print(
      paint.green(
        `removed webhook ${result.id}` +
          (result.jobsRemoved
            ? ` and ${result.jobsRemoved} finished replay job${result.jobsRemoved === 1 ? '' : 's'}`
            : ''),
      ),
    )
    return result
  }
}
