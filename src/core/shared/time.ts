import {UserError, quoteInput} from './errors.js'

/**
 * Points in time as operators write them. Every form resolves to epoch milliseconds (UTC):
 *
 *   ISO 8601       2026-11-20, 2026-11-20T10:00, 2026-11-20T10:00:00.000Z, ...+02:00
 *                  (no zone means UTC, never the machine's local zone)
 *   epoch ms       1763632800000 (any all-digit value that is not 12 digits long)
 *   Twitter        202611201000  (yyyymmddhhmm, UTC: the Replay API's from_date/to_date)
 *   relative       now, 90s, 2h, 5d, 1w, -90m (all in the past), +10m (in the future)
 */
export const TIME_FORMS = 'ISO 8601 (2026-11-20T10:00Z), epoch ms, yyyymmddhhmm (UTC) or relative (now, 2h, 5d, -90m)'

const UNIT_MS = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000} as const
const RELATIVE = /^([+-]?)(\d+)(ms|s|m|h|d|w)$/
const TWITTER = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})$/
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i

export function parseTime(input: string, what = 'time', now = Date.now()): number {
  const text = input.trim()
  const ms = parseOrNull(text, now)
  if (ms === null) {
    throw new UserError('INVALID_TIME', `invalid ${what} ${quoteInput(input)}`, `use ${TIME_FORMS}`)
  }
  return ms
}

function parseOrNull(text: string, now: number): number | null {
  if (text.toLowerCase() === 'now') return now

  const relative = RELATIVE.exec(text)
  if (relative) {
    const amount = Number(relative[2]) * UNIT_MS[relative[3] as keyof typeof UNIT_MS]
    return relative[1] === '+' ? now + amount : now - amount
  }

  const twitter = TWITTER.exec(text)
  if (twitter) {
    const [, y, mo, d, h, mi] = twitter.map(Number)
    return utc(y!, mo!, d!, h!, mi!, 0, 0)
  }

  if (/^\d+$/.test(text)) {
    const epochMs = Number(text)
    return Number.isSafeInteger(epochMs) ? epochMs : null
  }

  const iso = ISO.exec(text)
  if (iso) {
    const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = iso
    const local = utc(+y!, +mo!, +d!, +h, +mi, +s, Number(frac.padEnd(3, '0').slice(0, 3)))
    if (local === null) return null
    return local - zoneOffsetMs(zone)
  }
  return null
}

/** Epoch ms of a UTC calendar time, or null when a field is out of range (Feb 30, hour 25, ...). */
function utc(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number | null {
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms)
  const back = new Date(t)
  const valid =
    back.getUTCFullYear() === y &&
    back.getUTCMonth() === mo - 1 &&
    back.getUTCDate() === d &&
    back.getUTCHours() === h &&
    back.getUTCMinutes() === mi &&
    back.getUTCSeconds() === s
  return valid ? t : null
}

function zoneOffsetMs(zone: string | undefined): number {
  if (!zone || zone.toUpperCase() === 'Z') return 0
  const sign = zone.startsWith('-') ? -1 : 1
  const digits = zone.slice(1).replace(':', '')
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000
}

/** Parses a duration such as `5d`, `36h` or `90m` (used for retention). */
export function parseDuration(input: string, what = 'duration'): number {
  const match = /^(\d+)(ms|s|m|h|d|w)$/.exec(input.trim())
  if (!match) {
    throw new UserError(
      'INVALID_ARGUMENT',
      `invalid ${what} ${quoteInput(input)}`,
      'use a number and a unit: ms, s, m, h, d or w (e.g. 5d, 36h)',
    )
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString()
}
