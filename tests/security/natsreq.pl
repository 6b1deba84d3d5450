#!/usr/bin/perl
# A minimal NATS client for what dmctl cannot do in tests/security/secrets.sh:
#
#   natsreq.pl request URL SUBJECT FILE [CONTENT-TYPE]
#       one request/reply with FILE's bytes as the body ("-": stdin). dmctl takes the
#       body as one argument, and Linux caps an argument at 128 KiB, so a body over the
#       1 MiB limit can only come from a file. Prints "Status: N" (200 when absent),
#       then the reply body.
#   natsreq.pl stream-dump URL STREAM
#       every message of a JetStream stream, headers and data, one block each (the
#       dead letters carry error texts in their headers).
#   natsreq.pl try URL pub|sub|req SUBJECT [FILE]
#       whether the server lets the URL's user publish, subscribe or request there:
#       "denied" on a Permissions Violation, else "allowed" (or the reply, for req).
#   natsreq.pl to-msgpack <JSON
#       the JSON document as msgpack (a forged cache update, for instance).
#   natsreq.pl reply-summary FILE
#       "STATUS CODE FIELD" of a reply saved as above ("-" for a success's code and
#       field, "null" for a null field), whether its body is JSON or msgpack.
#
# Speaks the text protocol over a plain socket (perl-base only): INFO, CONNECT, PING,
# SUB, HPUB, MSG/HMSG. Exit 1 on any protocol error or a timeout.
use strict;
use warnings;
use feature 'state';
use IO::Socket::INET;
use MIME::Base64 qw(decode_base64);
use JSON::PP;

my $TIMEOUT_S = 10;

sub fail { print STDERR "natsreq: $_[0]\n"; exit 1; }

sub connect_nats {
    my ($url) = @_;
    my ($user, $pass, $host, $port) = $url =~ m{^nats://(?:([^:@/]*):([^@/]*)@)?([^:/]+):(\d+)}
        or fail("bad url $url");
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
                                  Timeout => $TIMEOUT_S) or fail("cannot connect to $host:$port");
    binmode $s;
    my $info = read_line($s);
    fail("no INFO from server") unless $info =~ /^INFO /;
    my $auth = defined $user ? JSON::PP->new->encode({user => $user, pass => $pass}) : '{}';
    $auth =~ s/^\{//;
    $auth =~ s/\}$//;
    print $s qq(CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,)
        . qq("protocol":1,"name":"natsreq") . ($auth ne '' ? ",$auth" : '') . qq(}\r\nPING\r\n);
    while (1) {
        my $l = read_line($s);
        last if $l eq 'PONG';
        fail("server refused the connection: $l") if $l =~ /^-ERR/;
    }
    return $s;
}

sub read_line {
    my ($s) = @_;
    local $SIG{ALRM} = sub { fail("timeout after ${TIMEOUT_S}s") };
    alarm $TIMEOUT_S;
    my $l = <$s>;
    alarm 0;
    fail("connection closed") unless defined $l;
    $l =~ s/\r?\n$//;
    return $l;
}

sub read_bytes {
    my ($s, $n) = @_;
    my $buf = '';
    local $SIG{ALRM} = sub { fail("timeout after ${TIMEOUT_S}s") };
    alarm $TIMEOUT_S;
    while (length $buf < $n) {
        my $got = read($s, $buf, $n - length $buf, length $buf);
        fail("connection closed") unless $got;
    }
    alarm 0;
    return $buf;
}

# Sends body to subject with the given headers; returns (headers hash, status, body).
sub request {
    my ($s, $subject, $body, %hdr) = @_;
    state $sid = 0;
    $sid++;
    my $inbox = '_INBOX.natsreq' . int(rand(1e9)) . ".$sid";
    my $h = "NATS/1.0\r\n" . join('', map {"$_: $hdr{$_}\r\n"} sort keys %hdr) . "\r\n";
    print $s "SUB $inbox $sid\r\nUNSUB $sid 1\r\n";
    print $s sprintf("HPUB %s %s %d %d\r\n", $subject, $inbox, length $h, length($h) + length $body);
    print $s $h, $body, "\r\n";
    while (1) {
        my $l = read_line($s);
        if ($l eq 'PING') { print $s "PONG\r\n"; next; }
        fail("server error: $l") if $l =~ /^-ERR/;
        if ($l =~ /^MSG \S+ \S+ (?:\S+ )?(\d+)$/) {
            my $data = read_bytes($s, $1 + 2);
            return ({}, 200, substr($data, 0, $1));
        }
        if ($l =~ /^HMSG \S+ \S+ (?:\S+ )?(\d+) (\d+)$/) {
            my ($hl, $tl) = ($1, $2);
            my $data = read_bytes($s, $tl + 2);
            my ($head, $payload) = (substr($data, 0, $hl), substr($data, $hl, $tl - $hl));
            my ($first, @lines) = split /\r\n/, $head;
            my %rh;
            for (@lines) { $rh{$1} = $2 if /^([^:]+):\s*(.*)$/; }
            my $status = $first =~ /^NATS\/1\.0 (\d+)/ ? $1 : ($rh{Status} // 200);
            return (\%rh, $status, $payload);
        }
    }
}

my $cmd = shift @ARGV // '';
if ($cmd eq 'request') {
    my ($url, $subject, $file, $ctype) = @ARGV;
    fail("usage: natsreq.pl request URL SUBJECT FILE [CONTENT-TYPE]") unless defined $file;
    my $body = do {
        local $/;
        my $fh;
        if ($file eq '-') { $fh = \*STDIN; } else { open $fh, '<', $file or fail("cannot read $file"); }
        binmode $fh;
        <$fh>;
    } // '';
    my $s = connect_nats($url);
    my ($h, $status, $reply) = request($s, $subject, $body,
                                       'Content-Type' => $ctype // 'application/json');
    fail("no responders on $subject") if $status == 503 && $reply eq '';
    print "Status: $status\n$reply\n";
    exit 0;
}
if ($cmd eq 'stream-dump') {
    my ($url, $stream) = @ARGV;
    fail("usage: natsreq.pl stream-dump URL STREAM") unless defined $stream;
    my $s = connect_nats($url);
    my (undef, undef, $info) = request($s, "\$JS.API.STREAM.INFO.$stream", '');
    my $st = decode_json($info);
    fail("stream $stream: $st->{error}{description}") if $st->{error};
    my ($first, $last) = ($st->{state}{first_seq}, $st->{state}{last_seq});
    my $n = 0;
    for my $seq ($first .. $last) {
        last if $seq == 0;
        my (undef, undef, $raw) = request($s, "\$JS.API.STREAM.MSG.GET.$stream",
                                          encode_json({ seq => $seq + 0 }));
        my $m = decode_json($raw);
        next if $m->{error};
        my $msg = $m->{message};
        print "--- $stream seq $seq subject $msg->{subject}\n";
        print decode_base64($msg->{hdrs}) if $msg->{hdrs};
        print decode_base64($msg->{data} // ''), "\n";
        $n++;
    }
    print STDERR "natsreq: $n message(s) in $stream\n";
    exit 0;
}
if ($cmd eq 'reply-summary') {
    my ($file) = @ARGV;
    fail("usage: natsreq.pl reply-summary FILE") unless defined $file;
    open my $fh, '<', $file or fail("cannot read $file");
    binmode $fh;
    my $t = do { local $/; <$fh> } // '';
    my $status = $t =~ s/^Status: (\S+)\n// ? $1 : '?';
    $t =~ s/\n\z//;
    my $j = eval { JSON::PP->new->allow_nonref->decode($t) };
    if (!defined $j && length $t) {
        my $i = 0;
        $j = eval { msgpack(\$t, \$i) };
    }
    my $e = ref $j eq 'HASH' ? $j->{error} : undef;
    printf "%s %s %s\n", $status, $e ? $e->{code} // '?' : '-',
        $e ? (defined $e->{field} ? $e->{field} : 'null') : '-';
    exit 0;
}
if ($cmd eq 'try') {
    # try URL pub|sub|req SUBJECT [FILE]: whether the server lets this user do it. Prints
    # "denied" (a Permissions Violation came back), "allowed", or for req the reply's
    # "Status: N" line and body; a user the server refuses fails at connect.
    my ($url, $what, $subject, $file) = @ARGV;
    fail("usage: natsreq.pl try URL pub|sub|req SUBJECT [FILE]") unless defined $subject;
    my $body = '';
    if (defined $file) {
        open my $fh, '<', $file or fail("cannot read $file");
        binmode $fh;
        $body = do { local $/; <$fh> } // '';
    }
    my $s = connect_nats($url);
    if ($what eq 'req') {
        my $inbox = '_INBOX.natsreq' . int(rand(1e9));
        print $s "SUB $inbox 1\r\nPUB $subject $inbox " . length($body) . "\r\n$body\r\n";
        local $SIG{ALRM} = sub { print "no reply\n"; exit 0 };
        alarm 3;
        while (1) {
            my $l = <$s>;
            exit 0 unless defined $l;
            $l =~ s/\r?\n$//;
            if ($l =~ /^-ERR .*Permissions Violation/i) { alarm 0; print "denied\n"; exit 0; }
            if ($l =~ /^MSG \S+ \S+ (?:\S+ )?(\d+)$/) {
                alarm 0;
                my $d = read_bytes($s, $1 + 2);
                print "Status: 200\n", substr($d, 0, $1), "\n";
                exit 0;
            }
            if ($l =~ /^HMSG \S+ \S+ (?:\S+ )?(\d+) (\d+)$/) {
                alarm 0;
                my $d = read_bytes($s, $2 + 2);
                my $st = substr($d, 0, $1) =~ /^NATS\/1\.0 (\d+)/ ? $1 : 200;
                print "Status: $st\n", substr($d, $1, $2 - $1), "\n";
                exit 0;
            }
        }
    }
    if ($what eq 'pub') {
        print $s "PUB $subject " . length($body) . "\r\n$body\r\nPING\r\n";
    } elsif ($what eq 'sub') {
        print $s "SUB $subject 1\r\nPING\r\n";
    } else {
        fail("try: pub, sub or req");
    }
    # The server answers in order: a violation comes before the PONG.
    while (1) {
        my $l = read_line($s);
        if ($l =~ /^-ERR .*Permissions Violation/i) { print "denied\n"; exit 0; }
        if ($l eq 'PONG') { print "allowed\n"; exit 0; }
    }
}
if ($cmd eq 'to-msgpack') {
    # to-msgpack: JSON on stdin, the same document as msgpack on stdout (numbers with a
    # fraction as float64, others as integers).
    my $j = JSON::PP->new->decode(do { local $/; <STDIN> });
    binmode STDOUT;
    print to_msgpack($j);
    exit 0;
}
fail("usage: natsreq.pl request|stream-dump|reply-summary|try|to-msgpack ...");

sub to_msgpack {
    my ($v) = @_;
    my $str = sub { my $b = shift; utf8::encode($b);
                    (length $b < 32 ? chr(0xa0 | length $b) : "\xd9" . chr(length $b)) . $b };
    if (ref $v eq 'HASH') {
        my @k = sort keys %$v;
        return chr(0x80 | @k) . join('', map { $str->($_) . to_msgpack($v->{$_}) } @k);
    }
    return chr(0x90 | @$v) . join('', map { to_msgpack($_) } @$v) if ref $v eq 'ARRAY';
    return "\xc0" unless defined $v;
    return $v ? "\xc3" : "\xc2" if JSON::PP::is_bool($v);
    if (!ref $v && $v =~ /^-?\d+$/) {
        return $v >= 0 ? "\xcf" . pack('Q>', $v) : "\xd3" . pack('q>', $v);
    }
    return "\xcb" . pack('d>', $v) if !ref $v && $v =~ /^-?[\d.eE+-]+$/;
    return $str->($v);
}

# The msgpack the worker writes (maps, arrays, strings, numbers, booleans, nil).
sub msgpack {
    my ($b, $i) = @_;
    my $take = sub { my $n = shift; die "short\n" if $$i + $n > length $$b;
                     my $v = substr($$b, $$i, $n); $$i += $n; $v };
    my $c = ord $take->(1);
    my $map = sub { my $n = shift; my %h; for (1 .. $n) { my $k = msgpack($b, $i); $h{$k} = msgpack($b, $i) } \%h };
    my $arr = sub { my $n = shift; [map { msgpack($b, $i) } 1 .. $n] };
    return $c if $c <= 0x7f;
    return $c - 256 if $c >= 0xe0;
    return $map->($c & 0x0f) if ($c & 0xf0) == 0x80;
    return $arr->($c & 0x0f) if ($c & 0xf0) == 0x90;
    return $take->($c & 0x1f) if ($c & 0xe0) == 0xa0;
    return undef if $c == 0xc0;
    return 0 if $c == 0xc2;
    return 1 if $c == 0xc3;
    my %len = (0xd9 => 'C', 0xda => 'n', 0xdb => 'N');
    return $take->(unpack $len{$c}, $take->($c == 0xd9 ? 1 : $c == 0xda ? 2 : 4)) if $len{$c};
    return unpack('d>', $take->(8)) if $c == 0xcb;
    return unpack('f>', $take->(4)) if $c == 0xca;
    my %uint = (0xcc => ['C', 1], 0xcd => ['n', 2], 0xce => ['N', 4], 0xcf => ['Q>', 8],
                0xd0 => ['c', 1], 0xd1 => ['s>', 2], 0xd2 => ['l>', 4], 0xd3 => ['q>', 8]);
    return unpack($uint{$c}[0], $take->($uint{$c}[1])) if $uint{$c};
    return $arr->(unpack 'n', $take->(2)) if $c == 0xdc;
    return $arr->(unpack 'N', $take->(4)) if $c == 0xdd;
    return $map->(unpack 'n', $take->(2)) if $c == 0xde;
    return $map->(unpack 'N', $take->(4)) if $c == 0xdf;
    die sprintf("msgpack type 0x%02x\n", $c);
}
