import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {after, before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {connectAdmin, loadNative, type Consumer} from '../src/core/kafka/client.js'
import {apacheTool, BIN, BROKERS, deleteTopics, nth, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * Consumer groups checked against Apache Kafka's own ConsumerGroupCommand on the real broker:
 * `group lag` shows the same committed offsets, log ends and lags as `--describe` (for a group
 * without members and one with an active member), `group reset-offsets --dry-run` plans what
 * Apache's dry run plans and commits nothing, the applied reset is what `--describe` then shows,
 * and a group with an active member is refused.
 */
const run = promisify(execFile)
const GROUP_COMMAND = 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand'
const topic = uniqueName('lag')
const idle = uniqueName('idle-group')
const active = uniqueName('active-group')
const HOUR = 3_600_000
const base = Date.now() - 2 * HOUR
let member: Consumer | undefined

interface DescribeRow {
  topic: string
  partition: number
  current: number | null
  logEnd: number
  lag: number | null
  consumerId: string | null
  host: string | null
  clientId: string | null
}

/**
 * ConsumerGroupCommand --describe, parsed: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST
 * CLIENT-ID.
 */
async function apacheDescribe(group: string): Promise<DescribeRow[]> {
  const output = await apacheTool(GROUP_COMMAND, ['--bootstrap-server', BROKERS, '--describe', '--group', group])
  const value = (cell: string) => (cell === '-' ? null : cell)
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cells) => cells[0] === group && cells.length >= 9)
    .map((cells) => ({
      topic: nth(cells, 1),
      partition: Number(cells[2]),
      current: value(nth(cells, 3)) === null ? null : Number(cells[3]),
      logEnd: Number(cells[4]),
      lag: value(nth(cells, 5)) === null ? null : Number(cells[5]),
      consumerId: value(nth(cells, 6)),
      host: value(nth(cells, 7)),
      clientId: value(nth(cells, 8)),
    }))
    .sort((a, b) => a.partition - b.partition)
}

function ours(json: {
  partitions: {
    topic: string
    partition: number
    committed: number | null
    logEnd: number
    lag: number | null
    memberId: string | null
    host: string | null
    clientId: string | null
  }[]
}): DescribeRow[] {
  return json.partitions.map((partition) => ({
    topic: partition.topic,
    partition: partition.partition,
    current: partition.committed,
    logEnd: partition.logEnd,
    lag: partition.lag,
    consumerId: partition.memberId,
    host: partition.host,
    clientId: partition.clientId,
  }))
}

/** The CreateTime of the record at an offset, read with kcat. */
async function timestampAt(partition: number, offset: number): Promise<number> {
  const {stdout} = await run('kcat', [
    '-b',
    BROKERS,
    '-C',
    '-t',
    topic,
    '-p',
    String(partition),
    '-o',
    String(offset),
    '-c',
    '1',
    '-q',
    '-f',
    '%T\n',
  ])
  return Number(stdout.trim())
}

before(async () => {
  const created = await runCli(['topic', 'create', topic, '--partitions', '3', '--json'])
  assert.equal(created.code, 0, created.stderr)
  // 60 events a minute apart over the last two hours; partitions get about 20 each.
  const events = Array.from({length: 60}, (_, index) =>
    JSON.stringify({webhook_id: `w${index}`, ts: base + index * 60_000}),
  ).join('\n')
  const produced = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts', '--json'], {
    input: `${events}\n`,
  })
  assert.equal(produced.code, 0, produced.stderr)
  // A known position for the idle group, committed by Apache's own tool: 3 on partitions 0 and 1, the end on 2.
  await apacheTool(GROUP_COMMAND, [
    '--bootstrap-server',
    BROKERS,
    '--reset-offsets',
    '--group',
    idle,
    '--topic',
    `${topic}:0,1`,
    '--to-offset',
    '3',
    '--execute',
  ])
  await apacheTool(GROUP_COMMAND, [
    '--bootstrap-server',
    BROKERS,
    '--reset-offsets',
    '--group',
    idle,
    '--topic',
    `${topic}:2`,
    '--to-latest',
    '--execute',
  ])
})

after(async () => {
  if (member?.isConnected()) await new Promise<void>((resolve) => member!.disconnect(() => resolve()))
  await deleteTopics([topic])
  const admin = await connectAdmin(testSettings())
  await new Promise((resolve) => admin.deleteGroups([idle, active], {timeout: 10_000}, resolve))
  admin.disconnect()
})

describe('group lag', () => {
  it('matches ConsumerGroupCommand --describe for a group without members, and adds the lag in time', async () => {
    const result = await runCli(['group', 'lag', idle, '--json'])
    assert.equal(result.code, 0, result.stderr)
    const apache = await apacheDescribe(idle)
    assert.equal(apache.length, 3)
    assert.deepEqual(ours(result.json), apache)
    assert.equal(result.json.state, 'Empty')
    assert.deepEqual(result.json.members, [])
    assert.equal(
      result.json.totalLag,
      apache.reduce((sum, row) => sum + row.lag!, 0),
    )

    const [p0, p1, p2] = result.json.partitions
    // The lag in time is the age of the record at the committed offset.
    for (const partition of [p0, p1]) {
      assert.equal(partition.committed, 3)
      assert.equal(partition.nextTimestamp, await timestampAt(partition.partition, 3))
      assert.equal(partition.lagMs, result.json.at - partition.nextTimestamp)
      assert.ok(partition.lagMs > HOUR / 2 && partition.lagMs < 3 * HOUR)
    }
    assert.equal(p2.lag, 0)
    assert.equal(p2.lagMs, 0)
    assert.equal(p2.nextTimestamp, null)
    assert.equal(result.json.maxLagMs, Math.max(p0.lagMs, p1.lagMs))

    const table = await runCli(['group', 'lag', idle, '--topic', topic])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /state\s+Empty/)
    assert.match(table.stdout, new RegExp(`${topic}\\s+0\\s+3\\s+${p0.logEnd}\\s+${p0.lag}\\s+\\d+h \\d+m`))
  })

  it('matches ConsumerGroupCommand for a group with an active member, and shows its assignment', async () => {
    const native = await loadNative()
    member = new native.KafkaConsumer(
      {
        'bootstrap.servers': BROKERS,
        'group.id': active,
        'client.id': 'lag-test-member',
        'enable.auto.commit': false,
        log_level: 0,
      },
      {'auto.offset.reset': 'earliest'},
    )
    await new Promise<void>((resolve, reject) => member!.connect({}, (error) => (error ? reject(error) : resolve())))
    member.subscribe([topic])
    const deadline = Date.now() + 60_000
    while (member.assignments().length < 3 && Date.now() < deadline)
      await new Promise((resolve) => member!.consume(1, () => resolve(undefined)))
    assert.equal(member.assignments().length, 3)
    member.commitSync([{topic, partition: 1, offset: 7}])

    const result = await runCli(['group', 'lag', active, '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.state, 'Stable')
    assert.equal(result.json.members.length, 1)
    assert.equal(result.json.members[0].clientId, 'lag-test-member')
    assert.deepEqual(
      result.json.members[0].partitions,
      [0, 1, 2].map((partition) => ({topic, partition})),
    )
    const apache = await apacheDescribe(active)
    assert.deepEqual(ours(result.json), apache)
    assert.deepEqual(
      apache.map((row) => row.current),
      [null, 7, null],
    )
    // Partitions 0 and 2 have no committed offset, so their lag is unknown and so are the total and the
    // largest lag in time: partition 1's alone would understate them.
    assert.equal(result.json.partitions[1].lag, nth(apache, 1).lag)
    assert.ok(result.json.partitions[1].lag > 0 && result.json.partitions[1].lagMs > 0)
    assert.equal(result.json.totalLag, null)
    assert.equal(result.json.maxLagMs, null)
    const table = await runCli(['group', 'lag', active])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^total lag +-$/m)

    const listed = await runCli(['group', 'list', '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const states = new Map(listed.json.map((group: {group: string; state: string}) => [group.group, group.state]))
    assert.equal(states.get(idle), 'Empty')
    assert.equal(states.get(active), 'Stable')
  })

  it('refuses to reset a group with an active member (exit 4), committing nothing', async () => {
    assert.ok(member?.isConnected())
    const before = await apacheDescribe(active)
    const refused = await runCli(['group', 'reset-offsets', active, '--topic', topic, '--to-earliest'])
    assert.equal(refused.code, 4)
    assert.match(
      refused.stderr,
      new RegExp(
        String.raw`^replayctl: error: consumer group '.+' has 1 active member \(Stable\); ` +
          String.raw`they would overwrite the new offsets: stop its consumers first`,
      ),
    )
    const refusedJson = await runCli([
      'group',
      'reset-offsets',
      active,
      '--topic',
      topic,
      '--to-earliest',
      '--dry-run',
      '--json',
    ])
    assert.equal(refusedJson.json.error.code, 'GROUP_ACTIVE')
    assert.deepEqual(await apacheDescribe(active), before)
  })

  it('redraws with --watch until interrupted', async () => {
    const child = spawn(process.execPath, [BIN, 'group', 'lag', idle, '--watch', '--interval', '1'], {
      env: {...process.env, REPLAYCTL_BROKERS: BROKERS, REPLAYCTL_CONFIG: '/nonexistent'},
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
    const deadline = Date.now() + 60_000
    while ((stdout.match(/total lag/g) ?? []).length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200))
    child.kill('SIGINT')
    const code = await new Promise((resolve) => child.on('close', resolve))
    assert.equal(code, 0)
    assert.ok((stdout.match(/total lag/g) ?? []).length >= 2, stdout)
    const watchJson = await runCli(['group', 'lag', idle, '--watch', '--json'])
    assert.equal(watchJson.code, 2)
  })

  it('says so for an unknown group (exit 3)', async () => {
    const result = await runCli(['group', 'lag', uniqueName('nobody')])
    assert.equal(result.code, 3)
    assert.match(result.stderr, /consumer group '.+' does not exist/)
  })
})

describe('group reset-offsets', () => {
  it(
    "--dry-run plans what ConsumerGroupCommand's dry run plans and commits nothing; applied, " + '--describe agrees',
    async () => {
      const before = await apacheDescribe(idle)
      const time = base + 30 * 60_000 + 1
      const dry = await runCli([
        'group',
        'reset-offsets',
        idle,
        '--topic',
        topic,
        '--to-time',
        String(time),
        '--dry-run',
        '--json',
      ])
      assert.equal(dry.code, 0, dry.stderr)
      assert.equal(dry.json.applied, false)
      const apachePlan = await apacheTool(GROUP_COMMAND, [
        '--bootstrap-server',
        BROKERS,
        '--reset-offsets',
        '--group',
        idle,
        '--topic',
        topic,
        '--to-datetime',
        new Date(time).toISOString().replace('Z', '+00:00'),
        '--dry-run',
      ])
      const planned = apachePlan
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter((cells) => cells[0] === idle)
        .map((cells) => [Number(cells[2]), Number(cells[3])])
        .sort((a, b) => nth(a, 0) - nth(b, 0))
      assert.deepEqual(
        dry.json.plan.map((reset: {partition: number; target: number}) => [reset.partition, reset.target]),
        planned,
      )
      assert.deepEqual(
        dry.json.plan.map((reset: {current: number}) => reset.current),
        before.map((row) => row.current),
      )
      assert.deepEqual(await apacheDescribe(idle), before)

      const applied = await runCli([
        'group',
        'reset-offsets',
        idle,
        '--topic',
        topic,
        '--to-time',
        String(time),
        '--json',
      ])
      assert.equal(applied.code, 0, applied.stderr)
      assert.equal(applied.json.applied, true)
      const after = await apacheDescribe(idle)
      assert.deepEqual(
        after.map((row) => [row.partition, row.current]),
        planned,
      )
      // Every partition now starts at its first record at or after the time.
      for (const row of after) {
        assert.ok((await timestampAt(row.partition, row.current!)) >= time)
        if (row.current! > 0) assert.ok((await timestampAt(row.partition, row.current! - 1)) < time)
      }

      const clamped = await runCli([
        'group',
        'reset-offsets',
        idle,
        '--topic',
        topic,
        '--to-offset',
        '1000000',
        '--json',
      ])
      assert.equal(clamped.code, 0, clamped.stderr)
      assert.deepEqual(
        (await apacheDescribe(idle)).map((row) => row.current),
        (await apacheDescribe(idle)).map((row) => row.logEnd),
      )
      const earliest = await runCli(['group', 'reset-offsets', idle, '--topic', topic, '--to-earliest'])
      assert.equal(earliest.code, 0, earliest.stderr)
      assert.match(earliest.stdout, /committed new offsets/)
      assert.deepEqual(
        (await apacheDescribe(idle)).map((row) => row.current),
        [0, 0, 0],
      )

      const none = await runCli(['group', 'reset-offsets', idle, '--topic', topic])
      assert.equal(none.code, 2)
      assert.match(none.stderr, /exactly one of --to-time, --to-offset, --to-earliest, --to-latest/)
    },
  )
})
