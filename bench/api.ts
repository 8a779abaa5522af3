/**
 * The Replay API benchmark: 50 concurrent clients (undici) each doing round trips of
 * POST .../subscriptions/all.json (a new replay job, 202) + GET .../jobs/:id.json (its status)
 * against `replayctl api serve`, each client on its own webhooks (one active job per webhook).
 * Side by side: GET /healthz (one SELECT 1 per request: the server's floor on this machine) with
 * the same 50 clients, and the same round trip through the CLI (`replay submit` + `replay status`,
 * a process each), which is what a customer of the API would otherwise script. Writes the `api`
 * section of RESULTS.md.
 *
 *   npx tsx bench/api.ts [--clients 50] [--round-trips 2000]
 *
 * Needs the local stack (`replayctl dev up`).
 */
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {loadavg} from 'node:os'

import {Pool as HttpPool} from 'undici'

import {openPool} from '../src/core/db/database.js'
import {connectAdmin} from '../src/core/kafka/client.js'
import {resolveSettings} from '../src/core/shared/settings.js'
import {BIN, BROKERS, cli, machine, median, nth, writeSection} from './lib.js'

const arg = (name: string, fallback: number) =>
  Number(process.argv[process.argv.indexOf(name) + 1] || fallback) || fallback
const clients = arg('--clients', 50)
const roundTrips = arg('--round-trips', 2000)
const cliRoundTrips = 5
const stamp = Date.now().toString(36)
const topic = `bench_api_${stamp}`
const database = `bench_api_${stamp}`
const mysqlUrl = `mysql://root@127.0.0.1:3306/${database}`
const TOKEN = `bench-token-${stamp}-0123456789`
const env = {
  REPLAYCTL_MYSQL_URL: mysqlUrl,
  REPLAYCTL_BROKERS: BROKERS,
  REPLAYCTL_CONFIG: '/nonexistent/replayctl-bench-config.json',
}

const percentile = (sorted: number[], p: number) =>
  nth(sorted, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))
const ms = (value: number) => `${value.toFixed(1)} ms`
/** CPU seconds (user + system) a process has used so far: a figure other load on the machine does not inflate. */
const cpuSeconds = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const minute = (epochMs: number) => new Date(epochMs).toISOString().replace(/[-T:]/g, '').slice(0, 12)

async function main(): Promise<void> {
  const settings = resolveSettings({brokers: BROKERS, mysqlUrl}, {})
  await cli(['topic', 'create', topic, '--partitions', '1'], {env})
  const pool = await openPool(mysqlUrl, {connectionLimit: 2})
  // Webhooks straight into the registry: the benchmark measures replay requests, not CRC checks.
  const ids = Array.from({length: roundTrips + cliRoundTrips}, (_, i) => `bench-${i}`)
  for (let i = 0; i < ids.length; i += 500) {
    await pool.query('INSERT INTO webhooks (id, url, secret) VALUES ?', [
      ids.slice(i, i + 500).map((id) => [id, 'https://example.com/hook', 'secret']),
    ])
  }

  const server = spawn(process.execPath, [BIN, 'api', 'serve', '--port', '0', '--topic', topic], {
    env: {
      ...process.env,
      ...env,
      REPLAYCTL_API_TOKENS: JSON.stringify([{token: TOKEN, webhooks: '*', rateLimit: 10_000_000}]),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk
      const found = /Server listening at (http:\/\/[^"]+)/.exec(log)
      if (found) resolve(nth(found, 1))
    })
    server.on('exit', (code) => reject(new Error(`api serve exited ${code}: ${log.slice(-1000)}`)))
  })
  // The server logs two JSON lines per request; keep reading them so the pipe never blocks it.
  server.stderr!.removeAllListeners('data').resume()

  const http = new HttpPool(url, {connections: clients, pipelining: 1})
  const headers = {authorization: `Bearer ${TOKEN}`}
  const now = Math.floor(Date.now() / 60_000) * 60_000
  const query = `from_date=${minute(now - 120 * 60_000)}&to_date=${minute(now - 60 * 60_000)}`

  const run = async (total: number, once: (i: number) => Promise<void>) => {
    const latencies: number[] = []
    let next = 0
    const cpuBefore = cpuSeconds(server.pid!)
    const started = performance.now()
    await Promise.all(
      Array.from({length: clients}, async () => {
        for (let i = next++; i < total; i = next++) {
          const t0 = performance.now()
          await once(i)
          latencies.push(performance.now() - t0)
        }
      }),
    )
    const seconds = (performance.now() - started) / 1000
    const cpuMs = ((cpuSeconds(server.pid!) - cpuBefore) * 1000) / total
    latencies.sort((a, b) => a - b)
    return {
      perSecond: total / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1)!,
      cpuMs,
    }
  }
  const expect = async (response: Awaited<ReturnType<typeof http.request>>, status: number) => {
    const text = await response.body.text()
    if (response.statusCode !== status) throw new Error(`expected ${status}, got ${response.statusCode}: ${text}`)
    return text
  }

  // Warm-up: connections, the topic check, prepared paths.
  await run(clients, async () => void (await expect(await http.request({path: '/healthz', method: 'GET'}), 200)))
  const healthz = await run(
    roundTrips,
    async () => void (await expect(await http.request({path: '/healthz', method: 'GET'}), 200)),
  )
  const api = await run(roundTrips, async (i) => {
    const submitted = JSON.parse(
      await expect(
        await http.request({
          path: `/1.1/account_activity/replay/webhooks/${ids[i]}/subscriptions/all.json?${query}`,
          method: 'POST',
          headers,
        }),
        202,
      ),
    )
    await expect(
      await http.request({path: `/1.1/account_activity/replay/jobs/${submitted.job_id}.json`, method: 'GET', headers}),
      200,
    )
  })

  const cliTimes: number[] = []
  for (let i = 0; i < cliRoundTrips; i++) {
    const id = nth(ids, roundTrips + i)
    const started = performance.now()
    const submitted = await cli(
      [
        'replay',
        'submit',
        '--webhook-id',
        id,
        '--from',
        minute(now - 120 * 60_000),
        '--to',
        minute(now - 60 * 60_000),
        '--topic',
        topic,
        '--json',
      ],
      {env},
    )
    await cli(['replay', 'status', String(JSON.parse(submitted.stdout).id), '--json'], {env})
    cliTimes.push(performance.now() - started)
  }
  const cliRoundTrip = median(cliTimes)

  server.kill('SIGTERM')
  const exitCode = await new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)))
  await http.close()
  const [[{jobs}]] = (await pool.query('SELECT COUNT(*) AS jobs FROM replay_jobs')) as unknown as [[{jobs: number}]]
  await pool.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await pool.end()
  const admin = await connectAdmin(settings)
  await new Promise<void>((resolve) => admin.deleteTopic(topic, 30_000, () => resolve()))
  admin.disconnect()

  const markdown = `
## Replay API: submit + status round trips over HTTP

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker, MariaDB; \`replayctl api serve\` (one \
process, logging two JSON lines per request) and the load generator (undici, ${clients} concurrent clients, \
keep-alive) on the same 2 cores. A round trip is \`POST .../webhooks/:id/subscriptions/all.json\` (a new job, 202) \
then \`GET .../replay/jobs/:id.json\` (its status, 200), each client on webhooks of its own; \
${roundTrips.toLocaleString('en-US')} round trips, ${jobs.toLocaleString('en-US')} jobs in the database at the end. \
The server exited ${exitCode} after SIGTERM. Load average when done: ${nth(loadavg(), 0).toFixed(1)} (other work \
shares the machine; figures under load are lower bounds).
Reproduce: \`npx tsx bench/api.ts --clients ${clients} --round-trips ${roundTrips}\` (with the stack up).

| measured | per second | p50 | p99 | max | server CPU each | reference | ratio |
| --- | --- | --- | --- | --- | --- | --- | --- |
| API round trip (submit + status), ${clients} clients | ${api.perSecond.toFixed(0)} round trips/s | ${ms(api.p50)} | \
${ms(api.p99)} | ${ms(api.max)} | ${ms(api.cpuMs)} | CLI \`replay submit\` + \`replay status\`: ${ms(cliRoundTrip)} \
per round trip (median of ${cliRoundTrips}, one at a time) | ${((api.perSecond * cliRoundTrip) / 1000).toFixed(0)}x \
the CLI's round trips/s |
| GET /healthz (one SELECT 1), ${clients} clients | ${healthz.perSecond.toFixed(0)} requests/s | ${ms(healthz.p50)} | \
${ms(healthz.p99)} | ${ms(healthz.max)} | ${ms(healthz.cpuMs)} | the server's floor | an API round trip costs \
${(healthz.perSecond / api.perSecond).toFixed(1)} health checks |

A submit is four statements (the database clock, the webhook, the insert the unique key guards, the row read back) and \
a status one (the row); the topic check is cached for 10 s. The CLI pays a process start, a pool with migrations check \
and a Kafka admin connection per command. "Server CPU each" is the server process's user + system CPU time divided by \
the requests (or round trips) of the run, from /proc: on an idle 2-core machine the server alone could answer about \
${(1000 / api.cpuMs).toFixed(0)} round trips/s per core, the run above used about \
${((api.perSecond * api.cpuMs) / 10).toFixed(0)}% of one core in the server, so its throughput was set by the \
machine's other load and MariaDB rather than by the API process's CPU.
`
  writeSection('api', markdown)
  process.stdout.write(markdown)
}

await main()
