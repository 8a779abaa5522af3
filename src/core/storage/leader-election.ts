import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {cachedKafkaDist, kafkaToolTimeoutMs, runKafkaTool} from '../kafka/apache-dist.js'
import {callReadOnly} from '../kafka/client.js'
import {topicMetadata, validateTopicName, withAdmin} from '../kafka/topics.js'
import {UserError, invalidArgument} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'

/**
 * Preferred leader election: moves each partition's leadership back to its first replica, which is
 * where Kafka spread the leaders when the topic was made, after a broker restart left them piled on
 * the brokers that stayed up. The client library has no ElectLeaders, so Apache Kafka's own
 * LeaderElectionCommand does it; the partitions in scope are read before and after, so each is
 * reported as elected, already preferred, or failed with Kafka's reason.
 */
export type ElectionOutcome = 'elected' | 'already-preferred' | 'failed'

export interface PartitionElection {
  topic: string
  partition: number
  /** The first replica: the leader election aims for. */
  preferred: number | null
  leaderBefore: number | null
  leaderAfter: number | null
  outcome: ElectionOutcome
  /** Kafka's reason, for a failed election. */
  error?: string
}

export interface ElectLeadersResult {
  partitions: PartitionElection[]
  elected: number
  alreadyPreferred: number
  failed: number
}

interface Scoped {
  topic: string
  partition: number
  preferred: number | null
  leader: number | null
}

async function partitionsInScope(settings: Settings, options: {topic?: string; partition?: number}): Promise<Scoped[]> {
  return withAdmin(settings, async (admin) => {
    let names: string[]
    if (options.topic === undefined) {
      names = (
        await callReadOnly<string[]>(settings, undefined, (cb, timeout) => admin.listTopics({timeout}, cb as never))
      ).sort()
    } else {
      names = [options.topic]
    }
    const scoped: Scoped[] = []
    for (const name of names) {
      const metadata = await topicMetadata(settings, admin, name)
      for (const partition of metadata.partitions) {
        if (options.partition !== undefined && partition.partition !== options.partition) continue
        scoped.push({
          topic: name,
          partition: partition.partition,
          preferred: partition.replicas[0] ?? null,
          leader: partition.leader,
        })
      }
    }
    if (options.partition !== undefined && scoped.length === 0) {
      throw new UserError(
        'PARTITION_NOT_FOUND',
        `topic '${options.topic}' has no partition ${options.partition}`,
        'see its partitions with `replayctl topic describe`',
      )
    }
    return scoped
  })
}

const key = (topic: string, partition: number) => `${topic}:${partition}`

/** "t-0, t-1" as LeaderElectionCommand prints partitions; a topic name may itself hold dashes. */
function parsePartitionList(list: string): string[] {
  return list.split(', ').map((name) => {
    const at = name.lastIndexOf('-')
    return key(name.slice(0, at), Number(name.slice(at + 1)))
  })
}

export async function electPreferredLeaders(
  settings: Settings,
  options: {topic?: string; partition?: number},
): Promise<ElectLeadersResult> {
  if (options.partition !== undefined && options.topic === undefined)
    throw invalidArgument(
      '--partition needs --topic',
      'pass --topic T --partition P, or --topic T alone for all its partitions',
    )
  if (options.partition !== undefined && (!Number.isInteger(options.partition) || options.partition < 0))
    throw invalidArgument(`--partition must be a whole number >= 0, got ${options.partition}`)
  if (options.topic !== undefined) validateTopicName(options.topic)
  const dist = cachedKafkaDist()
  const before = await partitionsInScope(settings, options)
  // Only partitions whose leader is not the preferred replica are sent: the rest need nothing.
  const candidates = before.filter(
    (partition) => partition.preferred !== null && partition.leader !== partition.preferred,
  )
  const failures = new Map<string, string>()
  if (candidates.length > 0) {
    const work = mkdtempSync(join(tmpdir(), 'replayctl-elect-'))
    try {
      const file = join(work, 'partitions.json')
      writeFileSync(file, JSON.stringify({partitions: candidates.map(({topic, partition}) => ({topic, partition}))}))
      let output: string
      try {
        output = await runKafkaTool(
          dist,
          'org.apache.kafka.tools.LeaderElectionCommand',
          ['--bootstrap-server', settings.brokers, '--election-type', 'preferred', '--path-to-json-file', file],
          kafkaToolTimeoutMs(settings),
        )
      } catch (error) {
        // The tool exits non-zero when some partition failed, after printing each failure on stdout.
        output = String(((error as UserError).cause as {stdout?: string} | undefined)?.stdout ?? '')
        if (!/^Error completing leader election/m.test(output)) throw error
      }
      for (const [, named = '', reason = ''] of output.matchAll(
        /^Error completing leader election \(PREFERRED\) for partition: (\S+): (.*)$/gm,
      )) {
        for (const partition of parsePartitionList(named))
          failures.set(partition, reason.replace(/^org\.apache\.kafka\.common\.errors\.\w+: /, ''))
      }
    } finally {
      rmSync(work, {recursive: true, force: true})
    }
  }
  const after = new Map(
    (await partitionsInScope(settings, options)).map((partition) => [
      key(partition.topic, partition.partition),
      partition,
    ]),
  )
  const partitions = before.map((partition): PartitionElection => {
    const now = after.get(key(partition.topic, partition.partition))
    const failure = failures.get(key(partition.topic, partition.partition))
    const leaderAfter = now?.leader ?? null
    let outcome: ElectionOutcome
    if (partition.leader === partition.preferred) outcome = 'already-preferred'
    else if (failure === undefined && leaderAfter === partition.preferred) outcome = 'elected'
    else outcome = 'failed'
    return {
      topic: partition.topic,
      partition: partition.partition,
      preferred: partition.preferred,
      leaderBefore: partition.leader,
      leaderAfter,
      outcome,
      ...(outcome === 'failed'
        ? {error: failure ?? `leader is ${leaderAfter ?? 'none'}, not the preferred replica ${partition.preferred}`}
        : {}),
    }
  })
  const count = (outcome: ElectionOutcome) => partitions.filter((partition) => partition.outcome === outcome).length
  return {partitions, elected: count('elected'), alreadyPreferred: count('already-preferred'), failed: count('failed')}
}
