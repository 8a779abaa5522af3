import type {Message, ScannedBatch} from '../../kafka/range-reader.js'
import {BugError} from '../../shared/errors.js'
import {ReorderBuffer, type ReleasedRecord, type ReorderStats} from './reorder-buffer.js'

/**
 * Reading a job's sources (partitions of one or more topics) as one stream in timestamp order:
 * each source is a reader of ScannedBatch in log order (every record, or only the webhook's).
 *
 * One source is passed on as it is read, in log order (a run per batch). Several go through a
 * reorder buffer bounded by the job's late grace (reorder-buffer.ts): a record comes out once every
 * source still being read has read past its time plus the grace, so the merged stream is in exact
 * timestamp order (ties: the source listed first, then log order) whenever no source's log is more
 * than the grace out of time order. Records come out in runs: consecutive records of one source.
 *
 * A run hands its source over up to `scannedTo`: every record of the source below it was handed
 * over (or read and not kept). A buffered run also says so per record (`handedTo`): a source's
 * records may come out of log order, and its position never passes one still held. The records
 * read are counted (`scanned`) in the next run of their source; a source that was read on while
 * nothing of it came out gets a run without records, for its progress and count.
 */
export interface SourceRun {
  /** Index of the source in the list given. */
  source: number
  messages: Message[]
  /** every record of the source below this was handed over (or read and not kept) */
  scannedTo: number
  /** records read since the source's last run */
  scanned: number
  /** per message: scannedTo once the messages up to it are handed over; absent: each one's offset + 1 */
  handedTo?: number[]
}

export interface MergeOptions {
  /** How far (ms) a source's log may be out of time order and still merge in exact order. */
  lateGraceMs: number
  /** Each source's first offset to read. */
  starts: number[]
  /** Filled in as the buffer holds records: how much it held at most (measured for the README). */
  stats?: ReorderStats
  /**
   * The readers' stop signal. Readers stopped by it end early, which must not count as reaching
   * their ends: once it is aborted nothing more comes out (what is held stays below the checkpoints).
   */
  signal?: AbortSignal
}

export async function* readMerged(
  readers: AsyncGenerator<ScannedBatch>[],
  options: MergeOptions,
): AsyncGenerator<SourceRun> {
  try {
    const [only] = readers
    if (readers.length === 1 && only) {
      for await (const batch of only) yield {source: 0, ...batch}
      return
    }
    yield* reordered(readers, options)
  } finally {
    await Promise.all(readers.map((reader) => reader.return(undefined)))
  }
}

async function* reordered(readers: AsyncGenerator<ScannedBatch>[], options: MergeOptions): AsyncGenerator<SourceRun> {
  const buffer = new ReorderBuffer(options.starts, options.lateGraceMs, options.stats)
  // The first batches are asked for all at once (each reader connects meanwhile), later ones as needed.
  const requested: Array<Promise<IteratorResult<ScannedBatch>> | undefined> = readers.map(request)
  const current: Array<{batch: ScannedBatch; position: number} | undefined> = readers.map(() => undefined)
  const unreported = readers.map(() => 0)
  const reported = options.starts.slice()

  const runsOf = function* (released: ReleasedRecord[]): Generator<SourceRun> {
    let start = 0
    for (let first = released[start]; first; first = released[start]) {
      let end = start + 1
      while (released[end]?.source === first.source) end++
      const run = released.slice(start, end)
      const handedTo = run.map((record) => record.handedTo)
      const scannedTo = handedTo.at(-1) ?? first.handedTo
      const scanned = unreported[first.source] ?? 0
      unreported[first.source] = 0
      reported[first.source] = scannedTo
      yield {source: first.source, messages: run.map((record) => record.message), scannedTo, scanned, handedTo}
      start = end
    }
  }

  try {
    for (;;) {
      const source = buffer.nextSource()
      if (source !== undefined) {
        const reader = readers[source]
        if (!reader) throw new BugError(`merge has no reader for source ${source}`)
        const taking = current[source]
        const message = taking?.batch.messages[taking.position]
        if (taking && message) {
          buffer.add(source, message)
          taking.position++
          if (taking.position === taking.batch.messages.length) buffer.readTo(source, taking.batch.scannedTo)
        } else {
          const result = await (requested[source] ?? reader.next())
          requested[source] = undefined
          if (result.done) {
            buffer.end(source)
            current[source] = undefined
          } else {
            const batch = result.value
            current[source] = {batch, position: 0}
            unreported[source] = (unreported[source] ?? 0) + batch.scanned
            if (batch.messages.length === 0) buffer.readTo(source, batch.scannedTo)
          }
        }
      }
      if (options.signal?.aborted) return
      yield* runsOf(buffer.release())
      // Progress of the sources read on while nothing of theirs came out.
      for (let index = 0; index < readers.length; index++) {
        const scannedTo = buffer.handedTo(index)
        const scanned = unreported[index] ?? 0
        if (scanned === 0 && scannedTo <= (reported[index] ?? scannedTo)) continue
        unreported[index] = 0
        reported[index] = scannedTo
        yield {source: index, messages: [], scannedTo, scanned}
      }
      if (source === undefined) return
    }
  } finally {
    // A first read asked for and never taken (the caller stopped early) must not end as an unhandled rejection.
    await Promise.all(requested.map((pending) => pending?.catch(() => undefined)))
  }
}

function request(reader: AsyncGenerator<ScannedBatch>): Promise<IteratorResult<ScannedBatch>> {
  const next = reader.next()
  next.catch(() => undefined)
  return next
}
