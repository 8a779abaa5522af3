/**
 * The worker soak: ONE long-lived `replay worker` process (spawned as systemd would run it,
 * `node bin/run.js replay worker ...`) given the same busy webhook's replay N times in a row, to a
 * receiver on 127.0.0.1 in its own process. After each job (once the worker is idle again) it
 * samples the worker's resident memory and thread count (/proc/<pid>/status) and its V8 heap and
 * external memory (the worker's own /metrics, prom-client's default metrics). Prints the series
 * as JSON lines and a summary: RSS after the warm-up, at the end, and growth over the jobs after
 * the warm-up (the target: at most 10%, and under 256 MB).
 *
 *   npx tsx bench/worker-soak.ts [--events 150000] [--jobs 100] [--warmup 5] [--max-in-flight 8]
 *                                [--label name] [--node-options "..."] [--env KEY=VALUE]...
 *                                [--heap-snapshots 1,10,30]
 *
 * --node-options and --env go to the worker only (e.g. --env MALLOC_ARENA_MAX=2, or
 * --node-options --max-semi-space-size=...). --heap-snapshots writes a V8 heap snapshot of the
 * worker after those jobs (node --heapsnapshot-signal=SIGUSR2), to compare with bench/heap-diff.ts
 * (writing one costs the worker tens of MB of resident memory for good: a series with snapshots
 * is not a clean series). Each run keeps its series (series.json), its summary row (row.md, for
 * the worker-soak section of RESULTS.md) and its snapshots in bench/out/worker-soak/<label>/.
 * Needs the local stack (`replayctl dev up`).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {fileURLToPath} from 'node:url'

import {BIN, BROKERS, cliJson, dropTopicAndDatabase, machine} from './lib.js'
import {openPool} from '../src/core/db/database.js'
import {getJob, submitJob} from '../src/core/replay/store/jobs/index.js'

const args = process.argv.slice(2)
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? (args[at + 1] ?? fallback) : fallback
}
const EVENTS = Number(option('events', '150000'))
const JOBS = Number(option('jobs', '100'))
const WARMUP = Number(option('warmup', '5'))
const MAX_IN_FLIGHT = Number(option('max-in-flight', '8'))
const LABEL = option('label', 'this build')
const NODE_OPTIONS = option('node-options', '').split(' ').filter(Boolean)
const WORKER_ENV = Object.fromEntries(
  args.flatMap((arg, index) => (arg === '--env' ? [(args[index + 1] ?? '').split('=', 2)] : [])),
) as Record<string, string>
const SNAPSHOTS = new Set(option('heap-snapshots', '').split(',').filter(Boolean).map(Number))
const OUT = fileURLToPath(new URL(`./out/worker-soak/${LABEL.replace(/\W+/g, '-')}/`, import.meta.url))

const stamp = Date.now().toString(36)
const topic = `bench_soak_${stamp}`
const database = `bench_soak_${stamp}`
const env = {
  REPLAYCTL_MYSQL_URL: `mysql://root@127.0.0.1:3306/${database}`,
  REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1',
  REPLAYCTL_BROKERS: BROKERS,
}

/** The receiver runs in its own process: its sockets and buffers are not the worker's nor ours. */
async function startReceiver(): Promise<{url: string; stop: () => void}> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
    const http = require('node:http')
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200).end()) })
    server.keepAliveTimeout = 60000
    server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'))
  `,
    ],
    {stdio: ['ignore', 'pipe', 'inherit']},
  )
  const [port] = (await once(child.stdout!, 'data')) as [Buffer]
  return {url: `http://127.0.0.1:${port.toString().trim()}/webhook`, stop: () => child.kill()}
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

function procStatus(pid: number): {rssMb: number; threads: number} {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  return {rssMb: field('VmRSS') / 1024, threads: field('Threads')}
}

async function scrape(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const wanted = ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes']
  const values: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const [name, value] = line.split(' ')
    const bare = name?.replace(/^replayctl_/, '')
    if (bare && value && wanted.includes(bare)) values[bare] = Number(value)
  }
  return values
}

interface Sample {
  job: number
  seconds: number
  delivered: number
  rssMb: number
  heapUsedMb: number
  heapTotalMb: number
  externalMb: number
  threads: number
  load: string
}

const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

async function main(): Promise<void> {
  console.error(`seeding ${topic}: ${EVENTS} events`)
  const seeded = await cliJson(
    [
      'dev',
      'seed',
      '--topic',
      topic,
      '--events',
      String(EVENTS),
      '--webhooks',
      '2000',
      '--days',
      '4',
      '--partitions',
      '12',
      '--seed',
      '7',
    ],
    env,
  )
  const webhookId = seeded.busiestWebhooks[0].webhookId as string
  const receiver = await startReceiver()
  await cliJson(['webhook', 'add', webhookId, '--url', receiver.url], env)
  const fromMs = Date.parse(seeded.from) - 1000
  const toMs = Date.now() - 1000
  const pool = await openPool(env.REPLAYCTL_MYSQL_URL)
  const metricsPort = await freePort()
  rmSync(OUT, {recursive: true, force: true})
  mkdirSync(OUT, {recursive: true})
  const nodeOptions = [...NODE_OPTIONS, ...(SNAPSHOTS.size ? ['--heapsnapshot-signal=SIGUSR2'] : [])]
  const worker: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeOptions,
      BIN,
      'replay',
      'worker',
      '--concurrency',
      '1',
      '--max-in-flight',
      String(MAX_IN_FLIGHT),
      '--poll-interval',
      '200ms',
      '--metrics-port',
      String(metricsPort),
      '--json',
    ],
    {env: {...process.env, ...env, ...WORKER_ENV}, stdio: ['ignore', 'ignore', 'inherit'], cwd: OUT},
  )
  const pid = worker.pid!
  const samples: Sample[] = []
  try {
    // Up once its metrics answer (a loaded machine takes seconds to start node and oclif).
    for (let tries = 0; !(await scrape(metricsPort).catch(() => undefined)); tries++) {
      if (tries > 120) throw new Error('the worker did not serve /metrics within a minute')
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    const idle = procStatus(pid)
    console.error(`idle worker: ${idle.rssMb.toFixed(1)} MB resident, ${idle.threads} threads`)
    for (let job = 1; job <= JOBS; job++) {
      const submitted = await submitJob(pool, {webhookId, topic, fromMs, toMs})
      let status = await getJob(pool, submitted.id)
      while (!['COMPLETED', 'FAILED', 'CANCELLED'].includes(status.state)) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        status = await getJob(pool, submitted.id)
      }
      if (status.state !== 'COMPLETED')
        throw new Error(`job ${submitted.id} ended ${status.state}: ${status.lastError}`)
      // The worker's run is over a moment after the row says so (the client closes, the run ends).
      await new Promise((resolve) => setTimeout(resolve, 500))
      const metrics = await scrape(metricsPort)
      const sample: Sample = {
        job,
        seconds: (Date.parse(status.finishedAt ?? '') - Date.parse(status.startedAt ?? '')) / 1000,
        delivered: status.delivered,
        ...procStatus(pid),
        heapUsedMb: (metrics.nodejs_heap_size_used_bytes ?? NaN) / 2 ** 20,
        heapTotalMb: (metrics.nodejs_heap_size_total_bytes ?? NaN) / 2 ** 20,
        externalMb: (metrics.nodejs_external_memory_bytes ?? NaN) / 2 ** 20,
        load: loadAverage(),
      }
      samples.push(sample)
      console.log(JSON.stringify(sample))
      if (SNAPSHOTS.has(job)) await heapSnapshot(worker, job)
    }
  } finally {
    worker.kill('SIGTERM')
    await once(worker, 'exit')
    receiver.stop()
    await pool.end()
    await dropTopicAndDatabase(topic, database)
  }
  writeFileSync(`${OUT}series.json`, JSON.stringify(samples, null, 1))
  report(samples)
}

/** SIGUSR2 makes the worker write Heap.<date>.<pid>.<n>.heapsnapshot into its cwd; renamed by job. */
async function heapSnapshot(worker: ChildProcess, job: number): Promise<void> {
  const before = new Set(readdirSync(OUT))
  worker.kill('SIGUSR2')
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const made = readdirSync(OUT).find((name) => !before.has(name) && name.endsWith('.heapsnapshot'))
    // Written in one go by V8, but the name appears first: wait until the size stops changing.
    if (made) {
      const size = () => readFileSync(`${OUT}${made}`).length
      let last = -1
      while (last !== size()) {
        last = size()
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
      renameSync(`${OUT}${made}`, `${OUT}after-job-${job}.heapsnapshot`)
      console.error(`heap snapshot after job ${job}: ${OUT}after-job-${job}.heapsnapshot`)
      return
    }
  }
}

function report(samples: Sample[]): void {
  const at = (job: number) => samples.find((sample) => sample.job === job)
  const warm = at(WARMUP) ?? samples[0]
  const last = samples.at(-1)
  if (!warm || !last) return
  const peak = Math.max(...samples.map((sample) => sample.rssMb))
  // One sample swings by tens of MB with the batches the garbage collector has not freed yet: the
  // growth compares the mean of the 5 jobs after the warm-up with the mean of the last 5.
  const mean = (list: Sample[]) => list.reduce((sum, sample) => sum + sample.rssMb, 0) / list.length
  const early = mean(samples.filter((sample) => sample.job > WARMUP).slice(0, 5))
  const late = mean(samples.slice(-5))
  const growth = (late / early - 1) * 100
  const perJob = (late - early) / Math.max(1, last.job - WARMUP - 5)
  const pick = [1, WARMUP, 10, 25, 50, 75, 100, last.job].filter(
    (job, index, all) => all.indexOf(job) === index && at(job),
  )
  const mb = (value: number) => value.toFixed(0)
  const row =
    `| ${LABEL} | ${last.job} x ${last.delivered.toLocaleString('en-US')} events | ` +
    pick.map((job) => `${job}: ${mb(at(job)!.rssMb)}`).join(', ') +
    ` | ${mb(early)} → ${mb(late)} | ${mb(warm.heapUsedMb)} → ${mb(last.heapUsedMb)} | ` +
    `${growth.toFixed(1)}% (${perJob.toFixed(2)} MB/job) | ${mb(peak)} MB | ${last.threads} | ${last.load} |`
  console.error(
    `RSS ${early.toFixed(1)} MB (mean of jobs ${WARMUP + 1}-${WARMUP + 5}) -> ${late.toFixed(1)} MB (last 5): ` +
      `${growth.toFixed(1)}% (${perJob.toFixed(2)} MB per job), peak ${peak.toFixed(1)} MB; heap used ` +
      `${warm.heapUsedMb.toFixed(1)} -> ${last.heapUsedMb.toFixed(1)} MB, external ${warm.externalMb.toFixed(1)} -> ` +
      `${last.externalMb.toFixed(1)} MB, ${last.threads} threads`,
  )
  console.log(row)
  writeFileSync(`${OUT}row.md`, `${row}\n`)
  console.error(`machine: ${machine()}`)
}

await main()
