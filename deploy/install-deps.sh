#!/usr/bin/env bash
# Install the Debian 12 packages needed to build, test and run dm-worker and
# its local stack (deploy/stack.sh).
#
#   deploy/install-deps.sh           what the build, the stack and the demo need
#   deploy/install-deps.sh --tests   also what only the tests need (tests/run.sh)
#
# Idempotent: every package is checked with dpkg-query first; when all are
# present the script makes no apt call at all and returns quickly.
#
# Note: installing postgresql-15 may make Debian create and start a system
# cluster on port 5432. We leave it alone; the local stack runs its own
# cluster (see deploy/stack.sh).
# Likewise clickhouse-server (Debian's 18.16) may start a system server on
# ports 8123/9000; the stack runs its own from a generated config.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config git curl
    nats-server redis-server clickhouse-server clickhouse-client
    postgresql-15 postgresql-client-15 libpq-dev
    libnats-dev libhiredis-dev libmsgpack-dev libcjson-dev
    libprotobuf-c-dev protobuf-c-compiler
    libmicrohttpd-dev libcmocka-dev libcurl4-openssl-dev libssl-dev libfftw3-dev
    clang libclang-rt-14-dev openssl
)
# The status page check loads each worker's page in headless Chromium; a big package
# nothing else needs, so the demo does not install it.
TEST_PACKAGES=(chromium)
case ${1:-} in
--tests) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
'') ;;
*) printf 'usage: %s [--tests]\n' "$0" >&2; exit 2 ;;
esac

log() { printf 'install-deps: %s\n' "$*" >&2; }

SUDO=()
if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        log "error: must run as root (or have sudo) to install packages"
        exit 1
    fi
fi

is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
    [[ $status == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    log "all ${#PACKAGES[@]} packages already installed"
else
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}"
    still_missing=()
    for pkg in "${missing[@]}"; do
        is_installed "$pkg" || still_missing+=("$pkg")
    done
    if ((${#still_missing[@]} > 0)); then
        log "error: still not installed: ${still_missing[*]}"
        exit 1
    fi
    log "done"
fi

# The postgresql packages create the 'postgres' system user; stack.sh runs
# initdb/pg_ctl as that user (PostgreSQL refuses to run as root).
if ! id -u postgres >/dev/null 2>&1; then
    log "creating system user 'postgres'"
    getent group postgres >/dev/null 2>&1 || "${SUDO[@]}" groupadd --system postgres
    "${SUDO[@]}" useradd --system --gid postgres --home-dir /var/lib/postgresql \
        --shell /bin/bash --comment "PostgreSQL administrator" postgres
fi

for bin in /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl; do
    if [[ ! -x $bin ]]; then
        log "error: $bin not found after install"
        exit 1
    fi
done
