import {invalidArgument} from '../../shared/errors.js'

/** How fast a job may send: Twitter's cap and the token bucket that enforces a rate per webhook. */

/** Twitter's cap on replay delivery, events per second per webhook. */
export const TWITTER_RATE_LIMIT = 2500

/** A token bucket: `rate` tokens a second, at most `burst` saved up. Callers reserve in turn. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    readonly rate: number,
    readonly burst = Math.max(1, Math.ceil(rate / 10)),
  ) {
    if (!(rate > 0) || !(burst >= 1))
      throw invalidArgument(
        `rate limit must be a positive number of events per second, got ${rate}`,
        'use a rate above 0 events per second, or none for no limit',
      )
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
