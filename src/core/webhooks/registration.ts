import {withDatabase, type Pool} from '../db/database.js'
import {UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {checkWebhook, type CrcCheckResult} from './crc-check.js'
import {loadSecretKey} from './secret-key.js'
import {WebhookSecrets} from './secrets.js'
import {
  addWebhook,
  generateWebhookSecret,
  recordCheck,
  validateWebhookInput,
  webhookExists,
  type AddWebhookInput,
  type Webhook,
} from './store.js'
import {checkTarget} from './url-guard.js'

/**
 * Registering and checking a webhook, the one set of rules behind `webhook add`, `webhook check`
 * and the Replay API's webhook endpoints. As in Twitter's Account Activity API, a URL must pass
 * the CRC check before it is saved (unless the check is skipped on purpose), and checking again
 * records the outcome: a webhook that fails is invalid, and replays to it are refused until one
 * passes.
 */

export interface CheckPolicy {
  allowPrivate?: boolean
  /** Time allowed for the CRC answer (default 3000 ms, Twitter's). */
  timeoutMs?: number
}

export interface RegisterPolicy extends CheckPolicy {
  /**
   * Store the webhook without the CRC check (a receiver that is not up yet). It is stored valid
   * but unchecked (lastCheckAt null) until a check records an outcome.
   */
  skipCrcCheck?: boolean
}

export interface RegisteredWebhook extends Webhook {
  /** The secret generated because none was given: shown this once, never stored in the clear. */
  generatedSecret?: string
}

/** The failed CRC check in Twitter's words, with our reason in parentheses. */
export function crcCheckFailed(check: CrcCheckResult): UserError {
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
    'make the endpoint answer GET ?crc_token=T with ' +
      '{"response_token": "sha256=" + base64(HMAC-SHA256(secret, T))}, then try again',
  )
}

/**
 * Registers a webhook. In order: the input checks (id, URL, secret strength); the target rule
 * delivery applies (url-guard: loopback, private, link-local, CGNAT refused unless private targets
 * are allowed); no webhook of that id yet; then the CRC check, and the webhook is saved valid only
 * when it passes. Nothing is written when any of these fails.
 *
 * Without a secret, a strong one is generated and returned once. No receiver knows it yet, so it
 * cannot pass a CRC check: the webhook is stored unchecked, as with skipCrcCheck. Unchecked, a
 * host name that does not resolve yet (DNS set up later) is accepted: it is no SSRF risk, since
 * delivery applies the target rule again at every connection. An address it does resolve to must
 * pass the rule all the same.
 */
export async function registerWebhook(
  pool: Pool,
  secrets: WebhookSecrets,
  input: AddWebhookInput,
  policy: RegisterPolicy = {},
): Promise<RegisteredWebhook> {
  const secret = input.secret ?? generateWebhookSecret()
  const generatedSecret = input.secret === undefined ? secret : undefined
  const checked = validateWebhookInput({...input, secret})
  const skipCrcCheck = policy.skipCrcCheck === true || generatedSecret !== undefined
  try {
    await checkTarget(checked.url, {allowPrivate: policy.allowPrivate})
  } catch (error) {
    if (!(skipCrcCheck && error instanceof UserError && error.code === 'WEBHOOK_UNREACHABLE')) throw error
  }
  // Before the CRC check: a registration that cannot be stored sends no request.
  if (await webhookExists(pool, checked.id)) throw webhookExists.error(checked.id)
  const key = await secrets.keyForWrite()
  const shown = (webhook: Webhook): RegisteredWebhook =>
    generatedSecret === undefined ? webhook : {...webhook, generatedSecret}
  if (skipCrcCheck) return shown(await addWebhook(pool, checked, key))
  const check = await checkWebhook({
    url: checked.url,
    secret,
    timeoutMs: policy.timeoutMs,
    allowPrivate: policy.allowPrivate,
  })
  if (!check.ok) throw crcCheckFailed(check)
  await addWebhook(pool, checked, key)
  return shown(await recordCheck(pool, checked.id, true))
}

/**
 * Runs the CRC check against a registered webhook with its stored secret and records the outcome
 * (valid or invalid). The caller decides how a failure reads; crcCheckFailed words it.
 */
export async function checkRegisteredWebhook(
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

/**
 * For a command rather than a server: the database and the webhook secrets (the key is loaded, and
 * checked against the stored secrets, before any work), for the time of `work`.
 */
export async function withWebhookRegistry<T>(
  settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs' | 'secretKey'>,
  work: (pool: Pool, secrets: WebhookSecrets) => Promise<T>,
): Promise<T> {
  const key = loadSecretKey(settings.secretKey)
  return withDatabase(settings, async (pool) => work(pool, await WebhookSecrets.open(pool, key)))
}
