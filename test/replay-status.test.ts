import assert from 'node:assert/strict'
import type {ServerResponse} from 'node:http'
import {describe, test} from 'node:test'

import {jobStatus} from '../src/core/replay/job-status.js'
import {uniqueName} from './helpers.js'
import {pastRange, replayTestFile, scenario, withWorkers} from './replay-harness.js'
import {delay} from './webhook-receiver.js'

/** `replay status` rates: measured over delivery, never over the time a job sat queued. */
const SECRET = 'whsec_' + Buffer.from('replayctl-status-secret-01234567').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)

/** A job row put where a test wants it: queued long ago, in its second run, with known counts. */
async function fakeJob(topic: string, set: string): Promise<number> {
  const webhookId = uniqueName('wh').replace(/_/g, '-')
  await stack.addWebhook(webhookId, 'http://127.0.0.1:9/hook', SECRET)
  const {fromMs, toMs} = pastRange()
  const id = await stack.submit(webhookId, fromMs, toMs, topic)
  await stack.pool.query(`UPDATE replay_jobs SET ${set} WHERE id = ?`, [id])
  return id
}

describe('replay status rates', () => {
  test(
    "a resumed job: events/s and ETA from this run's start of delivery, not from submit or the " + 'first run',
    async () => {
      const topic = await stack.createTopic(3)
      // Submitted 2 h ago, first run 2 h ago; this run began delivering 10 s ago at 1,000 delivered
      // and checkpoint 4,000; now 2,000 delivered, checkpoint 6,000 of 10,000.
      const written = Date.now()
      const id = await fakeJob(
        topic,
        `state = 'ONGOING', lease_token = REPEAT('c', 32), owner = 'w:1', attempt = 2, heartbeat_at = NOW(3),
      created_at = NOW(3) - INTERVAL 2 HOUR, started_at = NOW(3) - INTERVAL 2 HOUR,
      \`partition\` = 0, partition_count = 3,
      start_offset = 0, end_offset = 10000, checkpoint_offset = 6000, delivered = 2000,
      run_started_at = NOW(3) - INTERVAL 10 SECOND, run_start_delivered = 1000, run_start_checkpoint = 4000`,
      )
      const status = await stack.ok(['replay', 'status', String(id)])
      // The run's clock kept going while the rows were written and the command started (seconds on a
      // loaded machine): the run is 10 s plus at most that old when the rate is taken.
      const lateSeconds = (Date.now() - written) / 1000
      // 1,000 events in 10 s (plus that): about 100/s, not 2,000 / 7,200 s.
      assert.ok(
        status.eventsPerSecond >= 1000 / (10 + lateSeconds) && status.eventsPerSecond <= 100,
        `events/s ${status.eventsPerSecond} (${lateSeconds} s late)`,
      )
      // 2,000 offsets in 10 s leave 4,000 offsets: about 20 s (twice the lateness more at most).
      assert.ok(
        status.etaSeconds >= 20 && status.etaSeconds <= 20 + 2 * lateSeconds + 1,
        `eta ${status.etaSeconds} (${lateSeconds} s late)`,
      )
      assert.equal(status.progressPercent, 60)

      // The same job once finished: over the run, to its end.
      await stack.pool.query(
        "UPDATE replay_jobs SET state = 'COMPLETED', finished_at = run_started_at + INTERVAL 20 SECOND, delivered = " +
          '3000 WHERE id = ?',
        [id],
      )
      const done = await stack.ok(['replay', 'status', String(id)])
      assert.equal(done.eventsPerSecond, 100)
      assert.equal(done.etaSeconds, null)

      // Waiting in the queue again (released): no rate, rather than one diluted by the wait.
      await stack.pool.query(
        "UPDATE replay_jobs SET state = 'OPEN', lease_token = NULL, finished_at = NULL WHERE id = ?",
        [id],
      )
      const waiting = await stack.ok(['replay', 'status', String(id)])
      assert.equal(waiting.eventsPerSecond, null)
      assert.equal(waiting.etaSeconds, null)
    },
  )

  test('under --watch: the rate over the interval since the previous sample', async () => {
    const topic = await stack.createTopic(3)
    const id = await fakeJob(
      topic,
      `state = 'ONGOING', lease_token = REPEAT('d', 32), owner = 'w:1', attempt = 1, heartbeat_at = NOW(3),
      created_at = NOW(3) - INTERVAL 1 HOUR, \`partition\` = 0, partition_count = 3, start_offset = 0,
      end_offset = 100000, checkpoint_offset = 50000, delivered = 50000, run_started_at = NOW(3) - INTERVAL 1 HOUR,
      run_start_delivered = 0, run_start_checkpoint = 0`,
    )
    const first = await jobStatus(stack.pool, id)
    // Over the whole hour: about 14/s.
    assert.ok(first.eventsPerSecond! > 13 && first.eventsPerSecond! < 14, `events/s ${first.eventsPerSecond}`)
    // 2,000 more in the last 2 s (by the database clock): about 1,000/s.
    const [[{now}]] = (await stack.pool.query('SELECT NOW(3) AS now')) as unknown as [[{now: Date}]]
    await stack.pool.query(
      'UPDATE replay_jobs SET delivered = delivered + 2000, checkpoint_offset = checkpoint_offset + 2000 WHERE id = ?',
      [id],
    )
    const next = await jobStatus(stack.pool, id, {job: first, at: now.getTime() - 2000})
    assert.ok(next.eventsPerSecond! > 900 && next.eventsPerSecond! <= 1000, `events/s ${next.eventsPerSecond}`)
    // 48,000 offsets left at that pace: 48 s or a little more.
    assert.ok(next.etaSeconds! >= 48 && next.etaSeconds! < 54, `eta ${next.etaSeconds}`)
  })

  test('end to end: a job queued for seconds before a worker starts is rated over its delivery only', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 3, unique: 40})
      const hook = await receiver(async (_request: unknown, res: ServerResponse) => {
        await delay(25)
        res.writeHead(200).end('ok')
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      await delay(4000)
      const queued = await stack.ok(['replay', 'status', String(id)])
      assert.equal(queued.state, 'OPEN')
      assert.equal(queued.eventsPerSecond, null)

      const worker = workers.start(['--once', '--max-in-flight', '1'])
      assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
      const status = await stack.ok(['replay', 'status', String(id)])
      assert.equal(status.state, 'COMPLETED')
      assert.equal(status.delivered, s.expected.length)
      // Measured from this run's start of delivery, which came after the wait in the queue.
      assert.ok(
        Date.parse(status.run.startedAt) - Date.parse(status.createdAt) >= 4000,
        `queued ${Date.parse(status.run.startedAt) - Date.parse(status.createdAt)} ms`,
      )
      const seconds = (Date.parse(status.finishedAt) - Date.parse(status.run.startedAt)) / 1000
      assert.ok(
        Math.abs(status.eventsPerSecond - s.expected.length / seconds) < 1e-6,
        `${status.eventsPerSecond} vs ${s.expected.length / seconds}`,
      )
      // One request at a time, each answered after 25 ms or more: at most 40/s.
      assert.ok(status.eventsPerSecond <= 40, `events/s ${status.eventsPerSecond}`)
    })
  })
})
