import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

/**
 * The folder map in src/core/README.md, enforced: each folder imports only the folders it lists,
 * the map has no cycle, and the engine never reaches for the CLI's libraries.
 */
const CORE = fileURLToPath(new URL('../src/core/', import.meta.url))

const MAY_IMPORT: Record<string, string[]> = {
  shared: [],
  kafka: ['shared'],
  db: ['shared'],
  webhooks: ['shared', 'db'],
  replay: ['shared', 'kafka', 'db', 'webhooks'],
  storage: ['shared', 'kafka'],
  schemas: ['shared'],
  http: ['shared', 'kafka', 'db', 'webhooks', 'replay'],
  connect: ['shared'],
  dev: ['shared', 'kafka', 'db', 'connect'],
}
const CLI_ONLY = /^(@oclif\/|oclif$|ink$|ink-|react$|chalk$|cli-table3$)/

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.tsx?$/.test(name) ? [path] : []
  })
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)].map(
    ([, specifier]) => specifier ?? '',
  )
}

function staticImportsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:from\s+|import\s+)['"]([^'"]+)['"]/g)].map(([, specifier]) => specifier ?? '')
}

const folderOf = (path: string) => relative(CORE, path).split('/')[0] ?? ''

describe('src/core layout', () => {
  it('has only the folders the map names, and every module sits in one', () => {
    for (const entry of readdirSync(CORE)) {
      if (entry === 'README.md') continue
      assert.ok(
        statSync(join(CORE, entry)).isDirectory(),
        `src/core/${entry} should live in one of the folders of src/core/README.md`,
      )
      assert.ok(entry in MAY_IMPORT, `src/core/${entry}/ is not in the folder map (src/core/README.md and this test)`)
    }
  })

  it('each folder imports only what the map allows, and nothing of the CLI', () => {
    const violations: string[] = []
    for (const file of sourceFiles(CORE)) {
      const from = folderOf(file)
      for (const specifier of importsOf(file)) {
        if (CLI_ONLY.test(specifier)) violations.push(`${relative(CORE, file)} imports ${specifier}`)
        if (!specifier.startsWith('.')) continue
        const target = resolve(dirname(file), specifier)
        if (!target.startsWith(CORE)) {
          violations.push(`${relative(CORE, file)} imports ${specifier}, outside src/core`)
          continue
        }
        const to = folderOf(target)
        if (to !== from && !MAY_IMPORT[from]?.includes(to))
          violations.push(`${from}/ may not import ${to}/ (${relative(CORE, file)} -> ${specifier})`)
      }
    }
    assert.deepEqual(violations, [])
  })

  it('the map itself has no cycle', () => {
    const visiting = new Set<string>()
    const done = new Set<string>()
    const visit = (folder: string, path: string[]): void => {
      assert.ok(!visiting.has(folder), `cycle: ${[...path, folder].join(' -> ')}`)
      if (done.has(folder)) return
      visiting.add(folder)
      for (const next of MAY_IMPORT[folder] ?? []) visit(next, [...path, folder])
      visiting.delete(folder)
      done.add(folder)
    }
    for (const folder of Object.keys(MAY_IMPORT)) visit(folder, [])
  })
})

describe('CLI layout', () => {
  const SRC = fileURLToPath(new URL('../src/', import.meta.url))
  it('commands stay thin: no ink, React or log formatting in src/commands; ink is mounted in one place', () => {
    const violations: string[] = []
    for (const file of sourceFiles(join(SRC, 'commands'))) {
      for (const specifier of importsOf(file))
        if (/^(ink|react)$/.test(specifier) || specifier.includes('/ui/'))
          violations.push(`${relative(SRC, file)} imports ${specifier}`)
      if (/JSON\.stringify\(\{time:/.test(readFileSync(file, 'utf8')))
        violations.push(`${relative(SRC, file)} formats log lines (src/cli/log-lines.ts does)`)
    }
    for (const file of sourceFiles(SRC)) {
      const text = readFileSync(file, 'utf8')
      const rendersInk = /\{[^}]*\brender\b[^}]*\}\s*from\s*['"]ink['"]|import\(['"]ink['"]\)/.test(text)
      if (rendersInk && relative(SRC, file) !== 'cli/ui/mount.ts')
        violations.push(`${relative(SRC, file)} mounts ink itself (use src/cli/ui/mount.ts)`)
    }
    assert.deepEqual(violations, [])
  })

  it('settings read the environment; the CLI only its terminal variables (NO_COLOR, TERM, COLUMNS, CI)', () => {
    const READERS = ['core/shared/settings.ts', 'cli/output.ts', 'cli/progress.ts']
    const readers = sourceFiles(SRC)
      .filter((file) => readFileSync(file, 'utf8').includes('process.env'))
      .map((file) => relative(SRC, file))
    assert.deepEqual(
      readers.filter((file) => !READERS.includes(file)),
      [],
      'read the variable in src/core/shared/settings.ts and pass the value on',
    )
  })
})

describe('import graph', () => {
  const SRC = fileURLToPath(new URL('../src/', import.meta.url))

  /** The source file a relative specifier names: `./x.js` is x.ts or x.tsx. */
  function resolveImport(from: string, specifier: string): string | undefined {
    const target = resolve(dirname(from), specifier).replace(/\.js$/, '')
    return ['.ts', '.tsx'].map((extension) => target + extension).find((path) => existsSync(path))
  }

  it('no file of src/ imports itself back through others (type-only imports count too)', () => {
    const graph = new Map<string, string[]>()
    for (const file of sourceFiles(SRC)) {
      // Static imports only: a lazy import() (the ink views) is not a circle at load time.
      const targets = staticImportsOf(file)
        .filter((specifier) => specifier.startsWith('.'))
        .map((specifier) => resolveImport(file, specifier))
      graph.set(
        file,
        targets.filter((target): target is string => target !== undefined),
      )
    }
    const cycles: string[] = []
    const state = new Map<string, 'visiting' | 'done'>()
    const path: string[] = []
    const visit = (file: string): void => {
      state.set(file, 'visiting')
      path.push(file)
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'visiting')
          cycles.push([...path.slice(path.indexOf(next)), next].map((step) => relative(SRC, step)).join(' -> '))
        else if (!state.has(next)) visit(next)
      }
      path.pop()
      state.set(file, 'done')
    }
    for (const file of graph.keys()) if (!state.has(file)) visit(file)
    assert.deepEqual(cycles, [])
  })
})
