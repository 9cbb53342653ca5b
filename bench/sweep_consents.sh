#!/usr/bin/env bash
# The retention sweep with lapsed consent events: seeds the harness's sweep
# database (`arkku-bench sweep-seed`: R expired contact points on R/4
# customers), adds two lapsed cross_channel events (a grant, then its
# withdrawal, in 1970) per customer, and runs `arkku retention run` once.
# Prints the sweep's own clock per part (milliseconds), on SQLite and
# PostgreSQL. CONSENTS=no leaves the events out: the harness's
# `retention_sweep`, part by part.
#
#   bash bench/sweep_consents.sh [records]
#   BIN_DIR=path/to/release bash bench/sweep_consents.sh    # a build of your choosing
#   CONSENTS=no BIN_DIR=… BACKENDS=postgres bash bench/sweep_consents.sh
# Needs: sqlite3, psql; PostgreSQL at $PG_ADMIN (default
# postgres://postgres@127.0.0.1:5432/test). BACKENDS="sqlite" runs SQLite only.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-300000}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
if [ -n "${BIN_DIR:-}" ]; then
  BIN_DIR=$(cd "$BIN_DIR" && pwd)
else
  cargo build --release -q --features bench --bin arkku --bin arkku-bench
  BIN_DIR=target/release
fi
WORK=$(mktemp -d)
DB=arkku_sweep_consents_$$
trap 'rm -rf "$WORK"; psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT
unset $(env | grep -o '^ARKKU_[A-Z_]*' || true)

EVENTS="('grant', 1), ('withdraw', 2)"
COLUMNS="id, customer_id, purpose, channel, action, notice_id, notice_version, method, actor_sub, actor_role, at"

sweep() { # backend url
  "$BIN_DIR/arkku-bench" sweep-seed --database "$2" --data-dir "$WORK/data-$1" --records "$RECORDS" >/dev/null
  case ${CONSENTS:-yes}-$1 in
    no-sqlite) ;;
    no-postgres) psql -q "$2" -c "CHECKPOINT" -c "ANALYZE" ;;
    *-sqlite) sqlite3 "$WORK/db.sqlite" \
      "INSERT INTO consents ($COLUMNS) SELECT randomblob(16), id, 'cross_channel', '*', column1, 'n', '1', 'web_form', 'bench', 'customer', column2 FROM customers, (VALUES $EVENTS);" ;;
    *-postgres) psql -q "${2}" -c \
      "INSERT INTO consents ($COLUMNS) SELECT gen_random_uuid(), id, 'cross_channel', '*', a, 'n', '1', 'web_form', 'bench', 'customer', t FROM customers, (VALUES $EVENTS) AS e(a, t)" -c "ANALYZE" ;;
  esac
  ARKKU_DATA_DIR="$WORK/data-$1" ARKKU_DATABASE_URL="$2" ARKKU_LOG=warn "$BIN_DIR/arkku" retention run \
    | tr -d ' \n' | grep -o '"purged":[0-9]*\|"elapsed_ms":{[^}]*}' | tr '\n' ' '
  echo " ($1)"
}

for backend in ${BACKENDS:-sqlite postgres}; do
  case $backend in
    sqlite) sweep sqlite "sqlite://$WORK/db.sqlite?mode=rwc" ;;
    postgres)
      psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
      sweep postgres "${PG_ADMIN%/*}/$DB" ;;
  esac
done
