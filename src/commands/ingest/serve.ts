import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatCount, paint} from '../../cli/output.js'
import {TIMESTAMP_UNITS, type TimestampUnit} from '../../core/kafka/event-time.js'
import {serveIngest, type IngestSummary} from '../../core/http/ingest/server.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {resolveIngestTokens} from '../../core/shared/settings.js'
import {parseDuration} from '../../core/shared/time.js'
import {plural} from '../../core/shared/plural.js'

export default class IngestServe extends KafkaCommand<typeof IngestServe> {
  static override summary = 'Serve HTTP-to-Kafka ingest: POST /events answers 2xx once every event is acknowledged'
  static override description =
    `POST /events takes one JSON event or NDJSON (one object per line). Each event is written unchanged, keyed by ` +
    `--key-field (or the --key-header of the request) with Java's murmur2 placement, CreateTime from ` +
    `--timestamp-field, snappy, from an idempotent producer with acks=all. The answer is 200 only once every event ` +
    `of the request is acknowledged by all in-sync replicas; a request with a bad event writes nothing and gets 400 ` +
    `naming its line; otherwise a 503 says how many were written, and a retry with the same Idempotency-Key header ` +
    `(remembered for --idempotency-window) writes only the rest. While the producer queue nears its limits or no ` +
    `broker acknowledges, requests get 503 with Retry-After. Requests carry Authorization: Bearer <token>; tokens ` +
    `come from REPLAYCTL_INGEST_TOKENS or the context's "ingestTokens", each scoped to the keys (webhook ids or ` +
    `patterns such as acme-*) and topics it may write: no or a wrong token is 401, a key or topic outside the scope ` +
    `403, and an address with --auth-failures failed authentications in --auth-failure-window gets 429 until the ` +
    `window ends; nothing of a refused request is written. Without tokens the server does not start, unless ` +
    `--no-auth is given on a loopback --host. SIGTERM or Ctrl-C stops accepting, finishes the requests under way (up ` +
    `to --grace), flushes every accepted event, then exits 0. Also GET /healthz and Prometheus GET /metrics (no ` +
    `token); JSON log lines on stderr.`
  static override examples = [
    '<%= config.bin %> ingest serve --topic delivery_log --timestamp-field created_at_ms',
    'REPLAYCTL_INGEST_TOKENS=\'[{"token":"\'$(openssl rand -hex 24)\'","keys":"*","topics":["delivery_log"]}]\' ' +
      '<%= config.bin %> ingest serve --topic delivery_log --key-header X-Webhook-Id',
    '<%= config.bin %> ingest serve --topic delivery_log --no-auth',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to write to', required: true}),
    'key-field': Flags.string({description: 'field (dotted path) whose value keys each event [default: webhook_id]'}),
    'key-header': Flags.string({
      description: 'request header whose value keys every event of the request (instead of --key-field)',
    }),
    'timestamp-field': Flags.string({
      description:
        'field holding the CreateTime (a number in --timestamp-unit, or an ISO 8601 time); default: time of writing',
    }),
    'timestamp-unit': Flags.string({
      description: 'unit of numbers in --timestamp-field: s, ms, us or ns [default: ms]',
      options: [...TIMESTAMP_UNITS],
      dependsOn: ['timestamp-field'],
    }),
    'allow-any-timestamp': Flags.boolean({
      description:
        'accept --timestamp-field times before 2000 or more than an hour ahead (refused by default: retention would ' +
        'delete them, they are in the wrong unit, or the broker refuses them)',
      dependsOn: ['timestamp-field'],
    }),
    host: Flags.string({description: 'address to listen on', default: '127.0.0.1'}),
    port: Flags.integer({
      description: 'port to listen on (0: any free port, logged)',
      default: 8081,
      min: 0,
      max: 65_535,
    }),
    'max-request-bytes': Flags.integer({
      description: 'largest request body accepted (larger: 413)',
      default: 1_048_576,
      min: 1,
    }),
    'max-event-bytes': Flags.integer({
      description: 'largest single event accepted (larger: 400 naming its line)',
      default: 131_072,
      min: 1,
    }),
    'ack-timeout': Flags.string({
      description: 'how long a request waits for its acknowledgements before answering 503',
      default: '10s',
    }),
    'idempotency-window': Flags.string({
      description: 'how long an Idempotency-Key is remembered after its last use',
      default: '15m',
    }),
    'idempotency-keys': Flags.integer({
      description: 'most Idempotency-Keys remembered (least recently used forgotten first)',
      default: 100_000,
      min: 1,
    }),
    'queue-messages': Flags.integer({
      description: 'librdkafka queue limit in events; requests get 503 past 80% of it',
      default: 100_000,
      min: 100,
    }),
    'queue-bytes': Flags.integer({
      description: 'librdkafka queue limit in bytes; requests get 503 past 80% of it',
      default: 268_435_456,
      min: 1_048_576,
    }),
    linger: Flags.string({
      description: 'how long librdkafka waits to fill a batch (latency against throughput)',
      default: '5ms',
    }),
    'no-auth': Flags.boolean({
      description:
        'accept requests without a token (only with a loopback --host, e.g. behind a proxy that authenticates)',
    }),
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
    grace: Flags.string({description: 'after SIGTERM, how long requests under way may finish', default: '10s'}),
    'message-timeout': Flags.string({
      description: 'how long librdkafka retries an accepted event (e.g. through a broker restart) before failing it',
      default: '5m',
    }),
  }

  async run(): Promise<IngestSummary> {
    const {flags} = this
    if (flags['key-field'] !== undefined && flags['key-header'] !== undefined) {
      throw invalidArgument(
        '--key-field and --key-header cannot both be given',
        'key events by a field of each event (--key-field), or all events of a request by one of its headers ' +
          '(--key-header)',
      )
    }
    const summary = await serveIngest(this.settings, {
      topic: flags.topic,
      key:
        flags['key-header'] === undefined ? {field: flags['key-field'] ?? 'webhook_id'} : {header: flags['key-header']},
      timestampField: flags['timestamp-field'],
      timestampUnit: flags['timestamp-unit'] as TimestampUnit | undefined,
      allowAnyTimestamp: flags['allow-any-timestamp'],
      host: flags.host,
      port: flags.port,
      maxRequestBytes: flags['max-request-bytes'],
      maxEventBytes: flags['max-event-bytes'],
      ackTimeoutMs: parseDuration(flags['ack-timeout'], '--ack-timeout'),
      idempotencyWindowMs: parseDuration(flags['idempotency-window'], '--idempotency-window'),
      idempotencyMaxKeys: flags['idempotency-keys'],
      queue: {messages: flags['queue-messages'], bytes: flags['queue-bytes']},
      lingerMs: parseDuration(flags.linger, '--linger'),
      messageTimeoutMs: parseDuration(flags['message-timeout'], '--message-timeout'),
      graceMs: parseDuration(flags.grace, '--grace'),
      // With --no-auth no token is read: a broken token list does not stop a local server.
      tokens: flags['no-auth'] ? [] : resolveIngestTokens(flags.context),
      auth: !flags['no-auth'],
      authFailures: flags['auth-failures'],
      authFailureWindowMs: parseDuration(flags['auth-failure-window'], '--auth-failure-window'),
      trustProxy: flags['trust-proxy'],
    })
    this.print(
      paint.green(
        `stopped; ${formatCount(summary.eventsWritten)} ${plural(summary.eventsWritten, 'event')} ` +
          `written to ${summary.topic}`,
      ),
    )
    this.print(
      details([
        ['requests', formatCount(summary.requests)],
        ['events failed', formatCount(summary.eventsFailed)],
        ['seconds', summary.seconds.toFixed(1)],
      ]),
    )
    return summary
  }
}
