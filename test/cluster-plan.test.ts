import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {planCluster, parseSize} from '../src/core/storage/cluster-plan.js'
import {runCli} from './helpers.js'

const GiB = 1024 ** 3
const TiB = 1024 ** 4

describe('cluster plan arithmetic', () => {
  it('three brokers, replication 3: no failure reserve, 25% spike headroom', () => {
    const plan = planCluster({brokers: 3, diskBytes: 2 * TiB, partitions: 12, replication: 3})
    // 3 x 2 TiB / (12 x 3) = 170.67 GiB raw; x 0.75 = 128 GiB usable
    assert.equal(plan.rawPerPartitionBytes, Math.floor((3 * 2 * TiB) / 36))
    assert.equal(plan.failureReserve, 0)
    assert.equal(plan.usablePerPartitionBytes, 128 * GiB)
    assert.equal(plan.retentionBytes, 127 * GiB)
    assert.equal(plan.retentionSeconds, null)
    assert.ok(plan.warnings.some((warning) => /no spare broker/.test(warning)))
  })

  it("six brokers, replication 3: one broker's share reserved, retention at a rate", () => {
    const plan = planCluster({brokers: 6, diskBytes: 4e12, partitions: 48, replication: 3, rateBytesPerSecond: 40e6})
    const raw = (6 * 4e12) / (48 * 3)
    assert.equal(plan.failureReserve, 1 / 6)
    assert.ok(Math.abs(plan.usablePerPartitionBytes - raw * 0.75 * (5 / 6)) <= 1)
    assert.equal(plan.retentionBytes, plan.usablePerPartitionBytes - GiB)
    // 48 partitions x usable / 40 MB/s
    assert.equal(plan.retentionSeconds, (plan.usablePerPartitionBytes * 48) / 40e6)
    // 166.7 GB raw x 0.75 x 5/6 = 104.2 GB a partition; x 48 = 5 TB at 40 MB/s = 125,000 s
    assert.ok(Math.abs(plan.retentionSeconds! - 125_000) < 1)
    assert.deepEqual(plan.warnings, [])
  })

  it('flags a partition share smaller than a segment, and impossible replication', () => {
    const tiny = planCluster({brokers: 1, diskBytes: 10 * GiB, partitions: 100, replication: 1})
    assert.equal(tiny.retentionBytes, 0)
    assert.ok(tiny.warnings.some((warning) => /segment/.test(warning)))
    assert.throws(
      () => planCluster({brokers: 2, diskBytes: TiB, partitions: 1, replication: 3}),
      /needs at least 3 brokers/,
    )
    assert.throws(
      () => planCluster({brokers: 0, diskBytes: TiB, partitions: 1, replication: 1}),
      /positive whole number/,
    )
  })

  it('parses decimal and binary sizes', () => {
    assert.equal(parseSize('2TiB', '--disk'), 2 * TiB)
    assert.equal(parseSize('2T', '--disk'), 2 * TiB)
    assert.equal(parseSize('500GB', '--disk'), 500e9)
    assert.equal(parseSize('1.5 gib', '--disk'), 1.5 * GiB)
    assert.equal(parseSize('4096', '--disk'), 4096)
    assert.throws(() => parseSize('2 parsecs', '--disk'), /invalid --disk/)
  })
})

describe('replayctl cluster plan', () => {
  it('prints the plan as JSON without contacting a cluster, and refuses bad sizes with exit 2', async () => {
    const result = await runCli(
      [
        'cluster',
        'plan',
        '--brokers',
        '6',
        '--disk',
        '4TB',
        '--partitions',
        '48',
        '--replication',
        '3',
        '--rate',
        '40',
        '--json',
      ],
      {env: {REPLAYCTL_BROKERS: '127.0.0.1:1'}},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.spikeHeadroom, 0.25)
    assert.equal(result.json.input.rateBytesPerSecond, 40e6)
    assert.ok(result.json.retentionSeconds > 0)
    const bad = await runCli([
      'cluster',
      'plan',
      '--brokers',
      '3',
      '--disk',
      'lots',
      '--partitions',
      '3',
      '--replication',
      '3',
    ])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /invalid --disk 'lots'/)
    const badRate = await runCli([
      'cluster',
      'plan',
      '--brokers',
      '3',
      '--disk',
      '1TB',
      '--partitions',
      '3',
      '--replication',
      '3',
      '--rate',
      'fast',
    ])
    assert.equal(badRate.code, 2)
  })
})
