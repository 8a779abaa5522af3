import {BugError, UserError} from '../shared/errors.js'
import {connectProducer, disconnect, KafkaCode, kafkaError, type Producer} from './client.js'
import type {Partitioner} from './partitioner.js'
import type {Settings} from '../shared/settings.js'

/**
 * Writes records to one topic as fast as librdkafka batches them, and knows exactly how many
 * were acknowledged. Records are keyed and placed by the partitioner named here (murmur2 unless
 * told otherwise, so Java clients and `log partition-for` agree), compressed with snappy.
 *
 * Back-pressure: when librdkafka's local queue is full, `write` waits for delivery reports to
 * drain it instead of failing. `close` flushes and resolves only once every record is either
 * acknowledged by the brokers or reported failed.
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
  private firstFailure: unknown = null

  private constructor(
    private readonly settings: Settings,
    private readonly producer: Producer,
    private readonly topic: string,
  ) {
    producer.on('delivery-report', (error) => {
      if (error) {
        this.stats.failed++
        this.firstFailure ??= error
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
    producer.setPollInterval(25)
    return new RecordWriter(settings, producer, topic)
  }

  /**
   * Queues one record (to `partition` when given, else where the partitioner puts its key);
   * waits while librdkafka's queue is full. A null key or value is written as null, not empty.
   */
  async write(key: Buffer | string | null, value: Buffer | null, timestamp: number | null, headers?: Headers, partition?: number): Promise<void> {
    for (;;) {
      try {
        this.producer.produce(this.topic, partition ?? null, keepEmpty(value), keepEmpty(key), timestamp ?? undefined, undefined, headers)
        this.stats.written++
        this.stats.bytes += value?.length ?? 0
        return
      } catch (error) {
        if ((error as {code?: number}).code !== KafkaCode.QUEUE_FULL) throw kafkaError(this.settings, error, this.topic)
        this.producer.poll()
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
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
      throw new UserError(
        'KAFKA_UNAVAILABLE',
        `${unacknowledged} of ${this.stats.written} records were not acknowledged by Kafka (${reason})`,
        'check the cluster (`replayctl topic describe` shows ISR) and write the input again; acknowledged records are not lost',
      )
    }
    if (this.stats.acknowledged > this.stats.written) throw new BugError('more delivery reports than records written')
    return this.stats
  }
}
