import {Args, Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import type {CrcCheckResult} from '../../core/webhooks/crc-check.js'
import {parseDuration} from '../../core/shared/time.js'
import {checkRegisteredWebhook, crcCheckFailed, withWebhookRegistry} from '../../core/webhooks/registration.js'
import {validateWebhookId} from '../../core/webhooks/store.js'

export default class WebhookCheck extends ConnectedCommand<typeof WebhookCheck> {
  static override summary = "Run Twitter's CRC challenge against a webhook and record the result"
  static override description =
    'GETs the url with ?crc_token=T and expects {"response_token": "sha256=" + base64(HMAC-SHA256(secret, T))} ' +
    'within the timeout. A webhook that passes is marked valid again (after a 410 or a failed check); one that ' +
    'fails is marked invalid and replays to it are refused.'
  static override examples = [
    '<%= config.bin %> webhook check 1187231934829481984',
    '<%= config.bin %> webhook check my-hook --allow-private-targets --json',
  ]
  static override args = {id: Args.string({description: 'webhook id', required: true})}
  static override flags = {
    ...tableFlags,
    'check-timeout': Flags.string({description: 'time allowed for the answer', default: '3s'}),
    'allow-private-targets': Flags.boolean({
      description:
        'allow loopback, private and link-local addresses (local testing; env REPLAYCTL_ALLOW_PRIVATE_TARGETS=1)',
    }),
  }

  async run(): Promise<CrcCheckResult & {webhookId: string}> {
    validateWebhookId(this.args.id)
    const timeoutMs = parseDuration(this.flags['check-timeout'], '--check-timeout')
    const allowPrivate = this.settings.allowPrivateTargets
    const {webhook, check} = await withWebhookRegistry(this.settings, (pool, secrets) =>
      checkRegisteredWebhook(pool, secrets, this.args.id, {timeoutMs, allowPrivate}),
    )
    const result = {webhookId: webhook.id, ...check}
    this.print(
      details([
        ['webhook', result.webhookId, 'middle'],
        ['result', result.ok ? paint.green('passed') : paint.red(`failed: ${result.error}`)],
        ['status', result.status],
        ['latency', `${result.latencyMs.toFixed(0)} ms`],
      ]),
    )
    if (!result.ok) throw crcCheckFailed(check)
    return result
  }
}
