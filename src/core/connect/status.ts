import {connectRequest, firstLine, type ConnectTarget} from './rest.js'

/**
 * What a Kafka Connect cluster runs, as one GET /connectors?expand=status&expand=info gives it:
 * the workers (the one asked and each one a connector or task runs on), every connector with its
 * type, state and worker, and its tasks with the first line of a failure's trace.
 */
export interface ConnectStatus {
  url: string
  version: string
  commit: string
  kafkaClusterId: string
  workers: {id: string; connectors: number; tasks: number}[]
  connectors: ConnectorStatus[]
  /** False when a connector or a task is FAILED. */
  healthy: boolean
}

export interface ConnectorStatus {
  name: string
  type: string
  className: string
  state: string
  worker: string
  /** First line of the connector's failure trace (FAILED only). */
  error: string | null
  tasks: {id: number; state: string; worker: string; error: string | null}[]
}

interface StatusBody {
  connector: {state: string; worker_id: string; trace?: string}
  tasks: {id: number; state: string; worker_id: string; trace?: string}[]
  type?: string
}
interface InfoBody {
  config: Record<string, string>
  type?: string
}

export async function connectStatus(target: ConnectTarget): Promise<ConnectStatus> {
  const {body: root} = await connectRequest<{version: string; commit: string; kafka_cluster_id: string}>(
    target,
    'GET',
    '/',
  )
  const {body} = await connectRequest<Record<string, {status?: StatusBody; info?: InfoBody}>>(
    target,
    'GET',
    '/connectors?expand=status&expand=info',
  )
  const connectors = Object.entries(body)
    .map(([name, {status, info}]): ConnectorStatus => {
      const className = info?.config['connector.class'] ?? ''
      return {
        name,
        type: status?.type ?? info?.type ?? 'unknown',
        className,
        // A connector just created has no status yet.
        state: status?.connector.state ?? 'UNASSIGNED',
        worker: status?.connector.worker_id ?? '',
        error: status?.connector.trace ? firstLine(status.connector.trace) : null,
        tasks: (status?.tasks ?? [])
          .map((task) => ({
            id: task.id,
            state: task.state,
            worker: task.worker_id,
            error: task.trace ? firstLine(task.trace) : null,
          }))
          .sort((a, b) => a.id - b.id),
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
  const workers = new Map<string, {id: string; connectors: number; tasks: number}>()
  const worker = (id: string) => {
    const found = workers.get(id) ?? {id, connectors: 0, tasks: 0}
    workers.set(id, found)
    return found
  }
  // The worker asked is one even when it runs nothing; it knows itself by its advertised URL.
  worker(new URL(target.url).host)
  for (const connector of connectors) {
    if (connector.worker) worker(connector.worker).connectors++
    for (const task of connector.tasks) if (task.worker) worker(task.worker).tasks++
  }
  return {
    url: target.url,
    version: root.version,
    commit: root.commit,
    kafkaClusterId: root.kafka_cluster_id,
    workers: [...workers.values()].sort((a, b) => a.id.localeCompare(b.id)),
    connectors,
    healthy: connectors.every(
      (connector) => connector.state !== 'FAILED' && connector.tasks.every((task) => task.state !== 'FAILED'),
    ),
  }
}

export interface ConnectorAction {
  connector: string
  action: 'restart' | 'pause' | 'resume'
  /** What the worker answered: for a restart, the states of the connector and tasks it restarts. */
  state: string | null
  restartedTasks: number[]
}

/**
 * Restarts a connector and its tasks (only the FAILED ones with `failedOnly`), through
 * POST /connectors/<name>/restart?includeTasks=true&onlyFailed=...
 */
export async function restartConnector(
  target: ConnectTarget,
  name: string,
  options: {failedOnly: boolean},
): Promise<ConnectorAction> {
  const path = `/connectors/${encodeURIComponent(name)}/restart?includeTasks=true` + `&onlyFailed=${options.failedOnly}`
  const {body} = await connectRequest<StatusBody | null>(target, 'POST', path, undefined, {connector: name})
  return {
    connector: name,
    action: 'restart',
    state: body?.connector.state ?? null,
    restartedTasks: (body?.tasks ?? []).filter((task) => task.state === 'RESTARTING').map((task) => task.id),
  }
}

/** Pauses or resumes a connector and its tasks (PUT /connectors/<name>/pause or /resume; Connect answers 202). */
export async function setConnectorPaused(
  target: ConnectTarget,
  name: string,
  paused: boolean,
): Promise<ConnectorAction> {
  // PUT /pause answers 202 even for a name it does not know; asking first makes that a clear error.
  await connectRequest(target, 'GET', `/connectors/${encodeURIComponent(name)}/status`, undefined, {connector: name})
  await connectRequest(
    target,
    'PUT',
    `/connectors/${encodeURIComponent(name)}/${paused ? 'pause' : 'resume'}`,
    undefined,
    {connector: name},
  )
  return {connector: name, action: paused ? 'pause' : 'resume', state: null, restartedTasks: []}
}
