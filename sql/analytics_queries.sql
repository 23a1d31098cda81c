-- dbanalytics analytics: database performance per minute, top queries, query analysis.

-- Connections per minute and database since a time, by state: the sums over the database's
-- users and applications of the average backends active, idle and idle in transaction, and of
-- those waiting on a lock. The minute rollups, then the raw samples of the minutes not rolled up
-- yet (so the current minutes are never missing). Summed here, not by the caller: a week is
-- 90,000 rollup rows of pools and states but 10,000 of databases.
CREATE FUNCTION @extschema@._connection_states(since timestamptz)
RETURNS TABLE (minute timestamptz, datname text, active double precision, idle double precision,
               idle_in_transaction double precision, lock_waiting double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH rolled_until AS (
    SELECT COALESCE(pg_catalog.max(c.minute) + interval '1 minute', since) AS minute
      FROM @extschema@.connection_minute c WHERE c.minute >= since
), raw AS (
    SELECT s.sampled_at, s.datname, s.state, s.backends, s.lock_waiting
      FROM @extschema@.connection_samples s, rolled_until u
     WHERE s.sampled_at >= GREATEST(u.minute, since)
), ticks AS (
    SELECT pg_catalog.date_trunc('minute', r.sampled_at) AS minute,
           pg_catalog.count(DISTINCT r.sampled_at) AS ticks
      FROM raw r GROUP BY 1
), groups AS (
    SELECT c.minute, c.datname, c.state, c.avg_backends, c.avg_lock_waiting
      FROM @extschema@.connection_minute c WHERE c.minute >= since
    UNION ALL
    -- a tick at which a group is absent counts as 0: each minute is divided by all its ticks
    SELECT t.minute, r.datname, r.state, pg_catalog.sum(r.backends)::double precision / t.ticks,
           pg_catalog.sum(r.lock_waiting)::double precision / t.ticks
      FROM raw r JOIN ticks t ON t.minute = pg_catalog.date_trunc('minute', r.sampled_at)
     WHERE r.backends > 0
     GROUP BY t.minute, t.ticks, r.datname, r.state
)
SELECT g.minute, g.datname,
       pg_catalog.sum(g.avg_backends) FILTER (WHERE g.state = 'active'),
       pg_catalog.sum(g.avg_backends) FILTER (WHERE g.state = 'idle'),
       pg_catalog.sum(g.avg_backends) FILTER (WHERE g.state LIKE 'idle in transaction%'),
       pg_catalog.sum(g.avg_lock_waiting)
  FROM groups g
 GROUP BY 1, 2
$$;

CREATE FUNCTION @extschema@.database_performance_metrics(analysis_window interval,
                                                         resolution interval DEFAULT '1 minute')
RETURNS TABLE (
    minute timestamptz, datname text, covered_seconds double precision,
    queries_per_second double precision, transactions_per_second double precision,
    commits bigint, rollbacks bigint,
    active_connections double precision, idle_connections double precision,
    idle_in_transaction_connections double precision, lock_waiting_connections double precision,
    avg_query_time_ms double precision, p50_ms double precision, p95_ms double precision,
    p99_ms double precision, max_ms double precision,
    slow_queries bigint, deadlocks bigint, temp_bytes bigint,
    blks_read bigint, blks_hit bigint, cache_hit_ratio double precision, reset boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._check_resolution(resolution);  -- argument checks
WITH bounds AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           -- buckets aligned on the Unix epoch, as the rollups' hours and days are
           TIMESTAMPTZ '1970-01-01 00:00:00+00' AS origin
), db AS (
    -- the intervals ending in each time bucket (a minute by default)
    SELECT pg_catalog.date_bin(resolution, d.interval_end, b.origin) AS minute, d.datid, d.datname,
           pg_catalog.sum(EXTRACT(epoch FROM d.interval_end - d.interval_start))::double precision AS seconds,
           pg_catalog.sum(d.xact_commit)::bigint AS commits,
           pg_catalog.sum(d.xact_rollback)::bigint AS rollbacks,
           pg_catalog.sum(d.deadlocks)::bigint AS deadlocks,
           pg_catalog.sum(d.temp_bytes)::bigint AS temp_bytes,
           pg_catalog.sum(d.blks_read)::bigint AS blks_read,
           pg_catalog.sum(d.blks_hit)::bigint AS blks_hit,
           pg_catalog.bool_or(d.reset) AS reset,
           pg_catalog.sum(d.calls)::bigint AS calls,
           pg_catalog.sum(d.total_exec_time) AS exec_ms,
           pg_catalog.sum(d.slow_statements)::bigint AS slow
      FROM bounds b, @extschema@.database_stats d
     WHERE d.interval_end > b.since
     GROUP BY 1, 2, 3
), latency AS (
    -- per bucket: the database histograms of the intervals ending in it, merged
    SELECT pg_catalog.date_bin(resolution, l.interval_end, b.origin) AS minute, l.dbid,
           @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95,0.99,1}') AS p
      FROM bounds b, @extschema@.database_latency l
     WHERE l.interval_end > b.since AND pg_catalog.cardinality(l.buckets) > 0
     GROUP BY 1, 2
), conn_minutes AS MATERIALIZED (
    -- per minute and database, from the minute holding since on (read once: the buckets below
    -- count its minutes too)
    SELECT m.minute, m.datname, m.active, m.idle, m.idle_in_transaction, m.lock_waiting
      FROM bounds b, @extschema@._connection_states(b.since - interval '1 minute') m
     WHERE m.minute >= pg_catalog.date_trunc('minute', b.since)
), conn AS (
    -- per bucket: the average over its sampled minutes (a minute without the database counts as 0)
    SELECT c.minute, c.datname, c.active / s.minutes AS active, c.idle / s.minutes AS idle,
           c.idle_in_transaction / s.minutes AS idle_in_transaction, c.lock_waiting / s.minutes AS lock_waiting
      FROM (SELECT pg_catalog.date_bin(resolution, m.minute, b.origin) AS minute, m.datname,
                   pg_catalog.sum(m.active) AS active, pg_catalog.sum(m.idle) AS idle,
                   pg_catalog.sum(m.idle_in_transaction) AS idle_in_transaction,
                   pg_catalog.sum(m.lock_waiting) AS lock_waiting
              FROM bounds b, conn_minutes m GROUP BY 1, 2) c
      JOIN (SELECT pg_catalog.date_bin(resolution, m.minute, b.origin) AS minute,
                   pg_catalog.count(DISTINCT m.minute) AS minutes
              FROM bounds b, conn_minutes m GROUP BY 1) s USING (minute)
)
SELECT db.minute, db.datname, db.seconds,
       COALESCE(db.calls, 0) / NULLIF(db.seconds, 0),
       (db.commits + db.rollbacks) / NULLIF(db.seconds, 0),
       db.commits, db.rollbacks,
       COALESCE(conn.active, 0), COALESCE(conn.idle, 0), COALESCE(conn.idle_in_transaction, 0),
       COALESCE(conn.lock_waiting, 0),
       db.exec_ms / NULLIF(db.calls, 0),
       latency.p[1], latency.p[2], latency.p[3], latency.p[4],
       COALESCE(db.slow, 0), db.deadlocks, db.temp_bytes, db.blks_read, db.blks_hit,
       db.blks_hit::double precision / NULLIF(db.blks_hit + db.blks_read, 0),
       db.reset
  FROM db
  LEFT JOIN conn ON conn.minute = db.minute AND conn.datname = db.datname
  LEFT JOIN latency ON latency.minute = db.minute AND latency.dbid = db.datid
 ORDER BY db.minute, db.datname
$$;

CREATE VIEW @extschema@.database_performance_metrics AS
SELECT * FROM @extschema@.database_performance_metrics(interval '1 hour');

-- Statement totals over (since, until], one row per statement (toplevel and nested apart):
-- statement_daily for the whole UTC days rolled up so far, statement_hourly for the other
-- whole hours, statement_stats for the rest (the partial hours at either end and the hours not
-- rolled up yet): a 7-day window reads at most ~55 rollup rows per statement instead of 10,080
-- per-minute ones.
CREATE TYPE @extschema@.statement_total AS (
    dbid oid, userid oid, queryid bigint, toplevel boolean, calls bigint,
    total_exec_time double precision, rows bigint, shared_blks_hit bigint,
    shared_blks_read bigint, temp_blks bigint, wal_bytes bigint, covered_seconds double precision,
    peak_calls_per_transaction double precision);

-- What _statement_totals needs of the packed minutes of (since, until] (statement_stats_packed),
-- summed per statement and packed hour by _unpack_totals, without a row per minute: the
-- counters, the first interval's start, the last one's end, and the most calls per transaction
-- of the statement's database in any one interval (database_stats).
CREATE FUNCTION @extschema@._packed_statement_totals(since timestamptz, until timestamptz)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, toplevel boolean, calls bigint,
               total_exec_time double precision, rows bigint, shared_blks_hit bigint,
               shared_blks_read bigint, temp_blks bigint, wal_bytes bigint, first_start timestamptz,
               last_end timestamptz, peak_calls_per_transaction double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- each counter's column in the packed matrix (sql/schema.sql: statement_stats_packed)
    col jsonb := (SELECT pg_catalog.jsonb_object_agg(c.name, c.ordinal + 3)
                    FROM @extschema@._statement_counter_columns() c);
BEGIN
    IF NOT since < until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format($q$
        WITH transactions AS (
            SELECT d.datid, pg_catalog.array_agg((EXTRACT(epoch FROM d.interval_end) * 1000000)::bigint) AS ends,
                   pg_catalog.array_agg(d.xact_commit + d.xact_rollback) AS xacts
              FROM @extschema@.database_stats d
             WHERE d.interval_end > $1 AND d.interval_end <= $2
             GROUP BY 1)
        SELECT p.dbid, p.userid, p.queryid, p.toplevel, u.sums[%1$s], u.sums[%2$s] / 1000000.0::double precision,
               u.sums[%3$s], u.sums[%4$s], u.sums[%5$s], u.sums[%6$s] + u.sums[%7$s], u.sums[%8$s],
               TIMESTAMPTZ 'epoch' + (u.first_row[1] - u.first_row[2]) * interval '1 microsecond',
               TIMESTAMPTZ 'epoch' + u.last_row[1] * interval '1 microsecond', u.peak_ratio
          FROM @extschema@.statement_stats_packed p
          LEFT JOIN transactions t ON t.datid = p.dbid
          LEFT JOIN @extschema@.packed_hours c
                 ON c.hour_end = p.hour_end AND c.hour_end > $1 AND c.hour_end < $2 + interval '1 hour'
         CROSS JOIN LATERAL @extschema@._unpack_totals(p.intervals, (EXTRACT(epoch FROM $1) * 1000000)::bigint,
                                                       (EXTRACT(epoch FROM $2) * 1000000)::bigint,
                                                       %1$s, t.ends, t.xacts, c.interval_ends) u
         WHERE p.hour_end > $1 AND p.hour_end < $2 + interval '1 hour'
    $q$, col->>'calls', col->>'total_exec_time', col->>'rows', col->>'shared_blks_hit',
         col->>'shared_blks_read', col->>'temp_blks_read', col->>'temp_blks_written', col->>'wal_bytes')
    USING since, until;
END
$$;

CREATE FUNCTION @extschema@._compute_statement_totals(since timestamptz, until timestamptz)
RETURNS SETOF @extschema@.statement_total
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- a week of rollup rows (~95,000 for 3,000 statements) groups in one in-memory hash, without a
-- temporary file; one process sums each statement's rows, so its float totals are the same on
-- every call (a parallel plan added them in varying orders)
SET work_mem = '64MB'
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    span record := @extschema@._rollup_span(since, until);
BEGIN
    -- EXECUTE plans with the actual bounds: partitions pruned and row counts estimated at plan time
    RETURN QUERY EXECUTE $q$
    WITH parts AS (
        SELECT s.dbid, s.userid, s.queryid, s.toplevel, s.calls, s.total_exec_time, s.rows,
               s.shared_blks_hit, s.shared_blks_read, s.temp_blks_read + s.temp_blks_written AS temp_blks,
               s.wal_bytes, s.first_start, s.last_end, s.peak_calls_per_transaction
          FROM @extschema@.statement_daily s
         WHERE s.day_end > $5 AND s.day_end <= $6
        UNION ALL
        -- statement_hourly serves (lo, day_lo] and (day_hi, hi]
        SELECT s.dbid, s.userid, s.queryid, s.toplevel, s.calls, s.total_exec_time, s.rows,
               s.shared_blks_hit, s.shared_blks_read, s.temp_blks_read + s.temp_blks_written,
               s.wal_bytes, s.first_start, s.last_end, s.peak_calls_per_transaction
          FROM @extschema@.statement_hourly s
         WHERE (s.hour_end > $3 AND s.hour_end <= $5) OR (s.hour_end > $6 AND s.hour_end <= $4)
        UNION ALL
        -- the minutes serve the rest: (since, lo] and (hi, until]
        SELECT s.dbid, s.userid, s.queryid, s.toplevel, s.calls, s.total_exec_time, s.rows,
               s.shared_blks_hit, s.shared_blks_read, s.temp_blks_read + s.temp_blks_written,
               s.wal_bytes, s.interval_start, s.interval_end,
               CASE WHEN d.datid IS NOT NULL
                    THEN s.calls::double precision / GREATEST(d.xact_commit + d.xact_rollback, 1) END
          FROM @extschema@.statement_stats s
          LEFT JOIN @extschema@.database_stats d
                 ON d.interval_end = s.interval_end AND d.datid = s.dbid
                AND ((d.interval_end > $1 AND d.interval_end <= LEAST($3, $2))
                     OR (d.interval_end > GREATEST($4, $1) AND d.interval_end <= $2))
         WHERE (s.interval_end > $1 AND s.interval_end <= LEAST($3, $2))
            OR (s.interval_end > GREATEST($4, $1) AND s.interval_end <= $2)
        UNION ALL
        -- and their packed part
        SELECT * FROM @extschema@._packed_statement_totals($1, LEAST($3, $2))
        UNION ALL
        SELECT * FROM @extschema@._packed_statement_totals(GREATEST($4, $1), $2)
    )
    SELECT p.dbid, p.userid, p.queryid, p.toplevel,
           pg_catalog.sum(p.calls)::bigint, pg_catalog.sum(p.total_exec_time),
           pg_catalog.sum(p.rows)::bigint, pg_catalog.sum(p.shared_blks_hit)::bigint,
           pg_catalog.sum(p.shared_blks_read)::bigint, pg_catalog.sum(p.temp_blks)::bigint,
           pg_catalog.sum(p.wal_bytes)::bigint,
           EXTRACT(epoch FROM pg_catalog.max(p.last_end) - pg_catalog.min(p.first_start))::double precision,
           pg_catalog.max(p.peak_calls_per_transaction)
      FROM parts p
     GROUP BY 1, 2, 3, 4
    $q$ USING since, until, span.lo, span.hi, span.day_lo, span.day_hi;
END
$$;

-- Each statement's totals in (since, until], computed by _compute_statement_totals once per
-- snapshot: a report asks for the same window's totals five times (src/api/memo.rs).
CREATE FUNCTION @extschema@._statement_totals(since timestamptz, until timestamptz)
RETURNS SETOF @extschema@.statement_total
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';

CREATE FUNCTION @extschema@._check_order_by(order_by text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF order_by IS NULL OR order_by NOT IN ('total_time', 'mean_time', 'calls', 'rows',
                                            'shared_blks_read', 'temp_blks', 'wal_bytes') THEN
        RAISE EXCEPTION 'dbanalytics: unknown order_by %', COALESCE(pg_catalog.quote_literal(order_by), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of total_time, mean_time, calls, rows, shared_blks_read, temp_blks, wal_bytes.';
    END IF;
    RETURN order_by;
END
$$;

-- Resources the top-level executions of each statement used in (since, until], from the
-- executor hooks' getrusage (statement_latency and its rollups); NULL sums where no row had them.
CREATE FUNCTION @extschema@._compute_statement_usage(since timestamptz, until timestamptz)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, cpu_user_time double precision,
               cpu_system_time double precision, disk_read_bytes bigint, disk_write_bytes bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.dbid, l.userid, l.queryid, pg_catalog.sum(l.cpu_user_time), pg_catalog.sum(l.cpu_system_time),
           pg_catalog.sum(l.disk_read_bytes)::bigint, pg_catalog.sum(l.disk_write_bytes)::bigint
      FROM @extschema@._latency_parts(since, until) l
     GROUP BY 1, 2, 3
$$;

-- Computed by _compute_statement_usage once per statement: top_queries() and query_analysis()
-- both read it (src/api/memo.rs).
CREATE FUNCTION @extschema@._statement_usage(since timestamptz, until timestamptz)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, cpu_user_time double precision,
               cpu_system_time double precision, disk_read_bytes bigint, disk_write_bytes bigint)
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';

CREATE FUNCTION @extschema@.top_queries(analysis_window interval DEFAULT '1 hour',
                                        order_by text DEFAULT 'total_time',
                                        row_limit integer DEFAULT 20)
RETURNS TABLE (
    rank bigint, queryid bigint, datname text, usename text, toplevel boolean, query text,
    calls bigint, total_time_ms double precision, mean_time_ms double precision,
    rows_per_call double precision, cache_hit_ratio double precision,
    shared_blks_read bigint, temp_blks bigint, wal_bytes bigint,
    share_of_total_time double precision,
    previous_calls bigint, previous_total_time_ms double precision, trend text,
    cpu_user_time_ms double precision, cpu_system_time_ms double precision,
    disk_read_bytes bigint, disk_write_bytes bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._check_order_by(order_by),
           @extschema@._row_limit(row_limit);  -- argument checks, even with no history
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           order_by AS order_key,
           LEAST(row_limit, 1000) AS max_rows
), cur AS (
    SELECT t.* FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
), prev AS (
    SELECT t.* FROM args a, @extschema@._statement_totals(a.since - analysis_window, a.since) t
), total AS (
    SELECT NULLIF(pg_catalog.sum(c.total_exec_time) FILTER (WHERE c.toplevel), 0) AS all_time FROM cur c
), ranked AS (
    SELECT c.*, p.calls AS prev_calls, p.total_exec_time AS prev_time,
           pg_catalog.row_number() OVER (ORDER BY CASE a.order_key
                WHEN 'total_time' THEN c.total_exec_time
                WHEN 'mean_time' THEN c.total_exec_time / NULLIF(c.calls, 0)
                WHEN 'calls' THEN c.calls
                WHEN 'rows' THEN c.rows
                WHEN 'shared_blks_read' THEN c.shared_blks_read
                WHEN 'temp_blks' THEN c.temp_blks
                WHEN 'wal_bytes' THEN c.wal_bytes
             END DESC NULLS LAST, c.queryid) AS rank
      FROM cur c CROSS JOIN args a
      LEFT JOIN prev p USING (dbid, userid, queryid, toplevel)
     WHERE c.calls > 0
)
SELECT r.rank, r.queryid, d.datname::text, u.rolname::text, r.toplevel,
       COALESCE(t.query, '<query text not collected>'),
       r.calls, r.total_exec_time, r.total_exec_time / r.calls,
       r.rows::double precision / r.calls,
       r.shared_blks_hit::double precision / NULLIF(r.shared_blks_hit + r.shared_blks_read, 0),
       r.shared_blks_read, r.temp_blks, r.wal_bytes,
       CASE WHEN r.toplevel THEN r.total_exec_time / total.all_time END,
       r.prev_calls, r.prev_time,
       CASE
           WHEN r.prev_time IS NULL THEN 'new'
           WHEN r.prev_time = 0 THEN 'up'
           ELSE pg_catalog.to_char(100 * (r.total_exec_time - r.prev_time) / r.prev_time, 'FMSG999990') || '%'
       END,
       us.cpu_user_time, us.cpu_system_time, us.disk_read_bytes, us.disk_write_bytes
  FROM ranked r
  CROSS JOIN args a
  CROSS JOIN total
  LEFT JOIN @extschema@.statement_texts t USING (dbid, userid, queryid, toplevel)
  -- measured for top-level executions only
  LEFT JOIN (SELECT u.* FROM args a2, @extschema@._statement_usage(a2.since, pg_catalog.now()) u) us
         ON us.dbid = r.dbid AND us.userid = r.userid AND us.queryid = r.queryid AND r.toplevel
  LEFT JOIN pg_catalog.pg_database d ON d.oid = r.dbid
  LEFT JOIN pg_catalog.pg_roles u ON u.oid = r.userid
 WHERE r.rank <= a.max_rows
 ORDER BY r.rank
$$;

-- Optimization opportunities read from statement history (query_analysis() assembles them).

-- N+1: a lookup run once per key of another statement's result. Two rules:
-- - runs (executor hooks, statement_latency's run columns): on one connection, the same small
--   statement executed again and again right after a different one (the parent, the "1"), in at
--   least n_plus_one_min_runs runs of n_plus_one_min_run_length executions on average; whether
--   each is its own transaction or not. A steady stream of one lookup has no parent: no run.
-- - calls per transaction (statement history): a single-row lookup executed at least
--   n_plus_one_calls_per_transaction times per transaction of its database in some snapshot
--   interval (a loop inside one transaction), for lookups the runs did not already report.
CREATE FUNCTION @extschema@._n_plus_one(analysis_window interval, totals @extschema@.statement_total[])
RETURNS TABLE (entry jsonb, weight double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           pg_catalog.now() - LEAST(analysis_window, interval '1 day') AS sampled_since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._threshold('n_plus_one_calls_per_transaction')::double precision AS per_transaction,
           @extschema@._threshold('n_plus_one_rows_per_call')::double precision AS max_rows,
           @extschema@._threshold('n_plus_one_min_runs')::double precision AS min_runs,
           @extschema@._threshold('n_plus_one_min_run_length')::double precision AS min_run_length
), run_parents AS (
    -- each interval names the parent of the lookup's latest run in it
    SELECT l.dbid, l.userid, l.queryid, l.run_parent_queryid AS parent,
           pg_catalog.sum(l.runs) AS runs, pg_catalog.sum(l.run_executions) AS executions,
           pg_catalog.max(l.run_max_length) AS max_length
      FROM args a, @extschema@._latency_parts(a.since, pg_catalog.now()) l
     WHERE l.runs > 0
     GROUP BY 1, 2, 3, 4
), runs AS (
    -- the parent: the one named for most runs
    SELECT r.dbid, r.userid, r.queryid,
           (pg_catalog.array_agg(r.parent ORDER BY r.runs DESC, r.parent))[1] AS parent,
           pg_catalog.sum(r.runs)::bigint AS runs, pg_catalog.sum(r.executions)::bigint AS executions,
           pg_catalog.max(r.max_length)::bigint AS max_length
      FROM run_parents r
     GROUP BY 1, 2, 3
), run_lookups AS (
    SELECT r.*, x.query, p.query AS parent_query, t.calls, t.rows, t.total_exec_time
      FROM args a CROSS JOIN runs r
      LEFT JOIN @extschema@.statement_texts x
             ON x.dbid = r.dbid AND x.userid = r.userid AND x.queryid = r.queryid AND x.toplevel
      LEFT JOIN @extschema@.statement_texts p
             ON p.dbid = r.dbid AND p.userid = r.userid AND p.queryid = r.parent AND p.toplevel
      LEFT JOIN pg_catalog.unnest(totals) t
             ON t.dbid = r.dbid AND t.userid = r.userid AND t.queryid = r.queryid AND t.toplevel
     WHERE r.runs >= a.min_runs AND r.executions::double precision / r.runs >= a.min_run_length
), run_applications AS (
    -- the application whose connections ran the most runs of each lookup, as the executor
    -- hooks recorded it at each run's end (minute rows only: the rollups do not keep it)
    SELECT m.dbid, m.userid, m.queryid,
           (pg_catalog.array_agg(m.application ORDER BY m.runs DESC, m.application))[1] AS application
      FROM (SELECT l.dbid, l.userid, l.queryid, l.run_application AS application,
                   pg_catalog.sum(l.runs) AS runs
              FROM args a,
                   LATERAL (SELECT m.dbid, m.userid, m.queryid, m.run_application, m.runs
                              FROM @extschema@.statement_latency m
                             WHERE m.interval_end > a.since AND m.runs IS NOT NULL
                               AND m.queryid = ANY (ARRAY(SELECT r.queryid FROM run_lookups r))
                            UNION ALL
                            -- packed minutes: their runs per application, summed in Rust
                            SELECT p.dbid, p.userid, p.queryid, u.run_application, u.runs
                              FROM @extschema@.statement_latency_packed p
                              LEFT JOIN @extschema@.packed_hours c
                                     ON c.hour_end = p.hour_end AND c.hour_end > a.since
                             CROSS JOIN LATERAL @extschema@._unpack_latency_totals(
                                       p.intervals, (EXTRACT(epoch FROM a.since) * 1000000)::bigint, NULL,
                                       p.run_applications, c.interval_ends) u
                             WHERE p.hour_end > a.since AND p.run_applications IS NOT NULL
                               AND p.queryid = ANY (ARRAY(SELECT r.queryid FROM run_lookups r))) l
             WHERE l.runs IS NOT NULL AND l.run_application IS NOT NULL
               AND (l.dbid, l.userid, l.queryid) IN (SELECT r.dbid, r.userid, r.queryid FROM run_lookups r)
             GROUP BY 1, 2, 3, 4) m
     GROUP BY 1, 2, 3
), lookups AS (
    SELECT t.*, x.query, t.peak_calls_per_transaction AS per_transaction
      FROM args a, pg_catalog.unnest(totals) t
      JOIN @extschema@.statement_texts x USING (dbid, userid, queryid, toplevel)
     WHERE t.toplevel AND t.calls > 0
       AND t.rows::double precision / t.calls <= a.max_rows
       AND t.peak_calls_per_transaction >= a.per_transaction
       -- one table, looked up by a parameter
       AND x.query ~* '^\s*SELECT\M.*\mFROM\s+[\w."]+(\s+(AS\s+)?\w+)?\s+WHERE\M.*=\s*\$\d'
       AND x.query !~* '\m(JOIN|UNION|GROUP\s+BY)\M'
       AND NOT EXISTS (SELECT FROM run_lookups r
                        WHERE r.dbid = t.dbid AND r.userid = t.userid AND r.queryid = t.queryid)
), unnamed AS (
    -- the statements whose application only the sampler can tell: the lookups of the
    -- calls-per-transaction rule, and the runs (and their parents) the hooks named none for
    SELECT l.queryid FROM lookups l
    UNION SELECT r.queryid FROM run_lookups r
           WHERE NOT EXISTS (SELECT FROM run_applications ra
                              WHERE ra.dbid = r.dbid AND ra.userid = r.userid AND ra.queryid = r.queryid)
    UNION SELECT r.parent FROM run_lookups r
           WHERE NOT EXISTS (SELECT FROM run_applications ra
                              WHERE ra.dbid = r.dbid AND ra.userid = r.userid AND ra.queryid = r.queryid)
), sampled AS (
    -- what the sampler saw running those statements, in the last day of the window at most:
    -- the minute rollups, then the raw samples of the minutes not rolled up yet
    SELECT am.query_id, am.application_name, am.samples
      FROM args a, @extschema@.activity_minute am
     WHERE am.minute > a.sampled_since
       AND am.query_id IN (SELECT u.queryid FROM unnamed u)
    UNION ALL
    SELECT s.query_id, s.application_name, 1
      FROM args a, @extschema@.activity_samples s
     WHERE s.sampled_at >= GREATEST(a.sampled_since,
                                    (SELECT pg_catalog.max(am.minute) + interval '1 minute'
                                       FROM @extschema@.activity_minute am))
       AND s.query_id IN (SELECT u.queryid FROM unnamed u)
), applications AS (
    -- the application most often sampled running each statement
    SELECT m.query_id, (pg_catalog.array_agg(m.application_name ORDER BY m.samples DESC))[1] AS application
      FROM (SELECT s.query_id, s.application_name, pg_catalog.sum(s.samples) AS samples
              FROM sampled s GROUP BY 1, 2) m
     GROUP BY m.query_id
)
SELECT pg_catalog.jsonb_build_object(
           'type', 'n_plus_one', 'detected_by', 'runs', 'queryid', r.queryid,
           'query', COALESCE(r.query, '<query text not collected>'),
           'parent_queryid', r.parent, 'parent_query', COALESCE(r.parent_query, '<query text not collected>'),
           'impact', 'high',
           'evidence', pg_catalog.jsonb_build_object(
               'runs', r.runs,
               'run_length', pg_catalog.round((r.executions::double precision / r.runs)::numeric, 1),
               'max_run_length', r.max_length,
               'executions_in_runs', r.executions,
               'calls', r.calls,
               'rows_per_call', pg_catalog.round((r.rows::double precision / NULLIF(r.calls, 0))::numeric, 2),
               'mean_time_ms', pg_catalog.round((r.total_exec_time / NULLIF(r.calls, 0))::numeric, 3),
               'application', COALESCE(ra.application, ap.application, app.application)),
           'solution', CASE
               WHEN r.query ~* '^\s*(WITH\M.*)?SELECT\M' THEN
                   pg_catalog.format('run 1 statement instead of 1 + %s: JOIN the looked-up table into the parent statement '
                                     '(queryid %s) on the key it returns, or fetch all keys at once with = ANY($1) and an array '
                                     'of the parent''s keys%s', pg_catalog.round((r.executions::double precision / r.runs)::numeric),
                                     r.parent,
                                     CASE WHEN r.query ~ '=\s*\$\d' THEN ': ' || pg_catalog.regexp_replace(r.query, '=\s*\$(\d+)', '= ANY($\1)') ELSE '' END)
               ELSE
                   pg_catalog.format('run 1 statement for all %s keys: WHERE <key> = ANY($1) with an array of the keys for UPDATE '
                                     'or DELETE, one multi-row INSERT (or INSERT ... SELECT FROM unnest($1, ...)) for INSERT',
                                     pg_catalog.round((r.executions::double precision / r.runs)::numeric))
           END,
           'reason', pg_catalog.format('%s runs of %s consecutive executions on average (at most %s) on one connection, '
                                       'each right after statement %s: one statement per key it returned',
                                       r.runs, pg_catalog.round((r.executions::double precision / r.runs)::numeric, 1),
                                       r.max_length, r.parent)),
       r.executions::double precision
  FROM run_lookups r
  LEFT JOIN run_applications ra ON ra.dbid = r.dbid AND ra.userid = r.userid AND ra.queryid = r.queryid
  LEFT JOIN applications ap ON ap.query_id = r.queryid
  LEFT JOIN applications app ON app.query_id = r.parent
UNION ALL
SELECT pg_catalog.jsonb_build_object(
           'type', 'n_plus_one', 'detected_by', 'calls_per_transaction', 'queryid', l.queryid, 'query', l.query,
           'impact', 'high',
           'evidence', pg_catalog.jsonb_build_object(
               'calls', l.calls,
               'calls_per_transaction', pg_catalog.round(l.per_transaction::numeric, 1),
               'calls_per_second', pg_catalog.round((l.calls / a.window_seconds)::numeric, 1),
               'rows_per_call', pg_catalog.round((l.rows::double precision / l.calls)::numeric, 2),
               'mean_time_ms', pg_catalog.round((l.total_exec_time / l.calls)::numeric, 3),
               'application', ap.application),
           'solution', 'fetch the rows in one statement instead of one per key: JOIN this table into the query '
                       || 'that produced the keys, or batch them: ... WHERE <key> = ANY($1) with an array of keys',
           'reason', pg_catalog.format('a single-row lookup ran %s times per transaction of its database in one snapshot interval',
                                       pg_catalog.round(l.per_transaction::numeric, 1))),
       l.calls::double precision
  FROM lookups l CROSS JOIN args a
  LEFT JOIN applications ap ON ap.query_id = l.queryid
$$;

-- Read-only statements called very often over tables that hardly change.
CREATE FUNCTION @extschema@._caching_opportunities(analysis_window interval, totals @extschema@.statement_total[])
RETURNS TABLE (entry jsonb, weight double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._threshold('caching_calls_per_second')::double precision AS min_rate,
           @extschema@._threshold('caching_write_ratio')::double precision AS write_ratio
), reads AS (
    SELECT t.*, x.query,
           ARRAY(SELECT pg_catalog.lower(pg_catalog.regexp_replace(m[1], '^.*\.', ''))
                   FROM pg_catalog.regexp_matches(x.query, '\m(?:FROM|JOIN)\s+([\w."]+)', 'gi') m) AS tables
      FROM args a, pg_catalog.unnest(totals) t
      JOIN @extschema@.statement_texts x USING (dbid, userid, queryid, toplevel)
     WHERE t.toplevel AND t.calls / a.window_seconds > a.min_rate
       AND x.query ~* '^\s*SELECT\M' AND x.query !~* '\mFOR\s+(UPDATE|SHARE|NO KEY|KEY)\M|nextval|random\(|now\(|clock_timestamp'
       AND x.query ~* '\mFROM\M'
), table_writes AS (
    -- one pass over the window's table history, for the tables the candidates read
    SELECT w.relname, pg_catalog.sum(w.n_tup_ins + w.n_tup_upd + w.n_tup_del) AS row_writes
      FROM args a, @extschema@._table_totals(a.since, pg_catalog.now()) w
     WHERE w.relname IN (SELECT pg_catalog.unnest(r.tables) FROM reads r)
     GROUP BY w.relname
), writes AS (
    SELECT r.queryid, r.dbid, r.userid, COALESCE(pg_catalog.sum(tw.row_writes), 0) AS row_writes
      FROM reads r
      LEFT JOIN table_writes tw ON tw.relname = ANY (r.tables)
     GROUP BY r.queryid, r.dbid, r.userid
)
SELECT pg_catalog.jsonb_build_object(
           'type', 'caching_opportunity', 'queryid', r.queryid, 'query', r.query, 'impact', 'medium',
           'evidence', pg_catalog.jsonb_build_object(
               'calls_per_second', pg_catalog.round((r.calls / a.window_seconds)::numeric, 1),
               'tables', r.tables, 'row_writes_to_those_tables', w.row_writes,
               'rows_per_call', pg_catalog.round((r.rows::double precision / r.calls)::numeric, 2)),
           'cache_hit_rate_potential', pg_catalog.round((1 - w.row_writes::double precision / r.calls)::numeric, 4),
           'implementation', 'cache the result in the application (or a materialized view), invalidated when '
                             || pg_catalog.array_to_string(r.tables, ', ') || ' change',
           'reason', pg_catalog.format('%s calls per second read tables that received %s row writes in the window',
                                       pg_catalog.round((r.calls / a.window_seconds)::numeric, 1), w.row_writes)),
       r.calls::double precision
  FROM reads r CROSS JOIN args a
  JOIN writes w USING (queryid, dbid, userid)
 WHERE w.row_writes <= a.write_ratio * r.calls
$$;

-- Statements written in a form with a known better one.
CREATE FUNCTION @extschema@._query_rewrites(analysis_window interval, totals @extschema@.statement_total[])
RETURNS TABLE (entry jsonb, total_time double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH args AS MATERIALIZED (  -- once (when inlined, _threshold() ran for every statement and pattern)
    SELECT pg_catalog.now() - analysis_window AS since,
           @extschema@._threshold('select_star_rows_per_call')::double precision AS star_rows
), candidates AS (
    SELECT t.*, x.query
      FROM pg_catalog.unnest(totals) t
      JOIN @extschema@.statement_texts x USING (dbid, userid, queryid, toplevel)
     WHERE t.toplevel AND t.calls > 0
), patterns (pattern, matcher, necessary, suggested, explanation) AS (
    -- necessary: a part of matcher that every match contains and that is far cheaper to look
    -- for (no leading \mWHERE\M.*); the same operator, so a text it misses cannot match matcher
    VALUES
    ('offset_pagination', '\mOFFSET\s+\$?\d', 'OFFSET',
     'keyset pagination: ... WHERE (sort_key, id) > ($last_sort_key, $last_id) ORDER BY sort_key, id LIMIT $n',
     'OFFSET reads and throws away every skipped row, so deep pages get slower and slower; a keyset condition starts at the right row through an index'),
    ('not_in_subquery', '\mNOT\s+IN\s*\(\s*SELECT\M', 'NOT\s+IN',
     '... WHERE NOT EXISTS (SELECT 1 FROM <subquery table> s WHERE s.<column> = <outer>.<column>)',
     'NOT IN (SELECT ...) cannot become an anti-join and returns nothing when the subquery yields a NULL; NOT EXISTS is an anti-join with the expected semantics'),
    ('function_on_column', '\mWHERE\M.*\m(lower|upper|date|date_trunc|coalesce|trim|substr|to_char)\s*\(\s*"?\w+"?(\.\w+)?\s*[,)]|\mWHERE\M.*\w+::(date|text)\s*(=|<|>)',
     '\m(lower|upper|date|date_trunc|coalesce|trim|substr|to_char)\s*\(|::(date|text)',
     'compare the bare column (e.g. created_at >= $1 AND created_at < $1 + 1 day instead of date(created_at) = $1), or add an expression index such as CREATE INDEX ON t (lower(email))',
     'a function applied to a column in the filter hides the column from its index, so the table is scanned'),
    ('or_in_filter', '\mWHERE\M.*\w+\s*=\s*\$\d+\s+OR\s+\w+(\.\w+)?\s*=', '\$\d+\s+OR\s',
     'one column: ... WHERE a = ANY($1); different columns: ... WHERE a = $1 UNION ALL ... WHERE b = $2 AND a IS DISTINCT FROM $1 (or one index per column, combined by a BitmapOr)',
     'OR in a filter cannot use one index scan: on one column it is an = ANY list, across columns it needs two index scans'),
    ('select_star_wide', '^\s*SELECT\s+\*', '\*',
     'SELECT only the columns the application uses',
     'SELECT * on many rows ships and detoasts columns nobody reads')
)
SELECT pg_catalog.jsonb_build_object(
           'pattern', p.pattern, 'queryid', c.queryid, 'original_query', c.query,
           'suggested_form', p.suggested, 'explanation', p.explanation,
           'evidence', pg_catalog.jsonb_build_object('calls', c.calls,
                                                     'total_time_ms', pg_catalog.round(c.total_exec_time::numeric, 3),
                                                     'rows_per_call', pg_catalog.round((c.rows::double precision / c.calls)::numeric, 2))),
       c.total_exec_time
  FROM candidates c CROSS JOIN args a
  -- in this order: a SELECT * returning few rows per call is not looked at, then the cheap
  -- necessary part, then the whole pattern
  JOIN patterns p ON CASE WHEN p.pattern = 'select_star_wide' AND c.rows::double precision / c.calls <= a.star_rows THEN false
                          WHEN c.query !~* p.necessary THEN false
                          ELSE c.query ~* p.matcher END
$$;

CREATE FUNCTION @extschema@.query_analysis(analysis_window interval DEFAULT '1 hour')
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._slow_query_ms() AS slow_ms,
           @extschema@._threshold('frequent_calls_per_second')::double precision AS frequent_cps,
           @extschema@._threshold('expensive_share')::double precision AS expensive_share
), statement_totals AS (
    -- read once, handed to every part of the analysis
    SELECT pg_catalog.array_agg(t) AS totals
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
     WHERE t.calls > 0 AND t.toplevel
), cur AS (
    SELECT t.*, t.total_exec_time / t.calls AS mean_ms
      FROM statement_totals st, pg_catalog.unnest(st.totals) t
), totals AS (
    SELECT NULLIF(pg_catalog.sum(c.shared_blks_read), 0) AS blks_read,
           NULLIF(pg_catalog.sum(c.temp_blks), 0) AS temp_blks,
           NULLIF(pg_catalog.sum(c.wal_bytes), 0) AS wal_bytes
      FROM cur c
), described AS (
    SELECT c.*, COALESCE(t.query, '<query text not collected>') AS query,
           pg_catalog.jsonb_build_object('queryid', c.queryid, 'query', COALESCE(t.query, '<query text not collected>'),
               'calls', c.calls, 'total_time_ms', pg_catalog.round(c.total_exec_time::numeric, 3),
               'mean_time_ms', pg_catalog.round(c.mean_ms::numeric, 3),
               'rows_per_call', pg_catalog.round((c.rows::double precision / c.calls)::numeric, 2),
               'shared_blks_read', c.shared_blks_read, 'temp_blks', c.temp_blks,
               'wal_bytes', c.wal_bytes,
               'cpu_user_time_ms', pg_catalog.round(us.cpu_user_time::numeric, 3),
               'cpu_system_time_ms', pg_catalog.round(us.cpu_system_time::numeric, 3),
               'disk_read_bytes', us.disk_read_bytes, 'disk_write_bytes', us.disk_write_bytes) AS entry
      FROM cur c
      LEFT JOIN @extschema@.statement_texts t USING (dbid, userid, queryid, toplevel)
      LEFT JOIN (SELECT u.* FROM args a, @extschema@._statement_usage(a.since, pg_catalog.now()) u) us
             ON us.dbid = c.dbid AND us.userid = c.userid AND us.queryid = c.queryid
)
SELECT pg_catalog.jsonb_build_object(
    'window', analysis_window::text,
    'computed_at', pg_catalog.now(),
    'thresholds', pg_catalog.jsonb_build_object(
        'slow_query_threshold_ms', a.slow_ms,
        'frequent_calls_per_second', a.frequent_cps,
        'expensive_share', a.expensive_share),
    'slow_queries', COALESCE((
        SELECT pg_catalog.jsonb_agg(d.entry || pg_catalog.jsonb_build_object('reason',
                   pg_catalog.format('mean execution time %s ms exceeds dbanalytics.slow_query_threshold (%s ms)',
                                     pg_catalog.round(d.mean_ms::numeric, 1), a.slow_ms))
                   ORDER BY d.mean_ms DESC)
          FROM (SELECT * FROM described d WHERE d.mean_ms > a.slow_ms ORDER BY d.mean_ms DESC LIMIT 20) d), '[]'),
    'frequent_queries', COALESCE((
        SELECT pg_catalog.jsonb_agg(d.entry || pg_catalog.jsonb_build_object('reason',
                   pg_catalog.format('called %s times per second on average over the window (threshold %s/s)',
                                     pg_catalog.round((d.calls / a.window_seconds)::numeric, 1), a.frequent_cps))
                   ORDER BY d.calls DESC)
          FROM (SELECT * FROM described d WHERE d.calls / a.window_seconds > a.frequent_cps
                 ORDER BY d.calls DESC LIMIT 20) d), '[]'),
    'expensive_queries', COALESCE((
        SELECT pg_catalog.jsonb_agg(d.entry || pg_catalog.jsonb_build_object('reason', d.reason)
                   ORDER BY d.weight DESC)
          FROM (SELECT d.entry,
                       pg_catalog.concat_ws('; ',
                           CASE WHEN d.shared_blks_read / tt.blks_read > a.expensive_share THEN
                               pg_catalog.format('%s%% of all shared blocks read from disk or OS cache',
                                                 pg_catalog.round((100 * d.shared_blks_read / tt.blks_read)::numeric, 1)) END,
                           CASE WHEN d.temp_blks / tt.temp_blks > a.expensive_share THEN
                               pg_catalog.format('%s%% of all temporary-file blocks (sorts or hashes spilling to disk)',
                                                 pg_catalog.round((100 * d.temp_blks / tt.temp_blks)::numeric, 1)) END,
                           CASE WHEN d.wal_bytes / tt.wal_bytes > a.expensive_share THEN
                               pg_catalog.format('%s%% of all WAL written',
                                                 pg_catalog.round((100 * d.wal_bytes / tt.wal_bytes)::numeric, 1)) END
                       ) AS reason,
                       GREATEST(COALESCE(d.shared_blks_read / tt.blks_read, 0),
                                COALESCE(d.temp_blks / tt.temp_blks, 0),
                                COALESCE(d.wal_bytes / tt.wal_bytes, 0)) AS weight
                  FROM described d CROSS JOIN totals tt
                 WHERE d.shared_blks_read / tt.blks_read > a.expensive_share
                    OR d.temp_blks / tt.temp_blks > a.expensive_share
                    OR d.wal_bytes / tt.wal_bytes > a.expensive_share
                 ORDER BY weight DESC LIMIT 20) d), '[]'),
    'optimization_opportunities', COALESCE((
        SELECT pg_catalog.jsonb_agg(o.entry ORDER BY o.weight DESC)
          FROM (SELECT n.entry, n.weight FROM @extschema@._n_plus_one(analysis_window, st.totals) n
                UNION ALL
                SELECT c.entry, c.weight FROM @extschema@._caching_opportunities(analysis_window, st.totals) c) o), '[]'),
    'query_rewrites', COALESCE((
        SELECT pg_catalog.jsonb_agg(r.entry ORDER BY r.total_time DESC)
          FROM @extschema@._query_rewrites(analysis_window, st.totals) r), '[]'))
  FROM args a, statement_totals st
$$;

-- The baseline of regressions(): a positive interval, at most 10 years.
CREATE FUNCTION @extschema@._check_baseline(baseline interval)
RETURNS interval
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF baseline IS NULL OR baseline <= interval '0' OR baseline > interval '10 years' THEN
        RAISE EXCEPTION 'dbanalytics: the baseline must be a positive interval, got %', COALESCE(baseline::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the length of the stretch just before the analysis window to compare it with, such as ''7 days'' (at most 10 years).';
    END IF;
    RETURN baseline;
END
$$;

-- Statements that got slower: each statement's top-level executions (one row per database,
-- user and query id) in the window against the baseline just before it. A statement regressed
-- when it ran at least regression_min_executions times on both sides and its mean execution
-- time (pg_stat_statements' totals) or its p95 (the latency histograms) rose by the factor
-- regression_ratio or more, and by regression_min_rise_ms at least (sub-0.1 ms jitter is no
-- regression; analytics_thresholds). A histogram percentile is within 5 % of the
-- true value, so a rise by 1.5 means a true rise of at least 1.5 × 0.95 / 1.05 ≈ 1.36: more than
-- the histograms' own error. Ranked by the time the rise cost in the window, (mean - baseline
-- mean) × calls. The query text as statement_texts shows it to the caller; the statement's latest
-- plan change in the window (plan_changes()), if it had one.
CREATE FUNCTION @extschema@.regressions(analysis_window interval DEFAULT '1 day',
                                        baseline interval DEFAULT '7 days',
                                        row_limit integer DEFAULT 20)
RETURNS TABLE (rank bigint, queryid bigint, datname text, usename text, query text,
               regressed_on text, baseline_calls bigint, calls bigint,
               baseline_mean_ms double precision, mean_ms double precision,
               baseline_p95_ms double precision, p95_ms double precision,
               extra_time_ms double precision, previous_planid bigint, planid bigint,
               plan_changed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._check_baseline(baseline),
           @extschema@._row_limit(row_limit);  -- argument checks, even with no history
WITH args AS (
    SELECT pg_catalog.now() AS hi, pg_catalog.now() - analysis_window AS mid,
           pg_catalog.now() - analysis_window - baseline AS lo,
           @extschema@._threshold('regression_ratio')::double precision AS ratio,
           @extschema@._threshold('regression_min_executions') AS min_n,
           @extschema@._threshold('regression_min_rise_ms')::double precision AS min_rise
), totals AS (
    SELECT t.dbid, t.userid, t.queryid, false AS in_window, t.calls, t.total_exec_time
      FROM args a, @extschema@._statement_totals(a.lo, a.mid) t WHERE t.toplevel
    UNION ALL
    SELECT t.dbid, t.userid, t.queryid, true, t.calls, t.total_exec_time
      FROM args a, @extschema@._statement_totals(a.mid, a.hi) t WHERE t.toplevel
), histograms AS (
    SELECT h.dbid, h.userid, h.queryid, h.in_window, pg_catalog.sum(h.executions) AS executions,
           (@extschema@.merged_latency_percentiles(h.buckets, h.counts, '{0.95}'))[1] AS p95
      FROM (SELECT l.dbid, l.userid, l.queryid, false AS in_window, l.executions, l.buckets, l.counts
              FROM args a, @extschema@._latency_parts(a.lo, a.mid) l
            UNION ALL
            SELECT l.dbid, l.userid, l.queryid, true, l.executions, l.buckets, l.counts
              FROM args a, @extschema@._latency_parts(a.mid, a.hi) l) h
     WHERE NOT (h.queryid = 0 AND h.userid = 0)  -- the overflow row is no statement
       AND pg_catalog.cardinality(h.buckets) > 0
     GROUP BY 1, 2, 3, 4
), sides AS (
    SELECT k.dbid, k.userid, k.queryid,
           pg_catalog.max(t.calls) FILTER (WHERE NOT k.in_window) AS calls_before,
           pg_catalog.max(t.calls) FILTER (WHERE k.in_window) AS calls_after,
           pg_catalog.max(t.total_exec_time / NULLIF(t.calls, 0)) FILTER (WHERE NOT k.in_window) AS mean_before,
           pg_catalog.max(t.total_exec_time / NULLIF(t.calls, 0)) FILTER (WHERE k.in_window) AS mean_after,
           pg_catalog.max(h.executions) FILTER (WHERE NOT k.in_window) AS executions_before,
           pg_catalog.max(h.executions) FILTER (WHERE k.in_window) AS executions_after,
           pg_catalog.max(h.p95) FILTER (WHERE NOT k.in_window) AS p95_before,
           pg_catalog.max(h.p95) FILTER (WHERE k.in_window) AS p95_after
      FROM (SELECT t.dbid, t.userid, t.queryid, t.in_window FROM totals t
            UNION
            SELECT h.dbid, h.userid, h.queryid, h.in_window FROM histograms h) k
      LEFT JOIN totals t USING (dbid, userid, queryid, in_window)
      LEFT JOIN histograms h USING (dbid, userid, queryid, in_window)
     GROUP BY 1, 2, 3
), judged AS (
    SELECT s.*,
           s.calls_before >= a.min_n AND s.calls_after >= a.min_n AND s.mean_after >= a.ratio * s.mean_before
               AND s.mean_after - s.mean_before >= a.min_rise AS mean_rose,
           s.executions_before >= a.min_n AND s.executions_after >= a.min_n AND s.p95_after >= a.ratio * s.p95_before
               AND s.p95_after - s.p95_before >= a.min_rise AS p95_rose
      FROM sides s, args a
), ranked AS (
    SELECT j.*, (COALESCE(j.mean_after - j.mean_before, 0) * COALESCE(j.calls_after, 0)) AS extra,
           pg_catalog.row_number() OVER (ORDER BY COALESCE(j.mean_after - j.mean_before, 0) * COALESCE(j.calls_after, 0) DESC,
                                                  j.p95_after / NULLIF(j.p95_before, 0) DESC NULLS LAST,
                                                  j.dbid, j.userid, j.queryid) AS rank
      FROM judged j
     WHERE j.mean_rose IS TRUE OR j.p95_rose IS TRUE
), changes AS (
    SELECT DISTINCT ON (c.dbid, c.userid, c.queryid) c.*
      FROM args a, @extschema@._plan_changes(a.mid, a.hi) c
     ORDER BY c.dbid, c.userid, c.queryid, c.changed_at DESC
)
SELECT r.rank, r.queryid, d.datname::text, u.rolname::text,
       (SELECT t.query FROM @extschema@.statement_texts t
         WHERE (t.dbid, t.userid, t.queryid) = (r.dbid, r.userid, r.queryid)
         ORDER BY t.toplevel DESC LIMIT 1),
       pg_catalog.concat_ws(' and ', CASE WHEN r.mean_rose THEN 'mean' END, CASE WHEN r.p95_rose THEN 'p95' END),
       r.calls_before::bigint, r.calls_after::bigint, r.mean_before, r.mean_after, r.p95_before, r.p95_after,
       r.extra, ch.previous_planid, ch.planid, ch.changed_at
  FROM ranked r
  LEFT JOIN changes ch ON ch.dbid = r.dbid AND ch.userid = r.userid AND ch.queryid = r.queryid
  LEFT JOIN pg_catalog.pg_database d ON d.oid = r.dbid
  LEFT JOIN pg_catalog.pg_roles u ON u.oid = r.userid
 WHERE r.rank <= LEAST(row_limit, 1000)
 ORDER BY r.rank
$$;
