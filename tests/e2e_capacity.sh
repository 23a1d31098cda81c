#!/usr/bin/env bash
# End-to-end test of the capacity analytics on a real cluster:
# - server_stats: the host figures match /proc (CPUs, memory), the host's user CPU time covers
#   the user CPU time the kernel counted for a backend running a CPU-bound query, and WAL
#   written between two snapshots is what wal_generation() counts;
# - per statement (executor hooks, getrusage): a CPU-bound query's user CPU time in top_queries
#   and query_analysis is the kernel's count for its backend (/proc/self/stat), and a read of
#   a cold table shows the kernel's reads;
# None of these depends on the machine being idle: no CPU time is compared with a duration.
# - the daily size rollup keeps the last size of the day;
# - space_growth on generated daily sizes gives the growth, fit and forecast dates a hand
#   calculation gives, for a table against a target and for the data directory's file system
#   against its capacity, which raises the disk_full_soon alert;
# - wraparound_risk takes the consumption rate from the history and a table's own
#   autovacuum_freeze_max_age, and a fast consumption raises the wraparound_soon alert.
# Expects dbanalytics to be installed into the PostgreSQL in PG_CONFIG (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-capacity
DATA=$DIR/data
PORT=5584
DB=appdb
q() { psql_at "$DATA" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
# backend_cpu_seconds user|total QUERY [SETTING_SQL]: runs QUERY in one session and prints the
# CPU seconds the kernel counted for that backend around it (/proc/self/stat): in user mode
# (utime, field 14), or in user and kernel mode (+ stime, field 15). The kernel splits a task's
# exact run time between the two in proportion to 10 ms tick samples, so only their sum is
# exact over a short stretch.
backend_cpu_seconds() {
    local fields="pg_catalog.string_to_array(pg_catalog.substring(pg_catalog.pg_read_file('/proc/self/stat'), '\\) (.*)\$'), ' ')"
    local ticks="(f[12]::bigint)"
    [ "$1" = total ] && ticks="(f[12]::bigint + f[13]::bigint)"
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DATA" -p "$PORT" -U postgres -d "$DB" <<SQL
${3:-SELECT} \\g /dev/null
SELECT $ticks AS before_ticks FROM (SELECT $fields AS f) s \\gset
$2 \\g /dev/null
SELECT round(($ticks - :before_ticks)::numeric / $(getconf CLK_TCK), 2) FROM (SELECT $fields AS f) s;
SQL
}
stop_clusters_on_exit "$DATA"

step "A cluster snapshotting every 5 s"
rm -rf "$DIR"; mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$DIR"
# PostgreSQL 18's I/O workers read for the backends by default: a statement's own reads are
# measured with io_method = sync (docs/capacity.md says so)
IO_METHOD=()
[ "$PG_MAJOR" -ge 18 ] && IO_METHOD=("io_method = sync")
cluster_init "$DATA" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.snapshot_interval = '5s'" "autovacuum = off" \
    "shared_buffers = '16MB'" "${IO_METHOD[@]}"
cluster_start "$DATA"
psql_at "$DATA" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
# the generated history below reaches 4 days back (and hours back, yesterday after midnight)
q "$(past_partitions_sql 4)"
wait_for "two server snapshots" 30 holds "(SELECT count(*) FROM dbanalytics.server_stats) >= 2"

step "Host figures from /proc"
check "host_status is ok" "ok" "$(q "SELECT host_status FROM dbanalytics.server_stats ORDER BY interval_end DESC LIMIT 1")"
check "CPUs as /proc/stat lists them" "$(grep -c '^cpu[0-9]' /proc/stat)" \
    "$(q "SELECT cpus FROM dbanalytics.server_stats ORDER BY interval_end DESC LIMIT 1")"
check "total memory as /proc/meminfo says" "$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024 ))" \
    "$(q "SELECT mem_total_bytes FROM dbanalytics.server_stats ORDER BY interval_end DESC LIMIT 1")"
check "the data directory's file system: used + available within the statvfs total" "t" \
    "$(q "SELECT disk_used_bytes > 0 AND disk_available_bytes > 0
                 AND disk_used_bytes + disk_available_bytes <= $(( $(stat -f -c '%b' "$DATA") * $(stat -f -c '%S' "$DATA") ))
            FROM dbanalytics.server_stats ORDER BY interval_end DESC LIMIT 1")"
check "host_stats: CPU shares of a minute add up to 100 %" "t" \
    "$(q "SELECT bool_and(abs(cpu_user_pct + cpu_system_pct + cpu_iowait_pct + cpu_idle_pct - 100) < 5)
                 AND count(*) >= 1
            FROM dbanalytics.host_stats('10 minutes') WHERE cpu_user_pct IS NOT NULL")"

step "A CPU-bound query between two snapshots"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
BURN_START=$(q "SELECT max(interval_end) FROM dbanalytics.server_stats")
# the kernel's count of the backend's own user CPU time around the query: the host's user
# CPU time over the same stretch is at least that much, whatever else the machine runs
BURN_S=$(backend_cpu_seconds user "SELECT sum(i::bigint * i) FROM generate_series(1, 20000000) i")
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
info "the query's backend spent $BURN_S s of user CPU time"
check "the host's user CPU seconds since that snapshot cover the backend's own (ticks of 10 ms)" "t" \
    "$(q "SELECT $BURN_S > 1 AND max(cpu_user_seconds) - min(cpu_user_seconds) >= $BURN_S - 0.02
            FROM dbanalytics.server_stats WHERE interval_end >= '$BURN_START'")"

step "Resource use per statement: a CPU-bound query, a query reading a cold table"
# CPU only: the set-returning function in the select list hands its rows over one by one (in
# FROM it would fill a tuplestore, whose memory is given back to the kernel after the executor
# ends, in kernel time the executor hooks rightly do not count)
STATEMENT_CPU_S=$(backend_cpu_seconds total "SELECT sum(i::numeric * i) FROM (SELECT generate_series(1, 5000000) AS i) s")
q "SET dbanalytics.resource_usage = off; SELECT 'unmeasured', count(*) FROM generate_series(1, 1000)" >/dev/null
q "CREATE TABLE c_cold AS SELECT i, repeat('c', 500) AS pad FROM generate_series(1, 100000) i"
q "CHECKPOINT"
if [ -w /proc/sys/vm/drop_caches ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches
    # not in parallel: a parallel worker's reads are its own (docs/capacity.md)
    q "SET max_parallel_workers_per_gather = 0; SELECT count(*) FROM c_cold WHERE pad LIKE 'x%'" >/dev/null
fi
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
q "SELECT left(query, 45), calls, round(total_time_ms) AS ms, round(cpu_user_time_ms) AS user_ms,
          round(cpu_system_time_ms) AS sys_ms, disk_read_bytes, disk_write_bytes
     FROM dbanalytics.top_queries('1 hour', row_limit => 100)
    WHERE query LIKE 'SELECT sum(i::numeric * i)%' OR query LIKE 'SELECT count(*) FROM c_cold%'" | sed 's/^/    /'
info "c_cold: $(q "SELECT pg_table_size('c_cold')") bytes"
info "the kernel counted $STATEMENT_CPU_S s of CPU time (user and kernel mode) for the backend around it"
# the backend's count also holds its parse, plan and the two reads of /proc (30 ms of room),
# and each of its two counts is rounded to 10 ms ticks
check "the CPU-bound query: its CPU time is the kernel's count for the backend, and at most its duration" "t" \
    "$(q "SELECT cpu_user_time_ms + cpu_system_time_ms BETWEEN 1000 * $STATEMENT_CPU_S - 30 - 20
                                                               AND 1000 * $STATEMENT_CPU_S + 20
                 AND cpu_user_time_ms > 0
                 AND cpu_user_time_ms + cpu_system_time_ms <= total_time_ms * 1.02 + 5
            FROM dbanalytics.top_queries('1 hour', row_limit => 100) WHERE query LIKE 'SELECT sum(i::numeric * i)%'")"
# slow at 100 ms (the query takes about 0.5 s of CPU time, on either side of the default 500 ms)
check "query_analysis shows the same CPU time" "t" \
    "$(q "SET dbanalytics.slow_query_threshold = 100;
          SELECT (e->>'cpu_user_time_ms')::numeric = round((SELECT cpu_user_time_ms FROM dbanalytics.top_queries('1 hour', row_limit => 100)
                                                             WHERE query LIKE 'SELECT sum(i::numeric * i)%')::numeric, 3)
            FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'slow_queries') e
           WHERE e->>'query' LIKE 'SELECT sum(i::numeric * i)%'")"
check "with dbanalytics.resource_usage off nothing is measured: NULL, not 0" "t" \
    "$(q "SELECT cpu_user_time_ms IS NULL AND disk_read_bytes IS NULL AND calls = 1
            FROM dbanalytics.top_queries('1 hour', row_limit => 100) WHERE query LIKE 'SELECT \$1, count(*) FROM generate_series%'")"
if [ -w /proc/sys/vm/drop_caches ]; then
    check "the cold read: the kernel read at least half of the table for it" "t" \
        "$(q "SELECT disk_read_bytes >= pg_table_size('c_cold') / 2
                FROM dbanalytics.top_queries('1 hour', row_limit => 100) WHERE query LIKE 'SELECT count(*) FROM c_cold%'")"
else
    skip_part "the cold read's disk bytes" "/proc/sys/vm/drop_caches is not writable (run as root)"
fi

step "WAL written between two snapshots"
q "CREATE TABLE c_wal (id int, pad text)"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
LSN_BEFORE=$(q "SELECT wal_lsn FROM dbanalytics.server_stats ORDER BY interval_end DESC LIMIT 1")
q "INSERT INTO c_wal SELECT i, repeat('x', 500) FROM generate_series(1, 20000) i"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
check "wal_generation counts at least the 10 MB inserted" "t" \
    "$(q "SELECT sum(wal_bytes) >= 10000000 FROM dbanalytics.wal_generation('1 hour')")"
check "wal_generation is the WAL position's advance over the window's snapshots" "t" \
    "$(q "SELECT (SELECT sum(wal_bytes) FROM dbanalytics.wal_generation('1 hour'))
                 = pg_wal_lsn_diff(max(wal_lsn), min(wal_lsn))
            FROM dbanalytics.server_stats")"
check "the insert is in the WAL counted since the snapshot before it" "t" \
    "$(q "SELECT pg_wal_lsn_diff(max(wal_lsn), '$LSN_BEFORE') >= 10000000 FROM dbanalytics.server_stats")"

step "Daily sizes: the last size of the day"
q "CREATE TABLE c_sized (id int, pad text)"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
q "INSERT INTO c_sized SELECT i, repeat('y', 200) FROM generate_series(1, 5000) i"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
# the day now running is rolled as if it had ended: its rows go to tomorrow's partition
check "the rollup keeps the table's size at the last snapshot, and the database's" "t|t" \
    "$(q "BEGIN;
          SELECT dbanalytics._rollup_size_days(now() - interval '1 day', now()) > 0;
          SELECT (SELECT size_bytes FROM dbanalytics.size_daily WHERE object_type = 'table' AND relname = 'c_sized')
                 = (SELECT table_size FROM dbanalytics.table_stats WHERE relname = 'c_sized' ORDER BY interval_end DESC LIMIT 1)
             AND (SELECT size_bytes FROM dbanalytics.size_daily WHERE object_type = 'database' AND datname = '$DB')
                 = (SELECT database_size FROM dbanalytics.database_stats WHERE datname = '$DB' ORDER BY interval_end DESC LIMIT 1)
             AND (SELECT count(*) FROM dbanalytics.size_daily WHERE object_type = 'filesystem' AND relname = 'data directory') = 1;
          ROLLBACK" | tr '\n' '|' | sed 's/|$//')"

# Four past days of generated sizes, at each day's end (UTC midnight): day0 = 4 days ago.
# A table growing 1000, 1100, 1300, 1400 MB: by hand, x = 0..3 days, mean 1.5, y mean 1200 MB,
# Sxy = 700, Sxx = 5, Syy = 100000: slope 140 MB/day, r² = 700²/(5·100000) = 0.98; from the
# last size (1400 MB on day 3), 2000 MB is reached 600/140 days later: 3 + 4.2857143 =
# 7.2857143 days after day0 = 629485.7143 s.
# The data directory used 100, 110, 120, 130 GB on those days and 140 GB of 160 GB (20 GB
# available) at today's midnight: 10 GB/day, r² = 1, full 6 days after day0 = 2 days after today.
# pg_wal, on a file system of its own, stays at 10 GB of 100 GB; a table grows 1 byte a day.
GENERATED="BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO dbanalytics.size_daily
SELECT date_trunc('day', now(), 'UTC') - (4 - x) * interval '1 day', date_trunc('day', now(), 'UTC') - (4 - x) * interval '1 day',
       'table', '$DB', 999999, 'public', 'growth_demo', mb * 1000000::bigint
  FROM (VALUES (0, 1000), (1, 1100), (2, 1300), (3, 1400)) v(x, mb)
UNION ALL
SELECT date_trunc('day', now(), 'UTC') - (4 - x) * interval '1 day', date_trunc('day', now(), 'UTC') - (4 - x) * interval '1 day',
       'table', '$DB', 999998, 'public', 'barely_growing', 1000000000 + x
  FROM (VALUES (0), (1), (2), (3)) v(x)
UNION ALL
SELECT date_trunc('day', now(), 'UTC') - (4 - x) * interval '1 day', date_trunc('day', now(), 'UTC') - (4 - x) * interval '1 day',
       'filesystem', NULL, 0, NULL, f, CASE f WHEN 'data directory' THEN gb * 1000000000::bigint ELSE 10000000000 END
  FROM (VALUES (0, 100), (1, 110), (2, 120), (3, 130)) v(x, gb), (VALUES ('data directory'), ('pg_wal')) w(f);
DELETE FROM dbanalytics.server_stats;
INSERT INTO dbanalytics.server_stats (interval_end, next_xid, next_multixact, disk_used_bytes, disk_available_bytes,
                                      wal_disk_used_bytes, wal_disk_available_bytes, host_status)
VALUES (date_trunc('day', now(), 'UTC'), 1000, 1, 140000000000, 20000000000, 10000000000, 90000000000, 'ok');"

step "space_growth on generated daily sizes"
check "growth_demo: 140 MB/day, r² 0.98, 4 days, growing" "140000000|0.980000|4|growing" \
    "$(q "$GENERATED
          SELECT round(growth_bytes_per_day), round(fit_r2::numeric, 6), days_measured, status
            FROM dbanalytics.space_growth('30 days', 2000000000) WHERE relname = 'growth_demo';
          ROLLBACK" | tail -1)"
check "growth_demo reaches 2000 MB 629485.7143 s after day0" "t" \
    "$(q "$GENERATED
          SELECT abs(extract(epoch FROM forecast_at - (date_trunc('day', now(), 'UTC') - interval '4 days')) - 629485.7143) < 0.001
                 AND forecast_of = 'target size'
            FROM dbanalytics.space_growth('30 days', 2000000000) WHERE relname = 'growth_demo';
          ROLLBACK" | tail -1)"
check "the data directory: 10 GB/day, full 2 days after today's midnight, full_soon" "10000000000|1.000000|160000000000|t|full_soon" \
    "$(q "$GENERATED
          SELECT round(growth_bytes_per_day), round(fit_r2::numeric, 6), capacity_bytes,
                 abs(extract(epoch FROM forecast_at - (date_trunc('day', now(), 'UTC') + interval '2 days'))) < 0.001,
                 status
            FROM dbanalytics.space_growth('30 days') WHERE object_type = 'filesystem' AND relname = 'data directory';
          ROLLBACK" | tail -1)"
check "pg_wal's file system is fitted on its own: 0 bytes/day, stable, capacity 100 GB" "0|100000000000|stable" \
    "$(q "$GENERATED
          SELECT round(growth_bytes_per_day), capacity_bytes, status
            FROM dbanalytics.space_growth('30 days') WHERE object_type = 'filesystem' AND relname = 'pg_wal';
          ROLLBACK" | tail -1)"
check "a table growing 1 byte a day against a huge target: no date (beyond a century), no error" "t" \
    "$(q "$GENERATED
          SELECT forecast_at IS NULL AND round(growth_bytes_per_day) = 1
            FROM dbanalytics.space_growth('30 days', 4000000000000000000) WHERE relname = 'barely_growing';
          ROLLBACK" | tail -1)"
check "the disk_full_soon alert opens, its value the days left" "t" \
    "$(q "$GENERATED
          SELECT dbanalytics._evaluate_alerts();
          SELECT abs(value - extract(epoch FROM date_trunc('day', now(), 'UTC') + interval '2 days' - now()) / 86400) < 0.0001
            FROM dbanalytics.alerts WHERE rule = 'disk_full_soon' AND resolved_at IS NULL;
          ROLLBACK" | tail -1)"
check "the health indicator disk_full_days: 2 days left from midnight, bad, with the file system in the evidence" "t|bad|t" \
    "$(q "$GENERATED
          SELECT abs(value - extract(epoch FROM date_trunc('day', now(), 'UTC') + interval '2 days' - now()) / 86400) < 0.0001,
                 status, evidence LIKE 'the data directory file system (130 GB used of 149 GB)%'
            FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'disk_full_days';
          ROLLBACK" | tail -1)"
check "without a filling file system it does not apply" "not_applicable" \
    "$(q "SELECT status FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'disk_full_days'")"
check "a target that is not positive is refused with a hint" "invalid_parameter_value" \
    "$(q "DO \$\$ BEGIN PERFORM * FROM dbanalytics.space_growth('1 day', 0);
          EXCEPTION WHEN invalid_parameter_value THEN RAISE NOTICE 'invalid_parameter_value'; END \$\$" 2>&1 | sed -n 's/.*NOTICE:  //p')"

step "wraparound_risk: the rate from history, a table's own freeze age"
q "CREATE TABLE c_frozen (id int) WITH (autovacuum_freeze_max_age = 100000)"
# the history says 1 million transaction IDs an hour (24 million a day), ending at the real
# counter; the table's forced vacuum is due (100000 - age) / 1e6 hours from now
RATE="BEGIN ISOLATION LEVEL REPEATABLE READ;
DELETE FROM dbanalytics.server_stats;
INSERT INTO dbanalytics.server_stats (interval_end, next_xid, next_multixact, host_status)
SELECT now() - h * interval '1 hour', n - h * 1000000, 1, 'ok'
  FROM (VALUES (1), (2)) v(h), (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n) x;"
check "24 million XIDs a day, the table's own freeze age, the forced vacuum when the hand calculation says" "24000000|100000|t" \
    "$(q "$RATE
          SELECT round(w.xids_per_day), w.xid_freeze_max_age,
                 abs(extract(epoch FROM w.forced_vacuum_at - now()) - (100000 - age(c.relfrozenxid)) * 0.0036) < 0.001
            FROM dbanalytics.wraparound_risk('1 day') w, pg_class c
           WHERE w.object_type = 'table' AND w.relname = 'c_frozen' AND c.relname = 'c_frozen';
          ROLLBACK" | tail -1)"
check "databases: the stop (2^31 - 1 - 3 million) at that rate; ok" "t|ok" \
    "$(q "$RATE
          SELECT abs(extract(epoch FROM w.wraparound_stop_at - now()) - (2144483647 - age(d.datfrozenxid)) * 0.0036) < 0.001,
                 w.risk
            FROM dbanalytics.wraparound_risk('1 day') w JOIN pg_database d ON d.datname = w.datname
           WHERE w.object_type = 'database' AND w.datname = '$DB';
          ROLLBACK" | tail -1)"
FAST="BEGIN ISOLATION LEVEL REPEATABLE READ;
DELETE FROM dbanalytics.server_stats;
INSERT INTO dbanalytics.server_stats (interval_end, next_xid, next_multixact, host_status)
SELECT now() - h * interval '1 hour', n - h * 100000000, 1, 'ok'
  FROM (VALUES (0), (1), (2)) v(h), (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n) x;"
check "100 million an hour: the stop is within a day, critical, and wraparound_soon opens" "critical|t" \
    "$(q "$FAST
          SELECT dbanalytics._evaluate_alerts();
          SELECT (SELECT risk FROM dbanalytics.wraparound_risk('1 day') WHERE object_type = 'database' AND datname = '$DB'),
                 (SELECT value < 1 FROM dbanalytics.alerts WHERE rule = 'wraparound_soon' AND resolved_at IS NULL);
          ROLLBACK" | tail -1)"
check "the multixact counter wrapping between snapshots: its steps modulo 2^32 (796 an hour)" "19104" \
    "$(q "BEGIN ISOLATION LEVEL REPEATABLE READ;
          DELETE FROM dbanalytics.server_stats;
          INSERT INTO dbanalytics.server_stats (interval_end, next_xid, next_multixact, host_status)
          VALUES (now() - interval '2 hours', 1000, 4294967000, 'ok'), (now() - interval '1 hour', 2000, 500, 'ok');
          SELECT DISTINCT round(multixacts_per_day) FROM dbanalytics.wraparound_risk('1 day');
          ROLLBACK" | tail -1)"
check "with no history at all every database is still listed (no rate)" "t" \
    "$(q "BEGIN ISOLATION LEVEL REPEATABLE READ;
          DELETE FROM dbanalytics.server_stats;
          SELECT count(*) = (SELECT count(*) FROM pg_database) AND bool_and(xids_per_day IS NULL)
            FROM dbanalytics.wraparound_risk('1 day') WHERE object_type = 'database';
          ROLLBACK" | tail -1)"
check "less than an hour of history forecasts nothing" "t" \
    "$(q "BEGIN ISOLATION LEVEL REPEATABLE READ;
          DELETE FROM dbanalytics.server_stats WHERE interval_end < now() - interval '30 minutes';
          SELECT bool_and(xids_per_day IS NULL AND wraparound_stop_at IS NULL) FROM dbanalytics.wraparound_risk('1 day');
          ROLLBACK" | tail -1)"
check "no alert outside the generated histories" "0" \
    "$(q "SELECT count(*) FROM dbanalytics.alerts WHERE rule IN ('wraparound_soon', 'disk_full_soon')")"

finish_checks "e2e_capacity"
