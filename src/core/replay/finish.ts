import type {Pool} from '../db/database.js'
import {sendCompletionEvent, type WebhookClient, type WindowResult} from './delivery/index.js'
import {completeJob, failJob, markCancelled, markCompletionSent, releaseJob, type Lease, type ReplayJob} from './jobs/index.js'
import type {JobTally} from './deliver.js'
import type {LeaseKeeper} from './lease.js'
import type {Plan} from './plan.js'
import {markInvalid} from '../webhooks/store.js'

/**
 * The terminal decision of a run, once every event has settled: LEASE_LOST (another worker owns
 * the job; nothing more is written), FAILED at the first undelivered offset with the "Incomplete"
 * event, CANCELLED, RELEASED back to OPEN on shutdown, or COMPLETED with the "Complete" event.
 */
export type JobOutcome = 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'RELEASED' | 'LEASE_LOST' | 'RETRY_LATER'

export async function finishRun(pool: Pool, keeper: LeaseKeeper, job: ReplayJob, plan: Plan, client: WebhookClient, tally: JobTally, result: WindowResult, shutdown: AbortSignal): Promise<JobOutcome> {
  const {lease} = keeper
  if (keeper.lost.aborted || result.aborted && !keeper.cancelRequested && !shutdown.aborted) {
    if (keeper.databaseDown) throw keeper.databaseDown
    return 'LEASE_LOST'
  }
  const counters = tally.counters()
  const progressNow = {checkpointOffset: result.checkpoint, counters}
  if (result.failure) {
    if (result.failure.gone) await markInvalid(pool, job.webhookId, `410 Gone during replay job ${job.id}`)
    const reason = `could not deliver offset ${result.failure.failedAt} after ${result.failure.attempts} attempt(s): ${result.failure.reason}`
    return finishFailed(pool, lease, job, result.failure.gone ? undefined : client, reason, tally, result.checkpoint)
  }
  if (keeper.cancelRequested) {
    await markCancelled(pool, {...lease, ...progressNow})
    return 'CANCELLED'
  }
  if (shutdown.aborted) {
    return (await releaseJob(pool, {...lease, ...progressNow})) === 'CANCELLED' ? 'CANCELLED' : 'RELEASED'
  }
  await completeJob(pool, {...lease, checkpointOffset: plan.endOffset, counters})
  await sendCompletion(pool, lease, client, job, 'Complete', `replayed ${counters.delivered} events (${counters.duplicates} duplicates dropped) from ${job.topic}[${plan.partition}] offsets ${plan.startOffset}..${plan.endOffset}`)
  return 'COMPLETED'
}

/** Ends the job FAILED (or back to OPEN while attempts remain) with the reason; "Incomplete" when FAILED. */
export async function finishFailed(pool: Pool, lease: Lease, job: ReplayJob, client: WebhookClient | undefined, reason: string, tally: JobTally, checkpointOffset?: number): Promise<JobOutcome> {
  const state = await failJob(pool, {...lease, error: reason, counters: tally.counters(), ...(checkpointOffset === undefined ? {} : {checkpointOffset})})
  if (state === 'FAILED' && client) await sendCompletion(pool, lease, client, job, 'Incomplete', reason)
  return state === 'OPEN' ? 'RETRY_LATER' : state
}

/** Twitter's final replay_job_status event; a receiver that cannot take it does not change the job. */
async function sendCompletion(pool: Pool, lease: Lease, client: WebhookClient, job: ReplayJob, jobState: 'Complete' | 'Incomplete', description: string): Promise<void> {
  const sent = await sendCompletionEvent(client, {webhookId: job.webhookId, jobId: String(job.id), jobState, description})
  if (sent.outcome === 'delivered') await markCompletionSent(pool, lease)
}
