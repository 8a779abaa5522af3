import {BugError, UserError} from '../shared/errors.js'
import {connectProducer, disconnect, KafkaCode, kafkaError, type Producer} from './client.js'
import type {Partitioner} from './partitioner.js'
import {type Headers, RecordBatch} from './record-batch.js'
import type {Settings} from '../shared/settings.js'

/**
 * Writes records to one topic as fast as librdkafka batches them, and knows exactly how many
 * were acknowledged. Records are keyed and placed by the partitioner named here (murmur2 unless
 * told otherwise, so Java clients and `log partition-for` agree), compressed with snappy.
 *
 * Records are packed into batches (RecordBatch) and handed to the client's `produceBatch` (our
 * client patch) a batch at a time: one native call per batch, and one callback per batch that
 * counts the acknowledged records and names the failed ones, instead of a native call and a
 * delivery-report object per record. A batch goes when it is full, or a few milliseconds after
 * its first record (so a slow input is not held back).
 *
 * Back-pressure: when librdkafka's local queue is full, the rest of the batch waits for delivery
 * reports to drain it, and `write` returns a promise until it is taken; otherwise it returns
 * nothing, so a caller that only awaits when given a promise pays no microtask per record.
 * `close` sends what is left, flushes, and resolves only once every record is either
 * acknowledged by the brokers or reported failed. A record written with a line number is named
 * by that number if it fails.
 */
export interface WriterStats {
  /** Records handed to `write` (all of them are sent by `close`). */
  written: number
  acknowledged: number
  failed: number
  bytes: number
}

export type {Headers} from './record-batch.js'

/** A batch goes once it holds this many records or bytes... */
const BATCH_RECORDS = 4096
const BATCH_BYTES = 1 << 20
/** ...or this long after its first record. */
const BATCH_WAIT_MS = 5

export class RecordWriter {
  readonly stats: WriterStats = {written: 0, acknowledged: 0, failed: 0, bytes: 0}
  /** Line numbers of the failed records that were written with one. */
  readonly failedLines: number[] = []
  private firstFailure: unknown = null
  private batch = new RecordBatch(BATCH_RECORDS, BATCH_BYTES + (64 << 10))
  /** Line number of each record of the batch (NaN: none). */
  private batchLines = new Float64Array(BATCH_RECORDS)
  /** Set while part of a batch waits for room in librdkafka's queue. */
  private waitingForRoom: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  /** An error from sending a batch off the caller's path (the timer), thrown at the next call. */
  private sendError: unknown = null

  private constructor(
    private readonly settings: Settings,
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  static async open(
    settings: Settings,
    topic: string,
    options: {partitioner?: Partitioner} = {},
  ): Promise<RecordWriter> {
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
    // `npm ci` alone builds the client before patch-package patches it; scripts/setup.sh rebuilds.
    if (typeof (producer as unknown as {_client?: {produceBatch?: unknown}})._client?.produceBatch !== 'function') {
      await disconnect(producer)
      throw new UserError(
        'DEPENDENCY_MISSING',
        "the Kafka client was built without replayctl's patch (patches/), so it cannot write in batches",
        'run scripts/setup.sh, which rebuilds @confluentinc/kafka-javascript after patch-package',
      )
    }
    // Delivery reports are served on librdkafka's background thread, not by polling on the event loop.
    producer.setPollInBackground(true)
    return new RecordWriter(settings, producer, topic)
  }

  /**
   * Adds one record (to `partition` when given, else where the partitioner puts its key); a
   * null key or value is written as null, an empty one as empty. Returns a promise only when
   * librdkafka's queue is full and it must wait. `lineNumber` is kept for failure reports.
   */
  write(
    key: Buffer | string | null,
    value: Buffer | null,
    timestamp: number | null,
    headers?: Headers,
    target: {partition?: number; lineNumber?: number} = {},
  ): Promise<void> | void {
    if (this.waitingForRoom) return this.waitingForRoom.then(() => this.write(key, value, timestamp, headers, target))
    if (this.sendError) throw this.sendError
    this.batchLines[this.batch.length] = target.lineNumber ?? Number.NaN
    this.batch.add(key, value, timestamp, target.partition ?? -1, headers)
    this.stats.written++
    this.stats.bytes += value?.length ?? 0
    if (this.batch.length >= BATCH_RECORDS || this.batch.bytes >= BATCH_BYTES) return this.send()
    this.timer ??= setTimeout(() => {
      this.timer = null
      if (this.waitingForRoom) return
      this.send()?.catch((error: unknown) => (this.sendError ??= error))
    }, BATCH_WAIT_MS)
  }

  /** Hands the batch to the client; returns a promise while part of it waits for room. */
  private send(): Promise<void> | void {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.batch.length === 0) return
    const next = this.sendFrom(0)
    if (next === this.batch.length) {
      this.batch.clear()
      return
    }
    this.waitingForRoom = this.sendRest(next).finally(() => (this.waitingForRoom = null))
    return this.waitingForRoom
  }

  private async sendRest(next: number): Promise<void> {
    while (next < this.batch.length) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      next = this.sendFrom(next)
    }
    this.batch.clear()
  }

  /** Sends the batch's records from `start` on; returns the first one the queue had no room for. */
  private sendFrom(start: number): number {
    const batch = this.batch
    let next: number
    // The callback needs the line numbers after the batch's buffers are reused.
    const lines = this.batchLines.slice(start, batch.length)
    try {
      next = this.producer.produceBatch(
        this.topic,
        {data: batch.data, index: batch.index, headerIndex: batch.headerIndex, start, end: batch.length},
        (report) => {
          this.stats.acknowledged += report.acknowledged
          for (const failure of report.failures) {
            this.stats.failed++
            this.firstFailure ??= failure.error
            const line = lines[failure.index - start]
            if (line !== undefined && !Number.isNaN(line)) this.failedLines.push(line)
          }
        },
      )
    } catch (error) {
      throw kafkaError(this.settings, error, this.topic)
    }
    return next
  }

  /** Sends what is left, flushes, waits for every delivery report, disconnects; throws if any record failed. */
  async close(): Promise<WriterStats> {
    try {
      await this.waitingForRoom
      await this.send()
      if (this.sendError) throw this.sendError
      const deadline = Date.now() + Math.max(30_000, this.settings.timeoutMs)
      while (this.stats.acknowledged + this.stats.failed < this.stats.written) {
        await new Promise<void>((resolve, reject) =>
          this.producer.flush(1000, (error) =>
            error && (error as {code?: number}).code !== KafkaCode.TIMED_OUT
              ? reject(kafkaError(this.settings, error, this.topic))
              : resolve(),
          ),
        )
        // The batch callbacks come through the event loop, after the flush that served them.
        await new Promise((resolve) => setImmediate(resolve))
        if (Date.now() > deadline) break
      }
    } finally {
      if (this.timer) clearTimeout(this.timer)
      await disconnect(this.producer)
    }
    if (this.firstFailure || this.stats.acknowledged < this.stats.written) {
      const unacknowledged = this.stats.written - this.stats.acknowledged
      const reason = (this.firstFailure as Error | null)?.message ?? 'no delivery report before the timeout'
      const lines = this.failedLines.length ? `; failed lines: ${lineRanges(this.failedLines)}` : ''
      throw new UserError(
        'KAFKA_UNAVAILABLE',
        `${unacknowledged} of ${this.stats.written} records were not acknowledged by Kafka (${reason})${lines}`,
        'check the cluster (`replayctl topic describe` shows ISR) and write those records again; ' +
          'acknowledged records are not lost',
      )
    }
    if (this.stats.acknowledged > this.stats.written) throw new BugError('more delivery reports than records written')
    return this.stats
  }
}

/** 3, 4, 5, 9 -> "3-5, 9": failures come in runs (a partition, a broker), so ranges stay short. */
export function lineRanges(lines: number[]): string {
  const runs: {first: number; last: number}[] = []
  for (const line of [...lines].sort((a, b) => a - b)) {
    const run = runs.at(-1)
    if (run && line <= run.last + 1) run.last = line
    else runs.push({first: line, last: line})
  }
  return runs.map(({first, last}) => (first === last ? String(first) : `${first}-${last}`)).join(', ')
}
