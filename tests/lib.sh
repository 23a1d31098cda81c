# Shared shell helpers for scripts/demo, scripts/test and tests/*.sh: a throwaway PostgreSQL
# cluster run by an unprivileged user, psql against it, and assertions.
# shellcheck shell=bash

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
# initdb refuses root: clusters run as this user
PG_OS_USER=${PG_OS_USER:-postgres}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }

as_pg_user() {
    if [ "$(id -u)" = 0 ]; then
        sudo -u "$PG_OS_USER" -H -- "$@"
    else
        "$@"
    fi
}

# cluster_init DIR PORT [extra postgresql.conf lines...]
cluster_init() {
    local dir=$1 port=$2
    shift 2
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$dir"
    # PGPASSWORD set: password (SCRAM) authentication, so that pg_hba has no trust rule
    local auth=(--auth=trust)
    if [ -n "${PGPASSWORD:-}" ]; then
        printf '%s\n' "$PGPASSWORD" >"$dir/pwfile"
        [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$dir/pwfile"
        auth=(--auth=scram-sha-256 --pwfile="$dir/pwfile")
    fi
    as_pg_user "$PG_BIN/initdb" -D "$dir/data" -U postgres "${auth[@]}" -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; return 1; }
    {
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "logging_collector = off"
        for line in "$@"; do echo "$line"; done
    } | as_pg_user tee -a "$dir/data/postgresql.conf" >/dev/null
}

cluster_start() {
    local dir=$1
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -n 30 "$dir/server.log"; return 1; }
}

cluster_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# psql_at DIR PORT DB SQL: one unaligned, tuples-only result
psql_at() {
    local dir=$1 port=$2 db=$3 sql=$4
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" -c "$sql"
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds (COMMAND is run anew
# each time, so pass a function, not an already expanded "$(...)")
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local waited=0
    until "$@" >/dev/null 2>&1; do
        sleep 1
        waited=$((waited + 1))
        if [ "$waited" -ge "$timeout" ]; then
            echo "TIMEOUT after ${timeout}s waiting for: $what" >&2
            return 1
        fi
    done
    info "ok: $what (${waited}s)"
}

# stop_clusters_on_exit DIR...: at exit, end background jobs and stop the clusters; after a
# failure, show the end of the first cluster's server log
stop_clusters_on_exit() {
    E2E_CLUSTERS=("$@")
    trap '_e2e_exit $?' EXIT
}
_e2e_exit() {
    jobs -p | xargs -r kill 2>/dev/null || true
    local dir
    for dir in "${E2E_CLUSTERS[@]}"; do cluster_stop "$dir"; done
    if [ "$1" -ne 0 ] || [ "$FAILURES" -ne 0 ]; then
        echo "--- server log of ${E2E_CLUSTERS[0]} (tail) ---"
        tail -n 40 "${E2E_CLUSTERS[0]}/server.log" 2>/dev/null || true
    fi
}

# finish_checks NAME: the test's verdict from the checks it made
finish_checks() {
    if [ "$FAILURES" -ne 0 ]; then
        echo "$FAILURES check(s) failed" >&2
        exit 1
    fi
    step "$1: all checks passed"
}

FAILURES=0
# check DESCRIPTION EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        info "ok: $1"
    else
        printf '    FAIL: %s\n      expected: %s\n      actual:   %s\n' "$1" "$2" "$3" >&2
        FAILURES=$((FAILURES + 1))
    fi
}

# ensure_toolchain: the Debian packages and cargo-pgrx the build needs (idempotent)
ensure_toolchain() {
    local missing=()
    for pkg in postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-15-hypopg libclang-dev clang pkg-config sudo; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "Installing Debian packages: ${missing[*]}"
        local sudo_cmd=()
        [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q '0.18.1'; then
        step "Installing cargo-pgrx 0.18.1 (about 6 minutes, once)"
        cargo install cargo-pgrx --version 0.18.1 --locked
    fi
    if [ ! -f "${PGRX_HOME:-$HOME/.pgrx}/config.toml" ] || ! grep -q pg15 "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        step "Pointing pgrx at the system PostgreSQL 15"
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
}

# install_extension [cargo pgrx package flags, e.g. --debug]: builds dbanalytics (release by
# default) and installs it into the system PostgreSQL. Each file is copied under a temporary
# name and renamed into place, so servers already running keep the library they mapped.
install_extension() {
    local out=$PWD/target/package
    rm -rf "$out"
    cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$out" "$@" 2>&1 \
        | grep -E '^(error|warning)|Finished' || true
    [ -f "$out$("$PG_CONFIG" --pkglibdir)/dbanalytics.so" ] || { echo "build failed" >&2; return 1; }
    local sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    (cd "$out" && find . -type f) | while read -r file; do
        local dest=/${file#./}
        "${sudo_cmd[@]}" install -D -m 644 "$out/$file" "$dest.tmp.$$"
        "${sudo_cmd[@]}" mv -f "$dest.tmp.$$" "$dest"
    done
}
