#!/usr/bin/env bash
# End-to-end: without shared_preload_libraries, CREATE EXTENSION succeeds with a WARNING that
# background collection is off, and take_sample() / take_snapshot() collect on demand.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-without-preload
PORT=55434
q() { psql_at "$DIR" "$PORT" postgres "$1"; }
stop_clusters_on_exit "$DIR"

step "A cluster without dbanalytics in shared_preload_libraries"
cluster_init "$DIR" "$PORT"
cluster_start "$DIR"

NOTICE=$("$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres \
    -c "CREATE EXTENSION dbanalytics" 2>&1)
check "CREATE EXTENSION says collection is off and how to turn it on" yes \
    "$(grep -q 'background collection is off' <<<"$NOTICE" && grep -q 'shared_preload_libraries' <<<"$NOTICE" && echo yes || echo "$NOTICE")"
check "collection_preloaded() is false" f "$(q "SELECT dbanalytics.collection_preloaded()")"
check "no dbanalytics worker runs" 0 "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'dbanalytics%'")"

step "On-demand collection"
"$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -d postgres -c "SELECT pg_sleep(3)" >/dev/null &
sleep 1
check "take_sample() succeeds" "activity:ok partitions:ok" \
    "$(q "SELECT string_agg(source || ':' || status, ' ' ORDER BY source) FROM dbanalytics.take_sample()")"
check "the sleeping session was sampled" t \
    "$(q "SELECT count(*) > 0 FROM dbanalytics.activity_samples WHERE wait_event = 'PgSleep'")"
check "take_snapshot() skips pg_stat_statements (not installed), histograms and plans (not preloaded), runs the rest" \
    "statements:skipped latency:skipped plans:skipped" \
    "$(q "SELECT string_agg(source || ':' || status, ' ') FROM dbanalytics.take_snapshot() WHERE status <> 'ok' AND NOT $UNAVAILABLE_HERE")"
check "plan_capture_status(): not enabled, no counters" "f|t" \
    "$(q "SELECT enabled, captured IS NULL AND shared_memory_bytes IS NULL FROM dbanalytics.plan_capture_status()")"
wait

finish_checks e2e_without_preload
