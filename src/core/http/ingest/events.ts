import {eventTimeReader, isTimeProblem, type EventTimeReader, type TimestampUnit} from '../../kafka/event-time.js'
import {topLevelFieldFinder} from '../../kafka/json-fields.js'
import {fieldPath, pick, trimBlanks} from '../../kafka/produce.js'
import {invalidArgument, quoteInput} from '../../shared/errors.js'
import {WEBHOOK_ID} from '../../webhooks/store.js'

/**
 * Turns one request body into the records it asks for, or into the reason it is refused. A body
 * is one JSON object, or NDJSON (one object per line). Every event is checked before any is
 * produced, so a request with one bad event writes nothing; the refusal names the line.
 *
 * The rule for times is that of `log produce` (event-time.ts). A key,
 * from a field (a string or an exact integer) or from the key header alike, must be a webhook id
 * (1 to 64 of A-Z a-z 0-9 _ -): replays find events by webhook id, token scopes are written in
 * that alphabet, and a key of anything else (a path, a control character, 15,000 characters) is
 * refused rather than written. Values are the event's bytes, unchanged.
 *
 * As in `log produce`, top-level key and time fields are found by the grammar-checking scan
 * (json-fields.ts) instead of JSON.parse of each line; dotted paths, and any line the scan is
 * unsure of, are parsed fully (which also words the error).
 */
export interface IngestRecord {
  key: string
  value: Buffer
  timestamp: number | null
}

export interface KeySource {
  /** Dotted path of the field that keys each event. */
  field?: string
  /** Or: one key for the whole request, from this request header. */
  header?: string
}

export interface EventRules {
  key: KeySource
  timestampField?: string
  timestampUnit?: TimestampUnit
  /** Accept times before 2000 or more than a day ahead. */
  allowAnyTimestamp?: boolean
  maxEventBytes: number
}

export interface CompiledRules {
  keyPath: string[] | null
  keyHeader: string | null
  keyName: string
  timestampPath: string[] | null
  readTime: EventTimeReader | null
  maxEventBytes: number
  /** The key and time fields' values (those wanted), when both are top-level; else null. */
  findFields: ((text: Buffer) => unknown[] | undefined) | null
}

export type ParsedBody = {records: IngestRecord[]} | {status: 400; line: number | null; error: string}

const NEWLINE = 0x0a

/** Headers that carry credentials or the request's own framing: never a key. */
const NOT_KEY_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'idempotency-key',
  'content-type',
  'content-length',
  'host',
])

export function compileRules(rules: EventRules): CompiledRules {
  const keyHeader = rules.key.header?.toLowerCase() ?? null
  if (keyHeader !== null && (!/^[a-z0-9-]{1,64}$/.test(keyHeader) || NOT_KEY_HEADERS.has(keyHeader))) {
    throw invalidArgument(
      `--key-header ${quoteInput(rules.key.header!)} cannot key events`,
      'name a header of your own of up to 64 letters, digits and -, such as X-Webhook-Id (not Authorization, Cookie or Idempotency-Key)',
    )
  }
  const keyField = keyHeader === null ? (rules.key.field ?? 'webhook_id') : null
  const keyPath = keyField === null ? null : fieldPath(keyField, '--key-field')
  const timestampPath = rules.timestampField === undefined ? null : fieldPath(rules.timestampField, '--timestamp-field')
  const wanted = [keyPath, timestampPath].filter((path) => path !== null)
  return {
    keyPath,
    keyHeader,
    keyName: keyField ?? `${rules.key.header} header`,
    timestampPath,
    readTime:
      rules.timestampField === undefined
        ? null
        : eventTimeReader({
            field: rules.timestampField,
            unit: rules.timestampUnit,
            allowAnyTime: rules.allowAnyTimestamp,
          }),
    maxEventBytes: rules.maxEventBytes,
    findFields: wanted.every((path) => path.length === 1) ? topLevelFieldFinder(wanted.map((path) => path[0]!)) : null,
  }
}

export function parseBody(
  body: Buffer,
  rules: CompiledRules,
  headerKey: string | undefined,
  singleJson: boolean,
): ParsedBody {
  if (rules.keyHeader !== null) {
    if (!headerKey)
      return {
        status: 400,
        line: null,
        error: `the ${rules.keyName} is missing: every request needs it to key its events`,
      }
    // Node joins a header sent more than once with ", ": which one keys the events is ambiguous.
    const problem = headerKey.includes(',')
      ? 'holds a comma (sent more than once?): send it once, with one webhook id'
      : keyProblem(headerKey)
    if (problem)
      return {status: 400, line: null, error: `the ${rules.keyName} ${problem}; nothing of this request was written`}
  }
  // A pretty-printed JSON object spans lines; it is one event when the whole body parses as one.
  if (singleJson) {
    const whole = trimBlanks(body)
    if (whole.length > 0 && whole.indexOf(NEWLINE) !== -1) {
      let event: unknown
      try {
        event = JSON.parse(whole.toString('utf8'))
      } catch {
        event = undefined
      }
      if (event !== undefined && !Array.isArray(event)) {
        // Written compact, so the topic holds one event per line for NDJSON readers.
        const record = toRecord(Buffer.from(JSON.stringify(event)), event, rules, headerKey)
        return typeof record === 'string' ? {status: 400, line: 1, error: `line 1 ${record}`} : {records: [record]}
      }
    }
  }

  const records: IngestRecord[] = []
  let line = 0
  let start = 0
  while (start < body.length) {
    let end = body.indexOf(NEWLINE, start)
    if (end === -1) end = body.length
    line++
    const value = trimBlanks(body.subarray(start, end))
    start = end + 1
    if (value.length === 0) continue
    const refuse = (why: string): ParsedBody => ({
      status: 400,
      line,
      error: `line ${line} ${why}; nothing of this request was written`,
    })
    if (value.length > rules.maxEventBytes)
      return refuse(`is ${value.length} bytes, more than the ${rules.maxEventBytes} an event may have`)
    let event = foundFields(value, rules)
    if (event === undefined) {
      try {
        event = JSON.parse(value.toString('utf8'))
      } catch (error) {
        return refuse(`is not valid JSON (${(error as Error).message})`)
      }
    }
    const record = toRecord(value, event, rules, headerKey)
    if (typeof record === 'string') return refuse(record)
    records.push(record)
  }
  if (records.length === 0)
    return {
      status: 400,
      line: null,
      error: 'the request has no events: send one JSON object, or NDJSON (one object per line)',
    }
  return {records}
}

/**
 * An object holding just the wanted top-level fields of a line that is a JSON object, as
 * JSON.parse would give them; undefined when the scan is unsure (the line is then parsed whole).
 */
function foundFields(value: Buffer, rules: CompiledRules): object | undefined {
  if (rules.findFields === null) return undefined
  const found = rules.findFields(value)
  if (found === undefined) return undefined
  // No prototype: a field named __proto__ is then an own property, as JSON.parse makes it.
  const event = Object.create(null) as {[name: string]: unknown}
  let at = 0
  if (rules.keyPath !== null) event[rules.keyPath[0]!] = found[at++]
  if (rules.timestampPath !== null) event[rules.timestampPath[0]!] = found[at]
  return event
}

/** The record for one parsed event, or why it cannot be one. */
function toRecord(
  value: Buffer,
  event: unknown,
  rules: CompiledRules,
  headerKey: string | undefined,
): IngestRecord | string {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return 'is not a JSON object'
  if (value.length > rules.maxEventBytes)
    return `is ${value.length} bytes, more than the ${rules.maxEventBytes} an event may have`
  let key: string
  if (rules.keyPath === null) key = headerKey!
  else {
    const raw = pick(event, rules.keyPath)
    if (typeof raw === 'string') key = raw
    else if (typeof raw === 'number' && Number.isSafeInteger(raw)) key = String(raw)
    else {
      return raw === undefined
        ? `has no ${rules.keyName} field to key it by`
        : `has a ${rules.keyName} that is not a string or an exact integer (large ids must be JSON strings)`
    }
    const problem = keyProblem(key)
    if (problem) return `has a ${rules.keyName} that ${problem}`
  }
  let timestamp: number | null = null
  if (rules.timestampPath !== null) {
    const time = rules.readTime!(pick(event, rules.timestampPath))
    // The fix names a flag of the server's: the sender learns what its operator would change.
    if (isTimeProblem(time)) return `${time.problem}; the server's operator can ${time.fix}`
    timestamp = time
  }
  return {key, value, timestamp}
}

/** Why a key cannot be written (it must be a webhook id), or undefined when it can. */
function keyProblem(key: string): string | undefined {
  if (WEBHOOK_ID.test(key)) return undefined
  return key.length === 0
    ? 'is empty'
    : key.length > 64
      ? `is ${key.length} characters long, more than the 64 of a webhook id`
      : 'has characters other than A-Z a-z 0-9 _ - (a webhook id)'
}
