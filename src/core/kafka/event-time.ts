import {quoteInput} from '../shared/errors.js'
import {parseTime} from '../shared/time.js'

/**
 * The CreateTime of an event, from its --timestamp-field: the one rule of `log produce` and
 * `ingest serve`.
 *
 * A number (or an all-digit string) is in --timestamp-unit, epoch ms unless told. Other strings
 * are times as parseTime reads them (ISO 8601 above all). A time before 2000 or more than an hour
 * ahead is refused unless --allow-any-timestamp: time-based retention deletes a record stamped in
 * 1970 at once and no replay window finds it, epoch seconds read as ms are just that, and the broker
 * itself refuses a time further ahead than its allowance. When the value would be a plausible time
 * in another unit, the refusal names that unit's flag.
 */
export const TIMESTAMP_UNITS = ['s', 'ms', 'us', 'ns'] as const
export type TimestampUnit = (typeof TIMESTAMP_UNITS)[number]

export interface EventTimeOptions {
  field: string
  unit?: TimestampUnit
  allowAnyTime?: boolean
  /** For tests: the clock the future bound is measured from. */
  now?: () => number
}

/** Why a value is not a CreateTime: what is wrong, and what to do about it. */
export interface TimeProblem {
  problem: string
  fix: string
}

/** A reader of the field's value: epoch ms, or why it cannot be one. */
export type EventTimeReader = (raw: unknown) => number | TimeProblem

export const EARLIEST_TIME = Date.UTC(2000, 0, 1)
/**
 * How far ahead of now a time may be: what a Kafka 4.x broker accepts by default
 * (message.timestamp.after.max.ms, ServerLogConfigs.LOG_MESSAGE_TIMESTAMP_AFTER_MAX_MS_DEFAULT = 1 h
 * in 4.1), so an event refused here is one the broker would refuse, named by its line before
 * anything is written. The topic's own value is not read: the client has no DescribeConfigs and
 * Apache's ConfigCommand costs a JVM start per command. A topic that allows more takes such times
 * with --allow-any-timestamp.
 */
export const FUTURE_ALLOWANCE_MS = 3_600_000

/** Whole epoch ms of a value in a unit; dividing (not multiplying by 0.001) keeps exact multiples exact. */
function toMs(value: number, unit: TimestampUnit): number {
  switch (unit) {
    // A fraction of a second times 1000 can land a hair under the ms it means (1.001 s: 1000.99...).
    case 's':
      return Math.round(value * 1000)
    case 'ms':
      return Math.floor(value)
    case 'us':
      return Math.floor(value / 1000)
    case 'ns':
      return Math.floor(value / 1_000_000)
  }
}

const UNIT_NAMES: Record<TimestampUnit, string> = {
  s: 'epoch seconds',
  ms: 'epoch ms',
  us: 'epoch microseconds',
  ns: 'epoch nanoseconds',
}
const DIGITS = /^\d+(?:\.\d+)?$/
const ALLOW_ANY = 'pass --allow-any-timestamp if such times are meant'

export function eventTimeReader(options: EventTimeOptions): EventTimeReader {
  const {field} = options
  const unit = options.unit ?? 'ms'
  const allowAny = options.allowAnyTime ?? false
  const now = options.now ?? Date.now
  // The latest time accepted, refreshed only when a time is past it: the common case reads no clock.
  let latest = now() + FUTURE_ALLOWANCE_MS
  const inBounds = (ms: number): boolean => {
    if (ms < EARLIEST_TIME) return false
    if (ms <= latest) return true
    latest = now() + FUTURE_ALLOWANCE_MS
    return ms <= latest
  }

  const notATime = (shown: string): TimeProblem => ({
    problem: `has ${field} ${shown}, which is not a time in ${UNIT_NAMES[unit]}`,
    fix: `use ${UNIT_NAMES[unit]} or an ISO 8601 time such as 2026-11-20T10:00:00Z`,
  })

  const fromNumber = (value: number, shown: string): number | TimeProblem => {
    if (!(value >= 0) || !Number.isFinite(value)) return notATime(shown)
    const ms = toMs(value, unit)
    const exact = Number.isSafeInteger(ms)
    if (exact && (allowAny || inBounds(ms))) return ms
    for (const other of TIMESTAMP_UNITS) {
      if (other !== unit && inBounds(toMs(value, other))) {
        return {
          problem:
            `has ${field} ${shown}, which looks like ${UNIT_NAMES[other]} ` +
            `(${isoOf(toMs(value, other))}), not ${UNIT_NAMES[unit]} (${isoOf(ms)})`,
          fix: `pass --timestamp-unit ${other} if ${field} holds ${UNIT_NAMES[other]}`,
        }
      }
    }
    return exact && !allowAny ? outOfBounds(shown, ms) : notATime(shown)
  }

  const outOfBounds = (shown: string, ms: number): TimeProblem =>
    ms < EARLIEST_TIME
      ? {problem: `has ${field} ${shown} (${isoOf(ms)}), before 2000`, fix: ALLOW_ANY}
      : {
          problem:
            `has ${field} ${shown} (${isoOf(ms)}), more than an hour ahead, ` +
            'which Kafka refuses by default (message.timestamp.after.max.ms)',
          fix: `${ALLOW_ANY} and the topic's message.timestamp.after.max.ms allows them`,
        }

  return (raw) => {
    // The fast path: epoch ms, in bounds, as the field scanner reads it from its digits.
    if (typeof raw === 'number')
      return unit === 'ms' && Number.isSafeInteger(raw) && raw >= EARLIEST_TIME && raw <= latest
        ? raw
        : fromNumber(raw, String(raw))
    if (typeof raw === 'string') {
      const text = raw.trim()
      if (DIGITS.test(text)) return fromNumber(Number(text), quoteInput(raw))
      let ms: number
      try {
        ms = parseTime(text, field)
      } catch {
        return notATime(quoteInput(raw))
      }
      if (ms < 0)
        return {
          problem: `has ${field} ${quoteInput(raw)}, before 1970`,
          fix: 'use a time from 1970 on: Kafka cannot stamp a record before it',
        }
      return allowAny || inBounds(ms) ? ms : outOfBounds(quoteInput(raw), ms)
    }
    return {
      problem: raw === undefined ? `has no ${field} field` : `has a ${field} that is neither a number nor a string`,
      fix: `give every event a ${field} in ${UNIT_NAMES[unit]} or as an ISO 8601 time`,
    }
  }
}

export function isTimeProblem(value: number | TimeProblem): value is TimeProblem {
  return typeof value !== 'number'
}

/** An ISO time for a message; a value outside what Date can show is said so. */
function isoOf(ms: number): string {
  const date = new Date(Math.floor(ms))
  return Number.isNaN(date.getTime()) ? 'beyond any calendar' : date.toISOString()
}
