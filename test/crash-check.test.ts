import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {BIN, MYSQL_URL, isOneLineError, uniqueName} from './helpers.js'

/**
 * No command may end by a signal (issue 13): a native crash (SIGSEGV, exit 139) or a server that
 * dies of SIGTERM instead of shutting down. Every command that takes Kafka connection settings is
 * run against a fresh cluster of its own (a throwaway stack: new state directory, ports outside the
 * shared stack's and outside Linux's ephemeral range) and then against the same stack stopped, where
 * nothing listens on its port. Commands are taken from oclif.manifest.json, so a new one is covered
 * as soon as it exists; one that needs arguments must be given them in ARGS below.
 */
const PORT = 29472
const BROKERS = `127.0.0.1:${PORT}`
const work = mkdtempSync(join(tmpdir(), 'replayctl-crash-'))
const stateDir = join(work, 'state')
const database = uniqueName('crash')
const mysqlUrl = `${MYSQL_URL.slice(0, MYSQL_URL.lastIndexOf('/'))}/${database}`
const topic = uniqueName('crash')
const group = uniqueName('crash_g')
const backupDir = join(work, 'backup')

interface Outcome {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** Still running when the test gave up on it (and killed it). */
  hung: boolean
}

const children = new Set<ChildProcess>()

function start(args: string[], input = ''): {child: ChildProcess; done: Promise<Outcome>} {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REPLAYCTL_BROKERS: BROKERS,
      REPLAYCTL_MYSQL_URL: mysqlUrl,
      REPLAYCTL_STATE: stateDir,
      REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
      REPLAYCTL_API_TOKENS: '[{"token":"crash-check-token-0123456789abcdef","webhooks":"*"}]',
      ...(process.env.REPLAYCTL_CACHE ? {REPLAYCTL_CACHE: process.env.REPLAYCTL_CACHE} : {}),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  child.stdin!.on('error', () => {}).end(input)
  const done = new Promise<Outcome>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child)
      resolve({code, signal, stdout, stderr, hung: false})
    })
  })
  return {child, done}
}

/** Runs a command to its end, killing it (and reporting it as hung) after `limitMs`. */
async function run(args: string[], options: {input?: string; limitMs?: number} = {}): Promise<Outcome> {
  const {child, done} = start(args, options.input)
  let hung = false
  const timer = setTimeout(() => {
    hung = true
    child.kill('SIGKILL')
  }, options.limitMs ?? 60_000)
  const outcome = await done
  clearTimeout(timer)
  return {...outcome, hung}
}

/**
 * A server or watcher: once it has started (its first output), it must keep running a few seconds
 * (or end by itself with an exit code), then stop on SIGTERM by itself, with an exit code.
 */
async function runUntilTerm(args: string[]): Promise<Outcome> {
  const {child, done} = start(args)
  // A process killed before it has set up its handlers dies of the signal, as any program does.
  const started = new Promise<void>((resolve) => {
    child.stdout!.once('data', () => resolve())
    child.stderr!.once('data', () => resolve())
  })
  const wait = (ms: number) => new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))
  const early = await Promise.race([done, started.then(() => wait(3000)), wait(60_000)])
  if (early) return early
  child.kill('SIGTERM')
  let hung = false
  const timer = setTimeout(() => {
    hung = true
    child.kill('SIGKILL')
  }, 45_000)
  const outcome = await done
  clearTimeout(timer)
  return {...outcome, hung}
}

interface Spec {
  args: string[]
  input?: string
  /** Runs until stopped: checked with runUntilTerm. */
  server?: boolean
}

/** The least each command needs to get as far as talking to Kafka; `{phase}` is replaced per run. */
const ARGS: Record<string, Spec[]> = {
  'api:serve': [{args: ['--port', '0'], server: true}],
  'cluster:elect-leaders': [{args: []}, {args: ['--topic', topic, '--partition', '0']}],
  'cluster:status': [{args: []}],
  'db:migrate': [{args: []}],
  'db:status': [{args: []}],
  'dev:seed': [
    {args: ['--topic', `${topic}_seed`, '--events', '20', '--webhooks', '2', '--days', '1', '--partitions', '2']},
  ],
  'group:delete': [{args: [`${group}_gone`]}],
  'group:lag': [{args: [group]}, {args: [group, '--watch', '--interval', '1'], server: true}],
  'group:list': [{args: []}],
  'group:reset-app': [
    {args: [`${group}_app`, '--input-topic', topic, '--to-earliest', '--dry-run']},
    {args: [`${group}_app`, '--input-topic', topic, '--to-time', '1d', '--yes']},
  ],
  'group:reset-offsets': [
    {args: [group, '--topic', topic, '--to-earliest', '--dry-run']},
    {args: [group, '--topic', topic, '--to-time', '1d']},
  ],
  'ingest:serve': [{args: ['--topic', topic, '--port', '0'], server: true}],
  'log:partition-for': [{args: ['k1', '--topic', topic]}],
  'log:produce': [{args: ['--topic', topic], input: '{"webhook_id":"w1","n":1}\n'}],
  'log:read': [{args: ['--topic', topic, '--max', '5']}, {args: ['--topic', topic, '--follow'], server: true}],
  'log:search': [{args: ['--topic', topic, '--key', 'w1', '--since', '1h']}],
  'log:seek': [{args: ['--topic', topic, '--since', '1h']}],
  'replay:cancel': [{args: ['1']}],
  'replay:list': [{args: []}],
  'replay:retry': [{args: ['1']}],
  'replay:status': [{args: ['1']}, {args: ['1', '--watch'], server: true}],
  'replay:submit': [{args: ['--webhook-id', 'w1', '--from', '2h', '--to', '1h', '--topic', topic]}],
  'replay:worker': [{args: ['--once']}, {args: [], server: true}],
  'topic:alter': [
    {args: [`${topic}_{phase}`, '--partitions', '2']},
    {args: [topic, '--config', 'retention.ms=3600000']},
  ],
  'topic:backup': [{args: [topic, '--to', join(work, 'backup-{phase}')]}],
  'topic:create': [{args: [`${topic}_{phase}`, '--partitions', '1']}],
  'topic:delete': [{args: [`${topic}_{phase}`, '--yes']}],
  'topic:describe': [{args: [topic]}],
  'topic:list': [{args: []}],
  'topic:rates': [
    {args: [topic, '--interval', '1s']},
    {args: [topic, '--interval', '1s', '--group', group]},
    {args: [topic, '--interval', '1s', '--watch'], server: true},
  ],
  'topic:restore': [{args: [backupDir, '--topic', `${topic}_restored_{phase}`]}],
  'topic:verify': [{args: [backupDir, '--topic', topic]}],
  'webhook:add': [{args: ['w1', '--url', 'http://127.0.0.1:9/webhook', '--allow-private-targets']}],
  'webhook:check': [{args: ['w1', '--allow-private-targets']}],
  'webhook:list': [{args: []}],
  'webhook:remove': [{args: ['w1']}],
  // Rotates this file's own database onto a new key; later runs may then stop with SECRET_KEY_WRONG, never a signal.
  'webhook:rotate-key': [{args: ['--new-key-file', join(work, 'rotated-{phase}.key')]}],
}

/** Commands that take Kafka connection settings (the -X librdkafka flag), from the manifest. */
function kafkaCommands(): {id: string; requiresInput: boolean}[] {
  const manifest = JSON.parse(readFileSync(new URL('../oclif.manifest.json', import.meta.url), 'utf8')) as {
    commands: Record<
      string,
      {args?: Record<string, {required?: boolean}>; flags?: Record<string, {required?: boolean}>}
    >
  }
  return Object.entries(manifest.commands)
    .filter(([, command]) => command.flags?.X !== undefined)
    .map(([id, command]) => ({
      id,
      requiresInput:
        Object.values(command.args ?? {}).some((arg) => arg.required) ||
        Object.values(command.flags ?? {}).some((flag) => flag.required),
    }))
}

/** Each command's specs, with --timeout short so a stopped broker is noticed quickly. */
function plannedRuns(phase: string): {label: string; spec: Spec}[] {
  const runs: {label: string; spec: Spec}[] = []
  for (const {id, requiresInput} of kafkaCommands()) {
    const specs = ARGS[id] ?? (requiresInput ? [] : [{args: []}])
    assert.ok(specs.length > 0, `${id} needs arguments: add its minimal arguments to ARGS in test/crash-check.test.ts`)
    for (const spec of specs) {
      const args = [...id.split(':'), ...spec.args.map((arg) => arg.replaceAll('{phase}', phase)), '--timeout', '3s']
      runs.push({label: `replayctl ${args.join(' ')}`, spec: {...spec, args}})
    }
  }
  return runs
}

/** Runs every planned command, a few at a time; returns one line per command that failed the check. */
async function crashCheck(phase: string): Promise<string[]> {
  const failures: string[] = []
  const queue = plannedRuns(phase)
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const {label, spec} = next
      const outcome = spec.server ? await runUntilTerm(spec.args) : await run(spec.args, {input: spec.input})
      const stderr = outcome.stderr.trim().split('\n').slice(-3).join(' | ')
      if (outcome.signal !== null && !outcome.hung) failures.push(`${label}: ended by ${outcome.signal} (${stderr})`)
      else if (outcome.code !== null && outcome.code >= 128) failures.push(`${label}: exit ${outcome.code} (${stderr})`)
      else if (outcome.hung) failures.push(`${label}: did not end ${spec.server ? 'after SIGTERM' : 'within 60 s'}`)
    }
  }
  await Promise.all(Array.from({length: 3}, worker))
  return failures
}

async function cli(args: string[], input?: string): Promise<Outcome> {
  const outcome = await run(args, {input, limitMs: 240_000})
  assert.equal(outcome.code, 0, `replayctl ${args.join(' ')}: ${outcome.stderr}`)
  return outcome
}

before(
  async () => {
    await cli(['dev', 'up', '--port', String(PORT)])
    await cli(['db', 'migrate'])
    await cli(['topic', 'create', topic, '--partitions', '2'])
    await cli(['log', 'produce', '--topic', topic], '{"webhook_id":"w1","n":1}\n{"webhook_id":"w2","n":2}\n')
    await cli(['topic', 'backup', topic, '--to', backupDir])
  },
  {timeout: 300_000},
)

after(
  async () => {
    for (const child of children) child.kill('SIGKILL')
    await run(['dev', 'down', '--purge'], {limitMs: 120_000})
    const mysql = await import('mysql2/promise')
    const url = new URL(MYSQL_URL)
    const connection = await mysql.createConnection({
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    })
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await connection.end()
    rmSync(work, {recursive: true, force: true})
  },
  {timeout: 180_000},
)

function assertNoChildren(): void {
  assert.equal(children.size, 0, 'every child process has ended')
}

describe('no command ends by a signal', {concurrency: false}, () => {
  it(
    'the first group commands on a fresh cluster work (no SIGSEGV in describeGroups or the offset fetch)',
    {timeout: 240_000},
    async () => {
      // Nothing has used a group yet: __consumer_offsets does not exist and the coordinator is unknown.
      for (const args of [
        ['group', 'reset-offsets', group, '--topic', topic, '--to-time', '1d'],
        ['group', 'lag', group],
        ['group', 'list'],
        ['group', 'reset-offsets', `${group}_2`, '--topic', topic, '--to-latest', '--dry-run'],
        ['group', 'lag', `${group}_never`],
      ]) {
        const outcome = await run([...args, '--timeout', '30s'])
        const label = `replayctl ${args.join(' ')}`
        assert.equal(outcome.signal, null, `${label} ended by ${outcome.signal}: ${outcome.stderr}`)
        assert.ok(!outcome.hung, `${label} did not end`)
        if (args.includes(`${group}_never`)) {
          assert.equal(outcome.code, 3, `${label}: ${outcome.stderr}`)
          assert.match(outcome.stderr, /^replayctl: error: consumer group '.*' does not exist/)
        } else {
          assert.equal(outcome.code, 0, `${label}: ${outcome.stderr}`)
        }
      }
      assertNoChildren()
    },
  )

  it('every Kafka command, against the fresh cluster', {timeout: 600_000}, async () => {
    assert.deepEqual(await crashCheck('up'), [])
    assertNoChildren()
  })

  it(
    'with the broker stopped, the group commands and cluster status say so in one line, exit 5',
    {timeout: 300_000},
    async () => {
      await cli(['dev', 'down'])
      for (const args of [
        ['group', 'lag', group],
        ['group', 'list'],
        ['group', 'reset-offsets', group, '--topic', topic, '--to-earliest'],
        ['topic', 'rates', topic, '--group', group, '--interval', '1s'],
        ['cluster', 'status'],
      ]) {
        const outcome = await run([...args, '--timeout', '3s'])
        const label = `replayctl ${args.join(' ')}`
        assert.equal(outcome.signal, null, `${label} ended by ${outcome.signal}: ${outcome.stderr}`)
        assert.equal(outcome.code, 5, `${label}: ${outcome.stderr}`)
        assert.ok(
          isOneLineError({...outcome, code: 5, json: undefined}),
          `${label}: one line, no stack:\n${outcome.stderr}`,
        )
        assert.match(outcome.stderr, /cannot reach Kafka at 127\.0\.0\.1:29472/)
      }
      assertNoChildren()
    },
  )

  it('every Kafka command, with the broker stopped', {timeout: 600_000}, async () => {
    assert.deepEqual(await crashCheck('down'), [])
    assertNoChildren()
  })
})
