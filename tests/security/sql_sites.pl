#!/usr/bin/perl
# The SQL check behind tests/security/check_sql.sh.
#
#   perl sql_sites.pl SRC_DIR [REPO_ROOT]
#
# Reads every .c/.h file under SRC_DIR and fails when SQL text can be built from a value
# that is not a literal:
#
# 1. The SQL argument of every PQexec, PQsendQuery, PQexecParams, PQsendQueryParams,
#    PQprepare and PQsendPrepare call is a string literal, a named constant of literal SQL
#    (a macro of literals, a const array initialised with one, a schema embedded at build
#    time) or a member of a const table of such constants. A function that passes one of
#    its own parameters on as that argument is a wrapper: every call of it is held to the
#    same rule. Values go in parameters; the PQescape* family is refused outright.
# 2. A formatting or append call (snprintf, sprintf, strcat, strcpy, dm_buf_printf,
#    dm_buf_puts, dm_buf_put, ...) that writes SQL (SQL words in its format, or a
#    destination named sql/query) copies in nothing but literals and numbers.
# 3. ClickHouse 18.16 takes no query parameters, so worker/backend/clickhouse.c does splice
#    a few values into SQL. There every such call that copies a non-literal is listed in
#    @CH_SITES below with, for each value it copies, the guard that makes it safe, and each
#    guard is verified in the source (the strict check runs before the call and the value
#    is not reassigned in between, the database name is checked where it is read, ...). A
#    call that is not listed fails, and so does a listed one that no longer exists: the
#    list stays the exact set of places to review.
#
# Exit status: 0 clean, 1 findings (each printed as FILE:LINE: reason). With
# DM_CHECK_SQL_VERBOSE=1 it also lists every call it accepted and why.
use strict;
use warnings;

my ($src_dir, $repo_root) = @ARGV;
die "usage: sql_sites.pl SRC_DIR [REPO_ROOT]\n" unless defined $src_dir && -d $src_dir;

my $CH_FILE = qr{(?:^|/)backend/clickhouse\.c$};

# Allow-list of the interpolation sites of clickhouse.c. Keyed by the enclosing function,
# the call, its destination and its format (adjacent literals joined, macros kept as
# {NAME}) or, for appends, its source. `args` maps each non-literal value copied in to
# its guards:
#   check FN          `if (!FN(value)) return ...` precedes the call in the same function,
#                     and the value is not assigned between the two
#   db                the configured database name: written only in instance(), which
#                     refuses a name that fails dm_clickhouse_safe_ident
#   literal-arg FN N  every call of FN in the file passes a literal as argument N
#   returns-literals  the value is a call of a function all of whose returns are literals
#   const-type T      every T object in the file is static const with literal members
#   escaped SQL       the value is curl_easy_escape() of a local built at a listed site
#   written-only-in F the value is written in function F only (configuration)
#   literal-arg-or-local FN N   as literal-arg, or a local buffer of the caller (written
#                     only by calls this list covers), or the caller's own parameter held
#                     to the same rule at its call sites
#   schema-text       a cursor over the embedded ClickHouse schema and nothing else
#   not-sql           the destination never reaches SQL text (reply, RowBinary, headers);
#                     when the destination is a parameter, no caller passes an SQL buffer
my @CH_SITES = (
    { fn => 'on_body', call => 'dm_buf_put', dest => '&ch->reply', src => 'p',
      args => { 'p' => ['not-sql HTTP reply body'] } },
    { fn => 'post', call => 'dm_buf_printf', dest => '&ch->target', fmt => '%s/?%s',
      args => { 'ch->url' => ['written-only-in parse_url'],
                'params'  => ['literal-arg-or-local post 1'] } },
    { fn => 'next_statement', call => 'dm_buf_put', dest => 'out', src => 's',
      args => { 's' => ['schema-text'] } },
    { fn => 'apply_schema', call => 'dm_buf_printf', dest => '&ch->sql',
      fmt => 'CREATE DATABASE IF NOT EXISTS %s',
      args => { 'ch->db' => ['db'] } },
    { fn => 'apply_schema', call => 'snprintf', dest => 'params', fmt => 'database=%s',
      args => { 'ch->db' => ['db'] } },
    { fn => 'rb_u64', call => 'dm_buf_put', dest => 'b', src => 'x',
      args => { 'x' => ['not-sql RowBinary body: values travel here, not in SQL'] } },
    { fn => 'rb_str', call => 'dm_buf_put', dest => 'b', src => 'len',
      args => { 'len' => ['not-sql RowBinary body'] } },
    { fn => 'rb_str', call => 'dm_buf_put', dest => 'b', src => 's',
      args => { 's' => ['not-sql RowBinary body: values travel here, not in SQL'] } },
    { fn => 'rb_nf64', call => 'dm_buf_put', dest => 'b', src => '&null',
      args => { '&null' => ['not-sql RowBinary body'] } },
    { fn => 'send_insert', call => 'snprintf', dest => 'sql',
      fmt => 'INSERT INTO %s.%s (%s) FORMAT RowBinary',
      args => { 'ch->db' => ['db'], 'def->table' => ['const-type table_def'],
                'def->columns' => ['const-type table_def'] } },
    { fn => 'send_insert', call => 'snprintf', dest => 'params', fmt => 'query=%s',
      args => { 'q' => ['escaped sql'] } },
    { fn => 'begin_select', call => 'dm_buf_printf', dest => '&ch->sql',
      fmt => q{SELECT %s FROM %s.candles%s WHERE symbol = '%s' AND timeframe = '%s'},
      args => { 'columns' => ['literal-arg begin_select 1'], 'ch->db' => ['db'],
                'symbol' => ['check dm_clickhouse_safe_symbol'],
                'tfs' => ['check dm_clickhouse_safe_timeframe'] } },
    { fn => 'ch_aggregates', call => 'dm_buf_printf', dest => '&ch->sql',
      fmt => 'SELECT {AGG_COLUMNS} FROM (SELECT ts, open, high, low, close, volume, '
           . 'toInt64(%s) AS p FROM %s.candles FINAL WHERE symbol = \'%s\' AND timeframe = '
           . '\'%s\' AND ts >= %lld AND ts < %lld) GROUP BY p ORDER BY p FORMAT RowBinary',
      args => { 'period_key(q->period)' => ['returns-literals period_key'],
                'ch->db' => ['db'], 'q->symbol' => ['check dm_clickhouse_safe_symbol'],
                'tfs' => ['check dm_clickhouse_safe_timeframe'] } },
    { fn => 'parse_url', call => 'snprintf', dest => 'ch->url', fmt => '%s',
      args => { 'url' => ['not-sql the configured base URL (operator input)'] } },
    { fn => 'parse_url', call => 'snprintf', dest => 'ch->where', fmt => '%.*s',
      args => { 'url + scheme' => ['not-sql host:port for log lines'] } },
    { fn => 'headers', call => 'snprintf', dest => 'line', fmt => 'Content-Type: %s',
      args => { 'content_type' => ['not-sql HTTP header'] } },
    { fn => 'headers', call => 'snprintf', dest => 'line', fmt => 'X-ClickHouse-User: %s',
      args => { 'ch->user' => ['not-sql HTTP header'] } },
    { fn => 'headers', call => 'snprintf', dest => 'line', fmt => 'X-ClickHouse-Key: %s',
      args => { 'ch->password' => ['not-sql HTTP header'] } },
    { fn => 'instance', call => 'snprintf', dest => 'ch->db', fmt => '%s',
      args => { 'dm_cfg_str(cfg, "database", "dm")' => ['db'] } },
    { fn => 'instance', call => 'snprintf', dest => 'ch->user', fmt => '%s',
      args => { 'dm_cfg_str(cfg, "user", "default")' => ['not-sql HTTP header value'] } },
    { fn => 'instance', call => 'snprintf', dest => 'ch->password', fmt => '%s',
      args => { 'dm_cfg_str(cfg, "password", "")' => ['not-sql HTTP header value'] } },
);

# The functions of clickhouse.c that send text to the server, and the argument that holds
# SQL (post: URL parameters and body; run_sql: SQL). Each such argument must be a literal,
# a local buffer (written only by calls the site check covers), ch->sql or ch->body, or a
# parameter forwarded from a caller held to the same rule.
my @CH_SQL_ENTRIES = (['run_sql', 1], ['run_sql', 2], ['post', 1], ['post', 2]);

# Calls whose SQL argument must be literal: name => index of that argument.
my %PQ_SQL_ARG = (PQexec => 1, PQsendQuery => 1, PQexecParams => 1, PQsendQueryParams => 1,
                  PQprepare => 2, PQsendPrepare => 2);
my $PQ_ESCAPE = qr/\bPQescape(?:Literal|Identifier|String|StringConn|Bytea|ByteaConn)\s*\(/;

# Builders: name => [index of the format or source argument, is printf-like].
my %BUILDERS = (
    sprintf => [1, 1], snprintf => [2, 1], vsprintf => [1, 1], vsnprintf => [2, 1],
    asprintf => [1, 1], dm_buf_printf => [1, 1],
    strcat => [1, 0], strncat => [1, 0], strcpy => [1, 0], strncpy => [1, 0],
    stpcpy => [1, 0], dm_buf_puts => [1, 0], dm_buf_put => [1, 0],
);

my $SQL_WORDS = qr/\b(?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|TRUNCATE|GRANT|WHERE|
                      VALUES|FROM|FORMAT|LIMIT|ORDER\ BY|GROUP\ BY)\b/x;
my $SQL_PHRASES = qr/\b(?:select\b.*\bfrom|insert\s+into|delete\s+from|update\s+\w+\s+set|
                        create\s+(?:table|database|index|view)|drop\s+(?:table|database)|
                        alter\s+(?:table|role|database))\b/xi;

my @findings;
my $VERBOSE = $ENV{DM_CHECK_SQL_VERBOSE};
sub note { print "  $_[0]\n" if $VERBOSE; }
my ($n_pq, $n_sql_builders, $n_ch_sites) = (0, 0, 0);

sub finding { my ($f, $line, $msg) = @_; push @findings, $line ? "$f:$line: $msg" : "$f: $msg"; }

# ---------------------------------------------------------------- reading C ---

sub read_file {
    my ($path) = @_;
    open my $fh, '<', $path or die "cannot read $path: $!\n";
    local $/;
    my $t = <$fh>;
    close $fh;
    return $t;
}

# Returns (code, skeleton): code has comments blanked (newlines kept); the skeleton also
# has the insides of string and character literals blanked, so searches never match text
# inside a literal. Offsets agree between the two and the original.
sub strip {
    my ($t) = @_;
    my ($code, $skel) = ($t, $t);
    my $n = length $t;
    my $i = 0;
    while ($i < $n) {
        my $c = substr($t, $i, 1);
        my $d = $i + 1 < $n ? substr($t, $i + 1, 1) : '';
        if ($c eq '/' && $d eq '/') {
            my $e = index($t, "\n", $i);
            $e = $n if $e < 0;
            for my $k ($i .. $e - 1) { substr($code, $k, 1) = ' '; substr($skel, $k, 1) = ' '; }
            $i = $e;
        } elsif ($c eq '/' && $d eq '*') {
            my $e = index($t, '*/', $i + 2);
            $e = $e < 0 ? $n : $e + 2;
            for my $k ($i .. $e - 1) {
                next if substr($t, $k, 1) eq "\n";
                substr($code, $k, 1) = ' ';
                substr($skel, $k, 1) = ' ';
            }
            $i = $e;
        } elsif ($c eq '"' || $c eq "'") {
            my $k = $i + 1;
            while ($k < $n && substr($t, $k, 1) ne $c) {
                $k++ if substr($t, $k, 1) eq '\\';
                $k++;
            }
            for my $j ($i + 1 .. $k - 1) {
                substr($skel, $j, 1) = 'x' unless substr($t, $j, 1) eq "\n";
            }
            $i = $k + 1;
        } else {
            $i++;
        }
    }
    return ($code, $skel);
}

sub line_of {
    my ($file, $off) = @_;
    my $starts = $file->{lines};
    my ($lo, $hi) = (0, $#$starts);
    while ($lo < $hi) {
        my $mid = int(($lo + $hi + 1) / 2);
        if ($starts->[$mid] <= $off) { $lo = $mid; } else { $hi = $mid - 1; }
    }
    return $lo + 1;
}

# Position just past the bracket that closes the one at $open (in the skeleton).
sub match_close {
    my ($skel, $open) = @_;
    my $depth = 0;
    for (my $i = $open; $i < length $skel; $i++) {
        my $c = substr($skel, $i, 1);
        if ($c eq '(' || $c eq '[' || $c eq '{') { $depth++; }
        elsif ($c eq ')' || $c eq ']' || $c eq '}') { $depth--; return $i + 1 if $depth == 0; }
    }
    return length $skel;
}

# Arguments of the call whose '(' is at $open: list of [text, offset], and the end.
sub call_args {
    my ($file, $open) = @_;
    my ($code, $skel) = ($file->{code}, $file->{skel});
    my $end = match_close($skel, $open);
    my @args;
    my ($depth, $start) = (0, $open + 1);
    for (my $i = $open + 1; $i < $end - 1; $i++) {
        my $c = substr($skel, $i, 1);
        if ($c eq '(' || $c eq '[' || $c eq '{') { $depth++; }
        elsif ($c eq ')' || $c eq ']' || $c eq '}') { $depth--; }
        elsif ($c eq ',' && $depth == 0) {
            push @args, [norm(substr($code, $start, $i - $start)), $start];
            $start = $i + 1;
        }
    }
    my $last = norm(substr($code, $start, $end - 1 - $start));
    push @args, [$last, $start] if $last ne '' || @args;
    return (\@args, $end);
}

# Whitespace outside literals collapsed, ends trimmed.
sub norm {
    my ($s) = @_;
    my $out = '';
    while ($s =~ /\G(?:("(?:[^"\\]|\\.)*")|('(?:[^'\\]|\\.)*')|(\s+)|(.))/gs) {
        if (defined $1) { $out .= $1; }
        elsif (defined $2) { $out .= $2; }
        elsif (defined $3) { $out .= ' '; }
        else { $out .= $4; }
    }
    $out =~ s/^\s+|\s+$//g;
    $out =~ s/\s*(->|\.)\s*/$1/g;
    return $out;
}

# Top-level function definitions: name, parameter names, body range.
sub functions {
    my ($file) = @_;
    my ($code, $skel) = ($file->{code}, $file->{skel});
    my @fns;
    my $depth = 0;
    for (my $i = 0; $i < length $skel; $i++) {
        my $c = substr($skel, $i, 1);
        if ($c eq '{') {
            if ($depth == 0) {
                my $before = substr($skel, 0, $i);
                if ($before =~ /(\w+)\s*(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))\s*$/s
                    && $1 !~ /^(?:if|for|while|switch|return|sizeof)$/) {
                    my ($name, $plist) = ($1, $2);
                    my $end = match_close($skel, $i);
                    my $pstart = $-[2];
                    my @params = param_names(substr($code, $pstart + 1, length($plist) - 2));
                    push @fns, { name => $name, params => \@params, start => $i, end => $end,
                                 static => scalar($before =~ /\bstatic\b[^;{}]*\b\Q$name\E\s*\(/s) };
                    $i = $end - 1;
                    next;
                }
            }
            $depth++;
        } elsif ($c eq '}') {
            $depth--;
        }
    }
    return \@fns;
}

sub param_names {
    my ($plist) = @_;
    my @names;
    my ($depth, $cur) = (0, '');
    for my $ch (split //, $plist) {
        $depth++ if $ch eq '(' || $ch eq '[';
        $depth-- if $ch eq ')' || $ch eq ']';
        if ($ch eq ',' && $depth == 0) { push @names, one_param($cur); $cur = ''; }
        else { $cur .= $ch; }
    }
    push @names, one_param($cur) if $cur =~ /\S/;
    return @names;
}

sub one_param {
    my ($p) = @_;
    return $1 if $p =~ /\(\s*\*\s*(\w+)\s*\)/;   # function pointer
    $p =~ s/\[[^\]]*\]//g;
    return $p =~ /(\w+)\s*$/ ? $1 : '';
}

sub fn_at {
    my ($file, $off) = @_;
    for my $f (@{ $file->{fns} }) {
        return $f if $off >= $f->{start} && $off < $f->{end};
    }
    return undef;
}

# Each call of NAME in a file: { off, open, args, end, fn }.
sub calls_of {
    my ($file, $name) = @_;
    my @out;
    my $skel = $file->{skel};
    while ($skel =~ /(?<![\w.>])\Q$name\E\s*\(/g) {
        my $off = $-[0];
        my $open = $+[0] - 1;
        # A definition or a declaration is not a call: there a type (a word or a '*')
        # comes right before the name.
        my $pre = substr($skel, 0, $off);
        if ($pre =~ /(\w+)\s*$/) {
            next unless $1 =~ /^(?:return|else|do|case|sizeof)$/;
        } elsif ($pre =~ /\*\s*$/ && $pre =~ /(?:\w|\*)\s*\*\s*$/ && $pre !~ /[=(,!&|?:]\s*\**\s*$/) {
            next;
        }
        my ($args, $end) = call_args($file, $open);
        push @out, { off => $off, open => $open, args => $args, end => $end,
                     fn => fn_at($file, $off) };
    }
    return @out;
}

# ---------------------------------------------------------- literal constants ---

my %LIT_MACRO;   # name => joined literal text
my %LIT_CONST;   # name => 1: const char arrays/pointers of a literal, embedded schemas
my %LIT_TABLE;   # name => 1: static const tables whose members are all literals
my %FN_NAMES;    # function names defined anywhere

# Joined text of a sequence of string literals and literal macros, or undef.
sub literal_text {
    my ($expr) = @_;
    my $s = $expr;
    $s =~ s/^\s+|\s+$//g;
    1 while $s =~ s/^\((.*)\)$/$1/s && balanced($1);
    return undef if $s eq '';
    my $out = '';
    while ($s =~ /\G\s*(?:"((?:[^"\\]|\\.)*)"|(\w+))\s*/gc) {
        if (defined $1) { $out .= $1; }
        elsif (exists $LIT_MACRO{$2}) { $out .= "{$2}"; }
        else { return undef; }
    }
    return undef if (pos($s) // 0) != length $s;
    return $out;
}

sub expand_macros {
    my ($t) = @_;
    for (1 .. 8) { last unless $t =~ s/\{(\w+)\}/exists $LIT_MACRO{$1} ? $LIT_MACRO{$1} : "{$1}"/ge; }
    return $t;
}

sub balanced {
    my ($s) = @_;
    my $d = 0;
    for my $c (split //, $s) { $d++ if $c eq '('; $d--, ($d < 0 and return 0) if $c eq ')'; }
    return $d == 0;
}

# Splits "a ? b : c" at top level; returns (a, b, c) or ().
sub ternary {
    my ($s) = @_;
    my ($depth, $q) = (0, -1);
    my @ch = split //, $s;
    my $in = '';
    for my $i (0 .. $#ch) {
        my $c = $ch[$i];
        if ($in) { if ($c eq '\\') { $i++; next; } $in = '' if $c eq $in; next; }
        if ($c eq '"' || $c eq "'") { $in = $c; next; }
        $depth++ if $c =~ /[(\[]/;
        $depth-- if $c =~ /[)\]]/;
        if ($depth == 0 && $c eq '?' && $q < 0) { $q = $i; }
        elsif ($depth == 0 && $c eq ':' && $q >= 0) {
            return (substr($s, 0, $q), substr($s, $q + 1, $i - $q - 1), substr($s, $i + 1));
        }
    }
    return ();
}

# Is the expression a constant: literals, literal constants, numbers, NULL, or a
# conditional choosing between such?
sub is_literal {
    my ($e) = @_;
    $e = norm($e);
    1 while $e =~ s/^\((.*)\)$/$1/s && balanced($1);
    $e =~ s/^\(\s*(?:const\s+)?(?:unsigned\s+)?\w+\s*\**\s*\)\s*//;   # a cast
    return 1 if defined literal_text($e);
    return 1 if $e =~ /^(?:-?\d[\w.]*|NULL|true|false)$/;
    return 1 if $e =~ /^(\w+)$/ && ($LIT_CONST{$1} || exists $LIT_MACRO{$1});
    return 1 if $e =~ /^(\w+)\s*\[[^\]]*\](?:\.\w+)?$/ && $LIT_TABLE{$1};
    if (my @t = ternary($e)) { return is_literal($t[1]) && is_literal($t[2]); }
    return 0;
}

sub collect_constants {
    my ($files) = @_;
    if (defined $repo_root && -r "$repo_root/CMakeLists.txt") {
        my $cm = read_file("$repo_root/CMakeLists.txt");
        $LIT_CONST{$1} = 1 while $cm =~ /-DNAME=(\w+)/g;   # cmake/embed.cmake: a file's text
    }
    for my $f (@$files) { $FN_NAMES{ $_->{name} } = 1 for @{ $f->{fns} }; }
    # Macros may build on each other: repeat until nothing new is found.
    my $changed = 1;
    while ($changed) {
        $changed = 0;
        for my $f (@$files) {
            my $code = $f->{code};
            $code =~ s/\\\n/ /g;
            while ($code =~ /^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+(.+)$/mg) {
                my ($name, $body) = ($1, $2);
                next if exists $LIT_MACRO{$name};
                my $t = literal_text($body);
                next unless defined $t;
                $LIT_MACRO{$name} = expand_macros($t);
                $changed = 1;
            }
        }
    }
    for my $f (@$files) {
        my $code = $f->{code};
        while ($code =~ /\bconst\s+char\s*(?:\*\s*const\s+)?(\w+)\s*(?:\[\s*\])?\s*=\s*([^;]+);/g) {
            $LIT_CONST{$1} = 1 if defined literal_text($2);
        }
        while ($code =~ /\bstatic\s+const\s+(?:struct\s*\{[^}]*\}|\w+)\s+(\w+)\s*(\[\s*\w*\s*\])?\s*=\s*\{/g) {
            my $name = $1;
            my $open = $+[0] - 1;
            my $end = match_close($f->{skel}, $open);
            my $init = substr($code, $open + 1, $end - $open - 2);
            $LIT_TABLE{$name} = 1 if table_is_literal($init);
        }
    }
}

# The members of a brace initialiser: literals, numbers, literal constants or the names
# of functions (code, not text).
sub table_is_literal {
    my ($init) = @_;
    my $s = $init;
    $s =~ s/"(?:[^"\\]|\\.)*"/ /g;
    $s =~ s/'(?:[^'\\]|\\.)*'/ /g;
    $s =~ s/\.\w+\s*=//g;   # designators
    for my $tok ($s =~ /([A-Za-z_]\w*)/g) {
        next if $LIT_MACRO{$tok} || $LIT_CONST{$tok} || $FN_NAMES{$tok};
        next if $tok =~ /^(?:NULL|true|false|sizeof)$/;
        return 0;
    }
    return 1;
}

# ------------------------------------------------------------- PostgreSQL ---

# Functions that take SQL: "name" (libpq, or a wrapper with external linkage) or
# "file::name" (a static wrapper) => { index of the SQL argument => where it was found }.
sub check_pq {
    my ($files) = @_;
    my %sql_fn = map { $_ => { $PQ_SQL_ARG{$_} => 'libpq' } } keys %PQ_SQL_ARG;
    my %seen;
    my $changed = 1;
    while ($changed) {
        $changed = 0;
        for my $f (@$files) {
            for my $key (sort keys %sql_fn) {
                my ($scope, $callee) = $key =~ /^(?:(.*)::)?(\w+)$/;
                next if defined $scope && $scope ne $f->{path};
                next if !defined $scope && exists $sql_fn{"$f->{path}::$callee"};
                for my $call (calls_of($f, $callee)) {
                    for my $idx (sort keys %{ $sql_fn{$key} }) {
                        my $arg = $call->{args}[$idx];
                        my $id = "$f->{path}:$call->{off}:$idx";
                        next if $seen{$id}++;
                        my $line = line_of($f, $call->{off});
                        unless ($arg) {
                            finding($f->{path}, $line, "$callee: cannot read its SQL argument");
                            next;
                        }
                        my $text = $arg->[0];
                        if (is_literal($text)) {
                            note("$f->{path}:$line: $callee(... $text ...) literal");
                            next;
                        }
                        my $fn = $call->{fn};
                        my @p = $fn ? @{ $fn->{params} } : ();
                        my ($pi) = grep { $p[$_] eq $text } 0 .. $#p;
                        if (defined $pi) {
                            # A wrapper: its callers now answer for the SQL.
                            unless ($fn->{static}) {
                                finding($f->{path}, $line,
                                        "$fn->{name} passes its parameter '$text' to $callee as SQL"
                                        . " and can be called from anywhere: make it static or"
                                        . " take literal SQL only");
                                next;
                            }
                            my $w = "$f->{path}::$fn->{name}";
                            unless ($sql_fn{$w}{$pi}) {
                                note("wrapper $w: argument $pi reaches $callee at $f->{path}:$line");
                                $sql_fn{$w}{$pi} = "$f->{path}:$line";
                                $changed = 1;
                            }
                            next;
                        }
                        finding($f->{path}, $line,
                                "$callee: SQL argument '$text' is neither a literal nor a named "
                                . "constant of literal SQL (pass values as parameters)");
                    }
                }
            }
        }
    }
    for my $f (@$files) {
        my $skel = $f->{skel};
        while ($skel =~ /\b(PQexec|PQsendQuery|PQexecParams|PQsendQueryParams|PQprepare|PQsendPrepare)\s*\(/g) {
            $n_pq++;
        }
        while ($skel =~ /$PQ_ESCAPE/g) {
            finding($f->{path}, line_of($f, $-[0]),
                    "PQescape*: SQL built by escaping values; pass them as parameters");
        }
    }
}

# ---------------------------------------------------------------- builders ---

# Conversions of a printf format: list of 'str' (copies text: %s %c %ls ...), 'num' or
# 'star' (an int taken by * width or precision).
sub conversions {
    my ($fmt) = @_;
    my @out;
    while ($fmt =~ /%(%|[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?(?:hh|h|ll|l|j|z|t|L)?([a-zA-Z]))/g) {
        next if $1 eq '%';
        push @out, 'star' if defined $2 && $2 eq '*';
        push @out, 'star' if defined $3 && $3 eq '*';
        push @out, $4 =~ /^[sc]$/ ? 'str' : 'num';
    }
    return @out;
}

# For one builder call: (destination, key text, [non-literal values copied in], writes SQL?)
sub builder_values {
    my ($name, $call) = @_;
    my ($idx, $printf) = @{ $BUILDERS{$name} };
    my @a = map { $_->[0] } @{ $call->{args} };
    my $dest = $a[0] // '';
    my $src = $a[$idx] // '';
    my @values;
    my ($key, $text);
    if ($printf) {
        my $lit = literal_text($src);
        if (!defined $lit) {
            return ($dest, $src, [$src], 0) if $name =~ /^v/;   # a forwarded va_list
            return ($dest, $src, [$src], 1);                    # a format from a variable
        }
        $key = $lit;
        $text = expand_macros($lit);
        my @conv = conversions(unescape($text));
        my $k = $idx + 1;
        for my $c (@conv) {
            my $v = $a[$k++];
            next unless defined $v;
            push @values, $v if $c eq 'str' && !is_literal($v);
        }
        if ($name =~ /^v/ && @conv) { @values = (); }
    } else {
        $key = $src;
        $text = literal_text($src) // '';
        $text = expand_macros($text);
        push @values, $src unless is_literal($src);
    }
    my $sql = unescape($text) =~ $SQL_WORDS || unescape($text) =~ $SQL_PHRASES
        || $dest =~ /(?:^|[^\w])&?(?:\w+(?:->|\.))*(?:sql|query|\w+_sql|sql_\w+)$/i;
    return ($dest, $key, \@values, $sql ? 1 : 0);
}

sub unescape {
    my ($s) = @_;
    $s =~ s/\\(["'\\])/$1/g;
    return $s;
}

sub check_builders {
    my ($files) = @_;
    for my $f (@$files) {
        my $is_ch = $f->{path} =~ $CH_FILE;
        my %used;
        for my $name (sort keys %BUILDERS) {
            for my $call (calls_of($f, $name)) {
                my ($dest, $key, $values, $sql) = builder_values($name, $call);
                my $line = line_of($f, $call->{off});
                $n_sql_builders++ if $sql;
                note("$f->{path}:$line: $name($dest, $key) writes SQL; copies: @$values") if $sql;
                if ($is_ch) {
                    next unless @$values;
                    $n_ch_sites++;
                    check_ch_site($f, $call, $name, $dest, $key, $values, $line, \%used);
                } elsif ($sql && @$values) {
                    finding($f->{path}, $line,
                            "$name builds SQL text from " . join(', ', map {"'$_'"} @$values)
                            . " (use parameters; in clickhouse.c list the site with its guard)");
                }
            }
        }
        next unless $is_ch;
        # What reaches the server as SQL or URL parameters enters through these arguments.
        for my $entry (@CH_SQL_ENTRIES) {
            my ($fn, $n) = @$entry;
            my @calls = calls_of($f, $fn);
            finding($f->{path}, 0, "$fn: no calls found: update \@CH_SQL_ENTRIES") unless @calls;
            my $why = @calls ? verify_guard($f, $calls[0], '', "sql-entry $fn $n") : undef;
            finding($f->{path}, 0, "argument $n of $fn: $why") if $why;
            note("$f->{path}: every argument $n of $fn is a literal, a local buffer or a checked buffer")
                unless $why;
        }
        for my $i (0 .. $#CH_SITES) {
            next if $used{$i};
            my $s = $CH_SITES[$i];
            finding($f->{path}, 0,
                    "allow-list entry $s->{fn}: $s->{call}($s->{dest}, "
                    . ($s->{fmt} // $s->{src}) . ") matches no call: update the list");
        }
    }
}

# ------------------------------------------------------------- clickhouse.c ---

sub check_ch_site {
    my ($f, $call, $name, $dest, $key, $values, $line, $used) = @_;
    my $fn = $call->{fn} ? $call->{fn}{name} : '';
    my ($idx) = grep {
        my $s = $CH_SITES[$_];
        $s->{fn} eq $fn && $s->{call} eq $name && $s->{dest} eq $dest
            && (defined $s->{fmt} ? $s->{fmt} eq unescape($key) : $s->{src} eq $key)
    } 0 .. $#CH_SITES;
    unless (defined $idx) {
        finding($f->{path}, $line,
                "$fn: $name($dest, ...) copies " . join(', ', map {"'$_'"} @$values)
                . " and is not in the allow-list of ClickHouse interpolation sites: check every"
                . " value with dm_clickhouse_safe_* before the call and list the site in"
                . " tests/security/sql_sites.pl");
        return;
    }
    $used->{$idx} = 1;
    my $site = $CH_SITES[$idx];
    for my $v (@$values) {
        my $guards = $site->{args}{$v};
        unless ($guards) {
            finding($f->{path}, $line, "$fn: '$v' is copied into $dest without a listed guard");
            next;
        }
        for my $g (@$guards) {
            my $why = verify_guard($f, $call, $v, $g);
            note("$f->{path}:$line: $fn: '$v' guarded by '$g'") unless $why;
            finding($f->{path}, $line, "$fn: guard '$g' of '$v' does not hold: $why") if $why;
        }
    }
}

sub fn_named {
    my ($f, $name) = @_;
    my ($fn) = grep { $_->{name} eq $name } @{ $f->{fns} };
    return $fn;
}

sub body_of {
    my ($f, $fn) = @_;
    return substr($f->{code}, $fn->{start}, $fn->{end} - $fn->{start});
}

# Undef when the guard holds, else the reason it does not.
sub verify_guard {
    my ($f, $call, $v, $g) = @_;
    my ($kind, @rest) = split ' ', $g;
    my $fn = $call->{fn};
    my $code = $f->{code};
    if ($kind eq 'not-sql') {
        # A destination handed in by the caller: no caller may hand in an SQL buffer.
        (my $dest = $call->{args}[0][0] // '') =~ s/^&//;
        my ($k) = grep { $fn->{params}[$_] eq $dest } 0 .. $#{ $fn->{params} };
        return defined $k ? callers_pass_no_sql_buffer($f, $fn, $k, 0) : undef;
    }
    if ($kind eq 'check') {
        my $check = $rest[0];
        my $before = substr($code, $fn->{start}, $call->{off} - $fn->{start});
        my $re = qr/if\s*\(\s*!\s*\Q$check\E\s*\(\s*\Q$v\E\s*\)\s*\)\s*return\b/;
        return "no 'if (!$check($v)) return' before the call in $fn->{name}"
            unless $before =~ $re;
        my $after = substr($before, $+[0]);
        return "'$v' is assigned between the check and the call"
            if $after =~ /(?<![=!<>])\b\Q$v\E\s*(?:[-+*\/|&]?=)(?!=)/;
        return undef;
    }
    if ($kind eq 'db') {
        my $inst = fn_named($f, 'instance') or return "no function instance()";
        my $body = body_of($f, $inst);
        return "instance() does not refuse a database name that fails dm_clickhouse_safe_ident"
            unless $body =~ /!\s*dm_clickhouse_safe_ident\s*\(\s*dm_cfg_str\s*\(\s*cfg\s*,\s*"database"/;
        return written_only_in($f, 'ch->db', 'instance');
    }
    if ($kind eq 'written-only-in') {
        return written_only_in($f, $v, $rest[0]);
    }
    if ($kind eq 'literal-arg' || $kind eq 'literal-arg-or-local' || $kind eq 'sql-entry') {
        my ($callee, $n) = @rest;
        for my $c (calls_of($f, $callee)) {
            my $a = $c->{args}[$n] or return "a call of $callee has no argument $n";
            my $t = $a->[0];
            next if is_literal($t);
            # the two buffers whose every write is a site checked above
            next if $kind eq 'sql-entry' && $t =~ /^ch->(?:sql|body)\.data$/;
            if ($kind ne 'literal-arg' && $c->{fn}) {
                my $caller = $c->{fn};
                my $body = body_of($f, $caller);
                next if $t =~ /^\w+$/ && $body =~ /\bchar\s+\Q$t\E\s*\[/;   # a local buffer
                my @p = @{ $caller->{params} };
                my ($pi) = grep { $p[$_] eq $t } 0 .. $#p;
                if (defined $pi) {   # forwarded: the caller's callers answer for it
                    my $why = verify_guard($f, $call, $v, "$kind $caller->{name} $pi");
                    return $why if $why;
                    next;
                }
            }
            return "$callee is called with '$t' as argument $n at line " . line_of($f, $c->{off});
        }
        return undef;
    }
    if ($kind eq 'returns-literals') {
        my $target = fn_named($f, $rest[0]) or return "no function $rest[0]";
        my $body = body_of($f, $target);
        my $n = 0;
        while ($body =~ /\breturn\b\s*([^;]*);/g) {
            $n++;
            return "$rest[0] returns '$1'" unless is_literal($1);
        }
        return $n ? undef : "$rest[0] has no return";
    }
    if ($kind eq 'const-type') {
        my $type = $rest[0];
        my $uses = 0;
        while ($code =~ /(?<![\w*])\Q$type\E\s+(\**)\s*(\w+)/g) {
            next if $1 ne '';   # a pointer: points at one of the objects checked here
            my ($name, $at) = ($2, $-[0]);
            my $pre = substr($code, 0, $at);
            return "$type $name is not static const" unless $pre =~ /\bstatic\s+const\s+$/;
            return "$type $name has members that are not literals" unless $LIT_TABLE{$name};
            $uses++;
        }
        return $uses ? undef : "no $type object found";
    }
    if ($kind eq 'escaped') {
        my $before = substr($code, $fn->{start}, $call->{off} - $fn->{start});
        return "'$v' is not curl_easy_escape(..., $rest[0], ...) of a local"
            unless $before =~ /\b\Q$v\E\s*=\s*curl_easy_escape\s*\(\s*[^,]+,\s*\Q$rest[0]\E\s*,/
                && $before =~ /\bchar\s+\Q$rest[0]\E\s*\[/;
        return undef;
    }
    if ($kind eq 'schema-text') {
        my $callee = $fn->{name};
        my @calls = calls_of($f, $callee);
        return "$callee is never called" unless @calls;
        for my $c (@calls) {
            my $a = $c->{args}[0][0] // '';
            return "$callee is called with '$a'" unless $a =~ /^&(\w+)$/;
            my $var = $1;
            my $body = body_of($f, $c->{fn});
            return "'$var' is not the embedded schema"
                unless $body =~ /\b\Q$var\E\s*=\s*(\w+)\s*;/ && $LIT_CONST{$1};
my $writes = () = $body =~ /(?<![=!<>])\b\Q$var\E\s*=(?!=)/g;
            return "'$var' is assigned more than once" if $writes > 1;
        }
        return undef;
    }
    return "unknown guard kind '$kind'";
}

my $SQL_BUFFER = qr/^&?(?:ch->(?:sql|target)(?:\.data)?|sql|params)$/;

sub callers_pass_no_sql_buffer {
    my ($f, $fn, $k, $depth) = @_;
    return "calls nested too deep to follow from $fn->{name}" if $depth > 8;
    for my $c (calls_of($f, $fn->{name})) {
        my $a = $c->{args}[$k][0] // '';
        return "$fn->{name} is handed the SQL buffer '$a' at line " . line_of($f, $c->{off})
            if $a =~ $SQL_BUFFER;
        (my $bare = $a) =~ s/^&//;
        my $caller = $c->{fn} or next;
        my ($j) = grep { $caller->{params}[$_] eq $bare } 0 .. $#{ $caller->{params} };
        next unless defined $j;
        my $why = callers_pass_no_sql_buffer($f, $caller, $j, $depth + 1);
        return $why if $why;
    }
    return undef;
}

sub written_only_in {
    my ($f, $lvalue, $owner) = @_;
    my $code = $f->{code};
    for my $name (sort keys %BUILDERS) {
        for my $c (calls_of($f, $name)) {
            my $d = $c->{args}[0][0] // '';
            $d =~ s/^&//;
            next unless $d eq $lvalue;
            my $in = $c->{fn} ? $c->{fn}{name} : '(file scope)';
            return "$lvalue is also written in $in (line " . line_of($f, $c->{off}) . ")"
                if $in ne $owner;
        }
    }
    while ($code =~ /\Q$lvalue\E\s*(?:\[[^\]]*\])?\s*=(?!=)/g) {
        my $fn = fn_at($f, $-[0]);
        my $in = $fn ? $fn->{name} : '(file scope)';
        return "$lvalue is assigned in $in" if $in ne $owner;
    }
    return undef;
}

# ------------------------------------------------------------------- main ---

sub list_sources {
    my ($dir) = @_;
    my @out;
    opendir my $dh, $dir or die "cannot read $dir: $!\n";
    for my $e (sort readdir $dh) {
        next if $e =~ /^\./;
        my $p = "$dir/$e";
        if (-d $p) { push @out, list_sources($p); }
        elsif ($e =~ /\.[ch]$/) { push @out, $p; }
    }
    closedir $dh;
    return @out;
}

my @files;
for my $path (list_sources($src_dir)) {
    my $text = read_file($path);
    my ($code, $skel) = strip($text);
    my @starts = (0);
    push @starts, $-[0] + 1 while $text =~ /\n/g;
    (my $rel = $path) =~ s{^\Q$src_dir\E/?}{};
    my $f = { path => $rel, code => $code, skel => $skel, lines => \@starts };
    $f->{fns} = functions($f);
    push @files, $f;
}

collect_constants(\@files);
check_pq(\@files);
check_builders(\@files);

if (@findings) {
    print "FAIL $_\n" for @findings;
    printf "check_sql: %d finding(s) in %d files\n", scalar @findings, scalar @files;
    exit 1;
}
printf "check_sql: %d files, %d libpq SQL calls, %d SQL-writing calls, %d ClickHouse sites"
    . " with guards: clean\n", scalar @files, $n_pq, $n_sql_builders, $n_ch_sites;
exit 0;
