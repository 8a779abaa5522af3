import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {CheckpointSaver} from '../src/core/replay/run/checkpoint-saver.js'
import {SourceCheckpoints} from '../src/core/replay/run/source-checkpoints.js'

/** A window the test moves by hand, and saves it settles by hand. */
function harness(options: {maxOutstanding?: number; maxInFlight?: number; intervalMs?: number} = {}) {
  const window = {
    deliveredCount: 0,
    maxOutstanding: options.maxOutstanding ?? 64,
    maxInFlight: options.maxInFlight ?? 8,
  }
  let halted = false
  let now = 0
  const saves: Array<{delivered: number; resolve: () => void; reject: (error: unknown) => void}> = []
  const saver = new CheckpointSaver({
    window: {
      ...window,
      halt: () => (halted = true),
      get deliveredCount() {
        return window.deliveredCount
      },
    },
    intervalMs: options.intervalMs ?? 1000,
    clock: () => now,
    save: () => new Promise<void>((resolve, reject) => saves.push({delivered: window.deliveredCount, resolve, reject})),
  })
  return {
    saver,
    saves,
    deliver: (count: number) => (window.deliveredCount += count),
    advance: (ms: number) => (now += ms),
    get halted() {
      return halted
    },
  }
}

const settled = () => new Promise((resolve) => setImmediate(resolve))

describe('CheckpointSaver', () => {
  it('saves every (maxAhead + maxInFlight) / 2 deliveries, not before', async () => {
    const run = harness({maxOutstanding: 64, maxInFlight: 8})
    assert.equal(run.saver.saveEvery, 36)
    run.deliver(35)
    assert.equal(await run.saver.maybeSave(), false)
    run.deliver(1)
    assert.equal(await run.saver.maybeSave(), true)
    assert.deepEqual(
      run.saves.map((save) => save.delivered),
      [36],
    )
  })

  it('saves on the interval when none is under way, and skips the interval while one is', async () => {
    const run = harness({intervalMs: 1000})
    run.advance(999)
    assert.equal(await run.saver.maybeSave(), false)
    run.advance(1)
    assert.equal(await run.saver.maybeSave(), true)
    run.advance(5000)
    assert.equal(await run.saver.maybeSave(), false, 'one save at a time')
    run.saves[0]?.resolve()
    await settled()
    assert.equal(await run.saver.maybeSave(), true)
    assert.equal(run.saves.length, 2)
  })

  it('waits for the save under way when the next is due, then issues it: saves land in order', async () => {
    const run = harness({maxOutstanding: 4, maxInFlight: 2})
    run.deliver(3)
    assert.equal(await run.saver.maybeSave(), true)
    run.deliver(3)
    let issued: boolean | undefined
    const waiting = Promise.resolve(run.saver.maybeSave()).then((result) => (issued = result))
    await settled()
    assert.equal(issued, undefined, 'delivery waits for the first save to land')
    assert.equal(run.saves.length, 1)
    run.saves[0]?.resolve()
    await waiting
    assert.equal(issued, true)
    assert.deepEqual(
      run.saves.map((save) => save.delivered),
      [3, 6],
    )
  })

  it('a failed save halts the window, stops reading and is thrown', async () => {
    const run = harness({maxOutstanding: 2, maxInFlight: 1})
    run.deliver(1)
    assert.equal(await run.saver.maybeSave(), true)
    const lost = new Error('lease lost')
    run.saves[0]?.reject(lost)
    await run.saver.settle()
    assert.equal(run.halted, true)
    assert.equal(run.saver.halted.aborted, true)
    assert.throws(() => run.saver.throwIfFailed(), lost)
    await assert.rejects(async () => run.saver.maybeSave(), lost)
  })

  it('settle waits for the save under way', async () => {
    const run = harness({maxOutstanding: 2, maxInFlight: 1})
    run.deliver(1)
    await run.saver.maybeSave()
    let done = false
    const settling = run.saver.settle().then(() => (done = true))
    await settled()
    assert.equal(done, false)
    run.saves[0]?.resolve()
    await settling
    assert.equal(run.saver.saveUnderWay, false)
  })
})

describe('SourceCheckpoints', () => {
  const sources = [
    {topic: 'a', partition: 0, partitionCount: 1, startOffset: 0, endOffset: 100, checkpointOffset: 10},
    {topic: 'b', partition: 3, partitionCount: 4, startOffset: 50, endOffset: 90, checkpointOffset: 50},
  ]
  const offsets = (checkpoints: SourceCheckpoints, windowCheckpoint: number) =>
    checkpoints.at(windowCheckpoint).map((source) => source.checkpointOffset)

  it('starts at the planned checkpoints and follows what the merge handed over', () => {
    const checkpoints = new SourceCheckpoints(sources)
    assert.deepEqual(offsets(checkpoints, 0), [10, 50])
    checkpoints.handOver(0, 20)
    checkpoints.handOver(0, 15)
    assert.deepEqual(offsets(checkpoints, 0), [20, 50], 'never moves back')
  })

  it('holds each source at its lowest event still in the window', () => {
    const checkpoints = new SourceCheckpoints(sources)
    checkpoints.handOver(0, 13)
    const first = checkpoints.push(0, 12)
    checkpoints.handOver(1, 61)
    const second = checkpoints.push(1, 60)
    checkpoints.handOver(0, 15)
    checkpoints.push(0, 14)
    assert.deepEqual([first, second], [0, 1])
    assert.deepEqual(offsets(checkpoints, 0), [12, 60])
    assert.deepEqual(offsets(checkpoints, 1), [14, 60], 'the first event was delivered')
    assert.deepEqual(offsets(checkpoints, 3), [15, 61], 'everything pushed was delivered')
  })

  it('a refused push holds its source at that event, though the merge handed it over', () => {
    const checkpoints = new SourceCheckpoints(sources)
    // As the deliver step does: a record is handed over, then pushed.
    checkpoints.handOver(1, 71)
    checkpoints.push(1, 70)
    checkpoints.handOver(0, 31)
    checkpoints.push(0, 30)
    checkpoints.refused()
    assert.deepEqual(offsets(checkpoints, 0), [30, 70])
    assert.deepEqual(offsets(checkpoints, 1), [30, 71], 'the event of b was delivered; the one of a was not')
    assert.deepEqual(checkpoints.origin(0), {source: sources[1], offset: 70})
    assert.equal(checkpoints.origin(1), undefined)
  })

  it('names where an event was read, and ends at the ends of the ranges', () => {
    const checkpoints = new SourceCheckpoints(sources)
    checkpoints.handOver(1, 71)
    checkpoints.push(1, 70)
    assert.deepEqual(checkpoints.origin(0), {source: sources[1], offset: 70})
    assert.equal(checkpoints.origin(1), undefined)
    checkpoints.handOverAll()
    assert.deepEqual(offsets(checkpoints, 1), [100, 90])
  })

  it('keeps its bookkeeping bounded as the window moves on', () => {
    const checkpoints = new SourceCheckpoints(sources)
    for (let offset = 10; offset < 10_010; offset++) {
      checkpoints.handOver(0, offset + 1)
      checkpoints.push(0, offset)
    }
    assert.deepEqual(offsets(checkpoints, 9_999), [10_009, 50])
    assert.deepEqual(checkpoints.origin(9_999), {source: sources[0], offset: 10_009})
  })
})
