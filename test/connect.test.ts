import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {displayWidth} from '../src/cli/output.js'
import {type CliResult, runCli, uniqueName} from './helpers.js'
import {counts, eventBodies, idsInPartition, MINUTE, pastRange, replayTestFile, waitFor} from './replay-harness.js'
import {partitionFor} from '../src/core/kafka/partitioner.js'
import {closedPort} from './webhook-receiver.js'

/**
 * Kafka Connect and two datacenters, for real: `dev up --datacenters 2` on a stack of its own (its
 * own state directory and ports, away from the shared stack's) starts dc1, dc2 and a Connect worker
 * bootstrapped to dc2 that runs MirrorMaker 2 (dc1's delivery_log into dc2 as dc1.delivery_log).
 * One Connect start for the whole file; `dev down --purge` stops every JVM it started.
 */
const DC1_PORT = 9500
const DC1 = `127.0.0.1:${DC1_PORT}`
const DC2 = `127.0.0.1:${DC1_PORT + 100}`
const CONNECT_PORT = 8583
const CONNECT_URL = `http://127.0.0.1:${CONNECT_PORT}`
const work = mkdtempSync(join(tmpdir(), 'replayctl-connect-'))
const stateDir = join(work, 'state')
const env = {REPLAYCTL_STATE: stateDir, REPLAYCTL_KAFKA_HEAP: '384m', REPLAYCTL_CONNECT_URL: CONNECT_URL}
const cli = (args: string[], options: {input?: string; timeoutMs?: number; brokers?: string} = {}) =>
  runCli(args, {...options, env: {...env, REPLAYCTL_BROKERS: options.brokers ?? DC1}})

const SECRET = 'whsec_' + Buffer.from('replayctl-connect-secret-0123456789').toString('base64')
const {stack, workers, receiver} = replayTestFile(SECRET)
stack.env.REPLAYCTL_BROKERS = DC2
stack.env.REPLAYCTL_STATE = stateDir

/** Connect's REST API itself, for what the CLI does not do (creating and deleting connectors). */
async function rest(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${CONNECT_URL}${path}`, {
    method,
    headers: {'content-type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`)
  return text ? JSON.parse(text) : null
}

async function status(): Promise<{code: number; json: any; stdout: string}> {
  const result = await cli(['connect', 'status', '--json'])
  assert.ok([0, 7].includes(result.code), `connect status exited ${result.code}: ${result.stderr}`)
  return result
}

const connector = (report: any, name: string) => report.connectors.find((found: any) => found.name === name)

/** The table view at 80 columns: no line wider (tables test/tables.test.ts checks the same for the others). */
async function at80(args: string[]): Promise<CliResult> {
  const result = await runCli(args, {env: {...env, REPLAYCTL_BROKERS: DC1, COLUMNS: '80'}})
  assert.deepEqual(
    result.stdout.split('\n').filter((line) => displayWidth(line) > 80),
    [],
    result.stdout,
  )
  return result
}

let upSeconds = 0
before(
  async () => {
    const started = Date.now()
    const result = await cli(
      ['dev', 'up', '--port', String(DC1_PORT), '--connect-port', String(CONNECT_PORT), '--datacenters', '2', '--json'],
      {timeoutMs: 400_000},
    )
    upSeconds = (Date.now() - started) / 1000
    assert.equal(result.code, 0, `dev up: ${result.stderr}${result.stdout}`)
    assert.equal(result.json.dc2.brokers, DC2)
    assert.equal(result.json.connect.url, CONNECT_URL)
    assert.equal(result.json.settings.REPLAYCTL_CONNECT_URL, CONNECT_URL)
    console.log(`dev up --datacenters 2 (dc1, dc2, Connect, MirrorMaker 2): ${upSeconds.toFixed(1)} s`)
  },
  {timeout: 420_000},
)

after(
  async () => {
    const down = await cli(['dev', 'down', '--purge', '--json'], {timeoutMs: 120_000})
    rmSync(work, {recursive: true, force: true})
    assert.equal(down.code, 0, down.stderr)
    const stopped = (down.json.stopped as {what: string}[]).map((entry) => entry.what)
    assert.deepEqual(stopped, ['kafka connect', 'kafka node of dc2', 'kafka node 1'])
    // No JVM of this stack survives it.
    const left = execFileSync('ps', ['-eo', 'pid,args'], {encoding: 'utf8'})
      .split('\n')
      .filter((line) => line.includes(stateDir) && line.includes('java'))
    assert.deepEqual(left, [])
  },
  {timeout: 150_000},
)

describe('connect status, restart, pause and resume against a real worker', () => {
  test('dev status and dev logs show the worker and dc2', async () => {
    const dev = await cli(['dev', 'status', '--json'])
    assert.equal(dev.code, 0, dev.stderr)
    assert.equal(dev.json.connect.running, true)
    assert.equal(dev.json.dc2.running, true)
    const table = await at80(['dev', 'status'])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^kafka dc2 +127\.0\.0\.1:\d+ +\d+ +running$/m)
    assert.match(table.stdout, new RegExp(`^kafka connect +${CONNECT_URL.replaceAll('.', '\\.')} +\\d+ +running$`, 'm'))
    const logs = await cli(['dev', 'logs', '--connect', '--lines', '2000'])
    assert.equal(logs.code, 0, logs.stderr)
    assert.match(logs.stdout, /org\.apache\.kafka\.connect/)
    const dc2Log = await cli(['dev', 'logs', '--datacenter', '2', '--lines', '2000'])
    assert.equal(dc2Log.code, 0, dc2Log.stderr)
    assert.match(dc2Log.stdout, new RegExp(`${DC1_PORT + 100}`))
  })

  test('a running FileStreamSource and a failing FileStreamSink: exit 7 and the first trace line', async () => {
    // Connect bootstraps to dc2: the file connectors' topic lives there.
    const topic = uniqueName('connect_file')
    const created = await cli(['topic', 'create', topic, '--partitions', '1', '--json'], {brokers: DC2})
    assert.equal(created.code, 0, created.stderr)
    const input = join(work, 'input.txt')
    writeFileSync(input, 'one\ntwo\nthree\n')
    const source = uniqueName('file-source')
    const sink = uniqueName('file-sink')
    await rest('PUT', `/connectors/${source}/config`, {
      'connector.class': 'org.apache.kafka.connect.file.FileStreamSourceConnector',
      file: input,
      topic,
      'tasks.max': '1',
    })
    const healthy = await waitFor(
      'the source connector and its task RUNNING',
      async () => {
        const report = await status()
        const found = connector(report.json, source)
        return found?.state === 'RUNNING' && found.tasks[0]?.state === 'RUNNING' ? report : undefined
      },
      120_000,
      500,
    )
    assert.equal(healthy.code, 0)
    assert.equal(healthy.json.healthy, true)
    assert.equal(connector(healthy.json, source).type, 'source')
    assert.equal(connector(healthy.json, source).worker, `127.0.0.1:${CONNECT_PORT}`)
    // The source really copies the file into Kafka.
    await waitFor(
      'the file lines in the topic',
      async () => {
        const read = await cli(['log', 'read', '--topic', topic], {brokers: DC2})
        return read.stdout.trim().split('\n').filter(Boolean).length === 3
      },
      60_000,
      500,
    )

    // The sink's file sits in a directory that does not exist: its task fails as it starts.
    await rest('PUT', `/connectors/${sink}/config`, {
      'connector.class': 'org.apache.kafka.connect.file.FileStreamSinkConnector',
      file: join(work, 'no-such-dir', 'out.txt'),
      topics: topic,
      'tasks.max': '1',
    })
    const failed = await waitFor(
      'the sink task FAILED',
      async () => {
        const report = await status()
        return connector(report.json, sink)?.tasks[0]?.state === 'FAILED' ? report : undefined
      },
      120_000,
      500,
    )
    assert.equal(failed.code, 7)
    assert.equal(failed.json.healthy, false)
    const task = connector(failed.json, sink).tasks[0]
    assert.equal(
      task.error,
      'org.apache.kafka.connect.errors.ConnectException: ' +
        `Couldn't find or create file '${join(work, 'no-such-dir', 'out.txt')}' for FileStreamSinkTask`,
    )
    assert.equal(connector(failed.json, sink).type, 'sink')
    assert.equal(connector(failed.json, source).state, 'RUNNING')

    // The table: one line per connector and task, the failure's first line, exit 7.
    const table = await runCli(['connect', 'status'], {env: {...env, COLUMNS: '200'}})
    assert.equal(table.code, 7, table.stderr)
    assert.match(table.stdout, /health\s+FAILED connectors or tasks/)
    assert.match(
      table.stdout,
      new RegExp(`${sink}\\s+sink\\s+RUNNING\\s+127\\.0\\.0\\.1:\\d+\\s+FileStreamSinkConnector\\s*$`, 'm'),
    )
    assert.match(
      table.stdout,
      /\s0\s+FAILED\s+127\.0\.0\.1:\d+\s+org\.apache\.kafka\.connect\.errors\.ConnectException: Couldn't find/,
    )
    assert.doesNotMatch(table.stdout, /\tat org\./, 'only the first line of the trace')
    // At 80 columns long values are cut (names in the middle, the error at its end); --wide shows them whole.
    const narrow = await at80(['connect', 'status'])
    assert.equal(narrow.code, 7, narrow.stderr)
    assert.match(narrow.stdout, /^health +FAILED connectors or tasks$/m)
    assert.match(narrow.stdout, /^file-s\S* +sink +RUNNING/m)
    assert.match(narrow.stdout, /^ +0 +FAILED .*org\.apache\.kafka\.\S*…$/m)
    const full = await runCli(['connect', 'status', '--wide'], {env: {...env, COLUMNS: '80'}})
    assert.ok(full.stdout.includes(task.error), full.stdout)

    // Restart only what failed: the task fails again (its directory still does not exist).
    const restart = await cli(['connect', 'restart', sink, '--failed-only', '--json'])
    assert.equal(restart.code, 0, restart.stderr)
    assert.equal(restart.json.connector, sink)
    assert.deepEqual(restart.json.restartedTasks, [0])

    // Pause and resume the healthy one.
    const pause = await cli(['connect', 'pause', source])
    assert.equal(pause.code, 0, pause.stderr)
    assert.match(pause.stdout, new RegExp(`pausing connector '${source}'`))
    await waitFor(
      'the source PAUSED',
      async () => connector((await status()).json, source)?.state === 'PAUSED',
      60_000,
      500,
    )
    const resume = await cli(['connect', 'resume', source])
    assert.equal(resume.code, 0, resume.stderr)
    await waitFor(
      'the source RUNNING again',
      async () => connector((await status()).json, source)?.state === 'RUNNING',
      60_000,
      500,
    )

    // With the failed sink gone, the cluster is healthy again.
    await rest('DELETE', `/connectors/${sink}`)
    await rest('DELETE', `/connectors/${source}`)
    const after = await waitFor(
      'the status without the sink',
      async () => {
        const report = await status()
        return connector(report.json, sink) ? undefined : report
      },
      60_000,
      500,
    )
    assert.equal(after.code, 0)
  })

  test('an unknown connector, and a worker that does not answer: one line each, exit 3 and 5', async () => {
    for (const verb of ['restart', 'pause', 'resume']) {
      const result = await cli(['connect', verb, 'no-such-connector'])
      assert.equal(result.code, 3, `${verb}: ${result.stderr}`)
      assert.equal(result.stderr.trim().split('\n').length, 1)
      assert.match(result.stderr, /has no connector 'no-such-connector'/)
    }
    const port = await closedPort()
    const down = await cli(['connect', 'status', '--url', `http://127.0.0.1:${port}`])
    assert.equal(down.code, 5, down.stderr)
    assert.equal(down.stderr.trim().split('\n').length, 1)
    assert.match(down.stderr, /did not answer .*replayctl dev up --connect/)
    const json = await cli(['connect', 'status', '--url', `http://127.0.0.1:${port}`, '--json'])
    assert.equal(json.code, 5)
    assert.equal(json.json.error.code, 'CONNECT_UNAVAILABLE')
    const bad = await cli(['connect', 'status', '--url', 'ftp://x'])
    assert.equal(bad.code, 2, bad.stderr)
  })
})

describe('a replay over a topic mirrored by MirrorMaker 2 and the local one', () => {
  test('dc1.delivery_log (mirrored into dc2) and dc2 own delivery_log: each event once, in time order', async () => {
    const webhookId = uniqueName('wh').replace(/_/g, '-')
    const {fromMs, toMs} = pastRange()
    const total = 120
    const step = Math.floor((60 * MINUTE) / total)
    const ts = (i: number) => fromMs + step * i
    const event = (i: number) => JSON.stringify({webhook_id: webhookId, ts: ts(i), event: `${webhookId}:${i}`})
    const [other] = idsInPartition(`${webhookId}-n`, 3, partitionFor(webhookId, 3), 1)
    const noise = (i: number) => JSON.stringify({webhook_id: other, ts: ts(i), event: `${other}:${i}`})
    // dc1 holds i % 3 != 2, dc2 i % 3 != 0: both hold i % 3 == 1 (delivered once), each has events the other lacks.
    const lines1: string[] = []
    const lines2: string[] = []
    for (let i = 0; i < total; i++) {
      if (i % 3 !== 2) lines1.push(event(i))
      if (i % 3 !== 0) lines2.push(event(i))
      if (i % 4 === 0) lines1.push(noise(i))
      if (i % 5 === 0) lines2.push(noise(i))
    }
    for (const [brokers, lines] of [
      [DC1, lines1],
      [DC2, lines2],
    ] as const) {
      const created = await cli(['topic', 'create', 'delivery_log', '--partitions', '3'], {brokers})
      assert.equal(created.code, 0, created.stderr)
      const produced = await cli(['log', 'produce', '--topic', 'delivery_log', '--timestamp-field', 'ts', '--json'], {
        brokers,
        input: `${lines.join('\n')}\n`,
        timeoutMs: 120_000,
      })
      assert.equal(produced.code, 0, produced.stderr)
      assert.equal(produced.json.events, lines.length)
    }
    const produced = Date.now()

    // MirrorMaker 2 finds the new topic (refresh every 5 s), creates dc1.delivery_log in dc2 and copies it.
    const mirrored = await waitFor(
      'MirrorMaker 2 to mirror every record into dc2',
      async () => {
        const read = await cli(['log', 'read', '--topic', 'dc1.delivery_log'], {brokers: DC2})
        const records = read.stdout.trim().split('\n').filter(Boolean)
        return records.length === lines1.length ? records.map((line) => JSON.parse(line)) : undefined
      },
      180_000,
      1000,
    )
    console.log(
      `MirrorMaker 2 mirrored ${lines1.length} records ` +
        `${((Date.now() - produced) / 1000).toFixed(1)} s after the produce`,
    )
    // Keys and timestamps as produced in dc1.
    const original = (await cli(['log', 'read', '--topic', 'delivery_log'])).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    const view = (records: any[]) =>
      records.map((record) => `${record.partition}|${record.key}|${record.timestamp}|${record.value}`).sort()
    assert.deepEqual(view(mirrored), view(original))

    const hook = await receiver()
    await stack.addWebhook(webhookId, hook.url, SECRET)
    const id = await stack.submit(webhookId, fromMs, toMs, 'dc1.delivery_log', ['--topic', 'delivery_log'])
    const worker = workers.start(['--max-in-flight', '1'])
    const job = await stack.waitForState(id, ['COMPLETED', 'FAILED'], 180_000)
    await worker.stop()
    assert.equal(job.state, 'COMPLETED', job.lastError ?? '')
    const expected = Array.from({length: total}, (_, i) => event(i))
    await waitFor('the completion event', () => hook.requests.length > expected.length)
    const bodies = eventBodies(hook.delivered)
    assert.deepEqual(
      [...counts(bodies)].filter(([, count]) => count > 1),
      [],
      'no event arrives twice',
    )
    assert.deepEqual(bodies, expected, 'every event of both datacenters, once, in timestamp order')
    assert.equal(job.delivered, total)
    assert.equal(job.duplicates, expected.filter((_, i) => i % 3 === 1).length)
    assert.deepEqual([...new Set(job.sources?.map((source) => source.topic))].sort(), [
      'dc1.delivery_log',
      'delivery_log',
    ])
  })
})
