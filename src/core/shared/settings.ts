import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {UserError, quoteInput} from './errors.js'

/**
 * Where replayctl connects, resolved the way kafkactl and rpk do it. For each setting the first
 * source that has it wins:
 *
 *   1. flags      --brokers, --mysql-url, -X key=value
 *   2. env        REPLAYCTL_BROKERS, REPLAYCTL_MYSQL_URL
 *   3. context    the named context (--context, REPLAYCTL_CONTEXT, or the file's currentContext)
 *                 in the config file ($REPLAYCTL_CONFIG, default ~/.config/replayctl/config.json)
 *   4. defaults   what `replayctl dev up` starts on this machine
 *
 * librdkafka properties (-X) merge: the context's first, then each -X on top.
 *
 * Config file:
 *   {
 *     "currentContext": "dc1",
 *     "contexts": {
 *       "dc1": {"brokers": "k1:9092,k2:9092", "mysqlUrl": "mysql://replay@db1/replayctl",
 *               "librdkafka": {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512"}}
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
}
export type SettingSource = 'flag' | 'env' | 'context' | 'default'

export interface SettingsInput {
  brokers?: string
  mysqlUrl?: string
  context?: string
  librdkafka?: string[]
  timeoutMs?: number
}

interface ContextEntry {
  brokers?: string
  mysqlUrl?: string
  librdkafka?: Record<string, string | number | boolean>
}

interface ConfigFile {
  currentContext?: string
  contexts?: Record<string, ContextEntry>
}

export const DEFAULT_BROKERS = '127.0.0.1:9092'
export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/replayctl'
export const DEFAULT_TIMEOUT_MS = 10_000

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REPLAYCTL_CONFIG) return env.REPLAYCTL_CONFIG
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'replayctl', 'config.json')
}

export function resolveSettings(input: SettingsInput, env: NodeJS.ProcessEnv = process.env): Settings {
  const file = readConfigFile(configPath(env))
  const contextName = input.context ?? env.REPLAYCTL_CONTEXT ?? file.currentContext
  let context: ContextEntry = {}
  if (contextName !== undefined) {
    const found = file.contexts?.[contextName]
    if (!found) {
      const known = Object.keys(file.contexts ?? {})
      throw new UserError(
        'CONTEXT_NOT_FOUND',
        `no context '${contextName}' in ${configPath(env)}`,
        known.length ? `use one of: ${known.join(', ')}` : 'add it under "contexts" in that file, or drop --context',
      )
    }
    context = found
  }

  const pick = (flag: string | undefined, envValue: string | undefined, fromContext: string | undefined, fallback: string) =>
    flag ? {value: flag, source: 'flag' as const}
    : envValue ? {value: envValue, source: 'env' as const}
    : fromContext ? {value: fromContext, source: 'context' as const}
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
  }
}

/** Parses `-X key=value` pairs (values may contain '='). */
export function parseLibrdkafkaProperties(pairs: string[]): Record<string, string> {
  const properties: Record<string, string> = {}
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    const key = at > 0 ? pair.slice(0, at).trim() : ''
    if (!key || /\s/.test(key)) {
      throw new UserError('INVALID_CONFIG', `malformed -X ${quoteInput(pair)}`, 'pass librdkafka properties as -X key=value, e.g. -X security.protocol=SSL')
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
    throw new UserError('INVALID_CONFIG', `cannot read config file ${path}: ${(error as Error).message}`, 'fix its permissions or point REPLAYCTL_CONFIG elsewhere')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new UserError('INVALID_CONFIG', `config file ${path} is not valid JSON (${(error as Error).message})`, 'fix the file or point REPLAYCTL_CONFIG elsewhere')
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
