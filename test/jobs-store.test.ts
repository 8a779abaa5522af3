import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {dbNow, openPool, withRetry, type Pool} from '../src/core/db/database.js'
import {UserError} from '../src/core/shared/errors.js'
import {
  cancelJob,
  checkpointJob,
  claimJob,
  completeJob,
  failJob,
  getJob,
  heartbeatJob,
  LeaseLostError,
  listJobs,
  markCancelled,
  markCompletionSent,
  releaseJob,
  retryJob,
  startJob,
  submitJob,
  type ClaimedJob,
} from '../src/core/replay/store/jobs/index.js'
import {LATEST_VERSION, migrate, migrationStatus, MIGRATIONS} from '../src/core/db/migrations.js'
import {WebhookSecrets} from '../src/core/webhooks/secrets.js'
import {
  addWebhook,
  getWebhook,
  listWebhooks,
  markInvalid,
  recordCheck,
  removeWebhook,
} from '../src/core/webhooks/store.js'
import {type CliResult, holdCommits, isOneLineError, nth, runCli, testSecretKey, uniqueName} from './helpers.js'

/**
 * The MySQL layer against the real MariaDB on 127.0.0.1:3306. This file owns the databases it
 * names with uniqueName() and drops them at the end; nothing here is mocked.
 */
const SERVER = 'mysql://root@127.0.0.1:3306'
const DATABASE = uniqueName('rt')
const URL = `${SERVER}/${DATABASE}`
const createdDatabases = [DATABASE]
const extraPools: Pool[] = []

let pool: Pool

const HOUR = 3_600_000
const now = Date.now()
const range = {topic: 'delivery_log', fromMs: now - 2 * HOUR, toMs: now - HOUR}

before(async () => {
  pool = await openPool(URL, {connectionLimit: 20})
})

after(async () => {
  await Promise.all(extraPools.map((extra) => extra.end().catch(() => {})))
  for (const database of createdDatabases) await pool.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await pool.end()
})

/** Several independent pools: separate sessions, as separate worker processes would have. */
async function pools(count: number, url = URL): Promise<Pool[]> {
  const opened = await Promise.all(Array.from({length: count}, () => openPool(url, {connectionLimit: 2})))
  extraPools.push(...opened)
  return opened
}

async function reset(): Promise<void> {
  await pool.query('DELETE FROM replay_jobs')
  await pool.query('DELETE FROM webhooks')
}

async function webhook(id = uniqueName('wh')): Promise<string> {
  await addWebhook(pool, {id, url: `https://example.com/hooks/${id}`})
  return id
}

async function row(id: number): Promise<Record<string, unknown>> {
  const [rows] = await pool.query('SELECT * FROM replay_jobs WHERE id = ?', [id])
  return nth(rows as Record<string, unknown>[], 0)
}

/** Ages a job's heartbeat by the database clock. */
async function ageHeartbeat(id: number, seconds: number): Promise<void> {
  await pool.query('UPDATE replay_jobs SET heartbeat_at = NOW(3) - INTERVAL ? SECOND WHERE id = ?', [seconds, id])
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<UserError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof UserError, `expected UserError ${code}, got ${String(error)}`)
    assert.equal(error.code, code, error.line)
    if (pattern) assert.match(error.line, pattern)
    return error
  }
  assert.fail(`expected ${code}, but it succeeded`)
}

async function claim(owner = 'worker-a', staleAfterMs = 60_000): Promise<ClaimedJob> {
  const job = await claimJob(pool, {owner, staleAfterMs})
  assert.ok(job, 'expected a job to claim')
  return job
}

describe('migrations', () => {
  test('the first use created the database and applied every migration once', async () => {
    const status = await migrationStatus(pool)
    assert.equal(status.current, LATEST_VERSION)
    assert.deepEqual(status.pending, [])
    assert.deepEqual(
      status.applied.map((m) => m.version),
      MIGRATIONS.map((m) => m.version),
    )
    const [tables] = await pool.query('SHOW TABLES')
    const names = (tables as Record<string, string>[]).map((t) => Object.values(t)[0]).sort()
    assert.deepEqual(names, [
      'replay_jobs',
      'replay_scan_chunks',
      'schema_migrations',
      'topic_partition_counts',
      'webhooks',
    ])
  })

  test('migrate again applies nothing and records nothing new', async () => {
    const again = await migrate(pool)
    assert.deepEqual(again, {applied: [], current: LATEST_VERSION})
    const [rows] = await pool.query('SELECT COUNT(*) AS n FROM schema_migrations')
    assert.equal(Number(nth(rows as {n: number}[], 0).n), MIGRATIONS.length)
  })

  test('concurrent first uses of an empty database migrate it exactly once', async () => {
    const fresh = uniqueName('rt')
    createdDatabases.push(fresh)
    const racers = await Promise.all(
      Array.from({length: 5}, () => openPool(`${SERVER}/${fresh}`, {migrate: false, create: true, connectionLimit: 2})),
    )
    extraPools.push(...racers)
    const results = await Promise.all(racers.map((racer) => migrate(racer)))
    assert.equal(
      results.reduce((sum, result) => sum + result.applied.length, 0),
      MIGRATIONS.length,
    )
    assert.ok(results.every((result) => result.current === LATEST_VERSION))
    const [rows] = await nth(racers, 0).query('SELECT version FROM schema_migrations ORDER BY version')
    assert.deepEqual(
      (rows as {version: number}[]).map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    )
  })

  test('db status changes nothing; db migrate reports what it applied, then nothing', async () => {
    const fresh = uniqueName('rt')
    createdDatabases.push(fresh)
    const env = {REPLAYCTL_MYSQL_URL: `${SERVER}/${fresh}`}
    const status = await runCli(['db', 'status', '--json'], {env})
    assert.equal(status.code, 0, status.stderr)
    assert.equal(status.json.exists, false)
    assert.equal(status.json.current, 0)
    assert.equal(status.json.pending.length, MIGRATIONS.length)
    const [found] = await pool.query('SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
      fresh,
    ])
    assert.equal(Number(nth(found as {n: number}[], 0).n), 0, 'db status must not create the database')

    const first = await runCli(['db', 'migrate', '--json'], {env})
    assert.equal(first.code, 0, first.stderr)
    assert.deepEqual(
      first.json.applied.map((m: {version: number}) => m.version),
      MIGRATIONS.map((m) => m.version),
    )
    const second = await runCli(['db', 'migrate'], {env})
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stdout, new RegExp(`already at version ${LATEST_VERSION}`))
    const after = await runCli(['db', 'status', '--json'], {env})
    assert.equal(after.json.exists, true)
    assert.equal(after.json.current, LATEST_VERSION)
    assert.deepEqual(after.json.pending, [])
  })
})

describe('one active job per webhook', () => {
  test('a second submit is refused with JOB_IN_PROGRESS naming the active job', async () => {
    await reset()
    const id = await webhook()
    const job = await submitJob(pool, {webhookId: id, ...range})
    assert.equal(job.state, 'OPEN')
    assert.equal(job.attempt, 0)
    assert.equal(job.maxAttempts, 5)
    const error = await rejectsWith(
      submitJob(pool, {webhookId: id, ...range}),
      'JOB_IN_PROGRESS',
      new RegExp(`job ${job.id} .*replayctl replay cancel ${job.id}`),
    )
    assert.equal(error.message, 'A replay job is already in progress for this webhook')
  })

  test('refused submits use up no job id: two refused, then the next accepted one is the next id', async () => {
    await reset()
    const id = await webhook()
    const first = await submitJob(pool, {webhookId: id, ...range})
    for (let i = 0; i < 2; i++) await rejectsWith(submitJob(pool, {webhookId: id, ...range}), 'JOB_IN_PROGRESS')
    await cancelJob(pool, first.id)
    const next = await submitJob(pool, {webhookId: id, ...range})
    assert.equal(next.id, first.id + 1)
  })

  test('the database itself enforces it, even for a raw INSERT', async () => {
    await reset()
    const id = await webhook()
    await submitJob(pool, {webhookId: id, ...range})
    await assert.rejects(
      pool.query('INSERT INTO replay_jobs (webhook_id, topic, from_ms, to_ms) VALUES (?, ?, ?, ?)', [id, 't', 1, 2]),
      (error: {code?: string}) => error.code === 'ER_DUP_ENTRY',
    )
  })

  test('concurrent submits from separate sessions: exactly one wins', async () => {
    await reset()
    const id = await webhook()
    const submitters = await pools(8)
    const outcomes = await Promise.allSettled(
      submitters.map((submitter) => submitJob(submitter, {webhookId: id, ...range})),
    )
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled')
    const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
    assert.equal(won.length, 1)
    assert.equal(lost.length, 7)
    for (const outcome of lost) assert.equal((outcome.reason as UserError).code, 'JOB_IN_PROGRESS')
    const [rows] = await pool.query('SELECT COUNT(*) AS n FROM replay_jobs WHERE webhook_id = ?', [id])
    assert.equal(Number(nth(rows as {n: number}[], 0).n), 1)
  })

  test('finished jobs do not count: a new submit succeeds after completion', async () => {
    await reset()
    const id = await webhook()
    await submitJob(pool, {webhookId: id, ...range})
    const first = await claim()
    await completeJob(pool, {id: first.id, leaseToken: first.leaseToken})
    const second = await submitJob(pool, {webhookId: id, ...range})
    assert.notEqual(second.id, first.id)
    assert.equal((await getJob(pool, first.id)).state, 'COMPLETED')
  })

  test('unknown webhook and bad ranges are refused without a row', async () => {
    await reset()
    await rejectsWith(submitJob(pool, {webhookId: 'nobody-here', ...range}), 'WEBHOOK_NOT_FOUND')
    const id = await webhook()
    await rejectsWith(
      submitJob(pool, {webhookId: id, topic: 'delivery_log', fromMs: now, toMs: now}),
      'REPLAY_RANGE_INVALID',
      /from_date must be before to_date/,
    )
    await rejectsWith(submitJob(pool, {webhookId: id, topic: 'bad topic!', fromMs: 1, toMs: 2}), 'INVALID_ARGUMENT')
    assert.deepEqual(await listJobs(pool), [])
  })
})

describe('claiming', () => {
  test('N concurrent claimers on M jobs never get the same job', async () => {
    await reset()
    const M = 15
    const ids: number[] = []
    for (let i = 0; i < M; i++) ids.push((await submitJob(pool, {webhookId: await webhook(), ...range})).id)
    const claimers = await pools(6)
    const claimed: ClaimedJob[] = []
    await Promise.all(
      claimers.map(async (claimer, n) => {
        for (;;) {
          const job = await claimJob(claimer, {owner: `worker-${n}`, staleAfterMs: 60_000})
          if (!job) return
          claimed.push(job)
        }
      }),
    )
    assert.equal(claimed.length, M)
    assert.deepEqual(
      claimed.map((job) => job.id).sort((a, b) => a - b),
      ids,
    )
    assert.equal(new Set(claimed.map((job) => job.leaseToken)).size, M)
    for (const job of claimed) {
      assert.equal(job.state, 'STARTED')
      assert.equal(job.attempt, 1)
      assert.match(job.leaseToken, /^[0-9a-f]{32}$/)
      assert.ok(job.heartbeatAt && job.startedAt)
    }
    assert.equal(await claimJob(pool, {owner: 'late', staleAfterMs: 60_000}), null)
  })

  test('a job not yet due is not claimed', async () => {
    await reset()
    const later = await submitJob(pool, {webhookId: await webhook(), ...range, runAtMs: (await dbNow(pool)) + HOUR})
    assert.equal(await claimJob(pool, {owner: 'w', staleAfterMs: 60_000}), null)
    assert.equal((await getJob(pool, later.id)).state, 'OPEN')
  })

  test('stale takeover goes by the database clock and hands out a new lease', async () => {
    await reset()
    const submitted = await submitJob(pool, {webhookId: await webhook(), ...range})
    const first = await claim('worker-a')
    assert.equal(first.id, submitted.id)
    const clock = await dbNow(pool)
    assert.ok(Math.abs(Date.parse(first.heartbeatAt!) - clock) < 5_000, 'heartbeat is written with NOW(3)')

    // 1 s old heartbeat, stale after 3 s: not stale yet.
    await ageHeartbeat(first.id, 1)
    assert.equal(await claimJob(pool, {owner: 'worker-b', staleAfterMs: 3_000}), null)

    // 5 s old: stale.
    await ageHeartbeat(first.id, 5)
    const second = await claim('worker-b', 3_000)
    assert.equal(second.id, first.id)
    assert.notEqual(second.leaseToken, first.leaseToken)
    assert.equal(second.owner, 'worker-b')
    assert.equal(second.attempt, 2)
    assert.equal(second.startedAt, first.startedAt, 'started_at keeps the first start')
    assert.ok(Date.parse(second.heartbeatAt!) > Date.parse(first.heartbeatAt!) - 5_000)
  })

  test('a claimer stalled before its COMMIT locks no job it did not take: a running job is taken over', async () => {
    await reset()
    await submitJob(pool, {webhookId: await webhook(), ...range})
    const running = await claim('worker-a')
    // worker-b looks for work while worker-a's job is running, and stalls (a frozen process, a VM
    // pause) with its claim's transaction open.
    const [stalling] = await pools(1)
    const commit = holdCommits(stalling!)
    const stalledClaim = claimJob(stalling!, {owner: 'worker-b', staleAfterMs: 3_000})
    await commit.reached

    const connection = await pool.getConnection()
    try {
      await connection.query('START TRANSACTION')
      await connection.query('SELECT id FROM replay_jobs WHERE id = ? FOR UPDATE NOWAIT', [running.id])
    } finally {
      await connection.query('ROLLBACK')
      connection.release()
    }
    // worker-a goes quiet too; worker-c takes its job over while worker-b is still stalled.
    await ageHeartbeat(running.id, 5)
    const taken = await claim('worker-c', 3_000)
    assert.equal(taken.id, running.id)
    commit.release()
    assert.equal(await stalledClaim, null)
  })

  test('a fenced write with an old lease token reports lease loss and changes nothing', async () => {
    await reset()
    await submitJob(pool, {webhookId: await webhook(), ...range})
    const old = await claim('worker-a')
    await startJob(pool, {
      id: old.id,
      leaseToken: old.leaseToken,
      partition: 3,
      partitionCount: 12,
      startOffset: 100,
      endOffset: 900,
    })
    await ageHeartbeat(old.id, 120)
    const current = await claim('worker-b', 60_000)
    assert.equal(current.id, old.id)
    await checkpointJob(pool, {
      id: current.id,
      leaseToken: current.leaseToken,
      checkpointOffset: 150,
      counters: {delivered: 40},
    })
    const before = await row(old.id)

    const stale = {id: old.id, leaseToken: old.leaseToken}
    assert.deepEqual(await heartbeatJob(pool, stale), {leaseLost: true, cancelRequested: false})
    await assert.rejects(
      checkpointJob(pool, {...stale, checkpointOffset: 999, counters: {delivered: 1}}),
      LeaseLostError,
    )
    await assert.rejects(
      startJob(pool, {...stale, partition: 0, partitionCount: 1, startOffset: 0, endOffset: 1}),
      LeaseLostError,
    )
    await assert.rejects(completeJob(pool, stale), LeaseLostError)
    await assert.rejects(failJob(pool, {...stale, error: 'zombie'}), LeaseLostError)
    await assert.rejects(markCancelled(pool, stale), LeaseLostError)
    await assert.rejects(releaseJob(pool, stale), LeaseLostError)
    await assert.rejects(markCompletionSent(pool, stale), LeaseLostError)
    await assert.rejects(
      checkpointJob(pool, {...stale, checkpointOffset: 1, counters: {}}),
      (error: unknown) => error instanceof LeaseLostError && !(error instanceof UserError) && error.jobId === old.id,
    )
    assert.deepEqual(await row(old.id), before, 'the zombie changed nothing')

    // The current owner still holds it.
    assert.deepEqual(await heartbeatJob(pool, current), {leaseLost: false, cancelRequested: false})
  })

  test('a job whose attempts are used up becomes FAILED instead of being claimed', async () => {
    await reset()
    const job = await submitJob(pool, {webhookId: await webhook(), ...range, maxAttempts: 2})
    const a = await claim('worker-a')
    await ageHeartbeat(job.id, 120)
    const b = await claim('worker-b')
    assert.equal(b.attempt, 2)
    await ageHeartbeat(job.id, 120)
    assert.equal(await claimJob(pool, {owner: 'worker-c', staleAfterMs: 60_000}), null)
    const failed = await getJob(pool, job.id)
    assert.equal(failed.state, 'FAILED')
    assert.match(failed.lastError ?? '', /2 of 2 attempts/)
    assert.ok(failed.finishedAt)
    assert.equal((await row(job.id)).lease_token, null)
    assert.equal((await heartbeatJob(pool, b)).leaseLost, true)
    assert.equal((await heartbeatJob(pool, a)).leaseLost, true)
  })

  test('failJob with retryInMs requeues while attempts remain, then fails for good', async () => {
    await reset()
    const job = await submitJob(pool, {webhookId: await webhook(), ...range, maxAttempts: 2})
    const first = await claim()
    assert.equal(
      await failJob(pool, {
        id: first.id,
        leaseToken: first.leaseToken,
        error: 'kafka unavailable',
        retryInMs: 0,
        checkpointOffset: 7,
      }),
      'OPEN',
    )
    const requeued = await getJob(pool, job.id)
    assert.equal(requeued.state, 'OPEN')
    assert.equal(requeued.attempt, 1)
    assert.equal(requeued.checkpointOffset, 7)
    const second = await claim()
    assert.equal(second.attempt, 2)
    assert.equal(
      await failJob(pool, {
        id: second.id,
        leaseToken: second.leaseToken,
        error: 'kafka unavailable again',
        retryInMs: 0,
      }),
      'FAILED',
    )
    const failed = await getJob(pool, job.id)
    assert.equal(failed.state, 'FAILED')
    assert.equal(failed.lastError, 'kafka unavailable again')
  })

  test('an operation survives its connections being killed (as in a MariaDB restart)', async () => {
    await reset()
    await submitJob(pool, {webhookId: await webhook(), ...range})
    const [worker] = await pools(1)
    const job = await claimJob(worker!, {owner: 'w', staleAfterMs: 60_000})
    assert.ok(job)
    const [sessions] = await pool.query(
      'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
      [DATABASE],
    )
    const ownSessions = (sessions as {id: number}[]).map((s) => s.id)
    const [mine] = await worker!.query('SELECT CONNECTION_ID() AS id')
    const workerSession = nth(mine as {id: number}[], 0).id
    assert.ok(ownSessions.includes(workerSession))
    await pool.query('KILL CONNECTION ?', [workerSession])
    assert.deepEqual(await heartbeatJob(worker!, job), {leaseLost: false, cancelRequested: false})
    await checkpointJob(worker!, {id: job.id, leaseToken: job.leaseToken, checkpointOffset: 5, counters: {scanned: 5}})
    assert.equal((await getJob(pool, job.id)).checkpointOffset, 5)
  })

  test(
    'withRetry retries deadlocks with backoff, passes other errors through, and gives up with ' + 'one line',
    async () => {
      let calls = 0
      const value = await withRetry(
        pool,
        async () => {
          calls++
          if (calls < 3) throw Object.assign(new Error('Deadlock found'), {code: 'ER_LOCK_DEADLOCK', errno: 1213})
          return 'ok'
        },
        {initialDelayMs: 1},
      )
      assert.equal(value, 'ok')
      assert.equal(calls, 3)

      const syntax = Object.assign(new Error('You have an error in your SQL syntax'), {
        code: 'ER_PARSE_ERROR',
        errno: 1064,
      })
      let syntaxCalls = 0
      await assert.rejects(
        withRetry(pool, async () => {
          syntaxCalls++
          throw syntax
        }),
        (error) => error === syntax,
      )
      assert.equal(syntaxCalls, 1)

      const error = await rejectsWith(
        withRetry(
          pool,
          async () => {
            throw Object.assign(new Error('Lock wait timeout exceeded'), {code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205})
          },
          {maxAttempts: 3, initialDelayMs: 1},
        ),
        'DATABASE_UNAVAILABLE',
        /lock wait timeout, after 3 tries/,
      )
      assert.ok(!error.line.includes('\n'))
    },
  )
})

describe('transitions', () => {
  test('start keeps an earlier checkpoint; release hands back without using an attempt', async () => {
    await reset()
    const job = await submitJob(pool, {webhookId: await webhook(), ...range})
    const a = await claim('worker-a')
    const started = await startJob(pool, {
      id: a.id,
      leaseToken: a.leaseToken,
      partition: 2,
      partitionCount: 6,
      startOffset: 10,
      endOffset: 500,
    })
    assert.equal(started.state, 'ONGOING')
    assert.equal(started.checkpointOffset, 10)
    assert.deepEqual(
      [started.partition, started.partitionCount, started.startOffset, started.endOffset],
      [2, 6, 10, 500],
    )
    await checkpointJob(pool, {
      id: a.id,
      leaseToken: a.leaseToken,
      checkpointOffset: 50,
      counters: {scanned: 40, matched: 12, delivered: 10, duplicates: 2},
    })

    assert.equal(await releaseJob(pool, {id: a.id, leaseToken: a.leaseToken}), 'OPEN')
    const released = await getJob(pool, job.id)
    assert.equal(released.state, 'OPEN')
    assert.equal(released.attempt, 0)
    assert.equal(released.owner, null)
    assert.equal(released.checkpointOffset, 50)
    assert.deepEqual(
      [released.scanned, released.matched, released.delivered, released.duplicates, released.failed],
      [40, 12, 10, 2, 0],
    )
    assert.equal((await row(job.id)).lease_token, null)
    await assert.rejects(
      checkpointJob(pool, {id: a.id, leaseToken: a.leaseToken, checkpointOffset: 60, counters: {}}),
      LeaseLostError,
    )

    const b = await claim('worker-b')
    assert.equal(b.attempt, 1)
    const resumed = await startJob(pool, {
      id: b.id,
      leaseToken: b.leaseToken,
      partition: 2,
      partitionCount: 6,
      startOffset: 10,
      endOffset: 500,
    })
    assert.equal(resumed.checkpointOffset, 50, 'resumes at the checkpoint, not the start')
    await completeJob(pool, {id: b.id, leaseToken: b.leaseToken, checkpointOffset: 500, counters: {delivered: 300}})
    await completeJob(pool, {id: b.id, leaseToken: b.leaseToken}) // a retried reply is idempotent
    await markCompletionSent(pool, b)
    const done = await getJob(pool, job.id)
    assert.equal(done.state, 'COMPLETED')
    assert.equal(done.delivered, 300)
    assert.equal(done.completionSent, true)
    await assert.rejects(
      checkpointJob(pool, {id: b.id, leaseToken: b.leaseToken, checkpointOffset: 1, counters: {}}),
      LeaseLostError,
    )
  })

  test('cancel: OPEN at once; running via the heartbeat and markCancelled; finished -> conflict', async () => {
    await reset()
    const open = await submitJob(pool, {webhookId: await webhook(), ...range})
    const cancelled = await cancelJob(pool, open.id)
    assert.equal(cancelled.outcome, 'cancelled')
    assert.equal(cancelled.job.state, 'CANCELLED')

    const running = await submitJob(pool, {webhookId: await webhook(), ...range})
    const lease = await claim()
    assert.equal(lease.id, running.id)
    const requested = await cancelJob(pool, running.id)
    assert.equal(requested.outcome, 'requested')
    assert.equal(requested.job.state, 'STARTED')
    assert.equal(requested.job.cancelRequested, true)
    assert.deepEqual(await heartbeatJob(pool, lease), {leaseLost: false, cancelRequested: true})
    await markCancelled(pool, {id: lease.id, leaseToken: lease.leaseToken, checkpointOffset: 33})
    const final = await getJob(pool, running.id)
    assert.equal(final.state, 'CANCELLED')
    assert.equal(final.checkpointOffset, 33)

    await rejectsWith(cancelJob(pool, running.id), 'JOB_STATE_CONFLICT', /already CANCELLED/)
    await rejectsWith(cancelJob(pool, 987654321), 'JOB_NOT_FOUND')
  })

  test('a stale job with a cancel pending is cancelled by the next claimer', async () => {
    await reset()
    const job = await submitJob(pool, {webhookId: await webhook(), ...range})
    const dead = await claim()
    await cancelJob(pool, job.id)
    await ageHeartbeat(job.id, 120)
    assert.equal(await claimJob(pool, {owner: 'w', staleAfterMs: 60_000}), null)
    assert.equal((await getJob(pool, job.id)).state, 'CANCELLED')
    assert.equal((await heartbeatJob(pool, dead)).leaseLost, true)
  })

  test(
    'retry: FAILED/CANCELLED -> OPEN keeping progress; others conflict; a second active job -> ' + 'JOB_IN_PROGRESS',
    async () => {
      await reset()
      const id = await webhook()
      const job = await submitJob(pool, {webhookId: id, ...range})
      const lease = await claim()
      await startJob(pool, {
        id: lease.id,
        leaseToken: lease.leaseToken,
        partition: 0,
        partitionCount: 1,
        startOffset: 0,
        endOffset: 100,
      })
      await rejectsWith(retryJob(pool, job.id), 'JOB_STATE_CONFLICT', /ONGOING/)
      assert.equal(
        await failJob(pool, {
          id: lease.id,
          leaseToken: lease.leaseToken,
          error: 'webhook answered 500',
          checkpointOffset: 42,
          counters: {delivered: 42, failed: 1},
        }),
        'FAILED',
      )

      // Another job for the webhook is active now: retry must not create a second.
      const other = await submitJob(pool, {webhookId: id, ...range})
      await rejectsWith(retryJob(pool, job.id), 'JOB_IN_PROGRESS', new RegExp(`job ${other.id}`))
      assert.equal((await getJob(pool, job.id)).state, 'FAILED')
      await cancelJob(pool, other.id)

      const retried = await retryJob(pool, job.id)
      assert.equal(retried.state, 'OPEN')
      assert.equal(retried.attempt, 0)
      assert.equal(retried.checkpointOffset, 42)
      assert.equal(retried.delivered, 42)
      assert.equal(retried.failed, 1)
      assert.equal(retried.finishedAt, null)
      assert.equal(retried.owner, null)
      await rejectsWith(retryJob(pool, job.id), 'JOB_STATE_CONFLICT', /OPEN/)
      assert.equal((await heartbeatJob(pool, lease)).leaseLost, true, 'the failed run holds no lease after a retry')

      const next = await claim()
      const resumed = await startJob(pool, {
        id: next.id,
        leaseToken: next.leaseToken,
        partition: 0,
        partitionCount: 1,
        startOffset: 0,
        endOffset: 100,
      })
      assert.equal(resumed.checkpointOffset, 42)
      await completeJob(pool, {id: next.id, leaseToken: next.leaseToken})
      await rejectsWith(retryJob(pool, job.id), 'JOB_STATE_CONFLICT', /COMPLETED/)
    },
  )

  test('listJobs filters by state and webhook, newest first', async () => {
    await reset()
    const a = await webhook()
    const b = await webhook()
    const j1 = await submitJob(pool, {webhookId: a, ...range})
    await cancelJob(pool, j1.id)
    const j2 = await submitJob(pool, {webhookId: a, ...range})
    const j3 = await submitJob(pool, {webhookId: b, ...range})
    assert.deepEqual(
      (await listJobs(pool)).map((j) => j.id),
      [j3.id, j2.id, j1.id],
    )
    assert.deepEqual(
      (await listJobs(pool, {webhookId: a})).map((j) => j.id),
      [j2.id, j1.id],
    )
    assert.deepEqual(
      (await listJobs(pool, {state: 'cancelled'})).map((j) => j.id),
      [j1.id],
    )
    assert.deepEqual(
      (await listJobs(pool, {state: 'OPEN', limit: 1})).map((j) => j.id),
      [j3.id],
    )
    await rejectsWith(listJobs(pool, {limit: 0}), 'INVALID_ARGUMENT')
  })
})

describe('webhooks', () => {
  test('add, duplicate, checks, invalid, remove', async () => {
    await reset()
    const secret = "s3cr'et-of-at-least-32-characters"
    const added = await addWebhook(
      pool,
      {id: 'Acme_prod-1', url: 'https://Example.com/hook?x=1', secret},
      testSecretKey(),
    )
    assert.equal(added.url, 'https://example.com/hook?x=1')
    assert.equal(added.hasSecret, true)
    assert.equal((await (await WebhookSecrets.open(pool, testSecretKey())).read('Acme_prod-1')).secret, secret)
    assert.equal(added.state, 'valid')
    // ids are case-sensitive (they are Kafka keys)
    await addWebhook(pool, {id: 'acme_prod-1', url: 'https://example.com/other'})
    await rejectsWith(addWebhook(pool, {id: 'Acme_prod-1', url: 'https://example.com/x'}), 'WEBHOOK_EXISTS')
    assert.equal((await listWebhooks(pool)).length, 2)

    const failed = await recordCheck(pool, 'Acme_prod-1', false, 'wrong response_token')
    assert.equal(failed.state, 'invalid')
    assert.equal(failed.lastCheckOk, false)
    assert.match(failed.invalidReason ?? '', /wrong response_token/)
    const passed = await recordCheck(pool, 'Acme_prod-1', true)
    assert.equal(passed.state, 'valid')
    assert.equal(passed.invalidReason, null)
    assert.equal(passed.lastCheckOk, true)
    assert.equal((await markInvalid(pool, 'Acme_prod-1', 'answered 410 Gone')).invalidReason, 'answered 410 Gone')
    await rejectsWith(markInvalid(pool, 'ghost', 'x'), 'WEBHOOK_NOT_FOUND')

    const job = await submitJob(pool, {webhookId: 'Acme_prod-1', ...range})
    await rejectsWith(removeWebhook(pool, 'Acme_prod-1'), 'JOB_IN_PROGRESS', new RegExp(`replay cancel ${job.id}`))
    await cancelJob(pool, job.id)
    assert.deepEqual(await removeWebhook(pool, 'Acme_prod-1'), {id: 'Acme_prod-1', jobsRemoved: 1})
    await rejectsWith(getWebhook(pool, 'Acme_prod-1'), 'WEBHOOK_NOT_FOUND')
    assert.equal((await getWebhook(pool, 'acme_prod-1')).id, 'acme_prod-1')
  })
})

describe('commands', () => {
  const env = {REPLAYCTL_MYSQL_URL: URL}

  async function snapshot(): Promise<string> {
    const [tables] = await pool.query('SHOW TABLES')
    const [webhooks] = await pool.query('SELECT * FROM webhooks ORDER BY id')
    const [jobs] = await pool.query('SELECT * FROM replay_jobs ORDER BY id')
    return JSON.stringify({tables, webhooks, jobs})
  }

  test('webhook add/list/remove and replay list/cancel/retry work end to end', async () => {
    await reset()
    const sqlish = "x'); DROP TABLE webhooks; -- and 32 characters"
    const add = await runCli(
      [
        'webhook',
        'add',
        'cli-hook',
        '--url',
        'https://example.com/in',
        '--secret',
        sqlish,
        '--skip-crc-check',
        '--json',
      ],
      {env},
    )
    assert.equal(add.code, 0, add.stderr)
    assert.equal(add.json.id, 'cli-hook')
    assert.equal(add.json.hasSecret, true)
    assert.ok(!add.stdout.includes(sqlish), 'the secret is never printed')
    assert.equal(
      (await (await WebhookSecrets.open(pool, testSecretKey())).read('cli-hook')).secret,
      sqlish,
      'stored verbatim through placeholders',
    )

    const list = await runCli(['webhook', 'list'], {env})
    assert.equal(list.code, 0, list.stderr)
    assert.match(list.stdout, /cli-hook\s+https:\/\/example\.com\/in\s+valid\s+set/)

    const job = await submitJob(pool, {webhookId: 'cli-hook', ...range})
    const jobs = await runCli(['replay', 'list', '--state', 'open', '--webhook-id', 'cli-hook', '--json'], {env})
    assert.equal(jobs.code, 0, jobs.stderr)
    assert.deepEqual(
      jobs.json.map((j: {id: number}) => j.id),
      [job.id],
    )

    const busy = await runCli(['webhook', 'remove', 'cli-hook'], {env})
    assert.equal(busy.code, 4)
    assert.ok(isOneLineError(busy), busy.stderr)

    const cancel = await runCli(['replay', 'cancel', String(job.id)], {env})
    assert.equal(cancel.code, 0, cancel.stderr)
    assert.match(cancel.stdout, new RegExp(`cancelled replay job ${job.id}`))
    const again = await runCli(['replay', 'cancel', String(job.id), '--json'], {env})
    assert.equal(again.code, 4)
    assert.equal(again.json.error.code, 'JOB_STATE_CONFLICT')

    const retry = await runCli(['replay', 'retry', String(job.id), '--json'], {env})
    assert.equal(retry.code, 0, retry.stderr)
    assert.equal(retry.json.state, 'OPEN')
    assert.equal((await getJob(pool, job.id)).state, 'OPEN')

    const missing = await runCli(['replay', 'retry', '424242'], {env})
    assert.equal(missing.code, 3)
    assert.ok(isOneLineError(missing), missing.stderr)

    await cancelJob(pool, job.id)
    const remove = await runCli(['webhook', 'remove', 'cli-hook'], {env})
    assert.equal(remove.code, 0, remove.stderr)
    await rejectsWith(getWebhook(pool, 'cli-hook'), 'WEBHOOK_NOT_FOUND')
  })

  test('bad input: one clear line, a usage exit code, nothing written', async () => {
    await reset()
    await webhook('keep-me')
    await submitJob(pool, {webhookId: 'keep-me', ...range})
    const before = await snapshot()
    const huge = '9'.repeat(10_000)
    const cases: {args: string[]; expect: RegExp}[] = [
      {args: ['replay', 'cancel', '1; DROP TABLE replay_jobs'], expect: /'1; DROP TABLE replay_jobs' is not a job id/},
      {args: ['replay', 'retry', "1' OR '1'='1"], expect: /is not a job id/},
      {args: ['replay', 'cancel', '0'], expect: /'0' is not a job id/},
      {args: ['replay', 'cancel', '-3'], expect: /not a job id|flag/},
      {args: ['replay', 'cancel', '1.5'], expect: /not a job id/},
      {args: ['replay', 'cancel', huge], expect: /\(10000 characters\)' is not a job id/},
      {args: ['replay', 'retry', '99999999999999999999'], expect: /is not a job id/},
      {args: ['replay', 'list', '--state', "OPEN' OR '1'='1"], expect: /is not a job state/},
      {args: ['replay', 'list', '--limit', '100000000000'], expect: /not a whole number from 1 to 1000/},
      {args: ['replay', 'list', '--limit', '5; DROP TABLE webhooks'], expect: /not a whole number/},
      {args: ['replay', 'list', '--webhook-id', 'a b'], expect: /webhook id 'a b' has characters/},
      {
        args: ['webhook', 'add', 'x; DROP TABLE webhooks', '--url', 'https://example.com/'],
        expect: /webhook id .* has characters other than/,
      },
      {args: ['webhook', 'add', 'a'.repeat(65), '--url', 'https://example.com/'], expect: /longer than 64 characters/},
      {args: ['webhook', 'add', '', '--url', 'https://example.com/'], expect: /is empty|webhook id/},
      {args: ['webhook', 'add', 'ok-id', '--url', 'javascript:alert(1)'], expect: /uses scheme 'javascript'/},
      {args: ['webhook', 'add', 'ok-id', '--url', 'ftp://example.com/x'], expect: /uses scheme 'ftp'/},
      {args: ['webhook', 'add', 'ok-id', '--url', 'example.com/hook'], expect: /is not a valid absolute URL/},
      {
        args: ['webhook', 'add', 'ok-id', '--url', `https://example.com/${'a'.repeat(3000)}`],
        expect: /over the limit of 2048/,
      },
      {args: ['webhook', 'add', 'ok-id', '--url', 'https://user:pw@example.com/'], expect: /user name or password/},
      {args: ['webhook', 'add', 'ok-id', '--url', 'https://example.com/a b'], expect: /whitespace/},
      {
        args: ['webhook', 'add', 'ok-id', '--url', 'https://example.com/', '--secret', 's'.repeat(300)],
        expect: /secret is 300 characters/,
      },
      {args: ['webhook', 'add', 'keep-me', '--url', 'https://example.com/'], expect: /already exists/},
      {args: ['webhook', 'remove', "'; DROP TABLE webhooks; --"], expect: /webhook id/},
    ]
    // Four at a time: two dozen CLI starts at once on a loaded 2-core machine outlast runCli's timeout.
    const results: CliResult[] = []
    for (let next = 0; next < cases.length; next += 4) {
      results.push(...(await Promise.all(cases.slice(next, next + 4).map((c) => runCli(c.args, {env})))))
    }
    results.forEach((result, i) => {
      const {args, expect} = nth(cases, i)
      const label = `${args.join(' ').slice(0, 80)} -> ${result.code}: ${result.stderr}`
      assert.notEqual(result.code, 0, label)
      assert.ok([2, 4].includes(result.code), label)
      assert.ok(isOneLineError(result), label)
      assert.match(result.stderr, expect, label)
      assert.ok(result.stderr.length < 400, `the line stays short: ${label.slice(0, 200)}`)
    })
    assert.equal(await snapshot(), before, 'nothing was written')
  })

  test('an unreachable database is one line naming host:port, never the password', async () => {
    const result = await runCli(['webhook', 'list'], {env: {REPLAYCTL_MYSQL_URL: 'mysql://root:hunter2@127.0.0.1:1/x'}})
    assert.equal(result.code, 5)
    assert.ok(isOneLineError(result), result.stderr)
    assert.match(result.stderr, /cannot reach MySQL at 127\.0\.0\.1:1 \(connection refused\)/)
    assert.ok(!result.stderr.includes('hunter2'))
    const bad = await runCli(['db', 'status'], {env: {REPLAYCTL_MYSQL_URL: 'postgres://u:hunter2@h/db'}})
    assert.equal(bad.code, 2)
    assert.ok(isOneLineError(bad), bad.stderr)
    assert.ok(!bad.stderr.includes('hunter2'))
  })
})
