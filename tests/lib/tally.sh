# The PASS/FAIL lines and their counts of the shell checks (security, roles, status page).
# Source it, then end with the script's own summary of $passed and $failed.
passed=0 failed=0
pass() { printf 'PASS %s\n' "$1"; passed=$((passed + 1)); }
fail() { # fail NAME [DETAIL...]
    local name=$1
    shift
    printf 'FAIL %s%s\n' "$name" "${*:+: $*}"
    failed=$((failed + 1))
}
check() { # check NAME CONDITION-COMMAND... : PASS when the command succeeds
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
