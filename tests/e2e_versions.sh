#!/usr/bin/env bash
# End-to-end test of the per-version column mapping (sql/versions.sql, docs/versions.md) on the
# PostgreSQL in PG_BIN/PG_CONFIG (scripts/test runs it on 15 and on 18): a pgbench workload
# that reads from disk with track_io_timing on, a CHECKPOINT between two snapshots, and the
# analytics that read the stable names, which must answer the same way on every major.
# Expects dbanalytics to be installed into that PostgreSQL (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-versions-pg$PG_MAJOR
PORT=5461
DB=verdb
SNAPSHOT_S=5

q() { psql_at "$DIR" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }

stop_clusters_on_exit "$DIR"

step "PostgreSQL $PG_MAJOR ($("$PG_BIN/postgres" --version)): a cluster with small shared_buffers and track_io_timing"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" \
    "dbanalytics.sample_interval = '1s'" \
    "dbanalytics.snapshot_interval = '${SNAPSHOT_S}s'" \
    "shared_buffers = '16MB'  # pgbench's 80 MB at scale 5 must be read from disk" \
    "track_io_timing = on" \
    "max_connections = 30"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -s 5 -q "$DB" >/dev/null 2>&1

step "The mapping reads this server's columns"
case $PG_MAJOR in
    13) pgss=1.8 ;; 14) pgss=1.9 ;; 15) pgss=1.10 ;; 16) pgss=1.10 ;; 17) pgss=1.11 ;; *) pgss=1.12 ;;
esac
check "pg_stat_statements $pgss on PostgreSQL $PG_MAJOR" "$pgss" \
    "$(q "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")"
if [ "$PG_MAJOR" -ge 17 ]; then
    read_col=shared_blk_read_time; timed=num_timed; req=num_requested; written=buffers_written
    ckpt_view=pg_stat_checkpointer
else
    read_col=blk_read_time; timed=checkpoints_timed; req=checkpoints_req; written=buffers_checkpoint
    ckpt_view=pg_stat_bgwriter
fi
info "expected sources: pg_stat_statements.$read_col, $ckpt_view.$timed/$req/$written"
check "_statements_now() has every pg_stat_statements entry, blk_read_time = $read_col" t \
    "$(q "BEGIN ISOLATION LEVEL REPEATABLE READ;
          SET LOCAL stats_fetch_consistency = snapshot;
          SELECT (SELECT count(*) FROM dbanalytics._statements_now('public'))
                 = (SELECT count(*) FROM pg_stat_statements(false) WHERE queryid IS NOT NULL)
             AND (SELECT sum(blk_read_time) FROM dbanalytics._statements_now('public') WHERE calls > 0)
                 IS NOT DISTINCT FROM
                 (SELECT sum($read_col) FROM pg_stat_statements(false) WHERE queryid IS NOT NULL AND calls > 0);
          COMMIT" | grep -x '[tf]')"
check "_bgwriter_now() reads the checkpoint counters from $ckpt_view" t \
    "$(q "BEGIN; SET LOCAL stats_fetch_consistency = snapshot;
          SELECT (n.checkpoints_timed, n.checkpoints_req, n.buffers_checkpoint) = (c.$timed, c.$req, c.$written)
            FROM dbanalytics._bgwriter_now() n, $ckpt_view c;
          COMMIT" | grep -x '[tf]')"
check "_bgwriter_now() has no NULL counter" t \
    "$(q "SELECT num_nulls(checkpoints_timed, checkpoints_req, checkpoint_write_time, checkpoint_sync_time,
                           buffers_checkpoint, buffers_clean, maxwritten_clean, buffers_backend,
                           buffers_backend_fsync, buffers_alloc) = 0 FROM dbanalytics._bgwriter_now()")"

if [ "$PG_MAJOR" -ge 16 ]; then
    if [ "$PG_MAJOR" -ge 18 ]; then bytes="read_bytes"; else bytes="reads * op_bytes"; fi
    check "_io_now() has every row of pg_stat_io, read_bytes = $bytes" t \
        "$(q "BEGIN; SET LOCAL stats_fetch_consistency = snapshot;
              SELECT (SELECT count(*) FROM dbanalytics._io_now()) = (SELECT count(*) FROM pg_stat_io)
                 AND (SELECT sum(read_bytes) FROM dbanalytics._io_now())
                     IS NOT DISTINCT FROM (SELECT sum($bytes)::bigint FROM pg_stat_io);
              COMMIT" | grep -x '[tf]')"
fi

step "pgbench workload (4 clients, 24 s) with a CHECKPOINT after the first snapshots"
wait_for "a first bgwriter snapshot (the baseline)" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.source_state WHERE source = 'bgwriter')"
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -c 4 -j 2 -T 24 "$DB" >"$DIR/pgbench.log" 2>&1 &
PGBENCH=$!
sleep $((SNAPSHOT_S * 2))
CKPT_AT=$(q "SELECT now()")
q "CHECKPOINT"
wait "$PGBENCH" || { cat "$DIR/pgbench.log"; exit 1; }
wait_for "a bgwriter interval that covers the CHECKPOINT" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.bgwriter_stats WHERE interval_end > '$CKPT_AT' AND checkpoints_req > 0)"
wait_for "two snapshots with statement deltas" 30 \
    holds "(SELECT count(DISTINCT interval_end) FROM dbanalytics.statement_stats) >= 2"

step "History tables get rows"
for table in activity_samples connection_samples statement_stats statement_latency database_stats \
    database_latency table_stats index_stats bgwriter_stats collector_runs; do
    check "$table has rows" t "$(q "SELECT count(*) > 0 FROM dbanalytics.$table")"
done
wait_for "the minute rollups (activity_minute, connection_minute)" 100 \
    holds "(SELECT count(*) FROM dbanalytics.activity_minute) > 0
           AND (SELECT count(*) FROM dbanalytics.connection_minute) > 0"

step "Stable names filled from this server's columns"
check "statement deltas of pgbench_accounts carry block reads and non-zero read time" t \
    "$(q "SELECT sum(st.shared_blks_read) > 0 AND sum(st.blk_read_time) > 0
            FROM $STATEMENT_MINUTES st
            JOIN dbanalytics.statements s USING (dbid, userid, queryid, toplevel)
           WHERE s.query LIKE '%pgbench_accounts%'")"
check "no negative delta in statement_stats" 0 \
    "$(q "SELECT count(*) FROM $STATEMENT_MINUTES st
           WHERE least(calls, rows, shared_blks_read, wal_bytes) < 0 OR least(blk_read_time, blk_write_time) < 0")"
check "the CHECKPOINT is counted: checkpoints_req and buffers_checkpoint (from $ckpt_view)" t \
    "$(q "SELECT sum(checkpoints_req) >= 1 AND sum(buffers_checkpoint) > 0
            FROM dbanalytics.bgwriter_stats WHERE interval_end > '$CKPT_AT'")"
check "buffers_alloc is counted" t "$(q "SELECT sum(buffers_alloc) > 0 FROM dbanalytics.bgwriter_stats")"
check "no bgwriter interval is negative" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.bgwriter_stats
           WHERE least(checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend,
                       buffers_alloc) < 0 OR least(checkpoint_write_time, checkpoint_sync_time) < 0")"

step "pg_stat_io (the io source, 16+)"
if [ "$PG_MAJOR" -ge 16 ]; then
    # on 18 a read may cover several blocks (io_combine_limit), hence bytes >= reads * BLCKSZ
    check "relation reads in io_stats, with read time and bytes" t \
        "$(q "SELECT sum(reads) > 0 AND sum(read_time) > 0 AND sum(read_bytes) >= sum(reads) * 8192
                FROM dbanalytics.io_stats WHERE object = 'relation'")"
    check "the CHECKPOINT's writes in io_stats (backend type checkpointer)" t \
        "$(q "SELECT sum(writes) > 0 FROM dbanalytics.io_stats
               WHERE backend_type = 'checkpointer' AND interval_end > '$CKPT_AT'")"
    check "no io_stats row without activity, none negative" 0 \
        "$(q "SELECT count(*) FROM dbanalytics.io_stats
               WHERE greatest(reads, writes, writebacks, extends, hits, evictions, reuses, fsyncs) = 0
                  OR least(reads, read_bytes, writes, write_bytes, writebacks, extends, extend_bytes, hits,
                           evictions, reuses, fsyncs) < 0
                  OR least(read_time, write_time, writeback_time, extend_time, fsync_time) < 0")"
    check "io_activity: client backends' buffer hits in the last hour, and the reads" t \
        "$(q "SELECT bool_or(backend_type = 'client backend' AND object = 'relation' AND context = 'normal'
                             AND hits > 0 AND hit_ratio > 0 AND hit_ratio <= 1)
                 AND sum(reads) > 0 AND bool_and(covered > interval '0')
                FROM dbanalytics.io_activity")"
    q "SELECT pg_stat_reset_shared('io')" >/dev/null
    RESET_AT=$(q "SELECT now()")
    q "SELECT count(*) FROM pgbench_accounts" >/dev/null
    wait_for "two io runs after pg_stat_reset_shared('io')" 30 \
        holds "(SELECT count(*) FROM dbanalytics.collector_runs WHERE source = 'io' AND started_at > '$RESET_AT') >= 2"
    check "after pg_stat_reset_shared('io'): exactly one io run marked reset, and no negative delta" "1 0" \
        "$(q "SELECT (SELECT count(*) FROM dbanalytics.collector_runs
                       WHERE source = 'io' AND started_at > '$RESET_AT' AND reset)
                     || ' ' ||
                     (SELECT count(*) FROM dbanalytics.io_stats WHERE least(reads, writes, hits, extends) < 0)")"
else
    check "collector_status: io skipped, and why" "skipped:pg_stat_io needs PostgreSQL 16 or later" \
        "$(q "SELECT health || ':' || split_part(skipped_reason, ' (', 1)
                FROM dbanalytics.collector_status WHERE source = 'io'")"
    check "io_stats and io_activity are empty" "0 0" \
        "$(q "SELECT (SELECT count(*) FROM dbanalytics.io_stats) || ' ' || (SELECT count(*) FROM dbanalytics.io_activity)")"
fi

step "collector_status: every source healthy"
check "sources that are not healthy" "" \
    "$(q "SELECT coalesce(string_agg(source || ':' || health || ':' || coalesce(last_error, skipped_reason, ''), ' '
                                     ORDER BY source), '')
            FROM dbanalytics.collector_status WHERE health <> 'healthy' AND NOT $UNAVAILABLE_HERE")"

step "The analytics answer as on every other major"
check "health_score(): an overall score in [0, 100] and every component scored" t \
    "$(q "SELECT (h->>'overall_score')::numeric BETWEEN 0 AND 100
             AND NOT EXISTS (SELECT FROM jsonb_each(h->'component_scores') c WHERE c.value = 'null'::jsonb)
            FROM dbanalytics.health_score() h")"
check "health_score_details(): every indicator measured (none unknown)" "" \
    "$(q "SELECT coalesce(string_agg(component || '/' || indicator, ' ' ORDER BY component, indicator), '')
            FROM dbanalytics.health_score_details() WHERE status = 'unknown'")"
check "top_queries(): pgbench's UPDATE of pgbench_accounts with its calls and reads" t \
    "$(q "SELECT calls > 100 AND shared_blks_read >= 0 FROM dbanalytics.top_queries('1 hour', 'calls', 50)
           WHERE query LIKE 'UPDATE pgbench_accounts%'")"
check "index_effectiveness: pgbench_accounts_pkey is used" t \
    "$(q "SELECT scans_in_window > 0 FROM dbanalytics.index_effectiveness WHERE indexname = 'pgbench_accounts_pkey'")"
check "connection_pool_analytics: pgbench's connections per minute" t \
    "$(q "SELECT max(max_active) >= 1 FROM dbanalytics.connection_pool_analytics
           WHERE datname = '$DB' AND application_name = 'pgbench'")"

finish_checks "e2e_versions (PostgreSQL $PG_MAJOR)"
