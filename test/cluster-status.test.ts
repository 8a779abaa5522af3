import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {apacheTool, type CliResult, nth, runCli} from './helpers.js'

/**
 * `cluster status` against a three-node cluster of its own (own state directory and ports, beside
 * the stack the other tests use): healthy (exit 0), then one node killed -9 makes every replicated
 * partition under-replicated, those of a topic with min.insync.replicas 3 also under min ISR, the
 * unreplicated partitions it held offline, and the node missing (exit 7, the report still printed
 * under --json); `dev up` restarts it and the check turns healthy again. With Kafka's periodic leader
 * rebalance off, the partitions the restarted node led stay with the others until `cluster elect-leaders`.
 */
const PORT = Number(process.env.REPLAYCTL_TEST_CLUSTER_PORT ?? 9190)
const state = mkdtempSync(join(tmpdir(), 'replayctl-status-'))
const brokers = [PORT, PORT + 2, PORT + 4].map((port) => `127.0.0.1:${port}`).join(',')
// Without Kafka's periodic leader rebalance, the leaders a failover moved stay moved until elect-leaders.
const env = {
  REPLAYCTL_STATE: state,
  REPLAYCTL_KAFKA_HEAP: '384m',
  REPLAYCTL_BROKERS: brokers,
  REPLAYCTL_KAFKA_LEADER_REBALANCE: '0',
}
const cli = (args: string[], timeoutMs = 120_000) => runCli(args, {env, timeoutMs})

after(async () => {
  await cli(['dev', 'down', '--purge', '--grace', '5'])
})

/** The problems of the replicated topics (not 'solo'). */
const replicated = (problems: any[]): any[] => problems.filter((problem) => problem.topic !== 'solo')

/**
 * Runs `cluster status --json` until `done` holds; the broker's session timeout decides when a dead node is
 * noticed.
 */
async function statusUntil(
  done: (result: CliResult) => boolean,
  args: string[] = [],
  deadlineMs = 90_000,
): Promise<CliResult> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const result = await cli(['cluster', 'status', '--json', ...args])
    if (done(result) || Date.now() > deadline) return result
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}

describe('cluster status', () => {
  it('is healthy on three nodes, unhealthy (exit 7) with one killed, healthy again after dev up', async () => {
    const up = await cli(['dev', 'up', '--brokers', '3', '--port', String(PORT), '--json'], 180_000)
    assert.equal(up.code, 0, up.stderr)
    assert.equal((await cli(['topic', 'create', 'spread', '--partitions', '6', '--json'])).code, 0)
    assert.equal(
      (await cli(['topic', 'create', 'strict', '--partitions', '2', '--config', 'min.insync.replicas=3', '--json']))
        .code,
      0,
    )
    assert.equal(
      (
        await cli([
          'topic',
          'create',
          'solo',
          '--partitions',
          '3',
          '--replication-factor',
          '1',
          '--config',
          'min.insync.replicas=1',
          '--json',
        ])
      ).code,
      0,
    )

    const healthy = await statusUntil((result) => result.code === 0)
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr)
    assert.equal(healthy.json.healthy, true)
    assert.deepEqual(
      healthy.json.brokers.map((broker: {id: number; address: string; alive: boolean}) => [
        broker.id,
        broker.address,
        broker.alive,
      ]),
      [
        [1, `127.0.0.1:${PORT}`, true],
        [2, `127.0.0.1:${PORT + 2}`, true],
        [3, `127.0.0.1:${PORT + 4}`, true],
      ],
    )
    // The controller is the KRaft quorum leader, one of the three combined nodes.
    assert.ok([1, 2, 3].includes(healthy.json.controller))
    assert.equal(healthy.json.brokers.filter((broker: {controller: boolean}) => broker.controller).length, 1)
    // 8 partitions x 3 replicas on every broker, plus 3 single-replica ones; leaders add up to 11.
    assert.equal(healthy.json.partitions, 11)
    assert.equal(
      healthy.json.brokers.reduce((sum: number, broker: {replicas: number}) => sum + broker.replicas, 0),
      8 * 3 + 3,
    )
    assert.ok(healthy.json.brokers.every((broker: {replicas: number}) => broker.replicas >= 8))
    assert.equal(
      healthy.json.brokers.reduce((sum: number, broker: {leaders: number}) => sum + broker.leaders, 0),
      11,
    )
    const soloOnVictim = (await cli(['topic', 'describe', 'solo', '--no-configs', '--json'])).json.partitions
      .filter((partition: {replicas: number[]}) => partition.replicas[0] === 3)
      .map((partition: {partition: number}) => partition.partition)
    assert.ok(soloOnVictim.length >= 1, 'partitions are spread over the brokers')
    assert.equal(healthy.json.brokers[2].replicas, 8 + soloOnVictim.length)
    assert.deepEqual([healthy.json.offline, healthy.json.underMinIsr, healthy.json.underReplicated], [[], [], []])
    const table = await cli(['cluster', 'status', '--no-controller'])
    assert.equal(table.code, 0)
    assert.match(table.stdout, /health\s+healthy/)

    process.kill(up.json.nodes[2].pid, 'SIGKILL')
    const sick = await statusUntil(
      (result) =>
        result.code !== 0 &&
        result.json?.brokers?.[2]?.alive === false &&
        replicated(result.json.underReplicated).length === 8 &&
        result.json.offline.length === soloOnVictim.length,
    )
    assert.equal(sick.code, 7, sick.stdout + sick.stderr)
    assert.equal(sick.json.healthy, false)
    assert.deepEqual(sick.json.brokers[2], {
      id: 3,
      address: null,
      rack: null,
      alive: false,
      controller: false,
      replicas: 8 + soloOnVictim.length,
      leaders: 0,
    })
    assert.equal(sick.json.partitions, 11, 'the check itself created no topic (__consumer_offsets)')
    assert.equal(replicated(sick.json.underReplicated).length, 8)
    assert.ok(
      replicated(sick.json.underReplicated).every(
        (problem: {isr: number[]}) => problem.isr.length === 2 && !problem.isr.includes(3),
      ),
    )
    // min.insync.replicas 3 with two in sync: acks=all writes to 'strict' now fail.
    assert.deepEqual(
      replicated(sick.json.underMinIsr).map((problem: {topic: string; partition: number; minIsr: number}) => [
        problem.topic,
        problem.partition,
        problem.minIsr,
      ]),
      [
        ['strict', 0, 3],
        ['strict', 1, 3],
      ],
    )
    // A single-replica partition on the dead node has no leader: offline (whatever its ISR now says).
    assert.deepEqual(
      sick.json.offline.map(
        (problem: {topic: string; partition: number; leader: number | null; problems: string[]}) => [
          problem.topic,
          problem.partition,
          problem.leader,
          problem.problems[0],
        ],
      ),
      soloOnVictim.map((partition: number) => ['solo', partition, null, 'offline']),
    )
    const sickTable = await cli(['cluster', 'status', '--no-controller'])
    assert.equal(sickTable.code, 7)
    assert.match(sickTable.stdout, /UNHEALTHY/)
    assert.match(sickTable.stdout, /strict\s+0\s+\S+\s+\S+\s+\S+\s+3\s+under-min-isr, under-replicated/)

    const restarted = await cli(['dev', 'up', '--brokers', '3', '--json'], 180_000)
    assert.equal(restarted.code, 0, restarted.stderr)
    const recovered = await statusUntil((result) => result.code === 0, ['--no-controller'])
    assert.equal(recovered.code, 0, recovered.stdout)
    assert.equal(recovered.json.healthy, true)
    assert.equal(recovered.json.underReplicated.length, 0)
  })

  it(
    'cluster elect-leaders gives the restarted node its preferred partitions back, as TopicCommand ' +
      '--describe shows',
    async () => {
      // Kafka's own periodic rebalance is off on every node, so whatever the test took the partitions node 3
      // led before it was killed are all still led by the others.
      for (const node of ['1', '2', '3']) {
        const configs = await apacheTool('kafka.admin.ConfigCommand', [
          '--bootstrap-server',
          brokers,
          '--entity-type',
          'brokers',
          '--entity-name',
          node,
          '--describe',
          '--all',
        ])
        assert.match(configs, /^\s*auto\.leader\.rebalance\.enable=false /m, `node ${node}`)
      }
      const before = await apacheLeaders()
      const displaced = before.filter((row) => row.leader !== row.replicas[0])
      assert.ok(displaced.length > 0, JSON.stringify(before))
      assert.deepEqual(
        displaced,
        before.filter((row) => row.topic !== 'solo' && row.replicas[0] === 3),
      )
      const status = await cli(['cluster', 'status', '--json', '--no-controller'])
      assert.equal(status.json.notPreferredLeaders, displaced.length)
      assert.match(status.json.advice, /run `replayctl cluster elect-leaders`/)

      const missing = await cli(['cluster', 'elect-leaders', '--topic', 'spread', '--partition', '99'])
      assert.equal(missing.code, 3)
      assert.match(missing.stderr, /^replayctl: error: topic 'spread' has no partition 99/)
      assert.equal((await cli(['cluster', 'elect-leaders', '--partition', '0'])).code, 2)
      assert.equal((await cli(['cluster', 'elect-leaders', '--topic', 'nothing_here'])).code, 3)

      const elected = await cli(['cluster', 'elect-leaders', '--json'], 240_000)
      assert.equal(elected.code, 0, elected.stdout + elected.stderr)
      const after = await apacheLeaders()
      assert.ok(
        after.every((row) => row.leader === row.replicas[0]),
        JSON.stringify(after),
      )
      const outcome = new Map(
        elected.json.partitions.map(
          (partition: {topic: string; partition: number; outcome: string; leaderAfter: number}) => [
            `${partition.topic}:${partition.partition}`,
            partition,
          ],
        ),
      )
      for (const row of before) {
        const reported = outcome.get(`${row.topic}:${row.partition}`) as
          {outcome: string; leaderAfter: number} | undefined
        assert.ok(reported, `${row.topic}:${row.partition} reported`)
        assert.equal(
          reported.outcome,
          row.leader === row.replicas[0] ? 'already-preferred' : 'elected',
          `${row.topic}:${row.partition}`,
        )
        assert.equal(reported.leaderAfter, row.replicas[0])
      }
      assert.equal(
        elected.json.partitions.filter(
          (partition: {topic: string; outcome: string}) =>
            partition.outcome === 'elected' && !partition.topic.startsWith('__'),
        ).length,
        displaced.length,
      )
      assert.equal(elected.json.failed, 0)
      const again = await cli(['cluster', 'elect-leaders', '--topic', 'spread'])
      assert.equal(again.code, 0)
      assert.match(again.stdout, /0 elected, 6 already preferred, 0 failed/)
    },
  )
})

/** TopicCommand --describe of the test's topics: leader and replica list per partition. */
async function apacheLeaders(): Promise<{topic: string; partition: number; leader: number; replicas: number[]}[]> {
  const output = await apacheTool('org.apache.kafka.tools.TopicCommand', [
    '--bootstrap-server',
    brokers,
    '--describe',
    '--exclude-internal',
  ])
  return [...output.matchAll(/Topic: (\S+)\s+Partition: (\d+)\s+Leader: (-?\d+)\s+Replicas: ([\d,]+)/g)].map(
    (match) => ({
      topic: nth(match, 1),
      partition: Number(match[2]),
      leader: Number(match[3]),
      replicas: nth(match, 4).split(',').map(Number),
    }),
  )
}
