import type {Pool} from '../../db/database.js'
import {sendCompletionEvent, type CompletionOutcome, type WebhookClient} from '../delivery/index.js'
import {
  completeJob,
  failJob,
  handOverCompletion,
  markCancelled,
  markCompletionSent,
  releaseJob,
  type JobNote,
  type Lease,
  type ReplayJob,
} from '../store/jobs/index.js'
import type {DeliverResult, JobTally} from './deliver.js'
import type {LeaseKeeper} from './lease.js'
import {markInvalid} from '../../webhooks/store.js'

/**
 * The terminal decision of a run, once every event has settled: LEASE_LOST (another worker owns
 * the job; nothing more is written), FAILED at the first undelivered offset with the "Incomplete"
 * event, CANCELLED, RELEASED back to OPEN on shutdown, or COMPLETED with the "Complete" event.
 */
export type JobOutcome = 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'RELEASED' | 'LEASE_LOST' | 'RETRY_LATER'

export async function finishRun(
  pool: Pool,
  keeper: LeaseKeeper,
  job: ReplayJob,
  client: WebhookClient,
  tally: JobTally,
  result: DeliverResult,
  notes: JobNote[],
  shutdown: AbortSignal,
): Promise<JobOutcome> {
  const {lease} = keeper
  if (keeper.lost.aborted || (result.aborted && !keeper.cancelRequested && !shutdown.aborted)) {
    if (keeper.databaseDown) throw keeper.databaseDown
    return 'LEASE_LOST'
  }
  const counters = tally.counters()
  const progressNow = {checkpointOffset: result.checkpoint, sources: result.sources, counters}
  if (result.failure) {
    if (result.failure.gone) await markInvalid(pool, job.webhookId, `410 Gone during replay job ${job.id}`)
    const at = result.failedAt
    const where = !at
      ? ''
      : result.sources.length > 1
        ? `${at.offset} of ${at.topic}[${at.partition}]`
        : String(at.offset)
    const reason = `could not deliver offset ${where} after ${result.failure.attempts} attempt(s): ${result.failure.reason}`
    const undelivered: CompletionOutcome = {
      kind: 'undelivered',
      delivered: counters.delivered,
      status: result.failure.status,
    }
    return finishFailed(pool, lease, job, result.failure.gone ? undefined : client, reason, tally, result, undelivered)
  }
  if (keeper.cancelRequested) {
    await markCancelled(pool, {...lease, ...progressNow})
    // The cancel stopped every send, this one's too: the sweeper sends the Incomplete event.
    await handOverCompletion(pool, lease)
    return 'CANCELLED'
  }
  if (shutdown.aborted) {
    return (await releaseJob(pool, {...lease, ...progressNow})) === 'CANCELLED' ? 'CANCELLED' : 'RELEASED'
  }
  const ends = result.sources.map((source) => ({...source, checkpointOffset: source.endOffset}))
  await completeJob(pool, {...lease, checkpointOffset: ends[0]!.endOffset, sources: ends, counters})
  await sendCompletion(pool, lease, client, job, {
    kind: 'complete',
    delivered: counters.delivered,
    gaps: notes.map((note) => note.gap),
  })
  return 'COMPLETED'
}

/**
 * Ends the job FAILED (or back to OPEN while attempts remain) with the operator's reason; when
 * FAILED, the customer's "Incomplete" event tells them `outcome`, never the reason.
 */
export async function finishFailed(
  pool: Pool,
  lease: Lease,
  job: ReplayJob,
  client: WebhookClient | undefined,
  reason: string,
  tally: JobTally,
  reached?: DeliverResult,
  outcome: CompletionOutcome = {kind: 'failed'},
): Promise<JobOutcome> {
  const state = await failJob(pool, {
    ...lease,
    error: reason,
    counters: tally.counters(),
    ...(reached ? {checkpointOffset: reached.checkpoint, sources: reached.sources} : {}),
  })
  if (state === 'FAILED' && client) await sendCompletion(pool, lease, client, job, outcome)
  // Ended CANCELLED (a cancel was pending): no send may start now, so the sweeper sends the event.
  if (state === 'CANCELLED') await handOverCompletion(pool, lease)
  return state === 'OPEN' ? 'RETRY_LATER' : state
}

/** Twitter's final replay_job_status event; a receiver that cannot take it does not change the job. */
async function sendCompletion(
  pool: Pool,
  lease: Lease,
  client: WebhookClient,
  job: ReplayJob,
  outcome: CompletionOutcome,
): Promise<void> {
  const sent = await sendCompletionEvent(client, {webhookId: job.webhookId, jobId: String(job.id), outcome})
  if (sent.outcome === 'delivered') await markCompletionSent(pool, lease)
}
