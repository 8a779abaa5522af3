import {createCipheriv, createDecipheriv, createHmac, randomBytes} from 'node:crypto'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

import {UserError} from '../shared/errors.js'
import {defaultSecretKeyFile, type SecretKeySetting} from '../shared/settings.js'

/**
 * The key webhook secrets are encrypted with at rest, and the encryption: AES-256-GCM with a fresh
 * 12-byte IV per value and the 16-byte tag stored with the ciphertext (iv | tag | ciphertext). The
 * webhook id is the associated data, so a ciphertext copied onto another webhook's row does not
 * decrypt there.
 *
 * A key is 32 random bytes, written as base64 (REPLAYCTL_SECRET_KEY, or one line in a key file).
 * Its id, stored beside every ciphertext, is derived from the key (an HMAC, which reveals nothing
 * of it), so a row encrypted under another key is told apart from a corrupt one.
 */
export interface SecretKey {
  id: string
  bytes: Buffer
  /** Where it came from, for messages: REPLAYCTL_SECRET_KEY or the file's path. */
  from: string
}

const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16

export function secretKeyId(bytes: Buffer): string {
  return createHmac('sha256', bytes).update('replayctl webhook secret key id').digest('hex').slice(0, 16)
}

export function parseSecretKey(text: string, from: string): SecretKey {
  const base64 = text.trim()
  const bytes = Buffer.from(base64, 'base64')
  if (bytes.length !== KEY_BYTES || bytes.toString('base64') !== base64) {
    throw new UserError(
      'INVALID_CONFIG',
      `the secret key in ${from} is not base64 of ${KEY_BYTES} bytes`,
      'give 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`',
    )
  }
  return {id: secretKeyId(bytes), bytes, from}
}

export function readKeyFile(path: string): SecretKey | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UserError(
      'INVALID_CONFIG',
      `cannot read the secret key file ${path}: ${(error as Error).message}`,
      'fix its permissions, or point "secretKeyFile" / REPLAYCTL_SECRET_KEY elsewhere',
    )
  }
  return parseSecretKey(text, path)
}

/** The configured key, or undefined when the key file does not exist. */
export function findSecretKey(setting: SecretKeySetting): SecretKey | undefined {
  return setting.source === 'env' ? parseSecretKey(setting.base64, setting.variable) : readKeyFile(setting.file)
}

/** The configured key; SECRET_KEY_MISSING when there is none. */
export function loadSecretKey(setting: SecretKeySetting): SecretKey {
  const key = findSecretKey(setting)
  if (key) return key
  // Only a file can be missing: an empty REPLAYCTL_SECRET_KEY counts as unset.
  const {file} = setting as {file: string}
  throw new UserError(
    'SECRET_KEY_MISSING',
    `no key for webhook secrets: ${file} does not exist`,
    'set REPLAYCTL_SECRET_KEY (base64 of 32 random bytes) or "secretKeyFile" in the config context, ' +
      `or create this one with \`replayctl webhook rotate-key --new-key-file ${file}\` ` +
      '(`replayctl dev up` creates it for the local stack)',
  )
}

/** Writes a new random key to `path` (mode 0600; never over an existing file). */
export function createKeyFile(path: string): SecretKey {
  const bytes = randomBytes(KEY_BYTES)
  try {
    mkdirSync(dirname(path), {recursive: true, mode: 0o700})
    writeFileSync(path, `${bytes.toString('base64')}\n`, {mode: 0o600, flag: 'wx'})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new UserError('INVALID_ARGUMENT', `the key file ${path} already exists`, 'name a new file')
    throw new UserError(
      'INVALID_ARGUMENT',
      `cannot write the key file ${path}: ${(error as Error).message}`,
      'choose a writable location',
    )
  }
  return {id: secretKeyId(bytes), bytes, from: path}
}

/** The key file at `path`, created (0600) when it does not exist yet. */
export function ensureKeyFile(path: string): {key: SecretKey; created: boolean} {
  const existing = readKeyFile(path)
  return existing ? {key: existing, created: false} : {key: createKeyFile(path), created: true}
}

export function encryptSecret(key: SecretKey, webhookId: string, secret: string): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv)
  cipher.setAAD(Buffer.from(webhookId, 'utf8'))
  const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext])
}

/** The secret, or undefined when the value does not authenticate under this key (wrong key, or altered). */
export function decryptSecret(key: SecretKey, webhookId: string, sealed: Buffer): string | undefined {
  if (sealed.length < IV_BYTES + TAG_BYTES) return undefined
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, sealed.subarray(0, IV_BYTES))
  decipher.setAAD(Buffer.from(webhookId, 'utf8'))
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
  } catch {
    return undefined
  }
}

/**
 * `dev up`: the local stack's key at the default location (~/.config/replayctl/secret.key),
 * created when missing, so the local stack and the test suite need no configuration. Nothing is
 * created when REPLAYCTL_SECRET_KEY gives the key.
 */
export function ensureLocalSecretKey(env: NodeJS.ProcessEnv = process.env): {file: string; created: boolean} | null {
  if (env.REPLAYCTL_SECRET_KEY) return null
  const file = defaultSecretKeyFile(env)
  return {file, created: ensureKeyFile(file).created}
}
