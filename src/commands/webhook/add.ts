import {Args, Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import {registerWebhook} from '../../core/webhooks/register.js'
import type {WebhookView} from '../../core/webhooks/store.js'

export default class WebhookAdd extends ConnectedCommand<typeof WebhookAdd> {
  static override summary = 'Register a webhook: the id its events are keyed by in Kafka, and the URL replays are delivered to'
  static override description = 'A URL whose host is, or resolves to, a loopback, private, link-local (169.254.169.254), CGNAT or benchmarking address is refused, as delivery refuses it, unless private targets are allowed; documentation, multicast and reserved addresses (Teredo among them) always.'
  static override examples = [
    '<%= config.bin %> webhook add 1187231934829481984 --url https://example.com/webhooks/twitter',
    '<%= config.bin %> webhook add acme-prod --url https://hooks.acme.test/replay --secret "$WEBHOOK_SECRET"',
    '<%= config.bin %> webhook add local-test --url http://127.0.0.1:8080/hook --allow-private-targets',
  ]
  static override args = {id: Args.string({description: 'webhook id: 1 to 64 of A-Z a-z 0-9 _ -', required: true})}
  static override flags = {
    url: Flags.string({description: 'http:// or https:// URL that receives the events', required: true}),
    secret: Flags.string({description: 'secret for signing deliveries (stored, never shown)'}),
    'allow-private-targets': Flags.boolean({description: 'allow loopback, private and link-local addresses (local testing; env REPLAYCTL_ALLOW_PRIVATE_TARGETS=1)'}),
  }

  async run(): Promise<WebhookView> {
    const allowPrivate = this.flags['allow-private-targets'] || process.env.REPLAYCTL_ALLOW_PRIVATE_TARGETS === '1'
    const webhook = await registerWebhook(this.settings, {id: this.args.id, url: this.flags.url, secret: this.flags.secret}, {allowPrivate})
    this.print(paint.green(`added webhook ${webhook.id}`))
    this.print(details([['url', webhook.url], ['secret', webhook.hasSecret ? 'set' : 'none'], ['state', webhook.state]]))
    return webhook
  }
}
