import {Flags} from '@oclif/core'

import {KafkaCommand, schemaRegistryUrlFlag, tableFlags} from '../../cli/base-command.js'
import {onInterrupt} from '../../cli/interrupt.js'
import {formatCount, paint} from '../../cli/output.js'
import {
  asRecordView,
  type DecodedRecordView,
  decodedViews,
  packedJsonLines,
  RawLines,
  RECORD_FORMATS,
  recordsTable,
  type RecordView,
  recordView,
  StdoutWriter,
} from '../../cli/record-output.js'
import {disconnect} from '../../core/kafka/client.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {connectReadConsumer, planRead, type ReadPlan, readRecords} from '../../core/kafka/read.js'
import {DECODINGS, type Decoding, ValueDecoder} from '../../core/schemas/decode.js'
import {parseTime, TIME_FORMS} from '../../core/shared/time.js'
import {plural} from '../../core/shared/plural.js'

interface ReadResult {
  topic: string
  ranges: ReadPlan['ranges']
  count: number
  records?: (RecordView | DecodedRecordView)[]
}

export default class LogRead extends KafkaCommand<typeof LogRead> {
  static override summary = 'Read a bounded range of records, or follow a topic as it is written (--follow)'
  static override description =
    'The range is fixed before reading: it starts at --from-offset (negative: that many before the ' +
    'end), --since, or the first offset, and ends before --to-offset, --until, or the high watermark ' +
    'seen at start. With --follow the read goes on past that high watermark, printing records as they ' +
    'are written, until Ctrl-C, SIGTERM or a closed pipe (at the next record) ends it with exit code ' +
    '0, or --to-offset, --until or --max is reached (an --until still ahead ends a partition at its ' +
    'first record at or after it). --format json prints one JSON object per line as records arrive; ' +
    '--format table prints a table per batch that arrives when following; --json prints one document ' +
    'at the end. --decode avro|json-schema reads values in the Confluent wire format (byte 0, the 4-byte schema ' +
    'id, the payload), fetches each schema id once from the schema registry, and prints each value as data ' +
    'with its schemaId; a value not in that format, or whose schema id the registry lacks, ends the read ' +
    `with one line naming its partition and offset. Times: ${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> log read -t delivery_log --partition 3 --from-offset 1000 --to-offset 1100',
    '<%= config.bin %> log read -t delivery_log --key 1187231934829481984 --since 2h --format table',
    '<%= config.bin %> log read -t delivery_log --since 202611200000 --until 202611201200 --format raw > events.ndjson',
    '<%= config.bin %> log read -t delivery_log --from-offset -10 --max 10 --json',
    '<%= config.bin %> log read -t delivery_log --key 1187231934829481984 --from-offset -5 --follow',
    '<%= config.bin %> log read -t orders --decode avro --max 10',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to read', required: true}),
    partition: Flags.integer({char: 'p', description: 'read only this partition'}),
    key: Flags.string({char: 'k', description: "read only this key's partition and keep only its records"}),
    partitioner: Flags.string({
      description: 'how --key was partitioned',
      options: [...PARTITIONERS],
      default: 'murmur2',
    }),
    'from-offset': Flags.integer({
      description: 'first offset (negative: that many before the end)',
      allowNegative: true,
    } as never),
    since: Flags.string({description: 'start at the first record at or after this time'}),
    'to-offset': Flags.integer({description: 'stop before this offset'}),
    until: Flags.string({description: 'stop before the first record at or after this time'}),
    max: Flags.integer({char: 'm', description: 'stop after this many records'}),
    format: Flags.string({description: 'how to print records', options: [...RECORD_FORMATS], default: 'json'}),
    follow: Flags.boolean({
      char: 'f',
      description: 'keep reading new records at the end until interrupted (like kcat -C without -e)',
    }),
    decode: Flags.string({
      description: 'decode values in the Confluent wire format with their schema from the schema registry',
      options: [...DECODINGS],
    }),
    'schema-registry-url': schemaRegistryUrlFlag,
  }

  async run(): Promise<ReadResult> {
    const {flags} = this
    if (flags.max !== undefined && flags.max <= 0)
      throw invalidArgument(`--max must be 1 or more, got ${flags.max}`, 'leave it out to read the whole range')
    if (flags['to-offset'] !== undefined && flags['to-offset'] < 0)
      throw invalidArgument(
        `--to-offset must be 0 or more, got ${flags['to-offset']}`,
        'it is the first offset not to read',
      )
    if (flags.decode !== undefined && flags.format === 'raw')
      throw invalidArgument('--decode prints values as data, not raw bytes', 'use --format json or table with it')
    const decoder = flags.decode === undefined ? null : new ValueDecoder(this.settings, flags.decode as Decoding)
    const now = Date.now()
    const planOptions = {
      topic: flags.topic,
      partition: flags.partition,
      key: flags.key,
      partitioner: flags.partitioner as Partitioner,
      fromOffset: flags['from-offset'] as number | undefined,
      since: flags.since === undefined ? undefined : parseTime(flags.since, '--since', now),
      toOffset: flags['to-offset'],
      until: flags.until === undefined ? undefined : parseTime(flags.until, '--until', now),
      follow: flags.follow,
    }
    // The reading consumer connects while the plan is made: two round trips to the brokers at once.
    const consumer = connectReadConsumer(this.settings)
    consumer.catch(() => {}) // reported when the read awaits it
    let plan: ReadPlan
    try {
      plan = await planRead(this.settings, planOptions)
    } catch (error) {
      await consumer.then(disconnect, () => {})
      throw error
    }

    const collect = this.jsonEnabled() || flags.format === 'table'
    // Following, a table is printed for each batch as it arrives, not once at an end that may never come.
    const tablePerBatch = flags.follow && !this.jsonEnabled() && flags.format === 'table'
    const records: (RecordView | DecodedRecordView)[] = []
    const out = new StdoutWriter()
    const stop = new AbortController()
    out.onClosed(() => stop.abort())
    // A bounded read dies of Ctrl-C as any command does; a followed one ends cleanly (exit 0).
    const removeInterrupt = flags.follow ? onInterrupt(() => stop.abort()) : () => {}
    const raw = new RawLines()
    let count = 0
    try {
      for await (const batch of readRecords(this.settings, plan, {
        max: flags.max,
        signal: stop.signal,
        consumer,
        headers: flags.format !== 'raw' || this.jsonEnabled(),
      })) {
        count += batch.indexes.length
        if (decoder) {
          const views = await decodedViews(plan.topic, batch, decoder)
          if (tablePerBatch) await out.write(`${recordsTable(views.map(asRecordView))}\n`)
          else if (collect) records.push(...views)
          else await out.write(views.map((view) => `${JSON.stringify(view)}\n`).join(''))
        } else if (tablePerBatch)
          await out.write(
            `${recordsTable(Array.from(batch.indexes, (index) => recordView(batch.batch.message(index))))}\n`,
          )
        else if (collect) for (const index of batch.indexes) records.push(recordView(batch.batch.message(index)))
        else if (flags.format === 'raw') {
          const lines = raw.lines(batch)
          await out.write(lines, () => raw.written(lines))
        } else await out.write(packedJsonLines(batch))
      }
    } finally {
      removeInterrupt()
    }

    if (!this.jsonEnabled() && flags.format === 'table' && !tablePerBatch)
      this.print(recordsTable(records.map((record) => ('schemaId' in record ? asRecordView(record) : record))))
    if (!this.jsonEnabled() && process.stderr.isTTY)
      process.stderr.write(paint.dim(`${formatCount(count)} ${plural(count, 'record')}\n`))
    return {topic: plan.topic, ranges: plan.ranges, count, ...(this.jsonEnabled() ? {records} : {})}
  }
}
