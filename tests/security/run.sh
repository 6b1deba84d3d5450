#!/usr/bin/env bash
# The security checks: the static SQL check (with its self-test), then the secrets and
# hostile-input run and the NATS roles run, each on a private stack. The unit tests of the ClickHouse checks
# (tests/unit/test_clickhouse_safe.c, test_security.c) run with the other unit tests.
#
#   tests/security/run.sh        DM_BUILD_DIR: a build to use (default: builds build-sec)
#
# Runs both parts even when the first fails; exit 1 when either failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
status=0

printf '\n== security: SQL built from values (static)\n'
"$HERE/check_sql.sh" || status=1

printf '\n== security: secrets and hostile input (private stack)\n'
"$HERE/secrets.sh" || status=1

printf '\n== security: NATS roles and permissions (private stack)\n'
"$HERE/roles.sh" || status=1

exit "$status"
