import {BugError, UserError} from '../shared/errors.js'
import {connectProducer, disconnect, KafkaCode, kafkaError, type Producer} from './client.js'
import type {Partitioner} from './partitioner.js'
import type {Settings} from '../shared/settings.js'

/**
 * Writes records to one topic as fast as librdkafka batches them, and knows exactly how many
 * were acknowledged. Records are keyed and placed by the partitioner named here (murmur2 unless
 * told otherwise, so Java clients and `log partition-for` agree), compressed with snappy.
 *
 * Back-pressure: when librdkafka's local queue is full, `write` returns a promise that waits for
 * delivery reports to drain it instead of failing; otherwise it returns nothing, so a caller that
 * only awaits when given a promise pays no microtask per record. `close` flushes and resolves only
 * once every record is either acknowledged by the brokers or reported failed. A record written
 * with a line number (librdkafka's opaque, handed back in its delivery report) is named by that
 * number if it fails.
 */
export interface WriterStats {
  written: number
  acknowledged: number
  failed: number
  bytes: number
}

export type Headers = {[key: string]: string | Buffer}[]

// A zero-length Buffer may have no memory behind it, and the client then writes a null key or
// value; a zero-length view into a real allocation keeps "empty" apart from "null".
const EMPTY = Buffer.alloc(1).subarray(0, 0)
const keepEmpty = <T extends Buffer | string | null>(bytes: T): T => (Buffer.isBuffer(bytes) && bytes.length === 0 ? EMPTY as T : bytes)

export class RecordWriter {
  readonly stats: WriterStats = {written: 0, acknowledged: 0, failed: 0, bytes: 0}
  /** Line numbers of the failed records that were written with one. */
  readonly failedLines: number[] = []
  private firstFailure: unknown = null

  private constructor(
    private readonly settings: Settings,
    private readonly producer: Producer,
    private readonly topic: string,
  ) {
    producer.on('delivery-report', (error, report) => {
      if (error) {
        this.stats.failed++
        this.firstFailure ??= error
        const line = (report as {opaque?: unknown} | undefined)?.opaque
        if (typeof line === 'number') this.failedLines.push(line)
      } else {
        this.stats.acknowledged++
      }
    })
  }

  static async open(settings: Settings, topic: string, options: {partitioner?: Partitioner} = {}): Promise<RecordWriter> {
    const producer = await connectProducer(settings, {
      partitioner: options.partitioner,
      extra: {
        'linger.ms': 20,
        'batch.num.messages': 10_000,
        'batch.size': 1_000_000,
        'queue.buffering.max.messages': 500_000,
        'queue.buffering.max.kbytes': 524_288,
        // Every acknowledged record is on the in-sync replicas, and retries never duplicate.
        'enable.idempotence': true,
        acks: 'all',
      },
    })
    // Delivery reports are served on librdkafka's background thread, not by polling on the event loop
    // (that polling cost as much main-thread time as produce() itself).
    producer.setPollInBackground(true)
    return new RecordWriter(settings, producer, topic)
  }

  /**
   * Queues one record (to `partition` when given, else where the partitioner puts its key); a
   * null key or value is written as null, an empty one as empty. Returns a promise only when
   * librdkafka's queue is full and it must wait. `lineNumber` is kept for failure reports.
   */
  write(key: Buffer | string | null, value: Buffer | null, timestamp: number | null, headers?: Headers, target: {partition?: number; lineNumber?: number} = {}): Promise<void> | void {
    if (this.tryWrite(key, value, timestamp, headers, target)) return
    return this.writeWhenRoom(key, value, timestamp, headers, target)
  }

  private async writeWhenRoom(key: Buffer | string | null, value: Buffer | null, timestamp: number | null, headers: Headers | undefined, target: {partition?: number; lineNumber?: number}): Promise<void> {
    do {
      this.producer.poll()
      await new Promise((resolve) => setTimeout(resolve, 5))
    } while (!this.tryWrite(key, value, timestamp, headers, target))
  }

  private tryWrite(key: Buffer | string | null, value: Buffer | null, timestamp: number | null, headers: Headers | undefined, target: {partition?: number; lineNumber?: number}): boolean {
    try {
      this.producer.produce(this.topic, target.partition ?? null, keepEmpty(value), keepEmpty(key), timestamp ?? undefined, target.lineNumber, headers)
    } catch (error) {
      if ((error as {code?: number}).code !== KafkaCode.QUEUE_FULL) throw kafkaError(this.settings, error, this.topic)
      return false
    }
    this.stats.written++
    this.stats.bytes += value?.length ?? 0
    return true
  }

  /** Flushes, waits for every delivery report, disconnects; throws if any record failed. */
  async close(): Promise<WriterStats> {
    try {
      const deadline = Date.now() + Math.max(30_000, this.settings.timeoutMs)
      while (this.stats.acknowledged + this.stats.failed < this.stats.written) {
        await new Promise<void>((resolve, reject) =>
          this.producer.flush(1000, (error) => (error && (error as {code?: number}).code !== KafkaCode.TIMED_OUT ? reject(kafkaError(this.settings, error, this.topic)) : resolve())),
        )
        this.producer.poll()
        if (Date.now() > deadline) break
      }
    } finally {
      await disconnect(this.producer)
    }
    if (this.firstFailure || this.stats.acknowledged < this.stats.written) {
      const unacknowledged = this.stats.written - this.stats.acknowledged
      const reason = (this.firstFailure as Error | null)?.message ?? 'no delivery report before the timeout'
      const lines = this.failedLines.length ? `; failed lines: ${lineRanges(this.failedLines)}` : ''
      throw new UserError(
        'KAFKA_UNAVAILABLE',
        `${unacknowledged} of ${this.stats.written} records were not acknowledged by Kafka (${reason})${lines}`,
        'check the cluster (`replayctl topic describe` shows ISR) and write those records again; acknowledged records are not lost',
      )
    }
    if (this.stats.acknowledged > this.stats.written) throw new BugError('more delivery reports than records written')
    return this.stats
  }
}

/** 3, 4, 5, 9 -> "3-5, 9": failures come in runs (a partition, a broker), so ranges stay short. */
export function lineRanges(lines: number[]): string {
  const sorted = [...lines].sort((a, b) => a - b)
  const ranges: string[] = []
  for (let index = 0; index < sorted.length; ) {
    let last = index
    while (last + 1 < sorted.length && sorted[last + 1]! <= sorted[last]! + 1) last++
    ranges.push(sorted[last] === sorted[index] ? String(sorted[index]) : `${sorted[index]}-${sorted[last]}`)
    index = last + 1
  }
  return ranges.join(', ')
}
