#!/usr/bin/env bash
# The cost of the audit log on profile reads, and audit verify speed.
#
# For each backend: one database, two servers on it — `arkku serve` (durable,
# group-committed audit) and `arkku-bench serve-without-audit` (same stack,
# audit discarded) — seeded with customers of four channels, then driven one after
# the other by wrk (closed loop, loopback, on the same 2 cores) reading random
# profiles as a phone agent. Then 1M audit entries are appended through the
# real writer and `arkku audit verify` is timed.
#
#   bash bench/audit_cost.sh [customers] [seconds] [connections] [audit_entries]
# Needs: wrk, curl, python3; PostgreSQL at $PG_ADMIN (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-2000}; SECS=${2:-10}; CONNS=${3:-32}; ENTRIES=${4:-1000000}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release -q --features bench --bin arkku --bin arkku-bench
BIN=target/release/arkku
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
unset $(env | grep -o '^ARKKU_[A-Z_]*' || true)

wait_up() { for _ in $(seq 1 100); do curl -sf "http://$1/healthz" >/dev/null && return; sleep 0.1; done; echo "server $1 did not start" >&2; exit 1; }

run_backend() {
  local name=$1 url=$2
  export ARKKU_DATA_DIR=$WORK/$name ARKKU_DATABASE_URL=$url ARKKU_LOG=warn
  ARKKU_LISTEN=127.0.0.1:18080 $BIN serve 2>"$WORK/$name-on.log" &
  local on=$!
  wait_up 127.0.0.1:18080
  ARKKU_LISTEN=127.0.0.1:18081 target/release/arkku-bench serve-without-audit 2>"$WORK/$name-off.log" &
  local off=$!
  wait_up 127.0.0.1:18081
  local svc agent
  svc=$($BIN token --role service --sub bench --purposes support | tail -n1)
  agent=$($BIN token --role agent --sub bench --purposes support --channel phone --ttl 2h | tail -n1)
  python3 - "$CUSTOMERS" "$svc" > "$WORK/$name-ids" <<'PY'
import json, sys, urllib.request, concurrent.futures as cf
n, token = int(sys.argv[1]), sys.argv[2]
def create(i):
    body = json.dumps({"display_name": f"Bench {i}", "contacts": [
        {"channel": "phone", "value": f"+35840{i:07d}"},
        {"channel": "email", "value": f"bench{i}@example.com"},
        {"channel": "sms", "value": f"+35850{i:07d}"},
        {"channel": "chat", "value": f"visitor-{i}"}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:18080/v1/customers", body,
        {"authorization": "Bearer " + token, "content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))["id"]
with cf.ThreadPoolExecutor(16) as ex:
    for cid in ex.map(create, range(n)):
        print(cid)
PY
  for label in on off; do
    local port=18080; [ $label = off ] && port=18081
    IDS=$WORK/$name-ids TOKEN=$agent wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s bench/profile_read.lua \
      "http://127.0.0.1:$port" > "$WORK/$name-$label.wrk"
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name-$label.wrk")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/$name-$label.wrk")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/$name-$label.wrk"); non2xx=${non2xx:-0}
    printf '%-9s audit %-3s  %10s reads/s  p99 %-8s  non-2xx %s\n' "$name" "$label" "$rps" "$p99" "$non2xx"
    eval "RPS_$label=$rps"
  done
  awk -v on="$RPS_on" -v off="$RPS_off" -v n="$name" 'BEGIN { printf "%-9s audit on / off = %.2f\n", n, on / off }'
  kill $on $off; wait $on $off 2>/dev/null || true
  target/release/arkku-bench audit-fill --database "$url" --data-dir "$WORK/$name" \
    --entries "$ENTRIES" --writers 256 2>/dev/null | sed "s/^/$name     /"
  $BIN audit verify 2>&1 >/dev/null | sed "s/^/$name     /"
}

BACKENDS=${BACKENDS:-sqlite postgres}
for b in $BACKENDS; do
  if [ "$b" = sqlite ]; then run_backend sqlite "sqlite://$WORK/sqlite/arkku.db"; continue; fi
DB=arkku_bench_$$
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
run_backend postgres "${PG_ADMIN%/*}/$DB"
psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)" >/dev/null
done
