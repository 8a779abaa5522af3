import {BadEvent, eventRules, trimBlanks, type EventFields, type EventRules} from '../../kafka/event-rules.js'
import type {TimestampUnit} from '../../kafka/event-time.js'
import {BugError, invalidArgument, quoteInput} from '../../shared/errors.js'
import {WEBHOOK_ID} from '../../webhooks/store.js'

/**
 * Turns one request body into the records it asks for, or into the reason it is refused. A body
 * is one JSON object, or NDJSON (one object per line). Every event is checked before any is
 * produced, so a request with one bad event writes nothing; the refusal names the line.
 *
 * Events meet the rules of `log produce` (kafka/event-rules.ts: a JSON object, its key field, its
 * time field), and two of the server's own: a key, from a field or from the key header alike, must
 * be a webhook id (1 to 64 of A-Z a-z 0-9 _ -): replays find events by webhook id, token scopes are
 * written in that alphabet, and a key of anything else (a path, a control character, 15,000
 * characters) is refused rather than written; and an event has at most maxEventBytes. Values are
 * the event's bytes, unchanged.
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

export interface IngestRules {
  key: KeySource
  timestampField?: string
  timestampUnit?: TimestampUnit
  /** Accept times before 2000 or more than an hour ahead. */
  allowAnyTimestamp?: boolean
  maxEventBytes: number
}

export interface CompiledRules {
  events: EventRules
  keyHeader: string | null
  keyName: string
  maxEventBytes: number
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

export function compileRules(rules: IngestRules): CompiledRules {
  const keyHeader = rules.key.header?.toLowerCase() ?? null
  if (keyHeader !== null && (!/^[a-z0-9-]{1,64}$/.test(keyHeader) || NOT_KEY_HEADERS.has(keyHeader))) {
    throw invalidArgument(
      `--key-header ${quoteInput(rules.key.header ?? '')} cannot key events`,
      'name a header of your own of up to 64 letters, digits and -, such as X-Webhook-Id ' +
        '(not Authorization, Cookie or Idempotency-Key)',
    )
  }
  const keyField = keyHeader === null ? (rules.key.field ?? 'webhook_id') : null
  return {
    events: eventRules({
      keyField,
      timestampField: rules.timestampField,
      timestampUnit: rules.timestampUnit,
      allowAnyTimestamp: rules.allowAnyTimestamp,
      keyProblem,
    }),
    keyHeader,
    keyName: keyField ?? `${rules.key.header} header`,
    maxEventBytes: rules.maxEventBytes,
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
        const value = Buffer.from(JSON.stringify(event))
        try {
          checkSize(value, rules)
          return {records: [toRecord(value, rules.events.readParsed(event), headerKey)]}
        } catch (error) {
          if (!(error instanceof BadEvent)) throw error
          return {status: 400, line: 1, error: `line 1 ${refusal(error)}`}
        }
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
    try {
      checkSize(value, rules)
      records.push(toRecord(value, rules.events.read(value), headerKey))
    } catch (error) {
      if (!(error instanceof BadEvent)) throw error
      return {status: 400, line, error: `line ${line} ${refusal(error)}; nothing of this request was written`}
    }
  }
  if (records.length === 0)
    return {
      status: 400,
      line: null,
      error: 'the request has no events: send one JSON object, or NDJSON (one object per line)',
    }
  return {records}
}

/** How a refused event reads to its sender: a fix names a flag of the server's operator. */
function refusal(error: BadEvent): string {
  return error.fix ? `${error.problem}; the server's operator can ${error.fix}` : error.problem
}

function checkSize(value: Buffer, rules: CompiledRules): void {
  if (value.length > rules.maxEventBytes)
    throw new BadEvent(`is ${value.length} bytes, more than the ${rules.maxEventBytes} an event may have`)
}

/** The record of an event that met the rules of event-rules.ts (its key checked there or from the header). */
function toRecord(value: Buffer, fields: EventFields, headerKey: string | undefined): IngestRecord {
  let key: string
  if (fields.key === null) {
    if (headerKey === undefined)
      throw new BugError('an event without a key field reached toRecord without a key header')
    key = headerKey
  } else key = fields.key
  return {key, value, timestamp: fields.timestamp}
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
