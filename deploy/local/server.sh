# shellcheck shell=bash
# deploy/local/server.sh: sourced (not run) by smoke-load.sh, fuzz.sh and loadtest/flash-bench.sh to
# start a registrar server in the background on the port it prints, and to stop it by PID
# (also on exit, through a trap). The caller defines `die` and `log` first.
#
#   start_server BIN DIR   runs `BIN serve`, logs in DIR/server.{out,log}; sets SERVER_PID
#                          and ADDR (host:port) once the server printed its address
#   stop_server            stops it (idempotent)

SERVER_PID=""
ADDR=""

stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

start_server() {
    local bin=$1 dir=$2
    "$bin" serve >"$dir/server.out" 2>"$dir/server.log" &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 1 150); do
        ADDR="$(sed -n 's/^registrar listening on http:\/\///p' "$dir/server.out" | head -n1)"
        [[ -n $ADDR ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited at start: $(tail -n 20 "$dir/server.log")"
        sleep 0.2
    done
    [[ -n $ADDR ]] || die "the server did not print its address within 30 s"
    log "server on http://$ADDR (pid $SERVER_PID)"
}
