import type {Pool, PoolConnection, PoolOptions} from 'mysql2/promise'
import {setTimeout as sleep} from 'node:timers/promises'

import {BugError, UserError} from '../shared/errors.js'
import {migrate, migrationStatus, MIGRATIONS, type MigrateResult, type MigrationStatus} from './migrations.js'
import type {Settings} from '../shared/settings.js'

/**
 * The MySQL (MariaDB) connection layer: the replay queue's only coordination point.
 *
 * - openPool() parses the URL, creates the database when missing and applies pending migrations,
 *   so any command or worker can run against an empty server.
 * - Every session runs in UTC with strict SQL mode, so DATETIME(3) values written with NOW(3) and
 *   read back as JS Dates mean the same instant on every machine, and bad values fail loudly
 *   instead of being truncated.
 * - withRetry() re-runs a unit of work after connection loss, deadlock (1213) or lock wait timeout
 *   (1205); the pool itself never retries. Work passed to it must be safe to run again (each job
 *   operation is: a single statement or one transaction).
 * - Connection failures become one UserError('DATABASE_UNAVAILABLE') naming host:port, never the
 *   password.
 *
 * mysql2 is imported lazily so commands that never touch the database start fast.
 */
export type {Pool, PoolConnection}

export interface MysqlTarget {
  host: string
  port: number
  user: string
  password?: string
  database: string
  ssl: boolean
}

export interface RetryOptions {
  /** Tries in all, the first included. */
  maxAttempts?: number
  initialDelayMs?: number
  maxDelayMs?: number
  /** Give up once this much time has passed since the first try. */
  maxElapsedMs?: number
}

export interface OpenPoolOptions {
  /** connect timeout; default 10 s */
  timeoutMs?: number
  /** CREATE DATABASE IF NOT EXISTS first (default true) */
  create?: boolean
  /** apply pending migrations (default true) */
  migrate?: boolean
  /** pool size (default 10) */
  connectionLimit?: number
  /** how hard operations on this pool retry transient failures */
  retry?: RetryOptions
}

/**
 * Long enough to ride out a MariaDB restart (a few seconds) or a failover, short enough that a
 * worker whose database is really gone notices within a minute and stops.
 */
export const DEFAULT_RETRY: Required<RetryOptions> = {
  maxAttempts: 12,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  maxElapsedMs: 45_000,
}

interface PoolMeta {
  target: MysqlTarget
  retry: Required<RetryOptions>
}
const poolMeta = new WeakMap<Pool, PoolMeta>()

type Mysql = typeof import('mysql2/promise')
let mysqlModule: Promise<Mysql> | undefined
async function loadMysql(): Promise<Mysql> {
  mysqlModule ??= import('mysql2/promise').then(
    (module) => ((module as unknown as {default?: Mysql}).default ?? module) as Mysql,
  )
  return mysqlModule
}

// Database names go into CREATE DATABASE as an identifier (placeholders cannot hold identifiers),
// so only a plain, safe alphabet is accepted.
const DATABASE_NAME = /^[A-Za-z0-9_$]{1,64}$/

/** mysql://user:pass@host:port/database[?ssl=true] */
export function parseMysqlUrl(url: string): MysqlTarget {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UserError(
      'INVALID_CONFIG',
      `the MySQL URL ${redactUrl(url)} is not a URL`,
      'use mysql://user:password@host:3306/database in --mysql-url or REPLAYCTL_MYSQL_URL',
    )
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw new UserError(
      'INVALID_CONFIG',
      `the MySQL URL ${redactUrl(url)} has scheme '${parsed.protocol.replace(/:$/, '')}'`,
      'use mysql://user:password@host:3306/database in --mysql-url or REPLAYCTL_MYSQL_URL',
    )
  }
  if (!parsed.hostname) {
    throw new UserError(
      'INVALID_CONFIG',
      `the MySQL URL ${redactUrl(url)} has no host`,
      'use mysql://user:password@host:3306/database in --mysql-url or REPLAYCTL_MYSQL_URL',
    )
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'replayctl'
  if (!DATABASE_NAME.test(database)) {
    throw new UserError(
      'INVALID_CONFIG',
      `the MySQL URL ${redactUrl(url)} names database '${database.slice(0, 80)}', which replayctl does not accept`,
      'use 1 to 64 of the characters A-Z a-z 0-9 _ $ for the database name',
    )
  }
  let ssl = false
  for (const [key, value] of parsed.searchParams) {
    if (key === 'ssl' && ['true', '1', 'required'].includes(value)) ssl = true
    else if (key === 'ssl' && ['false', '0'].includes(value)) ssl = false
    else
      throw new UserError(
        'INVALID_CONFIG',
        `the MySQL URL ${redactUrl(url)} has an unsupported parameter '${key}=${value}'`,
        'only ?ssl=true is understood; remove the others',
      )
  }
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username) || 'root',
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database,
    ssl,
  }
}

/** The URL with its password replaced, safe for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    // Unparseable: still hide anything that looks like user:password@.
    return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@').slice(0, 200)
  }
}

/** user@host:port/database: where we connect, without the password. */
export function describeTarget(target: MysqlTarget): string {
  return `${target.user}@${hostPort(target)}/${target.database}`
}

function hostPort(target: Pick<MysqlTarget, 'host' | 'port'>): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
}

function connectionOptions(target: MysqlTarget, timeoutMs: number): PoolOptions {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    connectTimeout: timeoutMs,
    ...(target.ssl ? {ssl: {}} : {}),
    // Job ids and offsets are BIGINT: numbers when exact, strings beyond 2^53 (never silently wrong).
    supportBigNumbers: true,
    bigNumberStrings: false,
    // Sessions run in UTC (below); read DATETIMEs back as UTC too.
    timezone: 'Z',
    charset: 'utf8mb4_general_ci',
    enableKeepAlive: true,
  }
}

/**
 * How long MariaDB lets a session sit idle inside a transaction before it ends the session (and so
 * the transaction and its locks). Our transactions never wait on anything but the server, so only
 * a stalled client gets there: a frozen process, a VM pause, a network cut that TCP would notice
 * only after hours. Its locks would otherwise keep its jobs from being taken over; with this, a job
 * whose worker stalled inside a transaction is taken over after the longer of --stale-after and
 * this. Set through MariaDB's executable comment, which MySQL reads as a comment.
 */
export const IDLE_TRANSACTION_TIMEOUT_S = 20

const SESSION_SETUP =
  "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'" +
  ` /*M!100300 , idle_transaction_timeout = ${IDLE_TRANSACTION_TIMEOUT_S} */`

/**
 * Runs `setup` on every new connection of the pool before any query of its callers (commands on a
 * connection are queued in order). A session whose set-up failed must serve nothing (in the wrong
 * time zone or SQL mode it would read and write values wrongly), so its socket is destroyed with
 * the error: the queries queued behind the set-up fail with it, and the pool drops the connection.
 */
export function setUpEachSession(pool: Pool, setup: string): void {
  pool.on('connection', (connection) => {
    const core = connection as unknown as NodeJS.EventEmitter & {
      query: (sql: string, callback: (error: MysqlError | null) => void) => void
      stream: {destroy: (error: Error) => void}
    }
    core.query(setup, (error) => {
      if (!error) return
      const reason = (error.sqlMessage ?? error.message ?? String(error)).split('\n')[0]?.slice(0, 200)
      core.stream.destroy(new Error(`the session set-up failed (${error.code ?? 'error'}: ${reason})`, {cause: error}))
    })
    // A connection the server dropped (a restart, KILL) can emit 'error' more than once; the pool
    // listens only once and removes it. Without a listener of our own a second one would crash
    // the worker; the failure reaches callers through their queries instead.
    core.on('error', () => {})
  })
}

/**
 * A pool on the database named in the URL. Creates the database and applies pending migrations
 * unless told not to. Close it with `pool.end()` (or use withDatabase).
 */
export async function openPool(mysqlUrl: string, options: OpenPoolOptions = {}): Promise<Pool> {
  const target = parseMysqlUrl(mysqlUrl)
  const timeoutMs = options.timeoutMs ?? 10_000
  const mysql = await loadMysql()
  const shouldMigrate = options.migrate ?? true
  const shouldCreate = options.create ?? true

  if (shouldCreate) {
    await withServerConnection(target, timeoutMs, (connection) =>
      connection.query(
        `CREATE DATABASE IF NOT EXISTS \`${target.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
      ),
    )
  }

  const pool = mysql.createPool({
    ...connectionOptions(target, timeoutMs),
    database: target.database,
    connectionLimit: options.connectionLimit ?? 10,
    maxIdle: options.connectionLimit ?? 10,
    idleTimeout: 60_000,
    waitForConnections: true,
  })
  setUpEachSession(pool, SESSION_SETUP)
  poolMeta.set(pool, {target, retry: {...DEFAULT_RETRY, ...options.retry}})

  try {
    // Fail here, with a clear message, rather than on the first real query.
    await pool.query('SELECT 1')
    if (shouldMigrate) await migrate(pool)
  } catch (error) {
    await pool.end().catch(() => {})
    throw databaseUnavailable(target, error)
  }
  return pool
}

type BareConnection = Awaited<ReturnType<Mysql['createConnection']>>

/** A single connection to the server without selecting a database: the URL's may not exist yet. */
async function withServerConnection<T>(
  target: MysqlTarget,
  timeoutMs: number,
  work: (connection: BareConnection) => Promise<T>,
): Promise<T> {
  const mysql = await loadMysql()
  let connection: BareConnection
  try {
    connection = await mysql.createConnection(connectionOptions(target, timeoutMs))
  } catch (error) {
    throw databaseUnavailable(target, error)
  }
  try {
    return await work(connection)
  } catch (error) {
    throw databaseUnavailable(target, error)
  } finally {
    connection.destroy()
  }
}

export interface DatabaseLocation {
  host: string
  port: number
  user: string
  database: string
}

export interface DatabaseStatus extends DatabaseLocation, MigrationStatus {
  exists: boolean
  serverVersion: string
}

export interface DatabaseMigrateResult extends DatabaseLocation, MigrateResult {
  latest: number
}

const LATEST_VERSION = MIGRATIONS.reduce((latest, {version}) => Math.max(latest, version), 0)

function location(target: MysqlTarget): DatabaseLocation {
  return {host: target.host, port: target.port, user: target.user, database: target.database}
}

/** Schema version and pending migrations, without creating or changing anything. */
export async function databaseStatus(settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs'>): Promise<DatabaseStatus> {
  const target = parseMysqlUrl(settings.mysqlUrl)
  const server = await withServerConnection(target, settings.timeoutMs, async (connection) => {
    const [rows] = await connection.query(
      'SELECT VERSION() AS version, (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?) AS found',
      [target.database],
    )
    const [row] = rows as {version: string; found: number}[]
    if (!row) throw new BugError('SELECT VERSION() returned no row')
    return {version: row.version, exists: Number(row.found) > 0}
  })
  const status: MigrationStatus = server.exists
    ? await withDatabase(settings, migrationStatus, {create: false, migrate: false})
    : {
        current: 0,
        latest: LATEST_VERSION,
        applied: [],
        pending: MIGRATIONS.map(({version, name}) => ({version, name})),
        ahead: false,
      }
  return {...location(target), exists: server.exists, serverVersion: server.version, ...status}
}

/** Creates the database if needed and applies pending migrations; reports what it applied. */
export async function migrateDatabase(
  settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs'>,
): Promise<DatabaseMigrateResult> {
  const target = parseMysqlUrl(settings.mysqlUrl)
  const result = await withDatabase(settings, (pool) => migrate(pool), {create: true, migrate: false})
  return {...location(target), ...result, latest: LATEST_VERSION}
}

/** Opens a pool from the resolved settings, runs `work`, always closes the pool. */
export async function withDatabase<T>(
  settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs'>,
  work: (pool: Pool) => Promise<T>,
  options: Omit<OpenPoolOptions, 'timeoutMs'> = {},
): Promise<T> {
  const pool = await openPool(settings.mysqlUrl, {timeoutMs: settings.timeoutMs, ...options})
  try {
    return await work(pool)
  } catch (error) {
    // Connection failures outside withRetry (or after it) still read as one line.
    throw databaseUnavailable(poolTarget(pool), error)
  } finally {
    await pool.end().catch(() => {})
  }
}

/** Where a pool made by openPool connects (password omitted), for messages. */
export function poolTarget(pool: Pool): Omit<MysqlTarget, 'password'> {
  const target = poolMeta.get(pool)?.target
  if (target)
    return {host: target.host, port: target.port, user: target.user, database: target.database, ssl: target.ssl}
  const config = (
    pool as unknown as {
      pool?: {config?: {connectionConfig?: {host?: string; port?: number; user?: string; database?: string}}}
    }
  ).pool?.config?.connectionConfig
  return {
    host: config?.host ?? 'unknown',
    port: config?.port ?? 3306,
    user: config?.user ?? '',
    database: config?.database ?? '',
    ssl: false,
  }
}

/**
 * Runs `work` in one READ COMMITTED transaction on one connection. READ COMMITTED because the
 * queue's claim (SELECT ... FOR UPDATE SKIP LOCKED) under REPEATABLE READ takes gap locks that
 * deadlock with concurrent inserts. The connection is released afterwards, or destroyed when the
 * error may have left it in an unknown state (a fatal error, or a failed rollback).
 */
export async function withTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection()
  let broken = false
  try {
    // Applies to the next transaction on this session only.
    await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED')
    await connection.query('START TRANSACTION')
    try {
      const result = await work(connection)
      await connection.query('COMMIT')
      return result
    } catch (error) {
      if (isFatal(error)) broken = true
      else {
        try {
          await connection.query('ROLLBACK')
        } catch {
          broken = true
        }
      }
      throw error
    }
  } catch (error) {
    if (isFatal(error)) broken = true
    throw error
  } finally {
    if (broken) connection.destroy()
    else connection.release()
  }
}

/** How many due rows one claim looks at before giving up for this round (others hold the rest). */
const CLAIM_CANDIDATES = 8

/**
 * Claims the first due row no other session holds, inside the caller's transaction: `find` (a
 * plain read, ordered, without LIMIT) names the candidates, and `lock` locks one by its key with
 * the due conditions checked again (FOR UPDATE SKIP LOCKED); a candidate another claimer holds is
 * passed by. Two steps because InnoDB keeps a lock on every row a locking read examines until the
 * transaction ends, matching or not: a range scan's first row past its end included, which is
 * often a running job or another scanner's chunk. A claimer stalled between such a read and its
 * COMMIT (a frozen process, a VM pause, a cut-off network) would keep those rows locked, and every
 * other claimer, skipping locked rows, would pass them by: a job no one could take over.
 */
export async function lockFirstDue<Found, Row>(
  connection: PoolConnection,
  find: {sql: string; values: unknown[]},
  lock: (candidate: Found) => {sql: string; values: unknown[]},
): Promise<Row | undefined> {
  const [found] = await connection.query(`${find.sql} LIMIT ${CLAIM_CANDIDATES}`, find.values)
  for (const candidate of found as Found[]) {
    const {sql, values} = lock(candidate)
    const [locked] = await connection.query(sql, values)
    const row = (locked as Row[])[0]
    if (row) return row
  }
  return undefined
}

/**
 * Runs `work` again after transient failures: a lost or refused connection (a MariaDB restart),
 * a deadlock (1213) or a lock wait timeout (1205), with exponential backoff and jitter, bounded by
 * attempts and elapsed time. Other errors pass through unchanged, except connection-level ones,
 * which become DATABASE_UNAVAILABLE.
 *
 * `work` must be safe to repeat: a statement whose reply was lost may have been applied.
 */
export async function withRetry<T>(pool: Pool, work: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retry = {...(poolMeta.get(pool)?.retry ?? DEFAULT_RETRY), ...options}
  const started = Date.now()
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (!isTransient(error)) throw isConnectionError(error) ? databaseUnavailable(poolTarget(pool), error) : error
      const delay = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2)
      if (attempt >= retry.maxAttempts || Date.now() - started + delay > retry.maxElapsedMs) {
        throw databaseUnavailable(poolTarget(pool), error, attempt)
      }
      await sleep(delay)
    }
  }
}

/** The database's clock, in epoch ms. Times that workers compare come from here, not from Date.now(). */
export async function dbNow(pool: Pool): Promise<number> {
  return withRetry(pool, async () => {
    const [rows] = await pool.query('SELECT NOW(3) AS now')
    const [row] = rows as {now: Date}[]
    if (!row) throw new BugError('SELECT NOW(3) returned no row')
    return row.now.getTime()
  })
}

interface MysqlError {
  code?: string
  errno?: number
  fatal?: boolean
  sqlMessage?: string
  message?: string
}

const TRANSIENT_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_CON_COUNT_ERROR',
])
// 1213 deadlock, 1205 lock wait timeout, 1053 server shutdown, 1927 connection killed (MariaDB),
// 1040 too many connections, 2006 server gone away, 2013 lost connection during query.
const TRANSIENT_ERRNOS = new Set([1213, 1205, 1053, 1927, 1040, 2006, 2013])

export function isTransient(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const e = error as MysqlError
  if (e.fatal === true) return true
  return (
    (e.code !== undefined && TRANSIENT_CODES.has(e.code)) || (e.errno !== undefined && TRANSIENT_ERRNOS.has(e.errno))
  )
}

function isFatal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as MysqlError).fatal === true
}

const CONNECTION_CODES = new Set([
  'ENOTFOUND',
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_HOST_NOT_PRIVILEGED',
  'ER_HOST_IS_BLOCKED',
  'ER_NOT_SUPPORTED_AUTH_MODE',
  'HANDSHAKE_SSL_ERROR',
  'HANDSHAKE_NO_SSL_SUPPORT',
])

function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || error instanceof UserError) return false
  const code = (error as MysqlError).code
  return isTransient(error) || (code !== undefined && CONNECTION_CODES.has(code))
}

/** The mysql2 error code, or undefined: lets callers recognise ER_DUP_ENTRY and friends. */
export function mysqlErrorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as MysqlError).code : undefined
}

/**
 * One line for the operator. UserErrors pass through; connection failures name host:port and the
 * reason; anything else (a SQL bug) is returned unchanged so it surfaces as a bug with its stack.
 */
export function databaseUnavailable(
  target: Pick<MysqlTarget, 'host' | 'port' | 'user' | 'database'>,
  error: unknown,
  attempts?: number,
): Error {
  if (error instanceof UserError) return error
  if (!isConnectionError(error)) return error instanceof Error ? error : new Error(String(error))
  const e = error as MysqlError
  const reason = describeReason(e, target)
  const tries = attempts && attempts > 1 ? `, after ${attempts} tries` : ''
  return new UserError(
    'DATABASE_UNAVAILABLE',
    `cannot reach MySQL at ${hostPort(target)} (${reason}${tries})`,
    'check --mysql-url / REPLAYCTL_MYSQL_URL, or start the local stack with `replayctl dev up`',
    {cause: error},
  )
}

function describeReason(e: MysqlError, target: Pick<MysqlTarget, 'user' | 'database'>): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found'
    case 'ETIMEDOUT':
      return 'timed out'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'PROTOCOL_CONNECTION_LOST':
      return 'connection lost'
    case 'ER_ACCESS_DENIED_ERROR':
      return `access denied for user '${target.user}'`
    case 'ER_DBACCESS_DENIED_ERROR':
      return `user '${target.user}' may not use database '${target.database}'`
    case 'ER_BAD_DB_ERROR':
      return `database '${target.database}' does not exist`
    case 'ER_LOCK_DEADLOCK':
      return 'deadlock'
    case 'ER_LOCK_WAIT_TIMEOUT':
      return 'lock wait timeout'
    case 'ER_SERVER_SHUTDOWN':
      return 'server shutting down'
    case 'ER_CON_COUNT_ERROR':
      return 'too many connections'
    default: {
      // Server messages never contain the password; keep them short and on one line.
      const [text = ''] = (e.sqlMessage ?? e.message ?? 'unknown error').split('\n', 1)
      return e.code ? `${e.code}: ${text.slice(0, 200)}` : text.slice(0, 200)
    }
  }
}
