import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {progressLine, type ProgressSnapshot} from '../src/cli/progress.js'
import {BIN, BROKERS, deleteTopics, MYSQL_URL, runCli, uniqueName} from './helpers.js'

/**
 * The one progress line: what it says, that it fits 80 columns, and what a real terminal (a
 * pseudo-terminal from util-linux `script`) shows of `log produce` and `log search`.
 */
const run = promisify(execFile)
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

/** Runs a command in a pseudo-terminal of 80 columns; returns what the terminal was sent. */
async function inTerminal(command: string): Promise<string> {
  const {stdout} = await run('script', ['-qfec', `stty rows 24 cols 80; ${command}`, '/dev/null'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TERM: 'xterm-256color',
      REPLAYCTL_BROKERS: BROKERS,
      REPLAYCTL_MYSQL_URL: MYSQL_URL,
      REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
    },
    maxBuffer: 64 * 1024 * 1024,
  })
  return stdout
}

/** Every line the terminal was shown, as text: colours dropped, cursor moves and carriage returns split lines. */
function shownLines(output: string): string[] {
  return output
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split(/\x1b\[[0-9;?]*[A-Za-z]|\r|\n/)
    .filter((text) => text.trim())
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
      const shown = shownLines(
        await inTerminal(`"${process.execPath}" "${BIN}" log produce --topic ${topic} --file ${file}`),
      )
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
      `"${process.execPath}" "${BIN}" log search --topic ${topic} --since 2d --value-regex ` +
        `'event_id":"42-[0-9]*999"' --format raw`,
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
