import {Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {createApiServer} from '../../core/http/api/server.js'
import {resolveApiTokens} from '../../core/shared/settings.js'
import {parseDuration} from '../../core/shared/time.js'

export default class ApiServe extends ConnectedCommand<typeof ApiServe> {
  static override summary = 'Serve the Twitter-compatible Replay API over HTTP until stopped'
  static override description =
    `Replay requests, job status and webhook registration in Twitter's Account Activity shapes ` +
    `(see the README, "The Replay API"), backed by the same database and Kafka as the CLI. ` +
    `Callers present Authorization: Bearer <token>; ` +
    `tokens come from REPLAYCTL_API_TOKENS or the context's "apiTokens", each scoped to all webhooks or a list; a ` +
    `client address with --auth-failures failed authentications in --auth-failure-window gets 429 until the window ` +
    `ends, even with a right token. Logs JSON lines on stderr; GET /healthz and GET /metrics (Prometheus) need no ` +
    `token. SIGTERM or Ctrl-C stops accepting, finishes in-flight requests (up to --grace) and exits 0.`
  static override examples = [
    '<%= config.bin %> api serve',
    '<%= config.bin %> api serve --host 0.0.0.0 --port 8080 --context dc1',
    'REPLAYCTL_API_TOKENS=\'[{"token":"\'$(openssl rand -hex 24)\'","webhooks":"*"}]\' <%= config.bin %> api serve ' +
      '--port 0',
  ]
  static override flags = {
    host: Flags.string({description: 'address to listen on', default: '127.0.0.1'}),
    port: Flags.integer({
      description: 'port to listen on (0: any free port, logged)',
      default: 8080,
      min: 0,
      max: 65_535,
    }),
    topic: Flags.string({char: 't', description: 'the delivery log topic replays read', default: 'delivery_log'}),
    retention: Flags.string({description: "how far back from_date may reach (the topic's retention)", default: '5d'}),
    'rate-limit': Flags.integer({
      description: 'requests per window for tokens without their own "rateLimit"',
      default: 900,
      min: 1,
    }),
    'rate-window': Flags.string({description: "rate-limit window (Twitter's is 15 minutes)", default: '15m'}),
    'auth-failures': Flags.integer({
      description:
        'failed authentications a client address may have per --auth-failure-window; after them it gets 429 until ' +
        'the window ends',
      default: 10,
      min: 1,
    }),
    'auth-failure-window': Flags.string({
      description: "window of --auth-failures, from an address's first failure",
      default: '15m',
    }),
    'trust-proxy': Flags.string({
      description:
        'address or CIDR of a reverse proxy whose X-Forwarded-For names the client (repeatable); failed ' +
        'authentications are then counted per client, not per proxy',
      multiple: true,
    }),
    'crc-timeout': Flags.string({description: 'time a webhook has to answer the CRC check', default: '3s'}),
    'headers-timeout': Flags.string({
      description: "time a client has to send a request's headers (slow clients are cut)",
      default: '10s',
    }),
    grace: Flags.string({description: 'after SIGTERM, how long in-flight requests may finish', default: '10s'}),
    'allow-private-targets': Flags.boolean({
      description:
        'accept webhooks on loopback, private and link-local addresses (local testing; env ' +
        'REPLAYCTL_ALLOW_PRIVATE_TARGETS=1)',
    }),
  }

  async run(): Promise<{url: string; stopped: true}> {
    const {flags} = this
    const server = await createApiServer(this.settings, {
      tokens: resolveApiTokens(this.flags.context),
      topic: flags.topic,
      retentionMs: parseDuration(flags.retention, '--retention'),
      allowPrivateTargets: this.settings.allowPrivateTargets,
      defaultRateLimit: flags['rate-limit'],
      rateWindowMs: parseDuration(flags['rate-window'], '--rate-window'),
      authFailures: flags['auth-failures'],
      authFailureWindowMs: parseDuration(flags['auth-failure-window'], '--auth-failure-window'),
      trustProxy: flags['trust-proxy'],
      crcTimeoutMs: parseDuration(flags['crc-timeout'], '--crc-timeout'),
      graceMs: parseDuration(flags.grace, '--grace'),
      headersTimeoutMs: parseDuration(flags['headers-timeout'], '--headers-timeout'),
    })
    const {url} = await server.serve(flags.host, flags.port)
    return {url, stopped: true}
  }
}
