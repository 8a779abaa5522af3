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
export {
  CHUNK_COLUMNS,
  CHUNK_STATES,
  toChunk,
  type ChunkKey,
  type ChunkRow,
  type ChunkState,
  type ClaimedChunk,
  type ScanChunk,
} from './model.js'
export {claimChunk, type ClaimChunkOptions} from './claim-chunk.js'
export {dropChunks} from './drop-chunks.js'
export {finishChunk, type ChunkResult} from './finish-chunk.js'
export {listChunks, readChunkRecords} from './list-chunks.js'
export {planChunks} from './plan-chunks.js'
