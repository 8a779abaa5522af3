import {DatabaseCommand} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import {migrateDatabase, type DatabaseMigrateResult} from '../../core/db/database.js'

export default class DbMigrate extends DatabaseCommand<typeof DbMigrate> {
  static override summary = 'Create the replay database if needed and apply pending schema migrations'
  static override description =
    'Safe to run any time and from several machines at once: applied migrations are skipped and ' +
    'concurrent runs wait for each other. Other commands also migrate on first use.'
  static override examples = [
    '<%= config.bin %> db migrate',
    '<%= config.bin %> db migrate --mysql-url mysql://replay:secret@db1:3306/replayctl --json',
  ]

  async run(): Promise<DatabaseMigrateResult> {
    const result = await migrateDatabase(this.settings)
    for (const migration of result.applied) this.print(paint.green(`applied ${migration.version}: ${migration.name}`))
    if (result.applied.length === 0) this.print(`already at version ${result.current}; nothing to apply`)
    this.print(
      details([
        ['database', `${result.database} on ${result.host}:${result.port}`],
        ['version', result.current],
      ]),
    )
    return result
  }
}
