import {Args} from '@oclif/core'

import {KafkaCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {deleteGroup, type DeleteGroupResult} from '../../core/storage/groups.js'

export default class GroupDelete extends KafkaCommand<typeof GroupDelete> {
  static override summary = 'Delete a consumer group that has no members, with its committed offsets'
  static override description =
    'Refused (exit 4) while the group has active members: stop its consumers first. A group Kafka does ' +
    'not know exits 3.'
  static override examples = [
    '<%= config.bin %> group delete old-sink',
    '<%= config.bin %> group delete old-sink --json',
  ]
  static override args = {group: Args.string({description: 'consumer group id', required: true})}

  async run(): Promise<DeleteGroupResult> {
    const result = await deleteGroup(this.settings, this.args.group)
    this.print(paint.green(`deleted consumer group '${result.group}'`))
    return result
  }
}
