/** The chunk store's model: its states, types and row mapping, shared by the operations. */
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
