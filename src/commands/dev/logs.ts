import {spawn} from 'node:child_process'
import {createReadStream, statSync} from 'node:fs'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {logFile} from '../../core/dev/stack.js'
import {invalidArgument} from '../../core/shared/errors.js'

export default class DevLogs extends BaseCommand<typeof DevLogs> {
  static override summary = "Show a Kafka node's server log, or Kafka Connect's, or the schema registry's"
  static override examples = [
    '<%= config.bin %> dev logs',
    '<%= config.bin %> dev logs --node 2 --lines 200',
    '<%= config.bin %> dev logs --follow',
    '<%= config.bin %> dev logs --schema-registry',
    '<%= config.bin %> dev logs --connect',
  ]
  static override enableJsonFlag = false
  static override flags = {
    node: Flags.integer({description: 'which node of the local stack', default: 1}),
    lines: Flags.integer({char: 'n', description: 'how many of the last lines to show', default: 100}),
    follow: Flags.boolean({char: 'f', description: 'keep printing new lines until interrupted'}),
    connect: Flags.boolean({
      description: "the Kafka Connect worker's log instead",
      exclusive: ['datacenter', 'schema-registry'],
    }),
    datacenter: Flags.integer({
      description: "2: the second datacenter's node (dev up --datacenters 2) instead",
      exclusive: ['connect', 'schema-registry'],
    }),
    'schema-registry': Flags.boolean({
      description: "the schema registry's log instead",
      exclusive: ['connect', 'datacenter'],
    }),
  }

  async run(): Promise<void> {
    if (this.flags.datacenter !== undefined && this.flags.datacenter !== 2 && this.flags.datacenter !== 1)
      throw invalidArgument(`--datacenter must be 1 or 2, got ${this.flags.datacenter}`, 'use --datacenter 2')
    const file = this.flags.connect
      ? logFile(1, 'connect')
      : this.flags['schema-registry']
        ? logFile(1, 'schema-registry')
        : this.flags.datacenter === 2
          ? logFile(1, 'dc2')
          : logFile(this.flags.node)
    if (this.flags.follow) {
      const tail = spawn('tail', ['-n', String(this.flags.lines), '-F', file], {stdio: 'inherit'})
      await new Promise((resolve) => tail.on('exit', resolve))
      return
    }
    // Read only the end of a large log.
    const size = statSync(file).size
    const start = Math.max(0, size - this.flags.lines * 400)
    let text = ''
    for await (const chunk of createReadStream(file, {start, encoding: 'utf8'})) text += chunk
    const lines = text.split('\n')
    if (text.endsWith('\n')) lines.pop()
    process.stdout.write(`${lines.slice(-this.flags.lines).join('\n')}\n`)
  }
}
