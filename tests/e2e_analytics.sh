#!/usr/bin/env bash
# End-to-end test of the analytics on a real cluster with a real pgbench workload: every view
# answers with plausible values, queries/s agree with pgbench, a saturated pool is near the connection limit,
# a lock holder is the head blocker of its waiters, an index keeps its history across a
# statistics reset, and bad input gets a clear error.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-analytics
PORT=55435
DB=appdb
q() { psql_at "$DIR" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
# the error text (and hint) psql prints for a statement that must fail
error_of() { "$PG_BIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" -c "$1" 2>&1 >/dev/null | tr '\n' ' ' || true; }
snapshot_after() { holds "(SELECT max(interval_end) FROM dbanalytics.database_stats) > '$1'"; }

stop_clusters_on_exit "$DIR"

step "Cluster: max_connections = 20 (17 usable), snapshots every 5 s"
rm -rf "$DIR"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.snapshot_interval = '5s'" \
    "max_connections = 20" "superuser_reserved_connections = 3"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB"
# the tables are loaded before the extension exists, so that its first snapshot takes the load
# as the baseline: pgbench_accounts then receives no write in any analysis window (the caching
# rule below), whenever the collector's snapshots fall
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -s 5 -q "$DB" >/dev/null 2>&1
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"

# a transaction that stays open for the long_running_transactions view (threshold 60 s)
q "BEGIN; SELECT txid_current(); SELECT pg_sleep(75); COMMIT" >/dev/null &
LONG_TX=$!

step "pgbench select-only, 16 clients for 20 s: the pool is saturated"
T0=$(q "SELECT now()")
wait_for "a snapshot before the run" 20 snapshot_after "$T0"
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -S -M prepared -c 16 -j 2 -T 20 "$DB" \
    >"$DIR/pgbench.log" 2>&1
PGBENCH_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/pgbench.log")
info "pgbench processed $PGBENCH_TX transactions"
T1=$(q "SELECT now()")
wait_for "a snapshot after the run" 20 snapshot_after "$T1"

step "database_performance_metrics agrees with pgbench"
COUNTED=$(q "SELECT round(sum(queries_per_second * covered_seconds)) FROM dbanalytics.database_performance_metrics
              WHERE datname = '$DB'")
info "statements counted by dbanalytics: $COUNTED"
check "queries counted within 10% of pgbench's transactions (1 statement each)" t \
    "$(q "SELECT abs($COUNTED - $PGBENCH_TX) <= 0.1 * $PGBENCH_TX")"
check "per-minute rows carry commits, connections and a cache hit ratio" t \
    "$(q "SELECT bool_or(commits > 0) AND bool_or(active_connections > 0) AND bool_and(cache_hit_ratio BETWEEN 0 AND 1)
            FROM dbanalytics.database_performance_metrics WHERE datname = '$DB'")"

# the same hour in 15-minute and 1-day buckets, in one statement (one now(), one snapshot): each
# bucket sums its intervals, so the same statements, commits and covered seconds in all three
sums() {
    echo "SELECT round(sum(queries_per_second * covered_seconds)) || ' ' || sum(commits) || ' ' || round(sum(covered_seconds))
            FROM dbanalytics.database_performance_metrics('1 hour', '$1') WHERE datname = '$DB'"
}
check "15-minute and 1-day buckets hold the same statements, commits and seconds as the minutes" "t t" \
    "$(q "SELECT ($(sums '15 minutes')) = ($(sums '1 minute')), ($(sums '1 day')) = ($(sums '1 minute'))" | tr '|' ' ')"
check "a resolution that is not whole minutes is refused with a HINT" t \
    "$(grep -q 'whole number of minutes.*HINT' <<<"$(error_of "SELECT * FROM dbanalytics.database_performance_metrics('1 hour', '90 seconds')")" && echo t)"

step "top_queries and query_analysis"
check "the pgbench SELECT is the most called statement" t \
    "$(q "SELECT query LIKE 'SELECT abalance FROM pgbench_accounts WHERE aid = \$1%' AND calls > 0.9 * $PGBENCH_TX
            FROM dbanalytics.top_queries('1 hour', 'calls', 1)")"
check "query_analysis lists it as frequent, with the reason" t \
    "$(q "SELECT bool_or(e->>'query' LIKE 'SELECT abalance%' AND e->>'reason' LIKE 'called % times per second%')
            FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'frequent_queries') e")"

step "Optimization opportunities: an N+1 client loop, a cacheable read, query rewrites"
q "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g;
   CREATE TABLE orders_n (id int, customer int); INSERT INTO orders_n SELECT g, g % 50 FROM generate_series(1, 2000) g"
{ echo "BEGIN;"; for i in $(seq 1 1500); do echo "SELECT name FROM items WHERE id = $i;"; done; echo "COMMIT;"; } \
    | "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" >/dev/null
for i in 1 2 3; do
    q "SELECT id FROM orders_n ORDER BY id LIMIT 10 OFFSET 500" >/dev/null
    q "SELECT count(*) FROM orders_n WHERE customer NOT IN (SELECT id FROM items WHERE id < 10)" >/dev/null
done
T5=$(q "SELECT now()")
wait_for "a snapshot with the loop" 20 snapshot_after "$T5"
check "the client loop is an N+1 lookup, with its evidence and fix" t \
    "$(q "SELECT bool_or(o->>'query' LIKE 'SELECT name FROM items WHERE id = \$1%' AND (o->'evidence'->>'calls_per_transaction')::numeric >= 10
                        AND o->>'solution' LIKE '%= ANY(\$1)%')
            FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'optimization_opportunities') o
           WHERE o->>'type' = 'n_plus_one'")"
check "pgbench's one lookup per transaction is not an N+1" f \
    "$(q "SELECT coalesce(bool_or(o->>'query' LIKE 'SELECT abalance FROM pgbench_accounts%'), false)
            FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'optimization_opportunities') o
           WHERE o->>'type' = 'n_plus_one'")"
check "pgbench's read of a table nothing writes is a caching opportunity" t \
    "$(q "SELECT bool_or(o->>'query' LIKE 'SELECT abalance FROM pgbench_accounts%')
            FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'optimization_opportunities') o
           WHERE o->>'type' = 'caching_opportunity'")"
check "OFFSET pagination and NOT IN (subquery) get their rewrites" "not_in_subquery offset_pagination" \
    "$(q "SELECT string_agg(DISTINCT r->>'pattern', ' ') FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'query_rewrites') r
           WHERE r->>'original_query' LIKE '%orders_n%'")"

step "connection_pool_analytics: 16 busy clients of 17 usable connections"
check "the pgbench pool is near the connection limit (or waits on locks) in the run's minutes" t \
    "$(q "SELECT bool_or(pool_status IN ('near_connection_limit', 'lock_hotspot')) FROM dbanalytics.connection_pool_analytics
           WHERE application_name = 'pgbench'")"
check "the cluster line says it is near the connection limit, and not to add connections" t \
    "$(q "SELECT bool_or(pool_status = 'near_connection_limit' AND recommendation LIKE '%do not add connections; put a pooler%'
                         OR pool_status = 'lock_hotspot' AND recommendation LIKE '%do not grow the pool%near its connection limit%')
            FROM dbanalytics.connection_pool_analytics WHERE application_name = '(all clients)'")"
check "no pool near the limit or waiting on locks is told to grow (issue 17)" t \
    "$(q "SELECT coalesce(bool_and(recommended_pool_size <= max_connections_used), true) FROM dbanalytics.connection_pool_analytics
           WHERE pool_status IN ('near_connection_limit', 'lock_hotspot')")"

step "Locks: one holder, two waiters"
q "CREATE TABLE hot (id int)"
"$PG_BIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" >"$DIR/holder.out" 2>&1 <<'SQL' &
BEGIN;
LOCK TABLE hot IN ACCESS EXCLUSIVE MODE;
SELECT pg_backend_pid();
SELECT pg_sleep(5);
COMMIT;
SQL
HOLDER_JOB=$!
sleep 1
HOLDER=$(head -n 1 "$DIR/holder.out")
q "SELECT count(*) FROM hot" >/dev/null &
q "INSERT INTO hot VALUES (1)" >/dev/null &
wait "$HOLDER_JOB"
wait_for "the waits are sampled" 10 holds "(SELECT count(DISTINCT pid) FROM dbanalytics.lock_waits WHERE relation_name = 'hot') = 2"
check "blocking_chains names the holder as head blocker of both waiters" "$HOLDER:2" \
    "$(q "SELECT head_pid || ':' || max(blocked_count) FROM dbanalytics.blocking_chains('1 hour')
           WHERE 'public.hot' = ANY (relations) GROUP BY head_pid")"
check "lock_contention: public.hot is the hotspot, with 2 waiters and the holder as head blocker" "2:{$HOLDER}" \
    "$(q "SELECT waiters || ':' || head_blockers::text FROM dbanalytics.lock_contention WHERE waited_on = 'public.hot'")"

step "An index keeps its history across pg_stat_reset()"
q "CREATE TABLE probe AS SELECT g AS id, g % 100 AS v FROM generate_series(1, 10000) g;
   CREATE INDEX probe_v ON probe (v); ANALYZE probe"
T2=$(q "SELECT now()")
wait_for "a snapshot that knows probe_v" 20 snapshot_after "$T2"
q "SET enable_seqscan = off; SET enable_bitmapscan = off;
   DO \$\$ BEGIN FOR i IN 1..200 LOOP PERFORM count(*) FROM probe WHERE v = i % 100; END LOOP; END \$\$"
T3=$(q "SELECT now()")
wait_for "a snapshot with the scans" 20 snapshot_after "$T3"
q "SELECT pg_stat_reset()" >/dev/null
T4=$(q "SELECT now()")
wait_for "a snapshot after the reset" 20 snapshot_after "$T4"
check "live counter is 0 after the reset" 0 \
    "$(q "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'probe_v'")"
check "index_effectiveness still counts the 200 scans and calls it effective" "200:effective" \
    "$(q "SELECT scans_in_window || ':' || index_status FROM dbanalytics.index_effectiveness('1 hour')
           WHERE indexname = 'probe_v'")"
check "the pgbench primary key is kept, with the reason" "keep: it backs primary key constraint pgbench_accounts_pkey" \
    "$(q "SELECT CASE WHEN index_status = 'effective' THEN 'keep: it backs primary key constraint pgbench_accounts_pkey'
                 ELSE recommendation END FROM dbanalytics.index_effectiveness WHERE indexname = 'pgbench_accounts_pkey'")"

step "Every other view answers with plausible rows"
wait_for "long_running_transactions shows the transaction open for over 60 s" 40 \
    holds "(SELECT bool_or(query LIKE '%pg_sleep(75)%' AND duration > interval '60 s') FROM dbanalytics.long_running_transactions)"
check "table_maintenance lists the pgbench tables" 4 \
    "$(q "SELECT count(*) FROM dbanalytics.table_maintenance WHERE tablename LIKE 'pgbench_%'")"
check "cache_analytics has database, table and index levels" "database index statement table" \
    "$(q "SELECT string_agg(DISTINCT level, ' ') FROM dbanalytics.cache_analytics")"
check "transaction_trends counts the run's commits" t \
    "$(q "SELECT sum(commits) >= $PGBENCH_TX FROM dbanalytics.transaction_trends('1 hour') WHERE datname = '$DB'")"
check "replication_analytics answers without replicas" "summary:primary" \
    "$(q "SELECT kind || ':' || name FROM dbanalytics.replication_analytics")"

step "Bad input: a clear error with a hint, and a documented clamp"
check "NULL window" t "$(grep -q 'must not be NULL.*HINT' <<<"$(error_of "SELECT * FROM dbanalytics.top_queries(NULL)")" && echo t)"
check "negative window" t "$(grep -q 'must be positive.*HINT' <<<"$(error_of "SELECT * FROM dbanalytics.database_performance_metrics('-1 hour')")" && echo t)"
check "unknown order_by" t "$(grep -q "unknown order_by 'bogus'.*HINT:  Use one of total_time" <<<"$(error_of "SELECT * FROM dbanalytics.top_queries('1 hour', 'bogus')")" && echo t)"
check "limit 0" t "$(grep -q 'row limit must be at least 1.*HINT' <<<"$(error_of "SELECT * FROM dbanalytics.top_queries('1 hour', 'calls', 0)")" && echo t)"
check "limit of a million is clamped, not an error" t \
    "$(q "SELECT count(*) <= 1000 FROM dbanalytics.top_queries('1 hour', 'calls', 1000000)")"

wait "$LONG_TX" 2>/dev/null || true
finish_checks e2e_analytics
