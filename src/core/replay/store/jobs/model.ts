import type {Pool, PoolConnection} from '../../../db/database.js'
import {BugError, UserError, invalidArgument, quoteInput} from '../../../shared/errors.js'

/**
 * The job store's model: its types, states, row mapping, fencing and argument checks, shared by
 * the operations (one file each).
 */
export const JOB_STATES = ['OPEN', 'STARTED', 'ONGOING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const
export type JobState = (typeof JOB_STATES)[number]
export const ACTIVE_STATES: readonly JobState[] = ['OPEN', 'STARTED', 'ONGOING']
export const TERMINAL_STATES: readonly JobState[] = ['COMPLETED', 'FAILED', 'CANCELLED']

export interface Counters {
  scanned: number
  matched: number
  delivered: number
  duplicates: number
  failed: number
}

/**
 * What a replay may have missed, in terms a customer can be told (no topics, partitions or
 * offsets): the range started before the oldest event still held, or a partition count changed at
 * a time not recorded. `unknown` is a note stored by a replayctl from before gaps were recorded.
 */
export type Gap = {kind: 'before-log'; heldFromMs: number} | {kind: 'partition-growth'} | {kind: 'unknown'}

/** A note on a job: the operator's sentence, and the gap it describes for the customer. */
export interface JobNote {
  text: string
  gap: Gap
}

/**
 * One partition a job reads, as planned: [startOffset, endOffset) and the checkpoint below which
 * every event of it was delivered (or read and not meant for delivery).
 */
export interface SourcePlan {
  topic: string
  partition: number
  partitionCount: number
  startOffset: number
  endOffset: number
  checkpointOffset: number
}

export interface ReplayJob extends Counters {
  id: number
  webhookId: string
  /** The first (or only) topic. */
  topic: string
  /** Every topic the job reads, merged in timestamp order (cross-datacenter copies); [topic] by default. */
  topics: string[]
  fromMs: number
  toMs: number
  /** Read on past `to` until the first record at or after to + lateGraceMs, keeping events in [from, to). */
  lateGraceMs: number
  state: JobState
  attempt: number
  maxAttempts: number
  owner: string | null
  heartbeatAt: string | null
  runAt: string
  partition: number | null
  partitionCount: number | null
  startOffset: number | null
  checkpointOffset: number | null
  endOffset: number | null
  /** The plan with one checkpoint per partition read; null before the first run plans it. */
  sources: SourcePlan[] | null
  /** What the replay may miss, in the operator's sentences (a partition count that changed at an unknown time, ...). */
  notes: string[]
  /** What each note means for the customer, in the same order: the completion event tells them. */
  gaps: Gap[]
  /** Submitted with --allow-partial: the range reaches before the oldest record the log still holds. */
  partial: boolean
  lastError: string | null
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  cancelRequested: boolean
  completionSent: boolean
  /** Where the latest run began delivering (ONGOING): rates are measured from here. */
  run: {startedAt: string; startDelivered: number; startCheckpoint: number | null} | null
}

/** A job as returned to the worker that claimed it: with the token its writes must carry. */
export interface ClaimedJob extends ReplayJob {
  leaseToken: string
}

/** Identifies the worker's lease in every fenced write. */
export interface Lease {
  id: number
  leaseToken: string
}

/** Progress a worker may save with any fenced write; absent fields keep their stored values. */
export interface Progress {
  checkpointOffset?: number
  sources?: SourcePlan[]
  counters?: Partial<Counters>
}

/**
 * This worker no longer owns the job: it was taken over after a missed heartbeat, retried, or
 * released. Not a UserError: the worker must stop delivering at once and let the new owner (or
 * nobody) carry on; nothing is wrong for the operator to fix.
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError'
  constructor(
    readonly jobId: number,
    readonly operation: string,
  ) {
    super(
      `lost the lease on replay job ${jobId} during ${operation}: ` +
        'another worker took it over, or it was retried or released',
    )
  }
}

const MAX_JOB_ID = Number.MAX_SAFE_INTEGER

/** A job id from the command line or a caller: a positive integer, nothing else. */
export function parseJobId(input: string | number): number {
  const text = String(input).trim()
  const id = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_JOB_ID) {
    throw invalidArgument(
      `${quoteInput(String(input))} is not a job id`,
      'pass the positive integer id shown by `replayctl replay list`',
    )
  }
  return id
}

export function parseJobState(input: string): JobState {
  const state = input.trim().toUpperCase()
  if (!(JOB_STATES as readonly string[]).includes(state)) {
    throw invalidArgument(`${quoteInput(input)} is not a job state`, `use one of ${JOB_STATES.join(', ')}`)
  }
  return state as JobState
}

export function jobNotFound(id: number): UserError {
  return new UserError('JOB_NOT_FOUND', `no replay job ${id}`, 'list jobs with `replayctl replay list`')
}

export interface JobRow {
  id: number | string
  webhook_id: string
  topic: string
  topics: string | null
  from_ms: number | string
  to_ms: number | string
  late_grace_ms: number | string
  state: JobState
  attempt: number
  max_attempts: number
  lease_token: string | null
  owner: string | null
  heartbeat_at: Date | null
  run_at: Date
  partition: number | null
  partition_count: number | null
  start_offset: number | string | null
  checkpoint_offset: number | string | null
  end_offset: number | string | null
  sources: string | null
  notes: string | null
  partial: number
  scanned: number | string
  matched: number | string
  delivered: number | string
  duplicates: number | string
  failed: number | string
  last_error: string | null
  created_at: Date
  started_at: Date | null
  finished_at: Date | null
  cancel_requested: number
  completion_sent: number
  run_started_at: Date | null
  run_start_delivered: number | string | null
  run_start_checkpoint: number | string | null
}

const num = (value: number | string): number => Number(value)
const numOrNull = (value: number | string | null): number | null => (value === null ? null : Number(value))
const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString())

/** The notes column: JSON notes with their gaps; a plain sentence is one stored before gaps were. */
function storedNotes(row: JobRow): JobNote[] {
  const stored = row.notes === null ? [] : (JSON.parse(row.notes) as Array<string | JobNote>)
  return stored.map((note) => (typeof note === 'string' ? {text: note, gap: {kind: 'unknown'}} : note))
}

export function toJob(row: JobRow): ReplayJob {
  return {
    id: num(row.id),
    webhookId: row.webhook_id,
    topic: row.topic,
    topics: row.topics === null ? [row.topic] : (JSON.parse(row.topics) as string[]),
    fromMs: num(row.from_ms),
    toMs: num(row.to_ms),
    lateGraceMs: num(row.late_grace_ms),
    state: row.state,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    owner: row.owner,
    heartbeatAt: iso(row.heartbeat_at),
    runAt: row.run_at.toISOString(),
    partition: row.partition,
    partitionCount: row.partition_count,
    startOffset: numOrNull(row.start_offset),
    checkpointOffset: numOrNull(row.checkpoint_offset),
    endOffset: numOrNull(row.end_offset),
    sources: row.sources === null ? null : (JSON.parse(row.sources) as SourcePlan[]),
    notes: storedNotes(row).map((note) => note.text),
    gaps: storedNotes(row).map((note) => note.gap),
    partial: row.partial !== 0,
    scanned: num(row.scanned),
    matched: num(row.matched),
    delivered: num(row.delivered),
    duplicates: num(row.duplicates),
    failed: num(row.failed),
    lastError: row.last_error,
    createdAt: row.created_at.toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    cancelRequested: row.cancel_requested !== 0,
    completionSent: row.completion_sent !== 0,
    run:
      row.run_started_at === null
        ? null
        : {
            startedAt: row.run_started_at.toISOString(),
            startDelivered: numOrNull(row.run_start_delivered) ?? 0,
            startCheckpoint: numOrNull(row.run_start_checkpoint),
          },
  }
}

// Every column but the generated one, which is an implementation detail of the unique rule.
export const JOB_COLUMNS = `id, webhook_id, topic, topics, from_ms, to_ms, late_grace_ms, state, attempt, max_attempts,
  lease_token, owner, heartbeat_at, run_at, \`partition\`, partition_count, start_offset, checkpoint_offset, end_offset,
  sources, notes, partial,
  scanned, matched, delivered, duplicates, failed, last_error, created_at, started_at, finished_at,
  cancel_requested, completion_sent, run_started_at, run_start_delivered, run_start_checkpoint`

type Queryable = Pick<Pool, 'query'> | PoolConnection

export async function selectJob(db: Queryable, id: number): Promise<JobRow | undefined> {
  const [rows] = await db.query(`SELECT ${JOB_COLUMNS} FROM replay_jobs WHERE id = ?`, [id])
  return (rows as JobRow[])[0]
}

/** Worker-supplied numbers are trusted code, not operator input: a bad one is a bug. */
export function checkCount(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new BugError(`${what} must be a non-negative integer, got ${value}`)
  return value
}

export function checkLease(lease: Lease): void {
  if (!Number.isSafeInteger(lease.id) || lease.id < 1)
    throw new BugError(`job id must be a positive integer, got ${lease.id}`)
  if (typeof lease.leaseToken !== 'string' || !/^[0-9a-f]{32}$/.test(lease.leaseToken))
    throw new BugError('lease token must be the 32 hex characters returned by claimJob')
}

const COUNTER_NAMES = [
  'scanned',
  'matched',
  'delivered',
  'duplicates',
  'failed',
] as const satisfies readonly (keyof Counters)[]

/**
 * SET fragment and values saving optional progress; absent fields keep what is stored. The SQL
 * text is fixed, only the values vary. Counters are absolute totals (not increments), so a write
 * retried after a lost reply does not count twice.
 */
export function progressSet(progress: Progress): {sql: string; values: (number | string | null)[]} {
  const values: (number | string | null)[] = [
    progress.checkpointOffset === undefined ? null : checkCount(progress.checkpointOffset, 'checkpointOffset'),
  ]
  for (const name of COUNTER_NAMES) {
    const value = progress.counters?.[name]
    values.push(value === undefined ? null : checkCount(value, `counters.${name}`))
  }
  values.push(progress.sources == null ? null : sourcesJson(progress.sources))
  return {
    sql:
      'checkpoint_offset = COALESCE(?, checkpoint_offset), ' +
      COUNTER_NAMES.map((name) => `${name} = COALESCE(?, ${name})`).join(', ') +
      ', sources = COALESCE(?, sources)',
    values,
  }
}

/** The sources column: checked like every worker-supplied number. */
export function sourcesJson(sources: SourcePlan[]): string {
  if (sources.length === 0) throw new BugError('a job reads at least one source')
  for (const source of sources) {
    for (const name of ['partition', 'partitionCount', 'startOffset', 'endOffset', 'checkpointOffset'] as const)
      checkCount(source[name], `sources.${name}`)
  }
  return JSON.stringify(
    sources.map(({topic, partition, partitionCount, startOffset, endOffset, checkpointOffset}) => ({
      topic,
      partition,
      partitionCount,
      startOffset,
      endOffset,
      checkpointOffset,
    })),
  )
}

/**
 * A fenced UPDATE: applies only while the caller still holds the lease and the job is in one of
 * `states`; otherwise throws LeaseLostError. mysql2 reports matched (not changed) rows, so a write
 * that sets the same values still counts as held.
 */
export async function fencedUpdate(
  db: Queryable,
  operation: string,
  lease: Lease,
  set: string,
  values: unknown[],
  states: readonly JobState[],
): Promise<void> {
  checkLease(lease)
  const [result] = await db.query(`UPDATE replay_jobs SET ${set} WHERE id = ? AND lease_token = ? AND state IN (?)`, [
    ...values,
    lease.id,
    lease.leaseToken,
    states,
  ])
  if ((result as {affectedRows: number}).affectedRows === 0) throw new LeaseLostError(lease.id, operation)
}

/** The JOB_IN_PROGRESS error for a webhook, naming its active job when it can be seen. */
export async function jobInProgress(pool: Pool, webhookId: string): Promise<UserError> {
  let active: {id: number; state: string} | undefined
  try {
    const [rows] = await pool.query('SELECT id, state FROM replay_jobs WHERE active_webhook_id = ?', [webhookId])
    active = (rows as {id: number; state: string}[])[0]
  } catch {
    // The message below still holds without the id.
  }
  return new UserError(
    'JOB_IN_PROGRESS',
    'A replay job is already in progress for this webhook',
    active
      ? `job ${active.id} (${active.state}) is active for '${webhookId}'; ` +
          `wait for it to finish or cancel it with \`replayctl replay cancel ${active.id}\``
      : `another job for '${webhookId}' was just submitted; ` +
          `see \`replayctl replay list --webhook-id ${webhookId}\`, ` +
          'and cancel it with `replayctl replay cancel <id>`',
  )
}
