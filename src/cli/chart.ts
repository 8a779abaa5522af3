/**
 * Small charts for a terminal, in Unicode block characters: a sparkline per series and horizontal
 * bars with eighth-block precision. Plain text, so they survive pipes and logs.
 */
const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉']

/** One character per value, scaled to `max` (default: the series' own maximum); zero is '·'. */
export function sparkline(values: number[], max = Math.max(0, ...values)): string {
  return values
    .map((value) => {
      if (value <= 0 || max <= 0) return '·'
      return SPARKS[Math.min(SPARKS.length - 1, Math.floor((value / max) * (SPARKS.length - 1) + 0.5))]
    })
    .join('')
}

/** A bar `width` characters long at `max`; any value above zero shows at least a sliver. */
export function bar(value: number, max: number, width: number): string {
  if (value <= 0 || max <= 0) return ''
  const eighths = Math.max(1, Math.round((value / max) * width * 8))
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8]
}

/** Rows of `label │ bar value`, the bars scaled to the largest value. */
export function barChart(
  rows: {label: string; value: number; note?: string}[],
  width = 40,
  format: (value: number) => string = String,
): string {
  const max = Math.max(0, ...rows.map((row) => row.value))
  const labelWidth = Math.max(0, ...rows.map((row) => row.label.length))
  return rows
    .map((row) => {
      const drawn = bar(row.value, max, width)
      const note = row.note ? ` ${row.note}` : ''
      return `${row.label.padEnd(labelWidth)} │${drawn.padEnd(width)} ${format(row.value)}${note}`
    })
    .join('\n')
}
