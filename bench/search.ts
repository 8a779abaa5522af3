/**
 * The key search benchmark: what `log search --key` costs against a search without a key on a
 * seeded 12-partition delivery_log, in records scanned (exact) and wall time, with kcat reading
 * the same key's partition in the same run as the reference. Writes the `search` section of
 * RESULTS.md.
 *
 *   npx tsx bench/search.ts [--topic delivery_log]
 *
 * Needs the local stack and a seeded topic (`replayctl dev seed --events 100000 --webhooks 2000`).
 */
import {loadavg} from 'node:os'

import {partitionFor} from '../src/core/kafka/partitioner.js'
import {BROKERS, cli, machine, medianOf, nth, timed, writeSection} from './lib.js'

const topicAt = process.argv.indexOf('--topic')
const topic = topicAt >= 0 ? nth(process.argv, topicAt + 1) : 'delivery_log'
const NO_MATCH = 'no-such-text-in-any-event'

interface Scan {
  scanned: number
  seconds: number
  partitions: {partition: number; read: boolean; scanned: number}[]
}

async function search(args: string[]): Promise<Scan> {
  const run = await medianOf(3, () =>
    cli(['log', 'search', '-t', topic, '--value-contains', NO_MATCH, '--json', ...args]),
  )
  const result = JSON.parse(run.stdout)
  return {scanned: result.scanned, seconds: run.seconds, partitions: result.partitions}
}

async function main() {
  // The newest records of every partition: a sample of keys from all of them.
  const sample = JSON.parse((await cli(['log', 'read', '-t', topic, '--from-offset', '-500', '--json'])).stdout)
    .records as {key: string}[]
  const counts = new Map<string, number>()
  for (const record of sample) counts.set(record.key, (counts.get(record.key) ?? 0) + 1)
  const byCount = [...counts.entries()].sort((a, b) => b[1] - a[1])
  const keys = {busy: nth(byCount, 0)[0], quiet: byCount.at(-1)![0]}
  const partitions = JSON.parse((await cli(['topic', 'describe', topic, '--no-configs', '--json'])).stdout).partitions
    .length as number

  console.error('full scan')
  const full = await search([])
  const rows: string[] = []
  for (const [label, key] of Object.entries(keys)) {
    console.error(`key search (${label})`)
    const keyed = await search(['--key', key])
    const partition = partitionFor(key, partitions)
    const inPartition = full.partitions.find((scan) => scan.partition === partition)!.scanned
    const kcat = await medianOf(3, () =>
      timed('kcat', ['-b', BROKERS, '-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e', '-q'], {
        discardStdout: true,
      }),
    )
    rows.push(
      `| ${label} webhook ${key} (partition ${partition}) | ${keyed.scanned.toLocaleString('en-US')} (` +
        `${((100 * keyed.scanned) / full.scanned).toFixed(1)}%; its partition holds ` +
        `${inPartition.toLocaleString('en-US')}) | ${keyed.seconds.toFixed(2)} s | ` +
        `${(keyed.seconds / full.seconds).toFixed(2)}x | kcat reads that partition in ${kcat.seconds.toFixed(2)} s (` +
        `${(keyed.seconds / kcat.seconds).toFixed(1)}x) |`,
    )
  }

  writeSection(
    'search',
    `## Key search: \`log search --key\` vs a search without a key

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker, topic \`${topic}\` \
(${full.scanned.toLocaleString('en-US')} records in ${partitions} partitions, \`dev seed\`); a value filter that \
matches nothing, so every record in range is examined and nothing is printed. Wall time of whole commands, median of 3 \
(load average ${nth(loadavg(), 0).toFixed(1)} when done: the machine is shared, so compare ratios within the run, not \
across runs); the records scanned are exact (the command's own count, equal to the key partition's range).
Reproduce: \`npx tsx bench/search.ts --topic ${topic}\` (with the stack up and the topic seeded).

| search | records scanned | time | vs full scan | reference |
| --- | --- | --- | --- | --- |
| no key: all ${partitions} partitions | ${full.scanned.toLocaleString('en-US')} | ${full.seconds.toFixed(2)} s | 1x | |
${rows.join('\n')}`,
  )
  console.error('wrote the search section of bench/RESULTS.md')
}

await main()
