import {createHash, type Hash} from 'node:crypto'
import {type FileHandle, mkdir, readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {gzip} from 'node:zlib'

import {BugError, quoteInput, UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {planRead} from '../kafka/read.js'
import {type Message, readRanges} from '../kafka/range-reader.js'
import {readTopicConfigs, topicMetadata, withAdmin} from '../kafka/topics.js'
import {
  type BackupManifest,
  backupCorrupt,
  type ChunkProblem,
  type ChunkRead,
  chunkBytes,
  decodeChunk,
  FORMAT,
  FORMAT_VERSION,
  FrameEncoder,
  MANIFEST,
  MAX_CHUNK_BYTES,
  openBackupFile,
  type PartitionManifest,
  partitionFile,
  readChunks,
  resolveBackupDir,
} from './backup-format.js'
import {readManifest, writeManifest} from './backup-manifest.js'

/**
 * `topic backup`: streams one topic's records (keys, values, headers, timestamps, partitions, in
 * log order) into a directory in the format of backup-format.ts.
 *
 * The offset range of every partition is fixed on the first run and kept in the manifest. Each
 * partition file grows by whole chunks; a chunk is on disk before the next one is started. A run
 * that was killed is continued by running again: each file is checked chunk by chunk, a torn
 * last chunk is cut off, the checksums are rebuilt from what is kept, and reading goes on after
 * the last kept offset. The manifest says `complete` only after every file is written and synced.
 */
export interface BackupOptions {
  topic: string
  dir: string
  since?: number
  until?: number
  /** Read the topic's configs (with Apache Kafka's ConfigCommand, needs Java) into the manifest. */
  configs: boolean
  /** Uncompressed bytes per chunk: at most this much is read again after an interruption. */
  chunkBytes: number
  onProgress?: (progress: BackupProgress) => void
}

export interface BackupProgress {
  records: number
  /** Offsets in the planned ranges: an upper bound on the records where compaction left gaps. */
  offsets: number
}

export interface BackupPartitionResult {
  partition: number
  startOffset: number
  endOffset: number
  records: number
  fileBytes: number
}

export interface BackupResult {
  topic: string
  dir: string
  complete: true
  /** This run continued an interrupted one. */
  resumed: boolean
  /** The directory already held a complete backup of the topic; nothing was read. */
  alreadyComplete: boolean
  since: number | null
  until: number | null
  records: number
  recordsThisRun: number
  bytes: number
  seconds: number
  recordsPerSecond: number
  configsUnavailable?: string
  partitions: BackupPartitionResult[]
}

export const DEFAULT_CHUNK_BYTES = 4 << 20

const gzipAsync = promisify(gzip)

export async function backupTopic(settings: Settings, options: BackupOptions): Promise<BackupResult> {
  const started = Date.now()
  await mkdir(options.dir, {recursive: true}).catch((error: Error) => {
    throw new UserError(
      'INVALID_ARGUMENT',
      `cannot create --to ${options.dir} (${error.message})`,
      'choose a directory you can write to',
    )
  })
  // Resolved once: every file below is opened by name inside this one real directory.
  const dir = await resolveBackupDir(options.dir)
  let manifest = await readManifest(dir)
  const resumed = manifest !== null
  if (manifest && manifest.source.topic !== options.topic) {
    throw new UserError(
      'BACKUP_DIR_CONFLICT',
      `${options.dir} holds a backup of topic '${manifest.source.topic}', not '${options.topic}'`,
      'choose another --to directory for this topic',
    )
  }
  if (manifest?.complete)
    return result(options, manifest, {resumed: false, alreadyComplete: true, recordsThisRun: 0, started})

  if (manifest) await checkPartitionsExist(settings, options.topic, manifest, options.dir)
  manifest ??= await startManifest(settings, options, dir)
  // Configs come from a JVM (ConfigCommand): started now, it runs while the records stream.
  const configs = options.configs
    ? readTopicConfigs(settings, options.topic).then(
        (read) => ({read, reason: undefined}),
        (error: Error) => ({read: null, reason: error.message}),
      )
    : Promise.resolve({read: null, reason: 'not requested (--no-configs)'})

  const opened = await Promise.allSettled(
    manifest.partitions
      .filter((entry) => !entry.complete)
      .map((entry) => PartitionWriter.resume(dir, entry, options.chunkBytes)),
  )
  const refused = opened.find((outcome) => outcome.status === 'rejected')
  if (refused) {
    // The files that did open are closed before the first refusal is reported.
    await Promise.all(opened.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.close() : undefined)))
    throw refused.reason
  }
  const writers = opened.map((outcome) => (outcome as PromiseFulfilledResult<PartitionWriter>).value)
  const offsets = manifest.partitions.reduce((sum, entry) => sum + entry.endOffset - entry.startOffset, 0)
  let records =
    manifest.partitions.reduce((sum, entry) => sum + (entry.complete ? entry.records : 0), 0) +
    writers.reduce((sum, writer) => sum + writer.records, 0)
  const recordsBefore = records
  const byPartition = new Map(writers.map((writer) => [writer.entry.partition, writer]))
  const ranges = writers
    .filter((writer) => writer.nextOffset < writer.entry.endOffset)
    .map((writer) => ({partition: writer.entry.partition, start: writer.nextOffset, end: writer.entry.endOffset}))
  let lastProgress = 0
  try {
    for await (const batch of readRanges(settings, options.topic, ranges)) {
      for (const message of batch) {
        const writer = byPartition.get(message.partition)
        if (!writer) throw new BugError(`read a record of partition ${message.partition}, which is not being backed up`)
        writer.add(message)
        if (writer.full) await writer.flush()
      }
      records += batch.length
      if (options.onProgress && Date.now() - lastProgress > 200) {
        lastProgress = Date.now()
        options.onProgress({records, offsets})
      }
    }
    for (const writer of writers) await writer.finish()
  } finally {
    await Promise.all(writers.map((writer) => writer.close()))
  }
  options.onProgress?.({records, offsets})

  const {read, reason} = await configs
  manifest.source.configs = read
  if (reason === undefined) delete manifest.source.configsUnavailable
  else manifest.source.configsUnavailable = reason
  manifest.source.timestampType = read?.['message.timestamp.type'] === 'LogAppendTime' ? 'LogAppendTime' : 'CreateTime'
  manifest.records = manifest.partitions.reduce((sum, entry) => sum + entry.records, 0)
  manifest.complete = true
  manifest.completedAt = new Date().toISOString()
  await writeManifest(dir, manifest)
  return result(options, manifest, {resumed, alreadyComplete: false, recordsThisRun: records - recordsBefore, started})
}

/** A continued backup reads the manifest's partitions: each must still exist in the topic. */
async function checkPartitionsExist(
  settings: Settings,
  topic: string,
  manifest: BackupManifest,
  dir: string,
): Promise<void> {
  const count = await withAdmin(
    settings,
    async (admin) => (await topicMetadata(settings, admin, topic)).partitions.length,
  )
  const beyond = manifest.partitions.find((entry) => !entry.complete && entry.partition >= count)
  if (beyond)
    throw backupCorrupt(
      `the unfinished backup in ${dir} names partition ${beyond.partition}, ` +
        `but topic '${topic}' has ${count} partitions`,
      `back up into a new directory`,
    )
}

async function startManifest(settings: Settings, options: BackupOptions, dir: string): Promise<BackupManifest> {
  const strays = (await readdir(dir)).filter((name) => name !== MANIFEST)
  if (strays.length > 0) {
    throw new UserError(
      'BACKUP_DIR_CONFLICT',
      `${options.dir} is not empty and holds no backup manifest (found ${strays
        .slice(0, 3)
        .map((name) => quoteInput(name))
        .join(', ')})`,
      'back up into a new or empty directory',
    )
  }
  const plan = await planRead(settings, {
    topic: options.topic,
    partitioner: 'murmur2',
    since: options.since,
    until: options.until,
  })
  const manifest: BackupManifest = {
    format: FORMAT,
    version: FORMAT_VERSION,
    complete: false,
    createdAt: new Date().toISOString(),
    completedAt: null,
    source: {topic: options.topic, partitions: plan.ranges.length, configs: null, timestampType: 'CreateTime'},
    bounds: {since: options.since ?? null, until: options.until ?? null},
    compression: 'gzip',
    records: 0,
    partitions: plan.ranges.map((range) => ({
      partition: range.partition,
      file: partitionFile(range.partition),
      startOffset: range.start,
      endOffset: range.end,
      complete: false,
      records: 0,
      firstOffset: null,
      lastOffset: null,
      chunks: 0,
      fileBytes: 0,
      fileSha256: null,
      recordsSha256: null,
    })),
  }
  await writeManifest(dir, manifest)
  return manifest
}

function result(
  options: BackupOptions,
  manifest: BackupManifest,
  run: {resumed: boolean; alreadyComplete: boolean; recordsThisRun: number; started: number},
): BackupResult {
  const seconds = (Date.now() - run.started) / 1000
  return {
    topic: manifest.source.topic,
    dir: options.dir,
    complete: true,
    resumed: run.resumed,
    alreadyComplete: run.alreadyComplete,
    since: manifest.bounds.since,
    until: manifest.bounds.until,
    records: manifest.records,
    recordsThisRun: run.recordsThisRun,
    bytes: manifest.partitions.reduce((sum, entry) => sum + entry.fileBytes, 0),
    seconds,
    recordsPerSecond: Math.round(run.recordsThisRun / Math.max(seconds, 0.001)),
    ...(manifest.source.configsUnavailable === undefined
      ? {}
      : {configsUnavailable: manifest.source.configsUnavailable}),
    partitions: manifest.partitions.map((entry) => ({
      partition: entry.partition,
      startOffset: entry.startOffset,
      endOffset: entry.endOffset,
      records: entry.records,
      fileBytes: entry.fileBytes,
    })),
  }
}

/** Chunks compressing or being written per partition before reading waits for them. */
const MAX_CHUNKS_IN_FLIGHT = 3

/** One partition's file: frames gathered, compressed off the main thread, appended in order. */
class PartitionWriter {
  private readonly encoder: FrameEncoder
  private tail: Promise<void> = Promise.resolve()
  private inFlight = 0
  private failure: unknown = null

  private constructor(
    readonly entry: PartitionManifest,
    private readonly handle: FileHandle,
    private readonly fileHash: Hash,
    private readonly recordsHash: Hash,
    private readonly chunkBytes: number,
    /** What the file holds so far. */
    private kept: {
      bytes: number
      records: number
      chunks: number
      firstOffset: number | null
      lastOffset: number | null
    },
  ) {
    this.encoder = new FrameEncoder(recordsHash)
  }

  /** Opens the partition file, keeps its whole chunks and rebuilds both checksums from them. */
  static async resume(dir: string, entry: PartitionManifest, chunkBytes: number): Promise<PartitionWriter> {
    const path = join(dir, entry.file)
    const handle = await openBackupFile(dir, entry.file, 'create')
    const fileHash = createHash('sha256')
    const recordsHash = createHash('sha256')
    const kept = {
      bytes: 0,
      records: 0,
      chunks: 0,
      firstOffset: null as number | null,
      lastOffset: null as number | null,
    }
    try {
      const walk = readChunks(handle, entry.file, {start: entry.startOffset, end: entry.endOffset}, fileHash)
      let problem: ChunkProblem | null = null
      for (;;) {
        const next: IteratorResult<ChunkRead, ChunkProblem | null> = await walk.next()
        if (next.done) {
          problem = next.value
          break
        }
        await decodeChunk(next.value, entry.file, (content) => recordsHash.update(content))
        kept.bytes += next.value.bytes
        kept.records += next.value.records
        kept.chunks++
        kept.firstOffset ??= next.value.firstOffset
        kept.lastOffset = next.value.lastOffset
      }
      if (problem?.kind === 'corrupt') {
        throw backupCorrupt(
          `cannot continue the backup: ${problem.message}`,
          `delete ${path} to back that partition up again from the start`,
        )
      }
      // A torn last chunk (the run was killed while writing it) is cut off and read again.
      await handle.truncate(kept.bytes)
    } catch (error) {
      await handle.close()
      throw error
    }
    return new PartitionWriter(entry, handle, fileHash, recordsHash, chunkBytes, kept)
  }

  get records(): number {
    return this.kept.records + this.encoder.records
  }

  get nextOffset(): number {
    return this.kept.lastOffset === null ? this.entry.startOffset : this.kept.lastOffset + 1
  }

  get full(): boolean {
    return this.encoder.length >= this.chunkBytes
  }

  add(message: Message): void {
    this.encoder.add(message)
  }

  /** Starts compressing the gathered frames; waits only when too many chunks are in flight. */
  async flush(): Promise<void> {
    if (this.failure) throw this.failure
    if (this.encoder.records === 0) return
    const taken = this.encoder.take()
    if (taken.frames.length > MAX_CHUNK_BYTES) {
      throw new UserError(
        'INVALID_ARGUMENT',
        `partition ${this.entry.partition} holds a record near offset ${taken.lastOffset} ` +
          `too large for a backup chunk (${taken.frames.length} bytes with the records before it; ` +
          `at most ${MAX_CHUNK_BYTES})`,
        'back up with a smaller --chunk-size',
      )
    }
    const compressed = gzipAsync(taken.frames)
    compressed.catch(() => {})
    this.inFlight++
    this.tail = this.tail
      .then(async () => {
        const chunk = chunkBytes(await compressed, taken.frames.length, taken)
        await this.handle.write(chunk, 0, chunk.length, this.kept.bytes)
        this.fileHash.update(chunk)
        this.kept.bytes += chunk.length
        this.kept.records += taken.records
        this.kept.chunks++
        this.kept.firstOffset ??= taken.firstOffset
        this.kept.lastOffset = taken.lastOffset
      })
      .catch((error: unknown) => {
        this.failure ??= error
      })
      .finally(() => {
        this.inFlight--
      })
    if (this.inFlight >= MAX_CHUNKS_IN_FLIGHT) await this.tail
    if (this.failure) throw this.failure
  }

  /** Writes the last chunk, syncs the file and records the partition as complete. */
  async finish(): Promise<void> {
    await this.flush()
    await this.tail
    if (this.failure) throw this.failure
    await this.handle.sync()
    Object.assign(this.entry, {
      complete: true,
      records: this.kept.records,
      firstOffset: this.kept.firstOffset,
      lastOffset: this.kept.lastOffset,
      chunks: this.kept.chunks,
      fileBytes: this.kept.bytes,
      fileSha256: this.fileHash.digest('hex'),
      recordsSha256: this.recordsHash.digest('hex'),
    } satisfies Partial<PartitionManifest>)
  }

  async close(): Promise<void> {
    await this.tail
    await this.handle.close()
  }
}
