import {withRetry, type Pool} from '../../../db/database.js'
import {invalidArgument, quoteInput} from '../../../shared/errors.js'
import {validateWebhookId} from '../../../webhooks/store.js'
import {JOB_COLUMNS, type JobRow, type JobState, parseJobState, type ReplayJob, toJob} from './model.js'

export interface ListJobsOptions {
  state?: JobState | string
  webhookId?: string
  /** 1..1000, default 50; a string is parsed (from the command line) */
  limit?: number | string
}

export const MAX_LIST_LIMIT = 1000

/** Checks the filters (usable before connecting); returns them normalised. */
export function checkListJobsOptions(options: ListJobsOptions): {state?: JobState; webhookId?: string; limit: number} {
  const given = options.limit ?? 50
  const limit = typeof given === 'number' ? given : /^\s*[0-9]{1,16}\s*$/.test(given) ? Number(given) : Number.NaN
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalidArgument(
      `limit ${quoteInput(String(given))} is not a whole number from 1 to ${MAX_LIST_LIMIT}`,
      `pass --limit 1 to --limit ${MAX_LIST_LIMIT}`,
    )
  }
  if (options.webhookId !== undefined) validateWebhookId(options.webhookId)
  return {
    state: options.state === undefined ? undefined : parseJobState(options.state),
    webhookId: options.webhookId,
    limit,
  }
}

/** Jobs newest first, optionally of one state and/or one webhook. */
export async function listJobs(pool: Pool, options: ListJobsOptions = {}): Promise<ReplayJob[]> {
  const {state, webhookId, limit} = checkListJobsOptions(options)
  const where: string[] = []
  const values: unknown[] = []
  if (state !== undefined) {
    where.push('state = ?')
    values.push(state)
  }
  if (webhookId !== undefined) {
    where.push('webhook_id = ?')
    values.push(webhookId)
  }
  const filter = where.length ? ` WHERE ${where.join(' AND ')}` : ''
  const sql = `SELECT ${JOB_COLUMNS} FROM replay_jobs${filter} ORDER BY id DESC LIMIT ?`
  const [rows] = await withRetry(pool, () => pool.query(sql, [...values, limit]))
  return (rows as JobRow[]).map(toJob)
}
