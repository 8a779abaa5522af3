import assert from 'node:assert/strict'
import type {ServerResponse} from 'node:http'
import {describe, test} from 'node:test'

import {claimChunk, finishChunk, listChunks, planChunks} from '../src/core/replay/store/chunks/index.js'
import {openPool} from '../src/core/db/database.js'
import {getJob} from '../src/core/replay/store/jobs/index.js'
import {jobMatcher, readChunked, scanChunk} from '../src/core/replay/scale-out.js'
import {holdCommits, nth, testSettings} from './helpers.js'
import {
  assertCustomerFacing,
  counts,
  eventBodies,
  isCompletion,
  replayTestFile,
  scenario,
  waitFor,
  withWorkers,
} from './replay-harness.js'

/**
 * Scale-out scanning: a large job's range is cut into chunks that idle workers scan while the
 * owner delivers, alone and in log order. Asserted on what the receiver gets and on who scanned
 * which chunk, never on how fast.
 */
const SECRET = 'whsec_' + Buffer.from('replayctl-scale-out-secret-0123').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)

describe('replay scale-out over scan chunks', () => {
  test('helpers scan the chunks ahead of the owner; the receiver gets every event once, in log order', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 2, unique: 150, duplicates: 20, outside: 10, neighbours: 6000})
      // The owner's first delivery waits until the helpers have scanned every other chunk, so the
      // test sees them do it whatever the machine's load.
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      const held: ServerResponse[] = []
      const hook = await receiver(async (_request, res) => {
        if (held.length === 0) {
          held.push(res)
          await released
        }
        res.writeHead(200).end('ok')
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)

      // The held request must not time out (the harness's 2 s) and be retried before the helpers,
      // slow to start on a loaded machine, have scanned: the retry would be answered at once.
      const chunkArgs = [
        '--scan-chunk',
        '500',
        '--max-in-flight',
        '1',
        '--concurrency',
        '1',
        '--delivery-timeout',
        '120s',
      ]
      const owner = workers.start(chunkArgs)
      await waitFor('the owner to hold the first event', () => held.length === 1, 60_000)
      const chunks = await listChunks(stack.pool, jobId)
      assert.ok(chunks.length >= 12, `the range is cut into chunks of 500 offsets (got ${chunks.length})`)

      const helpers = [workers.start(chunkArgs), workers.start(chunkArgs)]
      const scannedByHelpers = await waitFor(
        'the helpers to scan every chunk the owner has not taken',
        async () => {
          const [rows] = await stack.pool.query('SELECT owner, state FROM replay_scan_chunks WHERE job_id = ?', [jobId])
          const list = rows as {owner: string | null; state: string}[]
          const open = list.filter((row) => row.state !== 'DONE' && row.owner !== owner.owner)
          return open.length === 0 ? list : undefined
        },
        60_000,
        100,
      )
      const helperOwners = new Set(helpers.map((helper) => helper.owner))
      const helped = scannedByHelpers.filter((row) => row.owner !== null && helperOwners.has(row.owner))
      assert.ok(
        helped.length >= chunks.length - 2,
        `helpers scanned ${helped.length} of ${chunks.length} chunks; the owner scans at most the one it delivers ` +
          `from and the next: ${JSON.stringify(scannedByHelpers)} owner ${owner.owner}, helpers ${[...helperOwners]}`,
      )

      release()
      const job = await stack.waitForState(jobId, ['COMPLETED', 'FAILED'], 60_000)
      assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
      await waitFor('the completion event', () => hook.requests.some((request) => isCompletion(request.body)), 30_000)
      for (const worker of [owner, ...helpers]) await worker.stop()

      const bodies = eventBodies(hook.requests)
      assert.deepEqual(bodies, s.expected, 'exactly the unique in-range events, in log order (--max-in-flight 1)')
      assert.deepEqual(
        [...counts(bodies).values()].filter((n) => n > 1),
        [],
      )
      assert.equal(job.delivered, s.expected.length)
      assert.equal(job.duplicates, s.duplicates)
      assert.equal(
        job.scanned,
        s.log.filter((record) => record.offset >= job.startOffset! && record.offset < job.endOffset!).length,
        'every record of the range counted once, whoever scanned it',
      )
      assert.equal(job.checkpointOffset, job.endOffset)
      assert.deepEqual(await listChunks(stack.pool, jobId), [], 'a finished job forgets its chunks')
      const lines = helpers.flatMap((helper) => helper.logged('chunk scanned'))
      assert.ok(
        lines.length >= helped.length,
        `one 'chunk scanned' line per chunk a helper scanned: ${lines.length} lines, ${helped.length} chunks`,
      )
      for (const line of lines) {
        assert.equal(line.job, jobId)
        assert.equal(line.topic, s.topic)
        assert.equal(line.partition, s.partition)
        assert.ok(
          Number(line.start) < Number(line.end) && Number(line.end) - Number(line.start) <= 500,
          JSON.stringify(line),
        )
        assert.equal(typeof line.dense, 'boolean')
        assert.ok(Number(line.matched) <= Number(line.scanned), JSON.stringify(line))
      }
    })
  })

  test(
    'kill -9 of the owner of a chunked job: another worker resumes at the checkpoint, dedup rebuilt from kept ' +
      'records, each event once but for the bounded re-sends',
    async () => {
      await withWorkers(workers, async () => {
        const s = await scenario(stack, {partitions: 2, unique: 150, duplicates: 20, neighbours: 6000})
        let release!: () => void
        const released = new Promise<void>((resolve) => (release = resolve))
        let first = true
        const hook = await receiver(async (_request, res) => {
          if (first) {
            first = false
            await released
          }
          // Slow enough that the kill lands mid-range.
          await new Promise((resolve) => setTimeout(resolve, 10))
          res.writeHead(200).end('ok')
        })
        await stack.addWebhook(s.webhookId, hook.url, SECRET)
        const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
        const chunkArgs = ['--scan-chunk', '500', '--max-in-flight', '1', '--max-ahead', '1', '--concurrency', '1']
        const owner = workers.start(chunkArgs)
        await waitFor('the owner to hold the first event', () => hook.requests.length >= 1, 60_000)
        const helper = workers.start(chunkArgs)
        await waitFor(
          'the helper to scan the chunks',
          async () => {
            const [rows] = await stack.pool.query(
              "SELECT COUNT(*) AS n FROM replay_scan_chunks WHERE job_id = ? AND state = 'DONE' AND owner = ?",
              [jobId, helper.owner],
            )
            return Number(nth(rows as {n: number}[], 0).n) >= 4
          },
          60_000,
          100,
        )
        release()
        await waitFor(
          'half the events delivered',
          () => eventBodies(hook.requests).length >= s.expected.length / 2,
          60_000,
          20,
        )
        owner.signal('SIGKILL')
        await owner.waitForExit()
        const before = await stack.job(jobId)
        assert.ok(before.checkpointOffset! < before.endOffset!, 'killed mid-range')

        const job = await stack.waitForState(jobId, ['COMPLETED', 'FAILED'], 90_000)
        assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
        assert.ok(helper.logged('job claimed', jobId).length > 0, 'the helper took the job over')
        await helper.stop()
        const bodies = eventBodies(hook.requests)
        assert.deepEqual([...new Set(bodies)], s.expected, 'every unique in-range event, first sent in log order')
        const resent = bodies.length - s.expected.length
        assert.ok(
          resent >= 0 && resent < 2 * 1 + 3 * 1,
          `re-sends after the kill stay under 2 x max-ahead + 3 x max-in-flight: ${resent}`,
        )
        assert.equal(job.delivered, s.expected.length)
        assert.equal(
          job.duplicates,
          s.duplicates,
          "the resumed run drops the log's duplicates, also those of events delivered before the kill",
        )
        assert.equal(job.checkpointOffset, job.endOffset)
        assert.deepEqual(await listChunks(stack.pool, jobId), [])
      })
    },
  )

  test('a chunked job cancelled while it runs forgets its chunks', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 2, unique: 40, neighbours: 3000})
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      let held = 0
      const hook = await receiver(async (_request, res) => {
        held++
        await released
        res.writeHead(200).end('ok')
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      const owner = workers.start(['--scan-chunk', '500', '--max-in-flight', '1', '--concurrency', '1'])
      await waitFor('the owner to hold the first event', () => held >= 1, 60_000)
      assert.ok((await listChunks(stack.pool, jobId)).length > 0, 'the range is chunked')
      await stack.ok(['replay', 'cancel', String(jobId)])
      // Held until the owner sees the cancel at its heartbeat and cuts the request itself.
      const job = await stack.waitForState(jobId, ['CANCELLED'], 60_000)
      release()
      assert.equal(job.state, 'CANCELLED')
      await waitFor('the owner to end the job', () => owner.logged('job ended', jobId).length > 0, 30_000)
      assert.equal(nth(owner.logged('job ended', jobId), 0).outcome, 'CANCELLED')
      assert.deepEqual(await listChunks(stack.pool, jobId), [], 'a cancelled job forgets its chunks')
      await owner.stop()
    })
  })

  test('a chunked job that fails forgets its chunks', async () => {
    await withWorkers(workers, async () => {
      const s = await scenario(stack, {partitions: 2, unique: 20, neighbours: 3000})
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      const hook = await receiver(async (request, res) => {
        if (!isCompletion(request.body)) await released
        res.writeHead(isCompletion(request.body) ? 200 : 400).end('no')
      })
      await stack.addWebhook(s.webhookId, hook.url, SECRET)
      const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic, ['--max-attempts', '1'])
      const owner = workers.start([
        '--scan-chunk',
        '500',
        '--max-in-flight',
        '1',
        '--concurrency',
        '1',
        '--delivery-attempts',
        '1',
      ])
      await waitFor('the owner to send the first event', () => hook.requests.length >= 1, 60_000)
      assert.ok((await listChunks(stack.pool, jobId)).length > 0, 'the range is chunked')
      release()
      const job = await stack.waitForState(jobId, ['FAILED', 'COMPLETED'], 60_000)
      assert.equal(job.state, 'FAILED')
      await waitFor('the owner to end the job', () => owner.logged('job ended', jobId).length > 0, 30_000)
      assert.equal(nth(owner.logged('job ended', jobId), 0).outcome, 'FAILED')
      assert.deepEqual(await listChunks(stack.pool, jobId), [], 'a failed job forgets its chunks')
      // The customer hears their webhook's answer; the operator's reason names the offset.
      await waitFor('the completion event', () => hook.requests.some((request) => isCompletion(request.body)), 30_000)
      const completion = JSON.parse(
        String(hook.requests.find((request) => isCompletion(request.body))!.body),
      ).replay_job_status
      assert.equal(completion.job_state, 'Incomplete')
      assert.equal(
        completion.job_state_description,
        `Not every event could be delivered: the webhook answered HTTP 400 (${job.delivered} delivered).`,
      )
      assert.match(job.lastError ?? '', /^could not deliver offset \d+ after 1 attempt\(s\): webhook answered 400/)
      assertCustomerFacing(completion.job_state_description, [s.topic, job.lastError])
      await owner.stop()
    })
  })

  test('a chunk claim goes stale and is claimed again; the first scanner result is refused', async () => {
    const s = await scenario(stack, {partitions: 2, unique: 20, neighbours: 200})
    await stack.addWebhook(s.webhookId, 'http://127.0.0.1:9/unused', SECRET)
    const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
    await stack.pool.query("UPDATE replay_jobs SET state = 'ONGOING', heartbeat_at = NOW(3) WHERE id = ?", [jobId])
    const [chunk] = await planChunks(stack.pool, {
      jobId,
      topic: s.topic,
      partition: s.partition,
      startOffset: 0,
      endOffset: 100,
      chunkSize: 100,
    })
    assert.ok(chunk)
    const first = await claimChunk(stack.pool, {owner: 'a', staleAfterMs: 60_000})
    assert.equal(first?.startOffset, 0)
    assert.equal(await claimChunk(stack.pool, {owner: 'b', staleAfterMs: 60_000}), null, 'a fresh claim is not taken')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const second = await claimChunk(stack.pool, {owner: 'b', staleAfterMs: 10})
    assert.equal(second?.startOffset, 0, 'a claim older than the stale time is taken over')
    assert.equal(
      await finishChunk(stack.pool, first!, {scanned: 1, matched: 0, records: null}),
      false,
      'the first scanner is fenced out',
    )
    assert.equal(await finishChunk(stack.pool, second!, {scanned: 100, matched: 0, records: null}), true)
    await stack.pool.query("UPDATE replay_jobs SET state = 'CANCELLED' WHERE id = ?", [jobId])
  })

  test('a chunk claimer stalled before its COMMIT locks only the chunk it took', async () => {
    const s = await scenario(stack, {partitions: 2, unique: 20, neighbours: 200})
    await stack.addWebhook(s.webhookId, 'http://127.0.0.1:9/unused', SECRET)
    const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
    await stack.pool.query("UPDATE replay_jobs SET state = 'ONGOING', heartbeat_at = NOW(3) WHERE id = ?", [jobId])
    await planChunks(stack.pool, {
      jobId,
      topic: s.topic,
      partition: s.partition,
      startOffset: 0,
      endOffset: 300,
      chunkSize: 100,
    })
    const scanning = await claimChunk(stack.pool, {owner: 'a', staleAfterMs: 60_000})
    assert.equal(scanning?.startOffset, 0)
    const stalling = await openPool(stack.mysqlUrl, {connectionLimit: 2})
    try {
      const commit = holdCommits(stalling)
      const stalledClaim = claimChunk(stalling, {owner: 'b', staleAfterMs: 60_000})
      await commit.reached
      // The chunks it passed by are not held: the scanner of the first finishes, and another
      // helper claims the third.
      const finished = await Promise.race([
        finishChunk(stack.pool, scanning!, {scanned: 100, matched: 0, records: null}),
        new Promise((resolve) => setTimeout(() => resolve('waited on the stalled claim'), 5_000)),
      ])
      assert.equal(finished, true)
      assert.equal((await claimChunk(stack.pool, {owner: 'c', staleAfterMs: 60_000}))?.startOffset, 200)
      commit.release()
      assert.equal((await stalledClaim)?.startOffset, 100)
    } finally {
      await stalling.end()
      await stack.pool.query("UPDATE replay_jobs SET state = 'CANCELLED' WHERE id = ?", [jobId])
    }
  })

  test(
    'the owner reads kept records, dense chunks and unscanned chunks alike: the same records as one ' + 'plain read',
    async () => {
      const s = await scenario(stack, {partitions: 2, unique: 120, duplicates: 10, outside: 5, neighbours: 900})
      await stack.addWebhook(s.webhookId, 'http://127.0.0.1:9/unused', SECRET)
      const jobId = await stack.submit(s.webhookId, s.fromMs, s.toMs, s.topic)
      await stack.pool.query("UPDATE replay_jobs SET state = 'ONGOING', heartbeat_at = NOW(3) WHERE id = ?", [jobId])
      const job = await getJob(stack.pool, jobId)
      const end = s.log.at(-1)!.offset + 1
      const chunkSize = 100
      const planned = await planChunks(stack.pool, {
        jobId,
        topic: s.topic,
        partition: s.partition,
        startOffset: 0,
        endOffset: end,
        chunkSize,
      })
      // Helpers scan every other chunk: half of those keep their records, half are dense (kept none).
      // The rest are left for the owner.
      for (const [i, chunk] of planned.entries()) {
        if (i % 2 === 1) continue
        const claimed = await claimChunk(stack.pool, {owner: 'helper', staleAfterMs: 60_000, only: chunk})
        assert.ok(claimed)
        const result = await scanChunk(testSettings(), claimed, {maxKeptBytes: i % 4 === 0 ? 1 : undefined})
        assert.equal(result.records === null, i % 4 === 0)
        assert.equal(await finishChunk(stack.pool, claimed, result), true)
      }
      const wanted = jobMatcher(job)
      const expected = s.log
        .filter((record) =>
          wanted({...record, key: Buffer.from(record.key), value: Buffer.from(record.value)} as never),
        )
        .map((record) => record.offset)
      const resumeAt = 250
      const got: number[] = []
      let scannedTo = 0
      for await (const batch of readChunked(testSettings(), stack.pool, {
        jobId,
        topic: s.topic,
        partition: s.partition,
        filter: job,
        rangeStart: 0,
        start: resumeAt,
        end,
        chunkSize: 70,
        owner: 'owner',
        staleAfterMs: 60_000,
        signal: new AbortController().signal,
      })) {
        for (const message of batch.messages) {
          assert.ok(
            message.offset >= scannedTo,
            `batches come in offset order: ${message.offset} after a batch scanned to ${scannedTo}`,
          )
          got.push(message.offset)
        }
        assert.ok(batch.scannedTo >= scannedTo)
        scannedTo = batch.scannedTo
      }
      assert.deepEqual(
        got,
        expected.filter((offset) => offset >= resumeAt),
      )
      assert.equal(scannedTo, end)
      await stack.pool.query("UPDATE replay_jobs SET state = 'CANCELLED' WHERE id = ?", [jobId])
    },
  )
})
