import {createInterface} from 'node:readline/promises'

import {Args, Flags} from '@oclif/core'

import {KafkaCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {deleteTopics, type DeleteTopicsResult} from '../../core/kafka/topic-admin.js'

export default class TopicDelete extends KafkaCommand<typeof TopicDelete> {
  static override summary = 'Delete topics and every record in them (asks first; --yes for scripts)'
  static override description =
    'On a terminal it asks you to type the topic name (or y for several). Without a terminal it ' +
    'refuses unless --yes is given. Internal topics (__consumer_offsets, __transaction_state, any name ' +
    'starting with __, _schemas) are refused. A name that does not exist deletes nothing (exit 3).'
  static override examples = [
    '<%= config.bin %> topic delete old_log',
    '<%= config.bin %> topic delete tmp_a tmp_b --yes --json',
  ]
  static override strict = false
  static override args = {name: Args.string({description: 'topic name (several may be given)', required: true})}
  static override flags = {
    yes: Flags.boolean({char: 'y', description: 'delete without asking (for scripts)'}),
  }

  async run(): Promise<DeleteTopicsResult> {
    // strict = false lets several names through; parse's argv holds them without the flags.
    const names = (await this.parse(TopicDelete)).argv.map(String)
    if (!this.flags.yes && !process.stdin.isTTY)
      throw invalidArgument(
        'topic delete needs confirmation and standard input is not a terminal',
        'pass --yes to delete without asking',
      )
    const result = await deleteTopics(this.settings, names, (topics) =>
      this.flags.yes ? Promise.resolve(true) : this.confirm(topics),
    )
    this.print(paint.green(`deleted ${result.deleted.map((topic) => `'${topic}'`).join(', ')}`))
    return result
  }

  private async confirm(topics: string[]): Promise<boolean> {
    const prompt = createInterface({input: process.stdin, output: process.stderr})
    try {
      const [only] = topics
      const expected = topics.length === 1 && only !== undefined ? only : 'y'
      const question =
        topics.length === 1
          ? `Delete topic '${expected}' and all its records? Type its name to confirm: `
          : `Delete ${topics.length} topics (${topics.join(', ')}) and all their records? [y/N] `
      const answer = (await prompt.question(question)).trim()
      return topics.length === 1 ? answer === expected : /^y(es)?$/i.test(answer)
    } finally {
      prompt.close()
    }
  }
}
