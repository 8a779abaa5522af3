import {Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {formatWorkerSummary, showWorker} from '../../cli/worker-view.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {serveMetrics} from '../../core/replay/metrics.js'
import {PARTITIONERS, type Partitioner} from '../../core/kafka/partitioner.js'
import {parseDuration} from '../../core/shared/time.js'
import {DEFAULT_MAX_AHEAD} from '../../core/replay/run/deliver.js'
import {ReplayWorker, type WorkerSummary} from '../../core/replay/worker.js'

export default class ReplayWorkerCommand extends ConnectedCommand<typeof ReplayWorkerCommand> {
  static override summary = 'Run replay jobs from the queue until stopped (or, with --once, until none is left)'
  static override description =
    "Claims jobs through MySQL (any number of workers on any machines), reads each webhook's partition from the " +
    'offset found by time, drops duplicates and delivers every event to the webhook, saving a checkpoint as it goes. ' +
    'SIGTERM or Ctrl-C stops claiming, checkpoints and hands running jobs back to OPEN (in-flight requests are cut ' +
    'after --grace; a second signal cuts them at once). A job whose worker stops heartbeating for --stale-after is ' +
    'taken over by another worker. Logs JSON lines on stderr when not on a terminal (under --json only warnings and ' +
    'errors); a live dashboard on one. When MySQL cannot be reached it backs off (doubling from --poll-interval up ' +
    'to 30 s) and logs every failure; with --once it exits 5 (DATABASE_UNAVAILABLE) after 5 failures in a row. A job ' +
    'run that ends in a bug in replayctl is logged with its stack and its job goes back to the queue from its ' +
    'checkpoint; the worker carries on, and with --once exits 1 at the end.'
  static override examples = [
    '<%= config.bin %> replay worker',
    '<%= config.bin %> replay worker --concurrency 8 --max-in-flight 16 --rate-limit 2500 --metrics-port 9464',
    '<%= config.bin %> replay worker --once --json   # from cron',
    '<%= config.bin %> replay worker --max-in-flight 1   # strict log order at the receiver',
    '<%= config.bin %> replay worker --max-in-flight 8 --max-ahead 32   # fewer re-sends after a crash',
  ]
  static override flags = {
    ...tableFlags,
    concurrency: Flags.integer({char: 'c', description: 'jobs run at once', default: 4, min: 1}),
    once: Flags.boolean({
      description: 'exit when no job is runnable and none is running: 0, or 1 if a job run ended in a bug',
    }),
    'poll-interval': Flags.string({description: 'how often an idle worker looks for jobs', default: '500ms'}),
    'heartbeat-interval': Flags.string({description: 'how often a running job proves its worker alive', default: '5s'}),
    'stale-after': Flags.string({description: 'take over a job whose heartbeat is older than this', default: '30s'}),
    'checkpoint-interval': Flags.string({
      description: 'how often a job saves its checkpoint (bounds re-delivery after a crash)',
      default: '1s',
    }),
    'max-in-flight': Flags.integer({
      description:
        'webhook requests under way per job. 1: strict log order, each event sent only after the previous one was ' +
        'accepted, retries included. N: an event may arrive before up to N-1 earlier ones (never before one more ' +
        'than --max-ahead events earlier)',
      default: 8,
      min: 1,
    }),
    'max-ahead': Flags.integer({
      description:
        'events delivery may run past the oldest event not yet accepted (at least --max-in-flight). Bounds what a ' +
        'crash sends twice: fewer than 2 x max-ahead + 3 x max-in-flight events per job',
      default: DEFAULT_MAX_AHEAD,
      min: 1,
    }),
    'scan-chunk': Flags.integer({
      description:
        'offsets per scan chunk: a webhook partition with more than twice this left to read is cut into chunks that ' +
        "idle workers (on any machine) scan in parallel, while the job's worker still delivers in log order. 0: off",
      default: 200_000,
      min: 0,
    }),
    'rate-limit': Flags.integer({
      description: 'requests per second per webhook (Twitter delivers at most 2500)',
      min: 1,
    }),
    'delivery-timeout': Flags.string({description: 'time allowed for one webhook request', default: '3s'}),
    'delivery-attempts': Flags.integer({
      description: 'attempts per event before the job fails at it',
      default: 6,
      min: 1,
    }),
    'retry-base': Flags.string({description: 'first retry delay (doubles, with jitter, up to 30s)', default: '200ms'}),
    'allow-private-targets': Flags.boolean({
      description:
        'deliver to loopback, private and link-local addresses (local testing; env REPLAYCTL_ALLOW_PRIVATE_TARGETS=1)',
    }),
    partitioner: Flags.string({
      description: 'how delivery_log was partitioned',
      options: [...PARTITIONERS],
      default: 'murmur2',
    }),
    grace: Flags.string({description: 'after a stop signal, how long in-flight requests may finish', default: '20s'}),
    'metrics-port': Flags.integer({description: 'serve Prometheus metrics on this port (/metrics)'}),
    'metrics-host': Flags.string({description: 'address to serve metrics on', default: '127.0.0.1'}),
  }

  async run(): Promise<WorkerSummary> {
    const {flags} = this
    if (flags['max-ahead'] < flags['max-in-flight'])
      throw invalidArgument(
        `--max-ahead (${flags['max-ahead']}) must be at least --max-in-flight (${flags['max-in-flight']})`,
        'raise --max-ahead or lower --max-in-flight',
      )
    const heartbeatMs = parseDuration(flags['heartbeat-interval'], '--heartbeat-interval')
    const staleAfterMs = parseDuration(flags['stale-after'], '--stale-after')
    if (staleAfterMs < 2 * heartbeatMs)
      throw invalidArgument(
        `--stale-after (${flags['stale-after']}) must be at least twice ` +
          `--heartbeat-interval (${flags['heartbeat-interval']})`,
        "or a live worker's jobs would be taken over",
      )
    const worker = new ReplayWorker(this.settings, {
      concurrency: flags.concurrency,
      once: flags.once,
      pollIntervalMs: parseDuration(flags['poll-interval'], '--poll-interval'),
      heartbeatMs,
      staleAfterMs,
      checkpointMs: parseDuration(flags['checkpoint-interval'], '--checkpoint-interval'),
      maxInFlight: flags['max-in-flight'],
      maxAhead: flags['max-ahead'],
      rateLimit: flags['rate-limit'],
      chunkSize: flags['scan-chunk'],
      deliveryTimeoutMs: parseDuration(flags['delivery-timeout'], '--delivery-timeout'),
      retry: {attempts: flags['delivery-attempts'], baseMs: parseDuration(flags['retry-base'], '--retry-base')},
      allowPrivate: this.settings.allowPrivateTargets,
      partitioner: flags.partitioner as Partitioner,
    })
    const graceMs = parseDuration(flags.grace, '--grace')
    const onSignal = () => worker.stop(graceMs)
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)

    const metrics =
      flags['metrics-port'] === undefined
        ? undefined
        : await serveMetrics(worker, flags['metrics-host'], flags['metrics-port'])
    const stopView = await showWorker(worker, this.jsonEnabled())
    try {
      const summary = await worker.run()
      this.print(formatWorkerSummary(summary))
      return summary
    } finally {
      await stopView()
      metrics?.close()
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
    }
  }
}
