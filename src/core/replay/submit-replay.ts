import {dbNow, withDatabase, type Pool} from '../db/database.js'
import {BugError, UserError} from '../shared/errors.js'
import {checkRangeOrder, submitJob, type JobNote, type ReplayJob} from './store/jobs/index.js'
import type {Settings} from '../shared/settings.js'
import {isoTime} from '../shared/time.js'
import type {AdminClient} from '../kafka/client.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'
import {oldestRecords, type OldestRecord} from '../kafka/offsets.js'
import {type Partitioner, partitionFor} from '../kafka/partitioner.js'
import {recordPartitionCount} from './store/partition-history/index.js'
import {getWebhook} from '../webhooks/store.js'

/**
 * Replay requests as Twitter's Replay API validates them, each failure with its own code:
 *   REPLAY_RANGE_INVALID  from is not before to                    (Twitter 400/356)
 *   REPLAY_TO_IN_FUTURE   to is in the future                       (Twitter 400/368)
 *   REPLAY_FROM_TOO_OLD   from is older than the topic's retention  (Twitter 400/356)
 *   REPLAY_FROM_BEFORE_LOG  from is before the oldest record the webhook's partition still holds
 *                         (unless allowPartial: the job is then marked partial)
 *   WEBHOOK_NOT_FOUND     no such webhook                           (Twitter 404/34)
 *   WEBHOOK_INVALID       the webhook failed its last check or 410  (Twitter 400/214)
 *   JOB_IN_PROGRESS       a job is already active for the webhook   (Twitter 409/355)
 * A request that passes becomes an OPEN job (store/jobs submitJob).
 */
export interface SubmitReplayOptions {
  webhookId: string
  fromMs: number
  toMs: number
  topic: string
  /**
   * Other datacenters' copies of the log, read with `topic` as one (merged in timestamp order, duplicates dropped
   * across them).
   */
  moreTopics?: string[]
  retentionMs: number
  /** How delivery_log was partitioned (default murmur2): which partition holds the webhook's events. */
  partitioner?: Partitioner
  /** Accept a range reaching before the oldest record the log still holds; the job records that it is partial. */
  allowPartial?: boolean
  /** Read past `to` for events appended late (see the README); default DEFAULT_LATE_GRACE_MS. */
  lateGraceMs?: number
  maxAttempts?: number
}

/**
 * Five minutes: cross-datacenter mirroring and a producer's retries append an event seconds to a
 * minute after its CreateTime, so five minutes catches them with room; it costs reading five
 * minutes more of the partition (filtered by time), small beside a replay range of hours.
 */
export const DEFAULT_LATE_GRACE_MS = 5 * 60_000

export async function submitReplay(settings: Settings, options: SubmitReplayOptions): Promise<ReplayJob> {
  return withDatabase(settings, (pool) =>
    withAdmin(settings, (admin) => submitReplayOn(pool, logView(settings, admin), options)),
  )
}

/** What submitting needs to know of the log: asked of Kafka, or of a server's short-lived cache. */
export interface ReplayLogView {
  /** The topic's partition count; throws TOPIC_NOT_FOUND or KAFKA_UNAVAILABLE. */
  partitionCount(topic: string): Promise<number>
  /** The oldest record one partition still holds. */
  oldestRecord(topic: string, partition: number): Promise<OldestRecord>
}

export function logView(settings: Settings, admin: AdminClient): ReplayLogView {
  return {
    partitionCount: async (topic) => (await topicMetadata(settings, admin, topic)).partitions.length,
    oldestRecord: async (topic, partition) => {
      const [oldest] = await oldestRecords(settings, admin, topic, [partition])
      if (!oldest) throw new BugError(`no oldest record answered for ${topic}-${partition}`)
      return oldest
    },
  }
}

/** submitReplay on an open pool and log view, for long-running servers that keep their connections. */
export async function submitReplayOn(pool: Pool, log: ReplayLogView, options: SubmitReplayOptions): Promise<ReplayJob> {
  const now = await dbNow(pool)
  checkRangeOrder(options.fromMs, options.toMs)
  if (options.toMs > now) {
    throw new UserError(
      'REPLAY_TO_IN_FUTURE',
      `to_date ${isoTime(options.toMs)} is in the future`,
      'replay only what has happened: give a --to of now or earlier',
    )
  }
  // A minute of slack, Twitter's granularity: `--from 5d` is taken a moment before the check.
  if (options.fromMs < now - options.retentionMs - 60_000) {
    const days = Math.round((options.retentionMs / 86_400_000) * 10) / 10
    throw new UserError(
      'REPLAY_FROM_TOO_OLD',
      `from_date must be within the past ${days} days (the topic's retention); got ${isoTime(options.fromMs)}`,
      `give a --from after ${isoTime(now - options.retentionMs)}`,
    )
  }
  const webhook = await getWebhook(pool, options.webhookId)
  if (webhook.state === 'invalid') {
    throw new UserError(
      'WEBHOOK_INVALID',
      `webhook ${webhook.id} is marked invalid (${webhook.invalidReason ?? 'its last check failed'})`,
      `fix the endpoint and run \`replayctl webhook check ${webhook.id}\` first`,
    )
  }
  const topics = [options.topic, ...(options.moreTopics ?? [])]
  const held = await Promise.all(
    topics.map(async (topic) => {
      const partitionCount = await log.partitionCount(topic)
      // Each topic's partition count as of now: a later growth is then placed in time (store/partition-history/).
      await recordPartitionCount(pool, topic, partitionCount)
      const partition = partitionFor(options.webhookId, partitionCount, options.partitioner ?? 'murmur2')
      return {topic, partition, oldest: await log.oldestRecord(topic, partition)}
    }),
  )
  const partial = checkLogStart(options, held, now)
  return submitJob(pool, {
    partial,
    webhookId: options.webhookId,
    topic: options.topic,
    moreTopics: options.moreTopics,
    lateGraceMs: options.lateGraceMs ?? DEFAULT_LATE_GRACE_MS,
    fromMs: options.fromMs,
    toMs: options.toMs,
    maxAttempts: options.maxAttempts,
  })
}

/**
 * What the log no longer holds: retention (or delete-records) has removed the start of the
 * webhook's partition, so events before its oldest record cannot be replayed. Refused with the
 * oldest time available, or (allowPartial) accepted and recorded on the job as partial.
 */
function checkLogStart(
  options: SubmitReplayOptions,
  held: Array<{topic: string; partition: number; oldest: OldestRecord}>,
  now: number,
): JobNote | undefined {
  const truncated = held
    // Only a partition whose start was removed (low watermark above 0) lacks anything: one that
    // still starts at offset 0 holds every event ever written to it. One that holds nothing any
    // more lost everything up to now.
    .filter(({oldest}) => oldest.low > 0)
    .map(({topic, partition, oldest}) => ({where: `${topic}[${partition}]`, oldestMs: oldest.timestamp ?? now}))
    .filter((entry) => options.fromMs < entry.oldestMs)
  if (truncated.length === 0) return undefined
  const latest = truncated.reduce((a, b) => (b.oldestMs > a.oldestMs ? b : a))
  const what = `the oldest event still in ${latest.where} is from ${isoTime(latest.oldestMs)}`
  if (!options.allowPartial) {
    throw new UserError(
      'REPLAY_FROM_BEFORE_LOG',
      `from_date ${isoTime(options.fromMs)} is before what the log still holds: ${what}`,
      `give a --from at or after ${isoTime(latest.oldestMs)}, or pass --allow-partial to replay what is left`,
    )
  }
  return {
    text:
      `partial replay: events before ${isoTime(latest.oldestMs)} are no longer in the log ` +
      `(${what}; --from was ${isoTime(options.fromMs)})`,
    gap: {kind: 'before-log', heldFromMs: latest.oldestMs},
  }
}
