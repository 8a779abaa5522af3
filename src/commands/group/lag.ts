import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {onInterrupt} from '../../cli/interrupt.js'
import {details, formatCount, formatDuration, paint, table} from '../../cli/output.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {isoTime} from '../../core/shared/time.js'
import {groupLag, type GroupLag} from '../../core/storage/groups.js'
import {plural} from '../../core/shared/plural.js'

export default class GroupLagCommand extends KafkaCommand<typeof GroupLagCommand> {
  static override summary =
    "A consumer group's lag per partition, in messages and in time, with its members and their assignment"
  static override description =
    "committed is the group's committed offset (the next record it reads), log end the partition's " +
    "high watermark, lag their difference, as Apache Kafka's ConsumerGroupCommand --describe shows " +
    'them. lag time is how old the record at the committed offset is (read from its timestamp): 0 when ' +
    'caught up. Groups without members still show their lag. --watch redraws every --interval seconds ' +
    'until Ctrl-C.'
  static override examples = [
    '<%= config.bin %> group lag billing-sink',
    '<%= config.bin %> group lag billing-sink --topic delivery_log --watch',
    '<%= config.bin %> group lag billing-sink --json | jq .maxLagMs',
  ]
  static override args = {group: Args.string({description: 'consumer group id', required: true})}
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'only this topic'}),
    watch: Flags.boolean({description: 'redraw every --interval seconds until interrupted (not with --json)'}),
    interval: Flags.integer({description: 'seconds between redraws with --watch', default: 5, min: 1}),
  }

  async run(): Promise<GroupLag> {
    if (this.flags.watch && this.jsonEnabled())
      throw invalidArgument(
        '--watch draws tables and cannot be combined with --json',
        'poll `group lag --json` from your script instead',
      )
    if (!this.flags.watch) {
      const lag = await groupLag(this.settings, this.args.group, {topic: this.flags.topic})
      this.print(render(lag))
      return lag
    }
    let interrupted = false
    let wake: () => void = () => {}
    const removeInterrupt = onInterrupt(() => {
      interrupted = true
      wake()
    })
    try {
      for (;;) {
        const lag = await groupLag(this.settings, this.args.group, {topic: this.flags.topic})
        if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H')
        this.print(`${paint.dim(isoTime(lag.at))}\n${render(lag)}\n`)
        await new Promise<void>((resolve) => {
          wake = resolve
          if (!interrupted) setTimeout(resolve, this.flags.interval * 1000)
          else resolve()
        })
        if (interrupted) return lag
      }
    } finally {
      removeInterrupt()
    }
  }
}

function render(lag: GroupLag): string {
  const head = details([
    ['group', lag.group],
    ['state', lag.state],
    ['coordinator', lag.coordinator],
    ['members', lag.members.length],
    [
      'total lag',
      (lag.totalLag === null ? '-' : `${formatCount(lag.totalLag)} ${plural(lag.totalLag, 'message')}`) +
        (lag.maxLagMs === null ? '' : `, up to ${formatDuration(lag.maxLagMs)} behind`),
    ],
  ])
  const partitions = table(
    [
      {title: 'topic', cut: 'middle'},
      {title: 'partition', align: 'right'},
      {title: 'committed', align: 'right'},
      {title: 'log end', align: 'right'},
      {title: 'lag', align: 'right'},
      {title: 'lag time', align: 'right'},
      {title: 'member', cut: 'middle', drop: 3},
      {title: 'host', cut: 'middle', drop: 1},
      {title: 'client', cut: 'middle', drop: 2},
    ],
    lag.partitions.map((partition) => [
      partition.topic,
      partition.partition,
      partition.committed,
      partition.logEnd,
      partition.lag === null ? null : formatCount(partition.lag),
      partition.lagMs === null ? null : formatDuration(partition.lagMs),
      partition.memberId,
      partition.host,
      partition.clientId,
    ]),
  )
  return `${head}\n${partitions}`
}
