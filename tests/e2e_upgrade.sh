#!/usr/bin/env bash
# End-to-end: upgrading an installation of the previous release that has collected history
# (issue 12). The previous release is built from its git tag and installed with the current
# build beside it (both versions' SQL files in one extension directory, as a package upgrade
# leaves them) in a private copy of PostgreSQL of this test's own. Then:
#   - the new library, preloaded after a restart, meets the old catalog: the workers idle and
#     say why (or work), never crash;
#   - ALTER EXTENSION dbanalytics UPDATE while the workers run: the history is intact, every
#     source is healthy after the next snapshot;
#   - the upgraded catalog equals a fresh install's (tests/extension_catalog.sql, diff shown);
#   - the old library, preloaded against the new catalog, never crashes either; back on the new
#     library everything is healthy again.
# docs/releasing.md explains the procedure this follows.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh
source tests/release_lib.sh

PREV_VERSION=0.1.0
PREV_TAG=v$PREV_VERSION
PREV_COMMIT=68a33a6  # what the tag names, for a clone that did not fetch tags
PREV_MAJORS="15"     # the PostgreSQL majors the previous release builds on (0.1.0: 15 only)
CUR_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
DIR=$REPO_ROOT/target/e2e-upgrade-pg$PG_MAJOR
CL=$DIR/cluster  # the cluster (cluster_init empties it); the PostgreSQL copy is in $DIR/pg
PORT=5481
DB=hist        # the database the workers collect in, upgraded from PREV_VERSION
FRESH=fresh    # a fresh install of CUR_VERSION, for the catalog comparison
started=$(date +%s)

q() { psql_at "$CL" "$PORT" "$DB" "$1"; }
# log_since MARK: the server log written after MARK (a byte offset from log_mark)
log_mark() { stat -c %s "$CL/server.log" 2>/dev/null || echo 0; }
log_since() { tail -c +"$(($1 + 1))" "$CL/server.log"; }

if [[ " $PREV_MAJORS " != *" $PG_MAJOR "* ]]; then
    fault_case upgrade
    skip_part "the upgrade from $PREV_VERSION" "$PREV_VERSION was released for PostgreSQL $PREV_MAJORS only and does not build on $PG_MAJOR"
    finish_checks "e2e_upgrade ($PREV_VERSION -> $CUR_VERSION, PostgreSQL $PG_MAJOR: nothing to upgrade from)"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
step "Build the previous release $PREV_VERSION and the current build $CUR_VERSION (PostgreSQL $PG_MAJOR)"
prev_rev=$(git rev-parse -q --verify "$PREV_TAG^{commit}" 2>/dev/null \
    || git rev-parse -q --verify "$PREV_COMMIT^{commit}" 2>/dev/null) \
    || { echo "neither tag $PREV_TAG nor commit $PREV_COMMIT is in this clone" >&2; exit 1; }
PREV_TREE=$REPO_ROOT/target/prev-$PREV_VERSION/package-pg$PG_MAJOR
prev_stamp="$prev_rev dbanalytics_prev $PG_CONFIG $("$PG_CONFIG" --version)"
if [ -f "$PREV_TREE$("$PG_CONFIG" --pkglibdir)/dbanalytics.so" ] \
    && [ "$(cat "$PREV_TREE.stamp" 2>/dev/null)" = "$prev_stamp" ]; then
    info "reusing $PREV_TREE (built from $prev_rev)"
else
    src=$REPO_ROOT/target/prev-$PREV_VERSION/src
    rm -rf "$src" "$PREV_TREE" "$PREV_TREE.stamp"
    mkdir -p "$src"
    git archive "$prev_rev" | tar -x -C "$src"
    # Its own library file name: every build of a cdylib named dbanalytics in the shared target
    # directory writes target/debug/libdbanalytics.so, which cargo would then take as already
    # built. pgrx installs the library as dbanalytics.so whatever the crate's library is called.
    sed -i 's/^crate-type = \["cdylib"\]$/name = "dbanalytics_prev"\n&/' "$src/Cargo.toml"
    grep -q '^name = "dbanalytics_prev"$' "$src/Cargo.toml" || { echo "could not rename the library of $PREV_TAG" >&2; exit 1; }
    info "building $PREV_TAG ($prev_rev) in $src (debug; dependencies shared through CARGO_TARGET_DIR)"
    (cd "$src" && CARGO_TARGET_DIR=$REPO_ROOT/target \
        cargo pgrx package --debug --pg-config "$PG_CONFIG" --out-dir "$PREV_TREE" 2>&1) \
        | grep -E '^(error|warning)|Finished' || true
    [ -f "$PREV_TREE$("$PG_CONFIG" --pkglibdir)/dbanalytics.so" ] \
        || { echo "building $PREV_TAG failed" >&2; exit 1; }
    printf '%s\n' "$prev_stamp" >"$PREV_TREE.stamp"
fi

# The current build: the tree install_extension made (scripts/test runs it before the e2e tests)
CUR_TREE=$(current_tree)
info "previous: $(find "$PREV_TREE" -name 'dbanalytics*' -type f -printf '%f ' | tr -s ' ')"
info "current:  $(find "$CUR_TREE" -name 'dbanalytics*' -type f -printf '%f ' | tr -s ' ')"
check "the current build ships the upgrade script $PREV_VERSION -> $CUR_VERSION" yes \
    "$([ -f "$CUR_TREE$("$PG_CONFIG" --sharedir)/extension/dbanalytics--$PREV_VERSION--$CUR_VERSION.sql" ] && echo yes || echo no)"

# ---------------------------------------------------------------------------------------------
step "A private PostgreSQL $PG_MAJOR for this test ($DIR/pg)"
stop_clusters_on_exit "$CL"
cluster_stop "$CL"  # a server left over by an interrupted run
private_pg "$DIR/pg"
install_tree "$PREV_TREE"
EXTDIR=$("$PG_CONFIG" --sharedir)/extension

cluster_init "$CL" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" \
    "dbanalytics.sample_interval = '200ms'" \
    "dbanalytics.snapshot_interval = '5s'" \
    "pg_stat_statements.track = 'all'"
cluster_start "$CL"
psql_at "$CL" "$PORT" postgres "CREATE DATABASE $DB"

# ---------------------------------------------------------------------------------------------
step "Release $PREV_VERSION collects a workload's history"
fault_case upgrade
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics" 2>/dev/null
check "the installed version is $PREV_VERSION" "$PREV_VERSION" \
    "$(q "SELECT extversion FROM pg_extension WHERE extname = 'dbanalytics'")"
"$PG_BIN/pgbench" -h "$CL" -p "$PORT" -U postgres -i -s 1 -q "$DB" >/dev/null 2>&1
q "SELECT * FROM dbanalytics.take_snapshot()" >/dev/null
# sessions for the sampler: one sleeping, one idle in a transaction, pgbench clients
"$PG_BIN/psql" -X -q -h "$CL" -p "$PORT" -U postgres -d "$DB" \
    -c "SET application_name = 'upgrade-sleeper'" -c "SELECT pg_sleep(3)" >/dev/null &
"$PG_BIN/pgbench" -h "$CL" -p "$PORT" -U postgres -n -c 2 -t 300 "$DB" >/dev/null 2>&1
for _ in 1 2 3; do q "SELECT * FROM dbanalytics.take_sample()" >/dev/null; done
wait
q "SELECT * FROM dbanalytics.take_snapshot()" >/dev/null
collected_by_workers() {
    [ "$(q "SELECT count(DISTINCT worker) FROM dbanalytics.collector_runs
             WHERE worker IN ('sampler', 'collector') AND status = 'ok'")" = 2 ]
}
wait_for "both workers of $PREV_VERSION collected" 60 collected_by_workers
check "activity was sampled (the sleeping session)" t \
    "$(q "SELECT count(*) > 0 FROM dbanalytics.activity_samples WHERE application_name = 'upgrade-sleeper'")"
check "statement deltas were recorded" t "$(q "SELECT count(*) > 0 FROM dbanalytics.statement_stats")"

# The history as it stands: every row of every partitioned table, of activity_keys and of the
# statement texts that statement_stats refers to (texts no delta refers to are pruned; last_seen
# moves on), over the columns the old release has. After the upgrade each of these rows must
# still be there, unchanged.
HISTORY_COLUMNS=$(q "SELECT c.oid::regclass || '|' || string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
                       FROM pg_class c
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                      WHERE c.relnamespace = 'dbanalytics'::regnamespace
                        AND (c.relkind = 'p' OR c.relname IN ('activity_keys', 'statements'))
                        AND a.attname <> 'last_seen'
                      GROUP BY c.oid ORDER BY 1")
history_filter() {
    [ "$1" = dbanalytics.statements ] || return 0
    echo "WHERE (t.dbid, t.userid, t.queryid, t.toplevel) IN
          (SELECT s.dbid, s.userid, s.queryid, s.toplevel FROM $(history_source dbanalytics.statement_stats) s)"
}
# what history_rows reads for a table: the statement deltas packed or not once the installed
# version packs them (the collector packs an hour as soon as it is rolled up: a run across
# HH:00 finds the earlier rows in statement_stats_packed and statement_latency_packed)
history_source() {
    if [ "$(q "SELECT to_regproc('dbanalytics._packed_statement_minutes') IS NOT NULL")" = t ]; then
        case $1 in
            dbanalytics.statement_stats) echo "$STATEMENT_MINUTES"; return ;;
            dbanalytics.statement_latency) echo "$LATENCY_MINUTES"; return ;;
        esac
    fi
    echo "$1"
}
history_rows() {
    local line table columns
    while IFS='|' read -r table columns; do
        "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$CL" -p "$PORT" -U postgres -d "$DB" \
            -c "COPY (SELECT '$table', ($columns) FROM $(history_source "$table") t $(history_filter "$table")) TO STDOUT"
    done <<<"$HISTORY_COLUMNS" | LC_ALL=C sort
}
history_rows >"$DIR/history-before.txt"
info "history before the upgrade: $(wc -l <"$DIR/history-before.txt") rows in $(wc -l <<<"$HISTORY_COLUMNS") tables"
info "$(cut -f1 "$DIR/history-before.txt" | uniq -c | awk '{printf "%s=%s ", $2, $1}')"

# ---------------------------------------------------------------------------------------------
step "Install $CUR_VERSION beside $PREV_VERSION (the running server keeps the old library)"
install_tree "$CUR_TREE"
info "extension directory: $(cd "$EXTDIR" && ls dbanalytics* | tr '\n' ' ')"
check "both versions are available" "$PREV_VERSION $CUR_VERSION" \
    "$(q "SELECT string_agg(version, ' ' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'dbanalytics'")"
check "the update path $PREV_VERSION -> $CUR_VERSION is one script" "$PREV_VERSION--$CUR_VERSION" \
    "$(q "SELECT path FROM pg_extension_update_paths('dbanalytics') WHERE source = '$PREV_VERSION' AND target = '$CUR_VERSION'")"
check "the default version is $CUR_VERSION" "$CUR_VERSION" \
    "$(q "SELECT default_version FROM pg_available_extensions WHERE name = 'dbanalytics'")"

# ---------------------------------------------------------------------------------------------
step "Restart: the library $CUR_VERSION preloaded against the $PREV_VERSION catalog"
mark=$(log_mark)
cluster_stop "$CL"
cluster_start "$CL"
workers_running() {
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector')")" = 2 ]
}
wait_for "both workers run" 30 workers_running
# each worker shows in pg_stat_activity.query why it idles, or that it collects
worker_says_something() {
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector')
             AND query <> ''")" = 2 ]
}
wait_for "both workers report their state" 30 worker_says_something
# both workers went through a tick: each either says in the log why it idles or recorded a run
ticked_after_restart() {
    local since
    since=$(log_since "$mark")
    for worker in sampler collector; do
        grep -q "dbanalytics $worker: idle" <<<"$since" && continue
        [ "$(q "SELECT count(*) FROM dbanalytics.collector_runs WHERE worker = '$worker'
                 AND started_at > pg_postmaster_start_time()")" -gt 0 ] || return 1
    done
}
wait_for "both workers ticked (idling or collecting)" 60 ticked_after_restart
states=$(q "SELECT backend_type || ': ' || query FROM pg_stat_activity
             WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector') ORDER BY 1")
info "worker states: $(tr '\n' ';' <<<"$states")"
info "runs since the restart: $(q "SELECT string_agg(worker || '/' || source || ':' || status || coalesce(' (' || left(message, 80) || ')', ''), '; ' ORDER BY worker, source)
                                    FROM (SELECT DISTINCT ON (worker, source) * FROM dbanalytics.collector_runs
                                           WHERE started_at > pg_postmaster_start_time() ORDER BY worker, source, started_at DESC) r")"
idle_lines=$(log_since "$mark" | grep -E 'dbanalytics (sampler|collector): idle' || true)
if [ -n "$idle_lines" ]; then
    info "the workers idle, saying: $(head -n 1 <<<"$idle_lines" | sed 's/.*LOG: *//')"
    check "the idle message names the installed version and ALTER EXTENSION ... UPDATE" yes \
        "$(grep -q "$PREV_VERSION" <<<"$idle_lines" && grep -qi 'ALTER EXTENSION' <<<"$idle_lines" && echo yes || echo "$idle_lines")"
else
    info "the workers do not idle: they collect with the new library and the old catalog"
fi
check "no process crashed (new library, old catalog)" "" \
    "$(log_since "$mark" | grep -E 'terminated by signal|PANIC' || true)"
check "the server still answers" 1 "$(q "SELECT 1")"

# ---------------------------------------------------------------------------------------------
step "ALTER EXTENSION dbanalytics UPDATE while the workers run"
pids_before=$(q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                  WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector')")
mark=$(log_mark)
update_started=$(q "SELECT now()")
update_output=$("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$CL" -p "$PORT" -U postgres -d "$DB" \
    -c "ALTER EXTENSION dbanalytics UPDATE" 2>&1) \
    || { echo "$update_output" >&2; check "ALTER EXTENSION dbanalytics UPDATE succeeds" ok failed; exit 1; }
[ -z "$update_output" ] || info "ALTER EXTENSION said: $update_output"
check "the installed version is $CUR_VERSION" "$CUR_VERSION" \
    "$(q "SELECT extversion FROM pg_extension WHERE extname = 'dbanalytics'")"
check "the same worker processes run on (none restarted)" "$pids_before" \
    "$(q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
           WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector')")"

step "The history is intact"
history_rows >"$DIR/history-after.txt"
missing=$(LC_ALL=C comm -23 "$DIR/history-before.txt" "$DIR/history-after.txt" | wc -l)
check "every history row collected before the upgrade is still there, unchanged" 0 "$missing"
[ "$missing" = 0 ] || LC_ALL=C comm -23 "$DIR/history-before.txt" "$DIR/history-after.txt" | head -n 20 >&2
info "history after the upgrade: $(wc -l <"$DIR/history-after.txt") rows"
# partitions are not extension members (the catalog comparison below does not see them): each
# must have the indexes partition_indexes lists, and no parent an index of its own
check "every partition has its indexes, no partitioned parent has one" "0 0" \
    "$(q "SELECT (SELECT count(*) FROM pg_inherits h
                    JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_class p ON p.oid = h.inhparent
                    JOIN dbanalytics.partition_indexes x ON x.parent = p.relname
                   WHERE p.relnamespace = 'dbanalytics'::regnamespace
                     AND to_regclass(format('dbanalytics.%I', c.relname || '_' || x.suffix || '_idx')) IS NULL)
                 || ' ' ||
                 (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                   WHERE c.relkind = 'p' AND c.relnamespace = 'dbanalytics'::regnamespace)")"

step "Every source is healthy after the next snapshot"
snapshot_after_update() {
    [ "$(q "SELECT count(*) FROM dbanalytics.collector_runs
             WHERE worker = 'collector' AND source = 'retention' AND started_at > '$update_started'")" -gt 0 ] \
        && [ "$(q "SELECT count(*) FROM dbanalytics.collector_runs
                    WHERE worker = 'sampler' AND source = 'activity' AND started_at > '$update_started'")" -gt 0 ]
}
wait_for "a worker snapshot and a worker sample after the update" 60 snapshot_after_update
check "every source's last run was ok" "" \
    "$(q "SELECT string_agg(source || ': ' || last_status || ' ' || coalesce(last_error, skipped_reason, ''), '; ')
           FROM dbanalytics.collector_status WHERE last_status <> 'ok' AND NOT $UNAVAILABLE_HERE")"
check "collector_status says every source is healthy" "" \
    "$(q "SELECT string_agg(source || ': ' || health, '; ') FROM dbanalytics.collector_status WHERE health <> 'healthy' AND NOT $UNAVAILABLE_HERE")"
check "no source failed since the update" "" \
    "$(q "SELECT string_agg(DISTINCT source || ': ' || message, '; ') FROM dbanalytics.collector_runs
           WHERE started_at > '$update_started' AND status = 'error'")"

# ---------------------------------------------------------------------------------------------
step "The upgraded catalog equals a fresh install of $CUR_VERSION"
psql_at "$CL" "$PORT" postgres "CREATE DATABASE $FRESH"
psql_at "$CL" "$PORT" "$FRESH" "SET client_min_messages = error; CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
catalog() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$CL" -p "$PORT" -U postgres -d "$1" \
        -f tests/extension_catalog.sql
    # the rows CREATE EXTENSION seeds (tables that are not empty in a fresh install)
    local table
    for table in $SEEDED_TABLES; do
        "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$CL" -p "$PORT" -U postgres -d "$1" \
            -c "COPY (SELECT 'seeded_row $table ' || t::text FROM $table t ORDER BY 1) TO STDOUT"
    done
}
SEEDED_TABLES=$(psql_at "$CL" "$PORT" "$FRESH" "
    SELECT string_agg(c.oid::regclass::text, ' ' ORDER BY c.relname)
      FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dbanalytics')
       AND c.relkind = 'r'
       AND (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text::int > 0")
info "tables seeded by CREATE EXTENSION: ${SEEDED_TABLES:-none}"
catalog "$FRESH" >"$DIR/catalog-fresh.txt"
catalog "$DB" >"$DIR/catalog-upgraded.txt"
info "catalog signature: $(wc -l <"$DIR/catalog-fresh.txt") lines (fresh), $(wc -l <"$DIR/catalog-upgraded.txt") (upgraded)"
if diff -u "$DIR/catalog-fresh.txt" "$DIR/catalog-upgraded.txt" >"$DIR/catalog.diff"; then
    check "the upgraded catalog equals the fresh one" same same
else
    echo "--- catalog differences (- fresh install, + upgraded from $PREV_VERSION); full diff: $DIR/catalog.diff" >&2
    grep -E '^[-+][^-+]' "$DIR/catalog.diff" | cut -c 1-400 | head -n 80 >&2
    check "the upgraded catalog equals the fresh one" 0 "$(grep -cE '^[-+][^-+]' "$DIR/catalog.diff")"
fi

# ---------------------------------------------------------------------------------------------
step "Restart: the library $PREV_VERSION preloaded against the $CUR_VERSION catalog"
install_tree "$PREV_TREE" lib
mark=$(log_mark)
cluster_stop "$CL"
cluster_start "$CL"
wait_for "both workers run" 30 workers_running
# the old library has no version check: it ticks against the new catalog; each worker either
# records runs or logs why its tick failed
old_library_ran() {
    local since
    since=$(log_since "$mark")
    for worker in sampler collector; do
        grep -qE "dbanalytics $worker(: idle|: tick failed)" <<<"$since" && continue
        [ "$(q "SELECT count(*) FROM dbanalytics.collector_runs WHERE worker = '$worker'
                 AND started_at > pg_postmaster_start_time()")" -gt 0 ] || return 1
    done
}
wait_for "both workers of the old library ticked" 60 old_library_ran
info "worker states: $(q "SELECT backend_type || ': ' || query FROM pg_stat_activity
                         WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector') ORDER BY 1" | tr '\n' ';')"
info "what the old library logged: $(log_since "$mark" | grep -E 'WARNING|ERROR' | sed 's/^[^]]*] //' | sort | uniq -c | sort -rn | head -n 5 | tr '\n' ';')"
check "no process crashed (old library, new catalog)" "" \
    "$(log_since "$mark" | grep -E 'terminated by signal|PANIC' || true)"
check "the server still answers" 1 "$(q "SELECT 1")"

# ---------------------------------------------------------------------------------------------
step "Restart on the library $CUR_VERSION: healthy again, history kept"
install_tree "$CUR_TREE" lib
mark=$(log_mark)
cluster_stop "$CL"
cluster_start "$CL"
restarted=$(q "SELECT pg_postmaster_start_time()")
snapshot_after_restart() {
    [ "$(q "SELECT count(*) FROM dbanalytics.collector_runs
             WHERE worker = 'collector' AND source = 'retention' AND started_at > '$restarted'")" -gt 0 ]
}
wait_for "a worker snapshot after the restart" 60 snapshot_after_restart
check "every source's last run was ok" "" \
    "$(q "SELECT string_agg(source || ': ' || last_status || ' ' || coalesce(last_error, skipped_reason, ''), '; ')
           FROM dbanalytics.collector_status WHERE last_status <> 'ok' AND NOT $UNAVAILABLE_HERE")"
history_rows >"$DIR/history-end.txt"
check "every history row collected before the upgrade is still there" 0 \
    "$(LC_ALL=C comm -23 "$DIR/history-before.txt" "$DIR/history-end.txt" | wc -l)"
check "no process crashed during the whole test" "" \
    "$(grep -E 'terminated by signal|PANIC' "$CL/server.log" || true)"

info "took $(( $(date +%s) - started ))s"
finish_checks "e2e_upgrade ($PREV_VERSION -> $CUR_VERSION, PostgreSQL $PG_MAJOR)"
