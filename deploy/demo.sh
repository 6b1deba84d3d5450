#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts a local stack in .stack/ (NATS with
# JetStream, PostgreSQL 15, Redis) and two dm-worker processes, replays real market data
# through them, asks for the answers and prints them. Everything is left running.
# Running it again is safe: every write is an idempotent upsert.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
export DM_BUILD_DIR=${DM_BUILD_DIR:-$ROOT/build}
# Worker wK serves its status page and /metrics on 127.0.0.1:19460+K (stack.sh's default
# DM_HTTP_PORT), and keeps that port when restarted with 'stack.sh start-worker wK'.
DMCTL=$DM_BUILD_DIR/cli/dmctl

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[[ -t 1 ]] || step() { printf '\n== %s\n' "$*"; }

step "1/6 dependencies (apt, only what is missing)"
deploy/install-deps.sh

step "2/6 build (Release) in $DM_BUILD_DIR"
cmake -S . -B "$DM_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DDM_TESTS=OFF -DDM_BENCH=OFF >/dev/null
if ! cmake --build "$DM_BUILD_DIR" -j"$(nproc)" --target dm-worker dmctl >"$DM_BUILD_DIR/build.log" 2>&1; then
    cat "$DM_BUILD_DIR/build.log"
    exit 1
fi
echo "built $DM_BUILD_DIR/dm-worker and $DMCTL"

step "3/6 local stack in ${DM_STACK_DIR:-.stack}"
deploy/stack.sh start
eval "$(deploy/stack.sh env)"

step "4/6 two workers"
deploy/stack.sh workers 2

step "5/6 replay real data through JetStream, as the collector role"
# NATS asks every client for credentials: collectors may only publish market data,
# services only ask dm.v1, workers have their own user, the operator may do anything.
# A role's URL goes through the environment, never a command line (ps shows those).
collector() { DM_NATS_URL=$DM_NATS_COLLECTOR_URL "$DMCTL" "$@"; }
service() { DM_NATS_URL=$DM_NATS_SERVICE_URL "$DMCTL" "$@"; }
echo "ten years of EURUSD hourly candles (data/EURUSD_H1_2010-10_2021-04.csv), bulk messages of 10,000:"
collector publish-candles --symbol EUR/USD --timeframe 1h --file data/EURUSD_H1_2010-10_2021-04.csv
echo "five years of GBPUSD and USDJPY hourly candles (data/*_H1_2021-01_2026-04.csv), for correlations:"
collector publish-candles --symbol GBP/USD --timeframe 1h --file data/GBPUSD_H1_2021-01_2026-04.csv
collector publish-candles --symbol USD/JPY --timeframe 1h --file data/USDJPY_H1_2021-01_2026-04.csv
echo "ticks DERIVED from the one-minute candles of 2020-01-09..20 (9 per minute):"
collector publish-ticks --symbol EUR/USD --file data/EURUSD_M1_2020-01-09_2020-01-20.csv
echo "the 2026 high-impact calendar (data/events_calendar_sample.csv):"
collector publish-events --file data/events_calendar_sample.csv
echo "waiting until every consumer has committed and acked (as the operator):"
"$DMCTL" lag --wait 180

step "6/6 ask the workers as the service role (dm.v1.* request/reply; served_by says which source answered)"
q() {
    printf '\n$ DM_NATS_URL=$DM_NATS_SERVICE_URL dmctl query %s %s\n' "$1" "$2"
    service query "$1" "$2" --table
}
q dm.v1.tick.latest '{"symbol":"EUR/USD"}'
q dm.v1.candles.latest '{"symbol":"EUR/USD","timeframe":"1h","limit":5}'
q dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2020-03-09","end_date":"2020-03-10"}'
printf '\n$ dmctl query dm.v1.candles.history <ten years, every page> --all --json > .stack/eurusd-1h.ndjson   (msgpack on the wire)\n'
service query dm.v1.candles.history '{"symbol":"EUR/USD","timeframe":"1h","start_date":"2010-01-01","end_date":"2022-01-01","page_size":10000}' --all --msgpack --json >"${DM_STACK_DIR:-.stack}/eurusd-1h.ndjson"
echo "$(wc -l <"${DM_STACK_DIR:-.stack}/eurusd-1h.ndjson") rows, one JSON object per line; the first and the last:"
head -1 "${DM_STACK_DIR:-.stack}/eurusd-1h.ndjson"
tail -1 "${DM_STACK_DIR:-.stack}/eurusd-1h.ndjson"
q dm.v1.events '{"start_date":"2026-04-01","end_date":"2026-05-02","country":"US","impact":"high"}'
printf '\n$ DM_NATS_URL=$DM_NATS_SERVICE_URL dmctl patterns --symbol EUR/USD --at "2020-03-09 10:00" --window 32 --limit 5\n'
service patterns --symbol EUR/USD --at "2020-03-09 10:00" --window 32 --limit 5
printf '\n$ DM_NATS_URL=$DM_NATS_SERVICE_URL dmctl correlations --symbol GBP/USD --threshold 0.3 --end 2025-06-30\n'
service correlations --symbol GBP/USD --threshold 0.3 --end 2025-06-30
printf '\n$ DM_NATS_URL=$DM_NATS_SERVICE_URL dmctl graph --symbol GBP/USD --threshold 0.3 --end 2025-06-30\n'
service graph --symbol GBP/USD --threshold 0.3 --end 2025-06-30
q dm.v1.health '{}'

# The URL stack.sh gives worker w1, as its status prints it (empty with DM_HTTP_PORT=off).
W1=$(deploy/stack.sh status | sed -nE 's|^ +w1 .*(http://127\.0\.0\.1:[0-9]+/).*|\1|p')
if [[ -n $W1 ]]; then
    HTTP_HINTS="  $W1   # worker w1's status page in a browser (each worker's: deploy/stack.sh status)
  curl -s ${W1}metrics | grep dm_requests_total   # Prometheus, worker w1"
else
    HTTP_HINTS="  (the workers serve no HTTP: DM_HTTP_PORT=off)"
fi

cat <<TXT

The stack and both workers are still running:
  eval "\$(deploy/stack.sh env)"   # addresses and this stack's credentials (kept in .stack/secrets.env, 0600):
                                   # DM_NATS_URL (operator), DM_NATS_COLLECTOR_URL, DM_NATS_SERVICE_URL
  DM_NATS_URL=\$DM_NATS_SERVICE_URL $DMCTL query dm.v1.candles.latest '{"symbol":"EUR/USD","timeframe":"1h","limit":3}'
  $DMCTL query dm.v1.metrics                      # as the operator (DM_NATS_URL, dmctl's default)
  $DMCTL dlq list                                 # dead letters (the demo publishes none)
$HTTP_HINTS
  deploy/stack.sh status                          # what runs where, each worker's page; logs in .stack/
  PGPASSWORD=\$DM_PG_PASSWORD psql -h 127.0.0.1 -p \$DM_PG_PORT -U dm dm
  REDISCLI_AUTH=\$DM_REDIS_PASSWORD redis-cli -p \$DM_REDIS_PORT zrange 'candle:latest:{EURUSD}:1h' -3 -1
  curl -s -H "X-ClickHouse-User: \$DM_CH_USER" -H "X-ClickHouse-Key: \$DM_CH_PASSWORD" \$DM_CH_URL --data 'SELECT count() FROM dm.candles'
  DM_NATS_TLS=1 deploy/stack.sh start             # (on a new stack dir) NATS over TLS, with DM_NATS_CA exported
Stop everything with:
  deploy/stack.sh stop
TXT
