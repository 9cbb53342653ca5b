#!/usr/bin/env bash
# A three-node fleet on one PostgreSQL: memory and file handles of each node
# before, during and after 100 000 mixed requests and during 2 000
# concurrent connections, then the fleet's audit-append and profile-read
# ceilings with the CPU each process took (docs/PERFORMANCE.md "Fleet:
# memory and handles", docs/SCALING.md "Where one PostgreSQL stops").
#
#   bash bench/fleet.sh [customers] [mixed_requests] [connections] [ceiling_seconds]
#
# Three release `arkku serve` processes share one data dir's root.key,
# issuer.key and audit.key and one fresh database; wrk (one process per
# node, loopback, on the same cores) drives them. A sampler reads each
# node's VmRSS (/proc/PID/status) and open handles (/proc/PID/fd) every
# half second into $OUT/samples.csv. CPU is read from /proc/PID/stat:
# the nodes, wrk, and PostgreSQL (this database's backends plus the
# server's own processes: WAL writer, checkpointer, …).
# Needs: wrk, curl, psql, python3; PostgreSQL at $PG_ADMIN
# (default postgres://postgres@127.0.0.1:5432/test); $OUT (default
# ./fleet-out) keeps the samples, wrk outputs and node logs.
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-10000}; MIXED=${2:-100000}; CONNS=${3:-2000}; SECS=${4:-15}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
OUT=${OUT:-$PWD/fleet-out}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q --bin arkku
BIN=${FLEET_BIN:-$PWD/target/release/arkku}
LUA=$PWD/bench/fleet_mixed.lua
rm -rf "$OUT"; mkdir -p "$OUT"
WORK=$(mktemp -d)
DB=arkku_fleet_$$
unset $(env | grep -o '^ARKKU_[A-Z_]*' || true)
ulimit -n "$(ulimit -Hn)"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
export ARKKU_DATABASE_URL="${PG_ADMIN%/*}/$DB" ARKKU_DATA_DIR=$WORK/data ARKKU_LOG=warn
# Every client is 127.0.0.1: no per-peer cap, as behind a load balancer.
export ARKKU_MAX_CONNECTIONS_PER_PEER=0 ARKKU_RETENTION_INTERVAL=off ARKKU_AUDIT_VERIFY_INTERVAL=off
PORTS=(18181 18182 18183)
PIDS=()
wait_up() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done; echo "node on $1 did not start" >&2; exit 1; }
# The first node makes the keys and the schema; the others find them.
for i in 0 1 2; do
  ARKKU_LISTEN=127.0.0.1:${PORTS[$i]} "$BIN" serve 2>"$OUT/node$i.log" &
  PIDS+=($!)
  wait_up "${PORTS[$i]}"
done
echo "nodes: ${PIDS[*]} on ${PORTS[*]}; database $DB"

SERVICE=$("$BIN" token --role service --sub fleet-bench --purposes support --ttl 4h | tail -n1)
AGENT=$("$BIN" token --role agent --sub fleet-bench --purposes support --channel phone --ttl 4h | tail -n1)
COMPLIANCE=$("$BIN" token --role compliance --sub fleet-bench --purposes dsr --ttl 4h | tail -n1)
export SERVICE AGENT COMPLIANCE

# --- sampling -----------------------------------------------------------------
echo idle-start > "$WORK/phase"
echo "t,phase,node,pid,rss_kb,fds" > "$OUT/samples.csv"
sampler() {
  local t0; t0=$(date +%s.%N)
  while :; do
    local t phase; t=$(date +%s.%N); phase=$(cat "$WORK/phase")
    for i in 0 1 2; do
      local pid=${PIDS[$i]} rss fds
      rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
      echo "$(awk -v a="$t" -v b="$t0" 'BEGIN { printf "%.1f", a - b }'),$phase,$i,$pid,$rss,$fds" >> "$OUT/samples.csv"
    done
    sleep 0.5
  done
}
sampler &
SAMPLER=$!

# CPU ticks (utime + stime) of a set of processes.
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $s; }
# PostgreSQL's processes for this run: this database's backends and the
# server's auxiliary processes (not other databases' backends).
pg_pids() {
  local p cmd
  for p in $(pgrep -x postgres); do
    cmd=$({ tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null || true)
    [ -n "$cmd" ] || continue
    case "$cmd" in
      *" $DB "*) echo "$p" ;;
      *"127.0.0.1("*|*"[local]"*) ;;
      *) echo "$p" ;;
    esac
  done
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)

# drive PHASE MIX SECONDS CONNS_PER_NODE [STOP_AFTER_PER_NODE] [NODES]: one wrk per node.
drive() {
  local phase=$1 mix=$2 secs=$3 conns=$4 stop=${5:-0} nodes=${6:-0 1 2}
  echo "$phase" > "$WORK/phase"
  local w=() i
  # PostgreSQL's processes come and go (pool connections are recycled):
  # each one's CPU is its last reading minus its first (0 if it is new).
  declare -A PG0=() PGL=()
  local p
  for p in $(pg_pids); do PG0[$p]=$(ticks "$p"); PGL[$p]=${PG0[$p]}; done
  pg_read() {
    local q v
    for q in $(pg_pids); do
      v=$(awk '{print $14 + $15}' "/proc/$q/stat" 2>/dev/null) && [ -n "$v" ] && PGL[$q]=$v
    done
    return 0
  }
  local n0 b0 t0 t1= n1= b1=
  n0=$(ticks "${PIDS[@]}"); b0=$(busy_ticks); t0=$(date +%s.%N)
  for i in $nodes; do
    rm -f "$WORK/done$i"
    IDS=$WORK/ids MIX=$mix NODE=$i STOP_AFTER=$stop DONE=$WORK/done$i \
      wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$LUA" "http://127.0.0.1:${PORTS[$i]}" \
      > "$OUT/$phase-node$i.wrk" 2>&1 &
    w+=($!)
  done
  # wrk's own CPU, sampled just before each exits.
  local wt=0
  sleep 1
  while :; do
    local alive=0 p
    for p in "${w[@]}"; do [ -d "/proc/$p" ] && alive=1; done
    [ $alive = 1 ] || break
    if [ "$stop" -gt 0 ]; then
      local all=1
      for i in $nodes; do [ -e "$WORK/done$i" ] || all=0; done
      # Every node has its count: wrk prints its figures on SIGINT.
      if [ $all = 1 ] && [ -z "$t1" ]; then
        t1=$(date +%s.%N); n1=$(ticks "${PIDS[@]}"); b1=$(busy_ticks); pg_read
        kill -INT "${w[@]}" 2>/dev/null || true
      fi
    fi
    local now; now=$(ticks "${w[@]}"); [ "$now" -gt "$wt" ] && wt=$now
    pg_read
    sleep 0.2
  done
  wait "${w[@]}" || true
  # A count-bound drive was read when the last node reached its count.
  if [ -z "$t1" ]; then
    t1=$(date +%s.%N); n1=$(ticks "${PIDS[@]}"); b1=$(busy_ticks); pg_read
  fi
  local pt=0
  for p in "${!PGL[@]}"; do pt=$((pt + PGL[$p] - ${PG0[$p]:-0})); done
  python3 - "$phase" "$OUT" "$nodes" "$((n1 - n0))" "$pt" "$wt" "$((b1 - b0))" "$HZ" "$t0" "$t1" <<'PY' | tee -a "$OUT/summary.txt"
import re, sys
phase, out, nodes, nt, pt, wt, bt, hz, t0, t1 = sys.argv[1:]
wall = float(t1) - float(t0)
rps = req = non2xx = errs = 0.0
p99 = []
for i in nodes.split():
    text = open(f"{out}/{phase}-node{i}.wrk").read()
    m = re.search(r"(\d+) requests in", text); req += int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text); rps += float(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text); non2xx += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errs += sum(map(int, m.groups())) if m else 0
    m = re.search(r"^\s+99%\s+(\S+)", text, re.M); p99.append(m.group(1) if m else "?")
hz = float(hz)
cores = lambda t: float(t) / hz / wall
nodes_c, pg_c, wrk_c, busy_c = cores(nt), cores(pt), cores(wt), cores(bt)
ours = nodes_c + pg_c + wrk_c
rps = req / wall
print(f"{phase}: {int(req)} requests in {wall:.1f} s = {rps:.0f}/s (sum of nodes), "
      f"non-2xx {int(non2xx)}, socket errors {int(errs)}, p99 per node {' / '.join(p99)}; "
      f"CPU cores: nodes {nodes_c:.2f}, postgres {pg_c:.2f}, wrk {wrk_c:.2f}, "
      f"machine busy {busy_c:.2f} of 2; postgres share of ours {pg_c / ours * 100 if ours else 0:.0f} %")
PY
}

idle() { echo "$1" > "$WORK/phase"; sleep "$2"; }

# --- the run -------------------------------------------------------------------
idle idle-start 3
# Seed: creates only, a third through each node.
drive seed create 600 16 $(( (CUSTOMERS + 2) / 3 ))
psql "$ARKKU_DATABASE_URL" -Atc "SELECT id FROM customers" > "$WORK/ids"
echo "seeded $(wc -l < "$WORK/ids") customers"
idle before 5
drive mixed mixed 600 16 $(( (MIXED + 2) / 3 ))
idle after-mixed 10
drive "conn$CONNS" read 20 $(( (CONNS + 2) / 3 ))
idle after-conn 10
drive ceiling-append consent "$SECS" 32
drive ceiling-read read "$SECS" 32
drive ceiling-append-one-node consent "$SECS" 96 0 0
idle end 2
kill $SAMPLER; wait $SAMPLER 2>/dev/null || true

# --- per phase and node: first, max and last RSS and handles -------------------
python3 - "$OUT/samples.csv" <<'PY' | tee -a "$OUT/summary.txt"
import csv, sys
from collections import OrderedDict
rows = list(csv.DictReader(open(sys.argv[1])))
phases = OrderedDict()
for r in rows:
    phases.setdefault(r["phase"], {}).setdefault(r["node"], []).append(r)
print(f"{'phase':<26}{'node':>5}{'RSS MB first/max/last':>26}{'handles first/max/last':>26}")
for phase, nodes in phases.items():
    for node, rs in sorted(nodes.items()):
        rss = [int(r["rss_kb"]) / 1024 for r in rs]
        fds = [int(r["fds"]) for r in rs]
        print(f"{phase:<26}{node:>5}{f'{rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f}':>26}"
              f"{f'{fds[0]} / {max(fds)} / {fds[-1]}':>26}")
PY
for i in 0 1 2; do kill -TERM "${PIDS[$i]}"; done
for i in 0 1 2; do wait "${PIDS[$i]}" || echo "node $i exited with $?"; done
"$BIN" audit verify > "$OUT/verify.json" && echo "audit verify: ok ($(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["entries_checked"], "entries")' "$OUT/verify.json"))" | tee -a "$OUT/summary.txt"
