// The linter the test command runs (scripts/test.sh): typescript-eslint's recommended rules, plus
// the few that catch what review kept finding — unused code, floating promises, stray console.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'bench/out/', 'oclif.manifest.json']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {parserOptions: {project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname}},
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {allowForKnownSafeCalls: [{from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite']}]},
      ],
      '@typescript-eslint/no-misused-promises': ['error', {checksVoidReturn: false}],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'},
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-console': 'error',
      // A callback may be defined before the value it reads is assigned (servers and their owners).
      'prefer-const': ['error', {ignoreReadBeforeAssign: true}],
      // Untrusted text (webhook answers, record keys) is cleaned of control characters on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {globals: {URL: 'readonly', process: 'readonly', console: 'readonly'}},
  },
  {
    // House style: no line over 120 columns (prettier's printWidth, which does not split strings or
    // comments), in the tests and benchmarks as in src/.
    files: ['src/**/*.ts', 'src/**/*.tsx', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {'max-len': ['error', {code: 120, ignoreUrls: true}]},
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: {'no-console': 'off'},
  },
)
