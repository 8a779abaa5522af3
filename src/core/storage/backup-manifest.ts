import {constants} from 'node:fs'
import {open, rename, unlink} from 'node:fs/promises'
import {join} from 'node:path'

import {quoteInput, UserError} from '../shared/errors.js'
import {
  type BackupManifest,
  backupCorrupt,
  FORMAT,
  FORMAT_VERSION,
  MANIFEST,
  openBackupFile,
  partitionFile,
  type PartitionManifest,
} from './backup-format.js'

/**
 * Reading and writing manifest.json. A manifest comes from a directory that may have been handed
 * over or tampered with, so every field is checked before anything acts on it: a file name other
 * than the format's, a partition out of range, a count that is not a whole number, is
 * BACKUP_CORRUPT with one line, never a TypeError deeper in.
 */

/** 65,536 partition entries of about 420 bytes each fit with room to spare. */
export const MAX_MANIFEST_BYTES = 32 << 20
/** More partitions than any topic has; it bounds what a manifest makes restore create. */
export const MAX_PARTITIONS = 65_536

export async function readManifest(dir: string): Promise<BackupManifest | null> {
  const path = join(dir, MANIFEST)
  let handle
  try {
    handle = await openBackupFile(dir, MANIFEST, 'read')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
  let bytes: Buffer
  try {
    // One byte past the cap says whether there is more, without reading a huge file whole.
    const buffer = Buffer.allocUnsafe(Math.min((await handle.stat()).size, MAX_MANIFEST_BYTES) + 1)
    let length = 0
    for (;;) {
      const {bytesRead} = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length === buffer.length) break
    }
    if (length > MAX_MANIFEST_BYTES)
      throw backupCorrupt(`${path} is larger than ${MAX_MANIFEST_BYTES >> 20} MiB, more than any backup manifest`)
    bytes = buffer.subarray(0, length)
  } finally {
    await handle.close()
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch (error) {
    throw backupCorrupt(`${path} is not valid JSON (${(error as Error).message})`)
  }
  return validateManifest(parsed, path)
}

/**
 * Written to a temporary file and renamed, so a crash leaves the old manifest or the new one. The
 * temporary file is created afresh (O_EXCL, no symbolic link followed): one planted under its
 * name would otherwise have the manifest written through it to a file outside.
 */
export async function writeManifest(dir: string, manifest: BackupManifest): Promise<void> {
  const path = join(dir, MANIFEST)
  const temporary = `${path}.tmp`
  try {
    await unlink(temporary).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
    const handle = await open(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    )
    try {
      await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, path)
  } catch (error) {
    throw new UserError(
      'INVALID_ARGUMENT',
      `cannot write ${path} (${(error as Error).message})`,
      'check the directory and its permissions: the backup writes manifest.json and manifest.json.tmp there',
    )
  }
}

const SHA256 = /^[0-9a-f]{64}$/
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/
/** Terminal control characters: a manifest's text is printed, and must not steer the terminal. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/

/** Every field of a manifest, checked; the first wrong one is named in a BACKUP_CORRUPT. */
export function validateManifest(value: unknown, path: string): BackupManifest {
  const bad = (field: string, problem: string) =>
    backupCorrupt(`${path} is not a valid backup manifest: ${field} ${problem}`)
  const describe = (found: unknown): string => {
    if (found === undefined) return 'missing'
    if (typeof found === 'string') return `${quoteInput(found)}`
    if (typeof found === 'number' || typeof found === 'boolean' || found === null) return String(found)
    return Array.isArray(found) ? 'an array' : 'an object'
  }
  const object = (found: unknown, field: string): Record<string, unknown> => {
    if (typeof found !== 'object' || found === null || Array.isArray(found))
      throw bad(field, `is ${describe(found)}, not an object`)
    return found as Record<string, unknown>
  }
  const integer = (found: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof found !== 'number' || !Number.isSafeInteger(found) || found < min || found > max)
      throw bad(field, `is ${describe(found)}, not a whole number from ${min} to ${max}`)
    return found
  }
  const orNull =
    <T>(check: (found: unknown, field: string) => T) =>
    (found: unknown, field: string): T | null =>
      found === null ? null : check(found, field)
  const boolean = (found: unknown, field: string): boolean => {
    if (typeof found !== 'boolean') throw bad(field, `is ${describe(found)}, not true or false`)
    return found
  }
  const text = (found: unknown, field: string, max: number, lines = false): string => {
    if (typeof found !== 'string' || found.length > max || CONTROL.test(found) || (!lines && /[\n\t]/.test(found)))
      throw bad(field, `is ${describe(found)}, not a line of text of at most ${max} characters`)
    return found
  }
  const sha256 = (found: unknown, field: string): string => {
    if (typeof found !== 'string' || !SHA256.test(found)) throw bad(field, `is ${describe(found)}, not a sha256 in hex`)
    return found
  }
  const oneOf = <T extends string>(found: unknown, field: string, allowed: readonly T[]): T => {
    if (!allowed.includes(found as T))
      throw bad(field, `is ${describe(found)}, not ${allowed.map((option) => `'${option}'`).join(' or ')}`)
    return found as T
  }

  const root = object(value, 'the manifest')
  if (root.format !== FORMAT) throw backupCorrupt(`${path} is not a replayctl topic backup manifest`)
  if (root.version !== FORMAT_VERSION) {
    throw new UserError(
      'INVALID_ARGUMENT',
      `${path} has format version ${describe(root.version)}; this replayctl reads version ${FORMAT_VERSION}`,
      'use the replayctl version that wrote the backup',
    )
  }
  const complete = boolean(root.complete, 'complete')
  const source = object(root.source, 'source')
  const topic = text(source.topic, 'source.topic', 249)
  if (!TOPIC.test(topic) || topic === '.' || topic === '..')
    throw bad('source.topic', `is ${describe(topic)}, not a topic name`)
  const partitionCount = integer(source.partitions, 'source.partitions', 1, MAX_PARTITIONS)
  let configs: Record<string, string> | null = null
  if (source.configs !== null) {
    const found = object(source.configs, 'source.configs')
    configs = {}
    for (const [name, setting] of Object.entries(found)) {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$/.test(name))
        throw bad('source.configs', `has the config name ${describe(name)}`)
      configs[name] = text(setting, `source.configs.${name}`, 1 << 16)
    }
  }
  const bounds = object(root.bounds, 'bounds')
  const timestampType = oneOf(source.timestampType, 'source.timestampType', ['CreateTime', 'LogAppendTime'] as const)
  const manifest: BackupManifest = {
    format: FORMAT,
    version: FORMAT_VERSION,
    complete,
    createdAt: text(root.createdAt, 'createdAt', 64),
    completedAt: orNull((found, field) => text(found, field, 64))(root.completedAt, 'completedAt'),
    source: {
      topic,
      partitions: partitionCount,
      configs,
      ...(source.configsUnavailable === undefined
        ? {}
        : {configsUnavailable: text(source.configsUnavailable, 'source.configsUnavailable', 1 << 16, true)}),
      timestampType,
    },
    bounds: {
      since: orNull((found, field) => integer(found, field, Number.MIN_SAFE_INTEGER))(bounds.since, 'bounds.since'),
      until: orNull((found, field) => integer(found, field, Number.MIN_SAFE_INTEGER))(bounds.until, 'bounds.until'),
    },
    compression: oneOf(root.compression, 'compression', ['gzip'] as const),
    records: integer(root.records, 'records', 0),
    partitions: [],
  }
  if (!Array.isArray(root.partitions)) throw bad('partitions', `is ${describe(root.partitions)}, not a list`)
  if (root.partitions.length !== partitionCount)
    throw bad(
      'partitions',
      `has ${root.partitions.length} entries; source.partitions says ${partitionCount}, one per partition`,
    )
  const seen = new Set<number>()
  root.partitions.forEach((found: unknown, index: number) => {
    const field = `partitions[${index}]`
    const entry = object(found, field)
    const partition = integer(entry.partition, `${field}.partition`, 0, partitionCount - 1)
    if (seen.has(partition)) throw bad(`${field}.partition`, `is ${partition}, which an earlier entry names too`)
    seen.add(partition)
    // Only the format's own name: anything else (a path, `..`, another name) could read or write outside the directory.
    if (entry.file !== partitionFile(partition))
      throw bad(
        `${field}.file`,
        `is ${describe(entry.file)}; partition ${partition}'s file can only be '${partitionFile(partition)}'`,
      )
    const startOffset = integer(entry.startOffset, `${field}.startOffset`, 0)
    const checked: PartitionManifest = {
      partition,
      file: partitionFile(partition),
      startOffset,
      endOffset: integer(entry.endOffset, `${field}.endOffset`, startOffset),
      complete: boolean(entry.complete, `${field}.complete`),
      records: integer(entry.records, `${field}.records`, 0),
      firstOffset: orNull((value, name) => integer(value, name, 0))(entry.firstOffset, `${field}.firstOffset`),
      lastOffset: orNull((value, name) => integer(value, name, 0))(entry.lastOffset, `${field}.lastOffset`),
      chunks: integer(entry.chunks, `${field}.chunks`, 0),
      fileBytes: integer(entry.fileBytes, `${field}.fileBytes`, 0),
      fileSha256: orNull(sha256)(entry.fileSha256, `${field}.fileSha256`),
      recordsSha256: orNull(sha256)(entry.recordsSha256, `${field}.recordsSha256`),
    }
    if (checked.complete) {
      if (checked.fileSha256 === null || checked.recordsSha256 === null)
        throw bad(field, 'is complete but has no sha256')
      if (checked.records > checked.endOffset - checked.startOffset)
        throw bad(
          `${field}.records`,
          `is ${checked.records}, more than the ${checked.endOffset - checked.startOffset} offsets of its range`,
        )
    }
    manifest.partitions.push(checked)
  })
  if (complete) {
    if (manifest.partitions.some((entry) => !entry.complete))
      throw bad('complete', 'is true but a partition is not complete')
    const sum = manifest.partitions.reduce((total, entry) => total + entry.records, 0)
    if (sum !== manifest.records) throw bad('records', `is ${manifest.records}, the partitions hold ${sum}`)
  }
  return manifest
}
