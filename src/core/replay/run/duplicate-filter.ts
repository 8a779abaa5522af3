import {DedupCache, eventKey} from '../dedup.js'
import type {Message} from '../../kafka/range-reader.js'

/**
 * The duplicate filter of a job, rebuilt on resume: the events below the checkpoint were delivered
 * by an earlier run, so their hashes are remembered (not sent) as the single read of the range
 * passes over them, and later copies of them are still dropped. Past the checkpoint the same
 * filter decides what is sent.
 */
export class DuplicateFilter {
  // Grown as events arrive: sizing it by the offset range would overstate a quiet webhook's needs.
  private readonly seen = new DedupCache()
  /** An event below the checkpoint: remember it; true when it was a first copy. */
  remember(message: Message): boolean {
    return this.seen.addIfNew(eventKey(message.value, message.headers as never))
  }

  /** An event past the checkpoint: its hash when it is new (to send), undefined for a duplicate. */
  admit(message: Message): bigint | undefined {
    const hash = eventKey(message.value, message.headers as never)
    return this.seen.addIfNew(hash) ? hash : undefined
  }
}
