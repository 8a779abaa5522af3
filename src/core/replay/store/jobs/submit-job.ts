import {mysqlErrorCode, withRetry, type Pool} from '../../../db/database.js'
import {BugError, UserError, invalidArgument} from '../../../shared/errors.js'
import {isoTime} from '../../../shared/time.js'
import {validateTopicName} from '../../../kafka/topics.js'
import {validateWebhookId, webhookNotFound} from '../../../webhooks/store.js'
import {getJob} from './get-job.js'
import {jobInProgress, type JobNote, type ReplayJob} from './model.js'

export interface SubmitJobInput {
  webhookId: string
  topic: string
  /** More topics to read besides `topic` (cross-datacenter copies of the same log). */
  moreTopics?: string[]
  /** inclusive, epoch ms */
  fromMs: number
  /** exclusive, epoch ms */
  toMs: number
  /** How far past `to` (by record time) to read for late-appended events; default 0. */
  lateGraceMs?: number
  /** The range reaches before what the log holds, and the operator accepted that; with why. */
  partial?: JobNote
  /** default 5 */
  maxAttempts?: number
  /** not before this time (epoch ms); default now, by the database clock */
  runAtMs?: number
}

/** A day: past that the grace reads more than it could find (a late copy is minutes late, not days). */
export const MAX_LATE_GRACE_MS = 86_400_000

// The largest time a JS Date can hold.
const MAX_TIME_MS = 8_640_000_000_000_000

/**
 * Queues an OPEN job. The database decides both rules atomically: the foreign key rejects an
 * unknown webhook (WEBHOOK_NOT_FOUND) and the unique key on active_webhook_id rejects a second
 * active job for the same webhook (JOB_IN_PROGRESS), however many submitters race.
 *
 * Range policy (minute granularity, the last 5 days, not in the future) is the submit command's;
 * here only what would make a row meaningless is refused.
 */
/** Twitter's 400/356: the range must not be empty (to is exclusive). */
export function checkRangeOrder(fromMs: number, toMs: number): void {
  if (fromMs >= toMs) {
    throw new UserError(
      'REPLAY_RANGE_INVALID',
      `from_date must be before to_date (got ${isoTime(fromMs)} to ${isoTime(toMs)})`,
      'give an end time after the start time; the end is exclusive',
    )
  }
}

export async function submitJob(pool: Pool, input: SubmitJobInput): Promise<ReplayJob> {
  validateWebhookId(input.webhookId)
  validateTopicName(input.topic)
  const topics = [input.topic, ...(input.moreTopics ?? [])]
  for (const topic of topics) validateTopicName(topic)
  if (new Set(topics).size !== topics.length)
    throw invalidArgument(`a topic is named twice in ${topics.join(', ')}`, 'name each topic once')
  const isTime = (ms: number | undefined) =>
    ms === undefined || (Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_TIME_MS)
  if (!isTime(input.fromMs) || !isTime(input.toMs) || !isTime(input.runAtMs)) {
    throw new BugError(
      `replay times must be non-negative integer epoch ms, got ${input.fromMs}..${input.toMs} run at ${input.runAtMs}`,
    )
  }
  checkRangeOrder(input.fromMs, input.toMs)
  const lateGraceMs = input.lateGraceMs ?? 0
  if (!Number.isSafeInteger(lateGraceMs) || lateGraceMs < 0 || lateGraceMs > MAX_LATE_GRACE_MS) {
    throw invalidArgument(`late grace of ${lateGraceMs} ms is out of range`, 'give a duration from 0 to 1d')
  }
  const maxAttempts = input.maxAttempts ?? 5
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
    throw invalidArgument(`max attempts ${maxAttempts} is out of range`, 'give a whole number from 1 to 1000')
  }
  const runAt = input.runAtMs === undefined ? null : new Date(input.runAtMs)

  // A refused INSERT still uses up an AUTO_INCREMENT id, so the common refusal (a job is active)
  // is found by a read first: refused submits leave no gaps in job ids. The keys below still
  // decide a race between submitters.
  const [active] = await withRetry(pool, () =>
    pool.query('SELECT 1 FROM replay_jobs WHERE active_webhook_id = ?', [input.webhookId]),
  )
  if ((active as unknown[]).length > 0) throw await jobInProgress(pool, input.webhookId)

  let insertId: number
  try {
    // Not idempotent: if the reply to a committed INSERT is lost, the retry reports JOB_IN_PROGRESS
    // naming the job this call created. Rare, and the operator sees the right job id.
    const [result] = await withRetry(pool, () =>
      pool.query(
        'INSERT INTO replay_jobs ' +
          '(webhook_id, topic, topics, from_ms, to_ms, late_grace_ms, partial, notes, max_attempts, run_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, NOW(3)))',
        [
          input.webhookId,
          input.topic,
          topics.length > 1 ? JSON.stringify(topics) : null,
          input.fromMs,
          input.toMs,
          lateGraceMs,
          input.partial ? 1 : 0,
          input.partial ? JSON.stringify([input.partial]) : null,
          maxAttempts,
          runAt,
        ],
      ),
    )
    insertId = Number((result as {insertId: number}).insertId)
  } catch (error) {
    const code = mysqlErrorCode(error)
    if (code === 'ER_DUP_ENTRY') throw await jobInProgress(pool, input.webhookId)
    if (code === 'ER_NO_REFERENCED_ROW_2' || code === 'ER_NO_REFERENCED_ROW') throw webhookNotFound(input.webhookId)
    throw error
  }
  return getJob(pool, insertId)
}
