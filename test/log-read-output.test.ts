import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {after, before, describe, it} from 'node:test'

import {BIN, BROKERS, deleteTopics, MYSQL_URL, runCli, uniqueName} from './helpers.js'

/**
 * `log read` over many batches: its output buffers and the client's batch buffers are reused from
 * batch to batch, so every line must still be the record written at that offset; and a reader that
 * stops reading (`| head`) must end the command, not leave it waiting on a pipe that never drains.
 */
const topic = uniqueName('read-output')
const RECORDS = 20_000

const line = (index: number) => JSON.stringify({webhook_id: `w${index % 3}`, n: index, pad: 'x'.repeat(index % 200)})

before(async () => {
  assert.equal((await runCli(['topic', 'create', topic, '--partitions', '1', '--json'])).code, 0)
  const input = Array.from({length: RECORDS}, (_, index) => `${line(index)}\n`).join('')
  const produced = await runCli(['log', 'produce', '-t', topic], {input, timeoutMs: 120_000})
  assert.equal(produced.code, 0, produced.stderr)
})

after(async () => {
  await deleteTopics([topic])
})

describe('log read output', () => {
  it('--format raw prints every value in offset order across many batches', async () => {
    const read = await runCli(['log', 'read', '-t', topic, '--format', 'raw'], {timeoutMs: 120_000})
    assert.equal(read.code, 0, read.stderr)
    const lines = read.stdout.split('\n')
    assert.equal(lines.pop(), '')
    assert.equal(lines.length, RECORDS)
    for (let index = 0; index < RECORDS; index++) assert.equal(lines[index], line(index), `offset ${index}`)
  })

  it('ends quietly when its reader closes the pipe early', async () => {
    for (const format of ['raw', 'json']) {
      const child = spawn(process.execPath, [BIN, 'log', 'read', '-t', topic, '--format', format], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          REPLAYCTL_BROKERS: BROKERS,
          REPLAYCTL_MYSQL_URL: MYSQL_URL,
          REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
      // Like `| head -c 100`: read once, then close the pipe with the rest of the output unread.
      child.stdout.once('data', () => child.stdout.destroy())
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL')
          reject(new Error(`log read --format ${format} was still running 60 s after its pipe closed`))
        }, 60_000)
        child.on('close', (exitCode) => {
          clearTimeout(timer)
          resolve(exitCode)
        })
      })
      assert.equal(code, 0, `--format ${format}: ${stderr}`)
    }
  })
})
