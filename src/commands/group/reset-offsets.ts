import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {paint, sentence, table} from '../../cli/output.js'
import {resetTarget, resetTargetFlags} from '../../cli/reset-target.js'
import {TIME_FORMS} from '../../core/shared/time.js'
import {resetOffsets, type ResetResult} from '../../core/storage/groups.js'

export default class GroupResetOffsets extends KafkaCommand<typeof GroupResetOffsets> {
  static override summary =
    "Move a consumer group's committed offsets on one topic: to a time, an offset, the earliest or the latest"
  static override description =
    'Refused (exit 4) while the group has active members, which would overwrite the new offsets: stop ' +
    'its consumers first. --dry-run prints the plan (current and new offset per partition) and commits ' +
    `nothing. Targets are clamped to what the log holds, as Apache Kafka's ConsumerGroupCommand does; ` +
    '--to-time takes the first record at or after the time (the log end when there is none). Times: ' +
    `${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> group reset-offsets billing-sink --topic delivery_log --to-time 2h --dry-run',
    '<%= config.bin %> group reset-offsets billing-sink --topic delivery_log --to-time 2026-11-20T10:00Z',
    '<%= config.bin %> group reset-offsets billing-sink --topic delivery_log --to-earliest --json',
  ]
  static override args = {group: Args.string({description: 'consumer group id', required: true})}
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic whose offsets to move (all its partitions)', required: true}),
    ...resetTargetFlags,
    'dry-run': Flags.boolean({description: 'show the plan, commit nothing'}),
  }

  async run(): Promise<ResetResult> {
    const result = await resetOffsets(this.settings, this.args.group, this.flags.topic, resetTarget(this.flags), {
      dryRun: this.flags['dry-run'],
    })
    this.print(
      table(
        [
          {title: 'topic', cut: 'middle'},
          {title: 'partition', align: 'right'},
          {title: 'current', align: 'right'},
          {title: 'new', align: 'right'},
        ],
        result.plan.map((reset) => [reset.topic, reset.partition, reset.current, reset.target]),
      ),
    )
    this.print(
      result.applied
        ? paint.green(sentence("committed new offsets for group '", {name: result.group}, "'"))
        : paint.yellow('dry run: nothing committed'),
    )
    return result
  }
}
