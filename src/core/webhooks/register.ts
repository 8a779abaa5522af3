import {readFile} from 'node:fs/promises'

import {withDatabase} from '../db/database.js'
import {UserError, invalidArgument} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {loadSecretKey} from './secret-key.js'
import type {CrcCheckResult} from './crc-check.js'
import {recheckWebhook, type CheckPolicy} from './registration.js'
import {WebhookSecrets} from './secrets.js'
import {addWebhook, generateWebhookSecret, validateWebhookInput, type AddWebhookInput, type Webhook} from './store.js'
import {checkTarget} from './url-guard.js'

/**
 * Registering a webhook: the input checks, then the same target rule delivery applies (url-guard),
 * so a URL that could never be delivered to (loopback, private, link-local, CGNAT, unless private
 * targets are allowed) is refused before anything is written, not at the first replay.
 */
export interface RegisterWebhookOptions {
  allowPrivate: boolean
}

export interface RegisteredWebhook extends Webhook {
  /** The secret generated because none was given: shown this once, never stored in the clear. */
  generatedSecret?: string
}

export async function registerWebhook(settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs' | 'secretKey'>, input: AddWebhookInput, options: RegisterWebhookOptions): Promise<RegisteredWebhook> {
  // Checked before connecting: bad input never touches the database.
  const generatedSecret = input.secret === undefined ? generateWebhookSecret() : undefined
  const checked = validateWebhookInput({...input, secret: input.secret ?? generatedSecret})
  const key = loadSecretKey(settings.secretKey)
  try {
    await checkTarget(checked.url, {allowPrivate: options.allowPrivate})
  } catch (error) {
    // A name that does not resolve yet (DNS set up later) is no SSRF risk; delivery checks again,
    // at every connection.
    if (!(error instanceof UserError && error.code === 'WEBHOOK_UNREACHABLE')) throw error
  }
  const webhook = await withDatabase(settings, async (pool) => addWebhook(pool, checked, (await WebhookSecrets.open(pool, key)).key))
  return generatedSecret === undefined ? webhook : {...webhook, generatedSecret}
}

/**
 * Where `webhook add` takes the secret from. A secret on the command line is visible in
 * /proc/PID/cmdline and shell history, so it can come from a file or stdin (`--secret -`)
 * instead; one trailing newline (what `echo` and editors add) is dropped.
 */
export interface SecretInput {
  secret?: string
  secretFile?: string
}

export async function readSecretInput(input: SecretInput, stdin: NodeJS.ReadableStream): Promise<string | undefined> {
  if (input.secret !== undefined && input.secretFile !== undefined) {
    // Not oclif's `exclusive`: its message repeats the flag's value, here the secret.
    throw invalidArgument('--secret and --secret-file were both given', 'give the secret one way: --secret-file PATH, --secret - (stdin), or leave both out to have one generated')
  }
  let text: string
  if (input.secretFile !== undefined) {
    try {
      text = await readFile(input.secretFile, 'utf8')
    } catch (error) {
      throw invalidArgument(`cannot read --secret-file ${input.secretFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'check the path and its permissions')
    }
  } else if (input.secret === '-') {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer))
    text = Buffer.concat(chunks).toString('utf8')
  } else {
    return input.secret
  }
  return text.replace(/\r?\n$/, '')
}

/** `webhook check`: the CRC check with the webhook's stored secret, its outcome recorded. */
export async function checkRegisteredWebhook(settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs' | 'secretKey'>, id: string, policy: CheckPolicy): Promise<CrcCheckResult & {webhookId: string}> {
  const key = loadSecretKey(settings.secretKey)
  return withDatabase(settings, async (pool) => {
    const {webhook, check} = await recheckWebhook(pool, await WebhookSecrets.open(pool, key), id, policy)
    return {webhookId: webhook.id, ...check}
  })
}
