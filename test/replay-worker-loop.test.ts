import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {databaseBackoff} from '../src/core/replay/worker.js'
import {uniqueName} from './helpers.js'
import {assertCustomerFacing, isCompletion, pastRange, replayTestFile, waitFor, withWorkers} from './replay-harness.js'
import {closedPort} from './webhook-receiver.js'

/**
 * The worker loop around the jobs: database errors (back off, log, give up under --once) and the
 * completion event sweeper, against the real MariaDB and workers run as processes.
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

  test('--once against a MySQL that refuses connections: every failure logged (also under --json), then exit 5', async () => {
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
        assert.equal(failures[4]!.level, 'error')
        assert.equal(failures[4]!.msg, 'database unavailable, giving up')
        assert.equal(failures[4]!.retryInMs, undefined)
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
            /\nreplayctl: error: gave up after 5 database errors in a row: cannot reach MySQL at 127\.0\.0\.1:\d+ \(connection refused\): check --mysql-url/,
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
  test('jobs ended without their worker get their Incomplete event exactly once, with two workers sweeping', async () => {
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
        "UPDATE replay_jobs SET state = 'ONGOING', lease_token = REPEAT('a', 32), owner = 'gone:1', attempt = 1, heartbeat_at = NOW(3) - INTERVAL 1 HOUR, started_at = NOW(3) - INTERVAL 1 HOUR WHERE id = ?",
        [abandoned],
      )
      // Ended FAILED by its own worker (its lease kept), whose event did not get through: that worker
      // tried already; the sweeper leaves it alone.
      const ownHook = await webhook()
      const own = await stack.submit(ownHook, fromMs, toMs, topic)
      await stack.pool.query(
        "UPDATE replay_jobs SET state = 'FAILED', lease_token = REPEAT('b', 32), owner = 'w:2', attempt = 1, last_error = 'receiver down', started_at = NOW(3), finished_at = NOW(3) WHERE id = ?",
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

  test('replay worker --once sweeps before it exits; a receiver that refuses the event is tried again, at most 3 times', async () => {
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
