import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatBytes, formatCount, paint, sentence, table} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {seed, type SeedResult} from '../../core/dev/seed.js'
import {plural} from '../../core/shared/plural.js'

export default class DevSeed extends KafkaCommand<typeof DevSeed> {
  static override summary =
    'Write a realistic delivery_log: skewed webhooks, ~0.8 KB Account Activity events, duplicates'
  static override description =
    'Deterministic from --seed. Webhook ids get a Zipf-like share of events (a few busy, most quiet); ' +
    'CreateTimes spread over the past --days in time order; a --duplicate-rate share is written again ' +
    'minutes later, as cross-datacenter replication does. Creates the topic (snappy) if it does not ' +
    'exist.'
  static override examples = [
    '<%= config.bin %> dev seed',
    '<%= config.bin %> dev seed --events 1000000 --webhooks 20000 --seed 7',
    '<%= config.bin %> dev seed --topic delivery_log_small --events 5000 --webhooks 50 --days 1 --json',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to write', default: 'delivery_log'}),
    events: Flags.integer({char: 'n', description: 'events to write (duplicates come on top)', default: 100_000}),
    webhooks: Flags.integer({description: 'distinct webhook ids', default: 2000}),
    days: Flags.integer({description: 'spread CreateTimes over this many past days', default: 5}),
    'duplicate-rate': Flags.string({description: 'share of events written twice, 0..1', default: '0.02'}),
    skew: Flags.string({description: 'Zipf exponent of events per webhook (0 = even)', default: '1.1'}),
    seed: Flags.integer({description: 'random seed', default: 42}),
    partitions: Flags.integer({description: 'partitions, when the topic is created', default: 12}),
  }

  async run(): Promise<SeedResult> {
    const progress = await showProgress(
      uiMode(this.jsonEnabled()),
      new ProgressState(`seeding ${this.flags.topic}`, 'events', this.flags.events),
    )
    let result: SeedResult
    try {
      result = await seed(this.settings, {
        topic: this.flags.topic,
        events: this.flags.events,
        webhooks: this.flags.webhooks,
        days: this.flags.days,
        duplicateRate: Number(this.flags['duplicate-rate']),
        skew: Number(this.flags.skew),
        seed: this.flags.seed,
        partitions: this.flags.partitions,
        onProgress: (written) => progress.state.update(written),
      })
      progress.state.finish(result.events)
    } finally {
      await progress.stop()
    }
    this.print(
      paint.green(
        sentence(
          'seeded ',
          {name: result.topic},
          `: ${formatCount(result.events)} ${plural(result.events, 'event')} ` +
            `(${formatCount(result.duplicates)} ${plural(result.duplicates, 'duplicate')}) for ` +
            `${formatCount(result.webhooks)} ${plural(result.webhooks, 'webhook')}`,
        ),
      ),
    )
    this.print(
      details([
        ['time range', `${result.from} .. ${result.to}`],
        ['bytes', formatBytes(result.bytes)],
        ['records/s', formatCount(result.recordsPerSecond)],
      ]),
    )
    this.print(
      table(
        [
          {title: 'busiest webhook', cut: 'middle'},
          {title: 'events', align: 'right'},
        ],
        result.busiestWebhooks.map((webhook) => [webhook.webhookId, formatCount(webhook.events)]),
      ),
    )
    return result
  }
}
