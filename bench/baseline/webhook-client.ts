/* The webhook client as it was before issue #9 item 4 (the engine branch), kept only so bench/delivery.ts can measure before and after in one run; the ordered window did not change and is shared. */
import {Pool} from 'undici'

import {type EventHeaders, hashHex} from '../../src/core/replay/dedup.js'
import {BugError, UserError, invalidArgument} from '../../src/core/shared/errors.js'
import {
  STANDARD_WEBHOOKS_ID_HEADER,
  STANDARD_WEBHOOKS_SIGNATURE_HEADER,
  STANDARD_WEBHOOKS_TIMESTAMP_HEADER,
  TWITTER_SIGNATURE_HEADER,
  WebhookSigner,
} from '../../src/core/webhooks/signing.js'
import {TargetRefusedError, checkTarget, classifyAddress, displayUrl, guardedLookup, isAllowedAddress, targetNotAllowed} from '../../src/core/webhooks/url-guard.js'
import {LatencyHistogram} from '../../src/core/replay/delivery/latency.js'
import {TokenBucket} from '../../src/core/replay/delivery/rate-limit.js'
import {DEFAULT_RETRY, backoffDelay, parseRetryAfter, type RetryPolicy} from '../../src/core/replay/delivery/retry-policy.js'

/**
 * One job's HTTP client to one customer webhook: an undici Pool to the webhook's origin (keep-alive,
 * a connection cap), every event POSTed unchanged and signed (Twitter's and Standard Webhooks'
 * headers), a per-attempt timeout, retries by the retry policy and Retry-After, an optional rate
 * limit, and an AbortSignal after which no request is started.
 *
 * What counts as what (Standard Webhooks and Twitter's live delivery):
 *   2xx                       delivered
 *   408, 429, 5xx, timeouts,  retried (Retry-After honoured on any of these statuses, capped)
 *   connection errors/resets
 *   410                       permanent, and `gone`: the webhook asks not to be sent to again
 *   3xx, other 4xx            permanent for that event (redirects are never followed)
 */

export const DEFAULT_TIMEOUT_MS = 3000
export const DEFAULT_MAX_CONNECTIONS = 64

export interface ReplaySource {
  topic: string
  partition: number
}

export interface WebhookClientOptions {
  /** The webhook URL (http or https). */
  url: string
  /** The consumer secret: signs Twitter's header, and Standard Webhooks' (`whsec_...` decoded, else its UTF-8 bytes). */
  secret: string
  /** Sent as x-replay-job-id. */
  jobId: string
  /** With the event's offset, sent as x-replay-source: topic/partition@offset. */
  source?: ReplaySource
  /** Per attempt, from the request until the whole answer is read (default 3000). */
  timeoutMs?: number
  retry?: Partial<RetryPolicy>
  /** Most open connections to the webhook (default 64); keep it >= the window's maxInFlight. */
  maxConnections?: number
  /** Requests per second (every attempt counts), token bucket; unset or 0 = unlimited. */
  rateLimit?: number
  /** Requests the bucket may let through at once (default rateLimit / 10, at least 1). */
  rateBurst?: number
  /** Aborting stops everything at once: in-flight requests are cut and no request is started after. */
  signal?: AbortSignal
  /**
   * Asked before every request, retries included; false: start no request (the send ends
   * 'aborted'). A worker answers whether it can still prove it owns the job.
   */
  beforeRequest?: () => boolean | Promise<boolean>
  /** Allow loopback, private, link-local and CGNAT targets (local testing). */
  allowPrivate?: boolean
  /** Source of randomness for jitter, [0, 1) (tests). */
  random?: () => number
}

/** An event to deliver, as the worker read it. */
export interface DeliveryEvent {
  /** Its position in the window's order: the log offset, or a sequence number when several sources are merged. */
  offset: number
  /** Where it was read, for x-replay-source, when that is not the client's source at `offset`. */
  origin?: ReplaySource & {offset: number}
  /** The stored value, POSTed unchanged. */
  body: Buffer
  /** The dedup hash (dedup.eventKey); webhook-id is derived from it. */
  hash: bigint
  headers?: EventHeaders
}

export type SendOutcome = 'delivered' | 'failed' | 'gone' | 'aborted'

export interface SendResult {
  outcome: SendOutcome
  /** HTTP requests made for this event. */
  attempts: number
  /** Status of the last answer, if there was one. */
  status?: number
  /** Why it was not delivered (lower case, no trailing period). */
  reason?: string
  /** Duration of the last attempt. */
  latencyMs: number
  /** The Standard Webhooks webhook-id sent (the same on every attempt). */
  messageId: string
}

export interface LatencySummary {
  /** Successful (2xx) requests measured. */
  count: number
  meanMs: number
  /** Percentiles from a log-scale histogram: within about 10%. */
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface DeliveryStats {
  /** HTTP requests started. */
  requests: number
  /** Requests beyond each event's first. */
  retries: number
  /** Events (sends) delivered, failed permanently, and of those answered 410. */
  delivered: number
  failed: number
  gone: number
  /** Requests under way now (for a window: sends under way, backoff waits included). */
  inFlight: number
  /** Body bytes of delivered events. */
  bytes: number
  latency: LatencySummary
}

/** The Standard Webhooks webhook-id of an event: stable across retries and re-runs of the job. */
export function messageIdFor(hash: bigint): string {
  return `evt_${hashHex(hash)}`
}

/** x-replay-source: topic/partition@offset. */
export function replaySource(source: ReplaySource, offset: number): string {
  return `${source.topic}/${source.partition}@${offset}`
}
type AttemptResult =
  | {kind: 'delivered'; status: number; latencyMs: number}
  | {kind: 'retry'; status?: number; retryAfterMs?: number; reason: string; latencyMs: number}
  | {kind: 'permanent'; status?: number; gone: boolean; reason: string; latencyMs: number}
  | {kind: 'aborted'; latencyMs: number}

export interface OutgoingMessage {
  body: Buffer
  messageId: string
  source?: string
}

const RESPONSE_READ_LIMIT = 64 * 1024
const SNIPPET_LIMIT = 200

/** Reads (and discards past a few KB) an answer's body so the connection can be reused; the start as text. */
async function readSnippet(body: AsyncIterable<Buffer> & {destroy(): unknown}): Promise<string> {
  const kept: Buffer[] = []
  let keptBytes = 0
  let total = 0
  for await (const chunk of body) {
    if (keptBytes < SNIPPET_LIMIT) {
      const part = chunk.subarray(0, SNIPPET_LIMIT - keptBytes)
      kept.push(part)
      keptBytes += part.length
    }
    total += chunk.length
    if (total > RESPONSE_READ_LIMIT) break // leaving the loop destroys the body; the connection is dropped
  }
  return Buffer.concat(kept).toString('utf8').replace(/\s+/g, ' ').trim()
}

function errorCode(error: unknown): string {
  let current: unknown = error
  for (let depth = 0; current && depth < 4; depth++) {
    const code = (current as {code?: unknown}).code
    if (typeof code === 'string' && code !== 'UND_ERR') return code
    current = (current as {cause?: unknown}).cause
  }
  return (error as Error)?.message ?? 'unknown error'
}

function findTargetRefusal(error: unknown): TargetRefusedError | undefined {
  let current: unknown = error
  for (let depth = 0; current && depth < 4; depth++) {
    if (current instanceof TargetRefusedError) return current
    current = (current as {cause?: unknown}).cause
  }
  return undefined
}

/**
 * One webhook's HTTP client for one job. Construct with WebhookClient.create() to check the target
 * (DNS included) up front; every connection is checked again as it is made.
 */
export class WebhookClient {
  readonly url: URL
  readonly jobId: string
  readonly timeoutMs: number
  readonly retry: Required<RetryPolicy>
  readonly signal: AbortSignal | undefined
  private readonly beforeRequest: (() => boolean | Promise<boolean>) | undefined
  private readonly pool: Pool
  private readonly path: string
  private readonly signer: WebhookSigner
  private readonly source: ReplaySource | undefined
  private readonly limiter: TokenBucket | undefined
  private readonly random: () => number
  private readonly authorization: string | undefined
  private readonly histogram = new LatencyHistogram()
  private readonly counters = {requests: 0, retries: 0, delivered: 0, failed: 0, gone: 0, inFlight: 0, bytes: 0}
  private closed = false
  /**
   * What to cut when the signal aborts: sleeps and requests under way. One listener on the caller's
   * signal fans out to these (an AbortSignal warns past 10 listeners; 64 sends would add 128).
   */
  private readonly stoppers = new Set<() => void>()
  private readonly onAbort = () => {
    for (const stop of this.stoppers) stop()
    this.stoppers.clear()
    void this.pool.destroy().catch(() => {})
  }

  /** Checks the target (scheme, and every address its host resolves to) and builds the client. */
  static async create(options: WebhookClientOptions): Promise<WebhookClient> {
    await checkTarget(options.url, {allowPrivate: options.allowPrivate})
    return new WebhookClient(options)
  }

  /** Checks the scheme and an IP-literal host now; a host name is checked at each connection. */
  constructor(options: WebhookClientOptions) {
    let url: URL
    try {
      url = new URL(options.url)
    } catch {
      throw invalidArgument(`webhook url '${options.url}' is not a valid URL`, 'pass an absolute URL such as https://example.com/webhook')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UserError('TARGET_NOT_ALLOWED', `webhook url ${displayUrl(url)} uses ${url.protocol.replace(/:$/, '')}, not http or https`, 'register an http:// or https:// webhook url')
    }
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const kind = classifyAddress(host)
    if (kind && !isAllowedAddress(host, options.allowPrivate)) throw targetNotAllowed(displayUrl(url), host, kind)

    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!(timeoutMs > 0)) throw invalidArgument(`the delivery timeout must be positive, got ${timeoutMs} ms`, 'pass a timeout above 0')
    const retry = {...DEFAULT_RETRY, ...options.retry}
    if (!Number.isInteger(retry.attempts) || retry.attempts < 1) throw invalidArgument(`delivery attempts must be a whole number >= 1, got ${retry.attempts}`, 'use 1 or more attempts')
    if (!(retry.baseMs >= 0) || !(retry.capMs >= 0)) throw invalidArgument('retry backoff times must not be negative', 'pass a base and a cap of 0 ms or more')
    const connections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    if (!Number.isInteger(connections) || connections < 1) throw invalidArgument(`the connection cap must be a whole number >= 1, got ${connections}`, 'pass 1 or more connections')

    this.url = url
    this.jobId = options.jobId
    this.timeoutMs = timeoutMs
    this.retry = {...retry, retryAfterCapMs: retry.retryAfterCapMs ?? retry.capMs}
    this.signal = options.signal
    this.beforeRequest = options.beforeRequest
    this.source = options.source
    this.signer = new WebhookSigner(options.secret)
    this.random = options.random ?? Math.random
    this.limiter = options.rateLimit ? new TokenBucket(options.rateLimit, options.rateBurst) : undefined
    this.path = `${url.pathname}${url.search}`
    this.authorization = url.username || url.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
      : undefined
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      connect: {timeout: timeoutMs, lookup: guardedLookup(options.allowPrivate)},
    })
    if (this.signal?.aborted) this.onAbort()
    else this.signal?.addEventListener('abort', this.onAbort, {once: true})
  }

  get stats(): DeliveryStats {
    return {...this.counters, latency: this.histogram.summary()}
  }

  /** POSTs one event (its stored body unchanged) until it is delivered, fails for good, or the signal aborts. Never throws. */
  send(event: DeliveryEvent): Promise<SendResult> {
    return this.deliver({
      body: event.body,
      messageId: messageIdFor(event.hash),
      source: event.origin ? replaySource(event.origin, event.origin.offset) : this.source ? replaySource(this.source, event.offset) : undefined,
    })
  }

  /** POSTs a body the same way as an event (used for the completion event). */
  deliver(message: OutgoingMessage): Promise<SendResult> {
    if (this.closed) throw new BugError('WebhookClient used after close()')
    return this.deliverWithRetries(message)
  }

  /** Waits for requests under way, then closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.signal?.removeEventListener('abort', this.onAbort)
    if (this.pool.destroyed) return
    await this.pool.close()
  }

  /** Cuts every connection and request at once. */
  async destroy(): Promise<void> {
    this.closed = true
    this.signal?.removeEventListener('abort', this.onAbort)
    if (!this.pool.destroyed) await this.pool.destroy()
  }

  private async deliverWithRetries(message: OutgoingMessage): Promise<SendResult> {
    const twitter = this.signer.twitter(message.body)
    const {attempts: maxAttempts} = this.retry
    let attempts = 0
    let last: AttemptResult | undefined
    const aborted = (): SendResult => ({outcome: 'aborted', attempts, reason: 'delivery was stopped', latencyMs: last?.latencyMs ?? 0, messageId: message.messageId})

    while (attempts < maxAttempts) {
      if (attempts > 0) {
        const hint = last?.kind === 'retry' ? last.retryAfterMs : undefined
        const wait = hint !== undefined ? Math.min(hint, this.retry.retryAfterCapMs) : backoffDelay(attempts, this.retry, this.random)
        if (!(await this.sleep(wait))) return aborted()
      }
      if (this.limiter && !(await this.sleep(this.limiter.reserve()))) return aborted()
      if (this.beforeRequest && !(await this.beforeRequest())) return aborted()
      if (this.signal?.aborted || this.closed) return aborted()
      attempts++
      this.counters.requests++
      if (attempts > 1) this.counters.retries++
      last = await this.attempt(message, twitter)
      switch (last.kind) {
        case 'delivered':
          this.counters.delivered++
          this.counters.bytes += message.body.length
          return {outcome: 'delivered', attempts, status: last.status, latencyMs: last.latencyMs, messageId: message.messageId}
        case 'aborted':
          return aborted()
        case 'permanent':
          this.counters.failed++
          if (last.gone) this.counters.gone++
          return {outcome: last.gone ? 'gone' : 'failed', attempts, status: last.status, reason: last.reason, latencyMs: last.latencyMs, messageId: message.messageId}
        case 'retry':
          break
      }
    }
    this.counters.failed++
    const final = last as Extract<AttemptResult, {kind: 'retry'}>
    return {
      outcome: 'failed',
      attempts,
      status: final.status,
      reason: `${final.reason} (${attempts} attempt${attempts === 1 ? '' : 's'})`,
      latencyMs: final.latencyMs,
      messageId: message.messageId,
    }
  }

  /** Sleeps; resolves false at once (or now) if the signal aborts. */
  private sleep(ms: number): Promise<boolean> {
    if (this.signal?.aborted) return Promise.resolve(false)
    if (ms <= 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const stop = () => {
        clearTimeout(timer)
        resolve(false)
      }
      const timer = setTimeout(() => {
        this.stoppers.delete(stop)
        resolve(true)
      }, ms)
      this.stoppers.add(stop)
    })
  }

  private async attempt(message: OutgoingMessage, twitterSignature: string): Promise<AttemptResult> {
    const timestamp = Math.floor(Date.now() / 1000)
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'replayctl',
      'x-replay-job-id': this.jobId,
      [TWITTER_SIGNATURE_HEADER]: twitterSignature,
      [STANDARD_WEBHOOKS_ID_HEADER]: message.messageId,
      [STANDARD_WEBHOOKS_TIMESTAMP_HEADER]: String(timestamp),
      [STANDARD_WEBHOOKS_SIGNATURE_HEADER]: this.signer.standard(message.messageId, timestamp, message.body),
    }
    if (message.source) headers['x-replay-source'] = message.source
    if (this.authorization) headers.authorization = this.authorization

    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, this.timeoutMs)
    const onJobAbort = () => controller.abort()
    this.stoppers.add(onJobAbort)
    const started = performance.now()
    const elapsed = () => Math.round((performance.now() - started) * 100) / 100
    this.counters.inFlight++
    try {
      const response = await this.pool.request({path: this.path, method: 'POST', headers, body: message.body, signal: controller.signal})
      const status = response.statusCode
      const snippet = await readSnippet(response.body)
      const latencyMs = elapsed()
      return this.classify(status, response.headers['retry-after'], snippet, latencyMs)
    } catch (error) {
      const latencyMs = elapsed()
      if (this.signal?.aborted || this.closed) return {kind: 'aborted', latencyMs}
      if (timedOut) return {kind: 'retry', reason: `no answer within ${this.timeoutMs} ms`, latencyMs}
      const refused = findTargetRefusal(error)
      if (refused) {
        return {kind: 'permanent', gone: false, reason: `webhook url ${displayUrl(this.url)} resolves to ${refused.address}, an address replay does not send to`, latencyMs}
      }
      const code = errorCode(error)
      if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
        return {kind: 'permanent', gone: false, reason: `the request could not be made: ${(error as Error).message}`, latencyMs}
      }
      return {kind: 'retry', reason: `connection failed: ${code}`, latencyMs}
    } finally {
      clearTimeout(timer)
      this.stoppers.delete(onJobAbort)
      this.counters.inFlight--
    }
  }

  private classify(status: number, retryAfter: string | string[] | undefined, snippet: string, latencyMs: number): AttemptResult {
    const said = snippet ? `: ${snippet}` : ''
    if (status >= 200 && status < 300) {
      this.histogram.record(latencyMs)
      return {kind: 'delivered', status, latencyMs}
    }
    if (status === 408 || status === 429 || status >= 500) {
      return {kind: 'retry', status, retryAfterMs: parseRetryAfter(retryAfter), reason: `webhook answered ${status}${said}`, latencyMs}
    }
    if (status === 410) {
      return {kind: 'permanent', status, gone: true, reason: 'webhook answered 410 gone: it asks not to be sent to any more', latencyMs}
    }
    if (status >= 300 && status < 400) {
      return {kind: 'permanent', status, gone: false, reason: `webhook answered ${status}, a redirect (redirects are not followed)`, latencyMs}
    }
    return {kind: 'permanent', status, gone: false, reason: `webhook answered ${status}${said}`, latencyMs}
  }
}
