import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {describe, test} from 'node:test'

import {DedupCache, eventIdHeader, eventKey, hashHex, xxh64} from '../src/core/replay/dedup.js'
import {nth} from './helpers.js'

describe('dedup', () => {
  test('XXH64 matches the reference vectors (the hash must stay stable: webhook-id derives from it)', () => {
    // xxHash's own sanity values: XXH64("", 0) and XXH64("a", 0)
    assert.equal(hashHex(xxh64(Buffer.alloc(0))), 'ef46db3751d8e999')
    assert.equal(hashHex(xxh64(Buffer.from('a'))), 'd24ec4f1a98c6e5b')
    assert.equal(hashHex(xxh64(Buffer.from('abc'))), '44bc2cf5ad770999')
  })

  test('eventKey hashes the body, or the event-id header when there is one', () => {
    const body = Buffer.from('{"id":1}')
    assert.equal(eventKey(body), xxh64(body))
    assert.equal(eventKey(Buffer.from('{"id":1}')), eventKey(body), 'same bytes, same key')
    assert.notEqual(eventKey(Buffer.from('{"id":2}')), eventKey(body))
    const a = eventKey(Buffer.from('body one'), [{'event-id': Buffer.from('E1')}])
    const b = eventKey(Buffer.from('body two'), [{other: 'x'}, {'Event-Id': 'E1'}])
    const c = eventKey(Buffer.from('body one'), {'event-id': ['E2']})
    assert.equal(a, b, 'same event-id, different bodies: one event')
    assert.notEqual(a, c)
    assert.notEqual(eventKey(Buffer.from('E1')), a, 'an event-id and a body with equal bytes differ')
    assert.equal(eventKey(null), xxh64(Buffer.alloc(0)))
    assert.equal(eventKey(body, []), eventKey(body))
    assert.equal(eventIdHeader({'event-id': undefined}), undefined)
  })

  test('add: new, then duplicate; the zero hash; has()', () => {
    const cache = new DedupCache()
    assert.equal(cache.add(42n), 'new')
    assert.equal(cache.add(42n), 'duplicate')
    assert.equal(cache.add(0n), 'new')
    assert.equal(cache.add(0n), 'duplicate')
    assert.equal(cache.add(0xffffffffffffffffn), 'new')
    assert.equal(cache.add(0xffffffff00000000n), 'new')
    assert.equal(cache.add(0x00000000ffffffffn), 'new')
    assert.ok(cache.has(0xffffffff00000000n))
    assert.ok(!cache.has(0xfffffffe00000000n))
    assert.ok(cache.addIfNew(7n))
    assert.ok(!cache.addIfNew(7n))
    assert.equal(cache.size, 6)
  })

  test('halves that collide: equal low or high words, same home slot', () => {
    const cache = new DedupCache()
    const keys: bigint[] = []
    for (let i = 1n; i <= 2000n; i++) keys.push((i << 32n) | 5n, (5n << 32n) | i)
    let fresh = 0
    for (const key of keys) if (cache.add(key) === 'new') fresh++
    assert.equal(fresh, 3999, '(5<<32)|5 appears twice')
    for (const key of keys) assert.equal(cache.add(key), 'duplicate')
  })

  test('millions of inserts: no false duplicate, no missed duplicate, growth by half', () => {
    const cache = new DedupCache({maxEvents: 8_000_000})
    const n = 3_000_000
    const slots: number[] = []
    // Random 64-bit keys, like real hashes; the set of keys is checked against a JS Set of their text.
    const keys = new BigUint64Array(randomBytes(n * 8).buffer)
    const truth = new Set<bigint>()
    let lastSlots = cache.slots
    for (let i = 0; i < n; i++) {
      const key = nth(keys, i)
      const expected = truth.has(key) ? 'duplicate' : 'new'
      truth.add(key)
      const got = cache.add(key)
      if (got !== expected) assert.fail(`key ${i}: ${got}, expected ${expected}`)
      if (cache.slots !== lastSlots) {
        assert.ok(Math.abs(cache.slots / lastSlots - 1.5) < 0.05, `grows by half: ${lastSlots} -> ${cache.slots}`)
        slots.push(cache.slots)
        lastSlots = cache.slots
      }
      if (cache.size > cache.slots * 0.8)
        assert.fail(`load factor above 0.8 at ${cache.size} events in ${cache.slots} slots`)
    }
    assert.equal(cache.size, truth.size)
    for (let i = 0; i < n; i += 7) assert.equal(cache.add(nth(keys, i)), 'duplicate')
    // sequential keys too (they must spread, not cluster)
    const seq = new DedupCache()
    const t0 = performance.now()
    for (let i = 1; i <= 1_000_000; i++) assert.equal(seq.add(BigInt(i)), 'new')
    for (let i = 1; i <= 1_000_000; i += 3) assert.equal(seq.add(BigInt(i)), 'duplicate')
    const ms = performance.now() - t0
    assert.ok(ms < 10_000, `sequential keys took ${ms} ms`)
    assert.ok(slots.length >= 10)
  })

  test('bytes per event: 10 at a growth point, at most 15 after, 10 * maxEvents at the ceiling', () => {
    const cache = new DedupCache({maxEvents: 1_000_000})
    let min = Infinity
    let max = 0
    let i = 0n
    while (cache.size < 1_000_000) {
      cache.add(xxh64(Buffer.from(String(++i))))
      if (cache.size > 64) {
        min = Math.min(min, cache.bytesPerEvent)
        max = Math.max(max, cache.bytesPerEvent)
      }
    }
    assert.ok(min >= 10 - 0.01, `min ${min}`)
    assert.ok(max <= 15 + 0.01, `max ${max}`)
    assert.equal(cache.bytes, 10 * 1_000_000, 'full: exactly 10 bytes per event')
    assert.equal(cache.maxBytes, 10 * 1_000_000)
    assert.equal(cache.bytesPerEvent, 10)
    console.log(
      `# dedup: ${cache.size} events in ${cache.bytes} bytes = ${cache.bytesPerEvent} B/event at the ceiling; range ` +
        `over growth ${min.toFixed(2)}-${max.toFixed(2)} B/event`,
    )
  })

  test('expectedEvents sizes the table once', () => {
    const cache = new DedupCache({expectedEvents: 100_000})
    const slots = cache.slots
    for (let i = 1; i <= 100_000; i++) cache.add(BigInt(i) * 0x9e3779b97f4a7c15n)
    assert.equal(cache.slots, slots, 'no growth')
    assert.ok(cache.bytesPerEvent <= 15)
  })

  test('full: reports it rather than forgetting, and keeps answering duplicates', () => {
    const cache = new DedupCache({maxEvents: 100})
    for (let i = 1; i <= 100; i++) assert.equal(cache.add(BigInt(i)), 'new')
    assert.ok(cache.full)
    assert.equal(cache.add(101n), 'full')
    assert.equal(cache.add(0n), 'full')
    assert.ok(cache.addIfNew(102n), 'full: deliver rather than drop')
    assert.equal(cache.unremembered, 3)
    for (let i = 1; i <= 100; i++) assert.equal(cache.add(BigInt(i)), 'duplicate', 'nothing forgotten')
    assert.equal(cache.size, 100)
    assert.equal(cache.bytes, 8 * 125)
  })

  test('maxEvents is validated', () => {
    assert.throws(() => new DedupCache({maxEvents: 0}), {code: 'INVALID_ARGUMENT'})
    assert.throws(() => new DedupCache({maxEvents: 2 ** 40}), {code: 'INVALID_ARGUMENT'})
    assert.throws(() => new DedupCache({maxEvents: 1.5}), {code: 'INVALID_ARGUMENT'})
  })
})
