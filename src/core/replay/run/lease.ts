import type {Pool} from '../../db/database.js'
import {heartbeatJob, type Lease} from '../store/jobs/index.js'

/**
 * Keeping the lease of one running job: the heartbeat, our own clock of how long the lease is
 * surely ours, and what the heartbeat learns on the way (the lease is gone, a cancel was asked,
 * the database is down).
 *
 * Claimers take the job over once its heartbeat is older than staleAfterMs (database clock), and a
 * worker that was frozen meanwhile (SIGSTOP, a VM pause) or cut off from the database does not
 * know it. So no request starts more than staleAfterMs - heartbeatMs after the last heartbeat the
 * database confirmed (timed from when it was sent); past that the lease is proved again first
 * (`held`), and a lost one sends nothing.
 */
export class LeaseKeeper {
  /** Aborted once the lease is gone (taken over, or unprovable because the database is down). */
  readonly lost: AbortSignal
  /** Aborted when a cancel was asked for: stop sending. */
  readonly cancelled: AbortSignal
  /** The database error that made the lease unprovable, if that is why it is lost. */
  databaseDown: unknown = null
  private readonly lostController = new AbortController()
  private readonly cancelController = new AbortController()
  private confirmedAt = performance.now()
  private confirming: Promise<boolean> | undefined
  // Set once every event has settled: what is left (the fenced terminal write, then the completion
  // event) needs no heartbeat, and a heartbeat that finds the job finished by us is no lost lease.
  private drained = false
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly pool: Pool,
    readonly lease: Lease,
    private readonly options: {heartbeatMs: number; staleAfterMs: number},
  ) {
    this.lost = this.lostController.signal
    this.cancelled = this.cancelController.signal
    this.timer = setInterval(() => {
      if (!this.drained) void this.beat()
    }, options.heartbeatMs)
  }

  get cancelRequested(): boolean {
    return this.cancelled.aborted
  }

  /** Asked before every request: true while the lease is surely ours, proving it again when unsure. */
  readonly held = (): boolean | Promise<boolean> => {
    if (this.lost.aborted) return false
    if (this.drained) return true
    if (performance.now() - this.confirmedAt < this.options.staleAfterMs - this.options.heartbeatMs) return true
    this.confirming ??= this.beat().finally(() => (this.confirming = undefined))
    return this.confirming
  }

  /** Every event has settled: no more heartbeats are needed for what is left. */
  markDrained(): void {
    this.drained = true
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private async beat(): Promise<boolean> {
    const sentAt = performance.now()
    try {
      const result = await heartbeatJob(this.pool, this.lease)
      if (result.leaseLost) {
        if (!this.drained) this.lostController.abort()
        return false
      }
      this.confirmedAt = Math.max(this.confirmedAt, sentAt)
      if (result.cancelRequested) this.cancelController.abort()
      return true
    } catch (error) {
      // The database stayed down through every retry: we can no longer prove we own the job.
      this.databaseDown = error
      this.lostController.abort()
      return false
    }
  }
}
