#!/usr/bin/env bash
# Makes sure the Kafka client's native addon is built from the patched sources (patches/, applied
# by patch-package in postinstall). `npm ci` runs the client's own install script, which builds the
# addon, before our postinstall patches its sources; so when the built addon lacks the patch it is
# rebuilt here (about 90 s on 2 cores). Exits non-zero if the patched build is still not in place.
set -euo pipefail
cd "$(dirname "$0")/.."
client=node_modules/@confluentinc/kafka-javascript
# Which patch the addon was last built from: a changed patch needs a new build too.
stamp="$client/build/Release/replayctl-patch.sha256"
patch_sum=$(cat patches/*.patch | sha256sum | cut -d' ' -f1)

has_patched_build() {
  [ "$(cat "$stamp" 2>/dev/null)" = "$patch_sum" ] &&
    node -e "const {KafkaConsumer, Producer} = require('./$client/librdkafka.js');
      const patched = typeof KafkaConsumer.prototype.consumePacked === 'function' &&
        typeof Producer.prototype.produceBatch === 'function';
      process.exit(patched ? 0 : 1)" 2>/dev/null
}

npx --no-install patch-package >/dev/null
if has_patched_build; then exit 0; fi

printf '\033[1m==> %s\033[0m\n' "rebuilding @confluentinc/kafka-javascript with patches/ (about 90 s)" >&2
export CKJS_LINKING=dynamic
[ -f /usr/include/node/node.h ] && export npm_config_nodedir=/usr
# The client's own configure/build scripts: npm puts its bundled node-gyp on their PATH.
(cd "$client" && npm run --silent configure && npm run --silent build) >/dev/null
echo "$patch_sum" > "$stamp"
if ! has_patched_build; then
  echo "the Kafka client addon was rebuilt but still lacks the patch from patches/" >&2
  exit 1
fi
