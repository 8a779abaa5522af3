import {request} from 'undici'

import {UserError} from '../shared/errors.js'

/**
 * Kafka Connect's REST API, the one door to a worker: each call is bounded by a timeout, a worker
 * that does not answer is one line with a hint, and Connect's own error message ({"error_code",
 * "message"}) is passed on.
 */
export interface ConnectTarget {
  url: string
  timeoutMs: number
}

export async function connectRequest<T>(
  target: ConnectTarget,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  what?: {connector: string},
): Promise<{status: number; body: T}> {
  let response
  try {
    response = await request(`${target.url}${path}`, {
      method,
      headers: body === undefined ? {accept: 'application/json'} : {'content-type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: target.timeoutMs,
      bodyTimeout: target.timeoutMs,
      signal: AbortSignal.timeout(target.timeoutMs),
    })
  } catch (error) {
    const reason = (error as {code?: string}).code ?? (error as Error).name
    throw new UserError(
      'CONNECT_UNAVAILABLE',
      `Kafka Connect at ${target.url} did not answer (${reason})`,
      'check the URL (--url, REPLAYCTL_CONNECT_URL) or start it with `replayctl dev up --connect`',
      {cause: error},
    )
  }
  const text = await response.body.text()
  let parsed: unknown = null
  try {
    parsed = text === '' ? null : JSON.parse(text)
  } catch {
    parsed = text
  }
  if (response.statusCode === 404 && what)
    throw new UserError(
      'CONNECTOR_NOT_FOUND',
      `Kafka Connect at ${target.url} has no connector '${what.connector}'`,
      'list them with `replayctl connect status`',
    )
  if (response.statusCode >= 400) {
    const message =
      typeof parsed === 'object' && parsed !== null && 'message' in parsed
        ? String((parsed as {message: unknown}).message)
        : text.slice(0, 200)
    throw new UserError(
      'CONNECT_REJECTED',
      `Kafka Connect at ${target.url} answered ${method} ${path} with ${response.statusCode}: ${firstLine(message)}`,
      response.statusCode === 409
        ? 'the workers are rebalancing; retry in a few seconds'
        : 'see the worker log (`replayctl dev logs --connect` for the local one)',
    )
  }
  return {status: response.statusCode, body: parsed as T}
}

export const firstLine = (text: string): string => text.split('\n', 1)[0]?.trim() ?? ''

/** Creates or updates a connector (PUT /connectors/<name>/config is idempotent). */
export async function putConnectorConfig(url: string, name: string, config: Record<string, string>): Promise<void> {
  await connectRequest({url, timeoutMs: 30_000}, 'PUT', `/connectors/${encodeURIComponent(name)}/config`, config)
}

export interface ClusterAlias {
  alias: string
  brokers: string
}

/**
 * MirrorMaker 2's source connector run on a Connect worker: copies `topics` (a list or regex) from
 * the source cluster into the target as `<source alias>.<topic>`, keys, values, headers and
 * timestamps as they are (byte-array converters). Replication factors fit single-node clusters
 * when `replication` is 1; ACL sync is off (the local clusters have no authorizer).
 */
export function mirrorSourceConfig(options: {
  source: ClusterAlias
  target: ClusterAlias
  topics: string
  replication?: number
}): Record<string, string> {
  const replication = String(options.replication ?? 1)
  return {
    'connector.class': 'org.apache.kafka.connect.mirror.MirrorSourceConnector',
    'source.cluster.alias': options.source.alias,
    'target.cluster.alias': options.target.alias,
    'source.cluster.bootstrap.servers': options.source.brokers,
    'target.cluster.bootstrap.servers': options.target.brokers,
    topics: options.topics,
    'tasks.max': '1',
    'key.converter': 'org.apache.kafka.connect.converters.ByteArrayConverter',
    'value.converter': 'org.apache.kafka.connect.converters.ByteArrayConverter',
    'header.converter': 'org.apache.kafka.connect.converters.ByteArrayConverter',
    'replication.factor': replication,
    'offset-syncs.topic.replication.factor': replication,
    'sync.topic.acls.enabled': 'false',
    // A topic created in the source after the connector starts is picked up within seconds.
    'refresh.topics.interval.seconds': '5',
  }
}
