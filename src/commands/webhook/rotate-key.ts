import {Flags} from '@oclif/core'

import {ConnectedCommand, tableFlags} from '../../cli/base-command.js'
import {details, paint} from '../../cli/output.js'
import {rotateSecretKey, type RotateKeyResult} from '../../core/webhooks/secrets.js'
import {plural} from '../../core/shared/plural.js'

export default class WebhookRotateKey extends ConnectedCommand<typeof WebhookRotateKey> {
  static override summary = 'Re-encrypt every webhook secret under a new key, in one transaction'
  static override description =
    `The current key comes from the settings (REPLAYCTL_SECRET_KEY, the context's "secretKeyFile", ` +
    `else ~/.config/replayctl/secret.key). The new key is read from --new-key-file, or generated ` +
    `into it (mode 0600) when the file does not exist. Afterwards point REPLAYCTL_SECRET_KEY or ` +
    `"secretKeyFile" at the new key everywhere (workers, API servers, CLI) and restart them: one ` +
    `still holding the old key stops with SECRET_KEY_WRONG. Every row records its key's id, so ` +
    `running it again finishes a rotation that was cut short. Also encrypts plaintext secrets left ` +
    `from before encryption.`
  static override examples = [
    '<%= config.bin %> webhook rotate-key --new-key-file /etc/replayctl/secret-2026-12.key',
    'REPLAYCTL_SECRET_KEY="$OLD_KEY" <%= config.bin %> webhook rotate-key --new-key-file ./new.key --json',
  ]
  static override flags = {
    ...tableFlags,
    'new-key-file': Flags.string({
      description: 'file holding the new key (base64 of 32 bytes); generated there (0600) if it does not exist',
      required: true,
    }),
  }

  async run(): Promise<RotateKeyResult> {
    const result = await rotateSecretKey(this.settings, this.flags['new-key-file'])
    this.print(
      paint.green(
        `${result.rotated + result.encrypted} webhook ` +
          `${plural(result.rotated + result.encrypted, 'secret')} now encrypted with key ` +
          `${result.newKeyId}`,
      ),
    )
    this.print(
      details([
        ['new key', `${result.newKeyFile} (${result.createdKeyFile ? 'generated' : 'existing file'})`, 'middle'],
        ['old key', result.oldKeyId ?? 'none'],
        ['re-encrypted', result.rotated],
        ['plaintext encrypted', result.encrypted],
        ['already on the new key', result.unchanged],
      ]),
    )
    this.print(
      paint.yellow(
        `next: point REPLAYCTL_SECRET_KEY or "secretKeyFile" at ${result.newKeyFile} for every ` +
          `worker, API server and CLI, and restart them`,
      ),
    )
    return result
  }
}
