import {crc32} from 'node:zlib'

import {UserError, quoteInput} from '../shared/errors.js'

/**
 * Where a keyed record lands, computed exactly as the producers do, so no record needs producing.
 *
 *   murmur2  Java's default partitioner (and librdkafka's `murmur2_random` for keyed records):
 *            toPositive(murmur2(keyBytes)) % partitions, toPositive(x) = x & 0x7fffffff.
 *   crc32    librdkafka's default `consistent_random` / `consistent`: crc32(keyBytes) % partitions.
 *
 * Every replayctl producer sets `partitioner=murmur2_random` so that it agrees with Java clients.
 */
export const PARTITIONERS = ['murmur2', 'crc32'] as const
export type Partitioner = (typeof PARTITIONERS)[number]

/** The librdkafka `partitioner` property that places keys the same way. */
export const LIBRDKAFKA_PARTITIONER: Record<Partitioner, string> = {
  murmur2: 'murmur2_random',
  crc32: 'consistent_random',
}

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), a 32-bit signed result.
 * No maintained npm package exposes Kafka's variant (its seed and tail handling differ from
 * MurmurHash2 libraries), so it is ported here and pinned by Kafka's own published test vectors.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length
  // DataView reads are bounds-checked numbers (a typed array's index reads may be undefined to TypeScript).
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const m = 0x5bd1e995
  const r = 24
  let h = (0x9747b28c ^ length) | 0

  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = view.getInt32(i, true)
    k = Math.imul(k, m)
    k ^= k >>> r
    k = Math.imul(k, m)
    h = Math.imul(h, m)
    h ^= k
  }

  const tail = length & 3
  if (tail === 3) h ^= view.getUint8(whole + 2) << 16
  if (tail >= 2) h ^= view.getUint8(whole + 1) << 8
  if (tail >= 1) {
    h ^= view.getUint8(whole)
    h = Math.imul(h, m)
  }

  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

export function partitionFor(
  key: string | Uint8Array,
  partitions: number,
  partitioner: Partitioner = 'murmur2',
): number {
  if (!Number.isInteger(partitions) || partitions <= 0) {
    throw new UserError(
      'INVALID_ARGUMENT',
      `partition count must be a positive whole number, got ${partitions}`,
      'pass --partitions N with N >= 1, or --topic T to read it from the cluster',
    )
  }
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  const hash = partitioner === 'murmur2' ? murmur2(bytes) & 0x7fffffff : crc32(bytes)
  return hash % partitions
}

export function parsePartitioner(value: string): Partitioner {
  if ((PARTITIONERS as readonly string[]).includes(value)) return value as Partitioner
  throw new UserError(
    'INVALID_ARGUMENT',
    `unknown partitioner ${quoteInput(value)}`,
    `use one of: ${PARTITIONERS.join(', ')}`,
  )
}
