import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatCount, paint, table} from '../../cli/output.js'
import {describeTopic, type TopicDescription} from '../../core/kafka/topics.js'

export default class TopicDescribe extends KafkaCommand<typeof TopicDescribe> {
  static override summary = "Show a topic's partitions (leader, replicas, ISR, watermarks, messages) and configs"
  static override description =
    "Configs are read with Apache Kafka's ConfigCommand from the jars `dev up` caches, because the " +
    'Kafka client library has no DescribeConfigs; pass --no-configs to skip them (faster, no Java ' +
    'needed).'
  static override examples = [
    '<%= config.bin %> topic describe delivery_log',
    '<%= config.bin %> topic describe delivery_log --no-configs --json',
  ]
  static override args = {name: Args.string({description: 'topic name', required: true})}
  static override flags = {
    ...tableFlags,
    configs: Flags.boolean({description: "read the topic's configs", default: true, allowNo: true}),
  }

  async run(): Promise<TopicDescription> {
    const topic = await describeTopic(this.settings, this.args.name, {configs: this.flags.configs})
    this.print(
      details([
        ['topic', topic.topic],
        ['partitions', topic.partitions.length],
        ['replication factor', topic.replicationFactor],
        ['messages', formatCount(topic.messages)],
      ]),
    )
    this.print(
      table(
        [
          {title: 'partition', align: 'right'},
          {title: 'leader', align: 'right'},
          {title: 'replicas', cut: 'end'},
          {title: 'isr', cut: 'end'},
          {title: 'low', align: 'right', drop: 1},
          {title: 'high', align: 'right', drop: 2},
          {title: 'messages', align: 'right'},
        ],
        topic.partitions.map((partition) => [
          partition.partition,
          partition.leader,
          partition.replicas.join(','),
          partition.isr.length < partition.replicas.length
            ? paint.red(partition.isr.join(','))
            : partition.isr.join(','),
          partition.low,
          partition.high,
          formatCount(partition.messages),
        ]),
      ),
    )
    if (topic.configs)
      this.print(
        Object.keys(topic.configs).length
          ? details(Object.entries(topic.configs))
          : 'no configs set on the topic (broker defaults apply)',
      )
    else this.print(paint.dim(`configs unavailable: ${topic.configsUnavailable}`))
    return topic
  }
}
