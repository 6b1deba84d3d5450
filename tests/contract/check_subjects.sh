#!/usr/bin/env bash
# Contract test: subjects/README.md and subjects/examples/ against the code.
#
#   tests/contract/check_subjects.sh [SOURCE_ROOT]
#
# SOURCE_ROOT (default: this repository) must hold worker/ and subjects/. Checks:
#   - the request subjects the code serves (#define DM_SUBJ_... "dm.v1..." in worker/model/names.h)
#     and the subjects of the README table marked request-reply are the same set; the
#     table's "not served yet" subjects are not served; all start with DM_SUBJ_PREFIX;
#   - the write families (KIND_FILTERS in worker/pipeline/ingest.c, market.tick.> ...) and
#     the table's JetStream publish rows are the same set; the DLQ row matches
#     DM_SUBJ_DLQ_ALL (worker/model/names.h) and every dm.dlq.<kind> is documented;
#   - the error codes and statuses of worker/util/err.c and the README error table agree;
#     every code named in the table's errors column exists;
#   - the DLQ headers set in worker/bus/consumer.c (names from worker/model/names.h) and the reply headers set in
#     worker/bus/responder.c are documented (and the README lists no other DLQ header);
#   - the README limits table holds the values of the named #defines;
#   - every file in subjects/examples is valid JSON, is named after a subject of the
#     table, appears in the README (same JSON) and every subject has its examples.
# Prints one line per check and ends with "contract: N passed, M failed"; exits 1 on
# any failure. Needs bash 4, grep, sed, awk and python3 or jq.
set -u

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
README=$ROOT/subjects/README.md
EXAMPLES=$ROOT/subjects/examples
SERVE_H=$ROOT/worker/pipeline/serve.h
INGEST_C=$ROOT/worker/pipeline/ingest.c
ERR_C=$ROOT/worker/util/err.c
BUS_H=$ROOT/worker/bus/bus.h
CONSUMER_C=$ROOT/worker/bus/consumer.c
NAMES_H=$ROOT/worker/model/names.h
RESPONDER_C=$ROOT/worker/bus/responder.c

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   - %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }
finish() {
    printf 'contract: %d passed, %d failed\n' "$passed" "$failed"
    [ "$failed" -eq 0 ]
    exit $?
}

for f in "$README" "$SERVE_H" "$INGEST_C" "$ERR_C" "$BUS_H" "$NAMES_H" "$CONSUMER_C" "$RESPONDER_C"; do
    if [ -f "$f" ]; then ok "found ${f#"$ROOT"/}"; else bad "missing ${f#"$ROOT"/}"; fi
done
[ "$failed" -eq 0 ] || finish

# ---- JSON tooling: python3 (strict: NaN/Infinity refused, as the worker does) or jq ----
if command -v python3 >/dev/null 2>&1; then
    JSON_TOOL=python3
    json_canon() { # FILE or - : one JSON document -> canonical one-line form
        python3 -c '
import json, sys
def reject(c): raise ValueError("not JSON: " + c)
src = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1], encoding="utf-8")
print(json.dumps(json.load(src, parse_constant=reject), sort_keys=True, separators=(",", ":")))
' "$1" 2>/dev/null
    }
elif command -v jq >/dev/null 2>&1; then
    JSON_TOOL=jq
    json_canon() { # read once: stdin cannot be read twice
        local doc
        if [ "$1" = - ]; then doc=$(cat); else doc=$(cat "$1") || return 1; fi
        jq -e -s 'length == 1' <<<"$doc" >/dev/null 2>&1 || return 1
        jq -S -c . <<<"$doc" 2>/dev/null
    }
else
    JSON_TOOL=
fi
if [ -n "$JSON_TOOL" ]; then ok "JSON tool: $JSON_TOOL"; else bad "neither python3 nor jq found: cannot check JSON"; fi

# ---- README sections ------------------------------------------------------------------
# Rows of the markdown table between <!-- NAME:begin --> and <!-- NAME:end -->, without
# the header and separator lines.
section_rows() {
    awk -v b="<!-- $1:begin -->" -v e="<!-- $1:end -->" '
        $0 == b { on = 1; n = 0; next }
        $0 == e { on = 0 }
        on && /^\|/ { if (++n > 2) print }' "$README"
}
# The n-th cell (1-based) of a table row, trimmed.
cell() {
    awk -F'|' -v n="$2" '{ s = $(n + 1); gsub(/^[ \t]+|[ \t]+$/, "", s); print s }' <<<"$1"
}
first_code_span() { sed -n 's/^[^`]*`\([^`]*\)`.*/\1/p' <<<"$1"; }
contains() { # WORD LIST...
    local w=$1 x
    shift
    for x in "$@"; do [ "$x" = "$w" ] && return 0; done
    return 1
}
# A subject template of the table as a regex: market.candle.{SYM}.{TF} -> ^market\.candle\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$
template_regex() {
    local t
    t=$(sed 's/\./\\./g; s/{[^}]*}/[A-Za-z0-9_-]+/g' <<<"$1")
    printf '^%s$' "$t"
}
# The wildcard a template stands for: market.candle.{SYM}.{TF} -> market.candle.>
template_wildcard() {
    local pre=${1%%\{*}
    if [ "$pre" = "$1" ]; then printf '%s' "$1"; else printf '%s>' "$pre"; fi
}

declare -a T_SUBJECTS=() T_KINDS=() T_ERRORS=()
while IFS= read -r row; do
    T_SUBJECTS+=("$(first_code_span "$(cell "$row" 1)")")
    T_KINDS+=("$(cell "$row" 2)")
    T_ERRORS+=("$(cell "$row" 5)")
done < <(section_rows subjects)
if [ "${#T_SUBJECTS[@]}" -gt 0 ]; then
    ok "README subject table has ${#T_SUBJECTS[@]} rows"
else
    bad "README has no subject table between <!-- subjects:begin --> and <!-- subjects:end -->"
    finish
fi

declare -a R_SERVED=() R_LATER=() R_PUBLISH=() R_DLQ=()
for i in "${!T_SUBJECTS[@]}"; do
    s=${T_SUBJECTS[$i]} k=${T_KINDS[$i]}
    case $k in
        *"not served yet"*) R_LATER+=("$s") ;;
        *request-reply*) R_SERVED+=("$s") ;;
        *"JetStream publish"*) R_PUBLISH+=("$s") ;;
        *DLQ*) R_DLQ+=("$s") ;;
        *) bad "README row $s: unknown kind '$k' (JetStream publish, DLQ, request-reply)" ;;
    esac
done

# ---- request subjects: names.h <-> README ------------------------------------------------
declare -a C_SERVED=()
PREFIX=
while read -r name value; do
    case $value in
        *. | *'>'* | *'*'*) [ "$name" = DM_SUBJ_PREFIX ] && PREFIX=$value ;; # a prefix, not a subject
        dm.v1.*) C_SERVED+=("$value") ;; # the request subjects; publish formats are checked below
    esac
done < <(sed -n 's/^[[:space:]]*#[[:space:]]*define[[:space:]]\{1,\}\(DM_SUBJ_[A-Z0-9_]*\)[[:space:]]\{1,\}"\([^"]*\)".*/\1 \2/p' "$NAMES_H")
if [ "${#C_SERVED[@]}" -gt 0 ]; then
    ok "names.h defines ${#C_SERVED[@]} request subjects: ${C_SERVED[*]}"
else
    bad "names.h defines no DM_SUBJ_ request subject"
fi
for s in "${C_SERVED[@]}"; do
    if contains "$s" "${R_SERVED[@]}"; then
        ok "served subject $s is in the README table"
    elif contains "$s" "${R_LATER[@]}"; then
        bad "served subject $s is marked 'not served yet' in the README table"
    else
        bad "served subject $s (names.h) is missing from the README table"
    fi
done
for s in "${R_SERVED[@]}"; do
    if contains "$s" "${C_SERVED[@]}"; then
        ok "README request subject $s is served by the code"
    else
        bad "README lists $s as request-reply but names.h does not define it (mark it 'not served yet' or remove it)"
    fi
done
for s in "${R_LATER[@]}"; do
    if contains "$s" "${C_SERVED[@]}"; then
        bad "README says $s is not served yet, but names.h names it"
    else
        ok "not served yet: $s (answered not_found)"
    fi
done
if [ -n "$PREFIX" ]; then
    bad_prefix=
    for s in "${R_SERVED[@]}" "${R_LATER[@]}"; do
        [ "${s#"$PREFIX"}" = "$s" ] && bad_prefix+=" $s"
    done
    if [ -z "$bad_prefix" ]; then ok "every request subject starts with DM_SUBJ_PREFIX $PREFIX"; else bad "request subjects outside $PREFIX:$bad_prefix"; fi
    if grep -q "\"${PREFIX}>\"" "$RESPONDER_C"; then
        ok "responder subscribes to ${PREFIX}> (unserved ${PREFIX} subjects get not_found)"
    else
        bad "responder.c does not subscribe to ${PREFIX}>: the README's not_found rule for unserved subjects may be wrong"
    fi
else
    bad "names.h has no DM_SUBJ_PREFIX"
fi

# ---- write subjects: ingest.c <-> README ----------------------------------------------
array_strings() { # FILE ARRAY_NAME -> the string literals of its initializer
    awk -v a="$2" 'index($0, a "[") { on = 1 } on { print } on && /;/ { exit }' "$1" |
        grep -o '"[^"]*"' | tr -d '"'
}
mapfile -t C_FILTERS < <(array_strings "$INGEST_C" KIND_FILTERS)
mapfile -t C_KINDS < <(array_strings "$INGEST_C" KIND_NAMES)
if [ "${#C_FILTERS[@]}" -gt 0 ]; then
    ok "ingest.c consumes ${#C_FILTERS[@]} families: ${C_FILTERS[*]}"
else
    bad "no KIND_FILTERS found in ingest.c"
fi
declare -a R_FILTERS=()
for s in "${R_PUBLISH[@]}"; do R_FILTERS+=("$(template_wildcard "$s")"); done
for f in "${C_FILTERS[@]}"; do
    if contains "$f" "${R_FILTERS[@]}"; then
        ok "consumed family $f is in the README table"
    else
        bad "consumed family $f (ingest.c) has no JetStream publish row in the README table"
    fi
done
for i in "${!R_PUBLISH[@]}"; do
    if contains "${R_FILTERS[$i]}" "${C_FILTERS[@]}"; then
        ok "README publish subject ${R_PUBLISH[$i]} is consumed (${R_FILTERS[$i]})"
    else
        bad "README lists ${R_PUBLISH[$i]} but no consumer filters ${R_FILTERS[$i]} in ingest.c"
    fi
done

# ---- dead letters ---------------------------------------------------------------------
# The contract's names are written once, in model/names.h: a macro's string value.
name_value() { sed -n "s/^[[:space:]]*#[[:space:]]*define[[:space:]]\{1,\}$1[[:space:]]\{1,\}\"\([^\"]*\)\".*/\1/p" "$NAMES_H"; }
DLQ_ALL=$(name_value DM_SUBJ_DLQ_ALL)
if [ "${#R_DLQ[@]}" -eq 1 ] && [ "$(template_wildcard "${R_DLQ[0]}")" = "$DLQ_ALL" ]; then
    ok "DLQ row ${R_DLQ[0]} matches DM_SUBJ_DLQ_ALL $DLQ_ALL"
else
    bad "README DLQ row(s) '${R_DLQ[*]:-}' do not match DM_SUBJ_DLQ_ALL '$DLQ_ALL' (model/names.h)"
fi
dlq_fmt=$([ "$(name_value DM_SUBJ_DLQ_FMT)" = "dm.dlq.%s" ] && grep -o 'DM_SUBJ_DLQ_FMT' "$CONSUMER_C" | head -n1)
if [ -n "$dlq_fmt" ]; then ok "consumer.c dead-letters to dm.dlq.<kind>"; else bad "consumer.c no longer builds dm.dlq.%s"; fi
for k in "${C_KINDS[@]}"; do
    if grep -q "\`dm\.dlq\.$k\`" "$README"; then ok "README documents dm.dlq.$k"; else bad "README does not mention \`dm.dlq.$k\` (kind $k of ingest.c)"; fi
done
mapfile -t C_DLQ_HEADERS < <(awk '/^static bool dead_letter\(/ { on = 1 } on { print } on && /^}/ { exit }' "$CONSUMER_C" |
    sed -n 's/.*set_header(m, \(DM_HDR_[A-Z_]*\).*/\1/p' | while read -r macro; do name_value "$macro"; done | sort -u)
mapfile -t R_DLQ_HEADERS < <(while IFS= read -r row; do first_code_span "$(cell "$row" 1)"; done < <(section_rows dlq-headers) | sort -u)
if [ "${#C_DLQ_HEADERS[@]}" -gt 0 ]; then ok "consumer.c sets ${#C_DLQ_HEADERS[@]} DLQ headers"; else bad "no set_header(m, ...) found in consumer.c dead_letter()"; fi
for h in "${C_DLQ_HEADERS[@]}"; do
    if contains "$h" "${R_DLQ_HEADERS[@]}"; then ok "DLQ header $h documented"; else bad "DLQ header $h (consumer.c) missing from the README dlq-headers table"; fi
done
for h in "${R_DLQ_HEADERS[@]}"; do
    contains "$h" "${C_DLQ_HEADERS[@]}" || bad "README dlq-headers table lists $h, which consumer.c does not set"
done
mapfile -t C_REPLY_HEADERS < <(sed -n 's/.*natsMsgHeader_Set(out, "\([^"]*\)".*/\1/p' "$RESPONDER_C" | sort -u)
for h in "${C_REPLY_HEADERS[@]}"; do
    if grep -q "\`$h" "$README"; then ok "reply header $h documented"; else bad "reply header $h (responder.c) is not documented in the README"; fi
done

# ---- error codes and statuses: err.c <-> README -----------------------------------------
declare -A C_NAME=() C_STATUS=()
while read -r enum name; do C_NAME[$enum]=$name; done < <(
    awk '/^const char \*dm_code_name\(/ { on = 1 } on && /^}/ { exit }
         on && match($0, /case DM_[A-Z_]+: return "[a-z_]+"/) {
             s = substr($0, RSTART, RLENGTH); gsub(/case |:|return |"/, "", s); print s }' "$ERR_C")
while read -r enum status; do C_STATUS[$enum]=$status; done < <(
    awk '/^int dm_code_status\(/ { on = 1; next } on && /^}/ { exit }
         on { line = $0
              while (match(line, /case DM_[A-Z_]+:/)) { p[++n] = substr(line, RSTART + 5, RLENGTH - 6); line = substr(line, RSTART + RLENGTH) }
              if (match(line, /return [0-9]+/)) { v = substr(line, RSTART + 7, RLENGTH - 7); for (i = 1; i <= n; i++) print p[i], v; n = 0 } }' "$ERR_C")
declare -A CODE_STATUS=()
for enum in "${!C_NAME[@]}"; do
    [ "${C_NAME[$enum]}" = ok ] && continue
    CODE_STATUS[${C_NAME[$enum]}]=${C_STATUS[$enum]:-?}
done
if [ "${#CODE_STATUS[@]}" -gt 0 ]; then ok "err.c has ${#CODE_STATUS[@]} error codes"; else bad "no error codes parsed from err.c"; fi
declare -A R_CODE_STATUS=()
while IFS= read -r row; do
    R_CODE_STATUS[$(first_code_span "$(cell "$row" 1)")]=$(cell "$row" 2)
done < <(section_rows errors)
for c in $(printf '%s\n' "${!CODE_STATUS[@]}" | sort); do
    if [ -z "${R_CODE_STATUS[$c]+x}" ]; then
        bad "error code $c (err.c) is missing from the README error table"
    elif [ "${R_CODE_STATUS[$c]}" != "${CODE_STATUS[$c]}" ]; then
        bad "error code $c: README says Status ${R_CODE_STATUS[$c]}, err.c returns ${CODE_STATUS[$c]}"
    else
        ok "error code $c, Status ${CODE_STATUS[$c]}"
    fi
done
for c in $(printf '%s\n' "${!R_CODE_STATUS[@]}" | sort); do
    [ -n "${CODE_STATUS[$c]+x}" ] || bad "README error table lists $c, which err.c does not have"
done
unknown=
for e in "${T_ERRORS[@]}"; do
    for c in $(grep -o '`[a-z]\{1,\}\(_[a-z]\{1,\}\)*`' <<<"$e" | tr -d '`'); do
        [ -n "${CODE_STATUS[$c]+x}" ] || unknown+=" $c"
    done
done
unknown=$(tr ' ' '\n' <<<"$unknown" | sort -u | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
[ -z "$unknown" ] || unknown=" $unknown"
if [ -z "$unknown" ]; then ok "every code in the table's errors column exists in err.c"; else bad "unknown error codes in the subject table:$unknown"; fi

# ---- limits ---------------------------------------------------------------------------
define_expr() { # NAME -> its #define expression (comments and integer suffixes removed)
    grep -rhE "^[[:space:]]*#[[:space:]]*define[[:space:]]+$1[[:space:]]" "$ROOT/worker" --include='*.h' --include='*.c' |
        head -n1 | sed -E "s/^[[:space:]]*#[[:space:]]*define[[:space:]]+$1[[:space:]]+//; s@/\*.*@@; s@//.*@@; s/([0-9])([uU]|[lL]{1,2}|[uU][lL]{1,2})\b/\1/g; s/[[:space:]]+$//"
}
define_value() { # NAME [DEPTH] -> integer value, other DM_ constants resolved
    local expr ref depth=${2:-0}
    expr=$(define_expr "$1")
    [ -n "$expr" ] && [ "$depth" -lt 8 ] || return 1
    for ref in $(grep -oE '\bDM_[A-Z0-9_]+\b' <<<"$expr" | sort -u); do
        expr=${expr//$ref/($(define_value "$ref" $((depth + 1))))} || return 1
    done
    grep -qE '^[0-9 ()+*/<>-]+$' <<<"$expr" || return 1
    echo $((expr))
}
n_limits=0
while IFS= read -r row; do
    name=$(first_code_span "$(cell "$row" 1)") want=$(cell "$row" 2)
    n_limits=$((n_limits + 1))
    if ! have=$(define_value "$name"); then
        bad "limit $name: no #define with an integer value under worker/"
    elif [ "$have" = "$want" ]; then
        ok "limit $name = $have"
    else
        bad "limit $name: README says $want, the code says $have"
    fi
done < <(section_rows limits)
[ "$n_limits" -gt 0 ] || bad "README has no limits table"

# ---- examples -------------------------------------------------------------------------
declare -A EX_SUBJECTS=()
if [ -d "$EXAMPLES" ]; then
    for f in "$EXAMPLES"/*; do
        [ -f "$f" ] || continue
        base=${f##*/}
        if [ -n "$JSON_TOOL" ] && json_canon "$f" >/dev/null; then
            ok "example $base is valid JSON"
        else
            bad "example $base is not valid JSON"
        fi
        subj=$(sed -nE 's/^(.*)\.(request|reply|payload|message)\.json$/\1/p' <<<"$base")
        role=$(sed -nE 's/^.*\.(request|reply|payload|message)\.json$/\1/p' <<<"$base")
        if [ -z "$subj" ]; then
            bad "example $base: name is not <subject>.(request|reply|payload|message).json"
            continue
        fi
        match=
        for s in "${T_SUBJECTS[@]}"; do
            [[ $subj =~ $(template_regex "$s") ]] && match=$s && break
        done
        if [ -n "$match" ]; then EX_SUBJECTS["$match/$role"]=1; else bad "example $base: $subj is no subject of the README table"; fi
        if grep -qF "<!-- example: $base -->" "$README"; then
            :
        else
            bad "example $base is not shown in the README (<!-- example: $base -->)"
        fi
    done
else
    bad "no subjects/examples directory"
fi
for s in "${R_SERVED[@]}"; do
    for role in request reply; do
        if [ -n "${EX_SUBJECTS[$s/$role]+x}" ]; then ok "$s has a $role example"; else bad "$s has no $role example in subjects/examples"; fi
    done
done
for s in "${R_PUBLISH[@]}"; do
    if [ -n "${EX_SUBJECTS[$s/payload]+x}" ]; then ok "$s has a payload example"; else bad "$s has no payload example in subjects/examples"; fi
done
for s in "${R_DLQ[@]}"; do
    if [ -n "${EX_SUBJECTS[$s/message]+x}" ]; then ok "$s has a message example"; else bad "$s has no message example in subjects/examples"; fi
done
# Each <!-- example: FILE --> in the README is followed by a ```json block equal to FILE.
if [ -n "$JSON_TOOL" ]; then
    while IFS= read -r base; do
        block=$(awk -v m="<!-- example: $base -->" '
            $0 == m { want = 1; next }
            want == 1 && /^```json/ { want = 2; next }
            want == 2 && /^```/ { exit }
            want == 2 { print }' "$README")
        if [ ! -f "$EXAMPLES/$base" ]; then
            bad "README shows example $base, but subjects/examples/$base does not exist"
        elif [ "$(json_canon - <<<"$block")" = "$(json_canon "$EXAMPLES/$base")" ] && [ -n "$block" ]; then
            ok "README example $base equals the file"
        else
            bad "README example $base differs from subjects/examples/$base (or is not valid JSON)"
        fi
    done < <(sed -n 's/^<!-- example: \(.*\) -->$/\1/p' "$README")
fi

finish
