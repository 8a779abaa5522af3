import {Args, Flags} from '@oclif/core'

import {KafkaCommand} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import {COMPRESSIONS, createTopic, type CreateTopicResult} from '../../core/kafka/topics.js'

export default class TopicCreate extends KafkaCommand<typeof TopicCreate> {
  static override summary = 'Create a topic; the defaults suit a delivery_log (snappy, delete policy, 5 days)'
  static override description =
    'A keyed log used as storage must keep its partition count: keys move when it changes. Choose it once, generously.'
  static override examples = [
    '<%= config.bin %> topic create delivery_log --partitions 12',
    '<%= config.bin %> topic create delivery_log --partitions 12 --replication-factor 3 --retention 7d',
    '<%= config.bin %> topic create webhooks_state --partitions 6 --compact',
    '<%= config.bin %> topic create events --partitions 3 --compression zstd --config ' +
      'segment.bytes=104857600 --if-not-exists',
  ]
  static override args = {name: Args.string({description: 'topic name', required: true})}
  static override flags = {
    partitions: Flags.integer({char: 'p', description: 'number of partitions', required: true}),
    'replication-factor': Flags.integer({
      char: 'r',
      description: 'replicas per partition (default: the broker default)',
    }),
    compression: Flags.string({
      description: 'compression.type of the topic',
      options: [...COMPRESSIONS],
      default: 'snappy',
    }),
    compact: Flags.boolean({description: 'cleanup.policy=compact (keep the latest record per key) instead of delete'}),
    retention: Flags.string({description: 'retention.ms as a duration (5d, 36h); default 5d unless --compact'}),
    config: Flags.string({
      char: 'c',
      description: 'any topic config key=value, repeatable; wins over the flags above',
      multiple: true,
    }),
    'if-not-exists': Flags.boolean({description: 'succeed without change when the topic already exists'}),
  }

  async run(): Promise<CreateTopicResult> {
    const result = await createTopic(this.settings, {
      topic: this.args.name,
      partitions: this.flags.partitions,
      replicationFactor: this.flags['replication-factor'],
      compression: this.flags.compression as (typeof COMPRESSIONS)[number],
      compact: this.flags.compact,
      retention: this.flags.retention,
      configs: this.flags.config ?? [],
      ifNotExists: this.flags['if-not-exists'],
    })
    this.print(
      result.created
        ? paint.green(`created topic ${result.topic}`)
        : paint.yellow(`topic ${result.topic} already exists; left unchanged`),
    )
    this.print(
      details([
        ['partitions', result.partitions],
        ['replication factor', result.replicationFactor],
        ...Object.entries(result.configs).map(([key, value]): [string, string] => [key, value]),
      ]),
    )
    return result
  }
}
