import {EventEmitter} from 'node:events'

import {mountView} from './ui/mount.js'

/**
 * The one place that decides how a long-running command shows progress, always on stderr so
 * stdout stays clean for results:
 *   --json     nothing (the final JSON result is the only output)
 *   not a TTY  a plain line every few seconds (CI logs, systemd journal, pipes)
 *   a TTY      a live ink view that redraws in place (mounted by ui/mount.ts, as every live view)
 * Commands update a ProgressState; the view subscribes to it.
 */
export type UiMode = 'json' | 'plain' | 'tty'

export function uiMode(json: boolean, options: {streamsToStdout?: boolean} = {}): UiMode {
  if (json) return 'json'
  if (!process.stderr.isTTY || process.env.CI || process.env.TERM === 'dumb') return 'plain'
  // ink redraws lines in place; results streaming to the same terminal would tear its view.
  if (options.streamsToStdout && process.stdout.isTTY) return 'plain'
  return 'tty'
}

/** Notes (one-off lines such as "starting Kafka node 1"): shown unless --json. */
export function noteWriter(mode: UiMode): (line: string) => void {
  return mode === 'json' ? () => {} : (line) => process.stderr.write(`${line}\n`)
}

export interface ProgressSnapshot {
  label: string
  unit: string
  done: number
  total: number | null
  rate: number
  detail?: string
}

export class ProgressState extends EventEmitter {
  private readonly started = Date.now()
  private done = 0
  private detail?: string

  constructor(
    readonly label: string,
    readonly unit: string,
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

  snapshot(): ProgressSnapshot {
    const seconds = (Date.now() - this.started) / 1000
    return {label: this.label, unit: this.unit, done: this.done, total: this.total, rate: seconds > 0 ? this.done / seconds : 0, detail: this.detail}
  }
}

export interface ProgressView {
  state: ProgressState
  stop(): Promise<void>
}

export async function showProgress(mode: UiMode, state: ProgressState): Promise<ProgressView> {
  if (mode === 'json') return {state, stop: async () => {}}
  if (mode === 'plain') {
    const line = () => {
      const s = state.snapshot()
      process.stderr.write(`${s.label}: ${s.done}${s.total ? `/${s.total}` : ''} ${s.unit} (${Math.round(s.rate)}/s)${s.detail ? ` ${s.detail}` : ''}\n`)
    }
    const timer = setInterval(line, 5000).unref()
    return {state, stop: async () => clearInterval(timer)}
  }
  const view = await mountView(async () => (await import('./ui/progress-bar.js')).ProgressBar, {state}, {settleMs: 0})
  return {
    state,
    stop: async () => {
      state.emit('change')
      await view.unmount()
    },
  }
}
