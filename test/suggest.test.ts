import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {closest, editDistance} from '../src/cli/suggest.js'
import {isOneLineError, runCli} from './helpers.js'

/**
 * Typos in commands and flags (issue 14): one line naming the closest command or flag, exit 2,
 * nothing on stdout; no suggestion when nothing is close. Through the built CLI.
 */
async function expectUsage(args: string[], pattern: RegExp): Promise<string> {
  const result = await runCli(args)
  assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
  assert.ok(isOneLineError(result), `one line for ${args.join(' ')}:\n${result.stderr}`)
  assert.equal(result.stdout, '')
  assert.match(result.stderr, pattern)
  return result.stderr
}

describe('suggestions', () => {
  it('edit distance counts a swapped pair as one edit', () => {
    assert.equal(editDistance('replya', 'replay'), 1)
    assert.equal(editDistance('sumbit', 'submit'), 1)
    assert.equal(editDistance('webhok-id', 'webhook-id'), 1)
    assert.equal(editDistance('', 'abc'), 3)
    assert.equal(editDistance('kitten', 'sitting'), 3)
    assert.equal(closest('frmo', ['from', 'to', 'topic']), 'from')
    assert.equal(closest('x', ['db', 'to']), undefined)
    assert.equal(closest('zzzzzz', ['webhook-id', 'from']), undefined)
  })

  it('a typo in the topic, the verb or both names the command', async () => {
    await expectUsage(
      ['replya', 'submit', '--webhook-id', 'x'],
      /^replayctl: error: unknown command 'replya submit': did you mean `replay submit`\?$/m,
    )
    await expectUsage(['replay', 'sumbit'], /unknown command 'replay sumbit': did you mean `replay submit`\?/)
    await expectUsage(['replya', 'sumbit'], /unknown command 'replya sumbit': did you mean `replay submit`\?/)
    await expectUsage(['lgo', 'read', '-t', 'x'], /did you mean `log read`\?/)
    await expectUsage(['topc'], /unknown command 'topc': did you mean `topic`\?/)
  })

  it('nothing close: no suggestion, the commands or verbs there are', async () => {
    const unknown = await expectUsage(
      ['frobnicate'],
      /unknown command 'frobnicate': see `replayctl --help` for the commands/,
    )
    assert.doesNotMatch(unknown, /did you mean/)
    const verb = await expectUsage(['replay', 'bogus'], /`replayctl replay` has cancel, list, .*submit/)
    assert.doesNotMatch(verb, /did you mean/)
  })

  it('an unknown long flag names the closest flag of that command', async () => {
    await expectUsage(
      ['replay', 'submit', '--webhok-id', 'x'],
      /unknown flag '--webhok-id': did you mean `--webhook-id`\? see `replayctl replay submit --help`/,
    )
    await expectUsage(['log', 'produce', '-t', 'x', '--timestamp-unti', 's'], /did you mean `--timestamp-unit`\?/)
    await expectUsage(['topic', 'list', '--jsno'], /did you mean `--json`\?/)
    await expectUsage(
      ['replay', 'submit', '--webhok-id=x', '--frmo', '1h'],
      new RegExp(
        "unknown flags '--webhok-id=x', '--frmo': " +
          "did you mean `--webhook-id` for '--webhok-id=x', `--from` for '--frmo'\\?",
      ),
    )
    const far = await expectUsage(
      ['topic', 'list', '--zzzzzz'],
      /unknown flag '--zzzzzz': see `replayctl topic list --help` for the flags it takes/,
    )
    assert.doesNotMatch(far, /did you mean/)
  })
})
