#!/usr/bin/env bash
# The test command (README, CI): sets up, checks the committed oclif manifest, typechecks and lints,
# starts the local stack and runs every test against it. Leaves the stack running for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

if ! git diff --quiet -- oclif.manifest.json 2>/dev/null; then
  echo "oclif.manifest.json drifted from the commands: commit the regenerated file (npm run build)" >&2
  git --no-pager diff --stat -- oclif.manifest.json >&2
  exit 1
fi

echo "==> format (Prettier), typecheck (tests and benchmarks too) and lint" >&2
npm run --silent format:check
npx tsc -p tsconfig.test.json
npx eslint .

node bin/run.js dev up --schema-registry
export REPLAYCTL_BROKERS=127.0.0.1:9092
export REPLAYCTL_MYSQL_URL=mysql://root@127.0.0.1:3306/replayctl

shopt -s nullglob
files=(test/*.test.ts)
[ $# -gt 0 ] && files=("$@")
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
