import {Args, Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import {readSecretInput} from '../../cli/secret-input.js'
import {parseDuration} from '../../core/shared/time.js'
import {registerWebhook, withWebhookRegistry, type RegisteredWebhook} from '../../core/webhooks/registration.js'

const SHOWN_ONCE = 'the generated secret is shown only this once: store it now, it will not be shown again'

export default class WebhookAdd extends ConnectedCommand<typeof WebhookAdd> {
  static override summary =
    'Register a webhook: the id its events are keyed by in Kafka, and the URL replays are delivered to'
  static override description =
    'A URL whose host is, or resolves to, a loopback, private, link-local (169.254.169.254), CGNAT or benchmarking ' +
    'address is refused, as delivery refuses it, unless private targets are allowed; documentation, multicast and ' +
    'reserved addresses (Teredo among them) always.\n\n' +
    "The URL must pass Twitter's CRC check first (GET ?crc_token=T answered with the HMAC-SHA256 response token, as " +
    '`webhook check` runs it): a dead URL is refused and nothing is stored. With --skip-crc-check, or when the ' +
    'secret is generated (the receiver cannot know it yet), the webhook is stored unchecked: valid, with no check ' +
    'recorded, until `webhook check` records one (a failed check makes it invalid).\n\n' +
    'The signing secret is stored encrypted (see `webhook rotate-key`). Without --secret or --secret-file a strong ' +
    'one is generated (whsec_ + base64 of 32 random bytes) and printed once. A given secret must be whsec_ + base64 ' +
    'of 24 to 64 bytes (Standard Webhooks) or at least 32 characters. Pass it with --secret-file or on stdin ' +
    '(--secret -) rather than on the command line, where the process list and shell history show it.'
  static override examples = [
    '<%= config.bin %> webhook add 1187231934829481984 --url https://example.com/webhooks/twitter',
    '<%= config.bin %> webhook add acme-prod --url https://hooks.acme.test/replay --secret-file ' +
      '/run/secrets/acme-webhook',
    'printenv WEBHOOK_SECRET | <%= config.bin %> webhook add acme-prod --url https://hooks.acme.test/replay --secret -',
    '<%= config.bin %> webhook add local-test --url http://127.0.0.1:8080/hook --allow-private-targets --secret-file ' +
      'hook.secret',
    '<%= config.bin %> webhook add not-up-yet --url https://hooks.acme.test/replay --secret-file hook.secret ' +
      '--skip-crc-check',
  ]
  static override args = {id: Args.string({description: 'webhook id: 1 to 64 of A-Z a-z 0-9 _ -', required: true})}
  static override flags = {
    ...tableFlags,
    url: Flags.string({description: 'http:// or https:// URL that receives the events', required: true}),
    secret: Flags.string({
      description:
        'signing secret, or - to read it from stdin (safer: not in argv or history); whsec_ + base64 of 24-64 bytes, ' +
        'or 32+ characters. Left out: one is generated and shown once',
    }),
    'secret-file': Flags.string({
      description: 'read the signing secret from this file (one trailing newline is dropped)',
    }),
    'allow-private-targets': Flags.boolean({
      description:
        'allow loopback, private and link-local addresses (local testing; env REPLAYCTL_ALLOW_PRIVATE_TARGETS=1)',
    }),
    'skip-crc-check': Flags.boolean({
      description: 'store it without the CRC check (a receiver not up yet); it stays unchecked until `webhook check`',
    }),
    'check-timeout': Flags.string({description: 'time allowed for the CRC answer', default: '3s'}),
  }

  async run(): Promise<RegisteredWebhook & {note?: string}> {
    const allowPrivate = this.settings.allowPrivateTargets
    const secret = await readSecretInput(
      {secret: this.flags.secret, secretFile: this.flags['secret-file']},
      process.stdin,
    )
    const timeoutMs = parseDuration(this.flags['check-timeout'], '--check-timeout')
    const webhook = await withWebhookRegistry(this.settings, (pool, secrets) =>
      registerWebhook(
        pool,
        secrets,
        {id: this.args.id, url: this.flags.url, secret},
        {allowPrivate, skipCrcCheck: this.flags['skip-crc-check'], timeoutMs},
      ),
    )
    this.print(paint.green(`added webhook ${webhook.id}`))
    this.print(
      details([
        ['url', webhook.url, 'middle'],
        // Shown once and needed whole: never cut.
        ['secret', webhook.generatedSecret ?? (webhook.hasSecret ? 'set' : 'none'), 'never'],
        ['state', webhook.state],
        ['crc check', webhook.lastCheckAt ? 'passed' : `not checked: run \`replayctl webhook check ${webhook.id}\``],
      ]),
    )
    if (webhook.generatedSecret === undefined) return webhook
    this.print(paint.yellow(SHOWN_ONCE))
    return {...webhook, note: SHOWN_ONCE}
  }
}
