/**
 * What a whole replay pays per delivered event on top of the delivery path (bench/delivery.ts):
 * the replay engine's deliver step (src/core/replay/run/deliver.ts: Kafka read, dedup, the window,
 * checkpoint saves) run in this process on one busy webhook's range, CPU per delivered event
 * (process.cpuUsage: all threads, librdkafka's included), three ways:
 *
 *   engine       a client whose sends settle at once: the engine's own cost, saves included
 *   no saves     the same, with checkpoint saves only on the 1 s interval: the difference is what
 *                the saves every (max-ahead + max-in-flight) / 2 deliveries cost. An upper bound:
 *                sends that settle at once outrun MySQL, so here the loop waits for every save and
 *                each one also pays the event loop's wake-up; beside real sends a save overlaps them
 *   http         the real WebhookClient to a node:http receiver in its own process
 *
 * and, apart, the engine's parts: the Kafka read (readScanned with the key filter), the dedup hash
 * and filter (DuplicateFilter.admit) and one checkpoint save (checkpointJob), each per event.
 *
 *   npx tsx bench/replay-engine.ts [--events 300000] [--rounds 3] [--max-in-flight 64] [--max-ahead N]
 *                                  [--builds dirA,dirB] [--write]
 *
 * --builds runs the deliver step of other builds (directories with a built dist/, e.g. a
 * `git archive` of an earlier commit, built) alternating with this one, in the same process and
 * on the same data: before and after in one run. Needs the local stack (`replayctl dev up`).
 */
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {BROKERS, cli, dropTopicAndDatabase, machine, median, nth, writeSection} from './lib.js'
import {openPool} from '../src/core/db/database.js'
import {readScanned, type Message} from '../src/core/kafka/range-reader.js'
import {checkpointJob, claimJob, completeJob, submitJob, type SourcePlan} from '../src/core/replay/store/jobs/index.js'
import {DuplicateFilter} from '../src/core/replay/run/duplicate-filter.js'
import {resolveSettings} from '../src/core/shared/settings.js'
import {addWebhook} from '../src/core/webhooks/store.js'

const args = process.argv.slice(2)
const option = (name: string, fallback: string) =>
  args.includes(`--${name}`) ? nth(args, args.indexOf(`--${name}`) + 1) : fallback
const EVENTS = Number(option('events', '300000'))
const ROUNDS = Number(option('rounds', '3'))
const MAX_IN_FLIGHT = Number(option('max-in-flight', '64'))
const MAX_AHEAD = args.includes('--max-ahead') ? Number(option('max-ahead', '64')) : undefined
const HERE = fileURLToPath(new URL('..', import.meta.url))
const BUILDS = [
  HERE,
  ...(args.includes('--builds')
    ? option('builds', '')
        .split(',')
        .filter(Boolean)
        .map((dir) => resolve(dir))
    : []),
]
const WRITE = args.includes('--write')
const BENCH_SECRET = 'whsec_' + Buffer.alloc(32, 7).toString('base64')
const stamp = Date.now().toString(36)
const topic = `bench_engine_${stamp}`
const database = `bench_engine_${stamp}`
const mysqlUrl = `mysql://root@127.0.0.1:3306/${database}`
const env = {REPLAYCTL_MYSQL_URL: mysqlUrl, REPLAYCTL_BROKERS: BROKERS}

type Mode = 'engine' | 'no saves' | 'http'
const MODES: Mode[] = ['engine', 'no saves', 'http']

/** The engine's modules as one build has them (its dist/, so several builds load side by side). */
async function loadBuild(dir: string) {
  const module = (path: string) => import(resolve(dir, 'dist/core', path))
  return {
    dir,
    context: await module('replay/run/context.js'),
    deliver: await module('replay/run/deliver.js'),
    delivery: await module('replay/delivery/index.js'),
    plan: await module('replay/run/plan.js'),
  }
}
type Build = Awaited<ReturnType<typeof loadBuild>>

/** A worker's settings for one run of the deliver step; 'no saves' only saves on the interval. */
const runSettings = (mode: Mode) => ({
  owner: 'bench',
  heartbeatMs: 5000,
  staleAfterMs: 30_000,
  checkpointMs: 1000,
  maxInFlight: MAX_IN_FLIGHT,
  maxAhead: mode === 'no saves' ? 1_000_000 : MAX_AHEAD,
  chunkSize: 0,
  timeoutMs: 30_000,
  allowPrivate: true,
  partitioner: 'murmur2' as const,
  shutdown: new AbortController().signal,
  force: new AbortController().signal,
})

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

/** Sends settle at once: what is left is the engine. (Stats for builds whose window reads them per event.) */
function instantClient() {
  return {
    signal: undefined,
    stats: {
      requests: 0,
      retries: 0,
      delivered: 0,
      failed: 0,
      gone: 0,
      inFlight: 0,
      bytes: 0,
      latency: {count: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0},
    },
    send: async () => ({outcome: 'delivered', attempts: 1, latencyMs: 0, messageId: ''}),
  }
}

interface Run {
  build: number
  mode: Mode
  delivered: number
  seconds: number
  cpuUs: number
}

async function main(): Promise<void> {
  console.error(`seeding ${topic}: ${EVENTS} events`)
  const seeded = JSON.parse(
    (
      await cli(
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
          '--json',
        ],
        {env},
      )
    ).stdout,
  )
  const webhookId = seeded.busiestWebhooks[0].webhookId as string
  const fromMs = Date.parse(seeded.from) - 1000
  const toMs = Date.now() - 1000
  const settings = resolveSettings({brokers: BROKERS, mysqlUrl})
  const pool = await openPool(mysqlUrl)
  const receiver = await startReceiver()
  // The client below is given its secret directly: the stored webhook needs none.
  await addWebhook(pool, {id: webhookId, url: receiver.url})
  const builds = await Promise.all(BUILDS.map(loadBuild))

  const deliverOnce = async (build: Build, mode: Mode): Promise<Omit<Run, 'build'>> => {
    await submitJob(pool, {webhookId, topic, fromMs, toMs})
    const job = (await claimJob(pool, {owner: 'bench', staleAfterMs: 30_000}))!
    const {run, close} = build.context.openRun(settings, pool, job, runSettings(mode))
    const plan = await build.plan.planJob(run)
    const client =
      mode === 'http'
        ? new build.delivery.WebhookClient({
            url: receiver.url,
            secret: BENCH_SECRET,
            jobId: String(job.id),
            allowPrivate: true,
            maxConnections: MAX_IN_FLIGHT,
            beforeRequest: run.keeper.held,
            source: plan.sources[0],
          })
        : instantClient()
    const cpu = process.cpuUsage()
    const started = performance.now()
    const result = await build.deliver.deliverRange({...run, plan, client})
    const used = process.cpuUsage(cpu)
    const seconds = (performance.now() - started) / 1000
    close()
    if (mode === 'http') await client.close()
    const counters = run.tally.counters()
    const {lease} = run.keeper
    await completeJob(pool, {...lease, checkpointOffset: result.checkpoint, sources: result.sources, counters})
    return {mode, delivered: counters.delivered, seconds, cpuUs: (used.user + used.system) / counters.delivered}
  }

  const runs: Run[] = []
  try {
    // Warm-up: the JIT, the receiver's connections, the broker's page cache.
    for (const build of builds) await deliverOnce(build, 'engine')
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) {
        for (const [index, build] of builds.entries()) {
          const run = {build: index, ...(await deliverOnce(build, mode))}
          runs.push(run)
          console.error(
            `${index === 0 ? 'this build' : build.dir} ${mode}: ${run.cpuUs.toFixed(1)} µs/event, ` +
              `${Math.round(run.delivered / run.seconds).toLocaleString('en-US')} events/s`,
          )
        }
      }
    }
    const parts = await measureParts(settings, pool, topic, webhookId, fromMs, toMs, nth(runs, 0).delivered)
    const summary = builds.map((build, index) => {
      const cpu = (mode: Mode) =>
        median(runs.filter((run) => run.build === index && run.mode === mode).map((run) => run.cpuUs))
      const rate = (mode: Mode) =>
        median(runs.filter((run) => run.build === index && run.mode === mode).map((run) => run.delivered / run.seconds))
      return {
        build: index === 0 ? 'this build' : build.dir,
        engine: cpu('engine'),
        noSaves: cpu('no saves'),
        http: cpu('http'),
        httpRate: rate('http'),
      }
    })
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
    console.log(
      JSON.stringify(
        {
          events: nth(runs, 0).delivered,
          maxInFlight: MAX_IN_FLIGHT,
          maxAhead: MAX_AHEAD ?? 'default',
          summary,
          parts,
          load,
        },
        null,
        2,
      ),
    )
    if (WRITE) write(summary, parts, nth(runs, 0).delivered)
  } finally {
    receiver.stop()
    await pool.end()
    await dropTopicAndDatabase(topic, database)
  }
}

/** The engine's parts on their own, per event of the busy webhook. */
async function measureParts(
  settings: ReturnType<typeof resolveSettings>,
  pool: Awaited<ReturnType<typeof openPool>>,
  topic: string,
  webhookId: string,
  fromMs: number,
  toMs: number,
  delivered: number,
) {
  await submitJob(pool, {webhookId, topic, fromMs, toMs})
  const claimed = (await claimJob(pool, {owner: 'bench', staleAfterMs: 30_000}))!
  const build = await loadBuild(HERE)
  const {run, close} = build.context.openRun(settings, pool, claimed, runSettings('engine'))
  const {lease} = run.keeper
  const plan = await build.plan.planJob(run)
  close()
  const source = nth<SourcePlan>(plan.sources, 0)
  // The read, with the key filter the engine uses.
  const messages: Message[] = []
  let cpu = process.cpuUsage()
  for await (const batch of readScanned(
    settings,
    topic,
    {partition: source.partition, start: source.startOffset, end: source.endOffset},
    {key: Buffer.from(webhookId)},
  ))
    messages.push(...batch.messages)
  let used = process.cpuUsage(cpu)
  const readUs = (used.user + used.system) / delivered
  // Dedup: the hash and the filter, as deliverRange admits each event.
  cpu = process.cpuUsage()
  const dedup = new DuplicateFilter()
  for (const message of messages) dedup.admit(message)
  used = process.cpuUsage(cpu)
  const dedupUs = (used.user + used.system) / delivered
  // One checkpoint save, as the engine writes it.
  const saves = 300
  cpu = process.cpuUsage()
  for (let index = 0; index < saves; index++) {
    await checkpointJob(pool, {
      ...lease,
      checkpointOffset: source.startOffset + index,
      sources: [{...source, checkpointOffset: source.startOffset + index}],
      counters: {scanned: index, matched: index, delivered: index, duplicates: 0, failed: 0},
    })
  }
  used = process.cpuUsage(cpu)
  const saveUs = (used.user + used.system) / saves
  await completeJob(pool, {
    ...lease,
    checkpointOffset: source.endOffset,
    sources: [{...source, checkpointOffset: source.endOffset}],
  })
  return {readUs, dedupUs, saveUs}
}

function write(
  summary: {build: string; engine: number; noSaves: number; http: number; httpRate: number}[],
  parts: {readUs: number; dedupUs: number; saveUs: number},
  delivered: number,
): void {
  const us = (value: number) => `${value.toFixed(1)} µs`
  const saveEvery = Math.floor(((MAX_AHEAD ?? Math.max(64, MAX_IN_FLIGHT)) + MAX_IN_FLIGHT) / 2)
  const rows = summary.map(
    (entry) =>
      `| ${entry.build} | ${us(entry.engine)} | ${us(entry.noSaves)} | ${us(entry.engine - entry.noSaves)} | ` +
      `${us(entry.http)} | ${Math.round(entry.httpRate).toLocaleString('en-US')}/s |`,
  )
  writeSection(
    'replay-engine',
    `## Replay engine: what a whole replay adds to the delivery path (issue #9 item 4)

Measured ${new Date().toISOString()} on ${machine()}, load average \
${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}; one local broker, MariaDB. The deliver step \
(src/core/replay/run/deliver.ts) of one busy webhook's replay, ${delivered.toLocaleString('en-US')} events, run in \
process, \`--max-in-flight ${MAX_IN_FLIGHT}\`${MAX_AHEAD === undefined ? '' : ` \`--max-ahead ${MAX_AHEAD}\``}; CPU \
per delivered event (process.cpuUsage: every thread, librdkafka's included), median of ${ROUNDS}.
Reproduce: \`npx tsx bench/replay-engine.ts --events ${EVENTS} --rounds ${ROUNDS}\` (with the stack up).

| build | engine (sends settle at once) | without the count-driven saves | so the saves (one every ${saveEvery} \
deliveries) | with HTTP to a node:http receiver | rate with HTTP (loaded) |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

With sends that settle at once the loop outruns MySQL and waits for every save, so the saves column also counts the \
event loop's wake-up after each: an upper bound on what they cost beside real sends, which they overlap.

The engine's parts on their own, per delivered event: the Kafka read with the key filter ${us(parts.readUs)}, the \
dedup hash and filter ${us(parts.dedupUs)}; one checkpoint save, written and waited for, ${us(parts.saveUs)} of CPU \
(${us(parts.saveUs / saveEvery)} per event at one save every ${saveEvery} deliveries). The delivery path alone \
(signatures, socket work, undici, the window) is the \`delivery\` section.`,
  )
}

await main()
