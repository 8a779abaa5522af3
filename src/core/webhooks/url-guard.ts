import {lookup as dnsLookup} from 'node:dns'
import {lookup} from 'node:dns/promises'
import {isIP, type LookupFunction} from 'node:net'

import {UserError, invalidArgument} from '../shared/errors.js'

/**
 * Which webhook targets replayctl will send to. Webhook URLs come from customers, so by default a
 * URL whose host is, or resolves to, an address inside a network (loopback, private, link-local,
 * CGNAT, unspecified — the cloud metadata service at 169.254.169.254 among them) is refused, as
 * Svix and Convoy do (SSRF). IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, ::a.b.c.d,
 * 64:ff9b::a.b.c.d, 2002:AABB:CCDD::) are judged by that IPv4 address. Multicast and reserved
 * addresses are refused always: no HTTP server answers there.
 *
 * checkTarget() judges the URL once, up front, with a readable error. guardedLookup() is the same
 * rule applied to every connection the HTTP client opens, so a host that resolves to a public
 * address at check time and to a private one later (DNS rebinding) is still refused.
 */

export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'shared' | 'multicast' | 'reserved'

const DESCRIPTION: Record<AddressClass, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  'link-local': 'a link-local address',
  unspecified: 'an unspecified address',
  shared: 'a shared (CGNAT) address',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
}

/** Classes refused even when private targets are allowed. */
const NEVER_ALLOWED: ReadonlySet<AddressClass> = new Set(['multicast', 'reserved'])

export const ALLOW_PRIVATE_FIX =
  'replay only to public endpoints, or allow private targets with --allow-private-targets (or REPLAYCTL_ALLOW_PRIVATE_TARGETS=1) for local testing'

/** 'a loopback address', 'a private address', ... */
export function describeAddressClass(kind: AddressClass): string {
  return DESCRIPTION[kind]
}

/** The class of an IP address literal that is not public, or null for a public (or unparseable) address. */
export function classifyAddress(address: string): AddressClass | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  const family = isIP(bare)
  if (family === 4) return classifyV4(parseV4(bare)!)
  if (family === 6) return classifyV6(parseV6(bare))
  return null
}

/** True when a connection to this address is allowed. */
export function isAllowedAddress(address: string, allowPrivate = false): boolean {
  const kind = classifyAddress(address)
  return kind === null || (allowPrivate && !NEVER_ALLOWED.has(kind))
}

function parseV4(text: string): number | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined
    const byte = Number(part)
    if (byte > 255) return undefined
    value = value * 256 + byte
  }
  return value
}

function inV4(address: number, base: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix)
  const start = parseV4(base)!
  return address >= start && address < start + size
}

function classifyV4(address: number): AddressClass | null {
  if (inV4(address, '0.0.0.0', 8)) return 'unspecified'
  if (inV4(address, '127.0.0.0', 8)) return 'loopback'
  if (inV4(address, '10.0.0.0', 8) || inV4(address, '172.16.0.0', 12) || inV4(address, '192.168.0.0', 16)) return 'private'
  if (inV4(address, '169.254.0.0', 16)) return 'link-local'
  if (inV4(address, '100.64.0.0', 10)) return 'shared'
  if (inV4(address, '224.0.0.0', 4)) return 'multicast'
  if (inV4(address, '240.0.0.0', 4)) return 'reserved'
  return null
}

/** Eight 16-bit groups of an IPv6 literal (validated by isIP first; a zone id is dropped). */
function parseV6(text: string): number[] {
  let rest = text.split('%')[0]!.toLowerCase()
  const tail: number[] = []
  // An embedded dotted IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const lastColon = rest.lastIndexOf(':')
  const lastPart = rest.slice(lastColon + 1)
  if (lastPart.includes('.')) {
    const v4 = parseV4(lastPart) ?? 0
    tail.push(Math.floor(v4 / 65536), v4 % 65536)
    rest = rest.slice(0, lastColon + 1)
    if (rest.endsWith(':') && !rest.endsWith('::')) rest = rest.slice(0, -1)
  }
  const [head, after] = rest.includes('::') ? rest.split('::') as [string, string] : [rest, undefined]
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : [])
  const left = groups(head)
  const right = [...groups(after), ...tail]
  if (after === undefined) return [...left, ...right]
  const zeros = new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0)
  return [...left, ...zeros, ...right]
}

function classifyV6(g: number[]): AddressClass | null {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number]
  const v4 = (hi: number, lo: number) => hi * 65536 + lo
  const firstSixZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0
  if (firstSixZero && g5 === 0 && g6 === 0 && g7 === 0) return 'unspecified'
  if (firstSixZero && g5 === 0 && g6 === 0 && g7 === 1) return 'loopback'
  // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible, deprecated), ::ffff:0:a.b.c.d (translated)
  if (firstSixZero && (g5 === 0xffff || g5 === 0)) return classifyV4(v4(g6, g7))
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) return classifyV4(v4(g6, g7))
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix)
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return classifyV4(v4(g6, g7))
  // 2002:AABB:CCDD::/48 (6to4) carries a.b.c.d in groups 1-2
  if (g0 === 0x2002) return classifyV4(v4(g1, g2))
  if ((g0 & 0xfe00) === 0xfc00) return 'private'
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local'
  if ((g0 & 0xffc0) === 0xfec0) return 'private' // site-local, deprecated
  if ((g0 & 0xff00) === 0xff00) return 'multicast'
  return null
}

export interface CheckedTarget {
  url: URL
  /** The addresses the host resolved to (the literal itself for an IP host). */
  addresses: string[]
}

export interface CheckTargetOptions {
  allowPrivate?: boolean
}

/** A URL as shown in messages: no credentials, no query (either may carry a secret). */
export function displayUrl(url: URL | string): string {
  try {
    const parsed = typeof url === 'string' ? new URL(url) : url
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return String(url)
  }
}

/**
 * Parses a webhook URL and refuses it unless it is http(s) and every address its host resolves to
 * is public (or private targets are allowed). Throws INVALID_ARGUMENT for a malformed URL,
 * TARGET_NOT_ALLOWED for a refused one, WEBHOOK_UNREACHABLE when the host does not resolve.
 */
export async function checkTarget(url: string | URL, options: CheckTargetOptions = {}): Promise<CheckedTarget> {
  let parsed: URL
  try {
    parsed = typeof url === 'string' ? new URL(url) : url
  } catch {
    throw invalidArgument(`webhook url '${url}' is not a valid URL`, 'pass an absolute URL such as https://example.com/webhook')
  }
  const shown = displayUrl(parsed)
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UserError('TARGET_NOT_ALLOWED', `webhook url ${shown} uses ${parsed.protocol.replace(/:$/, '')}, not http or https`, 'register an http:// or https:// webhook url')
  }
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  let addresses: string[]
  if (isIP(host)) {
    addresses = [host]
  } else {
    try {
      addresses = (await lookup(host, {all: true, verbatim: true})).map((entry) => entry.address)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'lookup failed'
      throw new UserError('WEBHOOK_UNREACHABLE', `webhook host ${host} does not resolve (${code})`, 'check the webhook url and this machine\'s DNS', {cause: error})
    }
  }
  for (const address of addresses) {
    const kind = classifyAddress(address)
    if (kind && !isAllowedAddress(address, options.allowPrivate)) throw targetNotAllowed(shown, address, kind)
  }
  return {url: parsed, addresses}
}

export function targetNotAllowed(shownUrl: string, address: string, kind: AddressClass): UserError {
  const fix = NEVER_ALLOWED.has(kind) ? 'register a webhook url on a public unicast address' : ALLOW_PRIVATE_FIX
  return new UserError('TARGET_NOT_ALLOWED', `webhook url ${shownUrl} resolves to ${address}, ${DESCRIPTION[kind]}`, fix)
}

/** Thrown from guardedLookup() inside a connection attempt; the delivery engine treats it as permanent. */
export class TargetRefusedError extends Error {
  override readonly name = 'TargetRefusedError'
  readonly code = 'ERR_TARGET_NOT_ALLOWED'
  constructor(
    readonly host: string,
    readonly address: string,
    readonly kind: AddressClass,
  ) {
    super(`${host} resolves to ${address}, ${DESCRIPTION[kind]}`)
  }
}

/**
 * A `lookup` for net.connect / tls.connect (undici's `connect` option) that resolves as usual and
 * fails the connection when any resolved address is refused.
 */
export function guardedLookup(allowPrivate = false): LookupFunction {
  return ((hostname: string, options: any, callback: (...args: any[]) => void) => {
    dnsLookup(hostname, {...options, all: true}, (error, entries) => {
      if (error) return callback(error)
      const list = entries as unknown as Array<{address: string; family: number}>
      for (const entry of list) {
        const kind = classifyAddress(entry.address)
        if (kind && !isAllowedAddress(entry.address, allowPrivate)) {
          return callback(new TargetRefusedError(hostname, entry.address, kind))
        }
      }
      if (options?.all) return callback(null, list)
      const first = list[0]
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), {code: 'ENOTFOUND'}))
      return callback(null, first.address, first.family)
    })
  }) as LookupFunction
}
