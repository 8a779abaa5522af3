import {callReadOnly, type AdminClient} from '../kafka/client.js'
import {deleteTopics} from '../kafka/topic-admin.js'
import {validateTopicName, withAdmin} from '../kafka/topics.js'
import {invalidArgument} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {
  commitOffsets,
  committedOffsets,
  planTopicReset,
  refuseActiveGroup,
  type OffsetReset,
  type ResetTarget,
} from './groups.js'

/**
 * Resetting a Kafka Streams application so it reprocesses its input, as Apache Kafka's
 * StreamsResetter (kafka-streams-application-reset) does: the application's consumer group (named
 * by its application.id) gets new offsets on its input topics, intermediate topics are skipped to
 * their end, and the internal topics Kafka Streams created for it (repartition and changelog
 * topics, foreign-key join subscriptions) are deleted, which also drops the group's offsets on
 * them. Refused while the group has members. Unlike StreamsResetter, a missing input topic stops
 * the reset before anything changes instead of being skipped.
 */

/** StreamsResetter.matchesInternalTopicFormat, Kafka 4.1. */
const INTERNAL_TOPIC_FORMATS = [
  /-(?:changelog|repartition)$/,
  /-subscription-(?:registration|response)-topic$/,
  /^.+-KTABLE-FK-JOIN-SUBSCRIPTION-(?:REGISTRATION|RESPONSE)-\d+-topic$/,
]

/**
 * A topic Kafka Streams created for the application: named `<application.id>-...` in one of the
 * internal formats. A topic the operator names as input or intermediate never is, whatever its
 * name (KAFKA-7930).
 */
export function isInternalTopicOf(application: string, topic: string, userTopics: ReadonlySet<string>): boolean {
  return (
    !userTopics.has(topic) &&
    topic.startsWith(`${application}-`) &&
    INTERNAL_TOPIC_FORMATS.some((format) => format.test(topic))
  )
}

export interface AppResetRequest {
  /** The application.id, which is also its consumer group id. */
  application: string
  inputTopics: string[]
  /** Topics the application both writes and reads back: skipped to their end. */
  intermediateTopics: string[]
  target: ResetTarget
}

export interface AppResetPlan {
  application: string
  /** Input topics' partitions (to the target), then intermediate topics' (to their end). */
  offsets: OffsetReset[]
  /** The internal topics to delete, sorted. */
  internalTopics: string[]
}

export interface AppResetResult extends AppResetPlan {
  dryRun: boolean
  /** True once the offsets are committed and the internal topics deleted; false on a dry run. */
  applied: boolean
}

/** Checks the request, refuses an active group, and plans the reset without changing anything. */
export async function planAppReset(settings: Settings, request: AppResetRequest): Promise<AppResetPlan> {
  const {application, inputTopics, intermediateTopics, target} = request
  if (inputTopics.length === 0 && intermediateTopics.length === 0)
    throw invalidArgument('no topics to reset', "pass the application's input topics with --input-topic")
  for (const topic of [...inputTopics, ...intermediateTopics]) validateTopicName(topic)
  const both = inputTopics.find((topic) => intermediateTopics.includes(topic))
  if (both !== undefined)
    throw invalidArgument(`topic '${both}' is given both as input and as intermediate topic`, 'pass it once')
  return withAdmin(settings, async (admin) => {
    await refuseActiveGroup(settings, admin, application)
    const committed = await committedOffsets(settings, admin, application)
    const offsets: OffsetReset[] = []
    for (const topic of new Set(inputTopics))
      offsets.push(...(await planTopicReset(settings, admin, topic, target, committed)))
    for (const topic of new Set(intermediateTopics))
      offsets.push(...(await planTopicReset(settings, admin, topic, {kind: 'latest'}, committed)))
    const userTopics = new Set([...inputTopics, ...intermediateTopics])
    const internalTopics = (await topicNames(settings, admin))
      .filter((topic) => isInternalTopicOf(application, topic, userTopics))
      .sort()
    return {application, offsets, internalTopics}
  })
}

/**
 * Commits the planned offsets, then deletes the planned internal topics, in StreamsResetter's
 * order. The commit is refused by the broker if a member joined since the plan (nothing is then
 * deleted); the topics deleted are exactly those planned, so exactly those the operator was shown.
 */
export async function applyAppReset(settings: Settings, plan: AppResetPlan): Promise<AppResetResult> {
  await withAdmin(settings, (admin) => refuseActiveGroup(settings, admin, plan.application))
  if (plan.offsets.length > 0) await commitOffsets(settings, plan.application, plan.offsets)
  // Confirmed by the operator before the offsets moved; deleteTopics still checks each name exists.
  if (plan.internalTopics.length > 0) await deleteTopics(settings, plan.internalTopics, () => Promise.resolve(true))
  return {...plan, dryRun: false, applied: true}
}

async function topicNames(settings: Settings, admin: AdminClient): Promise<string[]> {
  return callReadOnly<string[]>(settings, undefined, (cb, timeout) => admin.listTopics({timeout}, cb as never))
}
