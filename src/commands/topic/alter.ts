import {Args, Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {paint, table, tableWidth, wrap} from '../../cli/output.js'
import {alterTopic, type AlterTopicResult} from '../../core/replay/alter-topic.js'

export default class TopicAlter extends ConnectedCommand<typeof TopicAlter> {
  static override summary = 'Add partitions to a topic, or set and remove its configs'
  static override description =
    'Kafka can only add partitions. Adding them moves most keys to another partition (murmur2(key) ' +
    '% count changes), so the new count is recorded in the replay database ' +
    '(topic_partition_counts), which replays use to read events written under the old count. ' +
    "Configs are changed with Apache Kafka's ConfigCommand (Java and the jars `dev up` caches), " +
    'the client library having no AlterConfigs; each value is shown before and after.'
  static override examples = [
    '<%= config.bin %> topic alter delivery_log --partitions 24',
    '<%= config.bin %> topic alter delivery_log --config retention.ms=604800000 --delete-config segment.bytes',
  ]
  static override args = {name: Args.string({description: 'topic name', required: true})}
  static override flags = {
    ...tableFlags,
    partitions: Flags.integer({char: 'p', description: 'new partition count (only more than now)', min: 1}),
    config: Flags.string({
      char: 'c',
      description: 'topic config key=value to set, repeatable',
      multiple: true,
      default: [],
    }),
    'delete-config': Flags.string({
      description: 'topic config to remove (back to the broker default), repeatable',
      multiple: true,
      default: [],
    }),
  }

  async run(): Promise<AlterTopicResult> {
    const result = await alterTopic(this.settings, this.args.name, {
      partitions: this.flags.partitions,
      set: this.flags.config,
      remove: this.flags['delete-config'],
    })
    if (result.partitions) {
      const {before, after, changed, warning} = result.partitions
      this.print(changed ? `partitions: ${before} -> ${after}` : `partitions: already ${after}, nothing changed`)
      if (warning && !this.jsonEnabled())
        process.stderr.write(`${wrap(`${paint.yellow('warning:')} ${warning}`, tableWidth(process.stderr))}\n`)
    }
    if (result.configs)
      this.print(
        table(
          ['config', {title: 'old', cut: 'end'}, {title: 'new', cut: 'end'}],
          result.configs.changes.map((change) => [change.key, change.old ?? '(default)', change.new ?? '(default)']),
        ),
      )
    return result
  }
}
