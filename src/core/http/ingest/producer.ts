import {connectProducer, disconnect, KafkaCode, kafkaError, type Producer} from '../../kafka/client.js'
import {RecordBatch} from '../../kafka/record-batch.js'
import type {Settings} from '../../shared/settings.js'
import type {IngestRecord} from './events.js'

/**
 * The ingest server's one producer, and the truth about every event it was handed: written
 * (acknowledged by all in-sync replicas), failed (reported failed by librdkafka), or pending.
 *
 * Chartbeat's warning was that hitting librdkafka's queue limits silently lost messages. Here
 * nothing is produced without a delivery report being awaited, and `admits` refuses new work
 * (the server answers 503) well before the queue's limits, or while no broker acknowledges.
 * Records are placed by murmur2 (as Java clients and `log partition-for` place them), snappy,
 * from an idempotent producer, so librdkafka's own retries after a broker restart never
 * duplicate, and a delivery that is merely late is still delivered once.
 */
export const EventState = {UNSENT: 0, PENDING: 1, WRITTEN: 2, FAILED: 3} as const

/**
 * What became of the events of one request (or of one Idempotency-Key, across the client's
 * retries): one state per event, by position. The events themselves are not kept, so a
 * remembered key costs a byte per event.
 */
export class Batch {
  readonly states: Uint8Array
  private outstanding = 0
  private waiters: (() => void)[] = []

  constructor(events: number) {
    this.states = new Uint8Array(events)
  }

  get size(): number {
    return this.states.length
  }

  count(state: number): number {
    let total = 0
    for (const value of this.states) if (value === state) total++
    return total
  }

  /** Resolves true once no event of the batch is pending, false if that takes longer than timeoutMs. */
  settled(timeoutMs: number): Promise<boolean> {
    if (this.outstanding === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== done)
        resolve(false)
      }, timeoutMs)
      this.waiters.push(done)
    })
  }

  markPending(index: number): void {
    this.states[index] = EventState.PENDING
    this.outstanding++
  }

  /** The delivery reports of `indexes` (events marked pending): written, except those in `failed`. */
  markDelivered(indexes: readonly number[], failed: ReadonlySet<number>): void {
    for (const index of indexes) {
      this.states[index] = failed.has(index) ? EventState.FAILED : EventState.WRITTEN
    }
    this.outstanding -= indexes.length
    if (this.outstanding === 0) {
      const waiters = this.waiters
      this.waiters = []
      for (const waiter of waiters) waiter()
    }
  }
}

export interface QueueLimits {
  messages: number
  bytes: number
}

export interface ProducerHealth {
  brokerUp: boolean
  queuedMessages: number
  queuedBytes: number
}

/** Fraction of librdkafka's queue limits past which new requests are refused. */
const ADMIT_FRACTION = 0.8
/** Events unacknowledged this long mean no broker is taking writes. */
const STALL_MS = 3000
const PROBE_INTERVAL_MS = 1000

export class IngestProducer {
  private queuedMessages = 0
  private queuedBytes = 0
  private brokersDown = false
  private lastProgressAt = Date.now()
  private probing = false
  private readonly probeTimer: NodeJS.Timeout
  /** Acknowledged and failed events since start. */
  readonly delivered = {written: 0, failed: 0}
  onDeliveryFailure: (error: Error) => void = () => {}
  onBrokerState: (up: boolean) => void = () => {}
  /** librdkafka gave up on this producer (an idempotence invariant broke): it must be replaced. */
  onFatal: (error: Error) => void = () => {}
  /** Reused for each request's events: the client copies them when queued. */
  private readonly packed = new RecordBatch(128, 256 << 10)

  private constructor(
    private readonly settings: Settings,
    private readonly producer: Producer,
    readonly topic: string,
    readonly limits: QueueLimits,
    private readonly messageTimeoutMs: number,
  ) {
    producer.on('event.error', (error) => {
      const code = (error as {code?: number}).code
      if ((error as {isFatal?: boolean}).isFatal) this.onFatal(error as unknown as Error)
      else if (code === KafkaCode.ALL_BROKERS_DOWN) this.setBrokersDown(true)
    })
    this.probeTimer = setInterval(() => this.probe(), PROBE_INTERVAL_MS).unref()
  }

  static async open(
    settings: Settings,
    topic: string,
    options: {limits: QueueLimits; lingerMs: number; messageTimeoutMs: number},
  ): Promise<IngestProducer> {
    const producer = await connectProducer(settings, {
      partitioner: 'murmur2',
      compression: 'snappy',
      extra: {
        'linger.ms': options.lingerMs,
        'batch.num.messages': 10_000,
        'queue.buffering.max.messages': options.limits.messages,
        'queue.buffering.max.kbytes': Math.ceil(options.limits.bytes / 1024),
        'message.timeout.ms': options.messageTimeoutMs,
        'enable.idempotence': true,
        acks: 'all',
      },
    })
    // Delivery reports are polled on librdkafka's thread, not on a timer of the event loop.
    producer.setPollInBackground(true)
    return new IngestProducer(settings, producer, topic, options.limits, options.messageTimeoutMs)
  }

  health(): ProducerHealth {
    return {brokerUp: !this.isStalled(), queuedMessages: this.queuedMessages, queuedBytes: this.queuedBytes}
  }

  /** Why `events`/`bytes` more may not be queued now, or null when they may. */
  refusal(events: number, bytes: number): 'broker_down' | 'queue_full' | null {
    if (this.isStalled()) return 'broker_down'
    if (this.queuedMessages + events > this.limits.messages * ADMIT_FRACTION) return 'queue_full'
    if (this.queuedBytes + bytes > this.limits.bytes * ADMIT_FRACTION) return 'queue_full'
    return null
  }

  /**
   * Queues the events (`records`, in the batch's order) that are neither written nor pending, with
   * one produceBatch call (client patch) whose one callback reports them all. Stops at the first
   * one librdkafka refuses (its queue is full): those left are UNSENT, never half-known.
   */
  send(batch: Batch, records: IngestRecord[]): void {
    const packed = this.packed
    packed.clear()
    const indexes: number[] = []
    for (const [index, record] of records.entries()) {
      const state = batch.states[index]
      if (state === EventState.WRITTEN || state === EventState.PENDING) continue
      packed.add(record.key, record.value, record.timestamp)
      indexes.push(index)
    }
    if (indexes.length === 0) return
    let taken: number
    let bytes = 0
    try {
      // The callback comes through the event loop, never before produceBatch returns.
      taken = this.producer.produceBatch(
        this.topic,
        {data: packed.data, index: packed.index, start: 0, end: packed.length},
        (report) => {
          this.queuedMessages -= taken
          this.queuedBytes -= bytes
          this.lastProgressAt = Date.now()
          this.delivered.written += report.acknowledged
          this.delivered.failed += report.failures.length
          if (report.acknowledged > 0) this.setBrokersDown(false)
          for (const failure of report.failures) this.onDeliveryFailure(failure.error as unknown as Error)
          batch.markDelivered(
            indexes.slice(0, taken),
            new Set(report.failures.map((failure) => indexes[failure.index]).filter((index) => index !== undefined)),
          )
        },
      )
    } catch (error) {
      throw kafkaError(this.settings, error, this.topic)
    }
    if (taken === 0) return
    if (this.queuedMessages === 0) this.lastProgressAt = Date.now()
    for (const index of indexes.slice(0, taken)) {
      batch.markPending(index)
      bytes += records[index]?.value.length ?? 0
    }
    this.queuedMessages += taken
    this.queuedBytes += bytes
  }

  /** Waits until every queued event has its delivery report (bounded by message.timeout.ms), then disconnects. */
  async close(): Promise<void> {
    clearInterval(this.probeTimer)
    // librdkafka reports every event by message.timeout.ms; the margin covers the report's way back.
    const deadline = Date.now() + this.messageTimeoutMs + 10_000
    while (this.queuedMessages > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => this.producer.flush(1000, () => resolve()))
    }
    await disconnect(this.producer)
  }

  private isStalled(): boolean {
    if (this.brokersDown) return true
    return this.queuedMessages > 0 && Date.now() - this.lastProgressAt > STALL_MS
  }

  private setBrokersDown(down: boolean): void {
    if (this.brokersDown === down) return
    this.brokersDown = down
    this.onBrokerState(!down)
  }

  /** While brokers are down and nothing is in flight to prove otherwise, ask for metadata. */
  private probe(): void {
    if (!this.brokersDown || this.probing) return
    this.probing = true
    this.producer.getMetadata({topic: this.topic, timeout: PROBE_INTERVAL_MS}, (error) => {
      this.probing = false
      if (!error) this.setBrokersDown(false)
    })
  }
}
