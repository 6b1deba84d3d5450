#!/usr/bin/env bash
# The benchmark command: builds Release, starts a PRIVATE stack (NATS, PostgreSQL, Redis,
# ClickHouse) in a temporary folder on its own ports, starts two workers, runs the
# benchmarks and prints one report. The stack is always removed at the end (also on
# failure or ^C).
#
#   bench/run.sh [--ticks N] [--rounds R] [--requests N] [--warmup N] [--seconds S]
#                [--history-repeats N] [--bulk-rounds N] [--pattern-queries N]
#                [--corr-requests N]
#                [--only ingest|latest|mix|stale|patterns|correlations|history|fault]
#
#   --ticks N      ticks per ingest measurement (default 100000)
#   --rounds R     ingest rounds (raw + Data Manager each), best reported (default 5: rounds
#                  on this kind of shared machine differ by up to half)
#                  (ingest runs with 1, 2 and 3 workers: the scaling table)
#   --requests N   timed candles.latest requests per series (default 20000)
#   --warmup N     untimed requests per series first (default 1000)
#   --seconds S    timed phase of the mix (default 20)
#   --history-repeats N  timed passes of each history series (default 5)
#   --bulk-rounds N      bulk rounds of 10,000 candles, a fresh symbol each (default 5)
#   --pattern-queries N  timed patterns.find queries per set, W 32/128 x all/one symbol (default 200)
#   --corr-requests N    timed correlations/graph requests per series (default 300)
#   --only NAME    run one benchmark; "fault" runs the fault suite at 200,000 messages per case (DM_FAULT_N)
#
# The mix (bench_mix) runs between ingest and latest, so the workers' own latency
# percentiles in dm.v1.metrics (kept since they started) hold only its requests. latest
# and history need the EUR/USD 1h file loaded (done once, before the first of them);
# patterns (bench_patterns) needs it and the three 2021-2026 hourly files (EURUSD as
# EURB/USD, GBP/USD, USD/JPY), correlations (bench_correlations) the latter;
# history (bench_history) runs last: it ends with OPTIMIZE TABLE on ClickHouse and bulk
# writes of fresh symbols.
#
# Environment: DM_BUILD_DIR (default <repo>/build). Ports 34222 (NATS), 38222 (NATS
# monitor), 35432 (PostgreSQL), 36379 (Redis), 38123 (ClickHouse HTTP), 39000 (ClickHouse
# native), 37460 + K (worker wK's status page and /metrics), all on 127.0.0.1, so a bench
# stack never meets the dev stack (18123, ...) or the tests' (28123, ...); override with
# DM_BENCH_NATS_PORT, DM_BENCH_NATS_MON_PORT, DM_BENCH_PG_PORT, DM_BENCH_REDIS_PORT,
# DM_BENCH_CH_HTTP_PORT, DM_BENCH_CH_TCP_PORT, DM_BENCH_HTTP_PORT.
#
# Every figure is a ratio against a raw baseline measured in the same run on the same
# machine (raw JetStream publish + consume; a bare NATS echo of the same reply size that
# sends at once, the floor), so
# the report reads the same on a laptop and on a server. Exit status: 0 when the
# benchmarks ran (targets missed or not), 1 when one failed to run. The report goes to
# stdout, progress and build output to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD=$(realpath -m -- "${DM_BUILD_DIR:-$ROOT/build}")
TICKS=100000 ROUNDS=5 REQUESTS=20000 WARMUP=1000 MIX_SECONDS=20 ONLY=''
HISTORY_REPEATS=5 BULK_ROUNDS=5 PATTERN_QUERIES=200 CORR_REQUESTS=300

while (($#)); do
    case $1 in
    --ticks) TICKS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --seconds) MIX_SECONDS=$2; shift 2 ;;
    --history-repeats) HISTORY_REPEATS=$2; shift 2 ;;
    --bulk-rounds) BULK_ROUNDS=$2; shift 2 ;;
    --pattern-queries) PATTERN_QUERIES=$2; shift 2 ;;
    --corr-requests) CORR_REQUESTS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
case $ONLY in
'' | ingest | latest | mix | stale | patterns | correlations | history | fault) ;;
*) echo "bench/run.sh: --only ingest|latest|mix|stale|patterns|correlations|history|fault" >&2; exit 64 ;;
esac

# The fault report: the fault suite at 200,000 messages per case (DM_FAULT_N to change),
# Release workers, its own stack and ports. Not part of the default run (several minutes).
if [[ $ONLY == fault ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDM_TESTS=ON >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target dm-worker dmctl fault_load >&2
    DM_FAULT_N=${DM_FAULT_N:-200000} DM_BUILD_DIR=$BUILD exec "$ROOT/tests/fault/run.sh"
fi

say() { printf '\n== %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/dm-bench.XXXXXX)
export DM_STACK_DIR=$WORK/stack
export DM_NATS_PORT=${DM_BENCH_NATS_PORT:-34222} DM_NATS_MON_PORT=${DM_BENCH_NATS_MON_PORT:-38222}
export DM_PG_PORT=${DM_BENCH_PG_PORT:-35432} DM_REDIS_PORT=${DM_BENCH_REDIS_PORT:-36379}
export DM_CH_HTTP_PORT=${DM_BENCH_CH_HTTP_PORT:-38123} DM_CH_TCP_PORT=${DM_BENCH_CH_TCP_PORT:-39000}
export DM_HTTP_PORT=${DM_BENCH_HTTP_PORT:-37460}
export DM_CH_URL=http://127.0.0.1:$DM_CH_HTTP_PORT


cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "$ROOT/deploy/stack.sh" clean >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build ---
TARGETS=(dm-worker dmctl bench_ingest bench_latest bench_mix bench_stale bench_history bench_patterns
    bench_correlations)
say "build (Release) in $BUILD"
configure() {
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDM_BENCH=ON "$@" >"$WORK/cmake.log" 2>&1
}
if ! configure; then
    # Someone is mid-edit in tests/: the benchmark does not need them.
    tail -n 20 "$WORK/cmake.log" >&2
    echo "bench: configuring failed (above); configuring again with -DDM_TESTS=OFF" >&2
    configure -DDM_TESTS=OFF || { cat "$WORK/cmake.log" >&2; exit 1; }
fi
# Only what the benchmark runs: a half-edited unit test elsewhere must not stop it.
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}" >&2
export DM_BUILD_DIR=$BUILD
DMCTL=$BUILD/cli/dmctl

# ------------------------------------------------------------------ stack ---
say "private stack in $DM_STACK_DIR (ports $DM_NATS_PORT $DM_NATS_MON_PORT $DM_PG_PORT $DM_REDIS_PORT $DM_CH_HTTP_PORT $DM_CH_TCP_PORT)"
"$ROOT/deploy/stack.sh" start >&2
eval "$("$ROOT/deploy/stack.sh" env)"
"$ROOT/deploy/stack.sh" workers 2 >&2

ROWS=$WORK/rows
: >"$ROWS"
status=0

# The scaling table: the same ingest with 1, 2 and 3 workers (raw JetStream with as many
# consumer threads), then back to the 2 workers the other benchmarks expect.
if [[ -z $ONLY || $ONLY == ingest ]]; then
    for k in 1 2 3; do
        "$ROOT/deploy/stack.sh" workers "$k" >&2
        say "bench_ingest --ticks $TICKS --rounds $ROUNDS --workers $k"
        "$BUILD/bench/bench_ingest" --ticks "$TICKS" --rounds "$ROUNDS" --workers "$k" >>"$ROWS" || {
            echo "bench: bench_ingest with $k workers failed" >&2
            status=1
        }
    done
    "$ROOT/deploy/stack.sh" workers 2 >&2
fi

if [[ -z $ONLY || $ONLY == mix ]]; then
    say "bench_mix --seconds $MIX_SECONDS"
    "$BUILD/bench/bench_mix" --seconds "$MIX_SECONDS" >>"$ROWS" || {
        echo "bench: bench_mix failed" >&2
        status=1
    }
fi

# Freshness with every backend up, then with Redis (Dragonfly) stopped: PostgreSQL's
# commits must reach every worker's L1 as fast.
if [[ -z $ONLY || $ONLY == stale ]]; then
    say "bench_stale (all up, then Redis stopped)"
    "$BUILD/bench/bench_stale" --symbol STA/USD >>"$ROWS" || { echo "bench: bench_stale failed" >&2; status=1; }
    "$ROOT/deploy/stack.sh" stop-service redis >&2
    "$BUILD/bench/bench_stale" --symbol STB/USD --label " (Redis down)" >>"$ROWS" || {
        echo "bench: bench_stale with Redis down failed" >&2
        status=1
    }
    "$ROOT/deploy/stack.sh" start-service redis >&2
fi
# The EUR/USD 1h file, once, for latest and history.
LOADED=0
load_eurusd() {
    ((LOADED)) && return 0
    say "load EUR/USD 1h candles (data/EURUSD_H1_2010-10_2021-04.csv)"
    local t0 t1
    t0=$(date +%s.%N)
    "$DMCTL" publish-candles --symbol EUR/USD --timeframe 1h \
        --file "$ROOT/data/EURUSD_H1_2010-10_2021-04.csv" --quiet >&2 || return 1
    "$DMCTL" lag --wait 120 >/dev/null || return 1
    t1=$(date +%s.%N)
    printf 'NOTE\tload: 65,000 EUR/USD 1h candles published and written by all consumers in %.1f s\n' \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" >>"$ROWS"
    LOADED=1
}

# The three 2021-2026 hourly files, once, for patterns and correlations. The EURUSD one goes
# in as EURB/USD: it overlaps the ten-year file in 2021 on another broker clock
# (data/README.md), so one symbol must not hold both.
LOADED_2021=0
load_2021() {
    ((LOADED_2021)) && return 0
    say "load the 2021-2026 1h candles (EURB/USD, GBP/USD, USD/JPY)"
    local t0 t1 pair
    t0=$(date +%s.%N)
    for pair in EURB/USD:EURUSD GBP/USD:GBPUSD USD/JPY:USDJPY; do
        "$DMCTL" publish-candles --symbol "${pair%%:*}" --timeframe 1h \
            --file "$ROOT/data/${pair##*:}_H1_2021-01_2026-04.csv" --quiet >&2 || return 1
    done
    "$DMCTL" lag --wait 120 >/dev/null || return 1
    t1=$(date +%s.%N)
    printf 'NOTE\tload: 94,670 1h candles of 2021-2026 (EURB/USD, GBP/USD, USD/JPY) published and written by all consumers in %.1f s\n' \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" >>"$ROWS"
    LOADED_2021=1
}

if [[ -z $ONLY || $ONLY == latest ]]; then
    load_eurusd || { echo "bench: loading EUR/USD failed" >&2; exit 1; }
    say "bench_latest --requests $REQUESTS --warmup $WARMUP"
    "$BUILD/bench/bench_latest" --requests "$REQUESTS" --warmup "$WARMUP" >>"$ROWS" || {
        echo "bench: bench_latest failed" >&2
        status=1
    }
fi

if [[ -z $ONLY || $ONLY == patterns ]]; then
    { load_eurusd && load_2021; } || { echo "bench: loading the hourly files failed" >&2; exit 1; }
    say "bench_patterns --queries $PATTERN_QUERIES"
    "$BUILD/bench/bench_patterns" --queries "$PATTERN_QUERIES" >>"$ROWS" || {
        echo "bench: bench_patterns failed" >&2
        status=1
    }
fi

if [[ -z $ONLY || $ONLY == correlations ]]; then
    load_2021 || { echo "bench: loading the 2021-2026 hourly files failed" >&2; exit 1; }
    say "bench_correlations --requests $CORR_REQUESTS"
    "$BUILD/bench/bench_correlations" --requests "$CORR_REQUESTS" >>"$ROWS" || {
        echo "bench: bench_correlations failed" >&2
        status=1
    }
fi

if [[ -z $ONLY || $ONLY == history ]]; then
    load_eurusd || { echo "bench: loading EUR/USD failed" >&2; exit 1; }
    say "bench_history --repeats $HISTORY_REPEATS --rounds $BULK_ROUNDS"
    "$BUILD/bench/bench_history" --repeats "$HISTORY_REPEATS" --rounds "$BULK_ROUNDS" >>"$ROWS" || {
        echo "bench: bench_history failed" >&2
        status=1
    }
fi

# ----------------------------------------------------------------- report ---
say "report"
{
    echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "stack:   nats-server $(nats-server --version 2>/dev/null | sed 's/.*v//'), PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), ClickHouse $(curl -sf --max-time 5 -H "X-ClickHouse-User: $DM_CH_USER" -H "X-ClickHouse-Key: $DM_CH_PASSWORD" --data-binary 'SELECT version()' "$DM_CH_URL/" || echo '?'), 2 workers, build $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt")"
    echo
    printf '%-36s %-18s %-24s %6s   %-12s %s\n' benchmark value baseline ratio target verdict
    while IFS=$'\t' read -r kind name value base ratio target verdict; do
        [[ $kind == ROW ]] || continue
        printf '%-36s %-18s %-24s %6s   %-12s %s\n' "$name" "$value" "$base" "$ratio" "$target" "$verdict"
    done <"$ROWS"
    echo
    while IFS=$'\t' read -r kind text; do
        [[ $kind == NOTE ]] && printf -- '- %s\n' "$text"
    done <"$ROWS"
}
exit "$status"
