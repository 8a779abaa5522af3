import assert from 'node:assert/strict'
import {existsSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {isAlive} from '../src/core/dev/processes.js'
import {runCli, uniqueName} from './helpers.js'

/**
 * `dev up --brokers 3`: a real three-node KRaft cluster in its own state directory and ports, so
 * it runs beside the stack the other tests use. One node is killed to show the cluster keeps
 * accepting writes (replication factor 3, min.insync.replicas 2) and `dev up` restarts it.
 */
const state = mkdtempSync(join(tmpdir(), 'replayctl-cluster-'))
const env = {REPLAYCTL_STATE: state, REPLAYCTL_KAFKA_HEAP: '384m', REPLAYCTL_BROKERS: '127.0.0.1:19300'}
const cli = (args: string[], timeoutMs = 120_000) => runCli(args, {env, timeoutMs})

after(async () => {
  await cli(['dev', 'down', '--purge', '--grace', '5'])
})

describe('dev up --brokers 3', () => {
  it('starts three nodes, survives losing one, and restarts it', async () => {
    const up = await cli(['dev', 'up', '--brokers', '3', '--port', '19300', '--json'], 180_000)
    assert.equal(up.code, 0, up.stderr)
    assert.equal(up.json.nodes.length, 3)
    assert.deepEqual(
      up.json.nodes.map((node: {address: string}) => node.address),
      ['127.0.0.1:19300', '127.0.0.1:19302', '127.0.0.1:19304'],
    )
    assert.equal(up.json.healthy, true)
    assert.equal(up.json.settings.REPLAYCTL_BROKERS, '127.0.0.1:19300,127.0.0.1:19302,127.0.0.1:19304')

    const again = await cli(['dev', 'up', '--brokers', '3', '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.alreadyRunning, true)
    assert.deepEqual(again.json.started, [])
    // Its hint names the database in use when REPLAYCTL_MYSQL_URL points at the stack's MariaDB, else the default.
    const database = `mysql://root@127.0.0.1:3306/${uniqueName('hint')}`
    const hinted = await runCli(['dev', 'up', '--brokers', '3'], {env: {...env, REPLAYCTL_MYSQL_URL: database}})
    assert.equal(hinted.code, 0, hinted.stderr)
    assert.match(hinted.stdout, /^the local stack is already running$/m)
    assert.ok(
      hinted.stdout.endsWith(
        'Use it with:\n' +
          '  export REPLAYCTL_BROKERS=127.0.0.1:19300,127.0.0.1:19302,127.0.0.1:19304\n' +
          `  export REPLAYCTL_MYSQL_URL=${database}\n`,
      ),
      hinted.stdout,
    )
    const remote = await runCli(['dev', 'up', '--brokers', '3', '--json'], {
      env: {...env, REPLAYCTL_MYSQL_URL: 'mysql://app@db.example.com:3306/replayctl'},
    })
    assert.equal(remote.code, 0, remote.stderr)
    assert.equal(remote.json.settings.REPLAYCTL_MYSQL_URL, 'mysql://root@127.0.0.1:3306/replayctl')
    const conflict = await cli(['dev', 'up', '--brokers', '1'])
    assert.equal(conflict.code, 4)
    assert.match(conflict.stderr, /created with 3 brokers, not 1: run `replayctl dev down --purge` first/)

    const created = await cli(['topic', 'create', 'replicated', '--partitions', '3', '--json'])
    assert.equal(created.code, 0, created.stderr)
    assert.equal(created.json.replicationFactor, 3)

    const victim = up.json.nodes[2]
    process.kill(victim.pid, 'SIGKILL')
    const status = await cli(['dev', 'status', '--json'])
    assert.equal(status.code, 7, 'a stopped node makes the stack unhealthy')
    assert.equal(status.json.nodes[2].running, false)
    assert.equal(status.json.healthy, false)

    // Once the cluster has noticed (the dead node's session expired, leaders moved, the ISRs
    // shrank), acks=all with two of three replicas in sync still succeeds.
    const deadline = Date.now() + 90_000
    for (;;) {
      const seen = await cli(['topic', 'describe', 'replicated', '--no-configs', '--json'])
      if (
        seen.code === 0 &&
        seen.json.partitions.every(
          (partition: {isr: number[]; leader: number}) => partition.isr.length === 2 && partition.leader !== victim.id,
        )
      )
        break
      assert.ok(Date.now() < deadline, `the ISRs never shrank to the two live nodes: ${seen.stdout}${seen.stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    const events = Array.from({length: 20}, (_, index) => JSON.stringify({webhook_id: `w${index}`})).join('\n')
    const produced = await runCli(['log', 'produce', '-t', 'replicated', '--json'], {
      env,
      input: events,
      timeoutMs: 60_000,
    })
    assert.equal(produced.code, 0, produced.stdout + produced.stderr)
    assert.equal(produced.json.events, 20)
    const described = await cli(['topic', 'describe', 'replicated', '--no-configs', '--json'])
    assert.equal(described.json.messages, 20)
    assert.ok(described.json.partitions.every((partition: {isr: number[]}) => partition.isr.length === 2))

    const restarted = await cli(['dev', 'up', '--brokers', '3', '--json'], 180_000)
    assert.equal(restarted.code, 0, restarted.stderr)
    assert.deepEqual(restarted.json.started, [3])
    assert.equal(restarted.json.healthy, true)

    const down = await cli(['dev', 'down', '--purge', '--json'])
    assert.equal(down.code, 0, down.stderr)
    assert.equal(down.json.stopped.length, 3)
    for (const node of restarted.json.nodes) assert.equal(isAlive(node.pid), false)
    assert.equal(existsSync(join(state, 'stack.json')), false)
  })
})
