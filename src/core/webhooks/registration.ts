import type {Pool} from '../db/database.js'
import {UserError} from '../shared/errors.js'
import {checkWebhook, type CrcCheckResult} from './crc-check.js'
import type {WebhookSecrets} from './secrets.js'
import {
  addWebhook,
  recordCheck,
  validateWebhookInput,
  webhookExists,
  type AddWebhookInput,
  type Webhook,
} from './store.js'
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
  const twitter = /^no answer within/.test(reason)
    ? 'High latency on CRC GET request. Your webhook should respond in less than 3 seconds'
    : check.status !== undefined && check.status !== 200
      ? 'Non-200 response code during CRC GET request (i.e. 404, 500, etc)'
      : check.status === undefined
        ? 'Could not reach the webhook URL during the CRC GET request'
        : 'CRC GET request did not contain the expected response token'
  return new UserError(
    'WEBHOOK_CHECK_FAILED',
    `${twitter} (${reason})`,
    'make the endpoint answer GET ?crc_token=T with {"response_token": "sha256=" + base64(HMAC-SHA256(secret, T))}, then try again',
  )
}

export interface RegisterPolicy extends CheckPolicy {
  /**
   * Store the webhook without the CRC check (a receiver that is not up yet, or does not know a
   * generated secret yet). It is stored valid but unchecked (lastCheckAt null) until `webhook check`
   * records an outcome.
   */
  skipCrcCheck?: boolean
}

/**
 * Registering a webhook, for the CLI and the API alike. The input checks (id, URL, secret
 * strength), the target rule delivery applies (url-guard: loopback, private, link-local, CGNAT
 * refused unless private targets are allowed), then the CRC check: the webhook is saved only when
 * it passes (as valid), or unchecked when the check is skipped. Nothing is written otherwise.
 */
export async function registerWebhook(
  pool: Pool,
  secrets: WebhookSecrets,
  input: AddWebhookInput,
  policy: RegisterPolicy = {},
): Promise<Webhook> {
  const checked = validateWebhookInput(input)
  if (checked.secret === undefined) {
    throw new UserError(
      'INVALID_ARGUMENT',
      'a webhook needs its consumer secret for the CRC check',
      'pass the secret the endpoint signs with',
    )
  }
  try {
    await checkTarget(checked.url, {allowPrivate: policy.allowPrivate})
  } catch (error) {
    // Unchecked, a name that does not resolve yet (DNS set up later) is no SSRF risk: delivery
    // checks again, at every connection.
    if (!(policy.skipCrcCheck && error instanceof UserError && error.code === 'WEBHOOK_UNREACHABLE')) throw error
  }
  // Before the CRC check: a registration that cannot be stored sends no request.
  if (await webhookExists(pool, checked.id)) throw webhookExists.error(checked.id)
  const key = await secrets.keyForWrite()
  if (policy.skipCrcCheck) return addWebhook(pool, checked, key)
  const check = await checkWebhook({
    url: checked.url,
    secret: checked.secret,
    timeoutMs: policy.timeoutMs,
    allowPrivate: policy.allowPrivate,
  })
  if (!check.ok) throw crcFailed(check)
  await addWebhook(pool, checked, key)
  return recordCheck(pool, checked.id, true)
}

/** Runs the CRC check against a registered webhook and records the outcome (valid or invalid). */
export async function recheckWebhook(
  pool: Pool,
  secrets: WebhookSecrets,
  id: string,
  policy: CheckPolicy = {},
): Promise<{webhook: Webhook; check: CrcCheckResult}> {
  const {webhook, secret} = await secrets.read(id)
  const check = await checkWebhook({
    url: webhook.url,
    secret: secret ?? '',
    timeoutMs: policy.timeoutMs,
    allowPrivate: policy.allowPrivate,
  })
  return {webhook: await recordCheck(pool, webhook.id, check.ok, check.error ?? null), check}
}

/** recheckWebhook, throwing WEBHOOK_CHECK_FAILED (in Twitter's words) when the check failed. */
export async function revalidateWebhook(
  pool: Pool,
  secrets: WebhookSecrets,
  id: string,
  policy: CheckPolicy = {},
): Promise<Webhook> {
  const {webhook, check} = await recheckWebhook(pool, secrets, id, policy)
  if (!check.ok) throw crcFailed(check)
  return webhook
}
