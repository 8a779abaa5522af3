import {readRanges, type Message} from '../kafka/range-reader.js'
import type {Settings} from '../shared/settings.js'

/**
 * Reading a job's sources (partitions of one or more topics) as one stream in timestamp order:
 * each source is read in log order, and the sources are merged by record timestamp (ties: the
 * earlier source in the job's order). With one source it is that source's batches unchanged.
 * Merged in runs, not record by record: a run is the longest stretch of one source that comes
 * before every other source's next record.
 */
export interface SourceRange {
  topic: string
  partition: number
  start: number
  end: number
}

export interface SourceRun {
  /** Index of the source in the list given. */
  source: number
  messages: Message[]
}

export async function* readMerged(settings: Settings, sources: SourceRange[], signal: AbortSignal): AsyncGenerator<SourceRun> {
  const readers = sources.map((source) => readRanges(settings, source.topic, [{partition: source.partition, start: source.start, end: source.end}], {signal}))
  try {
    if (readers.length === 1) {
      for await (const messages of readers[0]!) yield {source: 0, messages}
      return
    }
    const next = async (index: number): Promise<Message[] | undefined> => {
      for (;;) {
        const result = await readers[index]!.next()
        if (result.done) return undefined
        if (result.value.length > 0) return result.value
      }
    }
    const batches = await Promise.all(readers.map((_, index) => next(index)))
    const positions = readers.map(() => 0)
    const time = (message: Message) => message.timestamp ?? Number.NEGATIVE_INFINITY
    for (;;) {
      let first = -1
      for (let index = 0; index < batches.length; index++) {
        const batch = batches[index]
        if (!batch) continue
        if (first < 0 || time(batch[positions[index]!]!) < time(batches[first]![positions[first]!]!)) first = index
      }
      if (first < 0) return
      // How far this source may run: up to the earliest next record of the others (ties go to the earlier source).
      let limit = Number.POSITIVE_INFINITY
      for (let index = 0; index < batches.length; index++) {
        const batch = batches[index]
        if (index === first || !batch) continue
        const head = time(batch[positions[index]!]!)
        limit = Math.min(limit, index < first ? head - 1e-3 : head)
      }
      const batch = batches[first]!
      const from = positions[first]!
      let to = from + 1
      while (to < batch.length && time(batch[to]!) <= limit) to++
      yield {source: first, messages: from === 0 && to === batch.length ? batch : batch.slice(from, to)}
      if (to < batch.length) positions[first] = to
      else {
        batches[first] = await next(first)
        positions[first] = 0
      }
    }
  } finally {
    await Promise.all(readers.map((reader) => reader.return(undefined)))
  }
}
