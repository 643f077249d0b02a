#!/usr/bin/env bash
# deploy/local/fuzz.sh: fuzz the HTTP API against its own OpenAPI document with
# schemathesis, so the document and the server cannot drift apart and no input makes the
# server answer 5xx. Used by deploy/local/test.sh (step `fuzz`); runs alone too.
#
#   1. schemathesis (pinned, from PyPI) in a virtualenv under the target dir, created once
#   2. cargo build (debug, the same profile as the tests): the server
#   3. a fresh database registrar_fuzz: migrate, seed a small catalog
#   4. registrar serve on 127.0.0.1:<free port>, per-student rate limiting off
#   5. log in as a demo student and as admin, then `schemathesis run --checks all` over
#      every operation of GET /api/v1/openapi.json, once per token (bounded in examples
#      and time); deploy/local/schemathesis.toml holds the few per-operation settings
#   6. the server is stopped (also on failure, by a trap)
#
# Fails (non-zero, with schemathesis's report on stderr) on any 5xx, any answer whose
# status, content type, headers or body the document does not declare, any request the
# document forbids that the server accepts, or any request it allows that the server
# refuses. Loopback only. About two minutes once built.
#
# Environment (all optional):
#   REGISTRAR_TEST_DATABASE_URL  admin connection used to (re)create the database
#                                (default postgres://registrar:registrar@127.0.0.1:5432/postgres)
#   FUZZ_MAX_EXAMPLES (40)   examples per operation and phase
#   FUZZ_MAX_TIME (50)       seconds per run (there are two runs: student, admin)
#   FUZZ_WORKERS (1)         concurrent schemathesis workers (more than one made hypothesis
#                            fail at random in ast parsing on Python 3.11)
#   FUZZ_SEED                schemathesis seed (default: random; printed in its report)
#   FUZZ_SCHEMATHESIS        pip requirement (default schemathesis==4.32.5)
#   FUZZ_DIR                 logs and reports (default <target>/fuzz)
#   CARGO_TARGET_DIR         where the server is built and the virtualenv lives (default target)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() {
    printf 'fuzz: FAILED: %s\n' "$*" >&2
    exit 1
}

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
ADMIN_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB=registrar_fuzz
DB_URL="${ADMIN_URL%/*}/$DB"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-40}"
MAX_TIME="${FUZZ_MAX_TIME:-50}"
WORKERS="${FUZZ_WORKERS:-1}"
REQUIREMENT="${FUZZ_SCHEMATHESIS:-schemathesis==4.32.5}"
DIR="${FUZZ_DIR:-$TARGET/fuzz}"
VENV="$TARGET/fuzz-venv"
SERVER="$TARGET/debug/registrar"

mkdir -p "$DIR"
rm -rf "${DIR:?}"/*

# A virtualenv of our own: never the system Python's packages, and CI (a fresh machine)
# installs it on the first run. Recreated when the requirement changes.
install_schemathesis() {
    if [[ -x $VENV/bin/schemathesis && "$(cat "$VENV/requirement" 2>/dev/null)" == "$REQUIREMENT" ]]; then
        return 0
    fi
    log "installing $REQUIREMENT into $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >&2; then
        # Debian/Ubuntu ship venv and pip as packages of their own.
        command -v apt-get >/dev/null || die "python3 -m venv failed and there is no apt-get to add python3-venv"
        local sudo=()
        ((EUID == 0)) || sudo=(sudo)
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-venv python3-pip >&2 || die "apt-get install python3-venv failed"
        rm -rf "$VENV"
        python3 -m venv "$VENV" >&2 || die "python3 -m venv failed"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check "$REQUIREMENT" >&2 ||
        die "pip install $REQUIREMENT failed"
    printf '%s\n' "$REQUIREMENT" >"$VENV/requirement"
}
install_schemathesis
log "$("$VENV/bin/schemathesis" --version)"

log "building the server (debug)"
cargo build -j2 -p registrar --bin registrar

log "fresh database $DB"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null

export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_LISTEN=127.0.0.1:0
# The fuzzer sends far more than a student would; 429s would hide what it is looking for.
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
# A throwaway token secret per run (the server refuses short or shipped ones).
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REGISTRAR_DEMO_PASSWORD=demo
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-fuzz}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-fuzz}"
# Its own exchange and Redis prefix, apart from a demo server's and the smoke load's.
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.fuzz}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-fuzz}"

"$SERVER" migrate
"$SERVER" seed --students 20 --sections 10 --reset >"$DIR/seed.log"

# Seeded ids for deploy/local/schemathesis.toml: a term, one of its sections, and a student
# other than the one the student run logs in as (the admin run puts holds on it).
sql() { psql "$DB_URL" -Atc "$1"; }
FUZZ_TERM_ID="$(sql "SELECT id FROM terms ORDER BY code LIMIT 1")"
FUZZ_SECTION_ID="$(sql "SELECT s.id FROM sections s JOIN courses c ON c.code = s.course_code WHERE s.term_id = '$FUZZ_TERM_ID' AND c.components = '{}' AND c.corequisites = '{}' ORDER BY s.course_code, s.section_code LIMIT 1")"
FUZZ_STUDENT_ID="$(sql "SELECT id FROM students WHERE username = 's000002'")"
[[ -n $FUZZ_TERM_ID && -n $FUZZ_SECTION_ID && -n $FUZZ_STUDENT_ID ]] ||
    die "the seed left no term, section or student s000002 (see $DIR/seed.log)"
export FUZZ_TERM_ID FUZZ_SECTION_ID FUZZ_STUDENT_ID

# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
start_server "$SERVER" "$DIR"

# login USER PASSWORD: print a bearer token.
login() {
    local body
    body="$("$VENV/bin/python" -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' "$1" "$2")"
    curl -sSf --max-time 10 -H 'Content-Type: application/json' -d "$body" \
        "http://$ADDR/api/v1/auth/login" |
        "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' ||
        die "could not log in as $1"
}

# fuzz NAME TOKEN: one schemathesis run with TOKEN; reports under $DIR/NAME.
fuzz() {
    local name=$1 token=$2 seed=()
    [[ -n ${FUZZ_SEED:-} ]] && seed=(--seed "$FUZZ_SEED")
    local cmd=("$VENV/bin/schemathesis" --config-file "$ROOT/deploy/local/schemathesis.toml"
        run "http://$ADDR/api/v1/openapi.json"
        --checks all
        --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --workers "$WORKERS"
        --request-timeout 10
        --generation-database none
        --report junit,ndjson --report-dir "$DIR/$name"
        --no-color "${seed[@]}")
    log "as $name: ${cmd[*]} -H 'Authorization: Bearer <token>'"
    # From $DIR: schemathesis keeps what `st replay <id>` needs in ./.schemathesis.
    if ! (cd "$DIR" && "${cmd[@]}" -H "Authorization: Bearer $token" >&2); then
        log "schemathesis found failures as $name (report above; $DIR/$name; replay one" \
            "with: cd $DIR && $VENV/bin/st replay <test case id>)"
        FAILED+=("$name")
    fi
}

STUDENT_TOKEN="$(login s000001 demo)"
ADMIN_TOKEN="$(login admin "$REGISTRAR_ADMIN_PASSWORD")"
FAILED=()
fuzz student "$STUDENT_TOKEN"
fuzz admin "$ADMIN_TOKEN"

stop_server
((${#FAILED[@]} == 0)) || die "failures as ${FAILED[*]} (reports above; $DIR, server log $DIR/server.log)"
log "passed: no failures as student or admin (reports in $DIR)"
