import {createReadStream} from 'node:fs'
import {parentPort, workerData} from 'node:worker_threads'

import {BugError} from '../shared/errors.js'
import {eachLine, eventReader} from './check-lines.js'
import {BadEvent, type EventRuleOptions} from './event-rules.js'
import {BATCH_BYTES, BATCH_RECORDS, type Headers, RecordBatch} from './record-batch.js'

/**
 * The writing pass of `log produce --file` off the main thread: reads the file again, reads each
 * line's key and time again and packs the records into batches, which it posts to the main
 * thread (produce.ts, packInWorker) for `RecordWriter.writePacked`. The main thread is left with
 * handing batches to librdkafka, which copies every record on that thread; the two overlap.
 *
 * At most PACKED_AHEAD batches are posted and not yet taken: the main thread answers each one it
 * has written with a message, so the file is never held in memory.
 */
export interface PackWorkerData {
  file: string
  rules: EventRuleOptions
  headers: Headers | undefined
  skipLines: number
}

export type PackWorkerMessage =
  | {
      type: 'batch'
      data: Uint8Array
      index: Float64Array
      headerIndex: Float64Array
      length: number
      valueBytes: number
      lines: Float64Array
      firstTimestamp: number | null
      lastTimestamp: number | null
    }
  | {type: 'bad'; lineNumber: number; problem: string; fix?: string}
  | {type: 'done'; lines: number}

const PACKED_AHEAD = 4

const port = parentPort
if (!port) throw new BugError('pack-worker.ts runs only as a worker thread')
const data = workerData as PackWorkerData
const readEvent = eventReader(data.rules)
const batch = new RecordBatch(BATCH_RECORDS, BATCH_BYTES + (64 << 10))
const lines = new Float64Array(BATCH_RECORDS)
let firstTimestamp: number | null = null
let lastTimestamp: number | null = null
let ahead = 0
let taken: (() => void) | null = null
port.on('message', () => {
  ahead--
  taken?.()
  taken = null
})
/** Thrown to stop reading at a bad line; never leaves this module. */
const stop = new Error('stop')

async function post(): Promise<void> {
  while (ahead >= PACKED_AHEAD) await new Promise<void>((resolve) => (taken = resolve))
  const message: PackWorkerMessage = {
    type: 'batch',
    data: batch.data.subarray(0, batch.bytes),
    index: batch.index,
    headerIndex: batch.headerIndex,
    length: batch.length,
    valueBytes: batch.valueBytes,
    lines,
    firstTimestamp,
    lastTimestamp,
  }
  // Copied by postMessage (a memcpy of ~1 MB), so the batch's buffers are reused.
  port?.postMessage(message)
  ahead++
  batch.clear()
  firstTimestamp = null
  lastTimestamp = null
}

const seen = await eachLine(
  createReadStream(data.file, {highWaterMark: 1 << 20}),
  data.skipLines,
  (value, lineNumber) => {
    let event
    try {
      event = readEvent(value)
    } catch (error) {
      if (!(error instanceof BadEvent)) throw error
      const bad: PackWorkerMessage = {type: 'bad', lineNumber, problem: error.problem}
      if (error.fix !== undefined) bad.fix = error.fix
      port.postMessage(bad)
      throw stop
    }
    if (event.timestamp !== null) {
      firstTimestamp ??= event.timestamp
      lastTimestamp = event.timestamp
    }
    lines[batch.length] = lineNumber
    batch.add(event.key, value, event.timestamp, -1, data.headers)
    if (batch.length >= BATCH_RECORDS || batch.bytes >= BATCH_BYTES) return post()
  },
).catch((error: unknown) => {
  if (error !== stop) throw error
  return null
})
if (seen !== null) {
  if (batch.length > 0) await post()
  port.postMessage({type: 'done', lines: seen} satisfies PackWorkerMessage)
}
