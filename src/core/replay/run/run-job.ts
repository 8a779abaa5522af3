import type {Pool} from '../../db/database.js'
import {UserError} from '../../shared/errors.js'
import type {Settings} from '../../shared/settings.js'
import {WebhookClient} from '../delivery/index.js'
import {dropChunks} from '../store/chunks/index.js'
import {failJob, handOverCompletion, LeaseLostError, releaseJob, type ClaimedJob} from '../store/jobs/index.js'
import {openRun, type Plan, type RunContext, type RunJobOptions} from './context.js'
import {deliverRange} from './deliver.js'
import {finishFailed, finishRun, type JobOutcome} from './finish.js'
import {planJob} from './plan.js'
import {PreparedConsumer} from './prepared-consumer.js'

/**
 * Runs one claimed replay job to an end, step by step (each step its own module, each taking the
 * run context of context.ts):
 *
 *   lease    (lease.ts) heartbeat throughout; when it, or any fenced write, finds the lease gone,
 *            delivery is aborted at once and nothing more is written: another worker owns the job
 *   plan     (plan.ts) the partitions and offset ranges [start, end) by time, fixed on the first
 *            run and stored with the job
 *   deliver  (deliver.ts) one read of [start, end): below the checkpoint it only rebuilds the
 *            duplicate filter (duplicate-filter.ts); from it on, wanted and new events go through
 *            the ordered window (../delivery/), the checkpoint saved as it moves
 *            (checkpoint-saver.ts)
 *   finish   (finish.ts) the terminal decision and Twitter's completion event
 *
 * Glossary:
 *   checkpoint   the offset below which every event of the job has been delivered (or was read
 *                and not meant for delivery); a resumed job reads its range again from there
 *   wanted       key = the webhook id, timestamp in [from, to)
 *   duplicate    an event whose hash (dedup.eventKey: body, or `event-id` header) was seen in the
 *                job's range before; dropped
 *   tally        the job's counters (tally.ts), the one owner of `delivered`
 */
export type {JobOutcome} from './finish.js'
export type {JobProgress, RunJobOptions} from './context.js'

export async function runJob(
  settings: Settings,
  pool: Pool,
  job: ClaimedJob,
  options: RunJobOptions,
): Promise<JobOutcome> {
  const {run, close} = openRun(settings, pool, job, options)
  const {keeper, tally} = run
  let client: WebhookClient | undefined
  let consumer: PreparedConsumer | undefined
  try {
    const {webhook, secret} = await options.secrets.read(job.webhookId)
    if (webhook.state === 'invalid') {
      const why = webhook.invalidReason ?? 'failed check'
      return await finishFailed(run, {
        reason:
          `webhook ${webhook.id} is marked invalid (${why}); fix the endpoint, ` +
          `run \`replayctl webhook check ${webhook.id}\`, then \`replayctl replay retry ${job.id}\``,
      })
    }
    // Checked above first: a job that fails at once connects nothing.
    consumer = new PreparedConsumer(settings)
    const plan = await planJob(run)
    try {
      client = await openClient(run, plan, webhook.url, secret ?? '')
    } catch (error) {
      if (error instanceof UserError && error.code === 'TARGET_NOT_ALLOWED')
        return await finishFailed(run, {reason: error.line})
      throw error
    }
    const [first] = plan.sources
    if (first)
      run.report({
        partition: first.partition,
        startOffset: first.startOffset,
        endOffset: first.endOffset,
        checkpointOffset: first.checkpointOffset,
      })

    const planned = {...run, plan, client, consumer}
    const result = await deliverRange(planned)
    keeper.markDrained()
    run.report({phase: 'finishing', checkpointOffset: result.checkpoint, inFlight: 0})
    return await ended(run, await finishRun(planned, result))
  } catch (error) {
    if (error instanceof LeaseLostError) return 'LEASE_LOST'
    if (keeper.lost.aborted && !keeper.databaseDown) return 'LEASE_LOST'
    if (keeper.databaseDown || (error instanceof UserError && error.code === 'DATABASE_UNAVAILABLE'))
      throw keeper.databaseDown ?? error
    if (error instanceof UserError && error.code === 'SECRET_KEY_WRONG') {
      // This worker's key is not the secrets' (rotated while it ran): the job is not at fault. It
      // goes back to OPEN, its attempt given back, for a worker with the right key; this one stops.
      await releaseJob(pool, keeper.lease).catch((releaseError) => {
        if (!(releaseError instanceof LeaseLostError)) throw releaseError
      })
      throw error
    }
    // Kafka unreachable, topic gone, ...: give the job back with the reason; it is retried while
    // attempts remain and ends FAILED after that.
    const reason = error instanceof UserError ? error.line : (error as Error).message
    const state = await failJob(pool, {
      ...keeper.lease,
      error: reason,
      counters: tally.counters(),
      retryInMs: 5000,
    }).catch((writeError) => {
      if (writeError instanceof LeaseLostError) return 'LEASE_LOST' as const
      throw writeError
    })
    // Ended for good without a webhook client to send the final event: the sweeper sends it.
    if (state === 'FAILED' || state === 'CANCELLED') await handOverCompletion(pool, keeper.lease)
    return await ended(run, state === 'OPEN' ? 'RETRY_LATER' : state === 'LEASE_LOST' ? 'LEASE_LOST' : state)
  } finally {
    close()
    await consumer?.close()
    await client?.close().catch(() => {})
  }
}

/** The webhook's client for this run: signed with its secret, cut when the lease is lost or sending stops. */
async function openClient(run: RunContext, plan: Plan, url: string, secret: string): Promise<WebhookClient> {
  const {job, options, keeper} = run
  // The planned partition: on a job's first run job.partition is still null.
  const [first] = plan.sources
  return WebhookClient.create({
    url,
    secret,
    jobId: String(job.id),
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    maxConnections: Math.max(options.maxInFlight, 1),
    rateLimit: options.rateLimit,
    signal: AbortSignal.any([keeper.lost, run.signals.stopSending]),
    allowPrivate: options.allowPrivate,
    beforeRequest: keeper.held,
    ...(first ? {source: {topic: first.topic, partition: first.partition}} : {}),
  })
}

/** A job that is over forgets its scan chunks (and the records they kept); a paused one keeps them. */
async function ended(run: RunContext, outcome: JobOutcome): Promise<JobOutcome> {
  if (outcome === 'COMPLETED' || outcome === 'FAILED' || outcome === 'CANCELLED') await dropChunks(run.pool, run.job.id)
  return outcome
}
