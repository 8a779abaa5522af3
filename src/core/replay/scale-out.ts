import {setTimeout as sleep} from 'node:timers/promises'
import {deserialize, serialize} from 'node:v8'
import {deflateRawSync, inflateRawSync} from 'node:zlib'

import type {Pool} from '../db/database.js'
import {readScanned, type Message, type ScannedBatch} from '../kafka/range-reader.js'
import {BugError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {
  claimChunk,
  type ClaimedChunk,
  finishChunk,
  planChunks,
  readChunkRecords,
  type ScanChunk,
} from './store/chunks/index.js'

/**
 * Scale-out scanning: a job whose range is large is cut into chunks (store/chunks/) that idle
 * workers anywhere scan in parallel, keeping only the records the job wants. The job's owner
 * still delivers alone and in offset order: it walks the chunks in order, takes the records a
 * scanner kept, and scans a chunk itself (streaming, keeping nothing) when nobody has yet. So
 * delivery order, dedup and checkpoints are exactly those of an unchunked job; only the reading
 * is spread out.
 *
 * Why it pays: a replay reads every record of the webhook's partition in the range, but delivers
 * only the webhook's own. For a quiet webhook on a busy partition nearly all the time is reading,
 * and N workers read N chunks at once.
 */

/** What a job wants from its partition: its webhook's key, CreateTime within [from, to). */
export interface JobFilter {
  webhookId: string
  fromMs: number
  toMs: number
}

export function jobMatcher(filter: JobFilter): (message: Message) => boolean {
  const key = Buffer.from(filter.webhookId, 'utf8')
  return (message) =>
    message.key !== undefined &&
    message.key !== null &&
    key.equals(message.key as Buffer) &&
    message.timestamp !== undefined &&
    message.timestamp >= filter.fromMs &&
    message.timestamp < filter.toMs
}

/**
 * Records a scanner keeps per chunk, encoded, before it calls the chunk dense and keeps none: the
 * owner then reads that chunk itself. Well under MariaDB's default max_allowed_packet (16 MiB).
 */
export const MAX_KEPT_BYTES = 4 * 1024 * 1024

type KeptRecord = [offset: number, timestamp: number | undefined, value: Buffer | null, headers: Message['headers']]

export function encodeRecords(messages: Message[]): Buffer {
  const kept: KeptRecord[] = messages.map((message) => [
    message.offset,
    message.timestamp,
    message.value ?? null,
    message.headers,
  ])
  return deflateRawSync(serialize(kept), {level: 1})
}

export function decodeRecords(encoded: Buffer, chunk: {topic: string; partition: number}, key: Buffer): Message[] {
  const kept = deserialize(inflateRawSync(encoded)) as KeptRecord[]
  return kept.map(([offset, timestamp, value, headers]) => ({
    topic: chunk.topic,
    partition: chunk.partition,
    offset,
    timestamp,
    key,
    value: value as Buffer,
    size: value?.length ?? 0,
    ...(headers ? {headers} : {}),
  }))
}

/** Scans one claimed chunk: counts every record, keeps the wanted ones unless there are too many. */
export async function scanChunk(
  settings: Settings,
  chunk: ClaimedChunk,
  options: {signal?: AbortSignal; maxKeptBytes?: number} = {},
): Promise<{scanned: number; matched: number; records: Buffer | null}> {
  const {signal, maxKeptBytes = MAX_KEPT_BYTES} = options
  const wanted = jobMatcher(chunk)
  let scanned = 0
  let keptBytes = 0
  let kept: Message[] | null = []
  let matched = 0
  // The key filter runs inside the Kafka client: other webhooks' records never reach JS.
  const key = Buffer.from(chunk.webhookId, 'utf8')
  const range = {partition: chunk.partition, start: chunk.startOffset, end: chunk.endOffset}
  for await (const batch of readScanned(settings, chunk.topic, range, {signal, key})) {
    scanned += batch.scanned
    for (const message of batch.messages) {
      if (!wanted(message)) continue
      matched++
      if (!kept) continue
      keptBytes += (message.value?.length ?? 0) + 64
      if (keptBytes > maxKeptBytes) kept = null
      else kept.push(message)
    }
  }
  if (signal?.aborted) throw new BugError('scanChunk was aborted; its result must not be stored')
  const records = kept ? encodeRecords(kept) : null
  return {scanned, matched, records: records && records.length <= maxKeptBytes ? records : null}
}

/**
 * What an idle worker does: claim any chunk of a running job, scan it, store the result. Returns
 * the chunk scanned, or null when there was none to scan (or the result was refused because the
 * chunk was claimed again meanwhile).
 */
export async function scanNextChunk(
  settings: Settings,
  pool: Pool,
  options: {owner: string; staleAfterMs: number; signal?: AbortSignal},
): Promise<ScanChunk | null> {
  const chunk = await claimChunk(pool, {owner: options.owner, staleAfterMs: options.staleAfterMs})
  if (!chunk) return null
  const result = await scanChunk(settings, chunk, {signal: options.signal})
  return (await finishChunk(pool, chunk, result))
    ? {...chunk, state: 'DONE', scanned: result.scanned, matched: result.matched, dense: result.records === null}
    : null
}

export type {ScannedBatch}

export interface ChunkedReadOptions {
  jobId: number
  topic: string
  partition: number
  filter: JobFilter
  /** the job's planned range, which its chunks cover */
  rangeStart: number
  end: number
  /** first offset still to deliver (the checkpoint) */
  start: number
  chunkSize: number
  owner: string
  staleAfterMs: number
  signal: AbortSignal
  /** how often to look again at a chunk another worker is scanning */
  pollMs?: number
}

/**
 * The owner's reading of a chunked range: yields, in offset order, the wanted records of
 * [start, end), chunk after chunk, from what scanners kept or by reading the chunk itself.
 */
export async function* readChunked(
  settings: Settings,
  pool: Pool,
  options: ChunkedReadOptions,
): AsyncGenerator<ScannedBatch> {
  const wanted = jobMatcher(options.filter)
  const key = Buffer.from(options.filter.webhookId, 'utf8')
  const chunks = await planChunks(pool, {
    jobId: options.jobId,
    topic: options.topic,
    partition: options.partition,
    startOffset: options.rangeStart,
    endOffset: options.end,
    chunkSize: options.chunkSize,
    from: options.start,
  })
  for (const planned of chunks) {
    const from = Math.max(planned.startOffset, options.start)
    for (;;) {
      if (options.signal.aborted) return
      const found = await readChunkRecords(pool, planned)
      if (!found) throw new BugError(`scan chunk ${planned.startOffset} of job ${options.jobId} vanished`)
      if (found.chunk.state === 'DONE' && found.records) {
        const messages = decodeRecords(found.records, planned, key).filter((message) => message.offset >= from)
        yield {messages, scannedTo: planned.endOffset, scanned: found.chunk.scanned}
        break
      }
      const mine =
        found.chunk.state === 'DONE'
          ? null
          : await claimChunk(pool, {owner: options.owner, staleAfterMs: options.staleAfterMs, only: planned})
      if (found.chunk.state === 'DONE' || mine) {
        // Dense, or nobody has scanned it yet: read it here, streaming, and keep nothing.
        let scanned = 0
        let matched = 0
        const range = {partition: options.partition, start: from, end: planned.endOffset}
        for await (const batch of readScanned(settings, options.topic, range, {signal: options.signal, key})) {
          scanned += batch.scanned
          const messages = batch.messages.filter(wanted)
          matched += messages.length
          yield {messages, scannedTo: batch.scannedTo, scanned: batch.scanned}
        }
        if (options.signal.aborted) return
        yield {messages: [], scannedTo: planned.endOffset, scanned: 0}
        if (mine) await finishChunk(pool, mine, {scanned, matched, records: null})
        break
      }
      // Another worker is scanning it: its result is moments away.
      await sleep(options.pollMs ?? 50, undefined, {signal: options.signal}).catch(() => {})
    }
  }
}
