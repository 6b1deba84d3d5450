#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for SECONDS_PER_TARGET
# (default 60) on a temporary copy of its seed corpus, one after the other: the repo's
# corpus is never written to. Prints one line per target and exits non-zero when any
# target crashed, leaked, hit undefined behaviour or timed out; the input that did it is
# kept and its path printed.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (build dir: $DM_FUZZ_BUILD_DIR, default build-fuzz)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
BUILD=${DM_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
TARGETS=(ingest strategy serve coherence protobuf)

if ! [[ $SECS =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh [SECONDS_PER_TARGET]" >&2
    exit 2
fi

# libFuzzer ships in libclang-rt-14-dev on Debian 12, not with clang itself.
missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
        { $sudo apt-get update -q >/dev/null &&
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

CC=clang cmake -S "$ROOT" -B "$BUILD" -DDM_FUZZ=ON -DDM_TESTS=OFF -DDM_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j2 --target "${TARGETS[@]/#/fuzz_}" >/dev/null

WORK=$(mktemp -d /tmp/dm-fuzz.XXXXXX)
failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t/corpus" "$WORK/$t/found"
    cp "$ROOT/fuzz/corpus/$t/"* "$WORK/$t/corpus/"
    start=$(date +%s)
    rc=0
    # -timeout: one input taking 10 s is a hang; the RSS limit catches unbounded growth.
    "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$WORK/$t/found/" "$WORK/$t/corpus" \
        >"$WORK/$t/log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t/log" | tail -1)
    found=("$WORK/$t/found/"*)
    [ -e "${found[0]}" ] || found=()
    crashes=${#found[@]}
    if ((rc != 0 && crashes == 0)); then
        crashes=1 # the fuzzer died without writing an input (it cannot start, say)
    fi
    echo "fuzz $t: ${execs:-0} execs in $secs s, $crashes crashes"
    if ((crashes)); then
        failed=1
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$WORK/$t/log" | head -5 | sed 's/^/  /'
        for f in "${found[@]}"; do echo "  input: $f"; done
        echo "  log: $WORK/$t/log"
    fi
done
if ((failed)); then
    echo "fuzz: failures above; inputs and logs kept in $WORK" >&2
    exit 1
fi
rm -rf "$WORK"
