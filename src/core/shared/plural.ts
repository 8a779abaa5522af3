/** The noun for a count: `plural(1, 'event')` is 'event', `plural(2, 'match', 'matches')` 'matches'. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return count === 1 ? singular : pluralForm
}
