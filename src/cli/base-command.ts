import {Command, Errors, Flags, type Interfaces} from '@oclif/core'

import {kafkaWait} from '../core/kafka/client.js'
import {BugError, ExitCode, quoteInput, UserError} from '../core/shared/errors.js'
import type {ConnectTarget} from '../core/connect/rest.js'
import {resolveConnectUrl, resolveSettings, type Settings} from '../core/shared/settings.js'
import {parseDuration} from '../core/shared/time.js'
import {paint, showFullTables} from './output.js'
import {closest} from './suggest.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

const OUTPUT_FORMATS = ['table', 'wide', 'json'] as const
type OutputFormat = (typeof OUTPUT_FORMATS)[number]

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
    const {wide, output, json} = flags as {wide?: boolean; output?: OutputFormat; json?: boolean}
    if (output && output !== 'json' && (json || this.config.scopedEnvVar('CONTENT_TYPE')?.toLowerCase() === 'json'))
      throw new UserError('INVALID_ARGUMENT', `--json and -o ${output} ask for different output`, 'pass one of them')
    // Set once here so every table a command prints, however deep, honours its --wide.
    if (wide || output === 'wide') showFullTables()
  }

  /**
   * oclif's --json, and `-o json` as its kubectl spelling. oclif asks before the flags are parsed
   * (a parse error is reported as JSON too), so `-o json` is looked for in argv as oclif does --json.
   */
  override jsonEnabled(): boolean {
    if (super.jsonEnabled()) return true
    return 'output' in (this.ctor.flags ?? {}) && outputInArgv(this.argv) === 'json'
  }

  /** Human output: suppressed under --json, where the returned result is printed instead. */
  protected print(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  protected override async catch(error: Error & {oclif?: {exit?: number}}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    const flags = {...(this.ctor as typeof BaseCommand).baseFlags, ...this.ctor.flags}
    const flagNames = [
      ...Object.entries(flags)
        .filter(([, flag]) => !flag.hidden)
        .map(([name]) => name),
      ...(this.ctor.enableJsonFlag ? ['json'] : []),
      'help',
    ]
    const failure = describeFailure(
      error,
      `${this.config.bin} ${this.id?.replaceAll(':', ' ') ?? ''}`.trim(),
      flagNames,
    )
    if (this.jsonEnabled()) {
      this.logJson({
        error: {code: failure.code, message: failure.message, fix: failure.fix, exitCode: failure.exitCode},
      })
    } else {
      process.stderr.write(`${paint.red('replayctl: error:')} ${failure.line}\n`)
      if (failure.stack)
        process.stderr.write(
          `${failure.stack}\nThis is a bug in replayctl; please report it with the command you ran.\n`,
        )
    }
    return this.exit(failure.exitCode)
  }
}

/** The value of -o/--output in argv, before any `--` (-o json, -ojson, -o=json, --output json, --output=json). */
export function outputInArgv(argv: string[]): string | undefined {
  const end = argv.indexOf('--')
  const words = end === -1 ? argv : argv.slice(0, end)
  let found: string | undefined
  words.forEach((word, index) => {
    const joined = /^(?:-o=?|--output=)(.+)$/.exec(word)
    if (joined) found = joined[1]
    else if (word === '-o' || word === '--output') found = words[index + 1]
  })
  return found
}

interface Failure {
  code: string
  message: string
  fix?: string
  line: string
  exitCode: number
  stack?: string
}

function describeFailure(error: Error & {oclif?: {exit?: number}}, command: string, flagNames: string[]): Failure {
  if (error instanceof UserError) {
    return {code: error.code, message: error.message, fix: error.fix, line: error.line, exitCode: error.exitCode}
  }
  if (error.oclif?.exit !== undefined && !(error instanceof BugError)) {
    const usage = describeUsageError(error, command, flagNames)
    // oclif repeats offending values whole; an operator's 10,000-character paste stays one short line.
    const message =
      usage.message.length > 300
        ? `${usage.message.slice(0, 300)}... (${usage.message.length} characters)`
        : usage.message
    const fix = usage.fix
    return {code: 'INVALID_ARGUMENT', message, fix, line: `${message}: ${fix}`, exitCode: ExitCode.USAGE}
  }
  return {code: 'BUG', message: error.message, line: error.message, exitCode: ExitCode.BUG, stack: error.stack}
}

/**
 * oclif's own parse errors (missing, unknown or malformed flags and arguments) as one line that
 * names what is wrong. oclif's classes are not exported, so they are told apart by name and by the
 * wording of the messages its parser builds; anything unrecognised keeps oclif's first line.
 * An unknown long flag close to one of `flagNames` (the command's, without dashes) is answered
 * with that flag.
 */
export function describeUsageError(
  error: Error & {args?: {name?: string}[] | string[]; flags?: string[]},
  command: string,
  flagNames: string[] = [],
): {message: string; fix: string} {
  const help = `see \`${command} --help\``
  // oclif colours parts of its messages and appends a help hint; neither belongs in one line.
  const lines = error.message
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && line !== 'See more help with --help')
  switch (error.constructor.name) {
    case 'RequiredArgsError': {
      const names = ((error.args as {name?: string}[] | undefined) ?? []).map((arg) => `<${arg.name}>`)
      return {
        message: `missing required argument${names.length === 1 ? '' : 's'} ${names.join(', ')}`.trim(),
        fix: help,
      }
    }
    case 'UnexpectedArgsError': {
      const extra = ((error.args as string[] | undefined) ?? []).map((arg) => quoteInput(String(arg)))
      return {
        message: `unexpected argument${extra.length === 1 ? '' : 's'} ${extra.join(', ')}`,
        fix: `remove ${extra.length === 1 ? 'it' : 'them'}, or quote a value that contains spaces; ${help}`,
      }
    }
    case 'NonExistentFlagsError': {
      const flags = (error.flags ?? []).map((flag) => quoteInput(flag))
      const suggestions = (error.flags ?? []).flatMap((flag) => {
        const name = /^--([^=]+)/.exec(flag)?.[1]
        const near = name === undefined ? undefined : closest(name, flagNames)
        return near === undefined ? [] : [{flag, near: `--${near}`}]
      })
      const [only] = suggestions
      const meant =
        only === undefined
          ? ''
          : flags.length === 1
            ? `did you mean \`${only.near}\`? `
            : `did you mean ${suggestions.map(({flag, near}) => `\`${near}\` for ${quoteInput(flag)}`).join(', ')}? `
      return {
        message: `unknown flag${flags.length === 1 ? '' : 's'} ${flags.join(', ')}`,
        fix: `${meant}${help} for the flags it takes`,
      }
    }
    case 'FailedFlagValidationError':
    case 'ViolatedFlagConstraintError': {
      const missing: string[] = []
      const others: string[] = []
      for (const reason of lines.slice(1)) {
        const flag = /^Missing required flag (\S+)$/.exec(reason)?.[1]
        if (flag) missing.push(`--${flag}`)
        else others.push(reason)
      }
      const reasons = [
        ...(missing.length ? [`missing required flag${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`] : []),
        ...others,
      ]
      return {message: reasons.join('; ') || lines[0] || 'invalid flags', fix: help}
    }
    case 'FlagInvalidOptionError': {
      const [, flag, value, options] = /^Expected --([^=]+)=(.*) to be one of: (.*)$/s.exec(lines[0] ?? '') ?? []
      if (flag !== undefined && value !== undefined)
        return {
          message: `--${flag} ${quoteInput(value)} is not one of ${options}`,
          fix: `pass one of them; ${help}`,
        }
      break
    }
  }
  // A flag's own parse function failed (oclif's integer flags among them).
  const parsing = /^Parsing --(\S+)$/.exec(lines[0] ?? '')
  if (parsing) {
    const flag = `--${parsing[1]}`
    const reason = lines[1] ?? ''
    const integer = /^Expected an integer(?: (greater|less) than or equal to (-?\d+))? but received: (.*)$/s.exec(
      reason,
    )
    if (integer) {
      const [, side, limit, received = ''] = integer
      const bound = side === 'greater' ? ` >= ${limit}` : side === 'less' ? ` <= ${limit}` : ''
      return {
        message: `${flag} expects a whole number${bound}, got ${quoteInput(received)}`,
        fix: `pass ${flag} N; ${help}`,
      }
    }
    return {message: `invalid ${flag}: ${reason}`.replace(/:\s*$/, ''), fix: help}
  }
  // Everything else (a flag given without its value, ...): oclif's first line.
  return {message: (lines[0] ?? error.message).replace(/:$/, ''), fix: `${help} for the flags it takes`}
}

/**
 * For the commands that print tables and details: they fit the terminal unless --wide. `-o` is
 * kubectl's spelling of the same choices: `-o wide` is --wide and `-o json` is --json.
 */
export const tableFlags = {
  wide: Flags.boolean({
    helpGroup: 'OUTPUT',
    description:
      'show every column and full values, however wide ' +
      '(tables otherwise fit the terminal; pipes always get full values)',
  }),
  output: Flags.option({
    char: 'o',
    helpGroup: 'OUTPUT',
    options: OUTPUT_FORMATS,
    description: 'table: fitted to the terminal (the default); wide: as --wide; json: as --json',
  })(),
}

const brokers = Flags.string({
  helpGroup: 'CONNECTION',
  description: 'Kafka bootstrap servers host:port[,host:port] (env REPLAYCTL_BROKERS; default: the local stack)',
})
const mysqlUrl = Flags.string({
  helpGroup: 'CONNECTION',
  description: 'mysql://user:pass@host:port/db (env REPLAYCTL_MYSQL_URL; default: the local stack)',
})
const context = Flags.string({
  helpGroup: 'CONNECTION',
  description: 'named context from the config file (env REPLAYCTL_CONTEXT)',
})
const librdkafka = Flags.string({
  char: 'X',
  helpGroup: 'CONNECTION',
  multiple: true,
  description: 'librdkafka property key=value, repeatable (TLS, SASL, tuning)',
})
/** The schema registry's flag, for the schema commands and `log read --decode`. */
export const schemaRegistryUrlFlag = Flags.string({
  helpGroup: 'CONNECTION',
  description:
    "a Confluent-compatible schema registry's API base URL " +
    "(env REPLAYCTL_SCHEMA_REGISTRY_URL; default: the local stack's, http://127.0.0.1:8085/apis/ccompat/v7)",
})
const timeout = (what: string) =>
  Flags.string({helpGroup: 'CONNECTION', description: `how long to wait for ${what} to answer`, default: '10s'})

/**
 * Connection flags: each command shows those of what it talks to (Kafka, MySQL or both), so
 * --help lists no flag the command would ignore.
 */
export const connectionFlags = {
  brokers,
  'mysql-url': mysqlUrl,
  context,
  X: librdkafka,
  timeout: timeout('the cluster and the database'),
}
export const kafkaConnectionFlags = {brokers, context, X: librdkafka, timeout: timeout('the cluster')}
export const databaseConnectionFlags = {'mysql-url': mysqlUrl, context, timeout: timeout('the database')}

/** A command that talks to Kafka and MySQL; it resolves where from flags, env, context and defaults. */
export abstract class ConnectedCommand<T extends typeof Command> extends BaseCommand<T> {
  /** Partial: the Kafka-only and MySQL-only commands below take only some of them. */
  static override baseFlags: Partial<typeof connectionFlags> = connectionFlags

  private resolved?: Settings

  override async init(): Promise<void> {
    await super.init()
    // A person at a terminal learns why nothing happens yet; scripts, pipes and --json get no noise.
    if (process.stderr.isTTY && !this.jsonEnabled())
      kafkaWait.once('waiting', (brokers) =>
        process.stderr.write(`connecting to Kafka at ${brokers} (Ctrl-C to stop)\n`),
      )
  }

  protected get settings(): Settings {
    // --allow-private-targets belongs to the commands that reach webhooks; settings weigh it against the env.
    const flags = this.flags as CommandFlags<T> &
      Interfaces.InferredFlags<typeof connectionFlags> & {
        'allow-private-targets'?: boolean
        'schema-registry-url'?: string
      }
    this.resolved ??= resolveSettings({
      brokers: flags.brokers,
      mysqlUrl: flags['mysql-url'],
      context: flags.context,
      librdkafka: flags.X,
      timeoutMs: parseDuration(flags.timeout, '--timeout'),
      allowPrivateTargets: flags['allow-private-targets'],
      schemaRegistryUrl: flags['schema-registry-url'],
    })
    return this.resolved
  }
}

/** A command that talks to Kafka only. */
export abstract class KafkaCommand<T extends typeof Command> extends ConnectedCommand<T> {
  static override baseFlags = kafkaConnectionFlags
}

/** A command that talks to a schema registry only. */
export abstract class SchemaRegistryCommand<T extends typeof Command> extends ConnectedCommand<T> {
  static override baseFlags = {
    'schema-registry-url': schemaRegistryUrlFlag,
    context,
    timeout: timeout('the schema registry'),
  }
}

/** A command that talks to MySQL only. */
export abstract class DatabaseCommand<T extends typeof Command> extends ConnectedCommand<T> {
  static override baseFlags = databaseConnectionFlags
}

export const connectConnectionFlags = {
  url: Flags.string({
    helpGroup: 'CONNECTION',
    description: "Kafka Connect's REST URL (env REPLAYCTL_CONNECT_URL; default: the local stack's worker)",
  }),
  context,
  timeout: timeout('Kafka Connect'),
}

/** A command that talks to a Kafka Connect worker's REST API. */
export abstract class ConnectCommand<T extends typeof Command> extends BaseCommand<T> {
  static override baseFlags = connectConnectionFlags

  protected get connect(): ConnectTarget {
    const flags = this.flags as CommandFlags<T> & Interfaces.InferredFlags<typeof connectConnectionFlags>
    return resolveConnectUrl({
      url: flags.url,
      context: flags.context,
      timeoutMs: parseDuration(flags.timeout, '--timeout'),
    })
  }
}
