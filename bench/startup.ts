/**
 * Start-up: whole commands, process start included, against what they are measured by: `log
 * partition-for --partitions` (no Kafka) against a bare `node -e 0`, `log seek` on 12 partitions
 * against `kcat -Q` asking the same offsets. Every round runs each command once, in turn, so a
 * machine shared with other work slows all of them alike; the ratios are of medians of the same
 * run, and the load average is reported with them. Writes the `startup` section of RESULTS.md.
 *
 *   npx tsx bench/startup.ts [--rounds 21] [--before DIR] [--no-write]
 *
 * --before DIR adds both commands as another build runs them (DIR holds its bin/run.js and dist/,
 * e.g. a worktree of an earlier commit), in the same rounds, for a before/after on one machine load.
 *
 * Needs the local stack (`replayctl dev up`), kcat and a built dist/ (`npm run build`).
 */
import {loadavg} from 'node:os'

import {join, resolve} from 'node:path'

import {BROKERS, cli, deleteTopics, machine, median, timed, type Timed, writeSection} from './lib.js'

const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name)
  return at === -1 ? fallback : Number(process.argv[at + 1]) || fallback
}
const rounds = option('--rounds', 21)
const write = !process.argv.includes('--no-write')
const beforeAt = process.argv.indexOf('--before')
const before = beforeAt === -1 ? undefined : process.argv[beforeAt + 1]
const stamp = Date.now().toString(36)

interface Case {
  name: string
  run: () => Promise<Timed>
  wall: number[]
  cpu: number[]
}

async function main() {
  const topic = `bench_startup_${stamp}`
  await cli(['topic', 'create', topic, '--partitions', '12'])
  const events = Array.from({length: 1200}, (_, i) => JSON.stringify({id: `k${i}`, created_at_ms: Date.now() - i}))
  await cli(['log', 'produce', '-t', topic, '--key-field', 'id', '--timestamp-field', 'created_at_ms'], {
    input: `${events.join('\n')}\n`,
  })
  const at = Date.now() - 600

  const plain: Omit<Case, 'wall' | 'cpu'>[] = [
    {name: 'node -e 0', run: () => timed(process.execPath, ['-e', '0'])},
    {
      name: 'log partition-for',
      run: () => cli(['log', 'partition-for', '1187231934829481984', '--partitions', '12']),
    },
    {
      name: 'kcat -Q (12 partitions)',
      run: () =>
        timed('kcat', [
          '-b',
          BROKERS,
          '-Q',
          ...Array.from({length: 12}, (_, partition) => ['-t', `${topic}:${partition}:${at}`]).flat(),
        ]),
    },
    {name: 'log seek (12 partitions)', run: () => cli(['log', 'seek', '-t', topic, '--since', String(at)])},
  ]
  if (before !== undefined) {
    const bin = join(resolve(before), 'bin/run.js')
    plain.push(
      {
        name: 'log partition-for, before',
        run: () => timed(process.execPath, [bin, 'log', 'partition-for', '1187231934829481984', '--partitions', '12']),
      },
      {
        name: 'log seek, before',
        run: () => timed(process.execPath, [bin, 'log', 'seek', '-t', topic, '--since', String(at)]),
      },
    )
  }
  const cases: Case[] = plain.map((entry) => ({...entry, wall: [], cpu: []}))

  const loadBefore = loadavg()[0] ?? 0
  // One warm-up round: the first start reads every file from disk.
  for (const entry of cases) await entry.run()
  for (let round = 0; round < rounds; round++)
    for (const entry of cases) {
      const result = await entry.run()
      entry.wall.push(result.seconds * 1000)
      entry.cpu.push(result.cpuSeconds * 1000)
    }
  const loadAfter = loadavg()[0] ?? 0
  await deleteTopics([topic])

  const [bare, locate, kcat, seek, locateBefore, seekBefore] = cases.map((entry) => ({
    ...entry,
    wallMs: median(entry.wall),
    // CPU time comes in 10 ms clock ticks: a mean over the rounds resolves what one run's ticks cannot.
    cpuMs: entry.cpu.reduce((sum, value) => sum + value, 0) / Math.max(entry.cpu.length, 1),
  }))
  if (!bare || !locate || !kcat || !seek) throw new Error('a case is missing')
  const ms = (value: number) => `${value.toFixed(0)} ms`
  const rows = [
    ['log partition-for --partitions 12 vs `node -e 0`', locate, bare, 2],
    ['log seek, 12 partitions, vs `kcat -Q`', seek, kcat, 3],
    ...(locateBefore && seekBefore
      ? ([
          [`before (\`${before}\`): log partition-for vs \`node -e 0\``, locateBefore, bare, 2],
          [`before (\`${before}\`): log seek vs \`kcat -Q\``, seekBefore, kcat, 3],
        ] as const)
      : []),
  ] as const
  const table = [
    '| command | wall (median) | reference | wall ratio | CPU (mean): ours / reference | CPU ratio | ' +
      'target (wall) | met |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(([name, ours, reference, target]) => {
      const ratio = ours.wallMs / reference.wallMs
      const cpuRatio = reference.cpuMs > 0 ? `${(ours.cpuMs / reference.cpuMs).toFixed(1)}x` : '-'
      return (
        `| ${name} | ${ms(ours.wallMs)} | ${ms(reference.wallMs)} | ${ratio.toFixed(2)}x | ` +
        `${ms(ours.cpuMs)} / ${ms(reference.cpuMs)} | ${cpuRatio} | ` +
        `<= ${target}x | ${ratio <= target ? 'yes' : '**no**'} |`
      )
    }),
  ].join('\n')
  const load = `load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`
  console.log(`${table}\n${load}`)
  const beforeFlag = before === undefined ? '' : ` --before ${before}`
  if (write)
    writeSection(
      'startup',
      `## Start-up: a command's whole run against a bare node start and kcat

Measured ${new Date().toISOString()} on ${machine()}, one local Kafka broker; ${rounds} interleaved rounds \
(each command once per round, after one warm-up round), medians; ${load} (the machine is shared: compare the \
ratios, which come from the same rounds, rather than the times across runs). CPU is user + system time of the \
process (librdkafka's threads included), the mean over the rounds (it is counted in 10 ms clock ticks), \
steadier than wall time on a loaded machine.
Reproduce: \`npx tsx bench/startup.ts${beforeFlag}\` (with the stack up and dist/ built).

${table}`,
    )
}

await main()
