import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {createServer, type Server} from 'node:http'
import {connect, type AddressInfo} from 'node:net'
import {before, describe, test} from 'node:test'

import {request} from 'undici'

import {translateError} from '../src/core/http/api/twitter-errors.js'
import {UserError} from '../src/core/shared/errors.js'
import {crcResponseToken} from '../src/core/webhooks/signing.js'
import {BIN, BROKERS, isOneLineError, nth, runCli} from './helpers.js'
import {
  assertCovers,
  eventBodies,
  isCompletion,
  MINUTE,
  replayTestFile,
  scenario,
  type Scenario,
  waitFor,
  withWorkers,
} from './replay-harness.js'
import {closedPort, type ReceiverOptions} from './webhook-receiver.js'

/**
 * The Replay API through the real server process (`replayctl api serve`), the real MariaDB and
 * Kafka, real receivers on 127.0.0.1 and a real worker process, with undici as the client: every
 * Twitter error code, a customer's round trip over HTTP only, token scopes, rate limits, bad input,
 * and a graceful SIGTERM.
 */
const SECRET = 'api-test-consumer-secret-of-32-characters'
const ADMIN = 'admin-token-0123456789abcdef'
const SCOPED = 'scoped-token-0123456789abcdef'
const LIMITED = 'limited-token-0123456789abcdef'
const SCOPED_HOOK = 'api-scoped-hook'

const servers: ApiProcess[] = []
const {stack, workers, receiver} = replayTestFile(SECRET, {
  beforeCleanup: async () => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL')
    await Promise.all(servers.map((server) => server.exited))
  },
})
let api: ApiProcess
let s: Scenario

/** `replayctl api serve` as a child process on a free port. */
class ApiProcess {
  readonly child: ChildProcess
  stderr = ''
  url = ''
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [BIN, 'api', 'serve', '--port', '0', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REPLAYCTL_BROKERS: BROKERS,
        REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
        REPLAYCTL_MYSQL_URL: stack.mysqlUrl,
        REPLAYCTL_API_TOKENS: JSON.stringify([
          {token: ADMIN, webhooks: '*', rateLimit: 100_000},
          {token: SCOPED, webhooks: [SCOPED_HOOK]},
          {token: LIMITED, webhooks: '*', rateLimit: 3},
        ]),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child.stdout!.resume()
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk))
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({code, signal})))
    servers.push(this)
  }

  get lines(): {msg?: string; [key: string]: unknown}[] {
    return this.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
  }

  async ready(): Promise<this> {
    const line = await waitFor(
      'the API server to listen',
      () => {
        if (this.child.exitCode !== null) throw new Error(`api serve exited ${this.child.exitCode}: ${this.stderr}`)
        return this.lines.find((entry) => /^Server listening at /.test(entry.msg ?? ''))
      },
      30_000,
    )
    this.url = nth(/(http:\/\/127\.0\.0\.1:\d+)/.exec(line.msg!)!, 1)
    return this
  }

  get port(): number {
    return Number(new URL(this.url).port)
  }
}

async function call(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH',
  path: string,
  options: {token?: string | null; body?: unknown; raw?: string; contentType?: string; server?: ApiProcess} = {},
) {
  const token = options.token === undefined ? ADMIN : options.token
  const headers: Record<string, string> = {}
  if (token !== null) headers.authorization = `Bearer ${token}`
  let body: string | undefined
  if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] = 'application/json'
  }
  if (options.raw !== undefined) {
    body = options.raw
    headers['content-type'] = options.contentType ?? 'application/json'
  }
  const response = await request(`${(options.server ?? api).url}${path}`, {method, headers, body})
  const text = await response.body.text()
  let json: any
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  return {status: response.statusCode, headers: response.headers, json, text}
}

const minute = (ms: number) => new Date(ms).toISOString().replace(/[-T:]/g, '').slice(0, 12)
const replayPath = (webhookId: string, from?: number | string, to?: number | string) => {
  const query = [
    from === undefined ? '' : `from_date=${typeof from === 'number' ? minute(from) : from}`,
    to === undefined ? '' : `to_date=${typeof to === 'number' ? minute(to) : to}`,
  ]
    .filter(Boolean)
    .join('&')
  return `/1.1/account_activity/replay/webhooks/${webhookId}/subscriptions/all.json${query ? `?${query}` : ''}`
}
const registerPath = (url: string, id?: string) =>
  `/1.1/account_activity/all/prod/webhooks.json?url=${encodeURIComponent(url)}${id ? `&webhook_id=${id}` : ''}`
const webhookPath = (id: string) => `/1.1/account_activity/all/prod/webhooks/${id}.json`
const jobPath = (id: string | number) => `/1.1/account_activity/replay/jobs/${id}.json`

function assertTwitterError(
  response: {status: number; json: any; text: string},
  status: number,
  code: number,
  what: string,
): void {
  assert.equal(response.status, status, `${what}: ${response.text}`)
  assert.equal(response.json?.errors?.length, 1, `${what}: ${response.text}`)
  assert.equal(response.json.errors[0].code, code, `${what}: ${response.text}`)
  assert.equal(typeof response.json.errors[0].message, 'string')
}

/**
 * An answer that withheld its detail names its request (x-request-id, and request_id in the body),
 * and the server's log line for that request holds the detail.
 */
async function assertWithheld(server: ApiProcess, response: Awaited<ReturnType<typeof call>>, detail: RegExp) {
  const id = String(response.headers['x-request-id'])
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a random request id')
  assert.equal(response.json.errors[0].request_id, id, response.text)
  // The log line is written before the answer, but reaches this process on another pipe.
  const line = await waitFor(
    `the log line of request ${id}`,
    () => server.lines.find((entry) => entry.reqId === id && entry.msg === 'answered without the detail'),
    10_000,
    50,
  )
  assert.match(String(line.detail), detail)
  return line
}

async function register(id: string, url: string, token = ADMIN) {
  return call('POST', registerPath(url, id), {token, body: {secret: SECRET}})
}

before(async () => {
  s = await scenario(stack, {partitions: 2, unique: 120, duplicates: 10, outside: 10, neighbours: 30, elsewhere: 30})
  api = await new ApiProcess(['--topic', s.topic], {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1'}).ready()
})

describe('replay API over HTTP', () => {
  test(
    "a customer's round trip: register a webhook (CRC), submit a replay, poll the job to COMPLETED; the receiver " +
      'got every event and the completion event',
    async () => {
      await withWorkers(workers, async () => {
        const hook = await receiver()
        const registered = await register(s.webhookId, hook.url)
        assert.equal(registered.status, 200, registered.text)
        assert.deepEqual(Object.keys(registered.json).sort(), ['created_timestamp', 'id', 'url', 'valid'])
        assert.equal(registered.json.id, s.webhookId)
        assert.equal(registered.json.url, hook.url)
        assert.equal(registered.json.valid, true)
        assert.match(registered.json.created_timestamp, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000$/)
        assert.ok(hook.crcChecks >= 1, 'the URL was CRC-checked before it was saved')

        const listed = await call('GET', '/1.1/account_activity/all/webhooks.json')
        assert.equal(listed.status, 200)
        assert.ok(listed.json.some((webhook: {id: string}) => webhook.id === s.webhookId))

        const submitted = await call('POST', replayPath(s.webhookId, s.fromMs, s.toMs))
        assert.equal(submitted.status, 202, submitted.text)
        assert.deepEqual(Object.keys(submitted.json).sort(), ['created_at', 'job_id'])
        assert.match(submitted.json.job_id, /^\d+$/)
        assert.match(submitted.json.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
        const jobId = submitted.json.job_id as string

        assertTwitterError(
          await call('POST', replayPath(s.webhookId, s.fromMs, s.toMs)),
          409,
          355,
          'a second replay while one is in progress',
        )

        const worker = workers.start(['--once'])
        const final = await waitFor(
          'the job to be Complete over HTTP',
          async () => {
            const status = await call('GET', jobPath(jobId))
            assert.equal(status.status, 200, status.text)
            assert.notEqual(status.json.job_state, 'Incomplete', status.text)
            return status.json.job_state === 'Complete' ? status.json : undefined
          },
          90_000,
          200,
        )
        assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)

        // The customer's document, in Twitter's words; `replay status --json` keeps the operator's.
        const cli = await stack.ok(['replay', 'status', jobId])
        const seconds = (iso: string) => iso.replace(/\.\d+Z$/, 'Z')
        assert.deepEqual(final, {
          job_id: jobId,
          webhook_id: s.webhookId,
          from_date: minute(s.fromMs),
          to_date: minute(s.toMs),
          created_at: seconds(cli.createdAt),
          finished_at: seconds(cli.finishedAt),
          job_state: 'Complete',
          job_state_description: 'Replayed every event in the range',
          events_delivered: s.expected.length,
        })
        assert.equal(cli.delivered, s.expected.length)
        assert.equal(cli.state, 'COMPLETED')
        for (const field of [
          'owner',
          'attempt',
          'topic',
          'partition',
          'startOffset',
          'checkpointOffset',
          'sources',
          'lastError',
        ]) {
          assert.ok(field in cli, `the CLI keeps ${field}`)
        }
        const text = JSON.stringify(final)
        assert.ok(!/owner|lease|attempt|offset|partition|topic|error|heartbeat|run_?at/i.test(text), text)
        assert.ok(!text.includes(s.topic), 'the topic is not named')
        if (cli.owner) assert.ok(!text.includes(cli.owner), 'the worker host:pid is not named')

        assertCovers(eventBodies(hook.delivered), s.expected, 'replay over HTTP')
        const completion = hook.delivered.filter((body) => isCompletion(body)).map((body) => JSON.parse(String(body)))
        assert.equal(completion.length, 1)
        assert.deepEqual(completion[0].replay_job_status, {
          ...completion[0].replay_job_status,
          webhook_id: s.webhookId,
          job_state: 'Complete',
          job_id: jobId,
        })

        const jobs = await call('GET', `/1.1/account_activity/replay/webhooks/${s.webhookId}/jobs.json`)
        assert.equal(jobs.status, 200)
        assert.deepEqual(jobs.json, [final], 'the list holds the same documents')
      })
    },
  )

  test('every Twitter error code of the Replay API', async () => {
    const now = Math.floor(Date.now() / MINUTE) * MINUTE
    const hook = await receiver()
    const id = 'api-errors-hook'
    assert.equal((await register(id, hook.url)).status, 200)
    const before = await stack.snapshot()

    // 32: no token, an unknown one, another scheme.
    assertTwitterError(
      await call('POST', replayPath(id, now - 120 * MINUTE, now - 60 * MINUTE), {token: null}),
      401,
      32,
      'no token',
    )
    assertTwitterError(
      await call('POST', replayPath(id, now - 120 * MINUTE, now - 60 * MINUTE), {token: 'x'.repeat(28)}),
      401,
      32,
      'unknown token',
    )
    assertTwitterError(await call('GET', jobPath(1), {token: `${ADMIN}x`}), 401, 32, 'a token one character longer')
    const basic = await request(`${api.url}${jobPath(1)}`, {
      headers: {authorization: `Basic ${Buffer.from(`u:${ADMIN}`).toString('base64')}`},
    })
    assert.equal(basic.statusCode, 401)
    assert.equal(((await basic.body.json()) as any).errors[0].code, 32)

    // 357: a missing parameter.
    assertTwitterError(await call('POST', replayPath(id, now - 120 * MINUTE)), 400, 357, 'no to_date')
    assertTwitterError(await call('POST', replayPath(id, undefined, now - 60 * MINUTE)), 400, 357, 'no from_date')
    // 358: a malformed one (not 12 digits, not a calendar time).
    assertTwitterError(await call('POST', replayPath(id, '20261130090', now)), 400, 358, '11 digits')
    assertTwitterError(
      await call('POST', replayPath(id, '2026-11-30T09:00Z', now)),
      400,
      358,
      'ISO instead of yyyymmddhhmm',
    )
    assertTwitterError(await call('POST', replayPath(id, '202613300900', now - 60 * MINUTE)), 400, 358, 'month 13')
    // 356: from not before to; from older than the retention.
    assertTwitterError(
      await call('POST', replayPath(id, now - 60 * MINUTE, now - 60 * MINUTE)),
      400,
      356,
      'from == to (to is exclusive)',
    )
    assertTwitterError(
      await call('POST', replayPath(id, now - 60 * MINUTE, now - 120 * MINUTE)),
      400,
      356,
      'from after to',
    )
    assertTwitterError(
      await call('POST', replayPath(id, now - 6 * 24 * 60 * MINUTE, now - 60 * MINUTE)),
      400,
      356,
      'from six days ago',
    )
    // 368: to_date not in the past.
    assertTwitterError(
      await call('POST', replayPath(id, now - 60 * MINUTE, now + 60 * MINUTE)),
      400,
      368,
      'to in an hour',
    )
    // 34: unknown webhook, job, page.
    assertTwitterError(
      await call('POST', replayPath('no-such-hook', now - 120 * MINUTE, now - 60 * MINUTE)),
      404,
      34,
      'unknown webhook',
    )
    assertTwitterError(await call('GET', jobPath(987_654_321)), 404, 34, 'unknown job')
    assertTwitterError(
      await call('GET', '/1.1/account_activity/replay/webhooks/no-such-hook/jobs.json'),
      404,
      34,
      'jobs of an unknown webhook',
    )
    assertTwitterError(await call('DELETE', webhookPath('no-such-hook')), 404, 34, 'delete an unknown webhook')
    assertTwitterError(await call('GET', '/1.1/no/such/page.json'), 404, 34, 'unknown page')
    assert.equal(await stack.snapshot(), before, 'no refused request wrote anything')

    // 214: a webhook that failed its CRC check is invalid until re-validated.
    const flaky: ReceiverOptions = {secret: SECRET}
    const flakyHook = await receiver(flaky)
    assert.equal((await register('api-flaky-hook', flakyHook.url)).status, 200)
    flaky.crcSecret = 'not-the-secret'
    assertTwitterError(await call('PUT', webhookPath('api-flaky-hook')), 400, 214, 're-validation with a wrong answer')
    const invalid = (await call('GET', '/1.1/account_activity/all/prod/webhooks.json')).json.find(
      (w: {id: string}) => w.id === 'api-flaky-hook',
    )
    assert.equal(invalid.valid, false)
    assertTwitterError(
      await call('POST', replayPath('api-flaky-hook', now - 120 * MINUTE, now - 60 * MINUTE)),
      400,
      214,
      'replay of an invalid webhook',
    )
    delete flaky.crcSecret
    const revalidated = await call('PUT', webhookPath('api-flaky-hook'))
    assert.equal(revalidated.status, 204, revalidated.text)
    const accepted = await call('POST', replayPath('api-flaky-hook', now - 120 * MINUTE, now - 60 * MINUTE))
    assert.equal(accepted.status, 202, accepted.text)
    // 355: one job per webhook at a time.
    assertTwitterError(
      await call('POST', replayPath('api-flaky-hook', now - 100 * MINUTE, now - 90 * MINUTE)),
      409,
      355,
      'a second job',
    )
    assertTwitterError(
      await call('DELETE', webhookPath('api-flaky-hook')),
      409,
      355,
      'delete a webhook with a job in progress',
    )
    await stack.ok(['replay', 'cancel', accepted.json.job_id])
    const deleted = await call('DELETE', webhookPath('api-flaky-hook'))
    assert.equal(deleted.status, 204, deleted.text)
    assert.ok(
      !(await call('GET', '/1.1/account_activity/all/webhooks.json')).json.some(
        (w: {id: string}) => w.id === 'api-flaky-hook',
      ),
    )

    // 214 at registration: a failed CRC check saves nothing.
    const wrong = await receiver({crcSecret: 'another-secret'})
    const snapshot = await stack.snapshot()
    const refused = await register('api-wrong-secret', wrong.url)
    assertTwitterError(refused, 400, 214, 'registration with a wrong CRC answer')
    assert.match(refused.json.errors[0].message, /^CRC check failed: /)
    assert.equal(wrong.crcChecks, 1)
    await assertWithheld(api, refused, /response_token does not match/)
    const dead = await register('api-dead-hook', `http://127.0.0.1:${await closedPort()}/hook`)
    assertTwitterError(dead, 400, 214, 'registration of a URL nobody answers')
    assert.deepEqual(
      dead.json.errors[0].message,
      refused.json.errors[0].message,
      'a closed port answers as a wrong secret does: no port probe',
    )
    assert.deepEqual(
      Object.keys(dead.json.errors[0]).sort(),
      ['code', 'message', 'request_id'],
      'nothing beside the fixed message and the request id',
    )
    await assertWithheld(api, dead, /ECONNREFUSED/)
    assert.equal(await stack.snapshot(), snapshot, 'refused registrations wrote nothing')
    assertTwitterError(await register(id, hook.url), 409, 214, 'registering an id twice')
  })

  test('loopback, private and link-local targets are refused unless the server allows them', async () => {
    // This server reads a topic that does not exist: a replay it accepts cannot run (503/130).
    const strict = await new ApiProcess(['--topic', 'api_no_such_topic'], {}).ready()
    const hook = await receiver()
    const snapshot = await stack.snapshot()
    const internalName = `http://localhost:${hook.port}/webhook`
    for (const url of [
      hook.url,
      internalName,
      'http://10.1.2.3/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]:8080/hook',
      'http://198.18.0.1/hook',
      'http://[2001::1]/hook',
    ]) {
      const refused = await call('POST', registerPath(url, 'api-ssrf-hook'), {body: {secret: SECRET}, server: strict})
      assertTwitterError(refused, 400, 214, url)
      // The customer hears that the URL is refused, not what the name resolves to.
      assert.equal(
        refused.json.errors[0].message,
        'Webhook URL is not allowed or could not be reached: register a public http or https URL',
        url,
      )
      assert.ok(
        !/127\.0\.0\.1|::1|loopback|private|link-local|benchmarking|reserved|resolves/.test(refused.text),
        refused.text,
      )
      const logged = await assertWithheld(strict, refused, /resolves to|a reserved address/)
      // The operator reads where the name pointed.
      if (url === internalName)
        assert.match(String(logged.detail), /localhost:\d+\/webhook resolves to (127\.0\.0\.1|::1), a loopback address/)
    }
    assert.equal(hook.crcChecks, 0, 'no CRC request was sent to a refused target')
    const now = Math.floor(Date.now() / MINUTE) * MINUTE
    const missingTopic = await call('POST', replayPath(s.webhookId, now - 120 * MINUTE, now - 60 * MINUTE), {
      server: strict,
    })
    assertTwitterError(missingTopic, 503, 130, 'a replay from a missing topic')
    assert.ok(!missingTopic.text.includes('api_no_such_topic'), missingTopic.text)
    await assertWithheld(strict, missingTopic, /api_no_such_topic/)
    assert.equal(await stack.snapshot(), snapshot)
    strict.child.kill('SIGTERM')
    assert.equal((await strict.exited).code, 0)
  })

  test(
    'Kafka down: 503/130 without broker addresses; the request id leads the operator to the detail ' + 'in the log',
    async () => {
      const port = await closedPort()
      const down = await new ApiProcess(['--topic', s.topic, '--timeout', '2s'], {
        REPLAYCTL_BROKERS: `127.0.0.1:${port}`,
        REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1',
      }).ready()
      const hook = await receiver()
      const registered = await call('POST', registerPath(hook.url, 'api-kafka-down-hook'), {
        body: {secret: SECRET},
        server: down,
      })
      assert.equal(registered.status, 200, registered.text)
      const now = Math.floor(Date.now() / MINUTE) * MINUTE
      const answer = await call('POST', replayPath('api-kafka-down-hook', now - 120 * MINUTE, now - 60 * MINUTE), {
        server: down,
      })
      assertTwitterError(answer, 503, 130, 'a replay while Kafka is down')
      assert.deepEqual(answer.json.errors[0], {
        code: 130,
        message: 'Over capacity: the service is unavailable, try again later',
        request_id: answer.headers['x-request-id'],
      })
      const line = await assertWithheld(down, answer, new RegExp(`127\\.0\\.0\\.1:${port}`))
      assert.equal(line.code, 'KAFKA_UNAVAILABLE')
      assert.equal(line.level, 50, 'logged as an error')
      down.child.kill('SIGTERM')
      assert.equal((await down.exited).code, 0)
    },
  )

  test(
    'translateError: the core keeps its detailed messages for the CLI; the API answers DNS, CRC and backend ' +
      'failures with fixed ones',
    () => {
      const withheld: Array<[UserError, number, number, string]> = [
        [
          new UserError('WEBHOOK_UNREACHABLE', 'webhook host hooks.corp.internal does not resolve (ENOTFOUND)'),
          400,
          214,
          'Webhook URL is not allowed',
        ],
        [
          new UserError(
            'TARGET_NOT_ALLOWED',
            'webhook url http://db.internal:3306/ resolves to 10.0.0.7, a private address',
          ),
          400,
          214,
          'Webhook URL is not allowed',
        ],
        [
          new UserError(
            'WEBHOOK_CHECK_FAILED',
            'Could not reach the webhook URL during the CRC GET request (could not reach http://10.0.0.7:22/: ' +
              'ECONNREFUSED)',
          ),
          400,
          214,
          'CRC check failed',
        ],
        [
          new UserError(
            'WEBHOOK_INVALID',
            'webhook w is marked invalid (could not reach http://10.0.0.7:22/: ECONNREFUSED)',
          ),
          400,
          214,
          'Webhook is invalid',
        ],
        [new UserError('KAFKA_UNAVAILABLE', 'cannot reach Kafka at kafka1.internal:9092'), 503, 130, 'Over capacity'],
        [new UserError('DATABASE_UNAVAILABLE', 'cannot reach MySQL at db1.internal:3306'), 503, 130, 'Over capacity'],
        [new UserError('TOPIC_NOT_FOUND', 'topic delivery_log_dc2 does not exist'), 503, 130, 'Over capacity'],
        [
          new UserError(
            'SECRET_KEY_WRONG',
            'the webhook secrets are encrypted under key 0123abcd, not under the key in /etc/replayctl/secret.key',
          ),
          503,
          130,
          'Over capacity',
        ],
        [
          new UserError(
            'REPLAY_FROM_BEFORE_LOG',
            'from_date 2026-11-30T09:00:00Z is before what the log still holds: the oldest event still in ' +
              'delivery_log[3] is from ...',
          ),
          400,
          356,
          'from_date is before',
        ],
        [new UserError('STACK_FAILED', 'docker compose failed'), 500, 131, 'Internal error'],
      ]
      for (const [error, status, code, says] of withheld) {
        const answer = translateError(error, 'req-id-1')!
        assert.equal(answer.status, status, error.code)
        assert.equal(answer.logDetail, true, error.code)
        const [only] = (answer.body as {errors: {code: number; message: string; request_id: string}[]}).errors
        assert.equal(only!.code, code, error.code)
        assert.ok(only!.message.startsWith(says), `${error.code}: ${only!.message}`)
        assert.equal(only!.request_id, 'req-id-1')
        assert.ok(
          !/internal|10\.0\.0\.7|ECONNREFUSED|9092|3306|delivery_log|docker|secret\.key|0123abcd/.test(only!.message),
          only!.message,
        )
      }
      // Not found: no detail to withhold, and no request id, so every 404 body is the same.
      assert.deepEqual(translateError(new UserError('JOB_NOT_FOUND', 'no replay job 5'), 'a'), {
        status: 404,
        body: {errors: [{code: 34, message: 'Sorry, that page does not exist'}]},
      })
      assert.deepEqual(translateError(new UserError('WEBHOOK_NOT_FOUND', "no webhook 'x'"), 'b'), {
        status: 404,
        body: {errors: [{code: 34, message: 'Sorry, that page does not exist'}]},
      })
      // The customer's own input errors keep their message.
      assert.deepEqual(
        translateError(new UserError('REPLAY_TO_IN_FUTURE', 'to_date 2030-01-01T00:00:00Z is in the future'), 'c'),
        {status: 400, body: {errors: [{code: 368, message: 'to_date 2030-01-01T00:00:00Z is in the future'}]}},
      )
    },
  )

  test(
    "a token scoped to one webhook can neither see nor touch another's webhooks and jobs, nor tell them from " +
      'missing ones (404/34)',
    async () => {
      const now = Math.floor(Date.now() / MINUTE) * MINUTE
      const mine = await receiver()
      const registered = await register(SCOPED_HOOK, mine.url, SCOPED)
      assert.equal(registered.status, 200, registered.text)
      const own = await call('GET', `/1.1/account_activity/replay/webhooks/${SCOPED_HOOK}/jobs.json`, {token: SCOPED})
      assert.equal(own.status, 200, own.text)
      assert.deepEqual(own.json, [])

      const theirJob = (await call('GET', `/1.1/account_activity/replay/webhooks/${s.webhookId}/jobs.json`)).json[0]
        .job_id
      const snapshot = await stack.snapshot()
      // Each pair: another webhook's (which exists) and one that does not exist, answered alike.
      const pairs: Array<[string, () => ReturnType<typeof call>, () => ReturnType<typeof call>]> = [
        [
          "another webhook's job",
          () => call('GET', jobPath(theirJob), {token: SCOPED}),
          () => call('GET', jobPath(987_654_321), {token: SCOPED}),
        ],
        [
          "another webhook's job list",
          () => call('GET', `/1.1/account_activity/replay/webhooks/${s.webhookId}/jobs.json`, {token: SCOPED}),
          () => call('GET', '/1.1/account_activity/replay/webhooks/no-such-hook/jobs.json', {token: SCOPED}),
        ],
        [
          'a replay of another webhook',
          () => call('POST', replayPath(s.webhookId, now - 120 * MINUTE, now - 60 * MINUTE), {token: SCOPED}),
          () => call('POST', replayPath('no-such-hook', now - 120 * MINUTE, now - 60 * MINUTE), {token: SCOPED}),
        ],
        [
          'scope is checked before parameters',
          () => call('POST', replayPath(s.webhookId), {token: SCOPED}),
          () => call('POST', replayPath('no-such-hook'), {token: SCOPED}),
        ],
        [
          're-validate another webhook',
          () => call('PUT', webhookPath(s.webhookId), {token: SCOPED}),
          () => call('PUT', webhookPath('no-such-hook'), {token: SCOPED}),
        ],
        [
          'delete another webhook',
          () => call('DELETE', webhookPath(s.webhookId), {token: SCOPED}),
          () => call('DELETE', webhookPath('no-such-hook'), {token: SCOPED}),
        ],
      ]
      for (const [what, theirs, missing] of pairs) {
        const [a, b] = [await theirs(), await missing()]
        assertTwitterError(a, 404, 34, what)
        assert.equal(a.text, b.text, `${what}: the same body as for one that does not exist`)
        assert.deepEqual(Object.keys(a.headers).sort(), Object.keys(b.headers).sort(), `${what}: the same headers`)
      }
      // The admin token, which sees every webhook, gets the same 404 for the missing job.
      assert.equal(
        (await call('GET', jobPath(987_654_321))).text,
        (await call('GET', jobPath(theirJob), {token: SCOPED})).text,
      )
      // Registering an id outside the scope is refused whether or not it exists.
      assertTwitterError(await register('api-not-mine', mine.url, SCOPED), 403, 220, 'register another id')
      assertTwitterError(
        await register(s.webhookId, mine.url, SCOPED),
        403,
        220,
        'register an existing id of another token',
      )
      assertTwitterError(
        await call('POST', `/1.1/account_activity/all/prod/webhooks.json?url=${encodeURIComponent(mine.url)}`, {
          token: SCOPED,
          body: {secret: SECRET},
        }),
        403,
        220,
        'register with a generated id',
      )
      assert.equal(await stack.snapshot(), snapshot, 'refused requests wrote nothing')
      const visible = await call('GET', '/1.1/account_activity/all/webhooks.json', {token: SCOPED})
      assert.deepEqual(
        visible.json.map((w: {id: string}) => w.id),
        [SCOPED_HOOK],
      )

      const submitted = await call('POST', replayPath(SCOPED_HOOK, now - 120 * MINUTE, now - 60 * MINUTE), {
        token: SCOPED,
      })
      assert.equal(submitted.status, 202, submitted.text)
      const status = await call('GET', jobPath(submitted.json.job_id), {token: SCOPED})
      assert.equal(status.status, 200)
      assert.deepEqual(status.json, {
        job_id: submitted.json.job_id,
        webhook_id: SCOPED_HOOK,
        from_date: minute(now - 120 * MINUTE),
        to_date: minute(now - 60 * MINUTE),
        created_at: submitted.json.created_at,
        finished_at: null,
        job_state: 'Queued',
        job_state_description: 'Waiting for a worker',
        events_delivered: 0,
      })
      await stack.ok(['replay', 'cancel', submitted.json.job_id])
    },
  )

  test("rate limit per token: 429 with code 88, and Twitter's x-rate-limit headers on every answer", async () => {
    const seen: {status: number; limit: string; remaining: string; reset: number}[] = []
    for (const path of [jobPath(987_654_321), '/1.1/account_activity/all/webhooks.json', jobPath(1), jobPath(1)]) {
      const answer = await call('GET', path, {token: LIMITED})
      seen.push({
        status: answer.status,
        limit: String(answer.headers['x-rate-limit-limit']),
        remaining: String(answer.headers['x-rate-limit-remaining']),
        reset: Number(answer.headers['x-rate-limit-reset']),
      })
      if (answer.status === 429) assertTwitterError(answer, 429, 88, 'over the limit')
    }
    assert.deepEqual(
      seen.map((entry) => [entry.status === 429 ? 429 : 'served', entry.limit, entry.remaining]),
      [
        ['served', '3', '2'],
        ['served', '3', '1'],
        ['served', '3', '0'],
        [429, '3', '0'],
      ],
    )
    const nowSeconds = Date.now() / 1000
    for (const entry of seen) {
      assert.ok(
        entry.reset > nowSeconds && entry.reset <= nowSeconds + 15 * 60 + 1,
        `x-rate-limit-reset ${entry.reset} is epoch seconds within the 15-minute window`,
      )
    }
    assert.equal(new Set(seen.map((entry) => entry.reset)).size, 1, 'one window')
    // Other tokens have their own buckets.
    const other = await call('GET', '/1.1/account_activity/all/webhooks.json')
    assert.equal(other.status, 200)
    assert.ok(Number(other.headers['x-rate-limit-remaining']) > 1000)
  })

  test(
    'failed authentications from one address: 429/88 with x-rate-limit headers after --auth-failures, even for a ' +
      "right token (the window's end: test/http-auth.test.ts)",
    async () => {
      const server = await new ApiProcess(
        ['--topic', s.topic, '--auth-failures', '5', '--auth-failure-window', '10m'],
        {},
      ).ready()
      const statuses: number[] = []
      let blocked: Awaited<ReturnType<typeof call>> | undefined
      for (let attempt = 0; attempt < 300; attempt++) {
        const answer = await call('GET', jobPath(1), {token: `wrong-${attempt}-0123456789abcdef`, server})
        statuses.push(answer.status)
        if (answer.status === 429) blocked ??= answer
      }
      assert.deepEqual(statuses, [...Array.from({length: 5}, () => 401), ...Array.from({length: 295}, () => 429)])
      assertTwitterError(blocked!, 429, 88, 'a blocked address')
      assert.equal(blocked!.headers['x-rate-limit-limit'], '5')
      assert.equal(blocked!.headers['x-rate-limit-remaining'], '0')
      const reset = Number(blocked!.headers['x-rate-limit-reset'])
      assert.ok(
        reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 601,
        `x-rate-limit-reset ${reset} is epoch seconds within the window`,
      )
      // A right token from the blocked address waits too: otherwise a right guess would show.
      assertTwitterError(
        await call('GET', '/1.1/account_activity/all/webhooks.json', {server}),
        429,
        88,
        'the right token from a blocked address',
      )
      assert.equal((await call('GET', '/healthz', {token: null, server})).status, 200)
      // Other addresses are not blocked (the main server is another process: its own table).
      assert.equal((await call('GET', '/1.1/account_activity/all/webhooks.json')).status, 200)
      assert.ok(!server.stderr.includes('wrong-'), 'presented tokens are never logged')
      server.child.kill('SIGTERM')
      assert.equal((await server.exited).code, 0)
    },
  )

  test('bad input gets a clear 4xx or a closed connection, writes nothing, and the server keeps serving', async () => {
    const snapshot = await stack.snapshot()
    const big = await call('POST', registerPath('http://127.0.0.1:1/x', 'api-big'), {
      raw: JSON.stringify({secret: 'x'.repeat(100_000)}),
    })
    assertTwitterError(big, 413, 358, 'a 100 KB body')
    assertTwitterError(
      await call('POST', registerPath('http://127.0.0.1:1/x', 'api-bad-json'), {raw: '{"secret": '}),
      400,
      358,
      'broken JSON',
    )
    assertTwitterError(
      await call('POST', registerPath('http://127.0.0.1:1/x', 'api-xml'), {
        raw: '<secret/>',
        contentType: 'application/xml',
      }),
      415,
      358,
      'XML',
    )
    assertTwitterError(
      await call('POST', registerPath('http://127.0.0.1:1/x', 'api-extra'), {body: {secret: SECRET, admin: true}}),
      400,
      358,
      'unknown body field',
    )
    assertTwitterError(
      await call('POST', registerPath('http://127.0.0.1:1/x', 'api-array'), {body: [1, 2]}),
      400,
      358,
      'a JSON array',
    )
    assertTwitterError(await call('PATCH', jobPath(1)), 404, 34, 'unknown method')
    assertTwitterError(await call('GET', jobPath('1%20OR%201=1')), 400, 358, 'not a job id')
    assertTwitterError(await call('GET', jobPath('99999999999999999999')), 400, 358, 'a job id beyond 2^53')
    assertTwitterError(
      await call('GET', `/1.1/account_activity/replay/webhooks/${'w'.repeat(500)}/jobs.json`),
      414,
      358,
      'a 500-character path parameter',
    )
    assertTwitterError(
      await call('GET', '/1.1/account_activity/replay/webhooks/bad%20id/jobs.json'),
      400,
      358,
      'a webhook id with a space',
    )
    assertTwitterError(
      await call('POST', replayPath(s.webhookId, `${'1'.repeat(12)}&from_date=202611300900`, Date.now() - 3_600_000)),
      400,
      358,
      'from_date twice',
    )
    assertTwitterError(
      await call('GET', `/1.1/account_activity/replay/webhooks/${s.webhookId}/jobs.json?limit=5000`),
      400,
      358,
      'limit out of range',
    )

    // A 100 KB query string: node's header limit answers 431 and closes.
    const huge = await rawExchange(
      `GET ${jobPath(1)}?x=${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n\r\n`,
    )
    assert.match(huge.text, /^HTTP\/1\.1 431 /)
    assert.ok(huge.closed)
    // Not HTTP at all.
    const garbage = await rawExchange('\u0000\u0001 hello\r\n\r\n')
    assert.match(garbage.text, /^HTTP\/1\.1 400 /)
    assert.ok(garbage.closed)
    assert.equal(await stack.snapshot(), snapshot, 'nothing reached the database')

    const health = await call('GET', '/healthz', {token: null})
    assert.equal(health.status, 200)
    assert.deepEqual(health.json, {status: 'ok', database: 'ok'})
    const metrics = await call('GET', '/metrics', {token: null})
    assert.equal(metrics.status, 200)
    assert.match(
      metrics.text,
      new RegExp(
        String.raw`replayctl_api_http_requests_total\{route="\/1\.1\/account_activity\/replay\/jobs\/:job_id\.json",` +
          String.raw`method="GET",status="400"\} \d+`,
      ),
    )
    assert.match(metrics.text, /replayctl_api_http_request_duration_seconds_bucket/)
  })

  test('a slow-loris client is cut after --headers-timeout while other clients are served', async () => {
    const server = await new ApiProcess(['--topic', s.topic, '--headers-timeout', '1s'], {}).ready()
    const socket = connect(server.port, '127.0.0.1')
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const started = Date.now()
    let text = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    const drip = setInterval(() => socket.write('X-Slow: y\r\n'), 200)
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    const meanwhile = await call('GET', '/healthz', {token: null, server})
    assert.equal(meanwhile.status, 200)
    await Promise.race([
      closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the slow client was not cut within 10 s')), 10_000),
      ),
    ])
    clearInterval(drip)
    const tookMs = Date.now() - started
    assert.ok(tookMs >= 900 && tookMs < 10_000, `cut after ${tookMs} ms`)
    assert.ok(text === '' || /^HTTP\/1\.1 408 /.test(text), text)
    assert.equal((await call('GET', '/healthz', {token: null, server})).status, 200)
    server.child.kill('SIGTERM')
    assert.equal((await server.exited).code, 0)
  })

  test(
    'api serve refuses to start without tokens, with malformed tokens, or on a port in use: one ' + 'line, exit 2',
    async () => {
      const noTokens = await runCli(['api', 'serve', '--port', '0'], {env: {REPLAYCTL_MYSQL_URL: stack.mysqlUrl}})
      assert.equal(noTokens.code, 2, noTokens.stderr)
      assert.ok(isOneLineError(noTokens), noTokens.stderr)
      assert.match(noTokens.stderr, /no tokens/)
      const short = await runCli(['api', 'serve', '--port', '0'], {
        env: {REPLAYCTL_MYSQL_URL: stack.mysqlUrl, REPLAYCTL_API_TOKENS: '[{"token":"tiny-secret","webhooks":"*"}]'},
      })
      assert.equal(short.code, 2, short.stderr)
      assert.ok(isOneLineError(short) && !short.stderr.includes('tiny-secret'), short.stderr)
      const taken = await runCli(['api', 'serve', '--port', String(api.port)], {
        env: {
          REPLAYCTL_MYSQL_URL: stack.mysqlUrl,
          REPLAYCTL_API_TOKENS: JSON.stringify([{token: ADMIN, webhooks: '*'}]),
        },
      })
      assert.equal(taken.code, 2, taken.stderr)
      assert.match(taken.stderr, /replayctl: error: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/)
    },
  )

  test('SIGTERM lets in-flight requests finish, then the server exits 0', async () => {
    const server = await new ApiProcess(['--topic', s.topic], {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1'}).ready()
    // A receiver that takes 1.5 s to answer its CRC check: the registration is in flight meanwhile.
    let crcAsked!: () => void
    const asked = new Promise<void>((resolve) => (crcAsked = resolve))
    const slow: Server = createServer((req, res) => {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('crc_token') ?? ''
      crcAsked()
      setTimeout(
        () =>
          res
            .writeHead(200, {'content-type': 'application/json'})
            .end(JSON.stringify({response_token: crcResponseToken(SECRET, token)})),
        1500,
      )
    })
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()))
    try {
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/hook`
      const inFlight = call('POST', registerPath(url, 'api-sigterm-hook'), {body: {secret: SECRET}, server})
      await asked
      server.child.kill('SIGTERM')
      const answer = await inFlight
      assert.equal(answer.status, 200, answer.text)
      assert.equal(answer.headers.connection, 'close', 'the answer closes its keep-alive connection')
      assert.equal(answer.json.valid, true)
      const {code} = await server.exited
      assert.equal(code, 0, server.stderr.slice(-2000))
      // The lifecycle every HTTP front shares (server-common.ts); ingest.test.ts checks the same stages.
      const stages = [
        'signal received',
        'stopping: no new connections, finishing requests under way',
        'http server closed',
        'stopped',
      ]
      assert.deepEqual(
        server.lines.map((line) => line.msg).filter((msg) => msg !== undefined && stages.includes(msg)),
        stages,
      )
      assert.ok(!server.stderr.includes(ADMIN), 'tokens are never logged')
      assert.ok(
        !server.stderr.includes('webhook_id=') && !server.stderr.includes(SECRET),
        'query strings and bodies are never logged',
      )
      const [rows] = await stack.pool.query('SELECT state FROM webhooks WHERE id = ?', ['api-sigterm-hook'])
      assert.deepEqual(rows, [{state: 'valid'}])
    } finally {
      slow.closeAllConnections()
      slow.close()
    }
  })
})

/** Sends raw bytes; the answer so far and whether the server closed the connection (within 5 s). */
async function rawExchange(bytes: string): Promise<{text: string; closed: boolean}> {
  const socket = connect(api.port, '127.0.0.1')
  let text = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
  socket.on('error', () => {})
  const closed = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true))
    setTimeout(() => resolve(false), 5000)
  })
  socket.write(bytes)
  const result = await closed
  socket.destroy()
  return {text, closed: result}
}
