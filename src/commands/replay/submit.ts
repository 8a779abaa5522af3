import {Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {details, formatCount, paint} from '../../cli/output.js'
import {ProgressState, showProgress, uiMode} from '../../cli/progress.js'
import {BugError, UserError} from '../../core/shared/errors.js'
import {followJob, type JobStatus, offsetProgress} from '../../core/replay/job-status.js'
import {submitReplay} from '../../core/replay/submit-replay.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {isoTime, parseDuration, parseTime, TIME_FORMS} from '../../core/shared/time.js'
import type {ReplayJob} from '../../core/replay/store/jobs/index.js'

export default class ReplaySubmit extends ConnectedCommand<typeof ReplaySubmit> {
  static override summary = "Queue a replay of a webhook's events for a time range"
  static override description =
    `Validated as Twitter's Replay API does: --from before --to, --to not in the future, --from ` +
    `within the topic's retention and not before the oldest event the webhook's partition still ` +
    `holds (unless --allow-partial), a known and valid webhook, and no other active job for it. ` +
    `--from is inclusive, --to exclusive. Times: ${TIME_FORMS}. Prints the job id; a worker ` +
    `(\`replayctl replay worker\`) picks it up.`
  static override examples = [
    '<%= config.bin %> replay submit --webhook-id 1187231934829481984 --from 202611200000 --to 202611201200',
    '<%= config.bin %> replay submit --webhook-id 1187231934829481984 --from 6h --to now --wait',
    'JOB=$(<%= config.bin %> replay submit --webhook-id W --from 2d --to 1d --json | jq .id)',
    '<%= config.bin %> replay submit --webhook-id W --from 6h --to 1h --topic dc1.delivery_log ' +
      '--topic dc2.delivery_log   # cross-datacenter',
    '<%= config.bin %> replay submit --webhook-id W --from 6h --to 1h --late-grace 15m   # copies ' +
      'mirrored up to 15 minutes late',
    '<%= config.bin %> replay submit --webhook-id W --from 5d --to 4d --allow-partial   # ' +
      'retention already removed part of the range',
  ]
  static override flags = {
    ...tableFlags,
    'webhook-id': Flags.string({char: 'w', description: 'the webhook whose events to replay', required: true}),
    from: Flags.string({description: 'replay events at or after this time', required: true}),
    to: Flags.string({description: 'replay events before this time', required: true}),
    topic: Flags.string({
      char: 't',
      description:
        "the delivery log topic; repeat it to read several datacenters' copies of the log as one " +
        '(merged in timestamp order, byte-identical copies delivered once)',
      default: ['delivery_log'],
      multiple: true,
    }),
    'late-grace': Flags.string({
      description:
        "read on past --to for events appended late (a cross-datacenter copy, a producer's retry) " +
        'whose time is still before --to; 0s to stop at the first record at or after --to',
      default: '5m',
    }),
    'allow-partial': Flags.boolean({
      description:
        "accept a --from before the oldest event the webhook's partition still holds (retention " +
        'removed the rest); the job is marked partial',
    }),
    partitioner: Flags.string({
      description: "how the delivery log was partitioned (which partition holds the webhook's events)",
      options: [...PARTITIONERS],
      default: 'murmur2',
    }),
    retention: Flags.string({description: "how far back --from may reach (the topic's retention)", default: '5d'}),
    'max-attempts': Flags.integer({description: 'workers that may take the job over before it fails', default: 5}),
    wait: Flags.boolean({description: 'follow the job to its end; exit non-zero unless it completed'}),
  }

  async run(): Promise<ReplayJob | JobStatus> {
    const now = Date.now()
    const [topic, ...moreTopics] = this.flags.topic
    if (topic === undefined) throw new BugError('--topic has a default, yet no topic was given')
    const job = await submitReplay(this.settings, {
      webhookId: this.flags['webhook-id'],
      fromMs: parseTime(this.flags.from, '--from', now),
      toMs: parseTime(this.flags.to, '--to', now),
      topic,
      moreTopics,
      retentionMs: parseDuration(this.flags.retention, '--retention'),
      lateGraceMs: parseDuration(this.flags['late-grace'], '--late-grace'),
      allowPartial: this.flags['allow-partial'],
      partitioner: this.flags.partitioner as Partitioner,
      maxAttempts: this.flags['max-attempts'],
    })
    this.print(
      `${paint.green('queued replay job')} ${paint.bold(String(job.id))} for webhook ` +
        `${job.webhookId}: ${isoTime(job.fromMs)} .. ${isoTime(job.toMs)}`,
    )
    if (!this.flags.wait) return job

    const progress = await showProgress(
      uiMode(this.jsonEnabled()),
      new ProgressState(`replay job ${job.id}`, 'offsets'),
    )
    let final: JobStatus
    try {
      final = await followJob(this.settings, job.id, (status) => {
        const {range, done} = offsetProgress(status)
        progress.state.total = range
        progress.state.update(done ?? 0, `${status.state.toLowerCase()}, ${formatCount(status.delivered)} delivered`)
      })
      if (final.state === 'COMPLETED')
        progress.state.finish(offsetProgress(final).done ?? 0, `${formatCount(final.delivered)} delivered`)
    } finally {
      await progress.stop()
    }
    this.print(
      details([
        ['state', final.state === 'COMPLETED' ? paint.green(final.state) : paint.red(final.state)],
        ['delivered', final.delivered],
        ['duplicates dropped', final.duplicates],
        ['last error', final.lastError],
      ]),
    )
    if (final.state !== 'COMPLETED') {
      throw new UserError(
        'INCOMPLETE',
        `replay job ${final.id} ended ${final.state}${final.lastError ? `: ${final.lastError}` : ''}`,
        `see \`replayctl replay status ${final.id}\`; continue it with \`replayctl replay retry ${final.id}\``,
      )
    }
    return final
  }
}
