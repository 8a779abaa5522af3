import type {Readable} from 'node:stream'

import {BugError} from '../shared/errors.js'
import {eventRules, trimBlanks, type EventRuleOptions} from './event-rules.js'

/**
 * What the checking pass of `log produce` shares between its threads (produce.ts and
 * check-worker.ts): splitting a file into lines, reading each event's key and time, and keeping
 * them for the writing pass.
 */
export interface Event {
  key: string
  timestamp: number | null
}

const NEWLINE = 0x0a
/** Distinct keys interned by CheckedEvents: enough for the webhooks of a large file. */
const INTERNED_KEYS = 65_536

/**
 * The checking pass's events, kept without an object per event: what the garbage collector
 * must copy while they wait for the writing pass is one reference per event (keys repeat, and
 * a repeated key is kept once) and a number.
 */
export class CheckedEvents {
  length = 0
  private keys: string[] = []
  /** NaN: no timestamp. */
  private timestamps = new Float64Array(1024)
  private interned = new Map<string, string>()

  push(key: string, timestamp: number): void {
    if (this.length === this.timestamps.length) {
      const larger = new Float64Array(this.length * 2)
      larger.set(this.timestamps)
      this.timestamps = larger
    }
    let kept = this.interned.get(key)
    if (kept === undefined) {
      kept = key
      if (this.interned.size < INTERNED_KEYS) this.interned.set(kept, kept)
    }
    this.keys.push(kept)
    this.timestamps[this.length++] = timestamp
  }

  get(index: number): Event {
    const timestamp = this.timestamps[index]
    const key = this.keys[index]
    if (timestamp === undefined || key === undefined) throw new BugError(`no checked event ${index}`)
    return {key, timestamp: Number.isNaN(timestamp) ? null : timestamp}
  }

  /** The events as plain arrays, to post from a worker (NaN: no timestamp). */
  contents(): {keys: string[]; timestamps: Float64Array} {
    return {keys: this.keys, timestamps: this.timestamps.subarray(0, this.length)}
  }
}

/** Reads the key and CreateTime of one line; throws BadEvent saying what is wrong with it. */
export function eventReader(options: EventRuleOptions): (value: Buffer) => Event {
  const rules = eventRules(options)
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
export async function eachLine(
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
