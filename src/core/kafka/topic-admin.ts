import {UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {cachedKafkaDist, kafkaToolTimeoutMs, runKafkaTool} from './apache-dist.js'
import {call} from './client.js'
import {readTopicConfigs, topicMetadata, validateTopicName, withAdmin} from './topics.js'

/**
 * Changing and deleting topics: the verbs of kafkactl, rpk and Apache's kafka-topics/kafka-configs.
 * Deleting and growing go through the client's admin API; configs through Apache Kafka's own
 * ConfigCommand, the client library having no AlterConfigs (as `topic describe` reads them).
 */

/**
 * Topics Kafka and its ecosystem keep for themselves: the group offsets, transaction state, KRaft
 * metadata (all `__`-prefixed), and a schema registry's store. Deleting one loses every group's
 * offsets or every schema.
 */
export function internalTopicReason(topic: string): string | undefined {
  if (topic.startsWith('__')) return 'Kafka keeps its own state there (group offsets, transactions, metadata)'
  if (topic === '_schemas') return 'a schema registry keeps every schema there'
  return undefined
}

export interface DeleteTopicsResult {
  deleted: string[]
}

/**
 * Deletes the topics once every one is known to exist and not internal, and `confirm` agreed: a
 * missing or internal name among several deletes none of them.
 */
export async function deleteTopics(
  settings: Settings,
  topics: string[],
  confirm: (topics: string[]) => Promise<boolean>,
): Promise<DeleteTopicsResult> {
  const names = [...new Set(topics)]
  for (const topic of names) {
    validateTopicName(topic)
    const reason = internalTopicReason(topic)
    if (reason)
      throw invalidArgument(
        `refusing to delete internal topic '${topic}': ${reason}`,
        'replayctl never deletes internal topics',
      )
  }
  return withAdmin(settings, async (admin) => {
    for (const topic of names) await topicMetadata(settings, admin, topic)
    if (!(await confirm(names)))
      throw new UserError(
        'INVALID_INPUT',
        'deletion not confirmed; nothing was deleted',
        'type the topic name (or y) at the prompt, or pass --yes',
      )
    const deleted: string[] = []
    for (const topic of names) {
      await call<void>(settings, topic, (cb) => admin.deleteTopic(topic, settings.timeoutMs, cb as never))
      deleted.push(topic)
    }
    return {deleted}
  })
}

export interface ConfigChange {
  key: string
  /** The value set on the topic before, null when it was not set (the broker default applied). */
  old: string | null
  new: string | null
}

export interface AlterConfigsResult {
  topic: string
  changes: ConfigChange[]
}

const CONFIG_KEY = /^[a-z][a-z0-9.]*[a-z0-9]$/

function parseConfigPairs(pairs: string[]): Map<string, string> {
  const parsed = new Map<string, string>()
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    const key = at > 0 ? pair.slice(0, at).trim() : ''
    const value = at > 0 ? pair.slice(at + 1).trim() : ''
    if (!CONFIG_KEY.test(key) || value === '') {
      throw new UserError(
        'INVALID_CONFIG',
        `malformed --config ${quoteInput(pair)}`,
        'pass --config key=value with a topic config name, e.g. --config retention.ms=86400000',
      )
    }
    parsed.set(key, value)
  }
  return parsed
}

/** Checks --config and --delete-config before anything is changed. */
export function validateConfigChanges(options: {set: string[]; remove: string[]}): {
  set: Map<string, string>
  remove: string[]
} {
  const set = parseConfigPairs(options.set)
  const remove = [...new Set(options.remove.map((key) => key.trim()))]
  for (const key of remove) {
    if (!CONFIG_KEY.test(key))
      throw new UserError(
        'INVALID_CONFIG',
        `malformed --delete-config ${quoteInput(key)}`,
        'pass a topic config name, e.g. --delete-config retention.ms',
      )
    if (set.has(key))
      throw invalidArgument(
        `config '${key}' is both set and deleted`,
        'pass it with --config or with --delete-config, not both',
      )
  }
  return {set, remove}
}

/** Sets and removes topic configs with Apache Kafka's ConfigCommand and reports each value before and after. */
export async function alterTopicConfigs(
  settings: Settings,
  topic: string,
  options: {set: string[]; remove: string[]},
): Promise<AlterConfigsResult> {
  validateTopicName(topic)
  const {set, remove} = validateConfigChanges(options)
  const dist = cachedKafkaDist()
  await withAdmin(settings, (admin) => topicMetadata(settings, admin, topic))
  // Three JVM runs (read, alter, read again) share one bound, so --timeout bounds the command.
  const deadline = Date.now() + kafkaToolTimeoutMs(settings)
  const left = () => Math.max(1000, deadline - Date.now())
  const before = await readTopicConfigs(settings, topic, left())
  // ConfigCommand splits --add-config at commas; a value holding commas (a list) goes in brackets.
  const additions = [...set]
    .map(([key, value]) => `${key}=${value.includes(',') && !value.startsWith('[') ? `[${value}]` : value}`)
    .join(',')
  try {
    await runKafkaTool(
      dist,
      'kafka.admin.ConfigCommand',
      [
        '--bootstrap-server',
        settings.brokers,
        '--entity-type',
        'topics',
        '--entity-name',
        topic,
        '--alter',
        ...(additions ? ['--add-config', additions] : []),
        ...(remove.length ? ['--delete-config', remove.join(',')] : []),
      ],
      left(),
    )
  } catch (error) {
    // The broker validates names and values: that is the operator's input, not an outage.
    const stderr = String(((error as UserError).cause as {stderr?: string} | undefined)?.stderr ?? '')
    const reason = /(?:InvalidConfigurationException|InvalidRequestException|ConfigException): (.*)$/m.exec(stderr)?.[1]
    if (reason)
      throw new UserError(
        'INVALID_CONFIG',
        `Kafka refused the config change on topic '${topic}': ${reason.trim()}`,
        "check the names and values against Kafka's topic configs",
        {cause: error},
      )
    throw error
  }
  const after = await readTopicConfigs(settings, topic, left())
  const changes = [...set.keys(), ...remove].map((key) => ({key, old: before[key] ?? null, new: after[key] ?? null}))
  return {topic, changes}
}
