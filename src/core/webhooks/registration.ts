import type {Pool} from '../db/database.js'
import {UserError} from '../shared/errors.js'
import {checkWebhook, type CrcCheckResult} from './crc-check.js'
import type {WebhookSecrets} from './secrets.js'
import {addWebhook, recordCheck, validateWebhookInput, type AddWebhookInput, type Webhook} from './store.js'
import {checkTarget} from './url-guard.js'

/**
 * Registering and re-validating a webhook the way Twitter's Account Activity API does: the URL must
 * pass the CRC check before it is saved, and re-validating runs the check again, recording the
 * outcome (a webhook that fails is invalid, and replays to it are refused until one passes).
 */

export interface CheckPolicy {
  allowPrivate?: boolean
  /** Time allowed for the CRC answer (default 3000 ms, Twitter's). */
  timeoutMs?: number
}

/** Twitter's wording for a failed CRC check, with our reason in parentheses. */
function crcFailed(check: CrcCheckResult): UserError {
  const reason = check.error ?? 'CRC check failed'
  const twitter = /^no answer within/.test(reason) ? 'High latency on CRC GET request. Your webhook should respond in less than 3 seconds'
    : check.status !== undefined && check.status !== 200 ? 'Non-200 response code during CRC GET request (i.e. 404, 500, etc)'
    : check.status === undefined ? 'Could not reach the webhook URL during the CRC GET request'
    : 'CRC GET request did not contain the expected response token'
  return new UserError('WEBHOOK_CHECK_FAILED', `${twitter} (${reason})`, 'make the endpoint answer GET ?crc_token=T with {"response_token": "sha256=" + base64(HMAC-SHA256(secret, T))}, then try again')
}

/**
 * Validates the input, refuses private targets (unless allowed), runs the CRC check and saves the
 * webhook as valid only when it passes. Nothing is written otherwise.
 */
export async function registerWebhook(pool: Pool, secrets: WebhookSecrets, input: AddWebhookInput, policy: CheckPolicy = {}): Promise<Webhook> {
  const checked = validateWebhookInput(input)
  if (checked.secret === undefined) {
    throw new UserError('INVALID_ARGUMENT', 'a webhook needs its consumer secret for the CRC check', 'pass the secret the endpoint signs with')
  }
  await checkTarget(checked.url, {allowPrivate: policy.allowPrivate})
  const check = await checkWebhook({url: checked.url, secret: checked.secret, timeoutMs: policy.timeoutMs, allowPrivate: policy.allowPrivate})
  if (!check.ok) throw crcFailed(check)
  await addWebhook(pool, checked, await secrets.keyForWrite())
  return recordCheck(pool, checked.id, true)
}

/** Runs the CRC check against a registered webhook and records the outcome (valid or invalid). */
export async function recheckWebhook(pool: Pool, secrets: WebhookSecrets, id: string, policy: CheckPolicy = {}): Promise<{webhook: Webhook; check: CrcCheckResult}> {
  const {webhook, secret} = await secrets.read(id)
  const check = await checkWebhook({url: webhook.url, secret: secret ?? '', timeoutMs: policy.timeoutMs, allowPrivate: policy.allowPrivate})
  return {webhook: await recordCheck(pool, webhook.id, check.ok, check.error ?? null), check}
}

/** recheckWebhook, throwing WEBHOOK_CHECK_FAILED (in Twitter's words) when the check failed. */
export async function revalidateWebhook(pool: Pool, secrets: WebhookSecrets, id: string, policy: CheckPolicy = {}): Promise<Webhook> {
  const {webhook, check} = await recheckWebhook(pool, secrets, id, policy)
  if (!check.ok) throw crcFailed(check)
  return webhook
}
