#!/usr/bin/env bash
# deploy/local/smoke-load.sh: a short load run against a real server, then the verifier,
# so every test run proves "no oversell, no lost acknowledgement" under concurrency and
# not only in unit tests. Used by deploy/local/test.sh (step `smoke-load`); runs alone too.
#
#   1. cargo build (debug, reusing target/debug): the server and registrar-loadtest
#   2. a fresh database registrar_smoke: migrate, seed a small catalog
#   3. registrar serve on 127.0.0.1:<free port>, per-student rate limiting off
#   4. registrar-loadtest --scenario flash (~30 users, ~8 s), then --scenario churn (drops,
#      swaps, waitlist promotions; ~5 s), both writing the acknowledgement log
#   5. registrar-loadtest verify --acks ...: invariants + every acknowledged decision
#   6. the server is stopped (also on failure, by a trap)
#
# Fails (non-zero, with the reason on stderr) if a build fails, the server does not come
# up, any request failed (5xx, timeout, unexpected answer: --fail-on-errors) or the
# verifier finds a violation. Under a minute once built. Loopback only.
#
# Environment (all optional):
#   REGISTRAR_TEST_DATABASE_URL  admin connection used to (re)create the database
#                                (default postgres://registrar:registrar@127.0.0.1:5432/postgres)
#   SMOKE_STUDENTS (300) SMOKE_SECTIONS (40) SMOKE_USERS (30)
#   SMOKE_FLASH_TIME (8s) SMOKE_CHURN_TIME (5s; 0 skips the churn phase)
#   SMOKE_DIR   where logs, acks and reports go (default target/smoke-load)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf 'smoke-load: %s\n' "$*" >&2; }
die() {
    printf 'smoke-load: FAILED: %s\n' "$*" >&2
    exit 1
}

ADMIN_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB=registrar_smoke
DB_URL="${ADMIN_URL%/*}/$DB"
STUDENTS="${SMOKE_STUDENTS:-300}"
SECTIONS="${SMOKE_SECTIONS:-40}"
USERS="${SMOKE_USERS:-30}"
FLASH_TIME="${SMOKE_FLASH_TIME:-8s}"
CHURN_TIME="${SMOKE_CHURN_TIME:-5s}"
DIR="${SMOKE_DIR:-$ROOT/target/smoke-load}"
SERVER=target/debug/registrar
LOADTEST=target/debug/registrar-loadtest

mkdir -p "$DIR"
rm -f "$DIR"/*.jsonl "$DIR"/*.json "$DIR"/*.html "$DIR"/*.log

log "building the server and the load test (debug)"
cargo build -j2 -p registrar --bin registrar -p registrar-loadtest --bin registrar-loadtest

log "fresh database $DB"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null

export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_LISTEN=127.0.0.1:0
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
# A throwaway token secret for this run (the server refuses short or published ones).
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
# Every user logs in at once: let logins wait for a hashing slot rather than get 503.
export REGISTRAR_LOGIN_MAX_QUEUED_HASHES="${REGISTRAR_LOGIN_MAX_QUEUED_HASHES:-100000}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-smoke}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-smoke}"
# Its own exchange and Redis prefix, apart from a demo server's (see loadtest/flash-bench.sh).
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.smoke-load}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-smoke-load}"

"$SERVER" migrate
"$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$DIR/seed.log"

# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
start_server "$SERVER" "$DIR"

run_load() {
    local scenario=$1 run_time=$2
    local cmd=("$LOADTEST" --scenario "$scenario" --host "http://$ADDR"
        --students "$STUDENTS" --users "$USERS" --increase-rate "$USERS" --run-time "$run_time"
        --acks "$DIR/acks.jsonl" --summary "$DIR/$scenario.json"
        --report-file "$DIR/$scenario.html" --no-print-metrics --fail-on-errors)
    log "${cmd[*]}"
    "${cmd[@]}" || die "load scenario $scenario recorded failed requests or could not run (see above, $DIR/server.log)"
}

run_load flash "$FLASH_TIME"
if [[ $CHURN_TIME != 0 ]]; then
    run_load churn "$CHURN_TIME"
fi

# Stop the server first: shutdown lets in-flight batches commit, so the database is final.
stop_server
log "$LOADTEST verify --database-url <$DB> --acks $DIR/acks.jsonl"
"$LOADTEST" verify --database-url "$DB_URL" --acks "$DIR/acks.jsonl" ||
    die "the verifier found violations in $DB (kept for inspection)"
log "passed ($(wc -l <"$DIR/acks.jsonl") acknowledgements checked; logs in $DIR)"
