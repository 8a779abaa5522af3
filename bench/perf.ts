/**
 * The read/scan/produce benchmark (issue #9): replayctl side by side with kcat in one run, on the
 * same seeded data and the same local broker. Writes the `perf` section of RESULTS.md.
 *
 *   npx tsx bench/perf.ts [--events 300000] [--produce-only]
 *
 * `--produce-only` runs just the produce pair and prints it with the CPU per event, without
 * touching RESULTS.md (for measuring a change to the produce path on a shared machine).
 *
 * Needs the local stack (`replayctl dev up`), kcat, and the patched client (scripts/setup.sh).
 */
import {connectConsumer, disconnect, type Message, type PackedMessageBatch} from '../src/core/kafka/client.js'
import {readRanges} from '../src/core/kafka/range-reader.js'
import {resolveSettings} from '../src/core/shared/settings.js'
import {
  BROKERS,
  cli,
  deleteTopics,
  machine,
  medianOf,
  nth,
  timed,
  type Timed,
  writeEventFiles,
  writeSection,
} from './lib.js'

const events = Number(process.argv[process.argv.indexOf('--events') + 1] || 300_000) || 300_000
const produceOnly = process.argv.includes('--produce-only')
const stamp = Date.now().toString(36)
/** A webhook with a handful of events spread over the log: the replay scan's worst ratio. */
const QUIET = 'quiet-webhook-1'
const QUIET_EVERY = Math.floor(events / 9)

const rate = (count: number, seconds: number) => `${Math.round(count / seconds).toLocaleString('en-US')}/s`

/** readRanges with the key filter, as the replay engine scans one webhook's partition. */
async function scanQuiet(topic: string, from: number, to: number): Promise<Timed & {matched: number}> {
  const settings = resolveSettings({brokers: BROKERS})
  const started = process.hrtime.bigint()
  let matched = 0
  for await (const batch of readRanges(settings, topic, [{partition: 0, start: from, end: to}], {
    key: Buffer.from(QUIET),
  }))
    matched += batch.length
  return {seconds: Number(process.hrtime.bigint() - started) / 1e9, stdout: '', maxRssKb: 0, cpuSeconds: 0, matched}
}

/**
 * The client alone: the stock consume(n) loop, the patched consumePacked(n) loop turning every
 * record into a Message (as readRanges does), and consumePacked(n) reusing the previous batch's
 * buffers with the records left packed (as `log read` does, readPackedRanges).
 */
type BareLoop = 'stock' | 'packed' | 'recycled'
async function bareLoop(topic: string, loop: BareLoop): Promise<{seconds: number; cpuSeconds: number}> {
  const settings = resolveSettings({brokers: BROKERS})
  const consumer = await connectConsumer(settings, {'fetch.queue.backoff.ms': 1})
  ;(
    consumer as unknown as {setDefaultIsTimeoutOnlyForFirstMessage(value: boolean): void}
  ).setDefaultIsTimeoutOnlyForFirstMessage(true)
  consumer.setDefaultConsumeTimeout(200)
  let eof = false
  consumer.on('partition.eof', () => (eof = true))
  consumer.assign([{topic, partition: 0, offset: 0}])
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  let count = 0
  let previous: PackedMessageBatch | null = null
  const packed = (reuse: PackedMessageBatch | null) =>
    new Promise<PackedMessageBatch>((resolve, reject) =>
      consumer.consumePacked(2000, {reuse}, (error, batch) => (error ? reject(error) : resolve(batch))),
    )
  while (!eof) {
    if (loop === 'stock')
      count += (
        await new Promise<Message[]>((resolve, reject) =>
          consumer.consume(2000, (error, messages) => (error ? reject(error) : resolve(messages))),
        )
      ).length
    else if (loop === 'packed') count += (await packed(null)).toMessages().length
    else {
      previous = await packed(previous)
      count += previous.length
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const used = process.cpuUsage(cpu)
  await disconnect(consumer)
  if (count !== events) throw new Error(`bare loop read ${count} of ${events}`)
  return {seconds, cpuSeconds: (used.user + used.system) / 1e6}
}

async function main() {
  console.error(`writing ${events} events as NDJSON and as kcat key\\tvalue lines`)
  const input = await writeEventFiles('perf-events', events, (index, ids) =>
    index % QUIET_EVERY === QUIET_EVERY - 1 ? QUIET : nth(ids, index % ids.length),
  )
  const topics = {ours: `perf_produce_ours_${stamp}`, kcat: `perf_produce_kcat_${stamp}`, read: `perf_read_${stamp}`}
  for (const topic of Object.values(topics))
    await cli(['topic', 'create', topic, '--partitions', topic === topics.read ? '1' : '12', '--retention', '2d'])

  console.error('produce')
  const produceOurs = await cli([
    'log',
    'produce',
    '-t',
    topics.ours,
    '-f',
    input.ndjson,
    '--timestamp-field',
    'created_at_ms',
  ])
  const produceKcat = await timed('kcat', [
    '-b',
    BROKERS,
    '-P',
    '-t',
    topics.kcat,
    '-z',
    'snappy',
    '-K',
    '\t',
    '-X',
    'partitioner=murmur2_random',
    '-X',
    'linger.ms=20',
    '-X',
    'batch.num.messages=10000',
    '-l',
    input.keyed,
  ])

  if (produceOnly) {
    const perEvent = (run: Timed) => `${((run.cpuSeconds / events) * 1e6).toFixed(2)} us CPU/event`
    console.log(
      `log produce: ${produceOurs.seconds.toFixed(2)} s, ${produceOurs.cpuSeconds.toFixed(2)} s CPU (` +
        `${perEvent(produceOurs)})`,
    )
    console.log(
      `kcat -P:     ${produceKcat.seconds.toFixed(2)} s, ${produceKcat.cpuSeconds.toFixed(2)} s CPU (` +
        `${perEvent(produceKcat)})`,
    )
    console.log(
      `ratio: ${(produceKcat.seconds / produceOurs.seconds).toFixed(2)}x kcat's ` +
        `events/s, ${(produceOurs.cpuSeconds / produceKcat.cpuSeconds).toFixed(2)}x kcat's CPU`,
    )
    await deleteTopics(Object.values(topics))
    return
  }

  console.error('read one partition')
  await cli(['log', 'produce', '-t', topics.read, '-f', input.ndjson, '--timestamp-field', 'created_at_ms'])
  const readOurs = await medianOf(3, () =>
    cli(['log', 'read', '-t', topics.read, '-p', '0', '--format', 'raw'], {discardStdout: true}),
  )
  const readKcat = await medianOf(3, () =>
    timed(
      'kcat',
      [
        '-b',
        BROKERS,
        '-C',
        '-t',
        topics.read,
        '-p',
        '0',
        '-o',
        'beginning',
        '-c',
        String(events),
        '-e',
        '-q',
        '-f',
        '%s\n',
      ],
      {discardStdout: true},
    ),
  )
  // The fixed part of a read: process start, the plan, the connects and one batch; and of that,
  // what Node and oclif take before any command runs.
  const readFirst = await medianOf(3, () =>
    cli(['log', 'read', '-t', topics.read, '-p', '0', '--format', 'raw', '--max', '1'], {discardStdout: true}),
  )
  const cliStart = await medianOf(3, () => cli(['--version'], {discardStdout: true}))

  console.error('scan for a quiet webhook')
  const from = Math.floor(events * 0.1)
  const to = Math.floor(events * 0.9)
  const scanOurs = await medianOf(3, () => scanQuiet(topics.read, from, to))
  const scanKcat = await medianOf(3, () =>
    timed(
      'kcat',
      [
        '-b',
        BROKERS,
        '-C',
        '-t',
        topics.read,
        '-p',
        '0',
        '-o',
        String(from),
        '-c',
        String(to - from),
        '-e',
        '-q',
        '-f',
        '%s\n',
      ],
      {discardStdout: true},
    ),
  )

  console.error('the client alone')
  const bareStock = await bareLoop(topics.read, 'stock')
  const barePacked = await bareLoop(topics.read, 'packed')
  const bareRecycled = await bareLoop(topics.read, 'recycled')

  const rows: string[] = []
  const row = (name: string, ours: string, theirs: string, ratio: string, target: string, met: boolean) =>
    rows.push(`| ${name} | ${ours} | ${theirs} | ${ratio} | ${target} | ${met ? 'yes' : '**no**'} |`)
  const produceRatio = produceKcat.seconds / produceOurs.seconds
  row(
    `log produce ${events.toLocaleString('en-US')} NDJSON events (${(input.bytes / 2 ** 20).toFixed(0)} MiB), 12 ` +
      `partitions`,
    `${produceOurs.seconds.toFixed(2)} s (${rate(events, produceOurs.seconds)})`,
    `kcat -P -z snappy ${produceKcat.seconds.toFixed(2)} s (${rate(events, produceKcat.seconds)})`,
    `${produceRatio.toFixed(2)}x kcat's events/s`,
    '>= 0.8',
    produceRatio >= 0.8,
  )
  const readRatio = readKcat.seconds / readOurs.seconds
  // #17: at least 0.8x kcat on 300,000 records, 0.9x on 3,000,000 (the fixed cost matters less).
  const readTarget = events >= 3_000_000 ? 0.9 : 0.8
  row(
    `log read --format raw, one partition of ${events.toLocaleString('en-US')} records`,
    `${readOurs.seconds.toFixed(2)} s (${rate(events, readOurs.seconds)})`,
    `kcat -C -e ${readKcat.seconds.toFixed(2)} s (${rate(events, readKcat.seconds)})`,
    `${readRatio.toFixed(2)}x kcat's records/s`,
    `>= ${readTarget}`,
    readRatio >= readTarget,
  )
  const scanRatio = scanOurs.seconds / scanKcat.seconds
  row(
    `replay scan: readRanges with the key ` +
      `filter over ${(to - from).toLocaleString('en-US')} offsets (${scanOurs.matched} matches)`,
    `${scanOurs.seconds.toFixed(2)} s`,
    `kcat -C same offsets ${scanKcat.seconds.toFixed(2)} s`,
    `${scanRatio.toFixed(2)}x kcat's time`,
    '<= 2',
    scanRatio <= 2,
  )
  row(
    `client alone: consume(2000) loop vs consumePacked(2000) loop, ${events.toLocaleString('en-US')} records (in ` +
      `process)`,
    `packed ${barePacked.seconds.toFixed(2)} s, ${barePacked.cpuSeconds.toFixed(2)} s CPU`,
    `stock ${bareStock.seconds.toFixed(2)} s, ${bareStock.cpuSeconds.toFixed(2)} s CPU`,
    `${(bareStock.seconds / barePacked.seconds).toFixed(2)}x faster`,
    'reported',
    true,
  )
  row(
    `client alone: consumePacked(2000) reusing the previous batch, records left packed (as \`log read\` ` +
      `reads), ${events.toLocaleString('en-US')} records (in process)`,
    `${bareRecycled.seconds.toFixed(2)} s, ${bareRecycled.cpuSeconds.toFixed(2)} s CPU`,
    `kcat -C -e, whole process: ${readKcat.cpuSeconds.toFixed(2)} s CPU`,
    `${(bareRecycled.cpuSeconds / readKcat.cpuSeconds).toFixed(2)}x kcat's CPU`,
    'reported',
    true,
  )
  row(
    'log read --max 1: the fixed cost of a read (start, plan, connects, one batch)',
    `${readFirst.seconds.toFixed(2)} s, ${readFirst.cpuSeconds.toFixed(2)} s CPU`,
    `replayctl --version (Node and ` +
      `oclif start) ${cliStart.seconds.toFixed(2)} s, ${cliStart.cpuSeconds.toFixed(2)} s CPU`,
    `${(readFirst.seconds / readKcat.seconds).toFixed(2)}x kcat's whole read`,
    'reported',
    true,
  )
  const readRssMb = readOurs.maxRssKb / 1024
  row(
    'log read peak RSS',
    `${readRssMb.toFixed(0)} MiB`,
    `kcat ${(readKcat.maxRssKb / 1024).toFixed(0)} MiB`,
    '',
    '<= 100 MiB (#17)',
    readRssMb <= 100,
  )

  const table = [
    '| operation | replayctl | reference | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n')
  const cpu = (name: string, ours: Timed, theirs: Timed) =>
    `| ${name} | ${ours.cpuSeconds.toFixed(2)} s | ${theirs.cpuSeconds.toFixed(2)} s | ` +
    `${(ours.cpuSeconds / theirs.cpuSeconds).toFixed(1)}x |`
  const cpuTable = [
    '| CPU time (user + system) | replayctl | kcat | ratio |',
    '| --- | --- | --- | --- |',
    cpu('log produce', produceOurs, produceKcat),
    cpu('log read', readOurs, readKcat),
  ].join('\n')
  // The default size keeps its section; another size gets its own beside it (#17 asks for two).
  writeSection(
    events === 300_000 ? 'perf' : `perf-${events}`,
    `## Read, scan and produce speed (issue #9)

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker (\`replayctl dev up\`), both tools in the \
same run on the same data (${events.toLocaleString('en-US')} account activity events of ~0.75 KB, snappy).
Reproduce: \`npx tsx bench/perf.ts --events ${events}\` (with the stack up). Whole commands timed with process start, \
except the scan, which is timed inside one process as the replay engine runs it (consumer connect included); read and \
scan are the median of 3 runs.

${table}

${cpuTable}`,
  )
  console.log(table)
  console.log(cpuTable)
  await deleteTopics(Object.values(topics))
}

await main()
