import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {openPool} from '../src/core/db/database.js'
import {loadNative, type Consumer} from '../src/core/kafka/client.js'
import {partitionCountHistory} from '../src/core/replay/store/partition-history/index.js'
import {
  apacheTool,
  BROKERS,
  deleteTopics,
  isOneLineError,
  MYSQL_URL,
  nth,
  onTerminal,
  runCli,
  uniqueName,
} from './helpers.js'

/**
 * The admin verbs (issue 14, item 9) on the real broker, each checked with Apache Kafka's own
 * tools: TopicCommand --describe for partitions and configs, TopicCommand --list for deletions,
 * ConsumerGroupCommand --list for groups. Bad input deletes and changes nothing.
 */
const TOPIC_COMMAND = 'org.apache.kafka.tools.TopicCommand'
const GROUP_COMMAND = 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand'
const grown = uniqueName('adm_grow')
const doomed = [uniqueName('adm_del'), uniqueName('adm_del')]
const asked = uniqueName('adm_ask')
const idle = uniqueName('adm_idle')
const busy = uniqueName('adm_busy')
let member: Consumer | undefined

const apacheTopics = async () =>
  (await apacheTool(TOPIC_COMMAND, ['--bootstrap-server', BROKERS, '--list']))
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
const apacheGroups = async () =>
  (await apacheTool(GROUP_COMMAND, ['--bootstrap-server', BROKERS, '--list']))
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
/** TopicCommand --describe: the partition count and the configs set on the topic. */
async function apacheDescribe(topic: string): Promise<{partitions: number; configs: Record<string, string>}> {
  const output = await apacheTool(TOPIC_COMMAND, ['--bootstrap-server', BROKERS, '--describe', '--topic', topic])
  const header = /PartitionCount:\s*(\d+).*Configs:\s*(.*)$/m.exec(output)!
  const configs: Record<string, string> = {}
  // Configs are "k=v,k2=v2", where a value may itself hold commas (cleanup.policy=compact,delete).
  for (const match of nth(header, 2).matchAll(/([a-z][a-z0-9.]*)=(.*?)(?=,[a-z][a-z0-9.]*=|$)/g))
    configs[nth(match, 1)] = nth(match, 2)
  return {partitions: Number(header[1]), configs}
}

before(async () => {
  for (const topic of [grown, ...doomed, asked])
    assert.equal((await runCli(['topic', 'create', topic, '--partitions', '2', '--json'])).code, 0)
  await apacheTool(GROUP_COMMAND, [
    '--bootstrap-server',
    BROKERS,
    '--reset-offsets',
    '--group',
    idle,
    '--topic',
    grown,
    '--to-earliest',
    '--execute',
  ])
})

after(async () => {
  if (member?.isConnected()) await new Promise<void>((resolve) => member!.disconnect(() => resolve()))
  await deleteTopics([grown, ...doomed, asked])
})

describe('topic delete', () => {
  it(
    'refuses without a terminal and without --yes (exit 2), internal topics, and a missing name (exit 3), ' +
      'deleting nothing',
    async () => {
      const unconfirmed = await runCli(['topic', 'delete', nth(doomed, 0)])
      assert.equal(unconfirmed.code, 2)
      assert.ok(isOneLineError(unconfirmed), unconfirmed.stderr)
      assert.match(unconfirmed.stderr, /standard input is not a terminal: pass --yes/)
      for (const internal of ['__consumer_offsets', '__transaction_state', '_schemas']) {
        const refused = await runCli(['topic', 'delete', internal, '--yes'])
        assert.equal(refused.code, 2, internal)
        assert.match(refused.stderr, /refusing to delete internal topic/)
      }
      const missing = await runCli(['topic', 'delete', nth(doomed, 0), uniqueName('adm_none'), '--yes', '--json'])
      assert.equal(missing.code, 3)
      assert.equal(missing.json.error.code, 'TOPIC_NOT_FOUND')
      const listed = await apacheTopics()
      for (const topic of [...doomed, '__consumer_offsets']) assert.ok(listed.includes(topic), topic)
    },
  )

  it('on a terminal asks for the topic name: another answer (y too) deletes nothing, the name does', async () => {
    const refused = await onTerminal(['topic', 'delete', asked], 'y\n')
    assert.equal(refused.code, 2, refused.output)
    assert.match(
      refused.output,
      new RegExp(`Delete topic '${asked}' and all its records\\? Type its name to confirm: `),
    )
    assert.match(refused.output, /deletion not confirmed; nothing was deleted/)
    assert.ok((await apacheTopics()).includes(asked))

    const confirmed = await onTerminal(['topic', 'delete', asked], `${asked}\n`)
    assert.equal(confirmed.code, 0, confirmed.output)
    assert.match(confirmed.output, new RegExp(`deleted '${asked}'`))
    const deadline = Date.now() + 30_000
    let listed = await apacheTopics()
    while (listed.includes(asked) && Date.now() < deadline) listed = await apacheTopics()
    assert.ok(!listed.includes(asked), listed.join(' '))
  })

  it('deletes several topics with --yes, as TopicCommand --list then shows', async () => {
    const result = await runCli(['topic', 'delete', ...doomed, '--yes', '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(result.json, {deleted: doomed})
    const deadline = Date.now() + 30_000
    let listed = await apacheTopics()
    while (doomed.some((topic) => listed.includes(topic)) && Date.now() < deadline) listed = await apacheTopics()
    assert.ok(!doomed.some((topic) => listed.includes(topic)), listed.join(' '))
    assert.ok(listed.includes(grown))
  })
})

describe('topic alter', () => {
  it('refuses to shrink and bad configs before changing anything', async () => {
    const shrink = await runCli(['topic', 'alter', grown, '--partitions', '1'])
    assert.equal(shrink.code, 2)
    assert.ok(isOneLineError(shrink), shrink.stderr)
    assert.match(shrink.stderr, /has 2 partitions and Kafka cannot reduce a partition count/)
    const malformed = await runCli(['topic', 'alter', grown, '--partitions', '3', '--config', 'retention.ms'])
    assert.equal(malformed.code, 2)
    assert.match(malformed.stderr, /malformed --config 'retention\.ms'/)
    const nothing = await runCli(['topic', 'alter', grown])
    assert.equal(nothing.code, 2)
    const missing = await runCli(['topic', 'alter', uniqueName('adm_none'), '--partitions', '3'])
    assert.equal(missing.code, 3)
    const unknown = await runCli(['topic', 'alter', grown, '--config', 'no.such.config=1', '--json'], {
      timeoutMs: 180_000,
    })
    assert.equal(unknown.code, 2)
    assert.equal(unknown.json.error.code, 'INVALID_CONFIG')
    assert.match(unknown.json.error.message, /no\.such\.config/)
    assert.deepEqual(await apacheDescribe(grown), {
      partitions: 2,
      configs: {
        'cleanup.policy': 'delete',
        'compression.type': 'snappy',
        'min.insync.replicas': '1',
        'retention.ms': '432000000',
      },
    })
  })

  it('adds partitions, warns that keys move, and records the old and new counts for replays', async () => {
    const result = await runCli(['topic', 'alter', grown, '--partitions', '5'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /partitions: 2 -> 5/)
    assert.match(
      result.stderr,
      /warning: keyed records written from now on go to partition murmur2\(key\) % 5 instead of % 2/,
    )
    assert.equal((await apacheDescribe(grown)).partitions, 5)
    const pool = await openPool(MYSQL_URL)
    try {
      const history = await partitionCountHistory(pool, grown)
      assert.deepEqual(
        history.map((sighting) => sighting.partitionCount),
        [2, 5],
      )
      assert.ok(nth(history, 0).firstSeenMs <= nth(history, 1).firstSeenMs)
    } finally {
      await pool.end()
    }
    const same = await runCli(['topic', 'alter', grown, '--partitions', '5', '--json'])
    assert.equal(same.code, 0)
    assert.equal(same.json.partitions.changed, false)
  })

  it('sets and deletes configs, reporting old and new values as TopicCommand --describe shows them', async () => {
    const result = await runCli(
      [
        'topic',
        'alter',
        grown,
        '--config',
        'retention.ms=86400000',
        '--config',
        'cleanup.policy=compact,delete',
        '--delete-config',
        'compression.type',
        '--json',
      ],
      {timeoutMs: 180_000},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(result.json.configs.changes, [
      {key: 'retention.ms', old: '432000000', new: '86400000'},
      {key: 'cleanup.policy', old: 'delete', new: 'compact,delete'},
      {key: 'compression.type', old: 'snappy', new: null},
    ])
    assert.deepEqual((await apacheDescribe(grown)).configs, {
      'cleanup.policy': 'compact,delete',
      'min.insync.replicas': '1',
      'retention.ms': '86400000',
    })
  })
})

describe('group delete', () => {
  it(
    'refuses a group with a member (exit 4) and an unknown group (exit 3); deletes an empty one, as ' +
      'ConsumerGroupCommand --list shows',
    async () => {
      const native = await loadNative()
      member = new native.KafkaConsumer(
        {'bootstrap.servers': BROKERS, 'group.id': busy, 'enable.auto.commit': false, log_level: 0},
        {'auto.offset.reset': 'earliest'},
      )
      await new Promise<void>((resolve, reject) => member!.connect({}, (error) => (error ? reject(error) : resolve())))
      member.subscribe([grown])
      const deadline = Date.now() + 60_000
      while (member.assignments().length === 0 && Date.now() < deadline)
        await new Promise((resolve) => member!.consume(1, () => resolve(undefined)))
      assert.ok(member.assignments().length > 0)

      const active = await runCli(['group', 'delete', busy])
      assert.equal(active.code, 4)
      assert.ok(isOneLineError(active), active.stderr)
      assert.match(active.stderr, /has 1 active member \(Stable\)/)
      const unknown = await runCli(['group', 'delete', uniqueName('adm_nobody'), '--json'])
      assert.equal(unknown.code, 3)
      assert.equal(unknown.json.error.code, 'GROUP_NOT_FOUND')
      assert.ok((await apacheGroups()).includes(idle))

      const deleted = await runCli(['group', 'delete', idle, '--json'])
      assert.equal(deleted.code, 0, deleted.stderr)
      assert.deepEqual(deleted.json, {group: idle, deleted: true})
      const groups = await apacheGroups()
      assert.ok(!groups.includes(idle))
      assert.ok(groups.includes(busy))

      await new Promise<void>((resolve) => member!.disconnect(() => resolve()))
      const emptied = await runCli(['group', 'delete', busy])
      assert.equal(emptied.code, 0, emptied.stderr)
    },
  )
})
