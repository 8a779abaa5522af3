import {randomBytes} from 'node:crypto'

import {Agent, request} from 'undici'

import {UserError} from '../shared/errors.js'
import {verifyCrcResponseToken} from './signing.js'
import {TargetRefusedError, checkTarget, displayUrl, guardedLookup, targetNotAllowed} from './url-guard.js'

/**
 * Twitter's challenge-response check (CRC) of a webhook: GET <url>?crc_token=T must answer 200 with
 * JSON {"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, T))} within 3 s. A webhook
 * that answers it is reachable and holds the secret, so replayed events will verify there.
 */

export interface CrcCheckOptions {
  url: string
  /** The consumer secret the webhook signs with. */
  secret: string
  /** The whole check, connect to last byte (default 3000, Twitter's). */
  timeoutMs?: number
  allowPrivate?: boolean
  /** The token to send (default: 24 random bytes, base64url). */
  crcToken?: string
}

export interface CrcCheckResult {
  ok: boolean
  /** The HTTP status, when the webhook answered. */
  status?: number
  latencyMs: number
  /** Why the check failed (lower case, no trailing period). */
  error?: string
}

const MAX_ANSWER_BYTES = 64 * 1024

/**
 * Runs the CRC check. Never throws for a wrong or missing answer (ok: false and the reason); throws
 * UserError only when the target itself is refused (TARGET_NOT_ALLOWED, or INVALID_ARGUMENT for a
 * malformed URL).
 */
export async function checkWebhook(options: CrcCheckOptions): Promise<CrcCheckResult> {
  const timeoutMs = options.timeoutMs ?? 3000
  const started = performance.now()
  const latencyMs = () => Math.round(performance.now() - started)
  let url: URL
  try {
    url = (await checkTarget(options.url, {allowPrivate: options.allowPrivate})).url
  } catch (error) {
    if (error instanceof UserError && error.code === 'WEBHOOK_UNREACHABLE')
      return {ok: false, latencyMs: latencyMs(), error: error.message}
    throw error
  }
  const token = options.crcToken ?? randomBytes(24).toString('base64url')
  const target = new URL(url)
  target.searchParams.set('crc_token', token)

  const dispatcher = new Agent({
    connections: 1,
    pipelining: 0,
    connect: {timeout: timeoutMs, lookup: guardedLookup(options.allowPrivate)},
  })
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, timeoutMs)
  try {
    const response = await request(target, {
      method: 'GET',
      dispatcher,
      signal: controller.signal,
      headers: {accept: 'application/json', 'user-agent': 'replayctl'},
    })
    const status = response.statusCode
    let text = ''
    let size = 0
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > MAX_ANSWER_BYTES) {
        return {
          ok: false,
          status,
          latencyMs: latencyMs(),
          error: `the answer is larger than ${MAX_ANSWER_BYTES / 1024} KB, not a CRC response`,
        }
      }
      text += chunk.toString('utf8')
    }
    const elapsed = latencyMs()
    if (status !== 200) {
      const kind = status >= 300 && status < 400 ? ', a redirect (redirects are not followed)' : ''
      return {
        ok: false,
        status,
        latencyMs: elapsed,
        error: `webhook answered ${status}${kind}, expected 200 with a response_token`,
      }
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return {
        ok: false,
        status,
        latencyMs: elapsed,
        error: 'the answer is not JSON, expected {"response_token": "sha256=..."}',
      }
    }
    const answered = body && typeof body === 'object' ? (body as Record<string, unknown>).response_token : undefined
    if (typeof answered !== 'string') {
      return {
        ok: false,
        status,
        latencyMs: elapsed,
        error: 'the answer has no response_token, expected {"response_token": "sha256=..."}',
      }
    }
    // Compared in constant time: how long a wrong guess takes must not tell how close it was.
    if (!verifyCrcResponseToken(options.secret, token, answered)) {
      return {
        ok: false,
        status,
        latencyMs: elapsed,
        error: 'the response_token does not match: the webhook signs with a different consumer secret',
      }
    }
    return {ok: true, status, latencyMs: elapsed}
  } catch (error) {
    if (timedOut) return {ok: false, latencyMs: latencyMs(), error: `no answer within ${timeoutMs} ms`}
    let current: unknown = error
    for (let depth = 0; current && depth < 4; depth++) {
      if (current instanceof TargetRefusedError) {
        throw targetNotAllowed(displayUrl(url), current.address, current.kind)
      }
      current = (current as {cause?: unknown}).cause
    }
    const code = (error as NodeJS.ErrnoException)?.code ?? (error as Error)?.message ?? 'unknown error'
    return {ok: false, latencyMs: latencyMs(), error: `could not reach ${displayUrl(url)}: ${code}`}
  } finally {
    clearTimeout(timer)
    void dispatcher.destroy().catch(() => {})
  }
}
