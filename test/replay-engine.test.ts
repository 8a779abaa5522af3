import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {deleteTopics} from './helpers.js'
import {counts, eventBodies, isCompletion, scenario, Stack, waitFor, Workers, withWorkers} from './replay-harness.js'
import {delay, type Receiver, startReceiver} from './webhook-receiver.js'

/**
 * The replay engine's promises to a receiver, end to end with worker processes: how many events a
 * crash sends twice (--max-ahead), what order arrives at each --max-in-flight.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-engine-secret-0123456789').toString('base64')
const stack = new Stack()
const workers = new Workers(stack)
const receivers: Receiver[] = []

async function receiver(handler?: Parameters<typeof startReceiver>[0]['handler']): Promise<Receiver> {
  const started = await startReceiver({secret: SECRET, handler})
  receivers.push(started)
  return started
}

before(async () => {
  await stack.open()
})

after(async () => {
  await workers.killAll()
  await Promise.all(receivers.map((r) => r.close().catch(() => {})))
  await deleteTopics(stack.topics).catch(() => {})
  await stack.close()
})

describe('replay engine bounds', () => {
  test('a stuck event: delivery runs at most --max-ahead past it; after kill -9 another worker finishes, re-sending fewer than 2 x max-ahead + 3 x max-in-flight', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 2, unique: 300, neighbours: 60, elsewhere: 60})
      const maxAhead = 32
      const maxInFlight = 8
      const stuckIndex = 40
      const stuck = s.expected[stuckIndex]!
      const indexOf = new Map(s.expected.map((body, index) => [body, index]))
      let released = false
      const hook = await receiver((request, res) => {
        res.writeHead(!released && String(request.body) === stuck ? 500 : 200).end()
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      // No time-based save during the test: only the count-based one keeps the bound.
      const flags = ['--max-in-flight', String(maxInFlight), '--max-ahead', String(maxAhead), '--checkpoint-interval', '1h', '--delivery-attempts', '1000', '--retry-base', '20ms']
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
      assert.equal(Math.max(...byOwner), stuckIndex + maxAhead - 1, `delivery ran exactly max-ahead - 1 events past the stuck one, never further`)
      // What a receiver can rely on at --max-in-flight N: no event arrives before one more than
      // max-ahead events earlier was accepted.
      const acceptedSoFar = new Set<number>()
      for (const request of hook.requests) {
        const index = indexOf.get(String(request.body))!
        for (let earlier = 0; earlier <= index - maxAhead; earlier++) assert.ok(acceptedSoFar.has(earlier), `event ${index} was sent before event ${earlier} was accepted`)
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
      assert.ok(twice < 2 * maxAhead + 3 * maxInFlight, `${twice} events accepted twice; the README promises fewer than ${2 * maxAhead + 3 * maxInFlight}`)
      assert.equal(job.delivered, s.expected.length, 'the job counts each event once')
    })
  })

  test('--max-in-flight 1 with 30% of answers failing: every event accepted once, in log order, one request at a time', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 2, unique: 150, duplicates: 20, neighbours: 40, elsewhere: 40})
      let state = 7
      const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32)
      const hook = await receiver((request, res) => {
        res.writeHead(!isCompletion(request.body) && random() < 0.3 ? 503 : 200).end()
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const worker = workers.start(['--once', '--max-in-flight', '1', '--delivery-attempts', '30', '--retry-base', '5ms'])
      assert.equal((await worker.waitForExit(90_000)).code, 0, worker.stderr)
      assert.equal((await stack.job(id)).state, 'COMPLETED')
      assert.deepEqual(eventBodies(hook.delivered), s.expected, 'accepted once each, in log order')
      // Retries repeat the same event; no later event is sent before it is accepted.
      const indexOf = new Map(s.expected.map((body, index) => [body, index]))
      const sent = hook.requests.filter((r) => !isCompletion(r.body)).map((r) => indexOf.get(String(r.body))!)
      assert.deepEqual(sent, [...sent].sort((a, b) => a - b))
      assert.ok(hook.requests.length > s.expected.length, 'some answers failed and were retried')
      assert.ok(hook.requests.every((r) => r.concurrent === 1))
    })
  })
})
