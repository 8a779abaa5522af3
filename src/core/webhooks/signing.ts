import {createHmac, timingSafeEqual} from 'node:crypto'

import {invalidArgument} from '../shared/errors.js'

/**
 * How replayed events are signed, so receivers can tell they came from us.
 *
 *   Twitter (Account Activity API)
 *     x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(key = consumer secret, msg = raw body)>
 *     CRC check: GET <url>?crc_token=T, answer {"response_token": "sha256=<base64 HMAC-SHA256(secret, T)>"}
 *
 *   Standard Webhooks (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md)
 *     webhook-id         the message id, the same on every retry (the receiver's idempotency key)
 *     webhook-timestamp  unix seconds of this attempt (receivers refuse more than 5 minutes off)
 *     webhook-signature  v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>, space-separated
 *                        when there are several; key = base64-decoded part of a `whsec_...` secret,
 *                        or the UTF-8 bytes of any other secret
 *
 * Bodies are signed as raw bytes, never re-encoded: a replayed event is POSTed exactly as stored.
 */

export const TWITTER_SIGNATURE_HEADER = 'x-twitter-webhooks-signature'
export const STANDARD_WEBHOOKS_ID_HEADER = 'webhook-id'
export const STANDARD_WEBHOOKS_TIMESTAMP_HEADER = 'webhook-timestamp'
export const STANDARD_WEBHOOKS_SIGNATURE_HEADER = 'webhook-signature'

/** How far a Standard Webhooks timestamp may be from the receiver's clock (the spec's 5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60

type Bytes = Buffer | Uint8Array | string

function hmacBase64(key: Buffer | string, ...parts: Bytes[]): string {
  const hmac = createHmac('sha256', key)
  for (const part of parts) hmac.update(part)
  return hmac.digest('base64')
}

/** Constant-time comparison of two header values (different lengths compare unequal at once). */
function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}

/** `sha256=` + base64(HMAC-SHA256(secret, raw body)): Twitter's x-twitter-webhooks-signature value. */
export function twitterSignature(secret: string, body: Bytes): string {
  return `sha256=${hmacBase64(secret, body)}`
}

export function verifyTwitterSignature(secret: string, body: Bytes, header: string | undefined): boolean {
  return typeof header === 'string' && sameText(header, twitterSignature(secret, body))
}

/** `sha256=` + base64(HMAC-SHA256(secret, crc_token)): the response_token a webhook answers a CRC check with. */
export function crcResponseToken(secret: string, crcToken: string): string {
  return `sha256=${hmacBase64(secret, crcToken)}`
}

export function verifyCrcResponseToken(secret: string, crcToken: string, responseToken: unknown): boolean {
  return typeof responseToken === 'string' && sameText(responseToken, crcResponseToken(secret, crcToken))
}

/** The HMAC key of a Standard Webhooks secret: the decoded bytes of `whsec_<base64>`, else the secret's UTF-8 bytes. */
export function standardWebhooksKey(secret: string): Buffer {
  if (secret.startsWith('whsec_')) return Buffer.from(secret.slice('whsec_'.length), 'base64')
  return Buffer.from(secret, 'utf8')
}

/**
 * `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
 * Pass a key from standardWebhooksKey(), or the secret.
 */
export function standardWebhooksSignature(key: Buffer | string, id: string, timestamp: number, body: Bytes): string {
  const bytes = typeof key === 'string' ? standardWebhooksKey(key) : key
  return `v1,${hmacBase64(bytes, `${id}.${timestamp}.`, body)}`
}

export interface StandardWebhooksHeaders {
  'webhook-id': string
  'webhook-timestamp': string
  'webhook-signature': string
}

export interface VerifyOptions {
  /** Allowed distance between the timestamp and now, in seconds (default 300). */
  toleranceSeconds?: number
  /** Unix seconds to treat as now (default: the clock). */
  now?: number
}

/**
 * A receiver's check of a Standard Webhooks request: the timestamp is within the tolerance and one
 * of the space-separated `v1,` signatures matches. Header names are looked up in lower case.
 */
export function verifyStandardWebhooks(
  secret: string,
  body: Bytes,
  headers: Record<string, string | string[] | undefined>,
  options: VerifyOptions = {},
): boolean {
  const id = single(headers[STANDARD_WEBHOOKS_ID_HEADER])
  const timestampText = single(headers[STANDARD_WEBHOOKS_TIMESTAMP_HEADER])
  const signatures = single(headers[STANDARD_WEBHOOKS_SIGNATURE_HEADER])
  if (!id || !timestampText || !signatures || !/^\d+$/.test(timestampText)) return false
  const timestamp = Number(timestampText)
  const now = options.now ?? Math.floor(Date.now() / 1000)
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false
  const expected = standardWebhooksSignature(standardWebhooksKey(secret), id, timestamp, body)
  return signatures.split(' ').some((candidate) => candidate.startsWith('v1,') && sameText(candidate, expected))
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/**
 * Signs one webhook's requests: the keys are derived once. The Twitter signature depends only on
 * the body; the Standard Webhooks one also on the id and the attempt's timestamp.
 */
export class WebhookSigner {
  private readonly standardKey: Buffer

  constructor(private readonly secret: string) {
    if (!secret) throw invalidArgument('the webhook secret is empty', 'register the webhook with its consumer secret')
    this.standardKey = standardWebhooksKey(secret)
  }

  twitter(body: Bytes): string {
    return twitterSignature(this.secret, body)
  }

  standard(id: string, timestamp: number, body: Bytes): string {
    return standardWebhooksSignature(this.standardKey, id, timestamp, body)
  }

  crcResponseToken(crcToken: string): string {
    return crcResponseToken(this.secret, crcToken)
  }
}
