import {EventEmitter} from 'node:events'

import {formatBytes, formatCount} from './output.js'
import {mountView} from './ui/mount.js'

/**
 * The one place that decides how a long-running command shows progress, always on stderr so
 * stdout stays clean for results:
 *   --json     nothing (the final JSON result is the only output)
 *   not a TTY  a plain line every few seconds (CI logs, systemd journal, pipes)
 *   a TTY      a live ink view that redraws in place (mounted by ui/mount.ts, as every live view)
 * Commands update a ProgressState; the view subscribes to it. Both views are drawn from the same
 * words (progressLine), so a terminal and a log say the same thing.
 */
export type UiMode = 'json' | 'plain' | 'tty'

export function uiMode(json: boolean): UiMode {
  if (json) return 'json'
  // CI and TERM say where output goes (a CI log, a dumb terminal): like output.ts's terminal
  // variables they are read here, not in settings, and change only how progress is drawn.
  if (!process.stderr.isTTY || process.env.CI || process.env.TERM === 'dumb') return 'plain'
  return 'tty'
}

/** Notes (one-off lines such as "starting Kafka node 1"): shown unless --json. */
export function noteWriter(mode: UiMode): (line: string) => void {
  return mode === 'json' ? () => {} : (line) => process.stderr.write(`${line}\n`)
}

/** How counts read: records and events as 1,234,567, bytes as 12.3 MiB. */
export type ProgressUnit = string | {bytes: true}

export interface ProgressSnapshot {
  label: string
  unit: ProgressUnit
  done: number
  total: number | null
  /** Per second, since this phase began. */
  rate: number
  /** Seconds to the end at that rate; null without a total or a rate. */
  eta: number | null
  detail?: string
}

export class ProgressState extends EventEmitter {
  private started = Date.now()
  private done = 0
  private detail?: string

  constructor(
    public label: string,
    public unit: ProgressUnit,
    /** Settable: some totals are known only once the work is planned (a search's ranges). */
    public total: number | null = null,
  ) {
    super()
  }

  update(done: number, detail?: string): void {
    this.done = done
    this.detail = detail
    this.emit('change')
  }

  /** A new pass over other work (a file is checked, then written): its own count, total and rate. */
  phase(label: string, unit: ProgressUnit, total: number | null): void {
    Object.assign(this, {label, unit, total, started: Date.now(), done: 0, detail: undefined})
    this.emit('phase')
    this.emit('change')
  }

  /** The work is done: the last frame shows what was done as the whole of it. */
  finish(done: number, detail?: string): void {
    this.total = done
    this.update(done, detail)
  }

  /** Lines of results for the terminal the view is drawn on, printed above the view (stdout). */
  print(text: string): void {
    this.emit('print', text)
  }

  snapshot(): ProgressSnapshot {
    const seconds = (Date.now() - this.started) / 1000
    const rate = seconds > 0 ? this.done / seconds : 0
    const eta = this.total !== null && rate > 0 ? Math.max(0, this.total - this.done) / rate : null
    return {label: this.label, unit: this.unit, done: this.done, total: this.total, rate, eta, detail: this.detail}
  }
}

export interface ProgressView {
  state: ProgressState
  /** Writes results to stdout; on a terminal the view is cleared first and drawn again below them. */
  print(text: string | Buffer): Promise<void> | void
  /** Idempotent: every command stops its view in a `finally`, after `finish` on success. */
  stop(): Promise<void>
}

const PLAIN_EVERY_MS = 5000

export async function showProgress(mode: UiMode, state: ProgressState): Promise<ProgressView> {
  const toStdout = (text: string | Buffer) => {
    process.stdout.write(text)
  }
  if (mode === 'json') return {state, print: toStdout, stop: async () => {}}
  if (mode === 'plain') {
    let printed = false
    const line = () => {
      printed = true
      process.stderr.write(`${progressLine(state.snapshot(), {bar: 0, columns: Number.POSITIVE_INFINITY}).text}\n`)
    }
    let timer = setInterval(line, PLAIN_EVERY_MS).unref()
    // A pass of its own (checking, then writing) starts its own clock for lines.
    state.on('phase', () => {
      clearInterval(timer)
      timer = setInterval(line, PLAIN_EVERY_MS).unref()
    })
    let stopped = false
    return {
      state,
      print: toStdout,
      stop: async () => {
        if (stopped) return
        stopped = true
        clearInterval(timer)
        // A log that showed the work going ends with where it got to.
        if (printed) line()
      },
    }
  }
  const view = await mountView(
    async () => (await import('./ui/progress-bar.js')).ProgressBar,
    {state},
    {settleMs: 0, printsTo: process.stdout},
  )
  let stopped = false
  return {
    state,
    print: (text) => state.print(Buffer.isBuffer(text) ? text.toString('utf8') : text),
    stop: async () => {
      if (stopped) return
      stopped = true
      state.emit('change')
      await view.unmount()
    },
  }
}

/** 75 s as 1:15, 4000 s as 1:06:40. */
export function formatEta(seconds: number): string {
  const whole = Math.ceil(seconds)
  const h = Math.floor(whole / 3600)
  const m = Math.floor((whole % 3600) / 60)
  const s = whole % 60
  return h > 0
    ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`
    : `${m}:${String(s).padStart(2, '0')}`
}

export interface ProgressLine {
  /** The whole line, bar included (as spaces when `bar` is 0 there is none). */
  text: string
  label: string
  /** Bar cells, and how many of them are filled; width 0 without a bar. */
  bar: {width: number; filled: number}
  /** What follows the bar: percentage, counts, rate, ETA, detail. */
  stats: string
}

const MIN_BAR = 10
const MAX_BAR = 30

/**
 * One progress line of at most `columns - 1` characters (a full last column makes some terminals
 * wrap): label, bar, percentage, count, rate, ETA, detail. When the width is short, the detail
 * goes first, then the bar shrinks, then the label is shortened with an ellipsis; the numbers stay.
 * `bar`: the widest bar wanted (0: none, for plain lines, which read `label: numbers`).
 */
export function progressLine(s: ProgressSnapshot, options: {bar: number; columns: number}): ProgressLine {
  const bytes = typeof s.unit === 'object'
  const count = (n: number) => (bytes ? formatBytes(n) : formatCount(Math.round(n)))
  const unit = bytes ? '' : ` ${s.unit}`
  const fraction = s.total ? Math.min(1, s.done / s.total) : s.total === 0 ? 1 : null
  const parts = [
    ...(fraction === null ? [] : [`${Math.floor(fraction * 100)}%`.padStart(4)]),
    `${count(s.done)}${s.total === null ? '' : `/${count(s.total)}`}${unit}`,
    `${count(s.rate)}/s`,
    ...(s.eta === null || fraction === 1 ? [] : [`eta ${formatEta(s.eta)}`]),
  ]
  const width = options.columns - 1
  let stats = parts.join(' ')
  if (s.detail && s.label.length + 1 + options.bar + 1 + stats.length + 2 + s.detail.length <= width)
    stats += ` (${s.detail})`
  const room = width - stats.length - 1
  // The bar gives way to the label down to MIN_BAR cells; past that the label is shortened.
  const bar =
    fraction === null || options.bar === 0
      ? 0
      : Math.max(MIN_BAR, Math.min(options.bar, MAX_BAR, room - s.label.length - 2))
  let label = s.label
  const labelRoom = room - (bar > 0 ? bar + 1 : 0) - 1
  if (label.length > labelRoom) label = labelRoom > 1 ? `${label.slice(0, labelRoom - 1)}…` : ''
  // Floored like the percentage: a full bar means done.
  const filled = fraction === null ? 0 : Math.floor(fraction * bar)
  const barText = bar > 0 ? `${'█'.repeat(filled)}${'░'.repeat(bar - filled)} ` : ''
  const text = options.bar > 0 ? `${label} ${barText}${stats}` : `${label}: ${stats}`
  return {text, label, bar: {width: bar, filled}, stats}
}
