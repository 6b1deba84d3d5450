#!/usr/bin/env bash
# deploy/systemd/ checked by systemd itself: `systemd-analyze verify` on an instance of the
# template and on the target, then `systemd-analyze security --offline` (the sandbox's
# exposure must stay at or below 2.0 of 10; 1.6 when written).
#
#   tests/contract/check_systemd.sh [REPO] [DM_WORKER_BINARY]
#
# verify needs ExecStart's binary to exist, and the units name /usr/local/bin/dm-worker,
# where an installed worker lives. So the units are copied to a temporary folder with that
# path rewritten to a built binary (the second argument, else $DM_BUILD_DIR/dm-worker,
# else build/dm-worker, else /bin/true: the check is about the unit, not the binary), and
# the instance dm-worker@w1.service is a symlink to the template there, as
# `systemctl enable dm-worker@w1` would make it. systemd 252 reports a misspelt key or a
# bad value as a warning and still exits 0: any line verify prints fails this check.
set -euo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
BIN=${2:-}
SRC=$ROOT/deploy/systemd
MAX_EXPOSURE=20 # systemd-analyze counts 0..100 and prints a tenth of it

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd: FAIL systemd-analyze not found (Debian package: systemd)"
    exit 1
fi
if [[ -z $BIN ]]; then
    for c in "${DM_BUILD_DIR:-}/dm-worker" "$ROOT/build/dm-worker" /bin/true; do
        [[ -x $c ]] && { BIN=$c; break; }
    done
fi
[[ -x $BIN ]] || { echo "systemd: FAIL $BIN is not executable"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
for f in "$SRC"/*.service "$SRC"/*.target; do
    sed "s#/usr/local/bin/dm-worker#$BIN#g" "$f" >"$tmp/$(basename "$f")"
done
ln -s dm-worker@.service "$tmp/dm-worker@w1.service"

fail=0
# In its own folder, so the relative unit names resolve there first.
out=$(cd "$tmp" && systemd-analyze verify --man=no ./dm-worker@w1.service ./dm-worker.target 2>&1) || fail=1
if [[ -n $out ]]; then
    fail=1
    sed 's/^/  /' <<<"$out"
fi
if ((fail)); then
    echo "systemd: FAIL systemd-analyze verify (above)"
    exit 1
fi

if ! sec=$(systemd-analyze security --offline=yes --threshold=$MAX_EXPOSURE --no-pager \
    "$tmp/dm-worker@w1.service" 2>&1); then
    grep -E '^✗|Overall' <<<"$sec" | sed 's/^/  /'
    echo "systemd: FAIL exposure above $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)) (the sandbox lost a setting?)"
    exit 1
fi
# Every ENV:NAME the worker's configs reference is documented in the shared env file, and
# every variable the unit expands in the instance's.
missing=()
for name in $(grep -ohE '"ENV\??:[A-Z0-9_]+"' "$ROOT"/deploy/config/*.json "$ROOT"/deploy/config/examples/*.json |
    sed -E 's/"ENV\??://; s/"$//' | sort -u); do
    grep -qE "^#? ?$name=" "$SRC/dm-worker.env.example" || missing+=("$name (dm-worker.env.example)")
done
for name in $(grep -oE '\$\{?[A-Z][A-Z0-9_]*' "$SRC/dm-worker@.service" | tr -d '${' | sort -u); do
    grep -qE "^$name=" "$SRC/instance.env.example" || missing+=("$name (instance.env.example)")
done
if ((${#missing[@]})); then
    printf '  not in the example environment files: %s\n' "${missing[@]}"
    echo "systemd: FAIL environment files"
    exit 1
fi

echo "systemd: ok verify (dm-worker@w1.service, dm-worker.target) and $(grep -o 'Overall exposure level.*' <<<"$sec")"
