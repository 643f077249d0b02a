#!/usr/bin/env bash
# deploy/local/test.sh: run the whole registrar test suite on this machine (also what CI
# runs, through .ci/run). Fails fast, in this order:
#
#   0. deploy/local/services.sh   PostgreSQL, Redis, RabbitMQ on 127.0.0.1 (installs/starts)
#   1. cargo fmt --all -- --check
#   2. cargo clippy -j2 --workspace --all-targets -- -D warnings
#   3. cargo test -j2 --workspace                       (RUST_TEST_THREADS=2)
#   3b. deploy/local/smoke-load.sh   a real server under ~15 s of goose load (flash, churn),
#       then registrar-loadtest verify: invariants + every acknowledged decision
#   3f. loadtest/chaos-bench.sh --seconds 60 --seed 1 --users 30   three nodes in network
#       namespaces under ~60 s of load while a seeded nemesis injects every fault kind at
#       least once (kill -9, SIGSTOP past the lease, PostgreSQL backends paused, cut from
#       PostgreSQL, partition from the peers, clock skew), then both verifiers (~2.5 minutes;
#       needs root for ip netns and iptables)
#   3g. loadtest/failover-bench.sh, short: a Patroni HA database (deploy/local/ha.sh: two
#       PostgreSQL, synchronous standby, etcd, HAProxy; packages installed when missing) on
#       its own ports, three nodes under 30 s of chaos load, kill -9 of the primary
#       PostgreSQL at 10 s, then registrar verify --acks: no acknowledgement lost, no 5xx
#       but 503; the HA database is stopped and wiped afterwards (~1.5 minutes; root)
#   3e. deploy/local/e2e.sh   the browser pages: npm ci/build when stale, Vitest, then
#       Debian's Chromium (playwright-core) against a real server; screenshots in target/e2e
#   3c. deploy/local/fuzz.sh   schemathesis (installed into a virtualenv under the target
#       dir) against GET /api/v1/openapi.json as a student and as admin, every check: no
#       5xx, no answer or request the document does not describe (~2 minutes)
#   3d. deploy/local/k8s-validate.sh   every manifest in deploy/k8s against the pinned
#       Kubernetes schemas (kubernetes-validate --strict, in a virtualenv under the target
#       dir), and the StatefulSet's grace period against preStop + drain (~1 s once installed)
#   4. loom models of the admission gate and of the commit pipeline:
#      RUSTFLAGS="--cfg registrar_loom" CARGO_TARGET_DIR=target/loom \
#        cargo test -j2 -p registrar-actors --test loom_gate --test loom_pipeline --release
#
# Tests that need the services read these variables (exported here, overridable):
#   REGISTRAR_TEST_DATABASE_URL  admin connection; tests create their own database through
#                                it (default postgres://registrar:registrar@127.0.0.1:5432/postgres)
#   REGISTRAR_TEST_REDIS_URL     default redis://127.0.0.1:6379
#   REGISTRAR_TEST_AMQP_URL      default amqp://guest:guest@127.0.0.1:5672/%2f
#
# Other knobs:
#   SKIP_LINT=1       skip steps 1 and 2 (quick local runs; CI runs them)
#   SKIP_SERVICES=1   do not run services.sh (services provided elsewhere)
#   SKIP_FUZZ=1       skip step 3c (no network access to PyPI, or a quick local run)
#   SKIP_K8S=1        skip step 3d (no network access to PyPI for its first install)
#   SKIP_E2E=1        skip step 3e (the web unit tests and the Chromium end-to-end tests)
#   SKIP_CHAOS=1      skip step 3f (no root for network namespaces, or a quick local run)
#   SKIP_FAILOVER=1   skip step 3g (no root, no apt-get for Patroni/etcd/HAProxy, or quick)
#   RUST_TEST_THREADS threads per test binary (default 2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf 'test.sh: %s\n' "$*" >&2; }

export REGISTRAR_TEST_DATABASE_URL="${REGISTRAR_TEST_DATABASE_URL:-postgres://registrar:registrar@127.0.0.1:5432/postgres}"
export REGISTRAR_TEST_REDIS_URL="${REGISTRAR_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export REGISTRAR_TEST_AMQP_URL="${REGISTRAR_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/registrar_test}"
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

START=$SECONDS
PASSED=()

# step NAME COMMAND...: run one step; on failure say which one and stop.
step() {
    local name=$1 started=$SECONDS status=0
    shift
    log "== $name: $*"
    "$@" || status=$?
    if ((status != 0)); then
        log "FAILED: $name (exit $status) after $((SECONDS - START))s; passed before it: ${PASSED[*]:-none}"
        exit "$status"
    fi
    PASSED+=("$name")
    log "== $name ok ($((SECONDS - started))s)"
}

# rustfmt and clippy are rustup components that minimal toolchains lack.
ensure_component() {
    local probe=$1 component=$2
    if ! cargo "$probe" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null || {
            log "cargo $probe is missing and rustup is not available to add $component"
            exit 1
        }
        log "adding rustup component $component"
        rustup component add "$component" >&2
    fi
}

loom() {
    RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg registrar_loom" CARGO_TARGET_DIR=target/loom \
        cargo test -j2 -p registrar-actors --test loom_gate --test loom_pipeline --release
}

# Each test creates its own database; drop the ones earlier runs left behind.
drop_test_databases() {
    local db
    for db in $(psql "$REGISTRAR_TEST_DATABASE_URL" -Atc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'registrar\_test\_%'"); do
        psql "$REGISTRAR_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done
}

if [[ ${SKIP_SERVICES:-0} != 1 ]]; then
    step services "$ROOT/deploy/local/services.sh"
fi
step drop-test-databases drop_test_databases

# Tests declare their own exchanges and queues and write Redis keys under their own
# prefix; start each run from an empty vhost and no leftover keys.
reset_test_broker_and_cache() {
    if [[ $REGISTRAR_TEST_AMQP_URL == */registrar_test ]]; then
        rabbitmqctl -q delete_vhost registrar_test >/dev/null 2>&1 || true
        rabbitmqctl -q add_vhost registrar_test >/dev/null
        rabbitmqctl -q set_permissions -p registrar_test guest '.*' '.*' '.*' >/dev/null
    fi
    redis-cli --scan --pattern 'registrar_test_*' | xargs -r -n 500 redis-cli del >/dev/null
}
step reset-broker-and-cache reset_test_broker_and_cache

if [[ ${SKIP_LINT:-0} == 1 ]]; then
    log "SKIP_LINT=1: skipping cargo fmt and cargo clippy"
else
    ensure_component fmt rustfmt
    ensure_component clippy clippy
    step fmt cargo fmt --all -- --check
    step clippy cargo clippy -j2 --workspace --all-targets -- -D warnings
fi

step test cargo test -j2 --workspace
step smoke-load "$ROOT/deploy/local/smoke-load.sh"
if [[ ${SKIP_CHAOS:-0} == 1 ]]; then
    log "SKIP_CHAOS=1: skipping the chaos run"
else
    step chaos env SKIP_BUILD=1 CHAOS_DIR="$ROOT/target/chaos-bench" \
        "$ROOT/loadtest/chaos-bench.sh" --seconds 60 --seed 1 --users 30 --settle 15
fi
if [[ ${SKIP_FAILOVER:-0} == 1 ]]; then
    log "SKIP_FAILOVER=1: skipping the database failover run"
else
    # Debug binaries (built by the test step); its own HA database, wiped afterwards.
    step failover env SKIP_BUILD=1 FAILOVER_BIN_DIR="$ROOT/target/debug" \
        FAILOVER_DIR="$ROOT/target/failover-bench" FAILOVER_SECS=30 FAILOVER_KILL_AT=10 \
        FAILOVER_USERS=30 HA_WIPE=1 "$ROOT/loadtest/failover-bench.sh"
fi
if [[ ${SKIP_E2E:-0} == 1 ]]; then
    log "SKIP_E2E=1: skipping the browser tests"
else
    step e2e "$ROOT/deploy/local/e2e.sh"
fi
if [[ ${SKIP_FUZZ:-0} == 1 ]]; then
    log "SKIP_FUZZ=1: skipping the API fuzzing"
else
    step fuzz "$ROOT/deploy/local/fuzz.sh"
fi
if [[ ${SKIP_K8S:-0} == 1 ]]; then
    log "SKIP_K8S=1: skipping the Kubernetes manifest validation"
else
    step k8s-validate "$ROOT/deploy/local/k8s-validate.sh"
fi
step loom loom

skipped=""
if [[ ${SKIP_LINT:-0} == 1 ]]; then
    skipped+=" (fmt/clippy skipped: SKIP_LINT=1)"
fi
if [[ ${SKIP_FUZZ:-0} == 1 ]]; then
    skipped+=" (fuzz skipped: SKIP_FUZZ=1)"
fi
if [[ ${SKIP_E2E:-0} == 1 ]]; then
    skipped+=" (e2e skipped: SKIP_E2E=1)"
fi
if [[ ${SKIP_CHAOS:-0} == 1 ]]; then
    skipped+=" (chaos skipped: SKIP_CHAOS=1)"
fi
if [[ ${SKIP_K8S:-0} == 1 ]]; then
    skipped+=" (k8s-validate skipped: SKIP_K8S=1)"
fi
if [[ ${SKIP_FAILOVER:-0} == 1 ]]; then
    skipped+=" (failover skipped: SKIP_FAILOVER=1)"
fi
printf 'test.sh: PASSED %s in %ss%s\n' "${PASSED[*]}" "$((SECONDS - START))" "$skipped"
