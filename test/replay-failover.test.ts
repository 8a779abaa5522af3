import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import type {ServerResponse} from 'node:http'
import {describe, test} from 'node:test'
import {promisify} from 'node:util'

import mysql from 'mysql2/promise'

import {
  assertCovers,
  ConnectionOwners,
  counts,
  eventBodies,
  isCompletion,
  processState,
  replayTestFile,
  scenario,
  waitFor,
  withWorkers,
} from './replay-harness.js'
import {delay} from './webhook-receiver.js'
import {nth} from './helpers.js'

/**
 * The replay engine when things break: workers killed or frozen, the broker and the database
 * restarted under a running job. Real broker, real MariaDB, workers as processes, real receivers.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-failover-secret-012345').toString('base64')
// Whatever a test broke, the stack is left running for the next file.
const {stack, workers, receiver} = replayTestFile(SECRET, {
  beforeCleanup: async () => {
    if (!(await mariadbUp())) await startMariadb()
    await brokerUp()
  },
})

/** A receiver that takes `ms` to answer each event: enough to keep a job busy for a few seconds. */
const slow = (ms: number) => async (_request: unknown, res: ServerResponse) => {
  await delay(ms)
  res.writeHead(200).end('ok')
}

const run = promisify(execFile)
const MARIADBD = '/usr/sbin/mariadbd'

/** Whether MariaDB accepts connections on 127.0.0.1:3306. */
async function mariadbUp(): Promise<boolean> {
  try {
    const connection = await mysql.createConnection({host: '127.0.0.1', port: 3306, user: 'root', connectTimeout: 1000})
    await connection.end()
    return true
  } catch {
    return false
  }
}

async function startMariadb(): Promise<void> {
  await run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', MARIADBD])
  await waitFor('MariaDB to accept connections', mariadbUp, 60_000, 200)
}

async function brokerStatus(): Promise<{healthy: boolean; nodes: {pid: number | null; running: boolean}[]}> {
  // Exit 7 (unhealthy) still prints the report.
  const result = await stack.cli(['dev', 'status', '--json'])
  assert.ok(result.code === 0 || result.code === 7, `dev status exited ${result.code}: ${result.stderr}`)
  return result.json as never
}

/** `replayctl dev up` until the broker answers again (it restarts a killed node). */
async function brokerUp(): Promise<void> {
  if ((await brokerStatus()).healthy) return
  const result = await stack.cli(['dev', 'up'], {timeoutMs: 120_000})
  assert.equal(result.code, 0, result.stderr)
  await waitFor('the broker to be healthy', async () => (await brokerStatus()).healthy, 60_000, 500)
}

describe('replay failover', () => {
  test(
    'kill -9 mid-job: another worker takes the job over from its checkpoint; nothing lost, ' + 'little re-sent',
    async (t) => {
      await withWorkers(workers, async () => {
        const maxInFlight = 4
        const checkpointMs = 200
        const answerMs = 6
        const s = await scenario(stack, {partitions: 3, unique: 1500, duplicates: 60, neighbours: 200, elsewhere: 100})
        const hook = await receiver(slow(answerMs))
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)

        const first = workers.start([
          '--max-in-flight',
          String(maxInFlight),
          '--checkpoint-interval',
          `${checkpointMs}ms`,
          '--heartbeat-interval',
          '1s',
          '--stale-after',
          '3s',
        ])
        await waitFor('700 deliveries', () => hook.requests.length >= 700, 60_000, 5)
        first.signal('SIGKILL')
        const killedAt = hook.requests.length
        assert.equal((await first.waitForExit()).signal, 'SIGKILL')
        const atKill = await stack.job(id)
        assert.equal(atKill.state, 'ONGOING')
        assert.ok(killedAt < s.expected.length - 100, 'killed well before the end')

        const second = workers.start([
          '--max-in-flight',
          String(maxInFlight),
          '--checkpoint-interval',
          `${checkpointMs}ms`,
          '--heartbeat-interval',
          '1s',
          '--stale-after',
          '3s',
        ])
        const done = await stack.waitForState(id, ['COMPLETED', 'FAILED', 'CANCELLED'], 60_000)
        await second.stop()
        assert.equal(done.state, 'COMPLETED', done.lastError ?? '')
        assert.equal(done.attempt, 2, 'one takeover')
        assert.equal(done.owner, second.owner)
        const claimed = second.logged('job claimed', id)
        assert.equal(claimed.length, 1)
        assert.equal(nth(claimed, 0).attempt, 2)
        assert.ok(
          (nth(claimed, 0).checkpoint as number) > s.offsetOf.get(nth(s.expected, 0))!,
          'resumed past the start of the range',
        )

        // Nothing lost: every unique event was answered 2xx at least once, and nothing else was sent.
        assertCovers(eventBodies(hook.delivered), s.expected, 'after takeover')
        assertCovers(eventBodies(hook.requests), s.expected, 'after takeover (all requests)')
        // Re-sent: what the first worker delivered above its last checkpoint. It saved one at least
        // every checkpoint interval (plus the time a save takes, allowed 100 ms); the receiver takes
        // at least `answerMs` per request over at most maxInFlight connections, so at most
        // maxInFlight / answerMs requests a ms; add the requests in flight at the kill and those
        // delivered beyond the window's head (each at most maxInFlight).
        const resent = eventBodies(hook.requests).length - s.expected.length
        const bound = Math.ceil(((checkpointMs + 100) * maxInFlight) / (answerMs - 1)) + 2 * maxInFlight
        t.diagnostic(
          `killed after ${killedAt} requests; checkpoint at the kill ${atKill.checkpointOffset}; re-sent ${resent}` +
            ` (bound ${bound})`,
        )
        assert.ok(resent >= 0)
        assert.ok(
          resent <= bound,
          `re-sent ${resent} events after the kill at ${killedAt} requests; at most ${bound} expected`,
        )
        // And the README's bound, whatever the timing: fewer than 2 x --max-ahead (default 64) + 3 x --max-in-flight.
        assert.ok(
          resent < 2 * 64 + 3 * maxInFlight,
          `re-sent ${resent}: the README promises fewer than ${2 * 64 + 3 * maxInFlight}`,
        )
        // The second worker's counts cover the whole range (rebuilt from the log below the checkpoint).
        assert.equal(done.delivered, s.expected.length)
        assert.equal(done.duplicates, s.duplicates)
        const repeats = [...counts(eventBodies(hook.requests)).values()].filter((n) => n > 2)
        assert.deepEqual(repeats, [], 'no event was sent more than twice')
      })
    },
  )

  test(
    'SIGSTOP past --stale-after: the job is taken over, and the frozen worker sends nothing more once ' + 'it resumes',
    async (t) => {
      await withWorkers(workers, async () => {
        const maxInFlight = 8
        const s = await scenario(stack, {partitions: 3, unique: 1200, duplicates: 20, neighbours: 100})
        // The receiver can hold its answers: the test freezes the worker only while every request it
        // has made is held here, so none is half-sent when it stops (see below).
        let holding = false
        const held: ServerResponse[] = []
        const owner = new Map<number, number | null>()
        let owners: ConnectionOwners | undefined
        const hook = await receiver(async (request, res, req) => {
          owner.set(request.n, owners!.ownerOf(req.socket))
          if (holding) {
            held.push(res)
            return
          }
          await delay(6)
          res.writeHead(200).end('ok')
        })
        owners = new ConnectionOwners(hook, () => workers.pids)
        // Keep the frozen worker's connections open across the freeze: on resuming, the answers are
        // waiting on them and it could send again at once.
        hook.server.keepAliveTimeout = 60_000
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const timings = [
          '--max-in-flight',
          String(maxInFlight),
          '--heartbeat-interval',
          '1s',
          '--stale-after',
          '3s',
          '--delivery-timeout',
          '30s',
        ]

        const frozen = workers.start(timings)
        await waitFor('200 deliveries', () => hook.requests.length >= 200, 60_000, 5)
        // Freeze it while its window is full and every request it sent is held by the receiver: it is
        // then waiting for answers, not between deciding to send and sending. (A process stopped in
        // that instant would send its request on resuming; no sender-side check can prevent that, only
        // a receiver that checks a fencing token could.)
        holding = true
        await waitFor('the window to fill', () => held.length === maxInFlight, 10_000, 5)
        frozen.signal('SIGSTOP')
        await waitFor('the worker to be stopped', () => processState(frozen.pid) === 'T', 5000, 10)
        const sentBeforeStop = hook.requests.length
        holding = false
        for (const res of held.splice(0)) res.writeHead(200).end('ok')

        const survivor = workers.start(timings)
        await waitFor('the takeover', async () => (await stack.job(id)).owner === survivor.owner, 20_000, 100)
        await waitFor(
          'the new owner to deliver',
          () => hook.requests.filter((r) => owner.get(r.n) === survivor.pid).length >= 100,
          20_000,
          5,
        )
        assert.notEqual(
          (await stack.job(id)).state,
          'COMPLETED',
          'the frozen worker resumes while the new owner is still delivering',
        )
        // Resume it while the database is slow to answer it: the job's row is locked, so its
        // heartbeat (the way it would learn that the job is no longer its own) waits. It must not
        // send meanwhile: its last proof of owning the job is older than --stale-after.
        const [[{lease_token: survivorToken}]] = (await stack.pool.query(
          'SELECT lease_token FROM replay_jobs WHERE id = ?',
          [id],
        )) as any
        const lock = await stack.pool.getConnection()
        let resumedAt: number
        let whileLocked: number
        try {
          await lock.query('START TRANSACTION')
          await lock.query('SELECT id FROM replay_jobs WHERE id = ? FOR UPDATE', [id])
          resumedAt = performance.now()
          frozen.signal('SIGCONT')
          await waitFor(
            'the resumed worker to ask the database about its lease',
            async () => {
              const [rows] = await stack.pool.query(
                "SELECT INFO AS info FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE replay_jobs SET " +
                  "heartbeat_at%'",
              )
              return (rows as {info: string}[]).some((row) => !row.info.includes(survivorToken))
            },
            10_000,
            20,
          )
          // Time enough for it to send, had it not waited for the answer.
          await delay(300)
          whileLocked = hook.requests.filter((r) => owner.get(r.n) === frozen.pid && r.arrivedAt >= resumedAt).length
        } finally {
          await lock.query('COMMIT').then(
            () => lock.release(),
            () => lock.destroy(),
          )
        }
        assert.equal(whileLocked, 0, 'the resumed worker sent nothing before it could confirm its lease')

        await survivor.waitForLog('job ended', id, 60_000)
        const done = await stack.job(id)
        assert.equal(done.state, 'COMPLETED', done.lastError ?? '')
        assert.ok(done.completionSent)
        const ended = await frozen.waitForLog('job ended', id, 20_000)
        assert.equal(ended.outcome, 'LEASE_LOST')
        assert.ok(frozen.running, 'the resumed worker carries on')

        // Who sent what: each request's connection belongs to one of the two processes.
        assert.equal(owners.unresolved, 0, 'every connection was traced to its process')
        const from = (pid: number) => hook.requests.filter((r) => owner.get(r.n) === pid)
        assert.equal(from(frozen.pid).length + from(survivor.pid).length, hook.requests.length)
        t.diagnostic(
          `frozen worker sent ${from(frozen.pid).length} requests (all before SIGSTOP), the survivor ` +
            `${from(survivor.pid).length}`,
        )
        assert.equal(from(frozen.pid).length, sentBeforeStop, 'the frozen worker sent nothing while stopped or after')
        const late = from(frozen.pid).filter((r) => r.arrivedAt >= resumedAt)
        assert.deepEqual(
          late.map((r) => String(r.body)),
          [],
          'nothing from the resumed worker',
        )
        assert.ok(from(survivor.pid).every((r) => r.headers['x-replay-job-id'] === String(id)))

        // The job: the survivor's, complete; everything delivered; one completion event.
        assert.equal(done.owner, survivor.owner)
        assert.equal(done.attempt, 2)
        assert.equal(done.delivered, s.expected.length)
        assertCovers(eventBodies(hook.delivered), s.expected, 'after the takeover')
        assert.equal(hook.requests.filter((r) => isCompletion(r.body)).length, 1)

        // The resumed worker carries on with other work, and leaves the taken job alone.
        await survivor.stop()
        const other = await scenario(stack, {partitions: 3, unique: 30})
        const otherHook = await receiver()
        await stack.addWebhook(other.webhookId, otherHook.url, SECRET)
        const otherId = await stack.submit(other.webhookId, other.fromMs, other.toMs, other.topic)
        const otherDone = await stack.waitForState(otherId, ['COMPLETED', 'FAILED', 'CANCELLED'], 30_000)
        assert.equal(otherDone.state, 'COMPLETED')
        assert.equal(otherDone.owner, frozen.owner)
        assert.deepEqual(eventBodies(otherHook.delivered).sort(), [...other.expected].sort())
        await frozen.stop()
        assert.deepEqual(await stack.job(id), done, 'the old job was not written to after it completed')
        assert.equal(from(frozen.pid).length, sentBeforeStop)
      })
    },
  )

  test(
    'MariaDB restarted mid-job: the worker rides it out and completes; nothing lost, nothing ' + 'sent twice',
    async (t) => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 3, unique: 1600, duplicates: 30, neighbours: 100})
        const hook = await receiver(slow(6))
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const worker = workers.start(['--max-in-flight', '2', '--heartbeat-interval', '1s', '--stale-after', '20s'])
        await waitFor('300 deliveries', () => hook.requests.length >= 300, 60_000, 5)

        const {stdout: pidBefore} = await run('pidof', ['mariadbd'])
        const stoppingAt = performance.now()
        await run('start-stop-daemon', ['--stop', '--exec', MARIADBD, '--retry', '30'])
        assert.equal(await mariadbUp(), false, 'MariaDB is down')
        const atStop = hook.requests.length
        assert.ok(atStop < s.expected.length - 200, `stopped well before the end (${atStop} delivered)`)
        // Down for 1.5 s: across a heartbeat and several checkpoints, each of which must wait for it.
        await delay(1500)
        const whileDown = hook.requests.length - atStop
        await startMariadb()
        t.diagnostic(
          `MariaDB down for ${Math.round(performance.now() - stoppingAt)} ms (stop to accepting connections), after ` +
            `${atStop} deliveries; ${whileDown} delivered while it was down`,
        )
        const {stdout: pidAfter} = await run('pidof', ['mariadbd'])
        assert.notEqual(pidAfter.trim(), pidBefore.trim(), 'a new server process')

        await worker.waitForLog('job ended', id, 90_000)
        const done = await stack.job(id)
        await worker.stop()
        assert.equal(done.state, 'COMPLETED', done.lastError ?? '')
        assert.equal(done.attempt, 1, 'the same worker finished it: no takeover')
        assert.equal(done.owner, worker.owner)
        assert.deepEqual(
          worker.logged('job ended', id).map((line) => line.outcome),
          ['COMPLETED'],
        )
        assert.ok(hook.requests.length > atStop, 'it delivered after the restart')
        // Nothing lost, and no event re-sent: the webhook stayed up, so each went once.
        assertCovers(eventBodies(hook.delivered), s.expected, 'after the database restart')
        assert.equal(eventBodies(hook.requests).length, s.expected.length, 'each event sent exactly once')
        assert.equal(done.delivered, s.expected.length)
        assert.equal(done.duplicates, s.duplicates)
        assert.ok(done.completionSent)
      })
    },
  )

  // Last in the file: the broker goes away.
  test('broker killed and restarted mid-job: the job completes; nothing lost', async (t) => {
    await withWorkers(workers, async () => {
      // Small record batches (8 KB) and a reader that keeps little in memory (64 KB, about 100
      // events), so the reader needs the broker for the rest of the range while the job runs, as it
      // would for a range of millions.
      // Far more events than the reader can hold at the kill (what librdkafka queued, a packed batch
      // in hand and one fetched ahead, the window: under a thousand here), so most must come from
      // the restarted broker.
      const s = await scenario(stack, {
        partitions: 3,
        unique: 4000,
        duplicates: 30,
        neighbours: 300,
        padding: 400,
        produceArgs: ['-X', 'batch.size=8192'],
      })
      // From the 400th request on the receiver holds its answers until the broker is dead, so the
      // job cannot run through the rest of the range while the broker is being killed, however
      // fast or slow the machine is.
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      const hook = await receiver(async (request, res) => {
        if (request.n >= 400) await released
        await slow(4)(request, res)
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      // (And reconnects within a second of the broker's return, not librdkafka's default 10 s.)
      const smallReads = [
        '-X',
        'queued.max.messages.kbytes=64',
        '-X',
        'fetch.max.bytes=65536',
        '-X',
        'max.partition.fetch.bytes=16384',
        '-X',
        'message.max.bytes=65536',
        '-X',
        'reconnect.backoff.max.ms=1000',
      ]
      const worker = workers.start([
        '--max-in-flight',
        '4',
        '--heartbeat-interval',
        '1s',
        '--stale-after',
        '20s',
        '--checkpoint-interval',
        '200ms',
        ...smallReads,
      ])
      await waitFor('400 deliveries', () => hook.requests.length >= 400, 60_000, 5)

      const status = await brokerStatus()
      const pid = nth(status.nodes, 0).pid!
      process.kill(pid, 'SIGKILL')
      const killedAt = performance.now()
      await waitFor('the broker to be gone', async () => !(await brokerStatus()).healthy, 20_000, 200)
      release()
      const atKill = hook.requests.length
      const upResult = await stack.cli(['dev', 'up'], {timeoutMs: 120_000})
      assert.equal(upResult.code, 0, upResult.stderr)
      await waitFor('the broker to be healthy', async () => (await brokerStatus()).healthy, 60_000, 500)
      const restartedAt = performance.now()
      assert.notEqual(nth((await brokerStatus()).nodes, 0).pid, pid)

      // The job may have gone back to the queue on a read error (and been resumed from its
      // checkpoint); either way it must end COMPLETED.
      const final = await stack.waitForState(id, ['COMPLETED', 'FAILED', 'CANCELLED'], 120_000)
      await worker.stop()
      assert.equal(final.state, 'COMPLETED', final.lastError ?? '')
      // The reader needed the broker: deliveries stopped while it was down (once the little it had
      // read was delivered) and the rest of the range came from the restarted broker.
      let gapAt = 1
      for (let i = 2; i < hook.requests.length; i++) {
        if (
          nth(hook.requests, i).arrivedAt - nth(hook.requests, i - 1).arrivedAt >
          nth(hook.requests, gapAt).arrivedAt - nth(hook.requests, gapAt - 1).arrivedAt
        )
          gapAt = i
      }
      const gap = nth(hook.requests, gapAt).arrivedAt - nth(hook.requests, gapAt - 1).arrivedAt
      const afterRestart = hook.requests.length - gapAt
      assert.ok(
        nth(hook.requests, gapAt - 1).arrivedAt >= killedAt - 50 && gap >= 5000,
        `a pause in deliveries while the broker was down (longest ${Math.round(gap)} ms)`,
      )
      assert.ok(
        afterRestart >= 1000,
        `most of the range was read from the restarted broker (${afterRestart} of ${s.expected.length} events ` +
          `delivered after the pause; ${atKill} before)`,
      )
      assertCovers(eventBodies(hook.delivered), s.expected, 'after the broker restart')
      // Re-sent at most what a takeover from the last checkpoint re-sends (as for kill -9): the
      // receiver answers in >= 4 ms over 4 connections.
      const resent = eventBodies(hook.requests).length - s.expected.length
      const bound = Math.ceil(((200 + 100) * 4) / 3) + 2 * 4
      t.diagnostic(
        `broker back ${Math.round(restartedAt - killedAt)} ms after the kill; deliveries paused ${Math.round(gap)}` +
          ` ms; ${gapAt} delivered before the pause, ${afterRestart} after; attempts ${final.attempt}; re-sent ` +
          `${resent} (bound ${bound})`,
      )
      assert.ok(resent <= bound, `re-sent ${resent}; at most ${bound} expected`)
      assert.equal(final.delivered, s.expected.length)
      assert.equal(final.duplicates, s.duplicates)
    })
  })
})
