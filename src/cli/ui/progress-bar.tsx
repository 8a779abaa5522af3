import {Box, Text} from 'ink'
import {useEffect, useState} from 'react'

import type {ProgressState} from '../progress.js'

/** A live progress line: a bar when the total is known, counts and rate either way. */
export function ProgressBar({state}: {state: ProgressState}) {
  const [snapshot, setSnapshot] = useState(state.snapshot())
  useEffect(() => {
    const update = () => setSnapshot(state.snapshot())
    state.on('change', update)
    return () => {
      state.off('change', update)
    }
  }, [state])

  const width = 30
  const fraction = snapshot.total ? Math.min(1, snapshot.done / snapshot.total) : null
  const filled = fraction === null ? 0 : Math.round(fraction * width)
  return (
    <Box gap={1}>
      <Text bold>{snapshot.label}</Text>
      {fraction !== null && <Text color="green">{'█'.repeat(filled)}<Text dimColor>{'░'.repeat(width - filled)}</Text></Text>}
      {fraction !== null && <Text>{(fraction * 100).toFixed(0).padStart(3)}%</Text>}
      <Text>{snapshot.done.toLocaleString('en-US')}{snapshot.total ? ` / ${snapshot.total.toLocaleString('en-US')}` : ''} {snapshot.unit}</Text>
      <Text dimColor>{Math.round(snapshot.rate).toLocaleString('en-US')} {snapshot.unit}/s</Text>
      {snapshot.detail && <Text dimColor>{snapshot.detail}</Text>}
    </Box>
  )
}
