#!/usr/bin/env bash
# deploy/local/up.sh: run a demo registrar node on this machine, from a fresh checkout.
#
#   1. deploy/local/services.sh    PostgreSQL, Redis, RabbitMQ on 127.0.0.1 (installs/starts)
#   2. deploy/local/web.sh         the browser pages (npm ci + npm run build when missing or stale)
#      cargo build --release       the `registrar` binary
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
# shellcheck source=deploy/local/dev-env.sh
source "$ROOT/deploy/local/dev-env.sh"
dev_env_defaults

if [[ ${SKIP_SERVICES:-0} != 1 ]]; then
    log "checking services"
    "$ROOT/deploy/local/services.sh"
fi

"$ROOT/deploy/local/web.sh"
build_release
migrate_and_seed

{
    printf '\n  registrar is starting on http://%s\n' "$REGISTRAR_LISTEN"
    print_demo_logins
    printf '  Ctrl-C stops the server; the services keep running (deploy/local/services.sh).\n\n'
}

exec "$BIN" serve
