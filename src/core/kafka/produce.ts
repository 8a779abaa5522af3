import type {Readable} from 'node:stream'

import {UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import type {Partitioner} from './partitioner.js'
import {type Headers, RecordWriter} from './record-writer.js'
import type {Settings} from '../shared/settings.js'
import {parseTime} from '../shared/time.js'
import {topicMetadata, withAdmin} from './topics.js'

/**
 * NDJSON events into a topic: one JSON object per line, written unchanged as the record value,
 * keyed by a field (webhook_id by default) and stamped with CreateTime from another field when
 * one is named (epoch ms or any form parseTime accepts), else the time of writing.
 *
 * A line that is not an object, or lacks the key, stops the run: what came before it has been
 * written and acknowledged, and the error says how many lines to skip when running again.
 */
export interface ProduceOptions {
  topic: string
  input: Readable
  source: string
  keyField: string
  timestampField?: string
  headers: string[]
  partitioner: Partitioner
  skipLines: number
  onProgress?: (progress: ProduceProgress) => void
}

export interface ProduceProgress {
  events: number
  bytes: number
  elapsedMs: number
}

export interface ProduceResult {
  topic: string
  events: number
  bytes: number
  seconds: number
  eventsPerSecond: number
  partitioner: Partitioner
  skippedLines: number
  firstTimestamp: number | null
  lastTimestamp: number | null
}

const NEWLINE = 0x0a

export function parseHeaders(pairs: string[]): Headers {
  return pairs.map((pair) => {
    const at = pair.indexOf('=')
    if (at <= 0) throw invalidArgument(`malformed --header ${quoteInput(pair)}`, 'pass headers as --header key=value')
    return {[pair.slice(0, at)]: pair.slice(at + 1)}
  })
}

export async function produce(settings: Settings, options: ProduceOptions): Promise<ProduceResult> {
  const headers = options.headers.length ? parseHeaders(options.headers) : undefined
  const keyPath = fieldPath(options.keyField, '--key-field')
  const timestampPath = options.timestampField === undefined ? undefined : fieldPath(options.timestampField, '--timestamp-field')
  await withAdmin(settings, (admin) => topicMetadata(settings, admin, options.topic))

  const writer = await RecordWriter.open(settings, options.topic, {partitioner: options.partitioner})
  const started = Date.now()
  let lineNumber = 0
  let firstTimestamp: number | null = null
  let lastTimestamp: number | null = null
  let badLine: UserError | null = null
  let lastProgress = started

  const handleLine = async (line: Buffer) => {
    lineNumber++
    if (lineNumber <= options.skipLines) return
    // Values are written as the input bytes, minus a CRLF's carriage return and surrounding blanks.
    const value = trimBlanks(line)
    if (value.length === 0) return
    const text = value.toString('utf8')
    const fail = (why: string) => new UserError(
      'INVALID_INPUT',
      `line ${lineNumber} of ${options.source} ${why}; the ${writer.stats.written} events before it were written`,
      `fix that line and run again with --skip-lines ${lineNumber - 1} to continue after them`,
    )
    let event: unknown
    try {
      event = JSON.parse(text)
    } catch (error) {
      throw fail(`is not valid JSON (${(error as Error).message})`)
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) throw fail('is not a JSON object')
    const key = pick(event, keyPath)
    if (typeof key !== 'string' && !(typeof key === 'number' && Number.isSafeInteger(key))) {
      throw fail(key === undefined
        ? `has no ${options.keyField} field to key it by`
        : `has a ${options.keyField} that is not a string or an exact integer (large ids must be JSON strings)`)
    }
    let timestamp: number | null = null
    if (timestampPath) {
      const raw = pick(event, timestampPath)
      if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) timestamp = raw
      else if (typeof raw === 'string') {
        try {
          timestamp = parseTime(raw, options.timestampField)
        } catch {
          throw fail(`has a ${options.timestampField} that is not a time`)
        }
      } else throw fail(`has no usable ${options.timestampField} (epoch ms or a time string)`)
      firstTimestamp ??= timestamp
      lastTimestamp = timestamp
    }
    await writer.write(String(key), value, timestamp, headers)
    if (options.onProgress && lineNumber % 4096 === 0 && Date.now() - lastProgress > 200) {
      lastProgress = Date.now()
      options.onProgress({events: writer.stats.written, bytes: writer.stats.bytes, elapsedMs: lastProgress - started})
    }
  }

  try {
    let pending: Buffer = Buffer.alloc(0)
    for await (const chunk of options.input as AsyncIterable<Buffer>) {
      const data = pending.length ? Buffer.concat([pending, chunk]) : chunk
      let start = 0
      for (let end = data.indexOf(NEWLINE, start); end !== -1; end = data.indexOf(NEWLINE, start)) {
        await handleLine(data.subarray(start, end))
        start = end + 1
      }
      pending = Buffer.from(data.subarray(start))
    }
    if (pending.length) await handleLine(pending)
  } catch (error) {
    if (!(error instanceof UserError) || error.code !== 'INVALID_INPUT') {
      await writer.close().catch(() => {})
      throw error
    }
    badLine = error
  }

  const stats = await writer.close()
  if (badLine) throw badLine
  const seconds = (Date.now() - started) / 1000
  return {
    topic: options.topic,
    events: stats.acknowledged,
    bytes: stats.bytes,
    seconds,
    eventsPerSecond: Math.round(stats.acknowledged / Math.max(seconds, 0.001)),
    partitioner: options.partitioner,
    skippedLines: Math.min(options.skipLines, lineNumber),
    firstTimestamp,
    lastTimestamp,
  }
}

export function fieldPath(field: string, flag: string): string[] {
  const path = field.split('.')
  if (path.some((part) => part === '')) throw invalidArgument(`${flag} '${field}' is not a field name`, 'use a field name, or a dotted path such as user.id')
  return path
}

export function pick(event: object, path: string[]): unknown {
  let value: unknown = event
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

const isBlank = (byte: number) => byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0a

function trimBlanks(line: Buffer): Buffer {
  let start = 0
  let end = line.length
  while (start < end && isBlank(line[start]!)) start++
  while (end > start && isBlank(line[end - 1]!)) end--
  return start === 0 && end === line.length ? line : line.subarray(start, end)
}
