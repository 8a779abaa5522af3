import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Chalk} from 'chalk'

import {type Detail, details, displayWidth, fit, formatCount, formatDuration, table, wrap} from '../src/cli/output.js'
import {outputInArgv} from '../src/cli/base-command.js'
import {openPool, type Pool} from '../src/core/db/database.js'
import {submitJob} from '../src/core/replay/store/jobs/index.js'
import {connectAdmin, loadNative, type Consumer} from '../src/core/kafka/client.js'
import {DEFAULT_SCHEMA_REGISTRY_URL} from '../src/core/shared/settings.js'
import {BIN, BROKERS, type CliResult, deleteTopics, nth, runCli, testSettings, uniqueName} from './helpers.js'

/**
 * Tables fit the terminal (README "Output"): the renderer on its own, then every command that
 * prints a table run through the real CLI with COLUMNS=80 (the width a pipe otherwise lacks), with
 * values long enough to overflow it; --wide and a pipe without COLUMNS show the full values.
 */
const WIDTH = 80
const topic = uniqueName('tables_topic_with_a_rather_long_name_for_the_test')
const group = uniqueName('tables-group')
const DATABASE = uniqueName('tables')
const MYSQL = `mysql://root@127.0.0.1:3306/${DATABASE}`
const LONG_URL = `https://receiver.example.com/hooks/replay/${'segment/'.repeat(8)}end?token=abc`
const WEBHOOK = `webhook-with-a-long-id-${'x'.repeat(30)}`
const LONG_ERROR = `receiver answered 503 Service Unavailable: ${'upstream timed out; '.repeat(8)}the end`
const BODY_END = 'END-OF-A-LONG-BODY'
const KEY = `key-${'k'.repeat(60)}`
const REGISTRY = process.env.REPLAYCTL_SCHEMA_REGISTRY_URL ?? DEFAULT_SCHEMA_REGISTRY_URL
const SUBJECT = `${uniqueName('tables')}-a-subject-with-a-rather-long-name-for-the-registry-and-its-topic-value`
const work = mkdtempSync(join(tmpdir(), 'tables-'))
/** Topics and groups the tests below create besides the shared ones, removed in after(). */
const extraTopics: string[] = []
const extraGroups: string[] = []
let pool: Pool | undefined
let member: Consumer | undefined

const env = {REPLAYCTL_MYSQL_URL: MYSQL, REPLAYCTL_SCHEMA_REGISTRY_URL: REGISTRY}
const at80 = (args: string[]) => runCli(args, {env: {...env, COLUMNS: String(WIDTH)}, timeoutMs: 120_000})

function assertFits(result: CliResult, output = result.stdout): void {
  assert.equal(result.code, 0, result.stderr)
  const lines = output.split('\n')
  const wide = lines.filter((line) => displayWidth(line) > WIDTH)
  assert.deepEqual(wide, [], `lines wider than ${WIDTH}:\n${output}`)
}

before(async () => {
  const created = await runCli(['topic', 'create', topic, '--partitions', '12', '--json'])
  assert.equal(created.code, 0, created.stderr)
  const events = Array.from({length: 24}, (_, index) =>
    JSON.stringify({webhook_id: `${KEY}${index}`, n: index, text: '日本語のテキスト '.repeat(12), tail: BODY_END}),
  )
  const produced = await runCli(['log', 'produce', '-t', topic, '-H', `trace=${'t'.repeat(40)}`, '--json'], {
    input: `${events.join('\n')}\n`,
  })
  assert.equal(produced.code, 0, produced.stderr)

  const migrated = await runCli(['db', 'migrate', '--json'], {env})
  assert.equal(migrated.code, 0, migrated.stderr)
  const added = await runCli(
    [
      'webhook',
      'add',
      WEBHOOK,
      '--url',
      LONG_URL,
      '--secret',
      'a-secret-of-at-least-32-characters-long',
      '--skip-crc-check',
      '--json',
    ],
    {env},
  )
  assert.equal(added.code, 0, added.stderr)
  pool = await openPool(MYSQL)
  const job = await submitJob(pool, {webhookId: WEBHOOK, topic, fromMs: Date.now() - 3_600_000, toMs: Date.now()})
  await pool.query('UPDATE replay_jobs SET last_error = ?, owner = ? WHERE id = ?', [
    LONG_ERROR,
    `worker-${'o'.repeat(40)}`,
    job.id,
  ])

  // A group with a member: its member id, host and client make `group lag` the widest table.
  const native = await loadNative()
  member = new native.KafkaConsumer(
    {
      'bootstrap.servers': BROKERS,
      'group.id': group,
      'client.id': `tables-test-client-${'c'.repeat(30)}`,
      'enable.auto.commit': false,
      log_level: 0,
    },
    {'auto.offset.reset': 'earliest'},
  )
  await new Promise<void>((resolve, reject) => member!.connect({}, (error) => (error ? reject(error) : resolve())))
  member.subscribe([topic])
  const deadline = Date.now() + 60_000
  while (member.assignments().length < 12 && Date.now() < deadline)
    await new Promise((resolve) => member!.consume(1, () => resolve(undefined)))
  member.commitSync([{topic, partition: 0, offset: 1}])
})

after(async () => {
  if (member?.isConnected()) await new Promise<void>((resolve) => member!.disconnect(() => resolve()))
  await pool?.query(`DROP DATABASE IF EXISTS \`${DATABASE}\``)
  await pool?.end()
  await deleteTopics([topic, ...extraTopics])
  const admin = await connectAdmin(testSettings())
  await new Promise((resolve) => admin.deleteGroups([group, ...extraGroups], {timeout: 10_000}, resolve))
  admin.disconnect()
  rmSync(work, {recursive: true, force: true})
  // The registry's own API, soft then hard delete as Confluent asks.
  await fetch(`${REGISTRY}/subjects/${SUBJECT}`, {method: 'DELETE'}).catch(() => undefined)
  await fetch(`${REGISTRY}/subjects/${SUBJECT}?permanent=true`, {method: 'DELETE'}).catch(() => undefined)
})

describe('the table renderer', () => {
  const head = [
    {title: 'id', cut: 'middle' as const},
    {title: 'note', drop: 1},
    {title: 'body', cut: 'end' as const},
  ]
  const rows = [[`id-${'i'.repeat(40)}-tail`, 'dropped first', `{"text":"${'日本'.repeat(40)}"} ${BODY_END}`]]

  it('is compact: a header, a separator and one line per row, columns padded to their content', () => {
    const lines = table(
      ['a', 'bb'],
      [
        ['1', 'x'],
        ['22', 'y'],
        [null, 'z'],
      ],
      {width: 80},
    ).split('\n')
    assert.deepEqual(lines, ['a   bb', '--  --', '1   x', '22  y', '-   z'])
  })

  it('fits the width: cuts ids in the middle and bodies at the end, drops the least useful columns, says so', () => {
    const text = table(head, rows, {width: 40})
    for (const line of text.split('\n')) assert.ok(displayWidth(line) <= 40, `${line} (${displayWidth(line)})`)
    const [, , row, note] = text.split('\n')
    assert.match(row!, /^id-i+…i*-tail/)
    assert.match(row!, /\{"text":"日本.*…$/)
    assert.ok(!text.includes('dropped first'))
    assert.match(note!, /note not shown: --wide/)
  })

  it('shows everything without a width limit', () => {
    const text = table(head, rows, {width: Number.POSITIVE_INFINITY})
    assert.ok(
      text.includes(nth(nth(rows, 0), 0)) && text.includes(nth(nth(rows, 0), 2)) && text.includes('dropped first'),
    )
    assert.ok(!text.includes('…'))
  })

  it('measures colour codes as nothing and East Asian characters as two columns', () => {
    const red = new Chalk({level: 1}).red('failed')
    assert.equal(displayWidth(red), 6)
    assert.equal(displayWidth('日本語'), 6)
    assert.equal(displayWidth(fit('日本語のテキスト', 7, 'end')), 7)
    assert.equal(fit(red, 4, 'end'), 'fai…')
    const lines = table(['state', 'x'], [[red, 'y']], {width: 80}).split('\n')
    assert.equal(displayWidth(nth(lines, 0)), displayWidth(nth(lines, 2)))
  })

  it('keeps to a width too narrow for any column', () => {
    for (const line of table(['partition', 'a long fixed column'], [[1, 'a long fixed value']], {width: 10}).split(
      '\n',
    ))
      assert.ok(displayWidth(line) <= 10, line)
  })
})

describe('the details renderer', () => {
  const pairs = (): Detail[] => [
    ['id', `id-${'i'.repeat(40)}-tail`, 'middle'],
    ['last error', `${'x'.repeat(60)} ${BODY_END}`],
    ['secret', `whsec_${'s'.repeat(60)}`, 'never'],
    ['count', 3],
    ['owner', null],
  ]

  it('aligns the labels and fits each line: ids cut in the middle, errors at the end, a secret never', () => {
    const lines = details(pairs(), {width: 40}).split('\n')
    assert.equal(lines.length, 5)
    const [id, error, secret, count, owner] = lines
    assert.match(id ?? '', /^id {10}id-i+…i*-tail$/)
    assert.match(error ?? '', /^last error {2}x+…$/)
    assert.equal(secret, `secret      whsec_${'s'.repeat(60)}`)
    assert.equal(count, 'count       3')
    assert.equal(owner, 'owner       -')
    for (const line of [id, error, count, owner])
      assert.equal(displayWidth(line ?? ''), Math.min(40, line?.length ?? 0))
  })

  it('shows everything without a width limit, and keeps to a width narrower than its labels', () => {
    const full = details(pairs(), {width: Number.POSITIVE_INFINITY})
    assert.ok(full.includes(BODY_END) && !full.includes('…'))
    for (const line of details([['a rather long label', 'value']], {width: 10}).split('\n'))
      assert.ok(displayWidth(line) <= 10, line)
  })
})

describe('prose', () => {
  it('wraps at spaces, later lines indented, a word wider than the width cut; one line without a limit', () => {
    const text = `warning: ${'word '.repeat(8)}${'x'.repeat(30)} end`
    assert.deepEqual(wrap(text, 20).split('\n'), [
      'warning: word word',
      '  word word word',
      '  word word word',
      `  ${'x'.repeat(17)}…`,
      '  end',
    ])
    assert.equal(wrap(text, Number.POSITIVE_INFINITY), text)
  })
})

describe('-o, as kubectl', () => {
  it('is found in argv in each of its spellings, and not after --', () => {
    for (const argv of [['-o', 'json'], ['-ojson'], ['-o=json'], ['--output', 'json'], ['--output=json']])
      assert.equal(outputInArgv(['topic', 'list', ...argv]), 'json', argv.join(' '))
    assert.equal(outputInArgv(['log', 'partition-for', '--', '-o', 'json']), undefined)
    assert.equal(outputInArgv(['topic', 'list']), undefined)
  })
})

describe('one number and one duration format', () => {
  it('counts and rates have thousands separators and decimals only below 100', () => {
    assert.deepEqual([36_800, 18_263.03, 42.345, 1.234, 0].map(formatCount), ['36,800', '18,263', '42.3', '1.23', '0'])
    const samples = [1_234_567_890, 999.5, 100, 99.96, 10.05, 1.5, 0.1, 0.004, -2_500_000.7, -12.25, 7]
    const byIcu = (n: number) =>
      n.toLocaleString('en-US', {maximumFractionDigits: Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2})
    assert.deepEqual(samples.map(formatCount), samples.map(byIcu))
  })

  it('durations use their two largest units, days from 24 hours', () => {
    assert.deepEqual([350, 42_000, 303_000, 42 * 3_600_000 + 26 * 60_000, 50 * 3_600_000].map(formatDuration), [
      '350ms',
      '42s',
      '5m 3s',
      '1d 18h',
      '2d 2h',
    ])
  })
})

describe('every table fits 80 columns; --wide and pipes show full values', () => {
  it('log read --format table', async () => {
    const read = await at80(['log', 'read', '-t', topic, '--format', 'table'])
    assertFits(read)
    assert.equal(
      read.stdout.split('\n').filter((line) => line.includes('{"webhook_id":')).length,
      24,
      'one line per record',
    )
    assert.ok(!read.stdout.includes(BODY_END))
    for (const full of [
      await at80(['log', 'read', '-t', topic, '--format', 'table', '--wide']),
      await runCli(['log', 'read', '-t', topic, '--format', 'table']),
    ]) {
      assert.equal(full.code, 0, full.stderr)
      assert.ok(
        full.stdout.includes(BODY_END) &&
          full.stdout.includes(`${KEY}0`) &&
          full.stdout.includes(`trace=${'t'.repeat(40)}`),
      )
    }
  })

  it('log search --format table (its scan summary on stderr too)', async () => {
    const search = await at80(['log', 'search', '-t', topic, '--value-contains', BODY_END, '--format', 'table'])
    assertFits(search)
    assertFits(search, search.stderr)
    const wide = await at80(['log', 'search', '-t', topic, '--value-contains', BODY_END, '--format', 'table', '--wide'])
    assert.ok(wide.stdout.includes(BODY_END))
  })

  it('log seek with --until', async () => {
    const seek = await at80(['log', 'seek', '-t', topic, '--since', '1h', '--until', '1m'])
    assertFits(seek)
    assert.match(seek.stdout, /since \S+Z {2}until \S+Z/)
    assert.equal(
      seek.stdout.split('\n').filter((line) => /^\s+\d+\s/.test(line)).length,
      12,
      'one line per partition, no rules between',
    )
  })

  it('group lag with a member, and group list', async () => {
    const lag = await at80(['group', 'lag', group])
    assertFits(lag)
    assert.match(lag.stdout, /not shown: --wide shows every column/)
    const wide = await at80(['group', 'lag', group, '--wide'])
    assert.ok(wide.stdout.includes(`tables-test-client-${'c'.repeat(30)}`))
    assertFits(await at80(['group', 'list']))
  })

  it('details blocks (replay status, topic describe, db status) fit; --wide, -o wide, pipes: whole', async () => {
    const [job] = JSON.parse((await runCli(['replay', 'list', '--json'], {env})).stdout) as {id: number}[]
    assert.ok(job)
    const status = await at80(['replay', 'status', String(job.id)])
    assertFits(status)
    assert.match(status.stdout, new RegExp(`^webhook +${WEBHOOK}$`, 'm'))
    assert.match(status.stdout, /^last error +receiver answered 503 .*…$/m)
    for (const full of [
      await at80(['replay', 'status', String(job.id), '--wide']),
      await at80(['replay', 'status', String(job.id), '-o', 'wide']),
      await runCli(['replay', 'status', String(job.id)], {env}),
    ]) {
      assert.equal(full.code, 0, full.stderr)
      assert.ok(full.stdout.includes(LONG_ERROR) && full.stdout.includes(WEBHOOK), full.stdout)
    }
    // The topic's name is cut in the middle, as names are in tables, and shown whole with -o wide.
    const described = await at80(['topic', 'describe', topic, '--no-configs'])
    assertFits(described)
    assert.match(described.stdout, /^topic +tables_topic_with\S+…\S+$/m)
    const wide = await at80(['topic', 'describe', topic, '--no-configs', '-o', 'wide'])
    assert.match(wide.stdout, new RegExp(`^topic +${topic}$`, 'm'))
    assertFits(await at80(['db', 'status']))
  })

  it('-o json is --json, -o table the default, and --json with -o wide is refused', async () => {
    const args = ['replay', 'list']
    const json = await at80([...args, '-o', 'json'])
    assert.equal(json.code, 0, json.stderr)
    assert.deepEqual(JSON.parse(json.stdout), JSON.parse((await at80([...args, '--json'])).stdout))
    assert.equal((await at80([...args, '-o', 'table'])).stdout, (await at80(args)).stdout)
    const both = await at80([...args, '--json', '-o', 'wide'])
    assert.equal(both.code, 2)
    assert.match(JSON.parse(both.stdout).error.message, /--json and -o wide/)
    const unknown = await at80([...args, '-o', 'yaml'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /--output 'yaml' is not one of table, wide, json/)
  })

  it('webhook list and replay list', async () => {
    const webhooks = await at80(['webhook', 'list'])
    assertFits(webhooks)
    assert.match(webhooks.stdout, /https:\/\/rec\S*…\S*token=abc/)
    assert.ok((await at80(['webhook', 'list', '--wide'])).stdout.includes(LONG_URL))
    const jobs = await at80(['replay', 'list'])
    assertFits(jobs)
    for (const full of [await at80(['replay', 'list', '--wide']), await runCli(['replay', 'list'], {env})]) {
      assert.ok(full.stdout.includes(LONG_ERROR) && full.stdout.includes(WEBHOOK), full.stdout)
    }
  })

  it('topic list and rates (live and history)', async () => {
    assertFits(await at80(['topic', 'list']))
    assertFits(await at80(['topic', 'rates', topic, '--interval', '1s']))
    assertFits(await at80(['topic', 'rates', topic, '--history', '3d', '--bucket', '1h']))
  })

  it('topic rates --watch redraws in place on a terminal and appends otherwise', async () => {
    const watch = ['topic', 'rates', topic, '--interval', '1s', '--watch', '--count', '3']
    const piped = await at80(watch)
    assertFits(piped)
    assert.equal(piped.stdout.match(/ending/g)?.length, 3)
    assert.ok(!piped.stdout.includes('\x1b['), 'no terminal codes in a pipe')
    // util-linux script(1) gives the CLI a terminal and copies what it writes there.
    const command = [process.execPath, BIN, ...watch].map((word) => `'${word}'`).join(' ')
    const onTerminal = await new Promise<string>((resolve, reject) => {
      execFile(
        'script',
        ['-qec', command, '/dev/null'],
        {
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            REPLAYCTL_BROKERS: BROKERS,
            REPLAYCTL_CONFIG: '/nonexistent',
            COLUMNS: String(WIDTH),
            TERM: 'xterm',
          },
          timeout: 120_000,
        },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      )
    })
    const sampleLines = piped.stdout.trimEnd().split('\n').length / 3
    // Each sample after the first first goes back over the lines of the one before and erases them.
    assert.deepEqual(
      onTerminal.match(/\x1b\[\d+F\x1b\[0J/g),
      [`\x1b[${sampleLines}F\x1b[0J`, `\x1b[${sampleLines}F\x1b[0J`],
      JSON.stringify(onTerminal),
    )
  })

  it('cluster status and dev status', async () => {
    assertFits(await at80(['cluster', 'status', '--no-controller']))
    assertFits(await at80(['dev', 'status']))
  })
})

describe('the other commands that print tables or details fit 80 columns too', () => {
  const rows = (output: string, pattern: RegExp) => output.split('\n').filter((line) => pattern.test(line)).length

  it('topic backup, verify and restore: the names in their summaries cut in the middle, whole in full', async () => {
    const dir = join(work, 'a-directory-with-a-rather-long-name-for-backups', `${topic}-backup`)
    const target = `${topic}_restored`
    extraTopics.push(target)
    const backup = await at80(['topic', 'backup', topic, '--to', dir, '--no-configs'])
    assertFits(backup)
    assertFits(backup, backup.stderr)
    assert.match(backup.stdout, /^backed up tables_\w*…\w* into \/\S*…\S*-backup$/m)
    assert.match(backup.stdout, /^records +24$/m)
    assert.equal(rows(backup.stdout, /^\d+ +\d+ +\d+ +\d+ +[\d.]+ (B|KiB)$/), 12, 'one line per partition')
    const again = await at80(['topic', 'backup', topic, '--to', dir, '--no-configs', '--wide'])
    assert.ok(again.stdout.includes(`already complete: ${topic} into ${dir}`), again.stdout)

    const intact = await at80(['topic', 'verify', dir])
    assertFits(intact)
    assertFits(intact, intact.stderr)
    assert.match(intact.stdout, /^the backup of \S+ in \S+ is intact: 24 records in \d+ files$/m)
    assert.ok(intact.stdout.includes('…'))

    const restore = await at80(['topic', 'restore', dir, '--topic', target])
    assertFits(restore)
    assertFits(restore, restore.stderr)
    assert.match(restore.stdout, /^restored 24 records of tables_\w*…\w* into tables_\w*…\w* \(created\)$/m)
    assert.match(restore.stdout, /^partitions +12, each record to its own$/m)
    assert.match(
      restore.stdout.replace(/\n {2}/g, ' '),
      /^note: the backup holds no topic configs .* broker defaults$/m,
    )

    const matches = await at80(['topic', 'verify', dir, '--topic', target])
    assertFits(matches)
    assertFits(matches, matches.stderr)
    assert.equal(rows(matches.stdout, /^\d+ +\d+ +\d+ +[0-9a-f]{16} +yes$/), 12, 'one line per partition')
    assert.match(matches.stdout, /^topic tables_\w*…\w* matches the backup of \S+: 24 records$/m)
    const piped = await runCli(['topic', 'verify', dir, '--topic', target], {env})
    assert.ok(piped.stdout.includes(`topic ${target} matches the backup of ${topic}: 24 records`), piped.stdout)
  })

  it('dev seed: its summary, details and busiest webhooks', async () => {
    const seeded = uniqueName('tables_seed_topic_with_a_rather_long_name_for_the_test')
    extraTopics.push(seeded)
    const args = ['dev', 'seed', '--topic', seeded, '--events', '50', '--webhooks', '5', '--days', '1']
    const seed = await at80([...args, '--partitions', '1'])
    assertFits(seed)
    assertFits(seed, seed.stderr)
    assert.match(seed.stdout, /^seeded tables_seed\w*…\w*: 50 events \(\d+ duplicates?\) for 5 webhooks$/m)
    assert.match(seed.stdout, /^time range +\S+Z \.\. \S+Z$/m)
    assert.match(seed.stdout, /^busiest webhook +events$/m)
    assert.ok(rows(seed.stdout, /^\d+ +\d+$/) > 0, seed.stdout)
  })

  it('group reset-offsets: the plan, and the group named in what was committed', async () => {
    const resetGroup = uniqueName('tables-reset-group-with-a-rather-long-name-for-the-test')
    extraGroups.push(resetGroup)
    const reset = await at80(['group', 'reset-offsets', resetGroup, '--topic', topic, '--to-earliest'])
    assertFits(reset)
    assert.equal(rows(reset.stdout, /^tables_\w*…\w* +\d+ +- +0$/), 12, 'one line per partition')
    assert.match(reset.stdout, /^committed new offsets for group 'tables-reset[\w-]*…[\w-]*'$/m)
    const wide = await at80(['group', 'reset-offsets', resetGroup, '--topic', topic, '--to-latest', '--wide'])
    assert.equal(wide.code, 0, wide.stderr)
    assert.ok(wide.stdout.includes(`committed new offsets for group '${resetGroup}'`) && wide.stdout.includes(topic))
  })

  it('topic alter: its config table cuts the values, not the keys, and its warning wraps on stderr', async () => {
    const altered = uniqueName('tables_alter_topic_with_a_rather_long_name')
    extraTopics.push(altered)
    const created = await runCli(['topic', 'create', altered, '--partitions', '1', '--json'])
    assert.equal(created.code, 0, created.stderr)
    const throttled = Array.from({length: 40}, (_, partition) => `${partition}:1`).join(',')
    const alter = await runCli(
      [
        'topic',
        'alter',
        altered,
        '--partitions',
        '2',
        '--config',
        `leader.replication.throttled.replicas=${throttled}`,
        '--config',
        'retention.ms=86400000',
      ],
      {env: {...env, COLUMNS: String(WIDTH)}, timeoutMs: 180_000},
    )
    assertFits(alter)
    assertFits(alter, alter.stderr)
    assert.match(alter.stdout, /^partitions: 1 -> 2$/m)
    assert.match(alter.stdout, /^leader\.replication\.throttled\.replicas +\(default\) +0:1,1:1,\S*…$/m)
    assert.match(alter.stdout, /^retention\.ms +\d+ +86400000$/m)
    // Wrapped at spaces, each line after the first indented, nothing of it cut.
    assert.ok(alter.stderr.trim().split('\n').length > 1, alter.stderr)
    assert.match(
      alter.stderr.replace(/\n {2}/g, ' '),
      /^warning: keyed records written from now on go to partition murmur2\(key\) % 2 instead of % 1, .* read both\n$/,
    )
  })

  it('cluster elect-leaders and cluster plan (its warnings wrapped, whole in a pipe)', async () => {
    const elect = await at80(['cluster', 'elect-leaders', '--topic', topic])
    assertFits(elect)
    assert.match(elect.stdout, /^0 elected, 12 already preferred, 0 failed$/m)
    const args = ['cluster', 'plan', '--brokers', '1', '--disk', '10GiB', '--partitions', '1000', '--replication', '1']
    const warning =
      "warning: one segment (1073741824 bytes) does not fit in a partition's share: use more disk, fewer " +
      'partitions or a smaller segment.bytes'
    const plan = await at80(args)
    assertFits(plan)
    assert.match(plan.stdout, /^usable per partition +7\.7 MiB$/m)
    assert.match(plan.stdout, /^warning: replication 1: losing one disk loses data$/m)
    assert.ok(!plan.stdout.includes(warning) && plan.stdout.replace(/\n {2}/g, ' ').includes(warning), plan.stdout)
    const piped = await runCli(args)
    assert.ok(piped.stdout.split('\n').includes(warning), piped.stdout)
  })

  it('schema list and schema get (the schema itself printed whole, the details fitted; -o wide)', async () => {
    const doc = `A record whose doc is wider than a terminal: ${'it goes on and on; '.repeat(12)}the end`
    const schema = {type: 'record', name: 'TablesRecord', doc, fields: [{name: 'id', type: 'string'}]}
    const response = await fetch(`${REGISTRY}/subjects/${SUBJECT}/versions`, {
      method: 'POST',
      headers: {'content-type': 'application/vnd.schemaregistry.v1+json'},
      body: JSON.stringify({schema: JSON.stringify(schema)}),
    })
    assert.equal(response.status, 200, await response.clone().text())
    const {id} = (await response.json()) as {id: number}

    const list = await at80(['schema', 'list'])
    assertFits(list)
    assert.match(list.stdout, new RegExp(`^tables_\\S*…\\S*-value +1 +AVRO +${id}$`, 'm'))
    assert.ok((await at80(['schema', 'list', '--wide'])).stdout.includes(SUBJECT))

    const get = await at80(['schema', 'get', SUBJECT])
    assert.equal(get.code, 0, get.stderr)
    const lines = get.stdout.trimEnd().split('\n')
    const block = lines.slice(0, 4)
    assert.deepEqual(
      block.filter((line) => displayWidth(line) > WIDTH),
      [],
      get.stdout,
    )
    assert.match(nth(block, 0), /^subject +tables_\S*…\S*-value$/)
    assert.deepEqual(block.slice(1), ['version  1', 'type     AVRO', `id       ${id}`])
    // The schema is the document the command prints: whole, and still JSON, where it is wider.
    assert.deepEqual(JSON.parse(lines.slice(4).join('\n')), schema)
    assert.ok(lines.some((line) => displayWidth(line) > WIDTH && line.includes(doc)))
    const wide = await at80(['schema', 'get', SUBJECT, '-o', 'wide'])
    assert.match(wide.stdout, new RegExp(`^subject +${SUBJECT}$`, 'm'))
  })
})
