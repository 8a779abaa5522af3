import {cachedKafkaDist, kafkaToolTimeoutMs, runKafkaTool} from '../kafka/apache-dist.js'
import {callReadOnly, connectProducer, disconnect, type Producer} from '../kafka/client.js'
import {withAdmin} from '../kafka/topics.js'
import type {Settings} from '../shared/settings.js'

/**
 * Cluster health for people and for cron: the brokers, which node is the active controller, how
 * partitions and leaders are spread over the brokers, and every partition that is under-replicated
 * (ISR smaller than the replica set), under min ISR (acks=all writes fail) or offline (no leader).
 *
 * The client library speaks neither DescribeCluster nor DescribeConfigs, so two answers come from
 * Apache Kafka's own tools when Java is there: the active controller (the KRaft quorum leader, from
 * MetadataQuorumCommand) and min.insync.replicas (from ConfigCommand, asked only when some
 * partition has lost an ISR member, so a healthy check needs no configs). Without Java the report
 * says what it could not learn instead of guessing; health never depends on Java.
 */
export interface BrokerStatus {
  id: number
  /** host:port, or null for a broker that replicas name but the cluster no longer registers. */
  address: string | null
  rack: string | null
  alive: boolean
  controller: boolean
  replicas: number
  leaders: number
}

export interface PartitionProblem {
  topic: string
  partition: number
  leader: number | null
  replicas: number[]
  isr: number[]
  /** min.insync.replicas of the topic; null when it could not be read. */
  minIsr: number | null
  problems: ('offline' | 'under-min-isr' | 'under-replicated')[]
}

export interface ClusterStatus {
  healthy: boolean
  brokers: BrokerStatus[]
  /** Id of the active controller (KRaft quorum leader), or null with the reason in controllerUnavailable. */
  controller: number | null
  controllerUnavailable?: string
  topics: number
  partitions: number
  offline: PartitionProblem[]
  underMinIsr: PartitionProblem[]
  underReplicated: PartitionProblem[]
  /** Set when under-replicated partitions exist but min.insync.replicas could not be read. */
  minIsrUnavailable?: string
  /** Partitions led by another replica than their first (preferred) one: leaders pile up on some brokers. */
  notPreferredLeaders: number
  /** What to run about it, when notPreferredLeaders > 0. */
  advice?: string
}

interface MetadataBroker {
  id: number
  host: string
  port: number
}

interface DescribedNode {
  id: number
  rack?: string
}

interface DescribedTopic {
  name: string
  error?: {code: number; message: string}
  partitions: {partition: number; leader: DescribedNode | null; replicas: DescribedNode[]; isr: DescribedNode[]}[]
}

export async function clusterStatus(settings: Settings, options: {controller: boolean}): Promise<ClusterStatus> {
  // The admin API has no call that lists brokers; a client's metadata request does.
  const metadata = await withMetadataClient(settings, (client) =>
    callReadOnly<{brokers: MetadataBroker[]; topics: {name: string}[]}>(settings, undefined, (cb, timeout) =>
      client.getMetadata({allTopics: true, timeout}, cb),
    ),
  )
  const brokers = metadata.brokers
  const names = metadata.topics.map((topic) => topic.name).sort()
  // describeTopics, unlike metadata, names each replica's rack.
  const topics =
    names.length === 0
      ? []
      : await withAdmin(settings, (admin) =>
          callReadOnly<DescribedTopic[]>(settings, undefined, (cb, timeout) =>
            admin.describeTopics(names, {timeout}, cb as never),
          ),
        )

  const byId = new Map<number, BrokerStatus>()
  const broker = (id: number): BrokerStatus => {
    let status = byId.get(id)
    if (!status)
      byId.set(id, (status = {id, address: null, rack: null, alive: false, controller: false, replicas: 0, leaders: 0}))
    return status
  }
  for (const registered of brokers)
    Object.assign(broker(registered.id), {address: `${registered.host}:${registered.port}`, alive: true})

  const problems: PartitionProblem[] = []
  let partitionCount = 0
  let notPreferredLeaders = 0
  for (const topic of topics) {
    for (const partition of topic.partitions) {
      partitionCount++
      for (const replica of partition.replicas) {
        const status = broker(replica.id)
        status.replicas++
        if (replica.rack) status.rack = replica.rack
      }
      if (partition.leader) broker(partition.leader.id).leaders++
      if (partition.leader && partition.leader.id >= 0 && partition.leader.id !== partition.replicas[0]?.id)
        notPreferredLeaders++
      const offline = !partition.leader || partition.leader.id < 0
      if (offline || partition.isr.length < partition.replicas.length) {
        problems.push({
          topic: topic.name,
          partition: partition.partition,
          leader: offline || !partition.leader ? null : partition.leader.id,
          replicas: partition.replicas.map((node) => node.id),
          isr: partition.isr.map((node) => node.id),
          minIsr: null,
          problems: offline ? ['offline'] : [],
        })
      }
    }
  }

  // Both Java lookups start only once the cluster has answered, so a failure never leaves a JVM behind.
  const lagging = problems.filter((problem) => problem.isr.length < problem.replicas.length)
  const [minIsrLookup, controllerLookup] = await Promise.allSettled([
    lagging.length > 0
      ? minInsyncReplicas(settings, [...new Set(lagging.map((problem) => problem.topic))])
      : Promise.resolve(new Map<string, number>()),
    options.controller
      ? activeController(settings)
      : Promise.resolve({id: null, reason: 'not looked up (--no-controller)'}),
  ])
  let minIsrUnavailable: string | undefined
  if (minIsrLookup.status === 'rejected') minIsrUnavailable = (minIsrLookup.reason as Error).message
  else for (const problem of lagging) problem.minIsr = minIsrLookup.value.get(problem.topic) ?? null
  for (const problem of lagging) {
    if (problem.minIsr !== null && problem.isr.length < problem.minIsr) problem.problems.push('under-min-isr')
    problem.problems.push('under-replicated')
  }

  const controller = controllerLookup.status === 'fulfilled' ? controllerLookup.value.id : null
  const controllerUnavailable =
    controllerLookup.status === 'fulfilled' ? controllerLookup.value.reason : (controllerLookup.reason as Error).message
  if (controller !== null) broker(controller).controller = true

  const statuses = [...byId.values()].sort((a, b) => a.id - b.id)
  const pick = (kind: PartitionProblem['problems'][number]) =>
    problems.filter((problem) => problem.problems.includes(kind))
  return {
    healthy: problems.length === 0 && statuses.every((status) => status.alive),
    brokers: statuses,
    controller,
    ...(controllerUnavailable === undefined ? {} : {controllerUnavailable}),
    topics: topics.length,
    partitions: partitionCount,
    offline: pick('offline'),
    underMinIsr: pick('under-min-isr'),
    underReplicated: pick('under-replicated'),
    ...(minIsrUnavailable === undefined ? {} : {minIsrUnavailable}),
    notPreferredLeaders,
    ...(notPreferredLeaders > 0
      ? {
          advice:
            `${notPreferredLeaders} partition(s) are not led by their preferred replica: ` +
            'run `replayctl cluster elect-leaders` once every broker is up',
        }
      : {}),
  }
}

/**
 * A producer that never produces: unlike a consumer it looks up no group coordinator, so the check
 * creates nothing (not even __consumer_offsets).
 */
async function withMetadataClient<T>(settings: Settings, work: (client: Producer) => Promise<T>): Promise<T> {
  const client = await connectProducer(settings)
  try {
    return await work(client)
  } finally {
    await disconnect(client)
  }
}

/** The KRaft quorum leader, which is the active controller. */
async function activeController(settings: Settings): Promise<{id: number | null; reason?: string}> {
  const dist = cachedKafkaDist()
  const output = await runKafkaTool(
    dist,
    'org.apache.kafka.tools.MetadataQuorumCommand',
    ['--bootstrap-server', settings.brokers, 'describe', '--status'],
    kafkaToolTimeoutMs(settings),
  )
  const leader = /^LeaderId:\s+(-?\d+)/m.exec(output)
  if (!leader || Number(leader[1]) < 0) return {id: null, reason: 'the controller quorum has no leader'}
  return {id: Number(leader[1])}
}

/** Effective min.insync.replicas (topic override or broker default) of each topic. */
async function minInsyncReplicas(settings: Settings, topics: string[]): Promise<Map<string, number>> {
  const dist = cachedKafkaDist()
  // ConfigCommand takes one --entity-name (it keeps only the last); without one it describes every topic.
  const names = topics.length === 1 ? ['--entity-name', ...topics] : []
  const output = await runKafkaTool(
    dist,
    'kafka.admin.ConfigCommand',
    ['--bootstrap-server', settings.brokers, '--entity-type', 'topics', ...names, '--describe', '--all'],
    kafkaToolTimeoutMs(settings),
  )
  const result = new Map<string, number>()
  let current: string | undefined
  for (const line of output.split('\n')) {
    const header = /^All configs for topic (\S+) are:/.exec(line)
    if (header) current = header[1]
    const value = /^\s+min\.insync\.replicas=(\d+)/.exec(line)
    if (value && current !== undefined) result.set(current, Number(value[1]))
  }
  return result
}
