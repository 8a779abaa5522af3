import {Flags} from '@oclif/core'

import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatBytes, paint, wrap} from '../../cli/output.js'
import {planCluster, parseSize, SPIKE_HEADROOM, type ClusterPlan} from '../../core/storage/cluster-plan.js'

export default class ClusterPlanCommand extends BaseCommand<typeof ClusterPlanCommand> {
  static override summary =
    'How large a partition may grow on a cluster, the retention.bytes to set, and the retention ' +
    'the disks allow at a write rate'
  static override description =
    `per-partition maximum = brokers x disk / (partitions x replication), less ` +
    `${SPIKE_HEADROOM * 100}% of every disk kept free for spikes and segment deletion lag, and (when ` +
    `brokers > replication) one broker's share kept for re-replicating a failed broker's partitions. ` +
    `retention.bytes is that less one segment, because the active segment comes on top of it. No ` +
    `cluster is contacted.`
  static override examples = [
    '<%= config.bin %> cluster plan --brokers 3 --disk 2TiB --partitions 12 --replication 3',
    '<%= config.bin %> cluster plan --brokers 6 --disk 4TB --partitions 48 --replication 3 --rate 40 --json',
  ]
  static override flags = {
    ...tableFlags,
    brokers: Flags.integer({description: 'number of brokers', required: true}),
    disk: Flags.string({description: 'log disk per broker, e.g. 2TiB, 500GB', required: true}),
    partitions: Flags.integer({description: 'partitions of the topic (or of all topics together)', required: true}),
    replication: Flags.integer({description: 'replication factor', required: true}),
    rate: Flags.string({
      description: 'produce rate in MB/s (10^6 bytes, after compression), to compute the retention the disks allow',
    }),
    segment: Flags.string({description: 'segment.bytes of the topic', default: '1GiB'}),
  }

  async run(): Promise<ClusterPlan> {
    const plan = planCluster({
      brokers: this.flags.brokers,
      diskBytes: parseSize(this.flags.disk, '--disk'),
      partitions: this.flags.partitions,
      replication: this.flags.replication,
      rateBytesPerSecond: this.flags.rate === undefined ? undefined : Number(this.flags.rate) * 1e6,
      segmentBytes: parseSize(this.flags.segment, '--segment'),
    })
    this.print(
      details([
        ['raw per partition', formatBytes(plan.rawPerPartitionBytes)],
        ['spike headroom', `${plan.spikeHeadroom * 100}% of each disk`],
        [
          'failure reserve',
          plan.failureReserve
            ? `${(plan.failureReserve * 100).toFixed(1)}% (one broker's share)`
            : 'none (no spare broker to re-replicate to)',
        ],
        ['usable per partition', formatBytes(plan.usablePerPartitionBytes)],
        ['retention.bytes', `${plan.retentionBytes} (${formatBytes(plan.retentionBytes)})`],
        [
          'retention at rate',
          plan.retentionSeconds === null ? '- (pass --rate MB/s)' : formatDays(plan.retentionSeconds),
        ],
      ]),
    )
    for (const warning of plan.warnings) this.print(paint.yellow(wrap(`warning: ${warning}`)))
    return plan
  }
}

function formatDays(seconds: number): string {
  const hours = seconds / 3600
  return hours >= 48 ? `${(hours / 24).toFixed(1)} days` : `${hours.toFixed(1)} hours`
}
