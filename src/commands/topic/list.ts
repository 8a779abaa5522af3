import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {table} from '../../cli/output.js'
import {listTopics, type TopicSummary} from '../../core/kafka/topics.js'

export default class TopicList extends KafkaCommand<typeof TopicList> {
  static override summary = 'List topics with their partition count and replication factor'
  static override examples = ['<%= config.bin %> topic list', '<%= config.bin %> topic list --internal --json']
  static override flags = {
    ...tableFlags,
    internal: Flags.boolean({description: 'include internal topics such as __consumer_offsets'}),
  }

  async run(): Promise<TopicSummary[]> {
    const topics = await listTopics(this.settings, {internal: this.flags.internal})
    if (topics.length === 0) this.print('no topics')
    else
      this.print(
        table(
          [
            {title: 'topic', cut: 'middle'},
            {title: 'partitions', align: 'right'},
            {title: 'replication', align: 'right'},
          ],
          topics.map((topic) => [topic.topic, topic.partitions, topic.replicationFactor]),
        ),
      )
    return topics
  }
}
