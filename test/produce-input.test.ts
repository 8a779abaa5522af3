import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {BROKERS, deleteTopics, isOneLineError, nth, runCli, uniqueName} from './helpers.js'

/**
 * `log produce` input handling (issue #6): a file with a bad line writes nothing; from stdin the
 * error names the lines written and how to resume; the fast field scan keys and stamps records as
 * a full parse would; records Kafka refuses are named by line number.
 */
const run = promisify(execFile)
const created: string[] = []
const dir = mkdtempSync(join(tmpdir(), 'produce-input-'))

async function createTopic(prefix: string, extra: string[] = []): Promise<string> {
  const topic = uniqueName(prefix)
  const result = await runCli(['topic', 'create', topic, '--partitions', '1', '--json', ...extra])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

async function records(topic: string): Promise<string[]> {
  const {stdout} = await run('kcat', ['-b', BROKERS, '-C', '-t', topic, '-e', '-q', '-f', '%k|%T|%s\n'], {
    maxBuffer: 64 << 20,
  })
  return stdout.split('\n').filter(Boolean)
}

after(async () => {
  await deleteTopics(created)
  rmSync(dir, {recursive: true, force: true})
})

const lines = (count: number) =>
  Array.from({length: count}, (_, index) => JSON.stringify({webhook_id: `w${index % 3}`, n: index + 1}))

describe('log produce input', () => {
  it('--file with a bad line anywhere writes nothing and names the line', async () => {
    const topic = await createTopic('pfile')
    const file = join(dir, 'bad.ndjson')
    const input = lines(50)
    input[44] = '{"webhook_id": "w1", "n": 45'
    writeFileSync(file, input.join('\n') + '\n')
    const result = await runCli(['log', 'produce', '-t', topic, '-f', file])
    assert.equal(result.code, 2, result.stderr)
    assert.ok(isOneLineError(result), result.stderr)
    assert.match(result.stderr, /line 45 of .*bad\.ndjson is not valid JSON.*nothing was written/)
    assert.deepEqual(await records(topic), [])

    const missingKey = lines(10)
    missingKey[9] = '{"n": 10}'
    writeFileSync(file, missingKey.join('\n') + '\n')
    const noKey = await runCli(['log', 'produce', '-t', topic, '-f', file])
    assert.equal(noKey.code, 2)
    assert.match(noKey.stderr, /line 10 of .* has no webhook_id field.*nothing was written/)
    assert.deepEqual(await records(topic), [])

    writeFileSync(file, lines(50).join('\r\n') + '\r\n\n')
    const good = await runCli(['log', 'produce', '-t', topic, '-f', file, '--json'])
    assert.equal(good.code, 0, good.stderr)
    assert.equal(good.json.events, 50)
    assert.deepEqual(
      (await records(topic)).map((line) => line.split('|')[2]),
      lines(50),
    )
  })

  it('--file checked by two threads (large) writes nothing for a bad line in either part', async () => {
    const topic = await createTopic('psplit')
    const file = join(dir, 'split.ndjson')
    // ~6 MB (checked in two parts from 4 MB on), with blank lines in the first part so the second
    // part's line numbers depend on counting them.
    const base = Date.now() - 3_600_000
    const count = 40_000
    const padding = 'x'.repeat(120)
    const input = Array.from({length: count}, (_, index) =>
      JSON.stringify({webhook_id: `w${index % 7}`, ts: base + index, padding}),
    )
    input[10] = ''
    input[11] = '  '
    const badAt = (line: number, text: string) => input.map((value, index) => (index === line - 1 ? text : value))

    writeFileSync(file, badAt(35_000, '{"ts": 1}').join('\n') + '\n')
    const second = await runCli(['log', 'produce', '-t', topic, '-f', file, '--timestamp-field', 'ts'])
    assert.equal(second.code, 2, second.stderr)
    assert.ok(isOneLineError(second), second.stderr)
    assert.match(second.stderr, /line 35000 of .*split\.ndjson has no webhook_id field.*nothing was written/)

    const both = badAt(35_000, '{"ts": 1}')
    both[4_999] = '[1]'
    writeFileSync(file, both.join('\n') + '\n')
    const first = await runCli(['log', 'produce', '-t', topic, '-f', file, '--timestamp-field', 'ts'])
    assert.equal(first.code, 2, first.stderr)
    assert.match(first.stderr, /line 5000 of .*split\.ndjson is not a JSON object.*nothing was written/)
    assert.deepEqual(await records(topic), [])

    writeFileSync(file, input.join('\n'))
    const good = await runCli(['log', 'produce', '-t', topic, '-f', file, '--timestamp-field', 'ts', '--json'])
    assert.equal(good.code, 0, good.stderr)
    assert.equal(good.json.events, count - 2)
    const expected = input
      .filter((line) => line.trim())
      .map((line) => {
        const event = JSON.parse(line) as {webhook_id: string; ts: number}
        return [event.webhook_id, String(event.ts)]
      })
    assert.deepEqual(
      (await records(topic)).map((line) => line.split('|').slice(0, 2)),
      expected,
    )
  })

  it('from stdin says which lines were written and how to resume after the bad one', async () => {
    const topic = await createTopic('pstdin')
    const input = lines(60)
    input[41] = 'not json at all'
    const text = input.join('\n') + '\n'
    const result = await runCli(['log', 'produce', '-t', topic], {input: text})
    assert.equal(result.code, 2)
    assert.ok(isOneLineError(result), result.stderr)
    assert.match(
      result.stderr,
      /line 42 of stdin is not valid JSON .*the 41 events before it were written \(lines 1-41\)/,
    )
    assert.match(result.stderr, /--skip-lines 41 .*--skip-lines 42 .*tail -n \+43/)
    assert.equal((await records(topic)).length, 41)

    const resumed = await runCli(['log', 'produce', '-t', topic, '--skip-lines', '42', '--json'], {input: text})
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.equal(resumed.json.events, 18)
    const {stdout: tailed} = await run('bash', ['-c', `printf '%s' "$0" | tail -n +43 | wc -l`, text])
    assert.equal(Number(tailed.trim()), 18)
    assert.deepEqual(
      (await records(topic)).map((line) => JSON.parse(nth(line.split('|'), 2)).n),
      [...Array.from({length: 41}, (_, i) => i + 1), ...Array.from({length: 18}, (_, i) => i + 43)],
    )
  })

  it('keys and stamps records exactly as a full parse would (escapes, numbers, nested paths, repeats)', async () => {
    const topic = await createTopic('pfast')
    const base = Date.now() - 3_600_000
    const input = [
      `{"webhook_id":"plain","ts":${base}}`,
      `{"webhook_id":"esc\\"aped\\u00e9","ts":${base + 1}}`,
      `{"ts":"${new Date(base + 2).toISOString()}","webhook_id":12345}`,
      `{"webhook_id":"first","webhook_id":"last","ts":${base + 3},"ts":${base + 4}}`,
      `{"nested":{"webhook_id":"inner","ts":1},"webhook_id":"outer","ts":${base + 5}}`,
      ` { "webhook_id" : "spaced" , "ts" : ${base + 6} } `,
    ]
    const result = await runCli(['log', 'produce', '-t', topic, '--timestamp-field', 'ts'], {
      input: input.join('\n') + '\n',
    })
    assert.equal(result.code, 0, result.stderr)
    const written = (await records(topic)).map((line) => line.split('|').slice(0, 2))
    assert.deepEqual(written, [
      ['plain', String(base)],
      ['esc"apedé', String(base + 1)],
      ['12345', String(base + 2)],
      ['last', String(base + 4)],
      ['outer', String(base + 5)],
      ['spaced', String(base + 6)],
    ])

    const nestedTopic = await createTopic('pnest')
    const nested = await runCli(
      ['log', 'produce', '-t', nestedTopic, '--key-field', 'user.id', '--timestamp-field', 'meta.ts'],
      {
        input: `{"user":{"id":"u1"},"meta":{"ts":${base}}}\n{"user":{"id":7},"meta":{"ts":${base + 1}}}\n`,
      },
    )
    assert.equal(nested.code, 0, nested.stderr)
    assert.deepEqual(
      (await records(nestedTopic)).map((line) => line.split('|').slice(0, 2)),
      [
        ['u1', String(base)],
        ['7', String(base + 1)],
      ],
    )
  })

  it('names the lines of records Kafka refuses', async () => {
    // The broker refuses batches over the topic's max.message.bytes; incompressible values make
    // lines 3 and 5 too large on their own.
    const topic = await createTopic('prefuse', ['--config', 'max.message.bytes=2000'])
    const big = (n: number) =>
      JSON.stringify({
        webhook_id: 'w',
        n,
        pad: Array.from({length: 400}, (_, index) => ((index * 2654435761 + n * 97) >>> 0).toString(36)).join(''),
      })
    const input = [
      JSON.stringify({webhook_id: 'w', n: 1}),
      JSON.stringify({webhook_id: 'w', n: 2}),
      big(3),
      JSON.stringify({webhook_id: 'w', n: 4}),
      big(5),
    ]
    const file = join(dir, 'big.ndjson')
    writeFileSync(file, input.join('\n') + '\n')
    const result = await runCli(['log', 'produce', '-t', topic, '-f', file])
    assert.notEqual(result.code, 0)
    assert.ok(isOneLineError(result), result.stderr)
    const failed = /failed lines: ([\d, -]+)/.exec(result.stderr)
    assert.ok(failed, result.stderr)
    const failedLines = nth(failed, 1)
      .split(', ')
      .flatMap((range) => {
        const [from, to] = range.split('-').map(Number)
        return Array.from({length: (to ?? from!) - from! + 1}, (_, index) => from! + index)
      })
    assert.ok(failedLines.includes(3) && failedLines.includes(5), result.stderr)
    // Every line is either acknowledged (readable) or named as failed, never both.
    const written = (await records(topic)).map((line) => JSON.parse(nth(line.split('|'), 2)).n as number)
    assert.deepEqual([...written, ...failedLines].sort(), [1, 2, 3, 4, 5])
  })
})
