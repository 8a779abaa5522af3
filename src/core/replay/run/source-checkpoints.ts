import type {SourcePlan} from '../store/jobs/index.js'

/**
 * Each source's checkpoint while the window delivers. The window orders events by a sequence
 * number in merged order and knows only its own checkpoint (the lowest sequence not delivered);
 * this maps it back to offsets. A source's checkpoint is the lowest offset of its events still in
 * the window (pushed, not yet below the window's checkpoint), else the offset after the last
 * record of it the merge handed over.
 */
export class SourceCheckpoints {
  // Per source: the offset after the last record handed over by the merge.
  private readonly handed: number[]
  // Pushed events in sequence order; those before `head` are below the window's checkpoint.
  private pushed: Array<{sequence: number; source: number; offset: number}> = []
  private head = 0
  private nextSequence = 0

  constructor(private readonly sources: readonly SourcePlan[]) {
    this.handed = sources.map((source) => source.checkpointOffset)
  }

  /** The merge handed over the source's records below `offset` (delivered, pushed or not wanted). */
  handOver(source: number, offset: number): void {
    if (offset > (this.handed[source] ?? Number.POSITIVE_INFINITY)) this.handed[source] = offset
  }

  /** Every source was read to its end: nothing more of the webhook lies in its range. */
  handOverAll(): void {
    this.sources.forEach((source, index) => (this.handed[index] = source.endOffset))
  }

  /** An event about to be pushed into the window: its sequence number there. */
  push(source: number, offset: number): number {
    const sequence = this.nextSequence++
    this.pushed.push({sequence, source, offset})
    return sequence
  }

  /**
   * The window refused the last push (it stopped): that event was not sent, so its source's
   * checkpoint may not pass it, though the merge handed it over.
   */
  refused(): void {
    const entry = this.pushed.pop()
    if (entry && (this.handed[entry.source] ?? 0) > entry.offset) this.handed[entry.source] = entry.offset
  }

  /** Where the event with this sequence number was read. */
  origin(sequence: number): {source: SourcePlan; offset: number} | undefined {
    const entry = this.pushed.find((pushed) => pushed.sequence === sequence)
    const source = entry && this.sources[entry.source]
    return entry && source ? {source, offset: entry.offset} : undefined
  }

  /** The sources with their checkpoints, given the window's checkpoint (a sequence number). */
  at(windowCheckpoint: number): SourcePlan[] {
    while (this.head < this.pushed.length && (this.pushed[this.head]?.sequence ?? 0) < windowCheckpoint) this.head++
    // Dropped in bulk, not one by one: shifting the array per delivered event would cost more.
    if (this.head > 4096) {
      this.pushed = this.pushed.slice(this.head)
      this.head = 0
    }
    const offsets = this.handed.slice()
    for (let index = this.head; index < this.pushed.length; index++) {
      const entry = this.pushed[index]
      if (entry && entry.offset < (offsets[entry.source] ?? Number.POSITIVE_INFINITY))
        offsets[entry.source] = entry.offset
    }
    return this.sources.map((source, index) => ({...source, checkpointOffset: offsets[index] ?? source.endOffset}))
  }
}
