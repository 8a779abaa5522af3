import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, test} from 'node:test'

import {runCli} from './helpers.js'

/** Shell completion (@oclif/plugin-autocomplete): the setup it prints, and bash completing our commands and flags. */
const home = mkdtempSync(join(tmpdir(), 'replayctl-home-'))
after(() => rmSync(home, {recursive: true, force: true}))

describe('replayctl autocomplete', () => {
  test('prints the setup and builds completion functions that complete commands and flags', async () => {
    const setup = await runCli(['autocomplete', 'bash'], {env: {HOME: home}})
    assert.equal(setup.code, 0, setup.stderr)
    assert.match(setup.stdout, /printf "\$\(replayctl autocomplete script bash\)" >> ~\/\.bashrc/)
    const script = await runCli(['autocomplete', 'script', 'bash'], {env: {HOME: home}})
    assert.equal(script.code, 0, script.stderr)
    assert.match(script.stdout, /REPLAYCTL_AC_BASH_SETUP_PATH=.*autocomplete\/bash_setup/)

    const functions = join(home, '.cache', 'replayctl', 'autocomplete', 'functions', 'bash', 'replayctl.bash')
    assert.ok(existsSync(functions), functions)
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _replayctl_autocomplete; printf '%s\\n' ` +
            `"\${COMPREPLY[@]}"`,
          'complete',
          functions,
          'replayctl',
          ...words,
        ],
        {encoding: 'utf8'},
      )
        .trim()
        .split('\n')
    assert.deepEqual(complete('replay', 'wor'), ['worker'])
    assert.deepEqual(complete('replay', 'worker', '--allow'), ['--allow-private-targets'])
    assert.deepEqual(complete('webhook', 'add', '--allow'), ['--allow-private-targets'])
    assert.deepEqual(complete('log', 'partition-for', '--partitio').sort(), ['--partitioner', '--partitions'])
    assert.deepEqual(complete('topic', 'cr'), ['create'])
  })
})
