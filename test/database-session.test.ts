import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {createPool} from 'mysql2/promise'

import {openPool, parseMysqlUrl, setUpEachSession} from '../src/core/db/database.js'
import {MYSQL_URL} from './helpers.js'

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
