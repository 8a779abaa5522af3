import {withDatabase} from '../db/database.js'
import {UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {addWebhook, validateWebhookInput, webhookView, type AddWebhookInput, type WebhookView} from './store.js'
import {checkTarget} from './url-guard.js'

/**
 * Registering a webhook: the input checks, then the same target rule delivery applies (url-guard),
 * so a URL that could never be delivered to (loopback, private, link-local, CGNAT, unless private
 * targets are allowed) is refused before anything is written, not at the first replay.
 */
export interface RegisterWebhookOptions {
  allowPrivate: boolean
}

export async function registerWebhook(settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs'>, input: AddWebhookInput, options: RegisterWebhookOptions): Promise<WebhookView> {
  // Checked before connecting: bad input never touches the database.
  const checked = validateWebhookInput(input)
  try {
    await checkTarget(checked.url, {allowPrivate: options.allowPrivate})
  } catch (error) {
    // A name that does not resolve yet (DNS set up later) is no SSRF risk; delivery checks again,
    // at every connection.
    if (!(error instanceof UserError && error.code === 'WEBHOOK_UNREACHABLE')) throw error
  }
  return webhookView(await withDatabase(settings, (pool) => addWebhook(pool, checked)))
}
