import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {existsSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {openPool} from '../src/core/db/database.js'
import {MIGRATIONS} from '../src/core/db/migrations.js'
import {registerWebhook} from '../src/core/webhooks/registration.js'
import {decryptSecret, ensureLocalSecretKey, parseSecretKey} from '../src/core/webhooks/secret-key.js'
import {WebhookSecrets} from '../src/core/webhooks/secrets.js'
import {localSettings} from '../src/core/shared/settings.js'
import {BIN, BROKERS, isOneLineError, nth, testSecretKey, uniqueName} from './helpers.js'
import {replayTestFile, SERVER_URL, scenario, withWorkers} from './replay-harness.js'

/**
 * Webhook secrets (issue 13, "Secrets"): weak ones refused by the CLI and the API's registration
 * alike, a strong one generated when none is given, secrets taken from a file or stdin instead of
 * argv, encrypted at rest (no plaintext in the table, old plaintext rows encrypted on first use),
 * a clear error for a missing or wrong key, and key rotation.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-secrets-test-key-0123456789').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)
const dir = mkdtempSync(join(tmpdir(), 'replayctl-secrets-'))
const hookId = () => uniqueName('sec').replace(/_/g, '-')

/** Every byte of every row of the webhooks table. */
async function rawRows(database = stack.database): Promise<Buffer> {
  const [rows] = await stack.pool.query(`SELECT * FROM \`${database}\`.webhooks`)
  const parts: Buffer[] = []
  for (const row of rows as Record<string, unknown>[]) {
    for (const value of Object.values(row))
      if (value !== null) parts.push(Buffer.isBuffer(value) ? value : Buffer.from(String(value)))
  }
  return Buffer.concat(parts)
}

const WEAK: [string, RegExp][] = [
  ['whsec_', /decodes to 0 bytes/],
  ['whsec_!!!!', /is not valid base64/],
  ['x', /1 characters long, under the minimum of 32/],
  ['a'.repeat(31), /31 characters long, under the minimum of 32/],
  [`whsec_${randomBytes(16).toString('base64')}`, /decodes to 16 bytes; Standard Webhooks keys are 24 to 64 bytes/],
  [`whsec_${randomBytes(65).toString('base64')}`, /decodes to 65 bytes/],
]

describe('weak secrets', () => {
  test('the CLI refuses them with one line and exit 2, never repeating the secret, and writes nothing', async () => {
    const before = await stack.snapshot()
    for (const [secret, reason] of WEAK) {
      const result = await stack.cli([
        'webhook',
        'add',
        hookId(),
        '--url',
        'https://example.com/hook',
        '--secret',
        secret,
        '--skip-crc-check',
      ])
      assert.equal(result.code, 2, `${secret}: ${result.stderr}`)
      assert.ok(isOneLineError(result), result.stderr)
      assert.match(result.stderr, reason)
      if (secret.length > 6) assert.ok(!result.stderr.includes(secret), 'the secret is not echoed')
    }
    assert.equal(await stack.snapshot(), before, 'nothing written')
    // The limits themselves are accepted.
    for (const secret of [
      `whsec_${randomBytes(24).toString('base64')}`,
      `whsec_${randomBytes(64).toString('base64')}`,
      'b'.repeat(32),
    ]) {
      const ok = await stack.cli([
        'webhook',
        'add',
        hookId(),
        '--url',
        'https://example.com/hook',
        '--secret',
        secret,
        '--skip-crc-check',
      ])
      assert.equal(ok.code, 0, ok.stderr)
    }
  })

  test('the registration the API uses refuses them before any CRC check or write', async () => {
    const secrets = await WebhookSecrets.open(stack.pool, testSecretKey())
    const before = await stack.snapshot()
    for (const [secret, reason] of WEAK) {
      await assert.rejects(
        registerWebhook(
          stack.pool,
          secrets,
          {id: hookId(), url: 'http://127.0.0.1:9/hook', secret},
          {allowPrivate: true},
        ),
        {code: 'INVALID_ARGUMENT', message: reason},
      )
    }
    assert.equal(await stack.snapshot(), before)
  })
})

describe('secret input', () => {
  test('without --secret a strong secret is generated, shown once, and signs', async () => {
    const id = hookId()
    const added = await stack.cli(['webhook', 'add', id, '--url', 'http://127.0.0.1:9/hook', '--json'])
    assert.equal(added.code, 0, added.stderr)
    const secret = added.json.generatedSecret as string
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    assert.equal(Buffer.from(secret.slice(6), 'base64').length, 32)
    assert.match(added.json.note, /will not be shown again/)

    const table = await stack.cli(['webhook', 'add', hookId(), '--url', 'http://127.0.0.1:9/hook'])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /secret\s+whsec_[A-Za-z0-9+/]{43}=/)
    assert.match(table.stdout, /will not be shown again/)

    for (const args of [
      ['webhook', 'list'],
      ['webhook', 'list', '--json'],
    ]) {
      const list = await stack.cli(args)
      assert.equal(list.code, 0, list.stderr)
      assert.ok(!list.stdout.includes(secret), 'never shown again')
    }
    // The CRC check signs with the stored secret: a receiver holding the shown one passes it.
    const hook = await receiver({secret})
    const [rows] = await stack.pool.query('UPDATE webhooks SET url = ? WHERE id = ?', [hook.url, id])
    assert.equal((rows as {affectedRows: number}).affectedRows, 1)
    const check = await stack.cli(['webhook', 'check', id, '--json'])
    assert.equal(check.code, 0, check.stderr + check.stdout)
    assert.equal(check.json.ok, true)
  })

  test('--secret-file and --secret - keep the secret out of argv; the two together are refused', async () => {
    const secret = `file-secret-${randomBytes(24).toString('hex')}`
    const hook = await receiver({secret})
    const file = join(dir, 'secret.txt')
    writeFileSync(file, `${secret}\r\n`, {mode: 0o600})
    const byFile = hookId()
    const added = await stack.cli(['webhook', 'add', byFile, '--url', hook.url, '--secret-file', file])
    assert.equal(added.code, 0, added.stderr)
    assert.equal((await stack.cli(['webhook', 'check', byFile])).code, 0, 'one trailing newline dropped')

    // From stdin: the process's own argv (/proc/PID/cmdline) never holds the secret.
    const byStdin = hookId()
    const child = spawn(process.execPath, [BIN, 'webhook', 'add', byStdin, '--url', hook.url, '--secret', '-'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REPLAYCTL_BROKERS: BROKERS,
        ...stack.env,
        REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    await once(child, 'spawn')
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`)
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    child.stdin.end(`${secret}\n`)
    assert.equal(await exited, 0, stderr)
    assert.ok(!cmdline.includes(secret) && cmdline.includes('--secret'), cmdline.toString())
    assert.equal((await stack.cli(['webhook', 'check', byStdin])).code, 0)

    const both = await stack.cli([
      'webhook',
      'add',
      hookId(),
      '--url',
      hook.url,
      '--secret',
      secret,
      '--secret-file',
      file,
    ])
    assert.equal(both.code, 2)
    assert.ok(isOneLineError(both), both.stderr)
    assert.match(both.stderr, /--secret and --secret-file were both given/)
    assert.ok(!both.stderr.includes(secret))
    const empty = join(dir, 'empty.txt')
    writeFileSync(empty, '\n')
    const none = await stack.cli(['webhook', 'add', hookId(), '--url', hook.url, '--secret-file', empty])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /the webhook secret is empty/)
    const help = await stack.cli(['webhook', 'add', '--help'])
    assert.match(help.stdout, /--secret-file/)
    assert.match(help.stdout, /--secret -/)
  })
})

describe('secrets at rest', () => {
  test('the table holds no plaintext secret, only ciphertext and the key id', async () => {
    const secret = `at-rest-${randomBytes(24).toString('hex')}`
    const id = hookId()
    assert.equal(
      (
        await stack.cli([
          'webhook',
          'add',
          id,
          '--url',
          'https://example.com/hook',
          '--secret',
          secret,
          '--skip-crc-check',
        ])
      ).code,
      0,
    )
    const raw = await rawRows()
    assert.ok(!raw.includes(secret), 'the secret is nowhere in the row bytes')
    assert.ok(!raw.includes(SECRET.slice(6)) && !raw.includes(Buffer.from(SECRET.slice(6), 'base64')))
    const [rows] = await stack.pool.query('SELECT secret, secret_sealed, secret_key_id FROM webhooks WHERE id = ?', [
      id,
    ])
    const row = nth(rows as {secret: string | null; secret_sealed: Buffer; secret_key_id: string}[], 0)
    assert.equal(row.secret, null)
    assert.equal(row.secret_key_id, testSecretKey().id)
    assert.equal(row.secret_sealed.length, 12 + 16 + secret.length, 'iv, tag, ciphertext')
    assert.equal(decryptSecret(testSecretKey(), id, row.secret_sealed), secret)
    assert.equal(
      decryptSecret(testSecretKey(), 'another-webhook', row.secret_sealed),
      undefined,
      'bound to its webhook id',
    )
  })

  test('a plaintext row from before the migration is encrypted on first use', async () => {
    const database = uniqueName('rp_legacy')
    await stack.pool.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
    const url = `${SERVER_URL}/${database}`
    const legacy = await openPool(url, {migrate: false})
    try {
      // The schema as replayctl left it before secrets were encrypted (migrations 1-7).
      await legacy.query(`CREATE TABLE schema_migrations (version INT UNSIGNED NOT NULL, name VARCHAR(255) NOT NULL,
        applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (version))
        ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
      for (const migration of MIGRATIONS.filter((m) => m.version <= 7)) {
        for (const statement of migration.statements) await legacy.query(statement)
        await legacy.query('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [
          migration.version,
          migration.name,
        ])
      }
      const secret = `legacy-plaintext-${randomBytes(20).toString('hex')}`
      const hook = await receiver({secret})
      await legacy.query('INSERT INTO webhooks (id, url, secret) VALUES (?, ?, ?)', ['legacy-hook', hook.url, secret])
      assert.ok((await rawRows(database)).includes(secret), 'plaintext before')

      const check = await stack.cli(['webhook', 'check', 'legacy-hook'], {env: {REPLAYCTL_MYSQL_URL: url}})
      assert.equal(check.code, 0, check.stderr)
      assert.ok(!(await rawRows(database)).includes(secret), 'no plaintext after the first use')
      const [rows] = await legacy.query('SELECT secret, secret_key_id FROM webhooks')
      assert.deepEqual(rows, [{secret: null, secret_key_id: testSecretKey().id}])
      assert.equal((await (await WebhookSecrets.open(legacy, testSecretKey())).read('legacy-hook')).secret, secret)
    } finally {
      await legacy.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {})
      await legacy.end()
    }
  })

  test('a missing or wrong key stops the CLI, the worker and the API with one line and exit 2', async () => {
    const id = hookId()
    assert.equal(
      (
        await stack.cli([
          'webhook',
          'add',
          id,
          '--url',
          'http://127.0.0.1:9/hook',
          '--secret',
          SECRET,
          '--skip-crc-check',
        ])
      ).code,
      0,
    )
    const before = await stack.snapshot()
    const wrong = {REPLAYCTL_SECRET_KEY: randomBytes(32).toString('base64')}
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({currentContext: 'c', contexts: {c: {secretKeyFile: 'missing.key'}}}))
    const missing = {REPLAYCTL_CONFIG: config}
    const apiTokens = {REPLAYCTL_API_TOKENS: JSON.stringify([{token: 'secrets-test-token-0123456789', webhooks: '*'}])}
    const runs: [string[], Record<string, string>, string, RegExp][] = [
      [
        ['webhook', 'check', id],
        wrong,
        'SECRET_KEY_WRONG',
        new RegExp(
          'webhook secrets? (?:is|are) encrypted with key [0-9a-f]{16}, ' +
            'but the key from REPLAYCTL_SECRET_KEY is [0-9a-f]{16}',
        ),
      ],
      [
        ['webhook', 'add', hookId(), '--url', 'https://example.com/hook'],
        wrong,
        'SECRET_KEY_WRONG',
        /are encrypted with key/,
      ],
      [['replay', 'worker', '--once'], wrong, 'SECRET_KEY_WRONG', /are encrypted with key/],
      [['api', 'serve', '--port', '0'], {...wrong, ...apiTokens}, 'SECRET_KEY_WRONG', /are encrypted with key/],
      [
        ['webhook', 'check', id],
        missing,
        'SECRET_KEY_MISSING',
        /no key for webhook secrets: .*missing\.key does not exist: set REPLAYCTL_SECRET_KEY/,
      ],
      [
        ['webhook', 'add', hookId(), '--url', 'https://example.com/hook'],
        missing,
        'SECRET_KEY_MISSING',
        /missing\.key does not exist/,
      ],
      [['replay', 'worker', '--once'], missing, 'SECRET_KEY_MISSING', /missing\.key does not exist/],
      [
        ['api', 'serve', '--port', '0'],
        {...missing, ...apiTokens},
        'SECRET_KEY_MISSING',
        /missing\.key does not exist/,
      ],
    ]
    for (const [args, env, code, message] of runs) {
      const result = await stack.cli(args, {env, timeoutMs: 30_000})
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
      // The worker and the API log JSON lines (started, stopped) around the error line.
      const lines = result.stderr
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('{'))
      assert.ok(isOneLineError({...result, stderr: lines.join('\n')}), `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, message)
      const json = await stack.cli([...args, '--json'], {env, timeoutMs: 30_000})
      assert.equal(json.json?.error?.code, code, `${args.join(' ')}: ${json.stdout}`)
    }
    assert.equal(await stack.snapshot(), before, 'nothing written')
  })
})

describe("the local stack's key", () => {
  test('dev up creates ~/.config/replayctl/secret.key once, mode 0600, unless REPLAYCTL_SECRET_KEY is set', () => {
    const env = {XDG_CONFIG_HOME: join(dir, 'xdg')}
    const first = ensureLocalSecretKey(localSettings(env).localSecretKeyFile)
    assert.deepEqual(first, {file: join(dir, 'xdg', 'replayctl', 'secret.key'), created: true})
    assert.equal(statSync(first.file).mode & 0o777, 0o600)
    assert.equal(statSync(join(dir, 'xdg', 'replayctl')).mode & 0o777, 0o700)
    const key = readFileSync(first.file, 'utf8')
    assert.equal(Buffer.from(key.trim(), 'base64').length, 32)
    assert.deepEqual(ensureLocalSecretKey(localSettings(env).localSecretKeyFile), {file: first.file, created: false})
    assert.equal(readFileSync(first.file, 'utf8'), key, 'never replaced')
    assert.equal(localSettings({...env, REPLAYCTL_SECRET_KEY: key}).localSecretKeyFile, null)
  })
})

describe('key rotation', () => {
  test('rotate-key re-encrypts every row; the old key no longer decrypts, deliveries still sign', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 2, unique: 20})
      const hook = await receiver()
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const [counted] = await stack.pool.query('SELECT COUNT(*) AS n FROM webhooks WHERE secret_sealed IS NOT NULL')
      const sealed = Number(nth(counted as {n: number}[], 0).n)

      // A worker started with the old key, running through the rotation.
      const running = workers.start([])
      await running.waitForLog('worker started')

      const newKeyFile = join(dir, 'rotated.key')
      // Without the current key: refused, and no key file is written.
      const config = join(dir, 'rotate-config.json')
      writeFileSync(config, JSON.stringify({currentContext: 'c', contexts: {c: {secretKeyFile: 'absent.key'}}}))
      for (const [env, code] of [
        [{REPLAYCTL_SECRET_KEY: randomBytes(32).toString('base64')}, 'SECRET_KEY_WRONG'],
        [{REPLAYCTL_CONFIG: config}, 'SECRET_KEY_MISSING'],
      ] as const) {
        const refused = await stack.cli(['webhook', 'rotate-key', '--new-key-file', newKeyFile, '--json'], {env})
        assert.equal(refused.code, 2, refused.stdout)
        assert.equal(refused.json.error.code, code)
        assert.equal(existsSync(newKeyFile), false)
      }
      const rotated = await stack.cli(['webhook', 'rotate-key', '--new-key-file', newKeyFile, '--json'])
      assert.equal(rotated.code, 0, rotated.stderr)
      assert.equal(rotated.json.rotated, sealed)
      assert.equal(rotated.json.oldKeyId, testSecretKey().id)
      assert.equal(rotated.json.createdKeyFile, true)
      assert.equal(statSync(newKeyFile).mode & 0o777, 0o600)
      const newKey = parseSecretKey(readFileSync(newKeyFile, 'utf8'), newKeyFile)
      assert.equal(rotated.json.newKeyId, newKey.id)

      const [rows] = await stack.pool.query('SELECT id, secret_sealed, secret_key_id FROM webhooks WHERE id = ?', [
        s.webhookId,
      ])
      const row = nth(rows as {id: string; secret_sealed: Buffer; secret_key_id: string}[], 0)
      assert.equal(row.secret_key_id, newKey.id)
      assert.equal(
        decryptSecret(testSecretKey(), row.id, row.secret_sealed),
        undefined,
        'the old key no longer decrypts',
      )
      assert.equal(decryptSecret(newKey, row.id, row.secret_sealed), SECRET)

      // Run again: nothing left to do (a rotation cut short is finished this way).
      const again = await stack.cli(['webhook', 'rotate-key', '--new-key-file', newKeyFile, '--json'], {
        env: {REPLAYCTL_SECRET_KEY: newKey.bytes.toString('base64')},
      })
      assert.equal(again.code, 2, 'the file holds the key in use')
      const rerun = await stack.cli(['webhook', 'rotate-key', '--new-key-file', newKeyFile, '--json'])
      assert.equal(rerun.code, 0, rerun.stderr)
      assert.deepEqual([rerun.json.rotated, rerun.json.unchanged], [0, sealed])

      const job = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      assert.equal(
        (await running.waitForExit(30_000)).code,
        2,
        'the running worker stops at the first secret it cannot read',
      )
      assert.match(running.stderr, /replayctl: error: .*encrypted with key/)
      assert.equal(
        running.logged('job ended', job)[0]?.outcome,
        'ERROR',
        'it had claimed the job with the secrets already open',
      )
      assert.equal((await stack.job(job)).state, 'OPEN', 'the job is handed back, not failed')
      assert.equal(hook.requests.length, 0)
      const stale = workers.start(['--once'])
      assert.equal((await stale.waitForExit(30_000)).code, 2, 'a worker holding the old key refuses to start')
      assert.match(stale.stderr, /SECRET_KEY_WRONG|are encrypted with key/)
      assert.equal((await stack.job(job)).state, 'OPEN')

      const current = workers.start(['--once'], {REPLAYCTL_SECRET_KEY: newKey.bytes.toString('base64')})
      assert.equal((await current.waitForExit(60_000)).code, 0, current.stderr)
      assert.equal((await stack.job(job)).state, 'COMPLETED')
      assert.ok(hook.requests.length >= s.expected.length)
      assert.ok(
        hook.requests.every((request) => request.signed),
        'every delivery verifies with the webhook secret',
      )
    })
  })
})
