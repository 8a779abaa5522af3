/**
 * The toolkit benchmark: replayctl side by side with kcat (librdkafka's C client) in one run, on
 * the same seeded data and the same local broker. Writes the `toolkit` section of RESULTS.md.
 *
 *   npx tsx bench/toolkit.ts [--events 300000]
 *
 * Needs the local stack (`replayctl dev up`) and kcat (scripts/setup.sh installs both).
 */
import {createWriteStream, mkdirSync, statSync} from 'node:fs'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'

import {connectAdmin} from '../src/core/kafka/client.js'
import {accountActivityEvent, webhookIds} from '../src/core/dev/seed.js'
import {resolveSettings} from '../src/core/shared/settings.js'
import {BROKERS, cli, machine, medianOf, timed, writeSection} from './lib.js'

const events = Number(process.argv[process.argv.indexOf('--events') + 1] || 300_000) || 300_000
const out = fileURLToPath(new URL('./out/', import.meta.url))
mkdirSync(out, {recursive: true})
const stamp = Date.now().toString(36)

async function writeInputs(): Promise<{ndjson: string; keyed: string; bytes: number}> {
  const ndjson = `${out}events.ndjson`
  const keyed = `${out}events.keyed`
  const json = createWriteStream(ndjson)
  const tabbed = createWriteStream(keyed)
  const ids = webhookIds(1000, 1)
  const start = Date.now() - 86_400_000
  for (let index = 0; index < events; index++) {
    const webhookId = ids[index % ids.length]!
    const line = accountActivityEvent(index, webhookId, start + index, 1)
    if (!json.write(`${line}\n`)) await once(json, 'drain')
    if (!tabbed.write(`${webhookId}\t${line}\n`)) await once(tabbed, 'drain')
  }
  json.end()
  tabbed.end()
  await Promise.all([once(json, 'finish'), once(tabbed, 'finish')])
  return {ndjson, keyed, bytes: statSync(ndjson).size}
}

function rate(count: number, seconds: number): string {
  return `${Math.round(count / seconds).toLocaleString('en-US')}/s`
}

async function main() {
  console.error(`writing ${events} events as NDJSON and as kcat key\\tvalue lines`)
  const input = await writeInputs()
  const topics = {ours: `bench_produce_ours_${stamp}`, kcat: `bench_produce_kcat_${stamp}`, read: `bench_read_${stamp}`}
  for (const topic of Object.values(topics)) await cli(['topic', 'create', topic, '--partitions', topic === topics.read ? '1' : '12', '--retention', '2d'])

  console.error('produce')
  const produceOurs = await cli(['log', 'produce', '-t', topics.ours, '-f', input.ndjson, '--timestamp-field', 'created_at_ms'])
  const produceKcat = await timed('kcat', ['-b', BROKERS, '-P', '-t', topics.kcat, '-z', 'snappy', '-K', '\t', '-X', 'partitioner=murmur2_random', '-X', 'linger.ms=20', '-X', 'batch.num.messages=10000', '-l', input.keyed])

  console.error('read one partition range')
  await cli(['log', 'produce', '-t', topics.read, '-f', input.ndjson, '--timestamp-field', 'created_at_ms'])
  const from = Math.floor(events * 0.1)
  const to = Math.floor(events * 0.9)
  const readOurs = await medianOf(3, () => cli(['log', 'read', '-t', topics.read, '-p', '0', '--from-offset', String(from), '--to-offset', String(to), '--format', 'raw'], {discardStdout: true}))
  const readKcat = await medianOf(3, () => timed('kcat', ['-b', BROKERS, '-C', '-t', topics.read, '-p', '0', '-o', String(from), '-c', String(to - from), '-e', '-q', '-f', '%s\n'], {discardStdout: true}))

  console.error('seek')
  const at = Date.now() - 86_400_000 + Math.floor(events / 2)
  const seekOurs = await medianOf(5, () => cli(['log', 'seek', '-t', topics.ours, '--since', String(at), '--json']))
  const seekKcat = await medianOf(5, () => timed('kcat', ['-b', BROKERS, '-Q', ...Array.from({length: 12}, (_, partition) => ['-t', `${topics.kcat}:${partition}:${at}`]).flat()]))

  console.error('partition-for')
  const locateOurs = await medianOf(15, () => cli(['log', 'partition-for', '1187231934829481984', '--partitions', '12']))
  const bareNode = await medianOf(15, () => timed(process.execPath, ['-e', '0']))

  const rows: [string, string, string, string, string, boolean][] = []
  const throughputRow = (name: string, ours: number, theirs: number, count: number, target: number) => {
    const ratio = theirs / ours
    rows.push([name, `${ours.toFixed(2)} s (${rate(count, ours)})`, `${theirs.toFixed(2)} s (${rate(count, theirs)})`, `${ratio.toFixed(2)}x kcat's throughput`, `>= ${target}`, ratio >= target])
  }
  throughputRow(`log produce ${events.toLocaleString('en-US')} events (${(input.bytes / 2 ** 20).toFixed(0)} MiB) vs kcat -P -z snappy`, produceOurs.seconds, produceKcat.seconds, events, 0.8)
  throughputRow(`log read one partition, ${(to - from).toLocaleString('en-US')} records, vs kcat -C to /dev/null`, readOurs.seconds, readKcat.seconds, to - from, 0.8)
  const seekRatio = seekOurs.seconds / seekKcat.seconds
  rows.push(['log seek, 12 partitions, vs kcat -Q', `${(seekOurs.seconds * 1000).toFixed(0)} ms`, `${(seekKcat.seconds * 1000).toFixed(0)} ms`, `${seekRatio.toFixed(2)}x kcat's time`, 'reported', true])
  const locateRatio = locateOurs.seconds / bareNode.seconds
  rows.push(['log partition-for vs a bare `node -e 0`', `${(locateOurs.seconds * 1000).toFixed(0)} ms`, `${(bareNode.seconds * 1000).toFixed(0)} ms`, `${locateRatio.toFixed(2)}x node's start`, '<= 4', locateRatio <= 4])

  const table = [
    '| operation | replayctl | reference | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(([name, ours, theirs, ratio, target, met]) => `| ${name} | ${ours} | ${theirs} | ${ratio} | ${target} | ${met ? 'yes' : '**no**'} |`),
  ].join('\n')
  const memory = `Peak RSS: log produce ${(produceOurs.maxRssKb / 1024).toFixed(0)} MiB vs kcat ${(produceKcat.maxRssKb / 1024).toFixed(0)} MiB; log read ${(readOurs.maxRssKb / 1024).toFixed(0)} MiB vs kcat ${(readKcat.maxRssKb / 1024).toFixed(0)} MiB.`
  writeSection('toolkit', `## Toolkit: replayctl vs kcat

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker (\`replayctl dev up\`), both tools in the same run on the same data.
Reproduce: \`npx tsx bench/toolkit.ts --events ${events}\` (with the stack up). Wall time of whole commands, process start included; read and seek are the median of 3 and 5 runs, partition-for of 15.

${table}

${memory}

Notes: replayctl parses every NDJSON line to find the key and CreateTime and waits for acks from all in-sync replicas with idempotence on; kcat is handed pre-keyed \`key\\tvalue\` lines and cannot set per-record timestamps. Both use snappy, murmur2 placement and linger.ms=20.`)
  console.log(table)
  console.log(memory)
  await deleteTopics(Object.values(topics))
}

async function deleteTopics(names: string[]): Promise<void> {
  const admin = await connectAdmin(resolveSettings({brokers: BROKERS}))
  await Promise.all(names.map((topic) => new Promise<void>((resolve) => admin.deleteTopic(topic, 30_000, () => resolve()))))
  admin.disconnect()
}

await main()
