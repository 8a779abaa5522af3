import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {partitionFor} from '../src/core/kafka/partitioner.js'
import {uniqueName} from './helpers.js'
import {
  counts,
  eventBodies,
  idsInPartition,
  MINUTE,
  pastRange,
  produceLines,
  replayTestFile,
  waitFor,
  withWorkers,
} from './replay-harness.js'
import {delay} from './webhook-receiver.js'

/**
 * Cross-datacenter replay through the reorder buffer, end to end (Kafka, MariaDB, worker processes,
 * a real receiver at --max-in-flight 1): when a datacenter's copy of the log is out of timestamp
 * order by less than the late grace (shuffled within each minute, or a stretch appended minutes
 * late), the receiver still gets every event once, in strict timestamp order.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-reorder-secret-0123456789').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)

interface Copies {
  webhookId: string
  fromMs: number
  toMs: number
  /** every event's body, in timestamp order */
  expected: string[]
  /** events held by both topics (delivered once: the second copy is a duplicate) */
  overlap: number
  dc1: string
  dc2: string
}

/**
 * Two datacenters' topics (2 and 3 partitions): dc1 holds events i % 3 != 2 in time order, dc2
 * holds i % 3 != 0 in the order `reorder` gives, so the events only dc2 has (i % 3 == 2) come
 * out of order unless the merge reorders them. Other webhooks' records of the same partitions are
 * interleaved, as in a real delivery_log.
 */
async function copies(
  total: number,
  reorder: (lines: Array<{ts: number; text: string}>, fromMs: number) => string[],
): Promise<Copies> {
  const dc1 = await stack.createTopic(2, 'dc1')
  const dc2 = await stack.createTopic(3, 'dc2')
  const webhookId = uniqueName('wh').replace(/_/g, '-')
  const {fromMs, toMs} = pastRange()
  // Spread over the first hour of the range: several events a minute.
  const step = Math.floor(60 * MINUTE) / total
  const ts = (i: number) => fromMs + Math.floor(step * i)
  const event = (i: number) => JSON.stringify({webhook_id: webhookId, ts: ts(i), event: `${webhookId}:${i}`})
  const noise = (dc: string, partitions: number, i: number) => {
    const [other] = idsInPartition(`${webhookId}-${dc}`, partitions, partitionFor(webhookId, partitions), 1)
    return {ts: ts(i), text: JSON.stringify({webhook_id: other, ts: ts(i), event: `${other}:${i}`})}
  }
  const lines1: string[] = []
  const lines2: Array<{ts: number; text: string}> = []
  for (let i = 0; i < total; i++) {
    if (i % 3 !== 2) lines1.push(event(i))
    if (i % 3 !== 0) lines2.push({ts: ts(i), text: event(i)})
    if (i % 5 === 0) lines1.push(noise('a', 2, i).text)
    if (i % 4 === 0) lines2.push(noise('b', 3, i))
  }
  await produceLines(stack, dc1, lines1)
  await produceLines(stack, dc2, reorder(lines2, fromMs))
  const expected = Array.from({length: total}, (_, i) => event(i))
  return {webhookId, fromMs, toMs, expected, overlap: expected.filter((_, i) => i % 3 === 1).length, dc1, dc2}
}

/** Shuffles the lines within each minute of their time (seeded: the test must not flake). */
function shuffleWithinMinutes(lines: Array<{ts: number; text: string}>): string[] {
  let state = 20_261_204
  const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32
  const minutes = new Map<number, string[]>()
  for (const line of lines) {
    const minute = Math.floor(line.ts / MINUTE)
    minutes.set(minute, [...(minutes.get(minute) ?? []), line.text])
  }
  return [...minutes.values()].flatMap((minute) => {
    for (let i = minute.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const [a, b] = [minute[i], minute[j]]
      if (a !== undefined && b !== undefined) [minute[i], minute[j]] = [b, a]
    }
    return minute
  })
}

/** Appends the lines of minutes [20, 22) of the range after those up to minute 24: 2 to 4 minutes late. */
function delayTwoMinutes(lines: Array<{ts: number; text: string}>, fromMs: number): string[] {
  const late = (ts: number) => ts >= fromMs + 20 * MINUTE && ts < fromMs + 22 * MINUTE
  const held = lines.filter((line) => late(line.ts)).map((line) => line.text)
  const rest = lines.filter((line) => !late(line.ts))
  const at = rest.findIndex((line) => line.ts >= fromMs + 24 * MINUTE)
  const texts = rest.map((line) => line.text)
  return [...texts.slice(0, at), ...held, ...texts.slice(at)]
}

async function replayInOrder(setup: Copies): Promise<void> {
  const hook = await receiver()
  await stack.addWebhook(setup.webhookId, hook.url, SECRET)
  // The default late grace (5 minutes) covers both kinds of disorder.
  const id = await stack.submit(setup.webhookId, setup.fromMs, setup.toMs, setup.dc1, ['--topic', setup.dc2])
  const worker = workers.start(['--max-in-flight', '1'])
  const job = await stack.waitForState(id, ['COMPLETED', 'FAILED'], 120_000)
  await worker.stop()
  assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
  await waitFor('the completion event', () => hook.requests.length > setup.expected.length)
  const bodies = eventBodies(hook.delivered)
  const twice = [...counts(bodies)].filter(([, count]) => count > 1)
  assert.deepEqual(twice, [], 'no event arrives twice')
  assert.deepEqual(new Set(bodies), new Set(setup.expected), 'every event of both topics arrives')
  const times = bodies.map((body) => JSON.parse(body).ts as number)
  const breaks = times.filter((time, index) => index > 0 && time <= (times[index - 1] ?? time))
  assert.equal(breaks.length, 0, 'strict timestamp order at the receiver')
  assert.deepEqual(bodies, setup.expected)
  assert.ok(hook.requests.every((request) => request.concurrent === 1))
  assert.equal(job.delivered, setup.expected.length)
  assert.equal(job.duplicates, setup.overlap, "dc2's copies of events dc1 holds are dropped")
  assert.ok(job.sources?.every((source) => source.checkpointOffset === source.endOffset))
}

describe('cross-datacenter replay in exact timestamp order', () => {
  test('the second copy shuffled within each minute: every event once, in strict timestamp order', async () => {
    await withWorkers(workers, async () => {
      const setup = await copies(1016, shuffleWithinMinutes)
      await replayInOrder(setup)
    })
  })

  test('two minutes of the second copy appended 2 to 4 minutes late: every event once, in strict order', async () => {
    await withWorkers(workers, async () => {
      const setup = await copies(600, delayTwoMinutes)
      await replayInOrder(setup)
    })
  })

  test('kill -9 mid-way through a shuffled copy: the checkpoints passed no held event', async () => {
    await withWorkers(workers, async () => {
      const setup = await copies(480, shuffleWithinMinutes)
      const stuck = setup.expected[300]
      let released = false
      const hook = await receiver((request, res) => {
        res.writeHead(!released && String(request.body) === stuck ? 500 : 200).end()
      })
      await stack.addWebhook(setup.webhookId, hook.url, SECRET)
      const id = await stack.submit(setup.webhookId, setup.fromMs, setup.toMs, setup.dc1, ['--topic', setup.dc2])
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
      assert.deepEqual(eventBodies(hook.delivered), setup.expected.slice(0, 300))
      released = true
      const finisher = workers.start(flags)
      const job = await stack.waitForState(id, ['COMPLETED', 'FAILED'], 90_000)
      await finisher.stop()
      assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
      const accepted = eventBodies(hook.delivered)
      assert.deepEqual(new Set(accepted), new Set(setup.expected), 'every event, none lost to a checkpoint')
      assert.deepEqual([...new Set(accepted)], setup.expected, 'first arrivals in timestamp order')
      // The new owner delivers in timestamp order from the checkpoints. A shuffled copy's checkpoint
      // stays at its earliest record still held, so the events of that copy read after it and
      // already delivered go out again: the re-sends add at most the copy's disorder (a minute).
      const resent = accepted.slice(300)
      const times = resent.map((body) => JSON.parse(body).ts as number)
      assert.ok(
        times.every((time, index) => index === 0 || time > (times[index - 1] ?? time)),
        `re-sent in strict timestamp order: ${resent.map((body) => JSON.parse(body).event).join(' ')}`,
      )
      const perMinute = 480 / 60
      assert.ok(resent.length - 180 < 2 * 64 + 3 + 2 * perMinute, `${resent.length - 180} re-sent`)
    })
  })
})
