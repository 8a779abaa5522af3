import assert from 'node:assert/strict'
import {after, before} from 'node:test'
import {type ChildProcess, spawn} from 'node:child_process'
import {readdirSync, readFileSync, readlinkSync} from 'node:fs'
import {hostname} from 'node:os'
import type {Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import {openPool, type Pool} from '../src/core/db/database.js'
import {getJob, type ReplayJob} from '../src/core/replay/store/jobs/index.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {readRanges} from '../src/core/kafka/range-reader.js'
import {BIN, BROKERS, type CliResult, deleteTopics, nth, runCli, testSettings, uniqueName} from './helpers.js'
import {
  type Handler,
  type ReceivedRequest,
  type Receiver,
  type ReceiverOptions,
  startReceiver,
} from './webhook-receiver.js'

/**
 * End-to-end harness for the replay engine: a database of its own per test file, topics filled
 * with known events (and the noise a real delivery_log has), workers run as child processes
 * exactly as an operator runs them, and ways to tell which worker process sent what a receiver got.
 */

export const SERVER_URL = 'mysql://root@127.0.0.1:3306'
export const MINUTE = 60_000
export const HOUR = 60 * MINUTE

/** Polls `check` until it returns a truthy value; fails with `what` (and the last value) at the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await check()
    if (last) return last as NonNullable<T>
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`)
    await sleep(intervalMs)
  }
}

// ---------------------------------------------------------------------------------------------
// The stack a test file runs against

export class Stack {
  readonly database = uniqueName('rp')
  readonly mysqlUrl = `${SERVER_URL}/${this.database}`
  readonly env: Record<string, string> = {REPLAYCTL_MYSQL_URL: this.mysqlUrl, REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1'}
  readonly topics: string[] = []
  pool!: Pool

  async open(): Promise<void> {
    this.pool = await openPool(this.mysqlUrl, {connectionLimit: 4})
  }

  async close(): Promise<void> {
    if (!this.pool) return
    await this.pool.query(`DROP DATABASE IF EXISTS \`${this.database}\``).catch(() => {})
    await this.pool.end().catch(() => {})
  }

  cli(
    args: string[],
    options: {env?: Record<string, string>; input?: string; timeoutMs?: number} = {},
  ): Promise<CliResult> {
    return runCli(args, {...options, env: {...this.env, ...options.env}})
  }

  /** Runs a command that must succeed; its --json output. */
  async ok(args: string[], options: {input?: string; timeoutMs?: number} = {}): Promise<any> {
    const result = await this.cli([...args, '--json'], options)
    assert.equal(
      result.code,
      0,
      `replayctl ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout.slice(0, 2000)}`,
    )
    return result.json
  }

  async createTopic(partitions: number, prefix = 'rpl'): Promise<string> {
    const topic = uniqueName(prefix)
    await this.ok(['topic', 'create', topic, '--partitions', String(partitions)])
    this.topics.push(topic)
    return topic
  }

  async addWebhook(id: string, url: string, secret: string): Promise<void> {
    // Registration's CRC check is tested on its own; here receivers may be down or not up yet.
    await this.ok(['webhook', 'add', id, '--url', url, '--secret', secret, '--skip-crc-check'])
  }

  async submit(webhookId: string, fromMs: number, toMs: number, topic: string, extra: string[] = []): Promise<number> {
    const job = await this.ok([
      'replay',
      'submit',
      '--webhook-id',
      webhookId,
      '--from',
      new Date(fromMs).toISOString(),
      '--to',
      new Date(toMs).toISOString(),
      '--topic',
      topic,
      ...extra,
    ])
    // submit reads the job back after inserting it: a worker already running may have claimed it.
    assert.ok(['OPEN', 'STARTED', 'ONGOING'].includes(job.state as string), `a new job is ${job.state}`)
    return job.id as number
  }

  job(id: number): Promise<ReplayJob> {
    return getJob(this.pool, id)
  }

  async waitForState(id: number, states: string[], timeoutMs = 60_000): Promise<ReplayJob> {
    return waitFor(
      `job ${id} to reach ${states.join('/')}`,
      async () => {
        const job = await this.job(id)
        return states.includes(job.state) ? job : undefined
      },
      timeoutMs,
      100,
    )
  }

  /** Every row of the two tables, for "nothing was written" checks. */
  async snapshot(): Promise<string> {
    const [webhooks] = await this.pool.query('SELECT * FROM webhooks ORDER BY id')
    const [jobs] = await this.pool.query('SELECT * FROM replay_jobs ORDER BY id')
    return JSON.stringify({webhooks, jobs})
  }
}

// ---------------------------------------------------------------------------------------------
// Events

export interface ScenarioOptions {
  /** In-range events of the webhook, all distinct. */
  unique: number
  /** Exact copies of earlier in-range bodies, written later (still inside the range). */
  duplicates?: number
  /** Events of the webhook before `from` and at/after `to` (each side). */
  outside?: number
  /** Events of other webhooks in the same partition. */
  neighbours?: number
  /** Events of webhooks in other partitions. */
  elsewhere?: number
  /** Extra bytes of padding per event body. */
  padding?: number
}

export interface Scenario {
  topic: string
  partitions: number
  webhookId: string
  partition: number
  fromMs: number
  toMs: number
  /** The distinct bodies a replay must deliver, in log order of first appearance. */
  expected: string[]
  /** Log offset of each expected body's first appearance. */
  offsetOf: Map<string, number>
  /** In-range records that repeat an earlier body. */
  duplicates: number
  /** Records of the partition (offset order), as read back from the broker. */
  log: {offset: number; key: string; timestamp: number; value: string}[]
}

/** Webhook ids (with a prefix) that land in `partition` of a topic with `partitions` partitions. */
export function idsInPartition(prefix: string, partitions: number, partition: number, count: number): string[] {
  const ids: string[] = []
  for (let i = 0; ids.length < count; i++) {
    const id = `${prefix}-${i}`
    if (partitionFor(id, partitions) === partition) ids.push(id)
  }
  return ids
}

/** Ids that land anywhere but `partition`. */
export function idsNotInPartition(prefix: string, partitions: number, partition: number, count: number): string[] {
  const ids: string[] = []
  for (let i = 0; ids.length < count; i++) {
    const id = `${prefix}-x${i}`
    if (partitionFor(id, partitions) !== partition) ids.push(id)
  }
  return ids
}

/**
 * Builds the webhook's events in time order: some before `from`, the in-range ones interleaved with
 * other webhooks' events (same partition and others) and, in their second half, exact duplicates of
 * earlier bodies; then some at/after `to`. Returns the NDJSON lines in produce order.
 */
export function buildEvents(
  webhookId: string,
  partitions: number,
  fromMs: number,
  toMs: number,
  options: ScenarioOptions,
  seed = 1,
): string[] {
  const partition = partitionFor(webhookId, partitions)
  const neighbours = idsInPartition(`${webhookId}-n`, partitions, partition, 3)
  const elsewhere = idsNotInPartition(`${webhookId}-e`, partitions, partition, 3)
  let state = seed >>> 0 || 1
  const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32
  // Padding that does not compress (the topic is snappy-compressed), so sizes are real sizes.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  const padding = () =>
    Array.from({length: options.padding ?? 16}, () => alphabet[Math.floor(random() * alphabet.length)]).join('')
  const line = (id: string, ts: number, kind: string, n: number) =>
    JSON.stringify({webhook_id: id, ts, kind, n, event: `${id}:${kind}:${n}`, pad: padding()})
  const lines: string[] = []
  const outside = options.outside ?? 10
  const before = fromMs - 30 * MINUTE
  for (let i = 0; i < outside; i++) {
    lines.push(line(webhookId, before + Math.floor((i * 29 * MINUTE) / outside), 'before', i))
    if (i % 2 === 0)
      lines.push(line(nth(neighbours, i % 3), before + Math.floor((i * 29 * MINUTE) / outside) + 1, 'before', i))
  }
  // The range's edges: `from` is inclusive.
  lines.push(line(webhookId, fromMs - 1, 'edge', 0))
  lines.push(line(webhookId, fromMs, 'edge', 1))
  // In range: [fromMs, toMs - 1 minute); the noise is spread among the webhook's events.
  const unique = options.unique
  const span = toMs - MINUTE - fromMs
  const noise = (options.neighbours ?? 0) + (options.elsewhere ?? 0)
  const slots = unique + noise
  type Kind = 'own' | 'neighbour' | 'elsewhere'
  const kinds: Kind[] = [
    ...Array(unique).fill('own'),
    ...Array(options.neighbours ?? 0).fill('neighbour'),
    ...Array(options.elsewhere ?? 0).fill('elsewhere'),
  ]
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[kinds[i], kinds[j]] = [nth(kinds, j), nth(kinds, i)]
  }
  const own: string[] = []
  // Duplicates: after chosen events of the second half, a copy of an earlier body (a producer's
  // retry, an upstream re-send), so they come later in the log than their originals.
  const duplicates = options.duplicates ?? 0
  const copyAfter = new Map<number, number>()
  for (let d = 0; d < duplicates; d++) {
    const at = Math.floor(unique / 2) + Math.floor((d * (unique - Math.floor(unique / 2))) / Math.max(1, duplicates))
    copyAfter.set(at, (copyAfter.get(at) ?? 0) + 1)
  }
  const counters: Record<Kind, number> = {own: 0, neighbour: 0, elsewhere: 0}
  for (let slot = 0; slot < slots; slot++) {
    const ts = fromMs + Math.floor((slot * span) / slots)
    const kind = nth(kinds, slot)
    const n = counters[kind]++
    if (kind === 'own') {
      const text = line(webhookId, ts, 'in', n)
      own.push(text)
      lines.push(text)
      for (let c = copyAfter.get(n) ?? 0; c > 0; c--) lines.push(nth(own, Math.floor(random() * own.length)))
    } else if (kind === 'neighbour') lines.push(line(nth(neighbours, n % 3), ts, 'in', n))
    else lines.push(line(nth(elsewhere, n % 3), ts, 'in', n))
  }
  // The range's edges: `to` is exclusive.
  lines.push(line(webhookId, toMs - 1, 'edge', 2))
  lines.push(line(webhookId, toMs, 'edge', 3))
  for (let i = 0; i < outside; i++) {
    lines.push(line(webhookId, toMs + Math.floor((i * 20 * MINUTE) / outside), 'after', i))
    if (i % 2 === 0)
      lines.push(line(nth(neighbours, i % 3), toMs + Math.floor((i * 20 * MINUTE) / outside) + 1, 'after', i))
  }
  return lines
}

/** A replay range in the past hours, minute-aligned (Twitter's granularity). */
export function pastRange(): {fromMs: number; toMs: number} {
  const now = Math.floor(Date.now() / MINUTE) * MINUTE
  return {fromMs: now - 3 * HOUR, toMs: now - HOUR}
}

/** Produces the lines with `log produce` (keyed by webhook_id, CreateTime from ts). */
export async function produceLines(stack: Stack, topic: string, lines: string[], extra: string[] = []): Promise<void> {
  const result = await stack.ok(
    ['log', 'produce', '--topic', topic, '--key-field', 'webhook_id', '--timestamp-field', 'ts', ...extra],
    {input: lines.join('\n') + '\n', timeoutMs: 120_000},
  )
  assert.equal(result.events, lines.length)
}

/** Reads a whole partition back from the broker. */
export async function readPartition(topic: string, partition: number): Promise<Scenario['log']> {
  const records: Scenario['log'] = []
  for await (const batch of readRanges(testSettings(), topic, [{partition, start: 0, end: Number.MAX_SAFE_INTEGER}])) {
    for (const message of batch) {
      records.push({
        offset: message.offset,
        key: String(message.key),
        timestamp: message.timestamp ?? -1,
        value: String(message.value),
      })
    }
  }
  return records
}

/**
 * Creates a topic, produces a webhook's scenario into it and computes, from what the broker holds,
 * what a replay of [from, to) must deliver: records keyed by the webhook with a timestamp in the
 * range, distinct bodies, in log order. Reuse a topic (`topic`) only for webhooks of other
 * partitions: a replay finds its range by time, so events appended with older timestamps than the
 * partition already holds lie outside it.
 */
export async function scenario(
  stack: Stack,
  options: ScenarioOptions & {
    partitions?: number
    webhookId?: string
    topic?: string
    range?: {fromMs: number; toMs: number}
    seed?: number
    produceArgs?: string[]
  },
): Promise<Scenario> {
  const partitions = options.partitions ?? 4
  const topic = options.topic ?? (await stack.createTopic(partitions))
  const webhookId = options.webhookId ?? uniqueName('wh').replace(/_/g, '-')
  const {fromMs, toMs} = options.range ?? pastRange()
  const lines = buildEvents(webhookId, partitions, fromMs, toMs, options, options.seed)
  await produceLines(stack, topic, lines, options.produceArgs)
  const partition = partitionFor(webhookId, partitions)
  return expectation(topic, partitions, webhookId, partition, fromMs, toMs, lines)
}

export async function expectation(
  topic: string,
  partitions: number,
  webhookId: string,
  partition: number,
  fromMs: number,
  toMs: number,
  produced?: string[],
  readLog?: Scenario['log'],
): Promise<Scenario> {
  const log = readLog ?? (await readPartition(topic, partition))
  if (produced) {
    // The partition ends with what was just produced for it, in produce order (idempotent producer).
    const mine = produced.filter((text) => partitionFor(JSON.parse(text).webhook_id, partitions) === partition)
    assert.deepEqual(
      log.slice(log.length - mine.length).map((record) => record.value),
      mine,
      'the partition holds the produced events in order',
    )
  }
  const expected: string[] = []
  const offsetOf = new Map<string, number>()
  let duplicates = 0
  for (const record of log) {
    if (record.key !== webhookId || record.timestamp < fromMs || record.timestamp >= toMs) continue
    if (offsetOf.has(record.value)) duplicates++
    else {
      offsetOf.set(record.value, record.offset)
      expected.push(record.value)
    }
  }
  return {topic, partitions, webhookId, partition, fromMs, toMs, expected, offsetOf, duplicates, log}
}

// ---------------------------------------------------------------------------------------------
// What a receiver got

export function isCompletion(body: Buffer | string): boolean {
  return String(body).startsWith('{"replay_job_status"')
}

/**
 * A completion event's description is for the customer: no topic, partition, offset, host:port,
 * operator note or internal error (that detail stays in the job and `replay status`). `internals`:
 * texts of this test that must not appear (topic names, the job's last_error).
 */
export function assertCustomerFacing(description: string, internals: Array<string | null | undefined> = []): void {
  assert.doesNotMatch(
    description,
    new RegExp(
      String.raw`\[\d+\]|offset|partition|\d+\.\.\d+|\b(?:localhost|\d{1,3}(?:\.\d{1,3}){3}):\d+|` +
        String.raw`note:|kafka|mysql|ECONN|error|attempt`,
      'i',
    ),
  )
  for (const text of internals)
    if (text) assert.ok(!description.includes(text), `${JSON.stringify(description)} contains ${JSON.stringify(text)}`)
}

/** Bodies of event requests (the completion event left out). */
export function eventBodies(list: Array<ReceivedRequest | Buffer>): string[] {
  return list.map((item) => String(Buffer.isBuffer(item) ? item : item.body)).filter((body) => !isCompletion(body))
}

export function counts(bodies: string[]): Map<string, number> {
  const seen = new Map<string, number>()
  for (const body of bodies) seen.set(body, (seen.get(body) ?? 0) + 1)
  return seen
}

/** Asserts every expected body is among `bodies` and nothing unexpected is. */
export function assertCovers(bodies: string[], expected: string[], what: string): void {
  const got = new Set(bodies)
  const missing = expected.filter((body) => !got.has(body))
  assert.equal(
    missing.length,
    0,
    `${what}: ${missing.length} of ${expected.length} events never delivered, e.g. ${missing.slice(0, 2).join(' | ')}`,
  )
  const wanted = new Set(expected)
  const stray = [...got].filter((body) => !wanted.has(body))
  assert.equal(
    stray.length,
    0,
    `${what}: delivered events that are not the webhook's in-range events, e.g. ${stray.slice(0, 2).join(' | ')}`,
  )
}

/** The receiver's request count once it has not changed for `quietMs`. */
export async function settledCount(receiver: Receiver, quietMs = 400, timeoutMs = 30_000): Promise<number> {
  let last = receiver.requests.length
  let since = Date.now()
  await waitFor(
    'the receiver to go quiet',
    () => {
      const now = receiver.requests.length
      if (now !== last) {
        last = now
        since = Date.now()
        return false
      }
      return Date.now() - since >= quietMs
    },
    timeoutMs,
    25,
  )
  return last
}

// ---------------------------------------------------------------------------------------------
// Worker processes

export interface LogLine {
  time: string
  level: string
  msg: string
  worker: string
  job?: number
  outcome?: string
  [field: string]: unknown
}

export class WorkerProcess {
  readonly child: ChildProcess
  readonly lines: LogLine[] = []
  stdout = ''
  stderr = ''
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>

  constructor(
    env: Record<string, string>,
    args: string[],
    readonly name: string,
  ) {
    this.child = spawn(process.execPath, [BIN, 'replay', 'worker', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REPLAYCTL_BROKERS: BROKERS,
        ...(process.env.REPLAYCTL_STATE ? {REPLAYCTL_STATE: process.env.REPLAYCTL_STATE} : {}),
        ...(process.env.REPLAYCTL_CACHE ? {REPLAYCTL_CACHE: process.env.REPLAYCTL_CACHE} : {}),
        REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let pending = ''
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk))
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk
      pending += chunk
      let at: number
      while ((at = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, at)
        pending = pending.slice(at + 1)
        try {
          this.lines.push(JSON.parse(text))
        } catch {
          // not a log line (a crash's stack, say): kept in stderr
        }
      }
    })
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({code, signal})))
  }

  get pid(): number {
    return this.child.pid!
  }

  /** The owner the worker writes into jobs and its log lines. */
  get owner(): string {
    return `${hostname()}:${this.pid}`
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, signal)
  }

  /** Log lines with this message (and job, if given). */
  logged(msg: string, job?: number): LogLine[] {
    return this.lines.filter((line) => line.msg === msg && (job === undefined || line.job === job))
  }

  async waitForLog(msg: string, job?: number, timeoutMs = 30_000): Promise<LogLine> {
    return waitFor(
      `${this.name} to log "${msg}"${job === undefined ? '' : ` for job ${job}`}`,
      () => {
        const found = this.logged(msg, job)[0]
        if (!found && !this.running)
          throw new Error(`${this.name} exited before logging "${msg}": ${this.stderr.slice(-2000)}`)
        return found
      },
      timeoutMs,
    )
  }

  /** Waits for the process to exit; SIGKILLs it and fails if it has not within the time. */
  async waitForExit(timeoutMs = 30_000): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)))
    const result = await Promise.race([this.exited, timeout])
    clearTimeout(timer)
    if (result === 'timeout') {
      this.signal('SIGCONT')
      this.signal('SIGKILL')
      await this.exited
      throw new Error(
        `${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms; stderr tail: ${this.stderr.slice(-2000)}`,
      )
    }
    return result
  }

  /** SIGTERM (graceful hand-back) and wait: it must exit 0. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.signal('SIGCONT')
    this.signal('SIGTERM')
    const {code, signal} = await this.waitForExit(timeoutMs)
    assert.equal(code, 0, `${this.name} exited ${code ?? signal} after SIGTERM: ${this.stderr.slice(-2000)}`)
  }
}

/**
 * The worker processes of a test file. Every test must leave none running (graphile-worker's
 * rule): `assertNoneRunning()` kills leftovers and fails the test that left them.
 */
export class Workers {
  readonly all: WorkerProcess[] = []
  private count = 0

  constructor(private readonly stack: Stack) {}

  /** Starts `replayctl replay worker` with fast test timings; `args` override them. */
  start(args: string[] = [], env: Record<string, string> = {}): WorkerProcess {
    const defaults: Record<string, string> = {
      '--poll-interval': '100ms',
      '--heartbeat-interval': '1s',
      '--stale-after': '3s',
      '--checkpoint-interval': '200ms',
      '--retry-base': '20ms',
      '--delivery-timeout': '2s',
      '--grace': '2s',
    }
    for (let i = 0; i < args.length; i++) if (nth(args, i) in defaults) delete defaults[nth(args, i)]
    const worker = new WorkerProcess(
      {...this.stack.env, ...env},
      [...Object.entries(defaults).flat(), ...args],
      `worker-${++this.count}`,
    )
    this.all.push(worker)
    return worker
  }

  get pids(): number[] {
    return this.all.map((worker) => worker.pid)
  }

  byPid(pid: number | undefined): WorkerProcess | undefined {
    return this.all.find((worker) => worker.pid === pid)
  }

  async assertNoneRunning(): Promise<void> {
    const leftovers = this.all.filter((worker) => worker.running)
    for (const worker of leftovers) {
      worker.signal('SIGCONT')
      worker.signal('SIGKILL')
      await worker.exited
    }
    assert.deepEqual(
      leftovers.map((worker) => worker.name),
      [],
      'every worker process a test starts must have exited by its end',
    )
  }

  async killAll(): Promise<void> {
    for (const worker of this.all) {
      worker.signal('SIGCONT')
      worker.signal('SIGKILL')
    }
    await Promise.all(this.all.map((worker) => worker.exited))
  }
}

/**
 * Runs a test body, then requires that every worker it started has exited (leftovers are killed
 * and the test fails), so no test leaks a worker into the next.
 */
export async function withWorkers(workers: Workers, body: () => Promise<void>): Promise<void> {
  let failed = false
  try {
    await body()
  } catch (error) {
    failed = true
    throw error
  } finally {
    if (failed) await workers.killAll()
    else await workers.assertNoneRunning()
  }
}

// ---------------------------------------------------------------------------------------------
// Which process sent a request: the receiver sees a TCP connection; /proc tells whose it is.

/**
 * Maps each connection a receiver accepts to the pid holding the client end. When the server
 * accepts, the client's socket already exists: /proc/net/tcp gives the inode of the connection
 * 127.0.0.1:clientPort -> 127.0.0.1:serverPort, and the pid whose /proc/<pid>/fd holds
 * socket:[inode] is the sender. Done synchronously in the 'connection' event, while the
 * connection is certainly open. Linux only; every worker in these tests is our own child.
 */
export class ConnectionOwners {
  private readonly owners = new WeakMap<Socket, number | null>()
  unresolved = 0

  constructor(
    receiver: Receiver,
    private readonly candidates: () => number[],
  ) {
    receiver.server.on('connection', (socket: Socket) => {
      const pid = this.lookup(socket.remotePort!, receiver.port)
      if (pid === null) this.unresolved++
      this.owners.set(socket, pid)
    })
  }

  /** The pid that sent a request (from the request's socket), or null when it could not be told. */
  ownerOf(socket: Socket): number | null {
    return this.owners.get(socket) ?? null
  }

  private lookup(clientPort: number, serverPort: number): number | null {
    const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0')
    const local = `0100007F:${hex(clientPort)}`
    const remote = `0100007F:${hex(serverPort)}`
    let inode: string | undefined
    for (const row of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/)
      if (fields[1] === local && fields[2] === remote) {
        inode = fields[9]
        break
      }
    }
    if (!inode || inode === '0') return null
    const target = `socket:[${inode}]`
    for (const pid of this.candidates()) {
      let fds: string[]
      try {
        fds = readdirSync(`/proc/${pid}/fd`)
      } catch {
        continue
      }
      for (const fd of fds) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid
        } catch {
          // closed meanwhile
        }
      }
    }
    return null
  }
}

/** /proc/<pid>/stat state letter: R, S, T (stopped), Z, ... */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return nth(stat.slice(stat.lastIndexOf(')') + 2).split(' '), 0)
  } catch {
    return null
  }
}

/**
 * What every replay test file sets up: a Stack of its own, its Workers, and receivers signing with
 * `secret`. Registers the file's hooks: the stack opens before the first test; after the last,
 * the workers are killed, `beforeCleanup` runs (a file that breaks the stack on purpose puts it
 * back, one with servers of its own stops them), then the receivers close, the file's topics are
 * deleted and the stack closes.
 */
export function replayTestFile(secret: string, options: {beforeCleanup?: () => Promise<void>} = {}) {
  const stack = new Stack()
  const workers = new Workers(stack)
  const receivers: Receiver[] = []
  before(() => stack.open())
  after(async () => {
    await workers.killAll()
    await options.beforeCleanup?.()
    await Promise.all(receivers.map((receiver) => receiver.close().catch(() => {})))
    await deleteTopics(stack.topics).catch(() => {})
    await stack.close()
  })
  return {
    stack,
    workers,
    /**
     * A receiver checking `secret` unless the options name another, closed after the file. An
     * options object is handed over as it is: the receiver reads it per request, so a test may
     * change its crcSecret later.
     */
    async receiver(handlerOrOptions: Handler | Partial<ReceiverOptions> = {}): Promise<Receiver> {
      const options = typeof handlerOrOptions === 'function' ? {handler: handlerOrOptions} : handlerOrOptions
      options.secret ??= secret
      const started = await startReceiver(options as ReceiverOptions)
      receivers.push(started)
      return started
    },
  }
}
