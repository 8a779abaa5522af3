import type {OrderedDelivery} from '../delivery/index.js'
import type {Counters} from '../store/jobs/index.js'

/**
 * The job's counters during a run, their one owner; `delivered` is the one count of delivered
 * events: those an earlier run delivered (rebuilt) plus what this run's window delivered.
 */
export class JobTally {
  /**
   * Records read from the sources' ranges, counted per batch by the Kafka client (kept or
   * filtered out by key), or by the chunk scanners for the chunks whose kept records were used.
   */
  scanned = 0
  matched = 0
  duplicates = 0
  /** First copies below the checkpoint: an earlier run delivered them. */
  deliveredBefore = 0
  failed = 0
  window: OrderedDelivery | undefined

  get delivered(): number {
    return this.deliveredBefore + (this.window?.deliveredCount ?? 0)
  }

  counters(): Counters {
    return {
      scanned: this.scanned,
      matched: this.matched,
      delivered: this.delivered,
      duplicates: this.duplicates,
      failed: this.failed,
    }
  }
}
