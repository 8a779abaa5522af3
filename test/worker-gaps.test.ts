import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {databaseBackoff} from '../src/core/replay/worker.js'
import {deleteTopics} from './helpers.js'
import {Stack, waitFor, Workers, withWorkers} from './replay-harness.js'
import {closedPort, type Receiver, startReceiver} from './webhook-receiver.js'

/**
 * The worker loop around the jobs: database errors (back off, log, give up under --once) and the
 * completion event sweeper, against the real MariaDB and workers run as processes.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-gaps-secret-0123456789').toString('base64')
const stack = new Stack()
const workers = new Workers(stack)
const receivers: Receiver[] = []

async function receiver(handler?: Parameters<typeof startReceiver>[0]['handler']): Promise<Receiver> {
  const started = await startReceiver({secret: SECRET, handler})
  receivers.push(started)
  return started
}

before(() => stack.open())
after(async () => {
  await workers.killAll()
  await Promise.all(receivers.map((r) => r.close().catch(() => {})))
  await deleteTopics(stack.topics).catch(() => {})
  await stack.close()
})

describe('worker: database errors', () => {
  test('backoff doubles from the poll interval and is capped at 30 s', () => {
    const top = (failures: number) => databaseBackoff(failures, 500, () => 1)
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(top), [500, 1000, 2000, 4000, 8000, 16_000, 30_000])
    assert.equal(top(60), 30_000)
    for (let failures = 1; failures < 12; failures++) {
      const low = databaseBackoff(failures, 500, () => 0)
      assert.ok(low >= top(failures) * 0.75 && low <= top(failures), `jitter keeps ${low} within 75..100% of ${top(failures)}`)
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
        assert.deepEqual(failures.map((line) => line.consecutive), [1, 2, 3, 4, 5])
        for (const line of failures) assert.match(String(line.error), new RegExp(`cannot reach MySQL at 127\\.0\\.0\\.1:${port} \\(connection refused\\)`))
        // Backing off: each wait within 75..100% of 200 ms doubled per failure; the last gives up.
        for (const [i, line] of failures.slice(0, 4).entries()) {
          const ceiling = 200 * 2 ** i
          assert.ok(Number(line.retryInMs) >= ceiling * 0.75 && Number(line.retryInMs) <= ceiling, `retry ${i + 1}: ${line.retryInMs} ms`)
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
          assert.deepEqual(worker.lines.filter((line) => line.level === 'info'), [])
        } else {
          assert.equal(worker.stdout, '')
          assert.match(worker.stderr, /\nreplayctl: error: gave up after 5 database errors in a row: cannot reach MySQL at 127\.0\.0\.1:\d+ \(connection refused\): check --mysql-url/)
          assert.equal(worker.logged('worker started').length, 1)
        }
      }
    })
  })

  test('a long-running worker keeps retrying past that bound, and stops cleanly on SIGTERM', async () => {
    await withWorkers(workers, async () => {
      const port = await closedPort()
      const worker = workers.start(['--poll-interval', '100ms', '--json'], {REPLAYCTL_MYSQL_URL: `mysql://root@127.0.0.1:${port}/replayctl_down`})
      await waitFor('a 7th database error in a row', () => worker.lines.find((line) => line.consecutive === 7), 60_000)
      assert.ok(worker.running, 'still running after more errors than --once allows')
      assert.ok(worker.lines.every((line) => line.retryInMs === undefined || Number(line.retryInMs) <= 30_000))
      await worker.stop()
    })
  })
})
