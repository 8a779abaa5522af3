import type {Pool} from '../../db/database.js'
import {BugError} from '../../shared/errors.js'
import {startJob, type JobNote, type Lease, type ReplayJob, type SourcePlan} from '../store/jobs/index.js'
import {offsetsForTime, partitionsYoungerThan} from '../../kafka/offsets.js'
import {partitionFor} from '../../kafka/partitioner.js'
import {
  earlierCounts,
  partitionCountHistory,
  recordPartitionCount,
  type PartitionCountSighting,
} from '../store/partition-history/index.js'
import type {Plan, RunContext} from './context.js'
import {isoTime} from '../../shared/time.js'
import type {AdminClient} from '../../kafka/client.js'
import {topicMetadata, withAdmin} from '../../kafka/topics.js'

/**
 * Planning a job: where its events lie in the log. For each of the job's topics (one, or several
 * datacenters' copies of the log, whose partition counts may differ) the partition is
 * partitionFor(webhook id, that topic's count), the range [first offset at or after `from`, first
 * offset at or after `to` + the job's late grace).
 *
 * When the topic's partition count grew (store/partition-history/), the webhook's events from before
 * the growth are in its partition under the old count: that partition is read too, for the part of
 * the range before the new count was first seen. A growth the engine did not see (no sighting at or
 * before `from`, and partitions holding nothing that old) is stated in the job's notes instead.
 *
 * Computed on the first run and stored with the job (ONGOING) with one checkpoint per source; a
 * resumed job reuses the plan and reads each source from its checkpoint.
 */
export async function planJob(run: RunContext): Promise<Plan> {
  const {settings, pool, job} = run
  const {lease} = run.keeper
  if (job.sources) return {sources: job.sources, notes: notesOf(job)}
  if (job.partition !== null && job.partitionCount !== null && job.startOffset !== null && job.endOffset !== null) {
    // Planned by a replayctl from before per-source checkpoints: the one topic's columns.
    const sources = [
      {
        topic: job.topic,
        partition: job.partition,
        partitionCount: job.partitionCount,
        startOffset: job.startOffset,
        endOffset: job.endOffset,
        checkpointOffset: job.checkpointOffset ?? job.startOffset,
      },
    ]
    return started(pool, lease, {sources, notes: notesOf(job)})
  }
  const planned = await withAdmin(settings, (admin) =>
    Promise.all(job.topics.map((topic) => planTopic(run, admin, topic))),
  )
  return started(pool, lease, {
    sources: planned.flatMap((topic) => topic.sources),
    notes: [...notesOf(job), ...planned.flatMap((topic) => topic.notes)],
  })
}

/** The job's stored notes with their gaps (a note stored without one: unknown). */
const notesOf = (job: ReplayJob): JobNote[] =>
  job.notes.map((text, index) => ({text, gap: job.gaps[index] ?? {kind: 'unknown'}}))

async function started(pool: Pool, lease: Lease, plan: Plan): Promise<Plan> {
  const [first] = plan.sources
  if (!first) throw new BugError(`job ${lease.id} was planned without a source`)
  const job = await startJob(pool, {
    ...lease,
    partition: first.partition,
    partitionCount: first.partitionCount,
    startOffset: first.startOffset,
    endOffset: first.endOffset,
    sources: plan.sources,
    notes: plan.notes,
  })
  // The stored plan wins: it holds the checkpoints of an earlier run.
  return {sources: job.sources ?? plan.sources, notes: notesOf(job)}
}

async function planTopic(run: RunContext, admin: AdminClient, topic: string): Promise<Plan> {
  const {settings, pool, job} = run
  const {partitioner} = run.options
  const metadata = await topicMetadata(settings, admin, topic)
  const partitionCount = metadata.partitions.length
  const source = async (count: number, partition: number, untilMs: number): Promise<SourcePlan> => {
    const [[from], [to]] = await Promise.all([
      offsetsForTime(settings, admin, topic, [partition], job.fromMs),
      // Past `to` by the late grace: records appended late with a time in range still lie before
      // the first record at or after to + grace; the deliver step keeps only times in [from, to).
      offsetsForTime(settings, admin, topic, [partition], Math.min(job.toMs, untilMs) + job.lateGraceMs),
    ])
    if (!from || !to) throw new BugError(`no offsets for time in ${topic}[${partition}]`)
    const startOffset = from.offset
    return {
      topic,
      partition,
      partitionCount: count,
      startOffset,
      endOffset: Math.max(startOffset, to.offset),
      checkpointOffset: startOffset,
    }
  }
  const current = partitionFor(job.webhookId, partitionCount, partitioner)
  // The key's partition now is looked up in Kafka while the database records the count: one wait
  // for both. Caught here so a database error first leaves no unhandled rejection behind.
  const currentSource = source(partitionCount, current, Number.POSITIVE_INFINITY)
  currentSource.catch(() => {})
  await recordPartitionCount(pool, topic, partitionCount)
  const history = await partitionCountHistory(pool, topic)
  // The key's partition under each earlier count, read up to when the next count was first seen.
  const until = new Map<number, {count: number; untilMs: number}>()
  for (const earlier of earlierCounts(history, partitionCount, job.fromMs)) {
    const partition = partitionFor(job.webhookId, earlier.partitionCount, partitioner)
    if (partition === current) continue
    if ((until.get(partition)?.untilMs ?? -1) < earlier.untilMs)
      until.set(partition, {count: earlier.partitionCount, untilMs: earlier.untilMs})
  }
  const [sources, notes] = await Promise.all([
    Promise.all([
      currentSource,
      ...[...until].map(([partition, {count, untilMs}]) => source(count, partition, untilMs)),
    ]),
    unseenGrowth(run, admin, {topic, partitionCount, history}),
  ])
  return {sources, notes}
}

/**
 * A growth of the partition count the engine cannot place: no count was seen at or before `from`,
 * and some partition (beyond 0, which always existed) holds nothing from before `from`, so it may
 * have been added during the range. Partitions never shrink, so when every partition holds a record
 * from before `from`, the count was the same then.
 */
async function unseenGrowth(
  {settings, job}: RunContext,
  admin: AdminClient,
  {topic, partitionCount, history}: {topic: string; partitionCount: number; history: PartitionCountSighting[]},
): Promise<JobNote[]> {
  if (partitionCount === 1 || history.some((sighting) => sighting.firstSeenMs <= job.fromMs)) return []
  const partitions = Array.from({length: partitionCount - 1}, (_, index) => index + 1)
  const young = await partitionsYoungerThan(settings, admin, topic, partitions, job.fromMs)
  if (young.length === 0) return []
  const firstSeen = Math.min(...history.map((sighting) => sighting.firstSeenMs))
  const list = young.length > 6 ? `${young.slice(0, 6).join(', ')}, ...` : young.join(', ')
  return [
    {
      text:
        `partition count of ${topic} (${partitionCount}) first seen ${isoTime(firstSeen)}, after --from; ` +
        `partitions ${list} hold nothing from before ${isoTime(job.fromMs)}: if the count grew during the range, ` +
        'at a time not recorded, events of the webhook from before the change may be in another partition ' +
        'and were not read',
      gap: {kind: 'partition-growth'},
    },
  ]
}
