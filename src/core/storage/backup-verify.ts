import {createHash} from 'node:crypto'

import {BugError, UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {watermarks} from '../kafka/offsets.js'
import {readRanges} from '../kafka/range-reader.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'
import {FrameEncoder, readPartitionRecords} from './backup-format.js'
import {checkBackupFiles, loadCompleteBackup} from './restore.js'

/**
 * `topic verify`: is a backup intact, and does a topic hold exactly what it holds?
 *
 * The files are always checked against the manifest (chunk checksums, sizes, counts, sha256).
 * With --topic the whole topic is read and its records are digested the way the backup was:
 *   partitions  same partition count: per partition, the record count and the sha256 of the
 *               records' canonical encoding (key, value, headers, timestamp, in log order) must
 *               equal the manifest's
 *   keys        a different count (a `--partitions rehash` restore): per key, the sequence of
 *               its records must be the same; records without a key are compared as a set
 */
export interface VerifyOptions {
  dir: string
  topic?: string
  /** `checking` the backup's files first, then (with a topic) `reading` the topic. */
  onProgress?: (progress: {phase: 'checking' | 'reading'; records: number; total: number}) => void
}

export interface VerifyPartition {
  partition: number
  expectedRecords: number
  actualRecords: number
  expectedSha256: string
  actualSha256: string
  match: boolean
}

export interface VerifyResult {
  dir: string
  sourceTopic: string
  records: number
  files: number
  topic: string | null
  mode: 'files' | 'partitions' | 'keys'
  match: boolean
  partitions?: VerifyPartition[]
  keys?: {keys: number; differing: number; nullKeyRecords: number; actualRecords: number}
}

export async function verifyBackup(settings: Settings, options: VerifyOptions): Promise<VerifyResult> {
  const {root, manifest} = await loadCompleteBackup(options.dir)
  await checkBackupFiles(root, manifest, (records) =>
    options.onProgress?.({phase: 'checking', records, total: manifest.records}),
  )
  const base = {
    dir: options.dir,
    sourceTopic: manifest.source.topic,
    records: manifest.records,
    files: manifest.partitions.length,
  }
  if (options.topic === undefined) return {...base, topic: null, mode: 'files', match: true}

  const topic = options.topic
  const ranges = await withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, topic)
    const marks = await watermarks(
      settings,
      admin,
      topic,
      metadata.partitions.map((partition) => partition.partition),
    )
    return marks.map((mark) => ({partition: mark.partition, start: mark.low, end: mark.high}))
  })
  const total = ranges.reduce((sum, range) => sum + range.end - range.start, 0)
  let read = 0
  const progress = () => options.onProgress?.({phase: 'reading', records: read, total})

  if (ranges.length === manifest.source.partitions) {
    const tallies = ranges.map(() => {
      const hash = createHash('sha256')
      return {hash, encoder: new FrameEncoder(hash), records: 0}
    })
    const tallyOf = (partition: number) => {
      const tally = tallies[partition]
      if (!tally) throw new BugError(`partition ${partition} is beyond the ${tallies.length} partitions read`)
      return tally
    }
    for await (const batch of readRanges(settings, topic, ranges)) {
      for (const message of batch) {
        const tally = tallyOf(message.partition)
        tally.encoder.add(message)
        tally.records++
      }
      for (const {encoder} of tallies) encoder.clear()
      read += batch.length
      progress()
    }
    const partitions = manifest.partitions.map((entry) => {
      const tally = tallyOf(entry.partition)
      const actualSha256 = tally.hash.digest('hex')
      const actualRecords = tally.records
      return {
        partition: entry.partition,
        expectedRecords: entry.records,
        actualRecords,
        expectedSha256: entry.recordsSha256!,
        actualSha256,
        match: actualRecords === entry.records && actualSha256 === entry.recordsSha256,
      }
    })
    return {...base, topic, mode: 'partitions', match: partitions.every((partition) => partition.match), partitions}
  }

  const expected = new KeyDigests()
  for (const entry of manifest.partitions) {
    for await (const batch of readPartitionRecords(root, entry, (content) =>
      expected.pending.push(Buffer.from(content)),
    )) {
      batch.forEach((record, index) => {
        const content = expected.pending[index]
        if (!content) throw new BugError(`record ${index} of a backup batch came without its canonical encoding`)
        expected.add(record.key, content)
      })
      expected.pending.length = 0
    }
  }
  const actual = new KeyDigests()
  let currentKey: Buffer | null = null
  const encoder = new FrameEncoder({update: (content) => actual.add(currentKey, content)})
  for await (const batch of readRanges(settings, topic, ranges)) {
    for (const message of batch) {
      currentKey = (message.key as Buffer | null | undefined) ?? null
      encoder.add(message)
    }
    encoder.clear()
    read += batch.length
    progress()
  }
  const differing = expected.differences(actual)
  return {
    ...base,
    topic,
    mode: 'keys',
    match: differing === 0 && actual.records === expected.records,
    keys: {keys: expected.keys.size, differing, nullKeyRecords: expected.nullRecords, actualRecords: actual.records},
  }
}

/** Per key, a chained sha256 over its records in order; records without a key, an order-free sum. */
class KeyDigests {
  readonly keys = new Map<string, Buffer>()
  readonly pending: Buffer[] = []
  records = 0
  nullRecords = 0
  private nullSum = 0n

  add(key: Buffer | null, content: Buffer): void {
    this.records++
    if (key === null) {
      this.nullRecords++
      this.nullSum =
        (this.nullSum + createHash('sha256').update(content).digest().readBigUInt64BE(0)) & 0xffffffffffffffffn
      return
    }
    const name = key.toString('base64')
    const previous = this.keys.get(name)
    const chained = createHash('sha256')
    if (previous) chained.update(previous)
    this.keys.set(name, chained.update(content).digest())
  }

  /** Keys whose sequences differ (or exist on one side only), plus one if the keyless records differ. */
  differences(other: KeyDigests): number {
    let differing = 0
    for (const [name, digest] of this.keys) if (!other.keys.get(name)?.equals(digest)) differing++
    for (const name of other.keys.keys()) if (!this.keys.has(name)) differing++
    if (this.nullRecords !== other.nullRecords || this.nullSum !== other.nullSum) differing++
    return differing
  }
}

export function mismatchError(result: VerifyResult): UserError {
  const detail = result.keys
    ? `${result.keys.differing} keys differ, ${result.keys.actualRecords} records read, expected ${result.records}`
    : (result.partitions ?? [])
        .filter((partition) => !partition.match)
        .slice(0, 3)
        .map(
          (partition) =>
            `partition ${partition.partition}: ${partition.actualRecords} records, ` +
            `expected ${partition.expectedRecords}` +
            (partition.actualRecords === partition.expectedRecords ? ' (contents differ)' : ''),
        )
        .join('; ')
  return new UserError(
    'BACKUP_MISMATCH',
    `topic '${result.topic}' does not match the backup in ${result.dir}: ${detail}`,
    'restore into an empty topic and verify again',
  )
}
