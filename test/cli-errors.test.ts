import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {deleteTopics, isOneLineError, runCli, uniqueName} from './helpers.js'

/** Bad input: one clear line on stderr, the documented exit code, nothing written. */
const topic = uniqueName('errs')
after(async () => deleteTopics([topic]))

async function expectError(
  args: string[],
  exitCode: number,
  pattern: RegExp,
  options: Parameters<typeof runCli>[1] = {},
) {
  const result = await runCli(args, options)
  assert.equal(result.code, exitCode, `${args.join(' ')}: ${result.stderr}`)
  assert.ok(isOneLineError(result), `one line without a stack for ${args.join(' ')}:\n${result.stderr}`)
  assert.match(result.stderr, pattern)
  assert.equal(result.stdout, '')
  return result
}

describe('bad input', () => {
  it('unknown topics are NOT_FOUND (3) for every command that names one', async () => {
    const missing = uniqueName('missing')
    await expectError(['topic', 'describe', missing], 3, /topic '.*' does not exist: list topics with/)
    await expectError(['log', 'seek', '-t', missing, '--since', '1h'], 3, /does not exist/)
    await expectError(['log', 'read', '-t', missing], 3, /does not exist/)
    await expectError(['log', 'partition-for', 'k', '--topic', missing], 3, /does not exist/)
    await expectError(['log', 'produce', '-t', missing], 3, /does not exist/, {input: '{"webhook_id":"a"}\n'})
  })

  it('bad times name the flag and the accepted forms', async () => {
    await expectError(
      ['log', 'seek', '-t', 'delivery_log', '--since', 'yesterday'],
      2,
      /invalid --since 'yesterday': use ISO 8601/,
    )
    await expectError(['log', 'read', '-t', 'delivery_log', '--until', '2026-02-30'], 2, /invalid --until/)
    await expectError(
      ['log', 'seek', '-t', 'delivery_log', '--since', '1h', '--until', '2h'],
      2,
      /--until .* is before --since/,
    )
  })

  it('partition counts below 1 are refused before anything is written', async () => {
    await expectError(['log', 'partition-for', 'k', '--partitions', '0'], 2, /positive whole number/)
    await expectError(['log', 'partition-for', 'k', '--partitions', '-4'], 2, /./)
    await expectError(
      ['topic', 'create', topic, '--partitions', '0'],
      2,
      /--partitions must be a positive whole number/,
    )
    const list = await runCli(['topic', 'list', '--json'])
    assert.ok(!list.json.some((entry: {topic: string}) => entry.topic === topic), 'no topic was created')
    await expectError(['log', 'partition-for', 'k'], 2, /partition count is unknown: pass --partitions N/)
  })

  it('illegal names, duplicate topics, unknown flags and options', async () => {
    await expectError(['topic', 'create', 'bad name!', '--partitions', '1'], 2, /not a legal topic name/)
    assert.equal((await runCli(['topic', 'create', topic, '--partitions', '1'])).code, 0)
    await expectError(['topic', 'create', topic, '--partitions', '1'], 4, /already exists: pass --if-not-exists/)
    assert.equal((await runCli(['topic', 'create', topic, '--partitions', '1', '--if-not-exists'])).code, 0)
    await expectError(['topic', 'list', '--bogus'], 2, /unknown flag '--bogus': see `replayctl topic list --help`/)
    await expectError(
      ['topic', 'create', 'x', '--partitions', '1', '--compression', 'brotli'],
      2,
      /--compression 'brotli' is not one of snappy, lz4, zstd, gzip, none/,
    )
    await expectError(['log', 'read', '-t', topic, '--max', '0'], 2, /--max must be 1 or more/)
    await expectError(['log', 'read', '-t', topic, '--partition', '9'], 3, /has no partition 9/)
  })

  it('usage errors name the flag or argument and what was expected, for every command', async () => {
    // A missing required flag names it (all of them, when several are missing).
    await expectError(
      ['replay', 'submit'],
      2,
      /^replayctl: error: missing required flags --from, --to, --webhook-id: see `replayctl replay submit --help`$/m,
    )
    await expectError(['replay', 'submit', '--webhook-id', 'w', '--from', '1h'], 2, /missing required flag --to: /)
    await expectError(['webhook', 'add', 'w'], 2, /missing required flag --url: see `replayctl webhook add --help`/)
    await expectError(['log', 'seek', '--since', '1h'], 2, /missing required flag --topic/)
    // A whole number flag given something else: the flag, the value, what was expected.
    await expectError(
      ['log', 'partition-for', 'k', '--partitions', 'abc'],
      2,
      /--partitions expects a whole number, got 'abc': pass --partitions N; see `replayctl log partition-for --help`/,
    )
    await expectError(['log', 'partition-for', 'k', '-n', '1.5'], 2, /--partitions expects a whole number, got '1\.5'/)
    await expectError(
      ['topic', 'create', topic, '--partitions', 'twelve'],
      2,
      /--partitions expects a whole number, got 'twelve'/,
    )
    await expectError(['log', 'read', '-t', topic, '--max', 'zz'], 2, /--max expects a whole number, got 'zz'/)
    await expectError(
      ['replay', 'worker', '--concurrency', '0'],
      2,
      /--concurrency expects a whole number >= 1, got '0'/,
    )
    await expectError(
      ['replay', 'status', '7', '--interval', '-1'],
      2,
      /--interval expects a whole number >= 1, got '-1'/,
    )
    // Arguments: missing, or one too many.
    await expectError(['replay', 'status'], 2, /missing required argument <id>: see `replayctl replay status --help`/)
    await expectError(['log', 'partition-for'], 2, /missing required argument <key>/)
    await expectError(['replay', 'status', '1', '2'], 2, /unexpected argument '2': remove it/)
    // Words after a command that takes no arguments, and unknown commands.
    await expectError(
      ['topic', 'list', 'extra'],
      2,
      /unexpected argument 'extra': `replayctl topic list` takes none: see `replayctl topic list --help`/,
    )
    await expectError(['db', 'status', 'a', 'b'], 2, /unexpected arguments 'a', 'b': `replayctl db status` takes none/)
    await expectError(
      ['replay', 'bogus'],
      2,
      /unknown command 'replay bogus': `replayctl replay` has cancel, list, retry, status, submit, worker/,
    )
    await expectError(['bogus'], 2, /unknown command 'bogus': see `replayctl --help` for the commands/)
    const unknown = await runCli(['replay', 'bogus', '--json'])
    assert.equal(unknown.code, 2)
    assert.equal(unknown.json.error.code, 'INVALID_ARGUMENT')
    assert.equal(unknown.stderr, '')
    // Flags that exclude each other, a flag without its value.
    await expectError(
      ['log', 'partition-for', 'k', '--partitions', '3', '--topic', topic],
      2,
      /--topic=.* cannot also be provided when using --partitions/,
    )
    await expectError(['log', 'read', '-t', topic, '--max'], 2, /Flag --max expects a value/)
    // Under --json: the same message as a JSON error, nothing on stderr.
    const json = await runCli(['replay', 'submit', '--webhook-id', 'w', '--json'])
    assert.equal(json.code, 2)
    assert.deepEqual(json.json.error, {
      code: 'INVALID_ARGUMENT',
      message: 'missing required flags --from, --to',
      fix: 'see `replayctl replay submit --help`',
      exitCode: 2,
    })
    assert.equal(json.stderr, '')
  })

  it('an unreachable broker is UNAVAILABLE (5), promptly', async () => {
    const started = Date.now()
    await expectError(
      ['topic', 'list', '--brokers', '127.0.0.1:1', '--timeout', '2s'],
      5,
      /cannot reach Kafka at 127\.0\.0\.1:1/,
    )
    assert.ok(Date.now() - started < 15_000)
    const json = await runCli(['topic', 'list', '--brokers', '127.0.0.1:1', '--timeout', '2s', '--json'])
    assert.equal(json.code, 5)
    assert.equal(json.json.error.code, 'KAFKA_UNAVAILABLE')
  })

  it('malformed -X and unknown librdkafka properties are usage errors', async () => {
    await expectError(
      ['topic', 'list', '-X', 'novalue'],
      2,
      /malformed -X 'novalue': pass librdkafka properties as -X key=value/,
    )
    await expectError(['topic', 'list', '-X', 'no.such.property=1'], 2, /librdkafka refused the client configuration/)
  })

  it('config contexts: unknown names and broken files are explained', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'replayctl-'))
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({currentContext: 'dc1', contexts: {dc1: {brokers: '127.0.0.1:9092'}}}))
    const ok = await runCli(['topic', 'list', '--json'], {env: {REPLAYCTL_CONFIG: config, REPLAYCTL_BROKERS: ''}})
    assert.equal(ok.code, 0, ok.stderr)
    await expectError(['topic', 'list', '--context', 'dc9'], 3, /no context 'dc9' .*use one of: dc1/, {
      env: {REPLAYCTL_CONFIG: config},
    })
    writeFileSync(config, '{not json')
    await expectError(['topic', 'list'], 2, /is not valid JSON/, {env: {REPLAYCTL_CONFIG: config}})
  })

  it('produce refuses an unreadable file', async () => {
    await expectError(['log', 'produce', '-t', topic, '--file', '/nonexistent/events.ndjson'], 2, /cannot read --file/)
  })
})
