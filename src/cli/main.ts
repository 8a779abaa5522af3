/**
 * What bin/run.js starts: oclif's `execute`, imported from here rather than from @oclif/core so
 * that the bundled build (scripts/bundle.mjs) gives the entry point and every command one shared
 * copy of oclif, loaded as a few files instead of ~170 modules resolved one by one.
 */
export {execute} from '@oclif/core'
