import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {createPool} from 'mysql2/promise'

import {IDLE_TRANSACTION_TIMEOUT_S, openPool, parseMysqlUrl, setUpEachSession} from '../src/core/db/database.js'
import {MYSQL_URL, uniqueName} from './helpers.js'

/** The session set-up every pooled connection runs first (UTC, strict SQL mode), against the real MariaDB. */
function serverPool() {
  const {host, port, user, password} = parseMysqlUrl(MYSQL_URL)
  return createPool({host, port, user, password, connectionLimit: 2})
}

describe('database sessions', () => {
  test("openPool's sessions run in UTC with strict SQL mode", async () => {
    const pool = await openPool(MYSQL_URL)
    try {
      const [rows] = await pool.query('SELECT @@session.time_zone AS zone, @@session.sql_mode AS mode')
      const [row] = rows as {zone: string; mode: string}[]
      assert.equal(row?.zone, '+00:00')
      assert.match(row?.mode ?? '', /STRICT_ALL_TABLES/)
    } finally {
      await pool.end()
    }
  })

  test(
    'a session stalled inside a transaction is ended by the server after ' +
      `${IDLE_TRANSACTION_TIMEOUT_S} s, its locks with it; the pool carries on`,
    async () => {
      const database = uniqueName('idle')
      const pool = await openPool(`${MYSQL_URL.replace(/\/[^/]*$/, '')}/${database}`, {migrate: false})
      try {
        await pool.query('CREATE TABLE rows_held (id INT PRIMARY KEY)')
        await pool.query('INSERT INTO rows_held VALUES (1)')
        const stalled = await pool.getConnection()
        await stalled.query('START TRANSACTION')
        await stalled.query('SELECT id FROM rows_held WHERE id = 1 FOR UPDATE')
        const lockable = async (): Promise<boolean> => {
          const other = await pool.getConnection()
          try {
            await other.query('START TRANSACTION')
            await other.query('SELECT id FROM rows_held WHERE id = 1 FOR UPDATE NOWAIT')
            return true
          } catch {
            return false
          } finally {
            await other.query('ROLLBACK')
            other.release()
          }
        }
        assert.equal(await lockable(), false, 'held while the session is in its transaction')
        await new Promise((resolve) => setTimeout(resolve, (IDLE_TRANSACTION_TIMEOUT_S + 2) * 1000))
        assert.equal(await lockable(), true, 'released once the server ended the stalled session')
        await assert.rejects(stalled.query('COMMIT'))
        stalled.release()
        const [rows] = await pool.query('SELECT COUNT(*) AS n FROM rows_held')
        assert.deepEqual(rows, [{n: 1}])
      } finally {
        await pool.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {})
        await pool.end()
      }
    },
  )

  test('a connection whose set-up the server refuses serves nothing: its queries fail with that error', async () => {
    const pool = serverPool()
    try {
      setUpEachSession(pool, "SET time_zone = 'Mars/Olympus_Mons'")
      for (let attempt = 0; attempt < 3; attempt++) {
        await assert.rejects(pool.query('SELECT 1'), (error: Error) => {
          assert.match(
            error.message,
            /^the session set-up failed \(ER_UNKNOWN_TIME_ZONE: Unknown or incorrect time zone/,
          )
          return true
        })
      }
    } finally {
      await pool.end()
    }
  })
})
