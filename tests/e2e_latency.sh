#!/usr/bin/env bash
# End-to-end test of the latency histograms on a real cluster: a pgbench workload gets
# percentiles per query and per database, pg_stat_statements keeps counting beside our hooks,
# the executions not yet collected survive a clean restart, and queries beyond
# dbanalytics.max_histogram_queries go to a visible overflow histogram; a query whose index is
# dropped is found by regressions() against the minutes before the drop.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-latency
PORT=55436
DB=appdb
q() { psql_at "$DIR" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
snapshot_after() { holds "(SELECT max(interval_end) FROM dbanalytics.database_latency) > '$1'"; }
stop_clusters_on_exit "$DIR"

step "Cluster with room for 100 query histograms, snapshots every 5 s"
rm -rf "$DIR"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.snapshot_interval = '5s'" \
    "dbanalytics.max_histogram_queries = 100"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -s 2 -q "$DB" >/dev/null 2>&1

step "pgbench select-only for 10 s"
PGSS_BEFORE=$(q "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'")
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -S -M prepared -c 4 -j 2 -T 10 "$DB" >"$DIR/pgbench.log" 2>&1
TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/pgbench.log")
T1=$(q "SELECT now()")
wait_for "a snapshot of the histograms" 20 snapshot_after "$T1"

check "every pgbench execution is in the statement's histogram" "$TX" \
    "$(q "SELECT executions FROM dbanalytics.query_latency('1 hour', 1000) WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'")"
check "its percentiles are ordered and sub-second" t \
    "$(q "SELECT p50_ms > 0 AND p50_ms <= p90_ms AND p90_ms <= p95_ms AND p95_ms <= p99_ms AND p99_ms <= max_ms AND p99_ms < 1000
            FROM dbanalytics.query_latency('1 hour', 1000) WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'")"
check "pg_stat_statements counted the same executions beside our hooks" "$TX" \
    "$(q "SELECT sum(calls) - $PGSS_BEFORE FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'")"
check "database_performance_metrics has per-minute percentiles" t \
    "$(q "SELECT bool_or(p95_ms > 0 AND p50_ms <= p95_ms AND p95_ms <= p99_ms)
            FROM dbanalytics.database_performance_metrics WHERE datname = '$DB'")"
check "latency_histogram sums to the executions" "$TX" \
    "$(q "SELECT sum(executions) FROM dbanalytics.latency_histogram(
            (SELECT queryid FROM dbanalytics.query_latency('1 hour', 1000)
              WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'), '1 hour')")"

step "A clean restart keeps the executions not yet collected"
fault_case clean_restart
q "CREATE TABLE restart_probe (id int PRIMARY KEY); INSERT INTO restart_probe SELECT generate_series(1, 1000)"
# the workers stop collecting, so that nothing but the restart stands between the executions
# and the next snapshot
q "ALTER SYSTEM SET dbanalytics.enabled = off"
q "SELECT pg_reload_conf()" >/dev/null
sleep 6  # a whole snapshot interval: a snapshot under way when the setting changed has ended
LAST=$(q "SELECT max(interval_end) FROM dbanalytics.database_latency")
for i in $(seq 1 300); do echo "SELECT id FROM restart_probe WHERE id = $i;"; done \
    | "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" >/dev/null
check "no snapshot stored them before the restart" "$LAST" "$(q "SELECT max(interval_end) FROM dbanalytics.database_latency")"
cluster_stop "$DIR"
cluster_start "$DIR"
check "the server log says what was read back" t \
    "$(grep -q 'dbanalytics: read back [0-9]* executions of [0-9]* statements not collected before the last shutdown' "$DIR/server.log" && echo t || echo f)"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
check "the 300 executions are in the statement's histogram after the restart" 300 \
    "$(q "SELECT executions FROM dbanalytics.query_latency('1 hour', 1000) WHERE query LIKE 'SELECT id FROM restart_probe WHERE id = %'")"
check "the saved file was read once and removed" f "$([ -e "$DIR/data/pg_stat/dbanalytics_latency.stat" ] && echo t || echo f)"

step "A snapshot whose transaction rolls back puts the counts it took back"
fault_case ""
for i in $(seq 1 50); do echo "SELECT id FROM restart_probe WHERE id < $i;"; done \
    | "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" >/dev/null
"$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" \
    -c "BEGIN" -c "SELECT count(*) FROM dbanalytics.take_snapshot()" -c "ROLLBACK" >/dev/null
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
check "the 50 executions are stored by the next snapshot" 50 \
    "$(q "SELECT executions FROM dbanalytics.query_latency('1 hour', 1000) WHERE query LIKE 'SELECT id FROM restart_probe WHERE id < %'")"
q "ALTER SYSTEM RESET dbanalytics.enabled"
q "SELECT pg_reload_conf()" >/dev/null

step "A query that loses its index: regressions() finds it against the minutes before"
# (before the overflow below: its histograms need a slot of their own)
q "CREATE TABLE reg_orders AS SELECT i AS id, i % 1000 AS customer, repeat('x', 100) AS pad
     FROM generate_series(1, 200000) i"
q "CREATE INDEX reg_orders_customer ON reg_orders (customer); ANALYZE reg_orders"
lookups() {
    for i in $(seq 1 100); do
        echo "SELECT count(*) FROM reg_orders WHERE customer = $((i * 7 % 1000));"
    done | "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" >/dev/null
}
lookups
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
# every execution so far is in a row ending before this moment; every one after it, after
SPLIT=$(q "SELECT now()")
q "DROP INDEX reg_orders_customer"
lookups
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
REGRESSIONS="dbanalytics.regressions(now() - '$SPLIT'::timestamptz, '1 hour', 1000)"
q "SELECT regressed_on, baseline_calls, calls, round(baseline_mean_ms::numeric, 3), round(mean_ms::numeric, 3),
          baseline_p95_ms, p95_ms, left(query, 50) FROM $REGRESSIONS WHERE query LIKE '%reg_orders%'" | sed 's/^/    /'
check "the lookup that lost its index regressed on its mean and its p95, 100 calls on each side" \
    "mean and p95|100|100|t" \
    "$(q "SELECT concat_ws('|', regressed_on, baseline_calls, calls, mean_ms >= 1.5 * baseline_mean_ms)
            FROM $REGRESSIONS WHERE query LIKE 'SELECT count(*) FROM reg_orders WHERE customer = %'")"
check "its extra time is what the slower mean cost over the window's calls" t \
    "$(q "SELECT abs(extra_time_ms - (mean_ms - baseline_mean_ms) * calls) < 1e-6
            FROM $REGRESSIONS WHERE query LIKE 'SELECT count(*) FROM reg_orders WHERE customer = %'")"

step "150 more query shapes than there is room for"
q "DO \$\$ BEGIN FOR i IN 1..150 LOOP EXECUTE format('CREATE TABLE shape_%s (id int)', i); END LOOP; END \$\$"
for i in $(seq 1 150); do echo "SELECT count(*) FROM shape_$i;"; done \
    | "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" >/dev/null
check "the table is full, not evicting" "100" "$(q "SELECT queries FROM dbanalytics.histogram_status")"
check "the database overflowed visibly" t "$(q "SELECT overflow_databases >= 1 AND lost_executions = 0 FROM dbanalytics.histogram_status")"
T2=$(q "SELECT now()")
wait_for "a snapshot after the overflow" 20 snapshot_after "$T2"
check "overflow executions are stored under queryid 0 and labelled" t \
    "$(q "SELECT executions >= 50 AND query LIKE '<overflow%' FROM dbanalytics.query_latency('1 hour', 1000) WHERE queryid = 0")"

finish_checks e2e_latency
