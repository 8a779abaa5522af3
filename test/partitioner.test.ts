import assert from 'node:assert/strict'
import {crc32} from 'node:zlib'
import {describe, it} from 'node:test'

import {UserError} from '../src/core/shared/errors.js'
import {murmur2, partitionFor} from '../src/core/kafka/partitioner.js'

describe('murmur2', () => {
  it("matches Kafka's published vectors (UtilsTest.testMurmur2)", () => {
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ]
    for (const [key, expected] of vectors) assert.equal(murmur2(Buffer.from(key)), expected, key)
  })

  it("matches librdkafka's own vectors", () => {
    assert.equal(murmur2(Buffer.from('kafka')) >>> 0, 0xd067cf64)
    assert.equal(murmur2(Buffer.alloc(0)) >>> 0, 0x106e08d9)
  })
})

describe('partitionFor', () => {
  it('murmur2: toPositive(murmur2(key)) % n, as Java producers place keys', () => {
    assert.equal(partitionFor('foobar', 12), (-790332482 & 0x7fffffff) % 12)
    assert.equal(partitionFor('21', 7), (-973932308 & 0x7fffffff) % 7)
    assert.equal(partitionFor('anything', 1), 0)
  })

  it('crc32: crc32(key) % n, as librdkafka consistent partitioning does', () => {
    assert.equal(partitionFor('foobar', 12, 'crc32'), crc32(Buffer.from('foobar')) % 12)
  })

  it('keys are UTF-8 bytes', () => {
    assert.equal(partitionFor('ключ', 100), (murmur2(Buffer.from('ключ', 'utf8')) & 0x7fffffff) % 100)
  })

  it('refuses partition counts below 1', () => {
    for (const bad of [0, -3, 1.5, Number.NaN]) assert.throws(() => partitionFor('k', bad), UserError)
  })
})
