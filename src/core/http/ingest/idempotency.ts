import {createHash} from 'node:crypto'

import {LRUCache} from 'lru-cache'

import {Batch} from './producer.js'

/**
 * Requests retried with the same Idempotency-Key share one Batch, so an event the first attempt
 * wrote (or still has in flight) is not produced again by the retry; only the events no attempt
 * wrote are sent. The key is remembered for `windowMs` after its last use, and at most
 * `maxKeys` keys and MAX_BYTES of them are kept (the least recently used go first); a retry after
 * that is a new request. A key is the body's digest and a byte per event, never the events.
 */
export const MAX_KEY_LENGTH = 256
const MAX_BYTES = 64 * 1024 * 1024

export interface IdempotencyOptions {
  windowMs: number
  maxKeys: number
}

interface Entry {
  digest: string
  batch: Batch
  busy: boolean
}

export type Claim = {batch: Batch; release: () => void} | {conflict: 'in_progress' | 'different_body'}

export class IdempotencyStore {
  private readonly entries: LRUCache<string, Entry>

  constructor(options: IdempotencyOptions) {
    this.entries = new LRUCache<string, Entry>({
      max: options.maxKeys,
      maxSize: MAX_BYTES,
      sizeCalculation: (entry, key) => 128 + key.length + entry.batch.size,
      ttl: options.windowMs,
      updateAgeOnGet: true,
    })
  }

  /** The batch to use for this key, marked busy until released; a conflict when it cannot be reused. */
  claim(key: string, body: Buffer, events: number): Claim {
    const digest = createHash('sha256').update(body).digest('base64url')
    let entry = this.entries.get(key)
    if (entry && entry.digest !== digest) return {conflict: 'different_body'}
    if (entry?.busy) return {conflict: 'in_progress'}
    if (!entry) {
      entry = {digest, batch: new Batch(events), busy: false}
      this.entries.set(key, entry)
    }
    const claimed = entry
    claimed.busy = true
    return {batch: claimed.batch, release: () => (claimed.busy = false)}
  }

  get size(): number {
    return this.entries.size
  }
}
