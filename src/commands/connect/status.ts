import {ConnectCommand, tableFlags} from '../../cli/base-command.js'
import {details, paint, table} from '../../cli/output.js'
import {connectStatus, type ConnectStatus} from '../../core/connect/status.js'
import {ExitCode} from '../../core/shared/errors.js'

const painted = (state: string) =>
  state === 'RUNNING' ? paint.green(state) : state === 'FAILED' ? paint.red(state) : paint.yellow(state)

export default class ConnectStatusCommand extends ConnectCommand<typeof ConnectStatusCommand> {
  static override summary = "A Kafka Connect cluster's workers, connectors and tasks, with each failure's first line"
  static override description =
    `Reads the worker's REST API (GET /connectors?expand=status&expand=info). Exits ${ExitCode.OK} when no ` +
    `connector or task is FAILED and ${ExitCode.UNHEALTHY} otherwise (the report is still printed, also under ` +
    `--json), as \`cluster status\` does; ${ExitCode.UNAVAILABLE} when the worker does not answer.`
  static override examples = [
    '<%= config.bin %> connect status',
    '<%= config.bin %> connect status --url http://connect-1:8083 --json || alert "a connector failed"',
  ]
  static override flags = {...tableFlags}

  async run(): Promise<ConnectStatus> {
    const status = await connectStatus(this.connect)
    this.print(
      details([
        ['health', status.healthy ? paint.green('healthy') : paint.red('FAILED connectors or tasks')],
        ['connect', `${status.url} (Kafka ${status.version})`, 'middle'],
        ['kafka cluster', status.kafkaClusterId],
      ]),
    )
    this.print(
      table(
        [
          {title: 'worker', cut: 'middle'},
          {title: 'connectors', align: 'right'},
          {title: 'tasks', align: 'right'},
        ],
        status.workers.map((worker) => [worker.id, worker.connectors, worker.tasks]),
      ),
    )
    if (status.connectors.length === 0) this.print('no connectors')
    else
      this.print(
        table(
          [
            {title: 'connector', cut: 'middle'},
            'type',
            'task',
            'state',
            {title: 'worker', cut: 'middle', drop: 1},
            {title: 'class', drop: 0},
            {title: 'error', cut: 'end'},
          ],
          status.connectors.flatMap((connector) => [
            [
              connector.name,
              connector.type,
              '',
              painted(connector.state),
              connector.worker,
              connector.className.split('.').pop() ?? '',
              connector.error ?? '',
            ],
            ...connector.tasks.map((task) => ['', '', task.id, painted(task.state), task.worker, '', task.error ?? '']),
          ]),
        ),
      )
    if (!status.healthy) {
      if (this.jsonEnabled()) this.logJson(status)
      this.exit(ExitCode.UNHEALTHY)
    }
    return status
  }
}
