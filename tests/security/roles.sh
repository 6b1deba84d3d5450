#!/usr/bin/env bash
# NATS roles: what each role may do works, what it may not is refused, and a refused
# attempt changes nothing (nothing stored, no answer changed, streams intact).
#
#   tests/security/roles.sh
#
# Starts a private stack (deploy/stack.sh, its own ports and folder, credentials generated
# for it) with two workers, takes the operator, collector and service URLs from
# 'stack.sh env' (and the worker's, to check that role too), and tries each role against
# the subjects it must and must not use. Environment: DM_BUILD_DIR (a build with dm-worker
# and cli/dmctl; default: builds <repo>/build-sec with ASan+UBSan). Ports 64222/64822
# (NATS), 64432 (PostgreSQL), 64379 (Redis), 64123/64900 (ClickHouse). Prints PASS/FAIL per
# check; exit 1 on any FAIL.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
STACK=$ROOT/deploy/stack.sh
NATSREQ=(perl "$HERE/natsreq.pl")

export DM_NATS_PORT=64222 DM_NATS_MON_PORT=64822 DM_PG_PORT=64432 DM_REDIS_PORT=64379
export DM_CH_HTTP_PORT=64123 DM_CH_TCP_PORT=64900 DM_HTTP_PORT=64460
unset DM_NATS_TLS DM_PG_PASSWORD

if [[ -z ${DM_BUILD_DIR:-} ]]; then
    DM_BUILD_DIR=$ROOT/build-sec
    cmake -S "$ROOT" -B "$DM_BUILD_DIR" -DDM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build "$DM_BUILD_DIR" -j"$(nproc)"
fi
export DM_BUILD_DIR
DMCTL=$DM_BUILD_DIR/cli/dmctl
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}

export DM_STACK_DIR
DM_STACK_DIR=$(mktemp -d /tmp/dm-roles-stack.XXXXXX)
WORK=$(mktemp -d /tmp/dm-roles.XXXXXX)
export DM_STRATEGY=$WORK/strategy.json
cp "$ROOT/strategy/strategy.json" "$DM_STRATEGY"

# shellcheck source=../lib/tally.sh
source "$ROOT/tests/lib/tally.sh"
cleanup() {
    local rc=$?
    "$STACK" clean >/dev/null 2>&1 || true
    rm -rf -- "$DM_STACK_DIR"
    if ((failed == 0 && rc == 0)); then rm -rf -- "$WORK"; else echo "evidence kept in $WORK"; fi
    exit "$rc"
}
trap cleanup EXIT

if ! "$STACK" start >"$WORK/stack.log" 2>&1 || ! "$STACK" workers 2 >>"$WORK/stack.log" 2>&1; then
    cat "$WORK/stack.log"
    fail "the private stack starts with two workers"
    exit 1
fi
eval "$("$STACK" env)"
OPERATOR=$DM_NATS_URL COLLECTOR=$DM_NATS_COLLECTOR_URL SERVICE=$DM_NATS_SERVICE_URL
WORKER=$DM_NATS_WORKER_URL
ANON=nats://127.0.0.1:$DM_NATS_PORT
WRONG=nats://collector:not-the-password@127.0.0.1:$DM_NATS_PORT

try() { "${NATSREQ[@]}" try "$@" 2>/dev/null || echo refused; } # try URL pub|sub|req SUBJECT [FILE]
denied() { [[ $(try "$@") == denied ]]; }
allowed() { [[ $(try "$@") == allowed ]]; }

T0=1578528000000
H=3600000
candle() { # candle TS CLOSE
    printf '{"symbol":"ROL/USD","timeframe":"1h","timestamp":%s,"open":1.1,"high":9.99999,"low":1.0,"close":%s,"volume":1,"source":"roles"}' "$1" "$2"
}
# newest URL: "TS CLOSE" of the newest ROL/USD 1h candle as this role reads it.
newest() {
    "$DMCTL" --server "$1" --timeout 5000 query dm.v1.candles.latest \
        '{"symbol":"ROL/USD","timeframe":"1h","limit":1}' --json 2>/dev/null |
        perl -MJSON::PP -ne 'my $j = eval { decode_json($_) } or next; my $c = $j->{data}[0] or next;
                             print "$c->{timestamp} $c->{close}\n"; exit'
}
market_msgs() { # the MARKET stream's message count, as the operator sees it
    "${NATSREQ[@]}" request "$OPERATOR" '$JS.API.STREAM.INFO.MARKET' /dev/null 2>/dev/null |
        perl -MJSON::PP -ne 'my $j = eval { decode_json($_) } or next; print $j->{state}{messages} // ""'
}

printf '\n== roles: who may connect\n'
check "a client without credentials cannot connect" test "$(try "$ANON" pub market.tick.ROLUSD)" = refused
check "a client with a wrong password cannot connect" test "$(try "$WRONG" pub market.tick.ROLUSD)" = refused
check "dmctl without credentials cannot read" \
    bash -c "! '$DMCTL' --server '$ANON' --timeout 2000 query dm.v1.health '{}' >/dev/null 2>&1"

printf '\n== roles: collector\n'
for i in 0 1 2; do
    "$DMCTL" --server "$COLLECTOR" --timeout 10000 publish-raw market.candle.ROLUSD.1h \
        "$(candle $((T0 + i * H)) 1.1$i)" >/dev/null 2>>"$WORK/dmctl.err" || true
done
want="$((T0 + 2 * H)) 1.12"
got=''
for _ in $(seq 1 50); do
    got=$(newest "$OPERATOR")
    [[ $got == "$want" ]] && break
    sleep 0.2
done
check "a collector's candles are acked and the operator reads the newest back" test "$got" = "$want"
check "a collector may not request dm.v1" denied "$COLLECTOR" req dm.v1.candles.latest
check "a collector may not subscribe to market data" denied "$COLLECTOR" sub 'market.>'
check "a collector may not subscribe to dm.v1 requests" denied "$COLLECTOR" sub 'dm.v1.>'
check "a collector may not read cache updates" denied "$COLLECTOR" sub dm.cache.v1.update
check "a collector may not read dead letters" denied "$COLLECTOR" sub 'dm.dlq.>'
check "a collector may not use the JetStream API" denied "$COLLECTOR" req '$JS.API.INFO'

printf '\n== roles: service\n'
check "a service reads what the collector wrote" test "$(newest "$SERVICE")" = "$want"
check "a service may use service discovery subjects" allowed "$SERVICE" pub '$SRV.PING'
before=$(market_msgs)
candle $((T0 + 3 * H)) 7.77777 >"$WORK/forged-candle.json"
check "a service may not publish market data" denied "$SERVICE" pub market.candle.ROLUSD.1h "$WORK/forged-candle.json"
"$DMCTL" --server "$SERVICE" --timeout 2000 publish-raw market.candle.ROLUSD.1h "$(cat "$WORK/forged-candle.json")" \
    >/dev/null 2>&1 || true
sleep 1
check "nothing a service published reached the stream" test "$(market_msgs)" = "$before"
check "nothing a service published is answered" test "$(newest "$OPERATOR")" = "$want"
check "a service may not subscribe to market data" denied "$SERVICE" sub 'market.>'
check "a service may not use the JetStream API" denied "$SERVICE" req '$JS.API.STREAM.INFO.MARKET'

printf '\n== roles: forged cache updates\n'
# What a worker would publish after a commit, but with a price nobody published.
printf '{"backend":"dragonfly","candles":[%s],"seqs":[999999999]}' "$(candle $((T0 + 2 * H)) 9.99999)" |
    "${NATSREQ[@]}" to-msgpack >"$WORK/forged-update.msgpack"
for _ in $(seq 1 20); do newest "$SERVICE" >/dev/null; done # both workers' L1 hold it
check "a collector may not publish a cache update" denied "$COLLECTOR" pub dm.cache.v1.update "$WORK/forged-update.msgpack"
check "a service may not publish a cache update" denied "$SERVICE" pub dm.cache.v1.update "$WORK/forged-update.msgpack"
changed=0
for _ in $(seq 1 40); do [[ $(newest "$SERVICE") == "$want" ]] || changed=$((changed + 1)); done
check "no answer changed after the forged updates (40 reads)" test "$changed" = 0

printf '\n== roles: streams stay intact\n'
before=$(market_msgs)
for role in COLLECTOR SERVICE WORKER; do
    url=${!role}
    check "${role,,} may not purge MARKET" denied "$url" req '$JS.API.STREAM.PURGE.MARKET'
    check "${role,,} may not delete MARKET" denied "$url" req '$JS.API.STREAM.DELETE.MARKET'
    check "${role,,} may not delete DLQ" denied "$url" req '$JS.API.STREAM.DELETE.DLQ'
done
check "MARKET holds every message after the attempts" test "$(market_msgs)" = "$before"
check "a worker may not publish market data" denied "$WORKER" pub market.tick.ROLUSD
check "the operator may manage streams" test -n "$(market_msgs)"
check "the operator's dmctl lag works" "$DMCTL" --timeout 10000 lag >/dev/null

printf '\n== roles: workers were not hampered\n'
check "no permission violation in the worker logs" \
    bash -c "! grep -qi 'permission' '$DM_STACK_DIR'/workers/*.log"

# Last, since it poisons L1: the forged update above is one a worker would accept. The
# operator, who may publish anything, sends it, and the answer changes. So the checks
# above failed for want of permission, not because the update was malformed.
allowed "$OPERATOR" pub dm.cache.v1.update "$WORK/forged-update.msgpack" >/dev/null || true
poisoned=0
for _ in $(seq 1 40); do [[ $(newest "$SERVICE") == "$((T0 + 2 * H)) 9.99999" ]] && poisoned=1; done
check "the same update from a role allowed to send it does change an answer" test "$poisoned" = 1

echo
echo "roles: $passed passed, $failed failed"
((failed == 0))
