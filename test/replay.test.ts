import assert from 'node:assert/strict'
import type {ServerResponse} from 'node:http'
import {describe, test} from 'node:test'

import {eventKey} from '../src/core/replay/dedup.js'
import {messageIdFor} from '../src/core/replay/delivery/index.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {submitReplay} from '../src/core/replay/submit-replay.js'
import {addWebhook} from '../src/core/webhooks/store.js'
import {type CliResult, isOneLineError, nth, testSecretKey, testSettings, uniqueName} from './helpers.js'
import {
  assertCovers,
  assertCustomerFacing,
  buildEvents,
  ConnectionOwners,
  counts,
  eventBodies,
  expectation,
  isCompletion,
  pastRange,
  produceLines,
  readPartition,
  replayTestFile,
  scenario,
  type Scenario,
  settledCount,
  waitFor,
  withWorkers,
} from './replay-harness.js'
import {closedPort, delay} from './webhook-receiver.js'

/**
 * The replay engine end to end: the real broker, the real MariaDB, workers run as processes, and
 * real HTTP receivers on 127.0.0.1 that verify every signature. Every test asserts what the
 * receiver got, not only what the job row says.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-e2e-secret-0123456789ab').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)
/** The bad-input test's results for values of 10,000 characters. */
let longInputResults: {args: string[]; result: CliResult}[] = []

describe('replay end to end', () => {
  test('a full replay delivers exactly the unique in-range events, signed, then the completion event', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {
        partitions: 4,
        unique: 300,
        duplicates: 40,
        outside: 20,
        neighbours: 150,
        elsewhere: 150,
      })
      assert.equal(
        s.expected.length,
        302,
        'the scenario has 300 in-range events plus the one at `from` and the one at to - 1 ms',
      )
      assert.equal(s.duplicates, 40)
      const hook = await receiver()
      await stack.addWebhook(s.webhookId, hook.url, SECRET)

      // Window of 8: every event exactly once (as a set).
      const first = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const w1 = workers.start(['--once', '--max-in-flight', '8'])
      const exit1 = await w1.waitForExit(60_000)
      assert.equal(exit1.code, 0, w1.stderr)
      const job1 = await stack.job(first)
      assert.equal(job1.state, 'COMPLETED', job1.lastError ?? '')
      const firstRun = hook.requests.slice()
      const bodies1 = eventBodies(firstRun)
      assert.equal(bodies1.length, s.expected.length, 'one request per unique event: no duplicates, no retries')
      assert.deepEqual(
        [...counts(bodies1).values()].filter((n) => n > 1),
        [],
      )
      assertCovers(bodies1, s.expected, 'window of 8')
      assert.equal(job1.delivered, s.expected.length)
      assert.equal(job1.duplicates, s.duplicates)
      assert.equal(job1.matched, s.expected.length + s.duplicates)
      assert.equal(job1.failed, 0)
      assert.ok(job1.completionSent)
      assert.equal(job1.partition, s.partition)

      // Window of 1: exactly the log order.
      const second = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const w2 = workers.start(['--once', '--max-in-flight', '1'])
      assert.equal((await w2.waitForExit(60_000)).code, 0, w2.stderr)
      const job2 = await stack.job(second)
      assert.equal(job2.state, 'COMPLETED', job2.lastError ?? '')
      const secondRun = hook.requests.slice(firstRun.length)
      assert.deepEqual(
        eventBodies(secondRun),
        s.expected,
        'with --max-in-flight 1 the events arrive once each, in log order',
      )
      assert.ok(secondRun.every((r) => r.concurrent === 1))

      for (const [run, job] of [
        [firstRun, job1],
        [secondRun, job2],
      ] as const) {
        assert.ok(
          run.every((r) => r.signed),
          'every request carries valid Twitter and Standard Webhooks signatures',
        )
        assert.ok(
          run.every((r) => r.headers['x-replay-job-id'] === String(job.id)),
          'every request names its job',
        )
        // The completion event comes last, once.
        const completions = run.filter((r) => isCompletion(r.body))
        assert.equal(completions.length, 1)
        assert.equal(run.at(-1), completions[0])
        const status = JSON.parse(String(nth(completions, 0).body)).replay_job_status
        assert.deepEqual(Object.keys(status).sort(), ['job_id', 'job_state', 'job_state_description', 'webhook_id'])
        assert.equal(status.webhook_id, s.webhookId)
        assert.equal(status.job_id, String(job.id))
        assert.equal(status.job_state, 'Complete')
        // The scenario's topic is new, so a note on a partition-count change may follow (replay-engine.test.ts).
        assert.match(
          status.job_state_description,
          new RegExp(
            `^Replayed ${s.expected.length} events\\.( Some events may not have been replayed: the event log was ` +
              `reorganized during the range, at a time not recorded\\.)?$`,
          ),
        )
        assertCustomerFacing(status.job_state_description, [s.topic])
      }
      // webhook-id: derived from the event, so the same in both runs and distinct between events.
      const idsByBody = new Map<string, Set<string>>()
      for (const r of [...firstRun, ...secondRun]) {
        if (isCompletion(r.body)) continue
        const id = r.headers['webhook-id'] as string
        assert.equal(id, messageIdFor(eventKey(r.body)))
        idsByBody.set(String(r.body), (idsByBody.get(String(r.body)) ?? new Set()).add(id))
      }
      assert.ok([...idsByBody.values()].every((ids) => ids.size === 1))
      assert.equal(new Set([...idsByBody.values()].map((ids) => [...ids][0])).size, s.expected.length)
      // Each request's x-replay-source names the event's offset in the partition.
      for (const r of [...firstRun, ...secondRun].filter((r) => !isCompletion(r.body))) {
        assert.equal(r.headers['x-replay-source'], `${s.topic}/${s.partition}@${s.offsetOf.get(String(r.body))}`)
      }
      assert.ok(hook.maxConcurrent <= 8, `at most --max-in-flight requests at once (${hook.maxConcurrent})`)
      assert.equal(hook.crcChecks, 0)
    })
  })

  test(
    'a receiver slow to acknowledge the completion event still gets it, and the job records ' + 'it as sent',
    async () => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 3, unique: 20})
        // The completion event is answered after 1.5 s: longer than a heartbeat interval, shorter
        // than the delivery timeout.
        const hook = await receiver(async (request, res) => {
          if (isCompletion(request.body)) await delay(1500)
          res.writeHead(200).end('ok')
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const worker = workers.start([
          '--once',
          '--heartbeat-interval',
          '1s',
          '--stale-after',
          '3s',
          '--delivery-timeout',
          '3s',
        ])
        assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
        const job = await stack.job(id)
        assert.equal(job.state, 'COMPLETED')
        assert.equal(eventBodies(hook.delivered).length, s.expected.length)
        assertCovers(eventBodies(hook.delivered), s.expected, 'events')
        const completions = hook.requests.filter((r) => isCompletion(r.body))
        assert.equal(completions.length, 1, 'sent once, not retried')
        assert.equal(hook.delivered.filter((body) => isCompletion(body)).length, 1, 'its 200 reached the worker')
        assert.ok(job.completionSent, 'the job records the completion event as delivered')
      })
    },
  )

  test(
    'a receiver that answers 500 for a while, 429 with Retry-After, too slowly, or drops the connection: the job ' +
      'completes, nothing lost',
    async (t) => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 4, unique: 120, duplicates: 10, neighbours: 40})
        const attempts = new Map<string, number>()
        const failures = new Map<string, number>()
        const fail = (key: string) => failures.set(key, (failures.get(key) ?? 0) + 1)
        const hook = await receiver(async (request, res, req) => {
          if (isCompletion(request.body)) return void res.writeHead(200).end('ok')
          const key = request.headers['webhook-id'] as string
          const attempt = (attempts.get(key) ?? 0) + 1
          attempts.set(key, attempt)
          const {n, kind} = JSON.parse(String(request.body))
          const rule = kind === 'in' ? n % 20 : -1
          // A bad start: the first 20 requests of the job fail (any one event at most 3 times).
          if (request.n <= 20 && (failures.get(key) ?? 0) < 3) {
            fail(key)
            return void res.writeHead(500).end('warming up')
          }
          if (rule === 3 && attempt === 1) {
            fail(key)
            return void res.writeHead(429, {'retry-after': '1'}).end('slow down')
          }
          if (rule === 5 && attempt === 1) {
            // Answered after the 400 ms delivery timeout.
            fail(key)
            await delay(1000)
            return void res.writeHead(200).end('late')
          }
          if (rule === 7 && attempt <= 2) {
            fail(key)
            return void req.socket.destroy()
          }
          if (rule === 11 && attempt <= 2) {
            fail(key)
            return void res.writeHead(503).end('unavailable')
          }
          res.writeHead(200).end('ok')
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const worker = workers.start([
          '--once',
          '--max-in-flight',
          '8',
          '--delivery-timeout',
          '400ms',
          '--delivery-attempts',
          '8',
          '--retry-base',
          '20ms',
        ])
        assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
        const job = await stack.job(id)
        assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
        assert.equal(job.failed, 0)
        assert.equal(job.delivered, s.expected.length)
        assert.equal(job.duplicates, s.duplicates)
        assertCovers(eventBodies(hook.delivered), s.expected, 'through failures')
        assertCovers(eventBodies(hook.requests), s.expected, 'through failures (all requests)')
        assert.ok(hook.requests.every((r) => r.signed))
        assert.ok(job.completionSent)
        assert.ok([...failures.values()].reduce((a, b) => a + b, 0) >= 40, 'the receiver did misbehave')

        const byKey = new Map<string, typeof hook.requests>()
        for (const r of hook.requests)
          if (!isCompletion(r.body))
            byKey.set(r.headers['webhook-id'] as string, [...(byKey.get(r.headers['webhook-id'] as string) ?? []), r])
        const ruleOf = (r: {body: Buffer}) => {
          const {n, kind} = JSON.parse(String(r.body))
          return kind === 'in' ? n % 20 : -1
        }
        const checked = {retryAfter: 0, slow: 0, dropped: 0}
        for (const list of byKey.values()) {
          // One webhook-id per event across its retries; the body is the same.
          assert.equal(new Set(list.map((r) => String(r.body))).size, 1)
          assert.ok(list.length <= 8)
          const rule = ruleOf(nth(list, 0))
          const first = list.findIndex((r) => r.n > 20)
          if (first < 0 || first + 1 >= list.length) continue
          if (rule === 3) {
            // Retry-After: 1 was honoured.
            assert.ok(
              nth(list, first + 1).arrivedAt - nth(list, first).arrivedAt >= 950,
              `retried ${nth(list, first + 1).arrivedAt - nth(list, first).arrivedAt} ms after a 429 with ` +
                `Retry-After: 1`,
            )
            checked.retryAfter++
          }
          if (rule === 5) {
            // Given up on after the delivery timeout, then sent again.
            assert.ok(nth(list, first + 1).arrivedAt - nth(list, first).arrivedAt >= 380)
            checked.slow++
          }
          if (rule === 7) checked.dropped++
        }
        t.diagnostic(
          `${hook.requests.length} requests for ${s.expected.length} events; checked ${JSON.stringify(checked)}`,
        )
        assert.ok(checked.retryAfter >= 3 && checked.slow >= 3 && checked.dropped >= 3, JSON.stringify(checked))
      })
    },
  )

  test('3 workers x 30 jobs: every job COMPLETED, each run by one worker, never two at once', async (t) => {
    await withWorkers(workers, async () => {
      const partitions = 6
      const topic = await stack.createTopic(partitions)
      const range = pastRange()
      const ids = Array.from({length: 30}, (_, i) => `${uniqueName('m').replace(/_/g, '-')}-${i}`)
      // All webhooks' events in one log, in time order.
      const lines = ids
        .flatMap((id, i) =>
          buildEvents(id, partitions, range.fromMs, range.toMs, {unique: 25, duplicates: 3, outside: 2}, i + 1),
        )
        .map((line, order) => ({line, ts: JSON.parse(line).ts as number, order}))
        .sort((a, b) => a.ts - b.ts || a.order - b.order)
        .map((entry) => entry.line)
      await produceLines(stack, topic, lines)
      const expected = new Map<string, Scenario>()
      const logs = await Promise.all(
        Array.from({length: partitions}, (_, partition) => readPartition(topic, partition)),
      )
      for (const id of ids) {
        const partition = partitionFor(id, partitions)
        expected.set(
          id,
          await expectation(topic, partitions, id, partition, range.fromMs, range.toMs, undefined, logs[partition]),
        )
      }

      const paths = new Map<number, string>()
      const owner = new Map<number, number | null>()
      let owners: ConnectionOwners | undefined
      const hook = await receiver(async (request, res, req) => {
        paths.set(request.n, req.url ?? '')
        owner.set(request.n, owners!.ownerOf(req.socket))
        await delay(10)
        res.writeHead(200).end('ok')
      })
      owners = new ConnectionOwners(hook, () => workers.pids)
      const settings = testSettings({mysqlUrl: stack.mysqlUrl})
      const jobOf = new Map<string, number>()
      for (const id of ids) {
        await addWebhook(
          stack.pool,
          {id, url: `http://127.0.0.1:${hook.port}/hooks/${id}`, secret: SECRET},
          testSecretKey(),
        )
        jobOf.set(
          id,
          (
            await submitReplay(settings, {
              webhookId: id,
              fromMs: range.fromMs,
              toMs: range.toMs,
              topic,
              retentionMs: 5 * 86_400_000,
            })
          ).id,
        )
      }

      const started = [1, 2, 3].map(() =>
        workers.start([
          '--once',
          '--concurrency',
          '4',
          '--max-in-flight',
          '1',
          '--heartbeat-interval',
          '1s',
          '--stale-after',
          '10s',
        ]),
      )
      for (const worker of started) assert.equal((await worker.waitForExit(120_000)).code, 0, worker.stderr)

      // Claim intervals from the workers' own logs: one per job, never overlapping another's.
      const intervals: {job: number; worker: string; from: number; to: number}[] = []
      for (const worker of started) {
        for (const claim of worker.logged('job claimed')) {
          const end = worker.logged('job ended', claim.job)
          assert.equal(end.length, 1, `${worker.name} ended job ${claim.job} once`)
          assert.equal(nth(end, 0).outcome, 'COMPLETED')
          assert.equal(claim.worker, worker.owner)
          intervals.push({
            job: claim.job!,
            worker: worker.owner,
            from: Date.parse(claim.time),
            to: Date.parse(nth(end, 0).time),
          })
        }
      }
      const jobIds = [...jobOf.values()]
      assert.deepEqual(
        intervals.map((i) => i.job).sort((a, b) => a - b),
        [...jobIds].sort((a, b) => a - b),
        'each job claimed exactly once',
      )
      for (const jobId of jobIds) {
        const runs = intervals.filter((i) => i.job === jobId).sort((a, b) => a.from - b.from)
        for (let k = 1; k < runs.length; k++) {
          if (nth(runs, k).worker !== nth(runs, k - 1).worker)
            assert.ok(nth(runs, k - 1).to <= nth(runs, k).from, `job ${jobId} ran in two workers at once`)
        }
      }
      const jobsPerWorker = started.map((worker) => intervals.filter((i) => i.worker === worker.owner).length)
      t.diagnostic(`jobs per worker: ${jobsPerWorker.join(', ')}`)
      assert.ok(new Set(intervals.map((i) => i.worker)).size >= 2, 'the jobs were shared among the workers')

      assert.equal(owners.unresolved, 0)
      for (const id of ids) {
        const jobId = jobOf.get(id)!
        const job = await stack.job(jobId)
        assert.equal(job.state, 'COMPLETED', `${id}: ${job.lastError}`)
        assert.equal(job.attempt, 1, 'no takeover while heartbeats are healthy')
        const scenarioOf = expected.get(id)!
        assert.equal(job.delivered, scenarioOf.expected.length)
        assert.equal(job.duplicates, scenarioOf.duplicates)
        // What the webhook got: its events, once each, in log order, then its completion event;
        // every request from the one worker process that claimed the job.
        const mine = hook.requests.filter((r) => paths.get(r.n) === `/hooks/${id}`)
        assert.deepEqual(eventBodies(mine), scenarioOf.expected, `${id} got its events once each, in order`)
        assert.ok(isCompletion(mine.at(-1)!.body))
        assert.ok(mine.every((r) => r.headers['x-replay-job-id'] === String(jobId) && r.signed))
        const claimer = intervals.find((i) => i.job === jobId)!.worker
        assert.deepEqual(
          [...new Set(mine.map((r) => workers.byPid(owner.get(r.n) ?? undefined)?.owner))],
          [claimer],
          `job ${jobId}'s requests all came from ${claimer}`,
        )
      }
      assert.equal(
        hook.requests.length,
        ids.reduce((sum, id) => sum + expected.get(id)!.expected.length + 1, 0),
      )
    })
  })

  test(
    'a receiver down for good: FAILED at the first undelivered event; retry on a live receiver ' + 'completes it',
    async () => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 4, unique: 120, duplicates: 20, neighbours: 60})
        let events = 0
        const hook = await receiver((request, res) => {
          if (!isCompletion(request.body) && ++events === 50) {
            // The 50th answer is the last: then the port closes.
            res.on('finish', () => void hook.close())
          }
          res.writeHead(200).end('ok')
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const flags = [
          '--once',
          '--max-in-flight',
          '1',
          '--delivery-attempts',
          '3',
          '--retry-base',
          '20ms',
          '--delivery-timeout',
          '1s',
        ]
        const first = workers.start(flags)
        assert.equal((await first.waitForExit(60_000)).code, 0, first.stderr)
        assert.deepEqual(
          first.logged('job ended', id).map((line) => line.outcome),
          ['FAILED'],
        )

        const failed = await stack.job(id)
        assert.equal(
          nth(first.logged('job ended', id), 0).reason,
          failed.lastError,
          'the log line says why the job failed',
        )
        const firstUndelivered = s.offsetOf.get(nth(s.expected, 50))!
        assert.equal(failed.state, 'FAILED')
        assert.equal(failed.checkpointOffset, firstUndelivered, 'the checkpoint is the first undelivered event')
        assert.match(
          failed.lastError ?? '',
          new RegExp(
            `could not deliver offset ${firstUndelivered} after 3 attempt\\(s\\): connection failed: ECONNREFUSED`,
          ),
        )
        assert.equal(failed.delivered, 50)
        assert.equal(failed.failed, 1)
        assert.equal(failed.completionSent, false)
        assert.deepEqual(eventBodies(hook.requests), s.expected.slice(0, 50))
        const status = await stack.ok(['replay', 'status', String(id)])
        assert.equal(status.state, 'FAILED')
        assert.equal(status.lastError, failed.lastError)
        assert.equal(status.terminal, true)

        // The endpoint is back on the same port.
        await new Promise<void>((resolve) => hook.server.listen(hook.port, '127.0.0.1', () => resolve()))
        const retried = await stack.ok(['replay', 'retry', String(id)])
        assert.equal(retried.state, 'OPEN')
        assert.equal(retried.checkpointOffset, firstUndelivered)
        const second = workers.start(flags)
        assert.equal((await second.waitForExit(60_000)).code, 0, second.stderr)
        const done = await stack.job(id)
        assert.equal(done.state, 'COMPLETED', done.lastError ?? '')
        assert.equal(done.delivered, s.expected.length)
        assert.equal(done.duplicates, s.duplicates)
        assert.ok(done.completionSent)
        // The retry sent exactly the rest, in order (duplicates of events delivered before the failure
        // still dropped), then the completion event; together: every event exactly once.
        const afterRetry = hook.requests.slice(50)
        assert.deepEqual(eventBodies(afterRetry), s.expected.slice(50))
        assert.equal(JSON.parse(String(afterRetry.at(-1)!.body)).replay_job_status.job_state, 'Complete')
        assert.deepEqual(eventBodies(hook.requests), s.expected)
      })
    },
  )

  test('410 Gone: the job FAILED, the webhook marked invalid, and new replays for it refused', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 4, unique: 30})
      const hook = await receiver((_request, res) => void res.writeHead(410).end('gone'))
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const worker = workers.start(['--once', '--max-in-flight', '1'])
      assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
      const job = await stack.job(id)
      assert.equal(job.state, 'FAILED')
      assert.match(job.lastError ?? '', /410 gone/)
      assert.equal(job.checkpointOffset, s.offsetOf.get(nth(s.expected, 0)))
      assert.equal(hook.requests.length, 1, 'a 410 is not retried, and no completion event follows it')
      const listed = (await stack.ok(['webhook', 'list'])).find((webhook: {id: string}) => webhook.id === s.webhookId)
      assert.equal(listed.state, 'invalid')
      assert.match(listed.invalidReason, new RegExp(`410 Gone during replay job ${id}`))

      const before = await stack.snapshot()
      const refused = await stack.cli([
        'replay',
        'submit',
        '--webhook-id',
        s.webhookId,
        '--from',
        '3h',
        '--to',
        '1h',
        '--topic',
        s.topic,
      ])
      assert.equal(refused.code, 4, refused.stderr)
      assert.ok(isOneLineError(refused), refused.stderr)
      assert.match(refused.stderr, new RegExp(`webhook ${s.webhookId} is marked invalid`))
      const asJson = await stack.cli([
        'replay',
        'submit',
        '--webhook-id',
        s.webhookId,
        '--from',
        '3h',
        '--to',
        '1h',
        '--topic',
        s.topic,
        '--json',
      ])
      assert.equal(asJson.code, 4)
      assert.equal(asJson.json.error.code, 'WEBHOOK_INVALID')
      assert.equal(await stack.snapshot(), before, 'nothing written')
    })
  })

  test(
    'replay submit: each invalid request refused with its own message and exit code, nothing written; ' +
      '--wait; status',
    async () => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 3, unique: 40, duplicates: 4})
        const hook = await receiver()
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const submit = (...args: string[]) => stack.cli(['replay', 'submit', '--topic', s.topic, ...args])
        const refuse = async (result: CliResult, code: number, message: RegExp) => {
          assert.equal(result.code, code, result.stderr)
          assert.ok(isOneLineError(result), result.stderr)
          assert.match(result.stderr, message)
          assert.equal(result.stdout, '')
        }
        const before = await stack.snapshot()
        const unknown = uniqueName('nobody').replace(/_/g, '-')
        await refuse(
          await submit('--webhook-id', unknown, '--from', '3h', '--to', '1h'),
          3,
          new RegExp(`no webhook '${unknown}'`),
        )
        await refuse(
          await submit('--webhook-id', s.webhookId, '--from', '1h', '--to', '3h'),
          2,
          /from_date must be before to_date/,
        )
        await refuse(
          await submit('--webhook-id', s.webhookId, '--from', '2h', '--to', '2h'),
          2,
          /from_date must be before to_date/,
        )
        await refuse(
          await submit('--webhook-id', s.webhookId, '--from', '6d', '--to', '1h'),
          2,
          /from_date must be within the past 5 days/,
        )
        await refuse(
          await submit('--webhook-id', s.webhookId, '--from', '1h', '--to', '+1h'),
          2,
          /to_date .* is in the future/,
        )
        await refuse(
          await submit('--webhook-id', s.webhookId, '--from', 'yesterday', '--to', '1h'),
          2,
          /invalid --from 'yesterday'/,
        )
        await refuse(
          await stack.cli([
            'replay',
            'submit',
            '--webhook-id',
            s.webhookId,
            '--from',
            '3h',
            '--to',
            '1h',
            '--topic',
            uniqueName('gone'),
          ]),
          3,
          /topic '.*' does not exist/,
        )
        assert.equal(await stack.snapshot(), before, 'nothing written by refused submits')

        const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const active = await stack.snapshot()
        await refuse(
          await submit('--webhook-id', s.webhookId, '--from', '3h', '--to', '1h'),
          4,
          /A replay job is already in progress for this webhook/,
        )
        const conflict = await submit('--webhook-id', s.webhookId, '--from', '3h', '--to', '1h', '--json')
        assert.equal(conflict.json.error.code, 'JOB_IN_PROGRESS')
        assert.match(conflict.json.error.fix, new RegExp(`job ${id} \\(OPEN\\)`))
        assert.equal(await stack.snapshot(), active, 'nothing written by the refused second submit')

        // --wait follows the job to its end: 0 when COMPLETED ...
        const worker = workers.start([])
        await stack.waitForState(id, ['COMPLETED'])
        const waited = await stack.cli(
          [
            'replay',
            'submit',
            '--webhook-id',
            s.webhookId,
            '--from',
            new Date(s.fromMs).toISOString(),
            '--to',
            new Date(s.toMs).toISOString(),
            '--topic',
            s.topic,
            '--wait',
            '--json',
          ],
          {timeoutMs: 60_000},
        )
        assert.equal(waited.code, 0, waited.stderr)
        assert.equal(waited.json.state, 'COMPLETED')
        assert.equal(waited.json.delivered, s.expected.length)
        assert.equal(waited.json.duplicates, s.duplicates)
        // ... and 6 when it ends FAILED.
        // (its own topic: events appended with older timestamps than a partition already holds would
        // lie outside the offsets found by time)
        const broken = await scenario(stack, {partitions: 3, unique: 5})
        const rejecting = await receiver((_request, res) => void res.writeHead(400).end('bad request'))
        await stack.addWebhook(broken.webhookId, rejecting.url, SECRET)
        const failed = await stack.cli(
          [
            'replay',
            'submit',
            '--webhook-id',
            broken.webhookId,
            '--from',
            new Date(broken.fromMs).toISOString(),
            '--to',
            new Date(broken.toMs).toISOString(),
            '--topic',
            broken.topic,
            '--wait',
          ],
          {timeoutMs: 60_000},
        )
        assert.equal(failed.code, 6, failed.stderr)
        // (progress notes on stderr, then the one error line)
        assert.match(
          failed.stderr.trim().split('\n').at(-1)!,
          new RegExp(
            String.raw`^replayctl: error: replay job \d+ ended FAILED: ` +
              String.raw`could not deliver offset \d+ after 1 attempt\(s\): ` +
              String.raw`webhook answered 400: bad request`,
          ),
        )
        await worker.stop()

        // replay status of a finished job, as JSON.
        const status = await stack.ok(['replay', 'status', String(waited.json.id)])
        for (const field of [
          'id',
          'webhookId',
          'state',
          'attempt',
          'owner',
          'partition',
          'startOffset',
          'checkpointOffset',
          'endOffset',
          'delivered',
          'duplicates',
          'progressPercent',
          'heartbeatAgeSeconds',
          'eventsPerSecond',
          'etaSeconds',
          'terminal',
          'lastError',
        ]) {
          assert.ok(field in status, `status has ${field}`)
        }
        assert.equal(status.state, 'COMPLETED')
        assert.equal(status.progressPercent, 100)
        assert.equal(status.terminal, true)
        assert.equal(status.etaSeconds, null)
        assert.ok(status.eventsPerSecond > 0)
        assert.ok(typeof status.heartbeatAgeSeconds === 'number' && status.heartbeatAgeSeconds >= 0)
        assert.equal(status.checkpointOffset, status.endOffset)
        assert.equal(status.partition, s.partition)
        assert.equal(status.owner, worker.owner)
        const missing = await stack.cli(['replay', 'status', '999999'])
        assert.equal(missing.code, 3)
        assert.ok(isOneLineError(missing))
        assert.match(missing.stderr, /no replay job 999999/)
      })
    },
  )

  test('bad input to every replay and webhook command: one line, non-zero exit, nothing written', async () => {
    await withWorkers(workers, async () => {
      // A registered webhook and a topic, so that submit's other checks are reached.
      const good = await scenario(stack, {partitions: 3, unique: 3})
      await stack.addWebhook(good.webhookId, (await receiver()).url, SECRET)
      // Webhooks whose URL is link-local (the cloud metadata service), in forms that hide it.
      const metadata = [
        'http://169.254.169.254/latest/meta-data/',
        'http://[::ffff:169.254.169.254]/',
        'http://2852039166/',
        'http://0xa9fea9fe/',
      ]
      const hidden = metadata.map((_, i) => `${uniqueName('meta').replace(/_/g, '-')}-${i}`)
      for (const [i, url] of metadata.entries()) await stack.addWebhook(nth(hidden, i), url, SECRET)
      const before = await stack.snapshot()

      const long = 'x'.repeat(10_000)
      const badIds = ['abc', '-1', '1; DROP TABLE replay_jobs', long, '0', '1.5', '99999999999999999999']
      const badWebhookIds = ['1; DROP TABLE replay_jobs', long, 'a b', '../etc', '']
      const badUrls = [
        'ftp://x',
        'not a url',
        `https://example.com/${long}`,
        'javascript:alert(1)',
        'http://exa mple.com/',
        'http://user:pw@example.com/',
        '',
      ]
      const submit = ['replay', 'submit', '--webhook-id', good.webhookId, '--topic', good.topic]
      const cases: {args: string[]; code: number; env?: Record<string, string>}[] = [
        ...badIds.flatMap((id) => [
          {args: ['replay', 'status', id], code: 2},
          {args: ['replay', 'cancel', id], code: 2},
          {args: ['replay', 'retry', id], code: 2},
        ]),
        ...badWebhookIds.flatMap((id) => [
          {args: ['replay', 'submit', '--webhook-id', id, '--from', '3h', '--to', '1h'], code: 2},
          {args: ['replay', 'list', '--webhook-id', id], code: 2},
          {args: ['webhook', 'add', id, '--url', 'https://example.com/hook'], code: 2},
          {args: ['webhook', 'check', id], code: 2},
          {args: ['webhook', 'remove', id], code: 2},
        ]),
        ...badUrls.map((url) => ({
          args: ['webhook', 'add', uniqueName('ok').replace(/_/g, '-'), '--url', url],
          code: 2,
        })),
        {
          args: [
            'webhook',
            'add',
            uniqueName('ok').replace(/_/g, '-'),
            '--url',
            'https://example.com/',
            '--secret',
            long,
          ],
          code: 2,
        },
        {args: ['replay', 'list', '--state', 'RUNNING; DROP TABLE webhooks'], code: 2},
        {args: ['replay', 'list', '--state', long], code: 2},
        {args: ['replay', 'list', '--limit', 'abc'], code: 2},
        {args: ['replay', 'list', '--limit', '0'], code: 2},
        {args: ['replay', 'list', '--limit', '100000'], code: 2},
        {args: [...submit, '--from', long, '--to', '1h'], code: 2},
        {args: [...submit, '--from', '3h', '--to', '9'.repeat(10_000)], code: 2},
        {args: [...submit, '--from', '3h', '--to', '1h', '--retention', '5'.repeat(10_000)], code: 2},
        {args: [...submit, '--from', '3h', '--to', '1h', '--topic', 't'.repeat(10_000)], code: 2},
        {args: [...submit, '--from', '3h', '--to', '1h', '--topic', 'bad topic!'], code: 2},
        {args: [...submit, '--from', '3h', '--to', '1h', '--max-attempts', '0'], code: 2},
        {args: [...submit, '--from', '3h', '--to', '1h', '--max-attempts', '1; DROP TABLE replay_jobs'], code: 2},
        {args: ['replay', 'status', '1', '--interval', '0'], code: 2},
        {args: ['replay', 'worker', '--concurrency', '0'], code: 2},
        {args: ['replay', 'worker', '--concurrency', 'abc'], code: 2},
        {args: ['replay', 'worker', '--poll-interval', 'soon'], code: 2},
        {args: ['replay', 'worker', '--poll-interval', '1'.repeat(10_000)], code: 2},
        {args: ['replay', 'worker', '--stale-after', long], code: 2},
        {args: ['replay', 'worker', '--heartbeat-interval', '5s', '--stale-after', '6s'], code: 2},
        {args: ['replay', 'worker', '--max-in-flight', '-3'], code: 2},
        {args: ['replay', 'worker', '--partitioner', long], code: 2},
        {args: ['replay', 'worker', '--delivery-timeout', '1; DROP TABLE replay_jobs'], code: 2},
        // The link-local targets, without --allow-private-targets (and without the environment's permission).
        ...hidden.map((id) => ({args: ['webhook', 'check', id], code: 2, env: {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '0'}})),
      ]
      // A few at a time: each is a process.
      const results: {args: string[]; code: number; env?: Record<string, string>; result: CliResult}[] = []
      for (let i = 0; i < cases.length; i += 6) {
        results.push(
          ...(await Promise.all(
            cases.slice(i, i + 6).map(async (c) => ({...c, result: await stack.cli(c.args, {env: c.env})})),
          )),
        )
      }
      const wrong: string[] = []
      for (const {args, code, result} of results) {
        const shown = args.map((arg) => (arg.length > 40 ? `${arg.slice(0, 20)}...(${arg.length})` : arg)).join(' ')
        if (result.code !== code)
          wrong.push(`${shown}: exit ${result.code}, not ${code}: ${result.stderr.slice(0, 300)}`)
        else if (!isOneLineError(result)) wrong.push(`${shown}: not one line: ${result.stderr.slice(0, 300)}`)
        else if (result.stdout !== '') wrong.push(`${shown}: wrote to stdout`)
      }
      assert.deepEqual(wrong, [], 'every bad input is refused with one line on stderr and a usage exit code')
      longInputResults = results.filter((r) => r.args.some((arg) => arg.length >= 10_000))
      for (const {result} of results.filter((r) => r.args[0] === 'webhook' && r.args[1] === 'check' && r.env)) {
        assert.match(result.stderr, /resolves to (169\.254\.169\.254|::ffff:a9fe:a9fe), a link-local address/)
      }
      assert.equal(await stack.snapshot(), before, 'nothing written')
      const [tables] = await stack.pool.query(
        'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ' +
          "('replay_jobs', 'webhooks')",
        [stack.database],
      )
      assert.equal(nth(tables as {n: number}[], 0).n, 2)

      // A worker refuses the link-local target too: the job fails without a request being made.
      const s = await scenario(stack, {partitions: 3, unique: 5})
      await stack.addWebhook(s.webhookId, 'http://169.254.169.254/latest/meta-data/', SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const worker = workers.start(['--once'], {REPLAYCTL_ALLOW_PRIVATE_TARGETS: '0'})
      assert.equal((await worker.waitForExit(60_000)).code, 0, worker.stderr)
      const job = await stack.job(id)
      assert.equal(job.state, 'FAILED')
      assert.match(job.lastError ?? '', /169\.254\.169\.254.*link-local address/)
      assert.equal(job.delivered, 0)
    })
  })

  test('error lines for 10,000-character values stay short', () => {
    assert.ok(longInputResults.length > 0, 'the bad-input test ran the 10,000-character cases')
    const long = longInputResults.filter((r) => r.result.stderr.length > 600)
    assert.deepEqual(
      long.map(
        (r) =>
          `${r.args.map((arg) => (arg.length > 40 ? `<${arg.length} characters>` : arg)).join(' ')}: ` +
          `${r.result.stderr.length} characters`,
      ),
      [],
    )
  })

  test('replay worker --once exits 0 when nothing is runnable; --metrics-port serves Prometheus counters', async () => {
    await withWorkers(workers, async () => {
      // An empty queue of its own.
      const empty = `${uniqueName('rp')}`
      try {
        const started = Date.now()
        const idle = workers.start(['--once'], {REPLAYCTL_MYSQL_URL: `mysql://root@127.0.0.1:3306/${empty}`})
        const {code} = await idle.waitForExit(30_000)
        assert.equal(code, 0, idle.stderr)
        assert.ok(Date.now() - started < 15_000)
        assert.deepEqual(idle.logged('job claimed'), [])
        assert.ok(idle.logged('worker started').length === 1 && idle.logged('worker stopped').length === 1)
      } finally {
        await stack.pool.query(`DROP DATABASE IF EXISTS \`${empty}\``)
      }

      const s = await scenario(stack, {partitions: 3, unique: 50, duplicates: 5, neighbours: 10})
      const hook = await receiver()
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const port = await closedPort()
      const worker = workers.start(['--metrics-port', String(port)])
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      await worker.waitForLog('job ended', id)
      const response = await fetch(`http://127.0.0.1:${port}/metrics`)
      assert.equal(response.status, 200)
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
      const text = await response.text()
      const value = (name: string) => {
        const line = text.split('\n').find((l) => l.startsWith(`${name} `))
        assert.ok(line, `${name} in\n${text.slice(0, 400)}`)
        return Number(line.split(' ')[1])
      }
      assert.match(text, /# TYPE replayctl_jobs_total counter/)
      assert.equal(value('replayctl_jobs_total{outcome="COMPLETED"}'), 1)
      assert.equal(value('replayctl_events_total{kind="delivered"}'), s.expected.length)
      assert.equal(value('replayctl_events_total{kind="duplicates"}'), s.duplicates)
      assert.equal(value('replayctl_events_total{kind="matched"}'), s.expected.length + s.duplicates)
      assert.equal(value('replayctl_jobs_active'), 0)
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404)
      assert.deepEqual(eventBodies(hook.delivered).sort(), [...s.expected].sort())
      await worker.stop()
    })
  })

  test('cancel stops a running job promptly; retry continues it from its checkpoint to COMPLETED', async (t) => {
    await withWorkers(workers, async () => {
      const maxInFlight = 2
      const s = await scenario(stack, {partitions: 3, unique: 1500, duplicates: 20, neighbours: 100})
      const hook = await receiver(async (_request: unknown, res: ServerResponse) => {
        await delay(6)
        res.writeHead(200).end('ok')
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const id = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const worker = workers.start([
        '--max-in-flight',
        String(maxInFlight),
        '--heartbeat-interval',
        '1s',
        '--stale-after',
        '3s',
        '--checkpoint-interval',
        '200ms',
      ])
      await waitFor('300 deliveries', () => hook.requests.length >= 300, 60_000, 5)

      const running = await stack.ok(['replay', 'status', String(id)])
      assert.equal(running.state, 'ONGOING')
      assert.equal(running.terminal, false)
      assert.equal(running.owner, worker.owner)
      assert.ok(running.progressPercent > 0 && running.progressPercent < 100, `progress ${running.progressPercent}`)
      assert.ok(
        running.heartbeatAgeSeconds >= 0 && running.heartbeatAgeSeconds < 3,
        `heartbeat age ${running.heartbeatAgeSeconds}`,
      )
      assert.ok(running.eventsPerSecond > 0)
      assert.ok(typeof running.etaSeconds === 'number' && running.etaSeconds >= 0)

      const cancel = await stack.ok(['replay', 'cancel', String(id)])
      const cancelledAt = performance.now()
      assert.equal(cancel.outcome, 'requested')
      const cancelled = await stack.waitForState(id, ['CANCELLED', 'COMPLETED', 'FAILED'], 10_000)
      assert.equal(cancelled.state, 'CANCELLED')
      const stoppedAt = await settledCount(hook, 500)
      assert.ok(stoppedAt < s.expected.length - 200, 'stopped well before the end')
      // Promptly: the worker sees the request at its next heartbeat (1 s) and cuts what is in flight.
      const last = hook.requests.at(-1)!.arrivedAt
      assert.ok(last - cancelledAt < 1000 + 500, `last request ${Math.round(last - cancelledAt)} ms after the cancel`)
      assert.equal(cancelled.lastError, 'cancelled by an operator')
      assert.ok(
        cancelled.checkpointOffset! > s.offsetOf.get(nth(s.expected, 0))! &&
          cancelled.checkpointOffset! < cancelled.endOffset!,
      )
      // The cancel cut every send, the final event's too: the worker hands it to the completion
      // sweeper, which sends one Incomplete event (its next sweep, within 5 s).
      const completions = () =>
        hook.requests.filter((r) => isCompletion(r.body)).map((r) => JSON.parse(String(r.body)).replay_job_status)
      await waitFor('the Incomplete event of the cancelled job', () => completions().length > 0, 30_000, 100)
      assert.deepEqual(
        completions().map((status) => [status.job_id, status.job_state, status.job_state_description]),
        [[String(id), 'Incomplete', 'Cancelled by an operator.']],
      )
      assertCustomerFacing(completions()[0].job_state_description, [s.topic, cancelled.lastError])
      // The sweeper marks it sent once the answer is back, after the receiver saw the request.
      await waitFor('the completion event marked sent', async () => (await stack.job(id)).completionSent, 10_000, 50)
      assert.ok(worker.running, 'the worker carries on')
      assert.deepEqual(
        worker.logged('job ended', id).map((line) => line.outcome),
        ['CANCELLED'],
      )
      const again = await stack.cli(['replay', 'cancel', String(id)])
      assert.equal(again.code, 4)
      assert.match(again.stderr, /already CANCELLED/)

      const retried = await stack.ok(['replay', 'retry', String(id)])
      assert.equal(retried.state, 'OPEN')
      assert.equal(retried.checkpointOffset, cancelled.checkpointOffset)
      await waitFor('the retried job to end', () => worker.logged('job ended', id).length === 2, 60_000, 100)
      const done = await stack.job(id)
      await worker.stop()
      assert.equal(done.state, 'COMPLETED', done.lastError ?? '')
      assert.equal(done.delivered, s.expected.length)
      assertCovers(eventBodies(hook.delivered), s.expected, 'after cancel and retry')
      // The cancel saved the exact checkpoint (every event below it delivered), so the retry re-sent
      // at most the requests cut in flight and those delivered past the window's head: each at
      // most --max-in-flight.
      const resent = eventBodies(hook.requests).length - s.expected.length
      t.diagnostic(
        `cancelled after ${stoppedAt} requests, the last ${Math.round(last - cancelledAt)} ms after the cancel; ` +
          `re-sent ${resent} after retry`,
      )
      assert.ok(resent <= 2 * maxInFlight, `re-sent ${resent}`)
      assert.deepEqual(
        completions().map((status) => status.job_state),
        ['Incomplete', 'Complete'],
        'one final event per run: Incomplete for the cancelled one, Complete for the retry',
      )
      assert.equal(JSON.parse(String(hook.requests.at(-1)!.body)).replay_job_status.job_state, 'Complete')
    })
  })
})
