import type {Pool} from '../db/database.js'
import {startJob, type Lease, type ReplayJob} from './jobs/index.js'
import {offsetsForTime} from '../kafka/offsets.js'
import {type Partitioner, partitionFor} from '../kafka/partitioner.js'
import type {Settings} from '../shared/settings.js'
import {topicMetadata, withAdmin} from '../kafka/topics.js'

/**
 * Planning a job: where its events lie in the log. The partition is partitionFor(webhook id), the
 * range [first offset at or after `from`, first offset at or after `to`). Computed on the first run
 * and stored with the job (ONGOING); a resumed job reuses it and reads from its checkpoint.
 */
export interface Plan {
  partition: number
  startOffset: number
  endOffset: number
  /** Where this run reads from: the stored checkpoint, else startOffset. */
  resumeAt: number
}

export async function planJob(settings: Settings, pool: Pool, lease: Lease, job: ReplayJob, partitioner: Partitioner): Promise<Plan> {
  const planned = job.partition !== null && job.partitionCount !== null && job.startOffset !== null && job.endOffset !== null
    ? {partitionCount: job.partitionCount, partition: job.partition, startOffset: job.startOffset, endOffset: job.endOffset}
    : await withAdmin(settings, async (admin) => {
      const metadata = await topicMetadata(settings, admin, job.topic)
      const partitionCount = metadata.partitions.length
      const partition = partitionFor(job.webhookId, partitionCount, partitioner)
      const [[from], [to]] = await Promise.all([
        offsetsForTime(settings, admin, job.topic, [partition], job.fromMs),
        offsetsForTime(settings, admin, job.topic, [partition], job.toMs),
      ])
      return {partitionCount, partition, startOffset: from!.offset, endOffset: Math.max(from!.offset, to!.offset)}
    })
  const started = await startJob(pool, {...lease, ...planned})
  const {partition, startOffset, endOffset} = planned
  return {partition, startOffset, endOffset, resumeAt: started.checkpointOffset ?? startOffset}
}
