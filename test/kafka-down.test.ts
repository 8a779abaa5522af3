import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {type AddressInfo, createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {displayWidth} from '../src/cli/output.js'
import {type CliResult, cliCommand, isOneLineError, nth, runCli, runInTerminal, shownLines} from './helpers.js'

/**
 * When Kafka is not there (issue 14): commands fail at once on a port nothing listens on, say they
 * are connecting when a listener never answers (on a terminal only), `dev status` reports a stopped
 * stack as unhealthy, and `dev up` names a port someone else holds.
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

  describe('a listener that accepts and never answers', () => {
    let silent: Server
    const sockets = new Set<Socket>()
    let brokers = ''
    const work = mkdtempSync(join(tmpdir(), 'replayctl-silent-'))
    before(async () => {
      silent = createServer((socket) => {
        sockets.add(socket)
        socket.on('error', () => {})
      })
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
      brokers = `127.0.0.1:${(silent.address() as AddressInfo).port}`
    })
    after(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
      rmSync(work, {recursive: true, force: true})
    })
    const notice = () => new RegExp(`connecting to Kafka at ${brokers.replaceAll('.', '\\.')} \\(Ctrl-C to stop\\)`)

    it('on a terminal: "connecting to ..." after a second, then the one-line error and exit 5', async () => {
      const run = await runInTerminal(cliCommand(['topic', 'list', '--brokers', brokers, '--timeout', '8s']))
      const lines = shownLines(run.output)
      assert.equal(run.code, 5, run.output)
      assert.match(nth(lines, 0), notice())
      const errors = lines.filter((line) => line.startsWith('replayctl: error: '))
      assert.equal(errors.length, 1, run.output)
      assert.equal(lines.at(-1), nth(errors, 0), 'the error is the last line')
      assert.match(nth(errors, 0), new RegExp(`cannot reach Kafka at ${brokers.replaceAll('.', '\\.')} `))
      assert.doesNotMatch(run.output, /\n\s+at /)
      // The notice comes while the command waits, seconds before the 8 s timeout ends it.
      const noticed = run.shownAt(notice())
      const failed = run.shownAt(/replayctl: error:/)
      assert.ok(noticed !== undefined && failed !== undefined, run.output)
      assert.ok(failed - noticed >= 3000, `notice at ${noticed} ms, error at ${failed} ms`)
    })

    it('without a terminal, or under --json, there is no notice: only the error', async () => {
      const started = Date.now()
      const piped = await runCli(['topic', 'list', '--brokers', brokers, '--timeout', '4s'])
      assert.ok(Date.now() - started >= 3000, 'it waited past the second after which a terminal is told')
      assert.equal(piped.code, 5, piped.stderr)
      assert.ok(isOneLineError(piped), piped.stderr)

      const stdout = join(work, 'json.out')
      const json = await runInTerminal(
        cliCommand(['topic', 'list', '--brokers', brokers, '--timeout', '4s', '--json'], {stdoutTo: stdout}),
      )
      assert.equal(json.code, 5, json.output)
      assert.deepEqual(shownLines(json.output), [], 'nothing on the terminal under --json')
      assert.equal(JSON.parse(readFileSync(stdout, 'utf8')).error.code, 'KAFKA_UNAVAILABLE')
    })
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
