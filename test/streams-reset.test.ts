import assert from 'node:assert/strict'
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {connectAdmin} from '../src/core/kafka/client.js'
import {groupLag, type PartitionLag} from '../src/core/storage/groups.js'
import {apacheTool, BROKERS, deleteTopics, onTerminal, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * `group reset-app` against a real Kafka Streams application (test/fixtures/streams-app, built
 * with mvn by scripts/streams-app.sh, from org.apache.kafka:kafka-streams 4.1.1) and compared
 * with Apache's own StreamsResetter. One process runs the application twice, under two
 * application ids, over the same input, so both reach the same state: one is reset with
 * replayctl, the other with StreamsResetter, and the results must agree (offsets committed,
 * internal topics deleted).
 */
const run = promisify(execFile)
const RESETTER = 'org.apache.kafka.tools.StreamsResetter'
const SCRIPT = fileURLToPath(new URL('../scripts/streams-app.sh', import.meta.url))
const input = uniqueName('streams_in')
const output = `${input}_counts`
// Not prefixes of each other: an application's internal topics are found by its id and a dash.
const ours = uniqueName('app_ours')
const theirs = uniqueName('app_theirs')
const HOUR = 3_600_000
const base = Date.now() - 2 * HOUR
const stateDir = mkdtempSync(join(tmpdir(), 'replayctl-streams-state-'))
let app: {child: ChildProcess; log: () => string; exited: Promise<number | null>} | undefined

/** Builds the fixture once per content (scripts/streams-app.sh, shared with the demo); returns the classpath. */
async function buildStreamsApp(): Promise<string> {
  const {stdout} = await run('bash', [SCRIPT], {maxBuffer: 64 * 1024 * 1024})
  const dir = stdout.trim()
  return `${join(dir, 'target', 'classes')}:${join(dir, 'target', 'libs', '*')}`
}

function startApp(classpath: string): NonNullable<typeof app> {
  const child = spawn(
    'java',
    [
      '-Xmx192m',
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp',
      classpath,
      'replayctl.fixture.CountApp',
      BROKERS,
      stateDir,
      input,
      output,
      ours,
      theirs,
    ],
    {stdio: ['ignore', 'pipe', 'pipe']},
  )
  let log = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk) => (log += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk) => (log += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  return {child, log: () => log, exited}
}

/** The group's offsets and members, or null while Kafka knows nothing of it yet. */
async function lagOf(group: string): Promise<Awaited<ReturnType<typeof groupLag>> | null> {
  try {
    return await groupLag(testSettings(), group)
  } catch (error) {
    if ((error as {code?: string}).code === 'GROUP_NOT_FOUND') return null
    throw error
  }
}

async function waitFor(what: string, done: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await done())) {
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}; application log:\n${app?.log() ?? ''}`)
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}

/** Every input record counted and committed, through the repartition topic too. */
async function caughtUp(group: string): Promise<boolean> {
  const lag = await lagOf(group)
  if (!lag) return false
  const inputs = lag.partitions.filter((partition) => partition.topic === input)
  const repartition = lag.partitions.filter((partition) => partition.topic.endsWith('-repartition'))
  return (
    inputs.length === 3 &&
    repartition.some((partition) => partition.committed !== null) &&
    [...inputs, ...repartition].every((partition) => partition.committed === partition.logEnd)
  )
}

/** Committed offsets per topic:partition. */
async function committed(group: string): Promise<Map<string, number | null>> {
  const lag = await lagOf(group)
  return new Map(
    (lag?.partitions ?? []).map((partition: PartitionLag) => [
      `${partition.topic}:${partition.partition}`,
      partition.committed,
    ]),
  )
}

async function topicNames(): Promise<string[]> {
  const listed = await runCli(['topic', 'list', '--json'])
  assert.equal(listed.code, 0, listed.stderr)
  return (listed.json as {topic: string}[]).map((topic) => topic.topic)
}

function internalTopicsOf(application: string, topics: string[]): string[] {
  return topics.filter((topic) => topic.startsWith(`${application}-`)).sort()
}

/** StreamsResetter's output: the offsets it sets and the internal topics it deletes (or would). */
function parseResetter(text: string): {offsets: [number, number][]; internalTopics: string[]} {
  const offsets = [...text.matchAll(/^Topic: (\S+) Partition: (\d+) Offset: (\d+)$/gm)]
    .filter((match) => match[1] === input)
    .map((match): [number, number] => [Number(match[2]), Number(match[3])])
    .sort((a, b) => a[0] - b[0])
  const listed = /^Deleting inferred internal topics \[(.*)\]$/m.exec(text)?.[1] ?? ''
  return {offsets, internalTopics: listed.split(', ').filter(Boolean).sort()}
}

/** The other application's topic names in terms of ours, to compare the two. */
function asOurs(topics: string[]): string[] {
  return topics.map((topic) => ours + topic.slice(theirs.length)).sort()
}

before(async () => {
  const [classpath] = await Promise.all([
    buildStreamsApp(),
    (async () => {
      for (const topic of [input, output]) {
        const created = await runCli(['topic', 'create', topic, '--partitions', '3', '--json'])
        assert.equal(created.code, 0, created.stderr)
      }
      // 60 events a minute apart over the last two hours, about 20 per partition.
      const events = Array.from({length: 60}, (_, index) =>
        JSON.stringify({webhook_id: `w${index}`, ts: base + index * 60_000}),
      ).join('\n')
      const produced = await runCli(['log', 'produce', '-t', input, '--timestamp-field', 'ts', '--json'], {
        input: `${events}\n`,
      })
      assert.equal(produced.code, 0, produced.stderr)
    })(),
  ])
  app = startApp(classpath)
  const early = app.exited.then((code) => assert.fail(`the streams application exited (${code}):\n${app?.log()}`))
  await Promise.race([
    early,
    (async () => {
      await waitFor(`application ${ours} to process its input`, () => caughtUp(ours))
      await waitFor(`application ${theirs} to process its input`, () => caughtUp(theirs))
    })(),
  ])
})

after(async () => {
  if (app && app.child.exitCode === null) {
    app.child.kill('SIGKILL')
    await app.exited
  }
  const leftover = [...internalTopicsOf(ours, await topicNames()), ...internalTopicsOf(theirs, await topicNames())]
  await deleteTopics([input, output, ...leftover])
  const admin = await connectAdmin(testSettings())
  await new Promise((resolve) => admin.deleteGroups([ours, theirs], {timeout: 10_000}, resolve))
  admin.disconnect()
  rmSync(stateDir, {recursive: true, force: true})
})

describe('group reset-app', () => {
  it('refuses while the application runs (exit 4) and changes nothing, as StreamsResetter refuses', async () => {
    const offsetsBefore = await committed(ours)
    const topicsBefore = internalTopicsOf(ours, await topicNames())
    assert.ok(topicsBefore.some((topic) => topic.endsWith('-changelog')))
    assert.ok(topicsBefore.some((topic) => topic.endsWith('-repartition')))

    const refused = await runCli(['group', 'reset-app', ours, '--input-topic', input, '--to-earliest', '--yes'])
    assert.equal(refused.code, 4)
    assert.match(
      refused.stderr,
      new RegExp(
        "^replayctl: error: consumer group '.+' has 1 active member \\(Stable\\); " +
          'they would overwrite the new offsets: stop its consumers first',
      ),
    )
    assert.equal(refused.stderr.trim().split('\n').length, 1)
    assert.deepEqual(await committed(ours), offsetsBefore)
    assert.deepEqual(internalTopicsOf(ours, await topicNames()), topicsBefore)

    await assert.rejects(
      apacheTool(RESETTER, ['--bootstrap-server', BROKERS, '--application-id', theirs, '--input-topics', input]),
      /is still active/,
    )
  })

  it('stops the application: both groups are left without members', async () => {
    assert.ok(app)
    app.child.kill('SIGTERM')
    await app.exited
    for (const group of [ours, theirs])
      await waitFor(`group ${group} to have no members`, async () => (await lagOf(group))?.members.length === 0, 60_000)
  })

  it("--dry-run plans and lists what StreamsResetter's dry run does, and changes nothing", async () => {
    const offsetsBefore = await committed(ours)
    const topicsBefore = internalTopicsOf(ours, await topicNames())
    const dry = await runCli([
      'group',
      'reset-app',
      ours,
      '--input-topic',
      input,
      '--intermediate-topic',
      output,
      '--to-offset',
      '5',
      '--dry-run',
      '--json',
    ])
    assert.equal(dry.code, 0, dry.stderr)
    assert.equal(dry.json.applied, false)
    const apache = parseResetter(
      await apacheTool(RESETTER, [
        '--bootstrap-server',
        BROKERS,
        '--application-id',
        theirs,
        '--input-topics',
        input,
        '--to-offset',
        '5',
        '--dry-run',
      ]),
    )
    type Planned = {topic: string; partition: number; current: number | null; target: number}
    const plan = dry.json.offsets as Planned[]
    assert.deepEqual(
      plan.filter((reset) => reset.topic === input).map((reset) => [reset.partition, reset.target]),
      apache.offsets,
    )
    assert.deepEqual(
      apache.offsets.map(([, offset]) => offset),
      [5, 5, 5],
    )
    // An intermediate topic skips to its end, and is never taken for an internal one.
    const outputEnds = await logEnds(output)
    assert.deepEqual(
      plan.filter((reset) => reset.topic === output).map((reset) => reset.target),
      outputEnds,
    )
    assert.deepEqual(dry.json.internalTopics, topicsBefore)
    assert.deepEqual(dry.json.internalTopics, asOurs(apache.internalTopics))

    const table = await runCli(['group', 'reset-app', ours, '-t', input, '--to-offset', '5', '--dry-run'], {
      env: {COLUMNS: '80'},
    })
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /internal topic to delete/)
    assert.match(table.stdout, /dry run: nothing committed, nothing deleted/)
    for (const line of table.stdout.split('\n')) assert.ok(line.length <= 80, line)

    // Without a terminal it asks for --yes before anything is looked at or changed.
    const unconfirmed = await runCli(['group', 'reset-app', ours, '--input-topic', input, '--to-earliest'])
    assert.equal(unconfirmed.code, 2)
    assert.match(unconfirmed.stderr, /needs confirmation.*pass --yes/)
    // On a terminal it asks for the application id, and anything else changes nothing.
    const asked = await onTerminal(['group', 'reset-app', ours, '-t', input, '--to-earliest'], 'not-the-id\n')
    assert.match(asked.output, /Type the application id '.+' to confirm/)
    assert.match(asked.output, /reset not confirmed; nothing was changed/)
    assert.equal(asked.code, 2)
    const missing = await runCli(['group', 'reset-app', ours, '-t', uniqueName('absent'), '--to-earliest', '--yes'])
    assert.equal(missing.code, 3)

    assert.deepEqual(await committed(ours), offsetsBefore)
    assert.deepEqual(internalTopicsOf(ours, await topicNames()), topicsBefore)
  })

  it('commits the offsets and deletes the internal topics StreamsResetter does on the same state', async () => {
    const time = base + 30 * 60_000 + 1
    const listed = internalTopicsOf(ours, await topicNames())
    const reset = await runCli([
      'group',
      'reset-app',
      ours,
      '--input-topic',
      input,
      '--to-time',
      String(time),
      '--yes',
      '--json',
    ])
    assert.equal(reset.code, 0, reset.stderr)
    assert.equal(reset.json.applied, true)
    assert.deepEqual(reset.json.internalTopics, listed)
    const apache = parseResetter(
      await apacheTool(RESETTER, [
        '--bootstrap-server',
        BROKERS,
        '--application-id',
        theirs,
        '--input-topics',
        input,
        '--to-datetime',
        new Date(time).toISOString().replace('Z', '+00:00'),
      ]),
    )
    assert.deepEqual(reset.json.internalTopics, asOurs(apache.internalTopics))

    // Kafka drops a group's offsets on a topic once the topic is deleted; wait for both groups.
    const onlyInput = async (group: string) =>
      [...(await committed(group)).keys()].every((key) => key.startsWith(input))
    await waitFor('the internal topics and their offsets to be gone', async () => {
      const topics = await topicNames()
      return (
        internalTopicsOf(ours, topics).length === 0 &&
        internalTopicsOf(theirs, topics).length === 0 &&
        (await onlyInput(ours)) &&
        (await onlyInput(theirs))
      )
    })
    const oursAfter = await committed(ours)
    assert.deepEqual(oursAfter, await committed(theirs))
    assert.deepEqual(
      [...oursAfter.entries()]
        .map(([key, offset]) => [Number(key.slice(key.lastIndexOf(':') + 1)), offset])
        .sort((a, b) => Number(a[0]) - Number(b[0])),
      apache.offsets,
    )
    assert.deepEqual(
      (reset.json.offsets as {partition: number; target: number}[]).map((entry) => [entry.partition, entry.target]),
      apache.offsets,
    )
    // The time falls inside the input: every partition moved back into it, not to an end.
    const ends = await logEnds(input)
    assert.ok(apache.offsets.every(([partition, offset]) => offset > 0 && offset < (ends[partition] ?? 0)))
    assert.ok((await topicNames()).includes(output))
  })
})

/** The log end of each partition of a topic, in partition order. */
async function logEnds(topic: string): Promise<number[]> {
  const described = await runCli(['topic', 'describe', topic, '--json'])
  assert.equal(described.code, 0, described.stderr)
  return (described.json.partitions as {partition: number; high: number}[])
    .sort((a, b) => a.partition - b.partition)
    .map((partition) => partition.high)
}
