#!/usr/bin/env bash
# End-to-end test of the retention tiers (issue 13, docs/storage.md) on a real cluster, with
# history generated across three days at explicit timestamps:
#   - the hourly rollup of the generated minutes gives the same per-statement totals, the same
#     merged latency histograms (so the same percentiles) and the same N+1 run counts as the
#     minutes; the daily rollup the same totals as its hours;
#   - the analytics answer the same over a 3-day window whether they read the minutes (before
#     any rollup), the hourly rows (after it), or the hourly rows alone once retention dropped
#     the minute partitions past dbanalytics.retention_minutes;
#   - the minute partitions past retention_minutes are gone, the hourly ones are kept, and
#     storage_usage shows each table in its tier with the history it still holds.
# Expects dbanalytics to be installed into the PostgreSQL in PG_CONFIG (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-tiers
CL=$DIR/cluster
PORT=5590
DB=tiers
q() { psql_at "$CL" "$PORT" "$DB" "$1"; }
stop_clusters_on_exit "$CL"

step "A cluster with dbanalytics, workers off (history is generated, retention run by take_snapshot)"
rm -rf "$DIR"; mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$DIR"
cluster_init "$CL" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.enabled = off" "TimeZone = 'America/Sao_Paulo'"
cluster_start "$CL"
psql_at "$CL" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null

step "Five statements every minute of the 58 whole hours that end 2 hours ago (over 3 UTC days)"
# partitions for the past days, as the partition manager makes them (with their indexes)
q "$(past_partitions_sql 4)"
q "CREATE TABLE gen_minutes AS
   SELECT m AS interval_end, row_number() OVER (ORDER BY m)::int AS n
     FROM generate_series(date_trunc('hour', now()) - interval '60 hours' + interval '1 minute',
                          date_trunc('hour', now()) - interval '2 hours', interval '1 minute') m;
   CREATE TABLE gen_statements AS
   SELECT q AS queryid, (SELECT oid FROM pg_database WHERE datname = current_database()) AS dbid,
          (SELECT oid FROM pg_roles WHERE rolname = current_user) AS userid
     FROM generate_series(101, 105) q;
   INSERT INTO dbanalytics.statements (dbid, userid, queryid, toplevel, datname, usename, query)
   SELECT s.dbid, s.userid, s.queryid, true, current_database(), current_user, 'SELECT ' || s.queryid || ' /* tiers */'
     FROM gen_statements s;
   INSERT INTO dbanalytics.statement_stats
   SELECT m.interval_end - interval '1 minute', m.interval_end, s.dbid, s.userid, s.queryid, true, m.n = 700,
          c.calls, 0, c.calls * (s.queryid - 100) * 0.5, 0, c.calls, c.calls * 3, m.n % 3, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0
     FROM gen_minutes m CROSS JOIN gen_statements s
    CROSS JOIN LATERAL (SELECT 1 + (m.n + s.queryid) % 7 AS calls) c;
   INSERT INTO dbanalytics.statement_latency
   SELECT m.interval_end - interval '1 minute', m.interval_end, s.dbid, s.userid, s.queryid, m.n = 700,
          c.calls,
          CASE WHEN m.n % 4 = 0 THEN ARRAY[40 + s.queryid - 100] ELSE ARRAY[40 + s.queryid - 100, 60 + m.n % 5] END::smallint[],
          CASE WHEN m.n % 4 = 0 THEN ARRAY[c.calls] ELSE ARRAY[c.calls - 1, 1] END::bigint[],
          r.runs, r.runs * 12, CASE WHEN r.runs > 0 THEN 12 + m.n % 3 END,
          CASE WHEN r.runs > 0 THEN 998 + m.n % 2 END,
          m.n * 0.001 * s.queryid, CASE WHEN m.n % 2 = 0 THEN 0.25 END, 8192 * (m.n % 4), NULL,
          CASE WHEN r.runs > 0 THEN 'app ' || m.n % 3 END
     FROM gen_minutes m CROSS JOIN gen_statements s
    CROSS JOIN LATERAL (SELECT 1 + (m.n + s.queryid) % 7 AS calls,
                               CASE WHEN s.queryid = 101 THEN 1 + m.n % 2 END AS runs) c
    CROSS JOIN LATERAL (SELECT c.runs) r"
info "$(q "SELECT count(*) || ' statement_stats rows from ' || min(interval_start) || ' to ' || max(interval_end)
             FROM dbanalytics.statement_stats WHERE queryid BETWEEN 101 AND 105")"

# Each answer as one line per statement, from the analytics and readers the tiers change
TOTALS="SELECT string_agg(format('%s:%s:%s', t.queryid, t.calls, round(t.total_exec_time::numeric, 3)), ' ' ORDER BY t.queryid)
          FROM dbanalytics._statement_totals(now() - interval '3 days', now()) t WHERE t.queryid BETWEEN 101 AND 105"
LATENCY="SELECT string_agg(format('%s:%s:%s:%s:%s', l.queryid, l.executions, l.p50_ms, l.p99_ms, l.reset), ' ' ORDER BY l.queryid)
           FROM dbanalytics.query_latency('3 days', 1000) l WHERE l.queryid BETWEEN 101 AND 105"
HISTOGRAM="SELECT string_agg(format('%s:%s', h.bucket, h.executions), ' ' ORDER BY h.bucket)
             FROM dbanalytics.latency_histogram(103, '3 days') h"
RUNS="SELECT string_agg(format('%s:%s:%s:%s', l.queryid, sum, ex, mx), ' ' ORDER BY l.queryid)
        FROM (SELECT l.queryid, sum(l.runs) AS sum, sum(l.run_executions) AS ex, max(l.run_max_length) AS mx
                FROM dbanalytics._latency_parts(now() - interval '3 days', now()) l
               WHERE l.queryid BETWEEN 101 AND 105 AND l.runs > 0 GROUP BY 1) l"
# a window whose far end is a partial hour within the last day: read from the packed minutes
# once _pack_minutes has packed them
SINCE="date_trunc('hour', now()) - interval '20 hours 43 minutes'"
PARTIAL="SELECT string_agg(format('%s:%s:%s', t.queryid, t.calls, round(t.total_exec_time::numeric, 3)), ' ' ORDER BY t.queryid)
           FROM dbanalytics._statement_totals($SINCE, now()) t WHERE t.queryid BETWEEN 101 AND 105"
PARTIAL_LATENCY="SELECT string_agg(format('%s:%s:%s:%s:%s:%s', l.queryid, l.executions, l.runs, l.cpu, l.disk, l.buckets), ' ' ORDER BY l.queryid)
           FROM (SELECT l.queryid, sum(l.executions) AS executions, sum(l.runs) AS runs,
                        round(sum(l.cpu_user_time + COALESCE(l.cpu_system_time, 0))::numeric, 6) AS cpu,
                        sum(l.disk_read_bytes) AS disk,
                        (SELECT string_agg(b || '=' || c, ',' ORDER BY b)
                           FROM (SELECT u.b, sum(u.c) AS c
                                   FROM dbanalytics._latency_parts($SINCE, now()) x, unnest(x.buckets, x.counts) u(b, c)
                                  WHERE x.queryid = l.queryid GROUP BY 1) h) AS buckets
                   FROM dbanalytics._latency_parts($SINCE, now()) l
                  WHERE l.queryid BETWEEN 101 AND 105 GROUP BY 1) l"
answers() {
    printf '%s\n' "$(q "$TOTALS")" "$(q "$LATENCY")" "$(q "$HISTOGRAM")" "$(q "$RUNS")" "$(q "$PARTIAL")" \
        "$(q "$PARTIAL_LATENCY")"
}
# every minute row, whether in statement_stats (statement_latency) or packed
# (STATEMENT_MINUTES and LATENCY_MINUTES: tests/lib.sh)
STATS_MINUTES="SELECT * FROM $STATEMENT_MINUTES s WHERE queryid BETWEEN 101 AND 105"
TEST_LATENCY_MINUTES="SELECT * FROM $LATENCY_MINUTES l WHERE queryid BETWEEN 101 AND 105"

step "Analytics over 3 days before any rollup (from the minutes)"
q "DELETE FROM dbanalytics.source_state WHERE source IN ('hours', 'days')"
BEFORE=$(answers)
printf '%s\n' "$BEFORE" | sed 's/^/    /'
check "every statement answered from the minutes" 5 "$(q "SELECT count(*) FROM dbanalytics._statement_totals(now() - interval '3 days', now()) WHERE queryid BETWEEN 101 AND 105")"
q "CREATE TABLE copy_stats AS SELECT * FROM dbanalytics.statement_stats WHERE queryid BETWEEN 101 AND 105;
   CREATE TABLE copy_latency AS SELECT * FROM dbanalytics.statement_latency WHERE queryid BETWEEN 101 AND 105"

step "The hourly and daily rollups"
q "SELECT dbanalytics._rollup_hours()" >/dev/null
check "one statement_hourly row per statement and hour" 290 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_hourly WHERE queryid BETWEEN 101 AND 105")"
check "one statement_latency_hourly row per statement and hour" 290 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_latency_hourly WHERE queryid BETWEEN 101 AND 105")"
check "hourly totals = minute totals" 0 \
    "$(q "SELECT count(*) FROM ((SELECT queryid, sum(calls), sum(total_exec_time), sum(rows), sum(shared_blks_read), bool_or(reset)
             FROM dbanalytics.statement_stats WHERE queryid BETWEEN 101 AND 105 GROUP BY 1
           EXCEPT SELECT queryid, sum(calls), sum(total_exec_time), sum(rows), sum(shared_blks_read), bool_or(reset)
             FROM dbanalytics.statement_hourly WHERE queryid BETWEEN 101 AND 105 GROUP BY 1)) x")"
check "hourly histograms = minute histograms, bucket by bucket" 0 \
    "$(q "SELECT count(*) FROM ((SELECT l.queryid, u.b, sum(u.c) FROM dbanalytics.statement_latency l, unnest(l.buckets, l.counts) u(b, c)
            WHERE l.queryid BETWEEN 101 AND 105 GROUP BY 1, 2
           EXCEPT SELECT h.queryid, u.b, sum(u.c) FROM dbanalytics.statement_latency_hourly h, unnest(h.buckets, h.counts) u(b, c)
            WHERE h.queryid BETWEEN 101 AND 105 GROUP BY 1, 2)
           UNION ALL
           (SELECT h.queryid, u.b, sum(u.c) FROM dbanalytics.statement_latency_hourly h, unnest(h.buckets, h.counts) u(b, c)
             WHERE h.queryid BETWEEN 101 AND 105 GROUP BY 1, 2
            EXCEPT SELECT l.queryid, u.b, sum(u.c) FROM dbanalytics.statement_latency l, unnest(l.buckets, l.counts) u(b, c)
             WHERE l.queryid BETWEEN 101 AND 105 GROUP BY 1, 2)) x")"
check "each hour's histogram counts add up to its executions" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_latency_hourly h
           WHERE h.executions <> (SELECT sum(c) FROM unnest(h.counts) c)")"
check "the parent kept for an hour is the one named for most runs in it" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_latency_hourly h
           WHERE h.queryid = 101 AND h.run_parent_queryid IS DISTINCT FROM (
                 SELECT l.run_parent_queryid FROM dbanalytics.statement_latency l
                  WHERE l.queryid = 101 AND dbanalytics._time_ceil(l.interval_end, 3600) = h.hour_end
                  GROUP BY 1 ORDER BY sum(l.runs) DESC, 1 LIMIT 1)")"
check "daily totals = the totals of their hours" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_daily d
           CROSS JOIN LATERAL (
                 SELECT sum(h.calls) AS calls, sum(h.total_exec_time) AS total_exec_time
                   FROM dbanalytics.statement_hourly h
                  WHERE (h.dbid, h.userid, h.queryid, h.toplevel) = (d.dbid, d.userid, d.queryid, d.toplevel)
                    AND h.hour_end > d.day_end - interval '1 day' AND h.hour_end <= d.day_end) h
           WHERE d.queryid BETWEEN 101 AND 105
             AND (d.calls, d.total_exec_time) IS DISTINCT FROM (h.calls, h.total_exec_time)")"
check "daily histograms = the histograms of their hours, bucket by bucket" 0 \
    "$(q "SELECT count(*) FROM (
            SELECT d.queryid, d.day_end, u.b, u.c FROM dbanalytics.statement_latency_daily d, unnest(d.buckets, d.counts) u(b, c)
             WHERE d.queryid BETWEEN 101 AND 105
            EXCEPT
            SELECT h.queryid, dbanalytics._time_ceil(h.hour_end, 86400), u.b, sum(u.c)
              FROM dbanalytics.statement_latency_hourly h, unnest(h.buckets, h.counts) u(b, c)
             WHERE h.queryid BETWEEN 101 AND 105
               AND dbanalytics._time_ceil(h.hour_end, 86400) IN (SELECT day_end FROM dbanalytics.statement_latency_daily)
             GROUP BY 1, 2, 3) x")"
check "one statement_latency_daily row per statement and rolled day" t \
    "$(q "SELECT count(*) = 5 * count(DISTINCT day_end) AND count(*) > 0 FROM dbanalytics.statement_latency_daily
           WHERE queryid BETWEEN 101 AND 105")"
check "at least one whole UTC day rolled up" t \
    "$(q "SELECT count(DISTINCT day_end) >= 1 FROM dbanalytics.statement_daily WHERE queryid BETWEEN 101 AND 105")"
check "analytics over the hourly rows = over the minutes" "$BEFORE" "$(answers)"

step "Packing the minutes of the rolled-up hours within retention_minutes, two hours per run"
PACKABLE=$(q "SELECT count(DISTINCT dbanalytics._time_ceil(interval_end, 3600)) FROM gen_minutes
               WHERE interval_end > dbanalytics._time_floor(now() - interval '1 day', 3600)")
info "$PACKABLE hours to pack"
RUNS_NEEDED=0
while [ "$(q "SELECT dbanalytics._pack_minutes()")" != 0 ]; do
    RUNS_NEEDED=$((RUNS_NEEDED + 1))
    [ $RUNS_NEEDED -lt 40 ] || break
done
check "runs that packed something: two hours each" $(( (PACKABLE + 1) / 2 )) "$RUNS_NEEDED"
check "one statement_stats_packed row per statement and packed hour" $((5 * PACKABLE)) \
    "$(q "SELECT count(*) FROM dbanalytics.statement_stats_packed WHERE queryid BETWEEN 101 AND 105")"
check "one statement_latency_packed row per statement and packed hour" $((5 * PACKABLE)) \
    "$(q "SELECT count(*) FROM dbanalytics.statement_latency_packed WHERE queryid BETWEEN 101 AND 105")"
check "one clock per packed hour (packed_hours)" \
    "$(q "SELECT count(DISTINCT hour_end) FROM (SELECT hour_end FROM dbanalytics.statement_stats_packed
                                               UNION ALL SELECT hour_end FROM dbanalytics.statement_latency_packed) p")" \
    "$(q "SELECT count(*) FROM dbanalytics.packed_hours")"
check "every packed matrix is packed on its hour's clock (format 3), latency with its histograms by core bucket (flag 16)" 0 \
    "$(q "SELECT count(*) FROM (SELECT intervals, 3 AS format FROM dbanalytics.statement_stats_packed
                                UNION ALL SELECT intervals, 3 | 16 FROM dbanalytics.statement_latency_packed) p
           WHERE get_byte(p.intervals, 0) <> p.format")"
check "run applications kept for the statement with runs only" "101:$PACKABLE" \
    "$(q "SELECT string_agg(queryid || ':' || n, ' ') FROM (SELECT queryid, count(*) AS n FROM dbanalytics.statement_latency_packed
           WHERE run_applications IS NOT NULL GROUP BY 1) x")"
check "no minute row of a packed hour is left unpacked" 0 \
    "$(q "SELECT count(*) FROM dbanalytics.statement_stats s JOIN dbanalytics.statement_stats_packed p
            ON s.interval_end > p.hour_end - interval '1 hour' AND s.interval_end <= p.hour_end")"
check "the minutes unpack to the very rows that were packed (statement_stats)" 0 \
    "$(q "SELECT (SELECT count(*) FROM (($STATS_MINUTES) EXCEPT ALL SELECT * FROM copy_stats) x)
                 + (SELECT count(*) FROM (SELECT * FROM copy_stats EXCEPT ALL ($STATS_MINUTES)) x)")"
check "the minutes unpack to the very rows that were packed (statement_latency)" 0 \
    "$(q "SELECT (SELECT count(*) FROM (($TEST_LATENCY_MINUTES) EXCEPT ALL SELECT * FROM copy_latency) x)
                 + (SELECT count(*) FROM (SELECT * FROM copy_latency EXCEPT ALL ($TEST_LATENCY_MINUTES)) x)")"
check "the packed minutes since $SINCE hold runs of the three applications" 3 \
    "$(q "SELECT count(DISTINCT c.run_application) FROM copy_latency c
           WHERE c.run_application IS NOT NULL AND c.interval_end > $SINCE
             AND c.interval_end <= (SELECT max(hour_end) FROM dbanalytics.statement_latency_packed)")"
check "runs per application summed from the packed minutes (the N+1 lookup) = from the rows packed" \
    "$(q "SELECT string_agg(a || ':' || n, ' ' ORDER BY a) FROM (
            SELECT c.run_application AS a, sum(c.runs) AS n FROM copy_latency c
              JOIN dbanalytics.statement_latency_packed p
                ON p.queryid = c.queryid AND c.interval_end > p.hour_end - interval '1 hour' AND c.interval_end <= p.hour_end
             WHERE c.run_application IS NOT NULL AND c.interval_end > $SINCE GROUP BY 1) x")" \
    "$(q "SELECT string_agg(a || ':' || n, ' ' ORDER BY a) FROM (
            SELECT u.run_application AS a, sum(u.runs) AS n FROM dbanalytics.statement_latency_packed p
              JOIN dbanalytics.packed_hours c USING (hour_end)
             CROSS JOIN LATERAL dbanalytics._unpack_latency_totals(
                       p.intervals, (EXTRACT(epoch FROM $SINCE) * 1000000)::bigint, NULL, p.run_applications,
                       c.interval_ends) u
             WHERE p.run_applications IS NOT NULL AND u.run_application IS NOT NULL GROUP BY 1) x")"
info "$(q "SELECT 'packed: ' || round(avg(length(intervals))) || ' B per statement-hour of statement_stats, '
                  || (SELECT round(avg(length(intervals))) FROM dbanalytics.statement_latency_packed) || ' B of statement_latency'
             FROM dbanalytics.statement_stats_packed")"
check "analytics over the packed minutes = over the minutes" "$BEFORE" "$(answers)"

step "Retention: minute partitions past dbanalytics.retention_minutes (1 day) are dropped"
fault_case minute_retention
OLD_DAY=$(q "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 2, 'YYYYMMDD')")
check "the minute rows two days ago exist before" t \
    "$(q "SELECT EXISTS (SELECT FROM dbanalytics.statement_stats_p$OLD_DAY)")"
q "SELECT source, status, rows FROM dbanalytics.take_snapshot() WHERE source IN ('hours', 'retention') OR status <> 'ok'" \
    | sed 's/^/    /'
for t in statement_stats statement_latency statement_stats_packed statement_latency_packed packed_hours table_stats index_stats; do
    check "$t: no partition older than yesterday" none \
        "$(q "SELECT coalesce(string_agg(c.relname, ','), 'none') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'dbanalytics.$t'::regclass
                 AND right(c.relname, 8) < to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYYMMDD')")"
done
for t in statement_hourly statement_latency_hourly statement_daily statement_latency_daily database_stats; do
    check "$t: partitions of the older days kept" 4 \
        "$(q "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'dbanalytics.$t'::regclass
                 AND right(c.relname, 8) < to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD')")"
done
check "no minute row before yesterday is left" f \
    "$(q "SELECT EXISTS (SELECT FROM dbanalytics.statement_stats
                          WHERE interval_end < ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC')")"
check "the statements' texts are kept while hourly rows refer to them" 5 \
    "$(q "SELECT count(*) FROM dbanalytics.statements WHERE queryid BETWEEN 101 AND 105")"
check "analytics once the minutes are gone = over the minutes" "$BEFORE" "$(answers)"

step "storage_usage: every table in its tier, with the history it holds"
fault_case ""
q "SELECT tier, table_name, retention, partitions, pg_size_pretty(bytes), oldest, newest
     FROM dbanalytics.storage_usage WHERE table_name LIKE 'statement%'" | sed 's/^/    /'
check "tiers of the statement tables" \
    "statement_daily:days statement_hourly:hours statement_latency:minutes statement_latency_daily:days statement_latency_hourly:hours statement_latency_packed:minutes statement_stats:minutes statement_stats_packed:minutes statements:state" \
    "$(q "SELECT string_agg(table_name || ':' || tier, ' ' ORDER BY table_name) FROM dbanalytics.storage_usage
           WHERE table_name LIKE 'statement%' AND table_name NOT IN ('statement_counters')")"
check "statement_hourly holds the generated hours since the first one" t \
    "$(q "SELECT oldest = date_trunc('hour', now()) - interval '59 hours' FROM dbanalytics.storage_usage
           WHERE table_name = 'statement_hourly'")"
check "statement_stats holds nothing older than yesterday" t \
    "$(q "SELECT oldest >= ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC'
            FROM dbanalytics.storage_usage WHERE table_name = 'statement_stats'")"
check "a projection for every table with an hour of history, retention x bytes per day" none \
    "$(q "SELECT coalesce(string_agg(table_name, ','), 'none') FROM dbanalytics.storage_usage
           WHERE tier <> 'state' AND newest - oldest >= interval '1 hour'
             AND projected_bytes IS DISTINCT FROM round(bytes_per_day * extract(epoch FROM retention) / 86400)::bigint")"
check "a reader may read storage_usage" t \
    "$(q "CREATE ROLE tiers_reader LOGIN IN ROLE dbanalytics_reader;
          SET ROLE tiers_reader; SELECT count(*) > 20 FROM dbanalytics.storage_usage")"

finish_checks "e2e_tiers"
