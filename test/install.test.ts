import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {after, describe, it} from 'node:test'

import {BIN} from './helpers.js'

/**
 * SLOW (several minutes): the package as `npm pack` makes it installs with `npm install -g` into a
 * fresh prefix, building the Kafka client's librdkafka against Debian's libraries and applying
 * patches/ at install, and the installed `replayctl` runs. Packages come from the npm registry.
 * It builds librdkafka twice (the client's own install, then the patched rebuild): about 4.5 min of
 * CPU, 33 min of wall time measured on a loaded 2-core machine. So it runs only when asked, with
 * REPLAYCTL_TEST_INSTALL=1.
 */
const run = promisify(execFile)
const ROOT = join(BIN, '..', '..')
const work = mkdtempSync(join(tmpdir(), 'replayctl-install-'))

after(() => rmSync(work, {recursive: true, force: true}))

describe('npm pack + npm install -g', () => {
  it(
    'installs the packed tarball into a fresh prefix and the installed replayctl runs',
    {
      timeout: 2_400_000,
      skip: process.env.REPLAYCTL_TEST_INSTALL === '1' ? false : 'slow: set REPLAYCTL_TEST_INSTALL=1',
    },
    async () => {
      await run('npm', ['pack', '--pack-destination', work], {cwd: ROOT})
      const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'))
      assert.ok(tarball, 'npm pack made a tarball')
      const prefix = join(work, 'prefix')
      const env = {
        ...process.env,
        CKJS_LINKING: 'dynamic',
        ...(existsSync('/usr/include/node/node.h') ? {npm_config_nodedir: '/usr'} : {}),
      }
      await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(work, tarball)], {
        cwd: work,
        env,
        maxBuffer: 64 * 1024 * 1024,
        timeout: 2_300_000,
      })
      const installed = join(prefix, 'bin', 'replayctl')
      const clean = {PATH: process.env.PATH, HOME: process.env.HOME}
      const version = await run(installed, ['--version'], {cwd: work, env: clean})
      assert.match(version.stdout, /^replayctl\/\d+\.\d+\.\d+ /)
      const placed = await run(installed, ['log', 'partition-for', 'k', '--partitions', '12', '--json'], {
        cwd: work,
        env: clean,
      })
      const reference = await run(
        process.execPath,
        [BIN, 'log', 'partition-for', 'k', '--partitions', '12', '--json'],
        {env: clean},
      )
      assert.deepEqual(JSON.parse(placed.stdout), JSON.parse(reference.stdout))
      // The addon in the installed package was rebuilt from the patched sources.
      const client = join(
        prefix,
        'lib',
        'node_modules',
        'replayctl',
        'node_modules',
        '@confluentinc',
        'kafka-javascript',
      )
      const probe = await run(process.execPath, [
        '-e',
        `const n = require(${JSON.stringify(join(client, 'librdkafka.js'))}); console.log(typeof n.KafkaConsumer.prototype.consumePacked)`,
      ])
      assert.equal(probe.stdout.trim(), 'function')
    },
  )
})
