import {createHash, timingSafeEqual} from 'node:crypto'
import {isIP, isIPv6} from 'node:net'

import {LRUCache} from 'lru-cache'

import {invalidArgument, quoteInput} from '../shared/errors.js'

/**
 * Bearer-token authentication for every HTTP front of replayctl (the Replay API, the ingest),
 * one model for all: a caller presents `Authorization: Bearer <token>`; the token's SHA-256 is
 * compared with every configured token's in constant time, and every entry is compared whatever
 * matched first, so neither the comparison nor an early exit tells how close a guess was. What a
 * token may do (its scope) belongs to each server; tokens are never logged.
 *
 * Failed authentications are throttled per client address: after `maxFailures` within a window
 * (which starts at the address's first failure), the address is answered 429 until the window
 * ends, whatever it presents. A correct token from a blocked address is refused too: letting it
 * through would answer a right guess differently from a wrong one, and the block would slow
 * nothing. The price is that clients sharing an address with a guesser (one NAT) wait with it.
 * IPv6 clients are counted per /64, the block one host is usually given. The table of addresses
 * is bounded (the address least recently seen is forgotten first).
 */

export interface TokenEntry<Scope> {
  token: string
  scope: Scope
}

export interface ThrottleOptions {
  /** Failed authentications an address may have within a window; the next request is 429. */
  maxFailures: number
  windowMs: number
  /** Most addresses remembered. Default 100,000 (a few MB). */
  maxAddresses?: number
}

export type AuthOutcome<Scope> =
  | {ok: true; scope: Scope; /** 1-based position of the token in the configuration, for logs. */ tokenIndex: number}
  | {ok: false; status: 401}
  | {ok: false; status: 429; block: Block}

/** Twitter-style limits of a blocked address: x-rate-limit-limit/-remaining/-reset, Retry-After. */
export interface Block {
  limit: number
  /** Epoch seconds at which the address may try again. */
  resetAt: number
  /** Whole seconds until then (at least 1). */
  retryAfter: number
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest()
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i

/** The token of an `Authorization: Bearer <token>` header, or undefined for anything else. */
export function bearerToken(header: string | undefined): string | undefined {
  return typeof header === 'string' ? BEARER.exec(header.trim())?.[1] : undefined
}

export class TokenTable<Scope> {
  private readonly entries: {hash: Buffer; scope: Scope; index: number}[]

  constructor(tokens: TokenEntry<Scope>[]) {
    this.entries = tokens.map((entry, index) => ({hash: sha256(entry.token), scope: entry.scope, index: index + 1}))
  }

  get size(): number {
    return this.entries.length
  }

  /** The entry whose token this is, compared in constant time against every entry. */
  find(token: string): {scope: Scope; tokenIndex: number} | undefined {
    const presented = sha256(token)
    let found: {scope: Scope; tokenIndex: number} | undefined
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.hash, presented)) found = {scope: entry.scope, tokenIndex: entry.index}
    }
    return found
  }
}

interface Failures {
  count: number
  /** Epoch ms at which the window that began with the first failure ends. */
  endsAt: number
}

export class FailureThrottle {
  private readonly addresses: LRUCache<string, Failures>

  constructor(private readonly options: ThrottleOptions) {
    this.addresses = new LRUCache<string, Failures>({max: options.maxAddresses ?? 100_000})
  }

  /** The block this address is under, if it is. */
  blocked(address: string, nowMs = Date.now()): Block | undefined {
    const failures = this.current(clientKey(address), nowMs)
    if (!failures || failures.count < this.options.maxFailures) return undefined
    return {
      limit: this.options.maxFailures,
      resetAt: Math.ceil(failures.endsAt / 1000),
      retryAfter: Math.max(1, Math.ceil((failures.endsAt - nowMs) / 1000)),
    }
  }

  /** Counts one failed authentication from this address. */
  fail(address: string, nowMs = Date.now()): void {
    const key = clientKey(address)
    const failures = this.current(key, nowMs)
    if (failures) failures.count++
    else this.addresses.set(key, {count: 1, endsAt: nowMs + this.options.windowMs})
  }

  get size(): number {
    return this.addresses.size
  }

  private current(key: string, nowMs: number): Failures | undefined {
    const failures = this.addresses.get(key)
    if (failures && failures.endsAt <= nowMs) {
      this.addresses.delete(key)
      return undefined
    }
    return failures
  }
}

/**
 * Who a client address is for the throttle: an IPv4 address (IPv4-mapped IPv6 included) as it
 * is, an IPv6 address by its first 64 bits.
 */
export function clientKey(address: string): string {
  const mappedIpv4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1]
  if (mappedIpv4 !== undefined) return mappedIpv4
  if (!isIPv6(address)) return address
  const [head = '', tail = ''] = address.split('::')
  const left = head.split(':').filter(Boolean)
  const right = address.includes('::') ? tail.split(':').filter(Boolean) : []
  const groups = [...left, ...Array.from({length: 8 - left.length - right.length}, () => '0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`
}

/** Authentication with failure throttling: what both servers call on every non-public request. */
export class BearerAuth<Scope> {
  readonly tokens: TokenTable<Scope>
  private readonly throttle: FailureThrottle

  constructor(tokens: TokenEntry<Scope>[], throttle: ThrottleOptions) {
    this.tokens = new TokenTable(tokens)
    this.throttle = new FailureThrottle(throttle)
  }

  check(header: string | undefined, address: string, nowMs = Date.now()): AuthOutcome<Scope> {
    const block = this.throttle.blocked(address, nowMs)
    if (block) return {ok: false, status: 429, block}
    const token = bearerToken(header)
    const found = token === undefined ? undefined : this.tokens.find(token)
    if (!found) {
      this.throttle.fail(address, nowMs)
      return {ok: false, status: 401}
    }
    return {ok: true, ...found}
  }
}

/** Loopback hosts: the only ones a server may listen on without authentication. */
export function isLoopbackHost(host: string): boolean {
  return (
    host === 'localhost' ||
    host === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(host)
  )
}

/** Refuses a --trust-proxy value that is not an IP address or CIDR, before anything starts. */
export function validateTrustedProxies(proxies: readonly string[] = []): void {
  for (const proxy of proxies) {
    const [address = '', bits, extra] = proxy.split('/')
    const family = isIP(address)
    if (
      family === 0 ||
      extra !== undefined ||
      (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)))
    ) {
      throw invalidArgument(
        `--trust-proxy ${quoteInput(proxy)} is not an IP address or CIDR`,
        'give the address of the proxy in front, e.g. --trust-proxy 127.0.0.1 or --trust-proxy 10.0.0.0/8',
      )
    }
  }
}
