import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, isAbsolute, join} from 'node:path'

import {UserError, quoteInput} from './errors.js'

/**
 * Where replayctl connects, resolved the way kafkactl and rpk do it. For each setting the first
 * source that has it wins:
 *
 *   1. flags      --brokers, --mysql-url, -X key=value
 *   2. env        REPLAYCTL_BROKERS, REPLAYCTL_MYSQL_URL, REPLAYCTL_SCHEMA_REGISTRY_URL
 *                 (REPLAYCTL_CONNECT_URL for `connect`)
 *   3. context    the named context (--context, REPLAYCTL_CONTEXT, or the file's currentContext)
 *                 in the config file ($REPLAYCTL_CONFIG, default ~/.config/replayctl/config.json)
 *   4. defaults   what `replayctl dev up` starts on this machine
 *
 * librdkafka properties (-X) merge: the context's first, then each -X on top.
 *
 * This module reads every environment variable replayctl uses (the README's "Connecting" lists
 * them); the rest of the program gets their values from here. Only src/cli looks at the terminal's
 * own variables (NO_COLOR, TERM, COLUMNS, CI), which describe where output goes, not a setting.
 *
 * The key that encrypts webhook secrets at rest (32 bytes, base64) is found the same way:
 * REPLAYCTL_SECRET_KEY, else the context's "secretKeyFile" (relative to the config file), else
 * ~/.config/replayctl/secret.key ($XDG_CONFIG_HOME honoured), which `replayctl dev up` creates.
 *
 * Config file:
 *   {
 *     "currentContext": "dc1",
 *     "contexts": {
 *       "dc1": {"brokers": "k1:9092,k2:9092", "mysqlUrl": "mysql://replay@db1/replayctl",
 *               "librdkafka": {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512"},
               "secretKeyFile": "/etc/replayctl/secret.key", "schemaRegistryUrl": "http://registry1:8081"}
 *     }
 *   }
 */
export interface Settings {
  brokers: string
  mysqlUrl: string
  /** Extra librdkafka properties (TLS, SASL, tuning), applied to every client. */
  librdkafka: Record<string, string>
  context?: string
  /** Where each connection setting came from, for `dev status` and error messages. */
  sources: {brokers: SettingSource; mysqlUrl: SettingSource}
  timeoutMs: number
  /** Where the webhook secrets' key comes from; read only by what needs it (webhooks/secret-key.ts). */
  secretKey: SecretKeySetting
  /**
   * Whether webhooks may point at loopback, private and link-local addresses (local testing):
   * --allow-private-targets, else REPLAYCTL_ALLOW_PRIVATE_TARGETS=1. Off by default (the SSRF guard).
   */
  allowPrivateTargets: boolean
  /**
   * A Confluent-compatible Schema Registry's REST base URL (`schema` commands, `log read --decode`):
   * REPLAYCTL_SCHEMA_REGISTRY_URL, else the context's "schemaRegistryUrl", else the one `dev up
   * --schema-registry` starts.
   */
  schemaRegistryUrl: string
}
export type SettingSource = 'flag' | 'env' | 'context' | 'default'
export type SecretKeySetting =
  {source: 'env'; variable: 'REPLAYCTL_SECRET_KEY'; base64: string} | {source: 'context' | 'default'; file: string}

export interface SettingsInput {
  brokers?: string
  mysqlUrl?: string
  context?: string
  librdkafka?: string[]
  timeoutMs?: number
  allowPrivateTargets?: boolean
  schemaRegistryUrl?: string
}

interface ContextEntry {
  brokers?: string
  connectUrl?: string
  mysqlUrl?: string
  librdkafka?: Record<string, string | number | boolean>
  apiTokens?: unknown
  ingestTokens?: unknown
  secretKeyFile?: string
  schemaRegistryUrl?: string
}

interface ConfigFile {
  currentContext?: string
  contexts?: Record<string, ContextEntry>
}

export const DEFAULT_BROKERS = '127.0.0.1:9092'
export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/replayctl'
export const DEFAULT_TIMEOUT_MS = 10_000
/**
 * Apicurio Registry's Confluent-compatible API as `dev up --schema-registry` starts it: not
 * Confluent's 8081, which `ingest serve` listens on by default.
 */
export const DEFAULT_SCHEMA_REGISTRY_PORT = 8085
export const DEFAULT_SCHEMA_REGISTRY_URL = `http://127.0.0.1:${DEFAULT_SCHEMA_REGISTRY_PORT}/apis/ccompat/v7`
/** The REST API of the Kafka Connect worker `replayctl dev up --connect` starts. */
export const DEFAULT_CONNECT_URL = 'http://127.0.0.1:8083'

/** Where a Kafka Connect worker's REST API is: --url, else REPLAYCTL_CONNECT_URL, else the context's "connectUrl". */
export function resolveConnectUrl(
  input: {url?: string; context?: string; timeoutMs?: number},
  env: NodeJS.ProcessEnv = process.env,
): {url: string; source: SettingSource; timeoutMs: number} {
  const chosen = input.url
    ? {url: input.url, source: 'flag' as const}
    : env.REPLAYCTL_CONNECT_URL
      ? {url: env.REPLAYCTL_CONNECT_URL, source: 'env' as const}
      : (() => {
          const fromContext = loadContext(input.context, env).context.connectUrl
          return fromContext
            ? {url: fromContext, source: 'context' as const}
            : {url: DEFAULT_CONNECT_URL, source: 'default' as const}
        })()
  let parsed: URL
  try {
    parsed = new URL(chosen.url)
  } catch {
    throw new UserError(
      'INVALID_ARGUMENT',
      `the Kafka Connect URL ${quoteInput(chosen.url)} (${chosen.source}) is not a URL`,
      'give one like http://127.0.0.1:8083',
    )
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UserError(
      'INVALID_ARGUMENT',
      `the Kafka Connect URL ${quoteInput(chosen.url)} (${chosen.source}) is not http or https`,
      'give one like http://127.0.0.1:8083',
    )
  return {url: chosen.url.replace(/\/+$/, ''), source: chosen.source, timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT_MS}
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REPLAYCTL_CONFIG) return env.REPLAYCTL_CONFIG
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'replayctl', 'config.json')
}

/** Where the secrets' key lives when neither REPLAYCTL_SECRET_KEY nor a context names one. */
function defaultSecretKeyFile(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'replayctl', 'secret.key')
}

/**
 * What replayctl finds on this machine rather than connects to: the local stack of `replayctl dev`
 * and the Apache Kafka tools it runs.
 */
export interface LocalSettings {
  /** The local stack's state: REPLAYCTL_STATE, else $XDG_STATE_HOME/replayctl/dev (~/.local/state). */
  stateDir: string
  /** Apache Kafka's jars from Maven Central: REPLAYCTL_CACHE, else $XDG_CACHE_HOME/replayctl (~/.cache). */
  cacheDir: string
  /** The Java that runs them: $JAVA_HOME/bin/java, else java on PATH. */
  java: string
  /** Largest heap (-Xmx) of each local Kafka node: REPLAYCTL_KAFKA_HEAP, default 1g. */
  kafkaHeap: string
  /** Largest heap (-Xmx) of the local Kafka Connect worker: REPLAYCTL_CONNECT_HEAP, default 384m. */
  connectHeap: string
  /**
   * Whether the local Kafka nodes give leadership back to preferred replicas on their own
   * (auto.leader.rebalance.enable, checked every 5 minutes): on unless REPLAYCTL_KAFKA_LEADER_REBALANCE
   * is 0, read when a node starts. Off, leaders stay where a failover put them until `cluster
   * elect-leaders` moves them, however long a test takes.
   */
  kafkaLeaderRebalance: boolean
  /**
   * The key file `dev up` creates for the local stack (the default location), or null when
   * REPLAYCTL_SECRET_KEY gives the key.
   */
  localSecretKeyFile: string | null
  /**
   * REPLAYCTL_MYSQL_URL as set (undefined if not): `dev up` prints it back when it points at the
   * stack's MariaDB, so its hint keeps the database and user.
   */
  mysqlUrlFromEnv?: string
}

export function localSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  return {
    stateDir: env.REPLAYCTL_STATE || join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'replayctl', 'dev'),
    cacheDir: env.REPLAYCTL_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'replayctl'),
    java: env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : 'java',
    kafkaHeap: env.REPLAYCTL_KAFKA_HEAP || '1g',
    connectHeap: env.REPLAYCTL_CONNECT_HEAP || '384m',
    kafkaLeaderRebalance: env.REPLAYCTL_KAFKA_LEADER_REBALANCE !== '0',
    localSecretKeyFile: env.REPLAYCTL_SECRET_KEY ? null : defaultSecretKeyFile(env),
    mysqlUrlFromEnv: env.REPLAYCTL_MYSQL_URL || undefined,
  }
}

function loadContext(name: string | undefined, env: NodeJS.ProcessEnv): {contextName?: string; context: ContextEntry} {
  const file = readConfigFile(configPath(env))
  const contextName = name ?? env.REPLAYCTL_CONTEXT ?? file.currentContext
  if (contextName === undefined) return {context: {}}
  const found = file.contexts?.[contextName]
  if (!found) {
    const known = Object.keys(file.contexts ?? {})
    throw new UserError(
      'CONTEXT_NOT_FOUND',
      `no context '${contextName}' in ${configPath(env)}`,
      known.length ? `use one of: ${known.join(', ')}` : 'add it under "contexts" in that file, or drop --context',
    )
  }
  return {contextName, context: found}
}

export function resolveSettings(input: SettingsInput, env: NodeJS.ProcessEnv = process.env): Settings {
  const {contextName, context} = loadContext(input.context, env)

  const pick = (
    flag: string | undefined,
    envValue: string | undefined,
    fromContext: string | undefined,
    fallback: string,
  ) =>
    flag
      ? {value: flag, source: 'flag' as const}
      : envValue
        ? {value: envValue, source: 'env' as const}
        : fromContext
          ? {value: fromContext, source: 'context' as const}
          : {value: fallback, source: 'default' as const}

  const brokers = pick(input.brokers, env.REPLAYCTL_BROKERS, context.brokers, DEFAULT_BROKERS)
  const mysqlUrl = pick(input.mysqlUrl, env.REPLAYCTL_MYSQL_URL, context.mysqlUrl, DEFAULT_MYSQL_URL)

  const librdkafka: Record<string, string> = {}
  for (const [key, value] of Object.entries(context.librdkafka ?? {})) librdkafka[key] = String(value)
  Object.assign(librdkafka, parseLibrdkafkaProperties(input.librdkafka ?? []))

  return {
    brokers: brokers.value,
    mysqlUrl: mysqlUrl.value,
    librdkafka,
    context: contextName,
    sources: {brokers: brokers.source, mysqlUrl: mysqlUrl.source},
    timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    secretKey: resolveSecretKey(context, env),
    allowPrivateTargets: input.allowPrivateTargets === true || env.REPLAYCTL_ALLOW_PRIVATE_TARGETS === '1',
    schemaRegistryUrl:
      input.schemaRegistryUrl ||
      env.REPLAYCTL_SCHEMA_REGISTRY_URL ||
      context.schemaRegistryUrl ||
      DEFAULT_SCHEMA_REGISTRY_URL,
  }
}

function resolveSecretKey(context: ContextEntry, env: NodeJS.ProcessEnv): SecretKeySetting {
  if (env.REPLAYCTL_SECRET_KEY)
    return {source: 'env', variable: 'REPLAYCTL_SECRET_KEY', base64: env.REPLAYCTL_SECRET_KEY}
  const file = context.secretKeyFile
  if (file === undefined) return {source: 'default', file: defaultSecretKeyFile(env)}
  if (typeof file !== 'string' || file === '') {
    throw new UserError(
      'INVALID_CONFIG',
      `"secretKeyFile" in ${configPath(env)} must be a file path`,
      'name the file holding the base64 key, e.g. "/etc/replayctl/secret.key"',
    )
  }
  return {source: 'context', file: isAbsolute(file) ? file : join(dirname(configPath(env)), file)}
}

/** Parses `-X key=value` pairs (values may contain '='). */
export function parseLibrdkafkaProperties(pairs: string[]): Record<string, string> {
  const properties: Record<string, string> = {}
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    const key = at > 0 ? pair.slice(0, at).trim() : ''
    if (!key || /\s/.test(key)) {
      throw new UserError(
        'INVALID_CONFIG',
        `malformed -X ${quoteInput(pair)}`,
        'pass librdkafka properties as -X key=value, e.g. -X security.protocol=SSL',
      )
    }
    properties[key] = pair.slice(at + 1)
  }
  return properties
}

function readConfigFile(path: string): ConfigFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new UserError(
      'INVALID_CONFIG',
      `cannot read config file ${path}: ${(error as Error).message}`,
      'fix its permissions or point REPLAYCTL_CONFIG elsewhere',
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new UserError(
      'INVALID_CONFIG',
      `config file ${path} is not valid JSON (${(error as Error).message})`,
      'fix the file or point REPLAYCTL_CONFIG elsewhere',
    )
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UserError('INVALID_CONFIG', `config file ${path} must hold a JSON object`, 'see the README for its shape')
  }
  return parsed as ConfigFile
}

/** Host:port pairs of a bootstrap list, for messages. */
export function describeBrokers(settings: Settings): string {
  return `${settings.brokers}${settings.context ? ` (context ${settings.context})` : ''}`
}

/**
 * A bearer token of the HTTP API (`replayctl api serve`), scoped to every webhook ("*") or to a
 * list of webhook ids, with its own rate limit (requests per rate-limit window of the server).
 */
export interface ApiTokenSpec {
  token: string
  webhooks: '*' | string[]
  rateLimit?: number
}

export const MIN_API_TOKEN_LENGTH = 16

/**
 * The API's tokens: REPLAYCTL_API_TOKENS (a JSON array) when set, else the context's `apiTokens`:
 *   "apiTokens": [{"token": "...", "webhooks": "*"}, {"token": "...", "webhooks": ["acme"], "rateLimit": 100}]
 * Messages name a token by its position, never by its value.
 */
export function resolveApiTokens(
  contextName: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ApiTokenSpec[] {
  const {raw, where} = tokenList('REPLAYCTL_API_TOKENS', 'apiTokens', contextName, env)
  const fix =
    'give [{"token": "<at least 16 characters>", "webhooks": "*" or ["<webhook id>", ...], ' +
    '"rateLimit": <requests per window, optional>}]'
  if (!Array.isArray(raw)) throw new UserError('INVALID_CONFIG', `${where} must be a JSON array`, fix)
  const seen = new Set<string>()
  return raw.map((entry: unknown, index): ApiTokenSpec => {
    const bad = (what: string) => new UserError('INVALID_CONFIG', `${where}: token #${index + 1} ${what}`, fix)
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('is not an object')
    const {token, webhooks, rateLimit} = entry as Record<string, unknown>
    checkToken(token, seen, bad)
    if (
      webhooks !== '*' &&
      !(Array.isArray(webhooks) && webhooks.every((id) => typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id)))
    ) {
      throw bad('needs "webhooks": "*" or a list of webhook ids')
    }
    if (rateLimit !== undefined && !(Number.isSafeInteger(rateLimit) && (rateLimit as number) > 0))
      throw bad('has a "rateLimit" that is not a positive whole number')
    return {
      token,
      webhooks: webhooks === '*' ? '*' : [...(webhooks as string[])],
      ...(rateLimit === undefined ? {} : {rateLimit: rateLimit as number}),
    }
  })
}

/**
 * A token list from the environment variable (a JSON array) when it is set, else from the
 * context's entry: the same two places for every server, so a token need sit neither in argv nor
 * in the environment (the config file can be readable by the service user only).
 */
function tokenList(
  variable: string,
  contextKey: 'apiTokens' | 'ingestTokens',
  contextName: string | undefined,
  env: NodeJS.ProcessEnv,
): {raw: unknown; where: string} {
  const value = env[variable]
  if (value !== undefined && value !== '') {
    try {
      return {raw: JSON.parse(value), where: variable}
    } catch {
      throw new UserError(
        'INVALID_CONFIG',
        `${variable} is not valid JSON`,
        'set it to a JSON array of token objects (see the README)',
      )
    }
  }
  const {contextName: name, context} = loadContext(contextName, env)
  return {raw: context[contextKey] ?? [], where: `${contextKey} of context '${name ?? '(none)'}' in ${configPath(env)}`}
}

function checkToken(token: unknown, seen: Set<string>, bad: (what: string) => UserError): asserts token is string {
  if (
    typeof token !== 'string' ||
    token.length < MIN_API_TOKEN_LENGTH ||
    token.length > 512 ||
    !/^[\x21-\x7e]+$/.test(token)
  ) {
    throw bad(`needs a "token" of ${MIN_API_TOKEN_LENGTH} to 512 printable characters without spaces`)
  }
  if (seen.has(token)) throw bad('repeats an earlier token')
  seen.add(token)
}

/**
 * A bearer token of `replayctl ingest serve`, scoped to the keys (webhook ids) its events may
 * have and the topics it may write. A pattern is a key or topic name in which `*` stands for any
 * run of characters (`acme-*`); "*" alone is every one. A scope left out is every one, but a
 * token must name at least one of the two.
 */
export interface IngestTokenSpec {
  token: string
  keys: '*' | string[]
  topics: '*' | string[]
}

const KEY_PATTERN = /^[A-Za-z0-9_*-]{1,64}$/
const TOPIC_PATTERN = /^[A-Za-z0-9._*-]{1,249}$/

/**
 * The ingest server's tokens: REPLAYCTL_INGEST_TOKENS (a JSON array) when set, else the context's
 * `ingestTokens`:
 *   "ingestTokens": [{"token": "...", "keys": ["acme-*"]}, {"token": "...", "keys": "*", "topics": ["delivery_log"]}]
 * Messages name a token by its position, never by its value.
 */
export function resolveIngestTokens(
  contextName: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): IngestTokenSpec[] {
  const {raw, where} = tokenList('REPLAYCTL_INGEST_TOKENS', 'ingestTokens', contextName, env)
  const fix =
    `give [{"token": "<at least ${MIN_API_TOKEN_LENGTH} characters>", ` +
    '"keys": "*" or ["<webhook id or pattern such as acme-*>", ...], ' +
    '"topics": "*" or ["<topic or pattern>", ...]}] (keys, topics or both)'
  if (!Array.isArray(raw)) throw new UserError('INVALID_CONFIG', `${where} must be a JSON array`, fix)
  const seen = new Set<string>()
  return raw.map((entry: unknown, index): IngestTokenSpec => {
    const bad = (what: string) => new UserError('INVALID_CONFIG', `${where}: token #${index + 1} ${what}`, fix)
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('is not an object')
    const {token, keys, topics, ...rest} = entry as Record<string, unknown>
    checkToken(token, seen, bad)
    const [unknownField] = Object.keys(rest)
    if (unknownField !== undefined) throw bad(`has an unknown field "${unknownField.slice(0, 40)}"`)
    if (keys === undefined && topics === undefined)
      throw bad('has no scope: give "keys", "topics" or both ("*" for all)')
    const scope = (value: unknown, name: string, pattern: RegExp, alphabet: string): '*' | string[] => {
      if (value === undefined || value === '*') return '*'
      if (
        Array.isArray(value) &&
        value.length > 0 &&
        value.every((item) => typeof item === 'string' && pattern.test(item))
      )
        return [...(value as string[])]
      throw bad(`needs "${name}": "*" or a non-empty list of names or patterns (${alphabet}, * for any run of them)`)
    }
    return {
      token,
      keys: scope(keys, 'keys', KEY_PATTERN, 'A-Z a-z 0-9 _ -, up to 64'),
      topics: scope(topics, 'topics', TOPIC_PATTERN, 'A-Z a-z 0-9 . _ -'),
    }
  })
}
