#!/usr/bin/env bash
# loadtest/chaos-bench.sh: is registrar correct under faults? Three `registrar serve` nodes
# on one PostgreSQL take N minutes of mixed load (the `chaos` scenario: flash bursts and a
# swap-heavy churn, every decision through the careful client with an Idempotency-Key)
# while a nemesis injects one random fault after another, seeded so that a run can be
# replayed. Afterwards the nemesis stops, the cluster settles, the nodes stop, and both
# verifiers run (`registrar verify`: the database alone; `registrar-loadtest verify
# --acks`: the database against every acknowledged answer). It prints a table and exits
# 1 if any invariant failed.
#
# How the faults are made. Each node runs in a network namespace of its own
# (`ip netns`), joined to the host by a veth pair on one bridge (10.77.0.0/24: the host
# is 10.77.0.1, node-K is 10.77.0.(10+K) and listens there, which is also its internal
# address); PostgreSQL, Redis and RabbitMQ stay on 127.0.0.1 and are reached through
# socat forwarders on 10.77.0.1 (ports 35432, 36379, 35672), so each node's traffic to
# them and to its peers crosses its namespace's own iptables, and no service is
# reconfigured. The load generator and the verifiers run on the host.
#
#   kill        kill -9 of node-K, restarted 1-2.5 s later (same node id)
#   pause       SIGSTOP of node-K for its lease + 0.3-1.3 s, then SIGCONT (it must find
#               itself fenced and rejoin)
#   pg-pause    SIGSTOP of the PostgreSQL backends serving node-K (found by the
#               application_name every node sets, chaos-node-K) for 1.5-3 s, then SIGCONT
#   db-cut      node-K cut from PostgreSQL for 2-4 s: iptables DROP (silence) or REJECT
#               (tcp-reset), chosen by the seed, on its OUTPUT to 10.77.0.1:35432
#   partition   node-K cut from both peers for 2-4 s (iptables DROP of INPUT from and
#               OUTPUT to their addresses); PostgreSQL and the clients still reach it
#   skew        node-K restarted under libfaketime (FAKETIME=+/-30..120 s,
#               FAKETIME_DONT_FAKE_MONOTONIC=1, so timers stay sane), kept skewed for
#               4-6 s, then restarted with the true clock
#
# One fault at a time, with 0.5-1.5 s of calm between them (a 3-minute run sees every
# kind at least five times); the order is a seeded shuffle
# of every kind, round after round (so a short run still sees each kind), each fault on
# a seeded node. The plan (faults-plan.tsv) is printed before the load starts; the same
# --seed (and --minutes/--seconds) replays it. The nemesis starts after a warm-up and
# stops before the load ends; every fault is undone when it ends, and all of them on
# exit (SIGCONT, iptables flushed, namespaces, bridge, forwarders and nodes removed) by a
# trap, whatever happens.
#
# Options:
#   --minutes N       load duration in minutes (default 3)
#   --seconds N       load duration in seconds (overrides --minutes; CI uses 60)
#   --seed N          the nemesis' seed (default: random, printed)
#   --users N         goose users (default 40)
#   --settle N        seconds the cluster runs after the load before it stops (default 20)
#   --report-only     print the table again from the files of the last run
# Environment: CHAOS_DIR (default reports/chaos-bench), CHAOS_STUDENTS (4000),
#   CHAOS_SECTIONS (150), CHAOS_BIN_DIR (default target/debug: the debug build, which
#   shares its dependencies with cargo test), SKIP_BUILD=1, REGISTRAR_TEST_DATABASE_URL
#   (admin URL, default postgres://registrar:registrar@127.0.0.1:5432/postgres).
#
# Needs root (namespaces, iptables); installs iproute2, iptables, faketime and socat with
# apt-get when missing, as deploy/local/services.sh does. Touches only 127.0.0.1 and the
# addresses it creates. Bounded: load + settle + ~90 s of setup and teardown.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'chaos-bench: %s\n' "$*" >&2; }
die() {
    printf 'chaos-bench: FAILED: %s\n' "$*" >&2
    exit 1
}

MINUTES=3
SECS=""
SEED=""
USERS=40
SETTLE=20
REPORT_ONLY=0
while (($#)); do
    case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --users) USERS=$2; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (--help)" ;;
    esac
done
[[ -n $SECS ]] || SECS=$((MINUTES * 60))
[[ -n $SEED ]] || SEED=$(( (RANDOM << 15 | RANDOM) % 1000000 ))
[[ $SECS =~ ^[0-9]+$ && $SEED =~ ^[0-9]+$ && $USERS =~ ^[0-9]+$ && $SETTLE =~ ^[0-9]+$ ]] ||
    die "--seconds/--minutes, --seed, --users and --settle take whole numbers"
((SECS >= 30)) || die "at least 30 s of load (warm-up and cool-down take 10)"

OUT="${CHAOS_DIR:-$ROOT/reports/chaos-bench}"
BIN="${CHAOS_BIN_DIR:-$ROOT/target/debug}"
SERVER="$BIN/registrar"
LOADTEST="$BIN/registrar-loadtest"
ADMIN_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB=registrar_chaos
DB_URL="${ADMIN_URL%/*}/$DB"
DB_USERPASS="${ADMIN_URL#*://}"
DB_USERPASS="${DB_USERPASS%@*}"
STUDENTS="${CHAOS_STUDENTS:-4000}"
SECTIONS="${CHAOS_SECTIONS:-150}"
NODES=3
NET=10.77.0
BRIDGE=rgchaos0
PG_FWD=35432
REDIS_FWD=36379
AMQP_FWD=35672
LEASE_MS=5000
WARMUP=5
COOLDOWN=5
KINDS=(kill pause pg-pause db-cut partition skew)

now_ms() { date +%s%3N; }
pct() {
    sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 }
        END { if (NR == 0) { print "n/a"; exit }
              i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
              printf "%.1f", v[i] }'
}

# --- the table, from the files in $OUT only (also --report-only) -----------------------
#   run.json       settings and outcome      chaos.json      registrar-loadtest's summary
#   faults.tsv     kind, node, start, end (Unix ms), detail
#   requests.jsonl goose's request log       acks.jsonl      the acknowledgement log
#   verify-db.txt, verify-acks.txt           the two verifiers' output
report() {
    local summary="$OUT/chaos.json" anchor
    for f in "$OUT/run.json" "$summary" "$OUT/faults.tsv" "$OUT/requests.jsonl" "$OUT/acks.jsonl" \
        "$OUT/verify-db.txt" "$OUT/verify-acks.txt"; do
        [[ -f $f ]] || die "report: $f is missing"
    done
    anchor="$(jq -r '.goose_started_unix_ms // empty' "$summary")"
    [[ -n $anchor ]] || die "report: $summary has no goose_started_unix_ms"
    # One line per logical request (a "<name> retry" line continues the same user's
    # previous request): start, end (Unix ms), latency, name, final status, attempts.
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
    # Decisions (enroll, drop, swap) split by whether they overlap a fault window.
    awk -v wfile="$OUT/faults.tsv" -v sfile="$OUT/latency_calm.txt" -v dfile="$OUT/latency_faults.txt" \
        'BEGIN { FS = OFS = "\t"; printf "" > sfile; printf "" > dfile }
        FILENAME == wfile { n++; a[n] = $3; b[n] = ($4 == "" ? 9e15 : $4); next }
        $4 != "enroll" && $4 != "drop" && $4 != "swap" { next }
        {
            during = 0
            for (i = 1; i <= n; i++) if ($1 <= b[i] && $2 >= a[i]) { during = 1; break }
            print $3 > (during ? dfile : sfile)
        }' "$OUT/faults.tsv" "$OUT/requests.tsv"

    # found NAME FILE: the violations a verifier reported under check NAME (0 if none).
    found() {
        awk -v n="VIOLATION [$1]: " 'index($0, n) == 1 { split(substr($0, length(n) + 1), a, " "); print a[1]; f = 1 }
            END { if (!f) print 0 }' "$2"
    }
    sum_found() { local t=0 n; for n in "$@"; do t=$((t + $(found "$n" "$OUT/verify-acks.txt"))); done; echo "$t"; }
    local acks unknown lost oversold rules neither both reversed un_neither un_both under_way keyed others
    acks="$(grep -vc '"result":"unknown"' "$OUT/acks.jsonl" || true)"
    unknown="$(grep -c '"result":"unknown"' "$OUT/acks.jsonl" || true)"
    lost="$(found "acknowledged decisions are durable" "$OUT/verify-acks.txt")"
    oversold="$(jq -r '.oversold_seats // "n/a"' "$OUT/run.json")"
    rules="$(sum_found "one section per course" "credit limit" "no time conflict")"
    neither="$(found "swaps: acknowledged, in neither" "$OUT/verify-acks.txt")"
    both="$(found "swaps: acknowledged, in both" "$OUT/verify-acks.txt")"
    reversed="$(found "swaps: acknowledged, reversed" "$OUT/verify-acks.txt")"
    un_neither="$(found "swaps: unanswered, in neither" "$OUT/verify-acks.txt")"
    un_both="$(found "swaps: unanswered, in both" "$OUT/verify-acks.txt")"
    under_way="$(found "swaps under way" "$OUT/verify-db.txt")"
    keyed="$(found "idempotency keys replay the first answer" "$OUT/verify-acks.txt")"
    # Any other check that failed (oversell and the rest of checks 1-5), by name.
    others="$(sed -n 's/^VIOLATION \[\(.*\)\]: \([0-9]*\) found$/\1 (\2)/p' "$OUT/verify-db.txt" "$OUT/verify-acks.txt" |
        grep -v -e '^acknowledged decisions' -e '^one section per' -e '^credit limit' -e '^no time conflict' \
            -e '^swaps' -e '^idempotency keys' | sort -u | paste -sd, || true)"
    {
        jq -r '"\nchaos-bench: seed \(.seed), \(.secs) s of `chaos` load (\(.users) users over 3 nodes, \(.students) students, \(.sections) sections), settle \(.settle) s; 2 cores shared by the nodes, PostgreSQL and goose\n"' "$OUT/run.json"
        printf '%-46s %10s\n' "faults by kind" "count"
        local k
        for k in "${KINDS[@]}"; do
            printf '  %-44s %10s\n' "$k" "$(awk -F '\t' -v k="$k" '$1 == k' "$OUT/faults.tsv" | wc -l)"
        done
        printf '  %-44s %10s\n' "total (time under fault: $(awk -F '\t' '{ t += $4 - $3 } END { printf "%.0f", t / 1000 }' "$OUT/faults.tsv") s)" "$(wc -l <"$OUT/faults.tsv")"
        printf '\n%-46s %10s\n' "requests (logical, all kinds)" "$(wc -l <"$OUT/requests.tsv")"
        printf '%-46s %10s\n' "  failed (5xx after retries, timeouts, ...)" "$(jq -r .failed_total "$OUT/chaos.json")"
        printf '%-46s %10s\n' "  503s absorbed by the careful client" "$(jq -r .retries_total "$OUT/chaos.json")"
        printf '%-46s %10s\n' "acknowledgements (ack log lines)" "$acks"
        printf '%-46s %10s\n' "  outcomes unknown (no final answer)" "$unknown"
        printf '%-46s %10s\n' "lost acknowledgements" "$lost"
        printf '%-46s %10s\n' "oversold seats" "$oversold"
        printf '%-46s %10s\n' "rule violations (course, credits, time)" "$rules"
        printf '%-46s %10s\n' "acknowledged swaps in neither / both" "$neither / $both"
        printf '%-46s %10s\n' "acknowledged swaps reversed" "$reversed"
        printf '%-46s %10s\n' "unanswered swaps in neither / both" "$un_neither / $un_both"
        printf '%-46s %10s\n' "swaps under way after the settle" "$under_way"
        printf '%-46s %10s\n' "idempotency keys not replaying their answer" "$keyed"
        printf '%-46s %10s\n' "other invariant checks failed" "${others:-none}"
        printf '\n%-46s %10s %9s %9s\n' "decisions (enroll, drop, swap)" "count" "p50 ms" "p99 ms"
        printf '  %-44s %10s %9s %9s\n' "outside faults" "$(wc -l <"$OUT/latency_calm.txt")" \
            "$(pct "$OUT/latency_calm.txt" 50)" "$(pct "$OUT/latency_calm.txt" 99)"
        printf '  %-44s %10s %9s %9s\n' "during a fault" "$(wc -l <"$OUT/latency_faults.txt")" \
            "$(pct "$OUT/latency_faults.txt" 50)" "$(pct "$OUT/latency_faults.txt" 99)"
        printf '\n%s\n%s\n' "$(tail -n 1 "$OUT/verify-db.txt")" "$(tail -n 1 "$OUT/verify-acks.txt")"
        printf 'replay: loadtest/chaos-bench.sh --seconds %s --seed %s --users %s   (plan: %s/faults-plan.tsv)\n\n' \
            "$(jq -r .secs "$OUT/run.json")" "$(jq -r .seed "$OUT/run.json")" "$(jq -r .users "$OUT/run.json")" "$OUT"
    } | tee "$OUT/table.txt"
}

if ((REPORT_ONLY)); then
    report
    exit 0
fi

# --- tools ---------------------------------------------------------------------------
((EUID == 0)) || die "needs root (network namespaces, iptables)"
missing=()
for pair in ip:iproute2 iptables:iptables faketime:faketime socat:socat psql:postgresql-client curl:curl jq:jq; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
fi
FAKETIME_LIB="$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n1 || true)"
[[ -n $FAKETIME_LIB ]] || die "libfaketime.so.1 not found (apt-get install faketime)"

mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.json "$OUT"/*.html "$OUT"/*.log "$OUT"/*.out "$OUT"/*.tsv "$OUT"/*.txt "$OUT"/*.pid "$OUT"/stopped-pids

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building the server and the load test"
    cargo build -j1 -p registrar --bin registrar -p registrar-loadtest --bin registrar-loadtest
fi
[[ -x $SERVER && -x $LOADTEST ]] || die "no binaries in $BIN"

# --- cleanup (trap) --------------------------------------------------------------------
FWD_PIDS=()
NEMESIS_PID=""
LOAD_PID=""
# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
node_pid() { cat "$OUT/node-$1.pid" 2>/dev/null || true; }
cleanup() {
    set +e
    [[ -n $NEMESIS_PID ]] && kill "$NEMESIS_PID" 2>/dev/null && wait "$NEMESIS_PID" 2>/dev/null
    [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
    # Whatever was stopped goes on again (a stopped PostgreSQL backend would hold its locks).
    if [[ -f $OUT/stopped-pids ]]; then
        xargs -r kill -CONT <"$OUT/stopped-pids" 2>/dev/null
    fi
    local k pid
    for k in $(seq 1 "$NODES"); do
        pid="$(node_pid "$k")"
        [[ -n $pid ]] && kill -CONT "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        ip netns del "rgchaos-n$k" 2>/dev/null
    done
    for pid in "${FWD_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    ip link del "$BRIDGE" 2>/dev/null
    stop_event_sink
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- network: a bridge, one namespace per node, forwarders to the services -------------
ip route | grep -q "^$NET\." && ! ip link show "$BRIDGE" >/dev/null 2>&1 &&
    die "$NET.0/24 is already routed on this machine; not touching it"
ip link del "$BRIDGE" 2>/dev/null || true
ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for k in $(seq 1 "$NODES"); do
    ns="rgchaos-n$k"
    ip netns del "$ns" 2>/dev/null || true
    ip link del "rgc$k" 2>/dev/null || true
    ip netns add "$ns"
    ip link add "rgc$k" type veth peer name "rgc${k}n"
    ip link set "rgc${k}n" netns "$ns"
    ip link set "rgc$k" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "rgc${k}n" name eth0
    ip -n "$ns" addr add "$NET.$((10 + k))/24" dev eth0
    ip -n "$ns" link set eth0 up
done
forward() {
    socat "TCP-LISTEN:$1,bind=$NET.1,reuseaddr,fork,backlog=512" "TCP:127.0.0.1:$2" 2>>"$OUT/forwarders.log" &
    FWD_PIDS+=("$!")
}
forward "$PG_FWD" 5432
forward "$REDIS_FWD" 6379
forward "$AMQP_FWD" 5672
for _ in $(seq 1 50); do
    ip netns exec rgchaos-n1 bash -c "exec 3<>/dev/tcp/$NET.1/$PG_FWD" 2>/dev/null && break
    sleep 0.1
done
ip netns exec rgchaos-n1 bash -c "exec 3<>/dev/tcp/$NET.1/$PG_FWD" 2>/dev/null ||
    die "node namespaces cannot reach PostgreSQL through $NET.1:$PG_FWD"

# --- database --------------------------------------------------------------------------
export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REGISTRAR_LOGIN_MAX_QUEUED_HASHES="${REGISTRAR_LOGIN_MAX_QUEUED_HASHES:-100000}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-chaos}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-chaos}"
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.chaos-bench}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-chaos-bench}"
log "fresh database $DB: $STUDENTS students, $SECTIONS sections"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null
"$SERVER" migrate >"$OUT/migrate.log" 2>&1 || die "migrate failed: $(tail -n 5 "$OUT/migrate.log")"
"$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed.log" 2>&1 ||
    die "seed failed: $(tail -n 5 "$OUT/seed.log")"

# --- nodes -----------------------------------------------------------------------------
node_addr() { printf '%s.%s' "$NET" "$((10 + $1))"; }
node_url() { printf 'http://%s:8080' "$(node_addr "$1")"; }
# start_node K [FAKETIME]: node-K in its namespace, pid in $OUT/node-K.pid.
start_node() {
    local k=$1 skew=${2:-} env=()
    if [[ -n $skew ]]; then
        env=(LD_PRELOAD="$FAKETIME_LIB" FAKETIME="$skew" FAKETIME_DONT_FAKE_MONOTONIC=1)
    fi
    ip netns exec "rgchaos-n$k" env "${env[@]}" \
        REGISTRAR_NODE_ID="node-$k" REGISTRAR_LISTEN="$(node_addr "$k"):8080" \
        REGISTRAR_ADVERTISE_URL="$(node_url "$k")" REGISTRAR_LEASE_MS="$LEASE_MS" \
        REGISTRAR_DRAIN_TIMEOUT_MS=5000 REGISTRAR_WORKER_THREADS=1 \
        REGISTRAR_DATABASE_URL="postgres://$DB_USERPASS@$NET.1:$PG_FWD/$DB?application_name=chaos-node-$k" \
        REGISTRAR_REDIS_URL="redis://$NET.1:$REDIS_FWD" \
        REGISTRAR_AMQP_URL="amqp://guest:guest@$NET.1:$AMQP_FWD/%2f" \
        "$SERVER" serve </dev/null >>"$OUT/node-$k.out" 2>>"$OUT/node-$k.log" &
    echo $! >"$OUT/node-$k.pid"
    # Killed on purpose: no "Killed" notice from bash when it is reaped.
    disown $!
}
ready() { [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(node_url "$1")/readyz" || true)" == 200 ]]; }
for k in $(seq 1 "$NODES"); do
    start_node "$k"
done
for k in $(seq 1 "$NODES"); do
    for _ in $(seq 1 300); do
        ready "$k" && break
        kill -0 "$(node_pid "$k")" 2>/dev/null || die "node-$k exited at start: $(tail -n 20 "$OUT/node-$k.log")"
        sleep 0.2
    done
    ready "$k" || die "node-$k was not ready within 60 s"
    log "node-$k ready on $(node_url "$k") (namespace rgchaos-n$k, pid $(node_pid "$k"))"
done
start_event_sink "$SERVER" "$OUT"

# --- the plan --------------------------------------------------------------------------
# Drawn in this shell only (a subshell would reseed $RANDOM), so a seed is a plan.
RANDOM=$SEED
budget=$(( (SECS - WARMUP - COOLDOWN) * 1000 ))
t=0
: >"$OUT/faults-plan.tsv"
while ((t < budget)); do
    order=("${KINDS[@]}")
    for ((i = ${#order[@]} - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1)))
        tmp=${order[i]}; order[i]=${order[j]}; order[j]=$tmp
    done
    for kind in "${order[@]}"; do
        node=$((RANDOM % NODES + 1))
        case $kind in
        kill) hold=$((1000 + RANDOM % 1500)); detail="down ${hold} ms" ;;
        pause) hold=$((LEASE_MS + 300 + RANDOM % 1000)); detail="stopped ${hold} ms" ;;
        pg-pause) hold=$((1500 + RANDOM % 1500)); detail="backends stopped ${hold} ms" ;;
        db-cut) hold=$((2000 + RANDOM % 2000)); how=(REJECT DROP); detail="${how[RANDOM % 2]} ${hold} ms" ;;
        partition) hold=$((2000 + RANDOM % 2000)); detail="DROP peers ${hold} ms" ;;
        skew) hold=$((4000 + RANDOM % 2000)); how=(- +); detail="${how[RANDOM % 2]}$((30 + RANDOM % 91))s ${hold} ms" ;;
        esac
        gap=$((500 + RANDOM % 1000))
        # A fault that would not end before the cool-down is left out.
        ((t + hold > budget)) && { t=$budget; break; }
        printf '%s\t%s\t%s\t%s\t%s\n' "$((t + WARMUP * 1000))" "$kind" "$node" "$hold" "$detail" >>"$OUT/faults-plan.tsv"
        t=$((t + hold + gap))
    done
done
for kind in "${KINDS[@]}"; do
    awk -F '\t' -v k="$kind" '$2 == k { f = 1 } END { exit !f }' "$OUT/faults-plan.tsv" ||
        log "WARNING: no $kind fault fits in this run (seed $SEED, $SECS s)"
done
log "seed $SEED: $(wc -l <"$OUT/faults-plan.tsv") faults planned (at ms from the load's start, kind, node, hold, detail):"
sed 's/^/  /' "$OUT/faults-plan.tsv" >&2

# --- the nemesis -----------------------------------------------------------------------
ms_sleep() { (($1 > 0)) && sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')" || true; }
restart_node() { # K [FAKETIME]
    local pid
    pid="$(node_pid "$1")"
    kill -9 "$pid" 2>/dev/null || true
    timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || true
    start_node "$@"
}
ns_iptables() { ip netns exec "rgchaos-n$1" iptables "${@:2}"; }
inject() { # kind node hold detail; echoes the end stamp once undone
    local kind=$1 k=$2 hold=$3 detail=$4 pid pids j target
    case $kind in
    kill)
        pid="$(node_pid "$k")"
        kill -9 "$pid" 2>/dev/null || true
        ms_sleep "$hold"
        start_node "$k"
        ;;
    pause)
        pid="$(node_pid "$k")"
        echo "$pid" >>"$OUT/stopped-pids"
        kill -STOP "$pid" 2>/dev/null || true
        ms_sleep "$hold"
        kill -CONT "$pid" 2>/dev/null || true
        ;;
    pg-pause)
        pids="$(psql "$ADMIN_URL" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND application_name = 'chaos-node-$k'" 2>/dev/null || true)"
        # shellcheck disable=SC2086
        [[ -n $pids ]] && { printf '%s\n' $pids >>"$OUT/stopped-pids"; kill -STOP $pids 2>/dev/null || true; }
        ms_sleep "$hold"
        # shellcheck disable=SC2086
        [[ -n $pids ]] && kill -CONT $pids 2>/dev/null || true
        detail+=" ($(wc -w <<<"$pids") backends)"
        ;;
    db-cut)
        target="REJECT --reject-with tcp-reset"
        [[ $detail == DROP* ]] && target=DROP
        # shellcheck disable=SC2086
        ns_iptables "$k" -A OUTPUT -d "$NET.1" -p tcp --dport "$PG_FWD" -j $target
        ms_sleep "$hold"
        ns_iptables "$k" -F OUTPUT
        ;;
    partition)
        for j in $(seq 1 "$NODES"); do
            ((j == k)) && continue
            ns_iptables "$k" -A INPUT -s "$(node_addr "$j")" -j DROP
            ns_iptables "$k" -A OUTPUT -d "$(node_addr "$j")" -j DROP
        done
        ms_sleep "$hold"
        ns_iptables "$k" -F INPUT
        ns_iptables "$k" -F OUTPUT
        ;;
    skew)
        restart_node "$k" "${detail%% *}"
        ms_sleep "$hold"
        restart_node "$k"
        ;;
    esac
    printf '%s\n' "$detail"
}
nemesis() {
    local at kind k hold detail start
    while IFS=$'\t' read -r at kind k hold detail; do
        ms_sleep $((LOAD_T0 + at - $(now_ms)))
        start="$(now_ms)"
        printf '%s +%6.1fs %-9s node-%s %s\n' "$(date +%T)" "$(awk -v a="$start" -v b="$LOAD_T0" 'BEGIN { print (a - b) / 1000 }')" "$kind" "$k" "$detail" >>"$OUT/nemesis.log"
        detail="$(inject "$kind" "$k" "$hold" "$detail")"
        printf '%s\tnode-%s\t%s\t%s\t%s\n' "$kind" "$k" "$start" "$(now_ms)" "$detail" >>"$OUT/faults.tsv"
    done <"$OUT/faults-plan.tsv"
}

# --- the run ---------------------------------------------------------------------------
jq -n --argjson seed "$SEED" --argjson secs "$SECS" --argjson users "$USERS" --argjson settle "$SETTLE" \
    --argjson students "$STUDENTS" --argjson sections "$SECTIONS" \
    '{seed: $seed, secs: $secs, users: $users, settle: $settle, students: $students, sections: $sections}' >"$OUT/run.json"
hosts="$(for k in $(seq 1 "$NODES"); do node_url "$k"; echo; done | paste -sd,)"
: >"$OUT/faults.tsv"
cmd=("$LOADTEST" --scenario chaos --hosts "$hosts" --users "$USERS" --increase-rate "$USERS"
    --run-time "${SECS}s" --no-print-metrics --students "$((STUDENTS - 1))"
    --acks "$OUT/acks.jsonl" --summary "$OUT/chaos.json" --report-file "$OUT/chaos.html"
    --request-log "$OUT/requests.jsonl" --request-format json)
log "seed $SEED; load: ${cmd[*]}"
"${cmd[@]}" >"$OUT/load.log" 2>&1 &
LOAD_PID=$!
LOAD_T0="$(now_ms)"
nemesis &
NEMESIS_PID=$!
status=0
wait "$LOAD_PID" || status=$?
LOAD_PID=""
# The load is bounded by goose's --run-time; the nemesis by its plan (which ends before
# the load does); wait for a fault still being undone.
timeout 30 tail --pid="$NEMESIS_PID" -f /dev/null || true
kill "$NEMESIS_PID" 2>/dev/null || true
wait "$NEMESIS_PID" 2>/dev/null || true
NEMESIS_PID=""
((status == 0)) || { tail -n 30 "$OUT/load.log" >&2; die "the load generator failed (exit $status); see $OUT/load.log"; }
log "load over; $(wc -l <"$OUT/faults.tsv") faults injected; the cluster settles for $SETTLE s"
for k in $(seq 1 "$NODES"); do
    kill -0 "$(node_pid "$k")" 2>/dev/null || { log "node-$k is not running; starting it"; start_node "$k"; }
done
sleep "$SETTLE"
# Stop the nodes (SIGTERM: in-flight batches commit), so the database is final.
for k in $(seq 1 "$NODES"); do
    kill "$(node_pid "$k")" 2>/dev/null || true
done
for k in $(seq 1 "$NODES"); do
    pid="$(node_pid "$k")"
    timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
done
stop_event_sink

# --- verify ----------------------------------------------------------------------------
# A swap still under way SETTLE s after the load is stuck (the finisher retries one
# after 10 s).
export REGISTRAR_VERIFY_SWAPS_SETTLED_SECS="$SETTLE"
failed=0
log "$SERVER verify"
"$SERVER" verify >"$OUT/verify-db.txt" 2>&1 || failed=1
log "$LOADTEST verify --database-url <$DB> --acks $OUT/acks.jsonl"
"$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks.jsonl" >"$OUT/verify-acks.txt" 2>&1 || failed=1
oversold="$(psql "$DB_URL" -Atc "SELECT coalesce(sum(greatest(seated - capacity, 0)), 0)
    FROM (SELECT s.capacity, count(e.id) AS seated FROM sections s
          LEFT JOIN enrollments e ON e.section_id = s.id AND e.status = 'enrolled' GROUP BY s.id) x")"
jq --argjson o "$oversold" --argjson f "$failed" '. + {oversold_seats: $o, verify_failed: ($f == 1)}' \
    "$OUT/run.json" >"$OUT/run.json.new" && mv "$OUT/run.json.new" "$OUT/run.json"
report
if ((failed)); then
    grep -h -A 21 '^VIOLATION' "$OUT/verify-db.txt" "$OUT/verify-acks.txt" >&2 || true
    die "invariants failed (seed $SEED); $OUT/verify-*.txt, faults in $OUT/faults.tsv"
fi
log "passed: every invariant held (seed $SEED)"
