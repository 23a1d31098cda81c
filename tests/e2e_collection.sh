#!/usr/bin/env bash
# End-to-end test of the collection foundation on a real cluster that this script starts and
# stops: a primary with the workers and a pgbench workload, plus a streaming standby.
# Expects dbanalytics to be installed into the system PostgreSQL 15 (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-collection
PRIMARY=$DIR/primary
STANDBY=$DIR/standby
PORT=55432
STANDBY_PORT=55433
DB=appdb
SNAPSHOT_S=5

q() { psql_at "$PRIMARY" "$PORT" "$DB" "$1"; }
qs() { psql_at "$STANDBY" "$STANDBY_PORT" "$DB" "$1"; }
# true once the boolean SQL condition holds on the primary (or the standby)
holds() { [ "$(q "SELECT ($1)")" = t ]; }
holds_on_standby() { [ "$(qs "SELECT ($1)")" = t ]; }
holds_in_postgres() { [ "$(psql_at "$PRIMARY" "$PORT" postgres "SELECT ($1)")" = t ]; }

stop_clusters_on_exit "$PRIMARY" "$STANDBY"

step "Starting a primary with shared_preload_libraries = 'pg_stat_statements,dbanalytics'"
rm -rf "$DIR"; mkdir -p "$DIR"
cluster_init "$PRIMARY" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" \
    "dbanalytics.sample_interval = '1s'" \
    "dbanalytics.snapshot_interval = '${SNAPSHOT_S}s'" \
    "max_connections = 40" "wal_level = replica" "max_wal_senders = 4" \
    "restart_after_crash = on"
cluster_start "$PRIMARY"
psql_at "$PRIMARY" "$PORT" postgres "CREATE DATABASE $DB"

step "Workers idle until the extension exists"
wait_for "sampler says it waits for CREATE EXTENSION" 20 holds_in_postgres "EXISTS (SELECT FROM pg_stat_activity
        WHERE backend_type = 'dbanalytics sampler' AND query LIKE 'idle: waiting for CREATE EXTENSION%')"

q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
as_pg_user "$PG_BIN/pgbench" -h "$PRIMARY" -p "$PORT" -U postgres -i -s 5 -q "$DB" >/dev/null 2>&1

step "Streaming standby from a physical slot"
mkdir -p "$STANDBY" && chown "$PG_OS_USER" "$STANDBY" 2>/dev/null || true
as_pg_user "$PG_BIN/pg_basebackup" -h "$PRIMARY" -p "$PORT" -U postgres -D "$STANDBY/data" \
    -R -C -S e2e_standby_slot -X stream -c fast >/dev/null
{
    echo "port = $STANDBY_PORT"
    echo "unix_socket_directories = '$STANDBY'"
} | as_pg_user tee -a "$STANDBY/data/postgresql.auto.conf" >/dev/null
cluster_start "$STANDBY"

step "pgbench workload (4 clients) with a lock wait on a known table"
as_pg_user "$PG_BIN/pgbench" -h "$PRIMARY" -p "$PORT" -U postgres -c 4 -j 2 -T 80 "$DB" \
    >"$DIR/pgbench.log" 2>&1 &
PGBENCH_PID=$!
q "CREATE TABLE e2e_locked (id int)"
q "BEGIN; LOCK TABLE e2e_locked IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT" &
HOLDER=$!
sleep 1
q "SELECT count(*) FROM e2e_locked" >/dev/null &
WAITER=$!
wait $HOLDER $WAITER

wait_for "two snapshots with statement deltas" 40 \
    holds "(SELECT count(DISTINCT interval_end) FROM dbanalytics.statement_stats) >= 2"

step "Every history table gets rows"
for table in activity_samples connection_samples lock_waits statement_stats database_stats \
    table_stats index_stats bgwriter_stats replication_stats replication_slot_stats collector_runs; do
    check "$table has rows" t "$(q "SELECT count(*) > 0 FROM dbanalytics.$table")"
done
wait_for "the minute rollups (activity_minute, connection_minute)" 100 \
    holds "(SELECT count(*) FROM dbanalytics.activity_minute) > 0
           AND (SELECT count(*) FROM dbanalytics.connection_minute) > 0"
check "statements has the pgbench UPDATE text" t \
    "$(q "SELECT count(*) > 0 FROM dbanalytics.statements WHERE query LIKE 'UPDATE pgbench_accounts%'")"
check "pgbench's UPDATE has calls in statement_stats" t \
    "$(q "SELECT sum(st.calls) > 100 FROM $STATEMENT_MINUTES st
            JOIN dbanalytics.statements s USING (dbid, userid, queryid, toplevel)
           WHERE s.query LIKE 'UPDATE pgbench_accounts%'")"
check "the lock wait names the table and its blocker" t \
    "$(q "SELECT bool_and(cardinality(blocking_pids) = 1) FROM dbanalytics.lock_waits
           WHERE relation_name = 'e2e_locked' HAVING count(*) >= 2")"
check "connection samples count the idle-included states of pgbench" t \
    "$(q "SELECT max(backends) >= 1 FROM dbanalytics.connection_samples WHERE application_name = 'pgbench'")"
check "the standby appears in replication_stats" t \
    "$(q "SELECT count(*) > 0 FROM dbanalytics.replication_stats WHERE state = 'streaming'")"
check "the slot appears in replication_slot_stats" t \
    "$(q "SELECT count(*) > 0 FROM dbanalytics.replication_slot_stats WHERE slot_name = 'e2e_standby_slot'")"
check "database_stats commits match the workload scale (> 100 in the window)" t \
    "$(q "SELECT sum(xact_commit) > 100 FROM dbanalytics.database_stats WHERE datname = '$DB'")"

step "collector_status shows every source healthy"
# pg_stat_io exists from 16: before, the io source is skipped (and says why, e2e_versions.sh)
if [ "$PG_MAJOR" -ge 16 ]; then io=healthy; else io=skipped; fi
check "sources and their health" \
    "activity:healthy alerts:healthy bgwriter:healthy databases:healthy health:healthy indexes:healthy io:$io latency:healthy pack_minutes:healthy partitions:healthy plans:healthy replication:healthy replication_slots:healthy retention:healthy rollup:healthy rollup_hours:healthy server:healthy statements:healthy tables:healthy" \
    "$(q "SELECT string_agg(source || ':' || health, ' ' ORDER BY source) FROM dbanalytics.collector_status
           WHERE source <> 'worker'")"
check "both workers run, each shown with its process" "collector:ok:healthy sampler:ok:healthy" \
    "$(q "SELECT string_agg(worker || ':' || last_status || ':' || health, ' ' ORDER BY worker)
            FROM dbanalytics.collector_status WHERE source = 'worker'")"

step "Partitions for today and the next two days"
check "every partitioned table has its tier (storage::partitions::PARTITIONED_TABLES)" none \
    "$(q "SELECT coalesce(string_agg(c.relname, ','), 'none') FROM pg_class c
           WHERE c.relnamespace = 'dbanalytics'::regnamespace AND c.relkind = 'p'
             AND c.relname NOT IN (SELECT table_name FROM dbanalytics._storage_tiers())")"
check "3 daily partitions per partitioned table" \
    "$(q "SELECT count(*) FROM dbanalytics._storage_tiers()") tables x 3 days" \
    "$(q "SELECT count(DISTINCT p.relname) || ' tables x ' || min(n) || ' days' FROM (
            SELECT p.relname, count(*) AS n
              FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relnamespace = 'dbanalytics'::regnamespace
               AND c.relname IN (p.relname || to_char(now() AT TIME ZONE 'UTC', '\"_p\"YYYYMMDD'),
                                 p.relname || to_char(now() AT TIME ZONE 'UTC' + interval '1 day', '\"_p\"YYYYMMDD'),
                                 p.relname || to_char(now() AT TIME ZONE 'UTC' + interval '2 days', '\"_p\"YYYYMMDD'))
             GROUP BY p.relname) p")"

step "Retention drops an (empty) statement_stats partition past retention_minutes at the next maintenance run"
fault_case retention
q "CREATE TABLE dbanalytics.statement_stats_p20200101 PARTITION OF dbanalytics.statement_stats
     FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-01-02 00:00:00+00')"
wait_for "statement_stats_p20200101 dropped by the collector" 30 \
    holds "to_regclass('dbanalytics.statement_stats_p20200101') IS NULL"

step "pg_stat_statements_reset() between two snapshots"
fault_case pgss_reset
RESET_AT=$(q "SELECT now()")
q "SELECT pg_stat_statements_reset()" >/dev/null
wait_for "a snapshot after the reset marks its rows reset" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.statement_stats WHERE reset AND interval_end > '$RESET_AT')"
check "no negative delta anywhere in statement_stats" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_stats
           WHERE least(calls, plans, rows, shared_blks_hit, shared_blks_read, temp_blks_written, wal_bytes) < 0
              OR least(total_exec_time, total_plan_time, blk_read_time) < 0")"
check "the statements run says why" "statistics were reset" \
    "$(q "SELECT message FROM dbanalytics.collector_runs
           WHERE source = 'statements' AND reset AND started_at > '$RESET_AT' LIMIT 1")"

step "pg_stat_statements_reset() of one entry between two snapshots"
fault_case pgss_entry_reset
q "CREATE TABLE entry_probe (id int)"
ENTRY_A="SELECT count(*) FROM entry_probe"
ENTRY_B="SELECT min(id) FROM entry_probe"
runs() { local i; for ((i = 0; i < $2; i++)); do q "$1" >/dev/null; done; }
entry_calls_after() {
    q "SELECT coalesce(sum(st.calls), 0) FROM $STATEMENT_MINUTES st
         JOIN dbanalytics.statements s USING (dbid, userid, queryid, toplevel)
        WHERE s.query = '$1' AND st.interval_end > '$2'"
}
BEFORE_ENTRIES=$(q "SELECT now()")
runs "$ENTRY_A" 5
runs "$ENTRY_B" 5
counted() { [ "$(entry_calls_after "$ENTRY_A" "$BEFORE_ENTRIES")" = 5 ] && [ "$(entry_calls_after "$ENTRY_B" "$BEFORE_ENTRIES")" = 5 ]; }
wait_for "a snapshot has the 5 calls of each" 30 counted
ENTRY_RESET_AT=$(q "SELECT now()")
q "SELECT pg_stat_statements_reset(0, 0, queryid) FROM pg_stat_statements WHERE query = '$ENTRY_A'" >/dev/null
runs "$ENTRY_A" 2
runs "$ENTRY_B" 3
# the reset took: A counts again from 0 (without it, A's delta would be 2 as well: 7 - 5)
check "pg_stat_statements counts the reset entry from 0 (2 calls), the other on (8)" "2 8" \
    "$(q "SELECT (SELECT calls FROM pg_stat_statements WHERE query = '$ENTRY_A') || ' '
              || (SELECT calls FROM pg_stat_statements WHERE query = '$ENTRY_B')")"
counted_after_reset() { [ "$(entry_calls_after "$ENTRY_B" "$ENTRY_RESET_AT")" = 3 ]; }
wait_for "a snapshot after the entry's reset has the other entry's 3 calls" 30 counted_after_reset
check "the reset entry's delta is its new count (2 calls)" 2 "$(entry_calls_after "$ENTRY_A" "$ENTRY_RESET_AT")"
check "no negative delta anywhere in statement_stats" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_stats WHERE least(calls, rows, shared_blks_hit) < 0 OR total_exec_time < 0")"

step "pg_stat_reset_shared() of the bgwriter and checkpointer statistics between two snapshots"
fault_case shared_reset
SHARED_RESET_AT=$(q "SELECT now()")
if [ "$PG_MAJOR" -ge 17 ]; then
    q "SELECT pg_stat_reset_shared('bgwriter'), pg_stat_reset_shared('checkpointer')" >/dev/null
else
    q "SELECT pg_stat_reset_shared('bgwriter')" >/dev/null
fi
wait_for "two bgwriter snapshots after the reset" 30 \
    holds "(SELECT count(*) FROM dbanalytics.bgwriter_stats WHERE interval_end > '$SHARED_RESET_AT') >= 2"
check "no negative delta in bgwriter_stats" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.bgwriter_stats b, jsonb_each(to_jsonb(b)) e
           WHERE jsonb_typeof(e.value) = 'number' AND e.value::text::numeric < 0")"
# a snapshot whose transaction began before the reset may have read the counters before it too:
# the mark is looked for in every interval after SHARED_RESET_AT (up to 16 it comes from
# pg_stat_bgwriter.stats_reset, from 17 from a counter that went back: versions.sql)
check "an interval after the reset is marked as a reset" t \
    "$(q "SELECT EXISTS (SELECT FROM dbanalytics.bgwriter_stats WHERE reset AND interval_end > '$SHARED_RESET_AT')")"
check "no overcount: buffers allocated from the marked interval on, as stored, are at most what the server counts now" t \
    "$(q "SELECT sum(buffers_alloc) <= (SELECT buffers_alloc FROM pg_stat_bgwriter)
            FROM dbanalytics.bgwriter_stats
           WHERE interval_end >= (SELECT min(interval_end) FROM dbanalytics.bgwriter_stats
                                   WHERE reset AND interval_end > '$SHARED_RESET_AT')")"

step "SIGHUP: sample_interval 1s -> 200ms takes effect without a restart"
fault_case sighup
q "ALTER SYSTEM SET dbanalytics.sample_interval = '200ms'"
q "SELECT pg_reload_conf()" >/dev/null
sleep 2
T0=$(q "SELECT now()")
sleep 3
check "more than 8 sampler ticks in 3 s (a 1 s interval gives at most 4)" t \
    "$(q "SELECT count(DISTINCT sampled_at) > 8 FROM dbanalytics.connection_samples
           WHERE sampled_at > '$T0' AND sampled_at <= '$T0'::timestamptz + interval '3 s'")"
q "ALTER SYSTEM RESET dbanalytics.sample_interval"
q "SELECT pg_reload_conf()" >/dev/null

step "A worker killed with SIGTERM comes back and keeps sampling"
fault_case sigterm
SAMPLER=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'dbanalytics sampler'")
kill -TERM "$SAMPLER"
wait_for "a new sampler process" 30 \
    holds "EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'dbanalytics sampler' AND pid <> $SAMPLER)"
T1=$(q "SELECT now()")
wait_for "samples after the SIGTERM restart" 15 \
    holds "EXISTS (SELECT FROM dbanalytics.connection_samples WHERE sampled_at > '$T1')"

step "A worker killed with SIGKILL: crash restart, then sampling again"
fault_case sigkill
COLLECTOR=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'dbanalytics collector'")
T2=$(q "SELECT now()")
kill -KILL "$COLLECTOR"
wait "$PGBENCH_PID" 2>/dev/null || true # the crash restart ends pgbench's connections
PGBENCH_PID=
wait_for "the server accepts connections again" 60 holds "true"
wait_for "samples after the crash restart" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.connection_samples WHERE sampled_at > '$T2')"
wait_for "a snapshot after the crash restart, marked as a restart" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.collector_runs
                    WHERE source = 'databases' AND started_at > '$T2' AND reset)"

step "Dropping pg_stat_statements leaves the other sources working; created again, it is collected again"
fault_case drop_create_pgss
q "DROP EXTENSION pg_stat_statements"
T3=$(q "SELECT now()")
wait_for "two snapshots after the drop" 30 \
    holds "(SELECT count(*) FROM dbanalytics.collector_runs WHERE source = 'databases' AND started_at > '$T3') >= 2"
check "statements is skipped with a reason" "skipped" \
    "$(q "SELECT health FROM dbanalytics.collector_status WHERE source = 'statements'")"
check "the reason says how to fix it" t \
    "$(q "SELECT skipped_reason LIKE '%CREATE EXTENSION pg_stat_statements%' FROM dbanalytics.collector_status WHERE source = 'statements'")"
check "every other source still succeeds" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.collector_runs WHERE started_at > '$T3' AND status <> 'ok' AND source <> 'statements' AND NOT $UNAVAILABLE_HERE")"
q "CREATE EXTENSION pg_stat_statements"
T4=$(q "SELECT now()")
wait_for "created again, statements succeeds at the next snapshot" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.collector_runs WHERE source = 'statements' AND status = 'ok' AND started_at > '$T4')"
check "no negative statement delta after it came back" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_stats WHERE interval_end > '$T4' AND (calls < 0 OR total_exec_time < 0)")"

step "On the standby the workers idle and say so; the tables are readable"
fault_case standby
wait_for "standby sampler reports recovery" 20 \
    holds_on_standby "EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'dbanalytics sampler'
                              AND query LIKE 'idle: server is in recovery%')"
check "collector_status is readable on the standby" t "$(qs "SELECT count(*) > 0 FROM dbanalytics.collector_status")"

step "Security: PUBLIC reads nothing; a reader sees history but not others' query texts"
fault_case ""
q "CREATE ROLE e2e_nobody LOGIN; CREATE ROLE e2e_reader LOGIN IN ROLE dbanalytics_reader"
check "PUBLIC cannot read activity_samples" f \
    "$(q "SELECT has_table_privilege('e2e_nobody', 'dbanalytics.activity_samples', 'SELECT')")"
check "a reader can read activity_samples" t \
    "$(q "SELECT has_table_privilege('e2e_reader', 'dbanalytics.activity_samples', 'SELECT')")"
check "a reader cannot read the raw texts" f \
    "$(q "SELECT has_table_privilege('e2e_reader', 'dbanalytics.statements', 'SELECT')")"
check "a reader sees others' texts as <insufficient privilege>" "<insufficient privilege>" \
    "$(q "SET ROLE e2e_reader; SELECT DISTINCT query FROM dbanalytics.statement_texts WHERE usename = 'postgres'")"
check "a reader cannot run take_snapshot()" f \
    "$(q "SELECT has_function_privilege('e2e_reader', 'dbanalytics.take_snapshot()', 'EXECUTE')")"

finish_checks e2e_collection
