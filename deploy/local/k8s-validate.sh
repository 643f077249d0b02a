#!/usr/bin/env bash
# deploy/local/k8s-validate.sh: check every Kubernetes manifest in deploy/k8s (and its
# example/ folder) offline, so a typo, a misplaced field or a wrong type fails the tests and
# not a `kubectl apply` on someone's cluster. Used by deploy/local/test.sh (step
# `k8s-validate`); runs alone too.
#
#   1. kubernetes-validate (pinned, from PyPI) in a virtualenv under the target dir, created
#      once; it ships the Kubernetes OpenAPI schemas, so no cluster and no network is needed
#      after the install
#   2. kubernetes-validate --strict against one pinned Kubernetes version: every *.yaml/*.yml
#      under deploy/k8s must be a valid resource, and unknown fields are errors; except the
#      CloudNativePG `Cluster` (cnpg-cluster.yaml), a custom resource without a schema in the
#      pinned set: it is skipped by name and checked for three instances, synchronous
#      replication with `dataDurability: required`, and the example Secret's database URL
#      pointing at its `-rw` Service
#   3. the shutdown budget: the StatefulSet's terminationGracePeriodSeconds must cover its
#      preStop hook (the `registrar cluster drain ... --timeout N` it runs plus its sleeps,
#      or a plain ['sleep', S]) + REGISTRAR_DRAIN_TIMEOUT_MS (ConfigMap) + 10 s, or a
#      draining node would be killed halfway through its handoff; and the hook must not use
#      $(VAR) references, which Kubernetes leaves unexpanded in hooks
#
# Fails (non-zero, with the reason on stderr) on any error. A second or so once installed.
#
# Environment (all optional):
#   K8S_VERSION (1.35.0)     Kubernetes version whose schemas are used (the oldest minor
#                            still supported upstream)
#   K8S_VALIDATE             pip requirement (default kubernetes-validate==1.37.0)
#   CARGO_TARGET_DIR         where the virtualenv lives (default target)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf 'k8s-validate: %s\n' "$*" >&2; }
die() {
    printf 'k8s-validate: FAILED: %s\n' "$*" >&2
    exit 1
}

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VERSION="${K8S_VERSION:-1.35.0}"
REQUIREMENT="${K8S_VALIDATE:-kubernetes-validate==1.37.0}"
VENV="$TARGET/k8s-venv"
MANIFESTS="deploy/k8s"

# Our own virtualenv, recreated when the requirement changes or it no longer runs (a venv
# copied with its target dir still points at its old path); CI installs it on its first run.
ensure_validator() {
    if [[ "$(cat "$VENV/requirement" 2>/dev/null)" == "$REQUIREMENT" ]] &&
        "$VENV/bin/kubernetes-validate" --version >/dev/null 2>&1; then
        return 0
    fi
    log "installing $REQUIREMENT into $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >&2; then
        command -v apt-get >/dev/null || die "python3 -m venv failed and there is no apt-get to add python3-venv"
        local sudo=()
        ((EUID == 0)) || sudo=(sudo)
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-venv python3-pip >&2 || die "apt-get install python3-venv failed"
        rm -rf "$VENV"
        python3 -m venv "$VENV" >&2 || die "python3 -m venv failed"
    fi
    timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check "$REQUIREMENT" >&2 ||
        die "pip install $REQUIREMENT failed (no access to PyPI? SKIP_K8S=1 skips this step in test.sh)"
    printf '%s\n' "$REQUIREMENT" >"$VENV/requirement"
}
ensure_validator

mapfile -t all < <(find "$MANIFESTS" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
((${#all[@]} > 0)) || die "no manifests under $MANIFESTS"
# Custom resources (CloudNativePG's Cluster) have no schema in kubernetes-validate's pinned
# Kubernetes set: they are skipped here, by name, and checked for what registrar relies on
# below instead.
files=()
crds=()
for f in "${all[@]}"; do
    if grep -q '^apiVersion: postgresql\.cnpg\.io/' "$f"; then crds+=("$f"); else files+=("$f"); fi
done
((${#crds[@]} == 0)) || log "skipped (custom resources, no schema in the pinned set): ${crds[*]}"
log "$REQUIREMENT, Kubernetes $VERSION, --strict: ${files[*]}"
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$VERSION" "${files[@]}" >&2 ||
    die "a manifest under $MANIFESTS is not valid for Kubernetes $VERSION (above)"

# The schema cannot see that the grace period must outlast the preStop hook and the drain.
"$VENV/bin/python" - "$MANIFESTS/statefulset.yaml" "$MANIFESTS/configmap.yaml" <<'EOF' ||
import re
import sys
import yaml

statefulset = yaml.safe_load(open(sys.argv[1]))
configmap = yaml.safe_load(open(sys.argv[2]))
pod = statefulset["spec"]["template"]["spec"]
grace = pod["terminationGracePeriodSeconds"]
drain_s = int(configmap["data"]["REGISTRAR_DRAIN_TIMEOUT_MS"]) / 1000
(container,) = [c for c in pod["containers"] if c["name"] == "registrar"]
command = container["lifecycle"]["preStop"]["exec"]["command"]
env_names = {e["name"] for e in container.get("env", [])}
for word in command:
    for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", word):
        if name in env_names:
            sys.exit(f"preStop uses $({name}): Kubernetes does not expand it in hooks; "
                     f"use \"${name}\" in a shell")

if len(command) == 2 and command[0] == "sleep":
    pre_stop_s = float(command[1])
    what = f"sleep {pre_stop_s:g} s"
elif len(command) == 3 and command[0] in ("sh", "/bin/sh") and command[1] == "-c":
    script = command[2]
    if "registrar cluster drain" not in script:
        sys.exit(f"the preStop shell does not run `registrar cluster drain`: {script!r}")
    timeouts = re.findall(r"--timeout[ =](\d+)", script)
    drain_cli_s = float(timeouts[0]) if timeouts else 120.0  # the command's default
    sleeps = sum(float(s) for s in re.findall(r"\bsleep (\d+(?:\.\d+)?)", script))
    pre_stop_s = drain_cli_s + sleeps
    what = f"cluster drain {drain_cli_s:g} s + sleep {sleeps:g} s"
else:
    sys.exit(f"preStop is expected to be ['sleep', SECONDS] or ['/bin/sh', '-c', SCRIPT] "
             f"running `registrar cluster drain ... --timeout N`, not {command}")
needed = pre_stop_s + drain_s + 10
if grace < needed:
    sys.exit(
        f"terminationGracePeriodSeconds {grace} < preStop ({what}) + SIGTERM drain "
        f"{drain_s:g} s + 10 s margin = {needed:g} s"
    )
print(f"grace period {grace} s >= preStop ({what}) + SIGTERM drain {drain_s:g} s + 10 s",
      file=sys.stderr)
EOF
    die "the StatefulSet's shutdown (preStop hook, grace period) does not hold (above)"
# The CloudNativePG cluster: what registrar's guarantees across a failover rest on, and the
# Secret's database URL pointing at its read-write Service.
if ((${#crds[@]} > 0)); then
    "$VENV/bin/python" - "$MANIFESTS/example/secret.yaml" "${crds[@]}" <<'EOF' ||
import sys
import yaml

secret = yaml.safe_load(open(sys.argv[1]))
url = secret["stringData"]["REGISTRAR_DATABASE_URL"]
for path in sys.argv[2:]:
    doc = yaml.safe_load(open(path))
    if doc.get("kind") != "Cluster":
        sys.exit(f"{path}: expected a CloudNativePG Cluster, not {doc.get('kind')}")
    spec = doc["spec"]
    name = doc["metadata"]["name"]
    if spec.get("instances", 1) < 3:
        sys.exit(f"{path}: {spec.get('instances', 1)} instances; a primary and two standbys at least")
    sync = spec.get("postgresql", {}).get("synchronous") or {}
    if sync.get("number", 0) < 1 or sync.get("method") not in ("any", "first"):
        sys.exit(f"{path}: no synchronous replication (postgresql.synchronous method/number)")
    if sync.get("dataDurability", "required") != "required":
        sys.exit(f"{path}: dataDurability {sync['dataDurability']!r} may lose acknowledged commits in a failover")
    if f"@{name}-rw:" not in url:
        sys.exit(f"example/secret.yaml: REGISTRAR_DATABASE_URL does not point at {name}-rw (the primary)")
    print(f"{path}: {spec['instances']} instances, synchronous {sync['method']} {sync['number']}, "
          f"registrar on {name}-rw", file=sys.stderr)
EOF
        die "the CloudNativePG cluster or the database URL pointing at it does not hold (above)"
fi
log "passed: ${#files[@]} manifests valid for Kubernetes $VERSION${crds[*]:+; ${#crds[@]} custom resource(s) checked without a schema}"
