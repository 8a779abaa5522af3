import type {Pool} from '../db/database.js'
import {DedupCache, eventKey} from './dedup.js'
import {OrderedDelivery, sendCompletionEvent, WebhookClient, type RetryPolicy} from './delivery.js'
import {UserError} from '../shared/errors.js'
import {
  checkpointJob, completeJob, failJob, heartbeatJob, LeaseLostError, markCancelled, markCompletionSent, releaseJob, startJob,
  type ClaimedJob, type Counters, type Lease, type ReplayJob,
} from './jobs/index.js'
import {offsetsForTime} from '../kafka/offsets.js'
import {type Partitioner, partitionFor} from '../kafka/partitioner.js'
import {readRanges, type Message} from '../kafka/range-reader.js'
import type {Settings} from '../shared/settings.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'
import {getWebhook, markInvalid} from '../webhooks/store.js'

/**
 * Runs one claimed replay job to an end, through these steps:
 *
 *   plan     partition = partitionFor(webhook id); start = first offset at or after `from`,
 *            end = first offset at or after `to` (exclusive). Fixed at the first run, reused after.
 *   rebuild  on a resumed job, read [start, checkpoint) without delivering, to remember the hashes
 *            of events already delivered, so duplicates of them are still dropped
 *   deliver  read [checkpoint, end); keep records whose key is the webhook id and whose timestamp
 *            lies in [from, to); drop those whose hash was seen; deliver the rest in log order
 *            through the window, saving the checkpoint (every offset below it is delivered) on an
 *            interval
 *   finish   COMPLETED and the "Complete" event; or FAILED at the first undelivered offset and the
 *            "Incomplete" event; or CANCELLED; or handed back to OPEN on shutdown
 *
 * A heartbeat runs throughout. When it (or any fenced write) finds the lease gone, delivery is
 * aborted at once and nothing more is written: another worker owns the job now.
 */
export interface RunJobOptions {
  owner: string
  heartbeatMs: number
  /** The claimers' --stale-after: requests stop once the last confirmed heartbeat is nearly this old. */
  staleAfterMs: number
  checkpointMs: number
  maxInFlight: number
  rateLimit?: number
  timeoutMs: number
  retry?: Partial<RetryPolicy>
  allowPrivate: boolean
  partitioner: Partitioner
  /** Aborted on graceful shutdown: stop reading, checkpoint, hand the job back to OPEN. */
  shutdown: AbortSignal
  /** Aborted when the graceful window is over: cut in-flight requests too. */
  force: AbortSignal
  onProgress?: (progress: JobProgress) => void
}

export type JobOutcome = 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'RELEASED' | 'LEASE_LOST' | 'RETRY_LATER'

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

export async function runJob(settings: Settings, pool: Pool, job: ClaimedJob, options: RunJobOptions): Promise<JobOutcome> {
  const lease: Lease = {id: job.id, leaseToken: job.leaseToken}
  const leaseLost = new AbortController()
  const stopSending = new AbortController()
  const stopReading = AbortSignal.any([leaseLost.signal, options.shutdown, stopSending.signal])
  const onForce = () => stopSending.abort()
  options.force.addEventListener('abort', onForce)
  let cancelRequested = false
  let databaseDown: unknown = null

  // Our own clock of the lease: claimers take the job over once its heartbeat is older than
  // staleAfterMs (database clock), and a worker that was frozen meanwhile (SIGSTOP, a VM pause) or
  // cut off from the database does not know it. So no request starts more than
  // staleAfterMs - heartbeatMs after the last heartbeat the database confirmed (timed from when it
  // was sent); past that the lease is proved again first, and a lost one sends nothing.
  let confirmedAt = performance.now()
  let confirming: Promise<boolean> | undefined
  // Set once every event has settled: what is left (the fenced terminal write, then the completion
  // event) needs no heartbeat, and a heartbeat that finds the job finished by us is no lost lease.
  let drained = false
  const beat = async (): Promise<boolean> => {
    const sentAt = performance.now()
    try {
      const result = await heartbeatJob(pool, lease)
      if (result.leaseLost) {
        if (!drained) leaseLost.abort()
        return false
      }
      confirmedAt = Math.max(confirmedAt, sentAt)
      if (result.cancelRequested) {
        cancelRequested = true
        stopSending.abort()
      }
      return true
    } catch (error) {
      // The database stayed down through every retry: we can no longer prove we own the job.
      databaseDown = error
      leaseLost.abort()
      return false
    }
  }
  const leaseHeld = (): boolean | Promise<boolean> => {
    if (leaseLost.signal.aborted) return false
    if (drained) return true
    if (performance.now() - confirmedAt < options.staleAfterMs - options.heartbeatMs) return true
    confirming ??= beat().finally(() => (confirming = undefined))
    return confirming
  }
  const heartbeat = setInterval(() => {
    if (!drained) void beat()
  }, options.heartbeatMs)

  const counters: Counters = {scanned: 0, matched: 0, delivered: 0, duplicates: 0, failed: 0}
  const progress: JobProgress = {
    ...counters, jobId: job.id, webhookId: job.webhookId, phase: 'planning',
    partition: job.partition, startOffset: job.startOffset, checkpointOffset: job.checkpointOffset, endOffset: job.endOffset, inFlight: 0,
  }
  const report = (update: Partial<JobProgress>) => {
    Object.assign(progress, counters, update)
    options.onProgress?.(progress)
  }

  let client: WebhookClient | undefined
  try {
    const webhook = await getWebhook(pool, job.webhookId)
    if (webhook.state === 'invalid') {
      return await finishFailed(pool, lease, job, undefined, `webhook ${webhook.id} is marked invalid (${webhook.invalidReason ?? 'failed check'}); fix the endpoint, run \`replayctl webhook check ${webhook.id}\`, then \`replayctl replay retry ${job.id}\``, counters)
    }
    const planned = await plan(settings, pool, lease, job, options.partitioner)
    const {partition, startOffset, endOffset} = planned
    try {
      client = await WebhookClient.create({
        url: webhook.url, secret: webhook.secret ?? '', jobId: String(job.id),
        timeoutMs: options.timeoutMs, retry: options.retry, maxConnections: Math.max(options.maxInFlight, 1),
        rateLimit: options.rateLimit, signal: AbortSignal.any([leaseLost.signal, stopSending.signal]), allowPrivate: options.allowPrivate,
        beforeRequest: leaseHeld,
        // The planned partition: on a job's first run job.partition is still null.
        source: {topic: job.topic, partition},
      })
    } catch (error) {
      if (error instanceof UserError && error.code === 'TARGET_NOT_ALLOWED') return await finishFailed(pool, lease, job, undefined, error.line, counters)
      throw error
    }
    const resumeAt = planned.checkpointOffset ?? startOffset
    report({partition, startOffset, endOffset, checkpointOffset: resumeAt})
    const key = Buffer.from(job.webhookId, 'utf8')
    const wanted = (message: Message) =>
      message.key !== undefined && message.key !== null && key.equals(message.key as Buffer) &&
      message.timestamp !== undefined && message.timestamp >= job.fromMs && message.timestamp < job.toMs
    // Grown as events arrive: sizing it by the offset range would overstate a quiet webhook's needs.
    const dedup = new DedupCache()

    if (resumeAt > startOffset) {
      report({phase: 'rebuilding'})
      for await (const batch of readRanges(settings, job.topic, [{partition, start: startOffset, end: resumeAt}], {signal: stopReading})) {
        for (const message of batch) {
          counters.scanned++
          if (!wanted(message)) continue
          counters.matched++
          if (dedup.addIfNew(eventKey(message.value, message.headers as never))) counters.delivered++
          else counters.duplicates++
        }
      }
    }

    report({phase: 'delivering'})
    const window = new OrderedDelivery(client, {startOffset: resumeAt, maxInFlight: options.maxInFlight})
    const delivering = () => ({checkpointOffset: window.checkpoint, inFlight: window.stats.inFlight, delivered: counters.delivered + window.stats.delivered})
    let lastSave = Date.now()
    const save = async () => {
      lastSave = Date.now()
      const now = delivering()
      await checkpointJob(pool, {...lease, checkpointOffset: now.checkpointOffset, counters: {...counters, delivered: now.delivered}})
      // Watchers (dashboard, metrics) see progress at least as often as the database does.
      report(now)
    }
    reading: for await (const batch of readRanges(settings, job.topic, [{partition, start: resumeAt, end: endOffset}], {signal: stopReading})) {
      for (const message of batch) {
        counters.scanned++
        if (!wanted(message)) {
          window.scanned(message.offset + 1)
          continue
        }
        counters.matched++
        const hash = eventKey(message.value, message.headers as never)
        if (!dedup.addIfNew(hash)) {
          counters.duplicates++
          window.scanned(message.offset + 1)
          continue
        }
        if (!(await window.push({offset: message.offset, body: message.value ?? Buffer.alloc(0), hash, headers: message.headers as never}))) break reading
        // Inside the batch too: a slow webhook can take far longer than the interval per batch, and
        // the interval bounds what a crash makes us deliver twice.
        if (Date.now() - lastSave >= options.checkpointMs) await save()
      }
      if (Date.now() - lastSave >= options.checkpointMs) await save()
      else report(delivering())
    }
    // Offsets up to the end held nothing for this webhook (or were compacted away).
    if (!stopReading.aborted && !window.stopped) window.scanned(endOffset)
    const result = await window.drain()
    drained = true
    counters.delivered += result.delivered
    counters.failed = result.failure ? 1 : 0
    report({phase: 'finishing', checkpointOffset: result.checkpoint, inFlight: 0})

    if (leaseLost.signal.aborted || result.aborted && !cancelRequested && !options.shutdown.aborted) {
      if (databaseDown) throw databaseDown
      return 'LEASE_LOST'
    }
    const progressNow = {checkpointOffset: result.checkpoint, counters}
    if (result.failure) {
      if (result.failure.gone) await markInvalid(pool, job.webhookId, `410 Gone during replay job ${job.id}`)
      const reason = `could not deliver offset ${result.failure.failedAt} after ${result.failure.attempts} attempt(s): ${result.failure.reason}`
      return await finishFailed(pool, lease, job, result.failure.gone ? undefined : client, reason, counters, result.checkpoint)
    }
    if (cancelRequested) {
      await markCancelled(pool, {...lease, ...progressNow})
      return 'CANCELLED'
    }
    if (options.shutdown.aborted) {
      return (await releaseJob(pool, {...lease, ...progressNow})) === 'CANCELLED' ? 'CANCELLED' : 'RELEASED'
    }
    await completeJob(pool, {...lease, checkpointOffset: endOffset, counters})
    await sendCompletion(pool, lease, client, job, 'Complete', `replayed ${counters.delivered} events (${counters.duplicates} duplicates dropped) from ${job.topic}[${partition}] offsets ${startOffset}..${endOffset}`)
    return 'COMPLETED'
  } catch (error) {
    if (error instanceof LeaseLostError) return 'LEASE_LOST'
    if (leaseLost.signal.aborted && !databaseDown) return 'LEASE_LOST'
    if (databaseDown || (error instanceof UserError && error.code === 'DATABASE_UNAVAILABLE')) throw databaseDown ?? error
    // Kafka unreachable, topic gone, ...: give the job back with the reason; it is retried while
    // attempts remain and ends FAILED after that.
    const reason = error instanceof UserError ? error.line : (error as Error).message
    const state = await failJob(pool, {...lease, error: reason, counters, retryInMs: 5000}).catch((writeError) => {
      if (writeError instanceof LeaseLostError) return 'LEASE_LOST' as const
      throw writeError
    })
    return state === 'OPEN' ? 'RETRY_LATER' : state === 'LEASE_LOST' ? 'LEASE_LOST' : state
  } finally {
    clearInterval(heartbeat)
    options.force.removeEventListener('abort', onForce)
    await client?.close().catch(() => {})
  }
}

interface Plan {
  partition: number
  startOffset: number
  endOffset: number
  checkpointOffset: number | null
}

/** Where the job's events lie in the log, computed once and stored with the job (ONGOING). */
async function plan(settings: Settings, pool: Pool, lease: Lease, job: ReplayJob, partitioner: Partitioner): Promise<Plan> {
  if (job.partition !== null && job.partitionCount !== null && job.startOffset !== null && job.endOffset !== null) {
    const started = await startJob(pool, {...lease, partition: job.partition, partitionCount: job.partitionCount, startOffset: job.startOffset, endOffset: job.endOffset})
    return {partition: job.partition, startOffset: job.startOffset, endOffset: job.endOffset, checkpointOffset: started.checkpointOffset}
  }
  const {partitionCount, partition, startOffset, endOffset} = await withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, job.topic)
    const partitionCount = metadata.partitions.length
    const partition = partitionFor(job.webhookId, partitionCount, partitioner)
    const [[from], [to]] = await Promise.all([
      offsetsForTime(settings, admin, job.topic, [partition], job.fromMs),
      offsetsForTime(settings, admin, job.topic, [partition], job.toMs),
    ])
    return {partitionCount, partition, startOffset: from!.offset, endOffset: Math.max(from!.offset, to!.offset)}
  })
  const started = await startJob(pool, {...lease, partition, partitionCount, startOffset, endOffset})
  return {partition, startOffset, endOffset, checkpointOffset: started.checkpointOffset}
}

async function finishFailed(pool: Pool, lease: Lease, job: ReplayJob, client: WebhookClient | undefined, reason: string, counters: Counters, checkpointOffset?: number): Promise<JobOutcome> {
  const state = await failJob(pool, {...lease, error: reason, counters, ...(checkpointOffset === undefined ? {} : {checkpointOffset})})
  if (state === 'FAILED' && client) await sendCompletion(pool, lease, client, job, 'Incomplete', reason)
  return state === 'OPEN' ? 'RETRY_LATER' : state
}

/** Twitter's final replay_job_status event; a receiver that cannot take it does not change the job. */
async function sendCompletion(pool: Pool, lease: Lease, client: WebhookClient, job: ReplayJob, jobState: 'Complete' | 'Incomplete', description: string): Promise<void> {
  const sent = await sendCompletionEvent(client, {webhookId: job.webhookId, jobId: String(job.id), jobState, description})
  if (sent.outcome === 'delivered') await markCompletionSent(pool, lease)
}

