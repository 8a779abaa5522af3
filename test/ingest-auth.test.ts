import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {request} from 'undici'

import {deleteTopics, isOneLineError, runCli} from './helpers.js'
import {createTopic, ndjson, post, readTopic, startServer, stopServer, type Server} from './ingest-harness.js'

/**
 * Who may write through `ingest serve`: bearer tokens scoped to keys and topics, 401 / 403 / 429
 * refusals that write nothing (each proved by reading the topic back), the refusal to start a
 * server anyone could write to, and the throttle on failed authentications.
 */
const ALL = 'ingest-all-keys-0123456789abcdef'
const ACME = 'ingest-acme-keys-0123456789abcdef'
const ELSEWHERE = 'ingest-other-topic-0123456789abcdef'
const BY_TOPIC = 'ingest-by-topic-0123456789abcdef'
const tokens = (topicPattern: string) =>
  JSON.stringify([
    {token: ALL, keys: '*'},
    {token: ACME, keys: ['a-*', 'exact_hook']},
    {token: ELSEWHERE, keys: '*', topics: ['some_other_topic', 'other_*']},
    {token: BY_TOPIC, topics: [topicPattern]},
  ])
const bearer = (token: string) => ({authorization: `Bearer ${token}`})
const ids = async (topic: string) => (await readTopic(topic)).map((record) => `${record.key}/${record.value.id}`).sort()

const topics: string[] = []
after(() => deleteTopics(topics))

describe('ingest serve: tokens', () => {
  let server: Server
  let topic: string
  before(async () => {
    topic = await createTopic('auth', 3)
    topics.push(topic)
    server = await startServer(['-t', topic], {REPLAYCTL_INGEST_TOKENS: tokens('ingest_auth_*')})
  })
  after(() => stopServer(server))

  it('writes nothing for a request without a token, with a wrong one, or with another scheme: 401', async () => {
    const body = ndjson([
      {webhook_id: 'w1', id: 'u1'},
      {webhook_id: 'w2', id: 'u2'},
    ])
    const attempts: Record<string, string | null>[] = [
      {authorization: null},
      bearer('x'.repeat(32)),
      bearer(`${ALL}x`),
      bearer(ALL.slice(0, -1)),
      {authorization: `Basic ${Buffer.from(`u:${ALL}`).toString('base64')}`},
      {authorization: ALL},
    ]
    for (const headers of attempts) {
      const answer = await post(server.url, body, {...headers, 'idempotency-key': 'unauthenticated'})
      assert.equal(answer.status, 401, JSON.stringify(headers))
      assert.equal(answer.headers['www-authenticate'], 'Bearer')
      assert.equal(answer.json.written, 0)
      assert.match(answer.json.error, /send Authorization: Bearer <token>; nothing was written/)
    }
    assert.deepEqual(await ids(topic), [])
    // Health and metrics stay open to monitoring.
    assert.equal((await request(`${server.url}/healthz`)).statusCode, 200)
    const metrics = await (await request(`${server.url}/metrics`)).body.text()
    assert.match(metrics, /replayctl_ingest_requests_total\{status="401"\} 6/)
  })

  it(
    'a token scoped to keys a-* gets 403 for key b1 and writes nothing, even when b1 is one ' + 'line of many',
    async () => {
      const allowed = await post(
        server.url,
        ndjson([
          {webhook_id: 'a-1', id: 's1'},
          {webhook_id: 'exact_hook', id: 's2'},
        ]),
        bearer(ACME),
      )
      assert.equal(allowed.status, 200, JSON.stringify(allowed.json))
      for (const events of [
        [{webhook_id: 'b1', id: 's3'}],
        [
          {webhook_id: 'a-2', id: 's4'},
          {webhook_id: 'a-3', id: 's5'},
          {webhook_id: 'b1', id: 's6'},
          {webhook_id: 'a-4', id: 's7'},
        ],
        [{webhook_id: 'xa-1', id: 's8'}],
        [{webhook_id: 'exact_hook2', id: 's9'}],
      ]) {
        const refused = await post(server.url, ndjson(events), bearer(ACME))
        assert.equal(refused.status, 403, JSON.stringify(events))
        assert.equal(refused.json.written, 0)
        assert.match(
          refused.json.error,
          /event \d has the key '[\w-]+', which this token may not write; nothing of this request was written/,
        )
      }
      const mixed = await post(
        server.url,
        ndjson([
          {webhook_id: 'a-2', id: 's4'},
          {webhook_id: 'b1', id: 's6'},
        ]),
        bearer(ACME),
      )
      assert.match(mixed.json.error, /^event 2 has the key 'b1'/)
      // The same events with a token for every key.
      assert.equal((await post(server.url, ndjson([{webhook_id: 'b1', id: 's10'}]), bearer(ALL))).status, 200)
      assert.deepEqual(await ids(topic), ['a-1/s1', 'b1/s10', 'exact_hook/s2'])
    },
  )

  it('a token scoped to other topics gets 403 and writes nothing; one whose topic pattern matches writes', async () => {
    const before = await ids(topic)
    const refused = await post(server.url, ndjson([{webhook_id: 'w1', id: 't1'}]), bearer(ELSEWHERE))
    assert.equal(refused.status, 403)
    assert.equal(refused.json.written, 0)
    assert.match(refused.json.error, new RegExp(`this token may not write to topic ${topic}; nothing was written`))
    assert.deepEqual(await ids(topic), before)
    const written = await post(server.url, ndjson([{webhook_id: 'any-key', id: 't2'}]), bearer(BY_TOPIC))
    assert.equal(written.status, 200, JSON.stringify(written.json))
    assert.deepEqual(await ids(topic), [...before, 'any-key/t2'].sort())
  })

  it('never logs a token', () => {
    for (const token of [ALL, ACME, ELSEWHERE, BY_TOPIC])
      assert.ok(!server.stderr().includes(token.slice(0, 20)), 'a token is in the log')
  })
})

describe('ingest serve: failed authentications from one address', () => {
  it(
    'are answered 429 with Retry-After and x-rate-limit headers after --auth-failures, a right token too, until the ' +
      'window ends',
    async () => {
      const topic = await createTopic('throttle', 1)
      topics.push(topic)
      const server = await startServer(['-t', topic, '--auth-failures', '3', '--auth-failure-window', '10s'], {
        REPLAYCTL_INGEST_TOKENS: tokens('*'),
      })
      try {
        const body = ndjson([{webhook_id: 'w1', id: 'r1'}])
        const statuses: number[] = []
        let blocked: Awaited<ReturnType<typeof post>> | undefined
        for (let attempt = 0; attempt < 30; attempt++) {
          // Without --trust-proxy a client cannot dodge the count with an X-Forwarded-For of its choice.
          const answer = await post(server.url, body, {
            ...bearer(`guess-${attempt}-0123456789abcdef`),
            'x-forwarded-for': `198.51.100.${attempt}`,
          })
          statuses.push(answer.status)
          blocked ??= answer.status === 429 ? answer : undefined
        }
        assert.deepEqual(statuses, [401, 401, 401, ...Array.from({length: 27}, () => 429)])
        assert.equal(blocked!.headers['x-rate-limit-limit'], '3')
        assert.equal(blocked!.headers['x-rate-limit-remaining'], '0')
        const reset = Number(blocked!.headers['x-rate-limit-reset'])
        const retryAfter = Number(blocked!.headers['retry-after'])
        // A right token from the blocked address waits too: otherwise a right guess would show.
        const right = await post(server.url, body, bearer(ALL))
        assert.equal(right.status, 429)
        assert.ok(
          reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 11,
          `x-rate-limit-reset ${reset} is epoch seconds within the window`,
        )
        assert.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`)
        assert.equal(blocked!.json.written, 0)
        assert.match(blocked!.json.error, /too many failed authentications from this address/)
        assert.equal((await request(`${server.url}/healthz`)).statusCode, 200)
        assert.deepEqual(await readTopic(topic), [])

        while (Date.now() / 1000 < reset) await sleep(200)
        const after = await post(server.url, body, bearer(ALL))
        assert.equal(after.status, 200, JSON.stringify(after.json))
        assert.equal((await readTopic(topic)).length, 1)
        assert.ok(!server.stderr().includes('guess-'), 'presented tokens are never logged')
      } finally {
        assert.equal(await stopServer(server), 0)
      }
    },
  )
})

describe('ingest serve --trust-proxy', () => {
  it(
    "counts failures per client named by the proxy's X-Forwarded-For, so one client cannot lock out the others " +
      'behind it',
    async () => {
      const topic = await createTopic('proxy', 1)
      topics.push(topic)
      const server = await startServer(
        ['-t', topic, '--auth-failures', '2', '--auth-failure-window', '10m', '--trust-proxy', '127.0.0.1'],
        {REPLAYCTL_INGEST_TOKENS: tokens('*')},
      )
      try {
        const body = ndjson([{webhook_id: 'w1', id: 'p1'}])
        const from = (client: string, token: string) =>
          post(server.url, body, {...bearer(token), 'x-forwarded-for': client})
        assert.equal((await from('203.0.113.5', 'guess-1-0123456789abcdef')).status, 401)
        assert.equal((await from('203.0.113.5', 'guess-2-0123456789abcdef')).status, 401)
        assert.equal((await from('203.0.113.5', ALL)).status, 429)
        assert.equal((await from('203.0.113.6', ALL)).status, 200)
        assert.equal((await post(server.url, body, bearer(ALL))).status, 200, 'the proxy itself is not blocked')
        assert.equal((await readTopic(topic)).length, 2)
      } finally {
        assert.equal(await stopServer(server), 0)
      }
    },
  )
})

describe('ingest serve: refusing a server anyone could write to', () => {
  it(
    'does not start without tokens (exit 2, INVALID_CONFIG), nor with --no-auth on a ' + 'non-loopback --host',
    async () => {
      const noTokens = await runCli(['ingest', 'serve', '-t', 'delivery_log', '--port', '0'])
      assert.equal(noTokens.code, 2, noTokens.stderr)
      assert.ok(isOneLineError(noTokens), noTokens.stderr)
      assert.match(
        noTokens.stderr,
        /ingest serve has no tokens: anyone who reaches it could write events for any webhook: add "ingestTokens"/,
      )
      const asJson = await runCli(['ingest', 'serve', '-t', 'delivery_log', '--port', '0', '--json'])
      assert.equal(asJson.code, 2)
      assert.equal(asJson.json.error.code, 'INVALID_CONFIG')
      const empty = await runCli(['ingest', 'serve', '-t', 'delivery_log', '--port', '0'], {
        env: {REPLAYCTL_INGEST_TOKENS: '[]'},
      })
      assert.equal(empty.code, 2, empty.stderr)

      for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
        const open = await runCli(['ingest', 'serve', '-t', 'delivery_log', '--port', '0', '--no-auth', '--host', host])
        assert.equal(open.code, 2, open.stderr)
        assert.ok(isOneLineError(open), open.stderr)
        assert.match(open.stderr, new RegExp(`--no-auth cannot be used with --host ${host.replaceAll('.', '\\.')}`))
      }

      const badProxy = await runCli([
        'ingest',
        'serve',
        '-t',
        'delivery_log',
        '--port',
        '0',
        '--no-auth',
        '--trust-proxy',
        'proxy.example',
      ])
      assert.equal(badProxy.code, 2, badProxy.stderr)
      assert.ok(isOneLineError(badProxy), badProxy.stderr)

      const short = await runCli(['ingest', 'serve', '-t', 'delivery_log', '--port', '0'], {
        env: {REPLAYCTL_INGEST_TOKENS: '[{"token":"tiny-secret","keys":"*"}]'},
      })
      assert.equal(short.code, 2, short.stderr)
      assert.ok(isOneLineError(short) && !short.stderr.includes('tiny-secret'), short.stderr)
      const unscoped = await runCli(['ingest', 'serve', '-t', 'delivery_log', '--port', '0'], {
        env: {REPLAYCTL_INGEST_TOKENS: JSON.stringify([{token: ALL}])},
      })
      assert.equal(unscoped.code, 2, unscoped.stderr)
      assert.match(unscoped.stderr, /token #1 has no scope/)
    },
  )

  it('--no-auth on loopback takes requests without a token', async () => {
    const topic = await createTopic('noauth', 1)
    topics.push(topic)
    const server = await startServer(['-t', topic, '--no-auth', '--host', '127.0.0.1'], {REPLAYCTL_INGEST_TOKENS: ''})
    try {
      const answer = await post(server.url, ndjson([{webhook_id: 'w1', id: 'n1'}]), {authorization: null})
      assert.equal(answer.status, 200, JSON.stringify(answer.json))
      assert.deepEqual(await ids(topic), ['w1/n1'])
    } finally {
      assert.equal(await stopServer(server), 0)
    }
  })
})
