import type {IngestTokenSpec} from '../../shared/settings.js'
import type {TokenEntry} from '../auth.js'
import type {IngestRecord} from './events.js'

/**
 * What an ingest token may write: events whose key matches one of its key patterns, to a topic
 * matching one of its topic patterns. A request is checked whole before anything of it is
 * produced, so a token writing one key outside its scope writes nothing.
 */
export interface IngestScope {
  keys: (key: string) => boolean
  topics: (topic: string) => boolean
}

/** The ingest tokens as the shared bearer model takes them. */
export function ingestTokenEntries(tokens: IngestTokenSpec[]): TokenEntry<IngestScope>[] {
  return tokens.map((spec) => ({token: spec.token, scope: {keys: matcher(spec.keys), topics: matcher(spec.topics)}}))
}

/** The first record this scope may not write, with its position (1-based), or undefined. */
export function outOfScope(
  scope: IngestScope,
  records: readonly IngestRecord[],
): {index: number; key: string} | undefined {
  for (const [index, {key}] of records.entries()) {
    if (!scope.keys(key)) return {index: index + 1, key}
  }
  return undefined
}

/**
 * A test for names against patterns in which `*` is any run of characters; the patterns' other
 * characters (letters, digits, . _ -, checked by the settings) are literal except `.`, escaped.
 */
function matcher(patterns: '*' | string[]): (name: string) => boolean {
  if (patterns === '*') return () => true
  const exact = new Set(patterns.filter((pattern) => !pattern.includes('*')))
  const wild = patterns.filter((pattern) => pattern.includes('*'))
  if (wild.length === 0) return (name) => exact.has(name)
  const regex = new RegExp(
    `^(?:${wild
      .map((pattern) =>
        pattern
          .split('*')
          .map((part) => part.replaceAll('.', '\\.'))
          .join('.*'),
      )
      .join('|')})$`,
  )
  return (name) => exact.has(name) || regex.test(name)
}
