import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {partitionFor} from '../src/core/kafka/partitioner.js'
import {deleteTopics, isOneLineError, runCli, uniqueName} from './helpers.js'

/**
 * `log search` on the real broker, checked against a full `log read` filtered by hand: a key search
 * reads only the key's partition (its scanned count is exactly that partition's range, the other
 * eleven scan nothing), value filters and time bounds keep exactly the records they should.
 */
const PARTITIONS = 12
const EVENTS = 1200
const KINDS = ['favorite', 'follow', 'message'] as const
const created: string[] = []
let topic: string
// Recent CreateTimes: the topic keeps 5 days, so retention cannot delete them mid-test.
const base = Date.now() - 3 * 3_600_000

interface Row {
  partition: number
  offset: number
  timestamp: string
  key: string
  value: string
}

let all: Row[]

function event(index: number) {
  return {
    webhook_id: `w${(index * 7) % 31}`,
    ts: base + index * 1000,
    n: index,
    kind: KINDS[index % KINDS.length],
    meta: {region: index % 5 === 0 ? 'eu' : 'us'},
    body: `event ${index}${index % 100 === 42 ? ' needle' : ''}`,
  }
}

function parsed(row: Row): ReturnType<typeof event> {
  return JSON.parse(row.value)
}

function sameRecords(actual: Row[], expected: Row[]): void {
  const byPosition = (a: Row, b: Row) => a.partition - b.partition || a.offset - b.offset
  const shape = (row: Row) => ({
    partition: row.partition,
    offset: row.offset,
    timestamp: row.timestamp,
    key: row.key,
    value: row.value,
  })
  assert.deepEqual([...actual].sort(byPosition).map(shape), [...expected].sort(byPosition).map(shape))
}

async function search(args: string[]) {
  const result = await runCli(['log', 'search', '-t', topic, '--json', ...args])
  assert.equal(result.code, 0, result.stderr)
  return result.json
}

before(async () => {
  topic = uniqueName('search')
  created.push(topic)
  const create = await runCli(['topic', 'create', topic, '--partitions', String(PARTITIONS), '--json'])
  assert.equal(create.code, 0, create.stderr)
  const input = Array.from({length: EVENTS}, (_, index) => JSON.stringify(event(index))).join('\n') + '\n'
  const produced = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts', '--json'], {input})
  assert.equal(produced.code, 0, produced.stderr)
  const read = await runCli(['log', 'read', '-t', topic, '--json'], {timeoutMs: 120_000})
  assert.equal(read.code, 0, read.stderr)
  all = read.json.records
  assert.equal(all.length, EVENTS)
})

after(async () => {
  await deleteTopics(created)
})

describe('log search', () => {
  it(
    "with --key finds exactly the records a full read filtered by hand finds, reading only the key's " + 'partition',
    async () => {
      for (const key of ['w3', 'w17']) {
        const keyPartition = partitionFor(key, PARTITIONS)
        const result = await search(['--key', key])
        sameRecords(
          result.records,
          all.filter((row) => row.key === key),
        )
        assert.equal(result.matched, all.filter((row) => row.key === key).length)
        assert.equal(result.complete, true)
        assert.equal(result.partitions.length, PARTITIONS)
        const inPartition = all.filter((row) => row.partition === keyPartition).length
        for (const scan of result.partitions) {
          if (scan.partition === keyPartition) {
            assert.equal(scan.read, true)
            assert.equal(scan.end - scan.start, inPartition)
            assert.equal(scan.scanned, inPartition, "scanned exactly the key partition's range")
          } else {
            assert.deepEqual(
              {read: scan.read, scanned: scan.scanned, matched: scan.matched},
              {read: false, scanned: 0, matched: 0},
              `partition ${scan.partition}`,
            )
          }
        }
        assert.equal(result.scanned, inPartition)
      }
    },
  )

  it('without --key scans every partition, so a key search costs one partition of the full scan', async () => {
    const key = 'w3'
    const full = await search([])
    assert.equal(full.scanned, EVENTS)
    assert.equal(full.matched, EVENTS)
    for (const scan of full.partitions)
      assert.equal(scan.scanned, all.filter((row) => row.partition === scan.partition).length)
    const keyed = await search(['--key', key])
    assert.equal(
      keyed.scanned,
      full.partitions.find((scan: {partition: number}) => scan.partition === partitionFor(key, PARTITIONS)).scanned,
    )
    assert.ok(keyed.scanned < full.scanned / 4, `${keyed.scanned} of ${full.scanned}`)
  })

  it("--partitioner crc32 reads the partition librdkafka's default would have used", async () => {
    const result = await search(['--key', 'w3', '--partitioner', 'crc32'])
    const readPartitions = result.partitions
      .filter((scan: {read: boolean}) => scan.read)
      .map((scan: {partition: number}) => scan.partition)
    assert.deepEqual(readPartitions, [partitionFor('w3', PARTITIONS, 'crc32')])
    // The records were placed with murmur2: only where both partitioners agree can the key be found.
    assert.equal(
      result.matched,
      partitionFor('w3', PARTITIONS, 'crc32') === partitionFor('w3', PARTITIONS)
        ? all.filter((row) => row.key === 'w3').length
        : 0,
    )
  })

  it('--value-contains, --value-regex and --field keep exactly the records they describe', async () => {
    const contains = await search(['--value-contains', 'needle'])
    sameRecords(
      contains.records,
      all.filter((row) => row.value.includes('needle')),
    )
    assert.equal(contains.matched, 12)
    assert.equal(contains.scanned, EVENTS)

    const pattern = '"n":1[0-4][0-9],'
    const regex = await search(['--value-regex', pattern])
    sameRecords(
      regex.records,
      all.filter((row) => new RegExp(pattern).test(row.value)),
    )
    assert.equal(regex.matched, 50)

    const nested = await search(['--field', 'meta.region=eu', '--key', 'w3'])
    sameRecords(
      nested.records,
      all.filter((row) => row.key === 'w3' && parsed(row).meta.region === 'eu'),
    )
    assert.ok(nested.matched > 0)

    const numeric = await search(['--field', 'n=421'])
    assert.deepEqual(
      numeric.records.map((row: Row) => parsed(row).n),
      [421],
    )

    const text = await search(['--field', 'kind=follow', '--key', 'w17'])
    sameRecords(
      text.records,
      all.filter((row) => row.key === 'w17' && parsed(row).kind === 'follow'),
    )

    const missing = await search(['--field', 'meta.planet=mars'])
    assert.deepEqual({matched: missing.matched, scanned: missing.scanned}, {matched: 0, scanned: EVENTS})
  })

  it("--since/--until bound the search by time: only the window's records are scanned and matched", async () => {
    const since = base + 300_000
    const until = base + 600_000
    const inWindow = (row: Row) => parsed(row).ts >= since && parsed(row).ts < until
    const window = await search(['--since', String(since), '--until', String(until)])
    sameRecords(window.records, all.filter(inWindow))
    assert.equal(window.matched, 300)
    assert.equal(window.scanned, 300, 'offsets by time fix each range to the window')
    for (const scan of window.partitions) {
      const rows = all.filter((row) => row.partition === scan.partition && inWindow(row))
      assert.equal(scan.scanned, rows.length, `partition ${scan.partition}`)
      if (rows.length) assert.equal(scan.start, Math.min(...rows.map((row) => row.offset)))
    }

    const keyed = await search([
      '--key',
      'w17',
      '--since',
      String(since),
      '--until',
      String(until),
      '--value-contains',
      '"kind":"favorite"',
    ])
    sameRecords(
      keyed.records,
      all.filter((row) => row.key === 'w17' && inWindow(row) && parsed(row).kind === 'favorite'),
    )

    const empty = uniqueName('search_empty')
    created.push(empty)
    assert.equal((await runCli(['topic', 'create', empty, '--partitions', '3', '--json'])).code, 0)
    const nothing = await runCli(['log', 'search', '-t', empty, '--value-contains', 'x', '--json'])
    assert.equal(nothing.code, 0, nothing.stderr)
    assert.deepEqual(
      {
        matched: nothing.json.matched,
        scanned: nothing.json.scanned,
        complete: nothing.json.complete,
        partitions: nothing.json.partitions.length,
      },
      {matched: 0, scanned: 0, complete: true, partitions: 3},
    )

    // CreateTimes out of order inside the range: the record earlier than --since is scanned but not a match.
    const unordered = uniqueName('search_unordered')
    created.push(unordered)
    assert.equal((await runCli(['topic', 'create', unordered, '--partitions', '1', '--json'])).code, 0)
    const times = [base + 10_000, base + 2_000, base + 20_000, base + 60_000]
    const written = await runCli(['log', 'produce', '-t', unordered, '--timestamp-field', 'ts', '--json'], {
      input: times.map((ts) => JSON.stringify({webhook_id: 'k', ts})).join('\n') + '\n',
    })
    assert.equal(written.code, 0, written.stderr)
    const skipped = await runCli([
      'log',
      'search',
      '-t',
      unordered,
      '--since',
      String(base + 5_000),
      '--until',
      String(base + 50_000),
      '--json',
    ])
    assert.equal(skipped.code, 0, skipped.stderr)
    assert.deepEqual(
      skipped.json.records.map((row: Row) => parsed(row).ts),
      [base + 10_000, base + 20_000],
    )
    assert.equal(skipped.json.scanned, 3)

    const future = await search(['--since', '+1h'])
    assert.deepEqual(
      {matched: future.matched, scanned: future.scanned, complete: future.complete},
      {matched: 0, scanned: 0, complete: true},
    )
  })

  it('--max stops after that many matches, in offset order within the partition', async () => {
    const keyed = await search(['--key', 'w17', '--max', '5'])
    assert.deepEqual(
      keyed.records.map((row: Row) => row.offset),
      all
        .filter((row) => row.key === 'w17')
        .map((row) => row.offset)
        .sort((a, b) => a - b)
        .slice(0, 5),
    )
    assert.equal(keyed.matched, 5)
    assert.equal(keyed.complete, false)
    assert.ok(keyed.scanned < all.filter((row) => row.partition === partitionFor('w17', PARTITIONS)).length)

    const any = await search(['--value-contains', 'needle', '--max', '3'])
    assert.equal(any.records.length, 3)
    for (const row of any.records) assert.match(row.value, /needle/)
  })

  it('prints matches as `log read` does and the scan per partition on stderr', async () => {
    const lines = await runCli(['log', 'search', '-t', topic, '--key', 'w3', '--value-contains', '"kind":"follow"'])
    assert.equal(lines.code, 0, lines.stderr)
    const printed = lines.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    sameRecords(
      printed,
      all.filter((row) => row.key === 'w3' && parsed(row).kind === 'follow'),
    )
    assert.match(
      lines.stderr,
      new RegExp(`${printed.length} matches in \\d+ records scanned; the other 11 partitions cannot hold the key`),
    )

    const raw = await runCli(['log', 'search', '-t', topic, '--field', 'n=7', '--format', 'raw'])
    assert.equal(raw.code, 0, raw.stderr)
    assert.equal(raw.stdout, `${JSON.stringify(event(7))}\n`)
  })

  it('ends while producers keep writing: each range stops at the high watermark seen at start', async () => {
    const live = uniqueName('search_live')
    created.push(live)
    assert.equal((await runCli(['topic', 'create', live, '--partitions', '3', '--json'])).code, 0)
    const batch = (from: number, count: number) =>
      Array.from({length: count}, (_, index) => JSON.stringify({webhook_id: `k${index % 7}`, n: from + index})).join(
        '\n',
      ) + '\n'
    assert.equal((await runCli(['log', 'produce', '-t', live], {input: batch(0, 2000)})).code, 0)
    const [searched, produced] = await Promise.all([
      runCli(['log', 'search', '-t', live, '--value-contains', 'no-such-text', '--json']),
      runCli(['log', 'produce', '-t', live, '--json'], {input: batch(2000, 5000)}),
    ])
    assert.equal(produced.code, 0, produced.stderr)
    assert.equal(searched.code, 0, searched.stderr)
    assert.equal(searched.json.complete, true)
    assert.ok(searched.json.scanned >= 2000)
    assert.equal(
      searched.json.scanned,
      searched.json.partitions.reduce(
        (sum: number, scan: {start: number; end: number}) => sum + scan.end - scan.start,
        0,
      ),
    )
  })

  it(
    'refuses a bad regex, a bad --field or two value filters with one line and exit 2, and an unknown topic ' +
      'with exit 3',
    async () => {
      for (const args of [
        ['--value-regex', '(unclosed'],
        ['--field', 'no-equals-sign'],
        ['--field', '=v'],
        ['--field', 'a..b=v'],
        ['--value-contains', 'a', '--field', 'a=b'],
        ['--since', '1h', '--until', '2h'],
        ['--max', '0'],
      ]) {
        const result = await runCli(['log', 'search', '-t', topic, ...args])
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
        assert.ok(isOneLineError(result), result.stderr)
        assert.equal(result.stdout, '')
      }
      const unknown = await runCli(['log', 'search', '-t', uniqueName('nope'), '--key', 'w1'])
      assert.equal(unknown.code, 3, unknown.stderr)
      assert.ok(isOneLineError(unknown), unknown.stderr)
    },
  )
})
