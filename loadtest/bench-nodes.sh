# shellcheck shell=bash
# loadtest/bench-nodes.sh: sourced (not run) by the benches that run several registrar nodes
# on this machine (cluster-bench.sh, failover-bench.sh): start them on free loopback ports,
# wait until their shards are balanced, stop them. The caller defines `die` and `log`, and
# sets SERVER (the registrar binary), OUT (the directory for each node's stdout and log)
# and NODE_THREADS (tokio worker threads per node) first.
#
#   start_node ID      one `SERVER serve` as REGISTRAR_NODE_ID=ID on 127.0.0.1:0; appends its
#                      pid to PIDS and its URL (printed by the server) to URLS
#   stop_nodes         SIGTERM to every node (each drains), SIGKILL after 60 s; empties both
#   wait_balanced N    until N active nodes own every shard, none more than one above
#                      another (operator login with REGISTRAR_OPERATOR_PASSWORD; 60 s at most)
#
# With BENCH_CPU_QUOTA (cores, e.g. 0.25) every node runs in a CPU cgroup of its own
# limited to that share of one core, as if each were a small machine: cgroup v1's `cpu`
# controller (/sys/fs/cgroup/cpu/<name>/cpu.cfs_quota_us) or v2's cpu.max, whichever the
# machine has (root needed). When no quota can be applied the node runs unlimited and
# QUOTA_FAILED says why. stop_nodes reports each node's throttling (the share of periods in
# which it wanted more CPU than its quota) to THROTTLE_LOG and removes the cgroups.

PIDS=()
URLS=()
CGROUPS=()
QUOTA_FAILED=""
THROTTLE_LOG="${THROTTLE_LOG:-/dev/null}"

# limit_cpu ID PID: put node ID (process PID, every thread) in a cgroup of BENCH_CPU_QUOTA.
limit_cpu() {
    local id=$1 pid=$2 quota=${BENCH_CPU_QUOTA:-} period=100000 us dir
    [[ -n $quota ]] || return 0
    us="$(awk -v q="$quota" -v p="$period" 'BEGIN { printf "%d", q * p }')"
    ((us >= 1000)) || die "BENCH_CPU_QUOTA=$quota is below a hundredth of a core"
    if [[ -w /sys/fs/cgroup/cpu/cgroup.procs ]]; then
        dir="/sys/fs/cgroup/cpu/registrar-bench-$id"
        mkdir -p "$dir" && echo "$period" >"$dir/cpu.cfs_period_us" &&
            echo "$us" >"$dir/cpu.cfs_quota_us" && echo "$pid" >"$dir/cgroup.procs" ||
            { QUOTA_FAILED="cgroup v1 cpu controller refused $dir"; log "$QUOTA_FAILED"; return 0; }
    elif [[ -w /sys/fs/cgroup/cgroup.subtree_control ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        dir="/sys/fs/cgroup/registrar-bench-$id"
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        mkdir -p "$dir" && echo "$us $period" >"$dir/cpu.max" && echo "$pid" >"$dir/cgroup.procs" ||
            { QUOTA_FAILED="cgroup v2 refused $dir"; log "$QUOTA_FAILED"; return 0; }
    else
        QUOTA_FAILED="no writable cgroup cpu controller (needs root)"
        log "$id runs WITHOUT a CPU quota: $QUOTA_FAILED"
        return 0
    fi
    CGROUPS+=("$dir")
    log "$id limited to $quota of a core ($us us per $period us) in $dir"
}

# release_cgroups: log each node's throttling, then remove the cgroups (their nodes gone).
release_cgroups() {
    local dir
    for dir in "${CGROUPS[@]}"; do
        awk -v d="${dir##*/}" '$1 == "nr_periods" {p = $2} $1 == "nr_throttled" {t = $2}
            END { printf "%s: throttled in %d of %d periods (%.1f%%)\n", d, t, p, (p > 0 ? 100 * t / p : 0) }' \
            "$dir/cpu.stat" >>"$THROTTLE_LOG" 2>/dev/null || true
        rmdir "$dir" 2>/dev/null || true
    done
    CGROUPS=()
}

stop_nodes() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        timeout 60 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    PIDS=()
    URLS=()
    release_cgroups
}

start_node() {
    local id=$1 out="$OUT/$1.out" url=""
    REGISTRAR_WORKER_THREADS="$NODE_THREADS" REGISTRAR_NODE_ID="$id" REGISTRAR_LISTEN=127.0.0.1:0 "$SERVER" serve >"$out" 2>"$OUT/$id.log" &
    local pid=$!
    PIDS+=("$pid")
    limit_cpu "$id" "$pid"
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

wait_balanced() {
    local n=$1 token view
    token="$(curl -fsS "${URLS[0]}/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"operator\",\"password\":\"$REGISTRAR_OPERATOR_PASSWORD\"}" | jq -r .access_token)"
    for _ in $(seq 1 300); do
        view="$(curl -fsS "${URLS[0]}/api/v1/cluster" -H "authorization: Bearer $token")"
        if jq -e --argjson n "$n" '[.nodes[] | select(.state == "active") | .shards_owned] as $o
            | ($o | length) == $n and ($o | add) == .shards and (($o | max) - ($o | min)) <= 1' \
            <<<"$view" >/dev/null; then
            log "balanced: $(jq -c '[.nodes[] | select(.state == "active") | {(.id): .shards_owned}] | add' <<<"$view")"
            return
        fi
        sleep 0.2
    done
    die "the shards were not balanced over $n nodes within 60 s"
}
