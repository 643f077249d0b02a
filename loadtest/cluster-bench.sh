#!/usr/bin/env bash
# loadtest/cluster-bench.sh: the price of the cluster's internal hop, measured in ONE run
# on this machine: the `flash` scenario (students log in and add 4-6 Zipf-chosen sections)
# against
#
#   (1) one node, and
#   (3) three nodes on the same PostgreSQL, the same total load (goose users spread over
#       the three nodes with --hosts), shards balanced 342/341/341 before the load starts;
#
# and, unless BENCH_FOLLOW_HOME=0,
#
#   (3f) three nodes again, the users following the home hint: each signed-in student's
#        requests go to the node its sign-in named as its home (`X-Registrar-Home`;
#        loadtest --follow-home), as a home-aware client or ingress would send them, so
#        they are not forwarded; (3) is the plain round-robin load balancer;
#
# and, unless BENCH_HTTP_HOP=0,
#
#   (3h) three nodes again, talking over the HTTP hop (one HTTP/2 request per section call
#        or forwarded request) instead of the binary wire: the transport's gain, same run;
#
# and, unless BENCH_CART=0,
#
#   (3c) three nodes again under `cart`: BENCH_CART_STUDENTS students sign in and fill
#        their carts (4-6 sections, one or two linked sets among them) before the load,
#        then all users start at once and every student submits its cart once; items
#        decided per second, p50/p99 of the submit;
#
# each on a freshly seeded database. It prints decisions per second, p50/p99, the share
# of section commands that took the internal hop to another node and the share of client
# requests forwarded to the student's home node, then the ratio 3-node/1-node, and runs
# the verifier (invariants + every acknowledged decision) after each phase. Beside them:
# `node us/dec`, the CPU time (user + system) all the phase's nodes spent per decision from
# the end of the sign-in to the end of the load, and `box busy`, how busy the whole
# machine was meanwhile. Their ratio 1-node/3-node is the efficiency three nodes reach
# when each is bounded by its own CPU; the decisions/s ratio under quotas says the same
# only while the machine itself has CPU to spare.
#
# On 2 cores three nodes cannot be faster than one: they share the same CPUs, and a
# request that lands on the wrong node costs a forward and a hop. What this measures is
# that price.
#
# Loopback only; each phase is bounded (BENCH_PHASE_SECS); every node is stopped at the
# end, also on failure. Takes ~4 minutes on 2 cores once built (~5 with the cart phase).
# Commands are printed.
#
# Environment (all optional):
#   REGISTRAR_TEST_DATABASE_URL  admin URL (default postgres://registrar:registrar@127.0.0.1:5432/postgres)
#   BENCH_USERS (200) BENCH_INCREASE_RATE (100) BENCH_PHASE_SECS (20)
#   BENCH_STUDENTS (20000) BENCH_SECTIONS (400)   seed size of each phase
#   BENCH_CART (1)               0 skips phase (3c)
#   BENCH_FOLLOW_HOME (1)        0 skips phase (3f): three nodes, users at their student's home
#   BENCH_HTTP_HOP (1)           0 skips phase (3h): three nodes talking over the HTTP hop
#                                (REGISTRAR_TRANSPORT=http) instead of the binary wire
#   BENCH_CART_STUDENTS (10000)  students of (3c), each submitting one cart
#   BENCH_DIR (reports/cluster-bench)   reports, summaries, acks, logs
#   BENCH_NODE_THREADS           tokio worker threads per node (default: the cores divided by
#                                the phase's nodes, at least 1: 2 for one node, 1 for three here)
#   BENCH_CPU_QUOTA              cores per node, e.g. 0.25: each node in a CPU cgroup of its
#                                own (loadtest/bench-nodes.sh), so that nodes behave like small
#                                machines while PostgreSQL and goose have CPU to spare; the
#                                table then adds the scale-out efficiency (3-node rate over 3 x
#                                the 1-node rate) and each node's throttling, and says so when
#                                a quota could not be applied. Without it the nodes share the
#                                cores (both figures matter: run it both ways)
#   SKIP_BUILD=1                 use the binaries already in target/release
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'cluster-bench: %s\n' "$*" >&2; }
die() {
    printf 'cluster-bench: FAILED: %s\n' "$*" >&2
    exit 1
}
run() {
    printf '$ %s\n' "$*" >&2
    "$@"
}

for tool in psql curl jq awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install postgresql-client curl jq)"
done

ADMIN_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
DB=registrar_cluster_bench
DB_URL="${ADMIN_URL%/*}/$DB"
USERS="${BENCH_USERS:-200}"
RATE="${BENCH_INCREASE_RATE:-100}"
SECS="${BENCH_PHASE_SECS:-20}"
STUDENTS="${BENCH_STUDENTS:-20000}"
SECTIONS="${BENCH_SECTIONS:-400}"
CART="${BENCH_CART:-1}"
HTTP_HOP="${BENCH_HTTP_HOP:-1}"
FOLLOW_HOME="${BENCH_FOLLOW_HOME:-1}"
CART_STUDENTS="${BENCH_CART_STUDENTS:-10000}"
if ((CART_STUDENTS > STUDENTS - 1)); then CART_STUDENTS=$((STUDENTS - 1)); fi
OUT="${BENCH_DIR:-$ROOT/reports/cluster-bench}"
SERVER=target/release/registrar
LOADTEST=target/release/registrar-loadtest

mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.json "$OUT"/*.html "$OUT"/*.log "$OUT"/*.out "$OUT"/metrics_*

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    run cargo build -j2 --release -p registrar --bin registrar -p registrar-loadtest --bin registrar-loadtest
fi

export REGISTRAR_DATABASE_URL="$DB_URL"
export REGISTRAR_RATE_LIMIT_PER_SEC=0
export REGISTRAR_LOG="${REGISTRAR_LOG:-warn}"
export REGISTRAR_JWT_SECRET="${REGISTRAR_JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REGISTRAR_LOGIN_MAX_QUEUED_HASHES="${REGISTRAR_LOGIN_MAX_QUEUED_HASHES:-100000}"
export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-bench}"
export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-bench}"
# The bench's own exchange and Redis prefix, and one consumer of every event, as in
# flash-bench.
export REGISTRAR_EVENTS_EXCHANGE="${REGISTRAR_EVENTS_EXCHANGE:-registrar.cluster-bench}"
export REGISTRAR_REDIS_PREFIX="${REGISTRAR_REDIS_PREFIX:-cluster-bench}"

# shellcheck source=deploy/local/server.sh
source "$ROOT/deploy/local/server.sh"
# start_node, stop_nodes, wait_balanced (PIDS, URLS).
# shellcheck source=loadtest/bench-nodes.sh
source "$ROOT/loadtest/bench-nodes.sh"
trap 'stop_nodes; stop_event_sink' EXIT

fresh_database() {
    run psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
    run psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
    run "$SERVER" migrate
    run "$SERVER" seed --students "$STUDENTS" --sections "$SECTIONS" --reset >"$OUT/seed.log"
}

# sum_metric SERIES: the series summed over every running node.
sum_metric() {
    local url total=0 v
    for url in "${URLS[@]}"; do
        v="$(curl -fsS "$url/metrics" | awk -v m="$1" '$1 == m {print $2}')"
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# cpu_now: CPU clock ticks used by the running nodes (user + system, every thread), then
# the machine's busy and total ticks (/proc/stat).
cpu_now() {
    local pid nodes=0
    for pid in "${PIDS[@]}"; do
        nodes=$((nodes + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$nodes $(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)"
}

# phase NAME NODES [SCENARIO]: fresh database, NODES nodes, SCENARIO (flash) spread over
# them, verify. `cart`: every user at once, each of CART_STUDENTS students submits once.
phase() {
    local name=$1 nodes=$2 scenario=${3:-flash} i hosts students rate
    # Phase (3h) runs the nodes on the HTTP hop: the transport before the wire, measured in
    # the same run.
    if [[ $name == three_http ]]; then export REGISTRAR_TRANSPORT=http; else export REGISTRAR_TRANSPORT=wire; fi
    # Each node gets its share of the cores (at least one worker thread).
    NODE_THREADS="${BENCH_NODE_THREADS:-$(( $(nproc) / nodes > 0 ? $(nproc) / nodes : 1 ))}"
    log "($name) $nodes node(s)"
    THROTTLE_LOG="$OUT/throttle_$name.txt"
    : >"$THROTTLE_LOG"
    fresh_database
    for i in $(seq 1 "$nodes"); do
        start_node "node-$i"
    done
    wait_balanced "$nodes"
    start_event_sink "$SERVER" "$OUT"
    hosts="$(IFS=,; echo "${URLS[*]}")"
    students=$((STUDENTS - 1)) rate=$RATE
    if [[ $scenario == cart ]]; then
        students=$CART_STUDENTS rate=$USERS
    fi
    local cmd=("$LOADTEST" --scenario "$scenario" --hosts "$hosts" --users "$USERS"
        --increase-rate "$rate" --run-time "${SECS}s" --no-print-metrics
        --students "$students" --acks "$OUT/acks_$name.jsonl" --pre-login
        --report-file "$OUT/$name.html" --summary "$OUT/$name.json")
    if [[ $name == three_home ]]; then cmd+=(--follow-home); fi
    printf '$ %s\n' "${cmd[*]}" >&2
    "${cmd[@]}" >"$OUT/$name.log" 2>&1 &
    local load=$! before after
    # The CPU the nodes and the machine spend from the end of the sign-in to the end of
    # the load: the decisions' cost, without the password hashing of the sign-in.
    while kill -0 "$load" 2>/dev/null && ! grep -q 'pre-login:' "$OUT/$name.log"; do
        sleep 0.2
    done
    before="$(cpu_now)"
    wait "$load" || {
        tail -n 30 "$OUT/$name.log" >&2
        die "load phase $name failed; see $OUT/$name.log"
    }
    after="$(cpu_now)"
    echo "$before $after" >"$OUT/cpu_$name.txt"
    echo "$(sum_metric registrar_cluster_section_calls_total) $(sum_metric registrar_cluster_section_hops_total) $(sum_metric registrar_cluster_forwarded_total)" \
        "$(sum_metric registrar_commit_transactions_total) $(sum_metric registrar_changes_committed_total)" \
        >"$OUT/hops_$name.txt"
    stop_nodes
    stop_event_sink
    log "verifying phase $name"
    run "$LOADTEST" verify --database-url "$DB_URL" --acks "$OUT/acks_$name.jsonl" ||
        die "the verifier found violations after phase $name"
}

phase one 1
phase three 3
PHASES=(one three)
if [[ $FOLLOW_HOME != 0 ]]; then
    phase three_home 3
    PHASES+=(three_home)
fi
if [[ $HTTP_HOP != 0 ]]; then
    phase three_http 3
    PHASES+=(three_http)
fi
if [[ $CART != 0 ]]; then
    phase three_cart 3 cart
    PHASES+=(three_cart)
fi

j() { jq -r "$2" "$OUT/$1.json"; }
# Decisions per second: enroll answers that are decisions; for a cart phase, its items.
rate() { j "$1" 'if .cart then .cart.items_per_s else .ops.enroll | if .answers > 0 then .per_s * (.answers - .failed) / .answers else 0 end end'; }
# The timed request: enroll, or the cart's submit.
op() { if [[ $1 == *cart ]]; then echo cart_submit; else echo enroll; fi; }
share() {
    local calls hops fwd txs changes requests
    read -r calls hops fwd txs changes <"$OUT/hops_$1.txt"
    requests="$(j "$1" '(.ops.enroll.answers // 0) + (.ops.login.answers // 0) + (.ops.cart_submit.answers // 0) + (.staging.puts // 0)')"
    awk -v c="$calls" -v h="$hops" -v f="$fwd" -v r="$requests" -v t="${txs:-0}" -v n="${changes:-0}" \
        'BEGIN { printf "%5.1f%% %5.1f%% %6.1f", (c > 0 ? 100 * h / c : 0), (r > 0 ? 100 * f / r : 0), (t > 0 ? n / t : 0) }'
}
# Node CPU per decision (microseconds; every node's user + system time over the load,
# after the sign-in), and how busy the whole machine was meanwhile.
decisions() { j "$1" 'if .cart then .cart.items else (.ops.enroll.answers - .ops.enroll.failed) end'; }
cpu_per_decision() {
    local n0 b0 t0 n1 b1 t1
    read -r n0 b0 t0 n1 b1 t1 <"$OUT/cpu_$1.txt"
    awk -v n=$((n1 - n0)) -v hz="$(getconf CLK_TCK)" -v d="$(decisions "$1")" \
        'BEGIN { if (d > 0) printf "%.0f", n / hz * 1e6 / d; else print "n/a" }'
}
box_busy() {
    local n0 b0 t0 n1 b1 t1
    read -r n0 b0 t0 n1 b1 t1 <"$OUT/cpu_$1.txt"
    awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { if (t > 0) printf "%.0f%%", 100 * b / t; else print "n/a" }'
}
ONE="$(rate one)"
THREE="$(rate three)"
{
    if [[ -z ${BENCH_CPU_QUOTA:-} ]]; then
        cpus='2 cores shared by every node, PostgreSQL and goose'
    elif [[ -n $QUOTA_FAILED ]]; then
        cpus="NO CPU quota applied ($QUOTA_FAILED): 2 cores shared"
    else
        cpus="each node limited to $BENCH_CPU_QUOTA of a core (its own cgroup); PostgreSQL and goose unlimited on 2 cores"
    fi
    printf '\ncluster-bench: flash%s, %s users, %ss per phase, %s students, %s sections; %s\n\n' \
        "$([[ $CART != 0 ]] && echo ' (and cart)')" "$USERS" "$SECS" "$STUDENTS" "$SECTIONS" "$cpus"
    printf '%-24s %12s %9s %9s %8s %10s %14s %12s %9s %8s\n' "phase" "decisions/s" "p50 ms" "p99 ms" "hops" "forwarded" "changes/commit" "node us/dec" "box busy" "failed"
    for p in "${PHASES[@]}"; do
        read -r hop fwd per_commit <<<"$(share "$p")"
        case $p in
            one) label='(1) one node' ;;
            three) label='(3) three nodes' ;;
            three_http) label='(3h) three, HTTP hop' ;;
            three_home) label='(3f) three, at home' ;;
            *) label='(3c) three nodes, cart' ;;
        esac
        printf '%-24s %12.1f %9.2f %9.2f %8s %10s %14s %12s %9s %8s\n' "$label" \
            "$(rate "$p")" "$(j "$p" ".ops.$(op "$p").p50_ms")" "$(j "$p" ".ops.$(op "$p").p99_ms")" "$hop" "$fwd" "$per_commit" \
            "$(cpu_per_decision "$p")" "$(box_busy "$p")" "$(j "$p" .failed_total)"
    done
    # The ratios of a three-node phase P against one node: node CPU per decision, and
    # decisions/s (under quotas over 3 x one node, on shared cores over one node).
    cpu_ratio() { awk -v a="$(cpu_per_decision one)" -v b="$(cpu_per_decision "$1")" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
    rate_ratio() { awk -v a="$(rate "$1")" -v b="$ONE" -v k="$2" 'BEGIN { if (b > 0) printf "%.3f", a / (k * b); else print "n/a" }'; }
    printf '\nnode CPU per decision, 1-node/3-node = %s: the efficiency three nodes bounded by their own CPU reach (1.0 = a decision costs the cluster no more than one node)\n' \
        "$(cpu_ratio three)$([[ $FOLLOW_HOME != 0 ]] && echo "; (3f) at home: $(cpu_ratio three_home)")"
    if [[ -n ${BENCH_CPU_QUOTA:-} && -z $QUOTA_FAILED ]]; then
        printf 'scale-out efficiency under quotas, 3-node/(3 x 1-node) decisions/s = %s (target >= 0.80; bounded by the machine when "box busy" nears 100%%)\n' \
            "$(rate_ratio three 3)$([[ $FOLLOW_HOME != 0 ]] && echo "; (3f) at home: $(rate_ratio three_home 3)")"
        for p in "${PHASES[@]}"; do
            sed "s/^/($p) /" "$OUT/throttle_$p.txt"
        done
    fi
    if [[ $HTTP_HOP != 0 ]]; then
        printf '\nwire/HTTP hop, three nodes, decisions/s = %s (3) / (3h)\n' \
            "$(awk -v a="$THREE" -v b="$(rate three_http)" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')"
    fi
    printf '\nratio 3-node/1-node decisions/s = %s%s; hops = section commands sent to another node; forwarded = client requests sent on to the home node; changes/commit = committed changes per committer transaction, all nodes\n' \
        "$(rate_ratio three 1)$([[ $FOLLOW_HOME != 0 ]] && echo "; (3f) at home: $(rate_ratio three_home 1)")" \
        "$([[ -z ${BENCH_CPU_QUOTA:-} ]] && echo ' (target >= 0.70 on shared cores)')"
    if [[ $CART != 0 ]]; then
        printf '(3c): decisions/s = items decided (enrolled, waitlisted, refused), p50/p99 of the submit; %s carts/s, %s linked sets/s (%s of %s seated whole), %s carts in %s s; carts filled before the load: %s PUTs, %s/s, p99 %s ms (forwarded counts them as requests)\n' \
            "$(j three_cart '.cart.carts_per_s | . * 10 | floor / 10')" "$(j three_cart '.cart.sets_per_s | . * 10 | floor / 10')" \
            "$(j three_cart '.cart.set_outcomes.enrolled // 0')" "$(j three_cart '.cart.sets')" "$(j three_cart '.cart.carts')" \
            "$(j three_cart '.window_s | . * 10 | floor / 10')" "$(j three_cart '.staging.puts')" \
            "$(j three_cart '.staging.per_s | floor')" "$(j three_cart '.staging.p99_ms * 100 | floor / 100')"
    fi
    printf 'goose reports: %s/{%s}.html; every phase verified clean\n\n' "$OUT" "$(IFS=,; echo "${PHASES[*]}")"
} | tee "$OUT/table.txt"
