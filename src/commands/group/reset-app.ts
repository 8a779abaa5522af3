import {createInterface} from 'node:readline/promises'

import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {paint, table} from '../../cli/output.js'
import {resetTarget, resetTargetFlags} from '../../cli/reset-target.js'
import {invalidArgument, UserError} from '../../core/shared/errors.js'
import {plural} from '../../core/shared/plural.js'
import {TIME_FORMS} from '../../core/shared/time.js'
import {applyAppReset, planAppReset, type AppResetPlan, type AppResetResult} from '../../core/storage/streams-reset.js'

export default class GroupResetApp extends KafkaCommand<typeof GroupResetApp> {
  static override summary =
    'Reset a Kafka Streams application to reprocess its input: offsets moved, internal topics deleted'
  static override description =
    "What Apache Kafka's kafka-streams-application-reset does. The application's consumer group (its " +
    'application.id) gets new offsets on every partition of the --input-topic topics; --intermediate-topic ' +
    'topics (written and read back by the application) are skipped to their end; the internal topics Kafka ' +
    'Streams created for it (<application.id>-...-changelog, -repartition and foreign-key join topics) are ' +
    'listed, then deleted. Refused (exit 4) while the group has members: stop every instance first. On a ' +
    'terminal it asks you to type the application id; without one it refuses unless --yes is given. ' +
    '--dry-run prints the plan and changes nothing. A missing input topic changes nothing (exit 3). Afterwards ' +
    "clean each instance's local state (KafkaStreams#cleanUp() or its state.dir) before restarting it. " +
    `Times: ${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> group reset-app billing-counts --input-topic delivery_log --to-earliest --dry-run',
    '<%= config.bin %> group reset-app billing-counts --input-topic delivery_log --to-time 2026-11-20T10:00Z',
    '<%= config.bin %> group reset-app billing-counts --input-topic a,b --to-latest --yes --json',
  ]
  static override args = {
    application: Args.string({description: "the Kafka Streams application's application.id", required: true}),
  }
  static override flags = {
    ...tableFlags,
    'input-topic': Flags.string({
      char: 't',
      description: "an input topic whose offsets to move (all its partitions); repeat it or separate with ','",
      multiple: true,
      delimiter: ',',
      required: true,
    }),
    'intermediate-topic': Flags.string({
      description: "a topic the application writes and reads back: skipped to its end; repeat it or separate with ','",
      multiple: true,
      delimiter: ',',
    }),
    ...resetTargetFlags,
    'dry-run': Flags.boolean({description: 'show the plan, commit and delete nothing'}),
    yes: Flags.boolean({char: 'y', description: 'reset without asking (for scripts)'}),
  }

  async run(): Promise<AppResetResult> {
    const target = resetTarget(this.flags)
    const dryRun = this.flags['dry-run']
    if (!dryRun && !this.flags.yes && !process.stdin.isTTY)
      throw invalidArgument(
        'group reset-app deletes topics, needs confirmation, and standard input is not a terminal',
        'pass --yes to reset without asking, or --dry-run to see the plan',
      )
    const plan = await planAppReset(this.settings, {
      application: this.args.application,
      inputTopics: this.flags['input-topic'],
      intermediateTopics: this.flags['intermediate-topic'] ?? [],
      target,
    })
    this.showPlan(plan)
    if (dryRun) {
      this.print(paint.yellow('dry run: nothing committed, nothing deleted'))
      return {...plan, dryRun: true, applied: false}
    }
    if (!this.flags.yes && !(await this.confirm(plan)))
      throw new UserError(
        'INVALID_INPUT',
        'reset not confirmed; nothing was changed',
        'type the application id at the prompt, or pass --yes',
      )
    const result = await applyAppReset(this.settings, plan)
    const topics = result.internalTopics.length
    this.print(
      paint.green(
        `reset application '${result.application}': committed new offsets on ${result.offsets.length} ` +
          `${plural(result.offsets.length, 'partition')}, deleted ${topics} internal ${plural(topics, 'topic')}`,
      ),
    )
    this.print('before restarting an instance, clean its local state: KafkaStreams#cleanUp() or delete its state.dir')
    return result
  }

  private showPlan(plan: AppResetPlan): void {
    this.print(
      table(
        [
          {title: 'topic', cut: 'middle'},
          {title: 'partition', align: 'right'},
          {title: 'current', align: 'right'},
          {title: 'new', align: 'right'},
        ],
        plan.offsets.map((reset) => [reset.topic, reset.partition, reset.current, reset.target]),
      ),
    )
    this.print('')
    this.print(
      plan.internalTopics.length === 0
        ? `no internal topics of '${plan.application}' to delete`
        : table(
            [{title: 'internal topic to delete', cut: 'middle'}],
            plan.internalTopics.map((topic) => [topic]),
          ),
    )
  }

  private async confirm(plan: AppResetPlan): Promise<boolean> {
    const prompt = createInterface({input: process.stdin, output: process.stderr})
    try {
      const topics = plan.internalTopics.length
      const answer = await prompt.question(
        `Move the offsets above and delete ${topics} internal ${plural(topics, 'topic')} with all their records? ` +
          `Type the application id '${plan.application}' to confirm: `,
      )
      return answer.trim() === plan.application
    } finally {
      prompt.close()
    }
  }
}
