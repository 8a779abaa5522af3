import {Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {formatCount, paint, table} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {
  jsonLines,
  rawLines,
  RECORD_FORMATS,
  recordsTable,
  type RecordView,
  recordView,
  StdoutWriter,
} from '../../cli/record-output.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {parseFieldFilter, searchLog, type SearchResult, type ValueFilter} from '../../core/kafka/search.js'
import {parseTime, TIME_FORMS} from '../../core/shared/time.js'
import {plural} from '../../core/shared/plural.js'

type SearchOutput = SearchResult & {records?: RecordView[]}

export default class LogSearch extends KafkaCommand<typeof LogSearch> {
  static override summary = "Find records by key and value in a time window; reads only the key's partition"
  static override description =
    'With --key only the partition the key lives in is read (murmur2 like `log partition-for`, or ' +
    '--partitioner crc32) and only records with exactly that key match; without --key every partition ' +
    `is read at once. Each partition's range is fixed by time before reading (offsets for --since and ` +
    '--until, capped at the high watermark seen at start), so a search always ends. Matches print as ' +
    '`log read` prints records (--format); the result counts the records scanned in each partition. ' +
    `Times: ${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> log search -t delivery_log --key 1187231934829481984 --since 1d ' +
      '--value-contains favorite_events',
    '<%= config.bin %> log search -t delivery_log --field event_id=9f3c0a12 --since 2h --max 1 --format table',
    '<%= config.bin %> log search -t delivery_log --value-regex \'"text":"[^"]*outage\' --since 6h --until 1h --json',
  ]
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to search', required: true}),
    key: Flags.string({char: 'k', description: "read only this key's partition and match only its records"}),
    partitioner: Flags.string({
      description: 'how --key was partitioned',
      options: [...PARTITIONERS],
      default: 'murmur2',
    }),
    'value-contains': Flags.string({
      description: 'match values containing this text (bytes, case-sensitive)',
      exclusive: ['value-regex', 'field'],
    }),
    'value-regex': Flags.string({
      description: 'match values (as UTF-8 text) this JavaScript regular expression finds',
      exclusive: ['value-contains', 'field'],
    }),
    field: Flags.string({
      description: 'match JSON values whose dotted field equals a value: path=value',
      exclusive: ['value-contains', 'value-regex'],
    }),
    since: Flags.string({description: 'search from the first record at or after this time'}),
    until: Flags.string({description: 'search up to the first record at or after this time (exclusive)'}),
    max: Flags.integer({char: 'm', description: 'stop after this many matches'}),
    format: Flags.string({description: 'how to print matches', options: [...RECORD_FORMATS], default: 'json'}),
  }

  async run(): Promise<SearchOutput> {
    const {flags} = this
    const now = Date.now()
    const filter: ValueFilter | undefined =
      flags['value-contains'] !== undefined
        ? {kind: 'contains', text: flags['value-contains']}
        : flags['value-regex'] !== undefined
          ? {kind: 'regex', source: flags['value-regex']}
          : flags.field === undefined
            ? undefined
            : parseFieldFilter(flags.field)
    const since = flags.since === undefined ? undefined : parseTime(flags.since, '--since', now)
    const until = flags.until === undefined ? undefined : parseTime(flags.until, '--until', now)

    const collect = this.jsonEnabled() || flags.format === 'table'
    const records: RecordView[] = []
    const out = new StdoutWriter()
    const stopOnClosedPipe = new AbortController()
    out.onClosed(() => stopOnClosedPipe.abort())
    const mode = uiMode(this.jsonEnabled())
    const progress = await showProgress(mode, new ProgressState(`searching ${flags.topic}`, 'records'))
    // Matches for the terminal the bar is drawn on go above the bar; piped ones straight to stdout.
    const print =
      mode === 'tty' && process.stdout.isTTY
        ? (text: string | Buffer) => progress.print(text)
        : (text: string | Buffer) => out.write(text)
    let result: SearchResult
    let matched = 0
    try {
      result = await searchLog(
        this.settings,
        {
          topic: flags.topic,
          key: flags.key,
          partitioner: flags.partitioner as Partitioner,
          filter,
          since,
          until,
          max: flags.max,
        },
        {
          signal: stopOnClosedPipe.signal,
          onProgress: (scanned, total) => {
            progress.state.total = total
            progress.state.update(scanned, `${formatCount(matched)} ${plural(matched, 'match', 'matches')}`)
          },
          onMatches: async (matches) => {
            matched += matches.length
            if (collect) for (const message of matches) records.push(recordView(message))
            else if (flags.format === 'raw') await print(rawLines(matches))
            else await print(jsonLines(matches))
          },
        },
      )
      // A search stopped by --max or a closed pipe did not scan the whole range: its bar says so.
      if (result.complete) progress.state.finish(result.scanned, `${formatCount(matched)} matches`)
    } finally {
      await progress.stop()
    }

    if (!this.jsonEnabled()) {
      if (flags.format === 'table') this.print(recordsTable(records))
      const read = result.partitions.filter((scan) => scan.read)
      const unread = result.partitions.length - read.length
      const summary = table(
        [
          {title: 'partition', align: 'right'},
          {title: 'range', cut: 'middle'},
          {title: 'scanned', align: 'right'},
          {title: 'matched', align: 'right'},
        ],
        read.map((scan) => [
          scan.partition,
          `${scan.start} .. ${scan.end}`,
          formatCount(scan.scanned),
          formatCount(scan.matched),
        ]),
        {stream: process.stderr},
      )
      const line =
        `${formatCount(result.matched)} ${plural(result.matched, 'match', 'matches')} in ` +
        `${formatCount(result.scanned)} ${plural(result.scanned, 'record')} ` +
        `scanned${result.complete ? '' : ' (stopped early)'}`
      // Matches own stdout (they may be piped on); the scan summary goes to stderr with the progress.
      const others =
        unread === 1 ? 'partition cannot hold the key and was' : `${unread} partitions cannot hold the key and were`
      process.stderr.write(
        `${summary}\n${paint.dim(line)}${unread ? paint.dim(`; the other ${others} not read`) : ''}\n`,
      )
    }
    return {...result, ...(this.jsonEnabled() ? {records} : {})}
  }
}
