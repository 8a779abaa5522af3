import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

/**
 * Whether `pid` is alive and still the process we started: pids are reused, so the command
 * line must also contain `marker` (a path unique to that process).
 */
export function isAlive(pid: number, marker?: string): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (commandLine === '') return false // a zombie: exited, not yet reaped
    return marker === undefined || commandLine.includes(marker)
  } catch {
    return false
  }
}

/** SIGTERM, then SIGKILL once `graceMs` has passed. Resolves true when it had to force. */
export async function stopProcess(pid: number, graceMs: number): Promise<boolean> {
  const deadline = Date.now() + graceMs
  try {
    process.kill(pid, graceMs > 0 ? 'SIGTERM' : 'SIGKILL')
  } catch {
    return false
  }
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return false
    await sleep(100)
  }
  if (!isAlive(pid)) return false
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return false
  }
  while (isAlive(pid)) await sleep(50)
  return true
}
