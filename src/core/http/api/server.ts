import {randomInt} from 'node:crypto'

import type {FastifyReply, FastifyRequest} from 'fastify'

import {openPool, type Pool} from '../../db/database.js'
import {connectAdmin, type AdminClient} from '../../kafka/client.js'
import {getJob, listJobs, parseJobId, type JobState, type ReplayJob} from '../../replay/store/jobs/index.js'
import {logView, submitReplayOn, type ReplayLogView} from '../../replay/submit-replay.js'
import {UserError} from '../../shared/errors.js'
import type {ApiTokenSpec, Settings} from '../../shared/settings.js'
import {parseTime} from '../../shared/time.js'
import {checkRegisteredWebhook, crcCheckFailed, registerWebhook} from '../../webhooks/registration.js'
import {loadSecretKey} from '../../webhooks/secret-key.js'
import {WebhookSecrets} from '../../webhooks/secrets.js'
import {getWebhook, listWebhooks, removeWebhook, type Webhook} from '../../webhooks/store.js'
import {validateTrustedProxies} from '../auth.js'
import {createHttpServer, type HttpServer} from '../server-common.js'
import {AuthBlocked, canSee, rateLimited, requireWebhook, TokenAuthority, type Caller} from './auth.js'
import {frameworkErrorBody, notFound, translateError, TwitterHttpError} from './twitter-errors.js'

/**
 * The Replay API: Twitter's Account Activity Replay and webhook registration endpoints over the
 * same core functions the CLI calls (submitReplay, jobStatus, listJobs, the webhook registry).
 *
 *   POST   /1.1/account_activity/replay/webhooks/:webhook_id/subscriptions/all.json?from_date=&to_date=
 *   GET    /1.1/account_activity/replay/jobs/:job_id.json                 (the customer's view of replay status)
 *   GET    /1.1/account_activity/replay/webhooks/:webhook_id/jobs.json     (the same, of replay list)
 *   POST   /1.1/account_activity/all/:env_name/webhooks.json?url=          (CRC check first)
 *   GET    /1.1/account_activity/all/webhooks.json, /all/:env_name/webhooks.json
 *   PUT    /1.1/account_activity/all/:env_name/webhooks/:webhook_id.json   (CRC check again)
 *   DELETE /1.1/account_activity/all/:env_name/webhooks/:webhook_id.json
 *
 * There is one environment: :env_name is accepted (a plain name) and otherwise ignored.
 */

export interface ApiServerOptions {
  tokens: ApiTokenSpec[]
  /** The delivery log replays read. */
  topic: string
  /** How far back from_date may reach. */
  retentionMs: number
  allowPrivateTargets: boolean
  /** Requests per window for tokens without their own rateLimit. */
  defaultRateLimit: number
  rateWindowMs: number
  /** Failed authentications a client address may have per window before it is answered 429/88. */
  authFailures: number
  authFailureWindowMs: number
  /** Reverse proxies whose X-Forwarded-For names the client address (the throttle's key). */
  trustProxy?: string[]
  crcTimeoutMs?: number
  graceMs?: number
  bodyLimit?: number
  /** All headers of a request must arrive within this (slow-loris clients are cut). */
  headersTimeoutMs?: number
  logStream?: NodeJS.WritableStream
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent'
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller
  }
}

const TWITTER_MINUTE = {type: 'string', pattern: '^[0-9]{12}$'} as const
const PLAIN_NAME = {type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$'} as const
const TOPIC_CHECK_TTL_MS = 10_000

/** "2016-06-02T23:54:02Z": Twitter's created_at of a replay job (seconds, no fraction). */
const secondsIso = (iso: string) => iso.replace(/\.\d+Z$/, 'Z')
/** "2016-06-02 23:54:02 +0000": Twitter's created_timestamp of a webhook. */
const twitterTimestamp = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000`

/** "201606022354": Twitter's from_date / to_date. */
const twitterMinute = (ms: number) => new Date(ms).toISOString().replace(/[-T:]/g, '').slice(0, 12)

function twitterWebhook(webhook: Webhook) {
  return {
    id: webhook.id,
    url: webhook.url,
    valid: webhook.state === 'valid',
    created_timestamp: twitterTimestamp(webhook.createdAt),
  }
}

/** Twitter's words for a job's state; an ended job's is the job_state its completion event carried. */
const JOB_STATE: Record<JobState, string> = {
  OPEN: 'Queued',
  STARTED: 'In progress',
  ONGOING: 'In progress',
  COMPLETED: 'Complete',
  FAILED: 'Incomplete',
  CANCELLED: 'Incomplete',
}

function jobStateDescription(job: ReplayJob): string {
  switch (job.state) {
    case 'OPEN':
      return 'Waiting for a worker'
    case 'STARTED':
    case 'ONGOING':
      return 'Replaying events'
    case 'COMPLETED':
      return job.partial
        ? 'Replayed every event still held: the start of the range was no longer held'
        : 'Replayed every event in the range'
    case 'FAILED':
      return 'Stopped before the end of the range: events after the last one delivered were not sent'
    case 'CANCELLED':
      return 'Cancelled before the end of the range'
  }
}

/**
 * A replay job as a customer sees it. Chosen field by field, not filtered from the operator's
 * document (`replay status --json`): worker identities (owner host:pid, lease token), attempts,
 * topics, partitions, offsets and chunk bookkeeping, and last_error (which names them) stay out,
 * and a field added to the job later stays out until it is added here.
 */
function twitterJob(job: ReplayJob) {
  return {
    job_id: String(job.id),
    webhook_id: job.webhookId,
    from_date: twitterMinute(job.fromMs),
    to_date: twitterMinute(job.toMs),
    created_at: secondsIso(job.createdAt),
    finished_at: job.finishedAt === null ? null : secondsIso(job.finishedAt),
    job_state: JOB_STATE[job.state],
    job_state_description: jobStateDescription(job),
    events_delivered: job.delivered,
  }
}

export async function createApiServer(settings: Settings, options: ApiServerOptions): Promise<HttpServer> {
  if (options.tokens.length === 0) {
    throw new UserError(
      'INVALID_CONFIG',
      'the API has no tokens: every request would be refused',
      'add "apiTokens" to the config context, or set REPLAYCTL_API_TOKENS (see the README, "Run it as a service")',
    )
  }
  validateTrustedProxies(options.trustProxy)
  const authority = new TokenAuthority(options.tokens, options.defaultRateLimit, options.rateWindowMs, {
    maxFailures: options.authFailures,
    windowMs: options.authFailureWindowMs,
  })
  // Webhook registration and re-validation need the secrets' key: a missing or wrong one stops the
  // server from starting rather than failing those requests.
  const key = loadSecretKey(settings.secretKey)
  const pool: Pool = await openPool(settings.mysqlUrl, {timeoutMs: settings.timeoutMs, connectionLimit: 10})
  let secrets: WebhookSecrets
  try {
    secrets = await WebhookSecrets.open(pool, key)
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }

  // One admin client for the server's life, connected on first use; topics known to exist are
  // not asked about again for a while.
  let admin: Promise<AdminClient> | undefined
  const cache = new Map<string, {until: number; value: Promise<unknown>}>()
  const cached = <T>(key: string, load: (admin: AdminClient) => Promise<T>): Promise<T> => {
    const hit = cache.get(key)
    if (hit && hit.until > Date.now()) return hit.value as Promise<T>
    admin ??= connectAdmin(settings).catch((error: unknown) => {
      admin = undefined
      throw error
    })
    const value = admin.then(load)
    cache.set(key, {until: Date.now() + TOPIC_CHECK_TTL_MS, value})
    value.catch(() => cache.delete(key))
    return value
  }
  // Partition counts and the oldest record a partition holds change slowly (a growth, retention):
  // asked of Kafka once per TOPIC_CHECK_TTL_MS, not at every request.
  const log: ReplayLogView = {
    partitionCount: (topic) =>
      cached(`count:${topic}`, (connected) => logView(settings, connected).partitionCount(topic)),
    oldestRecord: (topic, partition) =>
      cached(`oldest:${topic}:${partition}`, (connected) =>
        logView(settings, connected).oldestRecord(topic, partition),
      ),
  }
  const policy = {allowPrivate: options.allowPrivateTargets, timeoutMs: options.crcTimeoutMs}

  const server = createHttpServer({
    name: 'api',
    bodyLimit: options.bodyLimit ?? 16 * 1024,
    graceMs: options.graceMs,
    cleanup: async () => {
      await pool.end().catch(() => {})
      if (admin) (await admin.catch(() => undefined))?.disconnect()
    },
    trustProxy: options.trustProxy,
    headersTimeoutMs: options.headersTimeoutMs,
    logStream: options.logStream,
    logLevel: options.logLevel,
    errorBody: frameworkErrorBody,
    translateError,
    health: async () => {
      await pool.query('SELECT 1').catch(() => {
        throw new UserError('DATABASE_UNAVAILABLE', 'the database does not answer')
      })
      return {database: 'ok'}
    },
  })
  const {app} = server

  app.addHook('onRequest', async (request, reply) => {
    // /healthz and /metrics are open to monitoring (server-common marks them public).
    if (request.routeOptions.config.public) return
    let caller: Caller
    try {
      caller = authority.authenticate(request.headers.authorization, request.ip)
    } catch (error) {
      if (error instanceof AuthBlocked) {
        void reply.header('x-rate-limit-limit', error.block.limit)
        void reply.header('x-rate-limit-remaining', 0)
        void reply.header('x-rate-limit-reset', error.block.resetAt)
      }
      throw error
    }
    const allowed = authority.take(caller)
    void reply.header('x-rate-limit-limit', caller.bucket.limit)
    void reply.header('x-rate-limit-remaining', caller.bucket.remaining)
    void reply.header('x-rate-limit-reset', caller.bucket.resetAt)
    if (!allowed) throw rateLimited()
    request.caller = caller
  })
  // Scope before validation: a token learns nothing about another webhook, not even which
  // parameters its requests would need, nor whether it exists (the answer is the 404 of a
  // webhook that does not).
  app.addHook('preValidation', async (request) => {
    const webhookId = (request.params as {webhook_id?: string} | undefined)?.webhook_id
    if (webhookId !== undefined && request.caller && !canSee(request.caller, webhookId)) throw notFound()
  })

  const caller = (request: FastifyRequest) => request.caller!

  app.post<{Params: {webhook_id: string}; Querystring: {from_date: string; to_date: string}}>(
    '/1.1/account_activity/replay/webhooks/:webhook_id/subscriptions/all.json',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['from_date', 'to_date'],
          properties: {from_date: TWITTER_MINUTE, to_date: TWITTER_MINUTE},
        },
      },
    },
    async (request, reply) => {
      const fromMs = parseTime(request.query.from_date, 'from_date')
      const toMs = parseTime(request.query.to_date, 'to_date')
      const job = await submitReplayOn(pool, log, {
        webhookId: request.params.webhook_id,
        fromMs,
        toMs,
        topic: options.topic,
        retentionMs: options.retentionMs,
      })
      request.log.info({job: job.id, webhook: job.webhookId, token: caller(request).tokenIndex}, 'replay job queued')
      return reply.code(202).send({job_id: String(job.id), created_at: secondsIso(job.createdAt)})
    },
  )

  app.get<{Params: {job_id: string}}>('/1.1/account_activity/replay/jobs/:job_id.json', async (request) => {
    const job = await getJob(pool, parseJobId(request.params.job_id))
    // Another token's job is answered as one that does not exist: job ids cannot be enumerated.
    if (!canSee(caller(request), job.webhookId)) throw notFound()
    return twitterJob(job)
  })

  app.get<{Params: {webhook_id: string}; Querystring: {state?: string; limit?: string}}>(
    '/1.1/account_activity/replay/webhooks/:webhook_id/jobs.json',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            state: {type: 'string', maxLength: 16},
            limit: {type: 'string', pattern: '^(1000|[1-9][0-9]{0,2})$'},
          },
        },
      },
    },
    async (request) => {
      await getWebhook(pool, request.params.webhook_id)
      return (
        await listJobs(pool, {
          webhookId: request.params.webhook_id,
          state: request.query.state,
          limit: request.query.limit,
        })
      ).map(twitterJob)
    },
  )

  app.post<{
    Params: {env_name: string}
    Querystring: {url?: string; webhook_id?: string}
    Body: {url?: string; webhook_id?: string; secret?: string} | undefined
  }>(
    '/1.1/account_activity/all/:env_name/webhooks.json',
    {
      schema: {
        params: {type: 'object', properties: {env_name: PLAIN_NAME}},
        querystring: {
          type: 'object',
          properties: {url: {type: 'string', maxLength: 2048}, webhook_id: {type: 'string', maxLength: 64}},
        },
        body: {
          type: ['object', 'null'],
          properties: {
            url: {type: 'string', maxLength: 2048},
            webhook_id: {type: 'string', maxLength: 64},
            secret: {type: 'string', maxLength: 255},
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const url = request.query.url ?? request.body?.url
      const secret = request.body?.secret
      if (url === undefined) throw new TwitterHttpError(400, 357, 'url parameter is missing')
      if (secret === undefined)
        throw new TwitterHttpError(
          400,
          357,
          'secret is missing: send {"secret": "<the consumer secret the endpoint signs with>"} as the JSON body',
        )
      const id = request.query.webhook_id ?? request.body?.webhook_id ?? generatedWebhookId()
      requireWebhook(caller(request), id)
      const webhook = await registerWebhook(pool, secrets, {id, url, secret}, policy)
      request.log.info({webhook: webhook.id, token: caller(request).tokenIndex}, 'webhook registered')
      return twitterWebhook(webhook)
    },
  )

  const listVisible = async (request: FastifyRequest) =>
    (await listWebhooks(pool)).filter((webhook) => canSee(caller(request), webhook.id)).map(twitterWebhook)
  app.get('/1.1/account_activity/all/webhooks.json', listVisible)
  app.get(
    '/1.1/account_activity/all/:env_name/webhooks.json',
    {schema: {params: {type: 'object', properties: {env_name: PLAIN_NAME}}}},
    listVisible,
  )

  const webhookParams = {schema: {params: {type: 'object', properties: {env_name: PLAIN_NAME}}}}
  app.put<{Params: {env_name: string; webhook_id: string}}>(
    '/1.1/account_activity/all/:env_name/webhooks/:webhook_id.json',
    webhookParams,
    async (request, reply: FastifyReply) => {
      const {check} = await checkRegisteredWebhook(pool, secrets, request.params.webhook_id, policy)
      if (!check.ok) throw crcCheckFailed(check)
      return reply.code(204).send()
    },
  )
  app.delete<{Params: {env_name: string; webhook_id: string}}>(
    '/1.1/account_activity/all/:env_name/webhooks/:webhook_id.json',
    webhookParams,
    async (request, reply: FastifyReply) => {
      await removeWebhook(pool, request.params.webhook_id)
      request.log.info({webhook: request.params.webhook_id, token: caller(request).tokenIndex}, 'webhook deleted')
      return reply.code(204).send()
    },
  )

  return server
}

/** A webhook id like Twitter's: 19 decimal digits. */
function generatedWebhookId(): string {
  return `1${Array.from({length: 18}, () => randomInt(10)).join('')}`
}
