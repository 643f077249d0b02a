#!/usr/bin/env bash
# deploy/local/cluster.sh: run a local registrar cluster of N nodes on this machine, all
# against one PostgreSQL database (the same services, settings and token secret as up.sh).
#
#   cluster.sh up [N]      N nodes (default 3): services.sh, the release build, migrate and
#                          the demo seed once (wipes the data; SKIP_SEED=1 keeps it), then
#                          node-K serves on 127.0.0.1:(8080+K) in the background
#                          (REGISTRAR_NODE_ID=node-K, REGISTRAR_LISTEN and
#                          REGISTRAR_ADVERTISE_URL=http://127.0.0.1:(8080+K)); waits until every
#                          node answers GET /readyz 200, then prints the URLs. A node that exits
#                          or is not ready in time fails `up` and the nodes it started are stopped.
#   cluster.sh down [K..]  SIGTERM to every node (or to node-K.. only): each drains, handing
#                          its shards to the nodes left; SIGKILL to any still running after the
#                          drain timeout (REGISTRAR_DRAIN_TIMEOUT_MS as given to `up`) + 15 s
#   cluster.sh status      each node's process and GET /readyz; exit 0 only when every node
#                          runs and is ready
#
# Files: .registrar/cluster/node-K.{pid,out,log} (pid, stdout, the node's log; git-ignored).
# Environment (all optional; every REGISTRAR_* variable is passed to all nodes, see up.sh for
# the dev defaults: database, Redis, RabbitMQ, the shared .registrar/jwt-secret, demo
# passwords):
#   DEMO_STUDENTS, DEMO_SECTIONS  seed size (100000 / 2000)
#   SKIP_SEED=1                   keep the existing data
#   SKIP_SERVICES=1               do not run services.sh
#   CLUSTER_BIN=PATH              run this registrar binary instead of building a release one
#   CLUSTER_BASE_PORT (8080)      node-K listens on CLUSTER_BASE_PORT + K (down and status
#                                 use the one `up` was given)
#   CLUSTER_READY_TIMEOUT (60)    seconds `up` waits for every /readyz
#   REGISTRAR_DRAIN_TIMEOUT_MS    given to the nodes (their default: 30000); bounds `down`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
    printf 'cluster.sh: FAILED: %s\n' "$*" >&2
    exit 1
}
usage() {
    printf 'usage: deploy/local/cluster.sh up [N] | down [K ...] | status\n' >&2
    exit 2
}

DIR="$ROOT/.registrar/cluster"
# `down` and `status` find the nodes where `up` put them.
BASE_PORT="${CLUSTER_BASE_PORT:-$(cat "$DIR/base-port" 2>/dev/null || echo 8080)}"
READY_TIMEOUT="${CLUSTER_READY_TIMEOUT:-60}"
MAX_NODES=32
# Past a node's own drain timeout, the time it may still need to close and exit.
STOP_MARGIN_S=15

node_port() { printf '%s' "$((BASE_PORT + $1))"; }
node_url() { printf 'http://127.0.0.1:%s' "$(node_port "$1")"; }

# node_pid K: print node-K's PID and succeed when it runs (a reused PID of another program
# does not count).
node_pid() {
    local file="$DIR/node-$1.pid" pid
    [[ -s $file ]] || return 1
    pid="$(<"$file")"
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == registrar ]] || return 1
    printf '%s' "$pid"
}

# The numbers K of the nodes `up` started (running or not), ascending.
known_nodes() {
    local file k
    for file in "$DIR"/node-*.pid; do
        [[ -e $file ]] || continue
        k="${file##*/node-}"
        printf '%s\n' "${k%.pid}"
    done | sort -n
}

# readyz K: the HTTP status of node-K's GET /readyz ("000" when nothing answers).
readyz() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(node_url "$1")/readyz" || true
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_node() {
    local k=$1 port
    port="$(node_port "$k")"
    # Its own session: a Ctrl-C in this terminal must not reach the nodes.
    REGISTRAR_NODE_ID="node-$k" \
        REGISTRAR_WORKER_THREADS="${REGISTRAR_WORKER_THREADS:-$NODE_THREADS}" \
        REGISTRAR_LISTEN="127.0.0.1:$port" \
        REGISTRAR_ADVERTISE_URL="http://127.0.0.1:$port" \
        setsid "$BIN" serve </dev/null >"$DIR/node-$k.out" 2>"$DIR/node-$k.log" &
    printf '%s\n' "$!" >"$DIR/node-$k.pid"
    log "node-$k starting on http://127.0.0.1:$port (pid $!)"
}

# wait_ready K...: until every node answers /readyz 200; fails when one exits or time is up.
wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) k pending
    while :; do
        pending=()
        for k in "$@"; do
            if ! node_pid "$k" >/dev/null; then
                log "node-$k exited; the end of $DIR/node-$k.log:"
                tail -n 20 "$DIR/node-$k.log" >&2 || true
                return 1
            fi
            [[ "$(readyz "$k")" == 200 ]] || pending+=("node-$k")
        done
        ((${#pending[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            log "not ready after ${READY_TIMEOUT}s: ${pending[*]} (logs in $DIR)"
            return 1
        fi
        sleep 0.5
    done
}

# stop_nodes K...: SIGTERM, wait for the drains (bounded), SIGKILL what is left.
stop_nodes() {
    local k pid drain_ms started=$SECONDS
    local -A pids=()
    for k in "$@"; do
        if pid="$(node_pid "$k")"; then
            pids[$k]=$pid
            kill -TERM "$pid" 2>/dev/null || true
            log "node-$k: SIGTERM (pid $pid), draining"
        fi
    done
    drain_ms="${REGISTRAR_DRAIN_TIMEOUT_MS:-$(cat "$DIR/drain-timeout-ms" 2>/dev/null || echo 30000)}"
    local deadline=$((SECONDS + (drain_ms + 999) / 1000 + STOP_MARGIN_S))
    while ((${#pids[@]} > 0)); do
        for k in "${!pids[@]}"; do
            if ! kill -0 "${pids[$k]}" 2>/dev/null; then
                log "node-$k stopped after $((SECONDS - started))s"
                unset "pids[$k]"
            fi
        done
        ((${#pids[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            for k in "${!pids[@]}"; do
                log "node-$k still running after $((SECONDS - started))s: SIGKILL (pid ${pids[$k]})"
                kill -KILL "${pids[$k]}" 2>/dev/null || true
            done
            break
        fi
        sleep 0.2
    done
    for k in "$@"; do
        rm -f "$DIR/node-$k.pid"
    done
}

cmd_up() {
    local n=${1:-3} k running=()
    if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > MAX_NODES)); then
        die "N must be 1..$MAX_NODES, not '$n'"
    fi
    mkdir -p "$DIR"
    for k in $(known_nodes); do
        if node_pid "$k" >/dev/null; then running+=("node-$k"); fi
    done
    ((${#running[@]} == 0)) ||
        die "already running: ${running[*]} (deploy/local/cluster.sh status | down)"
    for ((k = 1; k <= n; k++)); do
        ! port_in_use "$(node_port "$k")" ||
            die "port $(node_port "$k") (node-$k) is taken by another program (CLUSTER_BASE_PORT moves the nodes)"
    done

    # shellcheck source=deploy/local/dev-env.sh
    source "$ROOT/deploy/local/dev-env.sh"
    dev_env_defaults
    if [[ ${SKIP_SERVICES:-0} != 1 ]]; then
        log "checking services"
        "$ROOT/deploy/local/services.sh"
    fi
    if [[ -n ${CLUSTER_BIN:-} ]]; then
        BIN="$CLUSTER_BIN"
        [[ -x $BIN ]] || die "CLUSTER_BIN=$BIN is not an executable"
    else
        build_release
    fi
    migrate_and_seed

    rm -f "$DIR"/node-*.pid "$DIR"/node-*.out "$DIR"/node-*.log
    printf '%s\n' "${REGISTRAR_DRAIN_TIMEOUT_MS:-30000}" >"$DIR/drain-timeout-ms"
    printf '%s\n' "$BASE_PORT" >"$DIR/base-port"
    local nodes=()
    # The nodes share this machine: each gets its share of the cores (at least one thread).
    NODE_THREADS=$(( $(nproc) / n > 0 ? $(nproc) / n : 1 ))
    for ((k = 1; k <= n; k++)); do
        start_node "$k"
        nodes+=("$k")
    done
    if ! wait_ready "${nodes[@]}"; then
        stop_nodes "${nodes[@]}"
        die "the cluster did not come up (node logs in $DIR)"
    fi

    local first
    first="$(node_url 1)"
    printf '\n  registrar cluster of %s node(s) is ready (one database, one token secret):\n' "$n"
    for k in "${nodes[@]}"; do
        printf '    node-%-3s %-24s log: %s\n' "$k" "$(node_url "$k")" ".registrar/cluster/node-$k.log"
    done
    print_demo_logins
    cat <<EOF
  Who owns what (any node answers; an operator or admin token):
    TOKEN=\$(curl -sS -H 'Content-Type: application/json' \\
        -d '{"username":"operator","password":"$REGISTRAR_OPERATOR_PASSWORD"}' \\
        $first/api/v1/auth/login | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
    curl -sS -H "Authorization: Bearer \$TOKEN" $first/api/v1/cluster
  or, as a table of nodes and moves:
    REGISTRAR_OPERATOR_PASSWORD=$REGISTRAR_OPERATOR_PASSWORD $BIN cluster status --url $first
  Stop: deploy/local/cluster.sh down     State: deploy/local/cluster.sh status

EOF
}

cmd_down() {
    local nodes=() k
    if (($# > 0)); then
        for k in "$@"; do
            k="${k#node-}"
            [[ $k =~ ^[0-9]+$ && -e $DIR/node-$k.pid ]] || die "no node-$k here (deploy/local/cluster.sh status)"
            nodes+=("$k")
        done
    else
        mapfile -t nodes < <(known_nodes)
    fi
    if ((${#nodes[@]} == 0)); then
        log "no local cluster nodes to stop"
        return 0
    fi
    stop_nodes "${nodes[@]}"
}

cmd_status() {
    local nodes k pid state ready all_ok=0
    mapfile -t nodes < <(known_nodes)
    if ((${#nodes[@]} == 0)); then
        printf 'no local cluster nodes (start some: deploy/local/cluster.sh up 3)\n'
        return 1
    fi
    printf '%-8s %-24s %-8s %-8s %s\n' NODE URL PID PROCESS READYZ
    for k in "${nodes[@]}"; do
        if pid="$(node_pid "$k")"; then
            state=running
            ready="$(readyz "$k")"
        else
            pid=-
            state=stopped
            ready=-
        fi
        [[ $ready == 200 ]] || all_ok=1
        printf '%-8s %-24s %-8s %-8s %s\n' "node-$k" "$(node_url "$k")" "$pid" "$state" "$ready"
    done
    return "$all_ok"
}

case "${1:-}" in
up)
    (($# <= 2)) || usage
    cmd_up "${2:-3}"
    ;;
down)
    shift
    cmd_down "$@"
    ;;
status)
    (($# == 1)) || usage
    cmd_status
    ;;
*) usage ;;
esac
