-- Analytics on a fixed history (issue 12): two statements with known counters and latency
-- histograms, written directly into the history tables (no worker runs: dbanalytics is not
-- preloaded), and what top_queries, query_latency, latency_histogram and query_analysis make
-- of them. Times are relative to now(), so only values that do not depend on the clock are
-- shown.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET extra_float_digits = 0;
CREATE EXTENSION dbanalytics;

-- the daily partitions of yesterday, today and tomorrow, as the partition manager makes them
DO $$
DECLARE day date; t text; p text;
BEGIN
    FOR day IN SELECT d::date FROM generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                                                   (now() AT TIME ZONE 'UTC')::date + 1, interval '1 day') d LOOP
        FOR t IN SELECT c.relname FROM pg_class c
                  WHERE c.relnamespace = 'dbanalytics'::regnamespace AND c.relkind = 'p' LOOP
            p := t || '_p' || to_char(day, 'YYYYMMDD');
            EXECUTE format('CREATE TABLE dbanalytics.%I PARTITION OF dbanalytics.%I FOR VALUES FROM (%L) TO (%L)',
                           p, t, to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
            PERFORM dbanalytics._index_partition(t, p);
        END LOOP;
    END LOOP;
END $$;

-- two statements of this database and user: a quick lookup run often, a slow update
INSERT INTO dbanalytics.statements (dbid, userid, queryid, toplevel, datname, usename, query, first_seen)
SELECT d.oid, r.oid, q.queryid, true, d.datname, r.rolname, q.query, now() - interval '50 minutes'
  FROM pg_database d, pg_roles r,
       (VALUES (1001, 'SELECT * FROM orders WHERE id = $1'),
               (1002, 'UPDATE orders SET status = $1 WHERE id = $2')) q(queryid, query)
 WHERE d.datname = current_database() AND r.rolname = current_user;

-- two snapshot intervals of each: (calls, exec ms, rows, blocks hit, blocks read)
INSERT INTO dbanalytics.statement_stats
SELECT now() - i.back - interval '5 minutes', now() - i.back, d.oid, r.oid, q.queryid, true, false,
       q.calls, 0, q.exec_ms, 0, q.rows, q.hit, q.read, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, q.wal
  FROM pg_database d, pg_roles r,
       (VALUES (1001, 600, 300.0, 600, 1800, 0, 0),
               (1002, 5, 3000.0, 5, 40, 60, 8192)) q(queryid, calls, exec_ms, rows, hit, read, wal),
       (VALUES (interval '35 minutes'), (interval '5 minutes')) i(back)
 WHERE d.datname = current_database() AND r.rolname = current_user;

-- their latency histograms: the lookup around 0.5 ms with a tail at 5 ms, the update around 500 ms
INSERT INTO dbanalytics.statement_latency
       (interval_start, interval_end, dbid, userid, queryid, reset, executions, buckets, counts)
SELECT now() - i.back - interval '5 minutes', now() - i.back, d.oid, r.oid, h.queryid, false, h.n,
       h.buckets, h.counts
  FROM pg_database d, pg_roles r,
       (SELECT 1001 AS queryid, 600 AS n,
               ARRAY[(SELECT b.bucket FROM dbanalytics.latency_buckets() b WHERE b.lower_ms <= 0.5 AND b.upper_ms > 0.5),
                     (SELECT b.bucket FROM dbanalytics.latency_buckets() b WHERE b.lower_ms <= 5 AND b.upper_ms > 5)]::smallint[] AS buckets,
               ARRAY[594, 6]::bigint[] AS counts
        UNION ALL
        SELECT 1002, 5,
               ARRAY[(SELECT b.bucket FROM dbanalytics.latency_buckets() b WHERE b.lower_ms <= 500 AND b.upper_ms > 500)]::smallint[],
               ARRAY[5]::bigint[]) h,
       (VALUES (interval '35 minutes'), (interval '5 minutes')) i(back)
 WHERE d.datname = current_database() AND r.rolname = current_user;

\pset format unaligned
SELECT rank, queryid, toplevel, query, calls, total_time_ms, mean_time_ms, rows_per_call,
       round(cache_hit_ratio::numeric, 4) AS cache_hit_ratio, shared_blks_read, temp_blks, wal_bytes,
       round(share_of_total_time::numeric, 4) AS share, previous_calls, trend
  FROM dbanalytics.top_queries('1 hour', 'total_time', 10);
SELECT rank, queryid, calls FROM dbanalytics.top_queries('1 hour', 'calls', 1);
SELECT rank, queryid, shared_blks_read FROM dbanalytics.top_queries('1 hour', 'shared_blks_read', 10);
SELECT queryid, executions, p50_ms, p95_ms, p99_ms, max_ms FROM dbanalytics.query_latency('1 hour', 10);
SELECT bucket, lower_ms, upper_ms, executions FROM dbanalytics.latency_histogram(1001, '1 hour');
SELECT o->>'type' AS type, o->>'queryid' AS queryid FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'optimization_opportunities') o ORDER BY 1, 2;
SELECT e->>'queryid' AS queryid, e->>'mean_time_ms' AS mean_time_ms, e->>'calls' AS calls
  FROM jsonb_array_elements(dbanalytics.query_analysis('1 hour')->'slow_queries') e;
SELECT jsonb_object_keys(dbanalytics.query_analysis('1 hour')->'thresholds') AS threshold ORDER BY 1;
