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

PIDS=()
URLS=()

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
}

start_node() {
    local id=$1 out="$OUT/$1.out" url=""
    REGISTRAR_WORKER_THREADS="$NODE_THREADS" REGISTRAR_NODE_ID="$id" REGISTRAR_LISTEN=127.0.0.1:0 "$SERVER" serve >"$out" 2>"$OUT/$id.log" &
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
