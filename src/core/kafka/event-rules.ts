import {invalidArgument} from '../shared/errors.js'
import {eventTimeReader, isTimeProblem, type TimestampUnit} from './event-time.js'
import {topLevelFieldFinder} from './json-fields.js'

/**
 * What an event must be to be written to Kafka, the one set of rules of `log produce` and
 * `ingest serve`: a JSON object, keyed by a field (a string, or an integer JSON holds exactly) and
 * stamped with CreateTime from another field when one is named, by the rule of event-time.ts.
 *
 * Top-level fields are found by a grammar-checking scan (json-fields.ts) instead of a full parse;
 * dotted paths, and any line the scan is unsure of, are parsed fully (which also words the error).
 *
 * An event that breaks a rule throws BadEvent, worded to follow "line N ": each caller says where
 * the event was and what became of the others (`log produce`: a user error naming the line and how
 * to continue; `ingest serve`: the 400 body).
 */
export class BadEvent extends Error {
  override readonly name = 'BadEvent'

  constructor(
    /** What is wrong with the event, such as "has no webhook_id field to key it by". */
    readonly problem: string,
    /** What else than fixing the event would cure it (a flag of the producer's), when something would. */
    readonly fix?: string,
  ) {
    super(problem)
  }
}

export interface EventRuleOptions {
  /** Dotted path of the field that keys each event; null when the key comes from elsewhere. */
  keyField: string | null
  /** Dotted path of the field holding the event's time; none: Kafka stamps the time of writing. */
  timestampField?: string
  timestampUnit?: TimestampUnit
  /** Accept times before 2000 or more than an hour ahead. */
  allowAnyTimestamp?: boolean
  /** A caller's own rule for keys (ingest: a webhook id): why a key is refused, or undefined. */
  keyProblem?: (key: string) => string | undefined
}

export interface EventFields {
  /** null when no key field is read */
  key: string | null
  /** CreateTime in epoch ms; null when no timestamp field is read */
  timestamp: number | null
}

export interface EventRules {
  /** The key and time of one event given as JSON text; throws BadEvent. */
  read(text: Buffer): EventFields
  /** The same of an event parsed already. */
  readParsed(event: unknown): EventFields
}

/** Checks the field names (INVALID_ARGUMENT naming the flag) and returns the rules' reader. */
export function eventRules(options: EventRuleOptions): EventRules {
  const {keyField} = options
  const keyPath = keyField === null ? null : fieldPath(keyField, '--key-field')
  const timeField = options.timestampField
  const timePath = timeField === undefined ? null : fieldPath(timeField, '--timestamp-field')
  const readTime =
    timeField === undefined
      ? null
      : eventTimeReader({field: timeField, unit: options.timestampUnit, allowAnyTime: options.allowAnyTimestamp})

  const topLevelNames: string[] = []
  let topLevel = true
  for (const path of [keyPath, timePath]) {
    if (path === null) continue
    const [name] = path
    if (path.length === 1 && name !== undefined) topLevelNames.push(name)
    else topLevel = false
  }
  const findFields = topLevel ? topLevelFieldFinder(topLevelNames) : null

  const fields = (rawKey: unknown, rawTime: unknown): EventFields => {
    let key: string | null = null
    if (keyField !== null) {
      if (typeof rawKey === 'string') key = rawKey
      else if (typeof rawKey === 'number' && Number.isSafeInteger(rawKey)) key = String(rawKey)
      else
        throw new BadEvent(
          rawKey === undefined
            ? `has no ${keyField} field to key it by`
            : `has a ${keyField} that is not a string or an exact integer (large ids must be JSON strings)`,
        )
      const problem = options.keyProblem?.(key)
      if (problem !== undefined) throw new BadEvent(`has a ${keyField} that ${problem}`)
    }
    let timestamp: number | null = null
    if (readTime !== null) {
      const time = readTime(rawTime)
      if (isTimeProblem(time)) throw new BadEvent(time.problem, time.fix)
      timestamp = time
    }
    return {key, timestamp}
  }

  const readParsed = (event: unknown): EventFields => {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new BadEvent('is not a JSON object')
    return fields(
      keyPath === null ? undefined : pick(event, keyPath),
      timePath === null ? undefined : pick(event, timePath),
    )
  }

  return {
    readParsed,
    read(text) {
      const found = findFields?.(text)
      if (found !== undefined) {
        // The scan answers the wanted fields' values in the order asked: the key's first.
        const rawKey = keyPath === null ? undefined : found[0]
        const rawTime = timePath === null ? undefined : found[keyPath === null ? 0 : 1]
        return fields(rawKey, rawTime)
      }
      let event: unknown
      try {
        event = JSON.parse(text.toString('utf8'))
      } catch (error) {
        throw new BadEvent(`is not valid JSON (${(error as Error).message})`)
      }
      return readParsed(event)
    },
  }
}

function fieldPath(field: string, flag: string): string[] {
  const path = field.split('.')
  if (path.some((part) => part === ''))
    throw invalidArgument(
      `${flag} '${field}' is not a field name`,
      'use a field name, or a dotted path such as user.id',
    )
  return path
}

function pick(event: object, path: string[]): unknown {
  let value: unknown = event
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

const isBlank = (byte: number | undefined) => byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0a

/** An event's text without surrounding JSON whitespace (a CRLF's carriage return included); no copy. */
export function trimBlanks(line: Buffer): Buffer {
  let start = 0
  let end = line.length
  while (start < end && isBlank(line[start])) start++
  while (end > start && isBlank(line[end - 1])) end--
  return start === 0 && end === line.length ? line : line.subarray(start, end)
}
