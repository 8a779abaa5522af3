import {UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {watermarks} from '../kafka/offsets.js'
import {partitionFor} from '../kafka/partitioner.js'
import {type Headers, RecordWriter} from '../kafka/record-writer.js'
import {createTopic, topicMetadata, validateTopicName, withAdmin} from '../kafka/topics.js'
import {
  type BackupManifest,
  checkPartitionFile,
  MANIFEST,
  readPartitionRecords,
  resolveBackupDir,
} from './backup-format.js'
import {readManifest} from './backup-manifest.js'
import {plural} from '../shared/plural.js'

/**
 * `topic restore`: writes a complete backup into a topic, record for record.
 *
 * Every file is checked against the manifest before anything is written, so a damaged backup
 * writes nothing. The target is created when missing (the backup's partition count and configs,
 * with --config overrides); an existing target must be empty unless --force. Records keep their
 * key, value (null stays null), headers and timestamp (as CreateTime):
 *   same    each record goes to its own partition number, in log order
 *   rehash  each keyed record goes to murmur2(key) % the target's partitions (Java's placement);
 *           a key's records come from one source partition and are written in its order, so
 *           each key keeps its order. Records without a key go to source partition % count.
 * The producer is idempotent with acks from all in-sync replicas, so retries neither reorder
 * nor duplicate; the command ends only once every record is acknowledged.
 */
export const PARTITION_MODES = ['same', 'rehash'] as const
export type PartitionMode = (typeof PARTITION_MODES)[number]

export interface RestoreOptions {
  dir: string
  topic: string
  partitions: PartitionMode
  /** Partition count when the target is created (default: the backup's). */
  partitionCount?: number
  /** key=value configs over the backup's when the target is created. */
  configs: string[]
  force: boolean
  /** `checking` the backup's files first, then `writing` the records. */
  onProgress?: (progress: {phase: 'checking' | 'writing'; records: number; total: number}) => void
}

export interface RestoreResult {
  dir: string
  sourceTopic: string
  topic: string
  created: boolean
  partitions: PartitionMode
  sourcePartitions: number
  targetPartitions: number
  records: number
  seconds: number
  recordsPerSecond: number
  /** Configs the target was created with (null when it existed). */
  configs: Record<string, string> | null
  notes: string[]
}

/** The backup directory, resolved once (every file is then opened inside it), and its manifest. */
export async function loadCompleteBackup(dir: string): Promise<{root: string; manifest: BackupManifest}> {
  const root = await resolveBackupDir(dir)
  const manifest = await readManifest(root)
  if (!manifest)
    throw new UserError(
      'INVALID_ARGUMENT',
      `${dir} holds no backup (no ${MANIFEST})`,
      'pass the directory given to `topic backup --to`',
    )
  if (!manifest.complete) {
    throw new UserError(
      'BACKUP_INCOMPLETE',
      `the backup in ${dir} is not complete (it was interrupted)`,
      `run \`replayctl topic backup ${manifest.source.topic} --to ${dir}\` again to finish it`,
    )
  }
  return {root, manifest}
}

/**
 * Every partition file against the manifest, decoded in full, before anything reads records from them.
 * `onChecked`: records checked so far, after each chunk (of manifest.records).
 */
export async function checkBackupFiles(
  dir: string,
  manifest: BackupManifest,
  onChecked?: (records: number) => void,
): Promise<void> {
  let records = 0
  for (const entry of manifest.partitions) {
    await checkPartitionFile(dir, entry, (checked) => onChecked?.(records + checked))
    records += entry.records
  }
}

export async function restoreTopic(settings: Settings, options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now()
  validateTopicName(options.topic)
  if (
    options.partitionCount !== undefined &&
    (!Number.isInteger(options.partitionCount) || options.partitionCount <= 0)
  ) {
    throw invalidArgument(
      `--partition-count must be a positive whole number, got ${options.partitionCount}`,
      "leave it out to use the backup's partition count",
    )
  }
  const {root, manifest} = await loadCompleteBackup(options.dir)
  const sourcePartitions = manifest.source.partitions
  if (
    options.partitions === 'same' &&
    options.partitionCount !== undefined &&
    options.partitionCount !== sourcePartitions
  ) {
    throw invalidArgument(
      `--partition-count ${options.partitionCount} differs from the backup's ${sourcePartitions} partitions`,
      'add --partitions rehash to place records by key in a different count',
    )
  }
  const notes: string[] = []
  const createConfigs = targetConfigs(manifest, options.configs, notes)
  // Before the target is created: a backup that fails any check leaves no topic behind.
  await checkBackupFiles(root, manifest, (records) =>
    options.onProgress?.({phase: 'checking', records, total: manifest.records}),
  )

  const target = await prepareTarget(settings, options, manifest, createConfigs)
  const writer = await RecordWriter.open(settings, options.topic)
  const total = manifest.records
  let records = 0
  let lastProgress = 0
  try {
    for (const entry of manifest.partitions) {
      for await (const batch of readPartitionRecords(root, entry)) {
        for (const record of batch) {
          const partition =
            options.partitions === 'same'
              ? entry.partition
              : record.key === null
                ? entry.partition % target.partitions
                : partitionFor(record.key, target.partitions, 'murmur2')
          const headers: Headers | undefined = record.headers.length
            ? record.headers.map((header) => ({[header.key]: header.value}))
            : undefined
          const waiting = writer.write(
            record.key,
            record.value,
            record.timestamp >= 0 ? record.timestamp : null,
            headers,
            {partition},
          )
          if (waiting) await waiting
        }
        records += batch.length
        if (options.onProgress && Date.now() - lastProgress > 200) {
          lastProgress = Date.now()
          options.onProgress({phase: 'writing', records, total})
        }
      }
    }
  } catch (error) {
    await writer.close().catch(() => {})
    throw error
  }
  await writer.close()
  options.onProgress?.({phase: 'writing', records, total})
  if (manifest.source.timestampType === 'LogAppendTime')
    notes.push('the source topic used LogAppendTime; the restored records carry those times as CreateTime')
  const seconds = (Date.now() - started) / 1000
  return {
    dir: options.dir,
    sourceTopic: manifest.source.topic,
    topic: options.topic,
    created: target.created,
    partitions: options.partitions,
    sourcePartitions,
    targetPartitions: target.partitions,
    records,
    seconds,
    recordsPerSecond: Math.round(records / Math.max(seconds, 0.001)),
    configs: target.created ? createConfigs : null,
    notes,
  }
}

/** The backup's topic configs with the overrides; sensitive ones cannot be copied. */
function targetConfigs(manifest: BackupManifest, overrides: string[], notes: string[]): Record<string, string> {
  const configs: Record<string, string> = {}
  if (manifest.source.configs === null)
    notes.push(
      `the backup holds no topic configs (${manifest.source.configsUnavailable ?? 'unknown reason'}); ` +
        'a created target gets the broker defaults',
    )
  for (const [name, value] of Object.entries(manifest.source.configs ?? {})) {
    if (value === '(sensitive)') notes.push(`config ${name} is sensitive and was not copied`)
    else configs[name] = value
  }
  for (const pair of overrides) {
    const at = pair.indexOf('=')
    if (at <= 0)
      throw invalidArgument(
        `malformed --config ${quoteInput(pair)}`,
        'pass topic configs as --config key=value, e.g. --config retention.ms=-1',
      )
    configs[pair.slice(0, at).trim()] = pair.slice(at + 1)
  }
  return configs
}

async function prepareTarget(
  settings: Settings,
  options: RestoreOptions,
  manifest: BackupManifest,
  configs: Record<string, string>,
): Promise<{created: boolean; partitions: number}> {
  const existing = await withAdmin(settings, async (admin) => {
    let metadata
    try {
      metadata = await topicMetadata(settings, admin, options.topic)
    } catch (error) {
      if ((error as UserError).code === 'TOPIC_NOT_FOUND') return null
      throw error
    }
    const marks = await watermarks(
      settings,
      admin,
      options.topic,
      metadata.partitions.map((partition) => partition.partition),
    )
    return {partitions: metadata.partitions.length, records: marks.reduce((sum, mark) => sum + mark.high - mark.low, 0)}
  })
  if (existing === null) {
    const partitions = options.partitionCount ?? manifest.source.partitions
    await createTopic(settings, {
      topic: options.topic,
      partitions,
      compression: 'snappy',
      compact: false,
      configs: [],
      ifNotExists: false,
      exactConfigs: configs,
    })
    return {created: true, partitions}
  }
  if (options.partitions === 'same' && existing.partitions !== manifest.source.partitions) {
    throw invalidArgument(
      `topic '${options.topic}' has ${existing.partitions} partitions, the backup ${manifest.source.partitions}`,
      'restore with --partitions rehash to place records by key, or into a new topic',
    )
  }
  if (options.partitionCount !== undefined && options.partitionCount !== existing.partitions) {
    throw invalidArgument(
      `topic '${options.topic}' exists with ${existing.partitions} partitions, ` +
        `not --partition-count ${options.partitionCount}`,
      'leave --partition-count out for an existing topic',
    )
  }
  if (existing.records > 0 && !options.force) {
    throw new UserError(
      'TOPIC_NOT_EMPTY',
      `topic '${options.topic}' already holds ${existing.records} ${plural(existing.records, 'record')}; ` +
        'nothing was written',
      "restore into a new or empty topic, or pass --force to add the backup's records after them",
    )
  }
  return {created: false, partitions: existing.partitions}
}
