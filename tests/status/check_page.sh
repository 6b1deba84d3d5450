#!/usr/bin/env bash
# The status page, as a person sees it: against a running stack (deploy/stack.sh, its
# environment as the stack was started with: DM_STACK_DIR and the ports), sends a few
# requests as the service role, then loads the page of every worker from the URL that
# 'deploy/stack.sh status' prints in headless Chromium (Debian's chromium), lets its script
# poll, and checks what the rendered page shows: the databases up with their breakers
# closed, the write consumers, an operation with the requests counted and charted, the
# cache levels and the strategy version. Run by tests/run.sh after the server tests.
#
#   tests/status/check_page.sh
#   DM_STATUS_SCREENSHOT=docs/status-page.png tests/status/check_page.sh   # also a picture of w1's page
#
# Exit status: 0 when every check passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
STACK=$ROOT/deploy/stack.sh
DMCTL=${DM_DMCTL:-${DM_BUILD_DIR:-$ROOT/build}/cli/dmctl}
REQUESTS=${DM_STATUS_REQUESTS:-40}
WORK=$(mktemp -d /tmp/dm-status-page.XXXXXX)
trap 'rm -rf -- "$WORK"' EXIT

# shellcheck source=../lib/tally.sh
source "$ROOT/tests/lib/tally.sh"

command -v chromium >/dev/null || { echo "status page: chromium not found (deploy/install-deps.sh --tests)" >&2; exit 1; }
eval "$("$STACK" env)"

# "wK URL" for every running worker, from the stack's own status lines.
"$STACK" status | sed -nE 's|^ +(w[0-9]+) .*(http://127\.0\.0\.1:[0-9]+/).*|\1 \2|p' >"$WORK/urls"
check "deploy/stack.sh status prints a status page URL per running worker" test -s "$WORK/urls"

# Requests as a service would send them; the queue group spreads them over the workers, so
# with 40 of them each worker answers some (all to one of two: 1 in 2^39).
for ((i = 0; i < REQUESTS; i++)); do
    DM_NATS_URL=$DM_NATS_SERVICE_URL "$DMCTL" query dm.v1.candles.latest \
        '{"symbol":"EUR/USD","timeframe":"1h","limit":5}' >/dev/null 2>&1 || true
done
# The page's charts come from samples taken every 2 s: let one include the requests.
sleep 2.5
strategy_version=$(sed -nE 's/^ *"version": *"?([^",]+)"?,?$/\1/p' "${DM_STRATEGY:-$ROOT/strategy/strategy.json}" | head -1)

# The first element of the rendered page whose opening tag matches PATTERN (a regex), as
# markup; element_text: its text, tags stripped and blanks squeezed.
element_html() { # element_html FILE TAG PATTERN
    TAG=$2 PAT=$3 perl -0777 -ne 'my ($t, $p) = @ENV{qw(TAG PAT)}; print $1 if /(<$t\b[^>]*(?:$p)[^>]*>.*?<\/$t>)/s' "$1"
}
element_text() {
    element_html "$@" | perl -0777 -pe 's/<[^>]+>/ /g; s/&amp;/&/g; s/\s+/ /g; s/^ | $//g'
}
# Waits until the worker's own status.json has every database up and its breaker closed
# (a server test may just have stopped and started one), so the page can be held to it.
databases_settled() {
    local url=$1 i body
    for ((i = 0; i < 60; i++)); do
        body=$(curl -sf --max-time 5 "${url}status.json" || true)
        if [[ $(grep -oE '"(timescale|clickhouse|dragonfly)":\{"status":"up","latency_ms":[0-9.e+-]+,"breaker":"closed"' <<<"$body" | wc -l) -eq 3 ]]; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
# Loads URL in headless Chromium until its script has rendered a poll (data-ready), at most
# three times: virtual time lets the script run 12 s of polls without waiting for them.
render() { # render URL OUT
    local i
    for ((i = 0; i < 3; i++)); do
        timeout 90 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/profile" \
            --virtual-time-budget=12000 --dump-dom "$1" >"$2" 2>>"$WORK/chromium.log" || true
        grep -q '<body[^>]*data-ready="1"' "$2" && return 0
    done
    return 1
}

while read -r name url; do
    printf '\n== status page of %s: %s\n' "$name" "$url"
    headers=$(curl -s -o "$WORK/$name.html" -D - --max-time 5 "$url" || true)
    check "$name: / answers 200 with HTML" grep -qiE '^content-type: text/html' <<<"$headers"
    check "$name: / is sent with a Content-Security-Policy that allows no other origin" \
        grep -qiE "^content-security-policy: default-src 'none';.*connect-src 'self'" <<<"$headers"
    check "$name: the page loads nothing from elsewhere" \
        bash -c "! grep -qiE '<(script|link|img|iframe)[^>]+(src|href)=' '$WORK/$name.html'"
    databases_settled "$url" || fail "$name: status.json shows the three databases up, breakers closed"
    dom=$WORK/$name.dom.html
    if ! render "$url" "$dom"; then
        fail "$name: the page renders a poll of status.json in Chromium" "$(tail -3 "$WORK/chromium.log")"
        continue
    fi
    pass "$name: the page renders a poll of status.json in Chromium"
    check "$name: the header names the worker" test "$(element_text "$dom" span 'id="worker"')" = "$name"
    check "$name: the header shows the strategy version ($strategy_version)" \
        test "$(element_text "$dom" b 'id="strategy-version"')" = "$strategy_version"
    check "$name: the strategy table shows the version" \
        grep -qx "version $strategy_version" <<<"$(element_text "$dom" tr 'id="strategy-row"')"
    for db in timescale clickhouse dragonfly; do
        row=$(element_text "$dom" tr "data-backend=\"$db\"")
        check "$name: backend $db is shown up, breaker closed ('$row')" grep -qE "^$db up closed " <<<"$row"
    done
    row=$(element_text "$dom" tr 'data-consumer="timescale-candle"')
    check "$name: consumer timescale-candle is shown with its lag ('$row')" \
        grep -qE '^timescale-candle [0-9,]+ [0-9,]+ [0-9,]+ [0-9,]+ [0-9,]+ [0-9,]+$' <<<"$row"
    row=$(element_text "$dom" tr 'data-cache="l1"')
    check "$name: the L1 hit rate is shown ('$row')" grep -qE '^L1 .* [0-9.]+ %$' <<<"$row"
    # The row: "get_candles REQUESTS ERRORS CLIENT-ERRORS NOW/S P50 P99 ..." and its count
    # also as an attribute, to hold the text to.
    row=$(element_text "$dom" tr 'data-op="get_candles"')
    count=$(grep -oE 'data-op="get_candles" data-count="[0-9]+"' "$dom" | grep -oE '[0-9]+' || true)
    shown=$(cut -d' ' -f2 <<<"$row" | tr -d ,)
    check "$name: get_candles is shown with its requests counted ($shown: '$row')" \
        test "${count:-0}" -gt 0 -a "$shown" = "${count:-none}"
    charts=$(element_html "$dom" tr 'data-op="get_candles"' | { grep -oE '<polyline class="(rate|p50|p99)"' || true; } | sort -u | wc -l)
    check "$name: get_candles has a rate chart and a p50/p99 latency chart" test "$charts" -eq 3
done <"$WORK/urls"

if [[ -n ${DM_STATUS_SCREENSHOT:-} ]]; then
    read -r name url <"$WORK/urls"
    timeout 90 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/profile" \
        --hide-scrollbars --window-size=1280,1200 --virtual-time-budget=6000 \
        --screenshot="$DM_STATUS_SCREENSHOT" "$url" >>"$WORK/chromium.log" 2>&1 || true
    check "a screenshot of $name's page is in $DM_STATUS_SCREENSHOT" test -s "$DM_STATUS_SCREENSHOT"
fi

echo "status page: $passed passed, $failed failed"
((failed == 0))
