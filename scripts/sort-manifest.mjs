// oclif writes commands in the order it finds them, which follows the file system's directory
// order and differs between clones; sorting makes the committed manifest reproducible.
import {readFileSync, writeFileSync} from 'node:fs'

const path = new URL('../oclif.manifest.json', import.meta.url)
const manifest = JSON.parse(readFileSync(path, 'utf8'))
manifest.commands = Object.fromEntries(Object.entries(manifest.commands).sort(([a], [b]) => a.localeCompare(b)))
writeFileSync(path, `${JSON.stringify(manifest, null, 2)}\n`)
