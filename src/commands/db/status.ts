import {DatabaseCommand, tableFlags} from '../../cli/base-command.js'
import {type Detail, details, paint} from '../../cli/output.js'
import {databaseStatus, type DatabaseStatus} from '../../core/db/database.js'

export default class DbStatus extends DatabaseCommand<typeof DbStatus> {
  static override summary = 'Show the replay database, its schema version and pending migrations (changes nothing)'
  static override examples = ['<%= config.bin %> db status', '<%= config.bin %> db status --json']
  static override flags = {...tableFlags}

  async run(): Promise<DatabaseStatus> {
    const status = await databaseStatus(this.settings)
    const pending = status.pending.map((migration) => `${migration.version} ${migration.name}`).join(', ')
    this.print(
      details([
        ['server', `${status.host}:${status.port} (${status.serverVersion}) as ${status.user}`],
        ['database', status.exists ? status.database : `${status.database} ${paint.yellow('(does not exist yet)')}`],
        ['version', `${status.current} of ${status.latest}`],
        // The advice on its own line: a long list of pending migrations is cut to the terminal's width.
        ['pending', status.pending.length ? paint.yellow(pending) : 'none'],
        ...(status.pending.length ? [['next', 'run `replayctl db migrate`'] as Detail] : []),
        ...(status.ahead ? [['note', paint.yellow('the database was migrated by a newer replayctl')] as Detail] : []),
      ]),
    )
    return status
  }
}
