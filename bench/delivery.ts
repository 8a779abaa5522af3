import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {connect, type Socket} from 'node:net'

import {machine, median, nth, writeSection} from './lib.js'
import {OrderedDelivery, WebhookClient, type DeliveryEvent} from '../src/core/replay/delivery/index.js'
import {WebhookSigner} from '../src/core/webhooks/signing.js'
import {connectAdmin} from '../src/core/kafka/client.js'
import {readRanges} from '../src/core/kafka/range-reader.js'
import {RecordWriter} from '../src/core/kafka/record-writer.js'
import {createTopic} from '../src/core/kafka/topics.js'
import {resolveSettings} from '../src/core/shared/settings.js'

/**
 * The replay worker's delivery path alone: the real WebhookClient and OrderedDelivery (as a
 * `replay worker` runs them) POST N stored-size events to a minimal receiver in its own process
 * (node:http, answers 200). Reported per delivered event: the worker's CPU (process.cpuUsage, all
 * threads), the receiver's CPU (/proc/<pid>/stat utime+stime), and the wall rate. `baseline` is the
 * delivery path as it was before issue #9 item 4 (the client from git history), run in the same process and
 * session, alternating with the current one.
 *
 *   npx tsx bench/delivery.ts [--events 40000] [--rounds 3] [--max-in-flight 16] [--verify] [--kafka] [--write]
 *
 * --kafka adds the worker's other per-event cost, the read: the same events written to a one-partition
 * topic on REPLAYCTL_BROKERS, read back with the range reader a replay uses (CPU per record).
 */

const args = process.argv.slice(2)
const flag = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? Number(args[at + 1]) : fallback
}
const EVENTS = flag('events', 40_000)
const ROUNDS = flag('rounds', 3)
const MAX_IN_FLIGHT = flag('max-in-flight', 16)
const VERIFY = args.includes('--verify')
const WRITE = args.includes('--write')
const KAFKA = args.includes('--kafka')
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined
const SECRET = 'bench-consumer-secret'
const CLOCK_TICK_US = 10_000 // USER_HZ is 100 on Linux

// The receiver: the least a webhook can do (read the body, answer 200); --verify also checks both signatures.
const RECEIVER = `
import {createServer} from 'node:http'
import {createHmac} from 'node:crypto'
const verify = process.argv.includes('--verify')
const secret = ${JSON.stringify(SECRET)}
let bad = 0
const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    if (verify) {
      const body = Buffer.concat(chunks)
      const twitter = 'sha256=' + createHmac('sha256', secret).update(body).digest('base64')
      const signed = req.headers['webhook-id'] + '.' + req.headers['webhook-timestamp'] + '.'
      const standard = 'v1,' + createHmac('sha256', secret).update(signed).update(body).digest('base64')
      if (twitter !== req.headers['x-twitter-webhooks-signature'] || standard !== req.headers['webhook-signature'])
        bad++
    }
    res.writeHead(200, {'content-type': 'text/plain'}).end('ok')
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'))
process.on('message', () => process.send({bad}))
`

interface Receiver {
  child: ChildProcess
  url: string
  cpuUs(): {user: number; system: number}
  badSignatures(): Promise<number>
}

async function startReceiver(): Promise<Receiver> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', RECEIVER, '--', ...(VERIFY ? ['--verify'] : [])],
    {stdio: ['ignore', 'pipe', 'inherit', 'ipc']},
  )
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim())))
  })
  return {
    child,
    url: `http://127.0.0.1:${port}/webhook`,
    cpuUs: () => {
      // Fields after the parenthesised command name: utime is the 14th field, stime the 15th.
      const fields = nth(readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') '), 1).split(' ')
      return {user: Number(fields[11]) * CLOCK_TICK_US, system: Number(fields[12]) * CLOCK_TICK_US}
    },
    badSignatures: () =>
      new Promise((resolve) => {
        child.once('message', (answer: {bad: number}) => resolve(answer.bad))
        child.send('bad?')
      }),
  }
}

/** Stored-size events (~750 bytes of JSON, like the seeded delivery_log). */
function makeEvents(count: number): DeliveryEvent[] {
  const filler = randomBytes(270).toString('hex')
  return Array.from({length: count}, (_, index) => ({
    offset: index,
    origin: {topic: 'delivery_log', partition: 3, offset: 1_000_000 + index},
    body: Buffer.from(
      JSON.stringify({
        for_user_id: '2244994945',
        tweet_create_events: [{id_str: String(1_500_000_000_000 + index), text: filler}],
      }),
    ),
    hash: BigInt.asUintN(64, BigInt(index) * 0x9e3779b97f4a7c15n + 1n),
  }))
}

type Variant = 'baseline' | 'current' | 'floor'

/**
 * The webhook client as it was before issue #9 item 4, taken from git history rather than kept as a
 * copy: written into bench/out/ with its imports pointed back at the current sibling modules (the
 * ordered window, signing, retry policy and rate limit did not change), so before and after run
 * in one process.
 */
const BASELINE_COMMIT = 'b226c23'
const CLIENT_PATH = 'src/core/replay/delivery/webhook-client.ts'
async function loadBaselineClient(): Promise<typeof WebhookClient> {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const out = resolve(root, 'bench/out')
  mkdirSync(out, {recursive: true})
  const {execFileSync} = await import('node:child_process')
  const source = execFileSync('git', ['show', `${BASELINE_COMMIT}:${CLIENT_PATH}`], {cwd: root, encoding: 'utf8'})
  const from = dirname(resolve(root, CLIENT_PATH))
  const rewritten = source.replace(
    /(from\s+')(\.{1,2}\/[^']+)(')/g,
    (_match, head: string, spec: string, tail: string) => {
      const target = relative(out, resolve(from, spec))
      return `${head}${target.startsWith('.') ? target : `./${target}`}${tail}`
    },
  )
  const file = resolve(out, 'baseline-webhook-client.ts')
  writeFileSync(file, rewritten)
  return ((await import(file)) as {WebhookClient: typeof WebhookClient}).WebhookClient
}
let BaselineClient: typeof WebhookClient

interface Measured {
  variant: Variant
  seconds: number
  rate: number
  workerUs: number
  /** Of workerUs, in the kernel (the loopback TCP path: both ends' network stack runs in the sender's write). */
  workerSystemUs: number
  receiverUs: number
  receiverSystemUs: number
}

/**
 * The floor under any HTTP client in Node: the same signed requests (both HMACs per event), as
 * bytes on MAX_IN_FLIGHT keep-alive sockets, one write each, answers counted without parsing. No
 * retries, timeouts, order or checkpoint: what is left is the kernel's loopback TCP and the event loop.
 */
function floorAll(url: string, events: DeliveryEvent[]): Promise<void> {
  const {port} = new URL(url)
  const signer = new WebhookSigner(SECRET)
  const fixed =
    `POST /webhook HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\nuser-agent: ` +
    `replayctl\r\nx-replay-job-id: bench-job\r\n`
  let next = 0
  let answered = 0
  const sockets: Socket[] = []
  return new Promise<void>((resolve, reject) => {
    for (let connection = 0; connection < MAX_IN_FLIGHT; connection++) {
      const socket = connect(Number(port), '127.0.0.1')
      sockets.push(socket)
      socket.setNoDelay(true)
      let carry = ''
      const sendOne = () => {
        if (next >= events.length) return
        const event = nth(events, next++)
        const timestamp = Math.floor(Date.now() / 1000)
        const id = `evt_${event.hash.toString(16)}`
        const head =
          `${fixed}x-twitter-webhooks-signature: ${signer.twitter(event.body)}\r\nwebhook-id: ${id}` +
          `\r\nwebhook-timestamp: ${timestamp}\r\nwebhook-signature: ${signer.standard(id, timestamp, event.body)}` +
          `\r\ncontent-length: ${event.body.length}\r\n\r\n`
        socket.write(Buffer.concat([Buffer.from(head, 'latin1'), event.body]))
      }
      socket.on('connect', sendOne)
      socket.on('data', (chunk: Buffer) => {
        const text = carry + chunk.toString('latin1')
        let at = -1
        while ((at = text.indexOf('HTTP/1.1 ', at + 1)) >= 0) {
          answered++
          sendOne()
        }
        carry = text.slice(-8)
        if (answered === events.length) resolve()
      })
      socket.on('error', reject)
    }
  }).finally(() => {
    for (const socket of sockets) socket.destroy()
  })
}

async function deliverAll(variant: Variant, url: string, events: DeliveryEvent[]): Promise<void> {
  if (variant === 'floor') return floorAll(url, events)
  const options = {
    url,
    secret: SECRET,
    jobId: 'bench-job',
    allowPrivate: true,
    maxConnections: MAX_IN_FLIGHT,
    beforeRequest: () => true,
  }
  const client = variant === 'current' ? new WebhookClient(options) : new BaselineClient(options)
  // The window did not change; only the client did.
  const window = new OrderedDelivery(client, {
    startOffset: 0,
    maxInFlight: MAX_IN_FLIGHT,
    maxOutstanding: Math.max(64, MAX_IN_FLIGHT),
  })
  for (const event of events) {
    if (!(await window.push(event as never))) break
  }
  const result = await window.drain()
  await client.close()
  if (result.failure || result.delivered !== events.length)
    throw new Error(`${variant}: delivered ${result.delivered} of ${events.length}: ${result.failure?.reason}`)
}

async function measure(variant: Variant, receiver: Receiver, events: DeliveryEvent[]): Promise<Measured> {
  const receiverBefore = receiver.cpuUs()
  const workerBefore = process.cpuUsage()
  const started = performance.now()
  await deliverAll(variant, receiver.url, events)
  const seconds = (performance.now() - started) / 1000
  const worker = process.cpuUsage(workerBefore)
  const receiverAfter = receiver.cpuUs()
  const per = (us: number) => us / events.length
  return {
    variant,
    seconds,
    rate: events.length / seconds,
    workerUs: per(worker.user + worker.system),
    workerSystemUs: per(worker.system),
    receiverUs: per(receiverAfter.user + receiverAfter.system - receiverBefore.user - receiverBefore.system),
    receiverSystemUs: per(receiverAfter.system - receiverBefore.system),
  }
}

/** The two signatures alone, as the client computes them per event (first attempt). */
function signingUs(events: DeliveryEvent[]): number {
  const signer = new WebhookSigner(SECRET)
  const started = process.cpuUsage()
  const timestamp = Math.floor(Date.now() / 1000)
  for (const event of events) {
    signer.twitter(event.body)
    signer.standard(`evt_${event.hash.toString(16)}`, timestamp, event.body)
  }
  const used = process.cpuUsage(started)
  return (used.user + used.system) / events.length
}

/** The ordered window's own bookkeeping: a client whose sends settle at once. */
async function windowUs(events: DeliveryEvent[]): Promise<number> {
  const instant = {
    signal: undefined,
    stats: {},
    send: async () => ({outcome: 'delivered', attempts: 1, latencyMs: 0, messageId: ''}),
  }
  const window = new OrderedDelivery(instant as never, {
    startOffset: 0,
    maxInFlight: MAX_IN_FLIGHT,
    maxOutstanding: Math.max(64, MAX_IN_FLIGHT),
  })
  const started = process.cpuUsage()
  for (const event of events) await window.push(event)
  await window.drain()
  const used = process.cpuUsage(started)
  return (used.user + used.system) / events.length
}

/** The range reader's CPU per record (this process, librdkafka's threads included). */
async function kafkaReadUs(events: DeliveryEvent[]): Promise<number> {
  const settings = resolveSettings({brokers: process.env.REPLAYCTL_BROKERS ?? '127.0.0.1:9092'})
  const topic = `bench_delivery_${Date.now()}`
  await createTopic(settings, {
    topic,
    partitions: 1,
    compression: 'snappy',
    compact: false,
    configs: [],
    ifNotExists: false,
  })
  try {
    const writer = await RecordWriter.open(settings, topic)
    const now = Date.now()
    for (const event of events) await writer.write('2244994945', event.body, now)
    await writer.close()
    const started = process.cpuUsage()
    let read = 0
    for await (const batch of readRanges(settings, topic, [{partition: 0, start: 0, end: events.length}]))
      read += batch.length
    const used = process.cpuUsage(started)
    if (read !== events.length) throw new Error(`read ${read} of ${events.length} records`)
    return (used.user + used.system) / read
  } finally {
    const admin = await connectAdmin(settings)
    await new Promise<void>((resolve) => admin.deleteTopic(topic, 10_000, () => resolve()))
    admin.disconnect()
  }
}

const round1 = (value: number) => value.toFixed(1)
const thousands = (value: number) => Math.round(value).toLocaleString('en-US')

async function main(): Promise<void> {
  BaselineClient = await loadBaselineClient()
  const events = makeEvents(EVENTS)
  const receiver = await startReceiver()
  try {
    const variants: Variant[] = ONLY ? [ONLY as Variant] : ['baseline', 'current', 'floor']
    await deliverAll('current', receiver.url, events.slice(0, 5000)) // warm up the JIT and the receiver
    if (!ONLY) await deliverAll('baseline', receiver.url, events.slice(0, 5000))
    if (!ONLY) await deliverAll('floor', receiver.url, events.slice(0, 5000))
    const runs: Measured[] = []
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of variants) {
        const run = await measure(variant, receiver, events)
        runs.push(run)
        console.error(
          `${variant}: ${thousands(run.rate)} events/s, worker ${round1(run.workerUs)} µs/event ` +
            `(kernel ${round1(run.workerSystemUs)}), receiver ${round1(run.receiverUs)} µs/event ` +
            `(kernel ${round1(run.receiverSystemUs)}) (${run.seconds.toFixed(2)} s)`,
        )
      }
    }
    const bad = VERIFY ? await receiver.badSignatures() : 0
    if (bad) throw new Error(`the receiver found ${bad} bad signatures`)
    const sign = signingUs(events)
    const window = await windowUs(events)
    const kafka = KAFKA ? await kafkaReadUs(events) : undefined
    const summary = variants.map((variant) => {
      const mine = runs.filter((run) => run.variant === variant)
      const middle = (pick: (run: Measured) => number) => median(mine.map(pick))
      return {
        variant,
        rate: middle((run) => run.rate),
        workerUs: middle((run) => run.workerUs),
        workerSystemUs: middle((run) => run.workerSystemUs),
        receiverUs: middle((run) => run.receiverUs),
        receiverSystemUs: middle((run) => run.receiverSystemUs),
        // The round that cost the worker least: the one least disturbed by other work on the machine.
        quietest: mine.reduce((best, run) => (run.workerUs < best.workerUs ? run : best)),
      }
    })
    console.log(
      JSON.stringify(
        {
          events: EVENTS,
          rounds: ROUNDS,
          maxInFlight: MAX_IN_FLIGHT,
          verify: VERIFY,
          summary,
          signingUs: sign,
          windowUs: window,
          kafkaReadUs: kafka,
          load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
        },
        null,
        2,
      ),
    )
    if (WRITE) write(summary, sign, window, kafka)
  } finally {
    receiver.child.kill()
  }
}

const LABELS: Record<Variant, string> = {
  baseline: `before: the client at ${BASELINE_COMMIT} (from git history)`,
  current: 'after: this branch',
  floor: 'floor: raw sockets, same signed bytes, no parser',
}

type Summary = {
  variant: Variant
  rate: number
  workerUs: number
  workerSystemUs: number
  receiverUs: number
  receiverSystemUs: number
  quietest: Measured
}

function write(summary: Summary[], sign: number, window: number, kafka: number | undefined): void {
  const read = kafka ?? 0
  // One worker delivers a webhook's partition from one JavaScript thread, so the rate is bounded by
  // one core for the worker (delivery + read) and by two cores for everything on the machine.
  const ceiling = (entry: Summary) =>
    Math.min(1e6 / (entry.workerUs + read), 2e6 / (entry.workerUs + read + entry.receiverUs))
  const row = (entry: Summary) =>
    `| ${LABELS[entry.variant]} | ${round1(entry.workerUs)} µs (${round1(entry.workerSystemUs)} kernel) | ` +
    `${round1(entry.receiverUs)} µs (${round1(entry.receiverSystemUs)} kernel) | ${thousands(ceiling(entry))}/s | ` +
    `${thousands(entry.rate)}/s | ${round1(entry.quietest.workerUs)} µs, ${round1(entry.quietest.receiverUs)} µs, ` +
    `${thousands(entry.quietest.rate)}/s |`
  const find = (variant: Variant) => summary.find((entry) => entry.variant === variant)
  const before = find('baseline')
  const after = find('current')
  const floor = find('floor')
  const breakdown =
    after && floor
      ? `Where the worker's ${round1(after.workerUs)} µs per delivered event go (after): the two ` +
        `signatures ${round1(sign)} µs; sending on a socket and reading the answer (the floor less the signatures: ` +
        `write and read syscalls, the event loop's wake-up, in the kernel both ends of ` +
        `loopback TCP) ${round1(floor.workerUs - sign)} µs; undici building the request and parsing the answer, the ` +
        `retry loop and the window (after less floor) ${round1(after.workerUs - floor.workerUs)} µs, of which the ` +
        `window's own bookkeeping is ${round1(window)} µs${
          kafka === undefined ? '' : `; and before all of it the ` + `Kafka read, ${round1(kafka)} µs per record`
        }.`
      : ''
  writeSection(
    'delivery',
    `
## Delivery: CPU per event, worker and receiver (issue #9 item 4)

Measured ${new Date().toISOString()} on ${machine()}, load average \
${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]} (the 2 cores were shared with other work: wall rates are low \
and noisy, CPU per event is the figure to compare).
The real WebhookClient + OrderedDelivery, \`--max-in-flight ${MAX_IN_FLIGHT}\`, ${EVENTS.toLocaleString('en-US')} \
events of ${nth(makeEvents(1), 0).body.length} bytes to a minimal node:http receiver in its own \
process${VERIFY ? ' that verifies both signatures' : ' answering 200'}; before, after and the floor in the same run, \
alternating, median of ${ROUNDS}. Worker CPU: process.cpuUsage (all threads); receiver CPU: /proc/<pid>/stat \
utime+stime.${
      kafka === undefined
        ? ''
        : ` The Kafka read, measured apart with the range reader a replay uses \
(${EVENTS.toLocaleString('en-US')} records of one partition, librdkafka's threads included): ${round1(kafka)} µs per \
record.`
    }
Reproduce: \`npx tsx bench/delivery.ts --rounds ${ROUNDS} --events \
${EVENTS}${VERIFY ? ' --verify' : ''}${KAFKA ? ' --kafka' : ''} --write\`${KAFKA ? ' (with the stack up)' : ''}.

| delivery path | worker CPU / event | receiver CPU / event | ceiling on 2 idle \
cores${kafka === undefined ? '' : ', read included'} | measured rate (loaded) | quietest round: worker, receiver, rate |
| --- | --- | --- | --- | --- | --- |
${summary.map(row).join('\n')}

The ceiling is min(one core / (worker${kafka === undefined ? '' : ' + read'}), two cores / \
(worker${kafka === undefined ? '' : ' + read'} + receiver)): a webhook's partition is delivered from one JavaScript \
thread, and the worker, the receiver (and the broker) share the two cores.${
      before && after
        ? ` The worker's CPU per \
event fell ${Math.round((1 - after.workerUs / before.workerUs) * 100)}% (${round1(before.workerUs)} → \
${round1(after.workerUs)} µs).`
        : ''
    }

${breakdown}

${
  after && floor
    ? `What stops 25,000 events/s: one worker thread delivers a webhook's partition, so it may spend at \
most 40 µs per event, delivery and read together. It spends ${round1(after.workerUs)} + ${round1(read)} = \
${round1(after.workerUs + read)} µs (quietest round ${round1(after.quietest.workerUs + read)} µs). The fixed costs in \
that: the Kafka read (${round1(read)} µs: the client library hands every record to JavaScript as its own object, see \
the toolkit notes), the two HMACs (${round1(sign)} µs, required by both signature schemes), and one request's socket \
work (${round1(floor.workerUs - sign)} µs; quietest ${round1(floor.quietest.workerUs - sign)} µs: a write and a read \
syscall and an event-loop wake-up per event, since every event is its own POST). Those alone come to \
${round1(floor.workerUs + read)} µs (quietest ${round1(floor.quietest.workerUs + read)} µs), \
${
  floor.workerUs + read >= 40
    ? 'already past the 40 µs before any HTTP client'
    : `which leaves \
${round1(40 - floor.workerUs - read)} µs for an HTTP client`
}, where undici's request building and response parsing \
take ${round1(after.workerUs - floor.workerUs)} µs (quietest \
${round1(after.quietest.workerUs - floor.quietest.workerUs)} µs). On the receiver's side node:http needs \
${round1(after.receiverUs)} µs per event, so the two processes and the read together need \
${round1(after.workerUs + read + after.receiverUs)} µs of the 80 µs two cores have per event at 25,000/s.`
    : ''
}

A whole replay pays more per event than this path: the Kafka read, the dedup filter, the deliver loop and the \
checkpoint saves, measured apart and in process by \`bench/replay-engine.ts\` (the \`replay-engine\` section), and a \
window of \`--max-ahead\` events that stalls behind a slow answer.

What would close it, in order of what it buys: the read on its own thread (a worker_thread consuming Kafka and handing \
the delivery thread batches: takes the ${round1(read)} µs off the delivery thread, and needs the second core, which \
the receiver here also uses); an HTTP/1.1 client close to the floor (one write of pre-serialised headers, a parser for \
only the status line, Content-Length, Retry-After and chunked bodies; a purpose-built client, with TLS and connection \
management to keep); HTTP/2 toward receivers that speak it (many requests per write; not measured). HTTP/1.1 \
pipelining does not help: measured on this branch under the same load (\`--max-in-flight 16\` over 4 connections 4 \
deep: worker 104 µs, receiver 74 µs per event; 16 deep: 115 µs and 81 µs), undici still writes every request with its \
own syscall and node:http handles pipelined requests one at a time.

`,
  )
}

await main()
