import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {gunzipSync, gzipSync} from 'node:zlib'

import {UserError} from '../src/core/shared/errors.js'
import {backupTopic} from '../src/core/storage/backup.js'
import {verifyBackup} from '../src/core/storage/backup-verify.js'
import {CHUNK_HEADER_BYTES, chunkBytes} from '../src/core/storage/backup-format.js'
import {MAX_MANIFEST_BYTES, readManifest} from '../src/core/storage/backup-manifest.js'
import {restoreTopic} from '../src/core/storage/restore.js'
import {type CliResult, deleteTopics, isOneLineError, nth, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * A backup directory is input that may have been tampered with: whatever its manifest and chunk
 * files hold, backup, restore and verify touch nothing outside it, fail with one line and a
 * user error's exit code, create no target topic, and stay within bounded memory. Specific
 * cases first (each one reproduced on the code before this fix), then a deterministic fuzz over
 * manifests, chunk files and the files' kinds: most cases run the core functions in-process, a
 * subset goes through the built CLI with the child's peak RSS measured.
 */
const settings = testSettings()
const created: string[] = []
/** Restore targets that must never have been created. */
const never: string[] = []
const CLI_TIMEOUT = 120_000
/** Peak RSS allowed for a command on a hostile backup; a bare CLI start is about 100 MB. */
const MAX_RSS_MB = 300

let work: string
let source: string
let complete: string
let unfinished: string
let rssPreload: string

/** A complete backup of `source` in several chunks per partition, and the same one made unfinished. */
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'replayctl-confine-'))
  rssPreload = join(work, 'report-rss.cjs')
  // The child's own peak (getrusage ru_maxrss, in KiB), written as it exits.
  writeFileSync(
    rssPreload,
    "process.on('exit', () => require('node:fs').writeFileSync(process.env.REPLAYCTL_TEST_RSS_REPORT, " +
      'String(process.resourceUsage().maxRSS)))\n',
  )
  source = uniqueName('bkc_src')
  const topic = await runCli(['topic', 'create', source, '--partitions', '2', '--retention', '3650d', '--json'], {
    timeoutMs: CLI_TIMEOUT,
  })
  assert.equal(topic.code, 0, topic.stderr)
  created.push(source)
  const {RecordWriter} = await import('../src/core/kafka/record-writer.js')
  const writer = await RecordWriter.open(settings, source)
  for (let index = 0; index < 300; index++) {
    await writer.write(
      Buffer.from(`k${index % 17}`),
      Buffer.from(`value ${index} ${'z'.repeat(index % 40)}`),
      Date.now() - 86_400_000 + index,
      index % 4 === 0 ? [{h: Buffer.from(String(index))}] : undefined,
      {partition: index % 2},
    )
  }
  await writer.close()
  complete = join(work, 'complete')
  const backup = await runCli(
    ['topic', 'backup', source, '--to', complete, '--no-configs', '--chunk-size', '1024', '--json'],
    {timeoutMs: CLI_TIMEOUT},
  )
  assert.equal(backup.code, 0, backup.stderr)

  unfinished = join(work, 'unfinished')
  cpSync(complete, unfinished, {recursive: true})
  const manifest = readJson(join(unfinished, 'manifest.json'))
  manifest.complete = false
  manifest.completedAt = null
  manifest.records = 0
  for (const entry of manifest.partitions)
    Object.assign(entry, {
      complete: false,
      records: 0,
      firstOffset: null,
      lastOffset: null,
      chunks: 0,
      fileBytes: 0,
      fileSha256: null,
      recordsSha256: null,
    })
  writeJson(join(unfinished, 'manifest.json'), manifest)
})

after(async () => {
  const listed = await runCli(['topic', 'list', '--json'], {timeoutMs: CLI_TIMEOUT})
  const topics = new Set((listed.json as {topic: string}[]).map((entry) => entry.topic))
  await deleteTopics([...created, ...never.filter((topic) => topics.has(topic))])
  rmSync(work, {recursive: true, force: true})
  const leaked = never.filter((topic) => topics.has(topic))
  assert.deepEqual(leaked, [], 'no restore of a bad backup created its target topic')
})

function readJson(path: string): any {
  return JSON.parse(readFileSync(path, 'utf8'))
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2))
}

/** One case: DIR/backup (a copy of a fixture) and DIR/sentinel beside it, which nothing may touch. */
interface Case {
  root: string
  dir: string
  sentinel: string
}

function newCase(fixture: string): Case {
  const root = mkdtempSync(join(work, 'case-'))
  const dir = join(root, 'backup')
  cpSync(fixture, dir, {recursive: true})
  const sentinel = join(root, 'sentinel')
  mkdirSync(sentinel)
  writeFileSync(join(sentinel, 'victim.txt'), 'precious: must never change\n')
  // A valid chunk file outside the directory: what a path or link out of it would read.
  cpSync(join(complete, 'partition-0.chunks'), join(sentinel, 'stolen.chunks'))
  return {root, dir, sentinel}
}

/** Everything in the case except the backup directory: names, kinds, sizes, mtimes, contents. */
function outside(c: Case): string {
  const seen: string[] = []
  const walk = (path: string, name: string) => {
    const stat = lstatSync(path)
    const content = stat.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex') : ''
    seen.push(`${name} ${stat.mode} ${stat.size} ${stat.mtimeMs} ${content}`)
    if (stat.isDirectory())
      for (const child of readdirSync(path).sort())
        if (path !== c.root || child !== 'backup') walk(join(path, child), `${name}/${child}`)
  }
  walk(c.root, '.')
  return seen.join('\n')
}

/** Rewrites the manifest's file sizes and sha256 after a chunk file changed, so only deeper checks can tell. */
function resealFile(dir: string, partition: number): void {
  const path = join(dir, 'manifest.json')
  const manifest = readJson(path)
  const entry = manifest.partitions.find((candidate: {partition: number}) => candidate.partition === partition)
  if (!entry?.complete) return
  const bytes = readFileSync(join(dir, `partition-${partition}.chunks`))
  entry.fileBytes = bytes.length
  entry.fileSha256 = createHash('sha256').update(bytes).digest('hex')
  writeJson(path, manifest)
}

interface Chunk {
  payload: Buffer
  records: number
  uncompressed: number
  first: number
  last: number
}

function parseChunks(bytes: Buffer): Chunk[] {
  const chunks: Chunk[] = []
  for (let at = 0; at < bytes.length;) {
    const payloadBytes = bytes.readUInt32BE(at + 4)
    chunks.push({
      payload: bytes.subarray(at + CHUNK_HEADER_BYTES, at + CHUNK_HEADER_BYTES + payloadBytes),
      records: bytes.readUInt32BE(at + 8),
      uncompressed: bytes.readUInt32BE(at + 12),
      first: Number(bytes.readBigInt64BE(at + 16)),
      last: Number(bytes.readBigInt64BE(at + 24)),
    })
    at += CHUNK_HEADER_BYTES + payloadBytes
  }
  return chunks
}

/** A chunk with a correct sha256 over whatever header fields and payload it is given. */
function sealedChunk(chunk: Chunk): Buffer {
  const raw = chunkBytes(chunk.payload, 0, {records: 0, firstOffset: 0, lastOffset: 0})
  raw.writeUInt32BE(chunk.records >>> 0, 8)
  raw.writeUInt32BE(chunk.uncompressed >>> 0, 12)
  raw.writeBigInt64BE(BigInt(chunk.first), 16)
  raw.writeBigInt64BE(BigInt(chunk.last), 24)
  createHash('sha256').update(raw.subarray(0, 32)).update(chunk.payload).digest().copy(raw, 32)
  return raw
}

/**
 * A gzip payload inflating to `mebibytes` MiB of zeros in ~1 KiB per MiB: gzip members may be
 * concatenated, so one 16 MiB member is repeated rather than compressing gigabytes here.
 */
function bombPayload(mebibytes: number): Buffer {
  const member = gzipSync(Buffer.alloc(Math.min(mebibytes, 16) << 20), {level: 9})
  return Buffer.concat(Array.from({length: Math.max(1, Math.floor(mebibytes / 16))}, () => member))
}

/** The built CLI, with its peak resident memory (MB) as the child itself measured it. */
async function measured(args: string[]): Promise<CliResult & {peakMb: number}> {
  const report = join(work, `rss-${Date.now()}-${Math.random().toString(36).slice(2)}`)
  const result = await runCli(args, {
    timeoutMs: CLI_TIMEOUT,
    env: {NODE_OPTIONS: `--require ${rssPreload}`, REPLAYCTL_TEST_RSS_REPORT: report},
  })
  const peakMb = existsSync(report) ? Number(readFileSync(report, 'utf8')) / 1024 : Number.NaN
  return {...result, peakMb}
}

/** The contract for a hostile backup: exit 0 or a user error's code, one line, bounded memory. */
function expectUserOutcome(result: CliResult & {peakMb: number}, what: string): void {
  assert.ok(result.code >= 0, `${what}: ended by a signal`)
  assert.ok(
    result.code === 0 || (result.code >= 2 && result.code <= 6),
    `${what}: exit ${result.code}\n${result.stderr}`,
  )
  if (result.code !== 0) assert.ok(isOneLineError(result), `${what}: ${result.stderr}`)
  assert.ok(result.peakMb < MAX_RSS_MB, `${what}: peak RSS ${result.peakMb.toFixed(0)} MB`)
}

function expectCorrupt(result: CliResult, pattern: RegExp, what: string): void {
  assert.equal(result.code, 2, `${what}: ${result.stderr}`)
  assert.ok(isOneLineError(result), `${what}: ${result.stderr}`)
  assert.match(result.stderr, pattern, what)
}

async function restoreNever(dir: string): Promise<CliResult & {peakMb: number}> {
  const target = uniqueName('bkc_never')
  never.push(target)
  return measured(['topic', 'restore', dir, '--topic', target])
}

describe('file names in a manifest', () => {
  it(
    'only partition-N.chunks for partition N: paths out of the directory, absolute paths and other names are ' +
      'BACKUP_CORRUPT',
    async () => {
      const c = newCase(complete)
      const before = outside(c)
      const names = [
        '../sentinel/stolen.chunks',
        join(c.sentinel, 'stolen.chunks'),
        'partition-1.chunks',
        './partition-0.chunks',
        'sub/../partition-0.chunks',
        '../backup/partition-0.chunks',
      ]
      for (const name of names) {
        const manifest = readJson(join(c.dir, 'manifest.json'))
        manifest.partitions[0].file = name
        writeJson(join(c.dir, 'manifest.json'), manifest)
        const verify = await measured(['topic', 'verify', c.dir])
        expectCorrupt(
          verify,
          /partitions\[0\]\.file is '.*'; partition 0's file can only be 'partition-0\.chunks'/,
          `verify with file ${name}`,
        )
        expectCorrupt(await restoreNever(c.dir), /partition 0's file can only be/, `restore with file ${name}`)
      }
      assert.equal(outside(c), before)
    },
  )

  it('give no file-existence oracle: a name of an existing file outside fails as one of a missing file', async () => {
    const c = newCase(complete)
    const answers = []
    for (const name of ['../sentinel/victim.txt', '../sentinel/no-such-file']) {
      const manifest = readJson(join(c.dir, 'manifest.json'))
      manifest.partitions[1].file = name
      writeJson(join(c.dir, 'manifest.json'), manifest)
      const verify = await measured(['topic', 'verify', c.dir])
      expectCorrupt(verify, /partition 1's file can only be 'partition-1\.chunks'/, name)
      answers.push(verify.stderr.replace(name, 'NAME'))
    }
    assert.equal(answers[0], answers[1])
  })

  it(
    'an unfinished manifest naming a file outside is not continued: nothing outside is created ' + 'or written',
    async () => {
      const c = newCase(unfinished)
      const before = outside(c)
      for (const name of [
        '../sentinel/victim.txt',
        '../sentinel/created-by-backup.chunks',
        join(c.sentinel, 'victim.txt'),
      ]) {
        const manifest = readJson(join(c.dir, 'manifest.json'))
        manifest.partitions[0].file = name
        writeJson(join(c.dir, 'manifest.json'), manifest)
        const backup = await measured(['topic', 'backup', source, '--to', c.dir, '--no-configs'])
        expectCorrupt(
          backup,
          /partition 0's file can only be 'partition-0\.chunks'/,
          `backup continuing with file ${name}`,
        )
        assert.equal(outside(c), before, `backup continuing with file ${name}`)
      }
    },
  )
})

describe('symbolic links and other kinds of file', () => {
  it('a chunk file that is a symbolic link is refused, whether its target exists or not (no oracle)', async () => {
    const c = newCase(complete)
    const answers = []
    for (const target of ['../sentinel/stolen.chunks', '../sentinel/no-such-file']) {
      rmSync(join(c.dir, 'partition-0.chunks'), {force: true})
      symlinkSync(target, join(c.dir, 'partition-0.chunks'))
      const verify = await measured(['topic', 'verify', c.dir])
      expectCorrupt(
        verify,
        /partition-0\.chunks in .* is a symbolic link; a backup's files must be regular files in its directory/,
        `link to ${target}`,
      )
      answers.push(verify.stderr)
      expectCorrupt(await restoreNever(c.dir), /is a symbolic link/, `restore through a link to ${target}`)
    }
    assert.equal(answers[0], answers[1])
  })

  it('a FIFO or a directory in place of a chunk file is refused at once, not read', async () => {
    const c = newCase(complete)
    rmSync(join(c.dir, 'partition-1.chunks'))
    execFileSync('mkfifo', [join(c.dir, 'partition-1.chunks')])
    expectCorrupt(await measured(['topic', 'verify', c.dir]), /partition-1\.chunks in .* is not a regular file/, 'fifo')
    rmSync(join(c.dir, 'partition-1.chunks'))
    mkdirSync(join(c.dir, 'partition-1.chunks'))
    expectCorrupt(
      await measured(['topic', 'verify', c.dir]),
      /partition-1\.chunks in .* is not a regular file/,
      'directory',
    )
  })

  it('continuing a backup does not write through a planted link or hard link', async () => {
    const c = newCase(unfinished)
    const before = outside(c)
    rmSync(join(c.dir, 'partition-0.chunks'))
    symlinkSync('../sentinel/victim.txt', join(c.dir, 'partition-0.chunks'))
    expectCorrupt(
      await measured(['topic', 'backup', source, '--to', c.dir, '--no-configs']),
      /partition-0\.chunks in .* is a symbolic link/,
      'linked chunk file',
    )
    assert.equal(outside(c), before)

    rmSync(join(c.dir, 'partition-0.chunks'))
    linkSync(join(c.sentinel, 'stolen.chunks'), join(c.dir, 'partition-0.chunks'))
    const hard = await measured(['topic', 'backup', source, '--to', c.dir, '--no-configs'])
    expectCorrupt(hard, /partition-0\.chunks in .* is also linked from elsewhere/, 'hard-linked chunk file')
    rmSync(join(c.dir, 'partition-0.chunks'))
    assert.equal(outside(c), before)
  })

  it('the manifest is written through a fresh temporary file, never through a link planted in its place', async () => {
    const c = newCase(unfinished)
    const before = outside(c)
    symlinkSync('../sentinel/victim.txt', join(c.dir, 'manifest.json.tmp'))
    const backup = await measured(['topic', 'backup', source, '--to', c.dir, '--no-configs', '--json'])
    assert.equal(backup.code, 0, backup.stderr)
    assert.equal(backup.json.records, 300)
    assert.equal(outside(c), before, 'the victim is untouched')
    assert.ok(lstatSync(join(c.dir, 'manifest.json')).isFile())
    assert.equal(readJson(join(c.dir, 'manifest.json')).complete, true)
    assert.equal((await measured(['topic', 'verify', c.dir])).code, 0)

    const blocked = newCase(unfinished)
    mkdirSync(join(blocked.dir, 'manifest.json.tmp'))
    const refused = await measured(['topic', 'backup', source, '--to', blocked.dir, '--no-configs'])
    assert.equal(refused.code, 2, refused.stderr)
    assert.ok(isOneLineError(refused), refused.stderr)
    assert.match(refused.stderr, /cannot write .*manifest\.json/)
  })
})

describe('a chunk that inflates past its header', () => {
  it(
    '1 GiB of zeros declared as 30 bytes: verify and restore refuse it in bounded memory and create ' + 'no topic',
    async (t) => {
      const c = newCase(complete)
      const manifest = readJson(join(c.dir, 'manifest.json'))
      const entry = manifest.partitions[0]
      const bomb = sealedChunk({
        payload: bombPayload(1024),
        records: 1,
        uncompressed: 30,
        first: entry.startOffset,
        last: entry.startOffset,
      })
      writeFileSync(join(c.dir, 'partition-0.chunks'), bomb)
      Object.assign(entry, {records: 1, firstOffset: entry.startOffset, lastOffset: entry.startOffset, chunks: 1})
      manifest.records = manifest.partitions.reduce(
        (sum: number, candidate: {records: number}) => sum + candidate.records,
        0,
      )
      writeJson(join(c.dir, 'manifest.json'), manifest)
      resealFile(c.dir, 0)

      const restore = await restoreNever(c.dir)
      expectCorrupt(
        restore,
        new RegExp(
          String.raw`partition-0\.chunks chunk at byte 0 \(records from offset 0\) ` +
            String.raw`inflates to more than the 30 bytes its header says`,
        ),
        'restore',
      )
      expectUserOutcome(restore, 'restore')
      const verify = await measured(['topic', 'verify', c.dir])
      expectCorrupt(verify, /inflates to more than the 30 bytes/, 'verify')
      expectUserOutcome(verify, 'verify')
      t.diagnostic(
        `bomb of ${bomb.length} bytes (1 GiB inflated): peak RSS restore ${restore.peakMb.toFixed(0)} MB, verify ` +
          `${verify.peakMb.toFixed(0)} MB`,
      )
    },
  )

  it('a chunk declaring more than a chunk may hold is refused before it is inflated', async () => {
    const c = newCase(complete)
    const chunks = parseChunks(readFileSync(join(c.dir, 'partition-1.chunks')))
    nth(chunks, 0).uncompressed = 0xffffffff
    writeFileSync(join(c.dir, 'partition-1.chunks'), Buffer.concat(chunks.map(sealedChunk)))
    resealFile(c.dir, 1)
    expectCorrupt(
      await restoreNever(c.dir),
      new RegExp(
        String.raw`partition-1\.chunks is corrupt at byte 0: the chunk header declares \d+ compressed ` +
          String.raw`and 4294967295 uncompressed bytes, more than a chunk may hold`,
      ),
      'huge declared length',
    )
  })
})

describe('malformed manifests', () => {
  /** Each changes a copy of a complete manifest; every one must be BACKUP_CORRUPT in one line. */
  const malformed: [string, (manifest: any) => void][] = [
    [
      'a partition beyond the topic',
      (m) => {
        m.partitions[1].partition = 7
      },
    ],
    [
      'a duplicate partition',
      (m) => {
        m.partitions[1] = {...m.partitions[0]}
      },
    ],
    [
      'a missing partition',
      (m) => {
        m.partitions.pop()
      },
    ],
    [
      'an extra partition',
      (m) => {
        m.partitions.push({...m.partitions[0], partition: 2, file: 'partition-2.chunks'})
      },
    ],
    [
      'a negative partition',
      (m) => {
        m.partitions[0].partition = -1
      },
    ],
    [
      'a fractional partition',
      (m) => {
        m.partitions[0].partition = 0.5
      },
    ],
    [
      'a partition as a string',
      (m) => {
        m.partitions[0].partition = '0'
      },
    ],
    [
      'a negative record count',
      (m) => {
        m.partitions[0].records = -3
      },
    ],
    [
      'a fractional start offset',
      (m) => {
        m.partitions[0].startOffset = 1.5
      },
    ],
    [
      'a huge end offset',
      (m) => {
        m.partitions[0].endOffset = 1e300
      },
    ],
    [
      'an end before the start',
      (m) => {
        m.partitions[0].endOffset = -1
      },
    ],
    [
      'more records than offsets',
      (m) => {
        m.partitions[0].records = m.partitions[0].endOffset + 1
      },
    ],
    [
      'an absurd file size',
      (m) => {
        m.partitions[0].fileBytes = 2 ** 60
      },
    ],
    [
      'a missing field',
      (m) => {
        delete m.partitions[0].fileBytes
      },
    ],
    [
      'a sha256 that is not one',
      (m) => {
        m.partitions[0].fileSha256 = 'abc'
      },
    ],
    [
      'a complete entry without sha256',
      (m) => {
        m.partitions[0].recordsSha256 = null
      },
    ],
    [
      'partitions as an object',
      (m) => {
        m.partitions = {0: m.partitions[0]}
      },
    ],
    [
      'an entry that is a number',
      (m) => {
        m.partitions[0] = 5
      },
    ],
    [
      'a huge partition count',
      (m) => {
        m.source.partitions = 1e9
      },
    ],
    [
      'a zero partition count',
      (m) => {
        m.source.partitions = 0
      },
    ],
    [
      'no source',
      (m) => {
        delete m.source
      },
    ],
    [
      'a topic with a newline',
      (m) => {
        m.source.topic = 'a\nb'
      },
    ],
    [
      'a config value with an escape',
      (m) => {
        m.source.configs = {'retention.ms': '\u001b[2J'}
      },
    ],
    [
      'an unknown timestamp type',
      (m) => {
        m.source.timestampType = 'Whenever'
      },
    ],
    [
      'records that do not add up',
      (m) => {
        m.records += 1
      },
    ],
    [
      'complete with an unfinished partition',
      (m) => {
        m.partitions[0].complete = false
      },
    ],
    [
      'an unknown compression',
      (m) => {
        m.compression = 'zstd'
      },
    ],
    [
      'since as a string',
      (m) => {
        m.bounds.since = 'yesterday'
      },
    ],
  ]

  it('are BACKUP_CORRUPT with one line naming the field, never a TypeError', async () => {
    const c = newCase(complete)
    const original = readJson(join(c.dir, 'manifest.json'))
    for (const [what, change] of malformed) {
      const manifest = structuredClone(original)
      change(manifest)
      writeJson(join(c.dir, 'manifest.json'), manifest)
      await assert.rejects(
        readManifest(c.dir),
        (error: UserError) => {
          assert.ok(error instanceof UserError, `${what}: ${(error as Error).stack}`)
          assert.equal(error.code, 'BACKUP_CORRUPT', what)
          assert.match(error.message, /is not a valid backup manifest: /, what)
          assert.doesNotMatch(error.message + error.fix, /[\n\r\u001b]/, what)
          return true
        },
        what,
      )
    }
  })

  it('a manifest naming partition 7 given to verify --topic is BACKUP_CORRUPT, not a TypeError', async () => {
    const c = newCase(complete)
    const manifest = readJson(join(c.dir, 'manifest.json'))
    manifest.partitions[1].partition = 7
    writeJson(join(c.dir, 'manifest.json'), manifest)
    const verify = await measured(['topic', 'verify', c.dir, '--topic', source])
    expectCorrupt(verify, /partitions\[1\]\.partition is 7, not a whole number from 0 to 1/, 'verify --topic')
  })

  it(
    'a huge manifest is refused after reading no more than the cap, and one that is not JSON is ' + 'BACKUP_CORRUPT',
    async () => {
      const c = newCase(complete)
      const manifest = readFileSync(join(c.dir, 'manifest.json'), 'utf8')
      writeFileSync(join(c.dir, 'manifest.json'), ' '.repeat(MAX_MANIFEST_BYTES) + manifest)
      const huge = await measured(['topic', 'verify', c.dir])
      expectCorrupt(huge, /manifest\.json is larger than 32 MiB, more than any backup manifest/, 'huge')
      expectUserOutcome(huge, 'huge')
      writeFileSync(join(c.dir, 'manifest.json'), manifest.slice(0, 100))
      expectCorrupt(await restoreNever(c.dir), /manifest\.json is not valid JSON/, 'cut short')
    },
  )

  it('--chunk-size has a ceiling, so backup never writes a chunk that restore refuses', async () => {
    const result = await runCli(
      ['topic', 'backup', source, '--to', join(work, 'never-written'), '--chunk-size', String(1 << 30)],
      {timeoutMs: CLI_TIMEOUT},
    )
    assert.equal(result.code, 2, result.stderr)
    assert.ok(isOneLineError(result), result.stderr)
    assert.ok(!existsSync(join(work, 'never-written')))
  })
})

/** mulberry32: a small seeded generator, so every fuzz case can be run again from its seed. */
function generator(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let mixed = state
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1)
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61)
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296
  }
}

const WEIRD_VALUES: unknown[] = [
  -1,
  0,
  1,
  1.5,
  7,
  2 ** 31,
  2 ** 53,
  1e300,
  -1e300,
  '',
  '0',
  'x',
  '\u001b[31m',
  null,
  true,
  [],
  {},
  [0],
  {partition: 0},
]
const FIELDS = [
  'format',
  'version',
  'complete',
  'createdAt',
  'completedAt',
  'records',
  'compression',
  'bounds',
  'bounds.since',
  'bounds.until',
  'source',
  'source.topic',
  'source.partitions',
  'source.configs',
  'source.configsUnavailable',
  'source.timestampType',
  'partitions',
]
const ENTRY_FIELDS = [
  'partition',
  'file',
  'startOffset',
  'endOffset',
  'complete',
  'records',
  'firstOffset',
  'lastOffset',
  'chunks',
  'fileBytes',
  'fileSha256',
  'recordsSha256',
]

/** Applies one random change to a case's manifest, chunk files or file kinds, and says which. */
function mutate(random: () => number, c: Case): string {
  const pick = <T>(list: readonly T[]): T => nth(list, Math.floor(random() * list.length))
  const manifestPath = join(c.dir, 'manifest.json')
  const partition = random() < 0.5 ? 0 : 1
  const chunkPath = join(c.dir, `partition-${partition}.chunks`)
  const fileNames = [
    '../sentinel/stolen.chunks',
    '../sentinel/victim.txt',
    '../sentinel/new.chunks',
    '../../escaped.chunks',
    join(c.sentinel, 'stolen.chunks'),
    '/etc/passwd',
    `partition-${1 - partition}.chunks`,
    `./partition-${partition}.chunks`,
    `partition-${partition}.chunks/`,
    'manifest.json',
    '..',
    '',
    `partition-0${partition}.chunks`,
  ]
  switch (pick(['field', 'entry', 'entries', 'bytes', 'sealed', 'kind', 'text'] as const)) {
    case 'field': {
      const manifest = readJson(manifestPath)
      const path = pick(FIELDS).split('.')
      const holder = path.length === 2 ? manifest[nth(path, 0)] : manifest
      const value = random() < 0.15 ? undefined : pick(WEIRD_VALUES)
      if (value === undefined) delete holder[path.at(-1)!]
      else holder[path.at(-1)!] = value
      writeJson(manifestPath, manifest)
      return `manifest ${path.join('.')} = ${JSON.stringify(value)}`
    }
    case 'entry': {
      const manifest = readJson(manifestPath)
      const field = pick(ENTRY_FIELDS)
      const value = field === 'file' ? pick(fileNames) : random() < 0.15 ? undefined : pick(WEIRD_VALUES)
      if (value === undefined) delete manifest.partitions[partition][field]
      else manifest.partitions[partition][field] = value
      writeJson(manifestPath, manifest)
      return `manifest partitions[${partition}].${field} = ${JSON.stringify(value)}`
    }
    case 'entries': {
      const manifest = readJson(manifestPath)
      const how = pick(['duplicate', 'drop', 'swap', 'extra'] as const)
      if (how === 'duplicate') manifest.partitions[1] = manifest.partitions[0]
      if (how === 'drop') manifest.partitions.splice(partition, 1)
      if (how === 'swap') [manifest.partitions[0].partition, manifest.partitions[1].partition] = [1, 0]
      if (how === 'extra')
        manifest.partitions.push({...manifest.partitions[0], partition: 2, file: 'partition-2.chunks'})
      writeJson(manifestPath, manifest)
      return `manifest partitions ${how}`
    }
    case 'bytes': {
      const bytes = readFileSync(chunkPath)
      const how = pick(['flip', 'truncate', 'append', 'empty'] as const)
      if (how === 'flip')
        for (let count = 1 + Math.floor(random() * 4); count > 0; count--) {
          // An empty file stays empty: a Buffer ignores a write past its end.
          const index = Math.floor(random() * bytes.length)
          bytes[index] = (bytes[index] ?? 0) ^ (1 << Math.floor(random() * 8))
        }
      const changed =
        how === 'truncate'
          ? bytes.subarray(0, Math.floor(random() * bytes.length))
          : how === 'append'
            ? Buffer.concat([
                bytes,
                Buffer.from(Array.from({length: 1 + Math.floor(random() * 200)}, () => Math.floor(random() * 256))),
              ])
            : how === 'empty'
              ? Buffer.alloc(0)
              : bytes
      writeFileSync(chunkPath, changed)
      if (random() < 0.5) resealFile(c.dir, partition)
      return `partition ${partition} bytes ${how}`
    }
    case 'sealed': {
      const chunks = parseChunks(readFileSync(chunkPath))
      if (chunks.length === 0) return 'nothing to change'
      const index = Math.floor(random() * chunks.length)
      const chunk = nth(chunks, index)
      const how = pick(['records', 'uncompressed', 'first', 'last', 'frames', 'garbage', 'bomb', 'reorder'] as const)
      if (how === 'records') chunk.records = pick([0, chunk.records - 1, chunk.records + 1, 0xffffffff])
      if (how === 'uncompressed')
        chunk.uncompressed = pick([0, 30, chunk.uncompressed - 1, chunk.uncompressed + 1, 0x7fffffff])
      if (how === 'first') chunk.first = pick([-1, chunk.first + 1, chunk.last + 1, 2 ** 62])
      if (how === 'last') chunk.last = pick([-1, chunk.last - 1, chunk.last + 1, 2 ** 62])
      if (how === 'frames') {
        const frames = gunzipSync(chunk.payload)
        for (let count = 1 + Math.floor(random() * 3); count > 0; count--) {
          const index = Math.floor(random() * frames.length)
          frames[index] = (frames[index] ?? 0) ^ 0xff
        }
        chunk.payload = gzipSync(frames)
      }
      if (how === 'garbage') chunk.payload = Buffer.from(Array.from({length: 64}, () => Math.floor(random() * 256)))
      if (how === 'bomb') {
        chunk.payload = bombPayload(pick([32, 128, 512]))
        chunk.uncompressed = pick([30, chunk.uncompressed])
      }
      if (how === 'reorder' && chunks.length > 1) chunks.push(chunks.shift()!)
      writeFileSync(chunkPath, Buffer.concat(chunks.map(sealedChunk)))
      if (random() < 0.8) resealFile(c.dir, partition)
      return `partition ${partition} chunk ${index} ${how} (sealed)`
    }
    case 'kind': {
      const how = pick([
        'link-out',
        'link-missing',
        'link-dev',
        'fifo',
        'directory',
        'hard-link',
        'manifest-link',
        'tmp-link',
        'tmp-directory',
      ] as const)
      if (how === 'manifest-link') {
        cpSync(manifestPath, join(c.sentinel, 'manifest-copy.json'))
        rmSync(manifestPath)
        symlinkSync('../sentinel/manifest-copy.json', manifestPath)
      } else if (how === 'tmp-link') {
        symlinkSync('../sentinel/victim.txt', `${manifestPath}.tmp`)
      } else if (how === 'tmp-directory') {
        mkdirSync(`${manifestPath}.tmp`)
      } else {
        rmSync(chunkPath)
        if (how === 'link-out') symlinkSync('../sentinel/stolen.chunks', chunkPath)
        if (how === 'link-missing') symlinkSync('../sentinel/nothing-here', chunkPath)
        if (how === 'link-dev') symlinkSync('/dev/zero', chunkPath)
        if (how === 'fifo') execFileSync('mkfifo', [chunkPath])
        if (how === 'directory') mkdirSync(chunkPath)
        if (how === 'hard-link') linkSync(join(c.sentinel, 'stolen.chunks'), chunkPath)
      }
      return `partition ${partition} file ${how}`
    }
    case 'text': {
      const how = pick(['garbage', 'cut', 'null', 'deep', 'string'] as const)
      const text = readFileSync(manifestPath, 'utf8')
      writeFileSync(
        manifestPath,
        how === 'garbage'
          ? Buffer.from(Array.from({length: 300}, () => Math.floor(random() * 256)))
          : how === 'cut'
            ? text.slice(0, Math.floor(random() * text.length))
            : how === 'null'
              ? 'null'
              : how === 'deep'
                ? '['.repeat(100_000) + ']'.repeat(100_000)
                : JSON.stringify(text),
      )
      return `manifest text ${how}`
    }
  }
}

/** An in-process outcome: success or a user error in one line; anything else fails the case. */
async function userOutcome(what: string, work: () => Promise<unknown>): Promise<string> {
  try {
    await work()
    return 'ok'
  } catch (error) {
    assert.ok(error instanceof UserError, `${what}: ${(error as Error).stack}`)
    assert.ok(
      ['BACKUP_CORRUPT', 'BACKUP_INCOMPLETE', 'INVALID_ARGUMENT', 'BACKUP_DIR_CONFLICT'].includes(error.code),
      `${what}: ${error.code} ${error.message}`,
    )
    assert.doesNotMatch(`${error.message} ${error.fix}`, /[\n\r\u001b]/, what)
    return error.code
  }
}

describe('fuzz: mutated manifests, chunk files and file kinds', () => {
  it(
    'verify and restore (in-process, 160 seeds): user errors only, nothing outside touched, no ' + 'target created',
    async (t) => {
      const outcomes = new Map<string, number>()
      const rssBefore = process.memoryUsage().rss
      let rssPeak = rssBefore
      for (let seed = 1; seed <= 160; seed++) {
        const random = generator(seed)
        const c = newCase(complete)
        let what = `seed ${seed}: ${mutate(random, c)}`
        if (random() < 0.3) {
          // A second change, where the first left something it can still parse.
          try {
            what += `; ${mutate(random, c)}`
          } catch {
            what += '; (no second change)'
          }
        }
        const before = outside(c)
        const verified = await userOutcome(what, () => verifyBackup(settings, {dir: c.dir}))
        if (verified !== 'ok') {
          const target = uniqueName('bkc_never')
          never.push(target)
          const restored = await userOutcome(what, () =>
            restoreTopic(settings, {dir: c.dir, topic: target, partitions: 'same', configs: [], force: false}),
          )
          assert.equal(restored, verified, `${what}: restore refuses what verify refuses`)
        }
        assert.equal(outside(c), before, `${what}: nothing outside the directory changed`)
        outcomes.set(verified, (outcomes.get(verified) ?? 0) + 1)
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
        rmSync(c.root, {recursive: true, force: true})
      }
      t.diagnostic(
        `outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; test process RSS ` +
          `${(rssBefore / 2 ** 20).toFixed(0)}` +
          ` -> peak ${(rssPeak / 2 ** 20).toFixed(0)} MB`,
      )
      assert.ok(rssPeak - rssBefore < MAX_RSS_MB * 2 ** 20, 'memory stayed bounded across the cases')
      assert.ok((outcomes.get('BACKUP_CORRUPT') ?? 0) > 80, 'most mutations are caught as corrupt')
    },
  )

  it(
    'backup continuing an unfinished manifest (in-process, 24 seeds): user errors only, nothing ' + 'outside touched',
    async () => {
      for (let seed = 1001; seed <= 1024; seed++) {
        const random = generator(seed)
        const c = newCase(unfinished)
        const what = `seed ${seed}: ${mutate(random, c)}`
        const before = outside(c)
        await userOutcome(what, () =>
          backupTopic(settings, {topic: source, dir: c.dir, configs: false, chunkBytes: 1024}),
        )
        assert.equal(outside(c), before, `${what}: nothing outside the directory changed`)
        rmSync(c.root, {recursive: true, force: true})
      }
    },
  )

  it(
    'through the CLI (16 seeds over verify, verify --topic, restore and backup continuing): exit 2-6, one line, ' +
      'bounded peak RSS',
    async (t) => {
      let peak = 0
      for (let seed = 2001; seed <= 2016; seed++) {
        const random = generator(seed)
        const command = nth(['verify', 'verify-topic', 'restore', 'backup'] as const, seed % 4)
        const c = newCase(command === 'backup' ? unfinished : complete)
        const what = `seed ${seed} ${command}: ${mutate(random, c)}`
        const before = outside(c)
        const target = uniqueName('bkc_cli')
        const args =
          command === 'verify'
            ? ['topic', 'verify', c.dir]
            : command === 'verify-topic'
              ? ['topic', 'verify', c.dir, '--topic', source]
              : command === 'restore'
                ? ['topic', 'restore', c.dir, '--topic', target]
                : ['topic', 'backup', source, '--to', c.dir, '--no-configs', '--chunk-size', '1024']
        const result = await measured(args)
        expectUserOutcome(result, what)
        if (command === 'restore') (result.code === 0 ? created : never).push(target)
        assert.equal(outside(c), before, `${what}: nothing outside the directory changed`)
        peak = Math.max(peak, result.peakMb)
        rmSync(c.root, {recursive: true, force: true})
      }
      t.diagnostic(`highest peak RSS of a CLI case: ${peak.toFixed(0)} MB`)
    },
  )
})
