#!/usr/bin/env bash
# The worker's folders form layers: no folder includes, directly or through others, a
# folder that includes it back. Builds the folder graph from every #include "..." under
# worker/ and fails on a cycle (naming it), so the next person inherits the habit.
#
#   tests/contract/check_layers.sh [REPO]
#
# Prints the layers, lowest first, when there is no cycle.
set -euo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$ROOT/worker"

edges=$(
    find . -name '*.[ch]' | sort | while read -r f; do
        from=$(dirname "${f#./}")
        { grep -o '#include "[^"]*"' "$f" || true; } | sed 's/#include "//; s/"$//' | while read -r inc; do
            # "codec/enc.h" is named from worker/ (the include directory); a bare name is
            # the file's own folder; ../ paths are resolved as written.
            if [[ $inc == */* && $inc != ../* && $inc != ./* ]]; then
                to=$(dirname "$inc")
            else
                to=$(dirname "$(realpath -m --relative-to=. "$(dirname "$f")/$inc")")
            fi
            [[ $to == "$from" || $to == .* && $to != . ]] && continue
            printf '%s %s\n' "$to" "$from" # tsort: "a b" means a comes before b
        done
    done | sort -u
)

if ! order=$(tsort <<<"$edges" 2>"${TMPDIR:-/tmp}/check_layers.err"); then
    echo "layers: FAIL include cycle between the worker's folders:"
    sed 's/^/  /' "${TMPDIR:-/tmp}/check_layers.err"
    echo "  edges (included -> includer):"
    sed 's/^/    /' <<<"$edges"
    exit 1
fi
if grep -q 'loop' "${TMPDIR:-/tmp}/check_layers.err"; then
    echo "layers: FAIL include cycle between the worker's folders:"
    sed 's/^/  /' "${TMPDIR:-/tmp}/check_layers.err"
    exit 1
fi
echo "layers: ok, no include cycle; lowest first: $(tr '\n' ' ' <<<"$order")"
