#!/usr/bin/env bash
# deploy/local/up.sh: run a demo registrar node on this machine, from a fresh checkout.
#
#   1. deploy/local/services.sh    PostgreSQL, Redis, RabbitMQ on 127.0.0.1 (installs/starts)
#   2. cargo build --release       the `registrar` binary
#   3. registrar migrate           schema
#   4. registrar seed --reset      demo data: DEMO_STUDENTS students (default 100000) and
#                                  DEMO_SECTIONS sections (default 2000); wipes earlier data
#   5. registrar serve             in the foreground (exec), until Ctrl-C
#
# Environment (all optional; anything else REGISTRAR_* is passed through to the binary):
#   REGISTRAR_LISTEN            default 127.0.0.1:8080
#   REGISTRAR_DATABASE_URL      default postgres://registrar:registrar@127.0.0.1:5432/registrar
#   REGISTRAR_REDIS_URL         default redis://127.0.0.1:6379
#   REGISTRAR_AMQP_URL          default amqp://guest:guest@127.0.0.1:5672/%2f
#   REGISTRAR_JWT_SECRET        default: 32 random bytes generated on the first run and kept in
#                               .registrar/jwt-secret (git-ignored), so tokens survive restarts
#   REGISTRAR_ADMIN_PASSWORD    default admin-demo     (account `admin`)
#   REGISTRAR_OPERATOR_PASSWORD default operator-demo  (account `operator`)
#   REGISTRAR_DEMO_PASSWORD     default demo           (students s000001, s000002, ...)
#   DEMO_STUDENTS, DEMO_SECTIONS  seed size
#   SKIP_SEED=1                 keep the existing data (skip `seed --reset`)
#   SKIP_SERVICES=1             do not run services.sh (services managed elsewhere)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf 'up.sh: %s\n' "$*" >&2; }

export REGISTRAR_LISTEN="${REGISTRAR_LISTEN:-127.0.0.1:8080}"
export REGISTRAR_DATABASE_URL="${REGISTRAR_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/registrar}"
export REGISTRAR_REDIS_URL="${REGISTRAR_REDIS_URL:-redis://127.0.0.1:6379}"
export REGISTRAR_AMQP_URL="${REGISTRAR_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
# The server refuses a missing, short or published secret: make one for this checkout.
if [[ -z ${REGISTRAR_JWT_SECRET:-} ]]; then
    SECRET_FILE="$ROOT/.registrar/jwt-secret"
    if [[ ! -s $SECRET_FILE ]]; then
        log "generating a local token secret in $SECRET_FILE"
        mkdir -p "$(dirname "$SECRET_FILE")"
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET_FILE")
    fi
    REGISTRAR_JWT_SECRET="$(cat "$SECRET_FILE")"
fi
export REGISTRAR_JWT_SECRET
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-demo}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-demo}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
# The demo runs the notify and analytics consumers inside the server.
export REGISTRAR_CONSUMERS_IN_PROCESS="${REGISTRAR_CONSUMERS_IN_PROCESS:-true}"
DEMO_STUDENTS="${DEMO_STUDENTS:-100000}"
DEMO_SECTIONS="${DEMO_SECTIONS:-2000}"

if [[ ${SKIP_SERVICES:-0} != 1 ]]; then
    log "checking services"
    "$ROOT/deploy/local/services.sh"
fi

log "building (cargo build --release -j2 --bin registrar)"
cargo build --release -j2 --bin registrar
BIN="${CARGO_TARGET_DIR:-target}/release/registrar"
[[ -x $BIN ]] || {
    log "ERROR: $BIN not found after the build"
    exit 1
}

log "migrating"
"$BIN" migrate

if [[ ${SKIP_SEED:-0} != 1 ]]; then
    log "seeding $DEMO_STUDENTS students, $DEMO_SECTIONS sections (--reset)"
    "$BIN" seed --students "$DEMO_STUDENTS" --sections "$DEMO_SECTIONS" --reset
fi

if [[ ${SKIP_SEED:-0} != 1 ]]; then
    last_student=$(printf 's%06d' "$DEMO_STUDENTS")
else
    last_student="(existing)"
fi
{
    printf '\n  registrar is starting on http://%s\n' "$REGISTRAR_LISTEN"
    printf '    %-9s %-24s password: %s\n' \
        students "s000001 .. $last_student" "$REGISTRAR_DEMO_PASSWORD" \
        admin admin "$REGISTRAR_ADMIN_PASSWORD" \
        operator operator "$REGISTRAR_OPERATOR_PASSWORD"
    printf '  Ctrl-C stops the server; the services keep running (deploy/local/services.sh).\n\n'
}

exec "$BIN" serve
