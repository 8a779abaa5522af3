import {Pool} from 'undici'

import {type EventHeaders, hashHex, xxh64} from './dedup.js'
import {BugError, UserError, invalidArgument} from '../shared/errors.js'
import {
  STANDARD_WEBHOOKS_ID_HEADER,
  STANDARD_WEBHOOKS_SIGNATURE_HEADER,
  STANDARD_WEBHOOKS_TIMESTAMP_HEADER,
  TWITTER_SIGNATURE_HEADER,
  WebhookSigner,
} from '../webhooks/signing.js'
import {TargetRefusedError, checkTarget, classifyAddress, displayUrl, guardedLookup, isAllowedAddress, targetNotAllowed} from '../webhooks/url-guard.js'

/**
 * The HTTP delivery engine of a replay: it POSTs stored events to one customer webhook, signed, with
 * retries, a rate limit and an ordered window whose checkpoint never passes an undelivered event.
 *
 *   WebhookClient    one per job: an undici Pool to the webhook's origin (keep-alive, a connection
 *                    cap), send(event) with per-attempt timeout, retries with exponential backoff and
 *                    full jitter, Retry-After, an optional token-bucket rate limit, and an AbortSignal
 *                    after which no request is started.
 *   OrderedDelivery  the worker pushes events in log order; up to maxInFlight sends run at once;
 *                    `checkpoint` is the offset below which every event has been delivered.
 *   sendCompletionEvent  Twitter's final {"replay_job_status": ...} POST.
 *
 * What counts as what (Standard Webhooks and Twitter's live delivery):
 *   2xx                       delivered
 *   408, 429, 5xx, timeouts,  retried (Retry-After honoured on any of these statuses, capped)
 *   connection errors/resets
 *   410                       permanent, and `gone`: the webhook asks not to be sent to again
 *   3xx, other 4xx            permanent for that event (redirects are never followed)
 */

export interface RetryPolicy {
  /** Attempts per event in all, the first included (default 6). */
  attempts: number
  /** Backoff before retry n is uniform in [0, min(capMs, baseMs * 2^(n-1))) (full jitter). */
  baseMs: number
  capMs: number
  /** The longest Retry-After honoured (default capMs); longer asks wait this long. */
  retryAfterCapMs?: number
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = {attempts: 6, baseMs: 200, capMs: 30_000}
export const DEFAULT_TIMEOUT_MS = 3000
export const DEFAULT_MAX_CONNECTIONS = 64
/** Twitter's cap on replay delivery, events per second per webhook. */
export const TWITTER_RATE_LIMIT = 2500

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
  offset: number
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

/**
 * Retry-After as milliseconds: delay-seconds or an HTTP-date; undefined when absent or malformed.
 * A date in the past means now (0).
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!text) return undefined
  if (/^\d+$/.test(text)) return Number(text) * 1000
  if (!/^[A-Za-z]{3}/.test(text)) return undefined // an HTTP-date starts with the day's name
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}

/** Backoff before retry `retry` (1 for the first retry): full jitter, uniform in [0, min(cap, base * 2^(retry-1))). */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, retry - 1))
  return Math.floor(random() * ceiling)
}

/** A token bucket: `rate` tokens a second, at most `burst` saved up. Callers reserve in turn. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    readonly rate: number,
    readonly burst = Math.max(1, Math.ceil(rate / 10)),
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw invalidArgument(`rate limit must be a positive number of events per second, got ${rate}`, 'use a rate above 0 events per second, or none for no limit')
    this.tokens = burst
    this.last = performance.now()
  }

  /** Takes a token; the milliseconds to wait before using it (0 when one was there). */
  reserve(): number {
    const now = performance.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000)
    this.last = now
    this.tokens -= 1
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate
  }

}

/** Successful request durations in log-scale buckets (about 10% wide) from 0.05 ms. */
class LatencyHistogram {
  private static readonly BASE = 0.05
  private static readonly GROWTH = 1.1
  private readonly buckets = new Uint32Array(200)
  private count = 0
  private sum = 0
  private max = 0

  record(ms: number): void {
    const index = ms <= LatencyHistogram.BASE ? 0 : Math.min(this.buckets.length - 1, Math.ceil(Math.log(ms / LatencyHistogram.BASE) / Math.log(LatencyHistogram.GROWTH)))
    this.buckets[index]!++
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  private quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!
      if (seen >= rank) return Math.min(this.max, LatencyHistogram.BASE * LatencyHistogram.GROWTH ** i)
    }
    return this.max
  }

  summary(): LatencySummary {
    const round = (ms: number) => Math.round(ms * 100) / 100
    return {
      count: this.count,
      meanMs: round(this.count ? this.sum / this.count : 0),
      p50Ms: round(this.quantile(0.5)),
      p99Ms: round(this.quantile(0.99)),
      maxMs: round(this.max),
    }
  }
}

type AttemptResult =
  | {kind: 'delivered'; status: number; latencyMs: number}
  | {kind: 'retry'; status?: number; retryAfterMs?: number; reason: string; latencyMs: number}
  | {kind: 'permanent'; status?: number; gone: boolean; reason: string; latencyMs: number}
  | {kind: 'aborted'; latencyMs: number}

interface OutgoingMessage {
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
      source: this.source ? replaySource(this.source, event.offset) : undefined,
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

export interface CompletionEvent {
  webhookId: string
  jobId: string
  jobState: 'Complete' | 'Incomplete'
  description: string
}

/** The body of Twitter's final replay event. */
export function completionEventBody(event: CompletionEvent): Buffer {
  return Buffer.from(
    JSON.stringify({
      replay_job_status: {
        webhook_id: event.webhookId,
        job_state: event.jobState,
        job_state_description: event.description,
        job_id: event.jobId,
      },
    }),
    'utf8',
  )
}

/**
 * POSTs `{"replay_job_status": {webhook_id, job_state, job_state_description, job_id}}`, signed and
 * retried like an event. Its webhook-id is derived from the job id, so it is stable across retries.
 */
export function sendCompletionEvent(client: WebhookClient, event: CompletionEvent): Promise<SendResult> {
  const body = completionEventBody(event)
  return client.deliver({body, messageId: messageIdFor(xxh64(Buffer.from(`replay_job_status:${event.jobId}`, 'utf8')))})
}

export interface OrderedDeliveryOptions {
  /** The first offset of the range: the checkpoint before anything is pushed or scanned. */
  startOffset: number
  /** Sends running at once (default 1: strict log order, each starts after the previous is delivered). */
  maxInFlight?: number
  /**
   * Events between the checkpoint and the newest pushed, delivered or not (default
   * max(1024, 16 * maxInFlight)): bounds what piles up behind an event still being retried.
   */
  maxOutstanding?: number
}

export interface DeliveryFailure {
  /** The lowest offset that failed for good: the checkpoint never passes it. */
  failedAt: number
  reason: string
  /** The webhook answered 410: end the job FAILED and mark the webhook invalid. */
  gone: boolean
  status?: number
  attempts: number
}

export interface WindowStats extends DeliveryStats {
  /** Events pushed into this window. */
  pushed: number
  /** Events pushed and not yet delivered (in flight, or waiting behind an undelivered one). */
  outstanding: number
  checkpoint: number
}

export interface WindowResult {
  /** Every event below this offset was delivered (or scanned and not meant for delivery). */
  checkpoint: number
  delivered: number
  failure?: DeliveryFailure
  /** The client's signal aborted (lease lost): the checkpoint still holds, but nothing more was sent. */
  aborted: boolean
}

/**
 * Ordered delivery with a window: the worker pushes events in log order and marks the offsets it
 * read but does not deliver with scanned(); `checkpoint` is the offset to resume from. When an
 * event fails for good the window stops: push() answers false, in-flight sends settle, and
 * drain() reports the failure.
 */
export class OrderedDelivery {
  readonly maxInFlight: number
  readonly maxOutstanding: number
  private readonly offsets: Float64Array
  private readonly done: Uint8Array
  private head = 0
  private tail = 0
  private position: number
  private lastPushed = -1
  private inFlight = 0
  private pushed = 0
  private delivered = 0
  private failed = 0
  private retries = 0
  private bytes = 0
  private stoppedFlag = false
  private abortedFlag = false
  private failureRecord: DeliveryFailure | undefined
  private waiters: Array<() => void> = []

  constructor(
    private readonly client: WebhookClient,
    options: OrderedDeliveryOptions,
  ) {
    const maxInFlight = options.maxInFlight ?? 1
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw invalidArgument(`max in flight must be a whole number >= 1, got ${maxInFlight}`, 'use 1 or more sends in flight')
    const maxOutstanding = options.maxOutstanding ?? Math.max(1024, 16 * maxInFlight)
    if (!Number.isInteger(maxOutstanding) || maxOutstanding < maxInFlight) throw invalidArgument(`max outstanding must be a whole number >= max in flight (${maxInFlight}), got ${maxOutstanding}`, 'allow at least as many outstanding events as sends in flight')
    if (!Number.isSafeInteger(options.startOffset) || options.startOffset < 0) throw invalidArgument(`start offset must be a whole number >= 0, got ${options.startOffset}`, 'start at the first offset of the range')
    this.maxInFlight = maxInFlight
    this.maxOutstanding = maxOutstanding
    this.offsets = new Float64Array(maxOutstanding)
    this.done = new Uint8Array(maxOutstanding)
    this.position = options.startOffset
  }

  /** The offset below which every event has been delivered (or scanned and not meant for delivery). */
  get checkpoint(): number {
    return this.head < this.tail ? this.offsets[this.head % this.maxOutstanding]! : this.position
  }

  /** True once nothing more will be sent: an event failed for good, or the client's signal aborted. */
  get stopped(): boolean {
    return this.stoppedFlag || this.client.signal?.aborted === true
  }

  get failure(): DeliveryFailure | undefined {
    return this.failureRecord
  }

  get aborted(): boolean {
    return this.abortedFlag || this.client.signal?.aborted === true
  }

  get stats(): WindowStats {
    const client = this.client.stats
    return {
      ...client,
      requests: client.requests,
      retries: this.retries,
      delivered: this.delivered,
      failed: this.failed,
      gone: this.failureRecord?.gone ? 1 : 0,
      inFlight: this.inFlight,
      bytes: this.bytes,
      pushed: this.pushed,
      outstanding: this.tail - this.head,
      checkpoint: this.checkpoint,
    }
  }

  /**
   * Starts delivering an event, waiting first while the window is full. Resolves true once its send
   * has started, false when the window has stopped (a failure, or abort): the event was not sent.
   * Offsets must increase, and must not be below an offset already passed to scanned().
   */
  async push(event: DeliveryEvent): Promise<boolean> {
    if (!Number.isSafeInteger(event.offset) || event.offset <= this.lastPushed || event.offset < this.position) {
      throw new BugError(`events must be pushed in log order: offset ${event.offset} after ${Math.max(this.lastPushed, this.position - 1)}`)
    }
    this.lastPushed = event.offset
    while (!this.stopped && (this.inFlight >= this.maxInFlight || this.tail - this.head >= this.maxOutstanding)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    if (this.stopped) {
      if (this.client.signal?.aborted) this.abortedFlag = true
      return false
    }
    const slot = this.tail % this.maxOutstanding
    this.offsets[slot] = event.offset
    this.done[slot] = 0
    const index = this.tail++
    this.position = event.offset + 1
    this.inFlight++
    this.pushed++
    this.client.send(event).then(
      (result) => this.settle(index, event, result),
      (error: unknown) => this.settle(index, event, {outcome: 'failed', attempts: 0, reason: `internal error: ${(error as Error)?.message}`, latencyMs: 0, messageId: ''}),
    )
    return true
  }

  /** Marks every offset below `nextOffset` as read; those not pushed need no delivery. */
  scanned(nextOffset: number): void {
    if (nextOffset > this.position) this.position = nextOffset
  }

  /** Waits for every send under way to settle; the final checkpoint and outcome. */
  async drain(): Promise<WindowResult> {
    while (this.inFlight > 0) {
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    if (this.client.signal?.aborted) this.abortedFlag = true
    return {checkpoint: this.checkpoint, delivered: this.delivered, failure: this.failureRecord, aborted: this.abortedFlag}
  }

  private settle(index: number, event: DeliveryEvent, result: SendResult): void {
    this.inFlight--
    this.retries += Math.max(0, result.attempts - 1)
    if (result.outcome === 'delivered') {
      this.delivered++
      this.bytes += event.body.length
      this.done[index % this.maxOutstanding] = 1
      while (this.head < this.tail && this.done[this.head % this.maxOutstanding] === 1) this.head++
    } else if (result.outcome === 'aborted') {
      this.abortedFlag = true
      this.stoppedFlag = true
    } else {
      this.failed++
      this.stoppedFlag = true
      if (!this.failureRecord || event.offset < this.failureRecord.failedAt) {
        this.failureRecord = {
          failedAt: event.offset,
          reason: result.reason ?? 'delivery failed',
          gone: result.outcome === 'gone' || this.failureRecord?.gone === true,
          status: result.status,
          attempts: result.attempts,
        }
      } else if (result.outcome === 'gone') {
        this.failureRecord.gone = true
      }
    }
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}
