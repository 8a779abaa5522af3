import {Chalk, type ChalkInstance} from 'chalk'
import Table from 'cli-table3'

/**
 * Human output. Colour only on a terminal and never when NO_COLOR is set (no-color.org);
 * tables are plain text when piped. Under --json none of this runs.
 */
const colorful = process.stdout.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb'
export const paint: ChalkInstance = new Chalk({level: colorful ? 1 : 0})

export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const rendered = new Table({
    head: head.map((title) => paint.bold(title)),
    style: {head: [], border: [], compact: false},
    ...(colorful ? {} : {chars: PLAIN_BORDERS}),
  })
  for (const row of rows) rendered.push(row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))))
  return rendered.toString()
}

/** Key/value lines for a single object, aligned. */
export function details(pairs: [string, string | number | null | undefined][]): string {
  const width = Math.max(...pairs.map(([key]) => key.length))
  return pairs.map(([key, value]) => `${paint.dim(key.padEnd(width))}  ${value ?? '-'}`).join('\n')
}

const PLAIN_BORDERS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US')
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
