#!/usr/bin/env bash
# Brings a fresh Debian machine to a working replayctl: system packages, the native Kafka client
# built against them (no downloads beyond the npm registry, Debian and Maven Central), the
# TypeScript build and the oclif manifest. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# librdkafka's dependencies as system libraries (the client is linked dynamically against them),
# ccache (below), Java and Maven for Apache Kafka, kcat for the benchmarks, MariaDB for the job queue.
packages=(zlib1g-dev libssl-dev libzstd-dev libcurl4-openssl-dev libsasl2-dev liblz4-dev
          build-essential ccache python3 openjdk-17-jre-headless maven kcat mariadb-server)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
# A machine that already has a JDK 17+ or a MariaDB/MySQL server does not need Debian's.
if command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
  missing=("${missing[@]/openjdk-17-jre-headless}")
fi
if command -v mariadbd >/dev/null || command -v mysqld >/dev/null || [ -x /usr/sbin/mariadbd ]; then
  missing=("${missing[@]/mariadb-server}")
fi
read -r -a missing <<< "${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Every build of the Kafka client's C and C++ goes through ccache: the client is built twice per
# install (its own install script, then scripts/patched-client.sh from the patched sources), and
# test/install.test.ts installs the packed package again elsewhere. Paths under the install are made
# relative (CCACHE_BASEDIR) and the working directory is left out of the hash (CCACHE_NOHASHDIR), so
# those later builds reuse these compilations wherever they run.
if [ -d /usr/lib/ccache ]; then
  export PATH="/usr/lib/ccache:$PATH" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
fi

# The Kafka client: CKJS_LINKING=dynamic builds the bundled librdkafka against the libraries
# above instead of downloading OpenSSL, zstd and curl; nodedir points node-gyp at the headers
# Debian's nodejs ships so it does not try to download them.
if [ ! -f node_modules/@confluentinc/kafka-javascript/build/Release/confluent-kafka-javascript.node ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (builds librdkafka, about 90 s)"
  export CKJS_LINKING=dynamic
  [ -f /usr/include/node/node.h ] && export npm_config_nodedir=/usr
  npm ci --no-audit --no-fund
fi

# The client's addon is built by its own install script before patch-package (postinstall) patches
# its sources: rebuild it from the patched sources when needed, and check that it is in place.
say "checking the patched Kafka client (patches/)"
bash scripts/patched-client.sh

say "building"
npm run -s build >/dev/null
