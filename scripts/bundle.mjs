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

// Edits to oclif's code for its start, each a string replaced in one of @oclif/core's lib/ files;
// the build fails when the string is gone (a new oclif), so that the edit is reviewed, not lost.
const OCLIF_EDITS = [
  // oclif sorts each plugin's commands with localeCompare on every start; the first localeCompare
  // builds ICU's collator, 8-12 ms of a `log partition-for` that takes ~170 ms of CPU
  // (bench/RESULTS.md, `startup`). Command ids are lowercase ASCII (topic:verb, hyphens), which
  // code-unit order sorts as the collator does.
  {
    file: 'config/plugin.js',
    from: 'a.id.localeCompare(b.id)',
    to: '(a.id < b.id ? -1 : a.id > b.id ? 1 : 0)',
  },
  // Which dependencies are plugins: oclif compiles every entry of package.json's oclif.plugins
  // with minimatch once per dependency (~30 compilations, ~4% of a start). A plain package name
  // (no glob character, no leading `!` or `#`) matches only itself, so it is compared as a string.
  {
    file: 'config/plugin-loader.js',
    from: 'patterns.some((w) => (0, minimatch_1.minimatch)(p, w))',
    to:
      'patterns.some((w) => (/^(@[a-z0-9][\\w.-]*\\/)?[a-z0-9][\\w.-]*$/i.test(w) ? p === w : ' +
      '(0, minimatch_1.minimatch)(p, w)))',
  },
  // A plugin's root came from require.resolve, whose first call costs ~5 ms (the CommonJS
  // resolver's lookups and package.json reads). A plugin installed as our dependency is
  // <root>/node_modules/<name>, the directory require.resolve's answer leads to: it is taken
  // first (by its real path, as require.resolve gives), and anything else still resolved as before.
  {
    file: 'util/find-root.js',
    from: 'debug(name)(`Finding root using ${root}`);',
    to: [
      'debug(name)(`Finding root using ${root}`);',
      'try {',
      "  const installed = await require('node:fs/promises').realpath((0, node_path_1.join)(root, 'node_modules', name));",
      "  if ((await (0, fs_1.safeReadJson)((0, node_path_1.join)(installed, 'package.json')))?.name === name) return installed;",
      '} catch {}',
    ].join('\n'),
  },
  // Modules oclif loads on every start for what few starts use: performance marks (only with
  // performance tracing on), readline (only to read a flag's value from stdin), tinyglobby (only
  // to find commands without a manifest, ~3% of a start) and minimatch (only for a plugin pattern
  // with glob characters, see above). Loaded on use.
  ...[
    ['performance.js', 'node_perf_hooks_1', 'node:perf_hooks'],
    ['parser/parse.js', 'node_readline_1', 'node:readline'],
    ['config/plugin.js', 'tinyglobby_1', 'tinyglobby'],
    ['config/plugin-loader.js', 'minimatch_1', 'minimatch'],
  ].map(([file, name, module]) => ({
    file,
    from: `const ${name} = require("${module}");`,
    to: `const ${name} = new Proxy({}, {get: (_, key) => require("${module}")[key]});`,
  })),
]
const appliedEdits = new Set()
const editOclif = {
  name: 'edit-oclif',
  setup(build) {
    build.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/].*\.js$/}, async ({path}) => {
      const edits = OCLIF_EDITS.filter(({file}) => path.replaceAll('\\', '/').endsWith(`/@oclif/core/lib/${file}`))
      if (edits.length === 0) return undefined
      let source = await readFile(path, 'utf8')
      for (const {from, to} of edits) {
        if (!source.includes(from)) throw new Error(`${path} no longer has ${from}: review scripts/bundle.mjs`)
        source = source.replace(from, () => to)
        appliedEdits.add(from)
      }
      return {contents: source, loader: 'js'}
    })
  },
}

// Bundled with our code rather than loaded as packages: oclif (see the top), and chalk, which every
// command's output module imports; as a package, Node resolved its exports map and loaded its four
// modules on every start (~1% of `log partition-for`'s instructions).
const INSIDE = new Set(['@oclif/core', 'chalk'])

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
  external: [...Object.keys(dependencies).filter((name) => !INSIDE.has(name)), 'typescript', 'ts-node', 'tsx'],
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
  plugins: [editOclif],
  logLevel: 'warning',
})
// An edit whose file is no longer bundled (a new oclif moved it) is as lost as one whose string is gone.
const unapplied = OCLIF_EDITS.filter(({from}) => !appliedEdits.has(from))
if (unapplied.length)
  throw new Error(`@oclif/core no longer has ${unapplied.map(({file}) => file).join(', ')}: review scripts/bundle.mjs`)
