import assert from 'node:assert/strict'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {isAlive} from '../src/core/dev/processes.js'
import {runCli} from './helpers.js'

/**
 * `dev up --schema-registry` in its own state directory and ports, beside the stack the other
 * tests use: the registry (built once into the shared cache) starts, answers its Confluent-compatible
 * API, shows in `dev status` and `dev logs`, is restarted by a plain `dev up` once it has died, and
 * is stopped by `dev down`.
 */
const state = mkdtempSync(join(tmpdir(), 'replayctl-registry-'))
const PORT = 19500
const REGISTRY_PORT = 19510
const env = {REPLAYCTL_STATE: state, REPLAYCTL_KAFKA_HEAP: '384m', REPLAYCTL_BROKERS: `127.0.0.1:${PORT}`}
const cli = (args: string[], timeoutMs = 120_000) => runCli(args, {env, timeoutMs})

after(async () => {
  await cli(['dev', 'down', '--purge', '--grace', '5'])
})

describe('dev up --schema-registry', () => {
  it('starts the registry with the stack, restarts it when it died, and stops it with the stack', async () => {
    // The first run on a machine builds the registry with mvn (minutes); later ones start it.
    const up = await cli(
      [
        'dev',
        'up',
        '--port',
        String(PORT),
        '--schema-registry',
        '--schema-registry-port',
        String(REGISTRY_PORT),
        '--json',
      ],
      600_000,
    )
    assert.equal(up.code, 0, up.stderr)
    const url = `http://127.0.0.1:${REGISTRY_PORT}/apis/ccompat/v7`
    assert.equal(up.json.schemaRegistry.running, true)
    assert.equal(up.json.settings.REPLAYCTL_SCHEMA_REGISTRY_URL, url)
    assert.deepEqual(await (await fetch(`${url}/subjects`)).json(), [])

    const status = await cli(['dev', 'status', '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.deepEqual(
      {url: status.json.schemaRegistry.url, running: status.json.schemaRegistry.running},
      {url, running: true},
    )
    const logs = await cli(['dev', 'logs', '--schema-registry', '--lines', '400'])
    assert.equal(logs.code, 0, logs.stderr)
    assert.match(logs.stdout, new RegExp(`Listening on: http://127.0.0.1:${REGISTRY_PORT}`))

    process.kill(up.json.schemaRegistry.pid, 'SIGKILL')
    while (isAlive(up.json.schemaRegistry.pid)) await new Promise((resolve) => setTimeout(resolve, 100))
    const down = await cli(['dev', 'status', '--json'])
    assert.equal(down.code, 7, 'a stopped registry makes the stack unhealthy')
    assert.equal(down.json.schemaRegistry.running, false)

    const restarted = await cli(['dev', 'up', '--json'], 300_000)
    assert.equal(restarted.code, 0, restarted.stderr)
    assert.equal(restarted.json.alreadyRunning, false)
    assert.equal(restarted.json.schemaRegistry.running, true)
    assert.notEqual(restarted.json.schemaRegistry.pid, up.json.schemaRegistry.pid)

    const stopped = await cli(['dev', 'down', '--json'])
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.ok(stopped.json.stopped.some((part: {what: string}) => part.what === 'schema registry'))
    assert.equal(isAlive(restarted.json.schemaRegistry.pid), false)
  })
})
