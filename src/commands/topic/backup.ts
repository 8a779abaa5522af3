import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatBytes, formatCount, paint, sentence, table} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {isoTime, parseTime, TIME_FORMS} from '../../core/shared/time.js'
import {backupTopic, type BackupResult, DEFAULT_CHUNK_BYTES} from '../../core/storage/backup.js'
import {MAX_CHUNK_SIZE_FLAG} from '../../core/storage/backup-format.js'
import {plural} from '../../core/shared/plural.js'

export default class TopicBackup extends KafkaCommand<typeof TopicBackup> {
  static override summary =
    'Back up one topic into a directory: every record with its key, value, headers, timestamp and ' +
    'partition, in log order'
  static override description =
    'Writes DIR/manifest.json and one gzip-compressed chunk file per partition (format: ' +
    `docs/backup-format.md). Each partition's offset range is fixed on the first run: from --since ` +
    '(the first record at or after it) or the first offset, to --until (exclusive) or the high ' +
    'watermark, as `log read` does. An interrupted backup continues where it stopped when run again ' +
    'with the same DIR; the manifest says complete only when it is. A compacted topic is backed up as ' +
    `its log holds it now. Times: ${TIME_FORMS}.`
  static override examples = [
    '<%= config.bin %> topic backup delivery_log --to /backups/delivery_log-2026-11-30',
    '<%= config.bin %> topic backup delivery_log --to /backups/dl-yesterday --since 202611290000 --until 202611300000',
    '<%= config.bin %> topic backup webhooks_state --to /backups/webhooks_state --json',
  ]
  static override args = {topic: Args.string({description: 'topic to back up', required: true})}
  static override flags = {
    ...tableFlags,
    to: Flags.string({
      description: 'directory to write (created; an interrupted backup there is continued)',
      required: true,
    }),
    since: Flags.string({description: 'start at the first record at or after this time'}),
    until: Flags.string({description: 'stop before the first record at or after this time'}),
    configs: Flags.boolean({
      description: "record the topic's configs (read with Apache Kafka's ConfigCommand; needs Java)",
      default: true,
      allowNo: true,
    }),
    'chunk-size': Flags.integer({
      description: 'uncompressed bytes per chunk: at most this much is read again after an interruption',
      default: DEFAULT_CHUNK_BYTES,
      min: 1024,
      max: MAX_CHUNK_SIZE_FLAG,
    }),
  }

  async run(): Promise<BackupResult> {
    const {flags} = this
    const now = Date.now()
    const since = flags.since === undefined ? undefined : parseTime(flags.since, '--since', now)
    const until = flags.until === undefined ? undefined : parseTime(flags.until, '--until', now)
    if (since !== undefined && until !== undefined && until <= since)
      throw invalidArgument('--until must be after --since', 'both are times; --until is exclusive')

    const progress = await showProgress(
      uiMode(this.jsonEnabled()),
      new ProgressState(`backing up ${this.args.topic}`, 'records'),
    )
    // The total is the offsets in the ranges: an upper bound, reached unless compaction removed records.
    let result: BackupResult
    try {
      result = await backupTopic(this.settings, {
        topic: this.args.topic,
        dir: flags.to,
        since,
        until,
        configs: flags.configs,
        chunkBytes: flags['chunk-size'],
        onProgress: (p) => {
          progress.state.total = p.offsets
          progress.state.update(p.records)
        },
      })
      progress.state.finish(result.records)
    } finally {
      await progress.stop()
    }
    const verb = result.alreadyComplete
      ? 'already complete: '
      : result.resumed
        ? 'finished the interrupted backup of '
        : 'backed up '
    this.print(paint.green(sentence(verb, {name: result.topic}, ' into ', {name: result.dir})))
    this.print(
      details([
        ['records', formatCount(result.records)],
        ['read this run', formatCount(result.recordsThisRun)],
        [
          'files',
          `${result.partitions.length} ${plural(result.partitions.length, 'partition')}, ${formatBytes(result.bytes)}`,
        ],
        [
          'bounds',
          `${result.since === null ? 'start' : isoTime(result.since)} .. ` +
            `${result.until === null ? 'end' : isoTime(result.until)}`,
        ],
        ['seconds', result.seconds.toFixed(2)],
        ['records/s', formatCount(result.recordsPerSecond)],
        ...(result.configsUnavailable === undefined
          ? []
          : [['configs', paint.yellow(`not recorded: ${result.configsUnavailable}`)] as [string, string]]),
      ]),
    )
    this.print(
      table(
        ['partition', 'from offset', 'to offset', 'records', 'bytes'],
        result.partitions.map((partition) => [
          partition.partition,
          partition.startOffset,
          partition.endOffset,
          formatCount(partition.records),
          formatBytes(partition.fileBytes),
        ]),
      ),
    )
    return result
  }
}
