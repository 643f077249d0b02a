#!/usr/bin/env bash
# loadtest/reshard-bench.sh: moving shards at the peak of registration, measured in ONE run
# on this machine. Three local nodes share a fresh database; once the shards are balanced,
# the `reshard` scenario (most users loop enroll -> drop on a few hot sections, the rest
# are flash bursts over the catalog, every request sent by a careful client: an
# Idempotency-Key per decision, retried on 503) runs spread over the three nodes for
# BENCH_PHASE_SECS, while this script, as the operator:
#
#   1. waits BENCH_STEADY_SECS (steady state);
#   2. every BENCH_MOVE_EVERY_SECS, BENCH_HOT_MOVES times: moves the shard of the hottest
#      section (GET /api/v1/cluster/hot-sections?limit=1) to the least loaded other
#      active node (POST /api/v1/cluster/shards/{shard}/move), and follows the move
#      (GET /api/v1/cluster/moves/{id}) until it is done or failed;
#   3. POST /api/v1/cluster/rebalance {"by":"load"} once, and follows its moves;
#   4. POST /api/v1/cluster/nodes/node-3/drain, and waits until node-3 has left;
#
# recording the wall-clock window of each action, from its request until it is over. Then
# it prints: failed requests (after the careful client's retries; target 0), the p99 of
# the enroll/drop requests in steady state (overlapping no move window) and during moves
# (overlapping one) and the bump between them (target < 250 ms), move durations p50/p99
# from the moves' started_at/finished_at, every move of the run (the rebalance's and the
# drain's too; target p99 < 1 s), held requests per move (p50/max), moves done/failed;
# and finally runs `registrar-loadtest verify` with the acknowledgements (exit 1 unless
# clean). Latencies come from goose's request log (--request-log, JSON lines): a request
# the careful client retried is one request, from its first attempt to its last answer.
#
# Loopback only; every phase is bounded; every node (and the operator loop) is stopped at
# the end, also on failure. Takes ~2 minutes on 2 cores once built. Commands are printed.
#
# Environment (all optional):
#   REGISTRAR_TEST_DATABASE_URL  admin URL (default postgres://registrar:registrar@127.0.0.1:5432/postgres)
#   BENCH_USERS (120) BENCH_INCREASE_RATE (60) BENCH_PHASE_SECS (40)
#   BENCH_STEADY_SECS (8)        load before the first move
#   BENCH_MOVE_EVERY_SECS (4)    between operator actions
#   BENCH_HOT_MOVES (3)          moves of the hottest shard before the rebalance
#   BENCH_WARMUP_SECS (3)        requests that start this early (ramp-up) count in neither p99
#   BENCH_HOT_SECTIONS (6)       hot sections (capacity 100000 each, a term of their own)
#   BENCH_STUDENTS (20000) BENCH_SECTIONS (400)   seed size
#   BENCH_DIR (reports/reshard-bench)   reports, summary, acks, request log, windows, moves
#   BENCH_BIN_DIR ($CARGO_TARGET_DIR or target, /release)   where the binaries are
#   SKIP_BUILD=1                 use the binaries already built
#   BENCH_REPORT_ONLY=1          print the table again from the files in BENCH_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'reshard-bench: %s\n' "$*" >&2; }
die() {
    printf 'reshard-bench: FAILED: %s\n' "$*" >&2
    exit 1
}
# run CMD...: print the command line, then run it.
run() {
    printf '$ %s\n' "$*" >&2
    "$@"
}

for tool in psql curl jq awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install postgresql-client curl jq)"
done

ADMIN_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB=registrar_reshard_bench
DB_URL="${ADMIN_URL%/*}/$DB"
USERS="${BENCH_USERS:-120}"
RATE="${BENCH_INCREASE_RATE:-60}"
SECS="${BENCH_PHASE_SECS:-40}"
STEADY="${BENCH_STEADY_SECS:-8}"
EVERY="${BENCH_MOVE_EVERY_SECS:-4}"
HOT_MOVES="${BENCH_HOT_MOVES:-3}"
WARMUP="${BENCH_WARMUP_SECS:-3}"
HOT_COUNT="${BENCH_HOT_SECTIONS:-6}"
STUDENTS="${BENCH_STUDENTS:-20000}"
SECTIONS="${BENCH_SECTIONS:-400}"
OUT="${BENCH_DIR:-$ROOT/reports/reshard-bench}"
BIN="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
SERVER="$BIN/registrar"
LOADTEST="$BIN/registrar-loadtest"
DRAINED=node-3

now_ms() { date +%s%3N; }
# pct FILE P: the P-th percentile (nearest rank) of the numbers in FILE, one a line.
pct() {
    sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 }
        END { if (NR == 0) { print "n/a"; exit }
              i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
              printf "%.1f", v[i] }'
}

# --- the table, from the files in $OUT only (also BENCH_REPORT_ONLY=1) -----------------
#   bench.json     this run's settings          reshard.json  registrar-loadtest's summary
#   requests.jsonl goose's request log          windows.tsv   the operator's action windows
#   moves.json     every move of the run (GET /api/v1/cluster/moves, newer than the start)
report() {
    local meta="$OUT/bench.json" summary="$OUT/reshard.json" anchor from
    for f in "$meta" "$summary" "$OUT/requests.jsonl" "$OUT/windows.tsv" "$OUT/moves.json"; do
        [[ -f $f ]] || die "report: $f is missing"
    done
    anchor="$(jq -r '.goose_started_unix_ms // empty' "$summary")"
    [[ -n $anchor ]] || die "report: $summary has no goose_started_unix_ms"
    from=$((anchor + $(jq -r .warmup_secs "$meta") * 1000))

    # Goose's request log, one JSON line per attempt -> one line per logical request:
    # start and end (Unix ms), latency (ms), name, final status, attempts. A line named
    # "<name> retry" continues the same user's previous request (a user's requests are
    # sequential, and goose logs them in order).
    jq -r '[.user, .elapsed, .response_time, (.response_time_fraction_us // 0), .status_code, .name] | @tsv' \
        "$OUT/requests.jsonl" |
        awk -v t0="$anchor" 'BEGIN { FS = OFS = "\t" }
            function flush(u) {
                if (u in name) {
                    printf "%.0f\t%.3f\t%.3f\t%s\t%s\t%d\n", t0 + first[u], t0 + last[u], last[u] - first[u], name[u], status[u], tries[u]
                    delete name[u]
                }
            }
            {
                u = $1; done = $2 + $3 + $4 / 1000
                if ($6 ~ / retry$/ && (u in name)) { last[u] = done; status[u] = $5; tries[u]++; next }
                flush(u)
                name[u] = $6; first[u] = $2; last[u] = done; status[u] = $5; tries[u] = 1
            }
            END { for (u in name) flush(u) }' >"$OUT/requests.tsv"

    # Enroll and drop requests after the warm-up, split by whether they overlap a window.
    awk -v from="$from" -v wfile="$OUT/windows.tsv" -v sfile="$OUT/latency_steady.txt" \
        -v dfile="$OUT/latency_moves.txt" 'BEGIN { FS = OFS = "\t"; printf "" > sfile; printf "" > dfile }
        FILENAME == wfile { if ($3 != "") { n++; a[n] = $3; b[n] = ($4 == "" ? 9e15 : $4) }; next }
        $4 != "enroll" && $4 != "drop" { next }
        $1 < from { next }
        {
            during = 0
            for (i = 1; i <= n; i++) if ($1 <= b[i] && $2 >= a[i]) { during = 1; break }
            print $3 > (during ? dfile : sfile)
        }' "$OUT/windows.tsv" "$OUT/requests.tsv"

    # Every move of the run, grouped by the operator action that made it (the move ids in
    # windows.tsv; "other" for the coordinator's own): count, done/failed/open, duration
    # (finished_at - started_at of the done ones, ms) p50/p99, held requests p50/max. The
    # stamps are RFC 3339 in UTC with a fraction, which fromdateiso8601 does not take whole.
    jq -r --rawfile windows "$OUT/windows.tsv" '
        def ms: capture("^(?<s>[0-9-]+T[0-9:]+)(\\.(?<f>[0-9]+))?")
            | ((.s + "Z") | fromdateiso8601) * 1000 + (((.f // "") + "000")[0:3] | tonumber);
        def pct(p): sort | if length == 0 then "n/a"
            else .[([(length * p / 100 | ceil), 1] | max) - 1] end;
        ($windows | split("\n") | map(select(length > 0) | split("\t")
            | {action: .[0], ids: ((.[5] // "") | split(",") | map(select(length > 0) | tonumber))})) as $acts
        | map(. as $m | . + {action: (first($acts[] | select(any(.ids[]; . == $m.id)) | .action) // "other")})
        | [["all", .], (group_by(.action)
            | sort_by({move: 0, rebalance: 1, drain: 2}[.[0].action] // 3)[] | [.[0].action, .])][]
        | .[1] as $g | [.[0], ($g | length),
            ($g | map(select(.state == "done")) | length),
            ($g | map(select(.state == "failed")) | length),
            ($g | map(select(.state == "pending" or .state == "running")) | length),
            ($g | map(select(.state == "done" and .finished_at != null) | (.finished_at | ms) - (.started_at | ms))
                | pct(50), pct(99)),
            ($g | map(.held_requests) | pct(50), pct(100))] | @tsv' \
        "$OUT/moves.json" >"$OUT/moves_by_action.tsv"

    local steady_n moves_n p99_steady p99_moves bump move_p99 failed
    steady_n="$(wc -l <"$OUT/latency_steady.txt")"
    moves_n="$(wc -l <"$OUT/latency_moves.txt")"
    p99_steady="$(pct "$OUT/latency_steady.txt" 99)"
    p99_moves="$(pct "$OUT/latency_moves.txt" 99)"
    bump="$(awk -v a="$p99_moves" -v b="$p99_steady" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.1f", a - b }')"
    move_p99="$(awk -F '\t' '$1 == "all" { print $7 }' "$OUT/moves_by_action.tsv")"
    failed="$(jq -r .failed_total "$summary")"
    verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "n/a") print "n/a"; else if (v + 0 < t + 0) print "ok"; else print "MISSED" }'; }

    {
        jq -r '"\nreshard-bench: \(.users) users over 3 nodes, \(.secs) s, \(.hot_sections) hot sections + flash over \(.sections) sections; first move after \(.steady_secs) s, warm-up \(.warmup_secs) s left out; 2 cores shared by the nodes, PostgreSQL and goose\n"' "$meta"
        printf '%-52s %9s %9s %9s\n' "enroll + drop requests (careful client)" "count" "p50 ms" "p99 ms"
        printf '%-52s %9s %9s %9s\n' "  steady state (overlapping no move window)" "$steady_n" \
            "$(pct "$OUT/latency_steady.txt" 50)" "$p99_steady"
        printf '%-52s %9s %9s %9s\n' "  during moves (overlapping a move window)" "$moves_n" \
            "$(pct "$OUT/latency_moves.txt" 50)" "$p99_moves"
        printf '%-52s %9s %9s %9s   target < 250 ms: %s\n' "  p99 bump (during - steady)" "" "" "$bump" \
            "$(awk -v b="$bump" 'BEGIN { if (b == "n/a") print "n/a"; else if (b < 250) print "ok"; else print "MISSED" }')"
        printf '\n%-52s %9s   target 0: %s\n' "failed requests (5xx after retries, timeouts, transport)" "$failed" \
            "$([[ $failed == 0 ]] && echo ok || echo MISSED)"
        printf '%-52s %9s%s\n' "retried attempts (503 absorbed, same key)" "$(jq -r .retries_total "$summary")" \
            "$(jq -r '[.retries | to_entries[] | "\(.key) \(.value)"] | join(", ") | if . == "" then . else "   " + . end' "$summary")"
        printf '%-52s %9s\n' "requests in the run (all kinds, logical)" "$(wc -l <"$OUT/requests.tsv")"
        printf '\nmoves (from the moves record: duration = finished_at - started_at, target p99 < 1000 ms: %s)\n' \
            "${move_p99:+$(verdict "$move_p99" 1000)}"
        printf '  %-24s %6s %6s %7s %5s %13s %13s %10s %10s\n' "made by" "moves" "done" "failed" "open" \
            "p50 ms" "p99 ms" "held p50" "held max"
        awk -F '\t' 'BEGIN { n["all"] = "every move"; n["move"] = "hottest-shard moves"
                n["rebalance"] = "rebalance by load"; n["drain"] = "drain '"$DRAINED"'"; n["other"] = "the coordinator itself" }
            { printf "  %-24s %6s %6s %7s %5s %13s %13s %10s %10s\n", ($1 in n ? n[$1] : $1), $2, $3, $4, $5, $6, $7, $8, $9 }' \
            "$OUT/moves_by_action.tsv"
        jq -r '.[] | select(.state == "failed") | "  failed move \(.id) (shard \(.shard) \(.from) -> \(.to), \(.reason)): \(.error)"' "$OUT/moves.json"
        printf '\noperator actions (wall clock, from the request until the moves are over):\n'
        awk -F '\t' '{ printf "  %-10s %-40s %8s ms  %s\n", $1, $2, ($4 == "" ? "?" : $4 - $3), $5 }' "$OUT/windows.tsv"
        printf 'files: %s (goose report reshard.html, request log requests.jsonl)\n\n' "$OUT"
    } | tee "$OUT/table.txt"
}

if [[ ${BENCH_REPORT_ONLY:-0} == 1 ]]; then
    report
    exit 0
fi

MIN_SECS=$((STEADY + (HOT_MOVES + 2) * EVERY + 4))
((SECS >= MIN_SECS)) || die "BENCH_PHASE_SECS must be at least $MIN_SECS for $HOT_MOVES moves every $EVERY s after $STEADY s"
((STUDENTS > 2 * USERS)) || die "BENCH_STUDENTS must exceed twice BENCH_USERS"

mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.json "$OUT"/*.html "$OUT"/*.log "$OUT"/*.out "$OUT"/*.tsv "$OUT"/*.txt

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    run cargo build -j2 --release -p registrar --bin registrar -p registrar-loadtest --bin registrar-loadtest
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    SERVER="$BIN/registrar"
    LOADTEST="$BIN/registrar-loadtest"
fi
[[ -x $SERVER && -x $LOADTEST ]] || die "no binaries in $BIN (build them, or set BENCH_BIN_DIR)"

export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
# One throwaway token secret for the whole cluster (the server refuses short ones).
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REGISTRAR_LOGIN_MAX_QUEUED_HASHES="${REGISTRAR_LOGIN_MAX_QUEUED_HASHES:-100000}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-bench}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-bench}"
# The bench's own exchange and Redis prefix, and one consumer of every event, as in
# flash-bench.
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.reshard-bench}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-reshard-bench}"

PIDS=()
URLS=()
OP_PID=""
stop_all() {
    local pid
    if [[ -n $OP_PID ]]; then
        kill "$OP_PID" 2>/dev/null || true
        wait "$OP_PID" 2>/dev/null || true
        OP_PID=""
    fi
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    # SIGTERM drains a node first; give each a minute, then kill it.
    for pid in "${PIDS[@]}"; do
        timeout 60 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    PIDS=()
}
# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
trap 'stop_all; stop_event_sink' EXIT

# start_node ID: one `registrar serve` on a free loopback port; appends to PIDS and URLS.
start_node() {
    local id=$1 out="$OUT/$1.out" url=""
    printf '$ REGISTRAR_NODE_ID=%s REGISTRAR_LISTEN=127.0.0.1:0 %s serve\n' "$id" "$SERVER" >&2
    # Three nodes share this machine: each gets its share of the cores.
    REGISTRAR_WORKER_THREADS="${REGISTRAR_WORKER_THREADS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}" \
        REGISTRAR_NODE_ID="$id" REGISTRAR_LISTEN=127.0.0.1:0 "$SERVER" serve >"$out" 2>"$OUT/$id.log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 150); do
        url="$(sed -n 's/^registrar listening on //p' "$out" | head -n1)"
        [[ -n $url ]] && break
        kill -0 "$pid" 2>/dev/null || die "$id exited at start: $(tail -n 20 "$OUT/$id.log")"
        sleep 0.2
    done
    [[ -n $url ]] || die "$id did not print its address within 30 s"
    URLS+=("$url")
    log "$id on $url (pid $pid)"
}

log "fresh database $DB"
run psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
run psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
run "$SERVER" migrate
run "$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed.log"

for i in 1 2 3; do
    start_node "node-$i"
done
start_event_sink "$SERVER" "$OUT"
API="${URLS[0]}"

login() {
    curl -fsS --max-time 10 "$API/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$2\"}" | jq -r .access_token
}
OPERATOR_TOKEN="$(login operator "$REGISTRAR_OPERATOR_PASSWORD")"
ADMIN_TOKEN="$(login admin "$REGISTRAR_ADMIN_PASSWORD")"
# op_get PATH: an operator GET on node-1, the body on stdout.
op_get() { curl -fsS --max-time 5 "$API$1" -H "authorization: Bearer $OPERATOR_TOKEN"; }
# op_post PATH BODY: an operator POST; prints the status, the body goes to $OUT/op_answer.json.
op_post() {
    curl -sS --max-time 10 -o "$OUT/op_answer.json" -w '%{http_code}' -X POST "$API$1" \
        -H "authorization: Bearer $OPERATOR_TOKEN" -H 'content-type: application/json' -d "$2"
}

log "waiting until node-1..3 are active and own 342/341/341 shards"
balanced=""
for _ in $(seq 1 300); do
    view="$(op_get /api/v1/cluster)"
    if jq -e '[.nodes[] | select(.state == "active") | .shards_owned] as $o
        | ($o | length) == 3 and ($o | add) == .shards and (($o | max) - ($o | min)) <= 1' \
        <<<"$view" >/dev/null; then
        balanced=1
        break
    fi
    sleep 0.2
done
[[ -n $balanced ]] || die "the shards were not balanced over 3 nodes within 60 s"
log "balanced: $(jq -c '[.nodes[] | select(.state == "active") | {(.id): .shards_owned}] | add' <<<"$view")"

# The hot sections: a term of their own (flash's catalog never sees them), windows open
# for every standing, one course each (no duplicate_course), no meetings (no conflicts),
# capacity 100000 (the API's maximum) so nearly every enroll is a seat and every drop frees it.
admin() {
    curl -fsS --max-time 10 -X "$1" "$API$2" -H "authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' -d "$3"
}
HOT_TERM="$(admin POST /api/v1/terms '{"code":"2027RSH","name":"Reshard bench hot sections"}' | jq -r .id)"
OPENS="$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
CLOSES="$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)"
for standing in freshman sophomore junior senior graduate; do
    admin POST "/api/v1/terms/$HOT_TERM/windows" \
        "{\"standing\":\"$standing\",\"opens_at\":\"$OPENS\",\"closes_at\":\"$CLOSES\"}" >/dev/null
done
HOT=()
for k in $(seq 1 "$HOT_COUNT"); do
    course="$(printf 'RSH%03d' "$k")"
    admin POST /api/v1/courses "{\"code\":\"$course\",\"title\":\"Reshard bench hot $k\",\"credits\":3,\"prerequisites\":[]}" >/dev/null
    id="$(admin POST /api/v1/sections "{\"term_id\":\"$HOT_TERM\",\"course_code\":\"$course\",\"section_code\":\"01\",\"capacity\":100000,\"waitlist_capacity\":0,\"meetings\":[]}" | jq -r .id)"
    [[ $id =~ ^[0-9a-f-]{36}$ ]] || die "could not create hot section $course"
    HOT+=("$id")
    log "hot section $course $id: $(op_get "/api/v1/cluster/sections/$id" | jq -r '"shard \(.shard) on \(.node_id)"')"
done
HOT_LIST="$(IFS=,; echo "${HOT[*]}")"

# Moves before this one are not the run's.
MOVE_BASE="$(op_get '/api/v1/cluster/moves?limit=1' | jq '.[0].id // 0')"

jq -n --argjson users "$USERS" --argjson secs "$SECS" --argjson hot "$HOT_COUNT" \
    --argjson sections "$SECTIONS" --argjson steady "$STEADY" --argjson warmup "$WARMUP" \
    --argjson base "$MOVE_BASE" '{users: $users, secs: $secs, hot_sections: $hot,
    sections: $sections, steady_secs: $steady, warmup_secs: $warmup, move_base: $base}' >"$OUT/bench.json"

# --- the operator ------------------------------------------------------------------
# windows.tsv: action, what, requested (Unix ms), over (Unix ms, empty if it never was),
# outcome, its move ids (comma-separated). Every wait ends by OP_DEADLINE at the latest.
window() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/windows.tsv"; }
# since MS: milliseconds from MS to now.
since() { echo $(($(now_ms) - $1)); }
oplog() { printf '%s +%5.1fs %s\n' "$(date +%T)" "$(awk -v a="$(now_ms)" -v b="$T0" 'BEGIN { print (a - b) / 1000 }')" "$*" >>"$OUT/operator.log"; }
sleep_until() {
    local ms=$(($1 - $(now_ms)))
    if ((ms > 0)); then sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"; fi
}
# wait_move ID: poll the move until done or failed; prints its final state (or timeout).
wait_move() {
    local state
    while (($(now_ms) < OP_DEADLINE)); do
        state="$(op_get "/api/v1/cluster/moves/$1" | jq -r .state)" || state=""
        if [[ $state == "done" || $state == "failed" ]]; then
            echo "$state"
            return
        fi
        sleep 0.05
    done
    echo timeout
}
move_hottest() {
    local hot section shard owner to status t_req state id
    # A read that fails under load skips this action; it does not end the operator.
    hot="$(op_get '/api/v1/cluster/hot-sections?limit=1')" || {
        oplog "GET hot-sections failed; no move"
        return
    }
    section="$(jq -r '.[0].section_id // empty' <<<"$hot")"
    if [[ -z $section ]]; then
        oplog "no hot section reported yet; no move"
        return
    fi
    shard="$(jq -r '.[0].shard' <<<"$hot")"
    # The owner now (the heartbeat's list may be a second old), and the least loaded
    # other active node.
    owner="$(op_get "/api/v1/cluster/sections/$section" | jq -r .node_id)" || owner=""
    to="$(op_get /api/v1/cluster | jq -r --arg o "$owner" \
        '[.nodes[] | select(.state == "active" and .id != $o)] | sort_by(.load.decisions_per_s) | .[0].id // empty')" || to=""
    if [[ -z $owner || -z $to ]]; then
        oplog "no owner or no other active node found for shard $shard; no move"
        return
    fi
    t_req="$(now_ms)"
    status="$(op_post "/api/v1/cluster/shards/$shard/move" "{\"to\":\"$to\"}")" || status=000
    if [[ $status != 202 ]]; then
        oplog "move shard $shard $owner -> $to refused: $status $(jq -c '{code, detail}' "$OUT/op_answer.json" 2>/dev/null)"
        return
    fi
    id="$(jq -r .id "$OUT/op_answer.json")"
    oplog "move $id: shard $shard (section $section, $(jq -r '.[0].decisions_per_s' <<<"$hot") decisions/s) $owner -> $to; 202 after $(since "$t_req") ms"
    state="$(wait_move "$id")"
    window move "shard $shard $owner->$to" "$t_req" "$([[ $state == timeout ]] || now_ms)" "$state" "$id"
    oplog "move $id $state, $(since "$t_req") ms after the request"
}
rebalance_by_load() {
    local t_req status ids id state outcome="done"
    t_req="$(now_ms)"
    status="$(op_post /api/v1/cluster/rebalance '{"by":"load"}')" || status=000
    if [[ $status != 202 ]]; then
        oplog "rebalance refused: $status $(jq -c '{code, detail}' "$OUT/op_answer.json" 2>/dev/null)"
        return
    fi
    ids="$(jq -r '.moves[].id' "$OUT/op_answer.json")"
    oplog "rebalance by load: $(wc -w <<<"$ids") moves ($(jq -c '[.moves[] | "\(.shard):\(.from)->\(.to)"]' "$OUT/op_answer.json")); 202 after $(since "$t_req") ms"
    [[ -n $ids ]] || return 0
    for id in $ids; do
        state="$(wait_move "$id")"
        [[ $state == "done" ]] || outcome="$state (move $id)"
    done
    window rebalance "by load: $(wc -w <<<"$ids") moves" "$t_req" "$([[ $outcome == timeout* ]] || now_ms)" \
        "$outcome" "$(paste -sd, <<<"$ids")"
    oplog "rebalance over: $outcome, $(since "$t_req") ms after the request"
}
drain() {
    local t_req status view base ids left=""
    base="$(op_get '/api/v1/cluster/moves?limit=1' | jq '.[0].id // 0')" || base=0
    t_req="$(now_ms)"
    status="$(op_post "/api/v1/cluster/nodes/$DRAINED/drain" '')" || status=000
    if [[ $status != 202 ]]; then
        oplog "drain of $DRAINED refused: $status $(jq -c '{code, detail}' "$OUT/op_answer.json" 2>/dev/null)"
        return
    fi
    oplog "drain $DRAINED: $(jq -r .shards_owned "$OUT/op_answer.json") shards to hand off; 202 after $(since "$t_req") ms"
    while (($(now_ms) < OP_DEADLINE)); do
        view="$(op_get /api/v1/cluster)" || view='{"nodes":[]}'
        if jq -e --arg n "$DRAINED" '.nodes[] | select(.id == $n) | .state == "left" and .shards_owned == 0' \
            <<<"$view" >/dev/null; then
            left=1
            break
        fi
        sleep 0.1
    done
    # Its moves: those out of the drained node since the request.
    ids="$(op_get '/api/v1/cluster/moves?limit=1000' | jq -r --argjson base "$base" --arg n "$DRAINED" \
        '[.[] | select(.id > $base and .from == $n) | .id] | sort | map(tostring) | join(",")')" || ids=""
    window drain "$DRAINED" "$t_req" "$([[ -z $left ]] || now_ms)" "$([[ -n $left ]] && echo left || echo timeout)" "$ids"
    oplog "drain of $DRAINED $([[ -n $left ]] && echo "over, $(since "$t_req") ms after the request" || echo 'not over by the deadline')"
}
operate() {
    local i tick
    tick=$((T0 + STEADY * 1000))
    for i in $(seq 1 "$HOT_MOVES"); do
        sleep_until "$tick"
        move_hottest
        tick=$((tick + EVERY * 1000))
    done
    sleep_until "$tick"
    rebalance_by_load
    tick=$((tick + EVERY * 1000))
    sleep_until "$tick"
    drain
}

: >"$OUT/windows.tsv"
: >"$OUT/operator.log"
HOSTS="$(IFS=,; echo "${URLS[*]}")"
cmd=("$LOADTEST" --scenario reshard --hosts "$HOSTS" --hot-section "$HOT_LIST"
    --users "$USERS" --increase-rate "$RATE" --run-time "${SECS}s" --no-print-metrics
    --students "$((STUDENTS - 1))" --acks "$OUT/acks.jsonl" --summary "$OUT/reshard.json"
    --report-file "$OUT/reshard.html" --request-log "$OUT/requests.jsonl" --request-format json)
T0="$(now_ms)"
OP_DEADLINE=$((T0 + (SECS + 60) * 1000))
log "operator: first move at +${STEADY}s, then one action every ${EVERY}s ($HOT_MOVES hottest-shard moves, a rebalance by load, the drain of $DRAINED); log in $OUT/operator.log"
operate &
OP_PID=$!
printf '$ %s\n' "${cmd[*]}" >&2
timeout "$((SECS + 120))" "${cmd[@]}" >"$OUT/reshard.log" 2>&1 || {
    tail -n 30 "$OUT/reshard.log" >&2
    die "the load run failed; see $OUT/reshard.log"
}
grep -v '\[WARN\]' "$OUT/reshard.log" | sed 's/^/  /' >&2
op_status=0
wait "$OP_PID" || op_status=$?
OP_PID=""
sed 's/^/  operator: /' "$OUT/operator.log" >&2
((op_status == 0)) || die "the operator loop failed (status $op_status); see $OUT/operator.log"

op_get '/api/v1/cluster/moves?limit=1000' |
    jq --argjson base "$MOVE_BASE" '[.[] | select(.id > $base)] | sort_by(.id)' >"$OUT/moves.json"
stop_all

report

log "verifying $DB against the invariants and $(wc -l <"$OUT/acks.jsonl") acknowledgements"
run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks.jsonl" ||
    die "the verifier found violations in $DB"
done_moves="$(jq '[.[] | select(.state == "done")] | length' "$OUT/moves.json")"
((done_moves > 0)) || die "no shard moved during the run; see $OUT/operator.log"
