import type {Message, ScannedBatch} from '../src/core/kafka/range-reader.js'
import {readMerged} from '../src/core/replay/run/merge.js'
import type {ReorderStats} from '../src/core/replay/run/reorder-buffer.js'

/**
 * What the reorder buffer of a cross-datacenter replay holds at most (README, "Cross-datacenter
 * replay"): a webhook's events over an hour at a steady rate, two full copies of them (dc1 in time
 * order, dc2 shuffled within each minute, as mirroring and retries leave it), merged by readMerged
 * exactly as the deliver step merges them, in batches of the range reader's size. Prints the peak
 * of records and bytes (keys and values) held, the same per grace of one copy's events, and the CPU
 * per record (generating the copies included).
 *
 *   npx tsx bench/reorder-memory.ts [--rate 10] [--bytes 1000] [--grace-minutes 5] [--minutes 60]
 */
const flag = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} takes a positive number`)
  return value
}
const rate = flag('rate', 10)
const bytes = flag('bytes', 1000)
const graceMs = flag('grace-minutes', 5) * 60_000
const minutes = flag('minutes', 60)
const BATCH = 2000

const count = Math.round(rate * 60 * minutes)
const key = Buffer.from('webhook-0123456789')
const times = Array.from({length: count}, (_, i) => Math.floor((i * 1000) / rate))

let seed = 20_261_204
const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32
const shuffledWithinMinutes = (list: number[]): number[] => {
  const out: number[] = []
  for (let start = 0; start < list.length;) {
    const minute = Math.floor((list[start] ?? 0) / 60_000)
    let end = start
    while (end < list.length && Math.floor((list[end] ?? 0) / 60_000) === minute) end++
    const slice = list.slice(start, end)
    for (let i = slice.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const [a, b] = [slice[i], slice[j]]
      if (a !== undefined && b !== undefined) [slice[i], slice[j]] = [b, a]
    }
    out.push(...slice)
    start = end
  }
  return out
}

/** A copy's records in batches, each batch's values in one buffer as the packed reader's are. */
async function* copy(order: number[], partition: number): AsyncGenerator<ScannedBatch> {
  for (let start = 0; start < order.length; start += BATCH) {
    const slice = order.slice(start, start + BATCH)
    const data = Buffer.alloc(slice.length * bytes, 'x')
    const messages: Message[] = slice.map((timestamp, index) => ({
      topic: `dc${partition}`,
      partition,
      offset: start + index,
      timestamp,
      key,
      value: data.subarray(index * bytes, (index + 1) * bytes),
      size: bytes,
    }))
    yield {messages, scannedTo: start + slice.length, scanned: slice.length}
  }
}

const stats: ReorderStats = {held: 0, heldBytes: 0, peakHeld: 0, peakHeldBytes: 0}
let delivered = 0
let previous = Number.NEGATIVE_INFINITY
let breaks = 0
const cpu = process.cpuUsage()
const readers = [copy(times, 1), copy(shuffledWithinMinutes(times), 2)]
for await (const run of readMerged(readers, {lateGraceMs: graceMs, starts: [0, 0], stats})) {
  for (const message of run.messages) {
    const time = message.timestamp ?? 0
    if (time < previous) breaks++
    previous = time
    delivered++
  }
}
const used = process.cpuUsage(cpu)
const perGrace = (rate * graceMs) / 1000
console.log(
  JSON.stringify(
    {
      events: count,
      copies: 2,
      ratePerSecond: rate,
      bodyBytes: bytes,
      graceMinutes: graceMs / 60_000,
      recordsOut: delivered,
      timeOrderBreaks: breaks,
      peakHeld: stats.peakHeld,
      peakHeldBytes: stats.peakHeldBytes,
      peakHeldPerGraceOfOneCopy: Number((stats.peakHeld / perGrace).toFixed(2)),
      cpuMicrosPerRecord: Number(((used.user + used.system) / delivered).toFixed(2)),
    },
    null,
    2,
  ),
)
