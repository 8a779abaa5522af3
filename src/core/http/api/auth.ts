import {createHash, timingSafeEqual} from 'node:crypto'

import type {ApiTokenSpec} from '../../shared/settings.js'
import {FORBIDDEN, NOT_AUTHENTICATED, RATE_LIMITED, TwitterHttpError} from './twitter-errors.js'

/**
 * Who may call the Replay API, and how often. A caller presents `Authorization: Bearer <token>`;
 * the token's SHA-256 is compared with every configured token's in constant time (so neither the
 * comparison nor an early exit tells how close a guess was). Each token sees either every webhook
 * or a list of them, and has its own fixed-window rate limit, reported on every answer in Twitter's
 * x-rate-limit-limit / -remaining / -reset (epoch seconds) headers. Tokens are never logged.
 */

export interface Caller {
  /** Position of the token in the configuration, for logs (never the token). */
  tokenIndex: number
  webhooks: '*' | ReadonlySet<string>
  bucket: RateBucket
}

export interface RateBucket {
  limit: number
  remaining: number
  /** Epoch seconds at which the window resets. */
  resetAt: number
}

interface Entry {
  hash: Buffer
  caller: Caller
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest()

export class TokenAuthority {
  private readonly entries: Entry[]

  constructor(tokens: ApiTokenSpec[], defaultLimit: number, private readonly windowMs: number) {
    this.entries = tokens.map((spec, index) => ({
      hash: sha256(spec.token),
      caller: {
        tokenIndex: index + 1,
        webhooks: spec.webhooks === '*' ? '*' : new Set(spec.webhooks),
        bucket: {limit: spec.rateLimit ?? defaultLimit, remaining: spec.rateLimit ?? defaultLimit, resetAt: 0},
      },
    }))
  }

  get size(): number {
    return this.entries.length
  }

  /** The caller of an Authorization header; 401/32 when it names no configured token. */
  authenticate(header: string | undefined): Caller {
    const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header.trim()) : null
    if (!match) throw new TwitterHttpError(NOT_AUTHENTICATED.status, NOT_AUTHENTICATED.code, NOT_AUTHENTICATED.message)
    const presented = sha256(match[1]!)
    let found: Caller | undefined
    // Every entry is compared, whatever matched first.
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.hash, presented)) found = entry.caller
    }
    if (!found) throw new TwitterHttpError(NOT_AUTHENTICATED.status, NOT_AUTHENTICATED.code, NOT_AUTHENTICATED.message)
    return found
  }

  /** Counts one request against the caller's window; false when the window is used up. */
  take(caller: Caller, nowMs = Date.now()): boolean {
    const bucket = caller.bucket
    if (nowMs >= bucket.resetAt * 1000) {
      bucket.remaining = bucket.limit
      bucket.resetAt = Math.ceil((nowMs + this.windowMs) / 1000)
    }
    if (bucket.remaining === 0) return false
    bucket.remaining--
    return true
  }
}

export function rateLimited(): TwitterHttpError {
  return new TwitterHttpError(RATE_LIMITED.status, RATE_LIMITED.code, RATE_LIMITED.message)
}

/** 403/220 unless the caller may touch this webhook. */
export function requireWebhook(caller: Caller, webhookId: string): void {
  if (!canSee(caller, webhookId)) throw new TwitterHttpError(FORBIDDEN.status, FORBIDDEN.code, FORBIDDEN.message)
}

export function canSee(caller: Caller, webhookId: string): boolean {
  return caller.webhooks === '*' || caller.webhooks.has(webhookId)
}
