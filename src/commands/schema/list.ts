import {SchemaRegistryCommand, tableFlags} from '../../cli/base-command.js'
import {table} from '../../cli/output.js'
import {listSchemas, type SubjectSummary} from '../../core/schemas/registry.js'

export default class SchemaList extends SchemaRegistryCommand<typeof SchemaList> {
  static override summary = "List a schema registry's subjects with their latest version, type and schema id"
  static override examples = ['<%= config.bin %> schema list', '<%= config.bin %> schema list --json']
  static override flags = {...tableFlags}

  async run(): Promise<SubjectSummary[]> {
    const subjects = await listSchemas(this.settings)
    if (subjects.length === 0) this.print('no subjects')
    else
      this.print(
        table(
          [
            {title: 'subject', cut: 'middle'},
            {title: 'version', align: 'right'},
            'type',
            {title: 'id', align: 'right'},
          ],
          subjects.map((subject) => [subject.subject, subject.version, subject.schemaType, subject.id]),
        ),
      )
    return subjects
  }
}
