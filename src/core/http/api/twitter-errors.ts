import {UserError, type UserErrorCode} from '../../shared/errors.js'
import type {FrameworkFailure} from '../server-common.js'

/**
 * How the Replay API fails, in Twitter's words: HTTP status + {"errors": [{"code": N, "message": "..."}]}.
 * One table maps the core's UserError codes to Twitter's; another the failures found before a
 * route runs. Codes Twitter documents for these endpoints (reference.md sections 2 and 9):
 *   32 401 not authenticated        34 404 no such webhook, job or page    88 429 rate limited
 *   214 400 webhook invalid / URL refused or failed its CRC check
 *   220 403 the token may not touch this webhook
 *   355 409 a replay job is already in progress    356 400 range (order, retention)
 *   357 400 missing parameter       358 400 malformed parameter            368 400 to_date not in the past
 *   130 503 over capacity (Kafka or MySQL unreachable)                     131 500 internal error
 */

export interface TwitterError {
  status: number
  code: number
}

export const TWITTER_BY_USER_ERROR: Partial<Record<UserErrorCode, TwitterError>> = {
  REPLAY_RANGE_INVALID: {status: 400, code: 356},
  REPLAY_FROM_TOO_OLD: {status: 400, code: 356},
  REPLAY_TO_IN_FUTURE: {status: 400, code: 368},
  INVALID_TIME: {status: 400, code: 358},
  INVALID_ARGUMENT: {status: 400, code: 358},
  INVALID_INPUT: {status: 400, code: 358},
  WEBHOOK_NOT_FOUND: {status: 404, code: 34},
  JOB_NOT_FOUND: {status: 404, code: 34},
  WEBHOOK_INVALID: {status: 400, code: 214},
  WEBHOOK_CHECK_FAILED: {status: 400, code: 214},
  WEBHOOK_UNREACHABLE: {status: 400, code: 214},
  TARGET_NOT_ALLOWED: {status: 400, code: 214},
  WEBHOOK_EXISTS: {status: 409, code: 214},
  JOB_IN_PROGRESS: {status: 409, code: 355},
  JOB_STATE_CONFLICT: {status: 409, code: 355},
  TOPIC_NOT_FOUND: {status: 503, code: 130},
  KAFKA_UNAVAILABLE: {status: 503, code: 130},
  KAFKA_REJECTED: {status: 503, code: 130},
  DATABASE_UNAVAILABLE: {status: 503, code: 130},
}

const BY_FAILURE: Record<FrameworkFailure, TwitterError> = {
  'not-found': {status: 404, code: 34},
  'body-too-large': {status: 413, code: 358},
  'bad-body': {status: 400, code: 358},
  'unsupported-media-type': {status: 415, code: 358},
  'missing-parameter': {status: 400, code: 357},
  'malformed-parameter': {status: 400, code: 358},
  internal: {status: 500, code: 131},
}

export const NOT_AUTHENTICATED = {status: 401, code: 32, message: 'Could not authenticate you'}
export const FORBIDDEN = {status: 403, code: 220, message: 'Your credentials do not allow access to this resource'}
export const RATE_LIMITED = {status: 429, code: 88, message: 'Rate limit exceeded'}

export function errorsBody(code: number, message: string): {errors: {code: number; message: string}[]} {
  return {errors: [{code, message}]}
}

/** Thrown by routes and hooks for answers that are not UserErrors (401, 403, 429). */
export class TwitterHttpError extends Error {
  constructor(readonly status: number, readonly code: number, message: string) {
    super(message)
  }
}

/** The answer to an error a route threw, or undefined for a bug (answered 500 by the server). */
export function translateError(error: Error): {status: number; body: unknown} | undefined {
  if (error instanceof TwitterHttpError) return {status: error.status, body: errorsBody(error.code, error.message)}
  if (error instanceof UserError) {
    const twitter = TWITTER_BY_USER_ERROR[error.code] ?? {status: 500, code: 131}
    return {status: twitter.status, body: errorsBody(twitter.code, error.message)}
  }
  return undefined
}

export function frameworkErrorBody(kind: FrameworkFailure, message: string): unknown {
  return errorsBody(BY_FAILURE[kind].code, message)
}
