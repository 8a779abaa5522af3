import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Pool} from '../src/core/db/database.js'
import type {Consumer, Message} from '../src/core/kafka/client.js'
import {localSettings, resolveSettings, type Settings} from '../src/core/shared/settings.js'
import {loadSecretKey, type SecretKey} from '../src/core/webhooks/secret-key.js'

/**
 * Helpers for tests against the real local stack (`replayctl dev up`, started by scripts/test.sh).
 * Each test file names its own topics and databases with uniqueName(), so files can run in any
 * order and leave nothing another file depends on.
 */
export const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
export const BROKERS = process.env.REPLAYCTL_BROKERS ?? '127.0.0.1:9092'
export const MYSQL_URL = process.env.REPLAYCTL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/replayctl'

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
}

export function testSettings(overrides: Partial<Settings> = {}): Settings {
  return {...resolveSettings({brokers: BROKERS, mysqlUrl: MYSQL_URL}, {}), ...overrides}
}

/** The key the spawned CLI encrypts webhook secrets with: the one `dev up` created. */
export function testSecretKey(): SecretKey {
  return loadSecretKey(testSettings().secretKey)
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON, when it is JSON. */
  json: any
}

/** Runs the built CLI as an operator would, with a clean environment pointing at the local stack. */
export function runCli(
  args: string[],
  options: {env?: Record<string, string>; input?: string | Buffer; timeoutMs?: number} = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REPLAYCTL_BROKERS: BROKERS,
        REPLAYCTL_MYSQL_URL: MYSQL_URL,
        ...(process.env.REPLAYCTL_STATE ? {REPLAYCTL_STATE: process.env.REPLAYCTL_STATE} : {}),
        ...(process.env.REPLAYCTL_CACHE ? {REPLAYCTL_CACHE: process.env.REPLAYCTL_CACHE} : {}),
        REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`replayctl ${args.join(' ')} did not finish within ${options.timeoutMs ?? 60_000} ms`))
    }, options.timeoutMs ?? 60_000)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.stdin.end(options.input ?? '')
    child.on('close', (code) => {
      clearTimeout(timer)
      let json: unknown
      try {
        json = JSON.parse(stdout)
      } catch {
        json = undefined
      }
      resolve({code: code ?? -1, stdout, stderr, json})
    })
  })
}

/** The CLI as a shell command line (each argument quoted), its stdout sent to `stdoutTo` when given. */
export function cliCommand(args: string[], options: {stdoutTo?: string} = {}): string {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`
  const line = [process.execPath, BIN, ...args].map(quote).join(' ')
  return options.stdoutTo === undefined ? line : `${line} > ${quote(options.stdoutTo)}`
}

export interface TerminalRun {
  /** The command's exit code. */
  code: number
  /** Everything the terminal was sent, escape sequences included. */
  output: string
  /** Milliseconds from the start to when `pattern` had been shown whole; undefined if never. */
  shownAt(pattern: RegExp): number | undefined
}

/**
 * Runs a shell command line in a pseudo-terminal of 24 rows and 80 columns (util-linux `script`),
 * with the clean environment of runCli, as an operator at a terminal would.
 */
export function runInTerminal(
  command: string,
  options: {env?: Record<string, string>; timeoutMs?: number} = {},
): Promise<TerminalRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn('script', ['-qfec', `stty rows 24 cols 80; ${command}`, '/dev/null'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TERM: 'xterm-256color',
        REPLAYCTL_BROKERS: BROKERS,
        REPLAYCTL_MYSQL_URL: MYSQL_URL,
        REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${command} did not finish within ${options.timeoutMs ?? 120_000} ms`))
    }, options.timeoutMs ?? 120_000)
    let output = ''
    const arrivals: {ms: number; end: number}[] = []
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      arrivals.push({ms: Date.now() - started, end: output.length})
    })
    child.stderr.resume()
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({
        code: code ?? -1,
        output,
        shownAt: (pattern) => {
          const match = pattern.exec(output)
          if (!match) return undefined
          return arrivals.find((arrival) => arrival.end >= match.index + match[0].length)?.ms
        },
      })
    })
  })
}

/** Every line a terminal was shown, as text: colours dropped, cursor moves and carriage returns split lines. */
export function shownLines(output: string): string[] {
  return output
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split(/\x1b\[[0-9;?]*[A-Za-z]|\r|\n/)
    .filter((text) => text.trim())
}

/**
 * `list[index]`, or a test failure naming the missing index: the checked read noUncheckedIndexedAccess
 * asks for, where a `!` would let a missing element surface later as a confusing TypeError.
 */
export function nth<T>(list: ArrayLike<T>, index: number): T {
  const value = list[index]
  if (value === undefined) assert.fail(`expected an element at index ${index}, found ${list.length} element(s)`)
  return value
}

/** Runs the CLI on a pseudo-terminal (util-linux script), typing `typed`; returns everything it showed. */
export async function onTerminal(args: string[], typed: string): Promise<{code: number | null; output: string}> {
  const child = spawn('script', ['-qec', [process.execPath, BIN, ...args].join(' '), '/dev/null'], {
    env: {...process.env, REPLAYCTL_BROKERS: BROKERS, REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json'},
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk))
  child.stdin.end(typed)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return {code, output}
}

/** Asserts the operator-facing contract for bad input: one line on stderr, no stack trace. */
export function isOneLineError(result: CliResult): boolean {
  const lines = result.stderr.trim().split('\n')
  return lines.length === 1 && nth(lines, 0).startsWith('replayctl: error: ') && !/\n\s+at /.test(result.stderr)
}

/** Runs one of Apache Kafka's own tools (from the jars `dev up` cached), feeding it `input`. */
export async function apacheTool(mainClass: string, args: string[], input?: string): Promise<string> {
  const {ensureKafkaDist} = await import('../src/core/kafka/apache-dist.js')
  const dist = await ensureKafkaDist()
  return new Promise((resolve, reject) => {
    const child = spawn(
      dist.java,
      ['-Xmx256m', `-Dlog4j2.configurationFile=${dist.toolsLog4j}`, '-cp', dist.classpath, mainClass, ...args],
      {stdio: ['pipe', 'pipe', 'pipe']},
    )
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.stdin.end(input ?? '')
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${mainClass} exited ${code}: ${stderr}`)),
    )
  })
}

/** Where node 1 of the local stack keeps a partition's log segments. */
export async function partitionDir(topic: string, partition: number): Promise<string> {
  return join(localSettings().stateDir, 'node-1', 'data', `${topic}-${partition}`)
}

/** Deletes the topics a test file created. */
export async function deleteTopics(topics: string[]): Promise<void> {
  const {connectAdmin} = await import('../src/core/kafka/client.js')
  const admin = await connectAdmin(testSettings())
  try {
    await Promise.all(
      topics.map((topic) => new Promise<void>((resolve) => admin.deleteTopic(topic, 10_000, () => resolve()))),
    )
  } finally {
    admin.disconnect()
  }
}

export interface StockRecord {
  /** null: where the producer's partitioner puts the key */
  partition: number | null
  key: Buffer | null
  value: Buffer | null
  timestamp: number
  headers?: {[name: string]: Buffer | string | null}[]
}

/**
 * Writes records through the client's stock per-record produce() and waits for every delivery
 * report: the path the client patch's batch methods are compared against.
 */
export async function produceStock(
  topic: string,
  count: number,
  recordAt: (index: number) => StockRecord,
): Promise<void> {
  const {connectProducer, disconnect} = await import('../src/core/kafka/client.js')
  const producer = await connectProducer(testSettings(), {extra: {'linger.ms': 5}})
  try {
    let acknowledged = 0
    let failure: unknown = null
    producer.on('delivery-report', (error) => {
      if (error) failure ??= error
      acknowledged++
    })
    producer.setPollInterval(10)
    for (let index = 0; index < count; index++) {
      const record = recordAt(index)
      producer.produce(
        topic,
        record.partition,
        record.value,
        record.key,
        record.timestamp,
        undefined,
        record.headers as never,
      )
    }
    while (acknowledged < count) await new Promise((resolve) => setTimeout(resolve, 20))
    if (failure) throw failure
  } finally {
    await disconnect(producer)
  }
}

/**
 * Every record of partitions 0..partitions-1 of the topic, read from offset 0 to each one's end
 * with `consume` (the stock consume(1000) unless given), sorted by partition and offset.
 */
export async function readToEnd(
  topic: string,
  partitions: number,
  consume?: (consumer: Consumer) => Promise<Message[] | undefined>,
): Promise<Message[]> {
  const {connectConsumer, disconnect} = await import('../src/core/kafka/client.js')
  const consumer = await connectConsumer(testSettings())
  const next =
    consume ??
    ((stock: Consumer) =>
      new Promise<Message[]>((resolve, reject) =>
        stock.consume(1000, (error, batch) => (error ? reject(error) : resolve(batch))),
      ))
  const eofs = new Set<number>()
  consumer.on('partition.eof', (eof: {partition: number}) => eofs.add(eof.partition))
  consumer.assign(Array.from({length: partitions}, (_, partition) => ({topic, partition, offset: 0})))
  consumer.setDefaultConsumeTimeout(500)
  const messages: Message[] = []
  try {
    while (eofs.size < partitions) messages.push(...((await next(consumer)) ?? []))
  } finally {
    await disconnect(consumer)
  }
  return messages.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
}

/** Makes every COMMIT on `target` wait until released: a session stalled inside its transaction. */
export function holdCommits(target: Pool): {reached: Promise<void>; release: () => void} {
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  let reach = (): void => {}
  const reached = new Promise<void>((resolve) => (reach = resolve))
  const getConnection = target.getConnection.bind(target)
  target.getConnection = async () => {
    const connection = await getConnection()
    const query = connection.query.bind(connection) as (...args: unknown[]) => Promise<unknown>
    connection.query = (async (...args: unknown[]) => {
      if (args[0] === 'COMMIT') {
        reach()
        await gate
      }
      return query(...args)
    }) as typeof connection.query
    return connection
  }
  return {reached, release}
}
