#!/usr/bin/env bash
# deploy/local/services.sh: make sure the three backing services of registrar run on this
# machine, listening on 127.0.0.1:
#
#   PostgreSQL  127.0.0.1:5432  role `registrar` (password `registrar`, LOGIN CREATEDB
#                               SUPERUSER, since tests create a database per test) and
#                               database `registrar` owned by it; max_connections raised
#                               to PG_MAX_CONNECTIONS (default 300) so many test pools fit.
#   Redis       127.0.0.1:6379
#   RabbitMQ    127.0.0.1:5672  default guest/guest user, vhost /
#
# Debian/Ubuntu only (apt-get, pg_lsclusters/pg_ctlcluster, init.d scripts; systemd not
# needed). Missing packages are installed, stopped services are started, running ones are
# reused; with everything already up it only probes and exits in about a second. Safe to
# run any number of times. Prints one line per service on stdout; progress and errors
# go to stderr.
#
# Environment:
#   SERVICES_TIMEOUT    seconds to wait for each service to become reachable (default 90)
#   PG_MAX_CONNECTIONS  lower bound for PostgreSQL max_connections (default 300; a higher
#                       existing value is kept; raising it restarts PostgreSQL once)
set -euo pipefail

readonly PG_HOST=127.0.0.1 PG_PORT=5432
readonly PG_ROLE=registrar PG_PASSWORD=registrar PG_DB=registrar
readonly REDIS_HOST=127.0.0.1 REDIS_PORT=6379
readonly AMQP_HOST=127.0.0.1 AMQP_PORT=5672
TIMEOUT="${SERVICES_TIMEOUT:-90}"
PG_MAX_CONNECTIONS="${PG_MAX_CONNECTIONS:-300}"

# rabbitmqctl, pg_ctlcluster helpers and friends live in sbin directories.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() {
    printf 'services.sh: ERROR: %s\n' "$*" >&2
    exit 1
}

# Root runs everything directly; anyone else goes through sudo.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is missing: run as root"
    SUDO=(sudo)
fi

# Run a command as the postgres OS user (peer authentication over the Unix socket).
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres -- "$@")
    fi
}

# wait_for SECONDS COMMAND...: poll COMMAND every half second until it succeeds.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

# Seconds left of TIMEOUT since $1 (a $SECONDS reading), at least 1: one budget per service
# covers both the init script and the wait after it.
remaining() {
    local left=$((TIMEOUT - (SECONDS - $1)))
    echo $((left > 1 ? left : 1))
}

# Start a service through its init script (no systemd needed). Failures are not fatal
# here: the caller's reachability check decides.
start_service() {
    local name=$1
    if command -v service >/dev/null; then
        "${SUDO[@]}" timeout "$TIMEOUT" service "$name" start >&2 || true
    elif [[ -x /etc/init.d/$name ]]; then
        "${SUDO[@]}" timeout "$TIMEOUT" "/etc/init.d/$name" start >&2 || true
    else
        return 1
    fi
}

show_log() {
    local file
    for file in "$@"; do
        if [[ -r $file && -s $file ]]; then
            log "last lines of $file:"
            tail -n 20 "$file" >&2 || true
        fi
    done
}

# --------------------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------------------

pg_server_installed() {
    command -v pg_lsclusters >/dev/null && command -v pg_ctlcluster >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# The node name rabbit@<hostname> must resolve, or RabbitMQ cannot start (and neither can
# its package's post-install script). Some containers do not list their hostname in
# /etc/hosts; pin the node name to localhost there.
fix_rabbitmq_nodename() {
    local conf=/etc/rabbitmq/rabbitmq-env.conf
    if getent hosts "$(hostname -s 2>/dev/null || hostname)" >/dev/null 2>&1; then
        return 0
    fi
    if [[ -f $conf ]] && grep -q '^NODENAME=' "$conf"; then
        return 0
    fi
    log "hostname does not resolve; pinning the RabbitMQ node name to rabbit@localhost in $conf"
    "${SUDO[@]}" mkdir -p /etc/rabbitmq
    echo 'NODENAME=rabbit@localhost' | "${SUDO[@]}" tee -a "$conf" >/dev/null
}

install_missing() {
    local missing=()
    pg_server_installed || missing+=(postgresql)
    { command -v redis-server && command -v redis-cli; } >/dev/null || missing+=(redis-server)
    { command -v rabbitmq-server && command -v rabbitmqctl; } >/dev/null || missing+=(rabbitmq-server)
    # Not a service: the clock-skew tests start a node under faketime.
    command -v faketime >/dev/null || missing+=(faketime)
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    [[ " ${missing[*]} " == *" rabbitmq-server "* ]] && fix_rabbitmq_nodename
    log "installing ${missing[*]} with apt-get (once; takes a minute)"
    local apt_env=(env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8)
    "${SUDO[@]}" "${apt_env[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    # C.UTF-8 so the cluster the postgresql package creates gets UTF8 encoding; keep any
    # configuration file already on disk (e.g. rabbitmq-env.conf written just above).
    "${SUDO[@]}" "${apt_env[@]}" apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    pg_server_installed || die "postgresql installed but no server binary under /usr/lib/postgresql"
}

# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }

# Prints "true <max_connections>" when the registrar role can log in with its password to
# its database and has the attributes tests need.
pg_app_state() {
    PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 psql -X -q -At -h "$PG_HOST" -p "$PG_PORT" \
        -U "$PG_ROLE" -d "$PG_DB" \
        -c "SELECT (rolsuper AND rolcreatedb AND rolcanlogin)::text || ' ' || current_setting('max_connections')
              FROM pg_roles WHERE rolname = current_user" 2>/dev/null
}

pg_app_ok() {
    local state
    state=$(pg_app_state) || return 1
    [[ $state == "true "* ]] && ((${state#true } >= PG_MAX_CONNECTIONS))
}

# Prints "<version> <name> <status>" of the Debian-managed cluster on PG_PORT, if any.
pg_find_cluster() {
    { pg_lsclusters -h 2>/dev/null || true; } |
        awk -v port="$PG_PORT" '$3 == port && !found { print $1, $2, $4; found = 1 }'
}

pg_ensure_cluster() {
    local found version name status
    found=$(pg_find_cluster)
    if [[ -z $found ]]; then
        version=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' |
            awk -F/ '{ print $5 }' | sort -V | tail -n 1)
        [[ -n $version ]] || die "no PostgreSQL server binary under /usr/lib/postgresql"
        name=main
        if pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
            name=registrar
        fi
        log "creating PostgreSQL cluster $version/$name on port $PG_PORT"
        "${SUDO[@]}" pg_createcluster --locale C.UTF-8 --port "$PG_PORT" \
            -o "max_connections=$PG_MAX_CONNECTIONS" "$version" "$name" >&2 ||
            die "pg_createcluster $version $name failed"
        found=$(pg_find_cluster)
        [[ -n $found ]] || die "cluster $version/$name was created but pg_lsclusters does not list it on port $PG_PORT"
    fi
    read -r version name status <<<"$found"
    PG_CLUSTER="$version/$name"
    PG_LOG="/var/log/postgresql/postgresql-$version-$name.log"
    if [[ $status != online* ]]; then
        log "starting PostgreSQL cluster $PG_CLUSTER"
        "${SUDO[@]}" timeout "$TIMEOUT" pg_ctlcluster "$version" "$name" start >&2 || true
        PG_ACTION=started
    fi
}

pg_restart() {
    local version=${PG_CLUSTER%/*} name=${PG_CLUSTER#*/}
    log "restarting PostgreSQL cluster $PG_CLUSTER ($1)"
    local t0=$SECONDS
    "${SUDO[@]}" timeout "$TIMEOUT" pg_ctlcluster "$version" "$name" restart >&2 || true
    wait_for "$(remaining "$t0")" pg_ready || {
        show_log "$PG_LOG"
        die "PostgreSQL $PG_CLUSTER did not come back on $PG_HOST:$PG_PORT within ${TIMEOUT}s after restart"
    }
}

ensure_postgres() {
    PG_ACTION="already running"
    PG_CLUSTER=""
    PG_LOG=/var/log/postgresql
    if pg_ready && pg_app_ok; then
        # Fast path: nothing to do.
        PG_CLUSTER=$(pg_find_cluster | awk '{ print $1 "/" $2 }')
    else
        if ! pg_ready; then
            local t0=$SECONDS
            pg_ensure_cluster
            wait_for "$(remaining "$t0")" pg_ready || {
                show_log "$PG_LOG"
                die "PostgreSQL ${PG_CLUSTER:-?} not reachable on $PG_HOST:$PG_PORT within ${TIMEOUT}s"
            }
        else
            local found
            found=$(pg_find_cluster)
            if [[ -n $found ]]; then
                PG_CLUSTER=$(awk '{ print $1 "/" $2 }' <<<"$found")
            fi
        fi

        # Role and database, as the postgres superuser over the local socket.
        as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres >/dev/null <<SQL ||
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
        CREATE ROLE $PG_ROLE LOGIN CREATEDB SUPERUSER PASSWORD '$PG_PASSWORD';
    ELSE
        ALTER ROLE $PG_ROLE LOGIN CREATEDB SUPERUSER PASSWORD '$PG_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
            die "could not create role/database '$PG_ROLE' as the postgres user (is the cluster on port $PG_PORT managed by this machine?)"

        # Light dev tuning: enough connections for many per-test databases and pools.
        local current
        current=$(as_postgres psql -X -At -p "$PG_PORT" -d postgres -c 'SHOW max_connections') ||
            die "could not read max_connections"
        if ((current < PG_MAX_CONNECTIONS)); then
            as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
                -c "ALTER SYSTEM SET max_connections = $PG_MAX_CONNECTIONS" >/dev/null ||
                die "could not set max_connections"
            [[ -n $PG_CLUSTER ]] || die "max_connections needs a restart, but no pg_lsclusters cluster owns port $PG_PORT"
            pg_restart "max_connections $current -> $PG_MAX_CONNECTIONS"
            [[ $PG_ACTION == started ]] || PG_ACTION="restarted (max_connections $current -> $PG_MAX_CONNECTIONS)"
        fi

        pg_app_ok || die "role '$PG_ROLE' cannot log in to database '$PG_DB' with its password over TCP at $PG_HOST:$PG_PORT; check pg_hba.conf allows scram-sha-256/md5 for 127.0.0.1/32"
        [[ $PG_ACTION == "already running" ]] && PG_ACTION="running (role/database ensured)"
    fi

    local state encoding
    state=$(pg_app_state)
    encoding=$(PGPASSWORD=$PG_PASSWORD psql -X -At -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DB" -c 'SHOW server_encoding' 2>/dev/null || echo '?')
    [[ $encoding == UTF8 ]] || log "warning: database '$PG_DB' has encoding $encoding, not UTF8"
    printf '%-10s ok  %s:%s  cluster %s, role+db %s, max_connections %s  [%s]\n' \
        postgresql "$PG_HOST" "$PG_PORT" "${PG_CLUSTER:-external}" "$PG_DB" "${state#true }" "$PG_ACTION"
}

# --------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------

redis_ok() { [[ $(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

ensure_redis() {
    local action="already running"
    if ! redis_ok; then
        log "starting Redis"
        action=started
        local t0=$SECONDS
        if ! start_service redis-server; then
            # No init script: run it directly, bound to loopback.
            "${SUDO[@]}" redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" >&2 || true
        fi
        wait_for "$(remaining "$t0")" redis_ok || {
            show_log /var/log/redis/redis-server.log
            die "Redis not answering PING on $REDIS_HOST:$REDIS_PORT within ${TIMEOUT}s"
        }
    fi
    printf '%-10s ok  %s:%s  [%s]\n' redis "$REDIS_HOST" "$REDIS_PORT" "$action"
}

# --------------------------------------------------------------------------------------
# RabbitMQ
# --------------------------------------------------------------------------------------

# Speak the first step of AMQP 0-9-1: send the protocol header, expect a method frame
# (type 1, Connection.Start) back. Proves a broker that has finished booting is there.
amqp_ok() {
    local first
    # shellcheck disable=SC2016 # $0/$1 expand in the inner shell
    first=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        head -c 1 <&3 | od -An -tx1' "$AMQP_HOST" "$AMQP_PORT" 2>/dev/null) || return 1
    [[ ${first// /} == 01 ]]
}

ensure_rabbitmq() {
    local action="already running"
    if ! amqp_ok; then
        log "starting RabbitMQ (takes 10-20 s)"
        action=started
        local t0=$SECONDS
        fix_rabbitmq_nodename
        # The init script itself waits for the boot to finish; bounded by TIMEOUT anyway.
        start_service rabbitmq-server || die "no init script for rabbitmq-server"
        wait_for "$(remaining "$t0")" amqp_ok || {
            show_log /var/log/rabbitmq/startup_err /var/log/rabbitmq/startup_log
            die "RabbitMQ not accepting AMQP on $AMQP_HOST:$AMQP_PORT within ${TIMEOUT}s (see /var/log/rabbitmq/)"
        }
    fi
    printf '%-10s ok  %s:%s  [%s]\n' rabbitmq "$AMQP_HOST" "$AMQP_PORT" "$action"
}

install_missing
ensure_postgres
ensure_redis
ensure_rabbitmq
