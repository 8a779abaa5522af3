import assert from 'node:assert/strict'
import type {ServerResponse} from 'node:http'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {progressLine, type ProgressSnapshot} from '../src/cli/progress.js'
import {cliCommand, deleteTopics, nth, runCli, runInTerminal, shownLines, uniqueName} from './helpers.js'
import {replayTestFile, scenario, type Scenario, withWorkers} from './replay-harness.js'
import {delay} from './webhook-receiver.js'

/**
 * The one progress line: what it says, that it fits 80 columns, and what a real terminal (a
 * pseudo-terminal from util-linux `script`) shows of every command that shows progress; a plain
 * line every few seconds when stderr is not a terminal, and nothing under --json.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-progress-secret-012345').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)
const created: string[] = []
const work = mkdtempSync(join(tmpdir(), 'replayctl-progress-'))

after(async () => {
  await deleteTopics(created)
  rmSync(work, {recursive: true, force: true})
})

const snapshot = (update: Partial<ProgressSnapshot>): ProgressSnapshot => ({
  label: 'backing up delivery_log',
  unit: 'records',
  done: 0,
  total: null,
  rate: 0,
  eta: null,
  ...update,
})

describe('progress line', () => {
  it('shows bar, percentage, count, rate and ETA, with thousands separators', () => {
    const line = progressLine(snapshot({done: 123_456, total: 300_000, rate: 12_345.6, eta: 75}), {
      bar: 30,
      columns: 120,
    })
    assert.match(line.text, /^backing up delivery_log [█░]+ {2}41% 123,456\/300,000 records 12,346\/s eta 1:15$/)
    const plain = progressLine(snapshot({done: 1_234_567, total: 2_000_000, rate: 99_999, eta: 4000}), {
      bar: 0,
      columns: Number.POSITIVE_INFINITY,
    })
    assert.equal(plain.text, 'backing up delivery_log:  61% 1,234,567/2,000,000 records 99,999/s eta 1:06:40')
  })

  it('fits 80 columns: the bar shrinks, then the label is shortened; the numbers stay whole', () => {
    for (const label of [
      'x',
      'writing to delivery_log',
      'restoring into a_topic_with_a_rather_long_name_for_a_narrow_terminal',
    ]) {
      for (const done of [0, 999, 1_234_567_890]) {
        const line = progressLine(
          snapshot({label, done, total: 9_999_999_999, rate: 1_234_567, eta: 359_999, detail: '12,345 matches'}),
          {bar: 30, columns: 80},
        )
        assert.ok(line.text.length <= 79, `${line.text.length}: ${line.text}`)
        assert.ok(line.text.includes(`${done.toLocaleString('en-US')}/9,999,999,999 records`), line.text)
        assert.ok(line.bar.width >= 10)
      }
    }
    const bytes = progressLine(
      snapshot({
        label: 'checking events.ndjson',
        unit: {bytes: true},
        done: 5 * 1024 * 1024,
        total: 10 * 1024 * 1024,
        rate: 1024 * 1024,
        eta: 5,
      }),
      {bar: 30, columns: 80},
    )
    assert.match(bytes.text, / 50% 5\.0 MiB\/10\.0 MiB 1\.0 MiB\/s eta 0:05$/)
  })
})

/** Runs a shell command line in a pseudo-terminal of 80 columns; returns what the terminal was sent. */
async function inTerminal(command: string): Promise<string> {
  const run = await runInTerminal(command)
  assert.equal(run.code, 0, run.output)
  return run.output
}

/**
 * Runs the CLI in a terminal of 80 columns with its stdout sent to a file, so what the terminal
 * shows is stderr alone.
 */
async function stderrOnTerminal(
  args: string[],
  env: Record<string, string> = {},
): Promise<{code: number; shown: string[]; stdout: string}> {
  const stdout = join(work, `${uniqueName('stdout')}.txt`)
  const run = await runInTerminal(cliCommand(args, {stdoutTo: stdout}), {env})
  return {code: run.code, shown: shownLines(run.output), stdout: readFileSync(stdout, 'utf8')}
}

const count = (n: number) => n.toLocaleString('en-US')

/**
 * The frames of one pass (the lines that start with `label`): each fits 80 columns and shows its
 * count and rate, the bar moves while the work goes on (three percentages between 0 and 100 at
 * least), and with `total` the last frame is a full bar at 100% of it.
 */
function assertPass(shown: string[], label: string, unit: string, total?: number): void {
  const frames = shown.filter((line) => line.startsWith(label))
  assert.ok(frames.length > 0, `no "${label}" frame in:\n${shown.join('\n')}`)
  for (const line of frames) {
    assert.ok(line.length <= 79, `${line.length}: ${line}`)
    assert.match(line, new RegExp(String.raw` [\d,]+(/[\d,]+)? ${unit} [\d,]+/s( |$)`), line)
  }
  const moving = new Set(
    frames.map((line) => / (\d+)% /.exec(line)?.[1]).filter((percent) => percent && !['0', '100'].includes(percent)),
  )
  assert.ok(moving.size >= 3, `the bar moves while "${label}" goes on:\n${frames.join('\n')}`)
  if (total !== undefined)
    assert.match(
      nth(frames, frames.length - 1),
      new RegExp(String.raw` █+ 100% ${count(total)}/${count(total)} ${unit} [\d,]+/s`),
    )
}

describe('progress on a terminal of 80 columns', () => {
  it(
    'log produce --file labels its checking and writing passes, fits the width and ends on the ' + 'final count',
    async () => {
      const topic = uniqueName('progress')
      created.push(topic)
      assert.equal((await runCli(['topic', 'create', topic, '--partitions', '3'])).code, 0)
      const file = join(work, 'events.ndjson')
      const events = 120_000
      writeFileSync(
        file,
        Array.from({length: events}, (_, n) =>
          JSON.stringify({webhook_id: `w${n % 97}`, n, text: 'x'.repeat(300)}),
        ).join('\n') + '\n',
      )
      const shown = shownLines(await inTerminal(cliCommand(['log', 'produce', '--topic', topic, '--file', file])))
      const frames = shown.filter((line) => /^(checking|writing to) /.test(line))
      assert.ok(
        frames.some((line) => line.startsWith('checking events.ndjson')),
        shown.join('\n'),
      )
      assert.ok(
        frames.some((line) => line.startsWith('writing to progress_')),
        shown.join('\n'),
      )
      for (const line of frames) {
        assert.ok(line.length <= 79, `${line.length}: ${line}`)
        // Words and numbers apart: each frame has its percentage and its count as separate words.
        assert.match(line, / \d+% [\d,.]+( MiB| KiB| B)?\/[\d,.]+( MiB| KiB| B| events)/, line)
      }
      assert.ok(
        !frames.some((line) => / 0 events/.test(line) && line.startsWith('checking')),
        'no "0 events" while checking',
      )
      const last = frames.at(-1)!
      assert.match(last, /^writing to .* 100% 120,000\/120,000 events /, last)
      const wrote = shown.findIndex((line) => line.startsWith(`wrote 120,000 events to ${topic}`))
      assert.ok(wrote > shown.indexOf(last), 'the summary follows the final frame')
      assert.match(
        shown.find((line) => line.startsWith('seconds'))!,
        /^seconds\s+\d+\.\d\d \(\d+\.\d\d writing\)$/,
      )
    },
  )

  it('log search draws its bar below the matches it prints to the terminal', async () => {
    const topic = uniqueName('progress_search')
    created.push(topic)
    const seeded = await runCli(
      [
        'dev',
        'seed',
        '--topic',
        topic,
        '--events',
        '30000',
        '--webhooks',
        '20',
        '--days',
        '1',
        '--partitions',
        '2',
        '--duplicate-rate',
        '0',
        '--json',
      ],
      {timeoutMs: 120_000},
    )
    assert.equal(seeded.code, 0, seeded.stderr)
    const output = await inTerminal(
      cliCommand([
        'log',
        'search',
        '--topic',
        topic,
        '--since',
        '2d',
        '--value-regex',
        'event_id":"42-[0-9]*999"',
        '--format',
        'raw',
      ]),
    )
    const shown = shownLines(output)
    const frames = shown.filter((line) => line.startsWith('searching progress_search_'))
    assert.ok(frames.length > 0, shown.join('\n'))
    for (const line of frames) assert.ok(line.length <= 79, `${line.length}: ${line}`)
    const matches = shown.filter((line) => line.startsWith('{"event_id"'))
    assert.equal(matches.length, 30, shown.join('\n'))
    // Each match starts a line of its own (the bar was erased before it, not run into it) ...
    assert.ok(matches.every((line) => /^\{"event_id":"42-\d*999"/.test(line)))
    // ... and the last frame, after every match, is the finished bar.
    const lastFrame = shown.lastIndexOf(frames.at(-1)!)
    assert.ok(
      lastFrame > shown.lastIndexOf(matches.at(-1)!),
      shown
        .slice(-12)
        .map((line) => line.slice(0, 79))
        .join('\n'),
    )
    assert.match(frames.at(-1)!, / 100% [\d,]+\/[\d,]+ records /)
  })
})

describe('progress of backups and seeding on a terminal of 80 columns', () => {
  it(
    'dev seed, topic backup, topic verify and topic restore draw their bars on stderr, fit the width ' +
      'and end on the true total',
    async () => {
      const topic = uniqueName('progress_backup')
      const restored = `${topic}_restored`
      created.push(topic, restored)
      const events = 100_000
      const seeded = await stderrOnTerminal([
        ...['dev', 'seed', '--topic', topic, '--events', String(events), '--webhooks', '50'],
        ...['--days', '1', '--partitions', '3', '--duplicate-rate', '0'],
      ])
      assert.equal(seeded.code, 0, seeded.shown.join('\n'))
      // Every line on stderr is a frame of the bar; the results went to stdout.
      assert.deepEqual(
        seeded.shown.filter((line) => !line.startsWith('seeding ')),
        [],
      )
      assertPass(seeded.shown, 'seeding ', 'events', events)
      assert.match(seeded.stdout, new RegExp(`^seeded ${topic}: ${count(events)} events \\(0 duplicates\\)`))

      const dir = join(work, 'backup')
      const backedUp = await stderrOnTerminal(['topic', 'backup', topic, '--to', dir, '--no-configs'])
      assert.equal(backedUp.code, 0, backedUp.shown.join('\n'))
      assert.deepEqual(
        backedUp.shown.filter((line) => !line.startsWith('backing up ')),
        [],
      )
      assertPass(backedUp.shown, 'backing up ', 'records', events)
      assert.match(backedUp.stdout, new RegExp(`^backed up ${topic} into `))

      const verified = await stderrOnTerminal(['topic', 'verify', dir])
      assert.equal(verified.code, 0, verified.shown.join('\n'))
      assert.deepEqual(
        verified.shown.filter((line) => !line.startsWith('checking ')),
        [],
      )
      assertPass(verified.shown, 'checking ', 'records', events)
      assert.match(verified.stdout, new RegExp(`is intact: ${count(events)} records`))

      // Two passes each: the files are checked, then written (restore) or the topic read (verify).
      const restoring = await stderrOnTerminal(['topic', 'restore', dir, '--topic', restored])
      assert.equal(restoring.code, 0, restoring.shown.join('\n'))
      assert.deepEqual(
        restoring.shown.filter((line) => !/^(checking|restoring into) /.test(line)),
        [],
      )
      assertPass(restoring.shown, 'checking ', 'records')
      assertPass(restoring.shown, 'restoring into ', 'records', events)
      assert.ok(
        restoring.shown.findLastIndex((line) => line.startsWith('checking ')) <
          restoring.shown.findIndex((line) => line.startsWith('restoring into ')),
        'the files are checked before anything is written',
      )
      assert.match(restoring.stdout, new RegExp(`^restored ${count(events)} records of ${topic} into ${restored}`))

      const compared = await stderrOnTerminal(['topic', 'verify', dir, '--topic', restored])
      assert.equal(compared.code, 0, compared.shown.join('\n'))
      assert.deepEqual(
        compared.shown.filter((line) => !/^(checking|reading) /.test(line)),
        [],
      )
      assertPass(compared.shown, 'checking ', 'records')
      assertPass(compared.shown, 'reading ', 'records', events)
      assert.match(compared.stdout, new RegExp(`topic ${restored} matches the backup of ${topic}`))
    },
  )
})

/** `replay submit --wait` of a scenario's range, for the webhook of a receiver answering each event after `ms`. */
async function slowReplay(unique: number, ms: number): Promise<{s: Scenario; submit: (extra: string[]) => string[]}> {
  const s = await scenario(stack, {partitions: 3, unique, neighbours: 20})
  const hook = await receiver(async (_request: unknown, res: ServerResponse) => {
    await delay(ms)
    res.writeHead(200).end('ok')
  })
  await stack.addWebhook(s.webhookId, hook.url, SECRET)
  const submit = (extra: string[]) => [
    ...['replay', 'submit', '--webhook-id', s.webhookId, '--topic', s.topic],
    ...['--from', new Date(s.fromMs).toISOString(), '--to', new Date(s.toMs).toISOString(), '--wait', ...extra],
  ]
  return {s, submit}
}

/** The offsets a finished job covered, from `replay status`. */
async function offsetRange(id: number): Promise<number> {
  const status = await stack.ok(['replay', 'status', String(id)])
  assert.equal(status.state, 'COMPLETED')
  return status.endOffset - status.startOffset
}

describe('replay submit --wait', () => {
  it('on a terminal of 80 columns: the bar follows the job to 100% of its offsets', async () => {
    await withWorkers(workers, async () => {
      const {s, submit} = await slowReplay(100, 50)
      const worker = workers.start(['--max-in-flight', '1'])
      const waited = await stderrOnTerminal(submit([]), stack.env)
      await worker.stop()
      assert.equal(waited.code, 0, waited.shown.join('\n'))
      const id = Number(/^queued replay job (\d+) /.exec(waited.stdout)?.[1])
      assert.deepEqual(
        waited.shown.filter((line) => !line.startsWith(`replay job ${id} `)),
        [],
      )
      assertPass(waited.shown, `replay job ${id} `, 'offsets', await offsetRange(id))
      assert.match(waited.stdout, /^state +COMPLETED$/m)
      assert.match(waited.stdout, new RegExp(`^delivered +${s.expected.length}$`, 'm'))
    })
  })

  it('not on a terminal: a plain line every 5 s with percentage and count, the last at 100%', async () => {
    await withWorkers(workers, async () => {
      // 110 events, one at a time, each answered after 100 ms: 11 s or more.
      const {s, submit} = await slowReplay(110, 100)
      const worker = workers.start(['--max-in-flight', '1'])
      const started = Date.now()
      const waited = await stack.cli(submit([]), {timeoutMs: 120_000})
      const took = Date.now() - started
      await worker.stop()
      assert.equal(waited.code, 0, waited.stderr)
      const id = Number(/^queued replay job (\d+) /.exec(waited.stdout)?.[1])
      const lines = waited.stderr.trimEnd().split('\n')
      const plain = new RegExp(String.raw`^replay job ${id}: +(\d+% )?[\d,]+(/[\d,]+)? offsets [\d,]+/s`)
      for (const line of lines) assert.match(line, plain)
      const withPercentage = lines.filter((line) => / \d+% [\d,]+\/[\d,]+ offsets /.test(line))
      assert.ok(withPercentage.length >= 2, waited.stderr)
      // One line per 5 s at most, and the closing one.
      assert.ok(lines.length <= Math.floor(took / 5000) + 1, `${lines.length} lines in ${took} ms:\n${waited.stderr}`)
      const range = await offsetRange(id)
      assert.match(
        nth(lines, lines.length - 1),
        new RegExp(`: 100% ${count(range)}/${count(range)} offsets [\\d,]+/s \\(${s.expected.length} delivered\\)$`),
      )
      assert.doesNotMatch(waited.stdout, /offsets/, 'progress stays off stdout')
    })
  })

  it('--json: nothing on stderr while it waits, and one JSON document on stdout', async () => {
    await withWorkers(workers, async () => {
      // 70 events at 100 ms: past the 5 s after which a plain line would be due.
      const {s, submit} = await slowReplay(70, 100)
      const worker = workers.start(['--max-in-flight', '1'])
      const started = Date.now()
      const waited = await stack.cli(submit(['--json']), {timeoutMs: 120_000})
      const took = Date.now() - started
      await worker.stop()
      assert.equal(waited.code, 0, waited.stderr)
      assert.ok(took > 6000, `took only ${took} ms`)
      assert.equal(waited.stderr, '')
      assert.equal(waited.json?.state, 'COMPLETED', waited.stdout)
      assert.equal(waited.json.delivered, s.expected.length)
    })
  })
})

describe('--json on a terminal', () => {
  it('dev seed, log produce, topic backup, verify and restore draw nothing; stdout is one JSON document', async () => {
    const topic = uniqueName('progress_json')
    const restored = `${topic}_restored`
    const produced = uniqueName('progress_json_produce')
    created.push(topic, restored, produced)
    const dir = join(work, 'backup-json')
    const file = join(work, 'json-events.ndjson')
    writeFileSync(
      file,
      Array.from({length: 5000}, (_, n) => JSON.stringify({webhook_id: `w${n % 7}`, n})).join('\n') + '\n',
    )
    assert.equal((await runCli(['topic', 'create', produced, '--partitions', '2'])).code, 0)
    for (const [args, check] of [
      [
        ['dev', 'seed', '--topic', topic, '--events', '5000', '--partitions', '2', '--duplicate-rate', '0'],
        (json) => json.events === 5000,
      ],
      [['log', 'produce', '--topic', produced, '--file', file], (json) => json.events === 5000],
      [['topic', 'backup', topic, '--to', dir, '--no-configs'], (json) => json.records === 5000],
      [['topic', 'verify', dir], (json) => json.match === true],
      [['topic', 'restore', dir, '--topic', restored], (json) => json.records === 5000],
      [['topic', 'verify', dir, '--topic', restored], (json) => json.match === true],
    ] as [string[], (json: any) => boolean][]) {
      const run = await stderrOnTerminal([...args, '--json'])
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stdout}`)
      assert.deepEqual(run.shown, [], `${args.join(' ')} drew on the terminal`)
      assert.ok(check(JSON.parse(run.stdout)), `${args.join(' ')}: ${run.stdout}`)
    }
  })
})
