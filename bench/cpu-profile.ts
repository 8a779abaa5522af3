import {readFileSync, readdirSync} from 'node:fs'
import {nth} from './lib.js'

/**
 * Reading a worker's CPU: per thread from /proc (the main thread, librdkafka's threads, V8's), and
 * a `node --cpu-prof` profile of its main thread split into the parts of a replay.
 */

const CLOCK_TICK_US = 10_000 // USER_HZ is 100 on Linux

/** User + system CPU of a process (all its threads, those already gone included), in µs. */
export function processCpuUs(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US
}

/** User + system CPU of each live thread of a process, in µs, by `tid:name`. */
export function threadCpuUs(pid: number): Map<string, number> {
  const threads = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
      threads.set(
        `${tid}:${text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'))}`,
        (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US,
      )
    } catch {
      // The thread ended between the listing and the read: counted in the process total.
    }
  }
  return threads
}

/**
 * Watches a process's threads while a job runs (threads that start and end meanwhile, like a
 * job's Kafka consumer's, are caught by sampling): stop() gives CPU µs by thread kind ("node" is
 * the main thread, "rdk:broker" librdkafka's broker threads, ...), plus "ended threads", the part of
 * the process total no sample saw.
 */
export function watchThreads(pid: number, everyMs = 100): {stop: () => Record<string, number>} {
  const processBefore = processCpuUs(pid)
  const before = threadCpuUs(pid)
  const latest = new Map(before)
  const sample = () => {
    for (const [key, value] of threadCpuUs(pid)) latest.set(key, Math.max(value, latest.get(key) ?? 0))
  }
  const timer = setInterval(sample, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      sample()
      const kinds: Record<string, number> = {}
      let seen = 0
      for (const [key, value] of latest) {
        const grown = value - (before.get(key) ?? 0)
        if (grown <= 0) continue
        const kind = key.slice(key.indexOf(':') + 1).replace(/\d+$/, '')
        kinds[kind] = (kinds[kind] ?? 0) + grown
        seen += grown
      }
      const total = processCpuUs(pid) - processBefore
      if (total > seen) kinds['ended threads'] = total - seen
      return kinds
    },
  }
}

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string}
  children?: number[]
}

/**
 * The parts of a replay, matched against a sample's stack from the leaf up (the first frame that
 * matches names the part), so work a part calls into (undici's socket writes, mysql2's) counts
 * as that part's. A frame is matched by its file, or, for our own code in the bundled dist/ (where
 * one file holds a command and everything it uses), by its function's name.
 */
const part = (name: string, files: RegExp, functions: string[] = []) => ({name, files, functions: new Set(functions)})
const PARTS = [
  part('garbage collection', /(?!)/, ['(garbage collector)']),
  part('signing (HMAC)', /webhooks\/signing\.[jt]s/, ['hmacBase64', 'twitterSignature', 'standardWebhooksSignature']),
  part(
    'checkpoints and heartbeats (mysql2)',
    /mysql2|\/jobs\/|db\/database|replay\/run\/(lease|checkpoint-saver|source-checkpoints)/,
    ['fencedUpdate', 'checkpointJob', 'heartbeatJob', 'progressSet', 'withRetry', 'saveIfDue', 'maybeSave', 'save'],
  ),
  part('HTTP (undici and its sockets)', /undici/),
  part('webhook client', /webhook-client/, [
    'send',
    'deliverWithRetries',
    'attempt',
    'answered',
    'onComplete',
    'settle',
  ]),
  part('dedup (xxhash, the filter)', /replay\/dedup|duplicate-filter|reorder-buffer|xxhash|^wasm:/, [
    'admit',
    'eventKey',
    'addIfNew',
    'wanted',
  ]),
  part('the window', /ordered-window/, ['push', 'wakeWaiters']),
  part('Kafka read', /kafka-javascript|core\/kafka\/|replay\/run\/merge|scale-out/, [
    'readScanned',
    'keptMessages',
    'readBatches',
    'consumePacked',
  ]),
  part('progress, events, metrics, logs', /run-job|replay\/worker\.|events\.[jt]s|metrics\.[jt]s|run\/tally|cli\//),
  part('deliver loop (deliver.ts)', /replay\/run\/deliver\.[jt]s/, ['deliverRange', 'deliver']),
]
const BUNDLED = /\/dist\/(commands|chunks)\//
function partOf(frame: ProfileNode['callFrame']): string | undefined {
  for (const {name, functions} of PARTS) {
    if (functions.has(frame.functionName) && (frame.url === '' || BUNDLED.test(frame.url))) return name
  }
  // Our own code's other frames in the bundle are left to the frames below them or to "other".
  if (BUNDLED.test(frame.url)) return undefined
  return PARTS.find(({files}) => files.test(frame.url))?.name
}

/**
 * A `--cpu-prof` profile of a worker's main thread, in µs per event by part, for the stretch where
 * a job ran (from the first to the last sample with runJob on the stack). "idle" is time the main
 * thread waited (for answers, the database, Kafka). Sampled wall time, not CPU: on a busy machine
 * a thread preempted in a syscall is still sampled there, so compare the parts with each other.
 */
export function profileParts(file: string, events: number): Record<string, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[]
    samples: number[]
    timeDeltas: number[]
  }
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const stack = function* (id: number) {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) yield nodes.get(at)!.callFrame
  }
  const inJob = (id: number) => [...stack(id)].some((frame) => frame.functionName === 'runJob')
  const first = profile.samples.findIndex(inJob)
  let last = profile.samples.length - 1
  while (last > first && !inJob(nth(profile.samples, last))) last--
  const parts: Record<string, number> = {}
  for (let index = Math.max(first, 0); index <= last; index++) {
    const frames = [...stack(nth(profile.samples, index))]
    const leaf = nth(frames, 0).functionName
    let part = leaf === '(idle)' ? 'idle' : leaf === '(program)' ? 'V8 (program)' : undefined
    for (const frame of part ? [] : frames) {
      part = partOf(frame)
      if (part) break
    }
    part ??= 'other (timers, streams, promises)'
    parts[part] = (parts[part] ?? 0) + (profile.timeDeltas[index] ?? 0) / events
  }
  return parts
}
