#!/usr/bin/env bash
# Fault injection on a real cluster (issue 15): the workers end promptly on SIGTERM even while
# they wait on a lock, a held lock costs recorded failures instead of a hang, hostile per-database
# settings do not reach the workers, a detached partition is attached again, and a worker that
# could not start is shown in collector_status. docs/reliability.md lists the cases.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-faults
NODE=$DIR/node
PORT=5540
DB=faultdb

q() { psql_at "$NODE" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
worker_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'dbanalytics $1'"; }

stop_clusters_on_exit "$NODE"

step "PostgreSQL $PG_MAJOR with dbanalytics preloaded, prepared transactions allowed"
rm -rf "$DIR"; mkdir -p "$DIR"
cluster_init "$NODE" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" \
    "dbanalytics.sample_interval = '1s'" \
    "dbanalytics.snapshot_interval = '5s'" \
    "max_prepared_transactions = 5"
cluster_start "$NODE"
psql_at "$NODE" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
wait_for "the sampler records samples" 30 holds "EXISTS (SELECT FROM dbanalytics.collector_runs
    WHERE worker = 'sampler' AND source = 'activity' AND status = 'ok')"

today_partition() { q "SELECT '$1_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')"; }

step "A lock held on today's partition: the sampler gives up within its lock_timeout and says so"
fault_case lock_history
conn_part=$(today_partition connection_samples)
q "BEGIN; LOCK TABLE dbanalytics.$conn_part IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'fault_lock'"
locked_at=$(q "SELECT now()")
wait_for "a failed sampler run naming the lock timeout" 30 holds "EXISTS (SELECT FROM dbanalytics.collector_runs
    WHERE worker = 'sampler' AND source = 'activity' AND status = 'error'
      AND started_at > '$locked_at' AND message LIKE '%lock timeout%')"
wait_for "the sampler is not stuck: it goes on with its ticks (three failed runs recorded)" 30 holds "(SELECT count(*) >= 3
    FROM dbanalytics.collector_runs
   WHERE worker = 'sampler' AND source = 'activity' AND status = 'error' AND started_at > '$locked_at')"

step "SIGTERM (pg_terminate_backend) ends the sampler while the lock is still held"
fault_case sigterm_in_lock_wait
old_pid=$(worker_pid sampler)
q "SELECT pg_terminate_backend($old_pid)" >/dev/null
sampler_restarted() { holds "EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'dbanalytics sampler' AND pid <> $old_pid)
                              AND NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $old_pid)"; }
wait_for "the terminated sampler is gone and the launcher started a new one" 30 sampler_restarted
check "the server log says the worker was terminated by an administrator command" t \
    "$(grep -q 'terminating background worker "dbanalytics sampler" due to administrator command' "$NODE/server.log" && echo t || echo f)"

step "Fast shutdown with the lock still held: completes (pg_ctl gives it 30 s; it hung before)"
fault_case fast_shutdown_lock
stopped=0
t0=$(date +%s%N)
as_pg_user "$PG_BIN/pg_ctl" -D "$NODE/data" -m fast -w -t 30 stop >/dev/null 2>&1 && stopped=1
check "pg_ctl stop -m fast succeeded while a prepared transaction holds the lock" 1 "$stopped"
info "(it took $(( ($(date +%s%N) - t0) / 1000000 )) ms: shown, not asserted)"
cluster_start "$NODE"
q "ROLLBACK PREPARED 'fault_lock'"

step "Hostile per-database settings do not reach the workers"
fault_case hostile_settings
qp() { psql_at "$NODE" "$PORT" postgres "$1"; }
qp "ALTER DATABASE $DB SET lock_timeout = '1ms'"
qp "ALTER DATABASE $DB SET statement_timeout = '1ms'"
qp "ALTER DATABASE $DB SET default_transaction_read_only = on"
qp "ALTER DATABASE $DB SET search_path = nowhere"
qp "ALTER DATABASE $DB SET transform_null_equals = on"
as_pg_user "$PG_BIN/pg_ctl" -D "$NODE/data" -m fast -w -t 60 restart -l "$NODE/server.log" >/dev/null
restarted_at=$(psql_at "$NODE" "$PORT" postgres "SELECT now()")
collected_after_restart() {
    [ "$(psql_at "$NODE" "$PORT" "$DB" "SET default_transaction_read_only = off; SET statement_timeout = 0;
          SELECT count(DISTINCT source) >= 10 FROM dbanalytics.collector_runs
           WHERE worker = 'collector' AND status = 'ok' AND started_at > '$restarted_at'")" = t ]
}
wait_for "a whole snapshot by the collector after the restart" 60 collected_after_restart
check "no source failed after the restart" "" \
    "$(psql_at "$NODE" "$PORT" "$DB" "SET statement_timeout = 0;
          SELECT string_agg(DISTINCT source || ': ' || message, '; ') FROM dbanalytics.collector_runs
           WHERE status = 'error' AND started_at > '$restarted_at'")"
qp "ALTER DATABASE $DB RESET ALL"

step "A long lock on a monitored table: the tables and indexes sources go on without its size"
fault_case lock_monitored
q "CREATE TABLE fault_locked (id int PRIMARY KEY, v text); INSERT INTO fault_locked SELECT g, 'x' FROM generate_series(1, 1000) g;
   CREATE TABLE fault_free (id int PRIMARY KEY, v text)"
q "SET lock_timeout = '5s'; SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
# what VACUUM FULL or ALTER TABLE hold for as long as they run
q "BEGIN; LOCK TABLE fault_locked IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'fault_user_lock'"
user_locked_at=$(q "SELECT now()")
q "INSERT INTO fault_free SELECT g, 'y' FROM generate_series(1, 1000) g"
# take_snapshot() under a lock_timeout: before, the sources waited on the table's lock (and the
# collector's own snapshot, waiting as long, held the snapshot lock)
check "take_snapshot()'s tables and indexes sources succeed while the table is locked" "indexes:ok,tables:ok" \
    "$(q "SET lock_timeout = '5s';
          SELECT string_agg(source || ':' || status, ',' ORDER BY source) FROM dbanalytics.take_snapshot()
           WHERE source IN ('tables', 'indexes')" 2>&1)"
check "the other table has its size in that snapshot" t \
    "$(q "SELECT table_size > 0 FROM dbanalytics.table_stats WHERE relname = 'fault_free'
           ORDER BY interval_end DESC LIMIT 1")"
check "the locked table has none (NULL), if it has a row" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.table_stats
           WHERE relname = 'fault_locked' AND interval_end > '$user_locked_at' AND table_size IS NOT NULL")"
wait_for "the collector's own tables and indexes sources succeed while the table is locked" 30 holds \
    "(SELECT count(DISTINCT source) = 2 FROM dbanalytics.collector_runs
       WHERE worker = 'collector' AND source IN ('tables', 'indexes') AND status = 'ok' AND started_at > '$user_locked_at')"
check "and none of theirs failed" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.collector_runs
           WHERE source IN ('tables', 'indexes') AND status <> 'ok' AND started_at > '$user_locked_at'")"
check "index_effectiveness, table_maintenance and health_score answer while it is locked (lock_timeout 2 s)" t \
    "$(q "SET lock_timeout = '2s';
          SELECT (SELECT count(*) > 0 FROM dbanalytics.index_effectiveness('1 hour'))
             AND (SELECT count(*) > 0 FROM dbanalytics.table_maintenance)
             AND (SELECT dbanalytics.health_score('1 hour') ? 'overall_score')" 2>&1)"
q "ROLLBACK PREPARED 'fault_user_lock'"

step "A detached partition is attached again by the next snapshot"
fault_case detached_partition
raw_part=$(today_partition activity_raw)
q "ALTER TABLE dbanalytics.activity_raw DETACH PARTITION dbanalytics.$raw_part"
check "detached" f "$(q "SELECT relispartition FROM pg_class WHERE oid = 'dbanalytics.$raw_part'::regclass")"
wait_for "the partition is attached again" 30 holds "(SELECT relispartition FROM pg_class WHERE oid = 'dbanalytics.$raw_part'::regclass)"
check "the collector said so in the server log" t \
    "$(grep -q "re-attached the detached partition dbanalytics.$raw_part" "$NODE/server.log" && echo t || echo f)"
reattached_at=$(q "SELECT now()")
wait_for "sampling goes on into it" 30 holds "EXISTS (SELECT FROM dbanalytics.collector_runs
    WHERE worker = 'sampler' AND source = 'activity' AND status = 'ok' AND started_at > '$reattached_at')"

step "Today's partition dropped: created again, sampling resumes"
fault_case dropped_partition
conn_part=$(today_partition connection_samples)
q "DROP TABLE dbanalytics.$conn_part"
dropped_at=$(q "SELECT now()")
wait_for "today's connection_samples partition exists again" 30 holds "to_regclass('dbanalytics.$conn_part') IS NOT NULL"
wait_for "and samples land in it" 30 holds "EXISTS (SELECT FROM dbanalytics.$conn_part WHERE sampled_at > '$dropped_at')"

step "A planted table in a future partition's place is refused, not taken for the partition"
fault_case planted_partition
future=$(q "SELECT 'lock_waits_p' || to_char((now() AT TIME ZONE 'UTC')::date + 2, 'YYYYMMDD')")
q "DROP TABLE dbanalytics.$future"
q "CREATE VIEW dbanalytics.$future AS SELECT 1 AS planted"
check "take_snapshot()'s partitions source fails and names what is in the way" t \
    "$(q "SELECT message LIKE '%dbanalytics.$future should be a partition of dbanalytics.lock_waits, but it is a view%'
            FROM dbanalytics.take_snapshot() WHERE source = 'partitions'")"
q "DROP VIEW dbanalytics.$future"
check "with the view gone, the partition is created" "ok" \
    "$(q "SELECT status FROM dbanalytics.take_snapshot() WHERE source = 'partitions'")"

step "A worker that could not start is shown in collector_status"
fault_case worker_slots
as_pg_user "$PG_BIN/pg_ctl" -D "$NODE/data" -m fast -w -t 60 stop >/dev/null
# three slots: the logical replication launcher, dbanalytics' launcher and the sampler (started
# first); none is left for the collector
echo "max_worker_processes = 3" | as_pg_user tee -a "$NODE/data/postgresql.conf" >/dev/null
cluster_start "$NODE"
one_worker_up() { holds "(SELECT count(*) FROM pg_stat_activity
                          WHERE backend_type IN ('dbanalytics sampler', 'dbanalytics collector')) = 1"; }
wait_for "one of the two workers runs" 30 one_worker_up
sleep 12  # the launcher looks again every 5 s: room for the WARNING to be repeated (it must not)
check "the server log names the worker that could not start, once" 1 \
    "$(grep -c 'dbanalytics: could not start the dbanalytics collector: no free background worker slot' "$NODE/server.log" || true)"
check "collector_status: one worker healthy, the other not running with a reason" \
    "healthy:1 not running:1 reason:true" \
    "$(q "SELECT 'healthy:' || count(*) FILTER (WHERE health = 'healthy')
            || ' not running:' || count(*) FILTER (WHERE health = 'not running')
            || ' reason:' || bool_and(skipped_reason LIKE '%max_worker_processes%') FILTER (WHERE health = 'not running')
            FROM dbanalytics.collector_status WHERE source = 'worker'")"
check "health_score() says collection is degraded, naming the worker that does not run" \
    "degraded worker:collector:not running:true" \
    "$(q "SELECT h->'collection'->>'status' || ' ' || string_agg(p->>'source' || ':' || (p->>'worker') || ':' || (p->>'health')
                                                        || ':' || (p->>'detail' LIKE '%max_worker_processes%'), ' ')
            FROM (SELECT dbanalytics.health_score('1 hour') h) s,
                 jsonb_array_elements(s.h->'collection'->'problems') p
           WHERE p->>'source' = 'worker' GROUP BY h")"

step "dbanalytics.database names a missing database: said once, then collection starts when it appears"
fault_case missing_database
as_pg_user "$PG_BIN/pg_ctl" -D "$NODE/data" -m fast -w -t 60 stop >/dev/null
{
    echo "max_worker_processes = 8"
    echo "dbanalytics.database = 'latedb'"
} | as_pg_user tee -a "$NODE/data/postgresql.conf" >/dev/null
cluster_start "$NODE"
launcher_waits() { [ "$(psql_at "$NODE" "$PORT" postgres "SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'dbanalytics launcher' AND query LIKE 'idle: database \"latedb\"%does not exist'")" = 1 ]; }
wait_for "the launcher says it waits for the database" 30 launcher_waits
sleep 12  # three more looks at the database by the launcher
check "one WARNING about the missing database, with its HINT" "1 1" \
    "$(grep -c 'WARNING:  dbanalytics: database "latedb" named by dbanalytics.database does not exist' "$NODE/server.log" || true) $(grep -A1 'WARNING:  dbanalytics: database "latedb"' "$NODE/server.log" | grep -c 'HINT:  Create that database' || true)"
check "no worker died trying to connect to it" 0 \
    "$(grep -c 'FATAL:  database "latedb" does not exist' "$NODE/server.log" || true)"
psql_at "$NODE" "$PORT" postgres "CREATE DATABASE latedb"
psql_at "$NODE" "$PORT" latedb "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
late_collects() { [ "$(psql_at "$NODE" "$PORT" latedb "SELECT count(*) > 0 FROM dbanalytics.collector_runs
    WHERE worker = 'sampler' AND status = 'ok'")" = t ]; }
wait_for "the workers start by themselves and sample the new database" 60 late_collects
late_healthy() { [ "$(psql_at "$NODE" "$PORT" latedb "SELECT dbanalytics.health_score('1 hour')->'collection'
    = '{\"status\": \"healthy\", \"problems\": []}'")" = t ]; }
wait_for "health_score() says collection is healthy there" 60 late_healthy
# a reader does not see the workers' backend_type in pg_stat_activity (they run as the bootstrap
# superuser): collector_status finds them through _worker_processes()
psql_at "$NODE" "$PORT" latedb "CREATE ROLE fault_reader NOLOGIN IN ROLE dbanalytics_reader"
check "a reader without pg_read_all_stats sees collection healthy too" t \
    "$(psql_at "$NODE" "$PORT" latedb "SET ROLE fault_reader;
        SELECT dbanalytics.health_score('1 hour')->'collection' = '{\"status\": \"healthy\", \"problems\": []}'")"

fault_case ""
check "no process crashed during the whole test" 0 \
    "$(grep -c 'terminated by signal' "$NODE/server.log" || true)"
finish_checks "e2e_faults"
