import {Box, Text} from 'ink'
import {useEffect, useState} from 'react'

import type {JobStatus} from '../../core/replay/job-status.js'
import {formatCount} from '../output.js'
import type {EventEmitter} from 'node:events'

/** `replay status --watch` on a terminal: one job, redrawn on every poll. */
export function JobView({feed, initial}: {feed: EventEmitter; initial: JobStatus}) {
  const [job, setJob] = useState(initial)
  const [history, setHistory] = useState<string[]>([`${new Date().toISOString().slice(11, 19)} ${initial.state}`])
  useEffect(() => {
    const update = (next: JobStatus) => {
      setJob((previous) => {
        if (previous.state !== next.state)
          setHistory((lines) => [...lines.slice(-4), `${new Date().toISOString().slice(11, 19)} ${next.state}`])
        return next
      })
    }
    feed.on('status', update)
    return () => {
      feed.off('status', update)
    }
  }, [feed])

  const width = 40
  const filled = Math.round(((job.progressPercent ?? 0) / 100) * width)
  const color =
    job.state === 'COMPLETED' ? 'green' : job.state === 'FAILED' || job.state === 'CANCELLED' ? 'red' : 'cyan'
  const [delivered, duplicates, scanned] = [job.delivered, job.duplicates, job.scanned].map(formatCount)
  const rate = job.eventsPerSecond === null ? '-' : formatCount(Math.round(job.eventsPerSecond))
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>replay job {job.id}</Text> webhook {job.webhookId} <Text color={color}>{job.state}</Text>
        {' attempt '}
        {job.attempt}/{job.maxAttempts}
      </Text>
      <Text>
        <Text color={color}>{'█'.repeat(filled)}</Text>
        <Text dimColor>{'░'.repeat(width - filled)}</Text>{' '}
        {job.progressPercent === null ? '  -' : `${job.progressPercent.toFixed(1)}%`}
        {job.etaSeconds !== null && <Text dimColor> eta {Math.ceil(job.etaSeconds)}s</Text>}
      </Text>
      <Text>
        delivered <Text bold>{delivered}</Text> · duplicates {duplicates} · scanned {scanned} · {rate} events/s
      </Text>
      <Text dimColor>
        partition {job.partition ?? '-'} · offsets {job.startOffset ?? '-'} → {job.checkpointOffset ?? '-'} →{' '}
        {job.endOffset ?? '-'} · owner {job.owner ?? '-'}
        {job.heartbeatAgeSeconds !== null ? ` · heartbeat ${job.heartbeatAgeSeconds.toFixed(1)}s ago` : ''}
      </Text>
      {job.lastError && <Text color="red">last error: {job.lastError}</Text>}
      {history.map((line) => (
        <Text key={line} dimColor>
          {line}
        </Text>
      ))}
    </Box>
  )
}
