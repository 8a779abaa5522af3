import {openPool} from '../db/database.js'
import {call} from '../kafka/client.js'
import {alterTopicConfigs, validateConfigChanges, type AlterConfigsResult} from '../kafka/topic-admin.js'
import {topicMetadata, validateTopicName, withAdmin} from '../kafka/topics.js'
import {invalidArgument} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {recordPartitionCount} from './store/partition-history/index.js'

export interface AlterPartitionsResult {
  topic: string
  before: number
  after: number
  changed: boolean
  /** Set when the count grew: which keys now land elsewhere, and that replays know it. */
  warning?: string
}

/**
 * Grows a topic to `partitions`. Kafka places a key at murmur2(key) % count, so most keys move to
 * another partition from now on; the new count is recorded in topic_partition_counts (with the old
 * one, in case the engine never saw it) so replays also read each key's partition under the old
 * count for events written before the change.
 */
export async function alterPartitions(
  settings: Settings,
  topic: string,
  partitions: number,
): Promise<AlterPartitionsResult> {
  validateTopicName(topic)
  if (!Number.isInteger(partitions) || partitions <= 0)
    throw invalidArgument(
      `--partitions must be a positive whole number, got ${partitions}`,
      'pass the new, larger partition count',
    )
  return withAdmin(settings, async (admin) => {
    const before = (await topicMetadata(settings, admin, topic)).partitions.length
    if (partitions < before) {
      throw invalidArgument(
        `topic '${topic}' has ${before} partitions and Kafka cannot reduce a partition count`,
        `pass --partitions ${before} or more; ` +
          'to shrink, create a new topic and copy the data (`topic backup`, `topic restore`)',
      )
    }
    if (partitions === before) return {topic, before, after: before, changed: false}
    // The database is opened before Kafka is changed: a database that is down leaves the topic as it was.
    const pool = await openPool(settings.mysqlUrl, {timeoutMs: settings.timeoutMs})
    try {
      await recordPartitionCount(pool, topic, before)
      await call<void>(settings, topic, (cb) =>
        admin.createPartitions(topic, partitions, settings.timeoutMs, cb as never),
      )
      await recordPartitionCount(pool, topic, partitions)
    } finally {
      await pool.end()
    }
    const after = (await topicMetadata(settings, admin, topic)).partitions.length
    return {
      topic,
      before,
      after,
      changed: true,
      warning:
        `keyed records written from now on go to partition murmur2(key) % ${partitions} instead of % ${before}, ` +
        'so most keys move to another partition and per-key order holds only within each period; ' +
        'the change is recorded in topic_partition_counts, so replays read both',
    }
  })
}

export interface AlterTopicResult {
  topic: string
  partitions?: AlterPartitionsResult
  configs?: AlterConfigsResult
}

/** `topic alter`: every flag is checked before the first change is made. */
export async function alterTopic(
  settings: Settings,
  topic: string,
  options: {partitions?: number; set: string[]; remove: string[]},
): Promise<AlterTopicResult> {
  validateTopicName(topic)
  const configs = validateConfigChanges(options)
  const changesConfigs = configs.set.size > 0 || configs.remove.length > 0
  if (options.partitions === undefined && !changesConfigs)
    throw invalidArgument('nothing to change', 'pass --partitions N, --config key=value or --delete-config key')
  const result: AlterTopicResult = {topic}
  if (options.partitions !== undefined) result.partitions = await alterPartitions(settings, topic, options.partitions)
  if (changesConfigs) result.configs = await alterTopicConfigs(settings, topic, options)
  return result
}
