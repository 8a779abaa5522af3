import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {isOneLineError, nth} from './helpers.js'
import {Stack} from './replay-harness.js'
import {startReceiver} from './webhook-receiver.js'

/** `webhook add` applies delivery's target rule (url-guard): refused targets are never stored. */
const stack = new Stack()
before(() => stack.open())
after(() => stack.close())

const refused: [string, RegExp][] = [
  ['http://10.20.30.40/hook', /resolves to 10\.20\.30\.40, a private address/],
  ['http://127.0.0.1:8080/hook', /resolves to 127\.0\.0\.1, a loopback address/],
  ['http://169.254.169.254/latest/meta-data/', /resolves to 169\.254\.169\.254, a link-local address/],
  ['http://100.64.1.2/hook', /resolves to 100\.64\.1\.2, a shared \(CGNAT\) address/],
  // A host name is judged by what it resolves to.
  ['http://localhost:8080/hook', /resolves to (127\.0\.0\.1|::1), a loopback address/],
  ['http://[::1]:8080/hook', /resolves to ::1, a loopback address/],
]

describe('webhook add: private targets', () => {
  test('refused with one line and exit 2, nothing written, unless allowed', async () => {
    const deny = {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '0'}
    const snapshot = await stack.snapshot()
    for (const [i, [url, reason]] of refused.entries()) {
      const result = await stack.cli(['webhook', 'add', `private-${i}`, '--url', url], {env: deny})
      assert.equal(result.code, 2, `${url}: ${result.stderr}`)
      assert.ok(isOneLineError(result), `${url}: ${result.stderr}`)
      assert.match(result.stderr, reason)
      assert.match(
        result.stderr,
        /allow private targets with --allow-private-targets \(or REPLAYCTL_ALLOW_PRIVATE_TARGETS=1\)/,
      )
      assert.equal(result.stdout, '')
      const json = await stack.cli(['webhook', 'add', `private-${i}`, '--url', url, '--json'], {env: deny})
      assert.equal(json.code, 2)
      assert.equal(json.json.error.code, 'TARGET_NOT_ALLOWED')
    }
    assert.equal(await stack.snapshot(), snapshot, 'nothing written')

    // Allowed by the flag or by the environment.
    const byFlag = await stack.cli(
      ['webhook', 'add', 'private-flag', '--url', 'http://127.0.0.1:8080/hook', '--allow-private-targets', '--json'],
      {env: deny},
    )
    assert.equal(byFlag.code, 0, byFlag.stderr)
    assert.equal(byFlag.json.url, 'http://127.0.0.1:8080/hook')
    const byEnv = await stack.cli(['webhook', 'add', 'private-env', '--url', 'http://10.20.30.40/hook', '--json'], {
      env: {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1'},
    })
    assert.equal(byEnv.code, 0, byEnv.stderr)
    const [rows] = await stack.pool.query('SELECT id FROM webhooks ORDER BY id')
    assert.deepEqual(
      (rows as {id: string}[]).map((row) => row.id),
      ['private-env', 'private-flag'],
    )
  })

  test('multicast stays refused even when private targets are allowed; a public literal is accepted', async () => {
    const multicast = await stack.cli([
      'webhook',
      'add',
      'mc',
      '--url',
      'http://224.0.0.1/hook',
      '--allow-private-targets',
    ])
    assert.equal(multicast.code, 2)
    assert.ok(isOneLineError(multicast))
    assert.match(multicast.stderr, /a multicast address: register a webhook url on a public unicast address/)
    const pub = await stack.cli(['webhook', 'add', 'public', '--url', 'https://93.184.215.14/hook', '--json'], {
      env: {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '0'},
    })
    assert.equal(pub.code, 0, pub.stderr)
  })
})

describe('webhook add: the CRC check (one registration for the CLI and the API)', () => {
  const SECRET = `crc-secret-${'x'.repeat(32)}`
  const allow = {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1'}
  const stored = async (id: string) =>
    ((await stack.pool.query('SELECT id FROM webhooks WHERE id = ?', [id]))[0] as unknown[]).length

  test('a dead URL is refused with one line and nothing is stored', async () => {
    const dead = await stack.cli(
      ['webhook', 'add', 'crc-dead', '--url', 'http://127.0.0.1:9/hook', '--secret', SECRET],
      {env: allow},
    )
    assert.equal(dead.code, 5, dead.stderr)
    assert.ok(isOneLineError(dead), dead.stderr)
    assert.match(dead.stderr, /Could not reach the webhook URL during the CRC GET request/)
    assert.equal(await stored('crc-dead'), 0)
  })

  test('--skip-crc-check stores it unchecked; webhook check then records the outcome', async () => {
    const skipped = await stack.cli(
      [
        'webhook',
        'add',
        'crc-later',
        '--url',
        'http://127.0.0.1:9/hook',
        '--secret',
        SECRET,
        '--skip-crc-check',
        '--json',
      ],
      {env: allow},
    )
    assert.equal(skipped.code, 0, skipped.stderr)
    assert.equal(skipped.json.state, 'valid')
    assert.equal(skipped.json.lastCheckAt, null)
    const check = await stack.cli(['webhook', 'check', 'crc-later'], {env: allow})
    assert.equal(check.code, 5)
    const [rows] = await stack.pool.query('SELECT state FROM webhooks WHERE id = ?', ['crc-later'])
    assert.equal(nth(rows as {state: string}[], 0).state, 'invalid')
  })

  test('a live receiver answering the CRC passes and is stored valid and checked', async () => {
    const hook = await startReceiver({secret: SECRET})
    try {
      const added = await stack.cli(['webhook', 'add', 'crc-live', '--url', hook.url, '--secret', SECRET, '--json'], {
        env: allow,
      })
      assert.equal(added.code, 0, added.stderr)
      assert.equal(added.json.state, 'valid')
      assert.equal(added.json.lastCheckOk, true)
      assert.equal(hook.crcChecks, 1)
    } finally {
      await hook.close()
    }
  })
})
