import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, closeSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {UserError} from '../shared/errors.js'
import {DEFAULT_MYSQL_URL, localSettings} from '../shared/settings.js'
import {
  ensureConnectDist,
  ensureKafkaDist,
  KAFKA_VERSION,
  runKafkaTool,
  type ConnectDist,
  type KafkaDist,
} from '../kafka/apache-dist.js'
import {mirrorSourceConfig, putConnectorConfig} from '../connect/rest.js'
import {DEV_MYSQL, ensureMariadb, mariadbStatus, stopMariadb, type MariadbState, type MariadbStatus} from './mariadb.js'
import {isAlive, stopProcess} from './processes.js'
import {ephemeralRange, inRange, portHolder} from './ports.js'
import {
  ensureSchemaRegistry,
  schemaRegistryLog,
  schemaRegistryStatus,
  stopSchemaRegistry,
  type SchemaRegistryStatus,
} from './schema-registry.js'
import {plural} from '../shared/plural.js'

/**
 * The local stack: Apache Kafka in KRaft mode (each node a combined broker and controller) and the
 * machine's MariaDB. State lives in one directory (REPLAYCTL_STATE, default
 * ~/.local/state/replayctl/dev): stack.json records what was started, with pids, so `down` stops
 * only what `up` started; node-N/ holds each node's config, data and server.log.
 *
 * Ports: node N listens for clients on basePort + 2(N-1) and for the controller quorum on the port
 * after it, on 127.0.0.1 only. With 3 nodes the cluster runs replication factor 3 and
 * min.insync.replicas 2, so one node can be stopped for failover tests.
 */
export const DEFAULT_BASE_PORT = 9092
/** Kafka Connect's own default REST port. */
export const DEFAULT_CONNECT_PORT = 8083
/** The second datacenter's single node listens this far above node 1's port. */
export const DC2_PORT_OFFSET = 100
/** MirrorMaker 2's connector that `dev up --datacenters 2` creates on the worker. */
export const DEV_MIRROR_CONNECTOR = 'mirror-dc1-to-dc2'

export interface NodeState {
  id: number
  port: number
  controllerPort: number
  pid: number | null
}

/**
 * The second datacenter: one more single-node KRaft cluster of its own (own cluster id, state in
 * dc2/), the target MirrorMaker 2 mirrors dc1 into.
 */
interface Dc2State {
  clusterId: string
  node: NodeState
}

/** The Kafka Connect worker (distributed mode), bootstrapped to dc2 when there is one, else to dc1. */
export interface ConnectState {
  port: number
  pid: number | null
  bootstrap: string
}

interface StackState {
  kafkaVersion: string
  clusterId: string
  basePort: number
  nodes: NodeState[]
  dc2?: Dc2State
  connect?: ConnectState
  mariadb?: MariadbState
}

export interface NodeStatus extends NodeState {
  address: string
  running: boolean
  log: string
}

export interface StackStatus {
  stateDir: string
  kafkaVersion: string | null
  brokers: string | null
  nodes: NodeStatus[]
  /** The second datacenter's node, when `dev up --datacenters 2` started one. */
  dc2: (NodeStatus & {brokers: string}) | null
  /** The Kafka Connect worker, when `dev up --connect` started one. */
  connect: (ConnectState & {url: string; running: boolean; log: string}) | null
  /** Whether the cluster answered a metadata request with every node. */
  healthy: boolean
  mysql: MariadbStatus
  /** Null when `dev up --schema-registry` never started one. */
  schemaRegistry: SchemaRegistryStatus | null
}

export interface UpResult extends StackStatus {
  /** True when everything was already running and nothing was started. */
  alreadyRunning: boolean
  started: number[]
  settings: {
    REPLAYCTL_BROKERS: string
    REPLAYCTL_MYSQL_URL: string
    REPLAYCTL_SCHEMA_REGISTRY_URL?: string
    REPLAYCTL_CONNECT_URL?: string
  }
}

const stateDir = () => localSettings().stateDir

const stateFile = () => join(stateDir(), 'stack.json')
/** Where a node keeps its config, data and log: node-N/ in dc1, dc2/ for the second datacenter. */
const DC2 = 'dc2'
type NodeDir = number | typeof DC2
const nodeDir = (id: NodeDir) => join(stateDir(), id === DC2 ? DC2 : `node-${id}`)
export const nodeLog = (id: NodeDir) => join(nodeDir(id), 'server.log')
const connectDir = () => join(stateDir(), 'connect')
export const connectLog = () => join(connectDir(), 'connect.log')
const connectProperties = () => join(connectDir(), 'worker.properties')

function readState(): StackState | null {
  if (!existsSync(stateFile())) return null
  return JSON.parse(readFileSync(stateFile(), 'utf8')) as StackState
}

function writeState(state: StackState): void {
  mkdirSync(stateDir(), {recursive: true})
  writeFileSync(stateFile(), `${JSON.stringify(state, null, 2)}\n`)
}

function brokerList(state: StackState): string {
  return state.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')
}

function serverProperties(node: NodeState, nodes: NodeState[], dir: NodeDir): string {
  const replication = Math.min(3, nodes.length)
  const voters = nodes.map((peer) => `${peer.id}@127.0.0.1:${peer.controllerPort}`).join(',')
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${join(nodeDir(dir), 'data')}`,
    'num.partitions=1',
    `default.replication.factor=${replication}`,
    `min.insync.replicas=${replication > 1 ? 2 : 1}`,
    `offsets.topic.replication.factor=${replication}`,
    `transaction.state.log.replication.factor=${replication}`,
    `transaction.state.log.min.isr=${replication > 1 ? 2 : 1}`,
    'group.initial.rebalance.delay.ms=0',
    `auto.leader.rebalance.enable=${localSettings().kafkaLeaderRebalance}`,
    // Small segments and a fast cleaner so compaction and retention can be seen in tests.
    'log.cleaner.backoff.ms=1000',
    'log.retention.check.interval.ms=10000',
    'auto.create.topics.enable=false',
    '',
  ].join('\n')
}

const nodeCommandLine = (id: NodeDir) => join(nodeDir(id), 'server.properties')

export async function up(options: {
  brokers: number
  basePort?: number
  /** Also start the schema registry (it stays part of the stack: a later `up` restarts it if stopped). */
  schemaRegistry?: boolean
  schemaRegistryPort?: number
  /** 2 adds a second single-node cluster (dc2) and MirrorMaker 2 mirroring delivery_log into it. */
  datacenters?: number
  /** Start a Kafka Connect worker (implied by two datacenters). */
  connect?: boolean
  connectPort?: number
  onProgress?: (line: string) => void
}): Promise<UpResult> {
  const progress = options.onProgress ?? (() => {})
  const existing = readState()
  if (existing && existing.nodes.length !== options.brokers) {
    throw new UserError(
      'STACK_CONFLICT',
      `the local stack in ${stateDir()} was created with ` +
        `${existing.nodes.length} ${plural(existing.nodes.length, 'broker')}, not ${options.brokers}`,
      `run \`replayctl dev down --purge\` first, or \`replayctl dev up --brokers ${existing.nodes.length}\``,
    )
  }
  const basePort = existing?.basePort ?? options.basePort ?? DEFAULT_BASE_PORT
  const nodes: NodeState[] = Array.from({length: options.brokers}, (_, index) => ({
    id: index + 1,
    port: basePort + 2 * index,
    controllerPort: basePort + 2 * index + 1,
    pid: null,
  }))
  if (!existing) refuseEphemeralPorts(nodes)
  const twoDatacenters = (options.datacenters ?? 1) === 2
  const withConnect = options.connect === true || twoDatacenters
  const dc2Node: NodeState = {
    id: 1,
    port: basePort + DC2_PORT_OFFSET,
    controllerPort: basePort + DC2_PORT_OFFSET + 1,
    pid: null,
  }
  const connectPort = existing?.connect?.port ?? options.connectPort ?? DEFAULT_CONNECT_PORT
  if (twoDatacenters && !existing?.dc2) refuseEphemeralPorts([dc2Node])
  if (withConnect && !existing?.connect) refuseEphemeralPorts([], [connectPort])
  // MirrorMaker 2 on Connect writes through the worker's own producer: the worker must bootstrap to dc2.
  const runningWorker = existing?.connect
  if (twoDatacenters && !existing?.dc2 && runningWorker?.pid != null && isAlive(runningWorker.pid, connectProperties()))
    throw new UserError(
      'STACK_CONFLICT',
      `the running Kafka Connect worker bootstraps to dc1 (${runningWorker.bootstrap}); ` +
        'MirrorMaker 2 needs it on dc2',
      'run `replayctl dev down` and then `replayctl dev up --datacenters 2`',
    )
  const dist = await ensureKafkaDist(progress)
  const mariadb = await ensureMariadb(existing?.mariadb, progress)

  const state: StackState = existing ?? {
    kafkaVersion: KAFKA_VERSION,
    clusterId: (await runKafkaTool(dist, 'kafka.tools.StorageTool', ['random-uuid'])).trim(),
    basePort,
    nodes,
  }
  state.mariadb = mariadb
  if (state.kafkaVersion !== KAFKA_VERSION) {
    throw new UserError(
      'STACK_CONFLICT',
      `the local stack holds data of Kafka ${state.kafkaVersion}; this replayctl runs ${KAFKA_VERSION}`,
      'run `replayctl dev down --purge` to start afresh',
    )
  }

  const started: number[] = []
  // Where each started node's log begins this time: an earlier run's failure is not this one's.
  const logStart = new Map<number, number>()
  for (const node of state.nodes) {
    if (node.pid !== null && isAlive(node.pid, nodeCommandLine(node.id))) continue
    await formatIfNeeded(dist, state.clusterId, node, state.nodes, node.id)
    progress(`starting Kafka node ${node.id} on 127.0.0.1:${node.port}`)
    logStart.set(node.id, logSize(node.id))
    node.pid = startNode(dist, node.id)
    started.push(node.id)
  }
  let dc2Started = false
  if (twoDatacenters || state.dc2) {
    state.dc2 ??= {
      clusterId: (await runKafkaTool(dist, 'kafka.tools.StorageTool', ['random-uuid'])).trim(),
      node: dc2Node,
    }
    const node = state.dc2.node
    if (node.pid === null || !isAlive(node.pid, nodeCommandLine(DC2))) {
      await formatIfNeeded(dist, state.dc2.clusterId, node, [node], DC2)
      progress(`starting Kafka node of dc2 on 127.0.0.1:${node.port}`)
      node.pid = startNode(dist, DC2)
      dc2Started = true
    }
  }
  writeState(state)

  await waitForCluster(state, started, logStart, progress)
  if (state.dc2) await waitForDc2(state.dc2, progress)

  let connectStarted = false
  if (withConnect || state.connect) {
    state.connect ??= {port: connectPort, pid: null, bootstrap: state.dc2 ? dc2Brokers(state.dc2) : brokerList(state)}
    const connect = state.connect
    if (connect.pid === null || !isAlive(connect.pid, connectProperties())) {
      // A worker first started for dc1 alone moves to dc2 when the stack gains it (checked above).
      connect.bootstrap = state.dc2 ? dc2Brokers(state.dc2) : brokerList(state)
      const connectDist = await ensureConnectDist(progress)
      progress(`starting Kafka Connect on 127.0.0.1:${connect.port} (bootstrap ${connect.bootstrap})`)
      const replication = state.dc2 ? 1 : Math.min(3, state.nodes.length)
      const logOffset = existsSync(connectLog()) ? statSync(connectLog()).size : 0
      connect.pid = startConnect(connectDist, connect, replication)
      connectStarted = true
      writeState(state)
      await waitForConnect(connect, logOffset, progress)
    }
    if (state.dc2) await ensureDevMirror(state, progress)
  }
  const registry =
    options.schemaRegistry || schemaRegistryStatus()
      ? await ensureSchemaRegistry({port: options.schemaRegistryPort}, progress)
      : null
  const status = await stackStatus()
  return {
    ...status,
    alreadyRunning:
      started.length === 0 && !dc2Started && !connectStarted && !mariadb.startedByUs && !registry?.started,
    started,
    settings: {
      REPLAYCTL_BROKERS: brokerList(state),
      REPLAYCTL_MYSQL_URL: devMysqlUrl(localSettings().mysqlUrlFromEnv),
      ...(registry ? {REPLAYCTL_SCHEMA_REGISTRY_URL: registry.url} : {}),
      ...(state.connect ? {REPLAYCTL_CONNECT_URL: connectUrl(state.connect)} : {}),
    },
  }
}

const dc2Brokers = (dc2: Dc2State) => `127.0.0.1:${dc2.node.port}`
const connectUrl = (connect: ConnectState) => `http://127.0.0.1:${connect.port}`

async function waitForDc2(dc2: Dc2State, progress: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 90_000
  progress('waiting for dc2 to answer metadata')
  while (Date.now() < deadline) {
    if (dc2.node.pid === null || !isAlive(dc2.node.pid, nodeCommandLine(DC2))) {
      const failure = startFailure(logSince(DC2, 0).slice(-20_000))
      throw new UserError(
        'STACK_FAILED',
        `the Kafka node of dc2 could not start: ${failure.message}`,
        `see ${nodeLog(DC2)} (\`replayctl dev logs --datacenter 2\`)`,
      )
    }
    if ((await visibleBrokers(dc2Brokers(dc2))) === 1) return
    await sleep(300)
  }
  throw new UserError(
    'STACK_FAILED',
    'dc2 did not answer metadata within 90 s',
    'see `replayctl dev logs --datacenter 2`',
  )
}

/**
 * The worker's configuration: distributed mode (its config, offsets and status in Kafka topics of
 * the cluster it bootstraps to), REST on 127.0.0.1 only, plain strings by default (connectors that
 * copy Kafka records, MirrorMaker 2 among them, set byte-array converters of their own).
 */
function workerProperties(dist: ConnectDist, connect: ConnectState, replication: number): string {
  return [
    `bootstrap.servers=${connect.bootstrap}`,
    'group.id=replayctl-connect',
    'config.storage.topic=connect-configs',
    'offset.storage.topic=connect-offsets',
    'status.storage.topic=connect-status',
    `config.storage.replication.factor=${replication}`,
    `offset.storage.replication.factor=${replication}`,
    `status.storage.replication.factor=${replication}`,
    'offset.storage.partitions=5',
    'status.storage.partitions=1',
    'key.converter=org.apache.kafka.connect.storage.StringConverter',
    'value.converter=org.apache.kafka.connect.storage.StringConverter',
    'offset.flush.interval.ms=2000',
    `listeners=http://127.0.0.1:${connect.port}`,
    'rest.advertised.host.name=127.0.0.1',
    `rest.advertised.port=${connect.port}`,
    `plugin.path=${dist.pluginPath}`,
    '',
  ].join('\n')
}

function startConnect(dist: ConnectDist, connect: ConnectState, replication: number): number {
  mkdirSync(connectDir(), {recursive: true})
  writeFileSync(connectProperties(), workerProperties(dist, connect, replication))
  const log = openSync(connectLog(), 'a')
  const child = spawn(
    dist.java,
    [
      '-Xms128m',
      `-Xmx${localSettings().connectHeap}`,
      '-XX:+UseSerialGC',
      `-Dlog4j2.configurationFile=${dist.log4j}`,
      '-cp',
      dist.classpath,
      'org.apache.kafka.connect.cli.ConnectDistributed',
      connectProperties(),
    ],
    {detached: true, stdio: ['ignore', log, log]},
  )
  child.once('error', () => {})
  child.unref()
  closeSync(log)
  if (child.pid === undefined)
    throw new UserError(
      'STACK_FAILED',
      `Kafka Connect could not start: ${dist.java} did not run`,
      `see ${connectLog()} and check the Java installation`,
    )
  return child.pid
}

/** Until the worker's REST API answers and it has joined its group (GET /connectors answers 200). */
async function waitForConnect(connect: ConnectState, logOffset: number, progress: (line: string) => void) {
  progress('waiting for Kafka Connect to answer on its REST API')
  const deadline = Date.now() + 180_000
  while (Date.now() < deadline) {
    if (connect.pid === null || !isAlive(connect.pid, connectProperties())) {
      const failure = startFailure(readFileSync(connectLog()).subarray(logOffset).toString('utf8'))
      throw new UserError(
        'STACK_FAILED',
        `Kafka Connect could not start: ${failure.message}`,
        `see ${connectLog()} (\`replayctl dev logs --connect\`)`,
      )
    }
    try {
      const response = await fetch(`${connectUrl(connect)}/connectors`, {signal: AbortSignal.timeout(2000)})
      await response.body?.cancel()
      if (response.ok) return
    } catch {
      // Not listening yet.
    }
    await sleep(500)
  }
  throw new UserError('STACK_FAILED', 'Kafka Connect did not answer within 180 s', 'see `replayctl dev logs --connect`')
}

/** MirrorMaker 2 mirroring dc1's delivery_log into dc2 as dc1.delivery_log (PUT is idempotent). */
async function ensureDevMirror(state: StackState, progress: (line: string) => void): Promise<void> {
  if (!state.dc2 || !state.connect) return
  progress(`configuring MirrorMaker 2 (${DEV_MIRROR_CONNECTOR}): delivery_log from dc1 to dc2`)
  await putConnectorConfig(
    connectUrl(state.connect),
    DEV_MIRROR_CONNECTOR,
    mirrorSourceConfig({
      source: {alias: 'dc1', brokers: brokerList(state)},
      target: {alias: 'dc2', brokers: dc2Brokers(state.dc2)},
      topics: 'delivery_log',
    }),
  )
}

/**
 * The MySQL URL to use the stack with: the one already set (REPLAYCTL_MYSQL_URL) when it points at
 * the stack's MariaDB, so the hint keeps its database and user, else the default.
 */
function devMysqlUrl(current: string | undefined): string {
  if (current === undefined) return DEFAULT_MYSQL_URL
  try {
    const url = new URL(current)
    const local = ['127.0.0.1', 'localhost'].includes(url.hostname) && (url.port || '3306') === String(DEV_MYSQL.port)
    return url.protocol === 'mysql:' && local ? current : DEFAULT_MYSQL_URL
  } catch {
    return DEFAULT_MYSQL_URL
  }
}

async function formatIfNeeded(
  dist: KafkaDist,
  clusterId: string,
  node: NodeState,
  nodes: NodeState[],
  id: NodeDir,
): Promise<void> {
  const dir = nodeDir(id)
  mkdirSync(dir, {recursive: true})
  writeFileSync(nodeCommandLine(id), serverProperties(node, nodes, id))
  if (existsSync(join(dir, 'data', 'meta.properties'))) return
  await runKafkaTool(dist, 'kafka.tools.StorageTool', [
    'format',
    '-t',
    clusterId,
    '-c',
    nodeCommandLine(id),
    '--ignore-formatted',
  ])
}

function startNode(dist: KafkaDist, id: NodeDir): number {
  const log = openSync(nodeLog(id), 'a')
  const heap = localSettings().kafkaHeap
  const child = spawn(
    dist.java,
    [
      `-Xms256m`,
      `-Xmx${heap}`,
      '-XX:+UseG1GC',
      `-Dlog4j2.configurationFile=${dist.brokerLog4j}`,
      '-cp',
      dist.classpath,
      'kafka.Kafka',
      nodeCommandLine(id),
    ],
    {detached: true, stdio: ['ignore', log, log]},
  )
  // A spawn that fails (java missing) has no pid; it is reported below, not as an unhandled 'error' event.
  child.once('error', () => {})
  child.unref()
  closeSync(log)
  if (child.pid === undefined)
    throw new UserError(
      'STACK_FAILED',
      `Kafka node ${id} could not start: ${dist.java} did not run`,
      `see ${nodeLog(id)} and check the Java installation`,
    )
  return child.pid
}

/**
 * A port of the stack inside Linux's ephemeral range can be taken by any outgoing connection (a
 * client retrying a stopped broker's port even connects to itself and holds it), so a new stack
 * does not use one.
 */
function refuseEphemeralPorts(nodes: NodeState[], others: number[] = []): void {
  const range = ephemeralRange()
  const ports = [...nodes.flatMap((node) => [node.port, node.controllerPort]), ...others]
  const taken = ports.find((port) => inRange(port, range))
  if (range === null || taken === undefined) return
  // The stack's ports run from node 1's client port to the last node's controller port.
  const span = Math.max(...ports) - Math.min(...ports)
  throw new UserError(
    'INVALID_ARGUMENT',
    `port ${taken} of the local stack is in Linux's ephemeral port range ${range.low}-${range.high}, ` +
      'where outgoing connections can take it',
    `choose a --port of at most ${range.low - 1 - span} (the stack uses ${nodes.length * 2} ports from it), ` +
      `e.g. --port ${DEFAULT_BASE_PORT}`,
  )
}

function logSize(id: NodeDir): number {
  try {
    return statSync(nodeLog(id)).size
  } catch {
    return 0
  }
}

/**
 * Why a node exited during start-up, from what its log gained since it was started: a port that
 * is taken (named, with who holds it) before anything else, since Kafka logs other errors after it.
 */
export function startFailure(log: string): {message: string; port?: number} {
  const bind =
    /failed to bind to [^\s]*?:(\d+): Address already in use/i.exec(log) ??
    /(?:\D|^)(\d{2,5})\D[^\n]*Address already in use/.exec(log)
  if (bind) {
    const port = Number(bind[1])
    const holder = portHolder(port)
    return {message: `port ${port} is already in use${holder ? ` (${holder})` : ''}`, port}
  }
  const lines = log.trim().split('\n')
  return {
    message:
      lines.findLast((line) => /ERROR|Exception/.test(line))?.slice(0, 300) ??
      lines.at(-1)?.slice(0, 300) ??
      'no log output',
  }
}

function logSince(id: NodeDir, offset: number): string {
  try {
    return readFileSync(nodeLog(id)).subarray(offset).toString('utf8')
  } catch {
    return ''
  }
}

async function waitForCluster(
  state: StackState,
  started: number[],
  logStart: Map<number, number>,
  progress: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + 90_000
  if (started.length)
    progress(`waiting for ${state.nodes.length} ${plural(state.nodes.length, 'broker')} to answer metadata`)
  while (Date.now() < deadline) {
    for (const node of state.nodes) {
      if (node.pid === null || !isAlive(node.pid, nodeCommandLine(node.id))) {
        const failure = startFailure(logSince(node.id, logStart.get(node.id) ?? 0))
        const fix =
          failure.port === undefined
            ? `see ${nodeLog(node.id)} (\`replayctl dev logs --node ${node.id}\`)`
            : 'stop what holds it, or start the stack on other ports with ' +
              '`replayctl dev down --purge && replayctl dev up --port N`'
        throw new UserError('STACK_FAILED', `Kafka node ${node.id} could not start: ${failure.message}`, fix)
      }
    }
    if ((await visibleBrokers(brokerList(state))) === state.nodes.length) return
    await sleep(300)
  }
  throw new UserError(
    'STACK_FAILED',
    'the Kafka cluster did not answer metadata within 90 s',
    'see `replayctl dev logs`',
  )
}

/** How many brokers the cluster reports, or 0 when it does not answer. */
async function visibleBrokers(brokers: string): Promise<number> {
  const {loadNative, disconnect} = await import('../kafka/client.js')
  const native = await loadNative()
  const producer = new native.Producer({
    'bootstrap.servers': brokers,
    log_level: 0,
    'socket.connection.setup.timeout.ms': 1000,
  })
  const count = await new Promise<number>((resolve) => {
    producer.connect({timeout: 2000}, (error, metadata) => resolve(error ? 0 : (metadata?.brokers.length ?? 0)))
  })
  await disconnect(producer)
  return count
}

export async function stackStatus(): Promise<StackStatus> {
  const state = readState()
  const nodes: NodeStatus[] = (state?.nodes ?? []).map((node) => ({
    ...node,
    address: `127.0.0.1:${node.port}`,
    running: node.pid !== null && isAlive(node.pid, nodeCommandLine(node.id)),
    log: nodeLog(node.id),
  }))
  const running = nodes.filter((node) => node.running)
  const dc2 = state?.dc2
    ? {
        ...state.dc2.node,
        address: dc2Brokers(state.dc2),
        brokers: dc2Brokers(state.dc2),
        running: state.dc2.node.pid !== null && isAlive(state.dc2.node.pid, nodeCommandLine(DC2)),
        log: nodeLog(DC2),
      }
    : null
  const connect = state?.connect
    ? {
        ...state.connect,
        url: connectUrl(state.connect),
        running: state.connect.pid !== null && isAlive(state.connect.pid, connectProperties()),
        log: connectLog(),
      }
    : null
  const healthy =
    state !== null &&
    running.length === nodes.length &&
    (await visibleBrokers(brokerList(state))) === nodes.length &&
    (dc2 === null || (dc2.running && (await visibleBrokers(dc2.brokers)) === 1)) &&
    (connect === null || connect.running)
  return {
    stateDir: stateDir(),
    kafkaVersion: state?.kafkaVersion ?? null,
    brokers: state ? brokerList(state) : null,
    nodes,
    dc2,
    connect,
    healthy,
    mysql: await mariadbStatus(state?.mariadb),
    schemaRegistry: schemaRegistryStatus(),
  }
}

export interface DownResult {
  stopped: {what: string; pid: number; forced: boolean}[]
  purged: boolean
  stateDir: string
}

/** Stops what `up` started (graceful SIGTERM, SIGKILL after the timeout); `purge` deletes all data. */
export async function down(options: {purge: boolean; timeoutMs?: number}): Promise<DownResult> {
  const state = readState()
  const stopped: DownResult['stopped'] = []
  // Connect first: it would otherwise log retries against the brokers stopping under it.
  const connect = state?.connect
  if (connect?.pid != null && isAlive(connect.pid, connectProperties())) {
    const forced = await stopProcess(connect.pid, options.timeoutMs ?? 30_000)
    stopped.push({what: 'kafka connect', pid: connect.pid, forced})
    connect.pid = null
  }
  const dc2 = state?.dc2?.node
  if (dc2?.pid != null && isAlive(dc2.pid, nodeCommandLine(DC2))) {
    const forced = await stopProcess(dc2.pid, options.timeoutMs ?? 30_000)
    stopped.push({what: 'kafka node of dc2', pid: dc2.pid, forced})
    dc2.pid = null
  }
  for (const node of state?.nodes ?? []) {
    if (node.pid === null || !isAlive(node.pid, nodeCommandLine(node.id))) continue
    const forced = await stopProcess(node.pid, options.timeoutMs ?? 30_000)
    stopped.push({what: `kafka node ${node.id}`, pid: node.pid, forced})
    node.pid = null
  }
  const registry = await stopSchemaRegistry(options.timeoutMs ?? 30_000)
  if (registry) stopped.push(registry)
  const mariadb = await stopMariadb(state?.mariadb, options.timeoutMs ?? 30_000)
  if (mariadb) stopped.push(mariadb)
  if (state) {
    delete state.mariadb
    writeState(state)
  }
  if (options.purge) rmSync(stateDir(), {recursive: true, force: true})
  return {stopped, purged: options.purge, stateDir: stateDir()}
}

/** The log `dev logs` shows: a Kafka node's, dc2's node, Kafka Connect's or the schema registry's. */
export function logFile(node: number, part: 'kafka' | 'dc2' | 'connect' | 'schema-registry' = 'kafka'): string {
  if (part === 'schema-registry') {
    if (schemaRegistryStatus() === null)
      throw new UserError(
        'INVALID_ARGUMENT',
        `no schema registry in ${stateDir()}`,
        'start one with `replayctl dev up --schema-registry`',
      )
    return schemaRegistryLog()
  }
  const state = readState()
  if (!state)
    throw new UserError('INVALID_ARGUMENT', `no local stack in ${stateDir()}`, 'start one with `replayctl dev up`')
  if (part === 'connect') {
    if (!state.connect)
      throw new UserError(
        'INVALID_ARGUMENT',
        'the local stack has no Kafka Connect',
        'start it with `replayctl dev up --connect`',
      )
    return connectLog()
  }
  if (part === 'dc2') {
    if (!state.dc2)
      throw new UserError(
        'INVALID_ARGUMENT',
        'the local stack has no second datacenter',
        'start it with `replayctl dev up --datacenters 2`',
      )
    return nodeLog(DC2)
  }
  if (!state.nodes.some((candidate) => candidate.id === node)) {
    throw new UserError(
      'INVALID_ARGUMENT',
      `the local stack has no node ${node}`,
      `use --node 1..${state.nodes.length}`,
    )
  }
  return nodeLog(node)
}
