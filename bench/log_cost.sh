#!/usr/bin/env bash
# What the per-request access line costs on profile reads.
#
# One SQLite database, two `arkku serve` processes on it: one writing an
# access line per request (ARKKU_LOG=info, JSON, to a file, as in a
# container), one with the access lines off (ARKKU_LOG=info,arkku::access=off).
# Seeded with customers of four channels, then driven in turns by wrk
# (closed loop, loopback, on the same cores), swapping which goes first
# every round so that the machine's drift favours neither. For each run:
# reads/s, p99, and the server's CPU µs per request (utime + stime from
# /proc/PID/stat over the run, divided by the requests wrk completed).
#
#   bash bench/log_cost.sh [customers] [seconds] [connections] [rounds]
# Needs: wrk, curl, python3. BIN_DIR (default target/release) holds a release
# `arkku`; set SKIP_BUILD=1 to use it as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-5000}; SECS=${2:-10}; CONNS=${3:-32}; ROUNDS=${4:-4}
BIN_DIR=${BIN_DIR:-target/release}
[ "${SKIP_BUILD:-}" = 1 ] || cargo build --release -q --bin arkku
BIN=$BIN_DIR/arkku
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
unset $(env | grep -o '^ARKKU_[A-Z_]*' || true)
export ARKKU_DATA_DIR=$WORK/data ARKKU_DATABASE_URL=sqlite://$WORK/data/arkku.db ARKKU_LOG_FORMAT=json
TICKS=$(getconf CLK_TCK)

wait_up() { for _ in $(seq 1 100); do curl -sf "http://$1/healthz" >/dev/null && return; sleep 0.1; done; echo "server $1 did not start" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

ARKKU_LOG=info ARKKU_LISTEN=127.0.0.1:18090 $BIN serve 2>"$WORK/on.log" &
ON=$!
wait_up 127.0.0.1:18090
ARKKU_LOG=info,arkku::access=off ARKKU_LISTEN=127.0.0.1:18091 $BIN serve 2>"$WORK/off.log" &
OFF=$!
wait_up 127.0.0.1:18091
SVC=$($BIN token --role service --sub bench --purposes support 2>/dev/null | tail -n1)
AGENT=$($BIN token --role agent --sub bench --purposes support --channel phone --ttl 2h 2>/dev/null | tail -n1)
python3 - "$CUSTOMERS" "$SVC" > "$WORK/ids" <<'PY'
import json, sys, urllib.request, concurrent.futures as cf
n, token = int(sys.argv[1]), sys.argv[2]
def create(i):
    body = json.dumps({"display_name": f"Bench {i}", "contacts": [
        {"channel": "phone", "value": f"+35840{i:07d}"},
        {"channel": "email", "value": f"bench{i}@example.com"},
        {"channel": "sms", "value": f"+35850{i:07d}"},
        {"channel": "chat", "value": f"visitor-{i}"}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:18091/v1/customers", body,
        {"authorization": "Bearer " + token, "content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))["id"]
with cf.ThreadPoolExecutor(16) as ex:
    for cid in ex.map(create, range(n)):
        print(cid)
PY

drive() { # label pid port
  local before after reqs
  before=$(cpu_ticks "$2")
  IDS=$WORK/ids TOKEN=$AGENT wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s bench/profile_read.lua \
    "http://127.0.0.1:$3" > "$WORK/$1.wrk"
  after=$(cpu_ticks "$2")
  reqs=$(awk '/requests in/ {print $1}' "$WORK/$1.wrk")
  awk -v l="$1" -v r="$reqs" -v t=$((after - before)) -v hz="$TICKS" -v s="$SECS" \
    -v p99="$(awk '$1=="99%" {print $2}' "$WORK/$1.wrk")" \
    -v bad="$(awk '/Non-2xx/ {print $NF}' "$WORK/$1.wrk")" \
    'BEGIN { printf "%-4s %8.0f reads/s  p99 %-8s  %5.0f CPU us/request  non-2xx %s\n", l, r / s, p99, t / hz * 1e6 / r, (bad == "" ? 0 : bad) }'
}

# Warm both (page cache, allocator) before measuring.
IDS=$WORK/ids TOKEN=$AGENT wrk -t1 -c"$CONNS" -d3s -s bench/profile_read.lua http://127.0.0.1:18090 >/dev/null
IDS=$WORK/ids TOKEN=$AGENT wrk -t1 -c"$CONNS" -d3s -s bench/profile_read.lua http://127.0.0.1:18091 >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  if [ $((round % 2)) = 1 ]; then drive on $ON 18090; drive off $OFF 18091
  else drive off $OFF 18091; drive on $ON 18090; fi
done
lines=$(grep -c '"target":"arkku::access"' "$WORK/on.log" || true)
off_lines=$(grep -c '"target":"arkku::access"' "$WORK/off.log" || true)
echo "access lines written: on $lines, off $off_lines"
