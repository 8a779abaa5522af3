import {Text, useStderr, useStdout} from 'ink'
import {useEffect, useState} from 'react'

import {progressLine, type ProgressState} from '../progress.js'

/**
 * A live progress line: bar, percentage, count, rate and ETA, fitted to the terminal's width (one
 * line, never wrapped). Results the command prints meanwhile go above it (mount.ts `printsTo`).
 */
export function ProgressBar({state}: {state: ProgressState}) {
  const [snapshot, setSnapshot] = useState(state.snapshot())
  const {stdout} = useStdout()
  const {write} = useStderr()
  useEffect(() => {
    const update = () => setSnapshot(state.snapshot())
    state.on('change', update)
    state.on('print', write)
    // The ETA and rate move on while a slow step reports nothing.
    const tick = setInterval(update, 1000)
    return () => {
      clearInterval(tick)
      state.off('change', update)
      state.off('print', write)
    }
  }, [state, write])

  const line = progressLine(snapshot, {bar: 30, columns: stdout.columns || 80})
  return (
    <Text wrap="truncate">
      <Text bold>{line.label}</Text>
      {line.bar.width > 0 && (
        <Text>
          {' '}
          <Text color="green">{'█'.repeat(line.bar.filled)}</Text>
          <Text dimColor>{'░'.repeat(line.bar.width - line.bar.filled)}</Text>
        </Text>
      )}{' '}
      {line.stats}
    </Text>
  )
}
