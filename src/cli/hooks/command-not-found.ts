import type {Hook} from '@oclif/core'

import {ExitCode, quoteInput} from '../../core/shared/errors.js'
import {paint} from '../output.js'

/**
 * oclif calls this when the words typed name no command: words after a command that takes no
 * arguments (`topic list extra`), or a topic's unknown verb (`replay bogus`). One line saying
 * which, and exit 2, as for every other usage error (base-command.ts); JSON under --json.
 */
const hook: Hook<'command_not_found'> = async function (options) {
  const words = options.id.split(':')
  const json = (options.argv ?? []).includes('--json')
  let message: string
  let fix: string
  const commandAt = [...words.keys()].reverse().find((end) => end > 0 && options.config.findCommand(words.slice(0, end).join(':')))
  if (commandAt !== undefined) {
    const command = words.slice(0, commandAt).join(' ')
    const extra = words.slice(commandAt).map((word) => quoteInput(word))
    message = `unexpected argument${extra.length === 1 ? '' : 's'} ${extra.join(', ')}: \`${options.config.bin} ${command}\` takes none`
    fix = `see \`${options.config.bin} ${command} --help\``
  } else {
    const topicAt = [...words.keys()].reverse().find((end) => end > 0 && options.config.findTopic(words.slice(0, end).join(':')))
    const topic = topicAt === undefined ? undefined : words.slice(0, topicAt).join(':')
    const verbs = topic === undefined ? [] : options.config.commandIDs.filter((id) => id.startsWith(`${topic}:`)).map((id) => id.slice(topic.length + 1)).filter((verb) => !verb.includes(':'))
    message = `unknown command ${quoteInput(words.join(' '))}`
    fix = topic === undefined ? `see \`${options.config.bin} --help\` for the commands` : `\`${options.config.bin} ${topic.replaceAll(':', ' ')}\` has ${verbs.sort().join(', ')}`
  }
  if (json) process.stdout.write(`${JSON.stringify({error: {code: 'INVALID_ARGUMENT', message, fix, exitCode: ExitCode.USAGE}}, null, 2)}\n`)
  else process.stderr.write(`${paint.red('replayctl: error:')} ${message}: ${fix}\n`)
  this.exit(ExitCode.USAGE)
}

export default hook
