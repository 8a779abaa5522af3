import {BugError, invalidArgument} from '../shared/errors.js'
import {RecordWriter} from '../kafka/record-writer.js'
import type {Settings} from '../shared/settings.js'
import {createTopic, type CreateTopicResult} from '../kafka/topics.js'

/**
 * A realistic delivery_log, deterministic from a seed:
 *   - `webhooks` webhook ids (19-digit, like Twitter's), each event's webhook drawn from a Zipf
 *     distribution (exponent `skew`), so a few webhooks are busy and most are quiet
 *   - ~0.8 KB JSON events shaped like Account Activity events (for_user_id plus one of
 *     tweet_create_events, favorite_events, follow_events, direct_message_events)
 *   - CreateTimes spread evenly over the past `days`, written in time order as a live log is
 *   - a `duplicateRate` share written again 1-10 minutes later, byte for byte, as
 *     cross-datacenter replication does
 * The same seed and sizes give the same events, keys and order (timestamps move with `now`).
 */
export interface SeedOptions {
  topic: string
  events: number
  webhooks: number
  days: number
  duplicateRate: number
  skew: number
  seed: number
  partitions: number
  now?: number
  /** Events written so far, duplicates not counted (they come on top of --events). */
  onProgress?: (events: number) => void
}

export interface SeedResult {
  topic: string
  topicCreated: boolean
  /** Distinct events written. */
  events: number
  /** Events written a second time; records = events + duplicates. */
  duplicates: number
  records: number
  webhooks: number
  bytes: number
  seconds: number
  recordsPerSecond: number
  from: string
  to: string
  busiestWebhooks: {webhookId: string; events: number}[]
}

/** mulberry32: tiny, fast, and deterministic across platforms. */
export function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function webhookIds(count: number, seed: number): string[] {
  const next = random(seed ^ 0x5eed)
  const ids = new Set<string>()
  while (ids.size < count)
    ids.add(`1${String(Math.floor(next() * 1e9)).padStart(9, '0')}${String(Math.floor(next() * 1e9)).padStart(9, '0')}`)
  return [...ids]
}

/** Cumulative Zipf weights over ranks 1..n: rank r has weight 1 / r^skew. */
function zipfTable(n: number, skew: number): Float64Array {
  const cumulative = new Float64Array(n)
  let total = 0
  for (let rank = 1; rank <= n; rank++) cumulative[rank - 1] = total += 1 / rank ** skew
  return cumulative.map((weight) => weight / total)
}

function drawRank(cumulative: Float64Array, u: number): number {
  let low = 0
  let high = cumulative.length - 1
  while (low < high) {
    const middle = (low + high) >>> 1
    const weight = cumulative[middle]
    if (weight === undefined) throw new BugError(`rank ${middle} is outside the Zipf table of ${cumulative.length}`)
    if (weight < u) low = middle + 1
    else high = middle
  }
  return low
}

const WORDS = (
  'replay webhook kafka partition offset event delivery customer stream timeline ' +
  'mention reply retweet follow like message account activity subscription archive'
).split(' ')
const KINDS = ['tweet_create_events', 'favorite_events', 'follow_events', 'direct_message_events'] as const

function sentence(next: () => number, words: number): string {
  return Array.from({length: words}, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ')
}

function twitterDate(ms: number): string {
  // Twitter's created_at format: "Wed Oct 10 20:19:24 +0000 2018"
  const [day, month, date, year, time] = new Date(ms).toUTCString().replace(',', '').split(' ') as [
    string,
    string,
    string,
    string,
    string,
  ]
  return `${day} ${month} ${date} ${time} +0000 ${year}`
}

export function accountActivityEvent(index: number, webhookId: string, timestamp: number, seed: number): string {
  const next = random(seed * 7919 + index)
  const kind = KINDS[Math.floor(next() * KINDS.length)] ?? KINDS[0]
  const userId = String(1e15 + Math.floor(next() * 1e15))
  const eventId = `${seed}-${index}`
  const user = {
    id_str: userId,
    screen_name: `user_${userId.slice(-6)}`,
    name: sentence(next, 2),
    followers_count: Math.floor(next() * 100_000),
    verified: next() < 0.05,
    profile_image_url_https: `https://pbs.twimg.com/profile_images/${userId}/avatar_normal.jpg`,
  }
  let payload: unknown
  switch (kind) {
    case 'tweet_create_events':
      payload = [
        {
          created_at: twitterDate(timestamp),
          id_str: eventId,
          text: sentence(next, 24),
          user,
          entities: {hashtags: [], urls: [], user_mentions: []},
        },
      ]
      break
    case 'favorite_events':
      payload = [
        {
          id: eventId,
          created_at: twitterDate(timestamp),
          timestamp_ms: timestamp,
          favorited_status: {id_str: String(index), text: sentence(next, 24), user},
          user,
        },
      ]
      break
    case 'follow_events':
      payload = [
        {
          type: 'follow',
          created_timestamp: String(timestamp),
          target: user,
          source: {...user, id_str: webhookId, about: sentence(next, 20)},
        },
      ]
      break
    case 'direct_message_events':
      payload = [
        {
          type: 'message_create',
          id: eventId,
          created_timestamp: String(timestamp),
          message_create: {
            target: {recipient_id: userId},
            sender_id: webhookId,
            message_data: {text: sentence(next, 20)},
          },
        },
      ]
      break
  }
  return JSON.stringify({
    event_id: eventId,
    webhook_id: webhookId,
    created_at_ms: timestamp,
    for_user_id: webhookId,
    [kind]: payload,
  })
}

export async function seed(settings: Settings, options: SeedOptions): Promise<SeedResult> {
  if (!Number.isInteger(options.events) || options.events <= 0)
    throw invalidArgument(`--events must be 1 or more, got ${options.events}`, 'e.g. --events 100000')
  if (!Number.isInteger(options.webhooks) || options.webhooks <= 0)
    throw invalidArgument(`--webhooks must be 1 or more, got ${options.webhooks}`, 'e.g. --webhooks 5000')
  if (!(options.days > 0 && options.days <= 3650))
    throw invalidArgument(
      `--days must be more than 0, got ${options.days}`,
      "e.g. --days 5 (within the topic's retention)",
    )
  if (!(options.duplicateRate >= 0 && options.duplicateRate < 1))
    throw invalidArgument(
      `--duplicate-rate must be in [0, 1), got ${options.duplicateRate}`,
      'e.g. --duplicate-rate 0.02',
    )
  if (!(options.skew >= 0))
    throw invalidArgument(`--skew must be 0 or more, got ${options.skew}`, 'e.g. --skew 1.1; 0 spreads events evenly')

  const topic: CreateTopicResult = await createTopic(settings, {
    topic: options.topic,
    partitions: options.partitions,
    compression: 'snappy',
    compact: false,
    configs: [],
    ifNotExists: true,
    retention: `${Math.ceil(options.days) + 2}d`,
  })
  const ids = webhookIds(options.webhooks, options.seed)
  const zipf = zipfTable(ids.length, options.skew)
  const next = random(options.seed)
  const now = options.now ?? Date.now()
  const span = options.days * 86_400_000
  const start = now - span
  const step = span / options.events

  // Originals in time order; each duplicate is queued to be written again 1-10 minutes later.
  const perWebhook = new Uint32Array(ids.length)
  const pending: {at: number; value: Buffer; key: string}[] = []
  const writer = await RecordWriter.open(settings, options.topic)
  const started = Date.now()
  let duplicates = 0
  const flushDuplicatesUntil = async (time: number) => {
    for (let duplicate = pending[0]; duplicate && duplicate.at <= time; duplicate = pending[0]) {
      pending.shift()
      await writer.write(duplicate.key, duplicate.value, duplicate.at)
      duplicates++
    }
  }
  for (let index = 0; index < options.events; index++) {
    const timestamp = Math.floor(start + index * step + next() * step)
    await flushDuplicatesUntil(timestamp)
    const rank = drawRank(zipf, next())
    const webhookId = ids[rank]
    if (webhookId === undefined) throw new BugError(`rank ${rank} is beyond the ${ids.length} webhooks`)
    perWebhook[rank] = (perWebhook[rank] ?? 0) + 1
    const value = Buffer.from(accountActivityEvent(index, webhookId, timestamp, options.seed))
    await writer.write(webhookId, value, timestamp)
    if (next() < options.duplicateRate) {
      const at = Math.min(now, timestamp + 60_000 + Math.floor(next() * 540_000))
      const slot = pending.findIndex((queued) => queued.at > at)
      pending.splice(slot === -1 ? pending.length : slot, 0, {at, value, key: webhookId})
    }
    if (index % 5000 === 0) {
      options.onProgress?.(index)
      // The writer only waits when librdkafka's queue is full, so without this the loop would run
      // in one turn of the event loop: no timer fires and a progress view shows 0% until the end.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  await flushDuplicatesUntil(Number.POSITIVE_INFINITY)
  const stats = await writer.close()
  const seconds = (Date.now() - started) / 1000

  const busiest = ids
    .map((webhookId, rank) => ({webhookId, events: perWebhook[rank] ?? 0}))
    .sort((a, b) => b.events - a.events)
    .slice(0, 5)
  return {
    topic: options.topic,
    topicCreated: topic.created,
    events: options.events,
    duplicates,
    records: stats.acknowledged,
    webhooks: ids.length,
    bytes: stats.bytes,
    seconds,
    recordsPerSecond: Math.round(stats.acknowledged / Math.max(seconds, 0.001)),
    from: new Date(start).toISOString(),
    to: new Date(now).toISOString(),
    busiestWebhooks: busiest,
  }
}
