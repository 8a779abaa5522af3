import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {type Column, formatCount, table} from '../../cli/output.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {seek, type SeekResult} from '../../core/kafka/seek.js'
import {isoTime, parseTime, TIME_FORMS} from '../../core/shared/time.js'

export default class LogSeek extends KafkaCommand<typeof LogSeek> {
  static override summary = 'Find offsets by time: per partition, the first record at or after each time'
  static override description =
    `Where no record is at or after a time, the answer is the partition's end offset (its high ` +
    `watermark) and no timestamp. --until is exclusive. Times: ${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> log seek --topic delivery_log --since 2h',
    '<%= config.bin %> log seek --topic delivery_log --since 202611200000 --until 202611201200 --key ' +
      '1187231934829481984',
    '<%= config.bin %> log seek -t delivery_log --since 2026-11-20T10:00Z --json',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to search', required: true}),
    since: Flags.string({description: 'find the first offset at or after this time', required: true}),
    until: Flags.string({description: 'also find the end offset for this time (exclusive)'}),
    key: Flags.string({char: 'k', description: 'only the partition this key lives in'}),
    partitioner: Flags.string({
      description: 'how the key was partitioned',
      options: [...PARTITIONERS],
      default: 'murmur2',
    }),
  }

  async run(): Promise<SeekResult> {
    const now = Date.now()
    const result = await seek(this.settings, {
      topic: this.flags.topic,
      since: parseTime(this.flags.since, '--since', now),
      until: this.flags.until === undefined ? undefined : parseTime(this.flags.until, '--until', now),
      key: this.flags.key,
      partitioner: this.flags.partitioner as Partitioner,
    })
    const recordTime = (timestamp: number | null) => (timestamp === null ? 'none (end of log)' : isoTime(timestamp))
    // The times head the table once; as column titles they made every column 34 characters wide.
    const head: Column[] = [
      {title: 'partition', align: 'right'},
      {title: 'since offset', align: 'right'},
      {title: 'since record time', drop: 2},
    ]
    if (result.until)
      head.push(
        {title: 'until offset', align: 'right'},
        {title: 'until record time', drop: 1},
        {title: 'messages', align: 'right'},
      )
    this.print(`since ${result.since.time}${result.until ? `  until ${result.until.time} (exclusive)` : ''}`)
    this.print(
      table(
        head,
        result.since.offsets.map((at, index) => {
          const row: (string | number)[] = [at.partition, at.offset, recordTime(at.timestamp)]
          const end = result.until?.offsets[index]
          if (end) row.push(end.offset, recordTime(end.timestamp), formatCount(end.offset - at.offset))
          return row
        }),
      ),
    )
    return result
  }
}
