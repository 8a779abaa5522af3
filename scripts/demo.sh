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
node bin/run.js topic describe delivery_log --no-configs --json >/dev/null 2>&1 || r dev seed --events 100000 --webhooks 2000
r topic list
r topic describe delivery_log

hook=$(node bin/run.js log read -t delivery_log --max 2000 --json | node -e '
  const {records} = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const counts = {};
  for (const record of records) counts[record.key] = (counts[record.key] || 0) + 1;
  console.log(Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0]);')
r log partition-for "$hook" --partitions 12
r log partition-for "$hook" --topic delivery_log
r log seek --topic delivery_log --since 1d --until 12h --key "$hook"
r log read --topic delivery_log --key "$hook" --since 1d --max 3 --format table
printf '{"webhook_id":"%s","event":"hello","ts":%s}\n' "$hook" "$(date +%s%3N)" | r log produce --topic delivery_log --timestamp-field ts
r topic create demo_compacted --partitions 3 --compact --if-not-exists

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
node --import tsx scripts/demo-receiver.ts /tmp/replayctl-demo-receiver.url demo-secret > /tmp/replayctl-demo-receiver.out &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s /tmp/replayctl-demo-receiver.url ] && break; sleep 0.1; done
url=$(cat /tmp/replayctl-demo-receiver.url)
node bin/run.js webhook remove "$hook" >/dev/null 2>&1 || true
r webhook add "$hook" --url "$url" --secret demo-secret
r webhook check "$hook"
r webhook list
job=$(node bin/run.js replay submit --webhook-id "$hook" --from 1d --to now --json | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).id)')
echo "submitted replay job $job" >&2
r replay worker --once
r replay status "$job"
r replay list --webhook-id "$hook"
kill -TERM $receiver; wait $receiver || true
trap - EXIT
printf '\n\033[1mThe receiver got:\033[0m %s\n' "$(cat /tmp/replayctl-demo-receiver.out)"
