import {Flags} from '@oclif/core'

import {KafkaCommand} from '../../cli/base-command.js'
import {details, paint, table} from '../../cli/output.js'
import {ExitCode} from '../../core/shared/errors.js'
import {clusterStatus, type ClusterStatus, type PartitionProblem} from '../../core/storage/cluster-status.js'

export default class ClusterStatusCommand extends KafkaCommand<typeof ClusterStatusCommand> {
  static override summary = 'Brokers, the active controller, partition and leader balance, and every offline, under-min-ISR or under-replicated partition'
  static override description = `Exits ${ExitCode.OK} when every partition has a leader and a full ISR and every broker named in a replica set is registered, and ${ExitCode.UNHEALTHY} otherwise (the report is still printed, also under --json), so cron and monitoring can call it. The active controller (the KRaft quorum leader) and min.insync.replicas are read with Apache Kafka's own tools when Java is installed; --no-controller skips the controller lookup (about 3 s of Java).`
  static override examples = [
    '<%= config.bin %> cluster status',
    '<%= config.bin %> cluster status --json --no-controller || alert "Kafka unhealthy"',
  ]
  static override flags = {
    controller: Flags.boolean({description: 'find the active controller (needs Java)', default: true, allowNo: true}),
  }

  async run(): Promise<ClusterStatus> {
    const status = await clusterStatus(this.settings, {controller: this.flags.controller})
    this.print(details([
      ['health', status.healthy ? paint.green('healthy') : paint.red('UNHEALTHY')],
      ['controller', status.controller ?? `unknown: ${status.controllerUnavailable}`],
      ['topics', status.topics],
      ['partitions', status.partitions],
    ]))
    this.print(table(
      ['broker', 'address', 'rack', 'state', 'replicas', 'leaders'],
      status.brokers.map((broker) => [
        broker.controller ? `${broker.id} (controller)` : broker.id,
        broker.address,
        broker.rack,
        broker.alive ? 'up' : paint.red('missing'),
        broker.replicas,
        broker.leaders,
      ]),
    ))
    const problems = [...status.offline, ...status.underReplicated.filter((problem) => !problem.problems.includes('offline'))]
    if (problems.length > 0) {
      this.print(table(['topic', 'partition', 'leader', 'replicas', 'isr', 'min isr', 'problem'], problems.map((problem: PartitionProblem) => [
        problem.topic,
        problem.partition,
        problem.leader,
        problem.replicas.join(','),
        problem.isr.join(','),
        problem.minIsr,
        paint.red(problem.problems.join(', ')),
      ])))
    }
    if (status.minIsrUnavailable) this.print(paint.dim(`min.insync.replicas unavailable: ${status.minIsrUnavailable}`))
    if (!status.healthy) {
      if (this.jsonEnabled()) this.logJson(status)
      this.exit(ExitCode.UNHEALTHY)
    }
    return status
  }
}
