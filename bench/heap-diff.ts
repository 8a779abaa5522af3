/**
 * Compares two V8 heap snapshots (e.g. bench/worker-soak.ts --heap-snapshots 10,40): objects and
 * self sizes by constructor (node type and name), the largest growth first. What a leak looks like
 * from the JS side: a count that grows with the jobs run between the two snapshots.
 *
 *   npx tsx bench/heap-diff.ts before.heapsnapshot after.heapsnapshot [--top 30]
 */
import {readFileSync} from 'node:fs'

interface Totals {
  count: number
  bytes: number
}

function byConstructor(path: string): Map<string, Totals> {
  const snapshot = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: {meta: {node_fields: string[]; node_types: [string[]]}}
    nodes: number[]
    strings: string[]
  }
  const {node_fields: fields, node_types: types} = snapshot.snapshot.meta
  const stride = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const totals = new Map<string, Totals>()
  for (let index = 0; index < snapshot.nodes.length; index += stride) {
    const type = types[0][snapshot.nodes[index + typeAt] ?? 0] ?? '?'
    const rawName = snapshot.strings[snapshot.nodes[index + nameAt] ?? 0] ?? '?'
    // Strings and code are named by their contents: one row per type for them.
    const name = ['object', 'closure', 'native', 'hidden'].includes(type) ? rawName.slice(0, 60) : ''
    const key = `${type} ${name}`.trim()
    const entry = totals.get(key) ?? {count: 0, bytes: 0}
    entry.count++
    entry.bytes += snapshot.nodes[index + sizeAt] ?? 0
    totals.set(key, entry)
  }
  return totals
}

const [beforePath, afterPath] = process.argv.slice(2)
if (!beforePath || !afterPath) throw new Error('usage: heap-diff.ts before.heapsnapshot after.heapsnapshot')
const topAt = process.argv.indexOf('--top')
const top = topAt >= 0 ? Number(process.argv[topAt + 1]) : 30
const before = byConstructor(beforePath)
const after = byConstructor(afterPath)
const sum = (totals: Map<string, Totals>) => [...totals.values()].reduce((all, entry) => all + entry.bytes, 0)
console.log(`total self size ${(sum(before) / 2 ** 20).toFixed(1)} MB -> ${(sum(after) / 2 ** 20).toFixed(1)} MB`)
const rows = [...new Set([...before.keys(), ...after.keys()])].map((key) => {
  const a = before.get(key) ?? {count: 0, bytes: 0}
  const b = after.get(key) ?? {count: 0, bytes: 0}
  return {key, count: b.count - a.count, bytes: b.bytes - a.bytes, now: b.count}
})
rows.sort((a, b) => b.bytes - a.bytes)
for (const row of rows.slice(0, top))
  console.log(
    `${(row.bytes / 1024).toFixed(0).padStart(8)} KB ${String(row.count).padStart(8)} objects ` +
      `(now ${row.now})  ${row.key}`,
  )
