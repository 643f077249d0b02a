#!/usr/bin/env bash
# loadtest/failover-bench.sh: does a PostgreSQL failover in the middle of a flood lose an
# acknowledged decision? Three `registrar serve` nodes on the HA database of
# deploy/local/ha.sh (Patroni: a primary and a synchronous standby behind HAProxy on
# 127.0.0.1:5440) take the `chaos` load (flash bursts and swaps, every decision through the
# careful client with an Idempotency-Key, acknowledgements logged); FAILOVER_KILL_AT
# seconds in, the primary's postmaster gets `kill -9`, Patroni promotes the synchronous
# standby and HAProxy routes to it. After the load, the nodes stop and `registrar verify
# --acks` checks every invariant and every acknowledged decision. It prints:
#
#   failover time     last decision committed on the old primary to the first on the new
#                     one (commit timestamps, track_commit_timestamp), and the kill to the
#                     new primary answering through HAProxy
#   503s              requests answered 503 (all of them, and those in the failover window)
#   5xx other than 503, and requests with no answer at all     (must be 0)
#   lost acknowledgements   from the verifier                 (must be 0)
#   events            every committed event published (the relay's watermark across the
#                     two servers' transaction ids) and consumed once by the in-process
#                     consumers (notify, analytics), which must come back by themselves
#   cluster           nodes that rejoined as a new incarnation and shards whose owner or
#                     epoch changed across the failover (expected 0: the database was away
#                     for a few seconds, which must not reshuffle the cluster)
#
# and exits 1 if a 5xx other than 503, a lost acknowledgement, a cluster reshuffle or any
# verifier violation was seen. Loopback only; bounded: FAILOVER_SECS of load plus ~1-2
# minutes of setup, settle and verification. Runs `deploy/local/ha.sh up` first (installs
# Patroni, etcd and HAProxy when missing; needs root) and, if it started the HA database,
# `ha.sh down` at the end (FAILOVER_KEEP_HA=1 keeps it).
#
# Environment (all optional):
#   FAILOVER_SECS (60)       load duration in seconds
#   FAILOVER_KILL_AT (20)    seconds into the load when the primary is killed
#   FAILOVER_HOW (kill)      `kill` (kill -9 of the postmaster) or `switchover` (Patroni's
#                            planned switchover: the old primary is demoted, its sessions
#                            end with 57P01, COMMITs waiting for the standby among them)
#   FAILOVER_USERS (40)      goose users over the three nodes
#   FAILOVER_STUDENTS (4000) FAILOVER_SECTIONS (150)   seed size
#   FAILOVER_DIR             reports and logs (default reports/failover-bench)
#   FAILOVER_BIN_DIR         binaries (default target/release)
#   SKIP_BUILD=1             use the binaries already built
#   HA_WIPE=1                passed on to `ha.sh down` at the end: remove the HA data too
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'failover-bench: %s\n' "$*" >&2; }
die() {
    printf 'failover-bench: FAILED: %s\n' "$*" >&2
    exit 1
}
run() {
    printf '$ %s\n' "$*" >&2
    "$@"
}

SECS="${FAILOVER_SECS:-60}"
KILL_AT="${FAILOVER_KILL_AT:-20}"
HOW="${FAILOVER_HOW:-kill}"
[[ $HOW == kill || $HOW == switchover ]] || die "FAILOVER_HOW is kill or switchover, not '$HOW'"
USERS="${FAILOVER_USERS:-40}"
STUDENTS="${FAILOVER_STUDENTS:-4000}"
SECTIONS="${FAILOVER_SECTIONS:-150}"
OUT="${FAILOVER_DIR:-$ROOT/reports/failover-bench}"
BIN="${FAILOVER_BIN_DIR:-$ROOT/target/release}"
SERVER="$BIN/registrar"
LOADTEST="$BIN/registrar-loadtest"
HA="$ROOT/deploy/local/ha.sh"
HA_URL=postgres://registrar:registrar@127.0.0.1:5440
ADMIN_URL="$HA_URL/postgres"
DB=registrar_failover_bench
DB_URL="$HA_URL/$DB"
NODES=3
# Settle after the load, before the nodes stop: the careful client's last retries land.
SETTLE=5
((KILL_AT >= 5 && KILL_AT + 15 <= SECS)) ||
    die "FAILOVER_KILL_AT must be >= 5 and leave 15 s of load after the kill (SECS=$SECS)"

for tool in psql curl jq awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install postgresql-client curl jq)"
done
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.json "$OUT"/*.html "$OUT"/*.log "$OUT"/*.out "$OUT"/*.txt "$OUT"/*.tsv

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    run cargo build -j2 --release -p registrar --bin registrar -p registrar-loadtest --bin registrar-loadtest
fi
[[ -x $SERVER && -x $LOADTEST ]] || die "no binaries in $BIN"

# --- the HA database -------------------------------------------------------------------
HA_STARTED=0
if ! "$HA" status >/dev/null 2>&1; then
    HA_STARTED=1
fi
"$HA" up >"$OUT/ha-up.log" 2>&1 || { tail -n 30 "$OUT/ha-up.log" >&2; die "deploy/local/ha.sh up failed"; }

# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
# start_node, stop_nodes, wait_balanced (PIDS, URLS).
# shellcheck source=loadtest/bench-nodes.sh
source "$ROOT/loadtest/bench-nodes.sh"
LOAD_PID=""
cleanup() {
    set +e
    [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
    stop_nodes
    stop_event_sink
    if ((HA_STARTED)) && [[ ${FAILOVER_KEEP_HA:-0} != 1 ]]; then
        "$HA" down >>"$OUT/ha-up.log" 2>&1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REGISTRAR_LOGIN_MAX_QUEUED_HASHES="${REGISTRAR_LOGIN_MAX_QUEUED_HASHES:-100000}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-failover}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-failover}"
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.failover-bench}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-failover-bench}"
# The notify and analytics consumers run in the nodes, on queues of the bench's own: they
# too must come back after the failover and take every event exactly once.
export REGISTRAR_CONSUMERS_IN_PROCESS=true
export REGISTRAR_QUEUE_PREFIX="${REGISTRAR_QUEUE_PREFIX:-failover-bench}"
NODE_THREADS=1

log "fresh database $DB on the HA primary: $STUDENTS students, $SECTIONS sections"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null
"$SERVER" migrate >"$OUT/migrate.log" 2>&1 || die "migrate failed: $(tail -n 5 "$OUT/migrate.log")"
"$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed.log" 2>&1 ||
    die "seed failed: $(tail -n 5 "$OUT/seed.log")"

for k in $(seq 1 "$NODES"); do
    start_node "node-$k"
done
wait_balanced "$NODES"
start_event_sink "$SERVER" "$OUT"

# The cluster as PostgreSQL records it: each node's incarnation, each shard's owner and epoch.
cluster_state() {
    psql "$DB_URL" -Atc "SELECT 'node', id, incarnation FROM cluster_nodes ORDER BY id" \
        -c "SELECT 'shard', shard, coalesce(node_id, '-'), epoch FROM shard_owners ORDER BY shard"
}
cluster_state >"$OUT/cluster-before.txt"

# --- the load and the kill ---------------------------------------------------------------
hosts="$(IFS=,; echo "${URLS[*]}")"
cmd=("$LOADTEST" --scenario chaos --hosts "$hosts" --users "$USERS" --increase-rate "$USERS"
    --run-time "${SECS}s" --no-print-metrics --students "$((STUDENTS - 1))"
    --acks "$OUT/acks.jsonl" --summary "$OUT/load.json" --report-file "$OUT/load.html"
    --request-log "$OUT/requests.jsonl" --request-format json)
printf '$ %s\n' "${cmd[*]}" >&2
"${cmd[@]}" >"$OUT/load.log" 2>&1 &
LOAD_PID=$!
sleep "$KILL_AT"
kill -0 "$LOAD_PID" 2>/dev/null || { tail -n 30 "$OUT/load.log" >&2; die "the load generator exited early"; }
# The port of the primary HAProxy leads to (retried: during a failover a connection may
# fail or land on a server that is not primary any more).
primary_port() {
    local port
    for _ in $(seq 1 50); do
        port="$(psql "$DB_URL" -Atc 'SELECT inet_server_port() WHERE NOT pg_is_in_recovery()' 2>/dev/null || true)"
        [[ -n $port ]] && { printf '%s' "$port"; return 0; }
        sleep 0.2
    done
    return 1
}
OLD_PRIMARY="$(primary_port)" || die "no primary through HAProxy"
if [[ $HOW == kill ]]; then
    "$HA" failover --kill >"$OUT/failover.log" 2>&1 || { cat "$OUT/failover.log" >&2; die "the failover did not complete"; }
    ROUTED_MS="$(date +%s%3N)"
    KILL_MS="$(sed -n 's/^killed_at_ms=//p' "$OUT/failover.log")"
    [[ -n $KILL_MS ]] || die "ha.sh failover --kill did not say when it killed the primary"
else
    KILL_MS="$(date +%s%3N)"
    "$HA" failover >"$OUT/failover.log" 2>&1 || { cat "$OUT/failover.log" >&2; die "the switchover did not complete"; }
    ROUTED_MS="$(date +%s%3N)"
fi
NEW_PRIMARY="$(primary_port)" || die "no primary through HAProxy after the failover"
log "primary :$OLD_PRIMARY $([[ $HOW == kill ]] && echo killed || echo switched over); :$NEW_PRIMARY answers through HAProxy after $((ROUTED_MS - KILL_MS)) ms"
[[ $NEW_PRIMARY != "$OLD_PRIMARY" ]] || die "the primary did not change (still :$OLD_PRIMARY)"

status=0
wait "$LOAD_PID" || status=$?
LOAD_PID=""
((status == 0)) || { tail -n 30 "$OUT/load.log" >&2; die "the load generator failed (exit $status); see $OUT/load.log"; }
# Every committed event published (the outbox watermark, transaction ids of the old
# primary and the new one) and consumed once by each in-process consumer, or 60 s.
event_figures() {
    local outbox published
    outbox="$(psql "$DB_URL" -Atc 'SELECT count(*) FROM outbox')"
    published="$(grep -o '"event_id":"[^"]*"' "$OUT/events.txt" | sort -u | wc -l)"
    printf '%s %s %s\n' "$outbox" "$published" "$(psql "$DB_URL" -Atc \
        "SELECT string_agg(consumer || '=' || n, ',' ORDER BY consumer) FROM
           (SELECT consumer, count(DISTINCT event_id) AS n FROM consumed_events GROUP BY consumer) c")"
}
sleep "$SETTLE"
for _ in $(seq 1 120); do
    read -r OUTBOX PUBLISHED CONSUMED < <(event_figures)
    [[ $PUBLISHED == "$OUTBOX" && -n $CONSUMED ]] &&
        ! tr ',' '\n' <<<"$CONSUMED" | grep -qv "=$OUTBOX\$" && break
    sleep 0.5
done
cluster_state >"$OUT/cluster-after.txt"
stop_nodes
stop_event_sink

# --- the figures -------------------------------------------------------------------------
# Commit times of every decision (one outbox row per committed change) around the kill.
# The old primary commits nothing after the kill; a switchover's old primary may commit
# for a while after it was asked, so there the split is the longest pause between two
# commits from the request to 5 s past the new primary answering.
SPLIT="to_timestamp($KILL_MS / 1000.0)"
if [[ $HOW == switchover ]]; then
    SPLIT="$(psql "$DB_URL" -Atc "
        WITH c AS (SELECT DISTINCT pg_xact_commit_timestamp(xmin) AS at FROM outbox
                    WHERE pg_xact_commit_timestamp(xmin) BETWEEN to_timestamp($KILL_MS / 1000.0)
                                                         AND to_timestamp($((ROUTED_MS + 5000)) / 1000.0)),
             g AS (SELECT at, lead(at) OVER (ORDER BY at) AS next FROM c)
        SELECT quote_literal(at::text) || '::timestamptz' FROM g WHERE next IS NOT NULL
         ORDER BY next - at DESC LIMIT 1")"
    [[ -n $SPLIT ]] || die "no decision committed during the switchover window"
fi
read -r LAST_OLD FIRST_NEW GAP_MS < <(psql "$DB_URL" -AtF ' ' -c "
    WITH c AS (SELECT DISTINCT pg_xact_commit_timestamp(xmin) AS at FROM outbox),
         k AS (SELECT $SPLIT AS at)
    SELECT to_char((SELECT max(c.at) FROM c, k WHERE c.at <= k.at) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'),
           to_char((SELECT min(c.at) FROM c, k WHERE c.at > k.at) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'),
           round(extract(epoch FROM (SELECT min(c.at) FROM c, k WHERE c.at > k.at)
                                  - (SELECT max(c.at) FROM c, k WHERE c.at <= k.at)) * 1000)")
[[ -n ${GAP_MS:-} ]] || die "no decision committed before and after the kill (see $OUT/load.log)"

anchor="$(jq -r '.goose_started_unix_ms // empty' "$OUT/load.json")"
[[ -n $anchor ]] || die "$OUT/load.json has no goose_started_unix_ms"
# Each request: its end (Unix ms) and status; the window is the kill to 2 s past the first
# commit on the new primary.
jq -r '[.elapsed + .response_time, .status_code] | @tsv' "$OUT/requests.jsonl" |
    awk -v t0="$anchor" 'BEGIN { FS = OFS = "\t" } { printf "%.0f\t%s\n", t0 + $1, $2 }' >"$OUT/requests.tsv"
FIRST_NEW_MS="$(psql "$DB_URL" -Atc "SELECT round(extract(epoch FROM min(pg_xact_commit_timestamp(xmin))) * 1000)
    FROM outbox WHERE pg_xact_commit_timestamp(xmin) > $SPLIT")"
read -r TOTAL S503 S503_WINDOW OTHER5XX NOANSWER < <(awk -v a="$KILL_MS" -v b="$((FIRST_NEW_MS + 2000))" \
    'BEGIN { FS = "\t" }
     { n++ }
     $2 == 503 { s503++; if ($1 >= a && $1 <= b) w503++ }
     $2 >= 500 && $2 != 503 { o++ }
     $2 == 0 { z++ }
     END { print n + 0, s503 + 0, w503 + 0, o + 0, z + 0 }' "$OUT/requests.tsv")

REJOINED="$(join <(awk -F '|' '$1 == "node" { print $2, $3 }' "$OUT/cluster-before.txt" | sort) \
    <(awk -F '|' '$1 == "node" { print $2, $3 }' "$OUT/cluster-after.txt" | sort) | awk '$2 != $3' | wc -l)"
RESHUFFLED="$(diff <(grep '^shard' "$OUT/cluster-before.txt") <(grep '^shard' "$OUT/cluster-after.txt") | grep -c '^>' || true)"

log "$SERVER verify --acks $OUT/acks.jsonl"
verify_failed=0
"$SERVER" verify --acks "$OUT/acks.jsonl" >"$OUT/verify.txt" 2>&1 || verify_failed=1
LOST="$(awk -v n='VIOLATION [acknowledged decisions are durable]: ' \
    'index($0, n) == 1 { split(substr($0, length(n) + 1), a, " "); print a[1]; f = 1 } END { if (!f) print 0 }' "$OUT/verify.txt")"
ACKS="$(grep -vc '"result":"unknown"' "$OUT/acks.jsonl" || true)"
UNKNOWN="$(grep -c '"result":"unknown"' "$OUT/acks.jsonl" || true)"

{
    printf '\nfailover-bench: %s s of chaos load (%s users over %s nodes, %s students, %s sections); %s of the primary PostgreSQL at %s s; 2 cores shared by everything\n\n' \
        "$SECS" "$USERS" "$NODES" "$STUDENTS" "$SECTIONS" "$([[ $HOW == kill ]] && echo 'kill -9' || echo 'planned switchover')" "$KILL_AT"
    printf '%-58s %s\n' "old primary / new primary" ":$OLD_PRIMARY / :$NEW_PRIMARY"
    printf '%-58s %s ms\n' "failover time (last commit on old -> first on new)" "$GAP_MS"
    printf '%-58s %s -> %s UTC\n' "  last decision on the old primary -> first on the new" "$LAST_OLD" "$FIRST_NEW"
    printf '%-58s %s ms\n' "$HOW -> new primary answering through HAProxy" "$((ROUTED_MS - KILL_MS))"
    printf '%-58s %s\n' "requests (every attempt)" "$TOTAL"
    printf '%-58s %s (%s in the failover window)\n' "  answered 503 (unavailable, with Retry-After)" "$S503" "$S503_WINDOW"
    printf '%-58s %s\n' "  answered 5xx other than 503 (must be 0)" "$OTHER5XX"
    printf '%-58s %s\n' "  no answer at all (transport errors)" "$NOANSWER"
    printf '%-58s %s\n' "acknowledgements (ack log lines)" "$ACKS"
    printf '%-58s %s\n' "  outcomes unknown to the client (no final answer)" "$UNKNOWN"
    printf '%-58s %s\n' "acknowledgements lost (must be 0)" "$LOST"
    printf '%-58s %s / %s\n' "events committed / published (distinct, after the load)" "$OUTBOX" "$PUBLISHED"
    printf '%-58s %s\n' "events consumed (distinct) by each in-process consumer" "${CONSUMED:-none}"
    printf '%-58s %s\n' "nodes that rejoined as a new incarnation" "$REJOINED"
    printf '%-58s %s\n' "shards whose owner or epoch changed" "$RESHUFFLED"
    printf '%-58s %s\n' "503s the client retried (decisions, careful client)" "$(jq -r '[.retries | to_entries[] | select(.key | test(" 503 ")) | .value] | add // 0' "$OUT/load.json")"
    printf '%-58s %s\n' "503s left as final answers (reads are not retried)" "$(jq -r '[.codes | to_entries[] | select(.key | test(" 503 ")) | .value] | add // 0' "$OUT/load.json")"
    printf '%-58s %s\n' "requests goose counts as failed" "$(jq -r .failed_total "$OUT/load.json")"
    printf '\n%s\n' "$(tail -n 1 "$OUT/verify.txt")"
    printf 'files: %s (requests.jsonl, acks.jsonl, verify.txt, node-*.log, failover.log)\n\n' "$OUT"
} | tee "$OUT/table.txt"

failed=()
((OTHER5XX == 0)) || failed+=("$OTHER5XX answers 5xx other than 503")
((NOANSWER == 0)) || failed+=("$NOANSWER requests without an answer")
((LOST == 0)) || failed+=("$LOST acknowledgements lost")
[[ $PUBLISHED == "$OUTBOX" ]] || failed+=("$((OUTBOX - PUBLISHED)) committed events never published")
if [[ -z $CONSUMED ]] || tr ',' '\n' <<<"$CONSUMED" | grep -qv "=$OUTBOX\$"; then
    failed+=("a consumer did not take every event ($CONSUMED of $OUTBOX)")
fi
((REJOINED == 0 && RESHUFFLED == 0)) || failed+=("the cluster reshuffled ($REJOINED rejoined, $RESHUFFLED shards changed)")
((verify_failed == 0)) || failed+=("the verifier found violations (see $OUT/verify.txt)")
if ((${#failed[@]})); then
    grep -h -A 10 '^VIOLATION' "$OUT/verify.txt" >&2 || true
    die "$(IFS=';'; echo "${failed[*]}")"
fi
log "passed: no acknowledged decision lost, no 5xx other than 503 across the failover"
