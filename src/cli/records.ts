import type {Message} from '../core/kafka/range-reader.js'
import {toReadRecord} from '../core/kafka/read.js'
import {isoTime} from '../core/shared/time.js'
import {table} from './output.js'

/**
 * How `log read` writes records: as JSON objects (one per line, or collected), as the raw values,
 * or as a table; and a stdout that honours back-pressure and ends quietly when the reader goes
 * away (`| head`).
 */
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

/** The values alone, one per line, bytes unchanged. */
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

export function formatRecordTable(records: RecordView[]): string {
  return table(['partition', 'offset', 'timestamp', 'key', 'headers', 'value'], records.map((record) => [
    record.partition,
    record.offset,
    record.timestamp,
    record.key,
    Object.entries(record.headers).map(([key, value]) => `${key}=${value}`).join(' '),
    truncate(record.value ?? '', 100),
  ]))
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text
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

  async write(chunk: string | Buffer): Promise<void> {
    if (this.closed || chunk.length === 0) return
    if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve))
  }
}
