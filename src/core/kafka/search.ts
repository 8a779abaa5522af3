import {invalidArgument, quoteInput} from '../shared/errors.js'
import type {Partitioner} from './partitioner.js'
import {planRead} from './read.js'
import {topicMetadata, withAdmin} from './topics.js'
import {type Message, readRanges} from './range-reader.js'
import type {Settings} from '../shared/settings.js'
import {isoTime} from '../shared/time.js'

/**
 * `log search`: find records by key, by value (substring, regular expression, or a JSON field) in
 * a time window, with every partition's range fixed before reading, so a search always ends.
 *
 * With a key only the key's partition is read (the partition producers put it in) and only records
 * with exactly that key match; without one every partition is read at once by one consumer. Each
 * range is [offset for --since, offset for --until) capped at the high watermark seen at start,
 * and records whose timestamp falls outside the window are skipped as well, so a partition whose
 * timestamps are not in order still yields only records of the window. The result says how many
 * records each partition's scan examined, which is what a search costs.
 */
export type ValueFilter =
  {kind: 'contains'; text: string} | {kind: 'regex'; source: string} | {kind: 'field'; path: string; value: string}

export interface SearchOptions {
  topic: string
  key?: string
  partitioner: Partitioner
  filter?: ValueFilter
  since?: number
  until?: number
  max?: number
}

export interface PartitionScan {
  partition: number
  /** False for the partitions a key search leaves alone (they cannot hold the key). */
  read: boolean
  /** First offset of the range (null where not read). */
  start: number | null
  /** First offset not in the range (null where not read). */
  end: number | null
  /** Records read from the range (fewer than end - start when --max stopped it or compaction left gaps). */
  scanned: number
  matched: number
}

export interface SearchResult {
  topic: string
  key?: string
  partitioner?: Partitioner
  filter?: ValueFilter
  since?: string
  until?: string
  partitions: PartitionScan[]
  scanned: number
  matched: number
  /** False when --max (or a closed output) stopped the search before the end of every range. */
  complete: boolean
}

export interface SearchHooks {
  /** Called with each batch of matches, in per-partition offset order; awaited (back-pressure). */
  onMatches?: (matches: Message[]) => Promise<void> | void
  /** Called with the plan, then after every batch: records scanned so far of the planned total. */
  onProgress?: (scanned: number, total: number) => void
  signal?: AbortSignal
}

/** Parses `path=value` into a field filter; the path is dotted (payload.user.id). */
export function parseFieldFilter(input: string): ValueFilter {
  const at = input.indexOf('=')
  const path = at < 0 ? '' : input.slice(0, at).trim()
  if (at < 0 || path === '' || path.split('.').some((part) => part === '')) {
    throw invalidArgument(
      `malformed --field ${quoteInput(input)}`,
      'write it as path=value with a dotted path, e.g. --field for_user_id=42 or --field tweet.user.id=42',
    )
  }
  return {kind: 'field', path, value: input.slice(at + 1)}
}

type Matcher = (value: Buffer | null | undefined) => boolean

function valueMatcher(filter: ValueFilter | undefined): Matcher {
  if (filter === undefined) return () => true
  switch (filter.kind) {
    case 'contains': {
      const needle = Buffer.from(filter.text, 'utf8')
      // Bytes, not decoded text: a substring search needs no UTF-8 decoding of every value.
      return (value) => value !== null && value !== undefined && value.indexOf(needle) >= 0
    }
    case 'regex': {
      let pattern: RegExp
      try {
        pattern = new RegExp(filter.source)
      } catch (error) {
        throw invalidArgument(
          `invalid --value-regex ${quoteInput(filter.source)} ` +
            `(${(error as Error).message.replace(/^Invalid regular expression: /, '')})`,
          'use JavaScript regular expression syntax, e.g. --value-regex "favorite_events|follow_events"',
        )
      }
      return (value) => value !== null && value !== undefined && pattern.test(value.toString('utf8'))
    }
    case 'field': {
      const path = filter.path.split('.')
      return (value) => {
        if (value === null || value === undefined) return false
        let found: unknown
        try {
          found = JSON.parse(value.toString('utf8'))
        } catch {
          return false
        }
        for (const part of path) {
          if (found === null || typeof found !== 'object') return false
          found = (found as Record<string, unknown>)[part]
        }
        return fieldEquals(found, filter.value)
      }
    }
  }
}

/** A JSON field equals the operator's text when its string, number or boolean reads the same. */
function fieldEquals(found: unknown, text: string): boolean {
  if (found === undefined) return false
  if (typeof found === 'string') return found === text
  if (found === null || typeof found === 'object') return JSON.stringify(found) === text
  return String(found) === text
}

export async function searchLog(
  settings: Settings,
  options: SearchOptions,
  hooks: SearchHooks = {},
): Promise<SearchResult> {
  if (options.max !== undefined && (!Number.isInteger(options.max) || options.max <= 0))
    throw invalidArgument(`--max must be 1 or more, got ${options.max}`, 'leave it out to search the whole range')
  if (options.since !== undefined && options.until !== undefined && options.until < options.since) {
    throw invalidArgument(
      `--until (${isoTime(options.until)}) is before --since (${isoTime(options.since)})`,
      'swap them, or give a later --until',
    )
  }
  const matchesValue = valueMatcher(options.filter)
  const plan = await planRead(settings, {
    topic: options.topic,
    key: options.key,
    partitioner: options.partitioner,
    since: options.since,
    until: options.until,
  })

  const partitionCount =
    options.key === undefined
      ? plan.ranges.length
      : await withAdmin(
          settings,
          async (admin) => (await topicMetadata(settings, admin, options.topic)).partitions.length,
        )
  const scans = new Map<number, PartitionScan>(
    Array.from({length: partitionCount}, (_, partition) => [
      partition,
      {partition, read: false, start: null, end: null, scanned: 0, matched: 0},
    ]),
  )
  for (const range of plan.ranges) scans.set(range.partition, {...range, read: true, scanned: 0, matched: 0})
  const total = plan.ranges.reduce((sum, range) => sum + range.end - range.start, 0)
  const key = options.key === undefined ? undefined : Buffer.from(options.key, 'utf8')
  const since = options.since ?? Number.NEGATIVE_INFINITY
  const until = options.until ?? Number.POSITIVE_INFINITY
  const matches = (message: Message): boolean => {
    if (key && !(Buffer.isBuffer(message.key) && key.equals(message.key))) return false
    const timestamp = message.timestamp ?? -1
    if (timestamp < since || timestamp >= until) return false
    return matchesValue(message.value)
  }

  let scanned = 0
  let matched = 0
  let stoppedEarly = false
  const remaining = () => (options.max ?? Number.POSITIVE_INFINITY) - matched
  hooks.onProgress?.(0, total)
  const stop = new AbortController()
  const forward = () => stop.abort()
  hooks.signal?.addEventListener('abort', forward)
  try {
    for await (const batch of readRanges(settings, plan.topic, plan.ranges, {signal: stop.signal})) {
      const found: Message[] = []
      for (const message of batch) {
        const scan = scans.get(message.partition)!
        scan.scanned++
        scanned++
        if (!matches(message)) continue
        scan.matched++
        found.push(message)
        if (found.length >= remaining()) break
      }
      matched += found.length
      if (found.length) await hooks.onMatches?.(found)
      hooks.onProgress?.(scanned, total)
      if (remaining() <= 0 || hooks.signal?.aborted) {
        stoppedEarly = scanned < total
        stop.abort()
        break
      }
    }
    if (hooks.signal?.aborted) stoppedEarly = true
  } finally {
    hooks.signal?.removeEventListener('abort', forward)
  }

  return {
    topic: plan.topic,
    ...(options.key === undefined ? {} : {key: options.key, partitioner: options.partitioner}),
    ...(options.filter === undefined ? {} : {filter: options.filter}),
    ...(options.since === undefined ? {} : {since: isoTime(options.since)}),
    ...(options.until === undefined ? {} : {until: isoTime(options.until)}),
    partitions: [...scans.values()],
    scanned,
    matched,
    complete: !stoppedEarly,
  }
}
