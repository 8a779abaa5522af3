import {Args, Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import {withDatabase} from '../../core/db/database.js'
import {addWebhook, validateWebhookInput, webhookView, type WebhookView} from '../../core/webhooks/store.js'

export default class WebhookAdd extends ConnectedCommand<typeof WebhookAdd> {
  static override summary = 'Register a webhook: the id its events are keyed by in Kafka, and the URL replays are delivered to'
  static override examples = [
    '<%= config.bin %> webhook add 1187231934829481984 --url https://example.com/webhooks/twitter',
    '<%= config.bin %> webhook add acme-prod --url https://hooks.acme.test/replay --secret "$WEBHOOK_SECRET"',
  ]
  static override args = {id: Args.string({description: 'webhook id: 1 to 64 of A-Z a-z 0-9 _ -', required: true})}
  static override flags = {
    url: Flags.string({description: 'http:// or https:// URL that receives the events', required: true}),
    secret: Flags.string({description: 'secret for signing deliveries (stored, never shown)'}),
  }

  async run(): Promise<WebhookView> {
    // Checked before connecting: bad input never touches the database.
    const input = validateWebhookInput({id: this.args.id, url: this.flags.url, secret: this.flags.secret})
    const webhook = webhookView(await withDatabase(this.settings, (pool) => addWebhook(pool, input)))
    this.print(paint.green(`added webhook ${webhook.id}`))
    this.print(details([['url', webhook.url], ['secret', webhook.hasSecret ? 'set' : 'none'], ['state', webhook.state]]))
    return webhook
  }
}
