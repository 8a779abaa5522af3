import {Args, Flags} from '@oclif/core'

import {SchemaRegistryCommand, tableFlags} from '../../cli/base-command.js'
import {details} from '../../cli/output.js'
import {subjectVersion, type SubjectVersion} from '../../core/schemas/registry.js'
import {invalidArgument} from '../../core/shared/errors.js'

export default class SchemaGet extends SchemaRegistryCommand<typeof SchemaGet> {
  static override summary = "Print a subject's schema: the latest version, or --version N"
  static override examples = [
    '<%= config.bin %> schema get delivery_log-value',
    '<%= config.bin %> schema get delivery_log-value --version 2 --json',
  ]
  static override args = {subject: Args.string({description: 'the subject (e.g. <topic>-value)', required: true})}
  static override flags = {
    ...tableFlags,
    version: Flags.integer({char: 'v', description: 'which version (default: the latest)'}),
  }

  async run(): Promise<SubjectVersion> {
    if (this.flags.version !== undefined && this.flags.version < 1)
      throw invalidArgument(`--version must be 1 or more, got ${this.flags.version}`, 'leave it out for the latest')
    const found = await subjectVersion(this.settings, this.args.subject, this.flags.version)
    this.print(
      details([
        ['subject', found.subject, 'middle'],
        ['version', String(found.version)],
        ['type', found.schemaType],
        ['id', String(found.id)],
      ]),
    )
    this.print(prettySchema(found.schema))
    return found
  }
}

/** Avro and JSON schemas are JSON: indented for reading; anything else (Protobuf) as stored. */
function prettySchema(schema: string): string {
  try {
    return JSON.stringify(JSON.parse(schema), null, 2)
  } catch {
    return schema
  }
}
