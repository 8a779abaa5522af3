import {Box, Text} from 'ink'
import {useEffect, useState} from 'react'

import type {WorkerModel, WorkerSnapshot} from '../worker-model.js'
import {formatCount} from '../output.js'

/** `replay worker` on a terminal: running jobs with their progress, and the last finished ones. */
export function WorkerDashboard({model}: {model: WorkerModel}) {
  const [snapshot, setSnapshot] = useState<WorkerSnapshot>(model.snapshot())
  useEffect(() => {
    const update = () => setSnapshot(model.snapshot())
    model.on('change', update)
    return () => {
      model.off('change', update)
    }
  }, [model])

  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>replayctl worker</Text> {snapshot.owner} ·{' '}
        <Text color={snapshot.stopping ? 'yellow' : 'green'}>
          {snapshot.stopping ? 'stopping: handing jobs back' : snapshot.running.length ? 'working' : 'idle, polling'}
        </Text>{' '}
        · finished {snapshot.finishedCount}
      </Text>
      {snapshot.running.map((job) => {
        const range = job.endOffset !== null && job.startOffset !== null ? job.endOffset - job.startOffset : 0
        const done =
          job.checkpointOffset !== null && job.startOffset !== null ? job.checkpointOffset - job.startOffset : 0
        const fraction = range > 0 ? Math.min(1, done / range) : job.phase === 'finishing' ? 1 : 0
        const filled = Math.round(fraction * 24)
        return (
          <Text key={job.jobId}>
            job {String(job.jobId).padEnd(6)} {job.webhookId.padEnd(20)} {job.phase.padEnd(10)}{' '}
            <Text color="cyan">{'█'.repeat(filled)}</Text>
            <Text dimColor>{'░'.repeat(24 - filled)}</Text> {(fraction * 100).toFixed(0).padStart(3)}% delivered{' '}
            {formatCount(job.delivered)} dup {job.duplicates} {formatCount(Math.round(job.rate))}
            /s in flight {job.inFlight}
          </Text>
        )
      })}
      {snapshot.database && (
        <Text color="red">
          database unavailable ({snapshot.database.consecutive} in a row): {snapshot.database.error}
          {snapshot.database.retryAt === null
            ? ' — giving up'
            : ` — retrying in ${Math.max(0, Math.ceil((snapshot.database.retryAt - Date.now()) / 1000))} s`}
        </Text>
      )}
      {snapshot.recent.map((line) => (
        <Text key={line.key} color={line.tone === 'good' ? 'green' : line.tone === 'warn' ? 'yellow' : 'red'}>
          {line.text}
        </Text>
      ))}
    </Box>
  )
}
