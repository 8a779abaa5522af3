/**
 * The one place that decides how a long-running command shows progress, always on stderr so
 * stdout stays clean for results:
 *   --json     nothing (the final JSON result is the only output)
 *   not a TTY  a plain line now and then (CI logs, systemd journal, pipes)
 *   a TTY      a live line that redraws in place
 */
export type UiMode = 'json' | 'plain' | 'tty'

export function uiMode(json: boolean): UiMode {
  if (json) return 'json'
  if (!process.stderr.isTTY || process.env.CI || process.env.TERM === 'dumb') return 'plain'
  return 'tty'
}

/** Notes (one-off lines such as "starting Kafka node 1"): shown unless --json. */
export function noteWriter(mode: UiMode): (line: string) => void {
  return mode === 'json' ? () => {} : (line) => process.stderr.write(`${line}\n`)
}
