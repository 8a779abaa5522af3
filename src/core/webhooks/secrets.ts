import {withDatabase, withRetry, withTransaction, type Pool} from '../db/database.js'
import {BugError, UserError, invalidArgument} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {createKeyFile, decryptSecret, encryptSecret, findSecretKey, readKeyFile, type SecretKey} from './secret-key.js'
import {getWebhookRow, toWebhook, type Webhook, type WebhookRow} from './store.js'

/**
 * The one place webhook secrets are read: the worker's deliveries, the completion-event sweeper,
 * the CRC check (CLI and API) all go through WebhookSecrets.read(). Opening it checks that the key
 * is the one the rows were encrypted with (SECRET_KEY_WRONG otherwise, before any work starts) and
 * encrypts the plaintext secrets of rows written before encryption, so none remains.
 */
export class WebhookSecrets {
  private constructor(
    private readonly pool: Pool,
    readonly key: SecretKey,
  ) {}

  static async open(pool: Pool, key: SecretKey): Promise<WebhookSecrets> {
    await checkKeyIds(pool, key)
    const [plain] = await withRetry(pool, () => pool.query('SELECT id, secret FROM webhooks WHERE secret IS NOT NULL'))
    for (const row of plain as {id: string; secret: string}[]) await sealPlaintext(pool, key, row.id, row.secret)
    return new WebhookSecrets(pool, key)
  }

  /**
   * The key to encrypt a new secret with, checked again: a long-running server must not add a
   * secret under its old key after a rotation, leaving the table under two keys.
   */
  async keyForWrite(): Promise<SecretKey> {
    await checkKeyIds(this.pool, this.key)
    return this.key
  }

  /** The webhook and its signing secret (null: registered without one). */
  async read(id: string): Promise<{webhook: Webhook; secret: string | null}> {
    const row = await getWebhookRow(this.pool, id)
    return {webhook: toWebhook(row), secret: await this.secretOf(row)}
  }

  private async secretOf(row: WebhookRow): Promise<string | null> {
    if (row.secret_sealed !== null) return openSealed(this.key, row)
    // Written by an older replayctl after this was opened.
    if (row.secret !== null) await sealPlaintext(this.pool, this.key, row.id, row.secret)
    return row.secret
  }
}

async function checkKeyIds(pool: Pool, key: SecretKey): Promise<void> {
  const [rows] = await withRetry(pool, () =>
    pool.query(
      'SELECT secret_key_id AS keyId, COUNT(*) AS count FROM webhooks WHERE secret_key_id <> ? ' +
        'GROUP BY secret_key_id ORDER BY count DESC',
      [key.id],
    ),
  )
  const other = (rows as {keyId: string; count: number}[])[0]
  if (other)
    throw wrongKey(
      key,
      `${Number(other.count)} webhook ${Number(other.count) === 1 ? 'secret is' : 'secrets are'} ` +
        `encrypted with key ${other.keyId}`,
    )
}

function wrongKey(key: SecretKey, what: string): UserError {
  return new UserError(
    'SECRET_KEY_WRONG',
    `${what}, but the key from ${key.from} is ${key.id}`,
    'use the key they were encrypted with (REPLAYCTL_SECRET_KEY or "secretKeyFile"), ' +
      'or, if a `replayctl webhook rotate-key` ran, the new key it wrote',
  )
}

function openSealed(key: SecretKey, row: WebhookRow): string {
  if (row.secret_key_id !== key.id)
    throw wrongKey(key, `the secret of webhook ${row.id} is encrypted with key ${row.secret_key_id}`)
  if (row.secret_sealed === null) throw new BugError(`webhook ${row.id} has no sealed secret to open`)
  const secret = decryptSecret(key, row.id, row.secret_sealed)
  if (secret === undefined) throw wrongKey(key, `the secret of webhook ${row.id} does not decrypt (altered or corrupt)`)
  return secret
}

/** Encrypts one plaintext row and clears the plaintext; a row changed meanwhile is left to its writer. */
async function sealPlaintext(pool: Pool, key: SecretKey, id: string, secret: string): Promise<void> {
  await withRetry(pool, () =>
    pool.query('UPDATE webhooks SET secret_sealed = ?, secret_key_id = ?, secret = NULL WHERE id = ? AND secret = ?', [
      encryptSecret(key, id, secret),
      key.id,
      id,
      secret,
    ]),
  )
}

export interface RotateKeyResult {
  /** secrets re-encrypted from the old key to the new one */
  rotated: number
  /** plaintext secrets (rows from before encryption) encrypted with the new key */
  encrypted: number
  /** already under the new key (a rotation run again) */
  unchanged: number
  oldKeyId: string | null
  newKeyId: string
  newKeyFile: string
  /** the new key file was written by this run (else it existed and was used) */
  createdKeyFile: boolean
}

/**
 * Re-encrypts every webhook secret under a new key, in one transaction: the old key comes from the
 * settings (it may be missing while no secret is encrypted yet), the new one from `newKeyFile`,
 * written there (0600) first when the file does not exist. Run again, it skips rows already under
 * the new key, so a rotation cut short is finished by running it again with the same file.
 */
export async function rotateSecretKey(
  settings: Pick<Settings, 'mysqlUrl' | 'timeoutMs' | 'secretKey'>,
  newKeyFile: string,
): Promise<RotateKeyResult> {
  const oldKey = findSecretKey(settings.secretKey)
  const existing = readKeyFile(newKeyFile)
  if (existing && oldKey && existing.id === oldKey.id)
    throw invalidArgument(
      `${newKeyFile} holds the key in use (${oldKey.id})`,
      'name a new file: a new key is generated into it',
    )
  return withDatabase(settings, async (pool) => {
    // Rows the old key cannot open are refused before a new key file is written.
    const [rows] = await withRetry(pool, () =>
      pool.query('SELECT DISTINCT secret_key_id AS keyId FROM webhooks WHERE secret_key_id IS NOT NULL'),
    )
    for (const {keyId} of rows as {keyId: string}[]) {
      if (keyId === oldKey?.id || keyId === existing?.id) continue
      if (oldKey === undefined) throw noCurrentKey(keyId)
      throw wrongKey(oldKey, `webhook secrets are encrypted with key ${keyId}`)
    }
    // Written before any row uses it, and kept whatever happens next: a key lost after a commit
    // (even one whose answer never arrived) would lose every secret.
    const newKey = existing ?? createKeyFile(newKeyFile)
    const counts = await reencrypt(pool, oldKey, newKey)
    return {...counts, oldKeyId: oldKey?.id ?? null, newKeyId: newKey.id, newKeyFile, createdKeyFile: !existing}
  })
}

function noCurrentKey(keyId: string | null): UserError {
  return new UserError(
    'SECRET_KEY_MISSING',
    `webhook secrets are encrypted with key ${keyId}, and no current key is configured`,
    'give the key they were encrypted with (REPLAYCTL_SECRET_KEY or "secretKeyFile"): rotate-key re-encrypts from it',
  )
}

async function reencrypt(
  pool: Pool,
  oldKey: SecretKey | undefined,
  newKey: SecretKey,
): Promise<Pick<RotateKeyResult, 'rotated' | 'encrypted' | 'unchanged'>> {
  return withRetry(pool, () =>
    withTransaction(pool, async (connection) => {
      const counts = {rotated: 0, encrypted: 0, unchanged: 0}
      const [rows] = await connection.query(
        'SELECT * FROM webhooks WHERE secret IS NOT NULL OR secret_sealed IS NOT NULL ORDER BY id FOR UPDATE',
      )
      for (const row of rows as WebhookRow[]) {
        let secret: string
        if (row.secret_sealed === null) {
          // The query selects only rows holding one of the two.
          if (row.secret === null) throw new BugError(`webhook ${row.id} has neither a secret nor a sealed one`)
          secret = row.secret
          counts.encrypted++
        } else if (row.secret_key_id === newKey.id) {
          counts.unchanged++
          continue
        } else if (oldKey === undefined) {
          throw noCurrentKey(row.secret_key_id)
        } else {
          secret = openSealed(oldKey, row)
          counts.rotated++
        }
        await connection.query('UPDATE webhooks SET secret_sealed = ?, secret_key_id = ?, secret = NULL WHERE id = ?', [
          encryptSecret(newKey, row.id, secret),
          newKey.id,
          row.id,
        ])
      }
      return counts
    }),
  )
}
