import type {FastifyReply, FastifyRequest} from 'fastify'
import {Counter, Gauge, Histogram} from 'prom-client'

import {invalidArgument, UserError} from '../../shared/errors.js'
import type {IngestTokenSpec, Settings} from '../../shared/settings.js'
import type {TimestampUnit} from '../../kafka/event-time.js'
import {topicMetadata, withAdmin} from '../../kafka/topics.js'
import {BearerAuth, isLoopbackHost, validateTrustedProxies} from '../auth.js'
import {createHttpServer} from '../server-common.js'
import {ingestTokenEntries, outOfScope, type IngestScope} from './access.js'
import {compileRules, parseBody, type KeySource} from './events.js'
import {IdempotencyStore, MAX_KEY_LENGTH} from './idempotency.js'
import {Batch, EventState, IngestProducer, type QueueLimits} from './producer.js'

/**
 * The HTTP-to-Kafka ingest front (Chartbeat's design: one per front server, key from the request,
 * snappy). POST /events takes one JSON event or NDJSON; the answer is 2xx only once every event
 * of the request is acknowledged by all in-sync replicas. Anything else is a non-2xx that says how
 * many were written; a retry with the same Idempotency-Key writes only the rest. When the queue
 * nears its limits or no broker acknowledges, new requests get 503 + Retry-After instead of being
 * queued into loss. SIGTERM or SIGINT drains the server as every HTTP front does (../server-common.ts:
 * new requests refused, those under way finished), then everything accepted is flushed before
 * it resolves.
 *
 * Every POST carries `Authorization: Bearer <token>` (the shared model of ../auth.ts): no or an
 * unknown token is 401, a token writing a key or topic outside its scope 403, an address with too
 * many failed authentications 429 until its window ends; in each case nothing of the request is
 * written. Without tokens the server does not start, unless authentication is turned off
 * explicitly (`auth: false`), which only a loopback host may do.
 *
 * Also /healthz and Prometheus /metrics (open); logs are JSON lines on stderr (pino, through fastify).
 */
export interface IngestOptions {
  topic: string
  key: KeySource
  timestampField?: string
  timestampUnit?: TimestampUnit
  allowAnyTimestamp?: boolean
  host: string
  port: number
  maxRequestBytes: number
  maxEventBytes: number
  /** How long a request waits for its acknowledgements before answering 503. */
  ackTimeoutMs: number
  idempotencyWindowMs: number
  idempotencyMaxKeys: number
  queue: QueueLimits
  lingerMs: number
  /** librdkafka's message.timeout.ms: how long an accepted event is retried before it is failed. */
  messageTimeoutMs: number
  /** After SIGTERM, how long the requests under way may finish before their connections are cut. */
  graceMs: number
  /** Who may write, and what. */
  tokens: IngestTokenSpec[]
  /** false: no authentication (`--no-auth`), refused unless `host` is loopback. */
  auth: boolean
  /** Failed authentications a client address may have per window before it is answered 429. */
  authFailures: number
  authFailureWindowMs: number
  /** Reverse proxies whose X-Forwarded-For names the client address (the throttle's key). */
  trustProxy?: string[]
}

export interface IngestSummary {
  topic: string
  address: string
  requests: number
  eventsWritten: number
  eventsFailed: number
  seconds: number
}

const RETRY_AFTER_SECONDS = {broker_down: 5, queue_full: 1, not_acknowledged: 2} as const
type Refusal = keyof typeof RETRY_AFTER_SECONDS

declare module 'fastify' {
  interface FastifyRequest {
    /** What the request's token may write; null when authentication is off. */
    ingestScope: IngestScope | null
  }
}

export async function serveIngest(settings: Settings, options: IngestOptions): Promise<IngestSummary> {
  const rules = compileRules({
    key: options.key,
    timestampField: options.timestampField,
    timestampUnit: options.timestampUnit,
    allowAnyTimestamp: options.allowAnyTimestamp,
    maxEventBytes: options.maxEventBytes,
  })
  const auth = ingestAuth(options)
  validateTrustedProxies(options.trustProxy)
  await withAdmin(settings, (admin) => topicMetadata(settings, admin, options.topic))
  const producer = await IngestProducer.open(settings, options.topic, {
    limits: options.queue,
    lingerMs: options.lingerMs,
    messageTimeoutMs: options.messageTimeoutMs,
  })
  const idempotency = new IdempotencyStore({windowMs: options.idempotencyWindowMs, maxKeys: options.idempotencyMaxKeys})
  const started = Date.now()
  let requestCount = 0

  const server = createHttpServer({
    name: 'ingest',
    bodyLimit: options.maxRequestBytes,
    // A line per request would cost more than the request at thousands per second; refusals are logged.
    logRequests: false,
    trustProxy: options.trustProxy,
    graceMs: options.graceMs,
    // Every request has been answered by now; what they queued is written before the process ends.
    cleanup: async () => {
      log.info({queued: producer.health().queuedMessages}, 'flushing accepted events')
      await producer.close()
      log.info({requests: requestCount, ...producer.delivered}, 'flushed')
    },
    errorBody: (kind, message) => ({
      error: kind === 'body-too-large' ? `${message} (--max-request-bytes); send fewer events per request` : message,
    }),
    health: async () => {
      const health = producer.health()
      if (!health.brokerUp)
        throw new UserError('KAFKA_UNAVAILABLE', `no Kafka broker is acknowledging writes to ${options.topic}`)
      return {topic: options.topic, ...health}
    },
  })
  const {app, registry} = server
  const log = app.log.child({topic: options.topic})

  const requests = new Counter({
    name: 'replayctl_ingest_requests_total',
    help: 'POST /events requests, by HTTP status',
    labelNames: ['status'],
    registers: [registry],
  })
  const events = new Counter({
    name: 'replayctl_ingest_events_total',
    help: 'Events of requests answered 503 that were not written (outcome=unwritten)',
    labelNames: ['outcome'],
    registers: [registry],
  })
  new Gauge({
    name: 'replayctl_ingest_events_delivered',
    help: 'Events Kafka reported, by outcome: written (acknowledged by all in-sync replicas) or failed',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.set({outcome: 'written'}, producer.delivered.written)
      this.set({outcome: 'failed'}, producer.delivered.failed)
    },
  })
  // Every answer of POST /events counted by status in one place; label sets bound once, since
  // looking one up on every request costs more than the increment.
  const byStatus = new Map<number, ReturnType<typeof requests.labels>>()
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url !== '/events') return
    let counter = byStatus.get(reply.statusCode)
    if (!counter) byStatus.set(reply.statusCode, (counter = requests.labels({status: String(reply.statusCode)})))
    counter.inc()
  })
  const bytes = new Counter({
    name: 'replayctl_ingest_request_bytes_total',
    help: 'Request body bytes received on POST /events',
    registers: [registry],
  })
  const refused = new Counter({
    name: 'replayctl_ingest_refused_total',
    help: 'Requests answered 503, by reason (broker_down, queue_full, not_acknowledged)',
    labelNames: ['reason'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'replayctl_ingest_produce_latency_seconds',
    help: "From queueing a request's events to the acknowledgement of the last one",
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  new Gauge({
    name: 'replayctl_ingest_queue_messages',
    help: 'Events queued in librdkafka awaiting acknowledgement',
    registers: [registry],
    collect() {
      this.set(producer.health().queuedMessages)
    },
  })
  new Gauge({
    name: 'replayctl_ingest_queue_bytes',
    help: 'Bytes of events queued in librdkafka awaiting acknowledgement',
    registers: [registry],
    collect() {
      this.set(producer.health().queuedBytes)
    },
  })
  new Gauge({
    name: 'replayctl_ingest_broker_up',
    help: '1 while brokers acknowledge writes',
    registers: [registry],
    collect() {
      this.set(producer.health().brokerUp ? 1 : 0)
    },
  })
  new Gauge({
    name: 'replayctl_ingest_idempotency_keys',
    help: 'Idempotency-Keys remembered',
    registers: [registry],
    collect() {
      this.set(idempotency.size)
    },
  })

  producer.onBrokerState = (up) =>
    up
      ? log.info('brokers acknowledge writes again')
      : log.warn('all brokers are down: answering 503 until one is back')
  let lastFailureLog = 0
  producer.onDeliveryFailure = (error) => {
    if (Date.now() - lastFailureLog < 1000) return
    lastFailureLog = Date.now()
    log.error({err: error.message}, 'an event was not acknowledged by Kafka')
  }

  app.decorateRequest('ingestScope', null)
  if (auth) {
    // Before the body is read: a refused request costs no parsing, and nothing of it is written.
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.config.public) return
      const outcome = auth.check(request.headers.authorization, request.ip)
      if (outcome.ok) {
        if (!outcome.scope.topics(options.topic)) {
          return reply
            .code(403)
            .send({error: `this token may not write to topic ${options.topic}; nothing was written`, written: 0})
        }
        request.ingestScope = outcome.scope
        return
      }
      if (outcome.status === 429) {
        const {block} = outcome
        return reply
          .code(429)
          .header('retry-after', String(block.retryAfter))
          .header('x-rate-limit-limit', String(block.limit))
          .header('x-rate-limit-remaining', '0')
          .header('x-rate-limit-reset', String(block.resetAt))
          .send({
            error:
              'too many failed authentications from this address; ' +
              `try again in ${block.retryAfter} s; nothing was written`,
            written: 0,
          })
      }
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({error: 'missing or unknown token: send Authorization: Bearer <token>; nothing was written', written: 0})
    })
  }

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', {parseAs: 'buffer'}, (_request, body, done) => done(null, body))

  // One line per second at most: a broker outage under load would otherwise log every request.
  let lastRefusalLog = 0
  let refusalsSinceLog = 0
  const answerRefusal = (reply: FastifyReply, reason: Refusal, batch: Batch, keyed: boolean, message: string) => {
    const written = batch.count(EventState.WRITTEN)
    const pending = batch.count(EventState.PENDING)
    const total = batch.size
    refused.inc({reason})
    events.inc({outcome: 'unwritten'}, total - written)
    refusalsSinceLog++
    if (Date.now() - lastRefusalLog >= 1000) {
      log.warn({reason, events: total, written, pending, refusedSinceLastLine: refusalsSinceLog}, 'answered 503')
      lastRefusalLog = Date.now()
      refusalsSinceLog = 0
    }
    return reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_SECONDS[reason]))
      .send({
        error:
          `${message}; ${written} of ${total} events were written` +
          (pending ? ` and ${pending} are still in flight` : ''),
        events: total,
        written,
        pending,
        retry: keyed
          ? 'send the same request again with the same Idempotency-Key header: ' +
            'events already written are not written twice'
          : written + pending === 0
            ? 'send the same request again: none of it was written'
            : 'sending it again without an Idempotency-Key writes its written events twice; ' +
              'give requests an Idempotency-Key header',
      })
  }

  app.post('/events', async (request: FastifyRequest, reply: FastifyReply) => {
    requestCount++
    const body = (request.body as Buffer | undefined) ?? Buffer.alloc(0)
    bytes.inc(body.length)
    const headerKey = rules.keyHeader === null ? undefined : headerValue(request.headers[rules.keyHeader])
    const singleJson = (request.headers['content-type'] ?? '').startsWith('application/json')
    const parsed = parseBody(body, rules, headerKey, singleJson)
    if ('status' in parsed) {
      return reply.code(400).send({error: parsed.error, line: parsed.line, written: 0})
    }

    const {records} = parsed
    const outside = request.ingestScope === null ? undefined : outOfScope(request.ingestScope, records)
    if (outside) {
      return reply.code(403).send({
        error:
          `event ${outside.index} has the key '${outside.key}', which this token may not write; ` +
          'nothing of this request was written',
        written: 0,
      })
    }
    const idempotencyKey = headerValue(request.headers['idempotency-key'])
    let batch: Batch
    let release = () => {}
    if (idempotencyKey) {
      if (idempotencyKey.length > MAX_KEY_LENGTH) {
        return reply.code(400).send({
          error: `the Idempotency-Key is longer than ${MAX_KEY_LENGTH} characters; nothing was written`,
          line: null,
          written: 0,
        })
      }
      const claim = idempotency.claim(idempotencyKey, body, records.length)
      if ('conflict' in claim) {
        const status = claim.conflict === 'in_progress' ? 409 : 422
        return reply.code(status).send({
          error:
            claim.conflict === 'in_progress'
              ? 'a request with this Idempotency-Key is still under way; wait for its answer, then retry'
              : 'this Idempotency-Key was used with a different body; use a new key for new events',
        })
      }
      batch = claim.batch
      release = claim.release
    } else {
      batch = new Batch(records.length)
    }

    try {
      let toSend = 0
      let sendBytes = 0
      for (const [index, record] of records.entries()) {
        if (batch.states[index] === EventState.UNSENT || batch.states[index] === EventState.FAILED) {
          toSend++
          sendBytes += record.value.length
        }
      }
      if (toSend > 0) {
        const refusal = producer.refusal(toSend, sendBytes)
        if (refusal)
          return answerRefusal(
            reply,
            refusal,
            batch,
            Boolean(idempotencyKey),
            refusal === 'broker_down' ? 'no Kafka broker is acknowledging writes' : 'the producer queue is nearly full',
          )
        producer.send(batch, records)
      }
      const queuedAt = process.hrtime.bigint()
      const settled = await batch.settled(options.ackTimeoutMs)
      latency.observe(Number(process.hrtime.bigint() - queuedAt) / 1e9)
      const written = batch.count(EventState.WRITTEN)
      if (written < batch.size) {
        return answerRefusal(
          reply,
          'not_acknowledged',
          batch,
          Boolean(idempotencyKey),
          settled
            ? 'Kafka did not acknowledge every event'
            : `not every event was acknowledged within ${options.ackTimeoutMs} ms`,
        )
      }
      return reply.code(200).send({events: batch.size, written})
    } finally {
      release()
    }
  })

  producer.onFatal = (error) => {
    log.fatal({err: error.message}, 'the Kafka producer failed for good: stopping')
    server.stop(
      new UserError(
        'KAFKA_UNAVAILABLE',
        `the Kafka producer failed for good (${error.message}); ` +
          'requests under way were answered 503 with what was written',
        'start `ingest serve` again (the systemd unit restarts it); clients retry with their Idempotency-Key',
      ),
    )
  }
  const {url: address} = await server.serve(options.host, options.port, {
    topic: options.topic,
    key: rules.keyName,
    timestampField: options.timestampField ?? null,
    tokens: auth ? options.tokens.length : 'off (--no-auth)',
  })
  return {
    topic: options.topic,
    address,
    requests: requestCount,
    eventsWritten: producer.delivered.written,
    eventsFailed: producer.delivered.failed,
    seconds: (Date.now() - started) / 1000,
  }
}

/** The server's authentication, or null when it is off; refuses a server anyone could write to. */
function ingestAuth(options: IngestOptions): BearerAuth<IngestScope> | null {
  if (!options.auth) {
    if (!isLoopbackHost(options.host)) {
      throw invalidArgument(
        `--no-auth cannot be used with --host ${options.host}: ` +
          'anyone who reaches it could write events for any webhook',
        'listen on 127.0.0.1 (behind a proxy that authenticates), or give tokens ' +
          '(REPLAYCTL_INGEST_TOKENS or the context\'s "ingestTokens") and drop --no-auth',
      )
    }
    return null
  }
  if (options.tokens.length === 0) {
    throw new UserError(
      'INVALID_CONFIG',
      'ingest serve has no tokens: anyone who reaches it could write events for any webhook',
      'add "ingestTokens" to the config context or set REPLAYCTL_INGEST_TOKENS (see the README, "HTTP ingest"); ' +
        '--no-auth turns authentication off, on a loopback --host only',
    )
  }
  return new BearerAuth(ingestTokenEntries(options.tokens), {
    maxFailures: options.authFailures,
    windowMs: options.authFailureWindowMs,
  })
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
