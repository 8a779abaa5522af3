import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'

import {request} from 'undici'

import {BIN, BROKERS, runCli, uniqueName} from './helpers.js'

/**
 * `ingest serve` as an operator runs it (the built CLI, its own process) for the ingest test
 * files: start it, POST to it with undici, read what reached the topic back with kcat.
 */

/** The token the ingest tests write with unless authentication is their subject: every key, every topic. */
export const INGEST_TOKEN = 'ingest-test-token-0123456789abcdef'
export const INGEST_TOKENS = JSON.stringify([{token: INGEST_TOKEN, keys: '*'}])
export const AUTH = {authorization: `Bearer ${INGEST_TOKEN}`}

export interface Server {
  url: string
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number>
}

/** Starts `ingest serve --port 0` with INGEST_TOKENS unless `env` says otherwise. */
export function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'ingest', 'serve', '--port', '0', ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REPLAYCTL_BROKERS: BROKERS,
      REPLAYCTL_CONFIG: '/nonexistent/replayctl-test-config.json',
      REPLAYCTL_INGEST_TOKENS: INGEST_TOKENS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ingest serve did not listen within 60 s: ${stderr}`)), 60_000)
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      const listening = stderr
        .split('\n')
        .map(tryJson)
        .find((line) => line?.msg === 'listening')
      if (listening) {
        clearTimeout(timer)
        resolve({url: listening.address, child, stdout: () => stdout, stderr: () => stderr, exited})
      }
    })
    void exited.then((code) => reject(new Error(`ingest serve exited ${code}: ${stderr}`)))
  })
}

export function tryJson(line: string): any {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

export async function stopServer(server: Server): Promise<number> {
  server.child.kill('SIGTERM')
  return server.exited
}

/** POST /events with INGEST_TOKEN, unless `headers` gives another authorization (null: none). */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string | null> = {},
): Promise<{status: number; json: any; headers: Record<string, unknown>}> {
  const sent = Object.fromEntries(
    Object.entries({'content-type': 'application/x-ndjson', ...AUTH, ...headers}).filter(
      (entry): entry is [string, string] => entry[1] !== null,
    ),
  )
  const response = await request(`${url}/events`, {method: 'POST', body, headers: sent})
  const text = await response.body.text()
  return {status: response.statusCode, json: tryJson(text), headers: response.headers}
}

export function run(command: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, ...env}})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${command} exited ${code}: ${stderr}`)),
    )
  })
}

export interface Stored {
  key: string
  partition: number
  timestamp: number
  value: any
}

export async function readTopic(topic: string, brokers = BROKERS): Promise<Stored[]> {
  const stdout = await run('kcat', ['-b', brokers, '-C', '-t', topic, '-e', '-q', '-f', '%k\t%p\t%T\t%s\n'])
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [key, partition, timestamp, value] = line.split('\t')
      return {key: key!, partition: Number(partition), timestamp: Number(timestamp), value: JSON.parse(value!)}
    })
}

export async function createTopic(
  prefix: string,
  partitions: number,
  env: Record<string, string> = {},
): Promise<string> {
  const topic = uniqueName(`ingest_${prefix}`)
  const created = await runCli(['topic', 'create', topic, '--partitions', String(partitions), '--retention', '2d'], {
    env,
  })
  assert.equal(created.code, 0, created.stderr)
  return topic
}

export const ndjson = (events: object[]) => `${events.map((event) => JSON.stringify(event)).join('\n')}\n`
