#!/usr/bin/env bash
# Local stack for dm-worker: NATS (JetStream), PostgreSQL 15, Redis, ClickHouse, workers.
#
# Usage: deploy/stack.sh COMMAND [ARG]
#   start                  start nats, postgres, redis, clickhouse (idempotent)
#   stop                   stop workers, nats, redis, clickhouse, postgres (idempotent)
#   status                 one line per service, then the workers with their status page URLs
#   env                    print export lines: eval "$(deploy/stack.sh env)"
#   workers N              (re)start N dm-worker processes w1..wN
#   stop-workers           stop all workers of this stack
#   start-worker wK        start (or restart after a crash) one worker, keep the others;
#                          it keeps the HTTP port it had
#   start-service SERVICE  SERVICE: nats | postgres | redis | clickhouse
#   stop-service SERVICE
#   restart SERVICE
#   clean                  stop everything and delete all stack data
#   cluster-start          start (or complete) a three-node NATS cluster n1..n3 with
#                          JetStream, for failover tests; independent of 'nats'
#   cluster-stop           stop the cluster nodes
#   cluster-kill nK        SIGKILL one cluster node (restart it with cluster-start)
#   cluster-urls [ROLE]    print the cluster's client URLs for ROLE (operator, worker,
#                          collector, service; default operator), comma-separated
#
# Configuration (environment, with defaults):
#   DM_STACK_DIR      <repo>/.stack       state, logs, pid files
#   DM_NATS_PORT      14222
#   DM_NATS_MON_PORT  18222
#   DM_PG_PORT        15432               user dm, database dm
#   DM_PG_PASSWORD    (generated)         set to choose PostgreSQL's password yourself
#   DM_REDIS_PORT     16379
#   DM_CH_HTTP_PORT   18123               ClickHouse HTTP (what workers use)
#   DM_CH_TCP_PORT    19000               ClickHouse native (clickhouse-client)
#   DM_BUILD_DIR      <repo>/build        where the dm-worker binary is
#   DM_WORKER_ARGS    extra arguments for every worker (split on whitespace)
#   DM_HTTP_PORT      19460               worker wK serves its status page (/), /status.json,
#                                         /metrics, /healthz, /readyz on 127.0.0.1:DM_HTTP_PORT+K;
#                                         'off' (or 0): no HTTP. The port is recorded in
#                                         workers/wK.http, so start-worker wK reuses it.
#   DM_STRATEGY       <repo>/strategy/strategy.json   the strategy file workers watch
#   DM_WORKER_READY_TIMEOUT  10           seconds to wait for "ready" per worker
#   DM_CONFIG_DIR     <repo>/deploy/config   the database configs workers read
#   DM_NATS_CLUSTER_PORT       14231      cluster node K listens on PORT+K-1 (clients),
#   DM_NATS_CLUSTER_ROUTE_PORT 16231      ROUTE_PORT+K-1 (routes between the nodes)
#   DM_NATS_CLUSTER_MON_PORT   18231      and MON_PORT+K-1 (monitoring)
#
# Credentials: NATS requires a user; four roles with subject permissions (operator:
# everything; worker: what dm-worker needs; collector: publish market.>; service: request
# dm.v1.> and $SRV.>). Their passwords, Redis's requirepass, the ClickHouse user dm's and
# (unless DM_PG_PASSWORD is set) PostgreSQL's are generated once per stack from URL-safe
# characters into $DM_STACK_DIR/secrets.env (mode 0600); 'env' exports them as URLs and
# variables, never printing them elsewhere.
#   DM_NATS_TLS=1     the stack's first start creates a CA and a server certificate
#                     (openssl, $DM_STACK_DIR/tls) and serves tls:// URLs; 'env' exports
#                     the CA file as DM_NATS_CA. Plain connections on loopback otherwise.
#
# PostgreSQL must run as the 'postgres' user, which cannot enter a checkout
# under /root; its data and socket dirs therefore live in
# /var/tmp/dm-stack-<hash of DM_STACK_DIR>/ and are symlinked into
# $DM_STACK_DIR as pg/ and pgsock/.
#
# ClickHouse runs as the invoking user from a config file generated into
# $DM_STACK_DIR/clickhouse/ (data, logs and config all live there).
set -euo pipefail

# ---------------------------------------------------------------- config ---

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(dirname "$SCRIPT_DIR")

DM_STACK_DIR=$(realpath -m -- "${DM_STACK_DIR:-$REPO_ROOT/.stack}")
DM_BUILD_DIR=$(realpath -m -- "${DM_BUILD_DIR:-$REPO_ROOT/build}")
DM_NATS_PORT=${DM_NATS_PORT:-14222}
DM_NATS_MON_PORT=${DM_NATS_MON_PORT:-18222}
DM_PG_PORT=${DM_PG_PORT:-15432}
DM_PG_PASSWORD=${DM_PG_PASSWORD:-}
DM_REDIS_PORT=${DM_REDIS_PORT:-16379}
DM_CH_HTTP_PORT=${DM_CH_HTTP_PORT:-18123}
DM_CH_TCP_PORT=${DM_CH_TCP_PORT:-19000}
DM_WORKER_ARGS=${DM_WORKER_ARGS:-}
DM_HTTP_PORT=${DM_HTTP_PORT:-19460}
DM_STRATEGY=$(realpath -m -- "${DM_STRATEGY:-$REPO_ROOT/strategy/strategy.json}")
DM_WORKER_READY_TIMEOUT=${DM_WORKER_READY_TIMEOUT:-10}
DM_CONFIG_DIR=$(realpath -m -- "${DM_CONFIG_DIR:-$REPO_ROOT/deploy/config}")
DM_NATS_CLUSTER_PORT=${DM_NATS_CLUSTER_PORT:-14231}
DM_NATS_CLUSTER_ROUTE_PORT=${DM_NATS_CLUSTER_ROUTE_PORT:-16231}
DM_NATS_CLUSTER_MON_PORT=${DM_NATS_CLUSTER_MON_PORT:-18231}

PG_BIN=/usr/lib/postgresql/15/bin
PG_USER=postgres
PG_HASH=$(printf '%s' "$DM_STACK_DIR" | sha256sum | cut -c1-12)
PG_BASE=/var/tmp/dm-stack-$PG_HASH
PG_DATA=$PG_BASE/pg
PG_SOCK=$PG_BASE/sock
PG_LOG=$PG_BASE/postgres.log

NATS_DIR=$DM_STACK_DIR/nats
NATS_CONF=$NATS_DIR/nats.conf
NATS_PID=$NATS_DIR/nats.pid
NATS_LOG=$NATS_DIR/nats.log
NATS_TMPL=$SCRIPT_DIR/nats.conf.tmpl
CLUSTER_DIR=$DM_STACK_DIR/nats-cluster
CLUSTER_NODES=3

REDIS_DIR=$DM_STACK_DIR/redis
REDIS_PID=$REDIS_DIR/redis.pid
REDIS_LOG=$REDIS_DIR/redis.log

CH_DIR=$DM_STACK_DIR/clickhouse
CH_CONF=$CH_DIR/config.xml
CH_PID=$CH_DIR/clickhouse.pid
CH_LOG_DIR=$CH_DIR/log

WORKERS_DIR=$DM_STACK_DIR/workers
WORKER_BIN=$DM_BUILD_DIR/dm-worker

# ------------------------------------------------------------- messages ---

if [[ -t 1 ]]; then
    C_OK=$'\e[32m' C_BAD=$'\e[31m' C_OFF=$'\e[0m'
else
    C_OK='' C_BAD='' C_OFF=''
fi

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# Print the last lines of a log file to stderr (for failures).
log_tail() {
    local file=$1 n=${2:-30}
    if [[ -r $file ]]; then
        printf -- '----- last %d lines of %s -----\n' "$n" "$file" >&2
        tail -n "$n" -- "$file" >&2 || true
        printf -- '-----\n' >&2
    fi
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# -------------------------------------------------------------- helpers ---

# Does process $1 exist and is it not a zombie? (Orphans are reparented to
# PID 1, which in some containers never reaps them.)
proc_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z ]]
}

# Is pid $1 alive and is its executable name $2 (from /proc/PID/comm)?
pid_alive() {
    local pid=$1 comm=${2:-}
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    proc_running "$pid" || return 1
    [[ -z $comm ]] && return 0
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# Command line of pid $1, arguments separated (and followed) by one space.
proc_cmdline() {
    tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true
}

# First line of a pid file, or nothing.
read_pid() {
    local f=$1 pid=''
    if [[ -r $f ]]; then
        read -r pid <"$f" 2>/dev/null || true # nats writes no newline
    fi
    printf '%s' "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

require_port_free() {
    local port=$1 what=$2
    if port_in_use "$port"; then
        die "$what: port $port on 127.0.0.1 is already in use by another process (set a different port via the environment)"
    fi
}

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 ||
            die "'$c' not found; run deploy/install-deps.sh"
    done
}

# Wait up to $1 seconds (0.2 s steps) for command "${@:2}" to succeed.
wait_for() {
    local timeout=$1; shift
    local i steps=$((timeout * 5))
    for ((i = 0; i < steps; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    "$@"
}

# Send SIGTERM to pid $1, wait up to $2 s, then SIGKILL.
term_wait_kill() {
    local pid=$1 timeout=${2:-15} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        proc_running "$pid" || return 0
        sleep 0.1
    done
    log "pid $pid did not exit after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.1
}

# Run a command as the postgres user, from a directory it can enter.
as_pg() {
    (cd / && runuser -u "$PG_USER" -- "$@")
}

env_lines() {
    local name
    for name in DM_NATS_URL DM_NATS_WORKER_URL DM_NATS_COLLECTOR_URL DM_NATS_SERVICE_URL \
        DM_NATS_MON_URL DM_PG_HOST DM_PG_PORT DM_PG_PASSWORD DM_REDIS_HOST DM_REDIS_PORT \
        DM_REDIS_PASSWORD DM_CH_URL DM_CH_USER DM_CH_PASSWORD DM_CH_HTTP_PORT DM_CH_TCP_PORT \
        DM_STACK_DIR; do
        printf 'export %s=%q\n' "$name" "${!name}"
    done
    if tls_on; then
        printf 'export DM_NATS_CA=%q\n' "$TLS_DIR/ca.pem"
    else
        printf 'unset DM_NATS_CA\n'
    fi
}

DM_NATS_MON_URL=http://127.0.0.1:$DM_NATS_MON_PORT
DM_PG_HOST=127.0.0.1
DM_REDIS_HOST=127.0.0.1
DM_CH_URL=http://127.0.0.1:$DM_CH_HTTP_PORT

# ---------------------------------------------------------------- secrets ---

SECRETS_FILE=$DM_STACK_DIR/secrets.env
TLS_DIR=$DM_STACK_DIR/tls
ROLES=(operator worker collector service)

# 24 characters of [A-Za-z0-9_-]: safe inside URLs and config files.
new_secret() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

# Generated once per stack; readable by root only. Values never reach a log line.
secrets_load() {
    if [[ ! -s $SECRETS_FILE ]]; then
        mkdir -p -- "$DM_STACK_DIR"
        local role
        (
            umask 077
            {
                for role in "${ROLES[@]}"; do
                    printf 'DM_SECRET_NATS_%s=%s\n' "${role^^}" "$(new_secret)"
                done
                printf 'DM_SECRET_REDIS=%s\nDM_SECRET_CH=%s\nDM_SECRET_PG=%s\n' \
                    "$(new_secret)" "$(new_secret)" "$(new_secret)"
            } >"$SECRETS_FILE.tmp"
        )
        mv -f -- "$SECRETS_FILE.tmp" "$SECRETS_FILE"
    fi
    chmod 0600 "$SECRETS_FILE"
    # shellcheck disable=SC1090
    source "$SECRETS_FILE"
    DM_PG_PASSWORD=${DM_PG_PASSWORD:-$DM_SECRET_PG}
    DM_REDIS_PASSWORD=$DM_SECRET_REDIS
    DM_CH_USER=dm
    DM_CH_PASSWORD=$DM_SECRET_CH
    # redis-cli reads it from the environment, so it never shows in a process list.
    export REDISCLI_AUTH=$DM_REDIS_PASSWORD
    set_urls
}

# TLS is chosen when NATS is first started for the stack (DM_NATS_TLS=1) and remembered.
tls_on() {
    [[ ${DM_NATS_TLS:-} == 1 || -e $TLS_DIR/on ]]
}

tls_make() {
    if [[ -s $TLS_DIR/server.pem && -s $TLS_DIR/ca.pem ]]; then
        touch "$TLS_DIR/on"
        return 0
    fi
    require_cmd openssl
    mkdir -p -- "$TLS_DIR"
    chmod 0700 "$TLS_DIR"
    log "tls: creating a local CA and a server certificate for 127.0.0.1 in $TLS_DIR"
    (
        cd "$TLS_DIR" && umask 077 &&
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
                -subj "/CN=dm local stack CA" &&
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
                -subj "/CN=127.0.0.1" &&
            printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
                'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -out server.pem -days 825 -extfile server.ext
    ) >"$TLS_DIR/openssl.log" 2>&1 || {
        log_tail "$TLS_DIR/openssl.log"
        die "tls: openssl failed"
    }
    chmod 0755 "$TLS_DIR"
    chmod 0644 "$TLS_DIR/ca.pem"
    touch "$TLS_DIR/on"
}

nats_scheme() { if tls_on; then printf tls; else printf nats; fi; }

# role_url ROLE PORT: the role's client URL.
role_url() {
    local var=DM_SECRET_NATS_${1^^}
    printf '%s://%s:%s@127.0.0.1:%s' "$(nats_scheme)" "$1" "${!var}" "$2"
}

set_urls() {
    DM_NATS_URL=$(role_url operator "$DM_NATS_PORT")
    DM_NATS_WORKER_URL=$(role_url worker "$DM_NATS_PORT")
    DM_NATS_COLLECTOR_URL=$(role_url collector "$DM_NATS_PORT")
    DM_NATS_SERVICE_URL=$(role_url service "$DM_NATS_PORT")
}

# The authorization block of every NATS server of the stack. A role may publish and
# subscribe only where it must. Requesters use the default _INBOX. prefix, and workers
# answer there: allow_responses would do it too, but nats-server keeps a reply permission
# for every message it delivers to such a client, JetStream's included, and with
# thousands of unacked messages in flight pruning that table ate both cores and stalled
# the consumers.
nats_auth_conf() {
    cat <<EOF
authorization {
    users = [
        { user: "operator", password: "$DM_SECRET_NATS_OPERATOR" }
        {
            user: "worker", password: "$DM_SECRET_NATS_WORKER"
            permissions: {
                publish: { allow: [
                    "\$JS.API.INFO", "\$JS.API.STREAM.INFO.*",
                    "\$JS.API.STREAM.CREATE.MARKET", "\$JS.API.STREAM.UPDATE.MARKET",
                    "\$JS.API.STREAM.CREATE.DLQ", "\$JS.API.STREAM.UPDATE.DLQ",
                    "\$JS.API.STREAM.CREATE.KV_DM_LEASES",
                    "\$JS.API.CONSUMER.CREATE.MARKET", "\$JS.API.CONSUMER.CREATE.MARKET.>",
                    "\$JS.API.CONSUMER.DURABLE.CREATE.MARKET.>", "\$JS.API.CONSUMER.INFO.MARKET.>",
                    "\$JS.API.CONSUMER.LIST.MARKET", "\$JS.API.CONSUMER.NAMES.MARKET",
                    "\$JS.API.CONSUMER.MSG.NEXT.MARKET.>", "\$JS.ACK.MARKET.>",
                    "\$JS.API.STREAM.MSG.GET.KV_DM_LEASES", "\$JS.API.DIRECT.GET.KV_DM_LEASES.>",
                    "\$KV.DM_LEASES.>",
                    "dm.dlq.>", "dm.cache.v1.update", "_INBOX.>"
                ] }
                subscribe: { allow: ["_INBOX.>", "dm.v1.>", "dm.cache.v1.update", "\$SRV.>"] }
            }
        }
        {
            user: "collector", password: "$DM_SECRET_NATS_COLLECTOR"
            permissions: {
                publish: { allow: ["market.>"] }
                subscribe: { allow: ["_INBOX.>"] }
            }
        }
        {
            user: "service", password: "$DM_SECRET_NATS_SERVICE"
            permissions: {
                publish: { allow: ["dm.v1.>", "\$SRV.>"] }
                subscribe: { allow: ["_INBOX.>"] }
            }
        }
    ]
}
EOF
}

nats_tls_conf() {
    tls_on || return 0
    printf 'tls {\n    cert_file: "%s"\n    key_file: "%s"\n    timeout: 2\n}\n' \
        "$TLS_DIR/server.pem" "$TLS_DIR/server.key"
}

# ----------------------------------------------------------------- nats ---

nats_pid() {
    local pid
    pid=$(read_pid "$NATS_PID")
    pid_alive "$pid" nats-server || return 1
    # Make sure it is the server of this stack (pid reuse, other stacks).
    [[ $(proc_cmdline "$pid") == *" $NATS_CONF "* ]] || return 1
    printf '%s' "$pid"
}

nats_healthy() {
    curl -sf -o /dev/null --max-time 2 "$DM_NATS_MON_URL/healthz"
}

nats_write_conf() {
    [[ -r $NATS_TMPL ]] || die "nats: template $NATS_TMPL not found"
    local conf
    conf=$(<"$NATS_TMPL")
    conf=${conf//@NATS_PORT@/$DM_NATS_PORT}
    conf=${conf//@NATS_MON_PORT@/$DM_NATS_MON_PORT}
    conf=${conf//@NATS_JS_DIR@/$NATS_DIR/js}
    (
        umask 077
        printf '%s\n\n' "$conf"
        nats_auth_conf
        nats_tls_conf
    ) >"$NATS_CONF.tmp"
    mv -f -- "$NATS_CONF.tmp" "$NATS_CONF"
}

nats_start() {
    local pid
    if pid=$(nats_pid); then
        log "nats: already running (pid $pid, port $DM_NATS_PORT)"
        return 0
    fi
    require_cmd nats-server curl
    require_port_free "$DM_NATS_PORT" nats
    require_port_free "$DM_NATS_MON_PORT" "nats monitor"
    mkdir -p -- "$NATS_DIR/js"
    rm -f -- "$NATS_PID"
    if [[ ${DM_NATS_TLS:-} == 1 ]]; then tls_make; fi
    nats_write_conf
    log "nats: starting on 127.0.0.1:$DM_NATS_PORT (monitor $DM_NATS_MON_PORT)"
    # Detached from our session; nats-server writes its own pid file.
    setsid nats-server -c "$NATS_CONF" -l "$NATS_LOG" -P "$NATS_PID" \
        </dev/null >>"$NATS_DIR/nats.stdout" 2>&1 &
    local launcher=$! i
    for ((i = 0; i < 100; i++)); do
        nats_healthy && break
        if ! proc_running "$launcher"; then
            log_tail "$NATS_LOG"
            log_tail "$NATS_DIR/nats.stdout"
            die "nats: server exited during startup"
        fi
        sleep 0.2
    done
    if ! nats_healthy; then
        log_tail "$NATS_LOG"
        die "nats: not healthy after 20s ($DM_NATS_MON_URL/healthz)"
    fi
    wait_for 5 nats_pid >/dev/null || die "nats: pid file $NATS_PID not written"
    log "nats: running (pid $(nats_pid))"
}

nats_stop() {
    local pid
    if pid=$(nats_pid); then
        log "nats: stopping (pid $pid)"
        term_wait_kill "$pid" 15
    fi
    rm -f -- "$NATS_PID"
}

# ---------------------------------------------------------- nats cluster ---

# Node K (1..3) of the failover cluster: its own dir, ports and server name "nK".
cluster_node_pid() {
    local k=$1 pid conf=$CLUSTER_DIR/n$1/nats.conf
    pid=$(read_pid "$CLUSTER_DIR/n$k/nats.pid")
    pid_alive "$pid" nats-server || return 1
    [[ $(proc_cmdline "$pid") == *" $conf "* ]] || return 1
    printf '%s' "$pid"
}

# JetStream up and in contact with the meta leader. Not the full /healthz: a node restarted
# into a busy cluster reports its stream replicas "not current" until it caught up, which
# may take a while, and it serves clients meanwhile.
cluster_node_healthy() {
    curl -sf -o /dev/null --max-time 2 \
        "http://127.0.0.1:$((DM_NATS_CLUSTER_MON_PORT + $1 - 1))/healthz?js-server-only=true"
}

# Routed to every other node: JetStream requests sent before that may go unanswered.
cluster_node_routed() {
    curl -sf --max-time 2 "http://127.0.0.1:$((DM_NATS_CLUSTER_MON_PORT + $1 - 1))/routez" |
        grep -q "\"num_routes\": *$((CLUSTER_NODES - 1))[,}]"
}

cluster_urls() {
    local role=${1:-operator} k urls=()
    [[ " ${ROLES[*]} " == *" $role "* ]] || die "usage: stack.sh cluster-urls [${ROLES[*]}]"
    for ((k = 1; k <= CLUSTER_NODES; k++)); do
        urls+=("$(role_url "$role" $((DM_NATS_CLUSTER_PORT + k - 1)))")
    done
    local IFS=,
    printf '%s\n' "${urls[*]}"
}

# The single-server template with the node's name and ports, plus the routes to all nodes.
cluster_write_conf() {
    local k=$1 dir=$CLUSTER_DIR/n$1 conf routes=() j
    [[ -r $NATS_TMPL ]] || die "nats: template $NATS_TMPL not found"
    for ((j = 1; j <= CLUSTER_NODES; j++)); do
        routes+=("nats-route://127.0.0.1:$((DM_NATS_CLUSTER_ROUTE_PORT + j - 1))")
    done
    conf=$(<"$NATS_TMPL")
    conf=${conf//@NATS_PORT@/$((DM_NATS_CLUSTER_PORT + k - 1))}
    conf=${conf//@NATS_MON_PORT@/$((DM_NATS_CLUSTER_MON_PORT + k - 1))}
    conf=${conf//@NATS_JS_DIR@/$dir/js}
    conf=${conf/server_name: \"dm-local\"/server_name: \"n$k\"}
    (
        umask 077
        printf '%s\n\n' "$conf"
        nats_auth_conf
        nats_tls_conf
        printf 'cluster {\n    name: "dm-local"\n    listen: 127.0.0.1:%s\n' \
            "$((DM_NATS_CLUSTER_ROUTE_PORT + k - 1))"
        local IFS=,
        printf '    routes: [%s]\n}\n' "${routes[*]}"
    ) >"$dir/nats.conf.tmp"
    mv -f -- "$dir/nats.conf.tmp" "$dir/nats.conf"
}

cluster_start() {
    require_cmd nats-server curl
    if [[ ${DM_NATS_TLS:-} == 1 ]]; then tls_make; fi
    local k pid started=()
    for ((k = 1; k <= CLUSTER_NODES; k++)); do
        cluster_node_pid "$k" >/dev/null && continue
        local dir=$CLUSTER_DIR/n$k
        require_port_free "$((DM_NATS_CLUSTER_PORT + k - 1))" "nats n$k"
        require_port_free "$((DM_NATS_CLUSTER_ROUTE_PORT + k - 1))" "nats n$k routes"
        require_port_free "$((DM_NATS_CLUSTER_MON_PORT + k - 1))" "nats n$k monitor"
        mkdir -p -- "$dir/js"
        rm -f -- "$dir/nats.pid"
        cluster_write_conf "$k"
        setsid nats-server -c "$dir/nats.conf" -l "$dir/nats.log" -P "$dir/nats.pid" \
            </dev/null >>"$dir/nats.stdout" 2>&1 &
        started+=("$k:$!")
    done
    local entry launcher i
    for entry in "${started[@]}"; do
        k=${entry%%:*} launcher=${entry#*:}
        for ((i = 0; i < 150; i++)); do
            cluster_node_healthy "$k" && break
            if ! proc_running "$launcher"; then
                log_tail "$CLUSTER_DIR/n$k/nats.log"
                log_tail "$CLUSTER_DIR/n$k/nats.stdout"
                die "nats cluster: n$k exited during startup"
            fi
            sleep 0.2
        done
        cluster_node_healthy "$k" || {
            log_tail "$CLUSTER_DIR/n$k/nats.log"
            die "nats cluster: n$k not healthy after 30s"
        }
        wait_for 10 cluster_node_routed "$k" || die "nats cluster: n$k has no route to every other node"
        wait_for 5 cluster_node_pid "$k" >/dev/null || die "nats cluster: n$k wrote no pid file"
        log "nats cluster: n$k running (pid $(cluster_node_pid "$k"), port $((DM_NATS_CLUSTER_PORT + k - 1)))"
    done
}

cluster_stop() {
    local k pid
    for ((k = 1; k <= CLUSTER_NODES; k++)); do
        if pid=$(cluster_node_pid "$k"); then
            log "nats cluster: stopping n$k (pid $pid)"
            term_wait_kill "$pid" 15
        fi
        rm -f -- "$CLUSTER_DIR/n$k/nats.pid"
    done
}

cluster_kill() {
    local name=${1:-} pid
    [[ $name =~ ^n[1-9]$ ]] || die "usage: stack.sh cluster-kill nK"
    pid=$(cluster_node_pid "${name#n}") || die "nats cluster: $name is not running"
    log "nats cluster: SIGKILL $name (pid $pid)"
    kill -KILL "$pid"
    local i
    for ((i = 0; i < 50; i++)); do
        proc_running "$pid" || return 0
        sleep 0.1
    done
}

# ------------------------------------------------------------- postgres ---

pg_pid() {
    local pid
    pid=$(read_pid "$PG_DATA/postmaster.pid")
    pid_alive "$pid" postgres || return 1
    printf '%s' "$pid"
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$DM_PG_PORT" -t 2
}

# Create the postgres-owned dirs in /var/tmp and the symlinks in the stack dir.
pg_prepare_dirs() {
    id -u "$PG_USER" >/dev/null 2>&1 ||
        die "postgres: system user '$PG_USER' missing; run deploy/install-deps.sh"
    install -d -m 0700 -o "$PG_USER" -g "$(id -gn "$PG_USER")" -- "$PG_BASE" "$PG_SOCK"
    # Record which stack dir this belongs to (helps when cleaning /var/tmp).
    printf '%s\n' "$DM_STACK_DIR" >"$PG_BASE/stack-dir"
    ln -sfn -- "$PG_DATA" "$DM_STACK_DIR/pg"
    ln -sfn -- "$PG_SOCK" "$DM_STACK_DIR/pgsock"
    ln -sfn -- "$PG_LOG" "$DM_STACK_DIR/postgres.log"
}

pg_write_hba() {
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by deploy/stack.sh (local development stack only).
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
EOF
    chown "$PG_USER:" "$PG_DATA/pg_hba.conf"
    chmod 0600 "$PG_DATA/pg_hba.conf"
}

pg_initdb() {
    [[ -s $PG_DATA/PG_VERSION ]] && return 0
    log "postgres: initdb in $PG_DATA"
    local out
    if ! out=$(as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust --username=postgres \
        -E UTF8 --locale=C.UTF-8 2>&1); then
        printf '%s\n' "$out" >&2
        die "postgres: initdb failed"
    fi
}

# Idempotently create/update role dm (password always = DM_PG_PASSWORD) and db dm.
pg_setup_db() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$DM_PG_PORT" \
        -U postgres -d postgres -v pw="$DM_PG_PASSWORD" >/dev/null <<'EOF'
SET password_encryption = 'scram-sha-256';
SELECT 'CREATE ROLE dm LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dm') \gexec
SELECT format('ALTER ROLE dm WITH LOGIN PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE dm OWNER dm'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'dm') \gexec
ALTER DATABASE dm OWNER TO dm;
EOF
}

pg_start() {
    local pid
    pg_prepare_dirs
    if pid=$(pg_pid); then
        log "postgres: already running (pid $pid, port $DM_PG_PORT)"
    else
        [[ -x $PG_BIN/pg_ctl ]] || die "postgres: $PG_BIN/pg_ctl not found; run deploy/install-deps.sh"
        require_port_free "$DM_PG_PORT" postgres
        pg_initdb
        pg_write_hba
        log "postgres: starting on 127.0.0.1:$DM_PG_PORT"
        local out
        if ! out=$(as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
            -o "-p $DM_PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c fsync=on" \
            start 2>&1); then
            printf '%s\n' "$out" >&2
            log_tail "$PG_LOG"
            die "postgres: pg_ctl start failed"
        fi
    fi
    wait_for 30 pg_ready || { log_tail "$PG_LOG"; die "postgres: not ready (pg_isready)"; }
    pg_setup_db || die "postgres: creating role/database dm failed"
    log "postgres: running (pid $(pg_pid)), role/database dm ready"
}

pg_stop() {
    local pid
    if pid=$(pg_pid); then
        log "postgres: stopping (pid $pid)"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || {
            log "postgres: pg_ctl stop failed, sending SIGQUIT"
            kill -QUIT "$pid" 2>/dev/null || true
            sleep 1
        }
    fi
}

# ---------------------------------------------------------------- redis ---

redis_pid() {
    local pid
    pid=$(read_pid "$REDIS_PID")
    pid_alive "$pid" redis-server || return 1
    printf '%s' "$pid"
}

redis_ping() {
    [[ $(redis-cli -h 127.0.0.1 -p "$DM_REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_start() {
    local pid
    if pid=$(redis_pid); then
        log "redis: already running (pid $pid, port $DM_REDIS_PORT)"
        return 0
    fi
    require_cmd redis-server redis-cli
    require_port_free "$DM_REDIS_PORT" redis
    mkdir -p -- "$REDIS_DIR"
    rm -f -- "$REDIS_PID"
    log "redis: starting on 127.0.0.1:$DM_REDIS_PORT"
    # The password in a file of its own, not on a command line anyone can read.
    (
        umask 077
        printf 'port %s\nbind 127.0.0.1\nsave ""\nappendonly no\ndir %s\ndaemonize yes\n' \
            "$DM_REDIS_PORT" "$REDIS_DIR"
        printf 'pidfile %s\nlogfile %s\nrequirepass %s\n' "$REDIS_PID" "$REDIS_LOG" "$DM_REDIS_PASSWORD"
    ) >"$REDIS_DIR/redis.conf"
    if ! redis-server "$REDIS_DIR/redis.conf" </dev/null >/dev/null 2>&1; then
        log_tail "$REDIS_LOG"
        die "redis: redis-server failed to start"
    fi
    wait_for 15 redis_ping || { log_tail "$REDIS_LOG"; die "redis: no PONG on port $DM_REDIS_PORT"; }
    wait_for 5 redis_pid >/dev/null || die "redis: pid file $REDIS_PID not written"
    log "redis: running (pid $(redis_pid))"
}

redis_stop() {
    local pid
    if pid=$(redis_pid); then
        log "redis: stopping (pid $pid)"
        redis-cli -h 127.0.0.1 -p "$DM_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        local i
        for ((i = 0; i < 50; i++)); do
            proc_running "$pid" || break
            sleep 0.1
        done
        if proc_running "$pid"; then term_wait_kill "$pid" 10; fi
    fi
    rm -f -- "$REDIS_PID"
}

# ----------------------------------------------------------- clickhouse ---

ch_pid() {
    local pid
    pid=$(read_pid "$CH_PID")
    # /proc/PID/comm is cut to 15 characters ("clickhouse-serv"): match the command line.
    pid_alive "$pid" || return 1
    [[ $(proc_cmdline "$pid") == *clickhouse*" --config-file=$CH_CONF "* ]] || return 1
    printf '%s' "$pid"
}

ch_ping() {
    [[ $(curl -sf --max-time 2 "$DM_CH_URL/ping" 2>/dev/null) == Ok.* ]]
}

# Sized for a small machine (2 cores, 24 GB): small caches, no query log, no
# interserver port (nothing replicates here). The root tag <yandex> is what
# 18.16 reads; current releases accept it too.
ch_write_conf() {
    cat >"$CH_CONF.tmp" <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/stack.sh (local development stack only). -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_LOG_DIR/clickhouse-server.log</log>
        <errorlog>$CH_LOG_DIR/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$DM_CH_HTTP_PORT</http_port>
    <tcp_port>$DM_CH_TCP_PORT</tcp_port>
    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>64</max_concurrent_queries>
    <keep_alive_timeout>10</keep_alive_timeout>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
    mv -f -- "$CH_CONF.tmp" "$CH_CONF"
    ch_write_users
}

# One user, dm, with the stack's password (as SHA-256); the packaged default and readonly
# users, which have none, do not exist here.
ch_write_users() {
    local hash
    hash=$(printf '%s' "$DM_CH_PASSWORD" | sha256sum | cut -d' ' -f1)
    (
        umask 077
        cat >"$CH_DIR/users.xml.tmp" <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/stack.sh (local development stack only). -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>10000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <$DM_CH_USER>
            <password_sha256_hex>$hash</password_sha256_hex>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </$DM_CH_USER>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
    )
    mv -f -- "$CH_DIR/users.xml.tmp" "$CH_DIR/users.xml"
}

ch_start() {
    local pid
    if pid=$(ch_pid); then
        log "clickhouse: already running (pid $pid, http $DM_CH_HTTP_PORT)"
        return 0
    fi
    require_cmd clickhouse-server curl
    require_port_free "$DM_CH_HTTP_PORT" "clickhouse http"
    require_port_free "$DM_CH_TCP_PORT" "clickhouse tcp"
    mkdir -p -- "$CH_DIR"/{data,tmp,user_files,format_schemas} "$CH_LOG_DIR"
    rm -f -- "$CH_PID"
    ch_write_conf
    log "clickhouse: starting on 127.0.0.1:$DM_CH_HTTP_PORT (tcp $DM_CH_TCP_PORT)"
    # setsid: detached from our session. This shell has no job control, so the
    # child is not a group leader, setsid execs in place and $! is the server.
    setsid clickhouse-server --config-file="$CH_CONF" \
        </dev/null >>"$CH_DIR/clickhouse.stdout" 2>&1 &
    local launcher=$! i
    printf '%s\n' "$launcher" >"$CH_PID"
    for ((i = 0; i < 150; i++)); do
        ch_ping && break
        if ! proc_running "$launcher"; then
            log_tail "$CH_LOG_DIR/clickhouse-server.err.log"
            log_tail "$CH_DIR/clickhouse.stdout"
            rm -f -- "$CH_PID"
            die "clickhouse: server exited during startup"
        fi
        sleep 0.2
    done
    if ! ch_ping; then
        log_tail "$CH_LOG_DIR/clickhouse-server.err.log"
        die "clickhouse: no 'Ok.' from $DM_CH_URL/ping after 30s"
    fi
    log "clickhouse: running (pid $(ch_pid))"
}

ch_stop() {
    local pid
    if pid=$(ch_pid); then
        log "clickhouse: stopping (pid $pid)"
        term_wait_kill "$pid" 30
    fi
    rm -f -- "$CH_PID"
}

# -------------------------------------------------------------- workers ---

# Print "K PID" for each worker pid file whose process is alive.
worker_pids() {
    local f name pid
    shopt -s nullglob
    for f in "$WORKERS_DIR"/w*.pid; do
        name=$(basename "$f" .pid)
        pid=$(read_pid "$f")
        pid_alive "$pid" || continue
        # Guard against pid reuse: the process must be a dm-worker named wK.
        [[ $(proc_cmdline "$pid") == *dm-worker*" --name $name "* ]] || continue
        printf '%s %s\n' "$name" "$pid"
    done
    shopt -u nullglob
}

workers_stop() {
    local name pid pids=() i
    while read -r name pid; do
        [[ -n $pid ]] && pids+=("$pid")
    done < <(worker_pids)
    if ((${#pids[@]} > 0)); then
        log "workers: stopping ${#pids[@]} (pids ${pids[*]})"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            local alive=0 p
            for p in "${pids[@]}"; do proc_running "$p" && alive=1; done
            ((alive)) || break
            sleep 0.1
        done
        for p in "${pids[@]}"; do
            if proc_running "$p"; then
                log "workers: pid $p still alive after 15s, sending SIGKILL"
                kill -KILL "$p" 2>/dev/null || true
            fi
        done
    fi
    rm -f -- "$WORKERS_DIR"/w*.pid
}

worker_env() {
    [[ $DM_HTTP_PORT =~ ^([0-9]+|off)$ ]] || die "DM_HTTP_PORT='$DM_HTTP_PORT': want a port number, or off"
    read -r -a WORKER_EXTRA <<<"$DM_WORKER_ARGS" || true
    # Workers get their own NATS user, never the operator's.
    export DM_NATS_WORKER_URL DM_NATS_MON_URL DM_PG_HOST DM_PG_PORT DM_PG_PASSWORD \
        DM_REDIS_HOST DM_REDIS_PORT DM_REDIS_PASSWORD DM_CH_URL DM_CH_USER DM_CH_PASSWORD \
        DM_STACK_DIR
    unset DM_NATS_URL DM_NATS_COLLECTOR_URL DM_NATS_SERVICE_URL
    if tls_on; then export DM_NATS_CA=$TLS_DIR/ca.pem; else unset DM_NATS_CA; fi
}

# The HTTP port of worker NAME, or "off": with REUSE=1 the one recorded when it last
# started (a restarted worker keeps its port, so a URL printed before still works, whatever
# DM_HTTP_PORT says now), else DM_HTTP_PORT + K.
worker_http_port() {
    local name=$1 reuse=$2 record=$WORKERS_DIR/$1.http
    local recorded=''
    [[ -r $record ]] && recorded=$(head -n 1 -- "$record")
    if ((reuse)) && [[ $recorded =~ ^([0-9]+|off)$ ]]; then
        echo "$recorded"
    elif [[ $DM_HTTP_PORT == off || $DM_HTTP_PORT == 0 ]]; then
        echo off
    else
        echo $((DM_HTTP_PORT + ${name#w}))
    fi
}

# Start worker NAME in the background; its log is appended to, so the log of a
# worker killed earlier stays readable. REUSE: see worker_http_port. Prints the pid.
worker_spawn() {
    local name=$1 reuse=${2:-0} http=() port
    mkdir -p -- "$WORKERS_DIR"
    port=$(worker_http_port "$name" "$reuse")
    if [[ $port != off ]]; then
        require_port_free "$port" "workers: $name http"
        http=(--http "127.0.0.1:$port")
    fi
    printf '%s\n' "$port" >"$WORKERS_DIR/$name.http"
    # setsid: detach from our terminal/process group. Since this shell
    # has no job control the child is not a group leader, so setsid
    # execs in place and $! is the worker's own pid.
    setsid "$WORKER_BIN" \
        --config-dir "$DM_CONFIG_DIR" \
        --strategy "$DM_STRATEGY" \
        --name "$name" "${http[@]}" "${WORKER_EXTRA[@]}" \
        </dev/null >>"$WORKERS_DIR/$name.log" 2>&1 &
    printf '%s\n' "$!" >"$WORKERS_DIR/$name.pid"
    printf '%s\n' "$!"
}

# Wait until the log of NAME, past line SKIP, says "ready". Returns 1 on failure.
worker_wait_ready() {
    local name=$1 pid=$2 skip=$3 i rc
    for ((i = 0; i < DM_WORKER_READY_TIMEOUT * 10; i++)); do
        tail -n +"$((skip + 1))" -- "$WORKERS_DIR/$name.log" 2>/dev/null | grep -qw ready && return 0
        if ! proc_running "$pid"; then
            wait "$pid" 2>/dev/null && rc=0 || rc=$?
            log "workers: $name (pid $pid) exited during startup (status $rc)"
            log_tail "$WORKERS_DIR/$name.log"
            rm -f -- "$WORKERS_DIR/$name.pid"
            return 1
        fi
        sleep 0.1
    done
    log "workers: $name (pid $pid) not ready after ${DM_WORKER_READY_TIMEOUT}s"
    log_tail "$WORKERS_DIR/$name.log"
    return 1
}

workers_check() {
    [[ -x $WORKER_BIN ]] || die "workers: $WORKER_BIN not found or not executable (build first, or set DM_BUILD_DIR)"
    local svc
    for svc in nats pg redis ch; do
        "${svc}_pid" >/dev/null || log "workers: warning: $svc is not running (run: stack.sh start)"
    done
}

workers_start() {
    local n=${1:-}
    [[ $n =~ ^[0-9]+$ ]] || die "usage: stack.sh workers N"
    workers_check
    workers_stop
    ((n == 0)) && { log "workers: none started (N=0)"; return 0; }
    worker_env
    local k pids=() failed=0
    for ((k = 1; k <= n; k++)); do
        mkdir -p -- "$WORKERS_DIR"
        : >"$WORKERS_DIR/w$k.log"
        pids[k]=$(worker_spawn "w$k")
    done
    log "workers: started $n (pids ${pids[*]}), waiting for 'ready'"
    for ((k = 1; k <= n; k++)); do
        worker_wait_ready "w$k" "${pids[k]}" 0 || failed=1
    done
    ((failed)) && die "workers: startup failed (others left running; use: stack.sh stop-workers)"
    log "workers: all $n ready"
}

# Start one more worker (or restart a killed one) under NAME, keeping the others.
worker_start_one() {
    local name=${1:-}
    [[ $name =~ ^w[0-9]+$ ]] || die "usage: stack.sh start-worker wK"
    workers_check
    worker_pids | grep -q "^$name " && die "workers: $name is already running"
    worker_env
    mkdir -p -- "$WORKERS_DIR"
    local skip pid
    skip=$(wc -l <"$WORKERS_DIR/$name.log" 2>/dev/null || echo 0)
    pid=$(worker_spawn "$name" 1)
    worker_wait_ready "$name" "$pid" "$skip" || die "workers: $name did not start"
    log "workers: $name ready (pid $pid)"
}

# ---------------------------------------------------------------- status ---

status_line() {
    local svc=$1 port=$2 pid
    if pid=$("${svc}_pid"); then
        printf '%-10s %srunning%s  pid %-7s port %s\n' "$3" "$C_OK" "$C_OFF" "$pid" "$port"
    else
        printf '%-10s %sstopped%s  %-11s port %s\n' "$3" "$C_BAD" "$C_OFF" '' "$port"
    fi
}

cmd_status() {
    echo "stack dir: $DM_STACK_DIR"
    status_line nats "$DM_NATS_PORT (monitor $DM_NATS_MON_PORT)" nats
    status_line pg "$DM_PG_PORT" postgres
    status_line redis "$DM_REDIS_PORT" redis
    status_line ch "$DM_CH_HTTP_PORT (tcp $DM_CH_TCP_PORT)" clickhouse
    local lines
    lines=$(worker_pids)
    if [[ -z $lines ]]; then
        echo "workers    none running"
    else
        echo "workers    $(wc -l <<<"$lines") running"
        local name pid port url
        while read -r name pid; do
            port=$(head -n 1 -- "$WORKERS_DIR/$name.http" 2>/dev/null || echo off)
            [[ $port =~ ^[0-9]+$ ]] && url="http://127.0.0.1:$port/" || url="http off"
            printf '  %-7s %srunning%s  pid %-7s %s  log %s\n' "$name" "$C_OK" "$C_OFF" "$pid" "$url" \
                "$WORKERS_DIR/$name.log"
        done <<<"$lines"
    fi
}

# --------------------------------------------------------------- commands ---

service_fn() {
    case ${1:-} in
    nats) echo nats ;;
    postgres | pg) echo pg ;;
    redis) echo redis ;;
    clickhouse | ch) echo ch ;;
    *) die "unknown service '${1:-}' (expected nats, postgres, redis or clickhouse)" ;;
    esac
}

cmd_start() {
    mkdir -p -- "$DM_STACK_DIR"
    nats_start
    pg_start
    redis_start
    ch_start
    (umask 077 && env_lines >"$DM_STACK_DIR/env")
    log "stack up; env in $DM_STACK_DIR/env  (eval \"\$($0 env)\")"
}

cmd_stop() {
    workers_stop
    nats_stop
    cluster_stop
    redis_stop
    ch_stop
    pg_stop
    log "stack stopped"
}

cmd_clean() {
    cmd_stop
    # Only remove what this script creates.
    [[ $PG_BASE == /var/tmp/dm-stack-* ]] && rm -rf -- "$PG_BASE"
    rm -rf -- "$DM_STACK_DIR"/{nats,nats-cluster,redis,clickhouse,workers,pg,pgsock,postgres.log,env,secrets.env,tls}
    rmdir -- "$DM_STACK_DIR" 2>/dev/null || true
    log "stack data removed"
}

main() {
    local cmd=${1:-}
    (($# > 0)) && shift
    # Every command but clean needs the stack's secrets (made on first use).
    case $cmd in
    -h | --help | help | '') ;;
    clean) [[ ! -s $SECRETS_FILE ]] || secrets_load ;; # to stop what runs, then forget them
    *) secrets_load ;;
    esac
    case $cmd in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) env_lines ;;
    workers) workers_start "${1:-}" ;;
    stop-workers) workers_stop ;;
    start-worker) worker_start_one "${1:-}" ;;
    start-service)
        local s; s=$(service_fn "${1:-}")
        mkdir -p -- "$DM_STACK_DIR"
        "${s}_start" ;;
    stop-service)
        local s; s=$(service_fn "${1:-}")
        "${s}_stop" ;;
    restart)
        local s; s=$(service_fn "${1:-}")
        mkdir -p -- "$DM_STACK_DIR"
        "${s}_stop"
        "${s}_start" ;;
    clean) cmd_clean ;;
    cluster-start) cluster_start ;;
    cluster-stop) cluster_stop ;;
    cluster-kill) cluster_kill "${1:-}" ;;
    cluster-urls) cluster_urls "${1:-}" ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
