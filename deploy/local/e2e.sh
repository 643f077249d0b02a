#!/usr/bin/env bash
# deploy/local/e2e.sh: the browser tests. Builds the pages (web.sh), runs their unit tests
# (Vitest), starts a real `registrar serve` on its own database, Redis prefix and exchange
# with a small demo catalog, and drives Debian's Chromium through playwright-core
# (web/e2e/*.spec.mjs), which also run axe-core on the pages (no critical or serious finding)
# and load the student page at 390 × 844 (no sideways scrolling). Screenshots land in
# target/e2e/. Installs chromium with apt-get when missing. Afterwards `registrar verify` must
# find the database consistent.
#
#   BIN=path          the registrar binary (default target/debug/registrar, built if missing)
#   E2E_PORT=18095    the server's port
#   E2E_DB=name       its database (default registrar_e2e; dropped and made anew)
#   specs...          only the specs whose file name contains one of these words
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
log() { printf 'e2e.sh: %s\n' "$*" >&2; }

if [[ ! -x /usr/bin/chromium ]]; then
    log "installing chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

"$ROOT/deploy/local/web.sh"
log "unit tests of the pages (vitest)"
(cd web && npx vitest run --reporter=dot)

BIN="${BIN:-${CARGO_TARGET_DIR:-target}/debug/registrar}"
if [[ ! -x $BIN ]]; then
    cargo build -j2 --bin registrar
fi

PORT="${E2E_PORT:-18095}"
ADMIN_DB="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB_NAME="${E2E_DB:-registrar_e2e}"
export REGISTRAR_DATABASE_URL="${ADMIN_DB%/*}/$DB_NAME"
PGOPTIONS="-c client_min_messages=warning" psql "$ADMIN_DB" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME"
export REGISTRAR_REDIS_URL="${REGISTRAR_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export REGISTRAR_REDIS_PREFIX="e2e-$$"
# The test vhost when test.sh runs us (it resets it per run); queues and exchange of our own
# either way, so no other run's queue (with other arguments) refuses our consumers.
export REGISTRAR_AMQP_URL="${REGISTRAR_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export REGISTRAR_EVENTS_EXCHANGE="registrar.e2e.$$"
export REGISTRAR_QUEUE_PREFIX="registrar-e2e-$$"
export REGISTRAR_CONSUMERS_IN_PROCESS=true
REGISTRAR_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export REGISTRAR_JWT_SECRET
export REGISTRAR_ADMIN_PASSWORD=admin-e2e REGISTRAR_OPERATOR_PASSWORD=operator-e2e REGISTRAR_DEMO_PASSWORD=demo-e2e
export REGISTRAR_LISTEN="127.0.0.1:$PORT" REGISTRAR_NODE_ID=e2e
export REGISTRAR_WEB_DIR="$ROOT/web/dist"
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"

"$BIN" migrate >/dev/null
"$BIN" seed --reset --students 2000 --sections 120 >/dev/null
mkdir -p target/e2e
"$BIN" serve >target/e2e/server.log 2>&1 &
SERVER=$!
# Stop the server, then drop this run's queues (best effort: rabbitmqctl needs root).
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    local vhost="${REGISTRAR_AMQP_URL##*/}"
    vhost="${vhost//%2f//}"
    rabbitmqctl -q list_queues -p "$vhost" name 2>/dev/null | grep "^$REGISTRAR_QUEUE_PREFIX" |
        xargs -r -n1 rabbitmqctl -q delete_queue -p "$vhost" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { log "the server did not get ready"; tail -20 target/e2e/server.log; exit 1; }

log "driving chromium against http://127.0.0.1:$PORT"
E2E_BASE_URL="http://127.0.0.1:$PORT" E2E_OUT="$ROOT/target/e2e" \
    E2E_STUDENT_PASSWORD="$REGISTRAR_DEMO_PASSWORD" E2E_ADMIN_PASSWORD="$REGISTRAR_ADMIN_PASSWORD" \
    E2E_OPERATOR_PASSWORD="$REGISTRAR_OPERATOR_PASSWORD" \
    node web/e2e/run.mjs "$@"

log "checking the database after the run (registrar verify)"
"$BIN" verify
