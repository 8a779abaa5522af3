import {lookup as dnsLookup} from 'node:dns'
import {lookup} from 'node:dns/promises'
import {isIP, type LookupFunction} from 'node:net'

import {BugError, UserError, invalidArgument} from '../shared/errors.js'

/**
 * Which webhook targets replayctl will send to. Webhook URLs come from customers, so by default a
 * URL whose host is, or resolves to, an address inside a network (loopback, private, link-local,
 * CGNAT, benchmarking, unspecified — the cloud metadata service at 169.254.169.254 among them) is
 * refused, as Svix and Convoy do (SSRF). IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d,
 * ::a.b.c.d, 64:ff9b::a.b.c.d, 2002:AABB:CCDD::) are judged by that IPv4 address. Documentation,
 * multicast and reserved addresses (Teredo among them) are refused always: no webhook answers there.
 * The ranges are one table, SPECIAL_RANGES.
 *
 * checkTarget() judges the URL once, up front, with a readable error. guardedLookup() is the same
 * rule applied to every connection the HTTP client opens, so a host that resolves to a public
 * address at check time and to a private one later (DNS rebinding) is still refused.
 */

export type AddressClass =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unspecified'
  | 'shared'
  | 'benchmarking'
  | 'documentation'
  | 'multicast'
  | 'reserved'

const DESCRIPTION: Record<AddressClass, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  'link-local': 'a link-local address',
  unspecified: 'an unspecified address',
  shared: 'a shared (CGNAT) address',
  benchmarking: 'a benchmarking address',
  documentation: 'a documentation address',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
}

/** Classes refused even when private targets are allowed: no webhook can be listening there. */
const NEVER_ALLOWED: ReadonlySet<AddressClass> = new Set(['documentation', 'multicast', 'reserved'])

/** An IPv6 range whose addresses carry an IPv4 address, judged by that address: it starts at this 16-bit group. */
interface EmbedsIpv4 {
  ipv4AtGroup: number
}

/**
 * Every address that is not a public unicast address, in one table: the IANA IPv4 and IPv6
 * Special-Purpose Address Registries (RFC 6890; iana.org/assignments/iana-ipv4-special-registry and
 * iana-ipv6-special-registry), plus multicast (RFC 5771, RFC 4291) and the IPv4 class E block
 * (RFC 1112), whose ranges are not in those registries. The registries' globally reachable
 * anycast entries that no webhook runs on (AS112, AMT, PCP/TURN anycast) are refused with their
 * enclosing block or left out. The first row that holds an address decides; the registration check
 * (checkTarget), every connection (guardedLookup) and the delivery client's literal-host check all
 * judge addresses through classifyAddress(), so through this table alone.
 */
const SPECIAL_RANGES: ReadonlyArray<readonly [range: string, judged: AddressClass | EmbedsIpv4]> = [
  ['0.0.0.0/8', 'unspecified'], //        "this network" (RFC 791, RFC 1122)
  ['10.0.0.0/8', 'private'], //           RFC 1918
  ['100.64.0.0/10', 'shared'], //         CGNAT shared address space (RFC 6598)
  ['127.0.0.0/8', 'loopback'], //         RFC 1122
  ['169.254.0.0/16', 'link-local'], //    RFC 3927 (the cloud metadata service at 169.254.169.254)
  ['172.16.0.0/12', 'private'], //        RFC 1918
  ['192.0.0.0/24', 'reserved'], //        IETF protocol assignments: DS-Lite, NAT64 discovery, ... (RFC 6890)
  ['192.0.2.0/24', 'documentation'], //   TEST-NET-1 (RFC 5737)
  ['192.88.99.0/24', 'reserved'], //      deprecated 6to4 relay anycast (RFC 7526)
  ['192.168.0.0/16', 'private'], //       RFC 1918
  ['198.18.0.0/15', 'benchmarking'], //   RFC 2544 (also where fake-IP DNS proxies map names)
  ['198.51.100.0/24', 'documentation'], // TEST-NET-2 (RFC 5737)
  ['203.0.113.0/24', 'documentation'], // TEST-NET-3 (RFC 5737)
  ['224.0.0.0/4', 'multicast'], //        RFC 5771
  ['240.0.0.0/4', 'reserved'], //         class E (RFC 1112), 255.255.255.255 broadcast (RFC 919) among them

  ['::/128', 'unspecified'], //           RFC 4291
  ['::1/128', 'loopback'], //             RFC 4291
  ['::ffff:0:0/96', {ipv4AtGroup: 6}], // IPv4-mapped (RFC 4291)
  ['::ffff:0:0:0/96', {ipv4AtGroup: 6}], // IPv4-translated (RFC 2765)
  ['::/96', {ipv4AtGroup: 6}], //         IPv4-compatible, deprecated (RFC 4291)
  ['64:ff9b::/96', {ipv4AtGroup: 6}], //  NAT64 well-known prefix (RFC 6052)
  ['64:ff9b:1::/48', 'private'], //       local-use NAT64: translated by the network's own gateway (RFC 8215)
  ['100::/64', 'reserved'], //            discard-only (RFC 6666)
  ['100:0:0:1::/64', 'reserved'], //      dummy prefix (RFC 9780)
  // IETF protocol assignments (RFC 2928): Teredo 2001::/32 (RFC 4380), whose addresses carry an
  // obfuscated IPv4 address, benchmarking 2001:2::/48 (RFC 5180), ORCHIDv2 2001:20::/28 (RFC 7343)
  ['2001::/23', 'reserved'],
  ['2001:db8::/32', 'documentation'], //  RFC 3849
  ['2002::/16', {ipv4AtGroup: 1}], //     6to4: 2002:AABB:CCDD::/48 carries a.b.c.d (RFC 3056)
  ['3fff::/20', 'documentation'], //      RFC 9637
  ['5f00::/16', 'reserved'], //           SRv6 segment identifiers (RFC 9602)
  ['fc00::/7', 'private'], //             unique local (RFC 4193)
  ['fe80::/10', 'link-local'], //         RFC 4291
  ['fec0::/10', 'private'], //            site-local, deprecated (RFC 3879)
  ['ff00::/8', 'multicast'], //           RFC 4291
]

export const ALLOW_PRIVATE_FIX =
  'replay only to public endpoints, or allow private targets with --allow-private-targets ' +
  '(or REPLAYCTL_ALLOW_PRIVATE_TARGETS=1) for local testing'

/** 'a loopback address', 'a private address', ... */
export function describeAddressClass(kind: AddressClass): string {
  return DESCRIPTION[kind]
}

/** The class of an IP address literal that is not public, or null for a public (or unparseable) address. */
export function classifyAddress(address: string): AddressClass | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  const [withoutZone = ''] = bare.split('%')
  const family = isIP(withoutZone)
  const v4 = family === 4 ? parseV4(withoutZone) : undefined
  if (v4 !== undefined) return classify(4, BigInt(v4))
  if (family === 6) return classify(6, v6Value(parseV6(bare)))
  return null
}

/** True when a connection to this address is allowed. */
export function isAllowedAddress(address: string, allowPrivate = false): boolean {
  const kind = classifyAddress(address)
  return kind === null || (allowPrivate && !NEVER_ALLOWED.has(kind))
}

// The table as numbers, parsed once. Matched here rather than with net.BlockList, which tells
// whether an address is in a list but not in which row, and matches IPv4 addresses against IPv6
// rows (8.8.8.8 "is in" ::ffff:0:0/96).
interface ParsedRange {
  family: 4 | 6
  /** Bits after the prefix, shifted away before comparing. */
  shift: bigint
  network: bigint
  judged: AddressClass | EmbedsIpv4
}

const PARSED_RANGES: readonly ParsedRange[] = SPECIAL_RANGES.map(([range, judged]) => {
  const [base, prefix] = range.split('/') as [string, string]
  const family = isIP(base) as 4 | 6
  const shift = BigInt((family === 4 ? 32 : 128) - Number(prefix))
  const v4 = family === 4 ? parseV4(base) : undefined
  if (family === 4 && v4 === undefined) throw new BugError(`special range ${range} does not parse`)
  const value = v4 === undefined ? v6Value(parseV6(base)) : BigInt(v4)
  return {family, shift, network: value >> shift, judged}
})

function classify(family: 4 | 6, value: bigint): AddressClass | null {
  for (const range of PARSED_RANGES) {
    if (range.family !== family || value >> range.shift !== range.network) continue
    if (typeof range.judged === 'string') return range.judged
    const at = range.judged.ipv4AtGroup
    const [high, low] = v6Groups(value).slice(at, at + 2)
    if (high === undefined || low === undefined) throw new BugError(`no IPv4 address at group ${at} of an IPv6 one`)
    return classify(4, BigInt(high * 65536 + low))
  }
  return null
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

/** Eight 16-bit groups of an IPv6 literal (validated by isIP first; a zone id is dropped). */
function parseV6(text: string): number[] {
  const [withoutZone = ''] = text.split('%')
  let rest = withoutZone.toLowerCase()
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
  const [head, after] = rest.includes('::') ? (rest.split('::') as [string, string]) : [rest, undefined]
  const groups = (s: string | undefined) =>
    s
      ? s
          .split(':')
          .filter((g) => g !== '')
          .map((g) => parseInt(g, 16))
      : []
  const left = groups(head)
  const right = [...groups(after), ...tail]
  if (after === undefined) return [...left, ...right]
  const zeros = new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0)
  return [...left, ...zeros, ...right]
}

function v6Value(groups: number[]): bigint {
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n)
}

function v6Groups(value: bigint): number[] {
  return Array.from({length: 8}, (_, i) => Number((value >> BigInt(16 * (7 - i))) & 0xffffn))
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
    throw invalidArgument(
      `webhook url '${url}' is not a valid URL`,
      'pass an absolute URL such as https://example.com/webhook',
    )
  }
  const shown = displayUrl(parsed)
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UserError(
      'TARGET_NOT_ALLOWED',
      `webhook url ${shown} uses ${parsed.protocol.replace(/:$/, '')}, not http or https`,
      'register an http:// or https:// webhook url',
    )
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
      throw new UserError(
        'WEBHOOK_UNREACHABLE',
        `webhook host ${host} does not resolve (${code})`,
        "check the webhook url and this machine's DNS",
        {cause: error},
      )
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
  return new UserError(
    'TARGET_NOT_ALLOWED',
    `webhook url ${shownUrl} resolves to ${address}, ${DESCRIPTION[kind]}`,
    fix,
  )
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
