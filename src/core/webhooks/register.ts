import {readFile} from 'node:fs/promises'

import {withDatabase} from '../db/database.js'
import {invalidArgument} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {loadSecretKey} from './secret-key.js'
import type {CrcCheckResult} from './crc-check.js'
import {recheckWebhook, registerWebhook, type CheckPolicy} from './registration.js'
import {WebhookSecrets} from './secrets.js'
import {generateWebhookSecret, validateWebhookInput, type AddWebhookInput, type Webhook} from './store.js'

export interface RegisterWebhookOptions {
  allowPrivate: boolean
  /** See RegisterPolicy.skipCrcCheck; implied when the secret is generated (no receiver knows it yet). */
  skipCrcCheck: boolean
  /** Time allowed for the CRC answer. */
  checkTimeoutMs?: number
}

export interface RegisteredWebhook extends Webhook {
  /** The secret generated because none was given: shown this once, never stored in the clear. */
  generatedSecret?: string
}

/** `webhook add`: registerWebhook (registration.ts) with a secret generated when none was given. */
export async function addWebhookFromCli(
  settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs' | 'secretKey'>,
  input: AddWebhookInput,
  options: RegisterWebhookOptions,
): Promise<RegisteredWebhook> {
  const generatedSecret = input.secret === undefined ? generateWebhookSecret() : undefined
  // Checked before connecting: bad input never touches the database.
  const checked = validateWebhookInput({...input, secret: input.secret ?? generatedSecret})
  const key = loadSecretKey(settings.secretKey)
  const webhook = await withDatabase(settings, async (pool) =>
    registerWebhook(pool, await WebhookSecrets.open(pool, key), checked, {
      allowPrivate: options.allowPrivate,
      skipCrcCheck: options.skipCrcCheck || generatedSecret !== undefined,
      timeoutMs: options.checkTimeoutMs,
    }),
  )
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
    throw invalidArgument(
      '--secret and --secret-file were both given',
      'give the secret one way: --secret-file PATH, --secret - (stdin), or leave both out to have one generated',
    )
  }
  let text: string
  if (input.secretFile !== undefined) {
    try {
      text = await readFile(input.secretFile, 'utf8')
    } catch (error) {
      throw invalidArgument(
        `cannot read --secret-file ${input.secretFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        'check the path and its permissions',
      )
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
export async function checkRegisteredWebhook(
  settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs' | 'secretKey'>,
  id: string,
  policy: CheckPolicy,
): Promise<CrcCheckResult & {webhookId: string}> {
  const key = loadSecretKey(settings.secretKey)
  return withDatabase(settings, async (pool) => {
    const {webhook, check} = await recheckWebhook(pool, await WebhookSecrets.open(pool, key), id, policy)
    return {webhookId: webhook.id, ...check}
  })
}
