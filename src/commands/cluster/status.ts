import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details, paint, table, wrap} from '../../cli/output.js'
import {ExitCode} from '../../core/shared/errors.js'
import {clusterStatus, type ClusterStatus, type PartitionProblem} from '../../core/storage/cluster-status.js'

export default class ClusterStatusCommand extends KafkaCommand<typeof ClusterStatusCommand> {
  static override summary =
    'Brokers, the active controller, partition and leader balance, and every offline, under-min-ISR or ' +
    'under-replicated partition'
  static override description =
    `Exits ${ExitCode.OK} when every partition has a leader and a full ISR and every broker named in a ` +
    `replica set is registered, and ${ExitCode.UNHEALTHY} otherwise (the report is still printed, also ` +
    'under --json), so cron and monitoring can call it. The active controller (the KRaft quorum ' +
    `leader) and min.insync.replicas are read with Apache Kafka's own tools when Java is installed; ` +
    '--no-controller skips the controller lookup (about 3 s of Java).'
  static override examples = [
    '<%= config.bin %> cluster status',
    '<%= config.bin %> cluster status --json --no-controller || alert "Kafka unhealthy"',
  ]
  static override flags = {
    ...tableFlags,
    controller: Flags.boolean({description: 'find the active controller (needs Java)', default: true, allowNo: true}),
  }

  async run(): Promise<ClusterStatus> {
    const status = await clusterStatus(this.settings, {controller: this.flags.controller})
    this.print(
      details([
        ['health', status.healthy ? paint.green('healthy') : paint.red('UNHEALTHY')],
        ['controller', status.controller ?? `unknown: ${status.controllerUnavailable}`],
        ['topics', status.topics],
        ['partitions', status.partitions],
      ]),
    )
    this.print(
      table(
        [
          'broker',
          {title: 'address', cut: 'middle'},
          {title: 'rack', drop: 1},
          'state',
          {title: 'replicas', align: 'right'},
          {title: 'leaders', align: 'right'},
        ],
        status.brokers.map((broker) => [
          broker.controller ? `${broker.id} (controller)` : broker.id,
          broker.address,
          broker.rack,
          broker.alive ? 'up' : paint.red('missing'),
          broker.replicas,
          broker.leaders,
        ]),
      ),
    )
    const problems = [
      ...status.offline,
      ...status.underReplicated.filter((problem) => !problem.problems.includes('offline')),
    ]
    if (problems.length > 0) {
      this.print(
        table(
          [
            {title: 'topic', cut: 'middle'},
            {title: 'partition', align: 'right'},
            'leader',
            {title: 'replicas', cut: 'end'},
            {title: 'isr', cut: 'end'},
            {title: 'min isr', align: 'right'},
            {title: 'problem', cut: 'end'},
          ],
          problems.map((problem: PartitionProblem) => [
            problem.topic,
            problem.partition,
            problem.leader,
            problem.replicas.join(','),
            problem.isr.join(','),
            problem.minIsr,
            paint.red(problem.problems.join(', ')),
          ]),
        ),
      )
    }
    if (status.minIsrUnavailable)
      this.print(paint.dim(wrap(`min.insync.replicas unavailable: ${status.minIsrUnavailable}`)))
    if (status.advice) this.print(paint.yellow(wrap(status.advice)))
    if (!status.healthy) {
      if (this.jsonEnabled()) this.logJson(status)
      this.exit(ExitCode.UNHEALTHY)
    }
    return status
  }
}
