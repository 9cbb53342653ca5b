#!/usr/bin/env bash
# Disk bytes `arkku serve` writes per consent grant on SQLite.
#
# Runs arkku-bench's consent_grant scenario and, once its load has run for
# 3 s, reads the serving process's write_bytes (/proc/PID/io: what it sent to
# the block device: WAL frames, checkpoints, syncs) and the ledger's row
# count, and again 10 s later. Prints grants per second and KiB per grant.
# Give a directory holding a release `arkku` and `arkku-bench` built with
# `--features bench`, to compare builds alternately.
#
#   bash bench/grant_writes.sh [bin_dir] [customers]
# Needs: sqlite3, python3, pgrep (Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release}; CUSTOMERS=${2:-100000}
BIN=$(cd "$BIN" && pwd)
TXT=$(mktemp)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$TXT"' EXIT
"$BIN/arkku-bench" --customers "$CUSTOMERS" --seconds 20 --scenarios consent_grant >"$TXT" 2>&1 &
BENCH=$!
until grep -q "consent_grant: arkku" "$TXT"; do
  kill -0 "$BENCH" 2>/dev/null || { cat "$TXT" >&2; exit 1; }
  sleep 0.2
done
# The harness works in $TMPDIR/arkku-bench-<its pid>.
DB=${TMPDIR:-/tmp}/arkku-bench-$BENCH/main.db
PID=$(pgrep -n -f "$BIN/arkku serve")
count() { sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM consents"; }
written() { awk '/^write_bytes/ {print $2}' "/proc/$PID/io"; }
sleep 3
w0=$(written); c0=$(count); t0=$(date +%s.%N)
sleep 10
w1=$(written); c1=$(count); t1=$(date +%s.%N)
wait "$BENCH"
python3 -c "
g = $c1 - $c0; w = $w1 - $w0; t = $t1 - $t0
print(f'{g} grants in {t:.1f} s = {g / t:.0f}/s; {w / 2**20:.1f} MiB written = {w / g / 1024:.2f} KiB per grant')"
