import {BugError, UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import {cachedKafkaDist, kafkaToolTimeoutMs, runKafkaTool} from './apache-dist.js'
import {call, callReadOnly, connectAdmin, topicNotFound, type AdminClient} from './client.js'
import {watermarks} from './offsets.js'
import type {Settings} from '../shared/settings.js'
import {parseDuration} from '../shared/time.js'

/**
 * Topics: create them with delivery_log defaults, list them, and describe partitions (leader,
 * replicas, ISR, watermarks) and configs.
 *
 * The client library (@confluentinc/kafka-javascript 1.10) binds neither DescribeConfigs nor a
 * KafkaJS-style describeConfigs, so `describe` reads configs with Apache Kafka's own ConfigCommand
 * from the jars `dev up` caches (Java needed). Without Java or the jars it says so at once, in one
 * line in `configsUnavailable`, and still describes the partitions.
 */
export const COMPRESSIONS = ['snappy', 'lz4', 'zstd', 'gzip', 'none'] as const
export type Compression = (typeof COMPRESSIONS)[number]

export interface PartitionInfo {
  partition: number
  leader: number | null
  replicas: number[]
  isr: number[]
}

export interface TopicMetadata {
  topic: string
  partitions: PartitionInfo[]
}

export interface CreateTopicOptions {
  topic: string
  partitions: number
  replicationFactor?: number
  compression: Compression
  compact: boolean
  retention?: string
  configs: string[]
  ifNotExists: boolean
  /** Exactly these configs instead of the delivery_log defaults (a restore copies the source's). */
  exactConfigs?: Record<string, string>
}

export interface CreateTopicResult {
  topic: string
  created: boolean
  partitions: number
  replicationFactor: number
  configs: Record<string, string>
}

export interface PartitionDescription extends PartitionInfo {
  low: number
  high: number
  /** high - low: exact for a plain log, an upper bound where compaction or transactions left gaps. */
  messages: number
}

export interface TopicDescription {
  topic: string
  partitions: PartitionDescription[]
  replicationFactor: number
  messages: number
  /** Configs set on the topic (not broker defaults), or null with the reason in configsUnavailable. */
  configs: Record<string, string> | null
  configsUnavailable?: string
}

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/

export function validateTopicName(topic: string): void {
  if (!LEGAL_TOPIC.test(topic) || topic === '.' || topic === '..') {
    throw invalidArgument(
      `${quoteInput(topic)} is not a legal topic name`,
      'use 1 to 249 of the characters a-z A-Z 0-9 . _ -',
    )
  }
}

export async function withAdmin<T>(settings: Settings, work: (admin: AdminClient) => Promise<T>): Promise<T> {
  const admin = await connectAdmin(settings)
  try {
    return await work(admin)
  } finally {
    admin.disconnect()
  }
}

export async function topicMetadata(settings: Settings, admin: AdminClient, topic: string): Promise<TopicMetadata> {
  validateTopicName(topic)
  const [description] = await callReadOnly<
    {
      name: string
      error?: {code: number; message: string}
      partitions: {partition: number; leader: {id: number} | null; replicas: {id: number}[]; isr: {id: number}[]}[]
    }[]
  >(settings, topic, (cb, timeout) => admin.describeTopics([topic], {timeout}, cb as never))
  if (!description || description.error?.code === 3) throw topicNotFound(topic)
  if (description.error) {
    throw new UserError(
      'KAFKA_REJECTED',
      `cannot describe topic '${topic}': ${description.error.message}`,
      'check your ACLs and the broker log',
    )
  }
  return {
    topic,
    partitions: description.partitions
      .map((partition) => ({
        partition: partition.partition,
        leader: partition.leader?.id ?? null,
        replicas: partition.replicas.map((broker) => broker.id),
        isr: partition.isr.map((broker) => broker.id),
      }))
      .sort((a, b) => a.partition - b.partition),
  }
}

export function topicConfigs(
  options: Pick<CreateTopicOptions, 'compression' | 'compact' | 'retention' | 'configs'>,
): Record<string, string> {
  const configs: Record<string, string> = {
    'compression.type': options.compression === 'none' ? 'uncompressed' : options.compression,
    'cleanup.policy': options.compact ? 'compact' : 'delete',
  }
  if (options.retention !== undefined || !options.compact) {
    configs['retention.ms'] = String(parseDuration(options.retention ?? '5d', '--retention'))
  }
  for (const pair of options.configs) {
    const at = pair.indexOf('=')
    if (at <= 0)
      throw invalidArgument(
        `malformed --config ${quoteInput(pair)}`,
        'pass topic configs as --config key=value, e.g. --config segment.bytes=104857600',
      )
    configs[pair.slice(0, at).trim()] = pair.slice(at + 1)
  }
  return configs
}

export async function createTopic(settings: Settings, options: CreateTopicOptions): Promise<CreateTopicResult> {
  validateTopicName(options.topic)
  if (!Number.isInteger(options.partitions) || options.partitions <= 0) {
    throw invalidArgument(
      `--partitions must be a positive whole number, got ${options.partitions}`,
      'a delivery_log usually has 12 or more; the count can never shrink',
    )
  }
  if (
    options.replicationFactor !== undefined &&
    (!Number.isInteger(options.replicationFactor) || options.replicationFactor <= 0)
  ) {
    throw invalidArgument(
      `--replication-factor must be a positive whole number, got ${options.replicationFactor}`,
      'leave it out to use the broker default',
    )
  }
  const configs = options.exactConfigs ?? topicConfigs(options)
  return withAdmin(settings, async (admin) => {
    try {
      await call<void>(settings, options.topic, (cb) =>
        admin.createTopic(
          {
            topic: options.topic,
            num_partitions: options.partitions,
            replication_factor: options.replicationFactor ?? -1,
            config: configs,
          },
          settings.timeoutMs,
          cb as never,
        ),
      )
    } catch (error) {
      const cause = (error as UserError).cause as {code?: number} | undefined
      if (cause?.code === 36) {
        if (!options.ifNotExists)
          throw new UserError(
            'TOPIC_EXISTS',
            `topic '${options.topic}' already exists`,
            'pass --if-not-exists to accept an existing topic, or choose another name',
          )
        const existing = await topicMetadata(settings, admin, options.topic)
        return {
          topic: options.topic,
          created: false,
          partitions: existing.partitions.length,
          replicationFactor: existing.partitions[0]?.replicas.length ?? 0,
          configs,
        }
      }
      throw error
    }
    const created = await waitForMetadata(settings, admin, options.topic)
    return {
      topic: options.topic,
      created: true,
      partitions: created.partitions.length,
      replicationFactor: created.partitions[0]?.replicas.length ?? 0,
      configs,
    }
  })
}

/** The controller has accepted the topic; wait until brokers serve its metadata. */
async function waitForMetadata(settings: Settings, admin: AdminClient, topic: string): Promise<TopicMetadata> {
  const deadline = Date.now() + settings.timeoutMs
  for (;;) {
    try {
      const metadata = await topicMetadata(settings, admin, topic)
      if (metadata.partitions.every((partition) => partition.leader !== null)) return metadata
    } catch (error) {
      if ((error as UserError).code !== 'TOPIC_NOT_FOUND' || Date.now() > deadline) throw error
    }
    if (Date.now() > deadline) return topicMetadata(settings, admin, topic)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export interface TopicSummary {
  topic: string
  partitions: number
  replicationFactor: number
}

export async function listTopics(settings: Settings, options: {internal: boolean}): Promise<TopicSummary[]> {
  return withAdmin(settings, async (admin) => {
    const names = await callReadOnly<string[]>(settings, undefined, (cb, timeout) =>
      admin.listTopics({timeout}, cb as never),
    )
    const visible = names.filter((name) => options.internal || !name.startsWith('__')).sort()
    if (visible.length === 0) return []
    const described = await callReadOnly<{name: string; partitions: {replicas: unknown[]}[]}[]>(
      settings,
      undefined,
      (cb, timeout) => admin.describeTopics(visible, {timeout}, cb as never),
    )
    return described
      .map((topic) => ({
        topic: topic.name,
        partitions: topic.partitions.length,
        replicationFactor: topic.partitions[0]?.replicas.length ?? 0,
      }))
      .sort((a, b) => a.topic.localeCompare(b.topic))
  })
}

export async function describeTopic(
  settings: Settings,
  topic: string,
  options: {configs: boolean},
): Promise<TopicDescription> {
  const {metadata, marks} = await withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, topic)
    const marks = await watermarks(
      settings,
      admin,
      topic,
      metadata.partitions.map((partition) => partition.partition),
    )
    return {metadata, marks}
  })
  const partitions = metadata.partitions.map((partition, index) => {
    const mark = marks[index]
    if (mark?.partition !== partition.partition)
      throw new BugError(`the watermarks of '${topic}' are not in its partitions' order`)
    return {...partition, low: mark.low, high: mark.high, messages: mark.high - mark.low}
  })
  const description: TopicDescription = {
    topic,
    partitions,
    replicationFactor: partitions[0]?.replicas.length ?? 0,
    messages: partitions.reduce((sum, partition) => sum + partition.messages, 0),
    configs: null,
  }
  if (!options.configs) {
    description.configsUnavailable = 'not requested (--no-configs)'
    return description
  }
  try {
    description.configs = await readTopicConfigs(settings, topic)
  } catch (error) {
    description.configsUnavailable =
      "they need Java and Apache Kafka's ConfigCommand, the client library having no DescribeConfigs " +
      `(${(error as Error).message}); --no-configs skips them`
  }
  return description
}

/** Configs set on the topic, read with Apache Kafka's ConfigCommand. */
export async function readTopicConfigs(
  settings: Settings,
  topic: string,
  timeoutMs = kafkaToolTimeoutMs(settings),
): Promise<Record<string, string>> {
  const dist = cachedKafkaDist()
  const output = await runKafkaTool(
    dist,
    'kafka.admin.ConfigCommand',
    ['--bootstrap-server', settings.brokers, '--entity-type', 'topics', '--entity-name', topic, '--describe'],
    timeoutMs,
  )
  const configs: Record<string, string> = {}
  for (const [, name = '', value = '', sensitive] of output.matchAll(/^\s+([\w.]+)=(.*?) sensitive=(true|false)/gm))
    configs[name] = sensitive === 'true' ? '(sensitive)' : value
  return configs
}
