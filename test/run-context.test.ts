import assert from 'node:assert/strict'
import {getEventListeners} from 'node:events'
import {describe, test} from 'node:test'

import {openRun, type OpenRunOptions} from '../src/core/replay/run/context.js'
import {claimJob} from '../src/core/replay/store/jobs/index.js'
import {testSettings, uniqueName} from './helpers.js'
import {pastRange, replayTestFile} from './replay-harness.js'

/**
 * A worker runs for days and hands every job run the same shutdown and force signals: a run must
 * leave nothing on them once it is closed (bench/worker-soak.ts measures the whole worker).
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-context-secret-0123456').toString('base64')
const {stack, receiver} = replayTestFile(SECRET)

/** Node keeps AbortSignal.any's dependants in a set on each source signal (internal, so looked up by name). */
function dependants(signal: AbortSignal): number {
  const symbol = Object.getOwnPropertySymbols(signal).find((each) => each.description === 'kDependantSignals')
  const set = symbol ? (signal as unknown as Record<symbol, Set<unknown> | undefined>)[symbol] : undefined
  return set?.size ?? 0
}

describe('run context', () => {
  test("closed runs leave no listener nor dependant on the worker's shutdown and force signals", async () => {
    const topic = await stack.createTopic(1)
    const webhookId = uniqueName('ctx')
    await stack.addWebhook(webhookId, (await receiver()).url, SECRET)
    const {fromMs, toMs} = pastRange()
    await stack.submit(webhookId, fromMs, toMs, topic)
    // Claimed and never run: no worker runs in this file, and the database goes with it.
    const job = await claimJob(stack.pool, {owner: 'context-test', staleAfterMs: 600_000})
    assert.ok(job, 'expected a job to claim')
    const shutdown = new AbortController()
    const force = new AbortController()
    const options: OpenRunOptions = {
      owner: 'context-test',
      heartbeatMs: 300_000,
      staleAfterMs: 600_000,
      checkpointMs: 1000,
      maxInFlight: 1,
      timeoutMs: 1000,
      allowPrivate: true,
      partitioner: 'murmur2',
      shutdown: shutdown.signal,
      force: force.signal,
    }
    const settings = testSettings({mysqlUrl: stack.mysqlUrl})
    for (let index = 0; index < 5; index++) openRun(settings, stack.pool, job, options).close()
    for (const signal of [shutdown.signal, force.signal]) {
      assert.equal(getEventListeners(signal, 'abort').length, 0)
      assert.equal(dependants(signal), 0)
    }

    // While a run is open, the worker's signals still reach it.
    const {run, close} = openRun(settings, stack.pool, job, options)
    assert.equal(run.signals.stopReading.aborted, false)
    shutdown.abort()
    assert.equal(run.signals.stopReading.aborted, true)
    assert.equal(run.signals.stopSending.aborted, false)
    force.abort()
    assert.equal(run.signals.stopSending.aborted, true)
    close()
  })
})
