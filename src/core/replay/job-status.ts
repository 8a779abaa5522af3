import {setTimeout as sleep} from 'node:timers/promises'

import {dbNow, withDatabase, type Pool} from '../db/database.js'
import type {Settings} from '../shared/settings.js'
import {getJob, TERMINAL_STATES, type ReplayJob} from './store/jobs/index.js'

/** A job's progress as an operator reads it (`replay status`, `replay submit --follow`, the API). */
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

/**
 * The offsets a job reads and how many of them lie below its checkpoint, over every partition it
 * reads (several topics, or a partition count that changed); null before its range is known.
 */
export function offsetProgress(job: ReplayJob): {range: number | null; done: number | null} {
  const range = job.sources
    ? job.sources.reduce((sum, source) => sum + source.endOffset - source.startOffset, 0)
    : job.startOffset !== null && job.endOffset !== null
      ? job.endOffset - job.startOffset
      : null
  const done = job.sources
    ? job.sources.reduce((sum, source) => sum + source.checkpointOffset - source.startOffset, 0)
    : job.checkpointOffset !== null && job.startOffset !== null
      ? job.checkpointOffset - job.startOffset
      : null
  return {range, done}
}

export async function jobStatus(pool: Pool, id: number, previous?: {job: JobStatus; at: number}): Promise<JobStatus> {
  const [job, now] = await Promise.all([getJob(pool, id), dbNow(pool)])
  const terminal = TERMINAL_STATES.includes(job.state)
  const {range, done} = offsetProgress(job)
  const progressPercent =
    range === null || done === null ? null : range === 0 ? 100 : Math.min(100, (done / range) * 100)

  // Rates cover delivery only: the recent interval under --watch, else the latest run from its
  // start of delivery, never the time the job sat queued or between attempts (none while it waits).
  let eventsPerSecond: number | null = null
  let offsetsPerSecond: number | null = null
  if (previous && now > previous.at && !terminal) {
    const seconds = (now - previous.at) / 1000
    eventsPerSecond = Math.max(0, job.delivered - previous.job.delivered) / seconds
    const passed = (status: ReplayJob) =>
      status.sources
        ? status.sources.reduce((sum, source) => sum + source.checkpointOffset, 0)
        : (status.checkpointOffset ?? 0)
    offsetsPerSecond = Math.max(0, passed(job) - passed(previous.job)) / seconds
  } else if (job.run && (job.state === 'ONGOING' || terminal)) {
    const seconds = ((job.finishedAt ? Date.parse(job.finishedAt) : now) - Date.parse(job.run.startedAt)) / 1000
    if (seconds > 0) {
      eventsPerSecond = Math.max(0, job.delivered - job.run.startDelivered) / seconds
      offsetsPerSecond =
        job.checkpointOffset === null || job.run.startCheckpoint === null
          ? null
          : Math.max(0, job.checkpointOffset - job.run.startCheckpoint) / seconds
    }
  }
  const etaSeconds =
    terminal || range === null || done === null || !offsetsPerSecond
      ? null
      : Math.max(0, (range - done) / offsetsPerSecond)
  return {
    ...job,
    heartbeatAgeSeconds: job.heartbeatAt ? Math.max(0, (now - Date.parse(job.heartbeatAt)) / 1000) : null,
    progressPercent,
    eventsPerSecond,
    etaSeconds,
    terminal,
  }
}

/** Polls a job until it reaches COMPLETED, FAILED or CANCELLED, or `signal` aborts (then its latest status). */
export async function followJob(
  settings: Settings,
  id: number,
  onUpdate: (status: JobStatus) => void,
  intervalMs = 1000,
  signal?: AbortSignal,
): Promise<JobStatus> {
  return withDatabase(settings, async (pool) => {
    let previous: {job: JobStatus; at: number} | undefined
    for (;;) {
      const status = await jobStatus(pool, id, previous)
      onUpdate(status)
      if (status.terminal || signal?.aborted) return status
      previous = {job: status, at: await dbNow(pool)}
      await sleep(intervalMs, undefined, {signal}).catch(() => {})
    }
  })
}
