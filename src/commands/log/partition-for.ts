import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details} from '../../cli/output.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {type KeyLocation, locateKeyInTopic, locateKeyOffline} from '../../core/kafka/locate.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {plural} from '../../core/shared/plural.js'

export default class LogPartitionFor extends KafkaCommand<typeof LogPartitionFor> {
  static override summary = 'Which partition a key lives in, computed as producers do, without producing'
  static override description =
    `murmur2 (default) is Java's default partitioner, toPositive(murmur2(utf8 key)) % N, which ` +
    `librdkafka's murmur2_random matches; crc32 is librdkafka's default consistent_random. With ` +
    `--topic the partition count comes from the cluster and the answer adds the partition's leader ` +
    `and watermarks.`
  static override examples = [
    '<%= config.bin %> log partition-for 1187231934829481984 --partitions 12',
    '<%= config.bin %> log partition-for 1187231934829481984 --topic delivery_log',
    '<%= config.bin %> log partition-for user-42 --partitions 6 --partitioner crc32 --json',
  ]
  static override args = {key: Args.string({description: 'the record key (UTF-8), e.g. a webhook id', required: true})}
  static override flags = {
    ...tableFlags,
    partitions: Flags.integer({
      char: 'n',
      description: 'partition count, without asking the cluster',
      exclusive: ['topic'],
    }),
    topic: Flags.string({char: 't', description: 'read the partition count (and leader, watermarks) from this topic'}),
    partitioner: Flags.string({
      description: 'how the producer places keys',
      options: [...PARTITIONERS],
      default: 'murmur2',
    }),
  }

  async run(): Promise<KeyLocation> {
    const partitioner = this.flags.partitioner as Partitioner
    let location: KeyLocation
    if (this.flags.topic !== undefined)
      location = await locateKeyInTopic(this.settings, this.args.key, this.flags.topic, partitioner)
    else if (this.flags.partitions !== undefined)
      location = locateKeyOffline(this.args.key, this.flags.partitions, partitioner)
    else
      throw invalidArgument(
        'the partition count is unknown',
        'pass --partitions N, or --topic T to read it from the cluster',
      )

    this.print(
      details([
        ['key', location.key],
        ['partition', `${location.partition} of ${location.partitions} (${location.partitioner})`],
        ...(location.topic === undefined || location.low === undefined || location.high === undefined
          ? []
          : ([
              ['topic', location.topic],
              ['leader', location.leader],
              [
                'offsets',
                `${location.low} .. ${location.high} (${location.high! - location.low!} ` +
                  `${plural(location.high! - location.low!, 'message')})`,
              ],
            ] as [string, string | number | null | undefined][])),
      ]),
    )
    return location
  }
}
