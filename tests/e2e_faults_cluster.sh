#!/usr/bin/env bash
# More fault cases of issue 15 on real clusters (docs/reliability.md):
#   - 200 connections at once: the sampler keeps ticking and counts them all;
#   - huge and odd query texts (100 kB, newlines, tabs, quotes, dollar quotes, backslashes,
#     non-ASCII) are stored exactly as pg_stat_statements shows them and the analytics read them;
#   - an immediate shutdown under load, with a snapshot every 5 s: after the restart no
#     committed row is lost, no delta is negative, the first interval is marked as a reset and
#     collection goes on;
#   - a standby promoted to primary: its workers, idle during recovery, start collecting;
#   - DROP and CREATE EXTENSION dbanalytics, 10 times, while the workers and a take_snapshot()
#     insert: no deadlock, no error, collection resumes each time.
# Expects dbanalytics to be installed into the PostgreSQL in PG_CONFIG (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-faults-cluster
PRIMARY=$DIR/primary
STANDBY=$DIR/standby
PORT=5620
STANDBY_PORT=5621
DB=faultdb
q() { psql_at "$PRIMARY" "$PORT" "$DB" "$1"; }
qs() { psql_at "$STANDBY" "$STANDBY_PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
holds_on_standby() { [ "$(qs "SELECT ($1)")" = t ]; }
stop_clusters_on_exit "$PRIMARY" "$STANDBY"

step "Primary sampling every 200 ms, a snapshot every 5 s, 260 connections allowed"
rm -rf "$DIR"; mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$DIR"
cluster_init "$PRIMARY" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.sample_interval = '200ms'" \
    "dbanalytics.snapshot_interval = '5s'" "max_connections = 260" \
    "wal_level = replica" "max_wal_senders = 4" "max_prepared_transactions = 2"
cluster_start "$PRIMARY"
psql_at "$PRIMARY" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
q "CREATE TABLE f_rows (id int PRIMARY KEY, v int); INSERT INTO f_rows SELECT g, 0 FROM generate_series(1, 1000) g"
# the database did not exist when the server started after initdb
fault_case first_start_missing_database
wait_for "the sampler samples" 20 holds "EXISTS (SELECT FROM dbanalytics.connection_samples)"
check "the launcher never failed (it reads pg_database without an index before the relcache init file exists)" 0 \
    "$(grep -c 'cannot read pg_class without having selected a database' "$PRIMARY/server.log" || true)"
fault_case ""

# ---------------------------------------------------------------------------------------------
step "200 connections at once (each sleeping in a query): sampled, counted, ticks go on"
fault_case many_connections
printf 'SELECT pg_sleep(3);\n' >"$DIR/sleep.sql"
t0=$(q "SELECT now()")
"$PG_BIN/pgbench" -n -h "$PRIMARY" -p "$PORT" -U postgres -c 200 -j 4 -t 2 -f "$DIR/sleep.sql" "$DB" \
    >"$DIR/pgbench-many.log" 2>&1
check "a tick saw the 200 sleeping connections" t \
    "$(q "SELECT max(n) >= 200 FROM (SELECT sum(backends) AS n FROM dbanalytics.connection_samples
                                       WHERE sampled_at > '$t0' AND state = 'active' AND application_name = 'pgbench'
                                       GROUP BY sampled_at) s")"
check "every sampler tick during the burst succeeded" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.collector_runs
           WHERE started_at > '$t0' AND worker = 'sampler' AND status <> 'ok'")"
check "the sampler ticked at least every second during the 6 s burst" t \
    "$(q "SELECT count(*) >= 6 FROM dbanalytics.collector_runs WHERE started_at > '$t0' AND source = 'activity'")"

# ---------------------------------------------------------------------------------------------
step "Huge and odd query texts are stored exactly as pg_stat_statements has them"
fault_case odd_texts
BIG=$(head -c 100000 /dev/zero | tr '\0' 'x')
q "SELECT count(*) FROM f_rows /* huge: $BIG */" >/dev/null
q "SELECT \$odd\$ it's a \"quoted\" \\ back\\slash
	tab, ünïcödé, 漢字, عربي, emoji 🐘 \$odd\$ AS odd /* odd text */" >/dev/null
q "SELECT 1 AS \"a;b--c/*d*/\" /* identifier with SQL in it */" >/dev/null
wait_for "the texts are stored" 20 holds "(SELECT count(*) FROM dbanalytics.statement_texts
                                          WHERE query LIKE '%/* huge: x%' OR query LIKE '%/* odd text */%'
                                             OR query LIKE '%/* identifier with SQL in it */%') = 3"
check "each text equals pg_stat_statements' byte for byte" 3 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_texts t
           JOIN pg_stat_statements p ON (p.dbid, p.userid, p.queryid, p.toplevel) = (t.dbid, t.userid, t.queryid, t.toplevel)
          WHERE (t.query LIKE '%/* huge: x%' OR t.query LIKE '%/* odd text */%'
                 OR t.query LIKE '%/* identifier with SQL in it */%')
            AND md5(t.query) = md5(p.query)")"
check "the huge text is whole (over 100,000 characters)" t \
    "$(q "SELECT length(query) > 100000 FROM dbanalytics.statement_texts WHERE query LIKE '%/* huge: x%'")"
q "SELECT 1 FROM dbanalytics.take_snapshot()" >/dev/null
check "top_queries reads them" t \
    "$(q "SELECT count(*) >= 1 FROM dbanalytics.top_queries('1 hour', 'total_time', 1000) WHERE query LIKE '%odd text%'")"
check "query_analysis and index_advice run over them" t \
    "$(q "SELECT (SELECT count(*) FROM dbanalytics.query_analysis('1 hour')) >= 0
             AND (SELECT count(*) FROM dbanalytics.index_advice('1 hour')) >= 0")"

# ---------------------------------------------------------------------------------------------
# mid_snapshot_stop MODE: a prepared transaction holds today's server_stats partition (the
# `server` source comes after statements, databases, tables and indexes); once the collector's
# snapshot waits on it, having written those sources' rows in its transaction, the server is
# stopped in MODE and started again. Nothing of that snapshot may be kept, and every row
# committed before is.
HISTORY_TABLES=(statement_stats database_stats table_stats index_stats)
history_rows_until() {
    local t sql=""
    for t in "${HISTORY_TABLES[@]}"; do
        sql+="${sql:+ || ' ' || }'$t:' || (SELECT count(*) FROM dbanalytics.$t WHERE interval_end <= '$1')"
    done
    q "SELECT $sql"
}
mid_snapshot_stop() {
    local mode=$1 part before stopped=0
    part=server_stats_p$(q "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")
    q "BEGIN; LOCK TABLE dbanalytics.$part IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'mid_snapshot'"
    collector_waits() {
        holds "EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE a.backend_type = 'dbanalytics collector' AND NOT l.granted
                          AND l.relation = 'dbanalytics.$part'::regclass)"
    }
    wait_for "the collector's snapshot waits on the lock" 30 collector_waits
    check "it has written this snapshot's database_stats already (it holds their RowExclusiveLock)" t \
        "$(q "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                              WHERE a.backend_type = 'dbanalytics collector' AND l.granted AND l.mode = 'RowExclusiveLock'
                                AND l.relation = 'dbanalytics.database_stats'::regclass)")"
    stopped_at=$(q "SELECT now()")  # (global: the callers' checks read it)
    before=$(history_rows_until "$stopped_at")
    local t0
    t0=$(date +%s%N)
    as_pg_user "$PG_BIN/pg_ctl" -D "$PRIMARY/data" -m "$mode" -w -t 30 stop >/dev/null 2>&1 && stopped=1
    check "pg_ctl stop -m $mode completes while the snapshot waits" 1 "$stopped"
    info "(it took $(( ($(date +%s%N) - t0) / 1000000 )) ms: shown, not asserted)"
    cluster_start "$PRIMARY"
    q "ROLLBACK PREPARED 'mid_snapshot'"
    check "rows up to the stop: every committed one, none of the stopped snapshot ($before)" "$before" \
        "$(history_rows_until "$stopped_at")"
    wait_for "snapshots resume after the restart" 30 \
        holds "EXISTS (SELECT FROM dbanalytics.database_stats WHERE interval_end > '$stopped_at')"
    check "no negative database delta" 0 \
        "$(q "SELECT count(*) FROM dbanalytics.database_stats WHERE xact_commit < 0 OR tup_updated < 0 OR blks_hit < 0")"
}

step "Fast shutdown while the collector's snapshot waits on a lock, its first sources written"
fault_case fast_shutdown_mid_snapshot
mid_snapshot_stop fast

step "Immediate shutdown while the collector's snapshot waits on a lock, its first sources written"
fault_case immediate_mid_snapshot
mid_snapshot_stop immediate
check "the first database interval after the restart is marked as a reset (the statistics were lost)" t \
    "$(q "SELECT bool_and(reset) FROM dbanalytics.database_stats
           WHERE interval_end = (SELECT min(interval_end) FROM dbanalytics.database_stats
                                  WHERE interval_end > '$stopped_at')")"

# ---------------------------------------------------------------------------------------------
step "Immediate shutdown under load, with a snapshot every 5 s"
fault_case immediate_under_load
printf 'UPDATE f_rows SET v = v + 1 WHERE id = (random() * 999)::int + 1;\nSELECT count(*) FROM f_rows WHERE v > 0;\n' \
    >"$DIR/load.sql"
"$PG_BIN/pgbench" -n -h "$PRIMARY" -p "$PORT" -U postgres -c 4 -j 2 -T 30 -f "$DIR/load.sql" "$DB" \
    >"$DIR/pgbench-load.log" 2>&1 &
LOAD=$!
sleep 7
before=$(q "SELECT count(*) FROM $STATEMENT_MINUTES st")
last_end=$(q "SELECT max(interval_end) FROM $STATEMENT_MINUTES st")
as_pg_user "$PG_BIN/pg_ctl" -D "$PRIMARY/data" -m immediate -w stop >/dev/null
wait "$LOAD" 2>/dev/null || true
info "stopped (immediate) with $before statement_stats rows, the latest ending $last_end"
cluster_start "$PRIMARY"
wait_for "statement snapshots resume after the restart" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.statement_stats WHERE interval_end > '$last_end'::timestamptz + interval '2 seconds')"
check "no committed statement_stats row was lost" t \
    "$(q "SELECT count(*) >= $before FROM $STATEMENT_MINUTES st WHERE interval_end <= '$last_end'")"
check "no negative statement delta" 0 \
    "$(q "SELECT count(*) FROM $STATEMENT_MINUTES st
           WHERE calls < 0 OR rows < 0 OR total_exec_time < 0 OR shared_blks_hit < 0 OR shared_blks_read < 0 OR wal_bytes < 0")"
check "no negative database or table delta" 0 \
    "$(q "SELECT (SELECT count(*) FROM dbanalytics.database_stats WHERE xact_commit < 0 OR tup_updated < 0 OR blks_hit < 0)
               + (SELECT count(*) FROM dbanalytics.table_stats WHERE n_tup_upd < 0 OR seq_scan < 0 OR idx_scan < 0)")"
check "no interval stored twice" 0 \
    "$(q "SELECT count(*) FROM (SELECT 1 FROM $STATEMENT_MINUTES st
                                GROUP BY dbid, userid, queryid, toplevel, interval_end HAVING count(*) > 1) d")"
check "the first statement interval after the restart is marked as a reset" t \
    "$(q "SELECT bool_and(reset) FROM $STATEMENT_MINUTES st
           WHERE interval_end = (SELECT min(interval_end) FROM $STATEMENT_MINUTES s2 WHERE interval_end > '$last_end')")"
check "the first database interval after the restart is marked as a reset" t \
    "$(q "SELECT bool_and(reset) FROM dbanalytics.database_stats
           WHERE interval_end = (SELECT min(interval_end) FROM dbanalytics.database_stats WHERE interval_end > '$last_end')")"
check "no collection run failed since the restart" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.collector_runs WHERE started_at > '$last_end' AND status = 'error'")"

# ---------------------------------------------------------------------------------------------
step "A standby promoted to primary starts collecting"
fault_case promotion
as_pg_user "$PG_BIN/pg_basebackup" -h "$PRIMARY" -p "$PORT" -U postgres -D "$STANDBY/data" -R -X stream -c fast >/dev/null
as_pg_user sed -i -e "s/^port = .*/port = $STANDBY_PORT/" -e "s|^unix_socket_directories = .*|unix_socket_directories = '$STANDBY'|" \
    "$STANDBY/data/postgresql.conf"
cluster_start "$STANDBY"
wait_for "the standby's sampler says it idles in recovery" 30 \
    holds_on_standby "EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'dbanalytics sampler'
                               AND query LIKE 'idle:%recovery%')"
promoted_at=$(qs "SELECT now()")
as_pg_user "$PG_BIN/pg_ctl" -D "$STANDBY/data" -w promote >/dev/null
wait_for "the promoted server samples" 30 \
    holds_on_standby "EXISTS (SELECT FROM dbanalytics.connection_samples WHERE sampled_at > '$promoted_at')"
wait_for "the promoted server snapshots" 30 \
    holds_on_standby "EXISTS (SELECT FROM dbanalytics.database_stats WHERE interval_end > '$promoted_at')"
check "its collector_status shows both workers healthy" "collector:healthy,sampler:healthy" \
    "$(qs "SELECT string_agg(worker || ':' || health, ',' ORDER BY worker) FROM dbanalytics.collector_status
            WHERE source = 'worker'")"

# ---------------------------------------------------------------------------------------------
step "DROP and CREATE EXTENSION while the workers insert (sampler 200 ms, snapshot 5 s), 10 times"
fault_case drop_create_dbanalytics
# at varied points of the workers' ticks (the snapshot's is the one that takes seconds);
# each must go through without a deadlock or an error, and collection must resume each time
log_lines_before=$(wc -l <"$PRIMARY/server.log")
drop_create_failures=0
for pause in 0.1 0.7 1.3 2.1 3.4 4.6 0.3 1.7 2.9 4.1; do
    sleep "$pause"
    q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null 2>&1 &
    SNAPSHOT=$!
    sleep 0.05
    out=$(q "DROP EXTENSION dbanalytics" 2>&1) || { drop_create_failures=$((drop_create_failures + 1)); info "DROP: $out"; }
    wait "$SNAPSHOT" 2>/dev/null || true
    sleep 0.3
    out=$(q "CREATE EXTENSION dbanalytics" 2>&1) || { drop_create_failures=$((drop_create_failures + 1)); info "CREATE: $out"; }
done
check "every DROP and CREATE EXTENSION succeeded" 0 "$drop_create_failures"
recreated_at=$(q "SELECT now()")
wait_for "the sampler samples into the new extension" 20 \
    holds "EXISTS (SELECT FROM dbanalytics.connection_samples WHERE sampled_at > '$recreated_at')"
wait_for "the collector snapshots into it" 20 \
    holds "EXISTS (SELECT FROM dbanalytics.database_stats WHERE interval_end > '$recreated_at')"
check "no deadlock in the server log" 0 \
    "$(tail -n +"$((log_lines_before + 1))" "$PRIMARY/server.log" | grep -c 'deadlock detected' || true)"
check "the workers were not restarted by a crash" 0 \
    "$(tail -n +"$((log_lines_before + 1))" "$PRIMARY/server.log" | grep -c 'terminated by signal' || true)"
check "both workers healthy" "collector:healthy,sampler:healthy" \
    "$(q "SELECT string_agg(worker || ':' || health, ',' ORDER BY worker) FROM dbanalytics.collector_status
           WHERE source = 'worker'")"

finish_checks "e2e_faults_cluster"
