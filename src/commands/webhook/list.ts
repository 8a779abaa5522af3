import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {paint, table} from '../../cli/output.js'
import {withDatabase} from '../../core/db/database.js'
import {listWebhooks, type Webhook} from '../../core/webhooks/store.js'

export default class WebhookList extends ConnectedCommand<typeof WebhookList> {
  static override summary = 'List registered webhooks with their URL and state (secrets are never shown)'
  static override examples = ['<%= config.bin %> webhook list', '<%= config.bin %> webhook list --json']
  static override flags = {...tableFlags}

  async run(): Promise<Webhook[]> {
    const webhooks = await withDatabase(this.settings, listWebhooks)
    if (webhooks.length === 0) this.print('no webhooks: add one with `replayctl webhook add <id> --url <url>`')
    else
      this.print(
        table(
          [
            {title: 'id', cut: 'middle'},
            {title: 'url', cut: 'middle'},
            {title: 'state', cut: 'end'},
            {title: 'secret', drop: 1},
            {title: 'last check', drop: 2},
          ],
          webhooks.map((webhook) => [
            webhook.id,
            webhook.url,
            webhook.state === 'valid'
              ? paint.green('valid')
              : paint.red(`invalid${webhook.invalidReason ? ` (${webhook.invalidReason})` : ''}`),
            webhook.hasSecret ? 'set' : 'none',
            webhook.lastCheckAt === null ? null : `${webhook.lastCheckAt} ${webhook.lastCheckOk ? 'ok' : 'failed'}`,
          ]),
        ),
      )
    return webhooks
  }
}
