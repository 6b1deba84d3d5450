#!/usr/bin/env bash
# The fault suite: a private stack (NATS, PostgreSQL, Redis, ClickHouse, two workers) in a
# temporary folder on its own ports; one case after another, each publishing a known set
# of ticks and candles while a fault happens, then checking that PostgreSQL and ClickHouse
# hold exactly the acked set, that Redis holds the newest acked values and that reads kept
# being answered. One table at the end.
#
#   tests/fault/run.sh
#
# Cases (in this order; the cluster case comes last because it replaces the single NATS
# server with a three-node cluster):
#   worker-kill       kill -9 the worker writing candles to PostgreSQL (the holder of that
#                     consumer's lease) mid-ingest, start it again
#   postgres-stop     PostgreSQL stopped for 20 s
#   redis-stop        Redis stopped for 20 s (it comes back empty: no persistence here)
#   clickhouse-stop   ClickHouse stopped for 60 s
#   nats-restart      nats-server restarted (JetStream on disk survives)
#   nats-leader-kill  three nats-servers on loopback, MARKET at three replicas: kill -9 the
#                     stream leader mid-ingest, start it again
#
# Environment:
#   DM_FAULT_N       messages per case (default 20000; 200000 for a long run)
#   DM_FAULT_CASES   only the cases whose name contains one of these words (comma or space
#                    separated), e.g. "postgres,leader"
#   DM_BUILD_DIR     an existing build with dm-worker and tests/fault/fault_load (the test
#                    command passes its sanitizer build); unset: builds <repo>/build-fault
#   DM_FAULT_KEEP    set: keep the case outputs and the worker and NATS logs in
#                    /tmp/dm-fault-logs.<pid> even when every case passes (always kept
#                    on a failure)
#
# Ports, all on 127.0.0.1 and below the ephemeral range: NATS 30222 (monitor 31222),
# PostgreSQL 30432, Redis 30379, ClickHouse 31123 (native 31000), workers' HTTP from 30460;
# the cluster 30231-30233 (routes 30331-30333, monitor 31231-31233).
#
# Judgement, per case (tests/fault/fault_load.c has the details): nothing acked is missing
# from PostgreSQL or ClickHouse, no key is stored twice where a reader can see it (for
# ClickHouse: under FINAL, which every read uses; the copies a ReplacingMergeTree keeps
# until it merges are shown apart as "unmerged"), no stored value differs, the checksums
# of acked and stored rows agree, Redis holds the newest acked tick and candle of every
# series, and during the fault no read went unanswered for longer than 3 s (10 s for the
# NATS cases, where the bus itself is away). A worker that dies on its own, or a sanitizer
# report in a worker log, fails the suite too. Exit status 0 when every case passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
STACK=$ROOT/deploy/stack.sh
N=${DM_FAULT_N:-20000}
ALL_CASES=(worker-kill postgres-stop redis-stop clickhouse-stop nats-restart nats-leader-kill)

say() { printf '\n== %s\n' "$*" >&2; }
note() { printf 'fault: %s\n' "$*" >&2; }
die() { printf 'fault: error: %s\n' "$*" >&2; exit 2; }

[[ $N =~ ^[0-9]+$ ]] && ((N >= 1000)) || die "DM_FAULT_N must be a number >= 1000"

selected() {
    local name=$1 word
    [[ -z ${DM_FAULT_CASES:-} ]] && return 0
    for word in ${DM_FAULT_CASES//,/ }; do
        [[ $name == *"$word"* ]] && return 0
    done
    return 1
}
CASES=()
for c in "${ALL_CASES[@]}"; do selected "$c" && CASES+=("$c"); done
((${#CASES[@]} > 0)) || die "DM_FAULT_CASES='${DM_FAULT_CASES:-}' selects no case (cases: ${ALL_CASES[*]})"

T_SUITE=$SECONDS
WORK=$(mktemp -d /tmp/dm-fault.XXXXXX)
export DM_STACK_DIR=$WORK/stack
# Below Linux's ephemeral range (32768-60999): a port there can be held by any client
# socket a moment, and a restarted worker then found its HTTP port taken.
export DM_NATS_PORT=30222 DM_NATS_MON_PORT=31222 DM_PG_PORT=30432 DM_REDIS_PORT=30379
export DM_CH_HTTP_PORT=31123 DM_CH_TCP_PORT=31000 DM_HTTP_PORT=30460
export DM_NATS_CLUSTER_PORT=30231 DM_NATS_CLUSTER_ROUTE_PORT=30331 DM_NATS_CLUSTER_MON_PORT=31231

export DM_STRATEGY=$WORK/strategy/strategy.json
# With a sanitizer build a report must fail the run, not scroll past (ignored otherwise).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

LOAD_PID=''
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null
    "$STACK" stop >/dev/null 2>&1 || true
    if { ((rc != 0)) || [[ -n ${DM_FAULT_KEEP:-} ]]; } && [[ -d $WORK ]]; then
        # Keep what explains a failure: the load's output and the logs of workers and NATS.
        local keep=/tmp/dm-fault-logs.$$ f
        mkdir -p "$keep"
        cp "$WORK"/*.out "$WORK"/*.err "$WORK"/*.notes "$DM_STACK_DIR"/workers/*.log "$keep"/ 2>/dev/null || true
        for f in "$DM_STACK_DIR"/nats/nats.log "$DM_STACK_DIR"/nats-cluster/n*/nats.log; do
            [[ -f $f ]] && cp "$f" "$keep/$(basename "$(dirname "$f")")-nats.log"
        done
        note "case outputs and logs kept in $keep"
    fi
    "$STACK" clean >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build ---
if [[ -n ${DM_BUILD_DIR:-} ]]; then
    BUILD=$(realpath -m -- "$DM_BUILD_DIR")
    [[ -x $BUILD/dm-worker ]] || die "$BUILD/dm-worker not found (DM_BUILD_DIR)"
    if [[ ! -x $BUILD/tests/fault/fault_load ]]; then
        say "build fault_load in $BUILD"
        cmake --build "$BUILD" -j"$(nproc)" --target fault_load >&2
    fi
else
    BUILD=$ROOT/build-fault
    say "build in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDM_BENCH=OFF >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target dm-worker fault_load >&2
fi
export DM_BUILD_DIR=$BUILD
LOAD=$BUILD/tests/fault/fault_load

# --------------------------------------------------------------- strategy ---
# The shipped strategy with two changes: a short breaker timeout, so a write consumer
# probes its backend 5 s after the breaker opened and the catch-up after an outage starts
# within seconds; and ticks also go to ClickHouse, so both kinds are judged in both
# databases. The read routes are the shipped ones, L1 first: every read is judged for
# freshness and holes against what was acked, whichever level answers it.
mkdir -p "$(dirname "$DM_STRATEGY")"
sed -e 's/"circuit_breaker_timeout": *[0-9]*/"circuit_breaker_timeout": 5/' \
    -e 's/"save_tick": *\[ *"timescale", *"dragonfly_cache" *\]/"save_tick": ["timescale", "clickhouse", "dragonfly_cache"]/' \
    "$ROOT/strategy/strategy.json" >"$DM_STRATEGY"
grep -q '"circuit_breaker_timeout": 5' "$DM_STRATEGY" &&
    grep -q '"save_tick": \["timescale", "clickhouse", "dragonfly_cache"\]' "$DM_STRATEGY" &&
    grep -q '"get_latest_tick": \["l1", "dragonfly_cache"' "$DM_STRATEGY" &&
    grep -q '"get_candles": \["l1", "dragonfly_cache"' "$DM_STRATEGY" ||
    die "strategy/strategy.json changed shape: cannot derive the suite's strategy from it"

# ------------------------------------------------------------------ stack ---
# These ports lie in the kernel's ephemeral range (32768-60999 by default): a client
# socket may hold one while its server is down, or leave it in TIME-WAIT for 60 s, and
# the server then fails to bind. Try again until such a socket is gone.
retry() {
    local t=$SECONDS
    until "$@"; do
        ((SECONDS - t < 75)) || return 1
        note "'$*' failed (a port held by a client socket?), trying again"
        sleep 2
    done
}

say "private stack in $DM_STACK_DIR"
retry "$STACK" start >&2
eval "$("$STACK" env)"
"$STACK" workers 2 >&2

FAILED=0
ROWS=()
WORKER_CONFIG=$ROOT/deploy/config

worker_pid() {
    local pid
    pid=$(cat "$DM_STACK_DIR/workers/$1.pid" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
}

# A worker that died on its own is a worker bug: say so, show its log, start it again so
# the next case still has two.
check_workers() {
    local w ok=0
    for w in w1 w2; do
        if ! worker_pid "$w" >/dev/null; then
            note "worker $w is not running after case $1 (crashed?); last lines of its log:"
            tail -n 40 "$DM_STACK_DIR/workers/$w.log" >&2 || true
            DM_CONFIG_DIR=$WORKER_CONFIG "$STACK" start-worker "$w" >&2 || true
            ok=1
        fi
    done
    return "$ok"
}

# Starts the load of case $1 (tag $2, publishing over $3 s, reads may pause $4 ms; $5: NATS
# URLs; $6: how stale a read may be, from the PubAck of a newer value, default 1 s; $7: if
# set, reads may also lag the longest PubAck pause plus $7 ms; $8: if set, reads may also
# lag until $8 ms after the last publish) and returns once it printed "ready".
load_start() {
    local name=$1 tag=$2 span=$3 gap=$4 urls=${5:-$DM_NATS_URL} stale=${6:-1000} after=${7:-0}
    local after_publish=${8:-0} i
    "$LOAD" --tag "$tag" --n "$N" --duration "$span" --max-gap-ms "$gap" --nats "$urls" \
        --max-stale-ms "$stale" --stale-after-pause-ms "$after" \
        --stale-after-publish-ms "$after_publish" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LOAD_PID=$!
    for ((i = 0; i < 900; i++)); do
        grep -qx ready "$WORK/$name.out" 2>/dev/null && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/$name.err" >&2
    die "$name: the load did not get ready"
}
fault_begins() { kill -USR1 "$LOAD_PID"; }
fault_ends() { kill -USR2 "$LOAD_PID"; }

load_finish() {
    local name=$1 rc=0
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=''
    cat "$WORK/$name.err" >&2
    return "$rc"
}

# ------------------------------------------------------------------ cases ---
# The killed worker's unacked batches come back after the consumers' AckWait (ticks 10 s,
# candles 2 s after its leases expired in 4 s): a value it held is written then, so a read
# may lag by that much. The victim is the worker writing candles to PostgreSQL (the last
# to log taking that lease): its death hands the candle leases over, the hardest part to
# get right (the next writer must write the dead one's candles before newer ones).
lease_holder() {
    local w best='' at='' t
    for w in w1 w2; do
        t=$(grep -h 'lease: timescale-candle: this worker writes it now' \
            "$DM_STACK_DIR/workers/$w.log" 2>/dev/null | tail -n 1 | cut -d' ' -f1)
        [[ -n $t && ( -z $at || $t > $at ) ]] && best=$w at=$t
    done
    printf '%s' "${best:-w1}"
}

case_worker_kill() {
    load_start worker-kill FK 12 3000 "$DM_NATS_URL" 15000 0 4000
    sleep 3
    local pid victim
    victim=$(lease_holder)
    pid=$(worker_pid "$victim") || die "worker-kill: $victim is not running"
    fault_begins
    kill -KILL "$pid"
    note "$victim (pid $pid), the candle writer, killed"
    sleep 2
    "$STACK" start-worker "$victim" >&2
    fault_ends
}

# Stops SERVICE for SECONDS while the load runs.
case_outage() {
    local name=$1 tag=$2 service=$3 seconds=$4
    load_start "$name" "$tag" $((seconds + 8)) 3000
    sleep 3
    fault_begins
    "$STACK" stop-service "$service" >&2
    note "$service stopped for ${seconds}s"
    sleep "$seconds"
    retry "$STACK" start-service "$service" >&2
    fault_ends
}

# The bus itself is away: reads may lag their PubAck by the consumers' reconnection (seen:
# up to 1.1 s with one connection per worker; 2.06 s once since replies have a connection of
# their own, each reconnecting on its own schedule): 3 s allowed.
case_nats_restart() {
    load_start nats-restart FN 12 10000 "$DM_NATS_URL" 3000
    sleep 3
    fault_begins
    "$STACK" stop-service nats >&2
    retry "$STACK" start-service nats >&2
    fault_ends
}

# Workers read their NATS URL and the stream's replica count from deploy/config/nats.json;
# the cluster case gives them a copy naming the three nodes (with the worker role's
# credentials: readable by root only), with three replicas.
CLUSTER_CONFIG=$WORK/config-cluster
cluster_config() {
    local dir=$CLUSTER_CONFIG urls=$1
    mkdir -p "$dir"
    chmod 0700 "$dir"
    cp "$ROOT"/deploy/config/*.json "$dir"/
    sed -e "s|\"url\": *\"[^\"]*\"|\"url\": \"$urls\"|" -e 's/"replicas": *[0-9]*/"replicas": 3/' \
        "$ROOT/deploy/config/nats.json" >"$dir/nats.json"
    grep -q "\"url\": \"$urls\"" "$dir/nats.json" && grep -q '"replicas": 3' "$dir/nats.json" ||
        die "deploy/config/nats.json changed shape: cannot derive the cluster's copy"
}

case_nats_leader_kill() {
    local urls leader
    "$STACK" stop-workers >&2
    "$STACK" stop-service nats >&2
    retry "$STACK" cluster-start >&2
    cluster_config "$("$STACK" cluster-urls worker)"
    urls=$("$STACK" cluster-urls operator)
    # One after the other: two workers creating the three-replica streams at once on a
    # fresh cluster can time out (see the report of this suite).
    DM_CONFIG_DIR=$CLUSTER_CONFIG "$STACK" workers 1 >&2
    DM_CONFIG_DIR=$CLUSTER_CONFIG "$STACK" start-worker w2 >&2
    # While the stream and its consumers elect new leaders nothing is delivered, so a read
    # may lag its PubAck by the election: 10 s allowed here, as for the reads' gap. Some
    # elections of the stream itself took 11-17 s (publishes got no PubAck all along);
    # then reads may lag that pause plus 8 s: the consumers' and the lease bucket's own
    # elections and the candles' AckWait come after it.
    load_start nats-leader-kill FL 15 10000 "$urls" 10000 8000
    sleep 3
    leader=$("$LOAD" --leader --nats "$urls") || die "nats-leader-kill: no leader for MARKET"
    [[ $leader =~ ^n[1-3]$ ]] || die "nats-leader-kill: unexpected leader name '$leader'"
    fault_begins
    "$STACK" cluster-kill "$leader" >&2
    note "stream leader $leader killed"
    sleep 5
    retry "$STACK" cluster-start >&2
    fault_ends
    # How long the restarted node takes to hold a current copy of every stream and
    # consumer again (the full /healthz); a note for the report, not a verdict.
    local port=$((DM_NATS_CLUSTER_MON_PORT + ${leader#n} - 1)) t=$SECONDS
    while ((SECONDS - t < 90)); do
        if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz"; then
            printf 'replica_current_s %s\n' $((SECONDS - t)) >>"$WORK/nats-leader-kill.notes"
            return 0
        fi
        sleep 0.5
    done
    printf 'replica_current_s >90 (%s)\n' "$(curl -s --max-time 2 "http://127.0.0.1:$port/healthz")" \
        >>"$WORK/nats-leader-kill.notes"
}

# A case runs in a subshell of its own: one that cannot even set up fails alone, and the
# suite goes on to the next and prints its table.
run_case() {
    local name=$1 t0=$SECONDS rc=0
    say "case $name (N=$N)"
    [[ $name != nats-leader-kill ]] || WORKER_CONFIG=$CLUSTER_CONFIG
    set +e
    (
        set -e
        trap '[[ -z $LOAD_PID ]] || kill "$LOAD_PID" 2>/dev/null' EXIT
        case $name in
        worker-kill) case_worker_kill ;;
        postgres-stop) case_outage postgres-stop FP postgres 20 ;;
        redis-stop) case_outage redis-stop FR redis 20 ;;
        clickhouse-stop) case_outage clickhouse-stop FC clickhouse 60 ;;
        nats-restart) case_nats_restart ;;
        nats-leader-kill) case_nats_leader_kill ;;
        esac
        load_finish "$name"
    )
    rc=$?
    set -e
    check_workers "$name" || rc=1
    if ((rc != 0)); then
        FAILED=1
        # Whatever the case left stopped, the next one needs running.
        [[ $name == nats-leader-kill ]] || "$STACK" start >&2 || true
    fi
    ROWS+=("$name $rc $((SECONDS - t0))")
}

for c in "${CASES[@]}"; do run_case "$c"; done

say "worker shutdown"
"$STACK" stop-workers >&2
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$DM_STACK_DIR"/workers/*.log >&2; then
    note "sanitizer reports in the worker logs above"
    grep -hE -A20 'AddressSanitizer|LeakSanitizer|runtime error:' "$DM_STACK_DIR"/workers/*.log | head -80 >&2
    FAILED=1
fi

# ------------------------------------------------------------------ table ---
get() { awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$WORK/$1.out"; }
pair() { printf '%s/%s' "$(get "$1" "timescale.$2")" "$(get "$1" "clickhouse.$2")"; }

table() {
    local fmt='%-16s | %-13s | %-15s | %-10s | %-20s | %-9s | %-40s | %-26s | %s\n'
    # shellcheck disable=SC2059
    printf "$fmt" fault published "stored ts/ch" "lost ts/ch" "duplicated ts/ch" dragonfly \
        "read p99 during fault" "stale p50/p99/max, holes" result
    local row name rc secs
    for row in "${ROWS[@]}"; do
        read -r name rc secs <<<"$row"
        if ! grep -q '^result ' "$WORK/$name.out" 2>/dev/null; then
            # shellcheck disable=SC2059
            printf "$fmt" "$name" - - - - - - - "did not run to the end (${secs}s)"
            continue
        fi
        local lost dup df reads fresh verdict
        lost=$(pair "$name" lost)
        dup="$(pair "$name" dup) (+$(get "$name" clickhouse.unmerged) unmerged)"
        df="$(($(get "$name" dragonfly.keys) - $(get "$name" dragonfly.stale) - $(get "$name" dragonfly.missing)))/$(get "$name" dragonfly.keys)"
        reads="$(get "$name" read.p99_ms) ms ($(get "$name" read.failed)/$(get "$name" read.total) failed, gap $(get "$name" read.max_gap_ms) ms)"
        fresh="$(get "$name" fresh.p50_ms)/$(get "$name" fresh.p99_ms)/$(get "$name" fresh_all.max_ms) ms, $(( $(get "$name" fresh_all.holes) + $(get "$name" fresh_all.forged) ))"
        verdict=$(get "$name" result)
        ((rc == 0)) || verdict=fail
        # shellcheck disable=SC2059
        printf "$fmt" "$name" "$(get "$name" acked)/$(get "$name" published)" "$(pair "$name" stored)" \
            "$lost" "$dup" "$df" "$reads" "$fresh" "$verdict (${secs}s)"
    done
}

say "fault suite: $N messages per case, $((SECONDS - T_SUITE)) s in all"
table
cat <<'EOF'

published: acked/published. stored/lost/duplicated: PostgreSQL/ClickHouse rows of the
case's symbols; duplicated counts keys a reader sees twice (ClickHouse under FINAL);
unmerged: redelivered copies ClickHouse still kept when the case was judged, merged away
later and never seen by a reader (not counted as duplicates). dragonfly: series whose
newest acked value Redis holds. Reads: dm.v1.tick.latest, dm.v1.candles.latest and
dm.v1.candles.history during the fault window (from the fault's start until the service
is back); gap: the longest time without an answer. stale: how far behind the acked data
the latest-value reads of the fault window were (a read sent at t answering an older value
than one PubAcked at a < t is stale by t - a; 0 when it had the newest), p50/p99 over
those reads, max over every read of the case (the figure judged); holes: latest-N answers
that skipped a published candle, or held a value never published, over the whole case
(must be 0). A case fails when a read was staler
than 1 s (worker-kill: 15 s, a dead worker's candle leases expire after 4 s and its tick
batches return after the 10 s AckWait, or until 4 s after the last publish when that is
more: nats-server 2.9.10 hands a lagging taken-over consumer its messages one at a time
until the stream stops growing past it, see README; nats-restart: 3 s; nats-leader-kill: 10 s, the
stream's and consumers' elections, or the longest PubAck pause (the stream's own election)
plus 8 s when that is more). A gap counts as a hole when the skipped candle stood
earlier in the stream than the newest one answered and was acked before the read.
EOF
for row in "${ROWS[@]}"; do
    read -r name rc secs <<<"$row"
    if [[ -f $WORK/$name.out ]]; then
        printf '%s: reads served by %s; PubAcks paused up to %s ms (stale bound %s ms), %s published again (%s taken as duplicates by the stream); %s redeliveries; sums %s\n' \
            "$name" "$(get "$name" read.served_by)" "$(get "$name" pub_max_gap_ms)" "$(get "$name" stale_bound_ms)" "$(get "$name" republished)" \
            "$(get "$name" pub_dup_acks)" "$(get "$name" redelivered)" \
            "$( [[ $(get "$name" timescale.sum_acked) == "$(get "$name" timescale.sum_stored)" &&
                $(get "$name" clickhouse.sum_acked) == "$(get "$name" clickhouse.sum_stored)" ]] &&
                echo equal || echo DIFFER)"
        [[ -n $(get "$name" dragonfly.problem) ]] && printf '  dragonfly: %s\n' "$(get "$name" dragonfly.problem)"
        [[ -n $(get "$name" read.last_error) ]] && printf '  last read error: %s\n' "$(get "$name" read.last_error)"
        [[ -n $(get "$name" fresh_all.worst) ]] && printf '  stalest read: %s\n' "$(get "$name" fresh_all.worst)"
        [[ -n $(get "$name" pub_last_error) ]] && printf '  %s PubAck errors, last: %s\n' \
            "$(get "$name" pub_ack_errors)" "$(get "$name" pub_last_error)"
        grep -E '^(timescale|clickhouse)\.lost_keys |^consumer\.' "$WORK/$name.out" | sed 's/^/  /' || true
        [[ -f $WORK/$name.notes ]] && sed 's/^replica_current_s /  restarted node current again after (s): /' "$WORK/$name.notes"
    fi
done
exit "$FAILED"
