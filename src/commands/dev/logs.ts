import {spawn} from 'node:child_process'
import {createReadStream, statSync} from 'node:fs'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {logFile} from '../../core/dev/stack.js'

export default class DevLogs extends BaseCommand<typeof DevLogs> {
  static override summary = "Show a Kafka node's server log, or the schema registry's"
  static override examples = [
    '<%= config.bin %> dev logs',
    '<%= config.bin %> dev logs --node 2 --lines 200',
    '<%= config.bin %> dev logs --follow',
    '<%= config.bin %> dev logs --schema-registry',
  ]
  static override enableJsonFlag = false
  static override flags = {
    node: Flags.integer({description: 'which node of the local stack', default: 1}),
    lines: Flags.integer({char: 'n', description: 'how many of the last lines to show', default: 100}),
    follow: Flags.boolean({char: 'f', description: 'keep printing new lines until interrupted'}),
    'schema-registry': Flags.boolean({description: "show the schema registry's log instead"}),
  }

  async run(): Promise<void> {
    const file = logFile(this.flags.node, this.flags['schema-registry'])
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
