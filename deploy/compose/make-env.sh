#!/usr/bin/env bash
# Writes deploy/compose/.env from .env.example with a generated value for every CHANGE_ME
# (24 URL-safe characters, as deploy/stack.sh makes them), mode 0600. Never overwrites.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
[[ -e .env ]] && { echo "make-env: .env exists, left alone" >&2; exit 1; }
umask 077
while IFS= read -r line; do
    if [[ $line == *=CHANGE_ME ]]; then
        printf '%s=%s\n' "${line%%=*}" "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
    else
        printf '%s\n' "$line"
    fi
done <.env.example >.env
echo "make-env: wrote $(pwd)/.env (0600)" >&2
