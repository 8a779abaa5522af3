import type {Message, ScannedBatch} from '../../kafka/range-reader.js'

/**
 * Reading a job's sources (partitions of one or more topics) as one stream in timestamp order:
 * each source is a reader of ScannedBatch in log order (every record, or only the webhook's), and
 * the sources are merged by record timestamp (ties: the earlier source in the job's order). With
 * one source it is that source's batches unchanged. Merged in runs, not record by record: a run is
 * the longest stretch of one source that comes before every other source's next record.
 *
 * A run hands its source over up to `scannedTo`: the offset of the batch's next record not yet
 * yielded, or the batch's own scannedTo when the run ends the batch. A batch's `scanned` count
 * goes with its first run only. Batches without records are passed on as empty runs at once:
 * they only move their source's progress.
 */
export interface SourceRun {
  /** Index of the source in the list given. */
  source: number
  messages: Message[]
  /** every record of the source below this was handed over (or read and not kept) */
  scannedTo: number
  /** records read for this run */
  scanned: number
}

export async function* readMerged(readers: AsyncGenerator<ScannedBatch>[]): AsyncGenerator<SourceRun> {
  try {
    if (readers.length === 1) {
      for await (const batch of readers[0]!) yield {source: 0, ...batch}
      return
    }
    // Empty batches met while looking for a source's next record, passed on before it.
    const empty: SourceRun[] = []
    const next = async (index: number): Promise<ScannedBatch | undefined> => {
      for (;;) {
        const result = await readers[index]!.next()
        if (result.done) return undefined
        if (result.value.messages.length > 0) return result.value
        empty.push({source: index, messages: [], scannedTo: result.value.scannedTo, scanned: result.value.scanned})
      }
    }
    const batches = await Promise.all(readers.map((_, index) => next(index)))
    const positions = readers.map(() => 0)
    const time = (message: Message) => message.timestamp ?? Number.NEGATIVE_INFINITY
    for (;;) {
      yield* empty.splice(0)
      let first = -1
      for (let index = 0; index < batches.length; index++) {
        const batch = batches[index]
        if (!batch) continue
        if (first < 0 || time(batch.messages[positions[index]!]!) < time(batches[first]!.messages[positions[first]!]!))
          first = index
      }
      if (first < 0) return
      // How far this source may run: up to the earliest next record of the others (ties go to the earlier source).
      let limit = Number.POSITIVE_INFINITY
      for (let index = 0; index < batches.length; index++) {
        const batch = batches[index]
        if (index === first || !batch) continue
        const head = time(batch.messages[positions[index]!]!)
        limit = Math.min(limit, index < first ? head - 1e-3 : head)
      }
      const batch = batches[first]!
      const {messages} = batch
      const from = positions[first]!
      let to = from + 1
      while (to < messages.length && time(messages[to]!) <= limit) to++
      const ends = to === messages.length
      yield {
        source: first,
        messages: from === 0 && ends ? messages : messages.slice(from, to),
        scannedTo: ends ? batch.scannedTo : messages[to]!.offset,
        scanned: from === 0 ? batch.scanned : 0,
      }
      if (!ends) positions[first] = to
      else {
        batches[first] = await next(first)
        positions[first] = 0
      }
    }
  } finally {
    await Promise.all(readers.map((reader) => reader.return(undefined)))
  }
}
