#!/usr/bin/env bash
# End-to-end test of the health score and alerts on a real cluster: a healthy idle server
# scores high with no critical risk; each induced problem (a deadlock, a session idle in a
# transaction, a large unused index, a trust line in pg_hba, a table full of dead tuples, a
# saturated pool) costs its indicator the documented points and yields its risk and
# recommendation; health_score() equals what health_score_details() adds up to; a LISTENing
# client receives the deadlock alert once.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-health
PORT=55437
DB=appdb
export PGPASSWORD=e2e-health-secret # SCRAM authentication: the baseline pg_hba has no trust rule
q() { psql_at "$DIR" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
snapshot_after() { holds "(SELECT max(interval_end) FROM dbanalytics.database_stats) > '$1'"; }
# the documented points of an indicator, recomputed from its value and thresholds
points_rule_holds() {
    holds "(SELECT bool_and(points_lost = round(CASE status
                WHEN 'bad' THEN weight
                WHEN 'warn' THEN CASE WHEN indicator = 'cache_hit_ratio' AND value >= warn_threshold  -- the mild band
                                      THEN weight * 0.2 * (0.99 - value) / (0.99 - warn_threshold)
                                      ELSE weight * (0.5 + 0.5 * (value - warn_threshold) / (bad_threshold - warn_threshold)) END
                WHEN 'unknown' THEN weight / 2 WHEN 'not_configured' THEN weight / 2 ELSE 0 END, 4))
              FROM dbanalytics.health_score_details('1 hour'))"
}
# health_score() equals the sum of its details, overall and per component
score_matches_details() {
    holds "(WITH s AS (SELECT dbanalytics.health_score('1 hour') AS j),
                 d AS (SELECT component, 100 - sum(points_lost) AS score, sum(overall_points_lost) AS overall_lost
                         FROM dbanalytics.health_score_details('1 hour') GROUP BY component)
            SELECT (SELECT (j->>'overall_score')::numeric FROM s) = round(100 - (SELECT sum(overall_lost) FROM d), 2)
               AND (SELECT bool_and((SELECT (j->'component_scores'->>component)::numeric FROM s) = round(d.score, 2)) FROM d))"
}
indicator() { q "SELECT status || ':' || points_lost FROM dbanalytics.health_score_details('1 hour') WHERE indicator = '$1'"; }
has_risk() { q "SELECT count(*) FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'risk_factors') r WHERE r->>'factor' = '$1'"; }
has_recommendation() { q "SELECT count(*) FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'recommendations') r
                           WHERE r->>'indicator' = '$1' AND r->>'action' LIKE '$2'"; }

stop_clusters_on_exit "$DIR"

step "Cluster with SCRAM authentication, snapshots and health records every 5 s"
rm -rf "$DIR"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.snapshot_interval = '5s'" "dbanalytics.health_interval = '5s'" \
    "max_connections = 20" "superuser_reserved_connections = 3"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
T0=$(q "SELECT now()")
wait_for "two snapshots" 30 holds "(SELECT count(DISTINCT interval_end) FROM dbanalytics.database_stats) >= 2"

step "A healthy idle server"
info "$(q "SELECT 'overall ' || (j->>'overall_score') || ', components ' || (j->'component_scores')::text
             FROM (SELECT dbanalytics.health_score('1 hour') j) s")"
check "scores at least 80" t "$(q "SELECT (dbanalytics.health_score('1 hour')->>'overall_score')::numeric >= 80")"
check "has no critical risk" 0 \
    "$(q "SELECT count(*) FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'risk_factors') r WHERE r->>'severity' = 'critical'")"
check "says WAL archiving is off" 1 "$(has_risk backup_recency)"
check "every indicator follows the points rule" t "$(points_rule_holds && echo t)"
check "health_score() equals its details" t "$(score_matches_details && echo t)"
wait_for "health_history records the score" 20 holds "(SELECT count(*) FROM dbanalytics.health_trend) >= 1"

step "A LISTENing client, then a deadlock"
{
    echo "LISTEN dbanalytics_alerts;"
    for _ in $(seq 1 40); do echo "SELECT pg_sleep(1);"; done
} | "$PG_BIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" >"$DIR/listener.out" 2>&1 &
LISTENER=$!
q "CREATE TABLE accounts (id int PRIMARY KEY, v int); INSERT INTO accounts VALUES (1, 0), (2, 0)"
q "BEGIN; UPDATE accounts SET v = 1 WHERE id = 1; SELECT pg_sleep(1); UPDATE accounts SET v = 1 WHERE id = 2; COMMIT" >/dev/null 2>&1 &
q "BEGIN; UPDATE accounts SET v = 2 WHERE id = 2; SELECT pg_sleep(1); UPDATE accounts SET v = 2 WHERE id = 1; COMMIT" >/dev/null 2>&1 &
wait %3 %4 2>/dev/null || true
wait_for "the deadlock is counted" 30 holds "(SELECT sum(deadlocks) FROM dbanalytics.database_stats) = 1"
check "deadlock_frequency loses points by the rule" t "$(points_rule_holds && echo t)"
check "deadlock_frequency is no longer ok" t "$(q "SELECT status IN ('warn', 'bad') AND points_lost >= weight / 2 FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'deadlock_frequency'")"
check "a deadlock risk with evidence" 1 "$(has_risk deadlock_frequency)"
check "a deadlock recommendation" 1 "$(has_recommendation deadlock_frequency '%log_lock_waits%')"
wait_for "the deadlock alert opens and then resolves" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.alerts WHERE rule = 'deadlock' AND resolved_at IS NOT NULL)"
wait "$LISTENER" || true
check "the LISTENing client received the deadlock alert exactly once" 1 \
    "$(grep 'Asynchronous notification "dbanalytics_alerts"' "$DIR/listener.out" | grep -c '"rule": "deadlock"' || true)"
check "one deadlock episode in alerts" 1 "$(q "SELECT count(*) FROM dbanalytics.alerts WHERE rule = 'deadlock'")"

step "A session idle in a transaction for over a minute, a large unused index, dead tuples, a trust line"
"$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d "$DB" -c "BEGIN" -c "SELECT txid_current()" -c "\\! sleep 75" >/dev/null 2>&1 &
IDLE=$!
q "CREATE TABLE wide (id int, payload text); INSERT INTO wide SELECT g, md5(g::text) FROM generate_series(1, 300000) g;
   CREATE INDEX wide_payload ON wide (payload)"
q "CREATE TABLE churn (id int, v int) WITH (autovacuum_enabled = off); INSERT INTO churn SELECT g, g FROM generate_series(1, 50000) g;
   DELETE FROM churn WHERE id % 10 < 6"
T1=$(q "SELECT now()")
wait_for "a snapshot that knows the new index" 20 snapshot_after "$T1"
# the collector has watched wide_payload for 8 days without a scan
q "UPDATE dbanalytics.index_counters SET first_seen = now() - interval '8 days'
    WHERE indexrelid = 'public.wide_payload'::regclass"
check "unused_index_bytes loses points" t "$(q "SELECT status IN ('warn', 'bad') FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'unused_index_bytes'")"
check "its recommendation is the DROP INDEX" 1 "$(has_recommendation unused_index_bytes 'DROP INDEX CONCURRENTLY public.wide_payload;%')"
wait_for "the dead tuples are counted" 20 holds "(SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'churn') >= 30000"
check "dead_tuples loses 18 of 30 maintenance points (1 table: 30 x (0.5 + 0.5 x 1/5))" "warn:18.0000" "$(indicator dead_tuples)"
check "its recommendation is the VACUUM" 1 "$(has_recommendation dead_tuples 'VACUUM (ANALYZE) public.churn;%')"
SECURITY_BEFORE=$(q "SELECT dbanalytics.health_score('1 hour')->'component_scores'->>'security'")
echo "host all all 0.0.0.0/0 trust" | as_pg_user tee -a "$DIR/data/pg_hba.conf" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
check "the trust line costs the security component its 30 points" "30.00" \
    "$(q "SELECT round($SECURITY_BEFORE - (dbanalytics.health_score('1 hour')->'component_scores'->>'security')::numeric, 2)")"
check "a pg_hba risk naming the line" 1 \
    "$(q "SELECT count(*) FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'risk_factors') r
           WHERE r->>'factor' = 'hba_weak_authentication' AND r->'evidence'->>'facts' LIKE '%0.0.0.0%trust%'")"
wait_for "the session has been idle in its transaction for over a minute" 80 \
    holds "(SELECT value > 60 FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'idle_in_transaction_seconds')"
check "idle_in_transaction_seconds loses points and names the session" t \
    "$(q "SELECT status = 'warn' AND points_lost > 10 FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'idle_in_transaction_seconds'")"
check "its recommendation terminates that backend or sets a timeout" 1 "$(has_recommendation idle_in_transaction_seconds 'SELECT pg_terminate_backend(%')"
kill "$IDLE" 2>/dev/null || true

step "A saturated pool: 16 busy clients of 17 usable connections"
as_pg_user env PGPASSWORD="$PGPASSWORD" "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -s 1 -q "$DB" >/dev/null 2>&1
as_pg_user env PGPASSWORD="$PGPASSWORD" "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -S -c 16 -j 2 -T 8 "$DB" >/dev/null 2>&1
check "connection_pool_efficiency loses points" t \
    "$(q "SELECT status IN ('warn', 'bad') FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'connection_pool_efficiency'")"
check "a pool risk" 1 "$(has_risk connection_pool_efficiency)"

step "Through it all the score stays explainable"
check "every indicator follows the points rule" t "$(points_rule_holds && echo t)"
check "health_score() equals its details" t "$(score_matches_details && echo t)"
check "health_trend shows the fall" t "$(q "SELECT min(overall_score) < max(overall_score) FROM dbanalytics.health_trend")"

finish_checks e2e_health
