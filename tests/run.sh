#!/usr/bin/env bash
# The test command: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, starts a private stack (NATS, PostgreSQL, Redis, ClickHouse)
# in a temporary folder on its own ports, runs the unit tests and the server tests against
# two workers and loads their status pages in headless Chromium, then the security checks
# and the fault suite (stacks of their own) and the fuzz targets for a short while; fails
# on any test failure or sanitizer report.
#
#   tests/run.sh            everything
#   tests/run.sh NAME       only server tests whose name contains NAME
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD=${DM_TEST_BUILD_DIR:-$ROOT/build-asan}
FILTER=${1:-}

say() { printf '\n== %s\n' "$*"; }

say "dependencies"
"$ROOT/deploy/install-deps.sh" --tests

say "build (ASan + UBSan) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DDM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

# A private stack: never the demo's ports or folder.
export DM_STACK_DIR
DM_STACK_DIR=$(mktemp -d /tmp/dm-test-stack.XXXXXX)
export DM_NATS_PORT=${DM_TEST_NATS_PORT:-24222} DM_NATS_MON_PORT=${DM_TEST_NATS_MON_PORT:-28222}
export DM_PG_PORT=${DM_TEST_PG_PORT:-25432} DM_REDIS_PORT=${DM_TEST_REDIS_PORT:-26379}
export DM_CH_HTTP_PORT=${DM_TEST_CH_HTTP_PORT:-28123} DM_CH_TCP_PORT=${DM_TEST_CH_TCP_PORT:-29000}
export DM_HTTP_PORT=${DM_TEST_HTTP_PORT:-29460} # worker wK: /metrics on DM_HTTP_PORT + K
export DM_BUILD_DIR=$BUILD
export DM_DMCTL=$BUILD/cli/dmctl
# The server tests edit the strategy while workers run: they get their own copy.
export DM_STRATEGY=$DM_STACK_DIR/strategy/strategy.json
mkdir -p "$(dirname "$DM_STRATEGY")"
cp "$ROOT/strategy/strategy.json" "$DM_STRATEGY"
# halt_on_error: a sanitizer report in a worker must fail the run, not scroll past.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

cleanup() {
    local rc=$?
    "$ROOT/deploy/stack.sh" clean >/dev/null 2>&1 || true
    rm -rf -- "$DM_STACK_DIR"
    exit "$rc"
}
trap cleanup EXIT

say "contract: subjects/ against the code"
bash "$ROOT/tests/contract/check_subjects.sh" "$ROOT" | grep -v '^ok '

say "layers: no include cycle between the worker's folders"
bash "$ROOT/tests/contract/check_layers.sh" "$ROOT"

say "deployment files: systemd units, Grafana dashboard, compose stack (checked, not deployed)"
bash "$ROOT/tests/contract/check_deploy.sh" "$ROOT" "$BUILD/dm-worker"

say "unit tests"
(cd "$BUILD" && ctest --output-on-failure -R '^unit_')

say "stack in $DM_STACK_DIR (NATS over TLS, every role with its own credentials)"
# The server tests speak TLS to NATS (a CA made for this stack): the suites after them
# run plain, as the stack does by default.
DM_NATS_TLS=1 "$ROOT/deploy/stack.sh" start
eval "$("$ROOT/deploy/stack.sh" env)"
"$ROOT/deploy/stack.sh" workers 2

say "server tests"
status=0
"$BUILD/tests/integration/dm_itest" $FILTER | tee "$DM_STACK_DIR/itest.log" || status=$?

say "dashboard against a running worker's /metrics"
for k in 1 2; do
    metrics_url=http://127.0.0.1:$((DM_HTTP_PORT + k))/metrics
    curl -sf -o /dev/null --max-time 5 "$metrics_url" && break
done
bash "$ROOT/tests/contract/check_dashboard.sh" "$ROOT" "$metrics_url" || status=1

if [[ -z $FILTER ]]; then
    say "status page (each worker's, from the URL deploy/stack.sh status prints, in headless Chromium)"
    "$ROOT/tests/status/check_page.sh" >"$DM_STACK_DIR/status-page.log" 2>&1 || status=1
    grep -E '^(FAIL|status page:)' "$DM_STACK_DIR/status-page.log" || tail -20 "$DM_STACK_DIR/status-page.log"
fi

say "worker shutdown"
"$ROOT/deploy/stack.sh" stop-workers
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$DM_STACK_DIR"/workers/*.log; then
    echo "sanitizer reports in the worker logs above" >&2
    grep -hE -A20 'AddressSanitizer|LeakSanitizer|runtime error:' "$DM_STACK_DIR"/workers/*.log | head -80 >&2
    status=1
fi
summary=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$DM_STACK_DIR/itest.log" | tail -1)
"$ROOT/deploy/stack.sh" clean >/dev/null 2>&1 || true
mkdir -p "$DM_STACK_DIR"

# The suites below start stacks of their own, on their own ports (not with a NAME filter).
[[ -n $FILTER ]] && { echo "$summary"; exit "$status"; }
say "security checks"
security=0
DM_BUILD_DIR=$BUILD "$ROOT/tests/security/run.sh" >"$DM_STACK_DIR/security.log" 2>&1 || security=1
grep -E '^(FAIL|security:|roles:|check_sql:)' "$DM_STACK_DIR/security.log" || true
((security == 0)) || { tail -30 "$DM_STACK_DIR/security.log" >&2; status=1; }

say "fault suite (${DM_FAULT_N:-20000} messages per fault)"
DM_BUILD_DIR=$BUILD "$ROOT/tests/fault/run.sh" || status=1

say "fuzzing (${DM_TEST_FUZZ_SECONDS:-20} s per target)"
"$ROOT/fuzz/run.sh" "${DM_TEST_FUZZ_SECONDS:-20}" || status=1

# The closing line: the server tests' count (unit tests and the contract check stop the
# run above on any failure; the suites above print their own).
echo "${summary:-integration: 0 passed, 1 failed}"
exit "$status"
