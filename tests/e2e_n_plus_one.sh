#!/usr/bin/env bash
# End-to-end test of issue 20 on a real cluster, with pgbench clients:
#  (a) one query returns 20 keys, then 20 single-row lookups by key, each statement in
#      autocommit, again and again: query_analysis reports an N+1 naming both statements, the
#      application (recorded by the executor hooks, not only sampled) and a run length of 20,
#      with a JOIN / = ANY($1) rewrite;
#  (b) a steady stream of single-row lookups by random key, one per transaction, with no parent
#      or after one set-up statement: a caching opportunity, not an N+1 (and no run of it is
#      recorded at all);
#  (c) a loop of lookups inside one transaction: still found by the calls-per-transaction rule.
# and dbanalytics never analyzes itself: after the workers sampled every 0.2 s and snapshotted
# every 5 s through the whole test, and did what they otherwise do over an hour and a day (the
# hourly rollup, the health record, the retention's DROPs of expired partitions, the pruning
# of session keys, brought forward), pg_stat_statements holds no statement of the workers' role
# in the monitored database, the history has none, and no analytic names one. Every statement
# of the test itself runs as another role (tester), so the workers' role (the bootstrap
# superuser) has no other statement there.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

# SELF_EXCLUSION_MINUTES=N (default 0) keeps the clients and the workers running N more minutes
# before the self-exclusion checks (a long run outside scripts/test: with N=60, an hour of
# collection at 0.2 s samples and 5 s snapshots); E2E_DIR and E2E_PORT let it run beside others.
SELF_EXCLUSION_MINUTES=${SELF_EXCLUSION_MINUTES:-0}
DIR=${E2E_DIR:-$PWD/target/e2e-n-plus-one}
PORT=${E2E_PORT:-5521}
DB=appdb
q() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U tester -d "$DB" -c "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
snapshot_after() { holds "(SELECT max(interval_end) FROM dbanalytics.database_stats) > '$1'"; }
# the optimization opportunities of query_analysis over the test's window, one JSON per line
opportunities() {
    q "SELECT o FROM jsonb_array_elements(dbanalytics.query_analysis(now() - '$T0'::timestamptz)
                                          ->'optimization_opportunities') o WHERE $1"
}

stop_clusters_on_exit "$DIR"

step "Cluster: samples every 0.2 s, snapshots every 5 s; the test runs as role tester"
rm -rf "$DIR"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.snapshot_interval = '5s'" \
    "dbanalytics.sample_interval = '200ms'" "dbanalytics.health_interval = '5s'"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE ROLE tester SUPERUSER LOGIN"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB OWNER tester"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
# the hours' and days' work of the workers, brought into the test's minute: partitions of the
# three days before today, which the retention source drops (with the daily pruning of session
# keys) as past dbanalytics.retention_raw; the health score recorded every 5 s; the hourly
# rollup, fed below with history two hours old
q "$(past_partitions_sql 3)"
q "CREATE TABLE items (id int PRIMARY KEY, name text);
   INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g;
   CREATE TABLE customers (id int PRIMARY KEY, name text);
   INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 5000) g;
   CREATE TABLE products (id int PRIMARY KEY, label text);
   INSERT INTO products SELECT g, 'product ' || g FROM generate_series(1, 5000) g;
   ANALYZE"
SETUP=$(q "SELECT now()")
wait_for "a snapshot after the set-up (the window starts with no table writes)" 30 snapshot_after "$SETUP"
T0=$(q "SELECT now()")

step "Clients (a) and (b), 2 connections each, 20 s"
# (a): the parent returns 20 keys; the 20 lookups are one statement (the key is a pgbench
# variable, so every lookup has the same text and query id)
{
    echo '\set s random(1, 4900)'
    echo 'SELECT id FROM items WHERE id >= :s ORDER BY id LIMIT 20;'
    for i in $(seq 0 19); do
        echo "\\set k :s + $i"
        echo 'SELECT name FROM items WHERE id = :k;'
    done
} >"$DIR/n_plus_one.pgbench"
{
    echo '\set k random(1, 5000)'
    echo 'BEGIN;'
    echo 'SELECT name FROM customers WHERE id = :k;'
    echo 'COMMIT;'
} >"$DIR/stream.pgbench"
PGAPPNAME=shop_n_plus_one "$PG_BIN/pgbench" -n -h "$DIR" -p "$PORT" -U tester -f "$DIR/n_plus_one.pgbench" \
    -c 2 -j 1 -T 20 "$DB" >"$DIR/pgbench_a.log" 2>&1 &
A=$!
PGAPPNAME=shop_stream "$PG_BIN/pgbench" -n -h "$DIR" -p "$PORT" -U tester -f "$DIR/stream.pgbench" \
    -c 2 -j 1 -T 20 "$DB" >"$DIR/pgbench_b.log" 2>&1 &
B=$!
# (b) again on a third connection, after one other statement (a set-up query, as applications
# run): the only candidate for a parent, and it returned one row
{
    echo "SELECT count(*) FROM products;"
    for _ in $(seq 1 3000); do echo "SELECT name FROM customers WHERE id = $((RANDOM % 5000 + 1));"; done
} | PGAPPNAME=shop_stream "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U tester -d "$DB" >/dev/null &
B2=$!
wait "$A" || { cat "$DIR/pgbench_a.log"; exit 1; }
wait "$B" || { cat "$DIR/pgbench_b.log"; exit 1; }
wait "$B2"
A_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/pgbench_a.log")
B_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/pgbench_b.log")
info "client (a) ran its script $A_TX times, client (b) $B_TX times"
T1=$(q "SELECT now()")
wait_for "a snapshot after the clients" 30 snapshot_after "$T1"

step "(a) is an N+1 naming both statements, with a run length of 20"
LOOKUP_A="SELECT name FROM items WHERE id = \$1"
PARENT_A="SELECT id FROM items WHERE id >= \$1 ORDER BY id LIMIT \$2"
opportunities "o->>'type' = 'n_plus_one'" >"$DIR/n_plus_one.json"
info "$(cat "$DIR/n_plus_one.json")"
check "exactly one N+1 names the items lookup" 1 \
    "$(q "SELECT count(*) FROM jsonb_array_elements(dbanalytics.query_analysis(now() - '$T0'::timestamptz)->'optimization_opportunities') o
           WHERE o->>'type' = 'n_plus_one' AND o->>'query' = '$LOOKUP_A'")"
check "it is found by its runs, after the query that returned the keys" "runs|$PARENT_A" \
    "$(opportunities "o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'" \
        | jq -r '[.detected_by, .parent_query] | join("|")')"
check "the parent's query id is the one pg_stat_statements gives it" t \
    "$(q "SELECT bool_and((o->>'parent_queryid')::bigint = (SELECT queryid FROM pg_stat_statements WHERE query = '$PARENT_A'))
            FROM jsonb_array_elements(dbanalytics.query_analysis(now() - '$T0'::timestamptz)->'optimization_opportunities') o
           WHERE o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'")"
check "run length 20 (typical and longest)" "20|20" \
    "$(q "SELECT (o->'evidence'->>'run_length')::numeric || '|' || (o->'evidence'->>'max_run_length')::numeric
            FROM jsonb_array_elements(dbanalytics.query_analysis(now() - '$T0'::timestamptz)->'optimization_opportunities') o
           WHERE o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'" | sed 's/\.0|/|/')"
check "every script run of (a) is one run of the lookup (the last one recorded at disconnect)" "$A_TX" \
    "$(opportunities "o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'" | jq -r '.evidence.runs')"
check "the application is named" shop_n_plus_one \
    "$(opportunities "o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'" | jq -r '.evidence.application')"
check "the executor hooks recorded the application of the runs, in every interval with runs" "shop_n_plus_one" \
    "$(q "SELECT string_agg(DISTINCT COALESCE(run_application, '<none>'), ',') FROM $LATENCY_MINUTES l
           WHERE runs > 0 AND queryid = (SELECT queryid FROM pg_stat_statements WHERE query = '$LOOKUP_A')")"
# the sampler may never catch a run of quick lookups (at the default 1 s it often does not):
# with no sample of either statement left, the application still comes from the runs
q "BEGIN;
   DELETE FROM dbanalytics.activity_raw WHERE query_id IN
       (SELECT queryid FROM pg_stat_statements WHERE query IN ('$LOOKUP_A', '$PARENT_A'));
   DELETE FROM dbanalytics.activity_minute WHERE query_id IN
       (SELECT queryid FROM pg_stat_statements WHERE query IN ('$LOOKUP_A', '$PARENT_A'));
   COMMIT"
check "the application is named with no sample of the lookup or its parent" shop_n_plus_one \
    "$(opportunities "o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'" | jq -r '.evidence.application')"
check "the rewrite: a JOIN into the parent, or = ANY(\$1) with the keys" true \
    "$(opportunities "o->>'query' = '$LOOKUP_A' AND o->>'type' = 'n_plus_one'" \
        | jq -r '.solution | (contains("JOIN") and contains("SELECT name FROM items WHERE id = ANY($1)"))')"

step "(b) is a caching opportunity, not an N+1"
LOOKUP_B="SELECT name FROM customers WHERE id = \$1"
check "no run of the stream's lookup was recorded" 0 \
    "$(q "SELECT count(*) FROM $LATENCY_MINUTES l
           WHERE l.runs IS NOT NULL AND l.queryid = (SELECT queryid FROM pg_stat_statements WHERE query = '$LOOKUP_B')")"
check "it is no N+1" 0 "$(opportunities "o->>'type' = 'n_plus_one' AND o->>'query' = '$LOOKUP_B'" | wc -l)"
check "it is a caching opportunity" 1 "$(opportunities "o->>'type' = 'caching_opportunity' AND o->>'query' = '$LOOKUP_B'" | wc -l)"

step "(c) a loop inside one transaction is still an N+1"
{ echo "BEGIN;"; for i in $(seq 1 1500); do echo "SELECT label FROM products WHERE id = $i;"; done; echo "COMMIT;"; } \
    | "$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U tester -d "$DB" >/dev/null
T2=$(q "SELECT now()")
wait_for "a snapshot with the loop" 30 snapshot_after "$T2"
check "found by calls per transaction, with its fix" "calls_per_transaction|true" \
    "$(opportunities "o->>'type' = 'n_plus_one' AND o->>'query' = 'SELECT label FROM products WHERE id = \$1'" \
        | jq -r '[.detected_by, ((.evidence.calls_per_transaction >= 10) and (.solution | contains("= ANY($1)")))]
                 | map(tostring) | join("|")')"

if [ "$SELF_EXCLUSION_MINUTES" -gt 0 ]; then
    step "Clients (a) and (b) go on for $SELF_EXCLUSION_MINUTES minutes, 50 scripts per second each"
    for script in n_plus_one stream; do
        PGAPPNAME=shop_$script "$PG_BIN/pgbench" -n -h "$DIR" -p "$PORT" -U tester -f "$DIR/$script.pgbench" \
            -c 1 -j 1 -R 50 -T $((SELF_EXCLUSION_MINUTES * 60)) "$DB" >"$DIR/pgbench_long_$script.log" 2>&1 &
    done
    wait
    info "$(q "SELECT count(*) || ' statements in pg_stat_statements, ' || (SELECT count(*) FROM dbanalytics.collector_runs WHERE source = 'statements' AND status = 'ok') || ' statement snapshots' FROM pg_stat_statements")"
fi

step "An hour of the workers' periodic work happened meanwhile"
# deltas two hours back (copies of the latest ones): if no hour was rolled up yet, the next
# hourly rollup starts from them; if one was, the rollup already ran for real
q "BEGIN;
   CREATE TEMP TABLE backdated AS
       SELECT * FROM dbanalytics.statement_stats WHERE interval_end = (SELECT max(interval_end) FROM dbanalytics.statement_stats);
   UPDATE backdated SET interval_end = date_trunc('hour', now()) - interval '90 minutes',
                        interval_start = date_trunc('hour', now()) - interval '91 minutes';
   INSERT INTO dbanalytics.statement_stats SELECT * FROM backdated;
   COMMIT"
T3=$(q "SELECT now()")
wait_for "a snapshot after the backdated history" 30 snapshot_after "$T3"
check "the hourly rollup wrote statement hours" t \
    "$(q "SELECT EXISTS (SELECT FROM dbanalytics.statement_hourly)
                 AND EXISTS (SELECT FROM dbanalytics.collector_runs WHERE source = 'rollup_hours' AND status = 'ok' AND rows > 0)")"
check "the retention dropped the expired partitions of three days ago" "true|0" \
    "$(q "SELECT EXISTS (SELECT FROM dbanalytics.collector_runs WHERE source = 'retention' AND status = 'ok' AND rows > 0)::text || '|' ||
                 (SELECT count(*) FROM pg_class WHERE relnamespace = 'dbanalytics'::regnamespace
                     AND relname IN ('activity_raw_p' || to_char((now() AT TIME ZONE 'UTC')::date - 3, 'YYYYMMDD'),
                                     'collector_runs_p' || to_char((now() AT TIME ZONE 'UTC')::date - 3, 'YYYYMMDD')))")"
minute_rolled_up() { holds "EXISTS (SELECT FROM dbanalytics.collector_runs WHERE source = 'rollup' AND status = 'ok' AND rows > 0)"; }
wait_for "a minute rollup wrote rows (once a sampled minute has passed)" 75 minute_rolled_up
check "the health score was recorded and the alerts evaluated" "true|true" \
    "$(q "SELECT ((SELECT count(*) FROM dbanalytics.health_history) >= 2)::text || '|' ||
                 EXISTS (SELECT FROM dbanalytics.collector_runs WHERE source = 'alerts' AND status = 'ok')::text")"

step "dbanalytics analyzes nobody but its users"
SAMPLES=$(q "SELECT count(DISTINCT sampled_at) FROM dbanalytics.connection_samples")
SNAPSHOTS=$(q "SELECT count(*) FROM dbanalytics.collector_runs WHERE worker = 'collector' AND source = 'statements' AND status = 'ok'")
info "the workers took $SAMPLES samples and $SNAPSHOTS statement snapshots meanwhile"
check "several snapshots and many samples happened" t "$(q "SELECT $SNAPSHOTS >= 5 AND $SAMPLES >= 50")"
WORKER_ROLE=$(q "SELECT oid FROM pg_roles WHERE rolname = 'postgres'")
DBID=$(q "SELECT oid FROM pg_database WHERE datname = '$DB'")
check "pg_stat_statements holds no statement of the workers' role in $DB" "" \
    "$(q "SELECT string_agg(left(query, 60), ' | ') FROM pg_stat_statements WHERE userid = $WORKER_ROLE AND dbid = $DBID")"
check "nor any statement of the workers by its text, in any database" "" \
    "$(q "SELECT string_agg(left(query, 60), ' | ') FROM pg_stat_statements
           WHERE userid <> (SELECT oid FROM pg_roles WHERE rolname = 'tester') AND query ~ '_sample_activity|_snapshot_|collector_runs|source_state|_rollup_|_record_health|_evaluate_alerts|_prune_activity_keys|pg_extension WHERE extname|pg_advisory_xact_lock|CREATE TABLE dbanalytics|DROP TABLE dbanalytics|WITH drained'")"
check "the history holds no statement of theirs" "0|0|0" \
    "$(q "SELECT (SELECT count(*) FROM dbanalytics.statements WHERE userid = $WORKER_ROLE AND dbid = $DBID) || '|' ||
                 (SELECT count(*) FROM dbanalytics.statement_stats WHERE userid = $WORKER_ROLE AND dbid = $DBID) || '|' ||
                 (SELECT count(*) FROM dbanalytics.statement_latency WHERE userid = $WORKER_ROLE AND dbid = $DBID)")"
check "top_queries names none of theirs" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.top_queries('1 hour', 'calls', 1000) WHERE usename = 'postgres' AND datname = '$DB'")"
check "every statement query_analysis names is one of tester's" "" \
    "$(q "WITH analysis AS (SELECT dbanalytics.query_analysis('1 hour') AS a),
                named AS (SELECT jsonb_path_query(a, '\$.**.queryid') AS id FROM analysis
                          UNION SELECT jsonb_path_query(a, '\$.**.parent_queryid') FROM analysis)
           SELECT string_agg(id::text, ',') FROM named
            WHERE NOT EXISTS (SELECT FROM dbanalytics.statements s JOIN pg_roles r ON r.oid = s.userid
                               WHERE s.queryid = id::text::bigint AND r.rolname = 'tester')")"
check "index_advice and health_score_details name no statement of the workers" "" \
    "$(q "SELECT string_agg(x, ' | ') FROM (
              SELECT a::text AS x FROM dbanalytics.index_advice('1 hour') a
              UNION ALL SELECT h::text FROM dbanalytics.health_score_details('1 hour') h) t
           WHERE x ~ '_sample_activity|_snapshot_|collector_runs|source_state|_rollup_|_record_health|_evaluate_alerts|pg_extension WHERE extname|WITH drained'")"

finish_checks e2e_n_plus_one
