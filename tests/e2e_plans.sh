#!/usr/bin/env bash
# End-to-end test of plan history (issue 19) on a real cluster, the workers off so that every
# snapshot is the test's own (take_snapshot()):
#  (a) a lookup by id runs 300 times with its index; the index is dropped and the lookup runs
#      300 times more, by sequential scan. query_plans shows both plans (normalized: no costs,
#      no constants), plan_changes shows the change with the old and the new plan and the
#      executions and percentiles before and after, regressions() lists the statement with that
#      plan change against the stretch before, and the alert plan_regression opens once; a
#      statement that switches to another plan and back shows both changes;
#  (b) a fast statement never gets a plan captured when new shapes are not captured, and is
#      explained once (not once per execution) when they are;
#  (b) sampling (dbanalytics.plan_shape_sample_rate, 1 in the rest of this test): while a
#      backend passes over fast executions, a statement's first execution and its slow ones
#      are looked at, a fast plan switch is not; a new rate applies at once; at rate 0 only
#      each statement's first execution in each interval is looked at (a fast plan switch is
#      seen in the next one), at 0.5 a fast plan switch is seen within 3 executions;
#  (b) a partitioned table keeps one plan id whichever partition pruning leaves, and when a
#      partition is added; with plan_capture_analyze, a slow execution's plan is also kept with its actual rows;
#  (c) a flood of slow executions stores at most dbanalytics.plan_capture_max_per_interval
#      captures in an interval, and the queue's 32 slots at most between two snapshots; the
#      drops are counted in plan_capture_status();
#  (d) a reader that may not see a statement's text sees none of its plans either.
# Nothing here depends on how long a statement takes: captures are made by shape (the capture
# threshold is 1 s, which no statement of the test reaches) or with a threshold of 0. Every
# fast execution is looked at (plan_shape_sample_rate = 1) except in the step on sampling.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=${E2E_DIR:-$PWD/target/e2e-plans}
PORT=${E2E_PORT:-5531}
DB=appdb
q() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U tester -d "$DB" -c "$1"; }
q_as() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U "$1" -d "$DB" -c "$2"; }
# run_file FILE: the file's statements, each a top-level statement of one session
run_file() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U tester -d "$DB" -f "$1" >/dev/null; }
snapshot() { q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null; }
# indexed_table NAME COLUMN: NAME (id, COLUMN) with 50,000 rows, an index NAME_id on id, analyzed
indexed_table() {
    q "CREATE TABLE $1 (id int NOT NULL, $2 int);
       INSERT INTO $1 SELECT g, g FROM generate_series(1, 50000) g;
       CREATE INDEX $1_id ON $1 (id)"
    q "VACUUM ANALYZE $1"
}
queryid_of() { q "SELECT queryid FROM pg_stat_statements WHERE query LIKE '$1' AND toplevel"; }

stop_clusters_on_exit "$DIR"

step "Cluster: workers off, plans captured by shape (threshold 1 s)"
rm -rf "$DIR"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.enabled = off" \
    "dbanalytics.plan_capture_threshold = '1s'" "dbanalytics.plan_shape_sample_rate = 1"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE ROLE tester SUPERUSER LOGIN"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB OWNER tester"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
q "CREATE TABLE items (id int NOT NULL, payload text);
   INSERT INTO items SELECT g, repeat('x', 40) FROM generate_series(1, 100000) g;
   CREATE INDEX items_id ON items (id)"
q "VACUUM ANALYZE items"
WORK=$DIR/work
mkdir -p "$WORK"
for i in $(seq 1 300); do echo "SELECT payload FROM items WHERE id = $((i * 97 % 100000 + 1));"; done >"$WORK/lookups.sql"
check "plan capture is on, nothing captured yet" "t|0|0" \
    "$(q "SELECT enabled, dropped_over_limit, dropped_queue_full FROM dbanalytics.plan_capture_status()")"
snapshot

step "(a) A plan change: the index is dropped"
run_file "$WORK/lookups.sql"
snapshot
LOOKUP=$(queryid_of 'SELECT payload FROM items WHERE id = %')
q "DROP INDEX items_id"
run_file "$WORK/lookups.sql"
snapshot
check "the lookup has two plans: an index scan, then a sequential scan" "Index Scan|Seq Scan" \
    "$(q "SELECT string_agg(plan::json->'Plan'->>'Node Type', '|' ORDER BY first_seen)
            FROM dbanalytics.query_plans($LOOKUP, '1 hour')")"
check "each plan was explained once: one capture each" "1|1" \
    "$(q "SELECT string_agg(captures::text, '|' ORDER BY first_seen) FROM dbanalytics.query_plans($LOOKUP, '1 hour')")"
check "plans are stored normalized: no costs, the constant replaced" "(id = ?)|(id = ?)|0" \
    "$(q "SELECT p.plan::json->'Plan'->>'Index Cond',
                 (SELECT plan::json->'Plan'->>'Filter' FROM dbanalytics.query_plans($LOOKUP, '1 hour') WHERE plan LIKE '%Seq Scan%'),
                 (SELECT count(*) FROM dbanalytics.plans WHERE plan LIKE '%Total Cost%')
            FROM dbanalytics.query_plans($LOOKUP, '1 hour') p WHERE p.plan LIKE '%Index Scan%'")"
check "plan_changes: one change of the lookup, index scan to sequential scan" "1|Index Scan|Seq Scan" \
    "$(q "SELECT count(*), max(previous_plan::json->'Plan'->>'Node Type'), max(plan::json->'Plan'->>'Node Type')
            FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $LOOKUP")"
check "plan_changes: 300 executions on each side, the p95 higher after" "300|300|t" \
    "$(q "SELECT executions_before, executions_after, p95_ms_after > p95_ms_before
            FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $LOOKUP")"
check "plan_changes: the change is the new plan's first capture" "t" \
    "$(q "SELECT c.changed_at = p.first_seen AND c.planid = p.planid
            FROM dbanalytics.plan_changes('1 hour') c
            JOIN dbanalytics.query_plans($LOOKUP, '1 hour') p ON p.plan LIKE '%Seq Scan%'
           WHERE c.queryid = $LOOKUP")"
# the window: from the change on; the baseline: the hour before it
WINDOW="now() - (SELECT changed_at FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $LOOKUP) + interval '1 millisecond'"
check "regressions lists the lookup, with its plan change" "1|t" \
    "$(q "SELECT count(*), bool_and(r.plan_changed_at = c.changed_at AND r.planid = c.planid
                                    AND r.previous_planid = c.previous_planid)
            FROM dbanalytics.regressions($WINDOW, '1 hour') r
            JOIN dbanalytics.plan_changes('1 hour') c ON c.queryid = r.queryid
           WHERE r.queryid = $LOOKUP")"
check "the regression is in the p95 (and the mean)" "t" \
    "$(q "SELECT regressed_on LIKE '%p95%' FROM dbanalytics.regressions($WINDOW, '1 hour') WHERE queryid = $LOOKUP")"
check "the alert plan_regression opened, naming the lookup" "1|t" \
    "$(q "SELECT count(*), bool_and(details->'queryids' @> to_jsonb($LOOKUP))
            FROM dbanalytics.alerts WHERE rule = 'plan_regression' AND resolved_at IS NULL")"
check "report_html shows the change, with both plans, escaped" "t|f|t" \
    "$(q "WITH r AS (SELECT dbanalytics.report_html('1 hour') AS html),
                s AS (SELECT substring(html FROM '<h3>Plan changes \(plan history\)</h3>(.*?)<h3>') AS part FROM r)
          SELECT part LIKE '%&quot;Index Scan&quot;%&quot;Seq Scan&quot;%', part LIKE '%No statement changed its plan%',
                 part LIKE '%SELECT payload FROM items WHERE id = \$1%' FROM s")"
snapshot
check "the alert fires once: the next snapshot keeps the same episode" "1" \
    "$(q "SELECT count(*) FROM dbanalytics.alerts WHERE rule = 'plan_regression'")"

step "(a) A plan switch back: a statement returns to the plan it had before"
indexed_table accounts balance
for i in $(seq 1 20); do echo "SELECT balance FROM accounts WHERE id = $((i * 31));"; done >"$WORK/accounts.sql"
(printf 'SET enable_indexscan = off;\nSET enable_bitmapscan = off;\n'; cat "$WORK/accounts.sql") >"$WORK/accounts_seq.sql"
run_file "$WORK/accounts.sql"
snapshot
run_file "$WORK/accounts_seq.sql"
snapshot
run_file "$WORK/accounts.sql"
snapshot
ACCOUNT=$(queryid_of 'SELECT balance FROM accounts WHERE id = %')
check "two plans, each explained once" "2|Index Scan,Seq Scan" \
    "$(q "SELECT count(*), string_agg(plan::json->'Plan'->>'Node Type', ',' ORDER BY plan::json->'Plan'->>'Node Type')
            FROM dbanalytics.plans WHERE queryid = $ACCOUNT")"
check "plan_changes: to the sequential scan, and back to the index scan" "Index Scan>Seq Scan,Seq Scan>Index Scan" \
    "$(q "SELECT string_agg((previous_plan::json->'Plan'->>'Node Type') || '>' || (plan::json->'Plan'->>'Node Type'), ','
                            ORDER BY changed_at)
            FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $ACCOUNT")"

step "(a) A prepared statement: its generic plan changes when the index is dropped"
# one session: the prepared lookup runs with a generic plan (from its sixth execution), which
# the executor hooks hash once and then read from their entry for it; the index is dropped in
# the same session, the plan cache plans the statement again (the old plan is freed, and the
# entry with it), and the new plan is a switch, captured
indexed_table orders amount
{
    echo "PREPARE order_amount(int) AS SELECT amount FROM orders WHERE id = \$1;"
    for i in $(seq 1 40); do echo "EXECUTE order_amount($((i * 17)));"; done
    echo "DROP INDEX orders_id;"
    for i in $(seq 1 40); do echo "EXECUTE order_amount($((i * 19)));"; done
} >"$WORK/prepared.sql"
run_file "$WORK/prepared.sql"
snapshot
ORDER=$(queryid_of 'PREPARE order_amount(int) AS SELECT amount FROM orders WHERE id = %')
check "the prepared lookup has two plans, each explained once" "Index Scan:1|Seq Scan:1" \
    "$(q "SELECT string_agg((plan::json->'Plan'->>'Node Type') || ':' || captures, '|' ORDER BY first_seen)
            FROM dbanalytics.query_plans($ORDER, '1 hour')")"
check "plan_changes: the prepared lookup went from the index scan to a sequential scan" "Index Scan>Seq Scan" \
    "$(q "SELECT string_agg((previous_plan::json->'Plan'->>'Node Type') || '>' || (plan::json->'Plan'->>'Node Type'), ',')
            FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $ORDER")"

# DEALLOCATE frees the plan (and its entry); the statement prepared again once the index is
# back gets another plan, maybe at the same address: it is hashed again, a switch (whether the
# entry goes with the plan is shown by the pg_test plan_entries_end_with_their_plans_memory:
# here the addresses need not be reused)
{
    echo "PREPARE order_total(int) AS SELECT sum(amount) FROM orders WHERE id = \$1;"
    for i in $(seq 1 12); do echo "EXECUTE order_total($((i * 3)));"; done
    echo "DEALLOCATE order_total;"
    echo "CREATE INDEX orders_id ON orders (id);"
    echo "PREPARE order_total(int) AS SELECT sum(amount) FROM orders WHERE id = \$1;"
    for i in $(seq 1 12); do echo "EXECUTE order_total($((i * 3)));"; done
} >"$WORK/prepared_again.sql"
run_file "$WORK/prepared_again.sql"
snapshot
TOTAL=$(queryid_of 'PREPARE order_total(int) AS SELECT sum(amount) FROM orders WHERE id = %')
check "prepared again after DEALLOCATE, with an index: the plan change is seen" "Seq Scan>Index Scan" \
    "$(q "SELECT string_agg((previous_plan::json->'Plan'->'Plans'->0->>'Node Type') || '>' || (plan::json->'Plan'->'Plans'->0->>'Node Type'), ',')
            FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $TOTAL")"

step "(b) Fast statements: no capture without new shapes, one per shape with them"
cat >"$WORK/fast_off.sql" <<'EOF'
SET dbanalytics.plan_capture_new_shapes = off;
EOF
for i in $(seq 1 50); do echo "SELECT count(*) FROM items WHERE id < $i AND payload IS NULL;"; done >>"$WORK/fast_off.sql"
for i in $(seq 1 50); do echo "SELECT max(id) FROM items WHERE id > $i AND payload IS NOT NULL;"; done >"$WORK/fast_on.sql"
run_file "$WORK/fast_off.sql"
run_file "$WORK/fast_on.sql"
snapshot
FAST_OFF=$(queryid_of 'SELECT count(*) FROM items WHERE id < % AND payload IS NULL')
FAST_ON=$(queryid_of 'SELECT max(id) FROM items WHERE id > % AND payload IS NOT NULL')
check "50 fast executions, new shapes off: no plan" "0|0" \
    "$(q "SELECT (SELECT count(*) FROM dbanalytics.plans WHERE queryid = $FAST_OFF),
                 (SELECT count(*) FROM dbanalytics.plan_sightings WHERE queryid = $FAST_OFF)")"
check "50 fast executions, new shapes on: one plan, one capture, not slow" "1|1|0" \
    "$(q "SELECT count(*), sum(captures), sum(slow_captures) FROM dbanalytics.query_plans($FAST_ON, '1 hour')")"

# plans_and_changes QUERYID: its plans (node type:captures:slow captures) in the order first
# seen, then its plan changes (old>new node type)
plans_and_changes() {
    q "SELECT string_agg((plan::json->'Plan'->>'Node Type') || ':' || captures || ':' || slow_captures, '|' ORDER BY first_seen)
              || '|' || COALESCE((SELECT string_agg((previous_plan::json->'Plan'->>'Node Type') || '>' || (plan::json->'Plan'->>'Node Type'), ',')
                                    FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $1), 'no change')
         FROM dbanalytics.query_plans($1, '1 hour')"
}

step "(b) Sampling: a statement's first execution in each interval and its slow ones are always looked at"
# at rate 1e-9, a backend's first fast execution of a statement already looked at in the interval
# (its second) is looked at and draws the run to pass over: about 2e9 executions (0 with a
# chance of 5e-10)
seq_scans='SET enable_indexscan = off; SET enable_bitmapscan = off;'
indexed_table notes body
{
    echo "SET dbanalytics.plan_shape_sample_rate = 1e-9;"
    for i in $(seq 1 20); do echo "SELECT body FROM notes WHERE id = $((i * 7));"; done
    echo "SELECT max(body) FROM notes WHERE id < 3;"
    echo "$seq_scans"
    for i in $(seq 1 50); do echo "SELECT body FROM notes WHERE id = $((i * 11));"; done
} >"$WORK/sampled_fast.sql"
run_file "$WORK/sampled_fast.sql"
snapshot
NOTE=$(queryid_of 'SELECT body FROM notes WHERE id = %')
FIRST=$(queryid_of 'SELECT max(body) FROM notes WHERE id < %')
check "passing over: the first execution's plan is captured, the fast switch to a sequential scan is not" \
    "Index Scan:1:0|no change" "$(plans_and_changes "$NOTE")"
check "passing over: another statement's first execution is looked at all the same" "1" \
    "$(q "SELECT count(*) FROM dbanalytics.query_plans($FIRST, '1 hour')")"
{
    echo "SET dbanalytics.plan_shape_sample_rate = 1e-9;"
    for i in 1 2; do echo "SELECT body FROM notes WHERE id = $i;"; done
    echo "$seq_scans"
    echo "SET dbanalytics.plan_capture_threshold = 0;"
    echo "SELECT body FROM notes WHERE id = 5;"
} >"$WORK/sampled_slow.sql"
run_file "$WORK/sampled_slow.sql"
snapshot
check "passing over: a slow execution is looked at: the sequential scan captured as slow, a plan change" \
    "Index Scan:1:0|Seq Scan:1:1|Index Scan>Seq Scan" "$(plans_and_changes "$NOTE")"
indexed_table tags label
{
    echo "SET dbanalytics.plan_shape_sample_rate = 1e-9;"
    for i in $(seq 1 5); do echo "SELECT label FROM tags WHERE id = $((i * 13));"; done
    echo "SET dbanalytics.plan_shape_sample_rate = 1;"
    echo "$seq_scans"
    echo "SELECT label FROM tags WHERE id = 17;"
} >"$WORK/sampled_reset.sql"
run_file "$WORK/sampled_reset.sql"
snapshot
TAG=$(queryid_of 'SELECT label FROM tags WHERE id = %')
check "a new rate applies at the next execution: at 1, the fast switch right after is seen" \
    "Index Scan:1:0|Seq Scan:1:0|Index Scan>Seq Scan" "$(plans_and_changes "$TAG")"
indexed_table marks grade
{
    echo "SET dbanalytics.plan_shape_sample_rate = 0;"
    for i in $(seq 1 5); do echo "SELECT grade FROM marks WHERE id = $((i * 3));"; done
    echo "$seq_scans"
    for i in $(seq 1 20); do echo "SELECT grade FROM marks WHERE id = $((i * 5));"; done
} >"$WORK/sampled_none.sql"
{
    echo "SET dbanalytics.plan_shape_sample_rate = 0;"
    echo "$seq_scans"
    for i in $(seq 1 3); do echo "SELECT grade FROM marks WHERE id = $((i * 13));"; done
} >"$WORK/sampled_next.sql"
run_file "$WORK/sampled_none.sql"
snapshot
MARK=$(queryid_of 'SELECT grade FROM marks WHERE id = %')
check "rate 0: the first execution is looked at, not the fast switch" "Index Scan:1:0|no change" "$(plans_and_changes "$MARK")"
run_file "$WORK/sampled_next.sql"
snapshot
check "rate 0: the statement's first execution in the next interval is looked at: the fast switch is seen" \
    "Index Scan:1:0|Seq Scan:1:0|Index Scan>Seq Scan" "$(plans_and_changes "$MARK")"
indexed_table ranks place
{
    echo "SET dbanalytics.plan_shape_sample_rate = 0.5;"
    for i in $(seq 1 10); do echo "SELECT place FROM ranks WHERE id = $((i * 7));"; done
    echo "$seq_scans"
    for i in $(seq 1 3); do echo "SELECT place FROM ranks WHERE id = $((i * 11));"; done
} >"$WORK/sampled_half.sql"
run_file "$WORK/sampled_half.sql"
snapshot
RANK=$(queryid_of 'SELECT place FROM ranks WHERE id = %')
check "rate 0.5: the fast switch is seen within the 3 executions after it (at most 2 passed over)" \
    "Index Scan:1:0|Seq Scan:1:0|Index Scan>Seq Scan" "$(plans_and_changes "$RANK")"

step "(b) A partitioned table: one plan whichever partition a value prunes to, and after a partition is added"
q "CREATE TABLE ev (day int NOT NULL, v int) PARTITION BY RANGE (day);
   CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM (1) TO (2);
   CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM (2) TO (3);
   CREATE TABLE ev_3 PARTITION OF ev FOR VALUES FROM (3) TO (4);
   INSERT INTO ev SELECT 1 + g % 3, g FROM generate_series(1, 3000) g;
   CREATE INDEX ON ev (day)"
q "ANALYZE ev"
for day in 1 2 3 1 2 3; do echo "SELECT count(*) FROM ev WHERE day = $day;"; done >"$WORK/partitions.sql"
run_file "$WORK/partitions.sql"
q "CREATE TABLE ev_4 PARTITION OF ev FOR VALUES FROM (4) TO (5); INSERT INTO ev SELECT 4, g FROM generate_series(1, 1000) g"
q "ANALYZE ev"
echo "SELECT count(*) FROM ev WHERE day = 4;" >"$WORK/partition4.sql"
run_file "$WORK/partition4.sql"
snapshot
PRUNED=$(queryid_of 'SELECT count(*) FROM ev WHERE day = %')
check "7 executions over 4 partitions, one of them new: one plan" "1" \
    "$(q "SELECT count(*) FROM dbanalytics.query_plans($PRUNED, '1 hour')")"
check "its plan names the partition it was first explained on" "t" \
    "$(q "SELECT plan LIKE '%ev_1%' FROM dbanalytics.query_plans($PRUNED, '1 hour')")"

step "(b) plan_capture_analyze: a slow execution's plan with its actual rows"
cat >"$WORK/analyze.sql" <<'EOF'
SET dbanalytics.plan_capture_analyze = on;
SET dbanalytics.plan_capture_threshold = 0;
SELECT payload FROM items WHERE id = 4242;
EOF
check "before: no analyzed plan" "0" \
    "$(q "SELECT count(analyzed_plan) FROM dbanalytics.query_plans($LOOKUP, '1 hour')")"
run_file "$WORK/analyze.sql"
snapshot
check "the sequential scan's plan has an analyzed version: 1 row of 100000 found, the constant replaced" "1|t|(id = ?)|t" \
    "$(q "SELECT count(analyzed_plan), max((analyzed_plan::json->'Plan'->>'Actual Rows')::numeric) = 1,
                 max(analyzed_plan::json->'Plan'->>'Filter'), bool_and(analyzed_at > now() - interval '1 minute')
            FROM dbanalytics.query_plans($LOOKUP, '1 hour') WHERE plan LIKE '%Seq Scan%'")"

step "(c) A flood of slow executions: bounded per interval and by the queue"
for i in $(seq 1 50); do echo "SELECT pg_catalog.pg_sleep(0);"; done >"$WORK/flood.sql"
q "ALTER SYSTEM SET dbanalytics.plan_capture_max_per_interval = 4"
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
# the statements of this step's own sessions, run once so that their shapes are known (never
# captured again: they are fast)
q "SELECT dropped_over_limit, dropped_queue_full FROM dbanalytics.plan_capture_status()" >/dev/null
snapshot
BEFORE=$(q "SELECT dropped_over_limit || '|' || dropped_queue_full FROM dbanalytics.plan_capture_status()")
snapshot
(echo "SET dbanalytics.plan_capture_threshold = 0;"; cat "$WORK/flood.sql") >"$WORK/flood_slow.sql"
run_file "$WORK/flood_slow.sql"
AFTER=$(q "SELECT dropped_over_limit || '|' || dropped_queue_full FROM dbanalytics.plan_capture_status()")
snapshot
SLEEP=$(queryid_of 'SELECT pg_catalog.pg_sleep($1)')
check "max 4 per interval: 4 captures stored, all slow" "4|4" \
    "$(q "SELECT sum(captures), sum(slow_captures) FROM dbanalytics.plan_sightings WHERE queryid = $SLEEP")"
check "the 46 others dropped over the limit, none for a full queue" \
    "$(( ${BEFORE%|*} + 46 ))|${BEFORE#*|}" "$AFTER"
q "ALTER SYSTEM SET dbanalytics.plan_capture_max_per_interval = 1000"
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
q "SELECT dropped_over_limit FROM dbanalytics.plan_capture_status()" >/dev/null
snapshot
BEFORE=$(q "SELECT dropped_over_limit || '|' || dropped_queue_full FROM dbanalytics.plan_capture_status()")
snapshot
run_file "$WORK/flood_slow.sql"
AFTER=$(q "SELECT dropped_over_limit || '|' || dropped_queue_full || '|' || waiting FROM dbanalytics.plan_capture_status()")
check "max 1000, 50 captures between two snapshots: 32 wait in the queue, 18 dropped as it was full" \
    "${BEFORE%|*}|$(( ${BEFORE#*|} + 18 ))|32" "$AFTER"
snapshot
check "the 32 were stored" "36" \
    "$(q "SELECT sum(captures) FROM dbanalytics.plan_sightings WHERE queryid = $SLEEP")"
# a statement's first execution whose capture is dropped over the limit: its first execution
# in the next interval is a first one again, even in a backend passing over fast executions
# (rate 1e-9: the second execution of min(grade), looked at before in the interval, draws the
# run to pass over); its second execution in the interval is passed over, not dropped again
q "ALTER SYSTEM SET dbanalytics.plan_capture_max_per_interval = 2"
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
snapshot
cat >"$WORK/first_dropped.sql" <<'EOF'
SET dbanalytics.plan_shape_sample_rate = 1e-9;
SELECT min(grade) FROM marks WHERE id = 1;
SELECT min(grade) FROM marks WHERE id = 3;
SELECT max(grade) FROM marks WHERE id = 1;
SELECT max(grade) FROM marks WHERE id = 4;
SELECT count(*) FROM dbanalytics.take_snapshot();
SELECT max(grade) FROM marks WHERE id = 2;
EOF
BEFORE=$(q "SELECT dropped_over_limit FROM dbanalytics.plan_capture_status()")
run_file "$WORK/first_dropped.sql"
AFTER=$(q "SELECT dropped_over_limit FROM dbanalytics.plan_capture_status()")
snapshot
LATER=$(queryid_of 'SELECT max(grade) FROM marks WHERE id = %')
check "max 2 (1 for new shapes): the second new statement's first capture dropped once, taken in the next interval" \
    "1|1" "$(( AFTER - BEFORE ))|$(q "SELECT count(*) FROM dbanalytics.query_plans($LATER, '1 hour')")"
q "ALTER SYSTEM SET dbanalytics.plan_capture_max_per_interval = 1000"
q "SELECT pg_reload_conf()" >/dev/null
sleep 1

step "(d) Privileges: a plan is shown only to who may see the statement's text"
psql_at "$DIR" "$PORT" postgres "CREATE ROLE watcher LOGIN IN ROLE dbanalytics_reader"
check "a reader sees the lookup's plan ids, not its plans" "2|0" \
    "$(q_as watcher "SELECT count(*), count(plan) FROM dbanalytics.query_plans($LOOKUP, '1 hour')")"
check "a reader sees the plan change, not the plans" "1|0|0" \
    "$(q_as watcher "SELECT count(*), count(previous_plan), count(plan) FROM dbanalytics.plan_changes('1 hour') WHERE queryid = $LOOKUP")"
check "a reader cannot read the plans table" "permission denied" \
    "$(q_as watcher "SELECT count(*) FROM dbanalytics.plans" 2>&1 | grep -o 'permission denied' | head -1)"
check "pg_read_all_stats sees them" "2|2" \
    "$(psql_at "$DIR" "$PORT" postgres "GRANT pg_read_all_stats TO watcher" >/dev/null;
       q_as watcher "SELECT count(*), count(plan) FROM dbanalytics.query_plans($LOOKUP, '1 hour')")"

finish_checks "e2e_plans"
