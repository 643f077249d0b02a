#!/usr/bin/env bash
# loadtest/flash-bench.sh: what does batching in the section actor buy, measured in ONE run
# on this machine, side by side:
#
#   (a) the HTTP ceiling: goose on GET /healthz (no database), same users and duration;
#   (b) the enroll path under `flash`: students (signed in beforehand, as students sign in
#       before their window opens; the sign-in phase is reported apart as (b0): logins/s
#       and p50/p99) add 4-6 Zipf-chosen sections of the seeded catalog; enroll decisions per second (a seat, a waitlist place or a
#       refusal such as section_full: each is decided and recorded), p50/p99, and the
#       seats and waitlist places (201 + 202) among them;
#   (c) the same load concentrated on ONE hot section (capacity 100000, created through
#       the admin API in a term of its own so flash never touches it): every user is a
#       student looping enroll -> drop on it; accepted decisions per second;
#   (d) the conventional design on the same PostgreSQL, with pgbench and as many client
#       connections as goose users: BEGIN; SELECT ... FOR UPDATE; UPDATE seats_taken + 1;
#       INSERT the enrollment; COMMIT, on one hot row and spread over as many rows as the
#       catalog has sections (scratch tables bench_seats/bench_enrollments, so the real
#       schema's triggers stay out of it);
#
#   (e) the window opens, cold: a fresh database and a freshly started server (no section
#       actor alive, no student's rule inputs read), every student signed in beforehand
#       and then enrolling exactly once in one Zipf-chosen section; decisions per second
#       from the first answer to the last, p50/p99;
#   (f) the window opens on carts: a fresh database and server again; BENCH_CART_STUDENTS
#       students sign in and fill their carts beforehand ((f0): 4-6 sections each, one or
#       two linked sets among them; PUTs/s and p50/p99, apart), then all users start at
#       once and every student submits its cart once (`cart`); items decided per second
#       (each linked set all or none, the rest one by one), carts and linked sets per
#       second, p50/p99 of the submit, from the first answer to the last;
#   (g) flash again, on the same catalog with reserved seats: a fresh database and server;
#       every section of the seed holds back 30% of its seats in a pool for major CS and
#       10% for the HONORS cohort (released in a day), every other student is a CS major
#       and every fifth HONORS; after a healthz warm-up like (a), the same load as (b), to
#       see what the pools cost;
#   (h) the hot loop of (c) three times more on (g)'s database, each on a fresh hot section
#       and a freshly started server: (h1) as configured by default (one batch of the
#       section with the committer at a time, REGISTRAR_SECTION_PIPELINE=1; the committer
#       on the shared runtime, REGISTRAR_COMMIT_THREAD=false), (h2) the actor deciding the
#       next batch while up to 2 commit (REGISTRAR_SECTION_PIPELINE=2), (h0) the committer
#       on a thread of its own (REGISTRAR_COMMIT_THREAD=true), to see what each buys;
#
# then the ratios (b)/(a), (c)/(d-hot), (b)/(d-spread), (f)/(b), (g)/(b), (h2)/(h1), (h0)/(h1); the
# verifier runs on the bench database with the acknowledgement log of (b) and (c), again
# after (e), (f), (g) and (h).
#
# A fresh database `registrar_bench` is created (dropped first) through the admin URL;
# the release server serves it on 127.0.0.1:<free port> with per-student rate limiting
# off. Loopback only; every phase is bounded (BENCH_PHASE_SECS); the server is stopped
# at the end, also on failure. Takes ~8 minutes on 2 cores once built. Every command is
# printed ("$ ...") before it runs.
#
# Environment (all optional):
#   REGISTRAR_TEST_DATABASE_URL  admin URL (default postgres://registrar:registrar@127.0.0.1:5432/postgres)
#   BENCH_USERS (200)            goose users = pgbench clients
#   BENCH_INCREASE_RATE (100)    users started per second
#   BENCH_PHASE_SECS (20)        measured seconds per phase
#   BENCH_STUDENTS (20000) BENCH_SECTIONS (400)   seed size
#   BENCH_CART_STUDENTS (10000)  students of (f), each submitting one cart (at most BENCH_STUDENTS)
#   BENCH_DIR (reports/flash-bench)   reports, summaries, acks, logs
#   SKIP_BUILD=1                 use the binaries already in target/release
#   REGISTRAR_DB_POOL_SIZE, REGISTRAR_MAX_BATCH, ...  passed to the server as usual
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'flash-bench: %s\n' "$*" >&2; }
die() {
    printf 'flash-bench: FAILED: %s\n' "$*" >&2
    exit 1
}
# run CMD...: print the command line, then run it.
run() {
    printf '$ %s\n' "$*" >&2
    "$@"
}

for tool in psql pgbench curl jq awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install postgresql-client postgresql-contrib curl jq)"
done

ADMIN_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB=registrar_bench
DB_URL="${ADMIN_URL%/*}/$DB"
USERS="${BENCH_USERS:-200}"
RATE="${BENCH_INCREASE_RATE:-100}"
SECS="${BENCH_PHASE_SECS:-20}"
STUDENTS="${BENCH_STUDENTS:-20000}"
SECTIONS="${BENCH_SECTIONS:-400}"
CART_STUDENTS="${BENCH_CART_STUDENTS:-10000}"
if ((CART_STUDENTS > STUDENTS)); then CART_STUDENTS=$STUDENTS; fi
OUT="${BENCH_DIR:-$ROOT/reports/flash-bench}"
SERVER=target/release/registrar
LOADTEST=target/release/registrar-loadtest
((STUDENTS > 3 * USERS)) || die "BENCH_STUDENTS must exceed three times BENCH_USERS"

mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.json "$OUT"/*.html "$OUT"/*.log "$OUT"/*.sql "$OUT"/pgbench_*

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    run cargo build -j2 --release -p registrar --bin registrar -p registrar-loadtest --bin registrar-loadtest
fi

export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_LISTEN=127.0.0.1:0
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
# A throwaway token secret for this run (the server refuses short or published ones).
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
# Every user logs in at once: let logins wait for a hashing slot rather than get 503.
export REGISTRAR_LOGIN_MAX_QUEUED_HASHES="${REGISTRAR_LOGIN_MAX_QUEUED_HASHES:-100000}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-bench}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-bench}"
# Events go to an exchange of the bench's own, so queues left by a demo run (with no
# consumer) do not store a copy of every bench event on these same 2 cores; one consumer
# (`registrar events tail`, see start_event_sink) takes every event, as a deployment's
# consumers do. Redis keys get their own prefix for the same reason.
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.flash-bench}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-flash-bench}"

log "fresh database $DB"
run psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
run psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
run "$SERVER" migrate
run "$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed.log"

# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
printf '$ REGISTRAR_LISTEN=%s REGISTRAR_RATE_LIMIT_PER_SEC=0 REGISTRAR_LOG=%s %s serve\n' \
    "$REGISTRAR_LISTEN" "$REGISTRAR_LOG" "$SERVER" >&2
start_server "$SERVER" "$OUT"
start_event_sink "$SERVER" "$OUT"
BASE="http://$ADDR"

# The hot section: its own term (so flash's catalog never includes it), windows open for
# every standing, a course without prerequisites, no meetings (no time conflicts),
# capacity 100000 (the API's maximum) so nearly every decision is an acceptance.
api() {
    local method=$1 path=$2 body=$3
    curl -fsS -X "$method" "$BASE$path" -H "authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' -d "$body"
}
# hot_term CODE COURSE: a term of its own with windows open for every standing and a
# course without prerequisites, as the admin of the server at $BASE; sets ADMIN_TOKEN and
# TERM_ID (the new term).
hot_term() {
    ADMIN_TOKEN="$(curl -fsS "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$REGISTRAR_ADMIN_PASSWORD\"}" | jq -r .access_token)"
    local opens closes
    TERM_ID="$(api POST /api/v1/terms "{\"code\":\"$1\",\"name\":\"Flash bench hot section\"}" | jq -r .id)"
    opens="$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
    closes="$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)"
    for standing in freshman sophomore junior senior graduate; do
        api POST "/api/v1/terms/$TERM_ID/windows" \
            "{\"standing\":\"$standing\",\"opens_at\":\"$opens\",\"closes_at\":\"$closes\"}" >/dev/null
    done
    api POST /api/v1/courses "{\"code\":\"$2\",\"title\":\"Flash bench hot section\",\"credits\":3,\"prerequisites\":[]}" >/dev/null
}
# hot_section TERM COURSE CODE: a section of capacity 100000 and no meetings; prints its id.
hot_section() {
    local id
    id="$(api POST /api/v1/sections "{\"term_id\":\"$1\",\"course_code\":\"$2\",\"section_code\":\"$3\",\"capacity\":100000,\"waitlist_capacity\":0,\"meetings\":[]}" | jq -r .id)"
    [[ $id =~ ^[0-9a-f-]{36}$ ]] || die "could not create the hot section $2-$3"
    log "hot section $id ($2-$3, capacity 100000)"
    printf '%s' "$id"
}
hot_term 2027HOT HOT101
HOT="$(hot_section "$TERM_ID" HOT101 01)"

# server_alive PHASE: stop with the server's exit status if it is gone.
server_alive() {
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        local status=0
        wait "$SERVER_PID" || status=$?
        SERVER_PID=""
        die "the server exited (status $status) during $1; see $OUT/server.log"
    fi
}

# load NAME SCENARIO [OPTIONS...]: one goose phase; summary in $OUT/NAME.json.
load() {
    local name=$1 scenario=$2
    shift 2
    local cmd=("$LOADTEST" --scenario "$scenario" --host "$BASE" --users "$USERS"
        --increase-rate "${PHASE_RATE:-$RATE}" --run-time "${SECS}s" --no-print-metrics
        --report-file "$OUT/$name.html" --summary "$OUT/$name.json" "$@")
    printf '$ %s\n' "${cmd[*]}" >&2
    "${cmd[@]}" >"$OUT/$name.log" 2>&1 || {
        tail -n 30 "$OUT/$name.log" >&2
        server_alive "$name"
        die "load phase $name failed; see $OUT/$name.log"
    }
    server_alive "$name"
    grep -v '\[WARN\]' "$OUT/$name.log" | sed 's/^/  /' >&2
}

# snapshot NAME: the server's /metrics now, in $OUT/metrics_NAME.txt.
snapshot() { curl -fsS "$BASE/metrics" >"$OUT/metrics_$1.txt"; }
# metric NAME SERIES: a series' value in snapshot NAME.
metric() { awk -v m="$2" '$1 == m {print $2}' "$OUT/metrics_$1.txt"; }
# commits BEFORE AFTER: what the node-wide committer did between two snapshots.
commits() {
    local tx batches micros
    tx=$(($(metric "$2" registrar_commit_transactions_total) - $(metric "$1" registrar_commit_transactions_total)))
    batches=$(($(metric "$2" registrar_commit_batches_total) - $(metric "$1" registrar_commit_batches_total)))
    micros=$(($(metric "$2" registrar_commit_busy_microseconds_total) - $(metric "$1" registrar_commit_busy_microseconds_total)))
    awk -v t="$tx" -v b="$batches" -v u="$micros" 'BEGIN { if (t > 0) printf "%d transactions, %.1f section batches and %.2f ms each", t, b / t, u / t / 1000; else print "no transactions" }'
}

log "(a) HTTP ceiling"
load healthz healthz
snapshot before_flash
log "(b) flash: enrolls over the catalog"
load flash flash --students "$((STUDENTS - USERS))" --acks "$OUT/acks.jsonl" --pre-login
snapshot after_flash
log "(c) one hot section"
load hot hot --hot-section "$HOT" --first-student "$((STUDENTS - USERS + 1))" \
    --students "$USERS" --acks "$OUT/acks.jsonl" --pre-login
snapshot after_hot
stop_server
stop_event_sink
EVENTS_BC="$(event_count "$OUT")"

log "(d) conventional: SELECT ... FOR UPDATE per request, pgbench"
run psql "$DB_URL" -q -v ON_ERROR_STOP=1 -v sections="$SECTIONS" <<'SQL'
DROP TABLE IF EXISTS bench_enrollments, bench_seats;
CREATE TABLE bench_seats (
    id integer PRIMARY KEY,
    capacity integer NOT NULL,
    seats_taken integer NOT NULL DEFAULT 0 CHECK (seats_taken <= capacity)
);
CREATE TABLE bench_enrollments (
    id bigserial PRIMARY KEY,
    section_id integer NOT NULL REFERENCES bench_seats (id),
    student_id integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bench_seats (id, capacity) SELECT g, 1000000000 FROM generate_series(1, :sections) g;
SQL
cat >"$OUT/enroll_hot.sql" <<'SQL'
\set student random(1, 1000000000)
BEGIN;
SELECT capacity, seats_taken FROM bench_seats WHERE id = :section FOR UPDATE \gset
\if :seats_taken < :capacity
UPDATE bench_seats SET seats_taken = seats_taken + 1 WHERE id = :section;
INSERT INTO bench_enrollments (section_id, student_id) VALUES (:section, :student);
\endif
COMMIT;
SQL
{
    printf '\\set section random(1, %s)\n' "$SECTIONS"
    cat "$OUT/enroll_hot.sql"
} >"$OUT/enroll_spread.sql"

# pgbench NAME SCRIPT [OPTIONS...]: tx/s and per-transaction latency percentiles.
pgb() {
    local name=$1 script=$2
    shift 2
    local cmd=(pgbench -n -c "$USERS" -j 2 -T "$SECS" -l --log-prefix="$OUT/pgbench_$name"
        "$@" -f "$script" "$DB_URL")
    printf '$ %s\n' "${cmd[*]}" >&2
    "${cmd[@]}" >"$OUT/pgbench_$name.log" 2>&1 ||
        die "pgbench $name failed: $(tail -n 5 "$OUT/pgbench_$name.log")"
    grep -E 'tps|latency average|failed' "$OUT/pgbench_$name.log" | sed 's/^/  /' >&2
}
pgb hot "$OUT/enroll_hot.sql" -D section=1
pgb spread "$OUT/enroll_spread.sql"

log "verifying $DB against the invariants and $(wc -l <"$OUT/acks.jsonl") acknowledgements"
run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks.jsonl" ||
    die "the verifier found violations in $DB"

log "(e) the window opens, cold: a fresh database and server, every student enrolls once"
run psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
run psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
run "$SERVER" migrate
run "$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed_open.log"
start_server "$SERVER" "$OUT"
start_event_sink "$SERVER" "$OUT"
BASE="http://$ADDR"
snapshot before_open
# Every user at once: the window opens for all of them in the same second.
PHASE_RATE=$USERS load open open --students "$STUDENTS" --acks "$OUT/acks_open.jsonl" --pre-login
snapshot after_open
stop_server
stop_event_sink
log "verifying the cold open against the invariants and $(wc -l <"$OUT/acks_open.jsonl") acknowledgements"
run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks_open.jsonl" ||
    die "the verifier found violations after the cold open"

log "(f) the window opens on carts: a fresh database and server, every student submits its cart once"
run psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
run psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
run "$SERVER" migrate
run "$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed_cart.log"
start_server "$SERVER" "$OUT"
start_event_sink "$SERVER" "$OUT"
BASE="http://$ADDR"
snapshot before_cart
PHASE_RATE=$USERS load cart cart --students "$CART_STUDENTS" --acks "$OUT/acks_cart.jsonl" --pre-login
snapshot after_cart
stop_server
stop_event_sink
log "verifying the carts against the invariants and $(wc -l <"$OUT/acks_cart.jsonl") acknowledgements"
run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks_cart.jsonl" ||
    die "the verifier found violations after the carts"

log "(g) flash on a catalog with reserved seats: a fresh database and server"
run psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
run psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
run "$SERVER" migrate
run "$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed_reserved.log"
run psql "$DB_URL" -q <<'SQL'
INSERT INTO section_reserves (id, section_id, position, attribute, value, seats, release_at)
SELECT gen_random_uuid(), id, 0, 'major', 'CS', capacity * 3 / 10, now() + interval '1 day'
  FROM sections
UNION ALL
SELECT gen_random_uuid(), id, 1, 'cohort', 'HONORS', capacity / 10, now() + interval '1 day'
  FROM sections;
UPDATE students SET majors = ARRAY['CS'] WHERE role = 'student' AND username ~ '[02468]$';
UPDATE students SET cohort = 'HONORS' WHERE role = 'student' AND username ~ '[05]$';
SQL
start_server "$SERVER" "$OUT"
start_event_sink "$SERVER" "$OUT"
BASE="http://$ADDR"
load healthz_reserved healthz
snapshot before_reserved
load reserved flash --students "$((STUDENTS - USERS))" --acks "$OUT/acks_reserved.jsonl" --pre-login
snapshot after_reserved
stop_server
stop_event_sink
RESERVED_SEATS="$(psql "$DB_URL" -Atc "SELECT count(*) FROM enrollments WHERE reserve_id IS NOT NULL AND status IN ('enrolled', 'held', 'offered')")"
log "verifying the flash on reserved seats against the invariants and $(wc -l <"$OUT/acks_reserved.jsonl") acknowledgements"
run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks_reserved.jsonl" ||
    die "the verifier found violations after the flash on reserved seats"

# (h): the hot loop of (c) on (g)'s database, each run on a fresh hot section and its own
# fresh server: as configured by default, with two batches with the committer, with the
# committer on a thread of its own.
hot_ab() {
    local name=$1 pipeline=$2 thread=$3 code=$4 first=$5
    REGISTRAR_SECTION_PIPELINE=$pipeline REGISTRAR_COMMIT_THREAD=$thread start_server "$SERVER" "$OUT"
    BASE="http://$ADDR"
    local section
    section="$(hot_section "$H_TERM" HOT102 "$code")"
    snapshot "before_$name"
    load "$name" hot --hot-section "$section" --first-student "$first" --students "$USERS" \
        --acks "$OUT/acks_h.jsonl" --pre-login
    snapshot "after_$name"
    stop_server
}
log "(h) the hot loop by default, with two batches with the committer, with the committer on its own thread"
start_server "$SERVER" "$OUT"
BASE="http://$ADDR"
start_event_sink "$SERVER" "$OUT"
hot_term 2027HOTH HOT102
H_TERM="$TERM_ID"
stop_server
hot_ab hot_piped 2 false 01 "$((STUDENTS - USERS + 1))"
hot_ab hot_serial 1 false 02 "$((STUDENTS - 2 * USERS + 1))"
hot_ab hot_thread 1 true 03 "$((STUDENTS - 3 * USERS + 1))"
stop_event_sink
log "verifying (h) against the invariants and $(wc -l <"$OUT/acks_h.jsonl") acknowledgements"
run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks_h.jsonl" ||
    die "the verifier found violations after the hot loops of (h)"

# --- the table -----------------------------------------------------------------------
tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench_$1.log" | head -n1; }
# Percentile of the per-transaction latencies (3rd column, microseconds) in ms.
pct() {
    cat "$OUT"/pgbench_"$1".[0-9]* | awk '{print $3}' | sort -n |
        awk -v p="$2" '{v[NR]=$1} END {if (NR == 0) {print 0; exit} i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.2f", v[i] / 1000}'
}
j() { jq -r "$2" "$OUT/$1.json"; }

A_RATE="$(j healthz '.ops.healthz.per_s')"
# (b) counts decisions: every enroll answered with a seat, a waitlist place or a refusal
# (409/422: section full, time conflict, ...), each of which the server decided and
# recorded; 5xx, 429 and timeouts are not decisions. Seats alone are shown beside it.
B_RATE="$(j flash '.ops.enroll | if .answers > 0 then .per_s * (.answers - .failed) / .answers else 0 end')"
B_ACCEPTED="$(j flash '.ops.enroll.accepted_per_s')"
C_RATE="$(j hot '.decisions_per_s')"
E_RATE="$(j open '.ops.enroll | if .answers > 0 then .per_s * (.answers - .failed) / .answers else 0 end')"
F_RATE="$(j cart '.cart.items_per_s // 0')"
G_RATE="$(j reserved '.ops.enroll | if .answers > 0 then .per_s * (.answers - .failed) / .answers else 0 end')"
H2_RATE="$(j hot_piped '.decisions_per_s')"
H1_RATE="$(j hot_serial '.decisions_per_s')"
H0_RATE="$(j hot_thread '.decisions_per_s')"
DH_RATE="$(tps hot)"
DS_RATE="$(tps spread)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

{
    printf '\nflash-bench: %s users (= pgbench clients), %ss per phase, %s students, %s sections; 2 cores shared by server, PostgreSQL and load generator\n\n' \
        "$USERS" "$SECS" "$STUDENTS" "$SECTIONS"
    printf '%-50s %11s %9s %9s  %s\n' "phase" "rate/s" "p50 ms" "p99 ms" "what is counted"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(a) HTTP ceiling: GET /healthz" \
        "$A_RATE" "$(j healthz '.ops.healthz.p50_ms')" "$(j healthz '.ops.healthz.p99_ms')" "requests"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(b0) sign-in before the window (pre-login)" \
        "$(j flash '.pre_login.per_s')" "$(j flash '.pre_login.p50_ms')" "$(j flash '.pre_login.p99_ms')" \
        "logins of (b)'s $(j flash '.pre_login.students') students, 64 at a time, before the burst"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(b) flash: enroll over $SECTIONS sections (Zipf 1.1)" \
        "$B_RATE" "$(j flash '.ops.enroll.p50_ms')" "$(j flash '.ops.enroll.p99_ms')" \
        "enroll decisions (201, 202, 409/422 refusals); of them seats and waitlist places (201+202) $(printf "%.1f" "$B_ACCEPTED")/s; students signed in beforehand"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(f0) carts filled before the window" \
        "$(j cart '.staging.per_s')" "$(j cart '.staging.p50_ms')" "$(j cart '.staging.p99_ms')" \
        "PUTs of (f)'s $(j cart '.staging.carts') carts ($(j cart '.staging.puts') sections), 64 students at a time, before the window"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(f) cart: submit 4-6 sections, 1-2 linked sets" \
        "$F_RATE" "$(j cart '.ops.cart_submit.p50_ms')" "$(j cart '.ops.cart_submit.p99_ms')" \
        "item decisions (enrolled, waitlisted, refused), p50/p99 of the submit; $(j cart '.cart.carts_per_s | . * 10 | floor / 10') carts/s, $(j cart '.cart.sets_per_s | . * 10 | floor / 10') linked sets/s ($(j cart '.cart.set_outcomes.enrolled // 0') of $(j cart '.cart.sets') seated whole); $(j cart '.cart.enrolled') enrolled, $(j cart '.cart.waitlisted') waitlisted, $(j cart '.cart.refused') refused; $(j cart '.cart.carts') carts in $(j cart '.window_s | . * 10 | floor / 10') s"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(c) one hot section: enroll -> drop loop" \
        "$C_RATE" "$(j hot '.ops.enroll.p50_ms')" "$(j hot '.ops.enroll.p99_ms')" \
        "accepted decisions: enroll $(j hot '.ops.enroll.accepted_per_s | floor')/s + drop $(j hot '.ops.drop.accepted_per_s | floor')/s (p50/p99 of enroll)"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(e) cold window open: $STUDENTS students, 1 each" \
        "$E_RATE" "$(j open '.ops.enroll.p50_ms')" "$(j open '.ops.enroll.p99_ms')" \
        "enroll decisions on a fresh server (no section active, no student read), $(j open '.ops.enroll.answers') in $(j open '.window_s | . * 10 | floor / 10') s"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(g) flash with reserved seats (30% CS, 10% HONORS)" \
        "$G_RATE" "$(j reserved '.ops.enroll.p50_ms')" "$(j reserved '.ops.enroll.p99_ms')" \
        "enroll decisions as (b), on a fresh server after its own healthz warm-up; $(j reserved '.ops.enroll.accepted_per_s | . * 10 | floor / 10')/s seats and waitlist places; $RESERVED_SEATS seats taken from pools"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(h1) hot loop, as configured by default" \
        "$H1_RATE" "$(j hot_serial '.ops.enroll.p50_ms')" "$(j hot_serial '.ops.enroll.p99_ms')" \
        "accepted decisions as (c), a fresh section and server on (g)'s database"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(h2) hot loop, 2 batches committing" \
        "$H2_RATE" "$(j hot_piped '.ops.enroll.p50_ms')" "$(j hot_piped '.ops.enroll.p99_ms')" \
        "the same, REGISTRAR_SECTION_PIPELINE=2"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(h0) hot loop, committer on its own thread" \
        "$H0_RATE" "$(j hot_thread '.ops.enroll.p50_ms')" "$(j hot_thread '.ops.enroll.p99_ms')" \
        "the same, REGISTRAR_COMMIT_THREAD=true"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(d-hot) pgbench SELECT FOR UPDATE, 1 row" \
        "$DH_RATE" "$(pct hot 50)" "$(pct hot 99)" "committed transactions (1 seat each), no HTTP"
    printf '%-50s %11.1f %9.2f %9.2f  %s\n' "(d-spread) pgbench SELECT FOR UPDATE, $SECTIONS rows" \
        "$DS_RATE" "$(pct spread 50)" "$(pct spread 99)" "committed transactions (1 seat each), no HTTP"
    printf '\nratios: (b)/(a) = %s   (c)/(d-hot) = %s   (b)/(d-spread) = %s\n' \
        "$(ratio "$B_RATE" "$A_RATE")" "$(ratio "$C_RATE" "$DH_RATE")" "$(ratio "$B_RATE" "$DS_RATE")"
    printf '        (b) counting seats and waitlist places only: /(a) = %s   /(d-spread) = %s\n' \
        "$(ratio "$B_ACCEPTED" "$A_RATE")" "$(ratio "$B_ACCEPTED" "$DS_RATE")"
    printf '        (f)/(b) item decisions per second, cart vs single enrolls = %s\n' "$(ratio "$F_RATE" "$B_RATE")"
    printf '        (g)/(b) flash with reserved seats vs without = %s\n' "$(ratio "$G_RATE" "$B_RATE")"
    printf '        (h2)/(h1) 2 batches committing vs 1 = %s   (h0)/(h1) committer thread vs shared runtime = %s   (h1)/(d-hot) = %s\n' \
        "$(ratio "$H2_RATE" "$H1_RATE")" "$(ratio "$H0_RATE" "$H1_RATE")" "$(ratio "$H1_RATE" "$DH_RATE")"
    printf 'committer during (b): %s\n' "$(commits before_flash after_flash)"
    printf 'committer during (c): %s\n' "$(commits after_flash after_hot)"
    printf 'committer during (e): %s; rule inputs of %s students read in %s queries\n' "$(commits before_open after_open)" \
        "$(($(metric after_open registrar_rule_input_reads_total) - $(metric before_open registrar_rule_input_reads_total)))" \
        "$(($(metric after_open registrar_rule_input_batches_total) - $(metric before_open registrar_rule_input_batches_total)))"
    printf 'events after (b)+(c): %s committed changes, %s published, %s received by the consumer, %s returned unroutable\n' \
        "$(metric after_hot registrar_changes_committed_total)" "$(metric after_hot registrar_events_published_total)" \
        "$EVENTS_BC" "$(metric after_hot registrar_events_unroutable_total)"
    printf 'committer during (f): %s\n' "$(commits before_cart after_cart)"
    printf 'committer during (h2): %s\n' "$(commits before_hot_piped after_hot_piped)"
    printf 'committer during (h1): %s\n' "$(commits before_hot_serial after_hot_serial)"
    printf 'committer during (h0): %s\n' "$(commits before_hot_thread after_hot_thread)"
    printf 'linked sets of (f) by outcome: %s\n' "$(j cart '.cart.set_outcomes | to_entries | map("\(.key) \(.value)") | join(", ")')"
    printf 'failed requests: healthz %s, flash %s, hot %s, open %s, cart %s, reserved %s (503s retried with the same key: %s)\n' \
        "$(j healthz .failed_total)" "$(j flash .failed_total)" "$(j hot .failed_total)" "$(j open .failed_total)" \
        "$(j cart .failed_total)" "$(j reserved .failed_total)" "$(j cart .retries_total)"
    printf '                 hot_piped %s, hot_serial %s, hot_thread %s\n' "$(j hot_piped .failed_total)" \
        "$(j hot_serial .failed_total)" "$(j hot_thread .failed_total)"
    printf 'goose reports: %s/{healthz,flash,hot,open,cart,reserved,hot_piped,hot_serial,hot_thread}.html; every phase verified clean\n\n' "$OUT"
} | tee "$OUT/table.txt"


