import assert from 'node:assert/strict'
import {createHmac} from 'node:crypto'
import {subscribe, unsubscribe} from 'node:diagnostics_channel'
import {after, describe, test} from 'node:test'

import {checkWebhook} from '../src/core/webhooks/crc-check.js'
import {type Receiver, closedPort, delay, startReceiver} from './webhook-receiver.js'

const SECRET = 'consumer-secret-for-crc'
const receivers: Receiver[] = []
after(async () => {
  await Promise.all(receivers.map((receiver) => receiver.close().catch(() => {})))
})

async function serve(options: Partial<Parameters<typeof startReceiver>[0]> = {}): Promise<Receiver> {
  const receiver = await startReceiver({secret: SECRET, ...options})
  receivers.push(receiver)
  return receiver
}

/** A receiver whose GET answer the test writes by hand. */
async function answering(
  answer: (token: string, res: import('node:http').ServerResponse) => void | Promise<void>,
): Promise<Receiver> {
  const receiver = await serve()
  receiver.server.removeAllListeners('request')
  receiver.server.on('request', (req, res) => {
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('crc_token') ?? ''
    void Promise.resolve(answer(token, res)).catch(() => res.destroy())
  })
  return receiver
}

describe('crc check', () => {
  test('a webhook that answers with the right token passes', async () => {
    const hook = await serve()
    const result = await checkWebhook({url: hook.url + '?keep=1', secret: SECRET, allowPrivate: true})
    assert.deepEqual(
      {ok: result.ok, status: result.status, error: result.error},
      {ok: true, status: 200, error: undefined},
    )
    assert.ok(result.latencyMs >= 0 && result.latencyMs < 3000)
    assert.equal(hook.crcChecks, 1)
  })

  test('the token is sent as crc_token and answered with HMAC-SHA256 of it', async () => {
    let seen = ''
    let query = ''
    const hook = await answering((token, res) => {
      seen = token
      res
        .writeHead(200, {'content-type': 'application/json'})
        .end(JSON.stringify({response_token: 'sha256=' + createHmac('sha256', SECRET).update(token).digest('base64')}))
    })
    hook.server.prependListener('request', (req) => (query = req.url ?? ''))
    const result = await checkWebhook({
      url: hook.url + '?keep=1',
      secret: SECRET,
      allowPrivate: true,
      crcToken: 'fixed-token',
    })
    assert.ok(result.ok, result.error)
    assert.equal(seen, 'fixed-token')
    assert.equal(query, '/webhook?keep=1&crc_token=fixed-token', 'the existing query is kept')
  })

  test('a webhook holding another secret fails with a clear reason', async () => {
    const hook = await serve({crcSecret: 'not-the-secret'})
    const result = await checkWebhook({url: hook.url, secret: SECRET, allowPrivate: true})
    assert.equal(result.ok, false)
    assert.equal(result.status, 200)
    assert.equal(result.error, 'the response_token does not match: the webhook signs with a different consumer secret')
  })

  test('wrong answers: status, not JSON, no token, a redirect', async () => {
    const notFound = await answering((_token, res) => void res.writeHead(404).end('nope'))
    assert.deepEqual(await pick(notFound), {
      ok: false,
      status: 404,
      error: 'webhook answered 404, expected 200 with a response_token',
    })
    const html = await answering(
      (_token, res) => void res.writeHead(200, {'content-type': 'text/html'}).end('<html></html>'),
    )
    assert.deepEqual(await pick(html), {
      ok: false,
      status: 200,
      error: 'the answer is not JSON, expected {"response_token": "sha256=..."}',
    })
    const empty = await answering((_token, res) => void res.writeHead(200).end('{"token": "x"}'))
    assert.deepEqual(await pick(empty), {
      ok: false,
      status: 200,
      error: 'the answer has no response_token, expected {"response_token": "sha256=..."}',
    })
    const moved = await answering((_token, res) => void res.writeHead(302, {location: 'http://127.0.0.1:1/'}).end())
    assert.deepEqual(await pick(moved), {
      ok: false,
      status: 302,
      error: 'webhook answered 302, a redirect (redirects are not followed), expected 200 with a response_token',
    })
  })

  test('no answer in time', async () => {
    const slow = await answering(async (_token, res) => {
      await delay(1000)
      res.writeHead(200).end('{}')
    })
    const started = performance.now()
    const result = await checkWebhook({url: slow.url, secret: SECRET, allowPrivate: true, timeoutMs: 200})
    assert.equal(result.ok, false)
    assert.equal(result.error, 'no answer within 200 ms')
    assert.ok(performance.now() - started < 900)
  })

  test('nothing listening', async () => {
    const port = await closedPort()
    const result = await checkWebhook({url: `http://127.0.0.1:${port}/hook`, secret: SECRET, allowPrivate: true})
    assert.equal(result.ok, false)
    assert.equal(result.error, `could not reach http://127.0.0.1:${port}/hook: ECONNREFUSED`)
  })

  test('a refused target throws TARGET_NOT_ALLOWED; nothing is sent', async () => {
    const hook = await serve()
    await assert.rejects(checkWebhook({url: hook.url, secret: SECRET}), {name: 'UserError', code: 'TARGET_NOT_ALLOWED'})
    await assert.rejects(checkWebhook({url: `http://localhost:${hook.port}/webhook`, secret: SECRET}), {
      code: 'TARGET_NOT_ALLOWED',
      message: /resolves to (127\.0\.0\.1|::1), a loopback address/,
    })
    assert.equal(hook.crcChecks, 0)
  })

  test('a benchmarking-range target (198.18.0.0/15) is refused before any connection is opened', async () => {
    const opened: unknown[] = []
    const onSocket = (message: unknown) => opened.push(message)
    subscribe('net.client.socket', onSocket)
    try {
      await assert.rejects(checkWebhook({url: 'http://198.18.0.1/hook', secret: SECRET, timeoutMs: 500}), {
        code: 'TARGET_NOT_ALLOWED',
        message: /198\.18\.0\.1, a benchmarking address/,
      })
      await assert.rejects(checkWebhook({url: 'http://[::ffff:198.19.0.1]/hook', secret: SECRET, timeoutMs: 500}), {
        code: 'TARGET_NOT_ALLOWED',
      })
    } finally {
      unsubscribe('net.client.socket', onSocket)
    }
    assert.equal(opened.length, 0, 'no socket was opened')
  })
})

async function pick(receiver: Receiver) {
  const result = await checkWebhook({url: receiver.url, secret: SECRET, allowPrivate: true})
  return {ok: result.ok, status: result.status, error: result.error}
}
