# shellcheck shell=bash
# deploy/local/dev-env.sh: sourced (not run) by up.sh and cluster.sh, so that one node and a
# local cluster get the same dev settings, binary and demo data. The caller sets ROOT (the
# repository root, also the working directory) and defines `log` first.
#
#   dev_env_defaults     exports the dev defaults of every REGISTRAR_* variable left unset:
#                        services on 127.0.0.1, the checkout's token secret (generated once
#                        into .registrar/jwt-secret), the demo passwords, in-process consumers
#   build_release        cargo build --release -j2 --bin registrar; sets BIN
#   migrate_and_seed     BIN migrate, then BIN seed --reset with DEMO_STUDENTS/DEMO_SECTIONS
#                        (defaults 100000/2000; wipes the data) unless SKIP_SEED=1
#   print_demo_logins    the demo accounts and their passwords, on stdout

dev_env_defaults() {
    export REGISTRAR_DATABASE_URL="${REGISTRAR_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/registrar}"
    export REGISTRAR_REDIS_URL="${REGISTRAR_REDIS_URL:-redis://127.0.0.1:6379}"
    export REGISTRAR_AMQP_URL="${REGISTRAR_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
    # The server refuses a missing, short or published secret: make one for this checkout,
    # kept so that tokens survive restarts and every node of a local cluster shares it.
    if [[ -z ${REGISTRAR_JWT_SECRET:-} ]]; then
        local secret_file="$ROOT/.registrar/jwt-secret"
        if [[ ! -s $secret_file ]]; then
            log "generating a local token secret in $secret_file"
            mkdir -p "$(dirname "$secret_file")"
            (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file")
        fi
        REGISTRAR_JWT_SECRET="$(cat "$secret_file")"
    fi
    export REGISTRAR_JWT_SECRET
    export REGISTRAR_ADMIN_PASSWORD="${REGISTRAR_ADMIN_PASSWORD:-admin-demo}"
    export REGISTRAR_OPERATOR_PASSWORD="${REGISTRAR_OPERATOR_PASSWORD:-operator-demo}"
    export REGISTRAR_DEMO_PASSWORD="${REGISTRAR_DEMO_PASSWORD:-demo}"
    # The demo runs the notify and analytics consumers inside the server.
    export REGISTRAR_CONSUMERS_IN_PROCESS="${REGISTRAR_CONSUMERS_IN_PROCESS:-true}"
    DEMO_STUDENTS="${DEMO_STUDENTS:-100000}"
    DEMO_SECTIONS="${DEMO_SECTIONS:-2000}"
}

build_release() {
    log "building (cargo build --release -j2 --bin registrar)"
    cargo build --release -j2 --bin registrar
    BIN="${CARGO_TARGET_DIR:-target}/release/registrar"
    if [[ ! -x $BIN ]]; then
        log "ERROR: $BIN not found after the build"
        return 1
    fi
}

migrate_and_seed() {
    log "migrating"
    "$BIN" migrate
    if [[ ${SKIP_SEED:-0} != 1 ]]; then
        log "seeding $DEMO_STUDENTS students, $DEMO_SECTIONS sections (--reset)"
        "$BIN" seed --students "$DEMO_STUDENTS" --sections "$DEMO_SECTIONS" --reset
    fi
}

print_demo_logins() {
    local last_student="(existing)"
    if [[ ${SKIP_SEED:-0} != 1 ]]; then
        last_student=$(printf 's%06d' "$DEMO_STUDENTS")
    fi
    printf '    %-9s %-24s password: %s\n' \
        students "s000001 .. $last_student" "$REGISTRAR_DEMO_PASSWORD" \
        admin admin "$REGISTRAR_ADMIN_PASSWORD" \
        operator operator "$REGISTRAR_OPERATOR_PASSWORD"
}
