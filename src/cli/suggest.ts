/**
 * The closest of some names to what was typed, for "did you mean" on unknown commands and flags.
 *
 * Distance is optimal string alignment (Damerau-Levenshtein without editing a substring twice):
 * a swapped pair of letters, the commonest typo (`replya`, `sumbit`), costs one edit. A name is
 * suggested only within a few edits for its length, so a word that is merely short (`x`, `db`)
 * is not "corrected" into an unrelated one; ties go to the name listed first.
 */
export function closest(typed: string, names: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const name of names) {
    const distance = nearDistance(typed, name)
    if (distance !== undefined && distance < bestDistance) {
      best = name
      bestDistance = distance
    }
  }
  return best
}

/**
 * The edit distance from `typed` to `name` when `name` is worth suggesting (close, and not what was typed); else
 * undefined.
 */
export function nearDistance(typed: string, name: string): number | undefined {
  const allowed = typed.length <= 4 ? 1 : typed.length <= 8 ? 2 : 3
  const distance = editDistance(typed, name)
  return distance > 0 && distance <= allowed && distance < name.length ? distance : undefined
}

export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic-programming table: the transposition looks two rows back.
  let before = new Array<number>(b.length + 1).fill(0)
  let previous = Array.from({length: b.length + 1}, (_, j) => j)
  let current = new Array<number>(b.length + 1).fill(0)
  for (let i = 1; i <= a.length; i++) {
    current[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let distance = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        distance = Math.min(distance, (before[j - 2] ?? 0) + 1)
      current[j] = distance
    }
    ;[before, previous, current] = [previous, current, before]
  }
  return previous[b.length] ?? 0
}
