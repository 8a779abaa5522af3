import {invalidArgument, quoteInput} from '../shared/errors.js'

/**
 * Capacity arithmetic for a topic that is the system of record: how large one partition may grow
 * on a given cluster, what retention.bytes to set, and how long the disks hold data at a write rate.
 *
 *   raw per partition     = brokers x disk / (partitions x replication)
 *   usable per partition  = raw, less two reserves:
 *     spike headroom      SPIKE_HEADROOM (25%) of every disk stays free: retention deletes only
 *                         closed segments and only every log.retention.check.interval.ms (5 min),
 *                         so bursts, slow deletion and compaction's copies must fit on top
 *     failure reserve     when brokers > replication, a failed broker's replicas are re-created on
 *                         the others, so everything must fit on brokers - 1 disks; when
 *                         brokers <= replication there is nowhere to move them and nothing to reserve
 *   retention.bytes       = usable per partition - one segment (segment.bytes, 1 GiB by default):
 *                           retention.bytes counts closed segments, the active one comes on top
 *   retention at a rate   = usable per partition x partitions / rate (rate is the topic's produce
 *                           rate in bytes after compression, spread evenly over the partitions; a
 *                           skewed key spread fills the busiest partition first)
 */
export const SPIKE_HEADROOM = 0.25
export const DEFAULT_SEGMENT_BYTES = 1024 ** 3

export interface PlanInput {
  brokers: number
  diskBytes: number
  partitions: number
  replication: number
  /** Produce rate of the topic in bytes per second (after compression), if known. */
  rateBytesPerSecond?: number
  segmentBytes?: number
}

export interface ClusterPlan {
  input: PlanInput & {segmentBytes: number}
  rawPerPartitionBytes: number
  spikeHeadroom: number
  /** Fraction of the raw capacity kept for re-replicating a failed broker's partitions. */
  failureReserve: number
  usablePerPartitionBytes: number
  /** What to set as the topic's retention.bytes (per partition); 0 when a segment does not fit. */
  retentionBytes: number
  /** How long the usable space holds data at the given rate; null without a rate. */
  retentionSeconds: number | null
  warnings: string[]
}

export function planCluster(input: PlanInput): ClusterPlan {
  for (const [name, value] of [
    ['--brokers', input.brokers],
    ['--partitions', input.partitions],
    ['--replication', input.replication],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0)
      throw invalidArgument(`${name} must be a positive whole number, got ${value}`)
  }
  if (!(input.diskBytes > 0))
    throw invalidArgument('--disk must be a positive size', 'e.g. --disk 2TiB or --disk 500GB')
  if (input.replication > input.brokers) {
    throw invalidArgument(
      `--replication ${input.replication} needs at least ${input.replication} brokers, got ${input.brokers}`,
      'lower --replication or add brokers',
    )
  }
  if (input.rateBytesPerSecond !== undefined && !(input.rateBytesPerSecond > 0))
    throw invalidArgument('--rate must be a positive number of MB/s')
  const segmentBytes = input.segmentBytes ?? DEFAULT_SEGMENT_BYTES

  const rawPerPartitionBytes = (input.brokers * input.diskBytes) / (input.partitions * input.replication)
  const failureReserve = input.brokers > input.replication ? 1 / input.brokers : 0
  const usablePerPartitionBytes = Math.floor(rawPerPartitionBytes * (1 - SPIKE_HEADROOM) * (1 - failureReserve))
  const retentionBytes = Math.max(0, usablePerPartitionBytes - segmentBytes)
  const retentionSeconds =
    input.rateBytesPerSecond === undefined
      ? null
      : (usablePerPartitionBytes * input.partitions) / input.rateBytesPerSecond

  const warnings: string[] = []
  if (retentionBytes === 0)
    warnings.push(
      `one segment (${segmentBytes} bytes) does not fit in a partition's share: ` +
        'use more disk, fewer partitions or a smaller segment.bytes',
    )
  if (input.replication === 1) warnings.push('replication 1: losing one disk loses data')
  if (input.brokers === input.replication && input.replication > 1)
    warnings.push(
      'every broker holds every partition: a failed broker leaves partitions under-replicated until it returns ' +
        '(no spare broker to re-replicate to)',
    )
  return {
    input: {...input, segmentBytes},
    rawPerPartitionBytes: Math.floor(rawPerPartitionBytes),
    spikeHeadroom: SPIKE_HEADROOM,
    failureReserve,
    usablePerPartitionBytes,
    retentionBytes,
    retentionSeconds,
    warnings,
  }
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
}

/** Parses a size: 500GB and 2TB are decimal (disk vendors), 2TiB and 2T binary (df -h). */
export function parseSize(input: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim())
  const unit = match?.[2]?.toLowerCase() || 'b'
  const factor = Object.hasOwn(SIZE_UNITS, unit) ? SIZE_UNITS[unit] : undefined
  if (!match || factor === undefined) {
    throw invalidArgument(
      `invalid ${what} ${quoteInput(input)}`,
      'use a number and a unit: B, KB, MB, GB, TB (decimal) or KiB, MiB, GiB, TiB (binary), e.g. 2TiB',
    )
  }
  return Math.round(Number(match[1]) * factor)
}
