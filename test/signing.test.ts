import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'
import {describe, test} from 'node:test'

import {
  WebhookSigner,
  crcResponseToken,
  standardWebhooksKey,
  standardWebhooksSignature,
  twitterSignature,
  verifyCrcResponseToken,
  verifyStandardWebhooks,
  verifyTwitterSignature,
} from '../src/core/webhooks/signing.js'

describe('signing', () => {
  test('Twitter body signature is sha256= + base64 HMAC-SHA256(secret, raw body)', () => {
    const secret = 'consumer-secret-123'
    const body = Buffer.from('{"for_user_id":"2244994945","tweet_create_events":[{"text":"héllo"}]}', 'utf8')
    const expected = 'sha256=' + createHmac('sha256', secret).update(body).digest('base64')
    assert.equal(twitterSignature(secret, body), expected)
    assert.ok(verifyTwitterSignature(secret, body, expected))
    assert.ok(!verifyTwitterSignature('other', body, expected))
    assert.ok(!verifyTwitterSignature(secret, Buffer.from('{}'), expected))
    assert.ok(!verifyTwitterSignature(secret, body, undefined))
  })

  test('raw bytes are signed as they are, even when not valid UTF-8', () => {
    const body = Buffer.from([0x7b, 0xff, 0xfe, 0x7d])
    const expected = 'sha256=' + createHmac('sha256', 's').update(body).digest('base64')
    assert.equal(twitterSignature('s', body), expected)
    assert.notEqual(twitterSignature('s', body), twitterSignature('s', body.toString('utf8')))
  })

  test('CRC response token is sha256= + base64 HMAC-SHA256(secret, crc_token)', () => {
    const expected = 'sha256=' + createHmac('sha256', 'secret').update('token-abc').digest('base64')
    assert.equal(crcResponseToken('secret', 'token-abc'), expected)
    assert.ok(verifyCrcResponseToken('secret', 'token-abc', expected))
    assert.ok(!verifyCrcResponseToken('secret', 'token-abd', expected))
    assert.ok(!verifyCrcResponseToken('secret', 'token-abc', 42))
  })

  test(
    'Standard Webhooks published vector (standard-webhooks/standard-webhooks, libraries/javascript ' +
      'webhook.test.ts)',
    () => {
      const signature = standardWebhooksSignature(
        standardWebhooksKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
        'msg_p5jXN8AQM9LWM0D4loKWxJek',
        1614265330,
        '{"test": 2432232314}',
      )
      assert.equal(signature, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=')
      const headers = {
        'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
        'webhook-timestamp': '1614265330',
        'webhook-signature': signature,
      }
      assert.ok(
        verifyStandardWebhooks('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"test": 2432232314}', headers, {
          now: 1614265330 + 10,
        }),
      )
    },
  )

  test('a whsec_ secret keys with its decoded bytes, any other secret with its UTF-8 bytes', () => {
    const raw = Buffer.from('0123456789abcdef0123456789abcdef')
    const whsec = 'whsec_' + raw.toString('base64')
    assert.deepEqual(standardWebhooksKey(whsec), raw)
    assert.deepEqual(standardWebhooksKey('plain secret'), Buffer.from('plain secret', 'utf8'))
    const body = Buffer.from('{"a":1}')
    const expected = 'v1,' + createHmac('sha256', raw).update('evt_1.1700000000.').update(body).digest('base64')
    assert.equal(standardWebhooksSignature(whsec, 'evt_1', 1700000000, body), expected)
    const plain = 'v1,' + createHmac('sha256', 'plain secret').update('evt_1.1700000000.{"a":1}').digest('base64')
    assert.equal(standardWebhooksSignature('plain secret', 'evt_1', 1700000000, body), plain)
  })

  test('verifyStandardWebhooks: tolerance, several signatures, tampering', () => {
    const secret = 'whsec_' + Buffer.from('k'.repeat(24)).toString('base64')
    const body = '{"x":true}'
    const now = 1_700_000_000
    const sig = standardWebhooksSignature(secret, 'evt_a', now, body)
    const headers = (ts: number, signature = sig) => ({
      'webhook-id': 'evt_a',
      'webhook-timestamp': String(ts),
      'webhook-signature': signature,
    })
    assert.ok(verifyStandardWebhooks(secret, body, headers(now), {now}))
    assert.ok(
      verifyStandardWebhooks(secret, body, headers(now, `v1,bm9wZQ== ${sig}`), {now}),
      'one of several signatures',
    )
    assert.ok(!verifyStandardWebhooks(secret, body, headers(now), {now: now + 301}), 'too old')
    assert.ok(!verifyStandardWebhooks(secret, body, headers(now), {now: now - 301}), 'too new')
    assert.ok(!verifyStandardWebhooks(secret, body + ' ', headers(now), {now}), 'body changed')
    assert.ok(!verifyStandardWebhooks(secret, body, {...headers(now), 'webhook-id': 'evt_b'}, {now}), 'id changed')
    assert.ok(
      !verifyStandardWebhooks(secret, body, {'webhook-id': 'evt_a', 'webhook-timestamp': String(now)}, {now}),
      'no signature',
    )
    assert.ok(!verifyStandardWebhooks(secret, body, headers(now, sig.replace('v1,', 'v2,')), {now}), 'other version')
  })

  test('WebhookSigner matches the functions and refuses an empty secret', () => {
    const signer = new WebhookSigner('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')
    assert.equal(
      signer.standard('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, Buffer.from('{"test": 2432232314}')),
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    )
    assert.equal(signer.twitter('{}'), twitterSignature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{}'))
    assert.equal(signer.crcResponseToken('t'), crcResponseToken('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 't'))
    assert.throws(() => new WebhookSigner(''), {name: 'UserError', code: 'INVALID_ARGUMENT'})
  })
})
