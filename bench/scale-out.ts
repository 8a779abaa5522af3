/**
 * Scale-out benchmark: one quiet webhook's replay over a large one-partition range (nearly all
 * reading, little delivering), run by 1, 2 and 4 worker processes that share its scan chunks,
 * beside the same job unchunked and kcat reading the same offsets. Writes the `scale-out` section
 * of RESULTS.md.
 *
 *   npx tsx bench/scale-out.ts [--events 600000] [--chunk 50000] [--rounds 3]
 *
 * Rounds run every setting once each, interleaved; the table shows each setting's median job time
 * (one run's time swings with whatever else the 2 cores are doing, by more than a worker gains).
 *
 * Needs the local stack (`replayctl dev up`) and kcat.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

import {webhookIds} from '../src/core/dev/seed.js'
import {
  BIN,
  BROKERS,
  cliJson,
  dropTopicAndDatabase,
  machine,
  median,
  nth,
  replayUntilDone,
  timed,
  writeSection,
} from './lib.js'

const arg = (name: string, fallback: number) =>
  Number(process.argv[process.argv.indexOf(name) + 1] || fallback) || fallback
const events = arg('--events', 600_000)
const chunk = arg('--chunk', 50_000)
const rounds = arg('--rounds', 3)
const stamp = Date.now().toString(36)
const topic = `bench_scale_${stamp}`
const database = `bench_scale_${stamp}`
const env = {
  REPLAYCTL_MYSQL_URL: `mysql://root@127.0.0.1:3306/${database}`,
  REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1',
  REPLAYCTL_BROKERS: BROKERS,
}

const json = (args: string[]) => cliJson(args, env)

function startWorker(chunkSize: number): ChildProcess {
  return spawn(
    process.execPath,
    [
      BIN,
      'replay',
      'worker',
      '--concurrency',
      '1',
      '--poll-interval',
      '100ms',
      '--scan-chunk',
      String(chunkSize),
      '--json',
    ],
    {env: {...process.env, ...env}, stdio: 'ignore'},
  )
}

interface Run {
  seconds: number
  scanned: number
  delivered: number
  startOffset: number
  endOffset: number
}

/** Submits the replay with `workers` processes running and returns the job's own time. */
async function replay(
  webhookId: string,
  fromMs: number,
  toMs: number,
  workers: number,
  chunkSize: number,
): Promise<Run> {
  const processes = Array.from({length: workers}, () => startWorker(chunkSize))
  await new Promise((resolve) => setTimeout(resolve, 1500))
  let status: any
  try {
    status = await replayUntilDone(env, {webhookId, fromMs, toMs, topic}, 200)
  } finally {
    for (const worker of processes) worker.kill('SIGTERM')
    await Promise.all(processes.map((worker) => once(worker, 'exit')))
  }
  return {
    seconds: (Date.parse(status.finishedAt) - Date.parse(status.startedAt)) / 1000,
    scanned: status.scanned,
    delivered: status.delivered,
    startOffset: status.startOffset,
    endOffset: status.endOffset,
  }
}

async function main() {
  console.error(`seeding ${topic}: ${events} events in one partition`)
  const seeded = await json([
    'dev',
    'seed',
    '--topic',
    topic,
    '--events',
    String(events),
    '--webhooks',
    '2000',
    '--days',
    '4',
    '--partitions',
    '1',
    '--seed',
    '11',
  ])
  // Zipf-skewed: the last id is among the quietest.
  const quiet = webhookIds(2000, 11).at(-1)!
  const server = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  await json(['webhook', 'add', quiet, '--url', `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`])
  const from = Date.parse(seeded.from) - 1000
  const to = Date.now() - 1000

  const settings = [{workers: 1, chunkSize: 0}, ...[1, 2, 4].map((workers) => ({workers, chunkSize: chunk}))]
  const runs: Run[][] = settings.map(() => [])
  const kcatRuns: number[] = []
  for (let round = 1; round <= rounds; round++) {
    for (const [index, setting] of settings.entries()) {
      console.error(
        `round ${round} of ${rounds}: ${setting.workers} worker(s), ${
          setting.chunkSize ? `chunks of ${chunk}` + `` : 'unchunked'
        }`,
      )
      nth(runs, index).push(await replay(quiet, from, to, setting.workers, setting.chunkSize))
    }
    const range = nth(nth(runs, 0), 0)
    kcatRuns.push(
      (
        await timed(
          'kcat',
          [
            '-b',
            BROKERS,
            '-C',
            '-t',
            topic,
            '-p',
            '0',
            '-o',
            String(range.startOffset),
            '-c',
            String(range.endOffset - range.startOffset),
            '-e',
            '-q',
            '-f',
            '%s\n',
          ],
          {discardStdout: true},
        )
      ).seconds,
    )
  }
  server.close()
  const kcat = median(kcatRuns)
  const medianRun = (of: Run[]): Run => ({...nth(of, 0), seconds: median(of.map((run) => run.seconds))})
  const plain = medianRun(nth(runs, 0))
  const scaled = settings
    .slice(1)
    .map((setting, index) => ({workers: setting.workers, run: medianRun(nth(runs, index + 1))}))
  const every = settings
    .map(
      (setting, index) =>
        `${setting.chunkSize ? `${setting.workers} chunked` : 'unchunked'} ${nth(runs, index)
          .map((run) => run.seconds.toFixed(2))
          .join(', ')}`,
    )
    .join('; ')

  const offsets = plain.endOffset - plain.startOffset
  const table = [
    '| run | job time | vs 1 worker (chunked) | vs kcat |',
    '| --- | --- | --- | --- |',
    `| 1 worker, unchunked ` +
      `(\`--scan-chunk 0\`) | ${plain.seconds.toFixed(2)} s | | ${(plain.seconds / kcat).toFixed(2)}x |`,
    ...scaled.map(
      ({workers, run}) =>
        `| ${workers} worker process(es), ` +
        `chunks of ${chunk.toLocaleString('en-US')} | ${run.seconds.toFixed(2)} s | ` +
        `${(run.seconds / nth(scaled, 0).run.seconds).toFixed(2)}x | ${(run.seconds / kcat).toFixed(2)}x |`,
    ),
    `| kcat reading the same ${offsets.toLocaleString('en-US')} offsets | ${kcat.toFixed(2)} s | | 1x |`,
  ].join('\n')
  writeSection(
    'scale-out',
    `## Scale-out: one job's scan shared by worker processes

Measured ${new Date().toISOString()} on ${machine()}, one local broker, MariaDB; a quiet webhook (${plain.delivered} \
events) replayed over ${offsets.toLocaleString('en-US')} offsets of one partition (${events.toLocaleString('en-US')} \
seeded events, ~0.8 KB), so the job is nearly all reading. Each run starts N \`replay worker --concurrency 1 \
--scan-chunk ${chunk}\` processes; one owns the job and delivers, the others scan its chunks ahead of it. Job times \
are the job's own started_at..finished_at, the median of ${rounds} interleaved rounds (every run, in seconds: \
${every}; kcat ${kcatRuns.map((seconds) => seconds.toFixed(2)).join(', ')}). Every run delivered the same \
${plain.delivered} events and counted ${plain.scanned.toLocaleString('en-US')} records scanned.
Reproduce: \`npx tsx bench/scale-out.ts --events ${events} --chunk ${chunk} --rounds ${rounds}\`.

${table}`,
  )
  console.log(table)
  for (const run of runs.flat())
    if (run.delivered !== plain.delivered || run.scanned !== plain.scanned)
      throw new Error(
        `a chunked run delivered ${run.delivered}/${plain.delivered} or scanned ${run.scanned}/${plain.scanned}`,
      )
  await dropTopicAndDatabase(topic, database)
}

await main()
