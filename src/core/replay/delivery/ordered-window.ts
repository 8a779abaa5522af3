import {BugError, invalidArgument} from '../../shared/errors.js'
import type {DeliveryEvent, DeliveryStats, SendResult, WebhookClient} from './webhook-client.js'

/**
 * The ordered window of a replay: events go out in log order, several at once, and `checkpoint`
 * is the offset below which every event has been delivered, so it never passes an undelivered one.
 */

export interface OrderedDeliveryOptions {
  /** The first offset of the range: the checkpoint before anything is pushed or scanned. */
  startOffset: number
  /** Sends running at once (default 1: strict log order, each starts after the previous is delivered). */
  maxInFlight?: number
  /**
   * Events between the checkpoint and the newest pushed, delivered or not (default
   * max(1024, 16 * maxInFlight)): bounds what piles up behind an event still being retried.
   */
  maxOutstanding?: number
}

export interface DeliveryFailure {
  /** The lowest offset that failed for good: the checkpoint never passes it. */
  failedAt: number
  reason: string
  /** The webhook answered 410: end the job FAILED and mark the webhook invalid. */
  gone: boolean
  status?: number
  attempts: number
}

export interface WindowStats extends DeliveryStats {
  /** Events pushed into this window. */
  pushed: number
  /** Events pushed and not yet delivered (in flight, or waiting behind an undelivered one). */
  outstanding: number
  checkpoint: number
}

export interface WindowResult {
  /** Every event below this offset was delivered (or scanned and not meant for delivery). */
  checkpoint: number
  delivered: number
  failure?: DeliveryFailure
  /** The client's signal aborted (lease lost): the checkpoint still holds, but nothing more was sent. */
  aborted: boolean
}

/**
 * Ordered delivery with a window: the worker pushes events in log order and marks the offsets it
 * read but does not deliver with scanned(); `checkpoint` is the offset to resume from. When an
 * event fails for good the window stops: push() answers false, in-flight sends settle, and
 * drain() reports the failure.
 */
export class OrderedDelivery {
  readonly maxInFlight: number
  readonly maxOutstanding: number
  private readonly offsets: Float64Array
  private readonly done: Uint8Array
  private head = 0
  private tail = 0
  private position: number
  private lastPushed = -1
  private inFlight = 0
  private pushed = 0
  private delivered = 0
  private failed = 0
  private retries = 0
  private bytes = 0
  private stoppedFlag = false
  private abortedFlag = false
  private failureRecord: DeliveryFailure | undefined
  private waiters: Array<() => void> = []

  constructor(
    private readonly client: WebhookClient,
    options: OrderedDeliveryOptions,
  ) {
    const maxInFlight = options.maxInFlight ?? 1
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw invalidArgument(
        `max in flight must be a whole number >= 1, got ${maxInFlight}`,
        'use 1 or more sends in flight',
      )
    const maxOutstanding = options.maxOutstanding ?? Math.max(1024, 16 * maxInFlight)
    if (!Number.isInteger(maxOutstanding) || maxOutstanding < maxInFlight)
      throw invalidArgument(
        `max outstanding must be a whole number >= max in flight (${maxInFlight}), got ${maxOutstanding}`,
        'allow at least as many outstanding events as sends in flight',
      )
    if (!Number.isSafeInteger(options.startOffset) || options.startOffset < 0)
      throw invalidArgument(
        `start offset must be a whole number >= 0, got ${options.startOffset}`,
        'start at the first offset of the range',
      )
    this.maxInFlight = maxInFlight
    this.maxOutstanding = maxOutstanding
    this.offsets = new Float64Array(maxOutstanding)
    this.done = new Uint8Array(maxOutstanding)
    this.position = options.startOffset
  }

  /** The offset below which every event has been delivered (or scanned and not meant for delivery). */
  get checkpoint(): number {
    const oldestOutstanding = this.head < this.tail ? this.offsets[this.head % this.maxOutstanding] : undefined
    return oldestOutstanding ?? this.position
  }

  /** True once nothing more will be sent: an event failed for good, or the client's signal aborted. */
  get stopped(): boolean {
    return this.stoppedFlag || this.client.signal?.aborted === true
  }

  get failure(): DeliveryFailure | undefined {
    return this.failureRecord
  }

  get aborted(): boolean {
    return this.abortedFlag || this.client.signal?.aborted === true
  }

  /** Events delivered so far: stats.delivered without building the stats (read on every push). */
  get deliveredCount(): number {
    return this.delivered
  }

  /** Sends under way now (backoff waits included): stats.inFlight without building the stats. */
  get inFlightCount(): number {
    return this.inFlight
  }

  get stats(): WindowStats {
    const client = this.client.stats
    return {
      ...client,
      requests: client.requests,
      retries: this.retries,
      delivered: this.delivered,
      failed: this.failed,
      gone: this.failureRecord?.gone ? 1 : 0,
      inFlight: this.inFlight,
      bytes: this.bytes,
      pushed: this.pushed,
      outstanding: this.tail - this.head,
      checkpoint: this.checkpoint,
    }
  }

  /**
   * Starts delivering an event, waiting first while the window is full. Resolves true once its send
   * has started, false when the window has stopped (a failure, or abort): the event was not sent.
   * Offsets must increase, and must not be below an offset already passed to scanned().
   */
  async push(event: DeliveryEvent): Promise<boolean> {
    if (!Number.isSafeInteger(event.offset) || event.offset <= this.lastPushed || event.offset < this.position) {
      throw new BugError(
        `events must be pushed in log order: ` +
          `offset ${event.offset} after ${Math.max(this.lastPushed, this.position - 1)}`,
      )
    }
    this.lastPushed = event.offset
    while (!this.stopped && (this.inFlight >= this.maxInFlight || this.tail - this.head >= this.maxOutstanding)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    if (this.stopped) {
      if (this.client.signal?.aborted) this.abortedFlag = true
      return false
    }
    const slot = this.tail % this.maxOutstanding
    this.offsets[slot] = event.offset
    this.done[slot] = 0
    const index = this.tail++
    this.position = event.offset + 1
    this.inFlight++
    this.pushed++
    this.client.send(event).then(
      (result) => this.settle(index, event, result),
      (error: unknown) =>
        this.settle(index, event, {
          outcome: 'failed',
          attempts: 0,
          reason: `internal error: ${(error as Error)?.message}`,
          latencyMs: 0,
          messageId: '',
        }),
    )
    return true
  }

  /**
   * Stops the window from the caller's side (its checkpoint could not be saved): push() answers
   * false from now on, a push waiting for room included; sends under way settle as they would.
   */
  halt(): void {
    this.stoppedFlag = true
    this.wakeWaiters()
  }

  /** Marks every offset below `nextOffset` as read; those not pushed need no delivery. */
  scanned(nextOffset: number): void {
    if (nextOffset > this.position) this.position = nextOffset
  }

  /** Waits for every send under way to settle; the final checkpoint and outcome. */
  async drain(): Promise<WindowResult> {
    while (this.inFlight > 0) {
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    if (this.client.signal?.aborted) this.abortedFlag = true
    return {
      checkpoint: this.checkpoint,
      delivered: this.delivered,
      failure: this.failureRecord,
      aborted: this.abortedFlag,
    }
  }

  private settle(index: number, event: DeliveryEvent, result: SendResult): void {
    this.inFlight--
    this.retries += Math.max(0, result.attempts - 1)
    if (result.outcome === 'delivered') {
      this.delivered++
      this.bytes += event.body.length
      this.done[index % this.maxOutstanding] = 1
      while (this.head < this.tail && this.done[this.head % this.maxOutstanding] === 1) this.head++
    } else if (result.outcome === 'aborted') {
      this.abortedFlag = true
      this.stoppedFlag = true
    } else {
      this.failed++
      this.stoppedFlag = true
      if (!this.failureRecord || event.offset < this.failureRecord.failedAt) {
        this.failureRecord = {
          failedAt: event.offset,
          reason: result.reason ?? 'delivery failed',
          gone: result.outcome === 'gone' || this.failureRecord?.gone === true,
          status: result.status,
          attempts: result.attempts,
        }
      } else if (result.outcome === 'gone') {
        this.failureRecord.gone = true
      }
    }
    this.wakeWaiters()
  }

  private wakeWaiters(): void {
    // Every settle calls this, mostly with no one waiting: no new array then.
    if (this.waiters.length === 0) return
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}
