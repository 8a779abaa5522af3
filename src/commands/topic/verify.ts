import {Args, Flags} from '@oclif/core'

import {KafkaCommand, tableFlags} from '../../cli/base-command.js'
import {formatCount, paint, sentence, table} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {mismatchError, verifyBackup, type VerifyResult} from '../../core/storage/backup-verify.js'
import {plural} from '../../core/shared/plural.js'

export default class TopicVerify extends KafkaCommand<typeof TopicVerify> {
  static override summary = "Check a backup's files, and with --topic that the topic holds exactly the backup's records"
  static override description =
    'The files are checked against the manifest (chunk checksums, every chunk inflated and decoded, ' +
    'sizes, record counts, the sha256 of the files and of the records); a file named outside the ' +
    'format, a symbolic link or a chunk inflating past its header is refused. With --topic the whole ' +
    "topic is read: with the backup's partition count, each partition's record count and records " +
    "sha256 must equal the manifest's; with another count (a rehash restore), each key's records must " +
    'be the same, in the same order. Exits 6 (BACKUP_MISMATCH) when they differ, 2 (BACKUP_CORRUPT) ' +
    'when a file is damaged.'
  static override examples = [
    '<%= config.bin %> topic verify /backups/delivery_log-2026-11-30',
    '<%= config.bin %> topic verify /backups/delivery_log-2026-11-30 --topic delivery_log_restored',
  ]
  static override args = {dir: Args.string({description: 'backup directory', required: true})}
  static override flags = {
    ...tableFlags,
    topic: Flags.string({char: 't', description: 'topic to compare with the backup (a restore target)'}),
  }

  async run(): Promise<VerifyResult> {
    const progress = await showProgress(
      uiMode(this.jsonEnabled()),
      new ProgressState(`checking ${this.args.dir}`, 'records'),
    )
    const reading = `reading ${this.flags.topic}`
    let result: VerifyResult
    try {
      result = await verifyBackup(this.settings, {
        dir: this.args.dir,
        topic: this.flags.topic,
        onProgress: (p) => {
          if (p.phase === 'reading' && progress.state.label !== reading)
            progress.state.phase(reading, 'records', p.total)
          progress.state.total = p.total
          progress.state.update(p.records)
        },
      })
      progress.state.finish(
        result.topic === null
          ? result.records
          : (result.partitions?.reduce((sum, partition) => sum + partition.actualRecords, 0) ??
              result.keys?.actualRecords ??
              0),
      )
    } finally {
      await progress.stop()
    }
    if (result.partitions) {
      this.print(
        table(
          ['partition', 'records', 'expected', 'sha256', 'match'],
          result.partitions.map((partition) => [
            partition.partition,
            formatCount(partition.actualRecords),
            formatCount(partition.expectedRecords),
            partition.actualSha256.slice(0, 16),
            partition.match ? paint.green('yes') : paint.red('no'),
          ]),
        ),
      )
    }
    if (!result.match) throw mismatchError(result)
    const records = `${formatCount(result.records)} ${plural(result.records, 'record')}`
    this.print(
      paint.green(
        result.topic === null
          ? sentence(
              'the backup of ',
              {name: result.sourceTopic},
              ' in ',
              {name: result.dir},
              ` is intact: ${records} in ${result.files} ${plural(result.files, 'file')}`,
            )
          : sentence(
              'topic ',
              {name: result.topic},
              ' matches the backup of ',
              {name: result.sourceTopic},
              `: ${records}` +
                (result.keys
                  ? `, ${formatCount(result.keys.keys)} ${plural(result.keys.keys, 'key')} each in order`
                  : ''),
            ),
      ),
    )
    return result
  }
}
