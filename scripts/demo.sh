#!/usr/bin/env bash
# The README's first command: sets everything up on a fresh machine, starts the local stack,
# seeds a realistic delivery_log, tours every command, and replays one busy webhook's last day
# of events to a local receiver, end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

r() { printf '\n\033[1;36m$ replayctl %s\033[0m\n' "$*" >&2; node bin/run.js "$@"; }
export REPLAYCTL_BROKERS=127.0.0.1:9092
export REPLAYCTL_MYSQL_URL=mysql://root@127.0.0.1:3306/replayctl_demo
export REPLAYCTL_ALLOW_PRIVATE_TARGETS=1   # the demo's webhook receiver listens on 127.0.0.1

r dev up
r dev status
node bin/run.js topic describe delivery_log --no-configs --json >/dev/null 2>&1 ||
  r dev seed --events 100000 --webhooks 2000
r topic list
r topic describe delivery_log
r cluster status
r cluster plan --brokers 3 --disk 2TiB --partitions 12 --replication 3 --rate 5
r group reset-offsets demo-archiver --topic delivery_log --to-time 1d
r group list
r group lag demo-archiver
r group reset-offsets demo-archiver --topic delivery_log --to-time 2h --dry-run

hook=$(node bin/run.js log read -t delivery_log --max 2000 --json | node -e '
  const {records} = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const counts = {};
  for (const record of records) counts[record.key] = (counts[record.key] || 0) + 1;
  console.log(Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0]);')
r log partition-for "$hook" --partitions 12
r log partition-for "$hook" --topic delivery_log
r log seek --topic delivery_log --since 1d --until 12h --key "$hook"
r log read --topic delivery_log --key "$hook" --since 1d --max 3 --format table
r log search --topic delivery_log --key "$hook" --since 1d --value-contains favorite_events --max 3 --format table
event=$(node bin/run.js log read -t delivery_log --from-offset -1 --json | node -e '
  const {records} = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log(records.map((record) => JSON.parse(record.value).event_id).find(Boolean));')
r log search --topic delivery_log --field "event_id=$event" --since 1d --format table
# Something to measure: 500 small events (their own keys, so the replay below is unchanged) written while rates watches.
(sleep 2; node -e 'for (let i = 0; i < 500; i++)
    console.log(JSON.stringify({webhook_id: `rates-demo-${i % 50}`, ts: Date.now()}))' |
  node bin/run.js log produce --topic delivery_log --timestamp-field ts >/dev/null) &
r topic rates delivery_log --interval 6s
wait $!
r topic rates delivery_log --history 24h --bucket 2h
printf '{"webhook_id":"%s","event":"hello","ts":%s}\n' "$hook" "$(date +%s%3N)" |
  r log produce --topic delivery_log --timestamp-field ts
r topic create demo_compacted --partitions 3 --compact --if-not-exists

# The HTTP-to-Kafka front: events POSTed as NDJSON, answered 200 once Kafka acknowledged them all.
# Writers present a bearer token scoped to the keys they may write (here: ingest-demo*); the
# token reaches the server through the environment, never its argv.
ingest_token=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
REPLAYCTL_INGEST_TOKENS='[{"token":"'"$ingest_token"'","keys":["ingest-demo*"],"topics":["delivery_log"]}]' \
  node bin/run.js ingest serve --topic delivery_log --port 8090 2>/tmp/replayctl-demo-ingest.log &
ingest=$!
until curl -sf http://127.0.0.1:8090/healthz >/dev/null; do sleep 0.2; done
printf '\n\033[1;36m$ curl -X POST -H "Authorization: Bearer $token" http://127.0.0.1:8090/events %s\033[0m\n' \
  '--data-binary @events.ndjson' >&2
printf '{"webhook_id":"ingest-demo","event":"%s","ts":%s}\n' a "$(date +%s%3N)" b "$(date +%s%3N)" |
  curl -s -X POST -H "Authorization: Bearer $ingest_token" -H 'content-type: application/x-ndjson' \
    -H 'Idempotency-Key: demo-1' --data-binary @- http://127.0.0.1:8090/events; echo
printf '\n\033[1;36m$ curl ... (the same token, a key outside its scope: 403, nothing written)\033[0m\n' >&2
printf '{"webhook_id":"someone-else","event":"c"}\n' |
  curl -s -X POST -H "Authorization: Bearer $ingest_token" -H 'content-type: application/x-ndjson' \
    --data-binary @- http://127.0.0.1:8090/events; echo
kill -TERM $ingest; wait $ingest

# Back up one topic, restore it elsewhere, verify the copy.
backup_dir=$(mktemp -d)/delivery_log
restored=delivery_log_restored_$(date +%s)
r topic backup delivery_log --to "$backup_dir" --since 1d
r topic verify "$backup_dir"
r topic restore "$backup_dir" --topic "$restored"
r topic verify "$backup_dir" --topic "$restored"

r db migrate
r db status
rm -f /tmp/replayctl-demo-receiver.url
secret=$(node -e 'console.log("whsec_" + require("crypto").randomBytes(32).toString("base64"))')
node --import tsx scripts/demo-receiver.ts /tmp/replayctl-demo-receiver.url "$secret" \
  >/tmp/replayctl-demo-receiver.out &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s /tmp/replayctl-demo-receiver.url ] && break; sleep 0.1; done
url=$(cat /tmp/replayctl-demo-receiver.url)
node bin/run.js webhook remove "$hook" >/dev/null 2>&1 || true
# On stdin, not in argv: the process list and shell history never show it.
printf '%s\n' "$secret" | r webhook add "$hook" --url "$url" --secret -
r webhook check "$hook"
r webhook list
job=$(node bin/run.js replay submit --webhook-id "$hook" --from 1d --to now --json |
  node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).id)')
echo "submitted replay job $job" >&2
r replay worker --once
r replay status "$job"
r replay list --webhook-id "$hook"

# The same replay over HTTP, as a customer of the Replay API sends it (Twitter's shapes).
export REPLAYCTL_API_TOKENS='[{"token":"demo-token-0123456789abcdef","webhooks":"*"}]'
node bin/run.js api serve --port 8089 2>/tmp/replayctl-demo-api.log &
api=$!
trap 'kill $receiver $api 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:8089/healthz >/dev/null; do sleep 0.2; done
auth='Authorization: Bearer demo-token-0123456789abcdef'
replay_api=http://127.0.0.1:8089/1.1/account_activity/replay
printf '\n\033[1;36m$ curl -X POST .../replay/webhooks/%s/subscriptions/all.json?from_date=...&to_date=...\033[0m\n' \
  "$hook" >&2
range="from_date=$(date -u -d '1 day ago' +%Y%m%d%H%M)&to_date=$(date -u +%Y%m%d%H%M)"
curl -s -X POST -H "$auth" "$replay_api/webhooks/$hook/subscriptions/all.json?$range" |
  tee /tmp/replayctl-demo-job.json; echo
r replay worker --once
api_job=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("/tmp/replayctl-demo-job.json", "utf8")).job_id)')
curl -s -H "$auth" "$replay_api/jobs/$api_job.json"; echo
kill -TERM $api; wait $api

# Schemas, when Java can run the schema registry (Apicurio Registry, Confluent's API): an Avro
# schema registered with curl, events written in the Confluent wire format with it, read back decoded.
if command -v java >/dev/null; then
  r dev up --schema-registry
  registry=http://127.0.0.1:8085/apis/ccompat/v7
  printf '\n\033[1;36m$ curl -X POST %s/subjects/demo_signups-value/versions --data @signup.avsc.json\033[0m\n' \
    "$registry" >&2
  node -e 'console.log(JSON.stringify({schema: JSON.stringify({type: "record", name: "Signup", fields: [
      {name: "user_id", type: "string"},
      {name: "plan", type: {type: "enum", name: "Plan", symbols: ["FREE", "PRO", "ENTERPRISE"]}},
      {name: "signed_up_ms", type: "long"},
      {name: "referrer", type: ["null", "string"], default: null}]})}))' |
    curl -s -X POST -H 'content-type: application/vnd.schemaregistry.v1+json' --data-binary @- \
      "$registry/subjects/demo_signups-value/versions"; echo
  r schema list
  r schema get demo_signups-value
  signups=demo_signups_$(date +%s)
  r topic create "$signups" --partitions 3
  # Avro's JSON encoding, as `log read --decode avro` prints it: a union's value as {"branch": value}.
  now=$(date +%s%3N)
  printf '%s\n' \
    '{"user_id":"u-1","plan":"FREE","signed_up_ms":'$((now - 3000))',"referrer":null}' \
    '{"user_id":"u-2","plan":"PRO","signed_up_ms":'$((now - 2000))',"referrer":{"string":"newsletter"}}' \
    '{"user_id":"u-3","plan":"ENTERPRISE","signed_up_ms":'$((now - 1000))',"referrer":{"string":"u-1"}}' |
    r log produce --topic "$signups" --key-field user_id --timestamp-field signed_up_ms \
      --value-subject demo_signups-value
  r log read --topic "$signups" --decode avro --format table
fi

# Resetting a Kafka Streams application, when Java and Maven can build the test suite's small one
# (scripts/streams-app.sh: built once, shared with test/streams-reset.test.ts).
if command -v java >/dev/null && command -v mvn >/dev/null; then
  printf '\n\033[1;36m$ bash scripts/streams-app.sh  # mvn package, once\033[0m\n' >&2
  streams=$(bash scripts/streams-app.sh)
  clicks=demo_clicks_$(date +%s)
  counter=demo-counter-$(date +%s)
  r topic create "$clicks" --partitions 3
  node -e 'for (let i = 0; i < 300; i++) console.log(JSON.stringify({user: `u-${i % 40}`, page: `/p/${i % 7}`}))' |
    r log produce --topic "$clicks" --key-field user
  state=$(mktemp -d)
  java -Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$streams/target/classes:$streams/target/libs/*" replayctl.fixture.CountApp \
    "$REPLAYCTL_BROKERS" "$state" "$clicks" "${clicks}_counts" "$counter" >"$state/app.log" 2>&1 &
  streams_app=$!
  trap 'kill $receiver $streams_app 2>/dev/null || true' EXIT
  # group lag --json until it holds: until the application has read and committed all of its input,
  # then until the stopped application has left its group (a reset is refused while it has members).
  group_until() {
    for _ in $(seq 180); do
      node bin/run.js group lag "$counter" --topic "$clicks" --json 2>/dev/null |
        node -e 'const {partitions = [], members = [null]} = JSON.parse(require("fs").readFileSync(0, "utf8"));
          process.exit(('"$1"') ? 0 : 1)' && return
      sleep 1
    done
  }
  group_until 'partitions.length === 3 && partitions.every((p) => p.lag === 0)'
  r group lag "$counter"
  kill -TERM $streams_app; wait $streams_app || true
  trap 'kill $receiver 2>/dev/null || true' EXIT
  group_until 'members.length === 0'
  r group reset-app "$counter" --input-topic "$clicks" --to-earliest --dry-run
  r group reset-app "$counter" --input-topic "$clicks" --to-earliest --yes
  r group lag "$counter" --topic "$clicks"
  rm -rf "$state"
fi

# Two datacenters, when Java can run Kafka Connect: a stack of its own (own state directory and
# ports, so the one above is left as it is) with dc2 and MirrorMaker 2 mirroring dc1's delivery_log
# into dc2 as dc1.delivery_log; a replay in dc2 reads the mirrored copy and dc2's own as one.
if command -v java >/dev/null; then
  dcs=$(mktemp -d)
  dc() { REPLAYCTL_STATE=$dcs/state REPLAYCTL_KAFKA_HEAP=384m REPLAYCTL_CONNECT_URL=http://127.0.0.1:8583 r "$@"; }
  trap 'kill $receiver 2>/dev/null || true; REPLAYCTL_STATE=$dcs/state node bin/run.js dev down --purge >/dev/null' EXIT
  dc dev up --port 9500 --connect-port 8583 --datacenters 2
  dc connect status
  for port in 9500 9600; do
    # One partition: a new topic of several, most of them empty before --from, would earn the job a
    # note that the partition count may have grown during the range.
    dc topic create delivery_log --partitions 1 --brokers 127.0.0.1:$port
    node -e 'const [hook, dc] = process.argv.slice(1); const now = Date.now();
      for (let i = 0; i < 3; i++) {
        const ts = now - 60000 + i * 1000 + (dc === "dc2" ? 500 : 0);
        console.log(JSON.stringify({webhook_id: hook, event: `${dc}-${i}`, ts}));
      }' \
      "$hook" "$([ $port = 9500 ] && echo dc1 || echo dc2)" |
      dc log produce --topic delivery_log --timestamp-field ts --brokers 127.0.0.1:$port
  done
  for _ in $(seq 120); do
    mirrored=$(node bin/run.js log read --topic dc1.delivery_log --brokers 127.0.0.1:9600 2>/dev/null | wc -l)
    [ "$mirrored" -ge 3 ] && break
    sleep 1
  done
  dc log read --topic dc1.delivery_log --brokers 127.0.0.1:9600 --format table
  dc replay submit --webhook-id "$hook" --from 10m --to now --brokers 127.0.0.1:9600 \
    --topic dc1.delivery_log --topic delivery_log
  dc replay worker --once --brokers 127.0.0.1:9600
  dc connect pause mirror-dc1-to-dc2
  dc connect status
  dc connect resume mirror-dc1-to-dc2
  dc connect restart mirror-dc1-to-dc2 --failed-only
  dc connect status
  dc dev down --purge
  trap 'kill $receiver 2>/dev/null || true' EXIT
fi
kill -TERM $receiver; wait $receiver || true
trap - EXIT
printf '\n\033[1mThe receiver got:\033[0m %s\n' "$(cat /tmp/replayctl-demo-receiver.out)"
