import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {paint, table} from '../../cli/output.js'
import {ExitCode} from '../../core/shared/errors.js'
import {electPreferredLeaders, type ElectLeadersResult} from '../../core/storage/leader-election.js'

export default class ClusterElectLeaders extends KafkaCommand<typeof ClusterElectLeaders> {
  static override summary = "Move partition leadership back to each partition's preferred (first) replica"
  static override description =
    `After a broker restart its partitions are led by the brokers that stayed up; this elects the ` +
    `preferred replicas again (Apache Kafka's LeaderElectionCommand, so Java and the jars \`dev up\` ` +
    `caches are needed). Each partition is reported as elected, already preferred or failed; exits ` +
    `${ExitCode.INCOMPLETE} when any failed (for example when its preferred replica is down or out ` +
    `of sync).`
  static override examples = [
    '<%= config.bin %> cluster elect-leaders',
    '<%= config.bin %> cluster elect-leaders --topic delivery_log --partition 3 --json',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'only this topic (default: every topic)'}),
    partition: Flags.integer({char: 'p', description: 'only this partition of --topic', min: 0}),
  }

  async run(): Promise<ElectLeadersResult> {
    const result = await electPreferredLeaders(this.settings, {
      topic: this.flags.topic,
      partition: this.flags.partition,
    })
    const shown = result.partitions.filter((partition) => partition.outcome !== 'already-preferred')
    if (shown.length > 0) {
      this.print(
        table(
          [
            {title: 'topic', cut: 'middle'},
            {title: 'partition', align: 'right'},
            {title: 'preferred', align: 'right'},
            {title: 'leader before', align: 'right'},
            {title: 'leader now', align: 'right'},
            {title: 'outcome', cut: 'end'},
          ],
          shown.map((partition) => [
            partition.topic,
            partition.partition,
            partition.preferred,
            partition.leaderBefore,
            partition.leaderAfter,
            partition.outcome === 'failed' ? paint.red(`failed: ${partition.error}`) : paint.green(partition.outcome),
          ]),
        ),
      )
    }
    this.print(`${result.elected} elected, ${result.alreadyPreferred} already preferred, ${result.failed} failed`)
    if (result.failed > 0) {
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(ExitCode.INCOMPLETE)
    }
    return result
  }
}
