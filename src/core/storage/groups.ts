import {call, callGroupReadOnly, connectConsumer, disconnect, kafkaError, type AdminClient} from '../kafka/client.js'
import {offsetsForTime, watermarks} from '../kafka/offsets.js'
import {readRanges} from '../kafka/range-reader.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'
import {BugError, UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {plural} from '../shared/plural.js'

/**
 * Consumer groups as an operator sees them: the groups, their members and assignments, and per
 * partition the committed offset, the log end, the lag in messages (as Apache Kafka's
 * ConsumerGroupCommand --describe computes it: log end - committed) and the lag in time (how old
 * the first record not yet consumed is, from its timestamp). Also resetting a group's committed
 * offsets, which is refused while the group has members because they would overwrite it.
 */
export interface GroupSummary {
  group: string
  state: string
  protocolType: string
  type: string
}

export interface GroupMember {
  memberId: string
  clientId: string
  host: string
  partitions: {topic: string; partition: number}[]
}

export interface PartitionLag {
  topic: string
  partition: number
  /** Committed offset (the next record the group will read); null when the group has none here. */
  committed: number | null
  logEnd: number
  /** logEnd - committed; null without a committed offset. */
  lag: number | null
  /** Timestamp of the record at the committed offset (the oldest not yet consumed); null when caught up. */
  nextTimestamp: number | null
  /** now - nextTimestamp: how far behind in time; 0 when caught up, null when unknown. */
  lagMs: number | null
  memberId: string | null
  clientId: string | null
  host: string | null
}

export interface GroupLag {
  group: string
  state: string
  coordinator: number | null
  members: GroupMember[]
  partitions: PartitionLag[]
  /** null when a partition's lag is unknown (no committed offset) */
  totalLag: number | null
  /** Largest lagMs over the partitions; null when none is known or a partition has no committed offset. */
  maxLagMs: number | null
  at: number
}

const STATE_NAMES = ['Unknown', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead', 'Empty']
const TYPE_NAMES = ['Unknown', 'Consumer', 'Classic']

interface DescribedGroup {
  groupId: string
  error?: {code: number; message: string}
  state: number
  protocolType: string
  coordinator?: {id: number}
  members: {
    memberId: string
    clientId: string
    clientHost: string
    assignment?: {topicPartitions?: {topic: string; partition: number}[]}
  }[]
}

export async function listGroups(settings: Settings): Promise<GroupSummary[]> {
  return withAdmin(settings, async (admin) => {
    // A broker that did not answer leaves the list incomplete: better no list than one missing groups.
    const listed = await callGroupReadOnly<{
      groups: {groupId: string; protocolType: string; state: number; type: number}[]
      errors: unknown[]
    }>(
      settings,
      (result) => result.errors[0],
      (cb, timeout) => admin.listGroups({timeout}, cb as never),
    )
    return listed.groups
      .map((group) => ({
        group: group.groupId,
        state: STATE_NAMES[group.state] ?? 'Unknown',
        protocolType: group.protocolType || '-',
        type: TYPE_NAMES[group.type] ?? 'Unknown',
      }))
      .sort((a, b) => a.group.localeCompare(b.group))
  })
}

async function describeGroup(settings: Settings, admin: AdminClient, group: string): Promise<DescribedGroup> {
  const described = await callGroupReadOnly<{groups: DescribedGroup[]}>(
    settings,
    (result) => result.groups[0]?.error,
    (cb, timeout) => admin.describeGroups([group], {timeout}, cb as never),
  )
  const found = described.groups[0]
  if (!found)
    throw new UserError('KAFKA_REJECTED', `Kafka returned no description for group '${group}'`, 'check the broker log')
  return found
}

export async function committedOffsets(
  settings: Settings,
  admin: AdminClient,
  group: string,
): Promise<{topic: string; partition: number; offset: number}[]> {
  const [result] = await callGroupReadOnly<
    {
      groupId: string
      error?: unknown
      partitions: {topic: string; partition: number; offset: number; error?: unknown}[]
    }[]
  >(
    settings,
    (results) => results[0]?.error,
    (cb, timeout) => admin.listConsumerGroupOffsets([{groupId: group}], {timeout}, cb as never),
  )
  return (result?.partitions ?? []).filter((partition) => partition.offset >= 0)
}

function groupNotFound(group: string): UserError {
  // Kafka drops a group's offsets with their topic, so an empty group whose topics were deleted lands here too.
  return new UserError(
    'GROUP_NOT_FOUND',
    `consumer group '${group}' does not exist or has neither members nor committed offsets`,
    'list groups with `replayctl group list`',
  )
}

export async function groupLag(settings: Settings, group: string, options: {topic?: string} = {}): Promise<GroupLag> {
  const {description, committed, logs} = await withAdmin(settings, async (admin) => {
    // Described first: the offsets are then fetched from a coordinator already found and loaded.
    const description = await describeGroup(settings, admin, group)
    const committed = await committedOffsets(settings, admin, group)
    const assigned = description.members.flatMap((member) => member.assignment?.topicPartitions ?? [])
    const topics = [...new Set([...committed, ...assigned].map((entry) => entry.topic))]
      .filter((topic) => options.topic === undefined || topic === options.topic)
      .sort()
    const logs = new Map<string, {low: number; high: number}>()
    for (const topic of topics) {
      const partitions = [
        ...new Set(
          [...committed, ...assigned].filter((entry) => entry.topic === topic).map((entry) => entry.partition),
        ),
      ]
      for (const mark of await watermarks(settings, admin, topic, partitions))
        logs.set(`${topic}:${mark.partition}`, mark)
    }
    return {description, committed, logs}
  })
  if (description.members.length === 0 && committed.length === 0) throw groupNotFound(group)

  const owner = new Map<string, GroupDescribedMember>()
  const members: GroupMember[] = description.members.map((member) => {
    const partitions = (member.assignment?.topicPartitions ?? [])
      .map(({topic, partition}) => ({topic, partition}))
      .sort(byTopicPartition)
    for (const partition of partitions) owner.set(`${partition.topic}:${partition.partition}`, member)
    return {memberId: member.memberId, clientId: member.clientId, host: member.clientHost, partitions}
  })
  const committedAt = new Map(committed.map((entry) => [`${entry.topic}:${entry.partition}`, entry.offset]))
  const at = Date.now()
  const logStarts = new Map<PartitionLag, number>()
  const partitions: PartitionLag[] = [...logs.entries()]
    .map(([key, {low, high: logEnd}]) => {
      const [topic, partition] = [key.slice(0, key.lastIndexOf(':')), Number(key.slice(key.lastIndexOf(':') + 1))]
      const offset = committedAt.get(key) ?? null
      const member = owner.get(key)
      const lag: PartitionLag = {
        topic,
        partition,
        committed: offset,
        logEnd,
        // Not clamped: a commit past the log end (a truncated log) shows negative, as in ConsumerGroupCommand.
        lag: offset === null ? null : logEnd - offset,
        nextTimestamp: null,
        lagMs: offset !== null && offset >= logEnd ? 0 : null,
        memberId: member?.memberId ?? null,
        clientId: member?.clientId ?? null,
        host: member?.clientHost ?? null,
      }
      logStarts.set(lag, low)
      return lag
    })
    .sort(byTopicPartition)

  await fillNextTimestamps(
    settings,
    partitions.filter((partition) => partition.committed !== null && partition.committed < partition.logEnd),
    logStarts,
    at,
  )
  const known = partitions.map((partition) => partition.lagMs).filter((lag): lag is number => lag !== null)
  // A partition without a committed offset has no lag (Apache's tool shows "-"), so neither has
  // the total: summing the others would understate it.
  const totalLag = partitions.reduce<number | null>(
    (sum, partition) => (sum === null || partition.lag === null ? null : sum + partition.lag),
    0,
  )
  return {
    group,
    state: STATE_NAMES[description.state] ?? 'Unknown',
    coordinator: description.coordinator?.id ?? null,
    members,
    partitions,
    totalLag,
    // Nor is the largest lag in time known then: such a partition is read from wherever the
    // consumers' auto.offset.reset says, its first record perhaps, older than any known one.
    maxLagMs: totalLag === null || known.length === 0 ? null : Math.max(...known),
    at,
  }
}

type GroupDescribedMember = DescribedGroup['members'][number]

function byTopicPartition(a: {topic: string; partition: number}, b: {topic: string; partition: number}): number {
  return a.topic.localeCompare(b.topic) || a.partition - b.partition
}

const PROBE_RANGE = 1000

/**
 * Reads the first record at or after each committed offset (or the log start, when retention has
 * deleted the records there), one topic at a time. A short range is enough: only compaction or
 * transaction markers put gaps after an offset, and when the range holds no record the time lag
 * stays unknown rather than guessed.
 */
async function fillNextTimestamps(
  settings: Settings,
  behind: PartitionLag[],
  logStarts: Map<PartitionLag, number>,
  now: number,
): Promise<void> {
  for (const topic of new Set(behind.map((partition) => partition.topic))) {
    const wanted = new Map(
      behind.filter((partition) => partition.topic === topic).map((partition) => [partition.partition, partition]),
    )
    const abort = new AbortController()
    const ranges = [...wanted.values()].map((partition) => {
      const logStart = logStarts.get(partition)
      if (partition.committed === null || logStart === undefined)
        throw new BugError(`${topic}:${partition.partition} is probed without a committed offset or log start`)
      const start = Math.max(partition.committed, logStart)
      return {partition: partition.partition, start, end: Math.min(partition.logEnd, start + PROBE_RANGE)}
    })
    for await (const batch of readRanges(settings, topic, ranges, {
      batchSize: 100,
      signal: abort.signal,
      consumerConfig: {'max.partition.fetch.bytes': 262_144},
    })) {
      for (const message of batch) {
        const partition = wanted.get(message.partition)
        if (!partition || message.timestamp === undefined) continue
        partition.nextTimestamp = message.timestamp
        partition.lagMs = Math.max(0, now - message.timestamp)
        wanted.delete(message.partition)
      }
      if (wanted.size === 0) abort.abort()
    }
  }
}

export type ResetTarget =
  {kind: 'earliest'} | {kind: 'latest'} | {kind: 'offset'; offset: number} | {kind: 'time'; time: number}

export interface OffsetReset {
  topic: string
  partition: number
  /** Committed before the reset; null when the group had none. */
  current: number | null
  target: number
}

export interface ResetResult {
  group: string
  topic: string
  dryRun: boolean
  /** True once the new offsets are committed; false on a dry run. */
  applied: boolean
  plan: OffsetReset[]
}

/**
 * Plans, and unless dryRun commits, new offsets for every partition of one topic. Targets are
 * clamped to what the log holds (as ConsumerGroupCommand does): an offset below the log start
 * becomes the log start, one past the end the log end; a time after the last record the log end.
 */
export async function resetOffsets(
  settings: Settings,
  group: string,
  topic: string,
  target: ResetTarget,
  options: {dryRun: boolean},
): Promise<ResetResult> {
  const plan = await withAdmin(settings, async (admin) => {
    refuseActive(group, await describeGroup(settings, admin, group))
    return planTopicReset(settings, admin, topic, target, await committedOffsets(settings, admin, group))
  })
  if (options.dryRun) return {group, topic, dryRun: true, applied: false, plan}
  await commitOffsets(settings, group, plan)
  return {group, topic, dryRun: false, applied: true, plan}
}

/** Fails with GROUP_ACTIVE when the group has members: they would overwrite any offsets committed for it. */
export async function refuseActiveGroup(settings: Settings, admin: AdminClient, group: string): Promise<void> {
  refuseActive(group, await describeGroup(settings, admin, group))
}

/**
 * The new offset of every partition of one topic, next to the committed one: the one place
 * targets are computed, for `group reset-offsets` and `group reset-app` alike.
 */
export async function planTopicReset(
  settings: Settings,
  admin: AdminClient,
  topic: string,
  target: ResetTarget,
  committed: {topic: string; partition: number; offset: number}[],
): Promise<OffsetReset[]> {
  const metadata = await topicMetadata(settings, admin, topic)
  const partitions = metadata.partitions.map((partition) => partition.partition)
  const [marks, byTime] = await Promise.all([
    watermarks(settings, admin, topic, partitions),
    target.kind === 'time' ? offsetsForTime(settings, admin, topic, partitions, target.time) : Promise.resolve([]),
  ])
  const timeOffsets = new Map(byTime.map((found) => [found.partition, found.offset]))
  const current = new Map(
    committed.filter((entry) => entry.topic === topic).map((entry) => [entry.partition, entry.offset]),
  )
  return marks.map((mark): OffsetReset => {
    let offset: number
    if (target.kind === 'earliest') offset = mark.low
    else if (target.kind === 'latest') offset = mark.high
    // offsetsForTime answers every partition asked, the log end where no record is that late.
    else if (target.kind === 'time') offset = timeOffsets.get(mark.partition) ?? mark.high
    else offset = Math.min(Math.max(target.offset, mark.low), mark.high)
    return {topic, partition: mark.partition, current: current.get(mark.partition) ?? null, target: offset}
  })
}

/** How many members a group has and its state, for refusals: `1 active member (Stable)`. */
function membersOf(description: DescribedGroup): string {
  const count = description.members.length
  return `${count} active ${plural(count, 'member')} (${STATE_NAMES[description.state] ?? 'Unknown'})`
}

function refuseActive(group: string, description: DescribedGroup): void {
  if (description.members.length === 0) return
  throw new UserError(
    'GROUP_ACTIVE',
    `consumer group '${group}' has ${membersOf(description)}; they would overwrite the new offsets`,
    'stop its consumers first (`replayctl group lag` lists them), then reset',
  )
}

/**
 * Commits explicit offsets as a consumer of the group that never joins it: the broker accepts
 * commits without a generation only while the group has no members, so a consumer that started
 * meanwhile makes this fail instead of being overwritten.
 */
export async function commitOffsets(settings: Settings, group: string, plan: OffsetReset[]): Promise<void> {
  const consumer = await connectConsumer(settings, {'group.id': group, 'client.id': 'replayctl-reset-offsets'})
  try {
    consumer.commitSync(plan.map(({topic, partition, target}) => ({topic, partition, offset: target})))
  } catch (error) {
    const code = (error as {code?: number}).code
    // UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS: a member joined since the check.
    if (code === 25 || code === 22 || code === 27) {
      throw new UserError(
        'GROUP_ACTIVE',
        `consumer group '${group}' gained members while resetting; nothing was committed`,
        'stop its consumers first, then reset',
        {cause: error},
      )
    }
    throw kafkaError(settings, error)
  } finally {
    await disconnect(consumer)
  }
}

export interface DeleteGroupResult {
  group: string
  deleted: boolean
}

/**
 * Deletes an empty group with its committed offsets (Apache's ConsumerGroupCommand --delete).
 * Refused while it has members: Kafka would refuse too (NON_EMPTY_GROUP), and the members would
 * commit the group back into existence.
 */
export async function deleteGroup(settings: Settings, group: string): Promise<DeleteGroupResult> {
  return withAdmin(settings, async (admin) => {
    const description = await describeGroup(settings, admin, group)
    if (description.members.length > 0) {
      throw new UserError(
        'GROUP_ACTIVE',
        `consumer group '${group}' has ${membersOf(description)}; Kafka deletes only empty groups`,
        'stop its consumers first (`replayctl group lag` lists them), then delete',
      )
    }
    const [result] = await call<{groupId: string; error?: {code?: number; message?: string}; errorCode?: number}[]>(
      settings,
      undefined,
      (cb) => admin.deleteGroups([group], {timeout: settings.timeoutMs}, cb as never),
    )
    const code = result?.error?.code ?? result?.errorCode ?? 0
    // GROUP_ID_NOT_FOUND: no members and no offsets, or an unknown name.
    if (code === 69) throw groupNotFound(group)
    // NON_EMPTY_GROUP: a member joined since the check.
    if (code === 68)
      throw new UserError(
        'GROUP_ACTIVE',
        `consumer group '${group}' gained members while deleting; nothing was deleted`,
        'stop its consumers first, then delete',
      )
    if (code !== 0) throw kafkaError(settings, result!.error ?? {code, message: `error code ${code}`})
    return {group, deleted: true}
  })
}
