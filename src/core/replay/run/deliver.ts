import {readScanned, type Message, type ScannedBatch} from '../../kafka/range-reader.js'
import {BugError} from '../../shared/errors.js'
import {OrderedDelivery, type WindowResult} from '../delivery/index.js'
import {readChunked} from '../scale-out.js'
import {checkpointJob, type SourcePlan} from '../store/jobs/index.js'
import {CheckpointSaver} from './checkpoint-saver.js'
import type {PlannedRun} from './context.js'
import {DuplicateFilter} from './duplicate-filter.js'
import {readMerged} from './merge.js'
import {SourceCheckpoints} from './source-checkpoints.js'

/**
 * The deliver step of a job: ONE read of each planned source [start, end), merged in timestamp
 * order (merge.ts), pushed through the ordered window. Each source is read with the Kafka
 * client's key filter: only the webhook's records reach JS, and the read's progress (scannedTo)
 * moves the checkpoint through stretches without them. A source with more than 2 x chunkSize
 * offsets left is read by scan chunks (scale-out.ts), which idle workers scan ahead of this one.
 *
 * Records below a source's checkpoint only rebuild the duplicate filter (an earlier run delivered
 * them); past it, records whose key is the webhook id, whose timestamp lies in [from, to) and
 * whose hash was not seen (in any source: byte-identical cross-datacenter copies collapse) go
 * through the window. Each source's checkpoint follows the window (source-checkpoints.ts) and is
 * saved as it moves (checkpoint-saver.ts, with why that bounds what a crash sends again).
 */

/**
 * How far delivery may run past the oldest event the webhook has not accepted yet, by default.
 * Eight times the default --max-in-flight (8): room for one slow answer without stalling the other
 * sends, while a crash sends at most 2 x 64 + 3 x 8 = 152 events of a job twice. (The window used
 * to allow 1,024, and a retried event let ~200 run past it: 7% of a 2,000-event replay re-sent.)
 */
export const DEFAULT_MAX_AHEAD = 64

export interface DeliverResult extends WindowResult {
  /** The sources with the checkpoints this run reached. */
  sources: SourcePlan[]
  /** Where the first failed event was read, when one failed. */
  failedAt?: {topic: string; partition: number; offset: number}
}

export async function deliverRange(run: PlannedRun): Promise<DeliverResult> {
  const {job, plan, options, tally, report} = run
  const {sources} = plan
  const key = Buffer.from(job.webhookId, 'utf8')
  const wanted = (message: Message) =>
    message.key !== undefined &&
    message.key !== null &&
    key.equals(message.key as Buffer) &&
    message.timestamp !== undefined &&
    message.timestamp >= job.fromMs &&
    message.timestamp < job.toMs
  const duplicates = new DuplicateFilter()
  const window = new OrderedDelivery(run.client, {
    startOffset: 0,
    maxInFlight: options.maxInFlight,
    maxOutstanding: options.maxAhead ?? Math.max(DEFAULT_MAX_AHEAD, options.maxInFlight),
  })
  tally.window = window
  const checkpoints = new SourceCheckpoints(sources)
  const firstCheckpoint = (reached: SourcePlan[]) => reached[0]?.checkpointOffset ?? 0
  const saver = new CheckpointSaver({
    window,
    intervalMs: options.checkpointMs,
    save: async () => {
      const saved = checkpoints.at(window.checkpoint)
      const checkpointOffset = firstCheckpoint(saved)
      const counters = tally.counters()
      await checkpointJob(run.pool, {...run.keeper.lease, checkpointOffset, sources: saved, counters})
      // Watchers (dashboard, metrics) see progress at least as often as the database does.
      report({checkpointOffset, inFlight: window.inFlightCount})
    },
  })
  const stopReading = AbortSignal.any([run.signals.stopReading, saver.halted])

  let rebuilding = sources.some((source) => source.checkpointOffset > source.startOffset)
  const startDelivering = () => {
    rebuilding = false
    report({phase: 'delivering'})
  }
  report({phase: rebuilding ? 'rebuilding' : 'delivering', checkpointOffset: firstCheckpoint(sources)})
  const readers = sources.map((source) => readSource(run, source, key, stopReading))
  try {
    const mergedRuns = readMerged(readers, {
      lateGraceMs: run.job.lateGraceMs,
      starts: sources.map((source) => source.startOffset),
      signal: stopReading,
    })
    reading: for await (const merged of mergedRuns) {
      const source = sources[merged.source]
      if (!source) throw new BugError(`the merge handed over source ${merged.source} of ${sources.length}`)
      const resumeAt = source.checkpointOffset
      tally.scanned += merged.scanned
      for (const [index, message] of merged.messages.entries()) {
        const delivered = message.offset < resumeAt
        // Merged through the reorder buffer, a source's records may come out of log order: the
        // merge says how far the source is handed over without passing a record it still holds.
        if (!delivered) checkpoints.handOver(merged.source, merged.handedTo?.[index] ?? message.offset + 1)
        if (rebuilding && !delivered) startDelivering()
        if (!wanted(message)) continue
        tally.matched++
        if (delivered) {
          if (duplicates.remember(message)) tally.deliveredBefore++
          else tally.duplicates++
          continue
        }
        const hash = duplicates.admit(message)
        if (hash === undefined) {
          tally.duplicates++
          continue
        }
        const sequence = checkpoints.push(merged.source, message.offset)
        const pushed = await window.push({
          offset: sequence,
          origin: {topic: source.topic, partition: source.partition, offset: message.offset},
          body: message.value ?? Buffer.alloc(0),
          hash,
          headers: message.headers as never,
        })
        if (!pushed) {
          checkpoints.refused()
          break reading
        }
        // Inside the batch too: a slow webhook can take far longer than the interval per batch.
        const saved = saver.maybeSave()
        if (typeof saved !== 'boolean') await saved
      }
      // Past the last record of the batch: the source's records up to scannedTo were read, none wanted.
      checkpoints.handOver(merged.source, merged.scannedTo)
      if (rebuilding && merged.scannedTo > resumeAt) startDelivering()
      if (!(await saver.maybeSave()))
        report({checkpointOffset: firstCheckpoint(checkpoints.at(window.checkpoint)), inFlight: window.inFlightCount})
    }
  } catch (error) {
    // The run's last writes (runJob's, after this throws) come after the save under way.
    await saver.settle()
    throw error
  }
  saver.throwIfFailed()
  // The sources held nothing more for this webhook up to their ends (or it was compacted away).
  if (!run.signals.stopReading.aborted && !window.stopped) checkpoints.handOverAll()
  const result = await window.drain()
  // The run's last writes (finish.ts) come after the save under way, never before it.
  await saver.settle()
  saver.throwIfFailed()
  tally.failed = result.failure ? 1 : 0
  const reached = checkpoints.at(window.checkpoint)
  const failed = result.failure && checkpoints.origin(result.failure.failedAt)
  return {
    ...result,
    checkpoint: firstCheckpoint(reached),
    sources: reached,
    ...(failed
      ? {failedAt: {topic: failed.source.topic, partition: failed.source.partition, offset: failed.offset}}
      : {}),
  }
}

/**
 * One source's reader, from its start: the kept records below the checkpoint rebuild the
 * duplicate filter. Chunked when much is left to read, so idle workers can scan ahead.
 */
function readSource(
  run: PlannedRun,
  source: SourcePlan,
  key: Buffer,
  signal: AbortSignal,
): AsyncGenerator<ScannedBatch> {
  const {job, options} = run
  const chunkSize = options.chunkSize ?? 0
  if (chunkSize > 0 && source.endOffset - source.checkpointOffset > 2 * chunkSize) {
    return readChunked(run.settings, run.pool, {
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
      signal,
    })
  }
  const range = {partition: source.partition, start: source.startOffset, end: source.endOffset}
  const consumer = run.consumer?.take()
  return readScanned(run.settings, source.topic, range, {signal, key, ...(consumer ? {consumer} : {})})
}
