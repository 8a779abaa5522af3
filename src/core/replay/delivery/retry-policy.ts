/**
 * When a failed attempt is tried again: the retry policy (attempts, exponential backoff with full
 * jitter) and the webhook's own ask (Retry-After), as pure functions of their inputs.
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
