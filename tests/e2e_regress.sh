#!/usr/bin/env bash
# The SQL surface pinned as pg_regress-style transcripts (issue 12): each tests/regress/sql/NAME.sql
# runs with `psql -a` (statements echoed, errors in place) in a database of its own on a fresh
# cluster, and its output must equal tests/regress/expected/NAME.out, or NAME_<major>.out where a
# PostgreSQL major prints something differently. A difference fails with the diff.
#   UPDATE_EXPECTED=1 tests/e2e_regress.sh   writes the expected files from this run (review the
#                                            git diff: it is what users of the SQL surface see)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-regress-pg$PG_MAJOR
PORT=55480
stop_clusters_on_exit "$DIR"

step "A fresh cluster (PostgreSQL $PG_MAJOR, dbanalytics not preloaded: no worker writes meanwhile)"
cluster_init "$DIR" "$PORT"
cluster_start "$DIR"
mkdir -p "$DIR/results"
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$DIR/results"

for sql in tests/regress/sql/*.sql; do
    name=$(basename "$sql" .sql)
    step "$name"
    psql_at "$DIR" "$PORT" postgres "CREATE DATABASE regress_$name"
    out=$DIR/results/$name.out
    # as pg_regress runs its tests: every statement echoed, errors in the output where they
    # occur (read from standard input, so an error names no line number of the file)
    "$PG_BIN/psql" -X -a -q -h "$DIR" -p "$PORT" -U postgres -d "regress_$name" <"$sql" >"$out" 2>&1 || true
    expected=tests/regress/expected/$name.out
    [ -f "tests/regress/expected/${name}_$PG_MAJOR.out" ] && expected=tests/regress/expected/${name}_$PG_MAJOR.out
    if [ "${UPDATE_EXPECTED:-}" = 1 ]; then
        cp "$out" "$expected"
        info "wrote $expected"
    fi
    if diff -u "$expected" "$out" >"$DIR/results/$name.diff"; then
        check "$name: the transcript equals $expected" same same
    else
        head -n 80 "$DIR/results/$name.diff"
        check "$name: the transcript equals $expected (diff: $DIR/results/$name.diff)" same different
    fi
done

finish_checks e2e_regress
