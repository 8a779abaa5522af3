/**
 * The toolkit benchmark: the quick commands an operator types, side by side with kcat
 * (librdkafka's C client) in one run, on the same data and the same local broker. Produce and
 * read speed live in bench/perf.ts. Writes the `toolkit` section of RESULTS.md.
 *
 *   npx tsx bench/toolkit.ts [--events 100000]
 *
 * Needs the local stack (`replayctl dev up`) and kcat (scripts/setup.sh installs both).
 */
import {BROKERS, cli, deleteTopics, machine, medianOf, timed, writeEventFiles, writeSection} from './lib.js'

const events = Number(process.argv[process.argv.indexOf('--events') + 1] || 100_000) || 100_000
const stamp = Date.now().toString(36)

async function main() {
  const input = await writeEventFiles('toolkit-events', events)
  const topic = `bench_toolkit_${stamp}`
  await cli(['topic', 'create', topic, '--partitions', '12', '--retention', '2d'])
  await cli(['log', 'produce', '-t', topic, '-f', input.ndjson, '--timestamp-field', 'created_at_ms'])

  console.error('seek')
  const at = Date.now() - 86_400_000 + Math.floor(events / 2)
  const seekOurs = await medianOf(5, () => cli(['log', 'seek', '-t', topic, '--since', String(at), '--json']))
  const seekKcat = await medianOf(5, () =>
    timed('kcat', [
      '-b',
      BROKERS,
      '-Q',
      ...Array.from({length: 12}, (_, partition) => ['-t', `${topic}:${partition}:${at}`]).flat(),
    ]),
  )

  console.error('partition-for')
  const locateOurs = await medianOf(15, () =>
    cli(['log', 'partition-for', '1187231934829481984', '--partitions', '12']),
  )
  const bareNode = await medianOf(15, () => timed(process.execPath, ['-e', '0']))

  const seekRatio = seekOurs.seconds / seekKcat.seconds
  const locateRatio = locateOurs.seconds / bareNode.seconds
  const rows: [string, string, string, string, string, boolean][] = [
    [
      'log seek, 12 partitions, vs kcat -Q',
      `${(seekOurs.seconds * 1000).toFixed(0)} ms`,
      `${(seekKcat.seconds * 1000).toFixed(0)} ms`,
      `${seekRatio.toFixed(2)}x kcat's time`,
      'reported',
      true,
    ],
    [
      'log partition-for vs a bare `node -e 0`',
      `${(locateOurs.seconds * 1000).toFixed(0)} ms`,
      `${(bareNode.seconds * 1000).toFixed(0)} ms`,
      `${locateRatio.toFixed(2)}x node's start`,
      '<= 4',
      locateRatio <= 4,
    ],
  ]
  const table = [
    '| operation | replayctl | reference | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      ([name, ours, theirs, ratio, target, met]) =>
        `| ${name} | ${ours} | ${theirs} | ${ratio} | ${target} | ${met ? 'yes' : '**no**'} |`,
    ),
  ].join('\n')
  writeSection(
    'toolkit',
    `## Toolkit: quick commands vs kcat and a bare node start

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker (\`replayctl dev up\`), \
${events.toLocaleString('en-US')} events in 12 partitions, both tools in the same run.
Reproduce: \`npx tsx bench/toolkit.ts --events ${events}\` (with the stack up). Wall time of whole commands, process \
start included; seek is the median of 5 runs, partition-for of 15. Produce and read speed: the \`perf\` section below.

${table}`,
  )
  console.log(table)
  await deleteTopics([topic])
}

await main()
