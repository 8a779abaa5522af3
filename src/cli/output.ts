import {createRequire} from 'node:module'

import {Chalk, type ChalkInstance} from 'chalk'
import type TableConstructor from 'cli-table3'

// cli-table3 is loaded on the first table: commands that print none start faster.
const require = createRequire(import.meta.url)
let Table: typeof TableConstructor | undefined

/**
 * Human output. Colour only on a terminal and never when NO_COLOR is set (no-color.org);
 * tables are plain text when piped. Under --json none of this runs.
 */
const colorful = process.stdout.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb'
export const paint: ChalkInstance = new Chalk({level: colorful ? 1 : 0})

export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  Table ??= require('cli-table3') as typeof TableConstructor
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
