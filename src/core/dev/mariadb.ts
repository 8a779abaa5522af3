import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

import {UserError} from '../shared/errors.js'
import {isAlive, stopProcess} from './processes.js'

/**
 * The local stack's database: the machine's MariaDB server on 127.0.0.1:3306 (root, no password).
 * `dev up` starts it only when it is installed but stopped, and remembers that it did, so that
 * `dev down` stops it again and never stops a server someone else runs.
 */
export const DEV_MYSQL = {host: '127.0.0.1', port: 3306, user: 'root'}
const MARIADBD = '/usr/sbin/mariadbd'

export interface MariadbState {
  startedByUs: boolean
  pid: number | null
}

export interface MariadbStatus {
  address: string
  running: boolean
  version: string | null
  pid: number | null
  startedByUs: boolean
}

async function probe(): Promise<string | null> {
  const mysql = await import('mysql2/promise')
  try {
    const connection = await mysql.createConnection({...DEV_MYSQL, connectTimeout: 2000})
    try {
      const [rows] = await connection.query('SELECT VERSION() AS version')
      const [row] = rows as {version: string}[]
      return row?.version ?? null
    } finally {
      await connection.end()
    }
  } catch {
    return null
  }
}

function serverPid(): number | null {
  const found = spawnSync('pidof', ['mariadbd'], {encoding: 'utf8'}).stdout.trim().split(/\s+/)[0]
  return found ? Number(found) : null
}

export async function ensureMariadb(
  previous: MariadbState | undefined,
  progress: (line: string) => void,
): Promise<MariadbState> {
  if (await probe()) return previous?.startedByUs ? previous : {startedByUs: false, pid: null}
  if (!existsSync(MARIADBD)) {
    throw new UserError(
      'DEPENDENCY_MISSING',
      'MariaDB is not installed and nothing answers on 127.0.0.1:3306',
      'install it with `apt-get install -y mariadb-server`, then run `replayctl dev up` again',
    )
  }
  progress('starting MariaDB on 127.0.0.1:3306')
  execFileSync('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', MARIADBD])
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (await probe()) return {startedByUs: true, pid: serverPid()}
    await sleep(300)
  }
  throw new UserError(
    'STACK_FAILED',
    'MariaDB was started but did not accept connections on 127.0.0.1:3306 within 60 s',
    'see /var/log/mysql/error.log or `journalctl -u mariadb`',
  )
}

export async function mariadbStatus(state: MariadbState | undefined): Promise<MariadbStatus> {
  const version = await probe()
  return {
    address: `${DEV_MYSQL.host}:${DEV_MYSQL.port}`,
    running: version !== null,
    version,
    pid: version ? serverPid() : null,
    startedByUs: state?.startedByUs ?? false,
  }
}

export async function stopMariadb(state: MariadbState | undefined, graceMs: number) {
  if (!state?.startedByUs || state.pid === null || !isAlive(state.pid, 'mariadbd')) return null
  const forced = await stopProcess(state.pid, graceMs)
  return {what: 'mariadb', pid: state.pid, forced}
}
