#!/usr/bin/env bash
# Static check: no SQL text is built from request values.
#
#   tests/security/check_sql.sh          self-test, then worker/
#   tests/security/check_sql.sh DIR      DIR only (what the self-test runs on its samples)
#
# Every PostgreSQL call takes literal SQL (values travel as parameters), nothing appends a
# variable to SQL text, and in worker/backend/clickhouse.c, where ClickHouse 18.16 leaves
# no choice but to splice identifiers and symbols, every splice is in the allow-list of
# tests/security/sql_sites.pl with the strict check that guards each value. The self-test
# first proves the check fails on deliberately bad code: a check that cannot fail proves
# nothing. Needs only perl (Debian's perl-base).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
CHECKER=$HERE/sql_sites.pl

if (($# > 0)); then
    exec perl "$CHECKER" "$1" "$ROOT"
fi

TMP=$(mktemp -d /tmp/dm-check-sql.XXXXXX)
trap 'rm -rf -- "$TMP"' EXIT

failures=0

# sample NAME EXPECT: runs the check on $TMP/NAME, expecting "clean" or "fail".
sample() {
    local name=$1 expect=$2 out rc=0
    out=$(perl "$CHECKER" "$TMP/$name" "$ROOT" 2>&1) || rc=$?
    if { [[ $expect == clean ]] && ((rc == 0)); } || { [[ $expect == fail ]] && ((rc == 1)); }; then
        printf 'PASS self-test: %s is %s\n' "$name" "$expect"
    else
        printf 'FAIL self-test: %s should be %s (exit %d)\n' "$name" "$expect" "$rc"
        printf '%s\n' "$out" | sed 's/^/    /'
        failures=$((failures + 1))
    fi
}

write() { mkdir -p "$(dirname "$TMP/$1")"; cat >"$TMP/$1"; }

write good/store.c <<'EOF'
#include <libpq-fe.h>
#include <stdio.h>
#define SQL_LATEST "SELECT ts FROM ticks WHERE symbol = $1 " \
    "ORDER BY ts DESC LIMIT 1"
static const char SQL_BEGIN[] = "BEGIN";
static void exec_sql(PGconn *c, const char *sql) { PQclear(PQexec(c, sql)); }
void latest(PGconn *c, const char *symbol, int limit)
{
    const char *vals[1] = {symbol};
    char lim[24];
    snprintf(lim, sizeof lim, "%d", limit);
    PQclear(PQexecParams(c, SQL_LATEST, 1, NULL, vals, NULL, NULL, 0));
    PQclear(PQexec(c, SQL_BEGIN));
    exec_sql(c, "COMMIT");
}
EOF
sample good clean

write pqexec-with-value/store.c <<'EOF'
#include <libpq-fe.h>
#include <stdio.h>
void latest(PGconn *c, const char *symbol)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT ts FROM ticks WHERE symbol = '%s'", symbol);
    PQclear(PQexec(c, sql));
}
EOF
sample pqexec-with-value fail

write wrapper-with-value/store.c <<'EOF'
#include <libpq-fe.h>
#include <stdio.h>
static void exec_sql(PGconn *c, const char *sql) { PQclear(PQexec(c, sql)); }
void on_request(PGconn *c, const char *body)
{
    char q[128];
    snprintf(q, sizeof q, "%s", body);
    exec_sql(c, q);
}
EOF
sample wrapper-with-value fail

write exported-wrapper/store.c <<'EOF'
#include <libpq-fe.h>
void exec_sql(PGconn *c, const char *sql) { PQclear(PQexec(c, sql)); }
EOF
sample exported-wrapper fail

write append-to-sql/store.c <<'EOF'
#include "enc.h"
void where(dm_buf *sql, const char *symbol)
{
    dm_buf_puts(sql, " WHERE symbol = '");
    dm_buf_puts(sql, symbol);
    dm_buf_puts(sql, "'");
}
EOF
sample append-to-sql fail

write escaped-literal/store.c <<'EOF'
#include <libpq-fe.h>
void latest(PGconn *c, const char *symbol)
{
    char *lit = PQescapeLiteral(c, symbol, 6);
    PQfreemem(lit);
}
EOF
sample escaped-literal fail

# The real ClickHouse adapter as it is, then with a new unlisted splice, then with the
# strict check in front of one splice taken away.
mkdir -p "$TMP/ch-as-is/backend"
cp "$ROOT/worker/backend/clickhouse.c" "$TMP/ch-as-is/backend/"
sample ch-as-is clean

mkdir -p "$TMP/ch-new-site/backend"
cp "$ROOT/worker/backend/clickhouse.c" "$TMP/ch-new-site/backend/"
cat >>"$TMP/ch-new-site/backend/clickhouse.c" <<'EOF'

static dm_bstatus ch_tick_count(clickhouse *ch, const char *symbol, dm_err *err)
{
    dm_buf_reset(&ch->sql);
    dm_buf_printf(&ch->sql, "SELECT count() FROM %s.ticks WHERE symbol = '%s'", ch->db, symbol);
    return select_rows(ch, "tick count", err);
}
EOF
sample ch-new-site fail

mkdir -p "$TMP/ch-rowbinary-into-sql/backend"
cp "$ROOT/worker/backend/clickhouse.c" "$TMP/ch-rowbinary-into-sql/backend/"
cat >>"$TMP/ch-rowbinary-into-sql/backend/clickhouse.c" <<'EOF'

static void ch_where_source(clickhouse *ch, const char *source)
{
    dm_buf_puts(&ch->sql, " AND source = ");
    rb_str(&ch->sql, source);
}
EOF
sample ch-rowbinary-into-sql fail

mkdir -p "$TMP/ch-guard-removed/backend"
perl -0pe 's/\n[ \t]*if \(!dm_clickhouse_safe_symbol\(symbol\)\)\n[^\n]*\n/\n/ or die "guard not found\n"' \
    "$ROOT/worker/backend/clickhouse.c" >"$TMP/ch-guard-removed/backend/clickhouse.c"
sample ch-guard-removed fail

mkdir -p "$TMP/ch-sql-from-request/backend"
perl -0pe 's/(return st != DM_BS_OK \? st : run_sql\(ch, "", )"SELECT 1"/$1b->name/ or die "ping not found\n"' \
    "$ROOT/worker/backend/clickhouse.c" >"$TMP/ch-sql-from-request/backend/clickhouse.c"
sample ch-sql-from-request fail

if ((failures > 0)); then
    printf 'FAIL check_sql: the self-test failed %d time(s): the check cannot be trusted\n' "$failures"
    exit 1
fi

rc=0
out=$(perl "$CHECKER" "$ROOT/worker" "$ROOT" 2>&1) || rc=$?
printf '%s\n' "$out"
if ((rc == 0)); then
    echo "PASS check_sql: worker/ builds no SQL text from values"
else
    echo "FAIL check_sql: worker/ (findings above)"
fi
exit "$rc"
