import {Command, Errors, Flags, type Interfaces} from '@oclif/core'

import {BugError, ExitCode, UserError} from '../core/shared/errors.js'
import {resolveSettings, type Settings} from '../core/shared/settings.js'
import {parseDuration} from '../core/shared/time.js'
import {paint} from './output.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every replayctl command extends this. It owns `--json` and turns every failure into one line
 * (or one JSON object) and the exit code documented in core/errors.ts. Commands parse flags, call
 * one core function and return its typed result; oclif prints that result under --json.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>

  override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
  }

  /** Human output: suppressed under --json, where the returned result is printed instead. */
  protected print(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  protected override async catch(error: Error & {oclif?: {exit?: number}}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    const failure = describeFailure(error)
    if (this.jsonEnabled()) {
      this.logJson({error: {code: failure.code, message: failure.message, fix: failure.fix, exitCode: failure.exitCode}})
    } else {
      process.stderr.write(`${paint.red('replayctl: error:')} ${failure.line}\n`)
      if (failure.stack) process.stderr.write(`${failure.stack}\nThis is a bug in replayctl; please report it with the command you ran.\n`)
    }
    return this.exit(failure.exitCode)
  }
}

interface Failure {
  code: string
  message: string
  fix?: string
  line: string
  exitCode: number
  stack?: string
}

function describeFailure(error: Error & {oclif?: {exit?: number}}): Failure {
  if (error instanceof UserError) {
    return {code: error.code, message: error.message, fix: error.fix, line: error.line, exitCode: error.exitCode}
  }
  if (error.oclif?.exit !== undefined && !(error instanceof BugError)) {
    // oclif's own parse errors (missing or unknown flags, bad options): usage errors.
    // oclif repeats the offending value whole; an operator's 10,000-character paste stays one short line.
    const first = error.message.split('\n')[0]!.trim().replace(/:$/, '')
    const message = first.length > 300 ? `${first.slice(0, 300)}... (${first.length} characters)` : first
    const fix = 'see --help for the flags it takes'
    return {code: 'INVALID_ARGUMENT', message, fix, line: `${message}: ${fix}`, exitCode: ExitCode.USAGE}
  }
  return {code: 'BUG', message: error.message, line: error.message, exitCode: ExitCode.BUG, stack: error.stack}
}

/** Connection flags, for the commands that talk to Kafka or MySQL. */
export const connectionFlags = {
  brokers: Flags.string({
    helpGroup: 'CONNECTION',
    description: 'Kafka bootstrap servers host:port[,host:port] (env REPLAYCTL_BROKERS; default: the local stack)',
  }),
  'mysql-url': Flags.string({
    helpGroup: 'CONNECTION',
    description: 'mysql://user:pass@host:port/db (env REPLAYCTL_MYSQL_URL; default: the local stack)',
  }),
  context: Flags.string({helpGroup: 'CONNECTION', description: 'named context from the config file (env REPLAYCTL_CONTEXT)'}),
  X: Flags.string({
    char: 'X',
    helpGroup: 'CONNECTION',
    multiple: true,
    description: 'librdkafka property key=value, repeatable (TLS, SASL, tuning)',
  }),
  timeout: Flags.string({helpGroup: 'CONNECTION', description: 'how long to wait for the cluster to answer', default: '10s'}),
}

/** A command that talks to Kafka or MySQL; it resolves where from flags, env, context and defaults. */
export abstract class ConnectedCommand<T extends typeof Command> extends BaseCommand<T> {
  static override baseFlags = connectionFlags

  private resolved?: Settings

  protected get settings(): Settings {
    const flags = this.flags as CommandFlags<T> & Interfaces.InferredFlags<typeof connectionFlags>
    this.resolved ??= resolveSettings({
      brokers: flags.brokers,
      mysqlUrl: flags['mysql-url'],
      context: flags.context,
      librdkafka: flags.X,
      timeoutMs: parseDuration(flags.timeout, '--timeout'),
    })
    return this.resolved
  }
}
