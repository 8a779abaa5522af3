import assert from 'node:assert/strict'
import {after, describe, test} from 'node:test'

import {eventKey} from '../src/core/replay/dedup.js'
import {
  type DeliveryEvent,
  OrderedDelivery,
  TokenBucket,
  WebhookClient,
  type WebhookClientOptions,
  backoffDelay,
  completionDescription,
  completionEventBody,
  messageIdFor,
  parseRetryAfter,
  sendCompletionEvent,
} from '../src/core/replay/delivery/index.js'
import {type Receiver, closedPort, delay, startReceiver} from './webhook-receiver.js'
import {nth} from './helpers.js'

const SECRET = 'whsec_' + Buffer.from('replay-test-secret-32-bytes-long!').toString('base64')
const FAST_RETRY = {attempts: 6, baseMs: 5, capMs: 50}

const receivers: Receiver[] = []
const clients: WebhookClient[] = []
after(async () => {
  await Promise.all(clients.map((client) => client.destroy()))
  await Promise.all(receivers.map((receiver) => receiver.close().catch(() => {})))
})

async function receiver(handler?: Parameters<typeof startReceiver>[0]['handler']): Promise<Receiver> {
  const started = await startReceiver({secret: SECRET, handler})
  receivers.push(started)
  return started
}

function client(url: string, options: Partial<WebhookClientOptions> = {}): WebhookClient {
  const made = new WebhookClient({
    url,
    secret: SECRET,
    jobId: 'job-1',
    source: {topic: 'delivery_log', partition: 3},
    allowPrivate: true,
    retry: FAST_RETRY,
    ...options,
  })
  clients.push(made)
  return made
}

/**
 * Events at offsets start, start+step, ... with distinct JSON bodies (and key order a re-serialisation would
 * change).
 */
function events(count: number, start = 0, step = 1): DeliveryEvent[] {
  return Array.from({length: count}, (_, i) => {
    const offset = start + i * step
    const body = Buffer.from(`{"z":1,  "offset":${offset},"text":"caf\u00e9 \u{1F600}","a":[ ]}`, 'utf8')
    return {offset, body, hash: eventKey(body)}
  })
}

async function pushAll(window: OrderedDelivery, list: DeliveryEvent[]): Promise<number> {
  let accepted = 0
  for (const event of list) {
    if (!(await window.push(event))) break
    accepted++
  }
  return accepted
}

const bodiesOf = (list: Array<{body: Buffer} | Buffer>) =>
  list.map((item) => (Buffer.isBuffer(item) ? item : item.body).toString('utf8'))

describe('delivery', () => {
  test('maxInFlight 1: every event once, in log order, bytes unchanged, both signatures, replay headers', async () => {
    const hook = await receiver(async (_request, res) => {
      await delay(Math.random() * 3)
      res.writeHead(200).end()
    })
    const webhook = client(hook.url)
    const list = events(40, 1000, 3)
    const window = new OrderedDelivery(webhook, {startOffset: 1000, maxInFlight: 1})
    for (const event of list) {
      assert.ok(await window.push(event))
      window.scanned(event.offset + 3) // the two offsets after each event were read and filtered out
    }
    const result = await window.drain()
    assert.equal(result.failure, undefined)
    assert.equal(result.aborted, false)
    assert.equal(result.delivered, 40)
    assert.equal(result.checkpoint, 1000 + 40 * 3)
    assert.deepEqual(bodiesOf(hook.requests), bodiesOf(list), 'arrival order = log order, bodies byte for byte')
    assert.ok(hook.requests.every((request, i) => request.body.equals(nth(list, i).body)))
    assert.equal(hook.maxConcurrent, 1)
    for (const [i, request] of hook.requests.entries()) {
      assert.ok(request.signed, `request ${i} verifies (Twitter and Standard Webhooks)`)
      assert.equal(request.headers['content-type'], 'application/json')
      assert.equal(request.headers['x-replay-job-id'], 'job-1')
      assert.equal(request.headers['x-replay-source'], `delivery_log/3@${nth(list, i).offset}`)
      assert.match(String(request.headers['webhook-id']), /^evt_[0-9a-f]{16}$/)
      assert.equal(request.headers['webhook-id'], messageIdFor(nth(list, i).hash))
      assert.ok(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000) < 5)
    }
    const stats = window.stats
    assert.equal(stats.delivered, 40)
    assert.equal(stats.retries, 0)
    assert.equal(stats.inFlight, 0)
    assert.equal(
      stats.bytes,
      list.reduce((sum, event) => sum + event.body.length, 0),
    )
    assert.equal(stats.latency.count, 40)
    assert.ok(stats.latency.p50Ms > 0 && stats.latency.p99Ms >= stats.latency.p50Ms)
  })

  test('maxInFlight 1: the next send starts only after the previous is delivered', async () => {
    let answered = 0
    const hook = await receiver(async (request, res) => {
      assert.equal(answered, request.n - 1)
      await delay(5)
      answered++
      res.writeHead(204).end()
    })
    const window = new OrderedDelivery(client(hook.url), {startOffset: 0, maxInFlight: 1})
    const list = events(10)
    for (const event of list) {
      await window.push(event)
      assert.ok(window.checkpoint <= event.offset, 'checkpoint never covers an event still in flight')
    }
    assert.equal((await window.drain()).checkpoint, 10)
    assert.equal(answered, 10)
  })

  test('500s for a while, then 200: all delivered, webhook-id kept and re-signed per attempt', async () => {
    const hook = await receiver((request, res) => {
      if (request.n <= 5) res.writeHead(500).end('temporarily broken')
      else res.writeHead(200).end()
    })
    const window = new OrderedDelivery(client(hook.url), {startOffset: 0, maxInFlight: 1})
    const list = events(5)
    assert.equal(await pushAll(window, list), 5)
    const result = await window.drain()
    assert.equal(result.failure, undefined)
    assert.equal(result.checkpoint, 5)
    assert.deepEqual(bodiesOf(hook.delivered), bodiesOf(list), 'each event delivered, in order')
    assert.equal(hook.requests.length, 10)
    assert.ok(
      hook.requests.slice(0, 6).every((request) => request.headers['webhook-id'] === messageIdFor(nth(list, 0).hash)),
      'retries keep the id',
    )
    assert.ok(hook.requests.every((request) => request.signed))
    assert.equal(window.stats.retries, 5)
  })

  test('a 500 that outlasts the attempts fails the event: the checkpoint stops there', async () => {
    const hook = await receiver((request, res) => {
      const offset = JSON.parse(request.body.toString()).offset
      if (offset === 4) res.writeHead(503).end('down')
      else res.writeHead(200).end()
    })
    const window = new OrderedDelivery(client(hook.url, {retry: {attempts: 3, baseMs: 1, capMs: 5}}), {
      startOffset: 0,
      maxInFlight: 1,
    })
    const accepted = await pushAll(window, events(10))
    const result = await window.drain()
    assert.equal(accepted, 5, 'offsets 0-4 accepted, then the window stopped')
    assert.equal(result.failure?.failedAt, 4)
    assert.equal(result.failure?.gone, false)
    assert.equal(result.failure?.status, 503)
    assert.equal(result.failure?.attempts, 3)
    assert.equal(result.failure?.reason, 'webhook answered 503: down (3 attempts)')
    assert.equal(result.checkpoint, 4)
    assert.equal(window.stopped, true)
    assert.equal(await window.push(nth(events(1, 50), 0)), false, 'a stopped window accepts nothing')
  })

  test('maxInFlight 8: a permanent 400 in the middle stops the window; the checkpoint never passes it', async () => {
    const hook = await receiver(async (request, res) => {
      const offset = JSON.parse(request.body.toString()).offset
      await delay(offset === 7 ? 30 : 5)
      if (offset === 7) res.writeHead(400).end('{"error":"bad event"}')
      else res.writeHead(200).end()
    })
    const window = new OrderedDelivery(client(hook.url), {startOffset: 0, maxInFlight: 8})
    const accepted = await pushAll(window, events(300))
    const result = await window.drain()
    assert.ok(accepted < 300)
    assert.equal(result.failure?.failedAt, 7)
    assert.equal(result.failure?.attempts, 1, '4xx is not retried')
    assert.equal(result.failure?.reason, 'webhook answered 400: {"error":"bad event"}')
    assert.equal(result.checkpoint, 7)
    const deliveredOffsets = hook.delivered.map((body) => JSON.parse(body.toString()).offset as number)
    for (let offset = 0; offset < 7; offset++)
      assert.ok(deliveredOffsets.includes(offset), `offset ${offset} delivered`)
    assert.ok(
      deliveredOffsets.some((offset) => offset > 7),
      'later events in flight settled (and were delivered)',
    )
  })

  test('429 with Retry-After (seconds): the retry waits, with a fresh timestamp; a long ask is capped', async () => {
    const hook = await receiver((request, res) => {
      if (request.n === 1) res.writeHead(429, {'retry-after': '1'}).end()
      else if (request.n === 3) res.writeHead(429, {'retry-after': '3600'}).end()
      else res.writeHead(200).end()
    })
    const webhook = client(hook.url, {retry: {attempts: 4, baseMs: 5000, capMs: 30_000, retryAfterCapMs: 200}})
    const [first, second] = events(2)
    // retryAfterCapMs 200 caps the first ask too; check the cap and the fresh timestamp with a 1 s cap
    const slow = client(hook.url, {retry: {attempts: 4, baseMs: 5000, capMs: 30_000}})
    const r1 = await slow.send(first!)
    assert.equal(r1.outcome, 'delivered')
    assert.equal(r1.attempts, 2)
    const gap = nth(hook.requests, 1).arrivedAt - nth(hook.requests, 0).arrivedAt
    assert.ok(gap >= 950 && gap < 2000, `Retry-After: 1 waited ${gap} ms`)
    assert.ok(
      Number(nth(hook.requests, 1).headers['webhook-timestamp']) >
        Number(nth(hook.requests, 0).headers['webhook-timestamp']),
      'fresh timestamp per attempt',
    )
    assert.equal(nth(hook.requests, 1).headers['webhook-id'], nth(hook.requests, 0).headers['webhook-id'])
    assert.ok(hook.requests.every((request) => request.signed))

    const r2 = await webhook.send(second!)
    assert.equal(r2.outcome, 'delivered')
    const capped = nth(hook.requests, 3).arrivedAt - nth(hook.requests, 2).arrivedAt
    assert.ok(capped >= 190 && capped < 1000, `Retry-After: 3600 capped to 200 ms, waited ${capped} ms`)
  })

  test('Retry-After as an HTTP-date', async () => {
    const hook = await receiver((request, res) => {
      if (request.n === 1) res.writeHead(503, {'retry-after': new Date(Date.now() + 2000).toUTCString()}).end()
      else res.writeHead(200).end()
    })
    const result = await client(hook.url, {retry: {attempts: 2, baseMs: 1, capMs: 30_000}}).send(nth(events(1), 0))
    assert.equal(result.outcome, 'delivered')
    const gap = nth(hook.requests, 1).arrivedAt - nth(hook.requests, 0).arrivedAt
    assert.ok(gap >= 900 && gap < 2600, `waited ${gap} ms`)
  })

  test('parseRetryAfter and backoff', () => {
    const now = Date.parse('2024-01-01T00:00:00Z')
    assert.equal(parseRetryAfter('5', now), 5000)
    assert.equal(parseRetryAfter(' 0 ', now), 0)
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 00:00:10 GMT', now), 10_000)
    assert.equal(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now), 0)
    assert.equal(parseRetryAfter('soon', now), undefined)
    assert.equal(parseRetryAfter('-3', now), undefined)
    assert.equal(parseRetryAfter(undefined, now), undefined)
    const policy = {attempts: 6, baseMs: 200, capMs: 30_000}
    assert.equal(
      backoffDelay(1, policy, () => 0.999999),
      199,
    )
    assert.equal(
      backoffDelay(3, policy, () => 0.5),
      400,
    )
    assert.equal(
      backoffDelay(20, policy, () => 0.5),
      15_000,
      'capped at capMs',
    )
    assert.equal(
      backoffDelay(4, policy, () => 0),
      0,
      'full jitter reaches 0',
    )
  })

  test('an answer slower than the timeout is retried (the receiver may see the event twice)', async () => {
    const hook = await receiver(async (request, res) => {
      if (request.n === 1) await delay(600)
      res.writeHead(200).end()
    })
    const started = performance.now()
    const result = await client(hook.url, {timeoutMs: 150}).send(nth(events(1), 0))
    assert.equal(result.outcome, 'delivered')
    assert.equal(result.attempts, 2)
    assert.ok(performance.now() - started < 550, 'the first attempt was cut at the timeout')
    assert.equal(hook.requests.length, 2)
  })

  test('a timeout on every attempt fails with the reason', async () => {
    const hook = await receiver(async (_request, res) => {
      await delay(400)
      res.writeHead(200).end()
    })
    const result = await client(hook.url, {timeoutMs: 50, retry: {attempts: 2, baseMs: 1, capMs: 2}}).send(
      nth(events(1), 0),
    )
    assert.equal(result.outcome, 'failed')
    assert.equal(result.reason, 'no answer within 50 ms (2 attempts)')
  })

  test('a request still waiting for a connection when its time is up is never written; its retry is', async () => {
    // One connection, held by the first event's slow answer: the second event's first attempt waits
    // for it. On a loaded machine the second attempt's deadline may come after the connection is free
    // again (nothing was queued at its time-out); such a round proves nothing and is run again.
    let queuedAttemptsGivenUp = 0
    for (let round = 1; round <= 5 && queuedAttemptsGivenUp === 0; round++) {
      const hook = await receiver(async (request, res) => {
        if (request.n === 1) await delay(3000)
        res.writeHead(200).end()
      })
      const webhook = client(hook.url, {timeoutMs: 400, maxConnections: 1, retry: {attempts: 5, baseMs: 1, capMs: 2}})
      const [first, second] = await Promise.all(events(2).map((event) => webhook.send(event)))
      assert.ok(first && second)
      assert.equal(first.outcome, 'delivered')
      assert.equal(second.outcome, 'delivered')
      assert.ok(first.attempts >= 2, 'the first attempt was cut at the timeout')
      const written = hook.requests.filter((request) => JSON.parse(request.body.toString()).offset === 1).length
      assert.ok(written >= 1 && written <= second.attempts)
      assert.equal(webhook.stats.inFlight, 0)
      // More attempts than requests written: an attempt was given up before it reached the wire.
      queuedAttemptsGivenUp += second.attempts - written
    }
    assert.ok(queuedAttemptsGivenUp > 0, 'in five rounds, no queued attempt timed out while waiting for the connection')
  })

  test(
    'answers past the read limit: a big 200 is delivered, a big 500 is retried with its start as ' + 'the reason',
    async () => {
      const big = 'x'.repeat(200 * 1024)
      const hook = await receiver((request, res) => {
        if (request.n === 1) res.writeHead(500).end(`overloaded ${big}`)
        else res.writeHead(200).end(big)
      })
      const window = new OrderedDelivery(client(hook.url, {retry: {attempts: 1, baseMs: 1, capMs: 2}}), {
        startOffset: 0,
        maxInFlight: 1,
      })
      await pushAll(window, events(1))
      const failed = await window.drain()
      assert.equal(failed.failure?.status, 500)
      assert.ok(failed.failure?.reason.startsWith('webhook answered 500: overloaded xxx'), failed.failure?.reason)
      assert.ok(failed.failure!.reason.length < 300, 'only the start of the answer is kept')

      const next = new OrderedDelivery(client(hook.url), {startOffset: 0, maxInFlight: 2})
      const list = events(3)
      await pushAll(next, list)
      const result = await next.drain()
      assert.equal(result.failure, undefined)
      assert.equal(result.checkpoint, 3)
      assert.deepEqual(bodiesOf(hook.delivered), bodiesOf(list))
    },
  )

  test('a socket destroyed mid-request is retried', async () => {
    const hook = await receiver((request, res, req) => {
      if (request.n <= 2) req.socket.destroy()
      else res.writeHead(200).end()
    })
    const window = new OrderedDelivery(client(hook.url), {startOffset: 10, maxInFlight: 1})
    const list = events(3, 10)
    await pushAll(window, list)
    const result = await window.drain()
    assert.equal(result.failure, undefined)
    assert.equal(result.checkpoint, 13)
    assert.deepEqual(bodiesOf(hook.delivered), bodiesOf(list))
    assert.equal(window.stats.retries, 2)
  })

  test('a webhook down for good: failure at the first undelivered offset, checkpoint not past it', async () => {
    // up for offsets 100-104, then the server goes away
    const hook = await receiver((request, res, req) => {
      const offset = JSON.parse(request.body.toString()).offset
      if (offset < 105) return void res.writeHead(200).end()
      req.socket.destroy()
      if (hook.delivered.length === 5) void hook.close()
    })
    const webhook = client(hook.url, {retry: {attempts: 3, baseMs: 2, capMs: 10}, maxConnections: 4})
    const window = new OrderedDelivery(webhook, {startOffset: 100, maxInFlight: 4})
    const list = events(50, 100)
    const accepted = await pushAll(window, list)
    const result = await window.drain()
    assert.ok(accepted >= 6 && accepted < 50)
    assert.equal(hook.delivered.length, 5)
    assert.equal(result.failure?.failedAt, 105)
    assert.match(result.failure!.reason, /^connection failed: (ECONNREFUSED|UND_ERR_SOCKET|ECONNRESET) \(3 attempts\)$/)
    assert.equal(result.checkpoint, 105)
  })

  test('a closed port from the start: nothing delivered, the checkpoint stays at the start', async () => {
    const port = await closedPort()
    const webhook = client(`http://127.0.0.1:${port}/hook`, {retry: {attempts: 2, baseMs: 1, capMs: 2}})
    const window = new OrderedDelivery(webhook, {startOffset: 7, maxInFlight: 1})
    window.scanned(9)
    assert.equal(window.checkpoint, 9, 'filtered offsets move the checkpoint')
    const accepted = await pushAll(window, events(3, 9))
    const result = await window.drain()
    assert.equal(accepted, 1)
    assert.equal(result.failure?.failedAt, 9)
    assert.equal(result.failure?.reason, 'connection failed: ECONNREFUSED (2 attempts)')
    assert.equal(result.checkpoint, 9)
    assert.equal(result.delivered, 0)
  })

  test('410: permanent and gone', async () => {
    const hook = await receiver((request, res) => {
      if (request.n >= 3) res.writeHead(410).end()
      else res.writeHead(200).end()
    })
    const window = new OrderedDelivery(client(hook.url), {startOffset: 0, maxInFlight: 1})
    await pushAll(window, events(10))
    const result = await window.drain()
    assert.equal(result.failure?.failedAt, 2)
    assert.equal(result.failure?.gone, true)
    assert.equal(result.failure?.status, 410)
    assert.equal(result.failure?.attempts, 1)
    assert.equal(result.checkpoint, 2)
    assert.equal(hook.requests.length, 3, 'nothing sent after the 410')
    assert.equal(window.stats.gone, 1)
  })

  test('3xx: permanent, the redirect is not followed', async () => {
    let redirectedTo = 0
    const hook = await receiver((request, res, req) => {
      if (req.url === '/elsewhere') redirectedTo++
      res.writeHead(request.n === 1 ? 307 : 200, {location: '/elsewhere'}).end()
    })
    const result = await client(hook.url).send(nth(events(1), 0))
    assert.equal(result.outcome, 'failed')
    assert.equal(result.status, 307)
    assert.equal(result.attempts, 1)
    assert.equal(result.reason, 'webhook answered 307, a redirect (redirects are not followed)')
    assert.equal(redirectedTo, 0)
    assert.equal(hook.requests.length, 1)
  })

  test('408 is retried', async () => {
    const hook = await receiver((request, res) => res.writeHead(request.n === 1 ? 408 : 202).end())
    const result = await client(hook.url).send(nth(events(1), 0))
    assert.equal(result.outcome, 'delivered')
    assert.equal(result.status, 202)
    assert.equal(result.attempts, 2)
  })

  test('abort: in-flight requests are cut, push answers false, and no request starts after', async () => {
    const hook = await receiver(() => {
      /* never answers */
    })
    const controller = new AbortController()
    const webhook = client(hook.url, {signal: controller.signal, timeoutMs: 10_000})
    const window = new OrderedDelivery(webhook, {startOffset: 0, maxInFlight: 4})
    const list = events(20)
    const pushing = pushAll(window, list)
    while (hook.requests.length < 4) await delay(5)
    controller.abort()
    const countAtAbort = hook.requests.length
    const requestsAtAbort = webhook.stats.requests
    const accepted = await pushing
    const result = await window.drain()
    assert.equal(accepted, 4)
    assert.equal(result.aborted, true)
    assert.equal(result.checkpoint, 0)
    assert.equal(await window.push(nth(list, 10)), false)
    await delay(300)
    assert.equal(hook.requests.length - countAtAbort, 0, 'requests after abort')
    assert.equal(webhook.stats.requests, requestsAtAbort)
    assert.equal(webhook.stats.inFlight, 0)
  })

  test('abort during backoff: no retry is started', async () => {
    const hook = await receiver((_request, res) => res.writeHead(500).end())
    const controller = new AbortController()
    const webhook = client(hook.url, {
      signal: controller.signal,
      retry: {attempts: 6, baseMs: 300, capMs: 300},
      random: () => 0.99,
    })
    const sending = webhook.send(nth(events(1), 0))
    while (hook.requests.length < 1) await delay(2)
    await delay(50) // answered, now sleeping ~297 ms before the retry
    const started = performance.now()
    controller.abort()
    const countAtAbort = hook.requests.length
    const result = await sending
    assert.equal(result.outcome, 'aborted')
    // The backoff had ~250 ms left: ending well inside it means the abort cut the sleep short (a
    // loaded machine delays the wake-up, not the cut). No later request either way.
    assert.ok(performance.now() - started < 200, 'stopped at once, not after the backoff')
    await delay(500)
    assert.equal(hook.requests.length - countAtAbort, 0)
  })

  test('a signal aborted before anything starts sends nothing', async () => {
    const hook = await receiver()
    const webhook = client(hook.url, {signal: AbortSignal.abort()})
    const window = new OrderedDelivery(webhook, {startOffset: 0})
    assert.equal(await window.push(nth(events(1), 0)), false)
    assert.equal((await webhook.send(nth(events(1), 0))).outcome, 'aborted')
    assert.equal((await window.drain()).aborted, true)
    await delay(50)
    assert.equal(hook.requests.length, 0)
  })

  test('rate limit: never faster than the rate after the burst, however loaded the machine', async () => {
    const hook = await receiver((_request, res) => res.writeHead(200).end())
    const rate = 100
    const burst = 10
    const webhook = client(hook.url, {rateLimit: rate})
    const window = new OrderedDelivery(webhook, {startOffset: 0, maxInFlight: 16})
    const started = performance.now()
    await pushAll(window, events(150))
    const result = await window.drain()
    const elapsed = performance.now() - started
    assert.equal(result.delivered, 150)
    // A busy machine only delays sends, so these caps hold whatever the load: the bucket lets
    // `burst` go at once and then `rate` a second, so 150 events take at least (150 - 10) / 100 s,
    // and no more than burst + rate x t events have arrived t seconds after the start.
    assert.ok(elapsed >= ((150 - burst) / rate) * 1000 * 0.98, `150 events at ${rate}/s took only ${elapsed} ms`)
    for (const seconds of [0.5, 1]) {
      const early = hook.requests.filter((request) => request.arrivedAt - started < seconds * 1000).length
      assert.ok(
        early <= burst + rate * seconds + 1,
        `${early} events arrived within ${seconds} s of the start; the cap is ${burst + rate * seconds}`,
      )
    }
  })

  test('TokenBucket: burst, then the rate', () => {
    const bucket = new TokenBucket(1000, 5)
    const waits = Array.from({length: 10}, () => bucket.reserve())
    assert.deepEqual(waits.slice(0, 5), [0, 0, 0, 0, 0])
    assert.ok(nth(waits, 5) > 0 && nth(waits, 5) <= 1.1)
    assert.ok(nth(waits, 9) > 4 && nth(waits, 9) <= 5.1)
    assert.throws(() => new TokenBucket(0), {code: 'INVALID_ARGUMENT'})
  })

  test('maxInFlight 64: concurrency is capped and everything arrives', async () => {
    const hook = await receiver(async (_request, res) => {
      await delay(5)
      res.writeHead(200).end()
    })
    const window = new OrderedDelivery(client(hook.url), {startOffset: 0, maxInFlight: 64})
    const list = events(1000)
    await pushAll(window, list)
    const result = await window.drain()
    assert.equal(result.checkpoint, 1000)
    assert.equal(result.delivered, 1000)
    assert.equal(result.failure, undefined)
    // The cap, never the level reached: on a loaded machine the window may never fill, and an answer
    // slower than the timeout is retried (so the receiver may get more requests than events).
    assert.ok(hook.maxConcurrent >= 1 && hook.maxConcurrent <= 64, `max concurrent ${hook.maxConcurrent}`)
    assert.ok(hook.requests.length >= 1000)
    assert.deepEqual(new Set(bodiesOf(hook.delivered)), new Set(bodiesOf(list)))
  })

  test('completion event: Twitter shape, signed, retried with a stable id', async () => {
    const hook = await receiver((request, res) => res.writeHead(request.n === 1 ? 502 : 200).end())
    const webhook = client(hook.url)
    const result = await sendCompletionEvent(webhook, {
      webhookId: '1234567890',
      jobId: 'job-1',
      outcome: {kind: 'undelivered', delivered: 3, status: 500},
    })
    assert.equal(result.outcome, 'delivered')
    assert.equal(hook.requests.length, 2)
    for (const request of hook.requests) {
      assert.ok(request.signed)
      assert.deepEqual(JSON.parse(request.body.toString()), {
        replay_job_status: {
          webhook_id: '1234567890',
          job_state: 'Incomplete',
          job_state_description: 'Not every event could be delivered: the webhook answered HTTP 500 (3 delivered).',
          job_id: 'job-1',
        },
      })
      assert.equal(request.headers['x-replay-job-id'], 'job-1')
      assert.equal(request.headers['x-replay-source'], undefined)
    }
    assert.equal(nth(hook.requests, 0).headers['webhook-id'], nth(hook.requests, 1).headers['webhook-id'])
    assert.deepEqual(
      Object.keys(
        JSON.parse(completionEventBody({webhookId: 'w', jobId: 'j', outcome: {kind: 'cancelled'}}).toString())
          .replay_job_status,
      ),
      ['webhook_id', 'job_state', 'job_state_description', 'job_id'],
    )
  })

  test('completion description: one fixed sentence per outcome, no internals', () => {
    const held = Date.parse('2026-12-01T10:00:00.000Z')
    const cases: Array<[Parameters<typeof completionDescription>[0], string]> = [
      [{kind: 'complete', delivered: 12, gaps: []}, 'Replayed 12 events.'],
      [{kind: 'complete', delivered: 1, gaps: []}, 'Replayed 1 event.'],
      [
        {kind: 'complete', delivered: 0, gaps: [{kind: 'before-log', heldFromMs: held}]},
        'Replayed 0 events. Events before 2026-12-01T10:00:00.000Z were no longer held and were not replayed.',
      ],
      // Two topics' growth notes read as one sentence.
      [
        {kind: 'complete', delivered: 5, gaps: [{kind: 'partition-growth'}, {kind: 'partition-growth'}]},
        'Replayed 5 events. Some events may not have been replayed: the event log was reorganized during the range, ' +
          'at a time not recorded.',
      ],
      [
        {kind: 'complete', delivered: 5, gaps: [{kind: 'unknown'}]},
        'Replayed 5 events. Some events may not have been replayed.',
      ],
      [
        {kind: 'undelivered', delivered: 7, status: 500},
        'Not every event could be delivered: the webhook answered HTTP 500 (7 delivered).',
      ],
      [
        {kind: 'undelivered', delivered: 0},
        'Not every event could be delivered: the webhook could not be reached (0 delivered).',
      ],
      [{kind: 'cancelled'}, 'Cancelled by an operator.'],
      [{kind: 'failed'}, 'The replay could not be completed.'],
    ]
    for (const [outcome, sentence] of cases)
      assert.equal(completionDescription(outcome), sentence, JSON.stringify(outcome))
    const state = (outcome: Parameters<typeof completionDescription>[0]) =>
      JSON.parse(completionEventBody({webhookId: 'w', jobId: 'j', outcome}).toString()).replay_job_status.job_state
    assert.deepEqual(
      cases.map(([outcome]) => state(outcome)),
      [...Array(5).fill('Complete'), ...Array(4).fill('Incomplete')],
    )
  })

  test('private targets are refused unless allowed, before and at connection time', async () => {
    const hook = await receiver()
    assert.throws(() => new WebhookClient({url: hook.url, secret: SECRET, jobId: 'j'}), {code: 'TARGET_NOT_ALLOWED'})
    await assert.rejects(
      WebhookClient.create({url: `http://localhost:${hook.port}/webhook`, secret: SECRET, jobId: 'j'}),
      {code: 'TARGET_NOT_ALLOWED'},
    )
    assert.throws(() => new WebhookClient({url: 'ftp://example.com/', secret: SECRET, jobId: 'j'}), {
      code: 'TARGET_NOT_ALLOWED',
    })
    // a host name is checked again when connecting (DNS may change after the first check)
    const unchecked = new WebhookClient({
      url: `http://localhost:${hook.port}/webhook`,
      secret: SECRET,
      jobId: 'j',
      retry: FAST_RETRY,
    })
    clients.push(unchecked)
    const result = await unchecked.send(nth(events(1), 0))
    assert.equal(result.outcome, 'failed')
    assert.equal(result.attempts, 1)
    assert.match(
      result.reason!,
      new RegExp(
        String.raw`^webhook url http:\/\/localhost:\d+\/webhook resolves to (127\.0\.0\.1|::1), ` +
          String.raw`an address replay does not send to$`,
      ),
    )
    assert.equal(hook.requests.length, 0)
    const allowed = await WebhookClient.create({
      url: `http://localhost:${hook.port}/webhook`,
      secret: SECRET,
      jobId: 'j',
      allowPrivate: true,
    })
    clients.push(allowed)
    assert.equal((await allowed.send(nth(events(1), 0))).outcome, 'delivered')
  })

  test('push refuses events out of log order', async () => {
    const hook = await receiver()
    const window = new OrderedDelivery(client(hook.url), {startOffset: 0})
    await window.push(nth(events(1, 5), 0))
    await assert.rejects(window.push(nth(events(1, 5), 0)), {name: 'BugError'})
    window.scanned(20)
    await assert.rejects(window.push(nth(events(1, 19), 0)), {name: 'BugError'})
    await window.drain()
  })
})
