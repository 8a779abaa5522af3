import assert from 'node:assert/strict'
import {EventEmitter} from 'node:events'
import {describe, test} from 'node:test'

import {logWorker} from '../src/cli/log-lines.js'
import {WorkerModel} from '../src/cli/worker-model.js'
import type {WorkerEvents} from '../src/core/replay/events.js'
import type {ClaimedJob} from '../src/core/replay/store/jobs/index.js'
import type {JobProgress} from '../src/core/replay/run/run-job.js'
import type {ReplayWorker} from '../src/core/replay/worker.js'

/** The worker's events as the log lines and the dashboard model read them (no database needed). */
function fakeWorker(): EventEmitter<WorkerEvents> & ReplayWorker {
  return Object.assign(new EventEmitter<WorkerEvents>(), {
    owner: 'host:1',
    stopping: false,
  }) as unknown as EventEmitter<WorkerEvents> & ReplayWorker
}

const job = {
  id: 7,
  webhookId: 'w',
  partition: 1,
  startOffset: 0,
  checkpointOffset: 5000,
  endOffset: 10_000,
  attempt: 2,
} as ClaimedJob
const progress = (update: Partial<JobProgress>): JobProgress => ({
  jobId: 7,
  webhookId: 'w',
  phase: 'delivering',
  partition: 1,
  startOffset: 0,
  checkpointOffset: 5000,
  endOffset: 10_000,
  inFlight: 0,
  scanned: 0,
  matched: 0,
  delivered: 0,
  duplicates: 0,
  failed: 0,
  ...update,
})

describe('worker events', () => {
  test("the dashboard rates a resumed job over this run's delivery, not the events re-counted while rebuilding", () => {
    const worker = fakeWorker()
    let now = 1_000_000
    const model = new WorkerModel(worker, () => now)
    worker.emit('job-start', job)
    now += 30_000
    // Rebuilding the duplicate filter re-counts what earlier runs delivered: 5,000 in 30 s.
    worker.emit('job-progress', progress({phase: 'rebuilding', delivered: 5000}))
    worker.emit('job-progress', progress({phase: 'delivering', delivered: 5000}))
    now += 10_000
    worker.emit('job-progress', progress({phase: 'delivering', delivered: 6000, checkpointOffset: 6000}))
    const [running] = model.snapshot().running
    assert.equal(running!.rate, 100)
    assert.equal(running!.checkpointOffset, 6000)
  })

  test('the dashboard shows database trouble until it passes, and what the sweeper did', () => {
    const worker = fakeWorker()
    const model = new WorkerModel(worker)
    worker.emit('db-error', {
      error: new Error('cannot reach MySQL at 127.0.0.1:1 (connection refused)'),
      consecutive: 3,
      retryInMs: 2000,
    })
    assert.deepEqual(
      {...model.snapshot().database, retryAt: null},
      {error: 'cannot reach MySQL at 127.0.0.1:1 (connection refused)', consecutive: 3, retryAt: null},
    )
    worker.emit('db-recovered', {failures: 3})
    worker.emit('completion-swept', {jobId: 9, webhookId: 'w', state: 'CANCELLED', outcome: 'delivered'})
    const snapshot = model.snapshot()
    assert.equal(snapshot.database, null)
    assert.deepEqual(
      snapshot.recent.map((line) => [line.tone, line.text.slice(9)]),
      [
        ['good', 'database available again after 3 errors'],
        ['good', 'job 9 (w) CANCELLED: completion event delivered'],
      ],
    )
    assert.equal(snapshot.finishedCount, 0, 'a swept event is no job finished here')
  })

  test('log lines: one JSON object per event; under --json (minLevel warn) only warnings and errors', () => {
    for (const minLevel of ['info', 'warn'] as const) {
      const worker = fakeWorker()
      const lines: Record<string, unknown>[] = []
      const stop = logWorker(worker, {minLevel, write: (line) => lines.push(JSON.parse(line))})
      worker.emit('job-start', job)
      worker.emit('delivery-retry', {jobId: 7, offset: 5001, attempt: 2, delayMs: 400, reason: 'webhook answered 503'})
      worker.emit('db-error', {error: new Error('down'), consecutive: 1, retryInMs: 500})
      worker.emit('db-error', {error: new Error('down'), consecutive: 5, retryInMs: null})
      worker.emit('completion-swept', {
        jobId: 9,
        webhookId: 'w',
        state: 'FAILED',
        outcome: 'failed',
        reason: 'webhook answered 400',
      })
      worker.emit('job-end', {job, outcome: 'ERROR', error: new Error('boom')})
      stop()
      const shown = lines.map((line) => `${line.level} ${line.msg}`)
      const warnings = [
        'warn delivery retrying',
        'warn database unavailable',
        'error database unavailable, giving up',
        'warn completion event swept',
        'error job ended',
      ]
      assert.deepEqual(
        shown,
        minLevel === 'warn'
          ? warnings
          : ['info worker started', 'info job claimed', ...warnings, 'info worker stopped'],
      )
      assert.ok(lines.every((line) => line.worker === 'host:1' && typeof line.time === 'string'))
      assert.deepEqual(
        lines.find((line) => line.msg === 'database unavailable'),
        {...lines.find((line) => line.msg === 'database unavailable'), error: 'down', consecutive: 1, retryInMs: 500},
      )
    }
  })
})
