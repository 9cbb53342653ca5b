#!/usr/bin/env bash
# Key rotation speed: seeds N customers with one phone data key each (bulk
# inserts through the store and keyring, `arkku-bench rotate-seed`), then times
# `arkku keys rotate --channel phone` on them, on SQLite and PostgreSQL.
#
#   bash bench/rotate.sh [keys] [batch]
#   BIN_DIR=path/to/release bash bench/rotate.sh    # a build of your choosing
# Needs: psql; PostgreSQL at $PG_ADMIN (default postgres://postgres@127.0.0.1:5432/test).
# BACKENDS="sqlite" runs SQLite only.
#
# No serve runs here, so the grace period is short (it only waits for
# running processes to learn of the new version); `work` in the output is
# the rewrap time without that wait.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${1:-100000}; BATCH=${2:-1000}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
# BIN_DIR: run the arkku and arkku-bench found there instead of building them
# (to compare two builds in one sitting).
if [ -n "${BIN_DIR:-}" ]; then
  BIN_DIR=$(cd "$BIN_DIR" && pwd)
else
  cargo build --release -q --features bench --bin arkku --bin arkku-bench
  BIN_DIR=target/release
fi
BIN=$BIN_DIR/arkku
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
unset $(env | grep -o '^ARKKU_[A-Z_]*' || true)

run_backend() {
  local name=$1 url=$2
  export ARKKU_DATA_DIR=$WORK/$name ARKKU_DATABASE_URL=$url ARKKU_LOG=warn
  export ARKKU_KEY_REFRESH=100ms ARKKU_ROTATE_GRACE=200ms ARKKU_ROTATE_BATCH=$BATCH
  "$BIN_DIR/arkku-bench" rotate-seed "$KEYS" phone | sed "s/^/$name  /"
  local t0 t1
  t0=$(date +%s.%N)
  $BIN keys rotate --channel phone | sed "s/^/$name  /"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$name" -v k="$KEYS" \
    'BEGIN { printf "%s  arkku keys rotate --channel phone: %.2f s wall clock (process start to exit), %.0f keys/s\n", n, b - a, k / (b - a) }'
  $BIN keys status | awk -v n="$name" '$1 == "phone" { print n "  status: " $0 }'
}

BACKENDS=${BACKENDS:-sqlite postgres}
for b in $BACKENDS; do
  if [ "$b" = sqlite ]; then run_backend sqlite "sqlite://$WORK/sqlite/arkku.db"; continue; fi
  DB=arkku_rotate_bench_$$
  psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
  run_backend postgres "${PG_ADMIN%/*}/$DB"
  psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)" >/dev/null
done
