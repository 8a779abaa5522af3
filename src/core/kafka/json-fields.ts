/**
 * Finds top-level fields of one JSON text without building the whole object: `log produce` needs
 * only the key and the CreateTime of each line, and JSON.parse of a 0.8 KB event costs about twice
 * the scan (and builds an object the check would throw away).
 *
 * The scan checks the whole text against JSON's grammar (RFC 8259), so it accepts only what
 * JSON.parse accepts; a field's value is then read by JSON.parse of just that value, so it is the
 * value JSON.parse of the whole line would give (the last one when a name repeats). It answers
 * `undefined` whenever it is not sure (invalid or non-object text, a wanted field missing, nesting
 * deeper than it follows): the caller then parses the line fully, which also words the error.
 */

import {BugError} from '../shared/errors.js'

const QUOTE = 0x22
const BACKSLASH = 0x5c
const MAX_DEPTH = 64
/** Bytes that end a run of plain string content: the quote, the backslash, control characters. */
const STRING_STOP = new Uint8Array(256)
for (let byte = 0; byte < 0x20; byte++) STRING_STOP[byte] = 1
STRING_STOP[QUOTE] = 1
STRING_STOP[BACKSLASH] = 1

/**
 * A finder for the values of `names` (top-level fields): it answers with the values in that order,
 * or undefined when in doubt.
 */
export function topLevelFieldFinder(names: string[]): (text: Buffer) => unknown[] | undefined {
  // One scanner per finder, reset for each text: a line allocates nothing but its answer.
  const scanner = new Scanner(names.map((name) => Buffer.from(name, 'utf8')))
  return (text) => {
    scanner.reset(text)
    let at = scanner.skipBlanks(0)
    if (text[at] !== 0x7b) return undefined
    at = scanner.object(at, 0, true)
    if (at < 0 || scanner.skipBlanks(at) !== text.length || scanner.doubt) return undefined
    const values: unknown[] = []
    for (let index = 0; index < names.length; index++) {
      if (scanner.starts[index] === NOT_FOUND) return undefined
      values.push(scanner.read(index))
    }
    return values
  }
}

const NOT_FOUND = -1
/** Up to this many digits, an integer read digit by digit is exact (below 2^53). */
const EXACT_DIGITS = 15

class Scanner {
  /** Where each wanted field's value starts and ends in the text (NOT_FOUND: not seen). */
  readonly starts: Int32Array
  readonly ends: Int32Array
  /** 1 when the value is a string without escapes: its bytes between the quotes are the value. */
  private readonly plainStrings: Uint8Array
  /** Set when the text holds something the scan does not resolve itself. */
  doubt = false
  /** Whether the last string scanned had an escape. */
  private escaped = false
  private text: Buffer = Buffer.alloc(0)

  constructor(private readonly names: Buffer[]) {
    this.starts = new Int32Array(names.length)
    this.ends = new Int32Array(names.length)
    this.plainStrings = new Uint8Array(names.length)
  }

  reset(text: Buffer): void {
    this.text = text
    this.doubt = false
    this.escaped = false
    this.starts.fill(NOT_FOUND)
  }

  read(index: number): unknown {
    const text = this.text
    const start = this.starts[index]
    const end = this.ends[index]
    if (start === undefined || end === undefined) throw new BugError(`no field ${index} to read`)
    if (this.plainStrings[index]) return text.toString('utf8', start + 1, end - 1)
    // A plain non-negative integer (a CreateTime in epoch ms) is read from its digits, unparsed.
    if (end - start <= EXACT_DIGITS && (text[start] !== 0x30 || end - start === 1)) {
      let value = 0
      let at = start
      for (; at < end; at++) {
        const digit = (text[at] ?? 0) - 0x30
        if (digit < 0 || digit > 9) break
        value = value * 10 + digit
      }
      if (at === end) return value
    }
    return JSON.parse(text.toString('utf8', start, end))
  }

  skipBlanks(at: number): number {
    const text = this.text
    while (at < text.length) {
      const byte = text[at]
      if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) break
      at++
    }
    return at
  }

  /** Returns the position after the value starting at `at`, or -1 if it is not valid JSON. */
  value(at: number, depth: number): number {
    switch (this.text[at]) {
      case 0x7b:
        return this.object(at, depth + 1, false)
      case 0x5b:
        return this.array(at, depth + 1)
      case QUOTE:
        return this.string(at)
      case 0x74:
        return this.literal(at, 'true')
      case 0x66:
        return this.literal(at, 'false')
      case 0x6e:
        return this.literal(at, 'null')
      default:
        return this.number(at)
    }
  }

  object(at: number, depth: number, topLevel: boolean): number {
    if (depth > MAX_DEPTH) return -1
    const text = this.text
    at = this.skipBlanks(at + 1)
    if (text[at] === 0x7d) return at + 1
    for (;;) {
      if (text[at] !== QUOTE) return -1
      const nameStart = at
      at = this.string(at)
      if (at < 0) return -1
      const nameEnd = at
      const nameEscaped = this.escaped
      at = this.skipBlanks(at)
      if (text[at] !== 0x3a) return -1
      at = this.skipBlanks(at + 1)
      const valueStart = at
      this.escaped = false
      at = this.value(at, depth)
      if (at < 0) return -1
      if (topLevel) this.note(nameStart, nameEnd, nameEscaped, valueStart, at, this.escaped)
      at = this.skipBlanks(at)
      if (text[at] === 0x7d) return at + 1
      if (text[at] !== 0x2c) return -1
      at = this.skipBlanks(at + 1)
    }
  }

  array(at: number, depth: number): number {
    if (depth > MAX_DEPTH) return -1
    const text = this.text
    at = this.skipBlanks(at + 1)
    if (text[at] === 0x5d) return at + 1
    for (;;) {
      at = this.value(at, depth)
      if (at < 0) return -1
      at = this.skipBlanks(at)
      if (text[at] === 0x5d) return at + 1
      if (text[at] !== 0x2c) return -1
      at = this.skipBlanks(at + 1)
    }
  }

  string(at: number): number {
    const text = this.text
    const end = text.length
    this.escaped = false
    at++
    for (;;) {
      while (at < end && STRING_STOP[text[at] ?? QUOTE] === 0) at++
      if (at >= end) return -1
      const byte = text[at]
      if (byte === QUOTE) return at + 1
      if (byte !== BACKSLASH) return -1
      this.escaped = true
      const escaped = text[++at]
      if (escaped === 0x75) {
        for (let digit = 1; digit <= 4; digit++) if (!isHex(text[at + digit])) return -1
        at += 4
      } else if (
        escaped !== QUOTE &&
        escaped !== BACKSLASH &&
        escaped !== 0x2f &&
        escaped !== 0x62 &&
        escaped !== 0x66 &&
        escaped !== 0x6e &&
        escaped !== 0x72 &&
        escaped !== 0x74
      ) {
        return -1
      }
      at++
    }
  }

  literal(at: number, word: string): number {
    for (let index = 0; index < word.length; index++) if (this.text[at + index] !== word.charCodeAt(index)) return -1
    return at + word.length
  }

  number(at: number): number {
    const text = this.text
    if (text[at] === 0x2d) at++
    if (text[at] === 0x30) at++
    else if (isDigit(text[at]) && text[at] !== 0x30) while (isDigit(text[at])) at++
    else return -1
    if (text[at] === 0x2e) {
      at++
      if (!isDigit(text[at])) return -1
      while (isDigit(text[at])) at++
    }
    if (text[at] === 0x65 || text[at] === 0x45) {
      at++
      if (text[at] === 0x2b || text[at] === 0x2d) at++
      if (!isDigit(text[at])) return -1
      while (isDigit(text[at])) at++
    }
    return at
  }

  /** Records a top-level member if its name is wanted. */
  private note(
    nameStart: number,
    nameEnd: number,
    nameEscaped: boolean,
    valueStart: number,
    valueEnd: number,
    valueEscaped: boolean,
  ): void {
    // A wanted name written with escapes (\u0077ebhook_id) would not compare equal below; it may
    // repeat a field we found, and would then be the one JSON.parse keeps: let JSON.parse decide.
    if (nameEscaped) {
      this.starts.fill(NOT_FOUND)
      this.doubt = true
      return
    }
    const text = this.text
    const length = nameEnd - nameStart - 2
    // An indexed loop, not entries(): this runs for every field of every line scanned.
    for (let index = 0; index < this.names.length; index++) {
      const name = this.names[index]
      if (name?.length !== length) continue
      let at = 0
      while (at < length && name[at] === text[nameStart + 1 + at]) at++
      if (at !== length) continue
      this.starts[index] = valueStart
      this.ends[index] = valueEnd
      this.plainStrings[index] = text[valueStart] === QUOTE && !valueEscaped ? 1 : 0
    }
  }
}

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39
}

function isHex(byte: number | undefined): boolean {
  return byte !== undefined && (isDigit(byte) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46))
}
