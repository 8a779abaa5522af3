import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {accountActivityEvent, webhookIds} from '../src/core/dev/seed.js'
import {topLevelFieldFinder} from '../src/core/kafka/json-fields.js'
import {nth} from './helpers.js'

const findTopLevelFields = (text: Buffer, names: string[]) => topLevelFieldFinder(names)(text)

/**
 * The NDJSON fast path of `log produce` must never accept what JSON.parse rejects, and must find
 * the value JSON.parse would give. Checked on hand-picked cases and on many mutated events.
 */
function oracle(text: string, names: string[]): unknown[] | 'invalid' | 'no object' {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return 'invalid'
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'no object'
  return names.map((name) =>
    Object.hasOwn(parsed as object, name) ? (parsed as Record<string, unknown>)[name] : undefined,
  )
}

function agrees(text: string, names: string[]): void {
  const fast = findTopLevelFields(Buffer.from(text, 'utf8'), names)
  const expected = oracle(text, names)
  if (fast === undefined) return
  assert.ok(Array.isArray(expected), `accepted what JSON.parse calls ${String(expected)}: ${text}`)
  assert.deepEqual(fast, expected, text)
}

describe('findTopLevelFields', () => {
  it('finds top-level strings and numbers, with escapes, as JSON.parse does', () => {
    assert.deepEqual(
      findTopLevelFields(Buffer.from('{"a":1,"webhook_id":"w-1","ts":1700000000000}'), ['webhook_id', 'ts']),
      ['w-1', 1700000000000],
    )
    assert.deepEqual(
      findTopLevelFields(Buffer.from(' { "webhook_id" : "a\\"b\\u00e9" , "ts": -1.5e3 } '), ['webhook_id', 'ts']),
      ['a"bé', -1500],
    )
    assert.deepEqual(findTopLevelFields(Buffer.from('{"webhook_id":"x","webhook_id":"y"}'), ['webhook_id']), ['y'])
    assert.deepEqual(
      findTopLevelFields(Buffer.from('{"n":{"webhook_id":"inner"},"webhook_id":"outer"}'), ['webhook_id']),
      ['outer'],
    )
    assert.deepEqual(findTopLevelFields(Buffer.from('{"webhook_id":"ü→😀"}'), ['webhook_id']), ['ü→😀'])
    assert.deepEqual(findTopLevelFields(Buffer.from('{"webhook_id":{"id":1}}'), ['webhook_id']), [{id: 1}])
  })

  it('is in doubt (undefined) for invalid text, non-objects, missing fields and escaped names', () => {
    for (const text of [
      '',
      'not json',
      '[1]',
      '"s"',
      '{"webhook_id":"a"',
      '{"webhook_id":"a"}x',
      '{"webhook_id":"a",}',
      '{"webhook_id":01}',
      '{"webhook_id":"a\u0001"}',
      '{"webhook_id":"\\x"}',
      '{"webhook_id":tru}',
      '{"other":1}',
      '{"\\u0077ebhook_id":"a"}',
      '{"webhook_id":"a","\\u0077ebhook_id":"b"}',
      '{"webhook_id":1.}',
      '{"webhook_id":-}',
      '{"webhook_id":1e}',
      '{"a":[1,]}',
      '{"a":[1 2]}',
      '{"webhook_id":"a"}}',
      '\ufeff{"webhook_id":"a"}',
    ]) {
      assert.equal(findTopLevelFields(Buffer.from(text), ['webhook_id']), undefined, text)
      agrees(text, ['webhook_id'])
    }
    assert.equal(findTopLevelFields(Buffer.from('['.repeat(100) + ']'.repeat(100)), ['a']), undefined)
  })

  it('never disagrees with JSON.parse on mutated account activity events', () => {
    const ids = webhookIds(10, 3)
    const alphabet = '{}[]":,\\ -+.eE0123456789abcdeflnrstu\u0001é'
    let seed = 12345
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    let accepted = 0
    for (let index = 0; index < 3000; index++) {
      let text = accountActivityEvent(index, nth(ids, index % ids.length), 1_700_000_000_000 + index, 1)
      agrees(text, ['webhook_id', 'created_at_ms'])
      const edits = 1 + Math.floor(random() * 3)
      for (let edit = 0; edit < edits; edit++) {
        const at = Math.floor(random() * text.length)
        const char = nth(alphabet, Math.floor(random() * alphabet.length))
        const kind = random()
        text =
          kind < 0.4
            ? text.slice(0, at) + char + text.slice(at + 1)
            : kind < 0.7
              ? text.slice(0, at) + char + text.slice(at)
              : text.slice(0, at) + text.slice(at + 1)
      }
      agrees(text, ['webhook_id', 'created_at_ms'])
      if (findTopLevelFields(Buffer.from(text), ['webhook_id', 'created_at_ms'])) accepted++
    }
    assert.ok(accepted > 100, `only ${accepted} mutated events were accepted; the check would prove little`)
  })
})
