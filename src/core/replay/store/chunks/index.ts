/**
 * The scan-chunk store: a large job's offset range cut into chunks that any worker may scan, one
 * file per SQL operation. Glossary and states:
 *
 *   chunk     [start, end) offsets of one topic partition of one job, at most the job's chunk size
 *   OPEN      nobody scans it yet
 *   SCANNING  a worker claimed it (fresh lease token); a chunk whose claim is older than the stale
 *             time is claimed again, and the first scanner's result is then refused (fenced)
 *   DONE      scanned: `records` holds the matching records, or `dense` says they were too many to
 *             keep in the database and the job's owner reads that chunk from Kafka itself
 *
 * Only the job's owner delivers, in offset order, chunk after chunk: scanning runs in parallel on
 * any number of workers, delivery and checkpoints stay exactly as without chunks.
 */
export const CHUNK_STATES = ['OPEN', 'SCANNING', 'DONE'] as const
export type ChunkState = (typeof CHUNK_STATES)[number]

export interface ChunkKey {
  jobId: number
  topic: string
  partition: number
  startOffset: number
}

export interface ScanChunk extends ChunkKey {
  endOffset: number
  state: ChunkState
  scanned: number
  matched: number
  dense: boolean
}

/** A chunk claimed for scanning, with what the scanner needs to know of its job. */
export interface ClaimedChunk extends ScanChunk {
  leaseToken: string
  webhookId: string
  fromMs: number
  toMs: number
}

export interface ChunkRow {
  job_id: number | string
  topic: string
  partition: number
  start_offset: number | string
  end_offset: number | string
  state: ChunkState
  scanned: number | string
  matched: number | string
  dense: number
}

export function toChunk(row: ChunkRow): ScanChunk {
  return {
    jobId: Number(row.job_id),
    topic: row.topic,
    partition: Number(row.partition),
    startOffset: Number(row.start_offset),
    endOffset: Number(row.end_offset),
    state: row.state,
    scanned: Number(row.scanned),
    matched: Number(row.matched),
    dense: Boolean(row.dense),
  }
}

export const CHUNK_COLUMNS = 'job_id, topic, `partition`, start_offset, end_offset, state, scanned, matched, dense'

export {claimChunk, type ClaimChunkOptions} from './claim-chunk.js'
export {dropChunks} from './drop-chunks.js'
export {finishChunk, type ChunkResult} from './finish-chunk.js'
export {listChunks, readChunkRecords} from './list-chunks.js'
export {planChunks} from './plan-chunks.js'
