import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {displayWidth} from '../src/cli/output.js'
import {type CliResult, isOneLineError, nth, runCli} from './helpers.js'

/**
 * When Kafka is not there (issue 14): commands fail at once on a port nothing listens on, `dev
 * status` reports a stopped stack as unhealthy, and `dev up` names a port someone else holds.
 * Ports are outside the shared stack's and outside Linux's ephemeral range. The stack this file
 * starts also shows `dev up` and `dev status` reports fitting 80 columns with a long state directory.
 */
const CLOSED = 29391
const HELD = 29394
const TIMEOUT_MS = 10_000

const states: string[] = []
after(async () => {
  for (const state of states)
    await runCli(['dev', 'down', '--purge', '--grace', '5'], {env: {REPLAYCTL_STATE: state}, timeoutMs: 60_000})
})

describe('Kafka not there', () => {
  it('a command against a port nothing listens on exits 5 in well under --timeout', async () => {
    for (const args of [
      ['topic', 'list'],
      ['topic', 'describe', 'delivery_log'],
      ['group', 'list'],
    ]) {
      const started = Date.now()
      const result = await runCli([...args, '--brokers', `127.0.0.1:${CLOSED}`, '--timeout', `${TIMEOUT_MS}ms`])
      const took = Date.now() - started
      assert.equal(result.code, 5, result.stderr)
      assert.ok(isOneLineError(result), result.stderr)
      assert.match(result.stderr, new RegExp(`cannot reach Kafka at 127\\.0\\.0\\.1:${CLOSED} \\(connection refused`))
      assert.ok(took < TIMEOUT_MS / 2, `${args.join(' ')} took ${took} ms`)
    }
  })

  it('dev status exits 7 when the stack is stopped, and still prints its report; both fit 80 columns', async () => {
    const state = mkdtempSync(join(tmpdir(), `replayctl-down-${'with-a-long-state-directory-name-'.repeat(3)}`))
    states.push(state)
    const env = {REPLAYCTL_STATE: state, REPLAYCTL_KAFKA_HEAP: '384m'}
    const up = await runCli(['dev', 'up', '--port', String(CLOSED + 100), '--json'], {env, timeoutMs: 180_000})
    assert.equal(up.code, 0, up.stderr)
    const at80 = (args: string[]) => runCli(args, {env: {...env, COLUMNS: '80'}, timeoutMs: 120_000})
    const fits = (result: CliResult) => {
      assert.deepEqual(
        result.stdout.split('\n').filter((line) => displayWidth(line) > 80),
        [],
        result.stdout,
      )
      assert.match(result.stdout, /^state +\/\S*replayctl-down-with\S*…\S+$/m)
    }
    // `dev up` again reports the running stack.
    const again = await at80(['dev', 'up'])
    assert.equal(again.code, 0, again.stderr)
    fits(again)
    assert.match(again.stdout, new RegExp(`^1 +127\\.0\\.0\\.1:${CLOSED + 100} +\\d+ +running$`, 'm'))
    const running = await at80(['dev', 'status'])
    assert.equal(running.code, 0, running.stderr)
    fits(running)
    assert.match(running.stdout, /^kafka node 1 +127\.0\.0\.1:\d+ +\d+ +running$/m)
    assert.equal((await runCli(['dev', 'down'], {env, timeoutMs: 60_000})).code, 0)
    const status = await runCli(['dev', 'status', '--json'], {env})
    assert.equal(status.code, 7, status.stderr)
    assert.equal(status.json.healthy, false)
    assert.equal(status.json.nodes[0].running, false)
    const stopped = await at80(['dev', 'status'])
    assert.equal(stopped.code, 7, stopped.stderr)
    fits(stopped)
    assert.match(stopped.stdout, /^kafka node 1 +127\.0\.0\.1:\d+ +\S+ +stopped$/m)
  })

  it('dev up with its port held by another listener names the port and who holds it, in one line', async () => {
    const holder: Server = createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => holder.listen(HELD, '127.0.0.1', resolve))
    try {
      const state = mkdtempSync(join(tmpdir(), 'replayctl-held-'))
      states.push(state)
      const up = await runCli(['dev', 'up', '--port', String(HELD)], {
        env: {REPLAYCTL_STATE: state, REPLAYCTL_KAFKA_HEAP: '384m'},
        timeoutMs: 180_000,
      })
      assert.equal(up.code, 5, up.stderr)
      // Progress notes come first on stderr; the failure is one line after them.
      const errors = up.stderr
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('replayctl: error: '))
      assert.equal(errors.length, 1, up.stderr)
      assert.doesNotMatch(up.stderr, /\n\s+at /)
      assert.match(
        nth(errors, 0),
        new RegExp(`port ${HELD} is already in use \\(a listener of pid ${process.pid} \\(node\\)\\)`),
      )
    } finally {
      holder.close()
    }
  })

  it('dev up refuses ports in the ephemeral range before starting anything', async () => {
    const state = mkdtempSync(join(tmpdir(), 'replayctl-eph-'))
    const up = await runCli(['dev', 'up', '--port', '49092'], {env: {REPLAYCTL_STATE: state}})
    assert.equal(up.code, 2, up.stderr)
    assert.match(up.stderr, /port 49092 of the local stack is in Linux's ephemeral port range/)
  })
})
