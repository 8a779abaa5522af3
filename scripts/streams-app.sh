#!/usr/bin/env bash
# Builds the small Kafka Streams application (test/fixtures/streams-app: counts its input per
# bucket, so it owns a repartition and a changelog topic) with mvn, once per content: into a
# directory named for the hash of its pom and source, so reruns, the tests and the demo share one
# build. Prints that directory; run it as
#   java -cp "$dir/target/classes:$dir/target/libs/*" replayctl.fixture.CountApp ...
set -euo pipefail
cd "$(dirname "$0")/.."
fixture=test/fixtures/streams-app
source=$fixture/src/main/java/replayctl/fixture/CountApp.java
dir=${TMPDIR:-/tmp}/replayctl-streams-app-$(cat $fixture/pom.xml $source | sha256sum | cut -c1-16)
if [ ! -e "$dir/.complete" ]; then
  building=$dir.building-$$
  rm -rf "$building" && cp -r $fixture "$building"
  mvn -B -q -f "$building/pom.xml" package dependency:copy-dependencies \
    -DoutputDirectory="$building/target/libs" -DincludeScope=runtime >&2
  date -u +%FT%TZ >"$building/.complete"
  rm -rf "$dir" && mv "$building" "$dir"
fi
echo "$dir"
