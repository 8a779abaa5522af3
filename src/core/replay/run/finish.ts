import {BugError} from '../../shared/errors.js'
import {sendCompletionEvent, type CompletionOutcome, type WebhookClient} from '../delivery/index.js'
import {
  completeJob,
  failJob,
  handOverCompletion,
  markCancelled,
  markCompletionSent,
  releaseJob,
} from '../store/jobs/index.js'
import type {PlannedRun, RunContext} from './context.js'
import type {DeliverResult} from './deliver.js'
import {markInvalid} from '../../webhooks/store.js'

/**
 * The terminal decision of a run, once every event has settled: LEASE_LOST (another worker owns
 * the job; nothing more is written), FAILED at the first undelivered offset with the "Incomplete"
 * event, CANCELLED, RELEASED back to OPEN on shutdown, or COMPLETED with the "Complete" event.
 */
export type JobOutcome = 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'RELEASED' | 'LEASE_LOST' | 'RETRY_LATER'

export async function finishRun(run: PlannedRun, result: DeliverResult): Promise<JobOutcome> {
  const {pool, keeper, job, tally} = run
  const {lease} = keeper
  const {shutdown} = run.signals
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
    const {attempts, reason: lastError} = result.failure
    const reason = `could not deliver offset ${where} after ${attempts} attempt(s): ${lastError}`
    const undelivered: CompletionOutcome = {
      kind: 'undelivered',
      delivered: counters.delivered,
      status: result.failure.status,
    }
    // A 410 Gone marked the webhook invalid: it is sent nothing more, the completion event neither.
    const client = result.failure.gone ? undefined : run.client
    return finishFailed({...run, client}, {reason, reached: result, outcome: undelivered})
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
  const [first] = ends
  if (!first) throw new BugError(`replay job ${lease.id} finished a run without sources`)
  await completeJob(pool, {...lease, checkpointOffset: first.endOffset, sources: ends, counters})
  await sendCompletion(run, run.client, {
    kind: 'complete',
    delivered: counters.delivered,
    gaps: run.plan.notes.map((note) => note.gap),
  })
  return 'COMPLETED'
}

/**
 * Ends the job FAILED (or back to OPEN while attempts remain) with the operator's reason; when
 * FAILED, the customer's "Incomplete" event tells them `outcome`, never the reason.
 */
export interface RunFailure {
  /** The operator's reason, stored with the job. */
  reason: string
  /** The checkpoints the run reached, when it delivered. */
  reached?: DeliverResult
  /** What the customer's completion event says; `failed` by default. */
  outcome?: CompletionOutcome
}

export async function finishFailed(
  run: RunContext & {client?: WebhookClient},
  {reason, reached, outcome = {kind: 'failed'}}: RunFailure,
): Promise<JobOutcome> {
  const {pool, client} = run
  const {lease} = run.keeper
  const state = await failJob(pool, {
    ...lease,
    error: reason,
    counters: run.tally.counters(),
    ...(reached ? {checkpointOffset: reached.checkpoint, sources: reached.sources} : {}),
  })
  if (state === 'FAILED' && client) await sendCompletion(run, client, outcome)
  // Ended CANCELLED (a cancel was pending): no send may start now, so the sweeper sends the event.
  if (state === 'CANCELLED') await handOverCompletion(pool, lease)
  return state === 'OPEN' ? 'RETRY_LATER' : state
}

/** Twitter's final replay_job_status event; a receiver that cannot take it does not change the job. */
async function sendCompletion(run: RunContext, client: WebhookClient, outcome: CompletionOutcome): Promise<void> {
  const {job} = run
  const sent = await sendCompletionEvent(client, {webhookId: job.webhookId, jobId: String(job.id), outcome})
  if (sent.outcome === 'delivered') await markCompletionSent(run.pool, run.keeper.lease)
}
