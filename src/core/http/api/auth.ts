import type {ApiTokenSpec} from '../../shared/settings.js'
import {BearerAuth, type Block, type ThrottleOptions} from '../auth.js'
import {FORBIDDEN, NOT_AUTHENTICATED, RATE_LIMITED, TwitterHttpError} from './twitter-errors.js'

/**
 * Who may call the Replay API, and how often. Tokens are checked by the shared bearer model
 * (../auth.ts: constant-time comparison, failed attempts throttled per client address). Each
 * token sees either every webhook or a list of them, and has its own fixed-window rate limit,
 * reported on every answer in Twitter's x-rate-limit-limit / -remaining / -reset (epoch seconds)
 * headers. Tokens are never logged.
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

/** 429/88 for an address blocked after too many failed authentications, with its limits. */
export class AuthBlocked extends TwitterHttpError {
  constructor(readonly block: Block) {
    super(
      RATE_LIMITED.status,
      RATE_LIMITED.code,
      'Rate limit exceeded: too many failed authentications from this address',
    )
  }
}

export class TokenAuthority {
  private readonly auth: BearerAuth<Caller>

  constructor(
    tokens: ApiTokenSpec[],
    defaultLimit: number,
    private readonly windowMs: number,
    throttle: ThrottleOptions,
  ) {
    this.auth = new BearerAuth(
      tokens.map((spec, index) => ({
        token: spec.token,
        scope: {
          tokenIndex: index + 1,
          webhooks: spec.webhooks === '*' ? '*' : new Set(spec.webhooks),
          bucket: {limit: spec.rateLimit ?? defaultLimit, remaining: spec.rateLimit ?? defaultLimit, resetAt: 0},
        },
      })),
      throttle,
    )
  }

  get size(): number {
    return this.auth.tokens.size
  }

  /**
   * The caller of an Authorization header from this client address; 401/32 when it names no
   * configured token, 429/88 (AuthBlocked) while the address is blocked for failing too often.
   */
  authenticate(header: string | undefined, address: string): Caller {
    const outcome = this.auth.check(header, address)
    if (outcome.ok) return outcome.scope
    if (outcome.status === 429) throw new AuthBlocked(outcome.block)
    throw new TwitterHttpError(NOT_AUTHENTICATED.status, NOT_AUTHENTICATED.code, NOT_AUTHENTICATED.message)
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
