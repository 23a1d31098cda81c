#!/usr/bin/env bash
# End-to-end: the artifacts of scripts/package install and work (issue 12).
#   - PostgreSQL 15: the Debian package lists the library, the control file and every SQL script
#     at the Debian PostgreSQL 15 paths, with its dependencies; its files, extracted with
#     `dpkg -x` into a private root, are installed into a private PostgreSQL copy, where a
#     preloaded server creates the extension and collects.
#   - every major: the tarball's install.sh installs into a private PostgreSQL copy, the same.
# The package is never installed onto the system PostgreSQL here: other servers on this machine
# may have the system dbanalytics.so mapped (docs/releasing.md says why and how a DBA installs).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh
source tests/release_lib.sh

DIR=$REPO_ROOT/target/e2e-package-pg$PG_MAJOR
CL=$DIR/cluster
PORT=5484
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
started=$(date +%s)
stop_clusters_on_exit "$CL"
cluster_stop "$CL"

step "scripts/package --pg $PG_MAJOR (from the current release build)"
CUR_TREE=$(current_tree)
rm -rf "$DIR"
mkdir -p "$DIR"
scripts/package --pg "$PG_MAJOR" --no-build --out "$DIR/dist" >"$DIR/package.log" 2>&1 \
    || { cat "$DIR/package.log"; exit 1; }
TARBALL=$DIR/dist/dbanalytics-$VERSION-pg$PG_MAJOR-$ARCH.tar.gz
check "the tarball exists" yes "$([ -f "$TARBALL" ] && echo yes || echo no)"
tree_ext=$CUR_TREE$("$PG_CONFIG" --sharedir)/extension
sql_files=$(cd "$tree_ext" && ls dbanalytics--*.sql | sort)
info "SQL scripts of the build: $(tr '\n' ' ' <<<"$sql_files")"

# creates the extension in a server of the PostgreSQL copy PG_CONFIG names, preloaded
# (the workers collect), and checks what it answers
extension_works() {
    local what=$1
    cluster_init "$CL" "$PORT" "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
        "dbanalytics.database = 'postgres'" "dbanalytics.sample_interval = '200ms'"
    cluster_start "$CL"
    psql_at "$CL" "$PORT" postgres "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
    check "$what: CREATE EXTENSION installs version $VERSION" "$VERSION" \
        "$(psql_at "$CL" "$PORT" postgres "SELECT extversion FROM pg_extension WHERE extname = 'dbanalytics'")"
    check "$what: take_snapshot() runs every source" "" \
        "$(psql_at "$CL" "$PORT" postgres "SELECT string_agg(source || ':' || status, ' ') FROM dbanalytics.take_snapshot() WHERE status <> 'ok' AND NOT $UNAVAILABLE_HERE")"
    sampler_collected() {
        [ "$(psql_at "$CL" "$PORT" postgres "SELECT count(*) FROM dbanalytics.collector_runs
                                              WHERE worker = 'sampler' AND status = 'ok'")" -gt 0 ]
    }
    wait_for "$what: the sampler worker collects" 30 sampler_collected
    cluster_stop "$CL"
}

if [ "$PG_MAJOR" = 15 ]; then
    step "The Debian package for the system PostgreSQL 15"
    DEB=$DIR/dist/dbanalytics_$VERSION-1_pg15_$ARCH.deb
    check "the .deb exists" yes "$([ -f "$DEB" ] && echo yes || echo no)"
    sys_lib=$("$PG_SYSTEM_CONFIG" --pkglibdir)
    sys_ext=$("$PG_SYSTEM_CONFIG" --sharedir)/extension
    contents=$(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|')
    expected_files=$(printf '%s\n' "$sys_lib/dbanalytics.so" "$sys_ext/dbanalytics.control" \
        $(sed "s|^|$sys_ext/|" <<<"$sql_files") | sort)
    check "dpkg-deb -c lists the library, the control file and every SQL script at the system paths" \
        "$expected_files" "$(grep -E 'dbanalytics(\.so|\.control|--.*\.sql)$' <<<"$contents" | sort)"
    check "the package is postgresql-15-dbanalytics $VERSION-1, depends on postgresql-15" \
        "postgresql-15-dbanalytics $VERSION-1 postgresql-15, libc6" \
        "$(dpkg-deb -f "$DEB" Package Version Depends | sed 's/^[A-Za-z]*: //' | tr '\n' ' ' | sed 's/ $//')"
    check "the packaged control file names default_version $VERSION" "default_version = '$VERSION'" \
        "$(dpkg-deb --fsys-tarfile "$DEB" | tar -xO ".$sys_ext/dbanalytics.control" | grep '^default_version')"
    check "dpkg accepts the package (dpkg-deb --info)" 0 "$(dpkg-deb --info "$DEB" >/dev/null 2>&1; echo $?)"

    step "Its files, extracted with dpkg -x into a private root, in a private PostgreSQL 15"
    dpkg -x "$DEB" "$DIR/root"
    check "the packaged library is the build's" "$(md5sum <"$CUR_TREE$("$PG_CONFIG" --pkglibdir)/dbanalytics.so")" \
        "$(md5sum <"$DIR/root$sys_lib/dbanalytics.so")"
    private_pg "$DIR/pg-deb"
    install -m 644 "$DIR/root$sys_lib/dbanalytics.so" "$("$PG_CONFIG" --pkglibdir)/"
    install -m 644 "$DIR/root$sys_ext"/dbanalytics* "$("$PG_CONFIG" --sharedir)/extension/"
    extension_works "from the .deb"
    PG_CONFIG=$TREE_PG_CONFIG
    PG_BIN=$(dirname "$PG_CONFIG")
fi

step "The tarball's install.sh into a private PostgreSQL $PG_MAJOR"
check "the tarball holds the library, the control file, every SQL script and install.sh" \
    "$(printf '%s\n' install.sh lib/dbanalytics.so extension/dbanalytics.control $(sed 's|^|extension/|' <<<"$sql_files") | sort)" \
    "$(tar -tzf "$TARBALL" | sed 's|^[^/]*/||' | grep -E '^(install\.sh|lib/.+|extension/.+)$' | sort)"
mkdir -p "$DIR/unpacked"
tar -xzf "$TARBALL" -C "$DIR/unpacked"
private_pg "$DIR/pg-tarball"
"$DIR/unpacked/dbanalytics-$VERSION-pg$PG_MAJOR-$ARCH/install.sh" "$PG_CONFIG" >/dev/null
chmod -R go+rX "$DIR/pg-tarball"
extension_works "from the tarball"

info "took $(( $(date +%s) - started ))s"
finish_checks "e2e_package (PostgreSQL $PG_MAJOR)"
