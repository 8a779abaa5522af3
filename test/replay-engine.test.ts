import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {connectAdmin} from '../src/core/kafka/client.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {apacheTool, BROKERS, isOneLineError, nth, testSettings, uniqueName} from './helpers.js'
import {
  assertCustomerFacing,
  counts,
  eventBodies,
  HOUR,
  idsInPartition,
  isCompletion,
  pastRange,
  produceLines,
  readPartition,
  replayTestFile,
  scenario,
  waitFor,
  withWorkers,
} from './replay-harness.js'
import {delay} from './webhook-receiver.js'

/**
 * The replay engine's promises to a receiver, end to end with worker processes: how many events a
 * crash sends twice (--max-ahead), what order arrives at each --max-in-flight.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-engine-secret-0123456789').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)

/** Grows a topic's partition count with the Kafka admin client's createPartitions. */
async function growPartitions(topic: string, count: number): Promise<void> {
  const admin = await connectAdmin(testSettings())
  try {
    await new Promise<void>((resolve, reject) =>
      admin.createPartitions(topic, count, 30_000, (error) => (error ? reject(error) : resolve())),
    )
  } finally {
    admin.disconnect()
  }
}

/** A webhook id whose partition differs between the two counts. */
function movingWebhookId(before: number, after: number): string {
  const base = uniqueName('wh').replace(/_/g, '-')
  for (let i = 0; ; i++)
    if (partitionFor(`${base}-${i}`, before) !== partitionFor(`${base}-${i}`, after)) return `${base}-${i}`
}

describe('replay engine bounds', () => {
  test(
    'a stuck event: delivery runs at most --max-ahead past it; after kill -9 another worker finishes, re-sending ' +
      'fewer than 2 x max-ahead + 3 x max-in-flight',
    async () => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 2, unique: 300, neighbours: 60, elsewhere: 60})
        const maxAhead = 32
        const maxInFlight = 8
        const stuckIndex = 40
        const stuck = nth(s.expected, stuckIndex)
        const indexOf = new Map(s.expected.map((body, index) => [body, index]))
        let released = false
        const hook = await receiver((request, res) => {
          res.writeHead(!released && String(request.body) === stuck ? 500 : 200).end()
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        // No time-based save during the test: only the count-based one keeps the bound.
        const flags = [
          '--max-in-flight',
          String(maxInFlight),
          '--max-ahead',
          String(maxAhead),
          '--checkpoint-interval',
          '1h',
          '--delivery-attempts',
          '1000',
          '--retry-base',
          '20ms',
        ]
        const owner = workers.start(flags)
        const acceptedPastStuck = () => hook.delivered.filter((body) => indexOf.get(String(body))! > stuckIndex).length
        // The window fills: the stuck event and maxAhead - 1 accepted events after it.
        await waitFor('the window to fill behind the stuck event', () => acceptedPastStuck() >= maxAhead - 1, 60_000)
        await delay(1500) // it keeps retrying the stuck event; nothing more may go out meanwhile
        owner.signal('SIGKILL')
        await owner.exited
        const byOwner = hook.delivered.map((body) => indexOf.get(String(body))!)
        assert.ok(!byOwner.includes(stuckIndex), 'the stuck event was never accepted')
        assert.ok(hook.requests.filter((r) => String(r.body) === stuck).length >= 2, 'the stuck event was retried')
        assert.equal(
          Math.max(...byOwner),
          stuckIndex + maxAhead - 1,
          `delivery ran exactly max-ahead - 1 events past the stuck one, never further`,
        )
        // What a receiver can rely on at --max-in-flight N: no event arrives before one more than
        // max-ahead events earlier was accepted.
        const acceptedSoFar = new Set<number>()
        for (const request of hook.requests) {
          const index = indexOf.get(String(request.body))!
          for (let earlier = 0; earlier <= index - maxAhead; earlier++)
            assert.ok(acceptedSoFar.has(earlier), `event ${index} was sent before event ${earlier} was accepted`)
          if (hook.delivered.includes(request.body)) acceptedSoFar.add(index)
        }

        released = true
        // It takes the job over once the dead owner's heartbeat is --stale-after old.
        const finisher = workers.start(flags)
        const job = await stack.waitForState(id, ['COMPLETED', 'FAILED'], 90_000)
        await finisher.stop()
        assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
        await waitFor('the completion event', () => hook.requests.some((r) => isCompletion(r.body)))
        const accepted = eventBodies(hook.delivered)
        assert.deepEqual(new Set(accepted), new Set(s.expected), 'every event accepted at least once')
        const twice = [...counts(accepted).values()].filter((n) => n > 1).length
        assert.ok(
          twice < 2 * maxAhead + 3 * maxInFlight,
          `${twice} events accepted twice; the README promises fewer than ${2 * maxAhead + 3 * maxInFlight}`,
        )
        assert.equal(job.delivered, s.expected.length, 'the job counts each event once')
      })
    },
  )

  test(
    'a checkpoint save that finds the lease gone stops the job at once, though saves are not waited for: ' +
      'LEASE_LOST, fewer than 2 x max-ahead + 3 x max-in-flight sends after, none once it ended',
    async (t) => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 2, unique: 800, neighbours: 40})
        const maxAhead = 16
        const maxInFlight = 4
        const hook = await receiver(async (_request, res) => {
          await delay(2)
          res.writeHead(200).end()
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        // Heartbeats far apart: the count-driven checkpoint saves are what find the lease gone.
        const worker = workers.start([
          '--max-in-flight',
          String(maxInFlight),
          '--max-ahead',
          String(maxAhead),
          '--checkpoint-interval',
          '1h',
          '--heartbeat-interval',
          '30s',
          '--stale-after',
          '60s',
        ])
        await waitFor('100 deliveries', () => hook.requests.length >= 100, 60_000, 2)
        // Another worker's lease, as a takeover would leave it.
        await stack.pool.query("UPDATE replay_jobs SET lease_token = REPEAT('z', 32) WHERE id = ?", [id])
        const atSteal = hook.requests.length
        const ended = await worker.waitForLog('job ended', id, 30_000)
        assert.equal(ended.outcome, 'LEASE_LOST')
        const atEnd = hook.requests.length
        await delay(300)
        assert.equal(hook.requests.length, atEnd, 'nothing was sent once the job ended')
        const after = atEnd - atSteal
        t.diagnostic(`lease taken after ${atSteal} requests; ${after} more before the job ended`)
        assert.ok(
          after < 2 * maxAhead + 3 * maxInFlight,
          `${after} requests after the lease was taken; fewer than ${2 * maxAhead + 3 * maxInFlight} expected`,
        )
        assert.ok(atEnd < s.expected.length, 'the job stopped before its end')
        await worker.stop()
      })
    },
  )

  test(
    '--max-in-flight 1 with 30% of answers failing: every event accepted once, in log order, one request ' +
      'at a time',
    async () => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 2, unique: 150, duplicates: 20, neighbours: 40, elsewhere: 40})
        let state = 7
        const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32
        const hook = await receiver((request, res) => {
          res.writeHead(!isCompletion(request.body) && random() < 0.3 ? 503 : 200).end()
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const worker = workers.start([
          '--once',
          '--max-in-flight',
          '1',
          '--delivery-attempts',
          '30',
          '--retry-base',
          '5ms',
        ])
        assert.equal((await worker.waitForExit(90_000)).code, 0, worker.stderr)
        assert.equal((await stack.job(id)).state, 'COMPLETED')
        assert.deepEqual(eventBodies(hook.delivered), s.expected, 'accepted once each, in log order')
        // Retries repeat the same event; no later event is sent before it is accepted.
        const indexOf = new Map(s.expected.map((body, index) => [body, index]))
        const sent = hook.requests.filter((r) => !isCompletion(r.body)).map((r) => indexOf.get(String(r.body))!)
        assert.deepEqual(
          sent,
          [...sent].sort((a, b) => a - b),
        )
        assert.ok(hook.requests.length > s.expected.length, 'some answers failed and were retried')
        assert.ok(hook.requests.every((r) => r.concurrent === 1))
      })
    },
  )

  test(
    "two datacenters' topics (4 and 3 partitions) with overlapping byte-identical copies: each event once, in " +
      'timestamp order; kill -9 mid-way, another worker finishes from per-topic checkpoints',
    async () => {
      await withWorkers(workers, async () => {
        const dc1 = await stack.createTopic(4, 'dc1')
        const dc2 = await stack.createTopic(3, 'dc2')
        const webhookId = uniqueName('wh').replace(/_/g, '-')
        const {fromMs, toMs} = pastRange()
        const total = 240
        const step = Math.floor((toMs - fromMs) / (total + 2))
        const event = (i: number) =>
          JSON.stringify({webhook_id: webhookId, ts: fromMs + step * (i + 1), event: `${webhookId}:${i}`})
        // dc1 holds i % 3 != 2, dc2 holds i % 3 != 0: the union is every event, i % 3 == 1 is in both.
        // Read one topic after the other, the order would be wrong; only the merge gives time order.
        const noise = (dc: string, partitions: number, i: number) => {
          const [other] = idsInPartition(`${webhookId}-${dc}`, partitions, partitionFor(webhookId, partitions), 1)
          return JSON.stringify({webhook_id: other, ts: fromMs + step * (i + 1), event: `${other}:${i}`})
        }
        const lines1: string[] = []
        const lines2: string[] = []
        for (let i = 0; i < total; i++) {
          if (i % 3 !== 2) lines1.push(event(i))
          if (i % 3 !== 0) lines2.push(event(i))
          if (i % 5 === 0) lines1.push(noise('a', 4, i))
          if (i % 4 === 0) lines2.push(noise('b', 3, i))
        }
        await produceLines(stack, dc1, lines1)
        await produceLines(stack, dc2, lines2)
        const expected = Array.from({length: total}, (_, i) => event(i))
        const overlap = expected.filter((_, i) => i % 3 === 1).length

        const stuck = event(150)
        let released = false
        const hook = await receiver((request, res) => {
          res.writeHead(!released && String(request.body) === stuck ? 500 : 200).end()
        })
        await stack.addWebhook(webhookId, hook.url, SECRET)
        const id = await stack.submit(webhookId, fromMs, toMs, dc1, ['--topic', dc2])
        const submitted = await stack.job(id)
        assert.deepEqual(submitted.topics, [dc1, dc2])

        const flags = ['--max-in-flight', '1', '--delivery-attempts', '1000']
        const owner = workers.start(flags)
        await waitFor(
          'delivery to reach the stuck event',
          () => hook.requests.filter((r) => String(r.body) === stuck).length >= 2,
          60_000,
        )
        await delay(800) // past a checkpoint interval (200 ms in tests)
        owner.signal('SIGKILL')
        await owner.exited
        const byOwner = eventBodies(hook.delivered)
        assert.deepEqual(
          byOwner,
          expected.slice(0, 150),
          'before the crash: each event once, in timestamp order, across both topics',
        )
        const midway = await stack.job(id)
        assert.equal(midway.sources?.length, 2)
        assert.deepEqual(
          midway.sources!.map((source) => [source.topic, source.partition]),
          [
            [dc1, partitionFor(webhookId, 4)],
            [dc2, partitionFor(webhookId, 3)],
          ],
        )
        assert.ok(
          midway.sources!.every(
            (source) => source.checkpointOffset > source.startOffset && source.checkpointOffset < source.endOffset,
          ),
          `one checkpoint per topic, each mid-way: ${JSON.stringify(midway.sources)}`,
        )

        released = true
        const finisher = workers.start(flags)
        const job = await stack.waitForState(id, ['COMPLETED', 'FAILED'], 90_000)
        await finisher.stop()
        assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
        const accepted = eventBodies(hook.delivered)
        assert.deepEqual(new Set(accepted), new Set(expected), 'every event of both topics')
        const firstArrivals = [...new Set(accepted)]
        assert.deepEqual(firstArrivals, expected, 'in timestamp order')
        const resent = accepted.slice(byOwner.length)
        assert.deepEqual(
          resent,
          expected.slice(expected.indexOf(nth(resent, 0))),
          'the new owner resumes in timestamp order from the checkpoints',
        )
        assert.ok(resent.length - (total - 150) < 2 * 64 + 3, 're-sends within the README bound')
        assert.equal(job.delivered, total)
        assert.equal(job.duplicates, overlap, 'the copies in the second topic were dropped')
        assert.ok(job.sources!.every((source) => source.checkpointOffset === source.endOffset))
        await waitFor('the completion event', () => hook.requests.some((r) => isCompletion(r.body)))
        const status = JSON.parse(String(hook.requests.find((r) => isCompletion(r.body))!.body)).replay_job_status
        // Both topics are new and partitions beyond 0 hold nothing from before --from: each topic has a
        // growth note for the operator, and the customer reads one sentence for both.
        assert.deepEqual(job.gaps, [{kind: 'partition-growth'}, {kind: 'partition-growth'}])
        assert.equal(
          status.job_state_description,
          `Replayed ${total} events. Some events may not have been replayed: the event log was reorganized ` +
            `during the ` +
            `range, at a time not recorded.`,
        )
        assertCustomerFacing(status.job_state_description, [dc1, dc2, ...job.notes])
      })
    },
  )

  test(
    '--late-grace: an event appended after the first record past --to is delivered when inside the grace, not ' +
      'beyond it; out-of-range records read during the grace are not',
    async () => {
      await withWorkers(workers, async () => {
        const topic = await stack.createTopic(1, 'late')
        const webhookId = uniqueName('wh').replace(/_/g, '-')
        const {fromMs, toMs} = pastRange()
        const grace = 2 * 60_000
        const line = (ts: number, name: string) =>
          JSON.stringify({webhook_id: webhookId, ts, event: `${webhookId}:${name}`})
        const inRange = Array.from({length: 30}, (_, i) => line(fromMs + (i + 1) * 60_000, `in-${i}`))
        const afterTo = line(toMs + 10_000, 'after-to')
        const lateInside = line(toMs - 60_000, 'late-inside-grace')
        const pastGrace = line(toMs + grace + 10_000, 'past-grace')
        const lateBeyond = line(toMs - 30_000, 'late-beyond-grace')
        await produceLines(stack, topic, [...inRange, afterTo, lateInside, pastGrace, lateBeyond])
        const hook = await receiver()
        await stack.addWebhook(webhookId, hook.url, SECRET)

        const withGrace = await stack.submit(webhookId, fromMs, toMs, topic, ['--late-grace', '2m'])
        assert.equal((await stack.job(withGrace)).lateGraceMs, grace)
        const first = workers.start(['--once', '--max-in-flight', '1'])
        assert.equal((await first.waitForExit(60_000)).code, 0, first.stderr)
        assert.equal((await stack.job(withGrace)).state, 'COMPLETED')
        assert.deepEqual(
          eventBodies(hook.delivered),
          [...inRange, lateInside],
          'the late event inside the grace, nothing out of range, nothing past the grace',
        )

        const delivered = hook.delivered.length
        const withoutGrace = await stack.submit(webhookId, fromMs, toMs, topic, ['--late-grace', '0s'])
        const second = workers.start(['--once', '--max-in-flight', '1'])
        assert.equal((await second.waitForExit(60_000)).code, 0, second.stderr)
        assert.equal((await stack.job(withoutGrace)).state, 'COMPLETED')
        assert.deepEqual(
          eventBodies(hook.delivered.slice(delivered)),
          inRange,
          'without a grace the read stops at the first record at or after --to',
        )
      })
    },
  )

  test(
    "a partition count grown (createPartitions 2 -> 5) between two batches: the key's old partition is read too, " +
      'for the part of the range before the growth was seen',
    async () => {
      await withWorkers(workers, async () => {
        const topic = await stack.createTopic(2, 'grow')
        const webhookId = movingWebhookId(2, 5)
        const {fromMs, toMs} = pastRange()
        const line = (i: number) =>
          JSON.stringify({webhook_id: webhookId, ts: fromMs + (i + 1) * 60_000, event: `${webhookId}:${i}`})
        const batch1 = Array.from({length: 20}, (_, i) => line(i))
        const batch2 = Array.from({length: 20}, (_, i) => line(60 + i))
        await produceLines(stack, topic, batch1)
        const hook = await receiver()
        await stack.addWebhook(webhookId, hook.url, SECRET)
        // The engine saw 2 partitions before the range began (as a worker planning days ago would have).
        await stack.pool.query(
          'INSERT INTO topic_partition_counts (topic, partition_count, first_seen_ms) VALUES (?, 2, ?)',
          [topic, fromMs - HOUR],
        )
        await growPartitions(topic, 5)
        await produceLines(stack, topic, batch2)
        const moved = (await readPartition(topic, partitionFor(webhookId, 5))).map((record) => record.value)
        assert.deepEqual(moved, batch2, "after the growth the key's events go to its partition under 5")

        const id = await stack.submit(webhookId, fromMs, toMs, topic)
        const worker = workers.start(['--once', '--max-in-flight', '1'])
        assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
        const job = await stack.job(id)
        assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
        assert.deepEqual(eventBodies(hook.delivered), [...batch1, ...batch2], 'both batches, in timestamp order')
        assert.deepEqual(
          job.sources!.map((source) => [source.partition, source.partitionCount]),
          [
            [partitionFor(webhookId, 5), 5],
            [partitionFor(webhookId, 2), 2],
          ],
        )
        assert.deepEqual(job.notes, [])
        const [counts] = await stack.pool.query(
          'SELECT partition_count FROM topic_partition_counts WHERE topic = ? ORDER BY first_seen_ms',
          [topic],
        )
        assert.deepEqual(
          (counts as Array<{partition_count: number}>).map((row) => row.partition_count),
          [2, 5],
          'the new count recorded when first seen',
        )
      })
    },
  )

  test(
    'a partition count grown at a time the engine never saw: the replay says so in status and in the ' +
      'completion event',
    async () => {
      await withWorkers(workers, async () => {
        const topic = await stack.createTopic(3, 'grow')
        const webhookId = movingWebhookId(3, 6)
        const {fromMs, toMs} = pastRange()
        const line = (i: number) =>
          JSON.stringify({webhook_id: webhookId, ts: fromMs + (i + 1) * 60_000, event: `${webhookId}:${i}`})
        const batch1 = Array.from({length: 10}, (_, i) => line(i))
        const batch2 = Array.from({length: 10}, (_, i) => line(60 + i))
        await produceLines(stack, topic, batch1)
        await growPartitions(topic, 6)
        await produceLines(stack, topic, batch2)
        const hook = await receiver()
        await stack.addWebhook(webhookId, hook.url, SECRET)
        const id = await stack.submit(webhookId, fromMs, toMs, topic)
        const worker = workers.start(['--once', '--max-in-flight', '1'])
        assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
        const job = await stack.job(id)
        assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
        assert.deepEqual(
          eventBodies(hook.delivered),
          batch2,
          'the events from before the unseen growth are in another partition',
        )
        assert.equal(job.notes.length, 1)
        assert.match(
          nth(job.notes, 0),
          new RegExp(`partition count of ${topic} \\(6\\) first seen .*at a time not recorded`),
        )
        const status = await stack.ok(['replay', 'status', String(id)])
        assert.deepEqual(status.notes, job.notes)
        const plain = await stack.cli(['replay', 'status', String(id)])
        assert.match(plain.stdout, /note .*at a time not recorded/)
        await waitFor('the completion event', () => hook.requests.some((r) => isCompletion(r.body)))
        const completion = JSON.parse(String(hook.requests.find((r) => isCompletion(r.body))!.body)).replay_job_status
        assert.equal(
          completion.job_state_description,
          'Replayed 10 events. Some events may not have been replayed: the event log was reorganized during ' +
            'the range, ' +
            'at a time not recorded.',
        )
        assertCustomerFacing(completion.job_state_description, [topic, job.notes[0]])
      })
    },
  )

  test(
    'a --from before the oldest event the partition still holds (delete-records moved the low watermark): refused ' +
      'naming the oldest time, nothing written; --allow-partial replays what is left and says it is partial',
    async () => {
      await withWorkers(workers, async () => {
        const topic = await stack.createTopic(1, 'trunc')
        const webhookId = uniqueName('wh').replace(/_/g, '-')
        const {fromMs, toMs} = pastRange()
        const times = Array.from({length: 20}, (_, i) => fromMs + (i + 1) * 60_000)
        const lines = times.map((ts, i) => JSON.stringify({webhook_id: webhookId, ts, event: `${webhookId}:${i}`}))
        await produceLines(stack, topic, lines)
        const hook = await receiver()
        await stack.addWebhook(webhookId, hook.url, SECRET)
        // An oracle moves the low watermark: Apache's own DeleteRecordsCommand removes offsets 0..7.
        const file = join(tmpdir(), `${uniqueName('delete-records')}.json`)
        writeFileSync(file, JSON.stringify({version: 1, partitions: [{topic, partition: 0, offset: 8}]}))
        await apacheTool('org.apache.kafka.tools.DeleteRecordsCommand', [
          '--bootstrap-server',
          BROKERS,
          '--offset-json-file',
          file,
        ])
        const oldest = new Date(nth(times, 8)).toISOString()

        const before = await stack.snapshot()
        const submit = (extra: string[]) =>
          stack.cli([
            'replay',
            'submit',
            '--webhook-id',
            webhookId,
            '--from',
            new Date(fromMs).toISOString(),
            '--to',
            new Date(toMs).toISOString(),
            '--topic',
            topic,
            ...extra,
          ])
        const refused = await submit([])
        assert.equal(refused.code, 2, refused.stderr)
        assert.ok(isOneLineError(refused), refused.stderr)
        assert.match(
          refused.stderr,
          new RegExp(
            `before what the log still holds: the oldest event still in ${topic}\\[0\\] is from ` +
              `${oldest.replace(/\./g, '\\.')}`,
          ),
        )
        const refusedJson = await submit(['--json'])
        assert.equal(refusedJson.json.error.code, 'REPLAY_FROM_BEFORE_LOG')
        assert.equal(await stack.snapshot(), before, 'nothing written')

        // From the oldest held event on, the range is whole.
        const whole = await stack.submit(webhookId, nth(times, 8), toMs, topic)
        assert.equal((await stack.job(whole)).partial, false)
        await stack.ok(['replay', 'cancel', String(whole)])

        const id = await stack.submit(webhookId, fromMs, toMs, topic, ['--allow-partial'])
        const job = await stack.job(id)
        assert.equal(job.partial, true)
        assert.match(
          nth(job.notes, 0),
          new RegExp(`partial replay: events before ${oldest.replace(/\./g, '\\.')} are no longer in the log`),
        )
        const worker = workers.start(['--once', '--max-in-flight', '1'])
        assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
        assert.equal((await stack.job(id)).state, 'COMPLETED')
        assert.deepEqual(eventBodies(hook.delivered), lines.slice(8), 'what is left')
        const status = await stack.ok(['replay', 'status', String(id)])
        assert.equal(status.partial, true)
        const plain = await stack.cli(['replay', 'status', String(id)])
        assert.match(plain.stdout, /partial: part of the range is no longer in the log/)
        // The cancelled job's own completion event (swept at the worker's start) may come first.
        const ofJob = (r: (typeof hook.requests)[number]) =>
          isCompletion(r.body) && JSON.parse(String(r.body)).replay_job_status.job_id === String(id)
        await waitFor('the completion event', () => hook.requests.some(ofJob))
        const completion = JSON.parse(String(hook.requests.find(ofJob)!.body)).replay_job_status
        assert.equal(
          completion.job_state_description,
          `Replayed 12 events. Events before ${oldest} were no longer held and were not replayed.`,
        )
        assertCustomerFacing(completion.job_state_description, [topic, job.notes[0]])
      })
    },
  )
})
