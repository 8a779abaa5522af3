import type {Message, PackedRecords} from '../core/kafka/range-reader.js'
import {toReadRecord} from '../core/kafka/read.js'
import type {ValueDecoder} from '../core/schemas/decode.js'
import {isoTime} from '../core/shared/time.js'
import {table} from './output.js'

/**
 * How records reach the terminal, shared by `log read` and `log search`: --format json (one JSON
 * object per line as records arrive), raw (values only), table (collected, printed at the end).
 */
export const RECORD_FORMATS = ['json', 'table', 'raw'] as const
export type RecordFormat = (typeof RECORD_FORMATS)[number]

export interface RecordView {
  partition: number
  offset: number
  timestamp: string | null
  key: string | null
  headers: Record<string, string>
  value: string | null
}

export function recordView(message: Message): RecordView {
  const record = toReadRecord(message)
  return {
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp >= 0 ? isoTime(record.timestamp) : null,
    key: record.key === null ? null : record.key.toString('utf8'),
    headers: Object.fromEntries(record.headers.map((header) => [header.key, header.value.toString('utf8')])),
    value: record.value === null ? null : record.value.toString('utf8'),
  }
}

/** A record whose value went through --decode: its schema id and the value as data (null: a null value). */
export interface DecodedRecordView extends Omit<RecordView, 'value'> {
  schemaId: number | null
  value: unknown
}

export async function decodedViews(
  topic: string,
  {batch, indexes}: PackedRecords,
  decoder: ValueDecoder,
): Promise<DecodedRecordView[]> {
  const views: DecodedRecordView[] = []
  for (const index of indexes) {
    const message = batch.message(index)
    const view = recordView(message)
    const decoded = await decoder.decode(message.value ?? null, {topic, partition: view.partition, offset: view.offset})
    views.push({...view, schemaId: decoded?.schemaId ?? null, value: decoded?.value ?? null})
  }
  return views
}

/** For the table: a decoded value as one line of JSON. */
export function asRecordView(view: DecodedRecordView): RecordView {
  const {schemaId: _schemaId, value, ...rest} = view
  return {...rest, value: value === null ? null : JSON.stringify(value)}
}

export function rawLines(batch: Message[]): Buffer {
  const parts: Buffer[] = []
  const newline = Buffer.from('\n')
  for (const message of batch) {
    if (message.value) parts.push(message.value)
    parts.push(newline)
  }
  return Buffer.concat(parts)
}

export function jsonLines(batch: Message[]): string {
  return batch.map((message) => `${JSON.stringify(recordView(message))}\n`).join('')
}

/** Where a record's value lies in its packed batch (the index layout of types/rdkafka.d.ts). */
const PACKED_STRIDE = 11
const PACKED_VALUE_START = 6
const PACKED_VALUE_LENGTH = 7
const NEWLINE = 10

/**
 * --format raw straight from packed batches: every value and a newline copied into one output
 * buffer, no object per record. An output buffer is used again once stdout has written it, so a
 * read holds one or two of them instead of one per batch until the garbage collector runs.
 */
export class RawLines {
  private readonly spare: Buffer[] = []

  /** The records' lines; hand the buffer back with `written` once it is written. */
  lines({batch, indexes}: PackedRecords): Buffer {
    const {data, index} = batch
    let length = indexes.length
    for (const record of indexes) length += Math.max(0, index[record * PACKED_STRIDE + PACKED_VALUE_LENGTH] ?? 0)
    const output = this.take(length)
    let at = 0
    for (const record of indexes) {
      const valueLength = index[record * PACKED_STRIDE + PACKED_VALUE_LENGTH] ?? 0
      if (valueLength > 0) {
        const start = index[record * PACKED_STRIDE + PACKED_VALUE_START] ?? 0
        at += data.copy(output, at, start, start + valueLength)
      }
      output[at++] = NEWLINE
    }
    return output.subarray(0, length)
  }

  written(lines: Buffer): void {
    // The whole buffer take() allocated (allocUnsafeSlow: one ArrayBuffer of its own).
    this.spare.push(Buffer.from(lines.buffer))
  }

  private take(length: number): Buffer {
    const fits = this.spare.findIndex((buffer) => buffer.length >= length)
    const [spare] = fits >= 0 ? this.spare.splice(fits, 1) : []
    if (spare) return spare
    this.spare.length = 0
    // A quarter more than this batch needs, so the next batches likely fit in it.
    return Buffer.allocUnsafeSlow(length + (length >> 2))
  }
}

/** --format json straight from packed batches. */
export function packedJsonLines({batch, indexes}: PackedRecords): string {
  let lines = ''
  for (const record of indexes) lines += `${JSON.stringify(recordView(batch.message(record)))}\n`
  return lines
}

export function recordsTable(records: RecordView[]): string {
  return table(
    [
      {title: 'partition', align: 'right'},
      {title: 'offset', align: 'right'},
      {title: 'timestamp', drop: 2},
      {title: 'key', cut: 'middle', drop: 3},
      {title: 'headers', cut: 'end', drop: 1},
      {title: 'value', cut: 'end'},
    ],
    records.map((record) => [
      record.partition,
      record.offset,
      record.timestamp,
      record.key,
      Object.entries(record.headers)
        .map(([key, value]) => `${key}=${value}`)
        .join(' '),
      record.value,
    ]),
  )
}

/** stdout with back-pressure; a closed pipe (`| head`) ends the read quietly. */
export class StdoutWriter {
  private closed = false
  private readonly closedListeners: (() => void)[] = []

  constructor() {
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error
      this.closed = true
      for (const listener of this.closedListeners) listener()
    })
  }

  onClosed(listener: () => void): void {
    this.closedListeners.push(listener)
  }

  /** `written` is called once stdout is done with the chunk (never, if stdout was closed). */
  async write(chunk: string | Buffer, written?: () => void): Promise<void> {
    if (this.closed || chunk.length === 0) return
    const done =
      written &&
      ((error?: Error | null) => {
        if (!error) written()
      })
    if (process.stdout.write(chunk, done)) return
    // A pipe closed while full never drains: its close ends the wait too.
    await new Promise<void>((resolve) => {
      const resume = () => {
        process.stdout.off('drain', resume)
        process.stdout.off('close', resume)
        resolve()
      }
      process.stdout.once('drain', resume)
      process.stdout.once('close', resume)
    })
  }
}
