import type {Pool} from '../../db/database.js'
import {deliverRange, JobTally} from './deliver.js'
import {WebhookClient, type RetryPolicy} from '../delivery/index.js'
import {finishFailed, finishRun, type JobOutcome} from './finish.js'
import {dropChunks} from '../store/chunks/index.js'
import {
  failJob,
  handOverCompletion,
  LeaseLostError,
  releaseJob,
  type ClaimedJob,
  type Counters,
} from '../store/jobs/index.js'
import {LeaseKeeper} from './lease.js'
import {planJob} from './plan.js'
import type {Partitioner} from '../../kafka/partitioner.js'
import {UserError} from '../../shared/errors.js'
import type {Settings} from '../../shared/settings.js'
import type {WebhookSecrets} from '../../webhooks/secrets.js'

/**
 * Runs one claimed replay job to an end, step by step (each step its own module):
 *
 *   lease    (lease.ts) heartbeat throughout; when it, or any fenced write, finds the lease gone,
 *            delivery is aborted at once and nothing more is written: another worker owns the job
 *   plan     (plan.ts) the partition and the offset range [start, end) by time, fixed on the
 *            first run and stored with the job
 *   deliver  (deliver.ts) one read of [start, end): below the checkpoint it only rebuilds the
 *            duplicate filter (rebuild-dedup.ts); from it on, wanted and new events go through the
 *            ordered window (delivery/), the checkpoint saved as it moves
 *   finish   (finish.ts) the terminal decision and Twitter's completion event
 *
 * Glossary:
 *   checkpoint   the offset below which every event of the job has been delivered (or was read
 *                and not meant for delivery); a resumed job reads its range again from there
 *   wanted       key = the webhook id, timestamp in [from, to)
 *   duplicate    an event whose hash (dedup.eventKey: body, or `event-id` header) was seen in the
 *                job's range before; dropped
 *   tally        the job's counters (deliver.ts JobTally), the one owner of `delivered`
 */
export type {JobOutcome} from './finish.js'

export interface RunJobOptions {
  owner: string
  heartbeatMs: number
  /** The claimers' --stale-after: requests stop once the last confirmed heartbeat is nearly this old. */
  staleAfterMs: number
  checkpointMs: number
  maxInFlight: number
  /** Events delivery may run past the oldest undelivered one (bounds re-sends after a crash). */
  maxAhead?: number
  rateLimit?: number
  /** Offsets per scan chunk (0 or unset: sources are never chunked); see deliver.ts. */
  chunkSize?: number
  timeoutMs: number
  retry?: Partial<RetryPolicy>
  allowPrivate: boolean
  partitioner: Partitioner
  /** Aborted on graceful shutdown: stop reading, checkpoint, hand the job back to OPEN. */
  shutdown: AbortSignal
  /** Aborted when the graceful window is over: cut in-flight requests too. */
  force: AbortSignal
  onProgress?: (progress: JobProgress) => void
  /** Where the webhook's signing secret is read from (opened once per worker). */
  secrets: WebhookSecrets
}

export interface JobProgress extends Counters {
  jobId: number
  webhookId: string
  phase: 'planning' | 'rebuilding' | 'delivering' | 'finishing'
  partition: number | null
  startOffset: number | null
  checkpointOffset: number | null
  endOffset: number | null
  inFlight: number
}

export async function runJob(
  settings: Settings,
  pool: Pool,
  job: ClaimedJob,
  options: RunJobOptions,
): Promise<JobOutcome> {
  const keeper = new LeaseKeeper(pool, {id: job.id, leaseToken: job.leaseToken}, options)
  const stopSending = new AbortController()
  const onStopSending = () => stopSending.abort()
  options.force.addEventListener('abort', onStopSending)
  keeper.cancelled.addEventListener('abort', onStopSending)
  const stopReading = AbortSignal.any([keeper.lost, options.shutdown, stopSending.signal])

  const tally = new JobTally()
  const progress: JobProgress = {
    ...tally.counters(),
    jobId: job.id,
    webhookId: job.webhookId,
    phase: 'planning',
    partition: job.partition,
    startOffset: job.startOffset,
    checkpointOffset: job.checkpointOffset,
    endOffset: job.endOffset,
    inFlight: 0,
  }
  const report = (update: Partial<JobProgress>) => {
    Object.assign(progress, tally.counters(), update)
    options.onProgress?.(progress)
  }

  let client: WebhookClient | undefined
  try {
    const {webhook, secret} = await options.secrets.read(job.webhookId)
    if (webhook.state === 'invalid') {
      return await finishFailed(
        pool,
        keeper.lease,
        job,
        undefined,
        `webhook ${webhook.id} is marked invalid (${webhook.invalidReason ?? 'failed check'}); fix the endpoint, run \`replayctl webhook check ${webhook.id}\`, then \`replayctl replay retry ${job.id}\``,
        tally,
      )
    }
    const plan = await planJob(settings, pool, keeper.lease, job, options.partitioner)
    try {
      client = await WebhookClient.create({
        url: webhook.url,
        secret: secret ?? '',
        jobId: String(job.id),
        timeoutMs: options.timeoutMs,
        retry: options.retry,
        maxConnections: Math.max(options.maxInFlight, 1),
        rateLimit: options.rateLimit,
        signal: AbortSignal.any([keeper.lost, stopSending.signal]),
        allowPrivate: options.allowPrivate,
        beforeRequest: keeper.held,
        // The planned partition: on a job's first run job.partition is still null.
        source: {topic: plan.sources[0]!.topic, partition: plan.sources[0]!.partition},
      })
    } catch (error) {
      if (error instanceof UserError && error.code === 'TARGET_NOT_ALLOWED')
        return await finishFailed(pool, keeper.lease, job, undefined, error.line, tally)
      throw error
    }
    const first = plan.sources[0]!
    report({
      partition: first.partition,
      startOffset: first.startOffset,
      endOffset: first.endOffset,
      checkpointOffset: first.checkpointOffset,
    })

    const result = await deliverRange(settings, pool, keeper, job, plan, client, tally, {
      checkpointMs: options.checkpointMs,
      maxInFlight: options.maxInFlight,
      maxAhead: options.maxAhead,
      stopReading,
      report,
      chunkSize: options.chunkSize,
      owner: options.owner,
      staleAfterMs: options.staleAfterMs,
    })
    keeper.markDrained()
    report({phase: 'finishing', checkpointOffset: result.checkpoint, inFlight: 0})
    return await ended(
      pool,
      job,
      await finishRun(pool, keeper, job, client, tally, result, plan.notes, options.shutdown),
    )
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
    return await ended(pool, job, state === 'OPEN' ? 'RETRY_LATER' : state === 'LEASE_LOST' ? 'LEASE_LOST' : state)
  } finally {
    keeper.stop()
    options.force.removeEventListener('abort', onStopSending)
    await client?.close().catch(() => {})
  }
}

/** A job that is over forgets its scan chunks (and the records they kept); a paused one keeps them. */
async function ended(pool: Pool, job: ClaimedJob, outcome: JobOutcome): Promise<JobOutcome> {
  if (outcome === 'COMPLETED' || outcome === 'FAILED' || outcome === 'CANCELLED') await dropChunks(pool, job.id)
  return outcome
}
