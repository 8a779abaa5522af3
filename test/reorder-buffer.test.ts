import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import type {Message, ScannedBatch} from '../src/core/kafka/range-reader.js'
import {readMerged, type SourceRun} from '../src/core/replay/run/merge.js'
import {ReorderBuffer, type ReorderStats} from '../src/core/replay/run/reorder-buffer.js'

/**
 * The reorder buffer (pure) and readMerged over it, with sources made up in memory: exact
 * timestamp order whenever each source is at most the grace out of order, every record exactly
 * once whatever the disorder, a handed-over position that never passes a held record, the same
 * order however the reads are cut into batches, and what the buffer holds at most.
 */
const MINUTE = 60_000
const GRACE = 5 * MINUTE

/** A deterministic random source (tests must not flake). */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32
}

interface Event {
  time: number
  name: string
}

/** `count` events a second apart from 0, as a webhook's log would hold them. */
function events(count: number, spacingMs = 1000): Event[] {
  return Array.from({length: count}, (_, i) => ({time: i * spacingMs, name: `e${i}`}))
}

/** The copy shuffled within each minute (mirrored events appended late, a producer's retries). */
function shuffledWithinMinutes(list: Event[], seed: number): Event[] {
  const random = randomFrom(seed)
  const byMinute = new Map<number, Event[]>()
  for (const event of list) {
    const minute = Math.floor(event.time / MINUTE)
    byMinute.set(minute, [...(byMinute.get(minute) ?? []), event])
  }
  return [...byMinute.values()].flatMap((minute) => {
    const copy = minute.slice()
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const [a, b] = [copy[i], copy[j]]
      if (a && b) [copy[i], copy[j]] = [b, a]
    }
    return copy
  })
}

/** The copy with the events of [fromMinute, fromMinute + 1) appended `delayMinutes` later. */
function delayedMinute(list: Event[], fromMinute: number, delayMinutes: number): Event[] {
  const late = (event: Event) => Math.floor(event.time / MINUTE) === fromMinute
  const held = list.filter(late)
  const rest = list.filter((event) => !late(event))
  const at = rest.findIndex((event) => event.time >= (fromMinute + 1 + delayMinutes) * MINUTE)
  return at < 0 ? [...rest, ...held] : [...rest.slice(0, at), ...held, ...rest.slice(at)]
}

/** A source's log: its events at offsets with gaps (other webhooks' records, filtered out by key). */
function log(list: Event[], partition: number): Message[] {
  return list.map((event, index) => ({
    topic: `dc${partition}`,
    partition,
    offset: 100 + index * 3,
    timestamp: event.time,
    key: Buffer.from('wh'),
    value: Buffer.from(event.name),
    size: event.name.length,
  }))
}

/** Reads a log in batches of `size` records (random sizes with a seed), with a read ending past the last record. */
async function* batches(messages: Message[], size: number | (() => number)): AsyncGenerator<ScannedBatch> {
  let at = 0
  while (at < messages.length) {
    const take = typeof size === 'number' ? size : size()
    const batch = messages.slice(at, at + take)
    at += batch.length
    const next = messages[at]
    yield {
      messages: batch,
      scannedTo: next ? next.offset - 1 : 100 + messages.length * 3 + 5,
      scanned: 3 * batch.length,
    }
    // Now and then a batch of other webhooks' records only.
    if (take % 3 === 0 && next) yield {messages: [], scannedTo: next.offset, scanned: 1}
  }
}

async function collect(
  logs: Message[][],
  size: number | ((source: number) => () => number),
  options: {grace?: number; stats?: ReorderStats} = {},
): Promise<SourceRun[]> {
  const runs: SourceRun[] = []
  const readers = logs.map((messages, source) => batches(messages, typeof size === 'number' ? size : size(source)))
  const starts = logs.map(() => 100)
  for await (const run of readMerged(readers, {lateGraceMs: options.grace ?? GRACE, starts, stats: options.stats}))
    runs.push(run)
  return runs
}

const outOf = (runs: SourceRun[]) =>
  runs.flatMap((run) => run.messages.map((message) => ({source: run.source, message})))
const names = (runs: SourceRun[]) => outOf(runs).map(({message}) => String(message.value))
const times = (runs: SourceRun[]) => outOf(runs).map(({message}) => message.timestamp ?? -1)

function assertTimeOrder(runs: SourceRun[]): void {
  const list = times(runs)
  const breaks = list.filter((time, index) => index > 0 && time < (list[index - 1] ?? time)).length
  assert.equal(breaks, 0, 'out of timestamp order')
}

/** Every record of every log comes out exactly once. */
function assertEachOnce(runs: SourceRun[], logs: Message[][]): void {
  const key = (source: number, offset: number) => `${source}:${offset}`
  const got = outOf(runs).map(({source, message}) => key(source, message.offset))
  assert.equal(new Set(got).size, got.length, 'a record came out twice')
  assert.deepEqual(
    new Set(got),
    new Set(logs.flatMap((messages, source) => messages.map((message) => key(source, message.offset)))),
  )
}

describe('reorder buffer', () => {
  test('two copies, the second shuffled within each minute: exact timestamp order, copies side by side', async () => {
    const list = events(1016)
    const logs = [log(list, 1), log(shuffledWithinMinutes(list, 7), 2)]
    const runs = await collect(logs, 50)
    assertEachOnce(runs, logs)
    assertTimeOrder(runs)
    // Ties go to the source listed first: each event's dc1 copy, then its dc2 copy.
    assert.deepEqual(
      names(runs),
      list.flatMap((event) => [event.name, event.name]),
    )
    assert.deepEqual(
      outOf(runs).map(({source}) => source),
      list.flatMap(() => [0, 1]),
    )
  })

  test('a copy with a minute appended four minutes late (within a 5-minute grace): exact order', async () => {
    const list = events(20 * 60)
    const logs = [log(delayedMinute(list, 6, 4), 1), log(list, 2)]
    const runs = await collect(logs, 64)
    assertEachOnce(runs, logs)
    assertTimeOrder(runs)
  })

  test('both copies out of order, one shuffled, one delayed: exact order', async () => {
    const list = events(900)
    const logs = [log(shuffledWithinMinutes(list, 3), 1), log(delayedMinute(list, 3, 3), 2)]
    const runs = await collect(logs, 17)
    assertEachOnce(runs, logs)
    assertTimeOrder(runs)
  })

  test('disorder beyond the grace: still every record once (order as far as the grace allows)', async () => {
    const list = events(900)
    const logs = [log(delayedMinute(list, 2, 8), 1), log(shuffledWithinMinutes(list, 5), 2)]
    const runs = await collect(logs, 40, {grace: MINUTE})
    assertEachOnce(runs, logs)
  })

  test('the same order however the reads are cut into batches (a resumed job relies on it)', async () => {
    const list = events(600)
    // Beyond the grace too: the order must not depend on batch boundaries even then.
    const logs = [log(delayedMinute(list, 1, 6), 1), log(shuffledWithinMinutes(list, 11), 2), log(list.slice(100), 3)]
    const order = async (size: number | ((source: number) => () => number)) =>
      outOf(await collect(logs, size, {grace: 2 * MINUTE})).map(({source, message}) => `${source}:${message.offset}`)
    const oneByOne = await order(1)
    assert.equal(oneByOne.length, 600 + 600 + 500)
    for (const seed of [1, 2, 3]) {
      const sized = (source: number) => {
        const random = randomFrom(seed * 10 + source)
        return () => 1 + Math.floor(random() * 200)
      }
      assert.deepEqual(await order(sized), oneByOne, `batches cut by seed ${seed}`)
    }
  })

  test('a source is never handed over past a record still held; positions only move forward', async () => {
    const list = events(700)
    const logs = [log(shuffledWithinMinutes(list, 9), 1), log(delayedMinute(list, 2, 4), 2)]
    const readers = logs.map((messages) => batches(messages, 23))
    const handedOut = logs.map(() => new Set<number>())
    const position = [0, 0]
    let scanned = 0
    for await (const run of readMerged(readers, {lateGraceMs: GRACE, starts: [100, 100]})) {
      scanned += run.scanned
      const out = handedOut[run.source]
      const messages = logs[run.source]
      assert.ok(out && messages)
      const check = (handedTo: number) => {
        const held = messages.filter((message) => message.offset < handedTo && !out.has(message.offset))
        assert.deepEqual(held, [], `source ${run.source} handed over to ${handedTo} with records below still held`)
        assert.ok(handedTo >= (position[run.source] ?? 0), 'handed-over position went back')
        position[run.source] = handedTo
      }
      run.messages.forEach((message, index) => {
        out.add(message.offset)
        check(run.handedTo?.[index] ?? Number.NaN)
      })
      check(run.scannedTo)
    }
    const end = 100 + 700 * 3 + 5
    assert.deepEqual(position, [end, end], 'each source handed over to its end')
    let read = 0
    for (const messages of logs) for (const batch of await collectBatches(batches(messages, 23))) read += batch.scanned
    assert.equal(scanned, read, 'every record read is counted once')
  })

  test('stopped mid-way (readers end early): a prefix of the full order comes out, nothing held', async () => {
    const list = events(600)
    const logs = [
      log(
        list.filter((_, i) => i % 3 !== 2),
        1,
      ),
      log(shuffledWithinMinutes(list, 21), 2),
    ]
    const full = outOf(await collect(logs, 25)).map(({source, message}) => `${source}:${message.offset}`)
    const stop = new AbortController()
    const stoppable = async function* (messages: Message[]): AsyncGenerator<ScannedBatch> {
      for await (const batch of batches(messages, 25)) {
        if (stop.signal.aborted) return
        yield batch
      }
    }
    const out: string[] = []
    const options = {lateGraceMs: GRACE, starts: [100, 100], signal: stop.signal}
    for await (const run of readMerged(logs.map(stoppable), options)) {
      for (const message of run.messages) out.push(`${run.source}:${message.offset}`)
      if (out.length >= 300) stop.abort()
    }
    assert.ok(out.length >= 300 && out.length < 400, `${out.length} out`)
    assert.deepEqual(out, full.slice(0, out.length))
  })

  test('what it holds: about a grace of each copy, not the range', async () => {
    // 3 events a second for an hour, two copies, the second shuffled within each minute.
    const list = events(3 * 3600, 333)
    const logs = [log(list, 1), log(shuffledWithinMinutes(list, 13), 2)]
    const stats: ReorderStats = {held: 0, heldBytes: 0, peakHeld: 0, peakHeldBytes: 0}
    const runs = await collect(logs, 500, {stats})
    assertTimeOrder(runs)
    const perGrace = GRACE / 333
    // Two graces' worth (one per copy), plus the shuffle's minute and one batch per copy.
    assert.ok(stats.peakHeld >= 2 * perGrace, `peak ${stats.peakHeld} holds the grace`)
    assert.ok(stats.peakHeld <= 2 * (perGrace + MINUTE / 333) + 2 * 500, `peak ${stats.peakHeld} bounded`)
    assert.equal(stats.held, 0)
    assert.equal(stats.heldBytes, 0)
  })

  test('one source: passed on as read, in log order, batch by batch', async () => {
    const list = shuffledWithinMinutes(events(300), 4)
    const messages = log(list, 1)
    const read = [...(await collectBatches(batches(messages, 40)))]
    const runs = await collect([messages], 40)
    assert.deepEqual(
      runs.map((run) => ({...run, source: undefined})),
      read.map((batch) => ({...batch, source: undefined})),
    )
    assert.ok(runs.every((run) => run.handedTo === undefined))
  })

  test('a source with nothing, sources of different lengths, records without a timestamp, a zero grace', async () => {
    const list = events(200)
    const untimed: Message = {topic: 'dc3', partition: 3, offset: 100, key: Buffer.from('wh'), value: null, size: 0}
    const logs = [log(list, 1), [], log(list.slice(0, 50), 2), [untimed]]
    for (const grace of [0, GRACE]) {
      const runs = await collect(logs, 7, {grace})
      assertEachOnce(runs, logs)
      assertTimeOrder(runs.filter((run) => run.source !== 3))
    }
  })

  test('ReorderBuffer directly: holds until every source is past time + grace, or ended', () => {
    const message = (offset: number, timestamp: number): Message => ({
      topic: 't',
      partition: 0,
      offset,
      timestamp,
      key: null,
      value: Buffer.from('x'),
      size: 1,
    })
    const buffer = new ReorderBuffer([0, 0], 10)
    assert.equal(buffer.nextSource(), 0)
    buffer.add(0, message(0, 100))
    assert.equal(buffer.nextSource(), 1, 'source 1 has read nothing yet')
    buffer.add(1, message(0, 105))
    assert.deepEqual(buffer.release(), [])
    assert.equal(buffer.nextSource(), 0)
    buffer.add(0, message(5, 111))
    assert.deepEqual(buffer.release(), [], 'source 1 is at 105: not past 100 + 10')
    buffer.add(1, message(3, 111))
    const first = buffer.release()
    assert.deepEqual(
      first.map((record) => [record.source, record.message.offset, record.handedTo]),
      [[0, 0, 5]],
    )
    assert.equal(buffer.handedTo(1), 0, 'source 1 still holds offset 0')
    buffer.end(0)
    buffer.add(1, message(4, 200))
    buffer.readTo(1, 9)
    assert.deepEqual(
      buffer.release().map((record) => [record.source, record.message.offset, record.handedTo]),
      [
        [1, 0, 3],
        [0, 5, 6],
        [1, 3, 4],
      ],
    )
    buffer.end(1)
    assert.deepEqual(
      buffer.release().map((record) => [record.source, record.message.offset, record.handedTo]),
      [[1, 4, 9]],
    )
    assert.equal(buffer.nextSource(), undefined)
    assert.equal(buffer.stats.peakHeld, 4)
    assert.equal(buffer.stats.held, 0)
  })
})

async function collectBatches(reader: AsyncGenerator<ScannedBatch>): Promise<ScannedBatch[]> {
  const list: ScannedBatch[] = []
  for await (const batch of reader) list.push(batch)
  return list
}
