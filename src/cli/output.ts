import {Chalk, type ChalkInstance} from 'chalk'

/**
 * Human output. Colour only on a terminal and never when NO_COLOR is set (no-color.org);
 * tables are plain text when piped. Under --json none of this runs.
 *
 * NO_COLOR, TERM and COLUMNS are read here, not in settings (src/core/shared/settings.ts, which owns
 * every other variable): they describe the terminal output goes to, are set by the terminal or the
 * user's shell for every program alike, and change how output is drawn, never what replayctl does.
 */
const colorful = process.stdout.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb'
export const paint: ChalkInstance = new Chalk({level: colorful ? 1 : 0})

/** A table column; a bare title is a column that is never dropped and cut only when nothing else fits. */
export interface Column {
  title: string
  /**
   * When the table is wider than the terminal, droppable columns go lowest first; columns
   * without one stay. Give the least useful columns the lowest numbers.
   */
  drop?: number
  /**
   * Where a value too long for its column is cut: ids and URLs keep both ends ('middle'), bodies
   * and errors their start ('end'), series over time their newest, rightmost, part ('start').
   */
  cut?: Cut
  /** Numbers line up on the right. */
  align?: 'right'
}

export type Cell = string | number | null | undefined
type Cut = 'start' | 'middle' | 'end'

const GAP = '  '
/** A column that is cut keeps at least this many characters (or its title's), before columns are dropped. */
const MIN_CUT_WIDTH = 12

let unlimited = false

/** --wide: every column and every value in full, however wide the terminal. */
export function showFullTables(): void {
  unlimited = true
}

/**
 * How wide a table may be: COLUMNS when set (the conventional override, honoured for pipes too),
 * else the terminal's width; none when writing to a pipe or file, so scripts get full values.
 */
export function tableWidth(stream: NodeJS.WriteStream = process.stdout): number {
  if (unlimited) return Number.POSITIVE_INFINITY
  const override = Number(process.env.COLUMNS)
  if (Number.isInteger(override) && override > 0) return override
  return stream.isTTY && stream.columns > 0 ? stream.columns : Number.POSITIVE_INFINITY
}

/**
 * The one table renderer: a header line, a separator and one line per row, columns sized to their
 * content and the whole fitted to `width` (tableWidth() by default) by cutting long values with
 * `…`, then dropping the least useful columns; a note under the table says what was dropped.
 */
export function table(
  head: (string | Column)[],
  rows: Cell[][],
  options: {width?: number; stream?: NodeJS.WriteStream} = {},
): string {
  const width = options.width ?? tableWidth(options.stream)
  const all = head.map((entry, index): LaidColumn => {
    const column = typeof entry === 'string' ? {title: entry} : entry
    const values = rows.map((row) => oneLine(row[index]))
    return {column, values, natural: Math.max(displayWidth(column.title), ...values.map(displayWidth))}
  })
  let shown = all
  const droppable = all
    .filter(({column}) => column.drop !== undefined)
    .sort((a, b) => (a.column.drop ?? 0) - (b.column.drop ?? 0))
  // Values that may be cut, and as a last resort (nothing left to drop) every value, cut at the end.
  let cutAll = false
  const cut = ({column}: LaidColumn) => column.cut ?? (cutAll ? 'end' : undefined)
  const floor = (laid: LaidColumn) =>
    cut(laid) ? Math.min(laid.natural, Math.max(MIN_CUT_WIDTH, displayWidth(laid.column.title))) : laid.natural
  const needed = () => shown.reduce((total, laid) => total + floor(laid), 0) + GAP.length * (shown.length - 1)
  const dropped: string[] = []
  while (needed() > width) {
    const next = droppable.shift()
    if (next === undefined) break
    shown = shown.filter((laid) => laid !== next)
    dropped.push(next.column.title)
  }
  cutAll = needed() > width
  const widths = fitWidths(shown, floor, width - GAP.length * (shown.length - 1))
  const widthOf = (laid: LaidColumn) => widths.get(laid) ?? laid.natural

  const line = (text: (laid: LaidColumn) => string) =>
    shown
      .map((laid, position) => {
        const value = fit(text(laid), widthOf(laid), cut(laid) ?? 'end')
        const pad = ' '.repeat(widthOf(laid) - displayWidth(value))
        if (laid.column.align === 'right') return pad + value
        return position === shown.length - 1 ? value : value + pad
      })
      .join(GAP)
  const separator = shown.map((laid) => (colorful ? '─' : '-').repeat(widthOf(laid))).join(GAP)
  const lines = [
    paint.bold(line((laid) => laid.column.title)),
    paint.dim(separator),
    ...rows.map((_, row) => line((laid) => laid.values[row] ?? '')),
  ]
  if (dropped.length > 0)
    lines.push(paint.dim(fit(`(${dropped.join(', ')} not shown: --wide shows every column)`, width, 'end')))
  // A terminal too narrow for even the shortest cut columns still gets lines no wider than it.
  return lines.map((text) => (displayWidth(text) > width ? fit(text, width, 'end') : text)).join('\n')
}

/** A column with its values as they are shown (one line each) and the width they take in full. */
interface LaidColumn {
  column: Column
  values: string[]
  natural: number
}

/**
 * Widths for the shown columns within `room`: every column its natural width if they fit, else
 * the columns that may be cut share what the others leave, the narrowest first served in full.
 */
function fitWidths(shown: LaidColumn[], floor: (laid: LaidColumn) => number, room: number): Map<LaidColumn, number> {
  const widths = new Map(shown.map((laid) => [laid, laid.natural]))
  const cuttable = shown.filter((laid) => floor(laid) < laid.natural).sort((a, b) => a.natural - b.natural)
  let left = room - shown.filter((laid) => !cuttable.includes(laid)).reduce((total, laid) => total + laid.natural, 0)
  cuttable.forEach((laid, position) => {
    const share = Math.floor(left / (cuttable.length - position))
    const given = Math.max(floor(laid), Math.min(laid.natural, share))
    widths.set(laid, given)
    left -= given
  })
  return widths
}

/** A cell on one line: a table row is one line of text. */
function oneLine(cell: Cell): string {
  if (cell === null || cell === undefined) return '-'
  return String(cell).replace(/\r?\n/g, '⏎').replaceAll('\t', ' ')
}

const ANSI = /\u001b\[[0-9;]*m/g

/** Columns a string takes on a terminal: colour codes take none, wide (East Asian, emoji) characters two. */
export function displayWidth(text: string): number {
  let width = 0
  for (const character of text.replace(ANSI, '')) width += characterWidth(character.codePointAt(0) ?? 0)
  return width
}

function characterWidth(code: number): number {
  if (code < 0x20 || (code >= 0x7f && code < 0xa0)) return 0
  // Combining marks, zero-width spaces and joiners, variation selectors.
  if ((code >= 0x300 && code <= 0x36f) || (code >= 0x200b && code <= 0x200f) || (code >= 0xfe00 && code <= 0xfe0f))
    return 0
  if (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0x303e) ||
    (code >= 0x3041 && code <= 0x33ff) ||
    (code >= 0x3400 && code <= 0x4dbf) ||
    (code >= 0x4e00 && code <= 0x9fff) ||
    (code >= 0xa000 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1f64f) ||
    (code >= 0x1f900 && code <= 0x1f9ff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  )
    return 2
  return 1
}

/** `text` cut to `width` columns, `…` marking the cut; a cut value loses its colour. */
export function fit(text: string, width: number, cut: Cut): string {
  if (displayWidth(text) <= width) return text
  const characters = [...text.replace(ANSI, '')]
  if (width <= 1) return '…'.slice(0, width)
  const last = (count: number) => [...take([...characters].reverse(), count)].reverse().join('')
  if (cut === 'end') return `${take(characters, width - 1)}…`
  if (cut === 'start') return `…${last(width - 1)}`
  const tail = Math.floor((width - 1) / 2)
  return `${take(characters, width - 1 - tail)}…${last(tail)}`
}

function take(characters: string[], width: number): string {
  let taken = ''
  let used = 0
  for (const character of characters) {
    const next = characterWidth(character.codePointAt(0) ?? 0)
    if (used + next > width) break
    taken += character
    used += next
  }
  return taken
}

/**
 * One line of a details block: a label, its value, and where the value is cut when the line is
 * wider than the terminal (as a table column's `cut`; the end by default). 'never' is for a value
 * that is useless cut and cannot be asked for again, such as a secret shown once: it may wrap.
 */
export type Detail = [label: string, value: Cell, cut?: Cut | 'never']

/**
 * Key/value lines for a single object, labels aligned, each line fitted to `width` (tableWidth() by
 * default) as table rows are: a value too long is cut with `…`, and --wide or a pipe shows it whole.
 */
export function details(pairs: Detail[], options: {width?: number; stream?: NodeJS.WriteStream} = {}): string {
  const width = options.width ?? tableWidth(options.stream)
  const labelWidth = Math.max(0, ...pairs.map(([label]) => displayWidth(label)))
  const room = width - labelWidth - GAP.length
  return pairs
    .map(([label, value, cut = 'end']) => {
      const padded = paint.dim(label + ' '.repeat(labelWidth - displayWidth(label))) + GAP
      if (cut === 'never') return padded + oneLine(value)
      const line = padded + fit(oneLine(value), room, cut)
      // A terminal narrower than the labels still gets lines no wider than it.
      return displayWidth(line) > width ? fit(line, width, 'end') : line
    })
    .join('\n')
}

/** A name (topic, group, directory) in a sentence(): the part cut, in the middle, when the line is too wide. */
export interface Name {
  name: string
}

/**
 * A one-line summary that names things, fitted to the width as table rows are: its names are cut
 * in the middle, the shortest kept whole first, and its words kept. --wide and pipes get it whole.
 */
export function sentence(...parts: (string | Name)[]): string {
  const width = tableWidth()
  const names = parts.filter((part): part is Name => typeof part !== 'string')
  let left = width - parts.reduce((total, part) => total + (typeof part === 'string' ? displayWidth(part) : 0), 0)
  const given = new Map<Name, number>()
  const narrowestFirst = [...names].sort((a, b) => displayWidth(a.name) - displayWidth(b.name))
  narrowestFirst.forEach((name, position) => {
    const share = Math.max(MIN_CUT_WIDTH, Math.floor(left / (narrowestFirst.length - position)))
    const shown = Math.min(displayWidth(name.name), share)
    given.set(name, shown)
    left -= shown
  })
  const text = parts
    .map((part) => (typeof part === 'string' ? part : fit(part.name, given.get(part) ?? 0, 'middle')))
    .join('')
  // Words alone wider than the terminal still give a line no wider than it.
  return displayWidth(text) > width ? fit(text, width, 'end') : text
}

/**
 * Prose (warnings, notes) wrapped at spaces to the width, each line after the first indented, so
 * nothing of it is cut; --wide and pipes get it on one line.
 */
export function wrap(text: string, width = tableWidth()): string {
  const lines: string[] = []
  let current = ''
  for (const word of text.split(' ')) {
    const candidate = current === '' ? word : `${current} ${word}`
    if (current !== '' && displayWidth(candidate) > width) {
      lines.push(current)
      current = `  ${word}`
    } else current = candidate
  }
  lines.push(current)
  // A single word wider than the terminal is cut rather than left to overflow it.
  return lines.map((line) => (displayWidth(line) > width ? fit(line, width, 'end') : line)).join('\n')
}

/**
 * Counts and rates, one format everywhere: thousands separators, decimals only where they tell
 * something. Spelled out rather than toLocaleString: a process's first toLocaleString sets up ICU's
 * number formatting, about 20 ms, and `log read` or `log seek` print a count once at their end.
 */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const magnitude = Math.abs(n)
  const [whole = '0', fraction = ''] = magnitude.toFixed(magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2).split('.')
  const decimals = fraction.replace(/0+$/, '')
  const sign = n < 0 && (whole !== '0' || decimals !== '') ? '-' : ''
  return `${sign}${whole.replace(/\B(?=(\d{3})+$)/g, ',')}${decimals === '' ? '' : `.${decimals}`}`
}

/** Durations, one format everywhere: the two largest units, "350ms", "42s", "5m 3s", "4h 26m", "2d 2h". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const seconds = Math.floor(ms / 1000)
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`
  const hours = Math.floor(minutes / 60)
  if (hours < 24) return `${hours}h ${minutes % 60}m`
  return `${Math.floor(hours / 24)}d ${hours % 24}h`
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}
