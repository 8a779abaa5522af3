import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {after, describe, it} from 'node:test'

import {BIN} from './helpers.js'

/**
 * The package as `npm pack` makes it installs with `npm install -g` into a fresh prefix, building the
 * Kafka client's librdkafka against Debian's libraries and applying patches/ at install, and the
 * installed `replayctl` runs. Packages come from the npm registry (npm's cache, after setup).
 *
 * An install compiles the client twice: its own install script builds librdkafka and the addon, then
 * our postinstall rebuilds what patches/ changed (one librdkafka file and the addon's C++). Built
 * through ccache, as scripts/setup.sh builds the project's own install, with paths under the install
 * made relative (CCACHE_BASEDIR) and the directory left out of the hash, every compilation here is
 * one setup already made. Measured on a 2-core machine shared with other work: without ccache 3 min
 * 55 s of CPU (user + sys), 6 to 33 min of wall time by load; with the cache filled, 65 s of CPU and
 * 1 to 2 min of wall time (npm's own work and librdkafka's configure script are what is left).
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
        ...(existsSync('/usr/lib/ccache')
          ? {PATH: `/usr/lib/ccache:${process.env.PATH}`, CCACHE_BASEDIR: work, CCACHE_NOHASHDIR: '1'}
          : {}),
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
        `const n = require(${JSON.stringify(join(client, 'librdkafka.js'))}); ` +
          'console.log(typeof n.KafkaConsumer.prototype.consumePacked)',
      ])
      assert.equal(probe.stdout.trim(), 'function')
    },
  )
})
