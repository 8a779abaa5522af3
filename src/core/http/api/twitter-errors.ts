import {UserError, type UserErrorCode} from '../../shared/errors.js'
import type {FrameworkFailure} from '../server-common.js'

/**
 * How the Replay API fails, in Twitter's words: HTTP status + {"errors": [{"code": N, "message": "..."}]}.
 * One table maps the core's UserError codes to Twitter's; another the failures found before a
 * route runs. This is where the customer's answer parts from the operator's: the core's messages
 * stay detailed for the CLI, and the ones that would tell a caller about the inside (addresses,
 * ports, brokers, other tokens' ids) are answered with a fixed message and logged.
 * Codes Twitter documents for these endpoints (reference.md sections 2 and 9):
 *   32 401 not authenticated        88 429 rate limited
 *   34 404 no such webhook, job or page, or one outside the token's scope (the same answer)
 *   214 400 webhook invalid / URL refused or failed its CRC check
 *   220 403 the token may not register this webhook id
 *   355 409 a replay job is already in progress    356 400 range (order, retention)
 *   357 400 missing parameter       358 400 malformed parameter            368 400 to_date not in the past
 *   130 503 over capacity (Kafka or MySQL unreachable)                     131 500 internal error
 */

export interface TwitterError {
  status: number
  code: number
  /**
   * Said instead of the core's message. The core's messages are written for the operator and name
   * what a customer must not learn through the API: the addresses a host resolves to (internal
   * DNS), why a connection failed (ECONNREFUSED: a port probe), broker addresses, topics,
   * partitions, whether an id exists in another token's scope.
   */
  message?: string
  /** The core's message goes to the log line with the request id, which the answer carries. */
  logged?: true
}

export const NOT_AUTHENTICATED = {status: 401, code: 32, message: 'Could not authenticate you'}
export const FORBIDDEN = {status: 403, code: 220, message: 'Your credentials do not allow access to this resource'}
/** One answer for what does not exist and what the token may not see: ids cannot be probed. */
export const NOT_FOUND = {status: 404, code: 34, message: 'Sorry, that page does not exist'}
export const RATE_LIMITED = {status: 429, code: 88, message: 'Rate limit exceeded'}

const URL_REFUSED: TwitterError = {
  status: 400,
  code: 214,
  message: 'Webhook URL is not allowed or could not be reached: register a public http or https URL',
  logged: true,
}
const CRC_FAILED: TwitterError = {
  status: 400,
  code: 214,
  message:
    'CRC check failed: the webhook must answer GET ?crc_token=T in time with 200 and ' +
    '{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, T))}',
  logged: true,
}
const UNAVAILABLE: TwitterError = {
  status: 503,
  code: 130,
  message: 'Over capacity: the service is unavailable, try again later',
  logged: true,
}
const INTERNAL: TwitterError = {status: 500, code: 131, message: 'Internal error', logged: true}

export const TWITTER_BY_USER_ERROR: Partial<Record<UserErrorCode, TwitterError>> = {
  REPLAY_RANGE_INVALID: {status: 400, code: 356},
  REPLAY_FROM_TOO_OLD: {status: 400, code: 356},
  REPLAY_FROM_BEFORE_LOG: {
    status: 400,
    code: 356,
    message: 'from_date is before the oldest event still held for this webhook',
    logged: true,
  },
  REPLAY_TO_IN_FUTURE: {status: 400, code: 368},
  INVALID_TIME: {status: 400, code: 358},
  INVALID_ARGUMENT: {status: 400, code: 358},
  INVALID_INPUT: {status: 400, code: 358},
  WEBHOOK_NOT_FOUND: NOT_FOUND,
  JOB_NOT_FOUND: NOT_FOUND,
  WEBHOOK_INVALID: {
    status: 400,
    code: 214,
    message: 'Webhook is invalid: it failed its last CRC check; re-validate it (PUT) once it answers',
    logged: true,
  },
  WEBHOOK_CHECK_FAILED: CRC_FAILED,
  WEBHOOK_UNREACHABLE: URL_REFUSED,
  TARGET_NOT_ALLOWED: URL_REFUSED,
  WEBHOOK_EXISTS: {status: 409, code: 214},
  JOB_IN_PROGRESS: {status: 409, code: 355},
  JOB_STATE_CONFLICT: {status: 409, code: 355},
  TOPIC_NOT_FOUND: UNAVAILABLE,
  KAFKA_UNAVAILABLE: UNAVAILABLE,
  KAFKA_REJECTED: UNAVAILABLE,
  DATABASE_UNAVAILABLE: UNAVAILABLE,
  // The server's key stopped matching the secrets (rotated while it ran): the operator's to fix.
  SECRET_KEY_MISSING: UNAVAILABLE,
  SECRET_KEY_WRONG: UNAVAILABLE,
}

const BY_FAILURE: Record<FrameworkFailure, TwitterError> = {
  'not-found': {status: 404, code: 34},
  'body-too-large': {status: 413, code: 358},
  'bad-body': {status: 400, code: 358},
  'unsupported-media-type': {status: 415, code: 358},
  'missing-parameter': {status: 400, code: 357},
  'malformed-parameter': {status: 400, code: 358},
  internal: INTERNAL,
}

type ErrorsBody = {errors: {code: number; message: string; request_id?: string}[]}

/**
 * Twitter's error body. An answer whose detail went to the log also names the request
 * (`request_id`, beside Twitter's fields): what a customer quotes to the operator, who finds the
 * detail by it.
 */
export function errorsBody(code: number, message: string, requestId?: string): ErrorsBody {
  return {errors: [requestId === undefined ? {code, message} : {code, message, request_id: requestId}]}
}

/** Thrown by routes and hooks for answers that are not UserErrors (401, 403, 404, 429). */
export class TwitterHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

export function notFound(): TwitterHttpError {
  return new TwitterHttpError(NOT_FOUND.status, NOT_FOUND.code, NOT_FOUND.message)
}

/**
 * The answer to an error a route threw, or undefined for a bug (answered 500 by the server).
 * `logDetail`: the answer withholds the error's message, which the server logs with the request id.
 */
export function translateError(
  error: Error,
  requestId: string,
): {status: number; body: unknown; logDetail?: boolean} | undefined {
  if (error instanceof TwitterHttpError) return {status: error.status, body: errorsBody(error.code, error.message)}
  if (error instanceof UserError) {
    const twitter = TWITTER_BY_USER_ERROR[error.code] ?? INTERNAL
    if (!twitter.logged)
      return {status: twitter.status, body: errorsBody(twitter.code, twitter.message ?? error.message)}
    return {status: twitter.status, body: errorsBody(twitter.code, twitter.message!, requestId), logDetail: true}
  }
  return undefined
}

export function frameworkErrorBody(kind: FrameworkFailure, message: string, requestId: string): unknown {
  const twitter = BY_FAILURE[kind]
  return twitter.logged ? errorsBody(twitter.code, twitter.message!, requestId) : errorsBody(twitter.code, message)
}
