#!/usr/bin/env bash
# The deployment files, checked without deploying: systemd units (check_systemd.sh), the
# Grafana dashboard (check_dashboard.sh), the compose stack (check_compose.sh). Installs
# the Debian packages they need when missing (systemd for systemd-analyze, python3-yaml,
# python3-jsonschema), as deploy/install-deps.sh does for the build.
#
#   tests/contract/check_deploy.sh [REPO] [DM_WORKER_BINARY]
set -euo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
BIN=${2:-}
HERE=$ROOT/tests/contract
PACKAGES=(systemd python3 python3-yaml python3-jsonschema)

missing=()
for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=()
    [[ ${EUID:-$(id -u)} -ne 0 ]] && SUDO=(sudo)
    echo "check_deploy: installing ${missing[*]}" >&2
    "${SUDO[@]}" apt-get update -qq >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

status=0
bash "$HERE/check_systemd.sh" "$ROOT" "$BIN" || status=1
bash "$HERE/check_dashboard.sh" "$ROOT" || status=1
bash "$HERE/check_compose.sh" "$ROOT" || status=1
exit "$status"
