/**
 * When the deliver step saves its checkpoint. Saves run beside delivery: one is issued and the
 * window keeps sending while MySQL writes it. One save is written at a time, so they land in
 * order. A save is due once the window has delivered `saveEvery` events since the last one was
 * taken; if that one has not landed yet, delivery waits for it (the only wait). On the interval a
 * save is issued too, when none is under way (skipped otherwise: the next one comes soon enough).
 * A failed save (the lease is gone, the database is down) halts the window and stops reading at
 * once, and the deliver step throws its error.
 *
 * Why this bounds what a crash sends again, whatever the interval: what is sent again is what was
 * delivered at or past the last checkpoint that landed, S:
 *  (1) delivered past S when S was taken: fewer than maxAhead (the event at S is undelivered, and
 *      the window holds at most maxAhead);
 *  (2) delivered after S was taken and before the next save S' was: below saveEvery at the check
 *      before S' (checks follow every push), and between two checks one send starts, so what
 *      settles after that check (in a push's wait, then while waiting for S to land) is at most
 *      the maxInFlight sends under way: at most saveEvery + maxInFlight;
 *  (3) after S' was taken (written, not landed) or, without S', after S: again at most
 *      saveEvery + maxInFlight, counting the sends the receiver accepted but the dead worker
 *      never heard back about.
 * With saveEvery = (maxAhead + maxInFlight) / 2 that is fewer than 2 x maxAhead + 3 x maxInFlight.
 * The argument holds only if `maybeSave` runs after every push and after every batch read.
 */

/** What the saver needs of the ordered window. */
export interface SavedWindow {
  /** Events the window has delivered so far. */
  readonly deliveredCount: number
  /** Events the window may hold past the oldest undelivered one. */
  readonly maxOutstanding: number
  readonly maxInFlight: number
  /** Stops sending at once. */
  halt(): void
}

export interface CheckpointSaverParams {
  window: SavedWindow
  /**
   * Takes the checkpoint when called (synchronously) and writes it; settles once it landed. A
   * rejection means the run cannot go on.
   */
  save: () => Promise<void>
  /** --checkpoint-interval: a save is issued at least this often while none is under way. */
  intervalMs: number
  /** Milliseconds, for the interval (tests pass their own clock). */
  clock?: () => number
}

export class CheckpointSaver {
  /** Deliveries between two saves: (maxAhead + maxInFlight) / 2, at least 1. */
  readonly saveEvery: number
  /** Aborted when a save failed: stop reading. */
  readonly halted: AbortSignal
  private readonly haltController = new AbortController()
  private readonly clock: () => number
  private lastSaveAt: number
  private deliveredAtSave = 0
  private saving: Promise<void> | undefined
  private failure: {error: unknown} | undefined

  constructor(private readonly params: CheckpointSaverParams) {
    const {window} = params
    this.saveEvery = Math.max(1, Math.floor((window.maxOutstanding + window.maxInFlight) / 2))
    this.halted = this.haltController.signal
    this.clock = params.clock ?? Date.now
    this.lastSaveAt = this.clock()
  }

  /** A save is under way (issued, not landed yet). */
  get saveUnderWay(): boolean {
    return this.saving !== undefined
  }

  /**
   * Called after every push and every batch read: when the next save is due while one is under
   * way, waits for that one to land; then issues a save when one is due. True when it issued one.
   * Throws the error of a failed save. A promise only when it has to wait: called once per
   * delivered event, an await of an answer already known would cost a microtask hop each time.
   */
  maybeSave(): boolean | Promise<boolean> {
    const saving = this.saving
    if (saving && this.countDue()) return saving.then(() => this.saveIfDue())
    return this.saveIfDue()
  }

  /** Throws the error of a failed save, if one failed. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure.error
  }

  /** Waits for the save under way, if any: the run's last writes must come after it. */
  async settle(): Promise<void> {
    if (this.saving) await this.saving
  }

  private countDue(): boolean {
    return this.params.window.deliveredCount - this.deliveredAtSave >= this.saveEvery
  }

  private saveIfDue(): boolean {
    this.throwIfFailed()
    if (this.saving || !(this.countDue() || this.clock() - this.lastSaveAt >= this.params.intervalMs)) return false
    this.lastSaveAt = this.clock()
    this.deliveredAtSave = this.params.window.deliveredCount
    this.saving = this.params.save().then(
      () => {
        this.saving = undefined
      },
      (error: unknown) => {
        this.saving = undefined
        this.failure = {error}
        this.params.window.halt()
        this.haltController.abort()
      },
    )
    return true
  }
}
