import type {Pool} from '../db/database.js'
import {checkpointJob, type Counters, type ReplayJob} from './jobs/index.js'
import {OrderedDelivery, type WebhookClient, type WindowResult} from './delivery/index.js'
import type {LeaseKeeper} from './lease.js'
import type {Plan} from './plan.js'
import {readRanges, type Message} from '../kafka/range-reader.js'
import {JobDedup} from './rebuild-dedup.js'
import type {Settings} from '../shared/settings.js'

/**
 * The deliver step of a job: ONE read of the planned range [start, end). Records below the
 * checkpoint only rebuild the duplicate filter (an earlier run delivered them); from the checkpoint
 * on, records whose key is the webhook id and whose timestamp lies in [from, to) and whose hash was
 * not seen go through the ordered window, and the checkpoint is saved on an interval.
 *
 * The tally owns the job's counters; `delivered` is the one count of delivered events: those an
 * earlier run delivered (rebuilt) plus what this run's window delivered.
 */
export class JobTally {
  scanned = 0
  matched = 0
  duplicates = 0
  /** First copies below the checkpoint: an earlier run delivered them. */
  deliveredBefore = 0
  failed = 0
  window: OrderedDelivery | undefined

  get delivered(): number {
    return this.deliveredBefore + (this.window?.stats.delivered ?? 0)
  }

  counters(): Counters {
    return {scanned: this.scanned, matched: this.matched, delivered: this.delivered, duplicates: this.duplicates, failed: this.failed}
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
  /** Stop reading (shutdown, lease lost, force). */
  stopReading: AbortSignal
  report: (update: {phase?: 'rebuilding' | 'delivering'; checkpointOffset?: number; inFlight?: number}) => void
}

export async function deliverRange(settings: Settings, pool: Pool, keeper: LeaseKeeper, job: ReplayJob, plan: Plan, client: WebhookClient, tally: JobTally, options: DeliverOptions): Promise<WindowResult> {
  const {partition, startOffset, endOffset, resumeAt} = plan
  const key = Buffer.from(job.webhookId, 'utf8')
  const wanted = (message: Message) =>
    message.key !== undefined && message.key !== null && key.equals(message.key as Buffer) &&
    message.timestamp !== undefined && message.timestamp >= job.fromMs && message.timestamp < job.toMs
  const dedup = new JobDedup()
  const window = new OrderedDelivery(client, {startOffset: resumeAt, maxInFlight: options.maxInFlight, maxOutstanding: options.maxAhead ?? Math.max(DEFAULT_MAX_AHEAD, options.maxInFlight)})
  tally.window = window

  const now = () => ({checkpointOffset: window.checkpoint, inFlight: window.stats.inFlight})
  let lastSave = Date.now()
  let deliveredAtSave = 0
  // A save is due on the interval, and also once the window has delivered maxOutstanding events since
  // the last one. What a crash sends again is what was delivered at or past the saved checkpoint:
  // those ahead of it when it was taken (< maxAhead: the oldest outstanding one is undelivered),
  // plus those delivered since (< maxAhead until the next check, plus the sends in flight, which
  // settle while no new one starts: at most maxInFlight during a push's wait and again during the
  // save itself), plus the sends the receiver accepted but the dead worker never heard back about
  // (maxInFlight): fewer than 2 x maxAhead + 3 x maxInFlight, whatever --checkpoint-interval is.
  const saveDue = () => Date.now() - lastSave >= options.checkpointMs || window.stats.delivered - deliveredAtSave >= window.maxOutstanding
  const save = async () => {
    lastSave = Date.now()
    deliveredAtSave = window.stats.delivered
    const progress = now()
    await checkpointJob(pool, {...keeper.lease, checkpointOffset: progress.checkpointOffset, counters: tally.counters()})
    // Watchers (dashboard, metrics) see progress at least as often as the database does.
    options.report(progress)
  }

  options.report({phase: resumeAt > startOffset ? 'rebuilding' : 'delivering', checkpointOffset: resumeAt})
  let rebuilding = resumeAt > startOffset
  reading: for await (const batch of readRanges(settings, job.topic, [{partition, start: startOffset, end: endOffset}], {signal: options.stopReading})) {
    for (const message of batch) {
      tally.scanned++
      const delivered = message.offset < resumeAt
      if (rebuilding && !delivered) {
        rebuilding = false
        options.report({phase: 'delivering'})
      }
      if (!wanted(message)) {
        if (!delivered) window.scanned(message.offset + 1)
        continue
      }
      tally.matched++
      if (delivered) {
        if (dedup.remember(message)) tally.deliveredBefore++
        else tally.duplicates++
        continue
      }
      const hash = dedup.admit(message)
      if (hash === undefined) {
        tally.duplicates++
        window.scanned(message.offset + 1)
        continue
      }
      if (!(await window.push({offset: message.offset, body: message.value ?? Buffer.alloc(0), hash, headers: message.headers as never}))) break reading
      // Inside the batch too: a slow webhook can take far longer than the interval per batch.
      if (saveDue()) await save()
    }
    if (saveDue()) await save()
    else options.report(now())
  }
  // Offsets up to the end held nothing for this webhook (or were compacted away).
  if (!options.stopReading.aborted && !window.stopped) window.scanned(endOffset)
  const result = await window.drain()
  tally.failed = result.failure ? 1 : 0
  return result
}
