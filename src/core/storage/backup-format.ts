import {createHash, type Hash} from 'node:crypto'
import {constants} from 'node:fs'
import {type FileHandle, open, realpath} from 'node:fs/promises'
import {join} from 'node:path'
import {createGunzip} from 'node:zlib'

import {UserError} from '../shared/errors.js'
import type {Message} from '../kafka/range-reader.js'

/**
 * The on-disk format of a topic backup (docs/backup-format.md is the prose version): the
 * manifest, the per-partition chunk files, the record frames inside them, and the canonical
 * encoding the records checksum is taken over, and how the directory's files are opened. Backup,
 * restore and verify all read and write through here (manifest.json: backup-manifest.ts), so the
 * three cannot disagree about a byte.
 *
 *   DIR/manifest.json          what was backed up; `complete: true` only once every partition is
 *   DIR/partition-<P>.chunks   a sequence of chunks: a 64-byte header, then one gzip member
 *
 * Chunk header (big-endian): "RKB1", payload bytes, record count, uncompressed bytes,
 * first offset, last offset, then sha256 over those 32 header bytes and the payload.
 * Record frame (uncompressed, big-endian): u32 frame length, i64 offset, then the record's
 * canonical encoding: i64 timestamp, i32 key length (-1 = null) + key, i32 value length
 * (-1 = null) + value, u32 header count, per header u32 name length + UTF-8 name,
 * i32 value length (-1 = null) + value.
 * recordsSha256 = sha256 over the canonical encodings of a partition's records in log order:
 * offsets are left out so a restored topic (new offsets) can be compared with the backup.
 */
export const FORMAT = 'replayctl-topic-backup'
export const FORMAT_VERSION = 1
export const MANIFEST = 'manifest.json'
export const CHUNK_MAGIC = 0x524b4231 // "RKB1"
export const CHUNK_HEADER_BYTES = 64
const HEADER_FIELDS_BYTES = 32
/**
 * The most a chunk may inflate to, whatever its header says: `--chunk-size` is at most a quarter
 * of it, which leaves room for the record that crosses the chunk size. Restore and verify hold one
 * inflated chunk at a time, so this bounds their memory against a hostile file.
 */
export const MAX_CHUNK_BYTES = 256 << 20
export const MAX_CHUNK_SIZE_FLAG = MAX_CHUNK_BYTES / 4
/** gzip of incompressible data grows by a few bytes per 16 KiB block; anything larger is not ours. */
const MAX_PAYLOAD_BYTES = MAX_CHUNK_BYTES + (MAX_CHUNK_BYTES >> 10) + 1024

export interface ChunkSummary {
  records: number
  firstOffset: number
  lastOffset: number
}

export interface PartitionManifest {
  partition: number
  file: string
  /** The offsets this backup covers, fixed on the first run: [startOffset, endOffset). */
  startOffset: number
  endOffset: number
  /** Filled in when the partition is complete. */
  complete: boolean
  records: number
  firstOffset: number | null
  lastOffset: number | null
  chunks: number
  fileBytes: number
  fileSha256: string | null
  recordsSha256: string | null
}

export interface BackupManifest {
  format: typeof FORMAT
  version: number
  complete: boolean
  createdAt: string
  completedAt: string | null
  source: {
    topic: string
    partitions: number
    /** Configs set on the topic (not broker defaults), or null with the reason. */
    configs: Record<string, string> | null
    configsUnavailable?: string
    /** From the topic's message.timestamp.type (the client does not expose it per record). */
    timestampType: 'CreateTime' | 'LogAppendTime'
  }
  bounds: {since: number | null; until: number | null}
  compression: 'gzip'
  records: number
  partitions: PartitionManifest[]
}

export function partitionFile(partition: number): string {
  return `partition-${partition}.chunks`
}

export function backupCorrupt(
  message: string,
  fix = 'the backup cannot be trusted: take it again, or restore from another copy',
): UserError {
  return new UserError('BACKUP_CORRUPT', message, fix)
}

/**
 * The backup directory with every symbolic link on the way resolved, once: all files are then
 * opened by name inside that one real directory.
 */
export async function resolveBackupDir(dir: string): Promise<string> {
  try {
    return await realpath(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UserError(
        'INVALID_ARGUMENT',
        `${dir} holds no backup (it does not exist)`,
        'pass the directory given to `topic backup --to`',
      )
    throw new UserError(
      'INVALID_ARGUMENT',
      `cannot open the backup directory ${dir} (${(error as Error).message})`,
      'check the directory and its permissions',
    )
  }
}

/**
 * Opens a file of the backup directory without following a symbolic link (a planted link would
 * read or write a file outside it) and makes sure it is a regular file: a FIFO would block, a
 * device never end. Written files must also have no other hard link, since appending to one
 * writes to the same file elsewhere. O_NONBLOCK keeps the open itself from waiting on a FIFO.
 * A missing file comes back as ENOENT for the caller to name; `create` makes it instead.
 */
export async function openBackupFile(dir: string, name: string, mode: 'read' | 'create'): Promise<FileHandle> {
  const flags =
    (mode === 'read' ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT) |
    constants.O_NOFOLLOW |
    constants.O_NONBLOCK
  let handle: FileHandle
  try {
    handle = await open(join(dir, name), flags, 0o644)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw error
    if (code === 'ELOOP')
      throw backupCorrupt(
        `${name} in ${dir} is a symbolic link; a backup's files must be regular files in its directory`,
      )
    throw new UserError(
      'INVALID_ARGUMENT',
      `cannot open ${join(dir, name)} (${(error as Error).message})`,
      'check the directory and its permissions',
    )
  }
  const stat = await handle.stat()
  if (!stat.isFile() || (mode === 'create' && stat.nlink > 1)) {
    await handle.close()
    throw backupCorrupt(
      `${name} in ${dir} is ${stat.isFile() ? 'also linked from elsewhere' : 'not a regular file'}; ` +
        "a backup's files must be regular files of their own in its directory",
    )
  }
  return handle
}

/** Where each record's canonical encoding goes: a sha256, or anything else that digests it. */
export interface ContentSink {
  update(content: Buffer): unknown
}

/** Appends record frames to a growing buffer and hands each record's canonical encoding to a sink. */
export class FrameEncoder {
  private buffer = Buffer.allocUnsafe(1 << 20)
  length = 0
  records = 0
  firstOffset = -1
  lastOffset = -1

  private readonly headerNames = new Map<string, Buffer>()

  constructor(private readonly sink: ContentSink) {}

  add(message: Message): void {
    const key = message.key as Buffer | null | undefined
    const value = message.value
    const headers = message.headers
    let size = 4 + 8 + 8 + 4 + (key ? key.length : 0) + 4 + (value ? value.length : 0) + 4
    let headerCount = 0
    if (headers) {
      for (const header of headers) {
        for (const name in header) {
          const raw = header[name]
          if (raw === undefined) continue
          size +=
            4 + this.headerName(name).length + 4 + (Buffer.isBuffer(raw) ? raw.length : Buffer.byteLength(String(raw)))
          headerCount++
        }
      }
    }
    this.reserve(size)
    const buffer = this.buffer
    let at = buffer.writeUInt32BE(size - 4, this.length)
    at = writeInt64(buffer, at, message.offset)
    const contentStart = at
    at = writeInt64(buffer, at, message.timestamp ?? -1)
    at = writeBytes(buffer, at, key ?? null)
    at = writeBytes(buffer, at, value ?? null)
    at = buffer.writeUInt32BE(headerCount, at)
    if (headers) {
      for (const header of headers) {
        for (const name in header) {
          const raw = header[name]
          if (raw === undefined) continue
          const nameBytes = this.headerName(name)
          at = buffer.writeUInt32BE(nameBytes.length, at)
          at += nameBytes.copy(buffer, at)
          at = writeBytes(buffer, at, Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw), 'utf8'))
        }
      }
    }
    this.sink.update(buffer.subarray(contentStart, at))
    this.length = at
    if (this.records === 0) this.firstOffset = message.offset
    this.lastOffset = message.offset
    this.records++
  }

  /** Header names repeat from record to record: encode each once. */
  private headerName(name: string): Buffer {
    let bytes = this.headerNames.get(name)
    if (!bytes) {
      bytes = Buffer.from(name, 'utf8')
      if (this.headerNames.size < 10_000) this.headerNames.set(name, bytes)
    }
    return bytes
  }

  /** Drops the frames gathered so far (a reader that only wants the checksums). */
  clear(): void {
    this.length = 0
    this.records = 0
  }

  /** Hands over the frames gathered so far and starts a new chunk. */
  take(): {frames: Buffer} & ChunkSummary {
    const taken = {
      frames: this.buffer.subarray(0, this.length),
      records: this.records,
      firstOffset: this.firstOffset,
      lastOffset: this.lastOffset,
    }
    this.buffer = Buffer.allocUnsafe(this.buffer.length)
    this.length = 0
    this.records = 0
    this.firstOffset = -1
    this.lastOffset = -1
    return taken
  }

  private reserve(size: number): void {
    if (this.length + size <= this.buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + size))
    this.buffer.copy(grown, 0, 0, this.length)
    this.buffer = grown
  }
}

/** An i64 from a safe integer without a BigInt per call (offsets and timestamps fit in 53 bits). */
function writeInt64(buffer: Buffer, at: number, value: number): number {
  const high = Math.floor(value / 0x1_0000_0000)
  at = buffer.writeInt32BE(high, at)
  return buffer.writeUInt32BE(value - high * 0x1_0000_0000, at)
}

function writeBytes(buffer: Buffer, at: number, bytes: Buffer | null): number {
  if (bytes === null) return buffer.writeInt32BE(-1, at)
  at = buffer.writeInt32BE(bytes.length, at)
  return at + bytes.copy(buffer, at)
}

/** A chunk as written: header (with its sha256) followed by the compressed payload. */
export function chunkBytes(payload: Buffer, uncompressedBytes: number, summary: ChunkSummary): Buffer {
  const chunk = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + payload.length)
  chunk.writeUInt32BE(CHUNK_MAGIC, 0)
  chunk.writeUInt32BE(payload.length, 4)
  chunk.writeUInt32BE(summary.records, 8)
  chunk.writeUInt32BE(uncompressedBytes, 12)
  chunk.writeBigInt64BE(BigInt(summary.firstOffset), 16)
  chunk.writeBigInt64BE(BigInt(summary.lastOffset), 24)
  payload.copy(chunk, CHUNK_HEADER_BYTES)
  createHash('sha256')
    .update(chunk.subarray(0, HEADER_FIELDS_BYTES))
    .update(payload)
    .digest()
    .copy(chunk, HEADER_FIELDS_BYTES)
  return chunk
}

/** One record as decoded from a backup. */
export interface BackupRecord {
  offset: number
  timestamp: number
  key: Buffer | null
  value: Buffer | null
  headers: {key: string; value: Buffer | null}[]
}

export interface ChunkRead extends ChunkSummary {
  /** Byte position of the chunk in its file. */
  at: number
  bytes: number
  payload: Buffer
  uncompressedBytes: number
}

export type ChunkProblem =
  {kind: 'truncated'; at: number; message: string} | {kind: 'corrupt'; at: number; message: string}

/**
 * Walks a partition file chunk by chunk, checking each chunk's header and sha256, and that its
 * offsets follow the previous chunk's inside `range` (the manifest entry's [startOffset,
 * endOffset)). Stops at the first problem and says where it is (byte position, and the offsets
 * the chunk should hold). The caller opened the file (openBackupFile) and closes it.
 */
export async function* readChunks(
  handle: FileHandle,
  name: string,
  range: {start: number; end: number},
  fileHash?: Hash,
): AsyncGenerator<ChunkRead, ChunkProblem | null> {
  const size = (await handle.stat()).size
  const header = Buffer.allocUnsafe(CHUNK_HEADER_BYTES)
  let at = 0
  let nextOffset = range.start
  while (at < size) {
    if (size - at < CHUNK_HEADER_BYTES)
      return {
        kind: 'truncated',
        at,
        message:
          `${name} is truncated at byte ${size}: the chunk starting at byte ${at} ` +
          `has only ${size - at} of its ${CHUNK_HEADER_BYTES} header bytes`,
      }
    await readExactly(handle, header, at)
    if (header.readUInt32BE(0) !== CHUNK_MAGIC)
      return {kind: 'corrupt', at, message: `${name} is corrupt at byte ${at}: no chunk header there`}
    const payloadBytes = header.readUInt32BE(4)
    const uncompressedBytes = header.readUInt32BE(12)
    const summary = {
      records: header.readUInt32BE(8),
      firstOffset: Number(header.readBigInt64BE(16)),
      lastOffset: Number(header.readBigInt64BE(24)),
    }
    if (payloadBytes > MAX_PAYLOAD_BYTES || uncompressedBytes > MAX_CHUNK_BYTES) {
      return {
        kind: 'corrupt',
        at,
        message:
          `${name} is corrupt at byte ${at}: the chunk header declares ${payloadBytes} compressed and ` +
          `${uncompressedBytes} uncompressed bytes, more than a chunk may hold (${MAX_CHUNK_BYTES} uncompressed)`,
      }
    }
    const end = at + CHUNK_HEADER_BYTES + payloadBytes
    if (end > size) {
      return {
        kind: 'truncated',
        at,
        message:
          `${name} is truncated at byte ${size}: the chunk at byte ${at} ` +
          `(records from offset ${summary.firstOffset}) needs ${end - size} more bytes`,
      }
    }
    const payload = Buffer.allocUnsafe(payloadBytes)
    await readExactly(handle, payload, at + CHUNK_HEADER_BYTES)
    const digest = createHash('sha256').update(header.subarray(0, HEADER_FIELDS_BYTES)).update(payload).digest()
    if (!digest.equals(header.subarray(HEADER_FIELDS_BYTES, CHUNK_HEADER_BYTES))) {
      return {
        kind: 'corrupt',
        at,
        message:
          `${name} is corrupt in the chunk at bytes ${at}..${end} ` +
          `(records from offset ${summary.firstOffset}): its checksum does not match`,
      }
    }
    if (
      summary.records === 0 ||
      summary.firstOffset < nextOffset ||
      summary.lastOffset < summary.firstOffset ||
      summary.lastOffset >= range.end
    ) {
      return {
        kind: 'corrupt',
        at,
        message:
          `${name} is corrupt in the chunk at bytes ${at}..${end}: it holds ${summary.records} records ` +
          `at offsets ${summary.firstOffset}..${summary.lastOffset}, ` +
          `not after offset ${nextOffset - 1} and before ${range.end}`,
      }
    }
    fileHash?.update(header).update(payload)
    yield {...summary, at, bytes: end - at, payload, uncompressedBytes}
    nextOffset = summary.lastOffset + 1
    at = end
  }
  return null
}

async function readExactly(handle: FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < into.length) {
    const {bytesRead} = await handle.read(into, done, into.length - done, position + done)
    if (bytesRead === 0) throw backupCorrupt(`unexpected end of file at byte ${position + done}`)
    done += bytesRead
  }
}

class InflatesTooFar extends Error {}

/**
 * Inflates a gzip payload into one buffer of the length its header declares, and stops the moment
 * the output would go past it: a small payload that inflates to gigabytes (a zip bomb) costs no
 * more memory than its declared length, itself at most MAX_CHUNK_BYTES.
 */
function inflateDeclared(payload: Buffer, declared: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(declared)
    let length = 0
    const gunzip = createGunzip({chunkSize: 64 << 10})
    gunzip.on('data', (piece: Buffer) => {
      if (gunzip.destroyed) return
      if (length + piece.length > declared) {
        gunzip.destroy(new InflatesTooFar())
        return
      }
      piece.copy(out, length)
      length += piece.length
    })
    gunzip.once('error', reject)
    gunzip.once('end', () => resolve(out.subarray(0, length)))
    gunzip.end(payload)
  })
}

/**
 * Decompresses a chunk and decodes its frames; `onContent` sees each record's canonical encoding.
 * The frames must be what the header says: its record count, its first and last offset, offsets
 * rising in between.
 */
export async function decodeChunk(
  chunk: ChunkRead,
  name: string,
  onContent?: (content: Buffer) => void,
): Promise<BackupRecord[]> {
  const where = `${name} chunk at byte ${chunk.at} (records from offset ${chunk.firstOffset})`
  let frames: Buffer
  try {
    frames = await inflateDeclared(chunk.payload, chunk.uncompressedBytes)
  } catch (error) {
    if (error instanceof InflatesTooFar)
      throw backupCorrupt(`${where} inflates to more than the ${chunk.uncompressedBytes} bytes its header says`)
    throw backupCorrupt(`${where} does not decompress (${(error as Error).message})`)
  }
  if (frames.length !== chunk.uncompressedBytes)
    throw backupCorrupt(`${where} holds ${frames.length} bytes, its header says ${chunk.uncompressedBytes}`)
  const records: BackupRecord[] = []
  let at = 0
  let previous = chunk.firstOffset - 1
  try {
    while (at < frames.length) {
      const frameEnd = at + 4 + frames.readUInt32BE(at)
      if (frameEnd > frames.length) throw new RangeError('frame runs past the chunk')
      const offset = Number(frames.readBigInt64BE(at + 4))
      if (records.length === 0 ? offset !== chunk.firstOffset : offset <= previous)
        throw new RangeError(`offset ${offset} out of order after ${previous}`)
      previous = offset
      const contentStart = at + 12
      let cursor = contentStart
      const timestamp = Number(frames.readBigInt64BE(cursor))
      cursor += 8
      const key = readBytes(frames, cursor, frameEnd)
      cursor = key.next
      const value = readBytes(frames, cursor, frameEnd)
      cursor = value.next
      const headerCount = frames.readUInt32BE(cursor)
      cursor += 4
      const headers: BackupRecord['headers'] = []
      for (let index = 0; index < headerCount; index++) {
        const nameLength = frames.readUInt32BE(cursor)
        if (cursor + 4 + nameLength > frameEnd) throw new RangeError('header name runs past its frame')
        const headerName = frames.toString('utf8', cursor + 4, cursor + 4 + nameLength)
        const headerValue = readBytes(frames, cursor + 4 + nameLength, frameEnd)
        headers.push({key: headerName, value: headerValue.bytes})
        cursor = headerValue.next
      }
      if (cursor !== frameEnd) throw new RangeError(`frame of offset ${offset} has ${frameEnd - cursor} stray bytes`)
      onContent?.(frames.subarray(contentStart, frameEnd))
      records.push({offset, timestamp, key: key.bytes, value: value.bytes, headers})
      at = frameEnd
    }
  } catch (error) {
    throw backupCorrupt(`${where} has a malformed record after ${records.length} records (${(error as Error).message})`)
  }
  if (records.length !== chunk.records)
    throw backupCorrupt(`${where} holds ${records.length} records, its header says ${chunk.records}`)
  if (previous !== chunk.lastOffset)
    throw backupCorrupt(`${where} ends at offset ${previous}, its header says ${chunk.lastOffset}`)
  return records
}

/** A field's bytes; it must end inside its frame (a header count can be any u32, so each is checked). */
function readBytes(frames: Buffer, at: number, frameEnd: number): {bytes: Buffer | null; next: number} {
  const length = frames.readInt32BE(at)
  if (length < 0) return {bytes: null, next: at + 4}
  if (at + 4 + length > frameEnd) throw new RangeError('field runs past its frame')
  return {bytes: frames.subarray(at + 4, at + 4 + length), next: at + 4 + length}
}

/** A partition's file, opened as openBackupFile does; a missing one is BACKUP_CORRUPT. */
async function openPartitionFile(dir: string, entry: PartitionManifest): Promise<FileHandle> {
  try {
    return await openBackupFile(dir, entry.file, 'read')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw backupCorrupt(`${entry.file} is missing from ${dir}`)
    throw error
  }
}

/**
 * Checks a complete partition file against the manifest as far as a restore reads it: every
 * chunk's checksum, that it inflates to exactly its declared length and decodes into the records
 * its header says, in offset order inside the entry's range; then the file's size, record count,
 * sha256 and records sha256. Throws BACKUP_CORRUPT naming the file and where it goes wrong.
 * `onChunk`: the file's records checked so far, after each chunk (a file can take minutes).
 */
export async function checkPartitionFile(
  dir: string,
  entry: PartitionManifest,
  onChunk?: (records: number) => void,
): Promise<void> {
  const fileHash = createHash('sha256')
  const recordsHash = createHash('sha256')
  let records = 0
  let bytes = 0
  let nextOffset = entry.startOffset
  const handle = await openPartitionFile(dir, entry)
  try {
    const walk = readChunks(handle, entry.file, {start: entry.startOffset, end: entry.endOffset}, fileHash)
    for (;;) {
      const next = await walk.next()
      if (next.done) {
        if (next.value) throw backupCorrupt(next.value.message)
        break
      }
      await decodeChunk(next.value, entry.file, (content) => recordsHash.update(content))
      records += next.value.records
      bytes += next.value.bytes
      nextOffset = next.value.lastOffset + 1
      onChunk?.(records)
    }
  } finally {
    await handle.close()
  }
  if (bytes < entry.fileBytes) {
    throw backupCorrupt(
      `${entry.file} is truncated at byte ${bytes} (record ${records}, offset ${nextOffset}): ` +
        `the manifest says ${entry.fileBytes} bytes and ${entry.records} records`,
    )
  }
  if (bytes !== entry.fileBytes || records !== entry.records) {
    throw backupCorrupt(
      `${entry.file} has ${bytes} bytes and ${records} records; ` +
        `the manifest says ${entry.fileBytes} bytes and ${entry.records} records`,
    )
  }
  if (fileHash.digest('hex') !== entry.fileSha256)
    throw backupCorrupt(`${entry.file} does not match the sha256 in the manifest`)
  if (recordsHash.digest('hex') !== entry.recordsSha256)
    throw backupCorrupt(`${entry.file} holds records that do not match the records sha256 in the manifest`)
}

/** A partition's records in log order, chunk by chunk; any damage stops it with BACKUP_CORRUPT. */
export async function* readPartitionRecords(
  dir: string,
  entry: PartitionManifest,
  onContent?: (content: Buffer) => void,
): AsyncGenerator<BackupRecord[]> {
  const handle = await openPartitionFile(dir, entry)
  try {
    const walk = readChunks(handle, entry.file, {start: entry.startOffset, end: entry.endOffset})
    for (;;) {
      const next = await walk.next()
      if (next.done) {
        if (next.value) throw backupCorrupt(next.value.message)
        return
      }
      yield await decodeChunk(next.value, entry.file, onContent)
    }
  } finally {
    await handle.close()
  }
}
