import type {Readable} from 'node:stream'

import {BugError, UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import type {Partitioner} from './partitioner.js'
import {type Headers, RecordWriter} from './record-writer.js'
import type {Settings} from '../shared/settings.js'
import {BadEvent, eventRules, trimBlanks} from './event-rules.js'
import type {TimestampUnit} from './event-time.js'
import {topicMetadata, withAdmin} from './topics.js'

/**
 * NDJSON events into a topic: one JSON object per line, written unchanged as the record value
 * (or as `encodeValue` turns it, for `--value-subject`, with the same checks before any write),
 * keyed by a field (webhook_id by default) and stamped with CreateTime from another field when
 * one is named, else the time of writing: the rules of event-rules.ts, which `ingest serve` shares.
 *
 * A line that is not an object, or lacks the key, stops the run. When the input can be read twice
 * (a file: `recheck`), every line is checked before the first record is written, so bad input
 * writes nothing. From stdin, what came before the bad line has been written and acknowledged, and
 * the error names those lines and how to continue. Records that Kafka fails to take are reported by
 * line number.
 */
export interface ProduceOptions {
  topic: string
  input: Readable
  /** Opens the same input again, for a checking pass before any write (files; not stdin). */
  recheck?: () => Readable
  source: string
  keyField: string
  timestampField?: string
  timestampUnit?: TimestampUnit
  /** Accept times before 2000 or more than an hour ahead. */
  allowAnyTimestamp?: boolean
  headers: string[]
  partitioner: Partitioner
  skipLines: number
  /**
   * What each event's JSON text is written as (`--value-subject`: the Confluent wire format), or
   * what is wrong with the event, worded like a BadEvent's problem; none: the text unchanged.
   */
  encodeValue?: (value: Buffer) => Buffer | {problem: string}
  onProgress?: (progress: ProduceProgress) => void
}

/**
 * A file is read twice: `checking` (events: lines checked, bytes: of the file read so far), then
 * `writing` (events written, bytes of their values, total: the events the check found). From
 * stdin there is only the writing pass, with no total.
 */
export interface ProduceProgress {
  phase: 'checking' | 'writing'
  events: number
  bytes: number
  total: number | null
}

export interface ProduceResult {
  topic: string
  events: number
  bytes: number
  /** The whole run: checking, writing and waiting for the last acknowledgement. */
  seconds: number
  /** The writing pass alone, which eventsPerSecond is measured over. */
  writeSeconds: number
  eventsPerSecond: number
  partitioner: Partitioner
  skippedLines: number
  firstTimestamp: number | null
  lastTimestamp: number | null
}

const NEWLINE = 0x0a
/** About 100 bytes each: a bound of ~100 MB on what the checking pass of a file keeps. */
const CHECKED_EVENTS_KEPT = 1_000_000

export function parseHeaders(pairs: string[]): Headers {
  return pairs.map((pair) => {
    const at = pair.indexOf('=')
    if (at <= 0) throw invalidArgument(`malformed --header ${quoteInput(pair)}`, 'pass headers as --header key=value')
    return {[pair.slice(0, at)]: pair.slice(at + 1)}
  })
}

interface Event {
  key: string
  timestamp: number | null
}

/** Distinct keys interned by CheckedEvents: enough for the webhooks of a large file. */
const INTERNED_KEYS = 65_536

/**
 * The checking pass's events, kept without an object per event: what the garbage collector
 * must copy while they wait for the writing pass is one reference per event (keys repeat, and
 * a repeated key is kept once) and a number.
 */
class CheckedEvents {
  length = 0
  private keys: string[] = []
  /** NaN: no timestamp. */
  private timestamps = new Float64Array(1024)
  private interned = new Map<string, string>()

  push(event: Event): void {
    if (this.length === this.timestamps.length) {
      const larger = new Float64Array(this.length * 2)
      larger.set(this.timestamps)
      this.timestamps = larger
    }
    let key = this.interned.get(event.key)
    if (key === undefined) {
      key = event.key
      if (this.interned.size < INTERNED_KEYS) this.interned.set(key, key)
    }
    this.keys.push(key)
    this.timestamps[this.length++] = event.timestamp ?? Number.NaN
  }

  get(index: number): Event {
    const timestamp = this.timestamps[index]
    const key = this.keys[index]
    if (timestamp === undefined || key === undefined) throw new BugError(`no checked event ${index}`)
    return {key, timestamp: Number.isNaN(timestamp) ? null : timestamp}
  }
}

export async function produce(settings: Settings, options: ProduceOptions): Promise<ProduceResult> {
  const runStarted = Date.now()
  const headers = options.headers.length ? parseHeaders(options.headers) : undefined
  const readEvent = eventReader(options)
  // The topic is looked up and the producer connected while a file is checked: the check is all
  // on this thread, the connects are mostly waiting on the brokers. Nothing is written before the
  // check ends.
  const opening = withAdmin(settings, (admin) => topicMetadata(settings, admin, options.topic)).then(() =>
    RecordWriter.open(settings, options.topic, {partitioner: options.partitioner}),
  )
  if (!options.recheck) await opening
  opening.catch(() => {}) // awaited below, after the check

  // The checking pass keeps what it read for the first CHECKED_EVENTS_KEPT events, so the writing
  // pass reads each of those lines' fields once.
  const checked = new CheckedEvents()
  let checkedEvents = 0
  if (options.recheck) {
    let bytesRead = 0
    let lastProgress = 0
    const onChunk = (bytes: number) => {
      bytesRead += bytes
      if (options.onProgress && Date.now() - lastProgress > 200) {
        lastProgress = Date.now()
        options.onProgress({phase: 'checking', events: checkedEvents, bytes: bytesRead, total: null})
      }
    }
    const checking = eachLine(
      options.recheck(),
      options.skipLines,
      (value, lineNumber) => {
        let event: Event
        try {
          event = readEvent(value)
          if (options.encodeValue) encoded(options.encodeValue, value)
        } catch (error) {
          if (!(error instanceof BadEvent)) throw error
          throw new UserError(
            'INVALID_INPUT',
            `line ${lineNumber} of ${options.source} ${error.problem}; nothing was written`,
            error.fix ?? 'fix that line and run again',
          )
        }
        checkedEvents++
        if (checked.length < CHECKED_EVENTS_KEPT) checked.push(event)
      },
      onChunk,
    )
    try {
      await checking
    } catch (error) {
      // A topic that is missing or unreachable is said first, as when it was looked up first.
      const writer = await opening
      await writer.close()
      throw error
    }
    options.onProgress?.({phase: 'checking', events: checkedEvents, bytes: bytesRead, total: null})
  }
  const total = options.recheck ? checkedEvents : null
  let nextChecked = 0

  const writer = await opening
  options.onProgress?.({phase: 'writing', events: 0, bytes: 0, total})
  const started = Date.now()
  let firstTimestamp: number | null = null
  let lastTimestamp: number | null = null
  let badLine: UserError | null = null
  let lastProgress = started
  let lines = 0

  const handleLine = (value: Buffer, lineNumber: number): Promise<void> | void => {
    lines = lineNumber
    let event: Event
    let record = value
    try {
      event = nextChecked < checked.length ? checked.get(nextChecked++) : readEvent(value)
      if (options.encodeValue) record = encoded(options.encodeValue, value)
    } catch (error) {
      if (!(error instanceof BadEvent)) throw error
      const done = lineNumber - 1 > options.skipLines ? ` (lines ${options.skipLines + 1}-${lineNumber - 1})` : ''
      const written = writer.stats.written
      throw new UserError(
        'INVALID_INPUT',
        `line ${lineNumber} of ${options.source} ${error.problem}; ` +
          `the ${written} ${written === 1 ? 'event before it was' : 'events before it were'} written${done}`,
        `${error.fix ? `${error.fix}, or ` : ''}fix that line and run again with --skip-lines ${lineNumber - 1} ` +
          `to continue after them, or leave it out with --skip-lines ${lineNumber} ` +
          `(what \`tail -n +${lineNumber + 1}\` of the input would give)`,
      )
    }
    if (event.timestamp !== null) {
      firstTimestamp ??= event.timestamp
      lastTimestamp = event.timestamp
    }
    if (options.onProgress && lineNumber % 4096 === 0 && Date.now() - lastProgress > 200) {
      lastProgress = Date.now()
      options.onProgress({phase: 'writing', events: writer.stats.written, bytes: writer.stats.bytes, total})
    }
    return writer.write(event.key, record, event.timestamp, headers, {lineNumber})
  }

  try {
    lines = await eachLine(options.input, options.skipLines, handleLine)
  } catch (error) {
    if (!(error instanceof UserError) || error.code !== 'INVALID_INPUT') {
      await writer.close().catch(() => {})
      throw error
    }
    badLine = error
  }

  const stats = await writer.close()
  if (badLine) throw badLine
  const writeSeconds = (Date.now() - started) / 1000
  options.onProgress?.({phase: 'writing', events: stats.acknowledged, bytes: stats.bytes, total})
  return {
    topic: options.topic,
    events: stats.acknowledged,
    bytes: stats.bytes,
    seconds: (Date.now() - runStarted) / 1000,
    writeSeconds,
    eventsPerSecond: Math.round(stats.acknowledged / Math.max(writeSeconds, 0.001)),
    partitioner: options.partitioner,
    skippedLines: Math.min(options.skipLines, lines),
    firstTimestamp,
    lastTimestamp,
  }
}

function encoded(encode: NonNullable<ProduceOptions['encodeValue']>, value: Buffer): Buffer {
  const result = encode(value)
  if (Buffer.isBuffer(result)) return result
  throw new BadEvent(result.problem)
}

/** Reads the key and CreateTime of one line; throws BadEvent saying what is wrong with it. */
function eventReader(options: ProduceOptions): (value: Buffer) => Event {
  const rules = eventRules({
    keyField: options.keyField,
    timestampField: options.timestampField,
    timestampUnit: options.timestampUnit,
    allowAnyTimestamp: options.allowAnyTimestamp,
  })
  return (value) => {
    const {key, timestamp} = rules.read(value)
    if (key === null) throw new BugError('the event rules read no key although a key field was given')
    return {key, timestamp}
  }
}

/**
 * Calls `handle` with each non-blank line after the first `skipLines` (trimmed of blanks and a
 * CRLF's carriage return) and its 1-based number; waits only when `handle` returns a promise.
 * Returns the number of lines seen; `onChunk` hears how many bytes each read brought.
 */
async function eachLine(
  input: Readable,
  skipLines: number,
  handle: (line: Buffer, lineNumber: number) => Promise<void> | void,
  onChunk?: (bytes: number) => void,
): Promise<number> {
  let lineNumber = 0
  const take = (line: Buffer) => {
    lineNumber++
    if (lineNumber <= skipLines) return
    const value = trimBlanks(line)
    if (value.length === 0) return
    return handle(value, lineNumber)
  }
  let pending: Buffer = Buffer.alloc(0)
  for await (const chunk of input as AsyncIterable<Buffer>) {
    onChunk?.(chunk.length)
    let start = 0
    if (pending.length) {
      // Only the line that spans two chunks is copied, not the whole chunk.
      const end = chunk.indexOf(NEWLINE)
      if (end === -1) {
        pending = Buffer.concat([pending, chunk])
        continue
      }
      const waiting = take(Buffer.concat([pending, chunk.subarray(0, end)]))
      if (waiting) await waiting
      start = end + 1
    }
    for (let end = chunk.indexOf(NEWLINE, start); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      const waiting = take(chunk.subarray(start, end))
      if (waiting) await waiting
      start = end + 1
    }
    pending = Buffer.from(chunk.subarray(start))
  }
  if (pending.length) await take(pending)
  return lineNumber
}
