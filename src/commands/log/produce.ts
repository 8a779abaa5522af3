import {createReadStream} from 'node:fs'
import {access, stat} from 'node:fs/promises'
import {basename} from 'node:path'

import {Flags} from '@oclif/core'

import {KafkaCommand, schemaRegistryUrlFlag, tableFlags} from '../../cli/base-command.js'
import {type Detail, details, formatBytes, formatCount, paint} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {TIMESTAMP_UNITS, type TimestampUnit} from '../../core/kafka/event-time.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {produce, type ProduceResult} from '../../core/kafka/produce.js'
import {plural} from '../../core/shared/plural.js'
import {type ValueEncoder, valueEncoder} from '../../core/schemas/encode.js'

type LogProduceResult = ProduceResult & {
  /** With --value-subject: the subject version whose schema every value was written with. */
  valueSchema?: Omit<ValueEncoder, 'encode'>
}

export default class LogProduce extends KafkaCommand<typeof LogProduce> {
  static override summary = 'Write NDJSON events to a topic: keyed, CreateTime from a field, snappy'
  static override description =
    `Each line is one JSON object, written unchanged as the record value. With --file every line is ` +
    `checked before anything is written; from stdin, a bad line stops the run after the lines before ` +
    `it were written, and the error says how to continue. Records are placed with Java's murmur2 ` +
    `partitioner (librdkafka's murmur2_random) unless --partitioner says otherwise, so \`log ` +
    `partition-for\` and Java consumers agree. Waits until every record is acknowledged by all ` +
    `in-sync replicas. With --value-subject each value is written in the Confluent wire format with that ` +
    `subject's schema (Avro values given in Avro's JSON encoding, as \`log read --decode avro\` prints them).`
  static override examples = [
    '<%= config.bin %> log produce --topic delivery_log --file events.ndjson --timestamp-field created_at_ms',
    'cat events.ndjson | <%= config.bin %> log produce -t delivery_log --key-field for_user_id ' +
      '--header source=backfill',
    '<%= config.bin %> log produce -t users --file users.ndjson --key-field name --value-subject users-value',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to write to', required: true}),
    file: Flags.string({char: 'f', description: 'NDJSON file to read (default: stdin)'}),
    'key-field': Flags.string({description: 'field (dotted path) whose value keys each record', default: 'webhook_id'}),
    'timestamp-field': Flags.string({
      description: 'field holding the CreateTime (a number in --timestamp-unit, or an ISO 8601 time); default: now',
    }),
    'timestamp-unit': Flags.string({
      description: 'unit of numbers in --timestamp-field: s, ms, us or ns [default: ms]',
      options: [...TIMESTAMP_UNITS],
      dependsOn: ['timestamp-field'],
    }),
    'allow-any-timestamp': Flags.boolean({
      description:
        'accept --timestamp-field times before 2000 or more than an hour ahead (refused by default: retention would ' +
        'delete them, they are in the wrong unit, or the broker refuses them)',
      dependsOn: ['timestamp-field'],
    }),
    header: Flags.string({
      char: 'H',
      description: 'header key=value added to every record, repeatable',
      multiple: true,
    }),
    partitioner: Flags.string({description: 'how keys are placed', options: [...PARTITIONERS], default: 'murmur2'}),
    'skip-lines': Flags.integer({
      description: 'skip this many input lines first (to continue after a stopped run)',
      default: 0,
      min: 0,
    }),
    'value-subject': Flags.string({
      description:
        "write each value in the Confluent wire format with this schema registry subject's schema (Avro or " +
        'JSON Schema); a value that does not fit stops the run',
    }),
    'value-schema-version': Flags.integer({
      description: 'the version of --value-subject to write with [default: the latest]',
      min: 1,
      dependsOn: ['value-subject'],
    }),
    'schema-registry-url': schemaRegistryUrlFlag,
  }

  async run(): Promise<LogProduceResult> {
    const {file} = this.flags
    const subject = this.flags['value-subject']
    const encoder =
      subject === undefined ? undefined : await valueEncoder(this.settings, subject, this.flags['value-schema-version'])
    const size =
      file === undefined
        ? null
        : await access(file).then(
            async () => (await stat(file)).size,
            () => {
              throw invalidArgument(
                `cannot read --file ${file}`,
                'check the path and its permissions, or pipe the events on stdin',
              )
            },
          )
    if (file === undefined && process.stdin.isTTY)
      throw invalidArgument('no input: stdin is a terminal', 'pass --file events.ndjson or pipe NDJSON on stdin')

    const writing = `writing to ${this.flags.topic}`
    const progress = await showProgress(
      uiMode(this.jsonEnabled()),
      file === undefined
        ? new ProgressState(writing, 'events')
        : new ProgressState(`checking ${basename(file)}`, {bytes: true}, size),
    )
    let result: ProduceResult
    try {
      result = await produce(this.settings, {
        topic: this.flags.topic,
        input: file === undefined ? process.stdin : createReadStream(file, {highWaterMark: 1 << 20}),
        // A file is checked whole before the first write, so bad input writes nothing.
        ...(file === undefined ? {} : {recheck: () => createReadStream(file, {highWaterMark: 1 << 20}), file}),
        source: file ?? 'stdin',
        keyField: this.flags['key-field'],
        timestampField: this.flags['timestamp-field'],
        timestampUnit: this.flags['timestamp-unit'] as TimestampUnit | undefined,
        allowAnyTimestamp: this.flags['allow-any-timestamp'],
        headers: this.flags.header ?? [],
        partitioner: this.flags.partitioner as Partitioner,
        skipLines: this.flags['skip-lines'],
        ...(encoder ? {encodeValue: encoder.encode} : {}),
        onProgress: (p) => {
          if (p.phase === 'checking') return progress.state.update(p.bytes, `${formatCount(p.events)} events`)
          if (progress.state.label !== writing) progress.state.phase(writing, 'events', p.total)
          progress.state.update(p.events, formatBytes(p.bytes))
        },
      })
      progress.state.finish(result.events, formatBytes(result.bytes))
    } finally {
      await progress.stop()
    }
    this.print(paint.green(`wrote ${formatCount(result.events)} ${plural(result.events, 'event')} to ${result.topic}`))
    this.print(
      details([
        ['bytes', formatBytes(result.bytes)],
        [
          'seconds',
          result.seconds.toFixed(2) +
            (result.seconds - result.writeSeconds >= 0.01 ? ` (${result.writeSeconds.toFixed(2)} writing)` : ''),
        ],
        ['events/s', `${formatCount(result.eventsPerSecond)} while writing`],
        ['partitioner', result.partitioner],
        ...(encoder ? [schemaDetail(encoder)] : []),
      ]),
    )
    if (!encoder) return result
    const {subject: name, version, schemaId, schemaType} = encoder
    return {...result, valueSchema: {subject: name, version, schemaId, schemaType}}
  }
}

function schemaDetail(encoder: ValueEncoder): Detail {
  return [
    'value schema',
    `${encoder.subject} version ${encoder.version} (id ${encoder.schemaId}, ${encoder.schemaType})`,
  ]
}
