import {Flags} from '@oclif/core'

import {invalidArgument} from '../core/shared/errors.js'
import {parseTime} from '../core/shared/time.js'
import type {ResetTarget} from '../core/storage/groups.js'

/** Where `group reset-offsets` and `group reset-app` move offsets to: exactly one of these flags. */
export const resetTargetFlags = {
  'to-time': Flags.string({description: 'the first offset at or after this time'}),
  'to-offset': Flags.integer({description: 'this offset on every partition (clamped to the log)', min: 0}),
  'to-earliest': Flags.boolean({description: 'the first offset still in the log'}),
  'to-latest': Flags.boolean({description: 'the log end (skip everything not yet read)'}),
}

export function resetTarget(flags: {
  'to-time'?: string
  'to-offset'?: number
  'to-earliest'?: boolean
  'to-latest'?: boolean
}): ResetTarget {
  const given: ResetTarget[] = []
  if (flags['to-time'] !== undefined) given.push({kind: 'time', time: parseTime(flags['to-time'], '--to-time')})
  if (flags['to-offset'] !== undefined) given.push({kind: 'offset', offset: flags['to-offset']})
  if (flags['to-earliest']) given.push({kind: 'earliest'})
  if (flags['to-latest']) given.push({kind: 'latest'})
  const [target] = given
  if (target === undefined || given.length > 1)
    throw invalidArgument('pass exactly one of --to-time, --to-offset, --to-earliest, --to-latest')
  return target
}
