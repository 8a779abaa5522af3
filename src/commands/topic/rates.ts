import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {barChart, sparkline} from '../../cli/chart.js'
import {onInterrupt} from '../../cli/interrupt.js'
import {type Column, fit, formatBytes, formatCount, paint, table, tableWidth} from '../../cli/output.js'
import {uiMode} from '../../cli/progress.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {rateHistory, type RateHistory, type RatesSample, watchRates} from '../../core/storage/rates.js'
import {parseDuration} from '../../core/shared/time.js'

type RatesOutput = RatesSample | {samples: RatesSample[]} | RateHistory

export default class TopicRates extends KafkaCommand<typeof TopicRates> {
  static override summary =
    "Records/s and bytes/s written per partition now, a group's read rates, or records per hour over the past"
  static override description =
    'Live: the high watermarks at the start and end of --interval give the records written (exact); ' +
    'bytes/s is the size (key + value + headers, uncompressed) of exactly those records, read back ' +
    `when the interval ends (--no-bytes skips that read). With --group, the group's committed offsets ` +
    'at both ends give what it read, and its lag. --watch repeats back to back until interrupted or ' +
    '--count samples.\n' +
    'History: --history 24h --bucket 1h counts the records each partition took per bucket, from offsets ' +
    'by time at every bucket edge; buckets align to UTC multiples of their width and the last one is the ' +
    'one running now.'
  static override examples = [
    '<%= config.bin %> topic rates delivery_log',
    '<%= config.bin %> topic rates delivery_log --interval 10s --watch --group replay-workers',
    '<%= config.bin %> topic rates delivery_log --history 24h --bucket 1h',
    '<%= config.bin %> topic rates delivery_log --history 5d --bucket 6h --json',
  ]
  static override args = {topic: Args.string({description: 'topic to measure', required: true})}
  static override flags = {
    ...tableFlags,
    interval: Flags.string({
      char: 'i',
      description: 'how long each live sample measures',
      default: '5s',
      exclusive: ['history'],
    }),
    watch: Flags.boolean({char: 'w', description: 'keep sampling, one sample per --interval', exclusive: ['history']}),
    count: Flags.integer({
      description: 'with --watch: stop after this many samples (needed with --json)',
      dependsOn: ['watch'],
    }),
    group: Flags.string({
      char: 'g',
      description: "also show this consumer group's read rates and lag",
      exclusive: ['history'],
    }),
    bytes: Flags.boolean({
      description: "measure bytes/s by reading the interval's records back",
      default: true,
      allowNo: true,
    }),
    history: Flags.string({description: 'count records per bucket over this past span instead (e.g. 24h, 5d)'}),
    bucket: Flags.string({description: 'with --history: bucket width', default: '1h'}),
  }

  async run(): Promise<RatesOutput> {
    const {flags} = this
    const topic = this.args.topic
    if (flags.history !== undefined) {
      const history = await rateHistory(this.settings, {
        topic,
        historyMs: parseDuration(flags.history, '--history'),
        bucketMs: parseDuration(flags.bucket, '--bucket'),
      })
      this.print(renderHistory(history))
      return history
    }

    const intervalMs = parseDuration(flags.interval, '--interval')
    if (flags.watch && flags.count === undefined && this.jsonEnabled())
      throw invalidArgument(
        '--watch under --json needs --count',
        'pass --count N to get one JSON document with N samples',
      )
    const samples: RatesSample[] = []
    // --watch on a terminal redraws its sample in place; logs and pipes keep every sample.
    const redraw = flags.watch && process.stdout.isTTY === true && !this.jsonEnabled()
    let drawnLines = 0
    const stop = new AbortController()
    const removeInterrupt = onInterrupt(() => stop.abort())
    try {
      // A note while the first interval runs, for a person watching; logs and pipes get only results.
      if (uiMode(this.jsonEnabled()) === 'tty')
        process.stderr.write(
          paint.dim(`measuring ${topic} over ${flags.interval}${flags.watch ? ' (Ctrl-C stops)' : ''}…\n`),
        )
      for await (const sample of watchRates(this.settings, {
        topic,
        group: flags.group,
        bytes: flags.bytes,
        intervalMs,
        count: flags.watch ? flags.count : 1,
        signal: stop.signal,
      })) {
        samples.push(sample)
        const drawn = renderSample(sample)
        if (redraw && drawnLines > 0) process.stdout.write(`\x1b[${drawnLines}F\x1b[0J`)
        this.print(drawn)
        drawnLines = drawn.split('\n').length
      }
    } finally {
      removeInterrupt()
    }
    // Without --watch there is one sample, or none when Ctrl-C came before the interval ended.
    const [sample] = samples
    return flags.watch || !sample ? {samples} : sample
  }
}

function renderSample(sample: RatesSample): string {
  const group = sample.group !== undefined
  const measuredBytes = sample.total.bytes !== null
  const count = (n: number | null) => (n === null ? null : formatCount(n))
  const number = (title: string, drop?: number): Column => ({title, align: 'right', drop})
  const head = [
    number('partition'),
    number('high', 1),
    number('records'),
    number('records/s'),
    ...(measuredBytes ? [number('bytes/s')] : []),
    ...(group ? [number('read', 2), number('read/s'), number('lag')] : []),
  ]
  const rows = sample.partitions.map((rate) => [
    rate.partition,
    rate.highEnd,
    formatCount(rate.records),
    formatCount(rate.recordsPerSecond),
    ...(measuredBytes ? [formatBytes(rate.bytesPerSecond ?? 0)] : []),
    ...(group
      ? [count(rate.group?.read ?? null), count(rate.group?.readPerSecond ?? null), count(rate.group?.lag ?? null)]
      : []),
  ])
  rows.push([
    paint.bold('total'),
    '',
    formatCount(sample.total.records),
    formatCount(sample.total.recordsPerSecond),
    ...(measuredBytes ? [formatBytes(sample.total.bytesPerSecond ?? 0)] : []),
    ...(group ? [count(sample.total.read), count(sample.total.readPerSecond), count(sample.total.lag)] : []),
  ])
  const ending = sample.to.slice(0, 19).replace('T', ' ')
  const title = `${sample.topic}${group ? ` · group ${sample.group}` : ''}: ${sample.seconds}s ending ${ending} UTC`
  // One terminal line each, so a redraw knows how many lines to go back.
  const note = measuredBytes ? '' : `\n${paint.dim(fit(`bytes/s ${sample.bytesSource}`, tableWidth(), 'end'))}`
  return `${paint.bold(fit(title, tableWidth(), 'end'))}\n${table(head, rows)}${note}`
}

function renderHistory(history: RateHistory): string {
  const label = (iso: string) => iso.slice(5, 16).replace('T', ' ')
  const chart = barChart(
    history.buckets.map((bucket) => ({
      label: label(bucket.start),
      value: bucket.records,
      note: bucket.partial ? paint.dim('(so far)') : undefined,
    })),
    40,
    formatCount,
  )
  const max = Math.max(0, ...history.buckets.flatMap((bucket) => bucket.byPartition))
  const perPartition = table(
    [
      {title: 'partition', align: 'right'},
      {title: `per ${formatSpan(history.bucketMs)}, ${label(history.from)} → now`, cut: 'start'},
      {title: 'records', align: 'right'},
    ],
    history.partitions.map((partition, position) => {
      const series = history.buckets.map((bucket) => bucket.byPartition[position] ?? 0)
      return [partition, sparkline(series, max), formatCount(series.reduce((total, value) => total + value, 0))]
    }),
  )
  const title =
    `${history.topic}: records per ${formatSpan(history.bucketMs)} (UTC), ` + `${formatCount(history.total)} in all`
  return `${paint.bold(fit(title, tableWidth(), 'end'))}\n${chart}\n\n${perPartition}`
}

function formatSpan(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`
  return `${ms}ms`
}
