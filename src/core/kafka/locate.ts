import {BugError} from '../shared/errors.js'
import {type Partitioner, partitionFor} from './partitioner.js'
import {watermarks} from './offsets.js'
import type {Settings} from '../shared/settings.js'
import {topicMetadata, withAdmin} from './topics.js'

/**
 * Which partition a key lives in, without producing a record. With a topic, the partition count
 * comes from the cluster and the answer adds the partition's leader and watermarks.
 */
export interface KeyLocation {
  key: string
  partition: number
  partitions: number
  partitioner: Partitioner
  topic?: string
  leader?: number | null
  low?: number
  high?: number
}

export function locateKeyOffline(key: string, partitions: number, partitioner: Partitioner): KeyLocation {
  return {key, partition: partitionFor(key, partitions, partitioner), partitions, partitioner}
}

export async function locateKeyInTopic(
  settings: Settings,
  key: string,
  topic: string,
  partitioner: Partitioner,
): Promise<KeyLocation> {
  return withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, topic)
    const location = locateKeyOffline(key, metadata.partitions.length, partitioner)
    const [marks] = await watermarks(settings, admin, topic, [location.partition])
    const partition = metadata.partitions.find((candidate) => candidate.partition === location.partition)
    if (!marks || !partition) throw new BugError(`partition ${location.partition} of '${topic}' vanished`)
    return {
      ...location,
      topic,
      leader: partition.leader,
      low: marks.low,
      high: marks.high,
    }
  })
}
