import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {databaseBackoff} from '../src/core/replay/worker.js'
import {nth, uniqueName} from './helpers.js'
import {
  assertCustomerFacing,
  eventBodies,
  isCompletion,
  pastRange,
  produceLines,
  replayTestFile,
  waitFor,
  withWorkers,
} from './replay-harness.js'
import {closedPort} from './webhook-receiver.js'

/**
 * The worker loop around the jobs: database errors (back off, log, give up under --once), job runs
 * that end in a bug, and the completion event sweeper, against the real MariaDB and workers run as
 * processes.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-gaps-secret-0123456789').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)

describe('worker: database errors', () => {
  test('backoff doubles from the poll interval and is capped at 30 s', () => {
    const top = (failures: number) => databaseBackoff(failures, 500, () => 1)
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(top), [500, 1000, 2000, 4000, 8000, 16_000, 30_000])
    assert.equal(top(60), 30_000)
    for (let failures = 1; failures < 12; failures++) {
      const low = databaseBackoff(failures, 500, () => 0)
      assert.ok(
        low >= top(failures) * 0.75 && low <= top(failures),
        `jitter keeps ${low} within 75..100% of ${top(failures)}`,
      )
    }
  })

  test('--once against a MySQL refusing connections: each failure logged (under --json too), then exit 5', async () => {
    await withWorkers(workers, async () => {
      const port = await closedPort()
      const down = {REPLAYCTL_MYSQL_URL: `mysql://root@127.0.0.1:${port}/replayctl_down`}
      for (const json of [true, false]) {
        const started = Date.now()
        const worker = workers.start(['--once', '--poll-interval', '200ms', ...(json ? ['--json'] : [])], down)
        const {code} = await worker.waitForExit(60_000)
        assert.equal(code, 5, worker.stderr)
        assert.ok(Date.now() - started < 45_000, `gave up in ${Date.now() - started} ms`)
        const failures = worker.lines.filter((line) => line.msg.startsWith('database unavailable'))
        assert.deepEqual(
          failures.map((line) => line.consecutive),
          [1, 2, 3, 4, 5],
        )
        for (const line of failures)
          assert.match(
            String(line.error),
            new RegExp(`cannot reach MySQL at 127\\.0\\.0\\.1:${port} \\(connection refused\\)`),
          )
        // Backing off: each wait within 75..100% of 200 ms doubled per failure; the last gives up.
        for (const [i, line] of failures.slice(0, 4).entries()) {
          const ceiling = 200 * 2 ** i
          assert.ok(
            Number(line.retryInMs) >= ceiling * 0.75 && Number(line.retryInMs) <= ceiling,
            `retry ${i + 1}: ${line.retryInMs} ms`,
          )
          assert.equal(line.level, 'warn')
        }
        assert.equal(nth(failures, 4).level, 'error')
        assert.equal(nth(failures, 4).msg, 'database unavailable, giving up')
        assert.equal(nth(failures, 4).retryInMs, undefined)
        if (json) {
          const result = JSON.parse(worker.stdout)
          assert.equal(result.error.code, 'DATABASE_UNAVAILABLE')
          assert.equal(result.error.exitCode, 5)
          assert.match(result.error.message, /^gave up after 5 database errors in a row: cannot reach MySQL/)
          // Under --json only warnings and errors reach the log.
          assert.deepEqual(
            worker.lines.filter((line) => line.level === 'info'),
            [],
          )
        } else {
          assert.equal(worker.stdout, '')
          assert.match(
            worker.stderr,
            new RegExp(
              '\\nreplayctl: error: gave up after 5 database errors in a row: ' +
                'cannot reach MySQL at 127\\.0\\.0\\.1:\\d+ \\(connection refused\\): check --mysql-url',
            ),
          )
          assert.equal(worker.logged('worker started').length, 1)
        }
      }
    })
  })

  test('a long-running worker keeps retrying past that bound, and stops cleanly on SIGTERM', async () => {
    await withWorkers(workers, async () => {
      const port = await closedPort()
      const worker = workers.start(['--poll-interval', '100ms', '--json'], {
        REPLAYCTL_MYSQL_URL: `mysql://root@127.0.0.1:${port}/replayctl_down`,
      })
      await waitFor('a 7th database error in a row', () => worker.lines.find((line) => line.consecutive === 7), 60_000)
      assert.ok(worker.running, 'still running after more errors than --once allows')
      assert.ok(worker.lines.every((line) => line.retryInMs === undefined || Number(line.retryInMs) <= 30_000))
      await worker.stop()
    })
  })
})

describe('worker: completion event sweeper', () => {
  test('jobs ended without their worker get their Incomplete event once, with two workers sweeping', async () => {
    await withWorkers(workers, async () => {
      const hook = await receiver()
      const topic = await stack.createTopic(3)
      const {fromMs, toMs} = pastRange()
      const webhook = async () => {
        const id = uniqueName('wh').replace(/_/g, '-')
        await stack.addWebhook(id, hook.url, SECRET)
        return id
      }
      // Cancelled while OPEN: no worker ever ran it.
      const cancelledHook = await webhook()
      const cancelled = await stack.submit(cancelledHook, fromMs, toMs, topic)
      assert.equal((await stack.ok(['replay', 'cancel', String(cancelled)])).outcome, 'cancelled')
      // Its worker died holding it on its last attempt: a claim finds it stale and settles it FAILED.
      const abandonedHook = await webhook()
      const abandoned = await stack.submit(abandonedHook, fromMs, toMs, topic, ['--max-attempts', '1'])
      await stack.pool.query(
        "UPDATE replay_jobs SET state = 'ONGOING', lease_token = REPEAT('a', 32), owner = 'gone:1', attempt = 1, " +
          'heartbeat_at = NOW(3) - INTERVAL 1 HOUR, started_at = NOW(3) - INTERVAL 1 HOUR WHERE id = ?',
        [abandoned],
      )
      // Ended FAILED by its own worker (its lease kept), whose event did not get through: that worker
      // tried already; the sweeper leaves it alone.
      const ownHook = await webhook()
      const own = await stack.submit(ownHook, fromMs, toMs, topic)
      await stack.pool.query(
        "UPDATE replay_jobs SET state = 'FAILED', lease_token = REPEAT('b', 32), owner = 'w:2', attempt = 1, " +
          "last_error = 'receiver down', started_at = NOW(3), finished_at = NOW(3) WHERE id = ?",
        [own],
      )

      const pair = [workers.start(), workers.start()]
      const completions = () =>
        hook.requests
          .filter((request) => isCompletion(request.body))
          .map((request) => JSON.parse(String(request.body)).replay_job_status)
      await waitFor('both owed completion events', () => completions().length >= 2, 60_000)
      // Two more sweep intervals of both workers: nothing is sent again.
      await new Promise((resolve) => setTimeout(resolve, 11_000))
      const sent = completions().sort((a, b) => Number(a.job_id) - Number(b.job_id))
      assert.deepEqual(
        sent.map((status) => [status.job_id, status.webhook_id, status.job_state]),
        [
          [String(cancelled), cancelledHook, 'Incomplete'],
          [String(abandoned), abandonedHook, 'Incomplete'],
        ],
      )
      assert.equal(sent[0].job_state_description, 'Cancelled by an operator.')
      assert.equal(sent[1].job_state_description, 'The replay could not be completed.')
      assert.ok(
        hook.requests.every((request) => request.signed),
        'signed like every delivery',
      )

      assert.equal((await stack.job(cancelled)).completionSent, true)
      const failed = await stack.job(abandoned)
      assert.equal(failed.state, 'FAILED')
      assert.equal(failed.completionSent, true)
      assert.match(
        failed.lastError ?? '',
        /^gave up after 1 of 1 attempts: the last worker stopped/,
        'the operator keeps the reason',
      )
      for (const status of sent) assertCustomerFacing(status.job_state_description, [topic, failed.lastError])
      assert.equal((await stack.job(own)).completionSent, false)
      // One sweep line per job across both workers, naming it delivered.
      const swept = pair.flatMap((worker) => worker.logged('completion event swept'))
      assert.deepEqual(
        swept.map((line) => [line.job, line.outcome]).sort(),
        [
          [cancelled, 'delivered'],
          [abandoned, 'delivered'],
        ].sort(),
      )
      for (const worker of pair) await worker.stop()
    })
  })

  test('--once sweeps before it exits; a receiver refusing the event is tried again, 3 times at most', async () => {
    await withWorkers(workers, async () => {
      const refusing = await receiver((_request, res) => res.writeHead(400).end('no'))
      const topic = await stack.createTopic(3)
      const {fromMs, toMs} = pastRange()
      const id = uniqueName('wh').replace(/_/g, '-')
      await stack.addWebhook(id, refusing.url, SECRET)
      const job = await stack.submit(id, fromMs, toMs, topic)
      await stack.ok(['replay', 'cancel', String(job)])
      for (let run = 1; run <= 4; run++) {
        const once = workers.start(['--once'])
        assert.equal((await once.waitForExit(60_000)).code, 0, once.stderr)
        assert.deepEqual(
          once.logged('completion event swept').map((line) => [line.job, line.outcome]),
          run <= 3 ? [[job, 'failed']] : [],
        )
        // The claim holds the job for a while: let it lapse before the next run.
        await stack.pool.query('UPDATE replay_jobs SET completion_claimed_until = NULL WHERE id = ?', [job])
      }
      assert.equal(
        refusing.requests.filter((request) => isCompletion(request.body)).length,
        3,
        'a 400 is final for one send; three sends in all',
      )
      assert.equal((await stack.job(job)).completionSent, false)
    })
  })
})

describe('worker: a job run that ends in a bug', () => {
  test('logged with its stack, counted; its job resumes, other jobs go on; --once exits 1', async () => {
    await withWorkers(workers, async () => {
      const topic = await stack.createTopic(1, 'bug')
      const {fromMs, toMs} = pastRange()
      const hook = await receiver()
      const webhooks = [uniqueName('wh').replace(/_/g, '-'), uniqueName('wh').replace(/_/g, '-')]
      const lines = webhooks.flatMap((webhookId) =>
        Array.from({length: 5}, (_, i) => JSON.stringify({webhook_id: webhookId, ts: fromMs + (i + 1) * 60_000, i})),
      )
      await produceLines(stack, topic, lines)
      for (const webhookId of webhooks) await stack.addWebhook(webhookId, hook.url, SECRET)
      const [buggyHook, healthyHook] = webhooks as [string, string]
      const buggy = await stack.submit(buggyHook, fromMs, toMs, topic, ['--max-attempts', '5'])

      // A schema replayctl does not expect: the job's row refuses to end, and to go back to the queue
      // unless as the record of a bug, so its run can neither complete nor record that failure.
      // Nothing in replayctl knows this error.
      const trigger = uniqueName('refuse_end')
      await stack.pool.query(
        `CREATE TRIGGER ${trigger} BEFORE UPDATE ON replay_jobs FOR EACH ROW
         IF NEW.id = ${buggy} AND (NEW.state IN ('COMPLETED', 'FAILED', 'CANCELLED') OR (NEW.state = 'OPEN'
            AND COALESCE(NEW.last_error, '') NOT LIKE 'stopped by a bug in replayctl%')) THEN
           SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this row refuses to end';
         END IF`,
      )
      const leftForLater = async () => {
        const job = await stack.job(buggy)
        assert.equal(job.state, 'OPEN', 'back in the queue')
        assert.match(
          job.lastError ?? '',
          /^stopped by a bug in replayctl \(.*this row refuses to end.*\); it resumes from its checkpoint$/,
        )
        const [rows] = await stack.pool.query('SELECT run_at > NOW(3) AS later FROM replay_jobs WHERE id = ?', [buggy])
        assert.equal((rows as {later: number}[])[0]?.later, 1, 'not run again at once')
        // As an operator would after fixing the cause: runnable now.
        await stack.pool.query('UPDATE replay_jobs SET run_at = NOW(3) WHERE id = ?', [buggy])
      }

      // --once: the bug is logged with its stack and the run exits 1 (BUG), under --json too.
      const once = workers.start(['--once', '--json'])
      assert.equal((await once.waitForExit(60_000)).code, 1, once.stderr)
      const [logged] = once.logged('job run ended in a bug in replayctl; please report it', buggy)
      assert.ok(logged, once.stderr)
      assert.equal(logged.level, 'error')
      assert.equal(logged.outcome, 'BUG')
      assert.equal(logged.leftIn, 'OPEN')
      assert.match(String(logged.error), /this row refuses to end/)
      assert.match(String(logged.stack), /this row refuses to end[^]*\n\s+at /, 'the stack, not only the message')
      const result = JSON.parse(once.stdout)
      assert.equal(result.error.code, 'BUG')
      assert.equal(result.error.exitCode, 1)
      assert.match(result.error.message, /^1 job run ended in a bug in replayctl .*this row refuses to end/)
      await leftForLater()

      // Long-running: the bug is counted in the metrics and the worker goes on with other jobs.
      const healthy = await stack.submit(healthyHook, fromMs, toMs, topic)
      const metricsPort = await closedPort()
      const serving = workers.start(['--poll-interval', '200ms', '--metrics-port', String(metricsPort)])
      await serving.waitForLog('job run ended in a bug in replayctl; please report it', buggy, 60_000)
      assert.equal((await stack.waitForState(healthy, ['COMPLETED'])).state, 'COMPLETED')
      // The row says COMPLETED before the run is over (its completion event is still being sent).
      const metrics = await waitFor('the healthy job counted', async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
        return /^replayctl_jobs_total\{outcome="COMPLETED"\} 1$/m.test(text) ? text : undefined
      })
      assert.match(metrics, /^replayctl_job_run_bugs_total 1$/m)
      assert.match(metrics, /^replayctl_jobs_total\{outcome="BUG"\} 1$/m)
      assert.match(metrics, /^replayctl_jobs_total\{outcome="COMPLETED"\} 1$/m)
      assert.ok(serving.running, 'still serving')
      await serving.stop()
      await leftForLater()

      // The cause fixed, the job resumes and ends COMPLETED: no event of it was lost.
      await stack.pool.query(`DROP TRIGGER ${trigger}`)
      const resumed = workers.start(['--once'])
      assert.equal((await resumed.waitForExit(60_000)).code, 0, resumed.stderr)
      assert.equal((await stack.job(buggy)).state, 'COMPLETED')
      const delivered = new Set(eventBodies(hook.delivered))
      for (const line of lines) assert.ok(delivered.has(line), `delivered: ${line}`)
    })
  })
})
