import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {table} from '../../cli/output.js'
import {listGroups, type GroupSummary} from '../../core/storage/groups.js'

export default class GroupList extends KafkaCommand<typeof GroupList> {
  static override summary = 'List consumer groups with their state (Stable, Empty, ...) and protocol'
  static override examples = ['<%= config.bin %> group list', '<%= config.bin %> group list --json']
  static override flags = {...tableFlags}

  async run(): Promise<GroupSummary[]> {
    const groups = await listGroups(this.settings)
    this.print(
      groups.length === 0
        ? 'no consumer groups'
        : table(
            [{title: 'group', cut: 'middle'}, 'state', {title: 'protocol', drop: 2}, {title: 'type', drop: 1}],
            groups.map((group) => [group.group, group.state, group.protocolType, group.type]),
          ),
    )
    return groups
  }
}
