import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import {syncBuiltinESMExports} from 'node:module'
import {describe, it, mock} from 'node:test'

import {BearerAuth, bearerToken, clientKey, FailureThrottle, isLoopbackHost, TokenTable} from '../src/core/http/auth.js'
import {ingestTokenEntries, outOfScope} from '../src/core/http/ingest/access.js'

/**
 * The bearer-token model both HTTP servers share (src/core/http/auth.ts), and the ingest's
 * key and topic scopes, as units: no server, no clock but the one passed in.
 */
describe('TokenTable', () => {
  const table = new TokenTable([
    {token: 'first-token-0123456789', scope: 'first'},
    {token: 'second-token-0123456789', scope: 'second'},
    {token: 'third-token-0123456789', scope: 'third'},
  ])

  it("finds a token's scope and position, and nothing for a near miss", () => {
    assert.deepEqual(table.find('second-token-0123456789'), {scope: 'second', tokenIndex: 2})
    for (const miss of ['second-token-012345678', 'second-token-0123456789x', 'Second-token-0123456789', ''])
      assert.equal(table.find(miss), undefined, miss)
  })

  it(
    'compares in constant time: timingSafeEqual against every entry, whichever matched (the first, the last ' +
      'or none)',
    () => {
      const compare = mock.method(crypto, 'timingSafeEqual')
      syncBuiltinESMExports()
      try {
        for (const token of ['first-token-0123456789', 'third-token-0123456789', 'no-such-token-0123456789']) {
          compare.mock.resetCalls()
          table.find(token)
          assert.equal(compare.mock.callCount(), 3, token)
          // Digests of one length, whatever the lengths of the tokens: a length tells nothing either.
          for (const call of compare.mock.calls)
            assert.deepEqual(
              call.arguments.map((buffer) => (buffer as Buffer).length),
              [32, 32],
            )
        }
      } finally {
        compare.mock.restore()
        syncBuiltinESMExports()
      }
    },
  )

  it('reads only "Bearer <token>" headers', () => {
    assert.equal(bearerToken('Bearer abc.DEF-123'), 'abc.DEF-123')
    assert.equal(bearerToken('bearer abc'), 'abc')
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Basic abc',
      'Bearer a b',
      'abc',
      `Bearer ${'x'.repeat(513)}`,
      'Bearer caf\u00e9',
    ]) {
      assert.equal(bearerToken(header), undefined, String(header))
    }
  })
})

describe('FailureThrottle and BearerAuth', () => {
  const t0 = 1_800_000_000_000

  it('blocks an address after maxFailures within the window, until the window (from its first failure) ends', () => {
    const throttle = new FailureThrottle({maxFailures: 3, windowMs: 60_000})
    throttle.fail('10.0.0.1', t0)
    throttle.fail('10.0.0.1', t0 + 1000)
    assert.equal(throttle.blocked('10.0.0.1', t0 + 2000), undefined)
    throttle.fail('10.0.0.1', t0 + 2000)
    assert.deepEqual(throttle.blocked('10.0.0.1', t0 + 2000), {limit: 3, resetAt: (t0 + 60_000) / 1000, retryAfter: 58})
    assert.equal(throttle.blocked('10.0.0.2', t0 + 2000), undefined, 'other addresses are not blocked')
    assert.equal(throttle.blocked('10.0.0.1', t0 + 60_000), undefined, 'the window is over')
    throttle.fail('10.0.0.1', t0 + 60_000)
    assert.equal(throttle.blocked('10.0.0.1', t0 + 60_001), undefined, 'a new window counts from zero')
  })

  it('answers 401 to failures, then 429 even to a right token, then lets the right token in', () => {
    const auth = new BearerAuth([{token: 'right-token-0123456789', scope: 'ok'}], {maxFailures: 2, windowMs: 10_000})
    assert.deepEqual(auth.check('Bearer wrong-token-0123456789', '::ffff:192.0.2.7', t0), {ok: false, status: 401})
    assert.deepEqual(auth.check(undefined, '192.0.2.7', t0 + 1), {ok: false, status: 401})
    const blocked = auth.check('Bearer right-token-0123456789', '192.0.2.7', t0 + 2)
    assert.equal(blocked.ok, false)
    assert.equal(!blocked.ok && blocked.status, 429)
    assert.deepEqual(auth.check('Bearer right-token-0123456789', '192.0.2.8', t0 + 2), {
      ok: true,
      scope: 'ok',
      tokenIndex: 1,
    })
    assert.deepEqual(auth.check('Bearer right-token-0123456789', '192.0.2.7', t0 + 10_000), {
      ok: true,
      scope: 'ok',
      tokenIndex: 1,
    })
  })

  it('counts an IPv6 client by its /64 and an IPv4-mapped one as IPv4', () => {
    assert.equal(clientKey('2001:db8:1:2::1'), clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:fffe'))
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'))
    assert.equal(clientKey('::1'), '0:0:0:0::/64')
    assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1')
    assert.equal(clientKey('192.0.2.1'), '192.0.2.1')
  })

  it('remembers at most maxAddresses addresses', () => {
    const throttle = new FailureThrottle({maxFailures: 1, windowMs: 60_000, maxAddresses: 1000})
    for (let index = 0; index < 5000; index++)
      throttle.fail(`10.${index >> 16}.${(index >> 8) & 255}.${index & 255}`, t0)
    assert.equal(throttle.size, 1000)
    assert.ok(throttle.blocked('10.0.19.135', t0), 'the most recent are kept')
  })

  it('lets only loopback hosts go without authentication', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1'])
      assert.ok(isLoopbackHost(host), host)
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.0.2.1', 'example.com', '128.0.0.1'])
      assert.ok(!isLoopbackHost(host), host)
  })
})

describe('ingest scopes', () => {
  const [acme, topics, every] = ingestTokenEntries([
    {token: 'acme-token-0123456789', keys: ['acme-*', 'exact'], topics: '*'},
    {token: 'topic-token-0123456789', keys: '*', topics: ['delivery.log', 'events_*']},
    {token: 'every-token-0123456789', keys: '*', topics: '*'},
  ]).map((entry) => entry.scope)

  it('matches keys by name or by pattern, * being any run of characters', () => {
    for (const key of ['acme-1', 'acme-', 'acme-x-y', 'exact']) assert.ok(acme!.keys(key), key)
    for (const key of ['acme', 'xacme-1', 'Acme-1', 'exact2', 'b1']) assert.ok(!acme!.keys(key), key)
    assert.ok(every!.keys('anything') && every!.topics('anything'))
  })

  it('matches topics, a dot being a dot', () => {
    assert.ok(topics!.topics('delivery.log') && topics!.topics('events_2026'))
    assert.ok(!topics!.topics('deliveryxlog') && !topics!.topics('delivery_log'))
  })

  it('finds the first event outside a scope', () => {
    const records = ['acme-1', 'exact', 'b1', 'c1'].map((key) => ({key, value: Buffer.from('{}'), timestamp: null}))
    assert.deepEqual(outOfScope(acme!, records), {index: 3, key: 'b1'})
    assert.equal(outOfScope(acme!, records.slice(0, 2)), undefined)
  })
})
