/**
 * The servers' soak: `ingest serve` or `api serve` (one process, spawned as systemd would run it)
 * under steady load for a while, its resident memory and thread count (/proc/<pid>/status)
 * sampled every --every seconds. Prints the series as JSON lines and the growth from the first
 * sample after the warm-up minute to the last.
 *
 *   npx tsx bench/serve-soak.ts --server ingest|api [--minutes 10] [--rate 100] [--every 30]
 *                               [--label name] [--env KEY=VALUE]...
 *
 * ingest: --rate POSTs per second of 10 NDJSON events each (autocannon, 8 connections) to a topic
 * of its own. api: --rate round trips per second (a replay request on a webhook of its own, 202,
 * then its status, 200) over 8 connections; a request per webhook, so the jobs table grows.
 * Needs the local stack (`replayctl dev up`).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {readFileSync} from 'node:fs'

import autocannon from 'autocannon'
import {Pool as HttpPool} from 'undici'

import {accountActivityEvent, webhookIds} from '../src/core/dev/seed.js'
import {openPool} from '../src/core/db/database.js'
import {BIN, BROKERS, cli, dropTopicAndDatabase, machine} from './lib.js'

const args = process.argv.slice(2)
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? (args[at + 1] ?? fallback) : fallback
}
const SERVER = option('server', 'ingest')
const MINUTES = Number(option('minutes', '10'))
const RATE = Number(option('rate', '100'))
const EVERY = Number(option('every', '30'))
const LABEL = option('label', SERVER)
const SERVER_ENV = Object.fromEntries(
  args.flatMap((arg, index) => (arg === '--env' ? [(args[index + 1] ?? '').split('=', 2)] : [])),
) as Record<string, string>
const stamp = Date.now().toString(36)
const topic = `bench_serve_${stamp}`
const database = `bench_serve_${stamp}`
const mysqlUrl = `mysql://root@127.0.0.1:3306/${database}`
const TOKEN = `bench-serve-${stamp}-0123456789`
const env = {
  REPLAYCTL_MYSQL_URL: mysqlUrl,
  REPLAYCTL_BROKERS: BROKERS,
  REPLAYCTL_CONFIG: '/nonexistent/replayctl-bench-config.json',
  REPLAYCTL_INGEST_TOKENS: JSON.stringify([{token: TOKEN, keys: '*'}]),
  REPLAYCTL_API_TOKENS: JSON.stringify([{token: TOKEN, webhooks: '*', rateLimit: 10_000_000}]),
}

function procStatus(pid: number): {rssMb: number; threads: number} {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  return {rssMb: field('VmRSS') / 1024, threads: field('Threads')}
}
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

/** Starts the server and resolves with its URL, read from its JSON log lines. */
function startServer(command: string[]): Promise<{child: ChildProcess; url: string}> {
  const child = spawn(process.execPath, [BIN, ...command, '--port', '0'], {
    env: {...process.env, ...env, ...SERVER_ENV},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  return new Promise((resolve, reject) => {
    const onData = (chunk: string) => {
      log += chunk
      const found = /"address":"([^"]+)"/.exec(log) ?? /Server listening at (http:\/\/[^"]+)/.exec(log)
      if (!found?.[1]) return
      // Keep reading the log lines so the pipe never blocks the server.
      child.stderr!.off('data', onData)
      child.stderr!.resume()
      resolve({child, url: found[1]})
    }
    child.stderr!.setEncoding('utf8').on('data', onData)
    child.on('exit', (code) => reject(new Error(`${command.join(' ')} exited ${code}: ${log.slice(-1000)}`)))
  })
}

const minute = (epochMs: number) => new Date(epochMs).toISOString().replace(/[-T:]/g, '').slice(0, 12)

/**
 * Steady load until `until`; returns the requests answered 2xx and the others by what they got
 * (an HTTP status, "timeout" or "error"), so a refusal under load is told from a failure.
 */
async function load(url: string, until: number): Promise<{ok: number; other: Record<string, number>}> {
  const seconds = Math.max(1, Math.round((until - Date.now()) / 1000))
  if (SERVER === 'ingest') {
    const ids = webhookIds(1000, 1)
    const start = Date.now() - 3_600_000
    const bodies = Array.from({length: 200}, (_, body) =>
      Array.from({length: 10}, (_, index) => {
        const n = body * 10 + index
        return accountActivityEvent(n, ids[n % ids.length] ?? 'w', start + n, 1)
      }).join('\n'),
    )
    let next = 0
    const result = await autocannon({
      url: `${url}/events`,
      connections: 8,
      overallRate: RATE,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          headers: {'content-type': 'application/x-ndjson', authorization: `Bearer ${TOKEN}`},
          setupRequest: (request) => ({...request, body: bodies[next++ % bodies.length]}),
        },
      ],
    })
    const other: Record<string, number> = {timeout: result.timeouts, error: result.errors - result.timeouts}
    for (const [code, {count = 0}] of Object.entries(result.statusCodeStats ?? {}))
      if (!code.startsWith('2')) other[code] = count
    return {ok: result['2xx'], other}
  }
  const http = new HttpPool(url, {connections: 8})
  const headers = {authorization: `Bearer ${TOKEN}`}
  const now = Math.floor(Date.now() / 60_000) * 60_000
  const query = `from_date=${minute(now - 120 * 60_000)}&to_date=${minute(now - 60 * 60_000)}`
  let ok = 0
  const other: Record<string, number> = {}
  const count = (what: string) => (other[what] = (other[what] ?? 0) + 1)
  let index = 0
  const lane = async () => {
    while (Date.now() < until) {
      const started = Date.now()
      const id = `soak-${index++}`
      const submitted = await http.request({
        path: `/1.1/account_activity/replay/webhooks/${id}/subscriptions/all.json?${query}`,
        method: 'POST',
        headers,
      })
      const body = (await submitted.body.json()) as {job_id?: string}
      const status = await http.request({
        path: `/1.1/account_activity/replay/jobs/${body.job_id}.json`,
        method: 'GET',
        headers,
      })
      await status.body.dump()
      if (submitted.statusCode !== 202) count(`submit ${submitted.statusCode}`)
      else if (status.statusCode !== 200) count(`status ${status.statusCode}`)
      else ok++
      // Eight lanes share the rate.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, (8 * 1000) / RATE - (Date.now() - started))))
    }
  }
  await Promise.all(Array.from({length: 8}, lane))
  await http.close()
  return {ok, other}
}

async function main(): Promise<void> {
  await cli(['topic', 'create', topic, '--partitions', '4', '--retention', '1h'], {env})
  if (SERVER === 'api') {
    const pool = await openPool(mysqlUrl, {connectionLimit: 2})
    const ids = Array.from({length: Math.ceil(RATE * MINUTES * 60 * 1.2) + 100}, (_, i) => `soak-${i}`)
    for (let i = 0; i < ids.length; i += 1000)
      await pool.query('INSERT INTO webhooks (id, url, secret) VALUES ?', [
        ids.slice(i, i + 1000).map((id) => [id, 'https://example.com/hook', 'secret']),
      ])
    await pool.end()
  }
  const command =
    SERVER === 'ingest'
      ? ['ingest', 'serve', '-t', topic, '--timestamp-field', 'created_at_ms']
      : ['api', 'serve', '--topic', topic]
  const {child, url} = await startServer(command)
  const pid = child.pid!
  const started = Date.now()
  const until = started + MINUTES * 60_000
  const samples: {minute: number; rssMb: number; threads: number; load: string}[] = []
  const sample = () => {
    const entry = {minute: (Date.now() - started) / 60_000, ...procStatus(pid), load: loadAverage()}
    samples.push(entry)
    console.log(JSON.stringify(entry))
  }
  sample()
  const timer = setInterval(sample, EVERY * 1000)
  let answered: Awaited<ReturnType<typeof load>>
  try {
    answered = await load(url, until)
  } finally {
    clearInterval(timer)
  }
  sample()
  child.kill('SIGTERM')
  await new Promise((resolve) => child.on('exit', resolve))
  await dropTopicAndDatabase(topic, database)
  const warm = samples.find((entry) => entry.minute >= 1) ?? samples[0]
  const last = samples.at(-1)
  if (!warm || !last) return
  const peak = Math.max(...samples.map((entry) => entry.rssMb))
  const growth = (last.rssMb / warm.rssMb - 1) * 100
  const others = Object.entries(answered.other).filter(([, count]) => count > 0)
  const other = others.length === 0 ? '0 other' : others.map(([what, count]) => `${count} ${what}`).join(', ')
  const row =
    `| ${LABEL} | ${MINUTES} min, ${RATE}/s (${answered.ok.toLocaleString('en-US')} ok, ${other}) | ` +
    `${warm.rssMb.toFixed(0)} → ${last.rssMb.toFixed(0)} MB | ${growth.toFixed(1)}% | ${peak.toFixed(0)} MB | ` +
    `${last.threads} | ${last.load} |`
  console.error(`${machine()}`)
  console.log(row)
}

await main()
