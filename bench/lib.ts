import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {createWriteStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {fileURLToPath} from 'node:url'

import {accountActivityEvent, webhookIds} from '../src/core/dev/seed.js'
import {connectAdmin} from '../src/core/kafka/client.js'
import {resolveSettings} from '../src/core/shared/settings.js'

/** Shared pieces of the benchmarks: timing whole commands and writing bench/RESULTS.md. */
export const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
export const BROKERS = process.env.REPLAYCTL_BROKERS ?? '127.0.0.1:9092'
const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url))

export interface Timed {
  seconds: number
  stdout: string
  maxRssKb: number
  /** User plus system CPU time: on a loaded machine a steadier measure than wall time. */
  cpuSeconds: number
}

/** Runs a command to completion (stdout captured unless sent to /dev/null) and times it. */
export function timed(
  command: string,
  args: string[],
  options: {input?: string; discardStdout?: boolean; env?: NodeJS.ProcessEnv} = {},
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn('/usr/bin/time', ['-f', '%M %U %S', command, ...args], {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', options.discardStdout ? 'ignore' : 'pipe', 'pipe'],
      env: {...process.env, ...options.env},
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    if (options.input !== undefined) child.stdin!.end(options.input)
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`))
      const [maxRssKb, user, system] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number)
      resolve({seconds, stdout, maxRssKb: maxRssKb!, cpuSeconds: user! + system!})
    })
  })
}

/** `list[index]`, or an error naming the missing index (in place of a `!` non-null assertion). */
export function nth<T>(list: ArrayLike<T>, index: number): T {
  const value = list[index]
  if (value === undefined) throw new Error(`expected an element at index ${index}, found ${list.length} element(s)`)
  return value
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return nth(sorted, Math.floor(sorted.length / 2))
}

export async function medianOf<T extends Timed>(runs: number, run: () => Promise<T>): Promise<T> {
  const results: T[] = []
  for (let i = 0; i < runs; i++) results.push(await run())
  const seconds = median(results.map((result) => result.seconds))
  return {...results.find((result) => result.seconds === seconds)!, seconds}
}

export function cli(args: string[], options: Parameters<typeof timed>[2] = {}): Promise<Timed> {
  return timed(process.execPath, [BIN, ...args], options)
}

export function machine(): string {
  return (
    `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ` +
    `${process.version}`
  )
}

/** Replaces the section between `<!-- name:start -->` and `<!-- name:end -->` in RESULTS.md. */
export function writeSection(name: string, markdown: string): void {
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const current = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n'
  const block = `${start}\n${markdown.trim()}\n${end}`
  const next = current.includes(start)
    ? current.slice(0, current.indexOf(start)) + block + current.slice(current.indexOf(end) + end.length)
    : `${current.trimEnd()}\n\n${block}\n`
  writeFileSync(RESULTS, next)
}

/**
 * `events` Account Activity events over the past day, written once as NDJSON (for `log produce`)
 * and once as kcat's `key<TAB>value` lines; `webhookFor(index)` picks each event's webhook.
 */
export async function writeEventFiles(
  name: string,
  events: number,
  webhookFor: (index: number, ids: string[]) => string = (index, ids) => nth(ids, index % ids.length),
): Promise<{ndjson: string; keyed: string; bytes: number}> {
  const out = fileURLToPath(new URL('./out/', import.meta.url))
  mkdirSync(out, {recursive: true})
  const ndjson = `${out}${name}.ndjson`
  const keyed = `${out}${name}.keyed`
  const json = createWriteStream(ndjson)
  const tabbed = createWriteStream(keyed)
  const ids = webhookIds(1000, 1)
  const start = Date.now() - 86_400_000
  for (let index = 0; index < events; index++) {
    const webhookId = webhookFor(index, ids)
    const line = accountActivityEvent(index, webhookId, start + index, 1)
    if (!json.write(`${line}\n`)) await once(json, 'drain')
    if (!tabbed.write(`${webhookId}\t${line}\n`)) await once(tabbed, 'drain')
  }
  json.end()
  tabbed.end()
  await Promise.all([once(json, 'finish'), once(tabbed, 'finish')])
  return {ndjson, keyed, bytes: statSync(ndjson).size}
}

export async function deleteTopics(names: string[]): Promise<void> {
  const admin = await connectAdmin(resolveSettings({brokers: BROKERS}))
  await Promise.all(
    names.map((topic) => new Promise<void>((resolve) => admin.deleteTopic(topic, 30_000, () => resolve()))),
  )
  admin.disconnect()
}

/** A benchmark's own topic and database, gone once it has measured. */
export async function dropTopicAndDatabase(topic: string, database: string): Promise<void> {
  await deleteTopics([topic])
  const mysql = await import('mysql2/promise')
  const connection = await mysql.createConnection({host: '127.0.0.1', port: 3306, user: 'root'})
  await connection.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await connection.end()
}

/** `replayctl <args> --json` with `env`, its output parsed. */
export async function cliJson(args: string[], env: NodeJS.ProcessEnv): Promise<any> {
  return JSON.parse((await cli([...args, '--json'], {env})).stdout)
}

/**
 * Submits a replay, polls `replay status` every `pollMs` until the job ends, and returns its last
 * status; throws unless the job COMPLETED (a benchmark measures only runs that delivered it all).
 */
export async function replayUntilDone(
  env: NodeJS.ProcessEnv,
  replay: {webhookId: string; fromMs: number; toMs: number; topic: string},
  pollMs: number,
): Promise<any> {
  const job = await cliJson(
    [
      'replay',
      'submit',
      '--webhook-id',
      replay.webhookId,
      '--from',
      String(replay.fromMs),
      '--to',
      String(replay.toMs),
      '--topic',
      replay.topic,
    ],
    env,
  )
  for (;;) {
    const status = await cliJson(['replay', 'status', String(job.id)], env)
    if (status.terminal) {
      if (status.state !== 'COMPLETED') throw new Error(`job ${job.id} ended ${status.state}: ${status.lastError}`)
      return status
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}
