import {createReadStream} from 'node:fs'
import {open} from 'node:fs/promises'
import type {Readable} from 'node:stream'
import {Worker} from 'node:worker_threads'

import {BugError, UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import type {Partitioner} from './partitioner.js'
import {type Headers, RecordWriter} from './record-writer.js'
import type {Settings} from '../shared/settings.js'
import {CheckedEvents, eachLine, type Event, eventReader} from './check-lines.js'
import type {CheckWorkerData, CheckWorkerMessage} from './check-worker.js'
import {BadEvent, type EventRuleOptions} from './event-rules.js'
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
  /**
   * The input's path when it is a file: the check of a large one is split between this thread
   * and a worker thread, each reading part of the file.
   */
  file?: string
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

/** About 100 bytes each: a bound of ~100 MB on what the checking pass of a file keeps. */
const CHECKED_EVENTS_KEPT = 1_000_000
/** A file from this size on is checked by two threads: below it, starting a worker costs more than it saves. */
const SPLIT_CHECK_BYTES = 4 << 20

export function parseHeaders(pairs: string[]): Headers {
  return pairs.map((pair) => {
    const at = pair.indexOf('=')
    if (at <= 0) throw invalidArgument(`malformed --header ${quoteInput(pair)}`, 'pass headers as --header key=value')
    return {[pair.slice(0, at)]: pair.slice(at + 1)}
  })
}

export async function produce(settings: Settings, options: ProduceOptions): Promise<ProduceResult> {
  const runStarted = Date.now()
  const headers = options.headers.length ? parseHeaders(options.headers) : undefined
  const rules: EventRuleOptions = {
    keyField: options.keyField,
    timestampField: options.timestampField,
    timestampUnit: options.timestampUnit,
    allowAnyTimestamp: options.allowAnyTimestamp,
  }
  const readEvent = eventReader(rules)
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
    // The worker's own values can be checked only by this thread, and skipped lines must be
    // counted from the file's start.
    const secondPart =
      options.file !== undefined && !options.encodeValue && options.skipLines === 0
        ? await secondPartStart(options.file)
        : null
    const keep = secondPart ? CHECKED_EVENTS_KEPT / 2 : CHECKED_EVENTS_KEPT
    let bytesRead = 0
    let workerEvents = 0
    let workerBytes = 0
    let lastProgress = 0
    const progress = () => {
      if (options.onProgress && Date.now() - lastProgress > 200) {
        lastProgress = Date.now()
        options.onProgress({
          phase: 'checking',
          events: checkedEvents + workerEvents,
          bytes: bytesRead + workerBytes,
          total: null,
        })
      }
    }
    const badLine = (lineNumber: number, problem: string, fix: string | undefined) =>
      new UserError(
        'INVALID_INPUT',
        `line ${lineNumber} of ${options.source} ${problem}; nothing was written`,
        fix ?? 'fix that line and run again',
      )
    const worker = secondPart
      ? checkInWorker({...secondPart, rules, keep}, (events, bytes) => {
          workerEvents = events
          workerBytes = bytes
          progress()
        })
      : null
    try {
      const firstLines = await eachLine(
        secondPart
          ? createReadStream(secondPart.file, {start: 0, end: secondPart.start - 1, highWaterMark: 1 << 20})
          : options.recheck(),
        options.skipLines,
        (value, lineNumber) => {
          let event: Event
          try {
            event = readEvent(value)
            if (options.encodeValue) encoded(options.encodeValue, value)
          } catch (error) {
            if (!(error instanceof BadEvent)) throw error
            throw badLine(lineNumber, error.problem, error.fix)
          }
          checkedEvents++
          if (checked.length < keep) checked.push(event.key, event.timestamp ?? Number.NaN)
        },
        (bytes) => {
          bytesRead += bytes
          progress()
        },
      )
      if (worker) {
        const second = await worker.done
        // A bad line in the first part was thrown above: it comes first in the file.
        if (second.bad) throw badLine(firstLines + second.bad.lineNumber, second.bad.problem, second.bad.fix)
        // The kept events must be the file's first ones, in order, for the writing pass.
        if (checked.length === checkedEvents)
          for (let index = 0; index < second.keys.length; index++)
            checked.push(second.keys[index] ?? '', second.timestamps[index] ?? Number.NaN)
        checkedEvents += second.events
        bytesRead += second.bytes
      }
    } catch (error) {
      await worker?.stop()
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

/**
 * The second part of a file to check: from the line after its middle to the end. Null when the
 * file is small, or its second half is one line.
 */
async function secondPartStart(file: string): Promise<{file: string; start: number; end: number} | null> {
  const handle = await open(file)
  try {
    const {size} = await handle.stat()
    if (size < SPLIT_CHECK_BYTES) return null
    const middle = Math.floor(size / 2)
    const buffer = Buffer.allocUnsafe(1 << 16)
    for (let at = middle; at < size; at += buffer.length) {
      const {bytesRead} = await handle.read(buffer, 0, buffer.length, at)
      if (bytesRead === 0) break
      const newline = buffer.subarray(0, bytesRead).indexOf(0x0a)
      if (newline !== -1) return at + newline + 1 < size ? {file, start: at + newline + 1, end: size} : null
    }
    return null
  } finally {
    await handle.close()
  }
}

/**
 * The check-worker.ts module: next to this one when run from source; in a build, this module is
 * bundled into dist/chunks/ while the worker stays as tsc wrote it, in dist/core/kafka/.
 */
function checkWorkerUrl(): URL {
  const here = import.meta.url
  if (here.endsWith('.ts')) return new URL('check-worker.ts', here)
  const dist = here.lastIndexOf('/dist/')
  if (dist === -1) throw new BugError(`cannot find check-worker.js from ${here}`)
  return new URL(`${here.slice(0, dist)}/dist/core/kafka/check-worker.js`)
}

type CheckedPart = Extract<CheckWorkerMessage, {type: 'done'}>

/** Checks part of a file on a worker thread; `onProgress` hears its events and bytes so far. */
function checkInWorker(
  data: CheckWorkerData,
  onProgress: (events: number, bytes: number) => void,
): {done: Promise<CheckedPart>; stop: () => Promise<void>} {
  const worker = new Worker(checkWorkerUrl(), {workerData: data})
  const done = new Promise<CheckedPart>((resolve, reject) => {
    worker.on('message', (message: CheckWorkerMessage) => {
      if (message.type === 'progress') onProgress(message.events, message.bytes)
      else resolve(message)
    })
    worker.on('error', reject)
    worker.on('exit', (code) => reject(new BugError(`the checking worker ended (code ${code}) before it answered`)))
  })
  // Until awaited, a failure is the main thread's to report (or not, if it failed first).
  done.catch(() => {})
  return {done, stop: async () => void (await worker.terminate())}
}
