import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatCount, paint, sentence, wrap} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {PARTITION_MODES, type PartitionMode, restoreTopic, type RestoreResult} from '../../core/storage/restore.js'
import {plural} from '../../core/shared/plural.js'

export default class TopicRestore extends KafkaCommand<typeof TopicRestore> {
  static override summary =
    'Restore a backup into a topic: same keys, values, headers, timestamps and partitions, in order'
  static override description =
    'Every backup file is checked before anything is written. A missing target topic is created ' +
    "with the backup's partition count and configs (--config overrides them; timestamps are kept, " +
    'so time-based retention counts from them). An existing target must be empty unless --force. ' +
    '--partitions rehash places keyed records by murmur2(key) in a target with a different ' +
    'partition count, each key in its order.'
  static override examples = [
    '<%= config.bin %> topic restore /backups/delivery_log-2026-11-30 --topic delivery_log_restored',
    '<%= config.bin %> topic restore /backups/delivery_log-2026-11-30 --topic delivery_log_24 ' +
      '--partitions rehash --partition-count 24',
    '<%= config.bin %> topic restore /backups/old --topic archive --config retention.ms=-1',
  ]
  static override args = {
    dir: Args.string({description: 'backup directory (written by `topic backup --to`)', required: true}),
  }
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to restore into', required: true}),
    partitions: Flags.string({
      description: 'same: each record to its own partition; rehash: by murmur2 of the key',
      options: [...PARTITION_MODES],
      default: 'same',
    }),
    'partition-count': Flags.integer({
      description: "partitions of a created target (default: the backup's; another count needs --partitions rehash)",
    }),
    config: Flags.string({
      char: 'c',
      description: "topic config key=value for a created target, over the backup's, repeatable",
      multiple: true,
    }),
    force: Flags.boolean({description: 'write into a target that already holds records'}),
  }

  async run(): Promise<RestoreResult> {
    const progress = await showProgress(
      uiMode(this.jsonEnabled()),
      new ProgressState(`checking ${this.args.dir}`, 'records'),
    )
    const writing = `restoring into ${this.flags.topic}`
    let result: RestoreResult
    try {
      result = await restoreTopic(this.settings, {
        dir: this.args.dir,
        topic: this.flags.topic,
        partitions: this.flags.partitions as PartitionMode,
        partitionCount: this.flags['partition-count'],
        configs: this.flags.config ?? [],
        force: this.flags.force,
        onProgress: (p) => {
          if (p.phase === 'writing' && progress.state.label !== writing)
            progress.state.phase(writing, 'records', p.total)
          progress.state.total = p.total
          progress.state.update(p.records)
        },
      })
      progress.state.finish(result.records)
    } finally {
      await progress.stop()
    }
    this.print(
      paint.green(
        sentence(
          `restored ${formatCount(result.records)} ${plural(result.records, 'record')} of `,
          {name: result.sourceTopic},
          ' into ',
          {name: result.topic},
          result.created ? ' (created)' : '',
        ),
      ),
    )
    this.print(
      details([
        [
          'partitions',
          result.partitions === 'same'
            ? `${result.targetPartitions}, each record to its own`
            : `${result.sourcePartitions} -> ${result.targetPartitions}, by murmur2(key)`,
        ],
        ['seconds', result.seconds.toFixed(2)],
        ['records/s', formatCount(result.recordsPerSecond)],
        ...(result.configs ? Object.entries(result.configs).map(([key, value]): [string, string] => [key, value]) : []),
      ]),
    )
    for (const note of result.notes) this.print(paint.yellow(wrap(`note: ${note}`)))
    return result
  }
}
