import {createReadStream} from 'node:fs'
import {parentPort, workerData} from 'node:worker_threads'

import {BugError} from '../shared/errors.js'
import {CheckedEvents, eachLine, eventReader} from './check-lines.js'
import {BadEvent, type EventRuleOptions} from './event-rules.js'

/**
 * The checking pass of `log produce --file` over the second part of a large file, on the core
 * the main thread's check of the first part leaves idle (produce.ts, checkInWorker). Line numbers
 * are counted from the part's start; the main thread adds the lines before it.
 */
export interface CheckWorkerData {
  file: string
  /** Byte where the part starts (a line's start) and where the file ends. */
  start: number
  end: number
  rules: EventRuleOptions
  /** Events whose key and time are kept for the writing pass. */
  keep: number
}

export type CheckWorkerMessage =
  | {type: 'progress'; events: number; bytes: number}
  | {
      type: 'done'
      lines: number
      events: number
      bytes: number
      keys: string[]
      timestamps: Float64Array
      /** The part's first bad line, numbered from the part's start. */
      bad: {lineNumber: number; problem: string; fix?: string} | null
    }

const port = parentPort
if (!port) throw new BugError('check-worker.ts runs only as a worker thread')
const data = workerData as CheckWorkerData
const readEvent = eventReader(data.rules)
const checked = new CheckedEvents()
let events = 0
let bytes = 0
let bad: {lineNumber: number; problem: string; fix?: string} | null = null
let lastProgress = Date.now()
/** Thrown to stop reading at the first bad line; never leaves this module. */
const stop = new Error('stop')

const lines = await eachLine(
  createReadStream(data.file, {start: data.start, end: data.end - 1, highWaterMark: 1 << 20}),
  0,
  (value, lineNumber) => {
    let event
    try {
      event = readEvent(value)
    } catch (error) {
      if (!(error instanceof BadEvent)) throw error
      bad = {lineNumber, problem: error.problem, ...(error.fix === undefined ? {} : {fix: error.fix})}
      throw stop
    }
    events++
    if (checked.length < data.keep) checked.push(event.key, event.timestamp ?? Number.NaN)
  },
  (chunk) => {
    bytes += chunk
    if (Date.now() - lastProgress > 200) {
      lastProgress = Date.now()
      port.postMessage({type: 'progress', events, bytes} satisfies CheckWorkerMessage)
    }
  },
).catch((error: unknown) => {
  if (error !== stop) throw error
  return 0
})
const {keys, timestamps} = checked.contents()
port.postMessage({type: 'done', lines, events, bytes, keys, timestamps, bad} satisfies CheckWorkerMessage)
