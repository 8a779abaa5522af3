import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {watermarks} from '../src/core/kafka/offsets.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {readRanges} from '../src/core/kafka/range-reader.js'
import {type Headers, RecordWriter} from '../src/core/kafka/record-writer.js'
import {topicMetadata, withAdmin} from '../src/core/kafka/topics.js'
import {
  BIN,
  BROKERS,
  deleteTopics,
  isOneLineError,
  MYSQL_URL,
  nth,
  runCli,
  testSettings,
  uniqueName,
} from './helpers.js'

/**
 * topic backup / restore / verify against the real broker: a byte-exact round trip (headers, null
 * and empty keys and values, several partitions, timestamps out of order), time bounds, refusal
 * of a non-empty target, a rehash into another partition count, damaged files, and a backup
 * killed with SIGKILL and continued. kcat reads the restored topic as an independent oracle.
 */
const run = promisify(execFile)
const settings = testSettings()
const created: string[] = []
const dirs: string[] = []
const CLI_TIMEOUT = 240_000

interface Produced {
  partition: number
  key: Buffer | null
  value: Buffer | null
  timestamp: number
  headers: {key: string; value: Buffer}[]
}

interface Stored {
  key: Buffer | null
  value: Buffer | null
  timestamp: number
  headers: {key: string; value: Buffer}[]
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'replayctl-backup-'))
  dirs.push(dir)
  return dir
}

async function cli(args: string[]) {
  return runCli(args, {timeoutMs: CLI_TIMEOUT})
}

async function newTopic(prefix: string, partitions: number): Promise<string> {
  const topic = uniqueName(prefix)
  const result = await cli([
    'topic',
    'create',
    topic,
    '--partitions',
    String(partitions),
    '--retention',
    '3650d',
    '--json',
  ])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

async function produceAll(topic: string, records: Produced[]): Promise<void> {
  const writer = await RecordWriter.open(settings, topic)
  for (const record of records) {
    const headers: Headers | undefined = record.headers.length
      ? record.headers.map((header) => ({[header.key]: header.value}))
      : undefined
    await writer.write(record.key, record.value, record.timestamp, headers, {partition: record.partition})
  }
  await writer.close()
}

/** Every record of a topic, per partition in log order, read with the toolkit's range reader. */
async function readTopic(topic: string): Promise<Stored[][]> {
  const ranges = await withAdmin(settings, async (admin) => {
    const metadata = await topicMetadata(settings, admin, topic)
    const marks = await watermarks(
      settings,
      admin,
      topic,
      metadata.partitions.map((partition) => partition.partition),
    )
    return marks.map((mark) => ({partition: mark.partition, start: mark.low, end: mark.high}))
  })
  const partitions: Stored[][] = ranges.map(() => [])
  for await (const batch of readRanges(settings, topic, ranges)) {
    for (const message of batch) {
      nth(partitions, message.partition).push({
        key: message.key === null || message.key === undefined ? null : Buffer.from(message.key as Buffer),
        value: message.value === null || message.value === undefined ? null : Buffer.from(message.value),
        timestamp: message.timestamp!,
        headers: (message.headers ?? []).flatMap((header) =>
          Object.entries(header).map(([key, value]) => ({key, value: Buffer.from(value as Buffer)})),
        ),
      })
    }
  }
  return partitions
}

/** A mix that breaks naive backups: several partitions, out-of-order times, null vs empty, headers. */
function trickyRecords(partitions: number, perPartition: number): Produced[] {
  const base = Date.now() - 3 * 86_400_000
  const records: Produced[] = []
  for (let partition = 0; partition < partitions; partition++) {
    for (let index = 0; index < perPartition; index++) {
      const kind = index % 7
      const key =
        kind === 0
          ? null
          : kind === 1
            ? Buffer.alloc(0)
            : kind === 2
              ? Buffer.from([0, 255, 10, 13, partition, index & 0xff])
              : Buffer.from(`key-${index % 13}-é`)
      const value =
        kind === 3
          ? null
          : kind === 4
            ? Buffer.alloc(0)
            : kind === 5
              ? Buffer.from([0xff, 0, 0x80, index & 0xff])
              : Buffer.from(JSON.stringify({partition, index, text: 'x'.repeat(index % 50)}))
      const headers =
        index % 3 === 0
          ? [
              {key: 'trace', value: Buffer.from(`t-${index}`)},
              {key: 'trace', value: Buffer.from('duplicate name')},
              {key: 'bin', value: Buffer.from([0, 1, 2, 255])},
              {key: 'empty', value: Buffer.alloc(0)},
            ]
          : index % 3 === 1
            ? [{key: 'source', value: Buffer.from('dc1')}]
            : []
      // Out of order: a sawtooth that goes back an hour every 10 records.
      const timestamp = base + index * 60_000 - (index % 10) * 3_600_000 + partition
      records.push({partition, key, value, timestamp, headers})
    }
  }
  return records
}

function expectSameRecords(actual: Stored[][], expected: Stored[][], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: partition count`)
  for (let partition = 0; partition < expected.length; partition++) {
    assert.equal(
      nth(actual, partition).length,
      nth(expected, partition).length,
      `${what}: records in partition ${partition}`,
    )
    nth(expected, partition).forEach((record, index) => {
      const got = nth(nth(actual, partition), index)
      const where = `${what}: partition ${partition} record ${index}`
      assert.deepEqual(got.key, record.key, `${where} key`)
      assert.deepEqual(got.value, record.value, `${where} value`)
      assert.equal(got.timestamp, record.timestamp, `${where} timestamp`)
      assert.deepEqual(got.headers, record.headers, `${where} headers`)
    })
  }
}

function byPartition(records: Produced[], partitions: number): Stored[][] {
  const grouped: Stored[][] = Array.from({length: partitions}, () => [])
  for (const record of records)
    nth(grouped, record.partition).push({
      key: record.key,
      value: record.value,
      timestamp: record.timestamp,
      headers: record.headers,
    })
  return grouped
}

let source: string
let sourceRecords: Produced[]
let backupDir: string

before(async () => {
  source = await newTopic('bk_src', 3)
  sourceRecords = trickyRecords(3, 700)
  await produceAll(source, sourceRecords)
  backupDir = join(tempDir(), 'backup')
  const backup = await cli(['topic', 'backup', source, '--to', backupDir, '--json'])
  assert.equal(backup.code, 0, backup.stderr)
  assert.equal(backup.json.records, sourceRecords.length)
  assert.equal(backup.json.complete, true)
})

after(async () => {
  await deleteTopics(created)
  for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
})

describe('topic backup -> restore -> verify', () => {
  it('reproduces every key, value, header, timestamp and partition in order, null apart from empty', async () => {
    const original = await readTopic(source)
    expectSameRecords(original, byPartition(sourceRecords, 3), 'source as produced')
    assert.equal(nth(nth(original, 0), 0).key, null, 'a null key reads as null')
    assert.deepEqual(nth(nth(original, 0), 1).key, Buffer.alloc(0), 'an empty key reads as empty')

    const manifest = JSON.parse(readFileSync(join(backupDir, 'manifest.json'), 'utf8'))
    assert.equal(manifest.complete, true)
    assert.equal(manifest.source.partitions, 3)
    assert.equal(manifest.source.configs['retention.ms'], String(3650 * 86_400_000))
    assert.deepEqual(
      manifest.partitions.map((entry: {records: number}) => entry.records),
      [700, 700, 700],
    )
    for (const entry of manifest.partitions) assert.match(entry.recordsSha256, /^[0-9a-f]{64}$/)

    const target = uniqueName('bk_dst')
    created.push(target)
    const restore = await cli(['topic', 'restore', backupDir, '--topic', target, '--json'])
    assert.equal(restore.code, 0, restore.stderr)
    assert.equal(restore.json.created, true)
    assert.equal(restore.json.records, sourceRecords.length)
    expectSameRecords(await readTopic(target), original, 'restored')

    const described = await cli(['topic', 'describe', target, '--json'])
    assert.equal(
      described.json.configs['retention.ms'],
      String(3650 * 86_400_000),
      'the created target has the source configs',
    )

    // kcat as an independent reader: partitions, CreateTimes, null (-1) vs empty (0) lengths.
    const {stdout} = await run('kcat', ['-b', BROKERS, '-C', '-t', target, '-e', '-q', '-f', '%p %T %K %S\n'], {
      maxBuffer: 1 << 26,
    })
    const seen = stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' ').map(Number))
    assert.equal(seen.length, sourceRecords.length)
    const expectedRows = sourceRecords.map((record) => [
      record.partition,
      record.timestamp,
      record.key === null ? -1 : record.key.length,
      record.value === null ? -1 : record.value.length,
    ])
    const sortRows = (rows: number[][]) => rows.map((row) => row.join(' ')).sort()
    assert.deepEqual(sortRows(seen), sortRows(expectedRows))

    const verify = await cli(['topic', 'verify', backupDir, '--topic', target, '--json'])
    assert.equal(verify.code, 0, verify.stderr)
    assert.equal(verify.json.match, true)
    assert.equal(verify.json.mode, 'partitions')
  })

  it('refuses a non-empty target and writes nothing, unless --force; verify then reports the mismatch', async () => {
    const target = await newTopic('bk_busy', 3)
    await produceAll(target, [
      {partition: 1, key: Buffer.from('k'), value: Buffer.from('already here'), timestamp: Date.now(), headers: []},
    ])
    const refused = await cli(['topic', 'restore', backupDir, '--topic', target])
    assert.equal(refused.code, 4)
    assert.ok(isOneLineError(refused), refused.stderr)
    assert.match(refused.stderr, /already holds 1 record; nothing was written/)
    assert.deepEqual(
      (await readTopic(target)).map((partition) => partition.length),
      [0, 1, 0],
    )

    const forced = await cli(['topic', 'restore', backupDir, '--topic', target, '--force', '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.deepEqual(
      (await readTopic(target)).map((partition) => partition.length),
      [700, 701, 700],
    )
    const verify = await cli(['topic', 'verify', backupDir, '--topic', target])
    assert.equal(verify.code, 6)
    assert.ok(isOneLineError(verify), verify.stderr)
    assert.match(verify.stderr, /partition 1: 701 records, expected 700/)
  })

  it('rehash into another partition count puts each key where murmur2 says, each key in order', async () => {
    const target = uniqueName('bk_rehash')
    created.push(target)
    const restore = await cli([
      'topic',
      'restore',
      backupDir,
      '--topic',
      target,
      '--partitions',
      'rehash',
      '--partition-count',
      '5',
      '--json',
    ])
    assert.equal(restore.code, 0, restore.stderr)
    assert.equal(restore.json.targetPartitions, 5)
    const restored = await readTopic(target)
    assert.equal(restored.length, 5)
    assert.equal(restored.flat().length, sourceRecords.length)

    const sequence = (records: Stored[]) =>
      records.map((record) => `${record.timestamp}:${record.value?.toString('hex') ?? 'null'}:${record.headers.length}`)
    const expectedByKey = new Map<string, Stored[]>()
    for (const partition of byPartition(sourceRecords, 3)) {
      for (const record of partition) {
        if (record.key === null) continue
        const name = record.key.toString('hex')
        expectedByKey.set(name, [...(expectedByKey.get(name) ?? []), record])
      }
    }
    const actualByKey = new Map<string, Stored[]>()
    restored.forEach((records, partition) => {
      for (const record of records) {
        if (record.key === null) continue
        assert.equal(
          partition,
          partitionFor(record.key, 5, 'murmur2'),
          `key ${record.key.toString('hex')} in partition ${partition}`,
        )
        const name = record.key.toString('hex')
        actualByKey.set(name, [...(actualByKey.get(name) ?? []), record])
      }
    })
    assert.equal(actualByKey.size, expectedByKey.size)
    for (const [name, records] of expectedByKey)
      assert.deepEqual(sequence(actualByKey.get(name)!), sequence(records), `key ${name}`)

    const verify = await cli(['topic', 'verify', backupDir, '--topic', target, '--json'])
    assert.equal(verify.code, 0, verify.stderr)
    assert.equal(verify.json.mode, 'keys')
    assert.equal(verify.json.keys.differing, 0)
  })
})

describe('topic backup --since/--until', () => {
  it(
    'keeps exactly the records from the first at or after --since to before the first at or ' + 'after --until',
    async () => {
      const topic = await newTopic('bk_time', 2)
      const base = Date.now() - 2 * 86_400_000
      const records: Produced[] = Array.from({length: 400}, (_, index) => ({
        partition: index % 2,
        key: Buffer.from(`k${index}`),
        value: Buffer.from(`v${index}`),
        timestamp: base + index * 1000,
        headers: [],
      }))
      await produceAll(topic, records)
      const dir = join(tempDir(), 'bounded')
      const since = base + 100_000
      const until = base + 250_000
      const backup = await cli([
        'topic',
        'backup',
        topic,
        '--to',
        dir,
        '--since',
        String(since),
        '--until',
        String(until),
        '--no-configs',
        '--json',
      ])
      assert.equal(backup.code, 0, backup.stderr)
      assert.equal(backup.json.since, since)
      assert.equal(backup.json.until, until)
      const target = uniqueName('bk_time_dst')
      created.push(target)
      const restore = await cli(['topic', 'restore', dir, '--topic', target, '--config', 'retention.ms=-1', '--json'])
      assert.equal(restore.code, 0, restore.stderr)
      assert.ok(restore.json.notes.some((note: string) => /no topic configs/.test(note)))
      assert.equal(
        (await cli(['topic', 'describe', target, '--json'])).json.configs['retention.ms'],
        '-1',
        '--config applies to the created target',
      )
      const inside = records.filter((record) => record.timestamp >= since && record.timestamp < until)
      assert.equal(inside.length, 150)
      expectSameRecords(await readTopic(target), byPartition(inside, 2), 'bounded restore')
    },
  )
})

describe('damaged backups', () => {
  it('a truncated file is named with the byte and offset, and restore writes nothing', async () => {
    const dir = join(tempDir(), 'truncated')
    cpSync(backupDir, dir, {recursive: true})
    const file = join(dir, 'partition-1.chunks')
    const size = statSync(file).size
    truncateSync(file, size - 100)
    const target = uniqueName('bk_never')
    const restore = await cli(['topic', 'restore', dir, '--topic', target])
    assert.equal(restore.code, 2)
    assert.ok(isOneLineError(restore), restore.stderr)
    assert.match(
      restore.stderr,
      new RegExp(
        `partition-1\\.chunks is truncated at byte ${size - 100}: the chunk at byte \\d+ \\(records from ` +
          `offset \\d+\\)`,
      ),
    )
    const listed = await cli(['topic', 'list', '--json'])
    assert.ok(!listed.json.some((entry: {topic: string}) => entry.topic === target), 'no target topic was created')

    const verify = await cli(['topic', 'verify', dir])
    assert.equal(verify.code, 2)
    assert.match(verify.stderr, /partition-1\.chunks is truncated/)
  })

  it('a file cut at a chunk boundary is caught by the manifest', async () => {
    const dir = join(tempDir(), 'short')
    cpSync(backupDir, dir, {recursive: true})
    writeFileSync(join(dir, 'partition-2.chunks'), Buffer.alloc(0))
    const verify = await cli(['topic', 'verify', dir])
    assert.equal(verify.code, 2)
    assert.match(
      verify.stderr,
      /partition-2\.chunks is truncated at byte 0 \(record 0, offset 0\): the manifest says \d+ bytes and 700 records/,
    )
  })

  it("a flipped byte is named with the chunk's byte range and first offset", async () => {
    const dir = join(tempDir(), 'flipped')
    cpSync(backupDir, dir, {recursive: true})
    const file = join(dir, 'partition-0.chunks')
    const bytes = readFileSync(file)
    const at = Math.floor(bytes.length / 2)
    bytes[at] = nth(bytes, at) ^ 0x10
    writeFileSync(file, bytes)
    const target = uniqueName('bk_never')
    for (const args of [
      ['topic', 'verify', dir],
      ['topic', 'restore', dir, '--topic', target],
    ]) {
      const result = await cli(args)
      assert.equal(result.code, 2, result.stderr)
      assert.ok(isOneLineError(result), result.stderr)
      assert.match(
        result.stderr,
        new RegExp(
          String.raw`partition-0\.chunks is corrupt in the chunk at bytes \d+\.\.\d+ \(records from offset \d+\): ` +
            String.raw`its checksum does not match`,
        ),
      )
      const [, start, end] = /at bytes (\d+)\.\.(\d+)/.exec(result.stderr)!
      assert.ok(Number(start) <= at && at < Number(end), `byte ${at} lies in the named chunk ${start}..${end}`)
    }
    const listed = await cli(['topic', 'list', '--json'])
    assert.ok(!listed.json.some((entry: {topic: string}) => entry.topic === target), 'no target topic was created')
  })

  it('an interrupted backup is not restored', async () => {
    const dir = join(tempDir(), 'unfinished')
    cpSync(backupDir, dir, {recursive: true})
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({...manifest, complete: false}))
    const restore = await cli(['topic', 'restore', dir, '--topic', uniqueName('bk_never')])
    assert.equal(restore.code, 6)
    assert.ok(isOneLineError(restore), restore.stderr)
    assert.match(restore.stderr, /not complete \(it was interrupted\).*topic backup/)
  })
})

describe('backup directories', () => {
  it("refuse a directory holding another topic's backup, or other files", async () => {
    const other = await cli(['topic', 'backup', `${source}_other`, '--to', backupDir])
    assert.equal(other.code, 4)
    assert.ok(isOneLineError(other), other.stderr)
    assert.match(other.stderr, new RegExp(`holds a backup of topic '${source}'`))

    const cluttered = tempDir()
    writeFileSync(join(cluttered, 'notes.txt'), 'not a backup')
    const refused = await cli(['topic', 'backup', source, '--to', cluttered, '--json'])
    assert.equal(refused.code, 4)
    assert.equal(refused.json.error.code, 'BACKUP_DIR_CONFLICT')
    assert.deepEqual(readdirSync(cluttered), ['notes.txt'], 'nothing was written')
  })
})

describe('an interrupted backup', () => {
  it('killed with SIGKILL mid-way, continues when run again and ends identical to an uninterrupted one', async () => {
    const topic = await newTopic('bk_kill', 3)
    const value = (index: number) => Buffer.from(JSON.stringify({index, body: 'y'.repeat(760)}))
    const records: Produced[] = Array.from({length: 45_000}, (_, index) => ({
      partition: index % 3,
      key: Buffer.from(`w${index % 101}`),
      value: value(index),
      timestamp: Date.now() - 86_400_000 + index,
      headers: index % 5 === 0 ? [{key: 'h', value: Buffer.from(String(index))}] : [],
    }))
    await produceAll(topic, records)

    const whole = join(tempDir(), 'whole')
    const uninterrupted = await cli(['topic', 'backup', topic, '--to', whole, '--no-configs', '--json'])
    assert.equal(uninterrupted.code, 0, uninterrupted.stderr)

    const dir = join(tempDir(), 'killed')
    const child = spawn(
      process.execPath,
      [BIN, 'topic', 'backup', topic, '--to', dir, '--no-configs', '--chunk-size', '65536', '--json'],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          REPLAYCTL_BROKERS: BROKERS,
          REPLAYCTL_MYSQL_URL: MYSQL_URL,
          REPLAYCTL_CONFIG: '/nonexistent',
        },
        stdio: 'ignore',
      },
    )
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const chunkBytes = () =>
      existsSync(dir)
        ? readdirSync(dir)
            .filter((name) => name.endsWith('.chunks'))
            .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0)
        : 0
    const deadline = Date.now() + CLI_TIMEOUT
    while (chunkBytes() < 200_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    child.kill('SIGKILL')
    const code = await exited
    assert.equal(code, null, 'the backup was killed, not finished')
    const partial = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
    assert.equal(partial.complete, false, 'the manifest does not claim a complete backup')

    // A torn chunk, as a crash in the middle of a write leaves it.
    appendFileSync(join(dir, 'partition-0.chunks'), Buffer.from('RKB1 torn chunk header and no payload'))
    const restoreEarly = await cli(['topic', 'restore', dir, '--topic', uniqueName('bk_never')])
    assert.equal(restoreEarly.code, 6, restoreEarly.stderr)

    const resumed = await cli(['topic', 'backup', topic, '--to', dir, '--no-configs', '--json'])
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.equal(resumed.json.resumed, true)
    assert.equal(resumed.json.records, records.length)
    assert.ok(
      resumed.json.recordsThisRun < records.length,
      `${resumed.json.recordsThisRun} records read again, fewer than all`,
    )

    const a = JSON.parse(readFileSync(join(whole, 'manifest.json'), 'utf8'))
    const b = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
    assert.equal(b.complete, true)
    const summary = (manifest: {
      partitions: {
        partition: number
        startOffset: number
        endOffset: number
        records: number
        firstOffset: number
        lastOffset: number
        recordsSha256: string
      }[]
    }) =>
      manifest.partitions.map(
        ({partition, startOffset, endOffset, records, firstOffset, lastOffset, recordsSha256}) => ({
          partition,
          startOffset,
          endOffset,
          records,
          firstOffset,
          lastOffset,
          recordsSha256,
        }),
      )
    assert.deepEqual(summary(b), summary(a))

    const again = await cli(['topic', 'backup', topic, '--to', dir, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.alreadyComplete, true)

    const target = uniqueName('bk_kill_dst')
    created.push(target)
    assert.equal((await cli(['topic', 'restore', dir, '--topic', target])).code, 0)
    const verify = await cli(['topic', 'verify', whole, '--topic', target, '--json'])
    assert.equal(verify.code, 0, verify.stderr)
    assert.equal(verify.json.match, true)
  })
})
