import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {paint} from '../../cli/output.js'
import {down, type DownResult} from '../../core/dev/stack.js'

export default class DevDown extends BaseCommand<typeof DevDown> {
  static override summary = 'Stop the processes `dev up` started'
  static override description =
    'Sends SIGTERM to each Kafka node (and to MariaDB only if `dev up` started it), and SIGKILL to any ' +
    'still running after --grace. Data is kept unless --purge.'
  static override examples = ['<%= config.bin %> dev down', '<%= config.bin %> dev down --purge']
  static override flags = {
    purge: Flags.boolean({description: 'also delete all Kafka data and the stack state'}),
    grace: Flags.integer({description: 'seconds to wait for a clean shutdown before SIGKILL', default: 30}),
  }

  async run(): Promise<DownResult> {
    const result = await down({purge: this.flags.purge, timeoutMs: this.flags.grace * 1000})
    for (const stopped of result.stopped)
      this.print(`stopped ${stopped.what} (pid ${stopped.pid}${stopped.forced ? ', forced' : ''})`)
    if (result.stopped.length === 0) this.print('nothing was running')
    if (result.purged) this.print(paint.yellow(`deleted ${result.stateDir}`))
    return result
  }
}
