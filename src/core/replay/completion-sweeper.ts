import type {Pool, RetryOptions} from '../db/database.js'
import {UserError} from '../shared/errors.js'
import type {WebhookSecrets} from '../webhooks/secrets.js'
import {sendCompletionEvent, WebhookClient, type RetryPolicy} from './delivery/index.js'
import type {CompletionSwept} from './events.js'
import {claimCompletion, markCompletionSent, type ReplayJob} from './store/jobs/index.js'

/**
 * The completion event sweeper: a job that ended FAILED or CANCELLED without its worker (a stale
 * claim settled it, or it was cancelled while OPEN) gets its final
 * `{"replay_job_status": {..., "job_state": "Incomplete"}}` event all the same, from whichever
 * worker sweeps first. The sending is claimed in MySQL (claimCompletion) for longer than a send
 * may take, so with any number of workers each owed event is sent once; it is recorded with
 * markCompletionSent. A sweeper that dies between the receiver's answer and that record leaves the
 * claim to lapse and the event is sent again, with the same webhook-id header (at least once, like
 * every delivery). A receiver that does not take it is tried again on later sweeps, 3 times in all.
 */
export interface SweepOptions {
  allowPrivate: boolean
  deliveryTimeoutMs: number
  retry?: Partial<RetryPolicy>
  /** stops the sweep between jobs and cuts a send under way */
  signal?: AbortSignal
  /** jobs handled per sweep */
  maxJobs?: number
  /** how hard the claim retries transient database failures (default: the pool's) */
  claimRetry?: RetryOptions
  secrets: WebhookSecrets
}

const HOLD_MS = 120_000
// Half the hold: a send cut at this point is over well before another sweeper may claim the job.
const SEND_BUDGET_MS = HOLD_MS / 2
const MAX_ATTEMPTS = 3
const MAX_AGE_MS = 24 * 60 * 60_000

export async function sweepCompletions(
  pool: Pool,
  options: SweepOptions,
  onSwept: (swept: CompletionSwept) => void = () => {},
): Promise<CompletionSwept[]> {
  const swept: CompletionSwept[] = []
  for (let n = 0; n < (options.maxJobs ?? 10) && !options.signal?.aborted; n++) {
    const job = await claimCompletion(pool, {
      holdMs: HOLD_MS,
      maxAttempts: MAX_ATTEMPTS,
      maxAgeMs: MAX_AGE_MS,
      retry: options.claimRetry,
    })
    if (!job) break
    const result = await sendOwedCompletion(pool, job, options)
    swept.push(result)
    onSwept(result)
  }
  return swept
}

async function sendOwedCompletion(pool: Pool, job: ReplayJob, options: SweepOptions): Promise<CompletionSwept> {
  const state = job.state as CompletionSwept['state']
  const base = {jobId: job.id, webhookId: job.webhookId, state}
  const {webhook, secret} = await options.secrets.read(job.webhookId)
  const budget = AbortSignal.timeout(SEND_BUDGET_MS)
  let client: WebhookClient
  try {
    client = await WebhookClient.create({
      url: webhook.url,
      secret: secret ?? '',
      jobId: String(job.id),
      timeoutMs: options.deliveryTimeoutMs,
      retry: options.retry,
      maxConnections: 1,
      allowPrivate: options.allowPrivate,
      signal: options.signal ? AbortSignal.any([budget, options.signal]) : budget,
    })
  } catch (error) {
    if (error instanceof UserError) return {...base, outcome: 'failed', reason: error.line}
    throw error
  }
  try {
    // FAILED here is never the webhook's doing (a delivery failure is told by its worker): a stale
    // claim, attempts used up, Kafka or MySQL. job.lastError says which, for the operator only.
    const sent = await sendCompletionEvent(client, {
      webhookId: job.webhookId,
      jobId: String(job.id),
      outcome: {kind: job.state === 'CANCELLED' ? 'cancelled' : 'failed'},
    })
    if (sent.outcome !== 'delivered') return {...base, outcome: 'failed', reason: sent.reason ?? sent.outcome}
    try {
      await markCompletionSent(pool, {id: job.id})
    } catch (error) {
      // Retried (OPEN again) while we sent: its next end owes its own event.
      if (!(error instanceof UserError && error.code === 'JOB_STATE_CONFLICT')) throw error
    }
    return {...base, outcome: 'delivered'}
  } finally {
    await client.close().catch(() => {})
  }
}
