import {invalidArgument} from '../shared/errors.js'
import {type OffsetForTime, offsetsForTime} from './offsets.js'
import {type Partitioner, partitionFor} from './partitioner.js'
import type {Settings} from '../shared/settings.js'
import {isoTime} from '../shared/time.js'
import {topicMetadata, withAdmin} from './topics.js'

/**
 * Offsets by time (Kafka's ListOffsets by timestamp, what offsetsForTimes asks): for each
 * partition, or only the key's, the first offset whose record is at or after the time. `until` is
 * exclusive, like the Replay API's to_date, so [since.offset, until.offset) holds exactly the
 * records of [since, until) in a partition whose timestamps only grow.
 */
export interface OffsetsAtTime {
  time: string
  ms: number
  offsets: OffsetForTime[]
}

export interface SeekResult {
  topic: string
  key?: string
  partitioner?: Partitioner
  since: OffsetsAtTime
  until?: OffsetsAtTime
}

export async function seek(
  settings: Settings,
  options: {topic: string; since: number; until?: number; key?: string; partitioner: Partitioner},
): Promise<SeekResult> {
  if (options.until !== undefined && options.until < options.since) {
    throw invalidArgument(
      `--until (${isoTime(options.until)}) is before --since (${isoTime(options.since)})`,
      'swap them, or give a later --until',
    )
  }
  return withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, options.topic)
    const partitions =
      options.key === undefined
        ? metadata.partitions.map((partition) => partition.partition)
        : [partitionFor(options.key, metadata.partitions.length, options.partitioner)]
    const at = async (ms: number): Promise<OffsetsAtTime> => ({
      time: isoTime(ms),
      ms,
      offsets: await offsetsForTime(settings, admin, options.topic, partitions, ms),
    })
    const [since, until] = await Promise.all([
      at(options.since),
      options.until === undefined ? undefined : at(options.until),
    ])
    return {
      topic: options.topic,
      ...(options.key === undefined ? {} : {key: options.key, partitioner: options.partitioner}),
      since,
      ...(until ? {until} : {}),
    }
  })
}
