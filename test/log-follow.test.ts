import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {after, describe, it} from 'node:test'

import {BIN, BROKERS, deleteTopics, MYSQL_URL, runCli, uniqueName} from './helpers.js'

/**
 * `log read --follow`: records written after the read started appear; --key keeps one key's;
 * Ctrl-C, SIGTERM and a closed pipe end it with exit code 0; --max still ends it.
 */
const created: string[] = []

after(async () => {
  await deleteTopics(created)
})

async function createTopic(partitions: number): Promise<string> {
  const topic = uniqueName('follow')
  const result = await runCli(['topic', 'create', topic, '--partitions', String(partitions), '--json'])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

async function produce(topic: string, events: object[]): Promise<void> {
  const result = await runCli(['log', 'produce', '--topic', topic, '--json'], {
    input: events.map((event) => JSON.stringify(event)).join('\n') + '\n',
  })
  assert.equal(result.code, 0, result.stderr)
}

const env = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  REPLAYCTL_BROKERS: BROKERS,
  REPLAYCTL_MYSQL_URL: MYSQL_URL,
  REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
}

interface Following {
  child: ChildProcess
  /** stdout so far */
  out(): string
  /** Resolves once stdout satisfies `test` (rejects after a minute). */
  until(test: (out: string) => boolean): Promise<void>
  exit: Promise<{code: number | null; signal: NodeJS.Signals | null; stderr: string}>
}

function follow(args: string[]): Following {
  const child = spawn(process.execPath, [BIN, 'log', 'read', ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  const waiters: (() => void)[] = []
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8')
    for (const waiter of waiters) waiter()
  })
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const exit = new Promise<{code: number | null; signal: NodeJS.Signals | null; stderr: string}>((resolve) =>
    child.on('exit', (code, signal) => resolve({code, signal, stderr})),
  )
  return {
    child,
    out: () => stdout,
    until: (test) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`stdout never matched; it was:\n${stdout}\nstderr:\n${stderr}`)),
          60_000,
        )
        const check = () => {
          if (!test(stdout)) return
          clearTimeout(timer)
          resolve()
        }
        waiters.push(check)
        check()
      }),
    exit,
  }
}

const lines = (out: string) => out.split('\n').filter(Boolean)
/** The event numbered n was printed: raw and table show `"n":1}`, json escapes it as `\"n\":1}`. */
const holds = (out: string, n: number) => new RegExp(`n\\\\?":${n}\\}`).test(out)

/** Within `ms` (generous: a loaded machine), or the process is killed and the test fails. */
async function exitsWithin(following: Following, ms: number) {
  const timer = setTimeout(() => following.child.kill('SIGKILL'), ms)
  const result = await following.exit
  clearTimeout(timer)
  return result
}

describe('log read --follow', () => {
  it('prints records written after it started, only the --key ones, and ends with code 0 on SIGINT', async () => {
    const topic = await createTopic(3)
    await produce(topic, [
      {webhook_id: 'a', n: 1},
      {webhook_id: 'b', n: 2},
    ])
    const following = follow(['--topic', topic, '--key', 'a', '--follow'])
    await following.until((out) => lines(out).length >= 1)
    await produce(topic, [
      {webhook_id: 'b', n: 3},
      {webhook_id: 'a', n: 4},
      {webhook_id: 'a', n: 5},
    ])
    await following.until((out) => lines(out).length >= 3)
    following.child.kill('SIGINT')
    const result = await exitsWithin(following, 20_000)
    assert.deepEqual({code: result.code, signal: result.signal}, {code: 0, signal: null}, result.stderr)
    const values = lines(following.out()).map((line) => JSON.parse(JSON.parse(line).value))
    assert.deepEqual(
      values.map((event) => event.n),
      [1, 4, 5],
    )
    assert.ok(values.every((event) => event.webhook_id === 'a'))
  })

  it('ends with code 0 on SIGTERM, in every format', async () => {
    const topic = await createTopic(1)
    await produce(topic, [{webhook_id: 'a', n: 1}])
    for (const format of ['raw', 'table', 'json']) {
      const following = follow(['--topic', topic, '--follow', '--format', format])
      await following.until((out) => holds(out, 1))
      await produce(topic, [{webhook_id: 'a', n: 100}])
      await following.until((out) => holds(out, 100))
      following.child.kill('SIGTERM')
      const result = await exitsWithin(following, 20_000)
      assert.deepEqual(
        {code: result.code, signal: result.signal},
        {code: 0, signal: null},
        `${format}: ${result.stderr}`,
      )
      if (format === 'raw') assert.match(following.out(), /^\{"webhook_id":"a","n":1\}\n/)
      if (format === 'table') assert.match(following.out(), /partition\s+offset/)
    }
  })

  it('still ends by itself at --max', async () => {
    const topic = await createTopic(1)
    await produce(topic, [{webhook_id: 'a', n: 1}])
    const following = follow(['--topic', topic, '--follow', '--max', '3', '--format', 'raw'])
    await following.until((out) => lines(out).length >= 1)
    await produce(topic, [
      {webhook_id: 'a', n: 2},
      {webhook_id: 'a', n: 3},
      {webhook_id: 'a', n: 4},
    ])
    const result = await exitsWithin(following, 30_000)
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      lines(following.out()).map((line) => JSON.parse(line).n),
      [1, 2, 3],
    )
  })

  it('ends with code 0 when the pipe it writes to is closed (| head -n 3)', async () => {
    const topic = await createTopic(1)
    await produce(topic, [{webhook_id: 'a', n: 1}])
    const shell = spawn(
      'bash',
      [
        '-c',
        `"${process.execPath}" "${BIN}" log read --topic ${topic} --follow --format raw | head -n 3; echo "read ` +
          `exited $\{PIPESTATUS[0]}" >&2`,
      ],
      {env, stdio: ['ignore', 'pipe', 'pipe']},
    )
    let stdout = ''
    let stderr = ''
    shell.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    shell.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const exited = new Promise<number | null>((resolve) => shell.on('exit', (code) => resolve(code)))
    // head takes three lines and exits; the read notices at its next write, as kcat does.
    let ended = false
    void exited.then(() => (ended = true))
    const deadline = Date.now() + 60_000
    for (let n = 2; !ended && Date.now() < deadline; n++) {
      await produce(topic, [{webhook_id: 'a', n}])
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    if (!ended) shell.kill('SIGKILL')
    assert.equal(await exited, 0, stderr)
    assert.equal(lines(stdout).length, 3)
    assert.match(stderr, /read exited 0/)
  })
})
