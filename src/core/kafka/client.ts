import type * as Rdkafka from '@confluentinc/kafka-javascript'
import {EventEmitter} from 'node:events'
import {connect as tcpConnect, type Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import {UserError} from '../shared/errors.js'
import {LIBRDKAFKA_PARTITIONER, type Partitioner} from './partitioner.js'
import {describeBrokers, type Settings} from '../shared/settings.js'

/**
 * The only door to librdkafka. Commands that never touch Kafka (partition-for with --partitions)
 * must not pay for loading the native module, so it is imported on first use.
 *
 * We use the node-rdkafka-style API, not the KafkaJS-style one: it can assign a single partition
 * without a consumer group, consume in large batches, and lets us set `partitioner` explicitly.
 */
export type Native = typeof Rdkafka
export type AdminClient = Rdkafka.IAdminClient
export type Consumer = Rdkafka.KafkaConsumer
export type Producer = Rdkafka.Producer
export type Message = Rdkafka.Message
export type PackedMessageBatch = Rdkafka.PackedMessageBatch

/**
 * The node-rdkafka-style API alone (what the package's index spreads into its exports, typed as
 * such): the index also loads the KafkaJS-style layer, a dozen more modules (~8 ms of every
 * command's start).
 */
const NATIVE_API: string = '@confluentinc/kafka-javascript/lib/rdkafka.js'

let nativeModule: Promise<Native> | undefined
export function loadNative(): Promise<Native> {
  nativeModule ??= import(NATIVE_API).then((module: {default?: Native}) => (module.default ?? module) as Native)
  return nativeModule
}

/**
 * The admin client's module alone (the API's `AdminClient`, with `OffsetSpec`): the commands that
 * only ask the cluster (seek, partition-for --topic, topic and group listings) skip the consumer,
 * producer and stream modules the whole API loads with it (a third of the client's JavaScript).
 */
const ADMIN_API: string = '@confluentinc/kafka-javascript/lib/admin.js'
export type AdminApi = Native['AdminClient'] & {OffsetSpec: Native['OffsetSpec']}

let adminModule: Promise<AdminApi> | undefined
export function loadAdmin(): Promise<AdminApi> {
  adminModule ??= import(ADMIN_API).then((module: {default?: AdminApi}) => (module.default ?? module) as AdminApi)
  return adminModule
}

/** librdkafka error codes we act on (rdkafka.h, rd_kafka_resp_err_t). */
export const KafkaCode = {
  TIMED_OUT: -185,
  TRANSPORT: -195,
  ALL_BROKERS_DOWN: -187,
  UNKNOWN_TOPIC_LOCAL: -188,
  UNKNOWN_PARTITION_LOCAL: -190,
  RESOLVE: -193,
  QUEUE_FULL: -184,
  INVALID_ARG: -186,
  PARTITION_EOF: -191,
  UNKNOWN_TOPIC_OR_PART: 3,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_CONFIG: 40,
  POLICY_VIOLATION: 44,
} as const

function baseConfig(settings: Settings, clientId: string): Record<string, string | number | boolean> {
  return {
    'bootstrap.servers': settings.brokers,
    'client.id': clientId,
    // Errors reach us through callbacks; librdkafka's own stderr logging would break the
    // one-line error promise (it prints a line per failed connection attempt).
    log_level: 0,
    'socket.connection.setup.timeout.ms': Math.max(1000, settings.timeoutMs),
    ...settings.librdkafka,
  }
}

/** Wraps client construction: librdkafka rejects unknown or malformed properties synchronously. */
function construct<T>(create: () => T): T {
  try {
    return create()
  } catch (error) {
    const message = (error as Error).message
    throw new UserError(
      'INVALID_CONFIG',
      `librdkafka refused the client configuration: ${message}`,
      'check the -X properties and the context\'s "librdkafka" block',
      {cause: error},
    )
  }
}

/**
 * What waiting for Kafka looks like from outside: `waiting` once a connection or request has gone a
 * second with nothing from any broker yet (the CLI tells a person at a terminal it is connecting);
 * nothing once a broker has answered. `down` (internal) carries librdkafka's "all brokers down".
 */
export const kafkaWait = new EventEmitter<{waiting: [brokers: string]; down: [brokers: string, error: Error]}>()
// Every pending request listens for `down`; a command may have hundreds in flight.
kafkaWait.setMaxListeners(0)
const WAITING_NOTICE_MS = 1000
let answered = false

/** Runs `work`, announcing `waiting` if no broker has answered this process within a second. */
async function watched<T>(settings: Settings, work: Promise<T>): Promise<T> {
  if (answered) return work
  const timer = setTimeout(() => kafkaWait.emit('waiting', settings.brokers), WAITING_NOTICE_MS)
  timer.unref()
  try {
    const result = await work
    answered = true
    return result
  } finally {
    clearTimeout(timer)
  }
}

/**
 * librdkafka reports that every broker connection failed (refused, reset, closed) as an error event
 * with no code of its own (-1), named only by its message; it repeats while they stay down.
 */
function isAllBrokersDown(error: {code?: number; message?: string; stack?: string}): boolean {
  return (
    error.code === KafkaCode.ALL_BROKERS_DOWN ||
    /all broker connections are down/i.test(`${error.message} ${error.stack}`)
  )
}

export async function connectAdmin(settings: Settings): Promise<AdminClient> {
  const admin = await loadAdmin()
  await failIfEveryBrokerRefuses(settings)
  return construct(() =>
    admin.create(baseConfig(settings, 'replayctl-admin'), {
      // Requests of a client whose brokers all went down since it was created fail then, not at
      // their timeout (a long-running server's requests among them).
      'event.error': (error: Error & {code?: number}) => {
        if (isAllBrokersDown(error)) void confirmDown(settings, error)
      },
    }),
  )
}

export interface ProducerOptions {
  partitioner?: Partitioner
  compression?: string
  extra?: Record<string, string | number | boolean>
}

export async function connectProducer(settings: Settings, options: ProducerOptions = {}): Promise<Producer> {
  const native = await loadNative()
  await failIfEveryBrokerRefuses(settings)
  const producer = construct(
    () =>
      new native.Producer({
        ...baseConfig(settings, 'replayctl-producer'),
        partitioner: LIBRDKAFKA_PARTITIONER[options.partitioner ?? 'murmur2'],
        'compression.codec': (options.compression ?? 'snappy') as 'snappy',
        dr_cb: true,
        ...options.extra,
        ...settings.librdkafka,
      }),
  )
  await connectClient(settings, producer)
  return producer
}

export async function connectConsumer(
  settings: Settings,
  extra: Record<string, string | number | boolean> = {},
): Promise<Consumer> {
  const native = await loadNative()
  await failIfEveryBrokerRefuses(settings)
  const consumer = construct(
    () =>
      new native.KafkaConsumer(
        {
          ...baseConfig(settings, 'replayctl-reader'),
          // Partitions are assigned directly; the group id is required by librdkafka but never joins or commits.
          'group.id': `replayctl-reader-${process.pid}`,
          'enable.auto.commit': false,
          'enable.auto.offset.store': false,
          'enable.partition.eof': true,
          'fetch.wait.max.ms': 100,
          ...extra,
          ...settings.librdkafka,
        },
        {'auto.offset.reset': 'earliest'},
      ),
  )
  await connectClient(settings, consumer)
  return consumer
}

function connectClient(settings: Settings, client: Producer | Consumer): Promise<void> {
  const connected = new Promise<void>((resolve, reject) => {
    client.connect({timeout: settings.timeoutMs}, (error) => {
      if (error) reject(unreachable(settings, error))
      else resolve()
    })
  })
  return watched(settings, connected)
}

/** How long the refusal probe may take before the client is created anyway (a refusal is one round trip). */
const REFUSAL_PROBE_MS = 500

/**
 * Fails at once when every bootstrap broker refuses a TCP connection (nothing listens on its port),
 * instead of after the whole timeout. It runs before the client is created: once librdkafka has a
 * request outstanding, even process exit waits for that request's timeout. Anything else (accepted,
 * slow, a name that does not resolve, an address form not understood) is left to librdkafka.
 */
async function failIfEveryBrokerRefuses(settings: Settings): Promise<void> {
  if (await everyBrokerRefuses(settings))
    throw unreachable(settings, new Error('connection refused by every bootstrap broker'))
}

/**
 * Fails the pending requests when librdkafka says all brokers are down, and the brokers refuse a
 * new connection too. librdkafka also says so for a moment while a healthy broker's connections
 * change hands: a `topic create` failed that way although the broker had created the topic. When
 * the brokers still accept connections, the requests go on and end at their own timeout if the
 * brokers are in fact gone.
 */
async function confirmDown(settings: Settings, error: Error): Promise<void> {
  if (await everyBrokerRefuses(settings)) kafkaWait.emit('down', settings.brokers, error)
}

/** True when every bootstrap broker refuses a TCP connection (see failIfEveryBrokerRefuses). */
async function everyBrokerRefuses(settings: Settings): Promise<boolean> {
  const matches = settings.brokers.split(',').map((entry) => /^(?:\w+:\/\/)?\[?([^\]]+?)\]?:(\d+)$/.exec(entry.trim()))
  const addresses = matches.filter((match) => match !== null)
  if (addresses.length < matches.length) return false
  const sockets: Socket[] = []
  const refused = ([, host = '', port = '']: RegExpExecArray) =>
    new Promise<boolean>((resolve) => {
      const socket = tcpConnect({host, port: Number(port)})
      sockets.push(socket)
      socket.once('connect', () => resolve(false))
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
    })
  let timer: NodeJS.Timeout | undefined
  const slow = new Promise<boolean[]>((resolve) => (timer = setTimeout(() => resolve([false]), REFUSAL_PROBE_MS)))
  try {
    const outcomes = await Promise.race([Promise.all(addresses.map(refused)), slow])
    return outcomes.every(Boolean)
  } finally {
    clearTimeout(timer)
    for (const socket of sockets) socket.destroy()
  }
}

export function disconnect(client: Producer | Consumer): Promise<void> {
  return new Promise((resolve) => {
    if (!client.isConnected()) return resolve()
    client.disconnect(() => resolve())
  })
}

export function unreachable(settings: Settings, error: unknown): UserError {
  const reason = (error as Error)?.message ?? String(error)
  return new UserError(
    'KAFKA_UNAVAILABLE',
    `cannot reach Kafka at ${describeBrokers(settings)} (${reason})`,
    'check --brokers / REPLAYCTL_BROKERS, or start the local stack with `replayctl dev up`',
    {cause: error},
  )
}

export function topicNotFound(topic: string): UserError {
  return new UserError(
    'TOPIC_NOT_FOUND',
    `topic '${topic}' does not exist`,
    'list topics with `replayctl topic list`, or create it with `replayctl topic create`',
  )
}

/** Turns a librdkafka callback error into the UserError an operator should see. */
export function kafkaError(settings: Settings, error: unknown, topic?: string): UserError {
  const code = (error as {code?: number})?.code
  if (topic && (code === KafkaCode.UNKNOWN_TOPIC_OR_PART || code === KafkaCode.UNKNOWN_TOPIC_LOCAL))
    return topicNotFound(topic)
  if (
    code === KafkaCode.TIMED_OUT ||
    code === KafkaCode.TRANSPORT ||
    code === KafkaCode.ALL_BROKERS_DOWN ||
    code === KafkaCode.RESOLVE
  ) {
    return unreachable(settings, error)
  }
  const message = (error as Error)?.message ?? String(error)
  return new UserError(
    'KAFKA_REJECTED',
    `Kafka refused the request: ${message}`,
    'check the arguments and the broker log (`replayctl dev logs` on the local stack)',
    {cause: error},
  )
}

/**
 * A read-only admin request (metadata, offsets), retried within the same overall timeout. librdkafka
 * sends it to any broker it knows; when that broker has just died the first attempt times out,
 * while a second goes to a live one. So one dead broker of three does not fail `topic describe`.
 *
 * A group's coordinator that is not known or not loaded yet answers at once, not at a timeout: the
 * first group request to a fresh cluster creates __consumer_offsets, which takes seconds. Those
 * answers are retried with a growing pause until the overall timeout, so that request waits for it.
 */
export async function callReadOnly<T>(
  settings: Settings,
  topic: string | undefined,
  invoke: (cb: (error: unknown, result?: T) => void, timeoutMs: number) => void,
): Promise<T> {
  const attempts = 3
  const perAttempt = Math.max(1000, Math.floor(settings.timeoutMs / attempts))
  const deadline = Date.now() + settings.timeoutMs
  let pauseMs = 100
  for (let attempt = 1; ; attempt++) {
    try {
      return await call<T>(settings, topic, (cb) => invoke(cb, Math.min(perAttempt, remaining(deadline))))
    } catch (error) {
      const code = ((error as UserError).cause as {code?: number} | undefined)?.code
      if (COORDINATOR_NOT_READY.has(code as number)) {
        if (remaining(deadline) <= pauseMs) throw coordinatorNotReady(settings, error)
        await sleep(pauseMs)
        pauseMs = Math.min(pauseMs * 2, 1000)
        continue
      }
      if (!TRANSIENT.has(code as number) || attempt >= attempts) throw error
    }
  }
}

function remaining(deadline: number): number {
  return Math.max(1000, deadline - Date.now())
}

const COORDINATOR_NOT_READY = new Set<number>([
  KafkaCode.COORDINATOR_LOAD_IN_PROGRESS,
  KafkaCode.COORDINATOR_NOT_AVAILABLE,
  KafkaCode.NOT_COORDINATOR,
])

const TRANSIENT = new Set<number>([KafkaCode.TIMED_OUT, KafkaCode.TRANSPORT])

function coordinatorNotReady(settings: Settings, error: unknown): UserError {
  return new UserError(
    'KAFKA_UNAVAILABLE',
    `the consumer group coordinator at ${describeBrokers(settings)} was not ready within ` +
      `${settings.timeoutMs / 1000}s (a fresh cluster creates __consumer_offsets on its first group request)`,
    'run the command again, or give it longer with --timeout',
    {cause: error},
  )
}

/**
 * A read-only admin request about consumer groups (listGroups, describeGroups,
 * listConsumerGroupOffsets). librdkafka answers these without an error even when it could not reach
 * a broker or the group's coordinator (brokers down, coordinator not known yet): the failure is in
 * the group's own entry, or in the list's errors. It is taken as the call's error, so it is retried
 * and mapped like one (a timeout becomes KAFKA_UNAVAILABLE).
 */
export function callGroupReadOnly<T>(
  settings: Settings,
  groupErrorOf: (result: T) => unknown,
  invoke: (cb: (error: unknown, result?: T) => void, timeoutMs: number) => void,
): Promise<T> {
  return callReadOnly<T>(settings, undefined, (cb, timeoutMs) =>
    invoke(
      (error, result) => cb(error ?? (result === undefined ? undefined : groupErrorOf(result)), result),
      timeoutMs,
    ),
  )
}

/**
 * Promisifies a node-style librdkafka call and maps its error. It fails at once, not at its timeout,
 * when the admin client reports every broker down (all refused the connection).
 */
export function call<T>(
  settings: Settings,
  topic: string | undefined,
  invoke: (cb: (error: unknown, result?: T) => void) => void,
): Promise<T> {
  let onDown: ((brokers: string, error: Error) => void) | undefined
  const result = new Promise<T>((resolve, reject) => {
    onDown = (brokers, error) => {
      if (brokers === settings.brokers) reject(unreachable(settings, error))
    }
    kafkaWait.on('down', onDown)
    invoke((error, value) => {
      if (error) reject(kafkaError(settings, error, topic))
      else resolve(value as T)
    })
  })
  return watched(settings, result).finally(() => {
    if (onDown) kafkaWait.off('down', onDown)
  })
}
