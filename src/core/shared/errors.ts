/**
 * How replayctl fails — the one place that decides it.
 *
 * UserError: the operator can fix it (a bad flag, an unknown topic, a broker that is down). It is
 *   printed as one line — what is wrong, then what to do — never with a stack trace.
 * BugError: replayctl itself is wrong. It is printed with its stack and a request to report it.
 *
 * Every UserError carries a stable string code (for scripts reading `--json`) and the code decides
 * the process exit status:
 *
 *   0  OK           the command did what was asked
 *   1  BUG          an internal error; please report it (also `replay worker --once` when a job
 *                   run ended in one: each is logged with its stack)
 *   2  USAGE        a flag, argument, time, file or config value is invalid (also the secrets' key:
 *                   missing, or not the one the webhook secrets were encrypted with)
 *   3  NOT_FOUND    the topic, partition, webhook or job does not exist
 *   4  CONFLICT     it already exists, or is already in progress
 *   5  UNAVAILABLE  a broker, the database or a webhook could not be reached in time
 *   6  INCOMPLETE   the work ran but did not finish (for example a replay that ended FAILED)
 *   7  UNHEALTHY    the check ran and found a problem (`cluster status`: a partition offline,
 *                   under min ISR or under-replicated, or a broker gone; `connect status`: a
 *                   connector or task FAILED); the report is printed
 */
export const ExitCode = {
  OK: 0,
  BUG: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  UNAVAILABLE: 5,
  INCOMPLETE: 6,
  UNHEALTHY: 7,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

const exitCodeByErrorCode = {
  INVALID_ARGUMENT: ExitCode.USAGE,
  INVALID_TIME: ExitCode.USAGE,
  INVALID_CONFIG: ExitCode.USAGE,
  INVALID_INPUT: ExitCode.USAGE,
  BACKUP_CORRUPT: ExitCode.USAGE,
  TARGET_NOT_ALLOWED: ExitCode.USAGE,
  REPLAY_RANGE_INVALID: ExitCode.USAGE,
  REPLAY_FROM_TOO_OLD: ExitCode.USAGE,
  REPLAY_FROM_BEFORE_LOG: ExitCode.USAGE,
  REPLAY_TO_IN_FUTURE: ExitCode.USAGE,
  SECRET_KEY_MISSING: ExitCode.USAGE,
  SECRET_KEY_WRONG: ExitCode.USAGE,
  RECORD_NOT_DECODABLE: ExitCode.USAGE,
  TOPIC_NOT_FOUND: ExitCode.NOT_FOUND,
  WEBHOOK_NOT_FOUND: ExitCode.NOT_FOUND,
  JOB_NOT_FOUND: ExitCode.NOT_FOUND,
  PARTITION_NOT_FOUND: ExitCode.NOT_FOUND,
  CONTEXT_NOT_FOUND: ExitCode.NOT_FOUND,
  GROUP_NOT_FOUND: ExitCode.NOT_FOUND,
  SUBJECT_NOT_FOUND: ExitCode.NOT_FOUND,
  SCHEMA_NOT_FOUND: ExitCode.NOT_FOUND,
  CONNECTOR_NOT_FOUND: ExitCode.NOT_FOUND,
  TOPIC_EXISTS: ExitCode.CONFLICT,
  STACK_CONFLICT: ExitCode.CONFLICT,
  WEBHOOK_EXISTS: ExitCode.CONFLICT,
  JOB_IN_PROGRESS: ExitCode.CONFLICT,
  JOB_STATE_CONFLICT: ExitCode.CONFLICT,
  TOPIC_NOT_EMPTY: ExitCode.CONFLICT,
  BACKUP_DIR_CONFLICT: ExitCode.CONFLICT,
  WEBHOOK_INVALID: ExitCode.CONFLICT,
  GROUP_ACTIVE: ExitCode.CONFLICT,
  KAFKA_UNAVAILABLE: ExitCode.UNAVAILABLE,
  KAFKA_REJECTED: ExitCode.UNAVAILABLE,
  DATABASE_UNAVAILABLE: ExitCode.UNAVAILABLE,
  CONNECT_UNAVAILABLE: ExitCode.UNAVAILABLE,
  CONNECT_REJECTED: ExitCode.UNAVAILABLE,
  DEPENDENCY_MISSING: ExitCode.UNAVAILABLE,
  STACK_FAILED: ExitCode.UNAVAILABLE,
  WEBHOOK_UNREACHABLE: ExitCode.UNAVAILABLE,
  WEBHOOK_CHECK_FAILED: ExitCode.UNAVAILABLE,
  SCHEMA_REGISTRY_UNAVAILABLE: ExitCode.UNAVAILABLE,
  INCOMPLETE: ExitCode.INCOMPLETE,
  BACKUP_INCOMPLETE: ExitCode.INCOMPLETE,
  BACKUP_MISMATCH: ExitCode.INCOMPLETE,
} as const satisfies Record<string, ExitCode>

export type UserErrorCode = keyof typeof exitCodeByErrorCode

export class UserError extends Error {
  override readonly name = 'UserError'
  readonly exitCode: ExitCode

  /**
   * @param message what is wrong, as one sentence without a trailing period
   * @param fix     what the operator can do about it
   */
  constructor(
    readonly code: UserErrorCode,
    message: string,
    readonly fix?: string,
    options?: {cause?: unknown},
  ) {
    super(message, options)
    this.exitCode = exitCodeByErrorCode[code]
  }

  /** The single line shown to a person. */
  get line(): string {
    return this.fix ? `${this.message}: ${this.fix}` : this.message
  }
}

export class BugError extends Error {
  override readonly name = 'BugError'
  readonly code = 'BUG'
  readonly exitCode = ExitCode.BUG
}

export function invalidArgument(message: string, fix?: string): UserError {
  return new UserError('INVALID_ARGUMENT', message, fix)
}

/** Shows an operator's input in a message: bounded, control characters escaped. */
export function quoteInput(input: string, max = 40): string {
  const shown = input.length > max ? `${input.slice(0, max)}... (${input.length} characters)` : input
  const escaped = shown.replace(
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  )
  return `'${escaped}'`
}
