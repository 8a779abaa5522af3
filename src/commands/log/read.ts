import {Flags} from '@oclif/core'

import {ConnectedCommand} from '../../cli/base-command.js'
import {formatCount, paint, table} from '../../cli/output.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {planRead, type ReadPlan, readRecords, toReadRecord} from '../../core/kafka/read.js'
import type {Message} from '../../core/kafka/range-reader.js'
import {isoTime, parseTime, TIME_FORMS} from '../../core/shared/time.js'

interface RecordView {
  partition: number
  offset: number
  timestamp: string | null
  key: string | null
  headers: Record<string, string>
  value: string | null
}

interface ReadResult {
  topic: string
  ranges: ReadPlan['ranges']
  count: number
  records?: RecordView[]
}

const FORMATS = ['json', 'table', 'raw'] as const

export default class LogRead extends ConnectedCommand<typeof LogRead> {
  static override summary = 'Read a bounded range of records; it always ends'
  static override description = `The range is fixed before reading: it starts at --from-offset (negative: that many before the end), --since, or the first offset, and ends before --to-offset, --until, or the high watermark seen at start. --format json prints one JSON object per line as records arrive; --json prints one document at the end. Times: ${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> log read -t delivery_log --partition 3 --from-offset 1000 --to-offset 1100',
    '<%= config.bin %> log read -t delivery_log --key 1187231934829481984 --since 2h --format table',
    '<%= config.bin %> log read -t delivery_log --since 202611200000 --until 202611201200 --format raw > events.ndjson',
    '<%= config.bin %> log read -t delivery_log --from-offset -10 --max 10 --json',
  ]
  static override flags = {
    topic: Flags.string({char: 't', description: 'topic to read', required: true}),
    partition: Flags.integer({char: 'p', description: 'read only this partition'}),
    key: Flags.string({char: 'k', description: 'read only this key\'s partition and keep only its records'}),
    partitioner: Flags.string({description: 'how --key was partitioned', options: [...PARTITIONERS], default: 'murmur2'}),
    'from-offset': Flags.integer({description: 'first offset (negative: that many before the end)', allowNegative: true} as never),
    since: Flags.string({description: 'start at the first record at or after this time'}),
    'to-offset': Flags.integer({description: 'stop before this offset'}),
    until: Flags.string({description: 'stop before the first record at or after this time'}),
    max: Flags.integer({char: 'm', description: 'stop after this many records'}),
    format: Flags.string({description: 'how to print records', options: [...FORMATS], default: 'json'}),
  }

  async run(): Promise<ReadResult> {
    const {flags} = this
    if (flags.max !== undefined && flags.max <= 0) throw invalidArgument(`--max must be 1 or more, got ${flags.max}`, 'leave it out to read the whole range')
    if (flags['to-offset'] !== undefined && flags['to-offset'] < 0) throw invalidArgument(`--to-offset must be 0 or more, got ${flags['to-offset']}`, 'it is the first offset not to read')
    const now = Date.now()
    const plan = await planRead(this.settings, {
      topic: flags.topic,
      partition: flags.partition,
      key: flags.key,
      partitioner: flags.partitioner as Partitioner,
      fromOffset: flags['from-offset'] as number | undefined,
      since: flags.since === undefined ? undefined : parseTime(flags.since, '--since', now),
      toOffset: flags['to-offset'],
      until: flags.until === undefined ? undefined : parseTime(flags.until, '--until', now),
    })

    const collect = this.jsonEnabled() || flags.format === 'table'
    const records: RecordView[] = []
    const out = new StdoutWriter()
    const stopOnClosedPipe = new AbortController()
    out.onClosed(() => stopOnClosedPipe.abort())
    let count = 0
    for await (const batch of readRecords(this.settings, plan, {max: flags.max, signal: stopOnClosedPipe.signal})) {
      count += batch.length
      if (collect) for (const message of batch) records.push(view(message))
      else if (flags.format === 'raw') await out.write(rawLines(batch))
      else await out.write(batch.map((message) => `${JSON.stringify(view(message))}\n`).join(''))
    }

    if (!this.jsonEnabled() && flags.format === 'table') {
      this.print(table(['partition', 'offset', 'timestamp', 'key', 'headers', 'value'], records.map((record) => [
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        Object.entries(record.headers).map(([key, value]) => `${key}=${value}`).join(' '),
        truncate(record.value ?? '', 100),
      ])))
    }
    if (!this.jsonEnabled() && process.stderr.isTTY) process.stderr.write(paint.dim(`${formatCount(count)} records\n`))
    return {topic: plan.topic, ranges: plan.ranges, count, ...(this.jsonEnabled() ? {records} : {})}
  }
}

function view(message: Message): RecordView {
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

function rawLines(batch: Message[]): Buffer {
  const parts: Buffer[] = []
  const newline = Buffer.from('\n')
  for (const message of batch) {
    if (message.value) parts.push(message.value)
    parts.push(newline)
  }
  return Buffer.concat(parts)
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text
}

/** stdout with back-pressure; a closed pipe (`| head`) ends the read quietly. */
class StdoutWriter {
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
