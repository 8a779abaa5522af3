import {disconnect, type Consumer} from '../../kafka/client.js'
import {connectRangeConsumer} from '../../kafka/range-reader.js'
import type {Settings} from '../../shared/settings.js'

/**
 * A range consumer connected while the job is planned, so the deliver step's read starts fetching
 * at once instead of connecting then (a small job's connect is a large part of its time). The
 * first plain read takes it; the run closes it whatever happened, since a reader that was never
 * started (a plan that failed, a read aborted before its first batch) does not disconnect it.
 */
export class PreparedConsumer {
  private readonly connecting: Promise<Consumer>
  private taken = false

  constructor(settings: Settings) {
    this.connecting = connectRangeConsumer(settings)
    // Its error is the read's to report (or nobody's, when no read takes it).
    this.connecting.catch(() => {})
  }

  /** The consumer for one reader, which disconnects it when done; undefined once taken. */
  take(): Promise<Consumer> | undefined {
    if (this.taken) return undefined
    this.taken = true
    return this.connecting
  }

  /** Disconnects the consumer unless its reader already did (call once every read is over). */
  async close(): Promise<void> {
    const consumer = await this.connecting.catch(() => undefined)
    if (consumer) await disconnect(consumer)
  }
}
