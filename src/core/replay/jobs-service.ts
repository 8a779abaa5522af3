import {dbNow, withDatabase, type Pool} from '../db/database.js'
import {UserError} from '../shared/errors.js'
import {checkRangeOrder, getJob, submitJob, TERMINAL_STATES, type ReplayJob} from './jobs/index.js'
import type {Settings} from '../shared/settings.js'
import {isoTime} from '../shared/time.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'
import {getWebhook} from '../webhooks/store.js'

/**
 * Replay requests as Twitter's Replay API validates them, each failure with its own code:
 *   REPLAY_RANGE_INVALID  from is not before to                    (Twitter 400/356)
 *   REPLAY_TO_IN_FUTURE   to is in the future                       (Twitter 400/368)
 *   REPLAY_FROM_TOO_OLD   from is older than the topic's retention  (Twitter 400/356)
 *   WEBHOOK_NOT_FOUND     no such webhook                           (Twitter 404/34)
 *   WEBHOOK_INVALID       the webhook failed its last check or 410  (Twitter 400/214)
 *   JOB_IN_PROGRESS       a job is already active for the webhook   (Twitter 409/355)
 * and the job's progress as an operator reads it.
 */
export interface SubmitReplayOptions {
  webhookId: string
  fromMs: number
  toMs: number
  topic: string
  retentionMs: number
  maxAttempts?: number
}

export async function submitReplay(settings: Settings, options: SubmitReplayOptions): Promise<ReplayJob> {
  return withDatabase(settings, (pool) =>
    submitReplayOn(pool, (topic) => withAdmin(settings, (admin) => topicMetadata(settings, admin, topic)), options))
}

/**
 * submitReplay on an open pool, for long-running servers that keep their connections: `checkTopic`
 * throws TOPIC_NOT_FOUND (or KAFKA_UNAVAILABLE) when the topic cannot be replayed from.
 */
export async function submitReplayOn(pool: Pool, checkTopic: (topic: string) => Promise<unknown>, options: SubmitReplayOptions): Promise<ReplayJob> {
  const now = await dbNow(pool)
  checkRangeOrder(options.fromMs, options.toMs)
  if (options.toMs > now) {
    throw new UserError('REPLAY_TO_IN_FUTURE', `to_date ${isoTime(options.toMs)} is in the future`, 'replay only what has happened: give a --to of now or earlier')
  }
  // A minute of slack, Twitter's granularity: `--from 5d` is taken a moment before the check.
  if (options.fromMs < now - options.retentionMs - 60_000) {
    const days = Math.round(options.retentionMs / 86_400_000 * 10) / 10
    throw new UserError('REPLAY_FROM_TOO_OLD', `from_date must be within the past ${days} days (the topic's retention); got ${isoTime(options.fromMs)}`, `give a --from after ${isoTime(now - options.retentionMs)}`)
  }
  const webhook = await getWebhook(pool, options.webhookId)
  if (webhook.state === 'invalid') {
    throw new UserError('WEBHOOK_INVALID', `webhook ${webhook.id} is marked invalid (${webhook.invalidReason ?? 'its last check failed'})`, `fix the endpoint and run \`replayctl webhook check ${webhook.id}\` first`)
  }
  await checkTopic(options.topic)
  return submitJob(pool, {webhookId: options.webhookId, topic: options.topic, fromMs: options.fromMs, toMs: options.toMs, maxAttempts: options.maxAttempts})
}

export interface JobStatus extends ReplayJob {
  /** Seconds since the last heartbeat, by the database clock; null when none yet. */
  heartbeatAgeSeconds: number | null
  /** Share of the offset range below the checkpoint, 0..100; null before the range is known. */
  progressPercent: number | null
  /** Delivered events per second: between two --watch samples, else over the latest run since it began delivering. */
  eventsPerSecond: number | null
  /** Seconds to the end at the current pace; null when unknown. */
  etaSeconds: number | null
  terminal: boolean
}

export async function jobStatus(pool: Pool, id: number, previous?: {job: JobStatus; at: number}): Promise<JobStatus> {
  const [job, now] = await Promise.all([getJob(pool, id), dbNow(pool)])
  const terminal = TERMINAL_STATES.includes(job.state)
  const range = job.startOffset !== null && job.endOffset !== null ? job.endOffset - job.startOffset : null
  const done = job.checkpointOffset !== null && job.startOffset !== null ? job.checkpointOffset - job.startOffset : null
  const progressPercent = range === null || done === null ? null : range === 0 ? 100 : Math.min(100, (done / range) * 100)

  // Rates cover delivery only: the recent interval under --watch, else the latest run from its
  // start of delivery, never the time the job sat queued or between attempts (none while it waits).
  let eventsPerSecond: number | null = null
  let offsetsPerSecond: number | null = null
  if (previous && now > previous.at && !terminal) {
    const seconds = (now - previous.at) / 1000
    eventsPerSecond = Math.max(0, job.delivered - previous.job.delivered) / seconds
    offsetsPerSecond = Math.max(0, (job.checkpointOffset ?? 0) - (previous.job.checkpointOffset ?? 0)) / seconds
  } else if (job.run && (job.state === 'ONGOING' || terminal)) {
    const seconds = ((job.finishedAt ? Date.parse(job.finishedAt) : now) - Date.parse(job.run.startedAt)) / 1000
    if (seconds > 0) {
      eventsPerSecond = Math.max(0, job.delivered - job.run.startDelivered) / seconds
      offsetsPerSecond = job.checkpointOffset === null || job.run.startCheckpoint === null ? null : Math.max(0, job.checkpointOffset - job.run.startCheckpoint) / seconds
    }
  }
  const etaSeconds = terminal || range === null || done === null || !offsetsPerSecond ? null : Math.max(0, (range - done) / offsetsPerSecond)
  return {
    ...job,
    heartbeatAgeSeconds: job.heartbeatAt ? Math.max(0, (now - Date.parse(job.heartbeatAt)) / 1000) : null,
    progressPercent,
    eventsPerSecond,
    etaSeconds,
    terminal,
  }
}

/** Polls a job until it reaches COMPLETED, FAILED or CANCELLED. */
export async function followJob(settings: Settings, id: number, onUpdate: (status: JobStatus) => void, intervalMs = 1000): Promise<JobStatus> {
  return withDatabase(settings, async (pool) => {
    let previous: {job: JobStatus; at: number} | undefined
    for (;;) {
      const status = await jobStatus(pool, id, previous)
      onUpdate(status)
      if (status.terminal) return status
      previous = {job: status, at: await dbNow(pool)}
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
  })
}
