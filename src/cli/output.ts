import {Chalk, type ChalkInstance} from 'chalk'

/**
 * Human output. Colour only on a terminal and never when NO_COLOR is set (no-color.org);
 * tables are plain text when piped. Under --json none of this runs.
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
  const columns = head.map((column): Column => (typeof column === 'string' ? {title: column} : column))
  const cells = rows.map((row) => columns.map((_, index) => oneLine(row[index])))
  const natural = columns.map((column, index) =>
    Math.max(displayWidth(column.title), ...cells.map((row) => displayWidth(row[index]!))),
  )
  const shown = columns.map((_, index) => index)
  const droppable = shown
    .filter((index) => columns[index]!.drop !== undefined)
    .sort((a, b) => columns[a]!.drop! - columns[b]!.drop!)
  // Values that may be cut, and as a last resort (nothing left to drop) every value, cut at the end.
  let cutAll = false
  const cut = (index: number) => columns[index]!.cut ?? (cutAll ? 'end' : undefined)
  const floor = (index: number) =>
    cut(index)
      ? Math.min(natural[index]!, Math.max(MIN_CUT_WIDTH, displayWidth(columns[index]!.title)))
      : natural[index]!
  const needed = () => shown.reduce((total, index) => total + floor(index), 0) + GAP.length * (shown.length - 1)
  const dropped: string[] = []
  while (needed() > width && droppable.length > 0) {
    const index = droppable.shift()!
    shown.splice(shown.indexOf(index), 1)
    dropped.push(columns[index]!.title)
  }
  cutAll = needed() > width
  const widths = fitWidths(shown, natural, floor, width - GAP.length * (shown.length - 1))

  const line = (values: string[]) =>
    shown
      .map((index, position) => {
        const value = fit(values[index]!, widths.get(index)!, cut(index) ?? 'end')
        const pad = ' '.repeat(widths.get(index)! - displayWidth(value))
        if (columns[index]!.align === 'right') return pad + value
        return position === shown.length - 1 ? value : value + pad
      })
      .join(GAP)
  const separator = shown.map((index) => (colorful ? '─' : '-').repeat(widths.get(index)!)).join(GAP)
  const lines = [
    paint.bold(line(columns.map((column) => column.title))),
    paint.dim(separator),
    ...cells.map((row) => line(row)),
  ]
  if (dropped.length > 0)
    lines.push(paint.dim(fit(`(${dropped.join(', ')} not shown: --wide shows every column)`, width, 'end')))
  // A terminal too narrow for even the shortest cut columns still gets lines no wider than it.
  return lines.map((text) => (displayWidth(text) > width ? fit(text, width, 'end') : text)).join('\n')
}

/**
 * Widths for the shown columns within `room`: every column its natural width if they fit, else
 * the columns that may be cut share what the others leave, the narrowest first served in full.
 */
function fitWidths(
  shown: number[],
  natural: number[],
  floor: (index: number) => number,
  room: number,
): Map<number, number> {
  const widths = new Map(shown.map((index) => [index, natural[index]!]))
  const cuttable = shown.filter((index) => floor(index) < natural[index]!).sort((a, b) => natural[a]! - natural[b]!)
  let left =
    room - shown.filter((index) => !cuttable.includes(index)).reduce((total, index) => total + natural[index]!, 0)
  cuttable.forEach((index, position) => {
    const share = Math.floor(left / (cuttable.length - position))
    const given = Math.max(floor(index), Math.min(natural[index]!, share))
    widths.set(index, given)
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
  for (const character of text.replace(ANSI, '')) width += characterWidth(character.codePointAt(0)!)
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
    const next = characterWidth(character.codePointAt(0)!)
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

/** Counts and rates, one format everywhere: thousands separators, decimals only where they tell something. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US', {maximumFractionDigits: Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2})
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
