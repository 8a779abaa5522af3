import {Pool, type Dispatcher} from 'undici'

import {type EventHeaders, hashHex} from '../dedup.js'
import {BugError, UserError, invalidArgument} from '../../shared/errors.js'
import {
  STANDARD_WEBHOOKS_ID_HEADER,
  STANDARD_WEBHOOKS_SIGNATURE_HEADER,
  STANDARD_WEBHOOKS_TIMESTAMP_HEADER,
  TWITTER_SIGNATURE_HEADER,
  WebhookSigner,
} from '../../webhooks/signing.js'
import {
  TargetRefusedError,
  checkTarget,
  classifyAddress,
  displayUrl,
  guardedLookup,
  isAllowedAddress,
  targetNotAllowed,
} from '../../webhooks/url-guard.js'
import {LatencyHistogram, type LatencySummary} from './latency.js'
import {TokenBucket} from './rate-limit.js'
import {DEFAULT_RETRY, backoffDelay, parseRetryAfter, type RetryPolicy} from './retry-policy.js'

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
  /**
   * The consumer secret: signs Twitter's header, and Standard Webhooks' (`whsec_...` decoded, else its UTF-8
   * bytes).
   */
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

export type {LatencySummary} from './latency.js'

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
  return sourcePrefix(source) + offset
}

function sourcePrefix(source: ReplaySource): string {
  return `${source.topic}/${source.partition}@`
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
 * One attempt on the wire, as undici's dispatch handler: no response stream, no AbortController.
 * It settles once: on the whole answer, an error, its deadline (the client's sweep), or the job's
 * abort; settling early cuts the request (or, if it is still queued, stops it before it is written).
 */
class Exchange implements Dispatcher.DispatchHandler {
  deadline: number
  private cut: ((reason?: Error) => void) | undefined
  private settled = false
  private status = 0
  private rawHeaders: Buffer[] | undefined
  // Made on the first body chunk: most answers to a replay (a 200) have no body.
  private kept: Buffer[] | undefined
  private keptBytes = 0
  private total = 0

  constructor(
    private readonly client: WebhookClient,
    private readonly started: number,
    private readonly resolve: (result: AttemptResult) => void,
  ) {
    this.deadline = started + client.timeoutMs
  }

  elapsed(): number {
    return Math.round((performance.now() - this.started) * 100) / 100
  }

  /** Ends the attempt with `result` now; the request, if under way or queued, is cut. */
  settle(result: AttemptResult): void {
    if (this.settled) return
    this.settled = true
    this.client.release(this)
    this.resolve(result)
    this.cut?.()
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.cut = abort
    if (this.settled) abort()
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.status = statusCode
    this.rawHeaders = rawHeaders
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.keptBytes < SNIPPET_LIMIT) {
      const part = chunk.subarray(0, SNIPPET_LIMIT - this.keptBytes)
      this.kept ??= []
      this.kept.push(part)
      this.keptBytes += part.length
    }
    this.total += chunk.length
    // Past the limit the rest is not read: the connection is dropped instead of reused.
    if (this.total > RESPONSE_READ_LIMIT) this.answered()
    return true
  }

  onComplete(): void {
    this.answered()
  }

  onError(error: Error): void {
    if (!this.settled) this.settle(this.client.failedAttempt(error, this.elapsed()))
  }

  private answered(): void {
    if (this.settled) return
    const snippet = this.kept ? Buffer.concat(this.kept).toString('utf8').replace(/\s+/g, ' ').trim() : ''
    this.settle(this.client.classify(this.status, this.rawHeaders, snippet, this.elapsed()))
  }
}

function stoppedAfter(attempts: number, last: AttemptResult | undefined, message: OutgoingMessage): SendResult {
  return {
    outcome: 'aborted',
    attempts,
    reason: 'delivery was stopped',
    latencyMs: last?.latencyMs ?? 0,
    messageId: message.messageId,
  }
}

/** The Retry-After value among undici's raw response headers. */
function retryAfterHeader(rawHeaders: Buffer[] | undefined): string | undefined {
  if (!rawHeaders) return undefined
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]
    if (name?.length === 11 && name.toString('latin1').toLowerCase() === 'retry-after')
      return rawHeaders[index + 1]?.toString('latin1')
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
  /** x-replay-source up to the offset, for events read from the client's source. */
  private readonly sourcePrefix: string | undefined
  private readonly limiter: TokenBucket | undefined
  private readonly random: () => number
  /** The headers every request carries, as undici's flat [name, value, ...] list. */
  private readonly fixedHeaders: string[]
  private readonly histogram = new LatencyHistogram()
  private readonly counters = {requests: 0, retries: 0, delivered: 0, failed: 0, gone: 0, inFlight: 0, bytes: 0}
  private closed = false
  /**
   * Backoff sleeps to cut when the signal aborts. One listener on the caller's signal fans out to
   * these and to the exchanges under way (an AbortSignal warns past 10 listeners).
   */
  private readonly stoppers = new Set<() => void>()
  /** Attempts under way: one sweep timer per client enforces their deadlines (no timer per request). */
  private readonly live = new Set<Exchange>()
  private sweeper: NodeJS.Timeout | undefined
  private readonly onAbort = () => {
    for (const stop of this.stoppers) stop()
    this.stoppers.clear()
    for (const exchange of this.live) exchange.settle({kind: 'aborted', latencyMs: exchange.elapsed()})
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
      throw invalidArgument(
        `webhook url '${options.url}' is not a valid URL`,
        'pass an absolute URL such as https://example.com/webhook',
      )
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UserError(
        'TARGET_NOT_ALLOWED',
        `webhook url ${displayUrl(url)} uses ${url.protocol.replace(/:$/, '')}, not http or https`,
        'register an http:// or https:// webhook url',
      )
    }
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const kind = classifyAddress(host)
    if (kind && !isAllowedAddress(host, options.allowPrivate)) throw targetNotAllowed(displayUrl(url), host, kind)

    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!(timeoutMs > 0))
      throw invalidArgument(`the delivery timeout must be positive, got ${timeoutMs} ms`, 'pass a timeout above 0')
    const retry = {...DEFAULT_RETRY, ...options.retry}
    if (!Number.isInteger(retry.attempts) || retry.attempts < 1)
      throw invalidArgument(
        `delivery attempts must be a whole number >= 1, got ${retry.attempts}`,
        'use 1 or more attempts',
      )
    if (!(retry.baseMs >= 0) || !(retry.capMs >= 0))
      throw invalidArgument('retry backoff times must not be negative', 'pass a base and a cap of 0 ms or more')
    const connections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    if (!Number.isInteger(connections) || connections < 1)
      throw invalidArgument(
        `the connection cap must be a whole number >= 1, got ${connections}`,
        'pass 1 or more connections',
      )

    this.url = url
    this.jobId = options.jobId
    this.timeoutMs = timeoutMs
    this.retry = {...retry, retryAfterCapMs: retry.retryAfterCapMs ?? retry.capMs}
    this.signal = options.signal
    this.beforeRequest = options.beforeRequest
    this.sourcePrefix = options.source && sourcePrefix(options.source)
    this.signer = new WebhookSigner(options.secret)
    this.random = options.random ?? Math.random
    this.limiter = options.rateLimit ? new TokenBucket(options.rateLimit, options.rateBurst) : undefined
    this.path = `${url.pathname}${url.search}`
    this.fixedHeaders = ['content-type', 'application/json', 'user-agent', 'replayctl', 'x-replay-job-id', this.jobId]
    if (url.username || url.password) {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
      this.fixedHeaders.push('authorization', `Basic ${Buffer.from(credentials).toString('base64')}`)
    }
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      // The client's own deadline (timeoutMs, whole answer) cuts slow requests: undici's idle timers would only
      // add per-request work.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: {timeout: timeoutMs, lookup: guardedLookup(options.allowPrivate)},
    })
    if (this.signal?.aborted) this.onAbort()
    else this.signal?.addEventListener('abort', this.onAbort, {once: true})
  }

  get stats(): DeliveryStats {
    return {...this.counters, latency: this.histogram.summary()}
  }

  /**
   * POSTs one event (its stored body unchanged) until it is delivered, fails for good, or the signal aborts.
   * Never throws.
   */
  send(event: DeliveryEvent): Promise<SendResult> {
    return this.deliver({
      body: event.body,
      messageId: messageIdFor(event.hash),
      source: event.origin
        ? replaySource(event.origin, event.origin.offset)
        : this.sourcePrefix && this.sourcePrefix + event.offset,
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

    while (attempts < maxAttempts) {
      if (attempts > 0) {
        const hint = last?.kind === 'retry' ? last.retryAfterMs : undefined
        const wait =
          hint !== undefined
            ? Math.min(hint, this.retry.retryAfterCapMs)
            : backoffDelay(attempts, this.retry, this.random)
        if (!(await this.sleep(wait))) return stoppedAfter(attempts, last, message)
      }
      if (this.limiter) {
        const wait = this.limiter.reserve()
        if (wait > 0 && !(await this.sleep(wait))) return stoppedAfter(attempts, last, message)
      }
      if (this.beforeRequest) {
        const held = this.beforeRequest()
        if (!(typeof held === 'boolean' ? held : await held)) return stoppedAfter(attempts, last, message)
      }
      if (this.signal?.aborted || this.closed) return stoppedAfter(attempts, last, message)
      attempts++
      this.counters.requests++
      if (attempts > 1) this.counters.retries++
      last = await this.attempt(message, twitter)
      switch (last.kind) {
        case 'delivered':
          this.counters.delivered++
          this.counters.bytes += message.body.length
          return {
            outcome: 'delivered',
            attempts,
            status: last.status,
            latencyMs: last.latencyMs,
            messageId: message.messageId,
          }
        case 'aborted':
          return stoppedAfter(attempts, last, message)
        case 'permanent':
          this.counters.failed++
          if (last.gone) this.counters.gone++
          return {
            outcome: last.gone ? 'gone' : 'failed',
            attempts,
            status: last.status,
            reason: last.reason,
            latencyMs: last.latencyMs,
            messageId: message.messageId,
          }
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

  private attempt(message: OutgoingMessage, twitterSignature: string): Promise<AttemptResult> {
    const timestamp = Math.floor(Date.now() / 1000)
    const headers = this.fixedHeaders.concat(
      TWITTER_SIGNATURE_HEADER,
      twitterSignature,
      STANDARD_WEBHOOKS_ID_HEADER,
      message.messageId,
      STANDARD_WEBHOOKS_TIMESTAMP_HEADER,
      String(timestamp),
      STANDARD_WEBHOOKS_SIGNATURE_HEADER,
      this.signer.standard(message.messageId, timestamp, message.body),
    )
    if (message.source) headers.push('x-replay-source', message.source)
    return new Promise((resolve) => {
      const exchange = new Exchange(this, performance.now(), resolve)
      this.live.add(exchange)
      this.counters.inFlight++
      if (!this.sweeper) this.sweeper = setInterval(this.sweep, Math.max(5, Math.min(250, this.timeoutMs / 8)))
      try {
        this.pool.dispatch({path: this.path, method: 'POST', headers, body: message.body}, exchange)
      } catch (error) {
        exchange.onError(error as Error)
      }
    })
  }

  /** Ends every attempt past its deadline (a deadline is met within an eighth of the timeout, at most 250 ms late). */
  private readonly sweep = () => {
    const now = performance.now()
    for (const exchange of this.live) {
      if (now >= exchange.deadline)
        exchange.settle({kind: 'retry', reason: `no answer within ${this.timeoutMs} ms`, latencyMs: exchange.elapsed()})
    }
  }

  /** An attempt has settled (called by the Exchange). */
  release(exchange: Exchange): void {
    this.live.delete(exchange)
    this.counters.inFlight--
    if (this.live.size === 0 && this.sweeper) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  /** What a request that ended in an error (no whole answer) counts as. */
  failedAttempt(error: unknown, latencyMs: number): AttemptResult {
    if (this.signal?.aborted || this.closed) return {kind: 'aborted', latencyMs}
    const refused = findTargetRefusal(error)
    if (refused) {
      return {
        kind: 'permanent',
        gone: false,
        reason:
          `webhook url ${displayUrl(this.url)} resolves to ${refused.address}, ` + 'an address replay does not send to',
        latencyMs,
      }
    }
    const code = errorCode(error)
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
      return {
        kind: 'permanent',
        gone: false,
        reason: `the request could not be made: ${(error as Error).message}`,
        latencyMs,
      }
    }
    return {kind: 'retry', reason: `connection failed: ${code}`, latencyMs}
  }

  /** What an answer counts as (called by the Exchange). */
  classify(status: number, rawHeaders: Buffer[] | undefined, snippet: string, latencyMs: number): AttemptResult {
    const said = snippet ? `: ${snippet}` : ''
    if (status >= 200 && status < 300) {
      this.histogram.record(latencyMs)
      return {kind: 'delivered', status, latencyMs}
    }
    if (status === 408 || status === 429 || status >= 500) {
      return {
        kind: 'retry',
        status,
        retryAfterMs: parseRetryAfter(retryAfterHeader(rawHeaders)),
        reason: `webhook answered ${status}${said}`,
        latencyMs,
      }
    }
    if (status === 410) {
      return {
        kind: 'permanent',
        status,
        gone: true,
        reason: 'webhook answered 410 gone: it asks not to be sent to any more',
        latencyMs,
      }
    }
    if (status >= 300 && status < 400) {
      return {
        kind: 'permanent',
        status,
        gone: false,
        reason: `webhook answered ${status}, a redirect (redirects are not followed)`,
        latencyMs,
      }
    }
    return {kind: 'permanent', status, gone: false, reason: `webhook answered ${status}${said}`, latencyMs}
  }
}
