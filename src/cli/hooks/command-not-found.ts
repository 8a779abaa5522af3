import type {Hook} from '@oclif/core'

import {ExitCode, quoteInput} from '../../core/shared/errors.js'
import {paint} from '../output.js'
import {nearDistance} from '../suggest.js'

/**
 * oclif calls this when the words typed name no command: words after a command that takes no
 * arguments (`topic list extra`), a topic's unknown verb (`replay bogus`), or a typo
 * (`replya sumbit`: "did you mean `replay submit`?"). One line saying which, and exit 2, as for
 * every other usage error (base-command.ts); JSON under --json.
 */
const hook: Hook<'command_not_found'> = async function (options) {
  const words = options.id.split(':')
  const json = (options.argv ?? []).includes('--json')
  let message: string
  let fix: string
  const commandAt = [...words.keys()]
    .reverse()
    .find((end) => end > 0 && options.config.findCommand(words.slice(0, end).join(':')))
  if (commandAt !== undefined) {
    const command = words.slice(0, commandAt).join(' ')
    const extra = words.slice(commandAt).map((word) => quoteInput(word))
    const plural = extra.length === 1 ? '' : 's'
    message = `unexpected argument${plural} ${extra.join(', ')}: \`${options.config.bin} ${command}\` takes none`
    fix = `see \`${options.config.bin} ${command} --help\``
  } else {
    const topicAt = [...words.keys()]
      .reverse()
      .find((end) => end > 0 && options.config.findTopic(words.slice(0, end).join(':')))
    const topic = topicAt === undefined ? undefined : words.slice(0, topicAt).join(':')
    const verbs =
      topic === undefined
        ? []
        : options.config.commandIDs
            .filter((id) => id.startsWith(`${topic}:`))
            .map((id) => id.slice(topic.length + 1))
            .filter((verb) => !verb.includes(':'))
    message = `unknown command ${quoteInput(words.join(' '))}`
    const suggestion = closestCommand(words, options.config)
    fix =
      suggestion !== undefined
        ? `did you mean \`${suggestion}\`?`
        : topic === undefined
          ? `see \`${options.config.bin} --help\` for the commands`
          : `\`${options.config.bin} ${topic.replaceAll(':', ' ')}\` has ${verbs.sort().join(', ')}`
  }
  if (json)
    process.stdout.write(
      `${JSON.stringify({error: {code: 'INVALID_ARGUMENT', message, fix, exitCode: ExitCode.USAGE}}, null, 2)}\n`,
    )
  else process.stderr.write(`${paint.red('replayctl: error:')} ${message}: ${fix}\n`)
  this.exit(ExitCode.USAGE)
}

/**
 * The visible command or topic near the words typed, each compared with as many words as it has:
 * the one of most words wins (`replya sumbit`: the command `replay submit`, not the topic
 * `replay`), then the nearest.
 */
function closestCommand(
  words: string[],
  config: Parameters<Hook<'command_not_found'>>[0]['config'],
): string | undefined {
  const ids = [
    ...config.commands.filter((command) => !command.hidden).map((command) => command.id),
    ...config.topics.filter((topic) => !topic.hidden).map((topic) => topic.name),
  ]
  let best: {name: string; distance: number; words: number} | undefined
  for (const id of new Set(ids)) {
    const parts = id.split(':')
    if (parts.length > words.length) continue
    const name = parts.join(' ')
    const distance = nearDistance(words.slice(0, parts.length).join(' '), name)
    if (distance === undefined) continue
    if (!best || parts.length > best.words || (parts.length === best.words && distance < best.distance))
      best = {name, distance, words: parts.length}
  }
  return best?.name
}

export default hook
