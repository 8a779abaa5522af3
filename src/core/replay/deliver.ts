import type {Pool} from '../db/database.js'
import {checkpointJob, type Counters, type ReplayJob, type SourcePlan} from './jobs/index.js'
import {OrderedDelivery, type WebhookClient, type WindowResult} from './delivery/index.js'
import type {LeaseKeeper} from './lease.js'
import {readMerged} from './merge.js'
import type {Plan} from './plan.js'
import {readScanned, type Message, type ScannedBatch} from '../kafka/range-reader.js'
import {JobDedup} from './rebuild-dedup.js'
import {readChunked} from './scan-chunks.js'
import type {Settings} from '../shared/settings.js'

/**
 * The deliver step of a job: ONE read of each planned source [start, end), merged in timestamp
 * order (merge.ts). Each source is read with the Kafka client's key filter: only the webhook's
 * records reach JS, and the read's progress (scannedTo) moves the checkpoint through stretches
 * without them. A source with more than 2 x chunkSize offsets left is read by scan chunks
 * (scan-chunks.ts), which idle workers scan ahead of this one. Records below a source's checkpoint
 * only rebuild the duplicate filter (an earlier run delivered them); past it, records whose key is
 * the webhook id, whose timestamp lies in [from, to) and whose hash was not seen (in any source:
 * byte-identical cross-datacenter copies collapse) go through the ordered window, and the
 * checkpoints are saved as they move.
 *
 * The window orders events by a sequence number in merged order. A source's checkpoint is the
 * lowest offset of its events still in the window (pushed, not yet behind the window's own
 * checkpoint), else the offset below which the merge handed over all of its records (with several
 * sources, never past one the merge's reorder buffer still holds).
 *
 * The tally owns the job's counters; `delivered` is the one count of delivered events: those an
 * earlier run delivered (rebuilt) plus what this run's window delivered.
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

/**
 * How far delivery may run past the oldest event the webhook has not accepted yet, by default.
 * Eight times the default --max-in-flight (8): room for one slow answer without stalling the other
 * sends, while a crash sends at most 2 x 64 + 3 x 8 = 152 events of a job twice. (The window used
 * to allow 1,024, and a retried event let ~200 run past it: 7% of a 2,000-event replay re-sent.)
 */
export const DEFAULT_MAX_AHEAD = 64

export interface DeliverOptions {
  checkpointMs: number
  maxInFlight: number
  /** Events the window may hold past the oldest undelivered one (OrderedDelivery maxOutstanding). */
  maxAhead?: number
  /**
   * Offsets per scan chunk (0: never chunk). A source with more than twice this left to read is
   * cut into chunks that idle workers scan ahead (scan-chunks.ts).
   */
  chunkSize?: number
  /** This worker, claiming the chunks nobody scanned yet. */
  owner: string
  /** The claimers' --stale-after: a chunk claimed longer ago is scanned again. */
  staleAfterMs: number
  /** Stop reading (shutdown, lease lost, force). */
  stopReading: AbortSignal
  report: (update: {phase?: 'rebuilding' | 'delivering'; checkpointOffset?: number; inFlight?: number}) => void
}

export interface DeliverResult extends WindowResult {
  /** The sources with the checkpoints this run reached. */
  sources: SourcePlan[]
  /** Where the first failed event was read, when one failed. */
  failedAt?: {topic: string; partition: number; offset: number}
}

interface Pushed {
  sequence: number
  source: number
  offset: number
}

export async function deliverRange(
  settings: Settings,
  pool: Pool,
  keeper: LeaseKeeper,
  job: ReplayJob,
  plan: Plan,
  client: WebhookClient,
  tally: JobTally,
  options: DeliverOptions,
): Promise<DeliverResult> {
  const {sources} = plan
  const key = Buffer.from(job.webhookId, 'utf8')
  const wanted = (message: Message) =>
    message.key !== undefined &&
    message.key !== null &&
    key.equals(message.key as Buffer) &&
    message.timestamp !== undefined &&
    message.timestamp >= job.fromMs &&
    message.timestamp < job.toMs
  const dedup = new JobDedup()
  const window = new OrderedDelivery(client, {
    startOffset: 0,
    maxInFlight: options.maxInFlight,
    maxOutstanding: options.maxAhead ?? Math.max(DEFAULT_MAX_AHEAD, options.maxInFlight),
  })
  tally.window = window

  // Per source: the offset after the last record handed over by the merge.
  const handed = sources.map((source) => source.checkpointOffset)
  const pushed: Pushed[] = []
  let pushedHead = 0
  let sequence = 0
  const checkpoints = (): SourcePlan[] => {
    const below = window.checkpoint
    while (pushedHead < pushed.length && pushed[pushedHead]!.sequence < below) pushedHead++
    if (pushedHead > 4096) {
      pushed.splice(0, pushedHead)
      pushedHead = 0
    }
    const offsets = handed.slice()
    for (let index = pushedHead; index < pushed.length; index++) {
      const entry = pushed[index]!
      if (entry.offset < offsets[entry.source]!) offsets[entry.source] = entry.offset
    }
    return sources.map((source, index) => ({...source, checkpointOffset: offsets[index]!}))
  }
  const now = () => ({checkpointOffset: checkpoints()[0]!.checkpointOffset, inFlight: window.inFlightCount})

  // Checkpoint saves run beside delivery: one is issued and the window keeps sending while MySQL
  // writes it. One save is written at a time, so they land in order. A save is due once the window
  // has delivered `saveEvery` events since the last one was taken; if that one has not landed yet,
  // delivery waits for it (the only wait). On the interval a save is issued too, when none is under
  // way (skipped otherwise: the next one comes soon enough).
  //
  // What a crash sends again is what was delivered at or past the last checkpoint that landed, S:
  //  (1) delivered past S when S was taken: fewer than maxAhead (the event at S is undelivered, and
  //      the window holds at most maxAhead);
  //  (2) delivered after S was taken and before the next save S' was: below saveEvery at the check
  //      before S' (checks follow every push), and between two checks one send starts, so what
  //      settles after that check (in a push's wait, then while waiting for S to land) is at most
  //      the maxInFlight sends under way: at most saveEvery + maxInFlight;
  //  (3) after S' was taken (written, not landed) or, without S', after S: again at most
  //      saveEvery + maxInFlight, counting the sends the receiver accepted but the dead worker
  //      never heard back about.
  // With saveEvery = (maxAhead + maxInFlight) / 2 that is fewer than 2 x maxAhead + 3 x maxInFlight,
  // whatever --checkpoint-interval is.
  const saveEvery = Math.max(1, Math.floor((window.maxOutstanding + window.maxInFlight) / 2))
  let lastSave = Date.now()
  let deliveredAtSave = 0
  let saving: Promise<void> | undefined
  let saveFailed: {error: unknown} | undefined
  // A failed save (the lease is gone, the database is down) stops sending and reading at once.
  const halted = new AbortController()
  const stopReading = AbortSignal.any([options.stopReading, halted.signal])
  const issueSave = () => {
    lastSave = Date.now()
    deliveredAtSave = window.deliveredCount
    const saved = checkpoints()
    const checkpointOffset = saved[0]!.checkpointOffset
    saving = checkpointJob(pool, {...keeper.lease, checkpointOffset, sources: saved, counters: tally.counters()}).then(
      () => {
        saving = undefined
        // Watchers (dashboard, metrics) see progress at least as often as the database does.
        options.report({checkpointOffset, inFlight: window.inFlightCount})
      },
      (error: unknown) => {
        saving = undefined
        saveFailed = {error}
        window.halt()
        halted.abort()
      },
    )
  }
  const countDue = () => window.deliveredCount - deliveredAtSave >= saveEvery
  const throwIfSaveFailed = () => {
    if (saveFailed) throw saveFailed.error
  }
  /** Issues a save when one is due and none is under way (true when it did); throws when one failed. */
  const saveIfDue = (): boolean => {
    throwIfSaveFailed()
    if (saving || !(countDue() || Date.now() - lastSave >= options.checkpointMs)) return false
    issueSave()
    return true
  }

  let rebuilding = sources.some((source) => source.checkpointOffset > source.startOffset)
  options.report({phase: rebuilding ? 'rebuilding' : 'delivering', checkpointOffset: sources[0]!.checkpointOffset})
  const chunkSize = options.chunkSize ?? 0
  const readers = sources.map((source): AsyncGenerator<ScannedBatch> => {
    // From the start, as unchunked: the kept records below the checkpoint rebuild the dedup filter.
    if (chunkSize > 0 && source.endOffset - source.checkpointOffset > 2 * chunkSize) {
      return readChunked(settings, pool, {
        jobId: job.id,
        topic: source.topic,
        partition: source.partition,
        filter: job,
        rangeStart: source.startOffset,
        start: source.startOffset,
        end: source.endOffset,
        chunkSize,
        owner: options.owner,
        staleAfterMs: options.staleAfterMs,
        signal: stopReading,
      })
    }
    return readScanned(
      settings,
      source.topic,
      {partition: source.partition, start: source.startOffset, end: source.endOffset},
      {signal: stopReading, key},
    )
  })
  try {
    const merged = readMerged(readers, {
      lateGraceMs: job.lateGraceMs,
      starts: sources.map((source) => source.startOffset),
      signal: stopReading,
    })
    reading: for await (const run of merged) {
      const source = sources[run.source]!
      const resumeAt = source.checkpointOffset
      tally.scanned += run.scanned
      for (const [index, message] of run.messages.entries()) {
        const delivered = message.offset < resumeAt
        // Merged through the reorder buffer, a source's records may come out of log order: the
        // merge says how far the source is handed over without passing a record it still holds.
        const handedTo = run.handedTo?.[index] ?? message.offset + 1
        if (handedTo > (handed[run.source] ?? handedTo)) handed[run.source] = handedTo
        if (rebuilding && !delivered) {
          rebuilding = false
          options.report({phase: 'delivering'})
        }
        if (!wanted(message)) continue
        tally.matched++
        if (delivered) {
          if (dedup.remember(message)) tally.deliveredBefore++
          else tally.duplicates++
          continue
        }
        const hash = dedup.admit(message)
        if (hash === undefined) {
          tally.duplicates++
          continue
        }
        const entry = {sequence: sequence++, source: run.source, offset: message.offset}
        pushed.push(entry)
        const origin = {topic: source.topic, partition: source.partition, offset: message.offset}
        if (
          !(await window.push({
            offset: entry.sequence,
            origin,
            body: message.value ?? Buffer.alloc(0),
            hash,
            headers: message.headers as never,
          }))
        ) {
          pushed.pop()
          break reading
        }
        // Inside the run too: a slow webhook can take far longer than the interval per batch.
        if (saving && countDue()) await saving
        saveIfDue()
      }
      // Past the last record of the run: the source's records up to scannedTo were read, none wanted.
      if (run.scannedTo > handed[run.source]!) {
        handed[run.source] = run.scannedTo
        if (rebuilding && run.scannedTo > resumeAt) {
          rebuilding = false
          options.report({phase: 'delivering'})
        }
      }
      if (saving && countDue()) await saving
      if (!saveIfDue()) options.report(now())
    }
  } catch (error) {
    // The run's last writes (runJob's, after this throws) come after the save under way.
    if (saving) await saving
    throw error
  }
  throwIfSaveFailed()
  // The sources held nothing more for this webhook up to their ends (or it was compacted away).
  if (!options.stopReading.aborted && !window.stopped)
    sources.forEach((source, index) => (handed[index] = source.endOffset))
  const result = await window.drain()
  // The run's last writes (finish.ts) come after the save under way, never before it.
  if (saving) await saving
  throwIfSaveFailed()
  tally.failed = result.failure ? 1 : 0
  const reached = checkpoints()
  const failed = result.failure && pushed.find((entry) => entry.sequence === result.failure!.failedAt)
  return {
    ...result,
    checkpoint: reached[0]!.checkpointOffset,
    sources: reached,
    ...(failed
      ? {
          failedAt: {
            topic: sources[failed.source]!.topic,
            partition: sources[failed.source]!.partition,
            offset: failed.offset,
          },
        }
      : {}),
  }
}
