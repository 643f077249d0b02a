#!/usr/bin/env bash
# deploy/local/ha.sh: a highly available PostgreSQL for registrar on this machine, on
# loopback only: a Patroni cluster of two PostgreSQL instances (a primary and a
# synchronous standby, `synchronous_mode: true`: a COMMIT is acknowledged only once the
# standby has it), etcd as Patroni's store, and HAProxy in front, routing a fixed port to
# whichever instance Patroni's REST API reports as primary.
#
#   ha.sh up              install what is missing (patroni, etcd-server, haproxy, with
#                         apt-get, as services.sh does), start etcd, both Patroni members and
#                         HAProxy (running ones are reused), wait for a primary and a
#                         streaming synchronous standby, ensure the `registrar` role and
#                         database; prints the URL to give REGISTRAR_DATABASE_URL
#   ha.sh down            stop HAProxy, both members (PostgreSQL with them) and etcd; no
#                         process is left behind (the data stays; HA_WIPE=1 removes it too)
#   ha.sh status          the members (patronictl list), which one HAProxy routes to; exit 0
#                         only with a primary reachable through HAProxy
#   ha.sh failover        a planned switchover to the synchronous standby (patronictl)
#   ha.sh failover --kill kill -9 of the primary's postmaster: Patroni
#                         (`primary_start_timeout: 0`) fails over to the synchronous
#                         standby instead of restarting it, and later rebuilds the old
#                         primary as a standby (pg_rewind)
#
# Addresses (all 127.0.0.1; none collides with the default PostgreSQL on 5432):
#   PostgreSQL  pg1 :5433, pg2 :5434     Patroni REST  pg1 :8008, pg2 :8009
#   HAProxy     :5440 read-write (the primary), :5441 read-only (a standby)
#   etcd        client :12379, peer :12380
# Data, configuration, logs and pid files under HA_DIR (default /var/lib/registrar-ha).
# The role `registrar` (password `registrar`, SUPERUSER like the default setup's, so tests
# can create databases) and the database `registrar` are created once, through HAProxy.
#
# Needs root (it runs PostgreSQL and Patroni as the `postgres` user). Debian/Ubuntu.
#
# Environment: HA_DIR, HA_TIMEOUT (seconds `up` waits for each stage, default 90),
#   HA_WIPE=1 (with `down`: remove HA_DIR).
set -euo pipefail

readonly HOST=127.0.0.1
readonly PG_PORTS=(5433 5434) REST_PORTS=(8008 8009) MEMBERS=(pg1 pg2)
readonly RW_PORT=5440 RO_PORT=5441
readonly ETCD_CLIENT=12379 ETCD_PEER=12380
readonly SCOPE=registrar-ha
readonly APP_ROLE=registrar APP_PASSWORD=registrar APP_DB=registrar
DIR="${HA_DIR:-/var/lib/registrar-ha}"
TIMEOUT="${HA_TIMEOUT:-90}"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf 'ha.sh: %s\n' "$*" >&2; }
die() {
    printf 'ha.sh: ERROR: %s\n' "$*" >&2
    exit 1
}
usage() {
    printf 'usage: deploy/local/ha.sh up | down | status | failover [--kill]\n' >&2
    exit 2
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# A process whose pid is in FILE, if it still runs (a reused pid of another program does
# not count: its command line must mention PATTERN).
pid_of() {
    local file=$1 pattern=$2 pid
    [[ -s $file ]] || return 1
    pid="$(<"$file")"
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    printf '%s' "$pid"
}

# stop_pid FILE PATTERN SECONDS: SIGTERM, wait (bounded), SIGKILL.
stop_pid() {
    local pid
    pid="$(pid_of "$1" "$2")" || { rm -f "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! timeout "$3" tail --pid="$pid" -f /dev/null 2>/dev/null; then
        log "pid $pid ($2) still running after $3 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || true
    fi
    rm -f "$1"
}

rest() { curl -s --max-time 2 "http://$HOST:$1$2"; }
rest_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$HOST:$1$2" || true; }
superuser_password() { cat "$DIR/superuser-password"; }
# psql as the superuser through HAProxy's read-write port.
psql_rw() {
    PGPASSWORD="$(superuser_password)" PGCONNECT_TIMEOUT=3 \
        psql -X -q -At -h "$HOST" -p "$RW_PORT" -U postgres -d postgres "$@"
}
# The PostgreSQL version to run: the newest installed server.
pg_bin_dir() {
    local version
    version=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
        awk -F/ '{ print $5 }' | sort -V | tail -n 1)
    [[ -n $version ]] || die "no PostgreSQL server under /usr/lib/postgresql (run deploy/local/services.sh first)"
    printf '/usr/lib/postgresql/%s/bin' "$version"
}

install_missing() {
    local missing=()
    command -v patroni >/dev/null && command -v patronictl >/dev/null || missing+=(patroni)
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v curl >/dev/null || missing+=(curl)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} with apt-get (once)"
    local apt_env=(env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8)
    "${apt_env[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    # The packages' own services (etcd on 2379, an empty HAProxy) are not used: this script
    # runs its own processes on its own ports. Where an init system starts them anyway,
    # they stay on their defaults and do not collide.
    "${apt_env[@]}" apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
}

# --------------------------------------------------------------------------------------
# Configuration (written once; `up` again reuses it and the data)
# --------------------------------------------------------------------------------------

write_configs() {
    local bin i name
    bin="$(pg_bin_dir)"
    mkdir -p "$DIR/log" "$DIR/run"
    if [[ ! -s $DIR/superuser-password ]]; then
        (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/superuser-password")
        (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/replication-password")
    fi
    chown postgres:postgres "$DIR" "$DIR/run" "$DIR/log"
    chmod 0750 "$DIR"
    for i in 0 1; do
        name=${MEMBERS[i]}
        cat >"$DIR/$name.yml" <<YAML
# Written by deploy/local/ha.sh: Patroni member $name of the local HA database.
scope: $SCOPE
namespace: /registrar/
name: $name
log:
  level: INFO
restapi:
  listen: $HOST:${REST_PORTS[i]}
  connect_address: $HOST:${REST_PORTS[i]}
etcd3:
  hosts: $HOST:$ETCD_CLIENT
bootstrap:
  dcs:
    # Short timings for a fast failover on one machine; loop_wait + 2 * retry_timeout <= ttl.
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    # A crashed primary is failed over at once (to the synchronous standby), not restarted.
    primary_start_timeout: 0
    # A COMMIT waits for the standby; only a synchronous standby may be promoted.
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 300
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 512MB
        # Commit times, so loadtest/failover-bench.sh can tell when the last commit on the
        # old primary and the first on the new one happened.
        track_commit_timestamp: "on"
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  - data-checksums
  pg_hba:
  - local all all trust
  - host replication replicator $HOST/32 scram-sha-256
  - host all all $HOST/32 scram-sha-256
postgresql:
  listen: $HOST:${PG_PORTS[i]}
  connect_address: $HOST:${PG_PORTS[i]}
  data_dir: $DIR/$name
  bin_dir: $bin
  pgpass: $DIR/run/pgpass-$name
  authentication:
    superuser:
      username: postgres
      password: $(superuser_password)
    replication:
      username: replicator
      password: $(cat "$DIR/replication-password")
    rewind:
      username: postgres
      password: $(superuser_password)
  parameters:
    unix_socket_directories: $DIR/run
tags:
  nofailover: false
  noloadbalance: false
YAML
        chown postgres:postgres "$DIR/$name.yml"
        chmod 0600 "$DIR/$name.yml"
    done
    cat >"$DIR/haproxy.cfg" <<CFG
# Written by deploy/local/ha.sh: routes $RW_PORT to the Patroni primary, $RO_PORT to a standby.
global
    maxconn 2000
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    retries 2
    # A connection refused by a server still marked up (a primary just killed, in the
    # second before its checks fail) is retried on another server of the same listener,
    # which only ever holds servers that passed the check.
    option redispatch
    timeout connect 2s
    # Idle pooled connections and LISTEN connections sit quiet for long.
    timeout client 30m
    timeout server 30m
    timeout check 1s
listen registrar_rw
    bind $HOST:$RW_PORT
    option httpchk OPTIONS /primary
    http-check expect status 200
    # A member stops being primary: its sessions are cut at once, so no client keeps
    # writing to a demoted server.
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server pg1 $HOST:${PG_PORTS[0]} maxconn 500 check port ${REST_PORTS[0]}
    server pg2 $HOST:${PG_PORTS[1]} maxconn 500 check port ${REST_PORTS[1]}
listen registrar_ro
    bind $HOST:$RO_PORT
    balance roundrobin
    # Only standbys within 16 MB of WAL of the primary: bounds how stale browsing gets.
    option httpchk OPTIONS /replica?lag=16MB
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server pg1 $HOST:${PG_PORTS[0]} maxconn 500 check port ${REST_PORTS[0]}
    server pg2 $HOST:${PG_PORTS[1]} maxconn 500 check port ${REST_PORTS[1]}
CFG
}

# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------

etcd_ok() { [[ "$(curl -s --max-time 2 "http://$HOST:$ETCD_CLIENT/health" || true)" == *'"health":"true"'* ]]; }

start_etcd() {
    if pid_of "$DIR/etcd.pid" etcd >/dev/null; then
        log "etcd already running"
    else
        mkdir -p "$DIR/etcd"
        chmod 0700 "$DIR/etcd"
        setsid etcd --name registrar-ha --data-dir "$DIR/etcd" \
            --listen-client-urls "http://$HOST:$ETCD_CLIENT" --advertise-client-urls "http://$HOST:$ETCD_CLIENT" \
            --listen-peer-urls "http://$HOST:$ETCD_PEER" --initial-advertise-peer-urls "http://$HOST:$ETCD_PEER" \
            --initial-cluster "registrar-ha=http://$HOST:$ETCD_PEER" --initial-cluster-state new \
            </dev/null >>"$DIR/log/etcd.log" 2>&1 &
        echo $! >"$DIR/etcd.pid"
        log "etcd starting on $HOST:$ETCD_CLIENT (pid $!)"
    fi
    wait_for "$TIMEOUT" etcd_ok || { tail -n 20 "$DIR/log/etcd.log" >&2; die "etcd not healthy within ${TIMEOUT}s"; }
}

start_member() {
    local name=$1
    if pid_of "$DIR/$name.pid" "patroni" >/dev/null; then
        log "patroni $name already running"
        return 0
    fi
    # PostgreSQL refuses to run as root: Patroni, and the postgres it starts, run as postgres.
    # exec: no shell stays behind holding this script's stdout.
    (cd "$DIR" && exec setsid setpriv --reuid=postgres --regid=postgres --init-groups \
        env HOME="$DIR" patroni "$DIR/$name.yml" </dev/null >>"$DIR/log/$name.log" 2>&1) &
    # setsid forks when it is a process group leader; find the patroni itself.
    local pid=""
    for _ in $(seq 1 50); do
        pid="$(pgrep -n -u postgres -f "patroni $DIR/$name.yml" || true)"
        [[ -n $pid ]] && break
        sleep 0.1
    done
    [[ -n $pid ]] || { tail -n 20 "$DIR/log/$name.log" >&2; die "patroni $name did not start"; }
    echo "$pid" >"$DIR/$name.pid"
    log "patroni $name starting (pid $pid; PostgreSQL on $HOST:${PG_PORTS[$2]}, REST on $HOST:${REST_PORTS[$2]})"
}

haproxy_ok() { (exec 3<>"/dev/tcp/$HOST/$RW_PORT") 2>/dev/null; }

start_haproxy() {
    if pid_of "$DIR/haproxy.pid" haproxy >/dev/null; then
        log "haproxy already running"
        return 0
    fi
    haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy rejects $DIR/haproxy.cfg"
    setsid haproxy -db -f "$DIR/haproxy.cfg" </dev/null >>"$DIR/log/haproxy.log" 2>&1 &
    echo $! >"$DIR/haproxy.pid"
    wait_for 10 haproxy_ok || { tail -n 20 "$DIR/log/haproxy.log" >&2; die "haproxy not listening on $HOST:$RW_PORT"; }
    log "haproxy on $HOST:$RW_PORT (rw) and $HOST:$RO_PORT (ro) (pid $(cat "$DIR/haproxy.pid"))"
}

# The member Patroni reports as primary (pg1/pg2), if any.
primary_name() {
    local i
    for i in 0 1; do
        [[ "$(rest_code "${REST_PORTS[i]}" /primary)" == 200 ]] && { printf '%s' "${MEMBERS[i]}"; return 0; }
    done
    return 1
}
primary_index() {
    local i
    for i in 0 1; do
        [[ "$(rest_code "${REST_PORTS[i]}" /primary)" == 200 ]] && { printf '%s' "$i"; return 0; }
    done
    return 1
}
# A synchronous standby streams from the primary (Patroni's /sync answers 200 on it).
sync_standby_ok() {
    local i
    for i in 0 1; do
        [[ "$(rest_code "${REST_PORTS[i]}" /sync)" == 200 ]] && return 0
    done
    return 1
}
rw_ok() { [[ "$(psql_rw -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)" == f ]]; }

ensure_app_role() {
    psql_rw -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "could not create role/database $APP_ROLE through HAProxy"
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
        CREATE ROLE $APP_ROLE LOGIN CREATEDB SUPERUSER PASSWORD '$APP_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $APP_DB OWNER $APP_ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$APP_DB') \gexec
SQL
}

cmd_up() {
    ((EUID == 0)) || die "needs root (runs PostgreSQL and Patroni as the postgres user)"
    install_missing
    id postgres >/dev/null 2>&1 || die "no postgres user (install PostgreSQL first: deploy/local/services.sh)"
    local t0=$SECONDS i
    write_configs
    start_etcd
    for i in 0 1; do
        start_member "${MEMBERS[i]}" "$i"
    done
    start_haproxy
    wait_for "$TIMEOUT" primary_name >/dev/null || {
        tail -n 20 "$DIR"/log/pg*.log >&2
        die "no primary within ${TIMEOUT}s (logs in $DIR/log)"
    }
    wait_for "$TIMEOUT" rw_ok || die "the primary is not reachable through HAProxy on $HOST:$RW_PORT"
    ensure_app_role
    wait_for "$TIMEOUT" sync_standby_ok || {
        tail -n 20 "$DIR"/log/pg*.log >&2
        die "no synchronous standby within ${TIMEOUT}s (logs in $DIR/log)"
    }
    log "up in $((SECONDS - t0))s"
    cmd_status
    cat <<EOF

  Point registrar at the HA database (through HAProxy, always the primary):
    export REGISTRAR_DATABASE_URL=postgres://$APP_ROLE:$APP_PASSWORD@$HOST:$RW_PORT/$APP_DB
  Fail over: deploy/local/ha.sh failover [--kill]     Stop: deploy/local/ha.sh down
EOF
}

# Every postmaster of a member data dir still running (a Patroni killed hard leaves its
# PostgreSQL behind).
leftover_postmasters() {
    local name pid
    for name in "${MEMBERS[@]}"; do
        [[ -s $DIR/$name/postmaster.pid ]] || continue
        pid="$(head -n 1 "$DIR/$name/postmaster.pid")"
        if kill -0 "$pid" 2>/dev/null && [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == */postgres ]]; then
            printf '%s\n' "$pid"
        fi
    done
}

cmd_down() {
    local name pid
    local order=(pg2 pg1) idx
    # The standby first: stopping the primary first would fail over to the standby.
    if idx="$(primary_index)"; then
        order=("${MEMBERS[1 - idx]}" "${MEMBERS[idx]}")
    fi
    stop_pid "$DIR/haproxy.pid" haproxy 10
    for name in "${order[@]}"; do
        stop_pid "$DIR/$name.pid" patroni 60
    done
    for pid in $(leftover_postmasters); do
        log "PostgreSQL postmaster $pid outlived its Patroni: fast shutdown"
        kill -INT "$pid" 2>/dev/null || true
        timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    stop_pid "$DIR/etcd.pid" etcd 20
    # Anything of this setup still running (found by its data directory) is a bug here.
    pid="$(pgrep -f -- "$DIR/" || true)"
    if [[ -n $pid ]]; then
        log "still running, killed: $(ps -o pid=,args= -p "${pid//$'\n'/,}" | tr '\n' ';')"
        # shellcheck disable=SC2086 # one pid per word
        kill -KILL $pid 2>/dev/null || true
    fi
    if [[ ${HA_WIPE:-0} == 1 ]]; then
        rm -rf "$DIR"
        log "removed $DIR"
    fi
    log "down"
}

cmd_status() {
    local ok=0 routed
    if [[ ! -s $DIR/pg1.yml ]]; then
        printf 'no HA database here (deploy/local/ha.sh up)\n'
        return 1
    fi
    if etcd_ok; then
        printf '%-8s healthy on %s:%s\n' etcd "$HOST" "$ETCD_CLIENT"
        # Bounded: patronictl retries a lost etcd for ever.
        timeout 10 patronictl -c "$DIR/pg1.yml" list 2>/dev/null ||
            { printf 'patronictl: no cluster view\n'; ok=1; }
    else
        printf '%-8s down (no cluster view without it)\n' etcd
        ok=1
    fi
    routed="$(psql_rw -c 'SELECT inet_server_port() || CASE WHEN pg_is_in_recovery() THEN '"' (standby!)'"' ELSE '"' (primary)'"' END' 2>/dev/null || true)"
    printf '%-8s %s\n' haproxy "rw $HOST:$RW_PORT -> ${routed:-nothing}"
    [[ $routed == *"(primary)" ]] || ok=1
    return "$ok"
}

cmd_failover() {
    local kill=${1:-}
    local primary idx pid
    idx="$(primary_index)" || die "no primary now (deploy/local/ha.sh status)"
    primary=${MEMBERS[idx]}
    if [[ $kill == --kill ]]; then
        pid="$(head -n 1 "$DIR/$primary/postmaster.pid")"
        log "kill -9 of the primary's postmaster ($primary, pid $pid)"
        kill -KILL "$pid"
        # On stdout, for loadtest/failover-bench.sh: when the old primary stopped committing.
        printf 'killed_at_ms=%s\n' "$(date +%s%3N)"
    elif [[ -z $kill ]]; then
        local candidate=${MEMBERS[1 - idx]}
        log "switchover: $primary -> $candidate"
        timeout "$TIMEOUT" patronictl -c "$DIR/pg1.yml" switchover "$SCOPE" --leader "$primary" --candidate "$candidate" --force >&2
    else
        usage
    fi
    local t0=$SECONDS
    wait_for "$TIMEOUT" bash -c "[[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://$HOST:${REST_PORTS[1 - idx]}/primary)\" == 200 ]]" ||
        die "${MEMBERS[1 - idx]} did not become primary within ${TIMEOUT}s"
    wait_for "$TIMEOUT" rw_ok || die "HAProxy does not route to the new primary"
    log "${MEMBERS[1 - idx]} is primary after $((SECONDS - t0))s"
}

case "${1:-}" in
up) (($# == 1)) || usage; cmd_up ;;
down) (($# == 1)) || usage; cmd_down ;;
status) (($# == 1)) || usage; cmd_status ;;
failover) (($# <= 2)) || usage; cmd_failover "${2:-}" ;;
*) usage ;;
esac
