import {createHash} from 'node:crypto'

import type {Pool} from 'mysql2/promise'
import {UserError} from '../shared/errors.js'

/**
 * Versioned schema migrations. Append new ones; never edit one that has shipped.
 *
 * MySQL commits every DDL statement on its own, so a migration cannot be rolled back half-way.
 * Each statement is therefore written to be safe to run again (IF NOT EXISTS), and a migration is
 * recorded in schema_migrations only after all its statements ran: one interrupted half-way is
 * simply run again. Concurrent migrators (several workers starting at once) are serialised with a
 * named lock (GET_LOCK), held on one connection.
 */
export interface Migration {
  version: number
  name: string
  statements: string[]
}

// ascii_bin: webhook ids and topics are case-sensitive byte strings (they are Kafka keys and topic
// names), so 'Acme' and 'acme' must stay distinct, and ascii keeps the indexes small.
const ID = 'CHARACTER SET ascii COLLATE ascii_bin'

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'webhooks and replay_jobs',
    statements: [
      `CREATE TABLE IF NOT EXISTS webhooks (
        id VARCHAR(64) ${ID} NOT NULL,
        url VARCHAR(2048) NOT NULL,
        secret VARCHAR(255) NULL,
        -- invalid: the endpoint answered 410 Gone or failed a CRC check; it needs a new check
        state ENUM('valid','invalid') NOT NULL DEFAULT 'valid',
        created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        last_check_at DATETIME(3) NULL,
        last_check_ok BOOLEAN NULL,
        last_check_error TEXT NULL,
        invalid_reason TEXT NULL,
        PRIMARY KEY (id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS replay_jobs (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        webhook_id VARCHAR(64) ${ID} NOT NULL,
        topic VARCHAR(249) ${ID} NOT NULL,
        from_ms BIGINT NOT NULL,
        to_ms BIGINT NOT NULL,
        state ENUM('OPEN','STARTED','ONGOING','COMPLETED','FAILED','CANCELLED') NOT NULL DEFAULT 'OPEN',
        attempt INT UNSIGNED NOT NULL DEFAULT 0,
        max_attempts INT UNSIGNED NOT NULL DEFAULT 5,
        lease_token CHAR(32) ${ID} NULL,
        owner VARCHAR(255) NULL,
        heartbeat_at DATETIME(3) NULL,
        run_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        \`partition\` INT NULL,
        partition_count INT NULL,
        start_offset BIGINT NULL,
        checkpoint_offset BIGINT NULL,
        end_offset BIGINT NULL,
        scanned BIGINT UNSIGNED NOT NULL DEFAULT 0,
        matched BIGINT UNSIGNED NOT NULL DEFAULT 0,
        delivered BIGINT UNSIGNED NOT NULL DEFAULT 0,
        duplicates BIGINT UNSIGNED NOT NULL DEFAULT 0,
        failed BIGINT UNSIGNED NOT NULL DEFAULT 0,
        last_error TEXT NULL,
        created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        started_at DATETIME(3) NULL,
        finished_at DATETIME(3) NULL,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        completion_sent BOOLEAN NOT NULL DEFAULT FALSE,
        -- One active job per webhook, enforced by the database: NULL for finished jobs (a UNIQUE
        -- index allows any number of NULLs), the webhook id while OPEN, STARTED or ONGOING.
        active_webhook_id VARCHAR(64) ${ID} AS (IF(state IN ('OPEN','STARTED','ONGOING'), webhook_id, NULL)) STORED,
        PRIMARY KEY (id),
        UNIQUE KEY uq_replay_jobs_active_webhook (active_webhook_id),
        -- claim: OPEN jobs due now, oldest first
        KEY ix_replay_jobs_state_run_at (state, run_at, id),
        -- claim: STARTED/ONGOING jobs whose heartbeat is stale, stalest first
        KEY ix_replay_jobs_state_heartbeat (state, heartbeat_at, id),
        -- replay list --webhook-id, newest first; also serves the foreign key
        KEY ix_replay_jobs_webhook (webhook_id, id),
        CONSTRAINT fk_replay_jobs_webhook FOREIGN KEY (webhook_id) REFERENCES webhooks (id),
        CONSTRAINT ck_replay_jobs_range CHECK (from_ms < to_ms),
        CONSTRAINT ck_replay_jobs_attempts CHECK (max_attempts >= 1)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  {
    version: 2,
    name: 'replay jobs over several topics (cross-datacenter), one checkpoint per source',
    statements: [
      // topics: a JSON array when a job reads more than one topic (NULL: just `topic`).
      // sources: the plan, a JSON array of {topic, partition, partitionCount, startOffset, endOffset,
      // checkpointOffset}, one per partition read; the single-topic columns mirror the first.
      `ALTER TABLE replay_jobs
        ADD COLUMN IF NOT EXISTS topics TEXT ${ID} NULL AFTER topic,
        ADD COLUMN IF NOT EXISTS sources TEXT ${ID} NULL AFTER end_offset`,
    ],
  },
  {
    version: 3,
    name: 'late grace: how far past `to` a replay reads for events appended late',
    statements: [
      // 0 for jobs submitted before: they read up to the first record at or after `to`, as they did.
      'ALTER TABLE replay_jobs ADD COLUMN IF NOT EXISTS late_grace_ms BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER to_ms',
    ],
  },
  {
    version: 4,
    name: 'partition counts of delivery topics as first seen; notes on a job (what it may have missed)',
    statements: [
      // Kafka moves keys when a topic's partition count grows: when each count was first seen
      // tells a replay which partition a webhook's older events are in.
      `CREATE TABLE IF NOT EXISTS topic_partition_counts (
        topic VARCHAR(249) ${ID} NOT NULL,
        partition_count INT UNSIGNED NOT NULL,
        first_seen_ms BIGINT NOT NULL,
        PRIMARY KEY (topic, partition_count)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      // notes: a JSON array of sentences, e.g. a partition count that changed at an unknown time.
      'ALTER TABLE replay_jobs ADD COLUMN IF NOT EXISTS notes TEXT NULL AFTER sources',
    ],
  },
  {
    version: 5,
    name: 'partial replays: the range reaches before what the log still holds',
    statements: ['ALTER TABLE replay_jobs ADD COLUMN IF NOT EXISTS partial BOOLEAN NOT NULL DEFAULT FALSE AFTER notes'],
  },
  {
    version: 6,
    name: 'completion event sweeper, run start for rates',
    statements: [
      // A job ended by someone other than its worker (a stale claim, a cancel while OPEN) still
      // owes its final event; a worker's sweeper claims the sending until this time, so exactly one
      // sends it, and gives up after a few attempts.
      `ALTER TABLE replay_jobs
        ADD COLUMN IF NOT EXISTS completion_claimed_until DATETIME(3) NULL,
        ADD COLUMN IF NOT EXISTS completion_attempts INT UNSIGNED NOT NULL DEFAULT 0`,
      'CREATE INDEX IF NOT EXISTS ix_replay_jobs_completion ON replay_jobs (completion_sent, state, finished_at)',
      // Where the current run began delivering (time, delivered count, checkpoint): `replay status`
      // measures rates from here, not over time spent queued or between attempts.
      `ALTER TABLE replay_jobs
        ADD COLUMN IF NOT EXISTS run_started_at DATETIME(3) NULL,
        ADD COLUMN IF NOT EXISTS run_start_delivered BIGINT UNSIGNED NULL,
        ADD COLUMN IF NOT EXISTS run_start_checkpoint BIGINT NULL`,
    ],
  },
  {
    version: 7,
    name: 'replay_scan_chunks',
    statements: [
      // A large job's range cut into chunks that any worker may scan (see replay/scale-out.ts).
      `CREATE TABLE IF NOT EXISTS replay_scan_chunks (
        job_id BIGINT UNSIGNED NOT NULL,
        topic VARCHAR(249) ${ID} NOT NULL,
        \`partition\` INT NOT NULL,
        start_offset BIGINT NOT NULL,
        end_offset BIGINT NOT NULL,
        state ENUM('OPEN','SCANNING','DONE') NOT NULL DEFAULT 'OPEN',
        lease_token CHAR(32) ${ID} NULL,
        owner VARCHAR(255) NULL,
        claimed_at DATETIME(3) NULL,
        scanned BIGINT UNSIGNED NOT NULL DEFAULT 0,
        matched BIGINT UNSIGNED NOT NULL DEFAULT 0,
        -- the chunk's matching records, or NULL when they were too many to keep here (dense): the
        -- job's owner then reads that chunk from Kafka itself
        records LONGBLOB NULL,
        dense BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (job_id, topic, \`partition\`, start_offset),
        -- claim: open chunks, and scanning ones whose scanner went quiet
        KEY ix_replay_scan_chunks_claim (state, claimed_at),
        CONSTRAINT fk_replay_scan_chunks_job FOREIGN KEY (job_id) REFERENCES replay_jobs (id) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  {
    version: 8,
    name: 'webhook secrets encrypted at rest, with the id of their key',
    statements: [
      // A migration has no key, so rows from before keep their plaintext `secret` until the first
      // use with a key encrypts it and clears the column (webhooks/secrets.ts). secret_sealed is
      // iv | tag | AES-256-GCM ciphertext of up to 255 characters; the key id tells a row under
      // another key (a rotation not finished everywhere) from a corrupt one.
      `ALTER TABLE webhooks
        ADD COLUMN IF NOT EXISTS secret_sealed VARBINARY(1100) NULL AFTER secret,
        ADD COLUMN IF NOT EXISTS secret_key_id CHAR(16) ${ID} NULL AFTER secret_sealed`,
    ],
  },
]

export const LATEST_VERSION = Math.max(...MIGRATIONS.map((migration) => migration.version))

export interface AppliedMigration {
  version: number
  name: string
  appliedAt: string
}

export interface MigrationStatus {
  /** highest applied version; 0 on an empty database */
  current: number
  /** highest version this replayctl knows */
  latest: number
  applied: AppliedMigration[]
  pending: {version: number; name: string}[]
  /** the database was migrated by a newer replayctl */
  ahead: boolean
}

export interface MigrateResult {
  applied: {version: number; name: string}[]
  current: number
}

const CREATE_SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT UNSIGNED NOT NULL,
  name VARCHAR(255) NOT NULL,
  applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

type Queryable = Pick<Pool, 'query'>

async function readApplied(db: Queryable): Promise<AppliedMigration[]> {
  try {
    const [rows] = await db.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
    return (rows as {version: number; name: string; applied_at: Date}[]).map((row) => ({
      version: Number(row.version),
      name: row.name,
      appliedAt: row.applied_at.toISOString(),
    }))
  } catch (error) {
    if ((error as {code?: string}).code === 'ER_NO_SUCH_TABLE') return []
    throw error
  }
}

function summarise(applied: AppliedMigration[]): MigrationStatus {
  const done = new Set(applied.map((migration) => migration.version))
  const current = applied.reduce((max, migration) => Math.max(max, migration.version), 0)
  return {
    current,
    latest: LATEST_VERSION,
    applied,
    pending: MIGRATIONS.filter((migration) => !done.has(migration.version)).map(({version, name}) => ({version, name})),
    ahead: current > LATEST_VERSION,
  }
}

export async function migrationStatus(pool: Pool): Promise<MigrationStatus> {
  return summarise(await readApplied(pool))
}

/** Applies pending migrations in order; returns the ones this call applied. */
export async function migrate(pool: Pool, options: {lockTimeoutS?: number} = {}): Promise<MigrateResult> {
  const before = summarise(await readApplied(pool))
  if (before.pending.length === 0) return {applied: [], current: before.current}

  const connection = await pool.getConnection()
  let broken = false
  try {
    const [[{database}]] = (await connection.query('SELECT DATABASE() AS `database`')) as unknown as [
      [{database: string}],
    ]
    // GET_LOCK names are server-wide and at most 64 characters.
    const lockName = `replayctl.migrate.${createHash('sha1').update(database).digest('hex').slice(0, 32)}`
    const [[{locked}]] = (await connection.query('SELECT GET_LOCK(?, ?) AS locked', [
      lockName,
      options.lockTimeoutS ?? 60,
    ])) as unknown as [[{locked: number | null}]]
    if (locked !== 1) {
      throw new UserError(
        'DATABASE_UNAVAILABLE',
        `another replayctl has been migrating database '${database}' for over ${options.lockTimeoutS ?? 60} s`,
        'wait for it to finish, then run `replayctl db migrate` again',
      )
    }
    try {
      await connection.query(CREATE_SCHEMA_MIGRATIONS)
      // Read again under the lock: another process may have migrated while we waited.
      const done = new Set((await readApplied(connection)).map((migration) => migration.version))
      const applied: MigrateResult['applied'] = []
      for (const migration of MIGRATIONS) {
        if (done.has(migration.version)) continue
        for (const statement of migration.statements) await connection.query(statement)
        await connection.query('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [
          migration.version,
          migration.name,
        ])
        applied.push({version: migration.version, name: migration.name})
      }
      return {applied, current: summarise(await readApplied(connection)).current}
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [lockName]).catch(() => {
        // The session is gone, and the lock with it.
        broken = true
      })
    }
  } catch (error) {
    if ((error as {fatal?: boolean}).fatal) broken = true
    throw error
  } finally {
    if (broken) connection.destroy()
    else connection.release()
  }
}
