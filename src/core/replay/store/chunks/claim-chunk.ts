import {randomBytes} from 'node:crypto'

import {lockFirstDue, withRetry, withTransaction, type Pool, type PoolConnection} from '../../../db/database.js'
import {CHUNK_COLUMNS, type ChunkKey, type ChunkRow, type ClaimedChunk, toChunk} from './model.js'

export interface ClaimChunkOptions {
  owner: string
  /** a SCANNING chunk claimed longer ago than this (database clock) is claimed again */
  staleAfterMs: number
  /** claim this chunk only (the job's owner helping with the chunk it needs next) */
  only?: ChunkKey
}

/**
 * Claims a chunk to scan, or returns null: an OPEN chunk, or a SCANNING one whose scanner went
 * quiet, of a job that is running, lowest job and offset first (the owner delivers in that order,
 * so the chunk it will need soonest is scanned first). FOR UPDATE SKIP LOCKED, on that chunk
 * alone, in one short READ COMMITTED transaction, like job claims; the job row itself is only read,
 * never locked, so its owner's checkpoints never wait on a scanner.
 */
export async function claimChunk(pool: Pool, options: ClaimChunkOptions): Promise<ClaimedChunk | null> {
  return withRetry(pool, () => withTransaction(pool, (connection) => claimIn(connection, options)))
}

async function claimIn(connection: PoolConnection, options: ClaimChunkOptions): Promise<ClaimedChunk | null> {
  const only = options.only
  const due = `(state = 'OPEN' OR (state = 'SCANNING' AND claimed_at < NOW(3) - INTERVAL ? MICROSECOND))`
  const staleAfterUs = options.staleAfterMs * 1000
  // Locks only the chunk it takes (see lockFirstDue): other scanners' chunks stay free, so their
  // finishing writes never wait on a claimer that stalled.
  const row = await lockFirstDue<Pick<ChunkRow, 'job_id' | 'topic' | 'partition' | 'start_offset'>, ChunkRow>(
    connection,
    {
      sql: `SELECT job_id, topic, \`partition\`, start_offset FROM replay_scan_chunks
       WHERE ${due}
         ${only ? 'AND job_id = ? AND topic = ? AND `partition` = ? AND start_offset = ?' : ''}
         AND job_id IN (SELECT id FROM replay_jobs WHERE state IN ('STARTED', 'ONGOING'))
       ORDER BY job_id, start_offset`,
      values: [staleAfterUs, ...(only ? [only.jobId, only.topic, only.partition, only.startOffset] : [])],
    },
    (key) => ({
      sql: `SELECT ${CHUNK_COLUMNS} FROM replay_scan_chunks
       WHERE job_id = ? AND topic = ? AND \`partition\` = ? AND start_offset = ? AND ${due}
       FOR UPDATE SKIP LOCKED`,
      values: [key.job_id, key.topic, key.partition, key.start_offset, staleAfterUs],
    }),
  )
  if (!row) return null
  const chunk = toChunk(row)
  const leaseToken = randomBytes(16).toString('hex')
  await connection.query(
    `UPDATE replay_scan_chunks SET state = 'SCANNING', lease_token = ?, owner = ?, claimed_at = NOW(3)
     WHERE job_id = ? AND topic = ? AND \`partition\` = ? AND start_offset = ?`,
    [leaseToken, options.owner, chunk.jobId, chunk.topic, chunk.partition, chunk.startOffset],
  )
  const [jobs] = await connection.query('SELECT webhook_id, from_ms, to_ms FROM replay_jobs WHERE id = ?', [
    chunk.jobId,
  ])
  const job = (jobs as {webhook_id: string; from_ms: number | string; to_ms: number | string}[])[0]
  if (!job) return null
  return {
    ...chunk,
    state: 'SCANNING',
    leaseToken,
    webhookId: job.webhook_id,
    fromMs: Number(job.from_ms),
    toMs: Number(job.to_ms),
  }
}
