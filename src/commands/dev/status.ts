import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {details, paint, table} from '../../cli/output.js'
import {stackStatus, type StackStatus} from '../../core/dev/stack.js'
import {ExitCode} from '../../core/shared/errors.js'

export default class DevStatus extends BaseCommand<typeof DevStatus> {
  static override summary = 'Show each part of the local stack with its address, pid and health'
  static override description =
    `Exits ${ExitCode.OK} when every Kafka node runs and answers metadata, MariaDB answers and the schema ` +
    `registry, if \`dev up --schema-registry\` added one, runs, and ` +
    `${ExitCode.UNHEALTHY} otherwise, also when no stack was started (the report is still printed, ` +
    `also under --json).`
  static override examples = ['<%= config.bin %> dev status', '<%= config.bin %> dev status --json']
  static override flags = {...tableFlags}

  async run(): Promise<StackStatus> {
    const status = await stackStatus()
    if (status.nodes.length === 0)
      this.print(`no local Kafka in ${status.stateDir}: start it with \`replayctl dev up\``)
    else
      this.print(
        table(
          ['part', {title: 'address', cut: 'middle'}, {title: 'pid', align: 'right'}, {title: 'state', cut: 'end'}],
          [
            ...status.nodes.map((node) => [
              `kafka node ${node.id}`,
              node.address,
              node.pid,
              node.running ? paint.green('running') : paint.red('stopped'),
            ]),
            ...(status.dc2
              ? [
                  [
                    'kafka dc2',
                    status.dc2.address,
                    status.dc2.pid,
                    status.dc2.running ? paint.green('running') : paint.red('stopped'),
                  ],
                ]
              : []),
            ...(status.connect
              ? [
                  [
                    'kafka connect',
                    status.connect.url,
                    status.connect.pid,
                    status.connect.running ? paint.green('running') : paint.red('stopped'),
                  ],
                ]
              : []),
            [
              'mysql',
              status.mysql.address,
              status.mysql.pid,
              status.mysql.running
                ? paint.green(`running (MariaDB ${status.mysql.version})`)
                : paint.red('not answering'),
            ],
            ...(status.schemaRegistry
              ? [
                  [
                    'schema registry',
                    status.schemaRegistry.url,
                    status.schemaRegistry.pid,
                    status.schemaRegistry.running ? paint.green('running') : paint.red('stopped'),
                  ],
                ]
              : []),
          ],
        ),
      )
    if (status.nodes.length) {
      this.print(
        details([
          [
            'kafka',
            status.healthy
              ? paint.green(`healthy, ${status.kafkaVersion}`)
              : paint.red('not answering metadata with every node'),
          ],
          ['brokers', status.brokers],
          ['state', status.stateDir, 'middle'],
        ]),
      )
    }
    if (!status.healthy || !status.mysql.running || status.schemaRegistry?.running === false) {
      if (this.jsonEnabled()) this.logJson(status)
      this.exit(ExitCode.UNHEALTHY)
    }
    return status
  }
}
