#!/usr/bin/env bash
# deploy/local/web.sh: build the browser pages (web/ -> web/dist) when they are missing or
# older than their sources; install Node.js and npm with apt-get when they are missing.
#
#   npm ci          when web/node_modules is missing or older than web/package-lock.json
#   npm run build   when web/dist/index.html is missing or older than any source file
#
# FORCE=1 rebuilds anyway. Called by up.sh (first command of the README) and test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WEB="$ROOT/web"
log() { printf 'web.sh: %s\n' "$*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nodejs npm >/dev/null
fi

# Vite needs Node.js 20.19 or later (Debian 12's own nodejs is 18).
node_version="$(node -p 'process.versions.node' 2>/dev/null || echo 0)"
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    log "ERROR: Node.js $node_version is too old for the build (Vite needs 20.19+); install Node.js 20 or 22 and run again"
    exit 1
fi

cd "$WEB"
# `newer A B`: A exists and is newer than B.
if [[ ${FORCE:-0} == 1 || ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "installing packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
fi

stale=0
if [[ ${FORCE:-0} == 1 || ! -f dist/index.html ]]; then
    stale=1
elif [[ -n $(find src index.html docs.html vite.config.ts tsconfig.json package-lock.json -newer dist/index.html -print -quit) ]]; then
    stale=1
fi
if [[ $stale == 1 ]]; then
    log "building the pages (npm run build)"
    npm run build --silent
else
    log "the pages are up to date (web/dist)"
fi
