# shellcheck shell=bash
# deploy/local/server.sh: sourced (not run) by smoke-load.sh, fuzz.sh and the benches in loadtest/ to
# start a registrar server in the background on the port it prints, and to stop it by PID
# (also on exit, through a trap). The caller defines `die` and `log` first.
#
#   start_server BIN DIR   runs `BIN serve`, logs in DIR/server.{out,log}; sets SERVER_PID
#                          and ADDR (host:port) once the server printed its address
#   stop_server            stops it (idempotent)
#   start_event_sink BIN DIR   runs `BIN events tail --binding '#'` (every event of the exchange,
#                          written to DIR/events.txt) until exit: the events' consumers.
#                          Without a queue bound, the broker returns every event to the
#                          relay (it publishes `mandatory`), which keeps it for a retry:
#                          a bench without a sink measures a relay in distress.
#   stop_event_sink        stops it (idempotent)
#   event_count DIR        events the sink received so far

SERVER_PID=""
ADDR=""
SINK_PID=""

# stop_pid PID: stop a background process of this shell, if it still runs.
stop_pid() {
    if [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=""
}

stop_event_sink() {
    stop_pid "$SINK_PID"
    SINK_PID=""
}
trap 'stop_server; stop_event_sink' EXIT

start_event_sink() {
    local bin=$1 dir=$2
    REGISTRAR_LOG=info "$bin" events tail --binding '#' >"$dir/events.txt" 2>"$dir/events.log" &
    SINK_PID=$!
    for _ in $(seq 1 100); do
        # The log line goes to stdout, with the events.
        grep -q "tailing events" "$dir/events.txt" 2>/dev/null && return 0
        kill -0 "$SINK_PID" 2>/dev/null || die "the event sink exited at start: $(tail -n 5 "$dir/events.txt" "$dir/events.log")"
        sleep 0.1
    done
    die "the event sink did not bind its queue within 10 s"
}

event_count() {
    # One line per event: its routing key, then its JSON body.
    grep -c '^[a-z_]*\.[a-z_]* {' "$1/events.txt"
}

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
