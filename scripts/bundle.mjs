// The last step of `npm run build`: bundles the entry point (dist/cli/main.js), every command and
// hook in place over tsc's output, with @oclif/core and our own modules inside and code shared
// between commands split into dist/chunks/. A command's start was mostly Node resolving and
// loading oclif's ~170 small CommonJS modules (bench/RESULTS.md, `startup`); bundled, it loads a
// handful of files. The packages in package.json's dependencies stay outside (their own files,
// loaded when a command imports them: the native Kafka client, mysql2, ink, ...). The file layout
// oclif and the manifest know (dist/commands/<topic>/<verb>.js) stays as it is, and tsc's other
// output is left in dist/ for what imports it directly (bench/replay-engine.ts).
import {readdirSync, readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {build} from 'esbuild'

const root = new URL('..', import.meta.url).pathname
const dist = join(root, 'dist')
const {dependencies} = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

// oclif sorts each plugin's commands with localeCompare on every start; the first localeCompare
// builds ICU's collator, 8-12 ms of a `log partition-for` that takes ~170 ms of CPU
// (bench/RESULTS.md, `startup`). Command ids are lowercase ASCII (topic:verb, hyphens), which
// code-unit order sorts as the collator does.
const PLUGIN_SORT = 'a.id.localeCompare(b.id)'
const sortIdsByCodeUnits = {
  name: 'oclif-sort-ids-by-code-units',
  setup(build) {
    build.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, async ({path}) => {
      const source = await readFile(path, 'utf8')
      if (!source.includes(PLUGIN_SORT))
        throw new Error(`${path} no longer sorts commands with ${PLUGIN_SORT}: review scripts/bundle.mjs`)
      return {contents: source.replace(PLUGIN_SORT, '(a.id < b.id ? -1 : a.id > b.id ? 1 : 0)'), loader: 'js'}
    })
  },
}

const scripts = (dir) =>
  readdirSync(join(dist, dir), {recursive: true})
    .filter((file) => file.endsWith('.js'))
    .map((file) => join(dist, dir, file))

await build({
  entryPoints: [join(dist, 'cli/main.js'), ...scripts('commands'), ...scripts('cli/hooks')],
  outdir: dist,
  outbase: dist,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  // oclif finds TypeScript compilers only in development (bin/dev.js), which does not use dist/.
  external: [...Object.keys(dependencies).filter((name) => name !== '@oclif/core'), 'typescript', 'ts-node', 'tsx'],
  // oclif's own check that Node satisfies oclif's engines (loading semver's 47 modules to ask);
  // npm already checks ours, which asks for more.
  define: {'process.env.OCLIF_DISABLE_ENGINE_WARNING': '"true"'},
  // oclif is CommonJS: inside an ES module bundle it still needs require, __dirname and __filename.
  banner: {
    js: [
      "import {createRequire as __bundleRequire} from 'node:module'",
      "import {dirname as __bundleDirname} from 'node:path'",
      "import {fileURLToPath as __bundlePath} from 'node:url'",
      'const require = __bundleRequire(import.meta.url)',
      'const __filename = __bundlePath(import.meta.url)',
      'const __dirname = __bundleDirname(__filename)',
    ].join('\n'),
  },
  plugins: [sortIdsByCodeUnits],
  logLevel: 'warning',
})
