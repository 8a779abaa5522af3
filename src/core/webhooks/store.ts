import {randomBytes} from 'node:crypto'

import {withRetry, withTransaction, mysqlErrorCode, type Pool} from '../db/database.js'
import {BugError, UserError, invalidArgument, quoteInput} from '../shared/errors.js'
import {encryptSecret, type SecretKey} from './secret-key.js'

/**
 * The webhook registry: where replayed events go. Only storage lives here; the CRC check, SSRF
 * rules and HTTP delivery belong to the delivery code, which records outcomes with recordCheck()
 * and markInvalid(). Secrets are written here encrypted (secret-key.ts) and read back only through
 * secrets.ts.
 *
 * A webhook's id is the Kafka key its events were written with, so it is case-sensitive and
 * limited to a plain alphabet that is safe in logs, URLs and shells.
 */
export type WebhookState = 'valid' | 'invalid'

/** A registered webhook as everything but delivery sees it: never the secret itself. */
export interface Webhook {
  id: string
  url: string
  hasSecret: boolean
  state: WebhookState
  createdAt: string
  lastCheckAt: string | null
  lastCheckOk: boolean | null
  lastCheckError: string | null
  invalidReason: string | null
}

export interface AddWebhookInput {
  id: string
  url: string
  secret?: string
}

export interface RemoveWebhookResult {
  id: string
  /** finished jobs of this webhook that were removed with it */
  jobsRemoved: number
}

export const WEBHOOK_ID = /^[A-Za-z0-9_-]{1,64}$/
export const MAX_URL_LENGTH = 2048
export const MAX_SECRET_LENGTH = 255
/** A shorter secret than this (other than `whsec_`) can be guessed offline from one signed request. */
export const MIN_SECRET_LENGTH = 32
/** Standard Webhooks keys: `whsec_` + base64 of 24 to 64 random bytes. */
export const MIN_WHSEC_BYTES = 24
export const MAX_WHSEC_BYTES = 64

export function validateWebhookId(id: string): void {
  if (!WEBHOOK_ID.test(id)) {
    const why =
      id.length === 0
        ? 'is empty'
        : id.length > 64
          ? 'is longer than 64 characters'
          : 'has characters other than A-Z a-z 0-9 _ -'
    throw invalidArgument(`webhook id ${quoteInput(id)} ${why}`, 'use 1 to 64 of the characters A-Z a-z 0-9 _ -')
  }
}

/** Returns the URL as it will be stored (WHATWG-normalised). */
export function validateWebhookUrl(url: string): string {
  const fix = 'give an absolute http:// or https:// URL, e.g. https://example.com/webhooks/twitter'
  if (url.length === 0) throw invalidArgument('the webhook URL is empty', fix)
  if (url.length > MAX_URL_LENGTH)
    throw invalidArgument(
      `the webhook URL is ${url.length} characters long, over the limit of ${MAX_URL_LENGTH}`,
      'use a shorter URL',
    )
  if (/[\s\u0000-\u001f\u007f]/.test(url))
    throw invalidArgument(
      `the webhook URL ${quoteInput(url, 60)} contains whitespace or control characters`,
      'percent-encode them or remove them',
    )
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw invalidArgument(`the webhook URL ${quoteInput(url, 60)} is not a valid absolute URL`, fix)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalidArgument(
      `the webhook URL ${quoteInput(url, 60)} uses scheme '${parsed.protocol.replace(/:$/, '')}'; ` +
        'only http and https are delivered to',
      fix,
    )
  }
  if (!parsed.hostname) throw invalidArgument(`the webhook URL ${quoteInput(url, 60)} has no host`, fix)
  if (parsed.username || parsed.password) {
    // They would be shown by `webhook list` and logged with every delivery.
    throw invalidArgument(
      'the webhook URL contains a user name or password',
      'remove them from the URL and pass a signing secret with --secret instead',
    )
  }
  if (parsed.href.length > MAX_URL_LENGTH)
    throw invalidArgument(
      `the webhook URL is ${parsed.href.length} characters long once normalised, over the limit of ${MAX_URL_LENGTH}`,
      'use a shorter URL',
    )
  return parsed.href
}

/**
 * The one strength rule for a webhook secret, whoever registers it (CLI or API): messages never
 * repeat the secret. A `whsec_` secret is a Standard Webhooks key, so its HMAC key is the decoded
 * bytes: `whsec_` alone or with bad base64 would sign with an empty key anyone can forge.
 */
export function validateWebhookSecret(secret: string): void {
  const generate = 'leave out --secret to have a strong one generated'
  if (secret.length === 0) throw invalidArgument('the webhook secret is empty', generate)
  if (secret.length > MAX_SECRET_LENGTH)
    throw invalidArgument(
      `the webhook secret is ${secret.length} characters long, over the limit of ${MAX_SECRET_LENGTH}`,
      'use a shorter secret',
    )
  if (/[\u0000-\u001f\u007f]/.test(secret))
    throw invalidArgument('the webhook secret contains control characters', 'use printable characters only')
  const whsecFix =
    `${generate}, or give whsec_ + base64 of ${MIN_WHSEC_BYTES} to ${MAX_WHSEC_BYTES} random bytes ` +
    '(e.g. whsec_$(openssl rand -base64 32))'
  if (secret.startsWith('whsec_')) {
    const base64 = secret.slice('whsec_'.length)
    const key = Buffer.from(base64, 'base64')
    if (key.toString('base64') !== base64)
      throw invalidArgument('the whsec_ webhook secret is not valid base64 after whsec_', whsecFix)
    if (key.length < MIN_WHSEC_BYTES || key.length > MAX_WHSEC_BYTES) {
      throw invalidArgument(
        `the whsec_ webhook secret decodes to ${key.length} bytes; ` +
          `Standard Webhooks keys are ${MIN_WHSEC_BYTES} to ${MAX_WHSEC_BYTES} bytes`,
        whsecFix,
      )
    }
    return
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    throw invalidArgument(
      `the webhook secret is ${secret.length} characters long, under the minimum of ${MIN_SECRET_LENGTH}`,
      `${generate}, or give at least ${MIN_SECRET_LENGTH} random characters`,
    )
  }
}

/** A new Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

export function webhookNotFound(id: string): UserError {
  return new UserError(
    'WEBHOOK_NOT_FOUND',
    `no webhook ${quoteInput(id, 64)}`,
    'list webhooks with `replayctl webhook list`, or add it with `replayctl webhook add <id> --url <url>`',
  )
}

export interface WebhookRow {
  id: string
  url: string
  /** plaintext, only in rows written before secrets were encrypted (migration 8); cleared on first use with a key */
  secret: string | null
  /** iv | tag | AES-256-GCM ciphertext (secret-key.ts) */
  secret_sealed: Buffer | null
  /** the id of the key secret_sealed was encrypted with */
  secret_key_id: string | null
  state: WebhookState
  created_at: Date
  last_check_at: Date | null
  last_check_ok: number | null
  last_check_error: string | null
  invalid_reason: string | null
}

export function toWebhook(row: WebhookRow): Webhook {
  return {
    id: row.id,
    url: row.url,
    hasSecret: row.secret_sealed !== null || row.secret !== null,
    state: row.state,
    createdAt: row.created_at.toISOString(),
    lastCheckAt: row.last_check_at?.toISOString() ?? null,
    lastCheckOk: row.last_check_ok === null ? null : row.last_check_ok !== 0,
    lastCheckError: row.last_check_error,
    invalidReason: row.invalid_reason,
  }
}

/** Checks id, URL and secret; returns the input with the URL as it will be stored. */
export function validateWebhookInput(input: AddWebhookInput): AddWebhookInput {
  validateWebhookId(input.id)
  const url = validateWebhookUrl(input.url)
  if (input.secret !== undefined) validateWebhookSecret(input.secret)
  return {...input, url}
}

/** Adds a webhook, its secret (if any) encrypted with `key`. */
export async function addWebhook(pool: Pool, input: AddWebhookInput, key?: SecretKey): Promise<Webhook> {
  const {url} = validateWebhookInput(input)
  let sealed: {secret: Buffer; keyId: string} | null = null
  if (input.secret !== undefined) {
    if (key === undefined) throw new BugError('addWebhook was given a secret without the key to encrypt it with')
    sealed = {secret: encryptSecret(key, input.id, input.secret), keyId: key.id}
  }
  try {
    await withRetry(pool, () =>
      pool.query('INSERT INTO webhooks (id, url, secret_sealed, secret_key_id) VALUES (?, ?, ?, ?)', [
        input.id,
        url,
        sealed?.secret ?? null,
        sealed?.keyId ?? null,
      ]),
    )
  } catch (error) {
    if (mysqlErrorCode(error) === 'ER_DUP_ENTRY') {
      throw webhookExists.error(input.id)
    }
    throw error
  }
  return getWebhook(pool, input.id)
}

/** Whether a webhook with this id is registered (addWebhook decides a race by the primary key). */
export async function webhookExists(pool: Pool, id: string): Promise<boolean> {
  const [rows] = await withRetry(pool, () => pool.query('SELECT 1 FROM webhooks WHERE id = ?', [id]))
  return (rows as unknown[]).length > 0
}
webhookExists.error = (id: string) =>
  new UserError(
    'WEBHOOK_EXISTS',
    `webhook '${id}' already exists`,
    `remove it first with \`replayctl webhook remove ${id}\`, or choose another id`,
  )

export async function listWebhooks(pool: Pool): Promise<Webhook[]> {
  const [rows] = await withRetry(pool, () => pool.query('SELECT * FROM webhooks ORDER BY id'))
  return (rows as WebhookRow[]).map(toWebhook)
}

export async function getWebhook(pool: Pool, id: string): Promise<Webhook> {
  return toWebhook(await getWebhookRow(pool, id))
}

/** The stored row, secret columns included: for secrets.ts, the one reader of secrets. */
export async function getWebhookRow(pool: Pool, id: string): Promise<WebhookRow> {
  validateWebhookId(id)
  const [rows] = await withRetry(pool, () => pool.query('SELECT * FROM webhooks WHERE id = ?', [id]))
  const row = (rows as WebhookRow[])[0]
  if (!row) throw webhookNotFound(id)
  return row
}

/**
 * Removes a webhook and its finished jobs. Refused while it has an active job: the webhook row is
 * locked first, so a concurrent submit either commits before (and is seen here) or waits and then
 * fails its foreign key check.
 */
export async function removeWebhook(pool: Pool, id: string): Promise<RemoveWebhookResult> {
  validateWebhookId(id)
  return withRetry(pool, () =>
    withTransaction(pool, async (connection) => {
      const [found] = await connection.query('SELECT id FROM webhooks WHERE id = ? FOR UPDATE', [id])
      if ((found as unknown[]).length === 0) throw webhookNotFound(id)
      const [active] = await connection.query('SELECT id, state FROM replay_jobs WHERE active_webhook_id = ?', [id])
      const job = (active as {id: number; state: string}[])[0]
      if (job) {
        throw new UserError(
          'JOB_IN_PROGRESS',
          `webhook '${id}' has replay job ${job.id} in state ${job.state}`,
          `wait for it to finish, or cancel it with \`replayctl replay cancel ${job.id}\`, then remove the webhook`,
        )
      }
      const [deleted] = await connection.query('DELETE FROM replay_jobs WHERE webhook_id = ?', [id])
      await connection.query('DELETE FROM webhooks WHERE id = ?', [id])
      return {id, jobsRemoved: (deleted as {affectedRows: number}).affectedRows}
    }),
  )
}

/**
 * Records the outcome of a CRC check. A failed check makes the webhook invalid (replays to it are
 * refused until a check passes); a passing one makes it valid again.
 */
export async function recordCheck(pool: Pool, id: string, ok: boolean, error?: string | null): Promise<Webhook> {
  validateWebhookId(id)
  const message = ok ? null : truncate(error ?? 'CRC check failed')
  const [result] = await withRetry(pool, () =>
    pool.query(
      `UPDATE webhooks SET last_check_at = NOW(3), last_check_ok = ?, last_check_error = ?,
       state = IF(?, 'valid', 'invalid'), invalid_reason = IF(?, NULL, ?)
     WHERE id = ?`,
      [ok, message, ok, ok, message === null ? null : `CRC check failed: ${message}`, id],
    ),
  )
  if ((result as {affectedRows: number}).affectedRows === 0) throw webhookNotFound(id)
  return getWebhook(pool, id)
}

/** Marks a webhook invalid outside a check, e.g. when it answered 410 Gone. */
export async function markInvalid(pool: Pool, id: string, reason: string): Promise<Webhook> {
  validateWebhookId(id)
  const [result] = await withRetry(pool, () =>
    pool.query("UPDATE webhooks SET state = 'invalid', invalid_reason = ? WHERE id = ?", [truncate(reason), id]),
  )
  if ((result as {affectedRows: number}).affectedRows === 0) throw webhookNotFound(id)
  return getWebhook(pool, id)
}

/** TEXT holds 64 KiB; error texts from remote servers can be anything. */
function truncate(text: string, max = 4000): string {
  return text.length > max ? `${text.slice(0, max)}...` : text
}
