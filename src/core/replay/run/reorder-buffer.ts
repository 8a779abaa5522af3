import type {Message} from '../../kafka/range-reader.js'
import {BugError} from '../../shared/errors.js'

/**
 * The reorder buffer behind a replay of several sources (datacenters' copies of the log, or a
 * partition before and after a growth): records go in per source in log order and come out in
 * timestamp order, exactly so whenever no record of a source is more than the late grace older than
 * a record before it in that source's log (mirrored events appended late, a producer's retries).
 *
 * A source's "watermark" is the latest timestamp read from it. A record of time t comes out once
 * every source still being read has a watermark past t + grace: by the bound, nothing read later
 * from any source is as early as t. A source that reached its end no longer holds anything back.
 *
 * Which source to read next is the buffer's call too (`nextSource`): the one with the lowest
 * watermark, a record at a time. So the watermarks stay within one record's time gap of each other,
 * and what is held is about (grace + that gap) of each source's records: with two full copies, two
 * graces' worth of the webhook's events. And what comes out depends on the sources' records alone,
 * never on how reads were cut into batches: a resumed job rebuilds its duplicate filter from the
 * same order its first run delivered in (ties: the source listed first, then log order).
 *
 * Per source the buffer also tells how far its log was handed over (`handedTo`): the offset of its
 * earliest record still held, else how far it was read. A source's checkpoint must never pass a
 * record still held here.
 */
export interface ReleasedRecord {
  source: number
  message: Message
  /** The source's handed-over position once this record is handed over (see ReorderBuffer.handedTo). */
  handedTo: number
}

export interface ReorderStats {
  /** Records held now, and their key and value bytes. */
  held: number
  heldBytes: number
  /** The most records (and bytes) held at any one time. */
  peakHeld: number
  peakHeldBytes: number
}

interface Entry {
  source: number
  message: Message
  time: number
  bytes: number
  released: boolean
}

interface SourceState {
  /** Latest timestamp read (records without one count as earliest of all). */
  watermark: number
  ended: boolean
  /** Offset of the first record not yet added: everything below it was read. */
  readTo: number
  /** Held records in log order (released ones are dropped from the front as they reach it). */
  held: Entry[]
  heldHead: number
}

const timeOf = (message: Message): number => message.timestamp ?? Number.NEGATIVE_INFINITY

/** Heap order: time, then the source listed first, then log order. */
const before = (a: Entry, b: Entry): boolean =>
  a.time !== b.time
    ? a.time < b.time
    : a.source !== b.source
      ? a.source < b.source
      : a.message.offset < b.message.offset

export class ReorderBuffer {
  private readonly sources: SourceState[]
  private readonly heap: Entry[] = []

  /** `starts`: each source's first offset to read; `stats`: filled in as records come and go. */
  constructor(
    starts: number[],
    private readonly graceMs: number,
    readonly stats: ReorderStats = {held: 0, heldBytes: 0, peakHeld: 0, peakHeldBytes: 0},
  ) {
    this.sources = starts.map((start) => ({
      watermark: Number.NEGATIVE_INFINITY,
      ended: false,
      readTo: start,
      held: [],
      heldHead: 0,
    }))
  }

  /** The source to read a record from next: the least advanced of those not ended; undefined when all ended. */
  nextSource(): number | undefined {
    let next: number | undefined
    let lowest = Number.POSITIVE_INFINITY
    this.sources.forEach((state, index) => {
      if (state.ended) return
      if (next === undefined || state.watermark < lowest) {
        next = index
        lowest = state.watermark
      }
    })
    return next
  }

  /** The next record of a source, in its log order. */
  add(source: number, message: Message): void {
    const state = this.source(source)
    const entry: Entry = {
      source,
      message,
      time: timeOf(message),
      bytes: (message.value?.length ?? 0) + (message.key?.length ?? 0),
      released: false,
    }
    state.held.push(entry)
    state.readTo = Math.max(state.readTo, message.offset + 1)
    state.watermark = Math.max(state.watermark, entry.time)
    this.push(entry)
    this.stats.held++
    this.stats.heldBytes += entry.bytes
    this.stats.peakHeld = Math.max(this.stats.peakHeld, this.stats.held)
    this.stats.peakHeldBytes = Math.max(this.stats.peakHeldBytes, this.stats.heldBytes)
  }

  /** Every record of the source below `offset` was added (a batch's end, a stretch without records). */
  readTo(source: number, offset: number): void {
    const state = this.source(source)
    state.readTo = Math.max(state.readTo, offset)
  }

  /** The source has nothing more to read. */
  end(source: number): void {
    this.source(source).ended = true
  }

  /** Takes out, in timestamp order, the records that no source can still precede. */
  release(): ReleasedRecord[] {
    const limit = this.lowestWatermark() - this.graceMs
    const released: ReleasedRecord[] = []
    for (let top = this.heap[0]; top && top.time < limit; top = this.heap[0]) {
      this.pop()
      top.released = true
      this.stats.held--
      this.stats.heldBytes -= top.bytes
      released.push({source: top.source, message: top.message, handedTo: this.handedTo(top.source)})
    }
    return released
  }

  /** The source's records below this offset were all handed over (released, or read and not kept). */
  handedTo(source: number): number {
    const state = this.source(source)
    while (state.heldHead < state.held.length && state.held[state.heldHead]?.released) state.heldHead++
    if (state.heldHead > 1024 && state.heldHead * 2 > state.held.length) {
      state.held.splice(0, state.heldHead)
      state.heldHead = 0
    }
    return state.held[state.heldHead]?.message.offset ?? state.readTo
  }

  /** Watermark of the least advanced source still read; +Infinity when all ended. */
  private lowestWatermark(): number {
    let lowest = Number.POSITIVE_INFINITY
    for (const state of this.sources) if (!state.ended) lowest = Math.min(lowest, state.watermark)
    return lowest
  }

  private source(index: number): SourceState {
    const state = this.sources[index]
    if (!state) throw new BugError(`reorder buffer has no source ${index}`)
    return state
  }

  private push(entry: Entry): void {
    const heap = this.heap
    let index = heap.push(entry) - 1
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]
      if (!parent || !before(entry, parent)) break
      heap[index] = parent
      index = parentIndex
    }
    heap[index] = entry
  }

  private pop(): void {
    const heap = this.heap
    const last = heap.pop()
    if (!last || heap.length === 0) return
    let index = 0
    for (;;) {
      const left = 2 * index + 1
      if (left >= heap.length) break
      const right = left + 1
      const leftEntry = heap[left]
      const rightEntry = heap[right]
      if (!leftEntry) break
      const child = rightEntry && before(rightEntry, leftEntry) ? right : left
      const childEntry = child === right && rightEntry ? rightEntry : leftEntry
      if (!before(childEntry, last)) break
      heap[index] = childEntry
      index = child
    }
    heap[index] = last
  }
}
