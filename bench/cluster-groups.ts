/**
 * Operator checks side by side with Apache Kafka's own tools on the same broker and data:
 * `group lag` vs ConsumerGroupCommand --describe, `cluster status --no-controller` vs TopicCommand
 * --describe --under-replicated-partitions, `cluster status` vs MetadataQuorumCommand. Wall time of
 * whole commands, process (and JVM) start included, median of --runs. Needs a seeded delivery_log
 * (`replayctl dev seed`). Writes the `cluster-groups` section of RESULTS.md.
 */
import {parseArgs} from 'node:util'

import {ensureKafkaDist} from '../src/core/kafka/apache-dist.js'
import {BROKERS, cli, machine, medianOf, timed, writeSection, type Timed} from './lib.js'

const {values} = parseArgs({
  options: {runs: {type: 'string', default: '3'}, group: {type: 'string', default: 'bench-archiver'}},
})
const runs = Number(values.runs)
const group = values.group!

const dist = await ensureKafkaDist()
const apache = (mainClass: string, args: string[]): Promise<Timed> =>
  timed(dist.java, [
    '-Xmx256m',
    `-Dlog4j2.configurationFile=${dist.toolsLog4j}`,
    '-cp',
    dist.classpath,
    mainClass,
    '--bootstrap-server',
    BROKERS,
    ...args,
  ])

await cli(['group', 'reset-offsets', group, '--topic', 'delivery_log', '--to-time', '1d'])

const rows: [string, Timed, string, Timed][] = [
  [
    '`group lag` (lag in messages and time)',
    await medianOf(runs, () => cli(['group', 'lag', group, '--json'])),
    'ConsumerGroupCommand --describe',
    await medianOf(runs, () =>
      apache('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', ['--describe', '--group', group]),
    ),
  ],
  [
    '`cluster status --no-controller`',
    await medianOf(runs, () => cli(['cluster', 'status', '--no-controller', '--json'])),
    'TopicCommand --describe --under-replicated-partitions',
    await medianOf(runs, () =>
      apache('org.apache.kafka.tools.TopicCommand', ['--describe', '--under-replicated-partitions']),
    ),
  ],
  [
    '`cluster status` (controller via Java)',
    await medianOf(runs, () => cli(['cluster', 'status', '--json'])),
    'MetadataQuorumCommand describe --status',
    await medianOf(runs, () => apache('org.apache.kafka.tools.MetadataQuorumCommand', ['describe', '--status'])),
  ],
]

const table = rows
  .map(
    ([ours, oursTimed, reference, referenceTimed]) =>
      `| ${ours} | ${oursTimed.seconds.toFixed(2)} s | ${reference} | ${referenceTimed.seconds.toFixed(2)} s | ` +
      `${(oursTimed.seconds / referenceTimed.seconds).toFixed(2)}x |`,
  )
  .join('\n')
const markdown = `## Cluster health and consumer groups vs Apache Kafka's tools

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker with the seeded delivery_log (12 \
partitions), group \`${group}\` a day behind; median of ${runs} runs, process and JVM start included.
Reproduce: \`npx tsx bench/cluster-groups.ts\` (with the stack up and seeded).

| replayctl | time | Apache Kafka tool | time | ratio (time) |
| --- | --- | --- | --- | --- |
${table}

\`group lag\` also reads one record per lagging partition for the lag in time, which ConsumerGroupCommand does not \
show. \`cluster status\` with the controller runs MetadataQuorumCommand itself, so it is that JVM plus the metadata \
requests.`
writeSection('cluster-groups', markdown)
process.stdout.write(`${markdown}\n`)
