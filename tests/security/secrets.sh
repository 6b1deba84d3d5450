#!/usr/bin/env bash
# Secrets never leave the worker, and hostile input gets the documented errors.
#
#   tests/security/secrets.sh
#
# Starts a private stack with deploy/stack.sh on its own ports and folder. The secrets
# the worker reads are the stack's own (generated per stack: the NATS passwords of all
# four roles, Redis's, the ClickHouse user's) plus a marker as PostgreSQL's password
# (DM_PG_PASSWORD, as deploy/config/timescale.json reads it); through a private copy of
# deploy/config the worker takes its NATS URL from another variable and the Redis
# password from an --env-file, so those paths are covered too. Then it drives the worker with dmctl:
# good writes, SQL-shaped symbols, timeframes, countries, cursors and payloads on dm.v1.*
# and market.*, an oversized request, limits over their maximum, wrong types; it stops
# PostgreSQL and rotates the PostgreSQL and Redis passwords under the worker, and runs a
# worker whose ClickHouse password the server refuses, so the error paths run. Finally it
# reads every worker log line, every reply (health and metrics included, JSON and
# msgpack) and every dead letter, and fails if any holds a secret.
#
# Environment: DM_BUILD_DIR (a build with dm-worker and cli/dmctl; default: builds
# <repo>/build-sec with ASan+UBSan). Ports 54222/58222 (NATS), 55432 (PostgreSQL), 56379
# (Redis), 58123/59000 (ClickHouse). Prints PASS/FAIL per check; exit 1 on any FAIL.
# Replies and logs are kept (path printed) when a check fails.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
STACK=$ROOT/deploy/stack.sh
NATSREQ=(perl "$HERE/natsreq.pl")

export DM_NATS_PORT=54222 DM_NATS_MON_PORT=58222 DM_PG_PORT=55432 DM_REDIS_PORT=56379
export DM_CH_HTTP_PORT=58123 DM_CH_TCP_PORT=59000 DM_HTTP_PORT=57460
CH_URL=http://127.0.0.1:$DM_CH_HTTP_PORT

say() { printf '\n== %s\n' "$*"; }

# ------------------------------------------------------------------- build ---

if [[ -z ${DM_BUILD_DIR:-} ]]; then
    DM_BUILD_DIR=$ROOT/build-sec
    say "build (ASan + UBSan) in $DM_BUILD_DIR"
    cmake -S "$ROOT" -B "$DM_BUILD_DIR" -DDM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build "$DM_BUILD_DIR" -j"$(nproc)"
fi
export DM_BUILD_DIR
DMCTL=$DM_BUILD_DIR/cli/dmctl
for bin in "$DM_BUILD_DIR/dm-worker" "$DMCTL"; do
    [[ -x $bin ]] || { echo "FAIL setup: $bin not found (build, or set DM_BUILD_DIR)"; exit 1; }
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ----------------------------------------------------------------- secrets ---

# 16 random hex digits per secret: the tail alone is searched for as well, so a secret
# cut short or stripped of its prefix is still found.
rand_hex() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
SEC_PG=dmsecpg$(rand_hex)
SEC_CH_WRONG=dmsecch$(rand_hex) # a ClickHouse password the server refuses

export DM_PG_PASSWORD=$SEC_PG # stack.sh gives role dm this password, workers read it
export DM_SEC_CH_PASSWORD=$SEC_CH_WRONG

export DM_STACK_DIR
DM_STACK_DIR=$(mktemp -d /tmp/dm-sec-stack.XXXXXX)
EV=$(mktemp -d /tmp/dm-sec-evidence.XXXXXX) # replies and copies of the logs
WORK=$DM_STACK_DIR/sec                      # configs, env file, payloads
mkdir -p "$WORK"
export DM_STRATEGY=$WORK/strategy.json # a copy: edits to the repo's file change nothing here
# Breakers that (almost) never open: every request and every batch during an outage goes
# to the backend and reconnects with the secret, which is the path under test here.
perl -MJSON::PP -e 'local $/; my $j = decode_json(<STDIN>); my $p = $j->{performance};
    $p->{circuit_breaker_threshold} = 1000; $p->{circuit_breaker_timeout} = 1;
    print JSON::PP->new->pretty->canonical->encode($j)' \
    <"$ROOT/strategy/strategy.json" >"$DM_STRATEGY"

# shellcheck source=../lib/tally.sh
source "$ROOT/tests/lib/tally.sh"

cleanup() {
    local rc=$?
    "$STACK" clean >/dev/null 2>&1 || true
    rm -rf -- "$DM_STACK_DIR"
    if ((failed == 0 && rc == 0)); then rm -rf -- "$EV"; else echo "evidence kept in $EV"; fi
    exit "$rc"
}
trap cleanup EXIT

# Private configs: deploy/config with the Redis password read from an env file and the
# NATS URL from a variable stack.sh does not set. main: what the servers accept;
# ch-refused: a ClickHouse password the server refuses.
make_config() {
    local dir=$1 ch_password=$2
    mkdir -p "$dir"
    cp "$ROOT"/deploy/config/*.json "$dir/"
    perl -MJSON::PP -e '
        my ($dir, $chpw) = @ARGV;
        sub edit { my ($f, $fn) = @_; local $/; open my $h, "<", "$dir/$f" or die;
                   my $j = decode_json(<$h>); $fn->($j); open $h, ">", "$dir/$f" or die;
                   print $h JSON::PP->new->pretty->canonical->encode($j); }
        edit("nats.json", sub { $_[0]{url} = "ENV:DM_SEC_NATS_URL" });
        edit("dragonfly.json", sub { $_[0]{password} = "ENV:DM_SEC_REDIS_PASSWORD" });
        edit("clickhouse.json", sub { $_[0]{password} = $chpw });
    ' "$dir" "$ch_password"
}
# DM_CONFIG_DIR for a stack.sh that takes it; the same --config-dir in the arguments,
# which come last and win, for one that does not.
start_workers() { # start_workers CONFIG-DIR stack.sh-COMMAND [ARG]
    local cfg=$1
    shift
    DM_CONFIG_DIR=$cfg DM_WORKER_ARGS="--config-dir $cfg --env-file $WORK/secrets.env" \
        "$STACK" "$@" >>"$EV/stack-workers.log" 2>&1
}

say "setup"
if grep -q '"password": *"ENV:DM_PG_PASSWORD"' "$ROOT/deploy/config/timescale.json"; then
    pass "deploy/config/timescale.json reads the PostgreSQL password from DM_PG_PASSWORD"
else
    fail "deploy/config/timescale.json reads the PostgreSQL password from DM_PG_PASSWORD"
fi

if ! "$STACK" start >"$EV/stack-start.log" 2>&1; then
    cat "$EV/stack-start.log"
    fail "the private stack starts"
    exit 1
fi
eval "$("$STACK" env)"
# shellcheck disable=SC1091
source "$DM_STACK_DIR/secrets.env"
SEC_REDIS=$DM_SECRET_REDIS
SEC_CH=$DM_SECRET_CH
SECRETS=("$SEC_PG" "$SEC_REDIS" "$SEC_CH" "$SEC_CH_WRONG" "$DM_SECRET_NATS_OPERATOR"
    "$DM_SECRET_NATS_WORKER" "$DM_SECRET_NATS_COLLECTOR" "$DM_SECRET_NATS_SERVICE")
export DM_SEC_NATS_URL=$DM_NATS_WORKER_URL
export REDISCLI_AUTH=$SEC_REDIS # this script's redis-cli calls
make_config "$WORK/cfg-main" "ENV:DM_CH_PASSWORD"
make_config "$WORK/cfg-ch-refused" "ENV:DM_SEC_CH_PASSWORD"
(umask 077 && printf 'DM_SEC_REDIS_PASSWORD=%s\n' "$SEC_REDIS" >"$WORK/secrets.env")
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$DM_STACK_DIR/pgsock" -p "$DM_PG_PORT" -At)
pg() { "${PSQL[@]}" -U dm -d dm "$@"; }
pg_admin() { "${PSQL[@]}" -U postgres -d postgres "$@"; }
ch_sql() {
    curl -sf --max-time 10 -H "X-ClickHouse-User: $DM_CH_USER" -H "X-ClickHouse-Key: $DM_CH_PASSWORD" \
        --data-binary "$1" "$CH_URL/"
}

if start_workers "$WORK/cfg-main" workers 1; then
    pass "a worker starts with every secret from the environment or an env file"
else
    cat "$EV/stack-workers.log"
    fail "a worker starts with every secret from the environment or an env file"
    exit 1
fi

# ---------------------------------------------------------------- helpers ---

n_replies=0
R_STATUS='' R_CODE='' R_FIELD='' R_FILE=''

# Reads status, error code and field of a reply file: line 1 "Status: N", then the body.
parse_reply() {
    read -r R_STATUS R_CODE R_FIELD < <("${NATSREQ[@]}" reply-summary "$1")
}

# query NAME SUBJECT BODY: one request through dmctl; the reply is kept for the scan.
query() {
    local name=$1 subject=$2 body=$3 rc=0 status
    R_FILE=$EV/reply-$name.txt
    n_replies=$((n_replies + 1))
    "$DMCTL" --timeout 10000 query "$subject" "$body" --json >"$R_FILE.out" 2>"$R_FILE.err" || rc=$?
    status=200
    if ((rc == 2)); then
        status=$(sed -n 's/^error [a-z_]* (\([0-9]*\)).*/\1/p' "$R_FILE.err" | head -1)
    elif ((rc != 0)); then
        status="dmctl-exit-$rc"
    fi
    { printf 'Status: %s\n' "$status"; cat "$R_FILE.out"; } >"$R_FILE"
    cat "$R_FILE.err" >>"$EV/dmctl-stderr.txt"
    rm -f -- "$R_FILE.out" "$R_FILE.err"
    parse_reply "$R_FILE"
}

# raw NAME SUBJECT FILE CONTENT-TYPE: a request dmctl cannot send (size, msgpack bytes).
raw() {
    local name=$1 subject=$2 file=$3 ctype=$4
    R_FILE=$EV/reply-$name.txt
    n_replies=$((n_replies + 1))
    "${NATSREQ[@]}" request "$DM_NATS_URL" "$subject" "$file" "$ctype" >"$R_FILE" 2>&1 ||
        printf 'Status: natsreq-failed\n' >"$R_FILE"
    parse_reply "$R_FILE"
}

# expect NAME STATUS CODE FIELD: the reply just received is that error (CODE "-": success).
expect() {
    local name=$1 status=$2 code=$3 field=$4
    if [[ $R_STATUS == "$status" && $R_CODE == "$code" && $R_FIELD == "$field" ]]; then
        if [[ $code == - ]]; then
            pass "$name -> $status"
        else
            pass "$name -> $status $code [$field]"
        fi
    else
        fail "$name" "want $status $code [$field], got $R_STATUS $R_CODE [$R_FIELD]:" \
            "$(tail -c 300 "$R_FILE" | tr '\n' ' ')"
    fi
}

reply_has() { grep -qF -- "$1" "$R_FILE"; }

# A secret on a command line is readable by every local user (ps): keep them for the scan.
keep_cmdlines() {
    local f pid
    for f in "$DM_STACK_DIR"/workers/*.pid; do
        [[ -r $f ]] || continue
        read -r pid <"$f" || continue
        tr '\0' ' ' <"/proc/$pid/cmdline" >>"$EV/cmdlines.txt" 2>/dev/null && echo >>"$EV/cmdlines.txt"
    done
    return 0
}

# publish SUBJECT PAYLOAD [MSG-ID]: JetStream publish through dmctl; prints the sequence.
publish() {
    local args=(--timeout 10000 publish-raw "$1" "$2")
    [[ -n ${3:-} ]] && args+=(--msg-id "$3")
    "$DMCTL" "${args[@]}" 2>>"$EV/dmctl-stderr.txt"
}

wait_idle() { "$DMCTL" lag --wait "${1:-60}" >/dev/null 2>&1; }

keep_cmdlines

# ------------------------------------------------------------- good writes ---

say "good writes"
T0=1578528000000 # 2020-01-09T00:00:00Z, a Thursday
H=3600000
candle() { # candle TS OPEN CLOSE
    printf '{"symbol":"EUR/USD","timeframe":"1h","timestamp":%s,"open":%s,"high":1.2,"low":1.0,"close":%s,"volume":10,"source":"sec-test"}' "$1" "$2" "$3"
}
tick() { # tick TS SOURCE
    printf '{"symbol":"EUR/USD","timestamp":%s,"bid":1.1101,"ask":1.1103,"spread":0.0002,"volume":1,"source":"%s"}' "$1" "$2"
}
EVIL_NAME=$'\'); DROP TABLE economic_events; -- "quoted" \\ backslash `tick` ЕЦБ – Zinsentscheid ✓'
EVIL_ID="sec-evt-1'; DELETE FROM ticks; --"
json_str() { perl -MJSON::PP -e 'print JSON::PP->new->allow_nonref->encode($ARGV[0])' "$1"; }
good_ok=1
for i in 0 1 2; do
    publish market.candle.EURUSD.1h "$(candle $((T0 + i * H)) 1.11 1.12)" "sec:c:$i" >/dev/null || good_ok=0
done
publish market.candles.EURUSD.1h "{\"candles\":[$(candle $((T0 + 3 * H)) 1.12 1.13),$(candle $((T0 + 4 * H)) 1.13 1.14)]}" sec:bulk >/dev/null || good_ok=0
publish market.tick.EURUSD "$(tick $((T0 + 1000)) sec-feed)" sec:t1 >/dev/null || good_ok=0
publish market.tick.EURUSD "$(tick $((T0 + 2000)) sec-feed)" sec:t2 >/dev/null || good_ok=0
publish market.event.US "$(printf '{"event_id":%s,"timestamp":%s,"country":"US","event_name":%s,"impact":"high","currency_impact":["USD","EUR"]}' \
    "$(json_str "$EVIL_ID")" $((T0 + 13 * H)) "$(json_str "$EVIL_NAME")")" sec:e1 >/dev/null || good_ok=0
# "NULL" is a valid source (letters); PostgreSQL array input reads an unquoted NULL as null.
SEQ_NULL_SOURCE=$(publish market.tick.EURUSD "$(tick $((T0 + 3000)) NULL)" sec:t3) || good_ok=0
check "good writes are accepted by JetStream" test "$good_ok" = 1

# ------------------------------------------------------------ hostile writes ---

say "hostile writes (market.*): dead-lettered with a code, never stored"
declare -A DLQ_WANT=() DLQ_WHAT=()
hostile() { # hostile DESCRIPTION CODE SUBJECT PAYLOAD
    local seq
    if seq=$(publish "$3" "$4"); then
        DLQ_WANT[$seq]=$2
        DLQ_WHAT[$seq]=$1
    else
        fail "publish $1"
    fi
}
hostile "tick with an SQL symbol" invalid_field market.tick.EURUSD \
    "{\"symbol\":\"EURUSD'; DROP TABLE ticks;--\",\"timestamp\":$((T0 + 5000)),\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}"
hostile "tick on an SQL subject token" invalid_field "market.tick.EURUSD';DROP_TABLE_ticks;--" "$(tick $((T0 + 6000)) sec-feed)"
hostile "tick with an SQL source" invalid_field market.tick.EURUSD "$(tick $((T0 + 7000)) "x'); DROP TABLE ticks;--")"
hostile "tick with a backtick symbol" invalid_field market.tick.EURUSD \
    "{\"symbol\":\"\`EUR\`/USD\",\"timestamp\":$((T0 + 8000)),\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}"
hostile "candle with an SQL timeframe" invalid_field "market.candle.EURUSD.1h';--" \
    "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h'; DROP TABLE candles;--\",\"timestamp\":$((T0 + 5 * H)),\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.1,\"source\":\"x\"}"
hostile "candle with a fullwidth symbol" invalid_field market.candle.EURUSD.1h \
    "{\"symbol\":\"ＥＵＲ/USD\",\"timeframe\":\"1h\",\"timestamp\":$((T0 + 6 * H)),\"open\":1.1,\"high\":1.2,\"low\":1.0,\"close\":1.1,\"source\":\"x\"}"
hostile "event with an SQL country" invalid_field market.event.US \
    "{\"event_id\":\"sec-evt-2\",\"timestamp\":$T0,\"country\":\"US'; DROP TABLE economic_events;--\",\"event_name\":\"x\",\"impact\":\"high\",\"currency_impact\":[\"USD\"]}"
hostile "event with an SQL currency" invalid_field market.event.US \
    "{\"event_id\":\"sec-evt-3\",\"timestamp\":$T0,\"country\":\"US\",\"event_name\":\"x\",\"impact\":\"high\",\"currency_impact\":[\"USD','EUR\"]}"
hostile "event with an SQL impact" invalid_field market.event.US \
    "{\"event_id\":\"sec-evt-4\",\"timestamp\":$T0,\"country\":\"US\",\"event_name\":\"x\",\"impact\":\"high' OR '1'='1\",\"currency_impact\":[\"USD\"]}"
hostile "tick with a wrong type" invalid_field market.tick.EURUSD \
    "{\"symbol\":\"EUR/USD\",\"timestamp\":\"$((T0 + 9000))\",\"bid\":1.1,\"ask\":1.2,\"spread\":0.1,\"source\":\"x\"}"
# A NUL ends a C string: a JSON \u0000 must be refused like msgpack's NUL, not cut short.
SEQ_NUL_SOURCE=$(publish market.tick.EURUSD "$(tick $((T0 + 9500)) 'cut\u0000; DROP TABLE ticks;--')") || true
perl -e 'my $c = sub { sprintf q({"symbol":"EUR/USD","timeframe":"1h","timestamp":%d,"open":1.1,"high":1.2,"low":1.0,"close":1.1,"source":"x"}), 1420070400000 + $_[0] * 3600000 };
         print q({"candles":[), join(",", map { $c->($_) } 0 .. 10000), q(]})' >"$WORK/bulk-10001.json"
hostile "bulk of 10,001 candles" too_large market.candles.EURUSD.1h "@$WORK/bulk-10001.json"
head -c $((8 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$WORK/over-8mib.json"
if publish market.tick.EURUSD "@$WORK/over-8mib.json" >/dev/null 2>&1; then
    fail "a publish over 8 MiB (max_payload) is refused"
else
    pass "a publish over 8 MiB (max_payload) is refused"
fi

check "every consumer settles the writes" wait_idle 90
"${NATSREQ[@]}" stream-dump "$DM_NATS_URL" DLQ >"$EV/dlq-1.txt" 2>/dev/null || true
dlq_codes() { # dlq_codes FILE: "stream-seq code" per dead letter
    perl -ne 'sub out { print "$s $c\n" if defined $s && defined $c; undef $s; undef $c }
              out() if /^--- /; $s = $1 if /^Dm-Stream-Seq: (\d+)/; $c = $1 if /^Dm-Code: ([\w-]+)/;
              END { out() }' "$1"
}
dlq_codes "$EV/dlq-1.txt" >"$EV/dlq-codes.txt"
for seq in $(printf '%s\n' "${!DLQ_WANT[@]}" | sort -n); do
    got=$(awk -v s="$seq" '$1 == s { print $2 }' "$EV/dlq-codes.txt" | sort -u | tr '\n' ' ')
    if [[ $got == "${DLQ_WANT[$seq]} " ]]; then
        pass "${DLQ_WHAT[$seq]} -> dead letter ${DLQ_WANT[$seq]}"
    else
        fail "${DLQ_WHAT[$seq]}" "want dead letter ${DLQ_WANT[$seq]}, got '${got:-none}'"
    fi
done
if [[ -n $SEQ_NUL_SOURCE ]] && awk -v s="$SEQ_NUL_SOURCE" '$1 == s && $2 == "invalid_json"' "$EV/dlq-codes.txt" | grep -q . &&
    [[ $(pg -c "SELECT count(*) FROM ticks WHERE source = 'cut'") == 0 ]]; then
    pass "a publish with \\u0000 inside a JSON string is refused, not cut short"
else
    fail "a publish with \\u0000 inside a JSON string is refused, not cut short" \
        "stored as source '$(pg -c "SELECT string_agg(source, ',') FROM ticks WHERE ts = $((T0 + 9500))")'"
fi

# ------------------------------------------------------------- the tables ---

say "tables after the hostile writes"
tables_exist() {
    [[ $(pg -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('ticks','candles','economic_events')") == 3 ]] &&
        [[ $(ch_sql "EXISTS TABLE dm.candles") == 1 ]] && [[ $(ch_sql "EXISTS TABLE dm.ticks") == 1 ]]
}
check "tables ticks, candles, economic_events (PostgreSQL) and dm.candles, dm.ticks (ClickHouse) exist" tables_exist
check "PostgreSQL holds the 5 good candles and nothing else" \
    test "$(pg -c "SELECT count(*) FROM candles")" = 5
check "PostgreSQL holds the 2 good ticks of feed sec-feed" \
    test "$(pg -c "SELECT count(*) FROM ticks WHERE source = 'sec-feed'")" = 2
check "ClickHouse holds the 5 good candles and nothing else" \
    test "$(ch_sql "SELECT count() FROM dm.candles FINAL")" = 5
check "Redis holds the newest tick and candles" \
    test "$(redis-cli -p "$DM_REDIS_PORT" EXISTS 'tick:latest:{EURUSD}' 'candle:latest:{EURUSD}:1h' 2>/dev/null)" = 2
stored_name=$(pg -v id="$EVIL_ID" <<<"SELECT event_name FROM economic_events WHERE event_id = :'id'")
if [[ $stored_name == "$EVIL_NAME" ]]; then
    pass "an event named like SQL is stored verbatim (a parameter, not SQL text)"
else
    fail "an event named like SQL is stored verbatim (a parameter, not SQL text)" "stored: $stored_name"
fi
if [[ $(pg -c "SELECT count(*) FROM ticks WHERE ts = $((T0 + 3000))") == 1 ]]; then
    pass "a tick whose source is the word NULL is stored"
else
    fail "a tick whose source is the word NULL is stored" \
        "dead-lettered: $(awk -v s="$SEQ_NULL_SOURCE" '$1 == s { print $2 }' "$EV/dlq-codes.txt" | sort -u | tr '\n' ' ')(text[] literal: an unquoted NULL element is SQL null)"
fi

# ---------------------------------------------------------------- requests ---

say "requests (dm.v1.*)"
query tick-good dm.v1.tick.latest '{"symbol":"EUR/USD"}'
expect "tick.latest EUR/USD" 200 - -
query candles-good dm.v1.candles.latest '{"symbol":"EUR/USD","timeframe":"1h","limit":3}'
expect "candles.latest EUR/USD 1h limit 3" 200 - -
query history-page1 dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2020-01-09","end_date":"2020-01-10","page_size":2}'
expect "candles.history page 1" 200 - -
cursor=$(perl -MJSON::PP -0ne 's/^Status: \S+\n//; print decode_json($_)->{next_cursor} // ""' "$R_FILE")
query history-page2 dm.v1.candles.history "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-01-09\",\"end_date\":\"2020-01-10\",\"page_size\":2,\"cursor\":\"$cursor\"}"
expect "candles.history page 2 from its cursor" 200 - -
query aggregates-good dm.v1.aggregates '{"symbol":"EUR/USD","timeframe":"1h","period":"1d"}'
expect "aggregates EUR/USD 1h 1d" 200 - -
query events-good dm.v1.events '{"start_date":"2020-01-01","end_date":"2020-02-01","country":"US"}'
expect "events 2020-01 US" 200 - -
if EVIL=$EVIL_NAME perl -MJSON::PP -0ne 's/^Status: \S+\n//;
        exit !(grep { $_->{event_name} eq $ENV{EVIL} } @{ JSON::PP->new->decode($_)->{data} })' "$R_FILE"; then
    pass "the SQL-named event comes back verbatim"
else
    fail "the SQL-named event comes back verbatim"
fi

b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
q() { query "$1" "$2" "$3"; expect "$4" "$5" "$6" "$7"; }
q sym-drop dm.v1.tick.latest "{\"symbol\":\"EURUSD'; DROP TABLE ticks;--\"}" "symbol EURUSD'; DROP TABLE ticks;--" 400 invalid_field symbol
q sym-or dm.v1.tick.latest "{\"symbol\":\"EUR/USD' OR '1'='1\"}" "symbol EUR/USD' OR '1'='1" 400 invalid_field symbol
# shellcheck disable=SC2016 # the backticks are the payload, not a command
q sym-backtick dm.v1.candles.latest '{"symbol":"`EURUSD`","timeframe":"1h"}' "symbol \`EURUSD\`" 400 invalid_field symbol
q sym-backslash dm.v1.tick.latest '{"symbol":"EUR/USD\\"}' "symbol ending in a backslash" 400 invalid_field symbol
q sym-cyrillic dm.v1.tick.latest '{"symbol":"ЕURUSD"}' "symbol with a Cyrillic E" 400 invalid_field symbol
q sym-comment dm.v1.candles.history '{"symbol":"EUR/USD--","timeframe":"1h","start_date":"2020-01-01","end_date":"2020-02-01"}' "history symbol EUR/USD--" 400 invalid_field symbol
q sym-agg dm.v1.aggregates '{"symbol":"EUR/USD;--","timeframe":"1h","period":"1d"}' "aggregates symbol EUR/USD;--" 400 invalid_field symbol
q tf-drop dm.v1.candles.latest "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h'; DROP TABLE candles;--\"}" "timeframe 1h'; DROP TABLE candles;--" 400 invalid_field timeframe
q tf-quote dm.v1.candles.history "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h'\",\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\"}" "history timeframe 1h'" 400 invalid_field timeframe
q tf-backtick dm.v1.aggregates '{"symbol":"EUR/USD","timeframe":"1h`","period":"1d"}' "aggregates timeframe 1h\`" 400 invalid_field timeframe
q period-drop dm.v1.aggregates "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"period\":\"1d';--\"}" "aggregates period 1d';--" 400 invalid_field period
q country-drop dm.v1.events "{\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\",\"country\":\"US'; DROP TABLE economic_events;--\"}" "events country US'; DROP..." 400 invalid_field country
q country-quote dm.v1.events "{\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\",\"country\":\"U'\"}" "events country U'" 400 invalid_field country
q currency-quote dm.v1.events "{\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\",\"currency\":\"US'\"}" "events currency US'" 400 invalid_field currency
q impact-or dm.v1.events "{\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\",\"impact\":\"high' OR '1'='1\"}" "events impact high' OR '1'='1" 400 invalid_field impact
q cursor-forged dm.v1.candles.history "{\"symbol\":\"EUR/USD\",\"timeframe\":\"1h\",\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\",\"cursor\":\"$(b64url "c1|EUR/USD'; DROP TABLE candles;--|1h|0")\"}" "history cursor carrying SQL" 400 invalid_field cursor
# An events cursor carries an event_id, which is free text: it must travel as a parameter.
# Positioned after the end of time, the page is empty unless the text became SQL.
query cursor-event dm.v1.events "{\"start_date\":\"2020-01-01\",\"end_date\":\"2020-02-01\",\"cursor\":\"$(b64url "e1|9999999999999|x' OR '1'='1")\"}"
if [[ $R_STATUS == 200 ]] && reply_has '"data":[]'; then
    pass "events cursor with x' OR '1'='1 as its event id -> 200, an empty page"
else
    fail "events cursor with x' OR '1'='1 as its event id" "got $R_STATUS $R_CODE: $(tail -c 200 "$R_FILE")"
fi
q page-over dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2020-01-01","end_date":"2020-02-01","page_size":10001}' "history page_size 10001" 400 invalid_field page_size
q page-huge dm.v1.events '{"start_date":"2020-01-01","end_date":"2020-02-01","page_size":1e15}' "events page_size 1e15" 400 invalid_field page_size
q limit-over dm.v1.candles.latest '{"symbol":"EUR/USD","timeframe":"1h","limit":1001}' "candles.latest limit 1001" 400 invalid_field limit
q type-symbol dm.v1.tick.latest '{"symbol":5}' "symbol as a number" 400 invalid_field symbol
q type-symbol-array dm.v1.tick.latest '{"symbol":["EUR/USD"]}' "symbol as an array" 400 invalid_field symbol
q type-limit dm.v1.candles.latest '{"symbol":"EUR/USD","timeframe":"1h","limit":"5"}' "limit as a string" 400 invalid_field limit
q type-page dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2020-01-01","end_date":"2020-02-01","page_size":true}' "page_size as a boolean" 400 invalid_field page_size
q type-date dm.v1.events '{"start_date":{},"end_date":"2020-02-01"}' "start_date as an object" 400 invalid_field start_date
q bad-json dm.v1.tick.latest '{"symbol":' "truncated JSON" 400 invalid_json null
q subject-sql "dm.v1.ticks';DROP" '{}' "unknown subject dm.v1.ticks';DROP" 404 not_found subject
# cJSON ends a string at \u0000: refused like a NUL in msgpack, never read as "EURUSD".
q sym-nul dm.v1.tick.latest '{"symbol":"EURUSD\u0000'"'"' OR 1=1"}' "symbol with \\u0000 inside (refused, not cut short)" 400 invalid_json null

perl -e 'print "{\"symbol\":\"EUR/USD\"" . (" " x (1 << 20)) . "}"' >"$WORK/over-1mib.json"
raw oversized dm.v1.tick.latest "$WORK/over-1mib.json" application/json
expect "request of 1 MiB + 20 bytes" 413 too_large null
perl -e 'print "{\"symbol\":" . ("[" x 200000) . ("]" x 200000) . "}"' >"$WORK/deep.json"
raw deep dm.v1.tick.latest "$WORK/deep.json" application/json
expect "request nested 200,000 deep" 400 invalid_json null
printf '\x82\xa1a' >"$WORK/junk.msgpack"
raw bad-msgpack dm.v1.tick.latest "$WORK/junk.msgpack" application/msgpack
expect "truncated msgpack" 400 invalid_msgpack null
printf '\x81\xa6symbol\xa8EUR\x00/USD' >"$WORK/nul.msgpack"
raw nul-msgpack dm.v1.tick.latest "$WORK/nul.msgpack" application/msgpack
expect "msgpack symbol with a NUL byte" 400 invalid_msgpack null

check "the tables survived the requests" tables_exist
check "PostgreSQL still holds the 5 good candles" test "$(pg -c "SELECT count(*) FROM candles")" = 5

# ------------------------------------------------------- backends failing ---

say "backends failing"
printf '\x80' >"$WORK/empty.msgpack"
health() { # health NAME: JSON through dmctl and msgpack through natsreq, both kept
    query "health-$1" dm.v1.health '{}'
    local json=$R_FILE
    raw "health-$1-msgpack" dm.v1.health "$WORK/empty.msgpack" application/msgpack
    R_FILE=$json
    http_documents "$1"
}
# The same figures over each running worker's HTTP port: the status page's document
# (health and metrics together) and Prometheus text.
http_documents() { # http_documents NAME
    local f name port
    for f in "$DM_STACK_DIR"/workers/w*.http; do
        name=$(basename "$f" .http)
        port=$(head -n 1 -- "$f")
        [[ $port =~ ^[0-9]+$ ]] || continue
        curl -s --max-time 10 "http://127.0.0.1:$port/status.json" >"$EV/http-status-$1-$name.txt" || true
        curl -s --max-time 10 "http://127.0.0.1:$port/metrics" >"$EV/http-metrics-$1-$name.txt" || true
    done
}
metrics() {
    query "metrics-$1" dm.v1.metrics '{}'
    raw "metrics-$1-msgpack" dm.v1.metrics "$WORK/empty.msgpack" application/msgpack
}
health before
metrics before

"$STACK" stop-service postgres >>"$EV/stack-outage.log" 2>&1
for i in 1 2 3 4 5 6; do query "events-pg-down-$i" dm.v1.events '{"start_date":"2020-01-01","end_date":"2020-02-01"}'; done
expect "events while PostgreSQL is down" 503 unavailable null
query history-pg-down dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2020-01-09","end_date":"2020-01-10"}'
expect "history while PostgreSQL is down (ClickHouse answers)" 200 - -
publish market.tick.EURUSD "$(tick $((T0 + 4000)) sec-outage)" sec:t4 >/dev/null || true
health pg-down
check "health reports timescale down" reply_has '"timescale":{"status":"down"'
metrics pg-down
sleep 2
"$STACK" start-service postgres >>"$EV/stack-outage.log" 2>&1
back=0
for i in $(seq 1 60); do
    query "events-pg-back-$i" dm.v1.events '{"start_date":"2020-01-01","end_date":"2020-02-01"}'
    [[ $R_STATUS == 200 ]] && { back=1; break; }
    sleep 0.5
done
check "events answered again after PostgreSQL restarts" test "$back" = 1
wait_idle 60 || true
check "the tick published during the outage is stored after it" \
    test "$(pg -c "SELECT count(*) FROM ticks WHERE source = 'sec-outage'")" = 1

# The password changes under a running worker: reconnects fail authentication.
ROTATED=rotated$(rand_hex)
pg_admin -v pw="$ROTATED" <<<"ALTER ROLE dm PASSWORD :'pw'"
pg_admin -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'dm'" >/dev/null
auth_seen=0
for i in $(seq 1 8); do
    query "events-pg-auth-$i" dm.v1.events '{"start_date":"2020-01-01","end_date":"2020-02-01"}'
    if reply_has 'password authentication failed'; then auth_seen=1; fi
done
health pg-auth
if reply_has 'password authentication failed'; then auth_seen=1; fi
check "replies name the PostgreSQL authentication failure" test "$auth_seen" = 1
pg_admin -v pw="$SEC_PG" <<<"ALTER ROLE dm PASSWORD :'pw'"

REDIS_ROTATED=rotated$(rand_hex)
redis-cli -p "$DM_REDIS_PORT" CONFIG SET requirepass "$REDIS_ROTATED" >/dev/null
REDISCLI_AUTH=$REDIS_ROTATED redis-cli -p "$DM_REDIS_PORT" CLIENT KILL TYPE normal >/dev/null
# GBP/USD: not in L1, so the requests reach Redis
for i in 1 2 3 4 5 6; do query "candles-redis-auth-$i" dm.v1.candles.latest '{"symbol":"GBP/USD","timeframe":"1h","limit":2}'; done
publish market.tick.EURUSD "$(tick $((T0 + 4500)) sec-redis-auth)" sec:t5 >/dev/null || true
sleep 1
health redis-auth
check "health reports dragonfly down after its password changed" \
    reply_has '"dragonfly":{"status":"down"'
metrics redis-auth
REDISCLI_AUTH=$REDIS_ROTATED redis-cli -p "$DM_REDIS_PORT" CONFIG SET requirepass "$SEC_REDIS" >/dev/null
check "writes held back while Redis refused the worker are settled after" wait_idle 60

# A worker whose ClickHouse password the server refuses: start, reads, health.
"$STACK" stop-workers >>"$EV/stack-workers.log" 2>&1
if start_workers "$WORK/cfg-ch-refused" start-worker w2; then
    query history-ch-refused dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2020-01-09","end_date":"2020-01-10"}'
    expect "history with ClickHouse refusing the password (PostgreSQL answers)" 200 - -
    query aggregates-ch-refused dm.v1.aggregates '{"symbol":"EUR/USD","timeframe":"1h","period":"1w"}'
    publish market.candle.EURUSD.1h "$(candle $((T0 + 7 * H)) 1.14 1.15)" sec:c7 >/dev/null || true
    sleep 1
    health ch-refused
    check "health reports clickhouse down when it refuses the password" \
        reply_has '"clickhouse":{"status":"down"'
    metrics ch-refused
else
    fail "a worker starts while ClickHouse refuses its password"
fi
keep_cmdlines
"$STACK" stop-workers >>"$EV/stack-workers.log" 2>&1

# ------------------------------------------------------------ the secrets ---

say "secrets"
"${NATSREQ[@]}" stream-dump "$DM_NATS_URL" DLQ >"$EV/dlq-final.txt" 2>/dev/null || true
cp "$DM_STACK_DIR"/workers/*.log "$EV/"

# Every form a secret could leak in: the full value, its random tail, half the tail, and
# the connection strings that would carry it.
NEEDLES=()
for s in "${SECRETS[@]}"; do
    tail=${s: -16}
    NEEDLES+=("$s" "$tail" "${tail:0:8}")
done
NEEDLES+=("$DM_NATS_WORKER_URL" "://worker:" "://operator:" "password=" "dbname=" "sslmode=" "postgresql://"
    "postgres://" "redis://" "X-ClickHouse-Key")

# leaks FILE...: prints "file: needle" for every needle found.
leaks() {
    local n f
    for f in "$@"; do
        [[ -f $f ]] || continue
        for n in "${NEEDLES[@]}"; do
            grep -aqiF -- "$n" "$f" && printf '%s: %s\n' "$(basename "$f")" "$n"
        done
    done
    return 0
}
printf 'a line carrying %s inside\n' "${SEC_PG: -16}" >"$WORK/planted.txt"
check "the scan finds a planted secret" test -n "$(leaks "$WORK/planted.txt")"

scan() { # scan NAME FILE...
    local name=$1 found
    shift
    found=$(leaks "$@")
    if [[ -z $found ]]; then pass "$name"; else fail "$name" "$(tr '\n' ';' <<<"$found")"; fi
}
shopt -s nullglob
logs=("$EV"/w*.log)
replies=("$EV"/reply-*.txt)
health_files=("$EV"/reply-health-*.txt)
metrics_files=("$EV"/reply-metrics-*.txt)
http_files=("$EV"/http-*.txt)
scan "no secret in $(cat "${logs[@]}" | wc -l) worker log lines (${#logs[@]} workers)" "${logs[@]}"
scan "no secret in $n_replies replies" "${replies[@]}" "$EV/dmctl-stderr.txt"
scan "no secret in ${#health_files[@]} dm.v1.health replies (JSON and msgpack, backends up and down)" "${health_files[@]}"
scan "no secret in ${#metrics_files[@]} dm.v1.metrics replies (JSON and msgpack)" "${metrics_files[@]}"
check "the workers' status.json was read with a backend down" \
    grep -lqE '"status":"down"' "$EV"/http-status-*.txt
scan "no secret in ${#http_files[@]} status.json and /metrics documents over HTTP" "${http_files[@]}"
scan "no secret in the dead letters ($(grep -c '^--- DLQ' "$EV/dlq-final.txt" || true) messages)" "$EV/dlq-final.txt"
scan "no secret on a worker's command line" "$EV/cmdlines.txt"
shopt -u nullglob

sanitized=$(grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "${logs[@]}" 2>/dev/null || true)
if [[ -z $sanitized ]]; then
    pass "no sanitizer report in the worker logs"
else
    fail "no sanitizer report in the worker logs" "$(xargs -n1 basename <<<"$sanitized" | tr '\n' ' ')"
fi

echo
echo "security: $passed passed, $failed failed"
((failed == 0))
