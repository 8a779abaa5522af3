import assert from 'node:assert/strict'
import {readdirSync, readFileSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {connect} from 'node:net'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {Pool, request} from 'undici'

import {apacheTool, deleteTopics, isOneLineError, nth, partitionDir, runCli, uniqueName} from './helpers.js'
import {
  AUTH,
  createTopic,
  INGEST_TOKEN,
  INGEST_TOKENS,
  ndjson,
  post,
  readTopic,
  startServer,
  stopServer,
  tryJson,
  type Server,
  type Stored,
} from './ingest-harness.js'

/**
 * `ingest serve` as an operator runs it (the built CLI, its own process), driven over HTTP by
 * undici, against the real broker. What is in the topic is read back with kcat and compared with
 * what the server answered; placement with `log partition-for`; compression with Apache's
 * DumpLogSegments. The broker-loss case runs its own one-node stack on its own port and state
 * directory, kills the broker with SIGKILL and starts it again with `dev up`. Every request
 * carries a token that may write anything (authentication itself: ingest-auth.test.ts).
 */

/** Event ids in the topic, each with how often it is there. */
function idCounts(stored: Stored[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const record of stored) counts.set(record.value.id, (counts.get(record.value.id) ?? 0) + 1)
  return counts
}

const topics: string[] = []
after(() => deleteTopics(topics))

describe('ingest serve: POST /events', () => {
  let server: Server
  let topic: string
  before(async () => {
    topic = await createTopic('main', 4)
    topics.push(topic)
    server = await startServer([
      '-t',
      topic,
      '--timestamp-field',
      'ts',
      '--max-request-bytes',
      '20000',
      '--max-event-bytes',
      '2000',
    ])
  })
  after(() => stopServer(server))

  it('writes keyed events where `log partition-for` says, with CreateTime from the field, snappy', async () => {
    const base = Date.now() - 3_600_000
    const events = Array.from({length: 60}, (_, index) => ({
      webhook_id: `w${index % 7}`,
      id: `a${index}`,
      ts: base + index,
      body: 'x'.repeat(100),
    }))
    const batch = await post(server.url, ndjson(events.slice(0, 59)))
    assert.equal(batch.status, 200, JSON.stringify(batch.json))
    assert.deepEqual(batch.json, {events: 59, written: 59})
    // One JSON object, pretty-printed, is one event.
    const single = await post(server.url, JSON.stringify(events[59], null, 2), {'content-type': 'application/json'})
    assert.equal(single.status, 200, JSON.stringify(single.json))
    assert.deepEqual(single.json, {events: 1, written: 1})

    const stored = await readTopic(topic)
    assert.equal(stored.length, 60)
    assert.deepEqual(stored.map((record) => record.value.id).sort(), events.map((event) => event.id).sort())
    const placement = new Map<string, number>()
    for (const key of new Set(events.map((event) => event.webhook_id))) {
      const located = await runCli(['log', 'partition-for', key, '--topic', topic, '--json'])
      assert.equal(located.code, 0, located.stderr)
      placement.set(key, located.json.partition)
    }
    for (const record of stored) {
      assert.equal(record.partition, placement.get(record.key), `key ${record.key}`)
      assert.equal(record.key, record.value.webhook_id)
      assert.equal(record.timestamp, record.value.ts)
    }

    const described = await runCli(['topic', 'describe', topic, '--json'])
    assert.equal(described.json.configs['compression.type'], 'snappy')
    const dir = await partitionDir(topic, placement.get('w0')!)
    const segment = readdirSync(dir).find((name) => name.endsWith('.log'))!
    const dump = await apacheTool('kafka.tools.DumpLogSegments', ['--files', join(dir, segment)])
    const codecs = [...dump.matchAll(/compresscodec: (\w+)/g)].map((match) => match[1])
    assert.ok(codecs.length > 0, dump)
    assert.deepEqual([...new Set(codecs)], ['snappy'])
  })

  it('rejects a request with one bad event whole, naming its line, and writes nothing of it', async () => {
    const before = (await readTopic(topic)).length
    const good = (id: string) => JSON.stringify({webhook_id: 'w1', id, ts: Date.now()})
    const cases: [string, number, RegExp][] = [
      [`${good('b1')}\n${good('b2')}\n{"webhook_id": "w1", oops}\n${good('b3')}\n`, 3, /line 3 is not valid JSON/],
      [`${good('c1')}\n\n${JSON.stringify({id: 'c2', ts: 1})}\n`, 3, /line 3 has no webhook_id field/],
      [
        `${good('d1')}\n${JSON.stringify({webhook_id: 'w1', id: 'd2', ts: 'yesterday-ish'})}\n`,
        2,
        /line 2 has ts 'yesterday-ish', which is not a time/,
      ],
      [`${good('e1')}\n[1,2]\n`, 2, /line 2 is not a JSON object/],
      [
        `${good('f1')}\n${JSON.stringify({webhook_id: 'w1', id: 'f2', ts: 1, body: 'y'.repeat(2500)})}\n`,
        2,
        /line 2 is 25\d\d bytes, more than the 2000 an event may have/,
      ],
      [
        `${good('h1')}\n${JSON.stringify({webhook_id: '../../x y;%00', id: 'h2', ts: 1})}\n`,
        2,
        /line 2 has a webhook_id that has characters other than A-Z a-z 0-9 _ -/,
      ],
      [
        `${JSON.stringify({webhook_id: 'w'.repeat(65), id: 'h3', ts: 1})}\n`,
        1,
        /line 1 has a webhook_id that is 65 characters long/,
      ],
    ]
    for (const [body, line, message] of cases) {
      const answer = await post(server.url, body)
      assert.equal(answer.status, 400, body)
      assert.equal(answer.json.line, line)
      assert.equal(answer.json.written, 0)
      assert.match(answer.json.error, message)
      assert.match(answer.json.error, /nothing of this request was written/)
    }
    const empty = await post(server.url, '\n\n')
    assert.equal(empty.status, 400)
    assert.match(empty.json.error, /no events/)

    const tooLarge = await post(
      server.url,
      ndjson(
        Array.from({length: 200}, (_, index) => ({webhook_id: 'w1', id: `g${index}`, ts: 1, body: 'z'.repeat(100)})),
      ),
    )
    assert.equal(tooLarge.status, 413)
    assert.match(tooLarge.json.error, /larger than 20000 bytes \(--max-request-bytes\)/)

    assert.equal((await readTopic(topic)).length, before)
  })

  it('writes nothing twice when a request is retried with the same Idempotency-Key', async () => {
    const before = (await readTopic(topic)).length
    const body = ndjson(
      Array.from({length: 10}, (_, index) => ({webhook_id: `k${index}`, id: `i${index}`, ts: Date.now()})),
    )
    const first = await post(server.url, body, {'idempotency-key': 'retry-1'})
    assert.equal(first.status, 200)
    assert.deepEqual(first.json, {events: 10, written: 10})
    const again = await post(server.url, body, {'idempotency-key': 'retry-1'})
    assert.equal(again.status, 200)
    assert.deepEqual(again.json, {events: 10, written: 10})
    const reused = await post(server.url, ndjson([{webhook_id: 'k1', id: 'other', ts: Date.now()}]), {
      'idempotency-key': 'retry-1',
    })
    assert.equal(reused.status, 422)
    assert.match(reused.json.error, /different body/)
    const longKey = await post(server.url, body, {'idempotency-key': 'k'.repeat(257)})
    assert.equal(longKey.status, 400)
    assert.match(longKey.json.error, /longer than 256 characters/)

    const stored = await readTopic(topic)
    assert.equal(stored.length, before + 10)
    const counts = idCounts(stored)
    for (let index = 0; index < 10; index++) assert.equal(counts.get(`i${index}`), 1)
  })

  it('serves /healthz and Prometheus /metrics', async () => {
    const health = await request(`${server.url}/healthz`)
    assert.equal(health.statusCode, 200)
    assert.deepEqual(await health.body.json(), {status: 'ok', topic, brokerUp: true, queuedMessages: 0, queuedBytes: 0})
    const metrics = await request(`${server.url}/metrics`)
    const text = await metrics.body.text()
    assert.match(text, /replayctl_ingest_requests_total\{status="200"\} 4/)
    assert.match(text, /replayctl_ingest_requests_total\{status="400"\} 9/)
    assert.match(text, /replayctl_ingest_requests_total\{status="413"\} 1/)
    assert.match(text, /replayctl_ingest_events_delivered\{outcome="written"\} 70/)
    assert.match(text, /replayctl_ingest_produce_latency_seconds_count 4/)
    assert.match(text, /replayctl_ingest_queue_messages 0/)
    assert.match(text, /replayctl_ingest_request_bytes_total \d+/)
    // Log lines are JSON objects.
    const lines = server.stderr().split('\n').filter(Boolean)
    assert.ok(lines.length > 0)
    for (const line of lines) assert.equal(typeof tryJson(line), 'object', line)
  })
})

describe('ingest serve: refusing to start', () => {
  it('says in one line when the topic does not exist or the flags conflict', async () => {
    const missing = await runCli(['ingest', 'serve', '-t', uniqueName('ingest_missing'), '--port', '0'], {
      env: {REPLAYCTL_INGEST_TOKENS: INGEST_TOKENS},
    })
    assert.equal(missing.code, 3)
    assert.ok(isOneLineError(missing), missing.stderr)
    assert.match(missing.stderr, /topic 'ingest_missing_\w+' does not exist/)
    const both = await runCli(['ingest', 'serve', '-t', 'x', '--key-field', 'a', '--key-header', 'B'])
    assert.equal(both.code, 2)
    assert.ok(isOneLineError(both), both.stderr)
    assert.match(both.stderr, /--key-field and --key-header cannot both be given/)
  })
})

describe('ingest serve --key-header', () => {
  it('keys every event of a request by the header, and refuses a request without it', async () => {
    const topic = await createTopic('header', 3)
    topics.push(topic)
    const server = await startServer(['-t', topic, '--key-header', 'X-Webhook-Id'])
    try {
      const answer = await post(server.url, ndjson([{id: 'h1'}, {id: 'h2'}]), {'x-webhook-id': 'hook-9'})
      assert.equal(answer.status, 200)
      const missing = await post(server.url, ndjson([{id: 'h3'}]))
      assert.equal(missing.status, 400)
      assert.match(missing.json.error, /X-Webhook-Id header is missing/)
      // The header's value must be one webhook id, like a --key-field value.
      const bad: [string | string[], RegExp][] = [
        ['k'.repeat(15_000), /is 15000 characters long, more than the 64 of a webhook id/],
        ['../../x y;%00', /has characters other than A-Z a-z 0-9 _ -/],
        ['hook-1,hook-2', /holds a comma \(sent more than once\?\)/],
        [['hook-1', 'hook-2'], /holds a comma \(sent more than once\?\)/],
      ]
      for (const [value, message] of bad) {
        const response = await request(`${server.url}/events`, {
          method: 'POST',
          body: ndjson([{id: 'bad'}]),
          headers: {'content-type': 'application/x-ndjson', ...AUTH, 'x-webhook-id': value},
        })
        const refused = (await response.body.json()) as {error: string; written: number}
        assert.equal(response.statusCode, 400, String(value).slice(0, 50))
        assert.equal(refused.written, 0)
        assert.match(refused.error, message)
        assert.match(refused.error, /^the X-Webhook-Id header .*; nothing of this request was written$/)
        assert.ok(refused.error.length < 300, 'the refusal does not echo the value')
      }
      const located = await runCli(['log', 'partition-for', 'hook-9', '--topic', topic, '--json'])
      const stored = await readTopic(topic)
      assert.deepEqual(
        stored.map((record) => [record.key, record.partition, record.value.id]),
        [
          ['hook-9', located.json.partition, 'h1'],
          ['hook-9', located.json.partition, 'h2'],
        ],
      )
    } finally {
      assert.equal(await stopServer(server), 0)
    }
  })
})

describe('ingest serve --idempotency-window', () => {
  it('forgets a key after the window: the same request is then written again', async () => {
    const topic = await createTopic('window', 1)
    topics.push(topic)
    const server = await startServer(['-t', topic, '--idempotency-window', '1s'])
    try {
      const body = ndjson([{webhook_id: 'w1', id: 'once'}])
      assert.equal((await post(server.url, body, {'idempotency-key': 'k'})).status, 200)
      assert.equal((await post(server.url, body, {'idempotency-key': 'k'})).status, 200)
      assert.equal((await readTopic(topic)).length, 1)
      await sleep(1500)
      assert.equal((await post(server.url, body, {'idempotency-key': 'k'})).status, 200)
      assert.equal((await readTopic(topic)).length, 2)
    } finally {
      assert.equal(await stopServer(server), 0)
    }
  })
})

describe('ingest serve: backpressure', () => {
  it(
    'answers 503 with Retry-After, writing nothing, when a request would fill the producer queue ' + 'past 80%',
    async () => {
      const topic = await createTopic('queue', 3)
      topics.push(topic)
      const server = await startServer(['-t', topic, '--queue-messages', '100'])
      try {
        const events = (prefix: string, count: number) =>
          ndjson(Array.from({length: count}, (_, index) => ({webhook_id: `w${index}`, id: `${prefix}${index}`})))
        const refused = await post(server.url, events('q', 81))
        assert.equal(refused.status, 503)
        assert.equal(refused.headers['retry-after'], '1')
        assert.equal(refused.json.written, 0)
        assert.match(refused.json.error, /producer queue is nearly full; 0 of 81 events were written/)
        assert.match(refused.json.retry, /none of it was written/)
        const accepted = await post(server.url, events('r', 80))
        assert.equal(accepted.status, 200)

        // Concurrent requests of 30 against a queue admitting 80: some may wait their turn as 503s;
        // whatever got a 2xx is in the topic once, and nothing is there twice.
        const load = new Load(server.url, 's', 8, 30)
        while (load.firstTry2xx.length < 20) await sleep(50)
        await load.stop()
        assert.deepEqual(
          [...load.statuses.keys()].filter((status) => status !== 200 && status !== 503),
          [],
        )
        const counts = idCounts(await readTopic(topic))
        assert.ok([...counts.values()].every((count) => count === 1))
        for (const id of load.firstTry2xx.flat()) assert.equal(counts.get(id), 1)
        assert.equal(counts.has('q0'), false)
        const metrics = await (await request(`${server.url}/metrics`)).body.text()
        assert.match(metrics, /replayctl_ingest_refused_total\{reason="queue_full"\} [1-9]/)
      } finally {
        assert.equal(await stopServer(server), 0)
      }
    },
  )
})

/** Clients that keep POSTing requests of `perRequest` unique events, each with its own Idempotency-Key. */
class Load {
  readonly firstTry2xx: string[][] = []
  readonly answered5xx: {key: string; body: string; ids: string[]}[] = []
  readonly statuses = new Map<number | string, number>()
  private stopped = false
  private next = 0
  private readonly runners: Promise<void>[]

  constructor(
    url: string,
    private readonly prefix: string,
    clients: number,
    private readonly perRequest: number,
    private readonly pool = new Pool(url, {connections: clients}),
  ) {
    this.runners = Array.from({length: clients}, () => this.runner())
  }

  private async runner(): Promise<void> {
    while (!this.stopped) {
      const number = this.next++
      const ids = Array.from({length: this.perRequest}, (_, index) => `${this.prefix}${number}-${index}`)
      const body = ndjson(ids.map((id, index) => ({webhook_id: `w${(number + index) % 13}`, id, ts: Date.now()})))
      const key = `${this.prefix}${number}`
      let status: number | string
      try {
        const response = await this.pool.request({
          path: '/events',
          method: 'POST',
          body,
          headers: {'content-type': 'application/x-ndjson', 'idempotency-key': key, ...AUTH},
        })
        await response.body.dump()
        status = response.statusCode
      } catch (error) {
        status = (error as {code?: string}).code ?? 'error'
        await sleep(50)
      }
      this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1)
      if (status === 200) this.firstTry2xx.push(ids)
      else this.answered5xx.push({key, body, ids})
      if (status === 503) await sleep(100)
    }
  }

  count(status: number | string): number {
    return this.statuses.get(status) ?? 0
  }

  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.runners)
    await this.pool.close()
  }
}

describe('ingest serve: the broker killed under load', () => {
  const port = 9180
  const state = mkdtempSync(join(tmpdir(), 'replayctl-ingest-kill-'))
  const env = {REPLAYCTL_STATE: state, REPLAYCTL_BROKERS: `127.0.0.1:${port}`, REPLAYCTL_KAFKA_HEAP: '384m'}
  const dev = (args: string[]) => runCli(['dev', ...args], {env, timeoutMs: 240_000})
  let server: Server | undefined
  after(async () => {
    // A failed assertion leaves the server running; it would keep the test process alive.
    if (server && server.child.exitCode === null) server.child.kill('SIGKILL')
    await dev(['down', '--purge', '--grace', '5'])
    rmSync(state, {recursive: true, force: true})
  })

  it(
    'answers 503 while it is down; every 2xx event is in the topic once, and every retried 5xx event too',
    {timeout: 600_000},
    async () => {
      const up = await dev(['up', '--port', String(port), '--json'])
      assert.equal(up.code, 0, up.stderr)
      const topic = await createTopic('kill', 3, env)
      server = await startServer(['-t', topic, '--ack-timeout', '3s'], env)
      const load = new Load(server.url, 'k', 8, 5)
      try {
        while (load.firstTry2xx.length < 50) await sleep(100)
        const {nodes} = JSON.parse(readFileSync(join(state, 'stack.json'), 'utf8')) as {nodes: {pid: number}[]}
        process.kill(nth(nodes, 0).pid, 'SIGKILL')
        const deadline = Date.now() + 60_000
        while (load.count(503) < 20 && Date.now() < deadline) await sleep(200)
        assert.ok(load.count(503) >= 20, `clients got ${JSON.stringify([...load.statuses])}`)
        const health = await request(`${server.url}/healthz`)
        assert.equal(health.statusCode, 503)
        await health.body.dump()

        const restarted = await dev(['up', '--json'])
        assert.equal(restarted.code, 0, restarted.stderr)
        const okBefore = load.count(200)
        const recovered = Date.now() + 120_000
        while (load.count(200) < okBefore + 50 && Date.now() < recovered) await sleep(200)
        assert.ok(load.count(200) >= okBefore + 50, `no 2xx after the restart: ${JSON.stringify([...load.statuses])}`)
      } finally {
        await load.stop()
      }

      // The client retries every request that did not get a 2xx, with its Idempotency-Key.
      const pool = new Pool(server.url, {connections: 4})
      for (const failed of load.answered5xx) {
        for (let attempt = 1; ; attempt++) {
          const response = await pool.request({
            path: '/events',
            method: 'POST',
            body: failed.body,
            headers: {'content-type': 'application/x-ndjson', 'idempotency-key': failed.key, ...AUTH},
          })
          await response.body.dump()
          if (response.statusCode === 200) break
          assert.ok(attempt < 60, `retry of ${failed.key} still answered ${response.statusCode}`)
          await sleep(500)
        }
      }
      await pool.close()
      assert.equal(await stopServer(server), 0)

      const counts = idCounts(await readTopic(topic, env.REPLAYCTL_BROKERS))
      const acknowledged = load.firstTry2xx.flat()
      const retried = load.answered5xx.flatMap((failed) => failed.ids)
      assert.ok(retried.length > 0)
      for (const id of acknowledged)
        assert.equal(counts.get(id), 1, `event ${id} (2xx) is in the topic ${counts.get(id) ?? 0} times`)
      for (const id of retried)
        assert.equal(counts.get(id), 1, `event ${id} (5xx, then retried) is in the topic ${counts.get(id) ?? 0} times`)
      assert.equal(
        [...counts.values()].reduce((sum, count) => sum + count, 0),
        acknowledged.length + retried.length,
      )
    },
  )
})

describe('ingest serve: SIGTERM under load', () => {
  it('finishes the requests under way, flushes, exits 0, and loses nothing acknowledged', async () => {
    const topic = await createTopic('term', 3)
    topics.push(topic)
    const server = await startServer(['-t', topic, '--json'])
    const load = new Load(server.url, 't', 8, 20)
    while (load.firstTry2xx.length < 30) await sleep(50)
    server.child.kill('SIGTERM')
    assert.equal(await server.exited, 0, server.stderr())
    await load.stop()

    const summary = JSON.parse(server.stdout())
    const counts = idCounts(await readTopic(topic))
    const acknowledged = load.firstTry2xx.flat()
    assert.ok(acknowledged.length >= 600)
    for (const id of acknowledged)
      assert.equal(counts.get(id), 1, `event ${id} (2xx) is in the topic ${counts.get(id) ?? 0} times`)
    // Everything the server accepted was flushed and is counted, including requests whose client saw
    // the connection close.
    assert.equal(
      summary.eventsWritten,
      [...counts.values()].reduce((sum, count) => sum + count, 0),
    )
    assert.equal(summary.eventsFailed, 0)
    const stages = [
      'signal received',
      'stopping: no new connections, finishing requests under way',
      'http server closed',
      'flushing accepted events',
      'flushed',
      'stopped',
    ]
    const log = server
      .stderr()
      .split('\n')
      .map(tryJson)
      .filter((line) => stages.includes(line?.msg))
    assert.deepEqual(
      log.map((line) => line.msg),
      stages,
    )
  })
})

describe('ingest serve: SIGTERM with a request under way', () => {
  /** A POST /events whose headers are sent now and whose body is sent by the caller, over a raw socket. */
  function startPost(server: Server, body: string) {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk))
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.write(
      'POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        `Authorization: Bearer ${INGEST_TOKEN}\r\nContent-Type: application/x-ndjson\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    )
    return {socket, closed, received: () => received}
  }

  /** Resolves once `done()` holds, checking at every chunk `stream` emits. */
  function until(stream: NodeJS.ReadableStream, done: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within 30 s`)), 30_000)
      const check = () => {
        if (!done()) return
        clearTimeout(timer)
        stream.off('data', check)
        resolve()
      }
      stream.on('data', check)
      check()
    })
  }

  it('answers it in full on a closing connection, writes its events, and exits 0', async () => {
    const topic = await createTopic('inflight', 2)
    topics.push(topic)
    const server = await startServer(['-t', topic])
    const body = ndjson([
      {webhook_id: 'w1', id: 'late-1'},
      {webhook_id: 'w2', id: 'late-2'},
    ])
    const post = startPost(server, body)
    // The server's 100 Continue says it has the request: it is under way when the signal comes.
    await until(post.socket, () => post.received().includes('100 Continue'), '100 Continue')
    server.child.kill('SIGTERM')
    const stderr = server.child.stderr
    assert.ok(stderr)
    await until(stderr, () => server.stderr().includes('stopping: no new connections'), 'drain')
    post.socket.write(body)
    await post.closed
    const answer = post.received().slice(post.received().indexOf('100 Continue'))
    assert.match(answer, /^HTTP\/1\.1 200 /m, answer)
    assert.match(answer, /^connection: close\r$/im, 'the answer closes its keep-alive connection')
    assert.deepEqual(JSON.parse(answer.slice(answer.lastIndexOf('\r\n\r\n') + 4)), {events: 2, written: 2})
    assert.equal(await server.exited, 0, server.stderr())
    assert.deepEqual((await readTopic(topic)).map((record) => record.value.id).sort(), ['late-1', 'late-2'])
  })

  it('cuts a request still unfinished after --grace, and exits 0 all the same', async () => {
    const topic = await createTopic('cut', 1)
    topics.push(topic)
    const server = await startServer(['-t', topic, '--grace', '1s'])
    const post = startPost(server, ndjson([{webhook_id: 'w1', id: 'never-sent'}]))
    await until(post.socket, () => post.received().includes('100 Continue'), '100 Continue')
    server.child.kill('SIGTERM')
    // The body never comes: the connection is cut once the grace period is over.
    await post.closed
    assert.equal(await server.exited, 0, server.stderr())
    assert.match(server.stderr(), /grace period over: cutting the remaining connections/)
    assert.deepEqual(await readTopic(topic), [])
  })
})
