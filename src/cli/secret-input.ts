import {readFile} from 'node:fs/promises'

import {invalidArgument} from '../core/shared/errors.js'

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
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw invalidArgument(
        `cannot read --secret-file ${input.secretFile}: ${reason}`,
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
