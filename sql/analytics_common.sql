-- dbanalytics analytics: shared pieces. Every threshold that decides a status is either a
-- setting (dbanalytics.slow_query_threshold) or a row of analytics_thresholds below.

CREATE VIEW @extschema@.analytics_thresholds (name, value, unit, used_by, meaning) AS
VALUES
    ('pool_limit_ratio', 0.9, 'ratio', 'connection_pool_analytics',
     'near_connection_limit when peak client connections reach this share of max_connections - superuser_reserved_connections (then no pool is told to grow)'),
    ('pool_high_utilization', 0.8, 'ratio', 'connection_pool_analytics',
     'high_utilization when active / (active + idle) exceeds this'),
    ('pool_low_utilization', 0.3, 'ratio', 'connection_pool_analytics',
     'oversized when utilization is below this and more than pool_idle_surplus connections sit idle'),
    ('pool_idle_surplus', 10, 'connections', 'connection_pool_analytics',
     'oversized needs more idle connections than this on average'),
    ('pool_idle_in_transaction_ratio', 1, 'ratio', 'connection_pool_analytics',
     'idle_in_transaction (an application leak) when at least 1 connection on average, and more than this multiple of the active ones, sit idle in an open transaction'),
    ('pool_growth_buffer', 1.2, 'factor', 'connection_pool_analytics',
     'recommended size of a busy pool (or of a pooler near the connection limit): the measured peak of concurrently active sessions times this'),
    ('pool_shrink_buffer', 1.1, 'factor', 'connection_pool_analytics',
     'recommended size of an oversized pool: peak active connections times this'),
    ('index_min_evidence', 604800, 's', 'index_effectiveness',
     'an index is judged unused or rarely used only after being watched this long (collector history or counters since stats_reset)'),
    ('index_rare_scans_per_day', 10, 'scans/day', 'index_effectiveness',
     'rarely_used below this many scans per day'),
    ('index_low_selectivity', 0.3, 'ratio', 'index_effectiveness',
     'low_selectivity when an average scan reads more than this share of the table''s rows'),
    ('index_bloat_ratio', 0.5, 'ratio', 'index_effectiveness',
     'bloated when the btree estimate from statistics says more than this share of the index is free space (and more than index_bloat_min_bytes)'),
    ('index_bloat_min_bytes', 8388608, 'bytes', 'index_effectiveness',
     'indexes with less estimated free space than this are never called bloated'),
    ('n_plus_one_calls_per_transaction', 10, 'calls/transaction', 'query_analysis',
     'n_plus_one: a single-row lookup executed at least this many times per transaction of its database, in some snapshot interval'),
    ('n_plus_one_rows_per_call', 1.5, 'rows/call', 'query_analysis',
     'n_plus_one: the lookup returns at most this many rows per call on average'),
    ('n_plus_one_min_runs', 3, 'runs', 'query_analysis',
     'n_plus_one (runs): the lookup ran in at least this many runs after a parent statement in the window'),
    ('n_plus_one_min_run_length', 5, 'executions/run', 'query_analysis',
     'n_plus_one (runs): its runs are at least this long on average'),
    ('n_plus_one_run_max_rows', 10, 'rows/execution', 'executor hooks (fixed)',
     'a run is consecutive executions of one statement on one connection, each returning at most this many rows'),
    ('n_plus_one_run_max_gap', 100, 'ms', 'executor hooks (fixed)',
     'a run continues while each execution starts within this time of the previous one''s end; its parent is the different statement that ended within this time before the run'),
    ('n_plus_one_run_min_length', 2, 'executions', 'executor hooks (fixed)',
     'runs shorter than this, runs without a parent (a steady stream of one lookup) and runs longer than their parent returned rows are not recorded'),
    ('caching_calls_per_second', 50, 'calls/s', 'query_analysis',
     'caching_opportunity: a read-only statement called more often than this'),
    ('caching_write_ratio', 0.01, 'ratio', 'query_analysis',
     'caching_opportunity: its tables received fewer row writes than this share of its calls'),
    ('select_star_rows_per_call', 100, 'rows/call', 'query_analysis',
     'query_rewrites: SELECT * flagged when it returns more rows per call than this'),
    ('frequent_calls_per_second', 10, 'calls/s', 'query_analysis',
     'frequent_queries: statements called more often than this on average over the window'),
    ('expensive_share', 0.05, 'ratio', 'query_analysis',
     'expensive_queries: statements with more than this share of all blocks read, temp blocks or WAL'),
    ('long_transaction', 60, 's', 'long_running_transactions',
     'transactions open longer than this are listed'),
    ('seq_scan_rows_missing_index', 10000, 'rows', 'table_maintenance',
     'a table whose sequential scans read more than this many rows each, and that has more sequential than index scans, is flagged missing_index'),
    ('missing_index_window', 3600, 's', 'table_maintenance',
     'missing_index is judged from the scans of this last stretch of time (collector history plus live counters), so it clears once an index serves them'),
    ('dead_tuple_ratio', 0.2, 'ratio', 'table_maintenance',
     'needs_vacuum when dead tuples exceed this share of all tuples (and 1000 tuples)'),
    ('xid_age_warning', 0.5, 'ratio', 'table_maintenance, wraparound_risk',
     'wraparound_risk when the table''s transaction-ID age passes this share of the 2^31 wraparound horizon'),
    ('sequence_exhaustion', 0.75, 'ratio', 'sequence_usage',
     'a sequence that used more than this share of its range is flagged'),
    ('regression_ratio', 1.5, 'factor', 'regressions',
     'a statement regressed when its mean execution time or its p95 in the window is at least this multiple of the baseline''s'),
    ('regression_min_executions', 50, 'executions', 'regressions',
     'a statement is judged only when it ran at least this many times in the window and in the baseline'),
    ('regression_min_rise_ms', 0.1, 'ms', 'regressions',
     'a regression also needs the mean (or the p95) to rise by at least this much'),
    ('xid_age_critical', 0.75, 'ratio', 'wraparound_risk',
     'critical when the transaction-ID or multixact age passes this share of the age at which the server stops assigning IDs (2^31 - 1 - 3 million); warning past xid_age_warning'),
    ('wraparound_warning_days', 30, 'days', 'wraparound_risk, alert wraparound_soon',
     'warning when the server would stop assigning transaction or multixact IDs within this many days at the consumption rate of the window'),
    ('wraparound_critical_days', 7, 'days', 'wraparound_risk',
     'critical when that stop is within this many days'),
    ('consumption_min_history', 3600, 's', 'wraparound_risk',
     'consumption rates (and so forecasts) only from snapshots spanning at least this long in the window'),
    ('growth_min_history', 172800, 's', 'space_growth',
     'growth and forecasts only for objects measured over at least this long in the window (else too_little_history)'),
    ('growth_stable_ratio', 0.001, 'ratio/day', 'space_growth',
     'growing (shrinking) when the fitted growth per day is more than this share of the size now; stable otherwise'),
    ('disk_full_warning_days', 30, 'days', 'space_growth, alert disk_full_soon',
     'full_soon when the fitted line of a file system''s used bytes reaches its capacity within this many days');

-- Start of an analysis window, after checking it. Clear errors instead of empty results.
CREATE FUNCTION @extschema@._window_start(analysis_window interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF analysis_window IS NULL THEN
        RAISE EXCEPTION 'dbanalytics: the analysis window must not be NULL'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an interval such as ''1 hour'' or ''7 days''.';
    END IF;
    IF analysis_window <= interval '0' THEN
        RAISE EXCEPTION 'dbanalytics: the analysis window must be positive, got %', analysis_window
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an interval such as ''1 hour'' or ''7 days''.';
    END IF;
    IF analysis_window > interval '10 years' THEN
        RAISE EXCEPTION 'dbanalytics: the analysis window % is longer than any history', analysis_window
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'History is kept for dbanalytics.retention_days at most; pass at most that.';
    END IF;
    RETURN pg_catalog.now() - analysis_window;
END
$$;

-- A row limit between 1 and 1000: below 1 is an error, above 1000 is clamped.
CREATE FUNCTION @extschema@._row_limit(requested integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF requested IS NULL OR requested < 1 THEN
        RAISE EXCEPTION 'dbanalytics: the row limit must be at least 1, got %', COALESCE(requested::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a limit between 1 and 1000 (larger values are clamped to 1000).';
    END IF;
    RETURN LEAST(requested, 1000);
END
$$;

-- The width of the time buckets a time-series function returns, after checking it: a whole
-- number of minutes from 1 minute to 1 day. The functions align buckets on the Unix epoch
-- (date_bin), so '1 hour' buckets are UTC hours and '1 day' UTC days, as the rollups' are.
CREATE FUNCTION @extschema@._check_resolution(resolution interval)
RETURNS interval
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seconds numeric := EXTRACT(epoch FROM resolution);
BEGIN
    IF resolution IS NULL OR seconds < 60 OR seconds > 86400 OR seconds % 60 <> 0 THEN
        RAISE EXCEPTION 'dbanalytics: the resolution must be a whole number of minutes from 1 minute to 1 day, got %',
                        COALESCE(resolution::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an interval such as ''1 minute'', ''15 minutes'' or ''1 hour''.';
    END IF;
    RETURN resolution;
END
$$;

-- A threshold's value. IMMUTABLE: the values are constants of the view's definition, which only
-- an upgrade of the extension changes, so the planner evaluates each call with a constant name
-- once, when it plans the statement, and not once per row (wraparound_risk made four calls per
-- table: 2,000 tables took 0.3 s). A plan records that it folded this function, not the view:
-- replacing the view alone leaves the plans sessions have cached on the old values, so an
-- upgrade that changes a threshold also restates this function (docs/releasing.md).
CREATE FUNCTION @extschema@._threshold(threshold_name text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.value FROM @extschema@.analytics_thresholds t WHERE t.name = threshold_name
$$;

-- _slow_query_ms() (Rust, src/api/mod.rs): dbanalytics.slow_query_threshold in milliseconds.

-- The per-interval statement_stats rows of the intervals ending in (since, until] that
-- _pack_minutes packed into statement_stats_packed, unpacked (times back from nanoseconds).
-- Readers of per-minute statement deltas read statement_stats and these.
CREATE FUNCTION @extschema@._packed_statement_minutes(since timestamptz, until timestamptz)
RETURNS SETOF @extschema@.statement_stats
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT since < until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format($q$
        SELECT TIMESTAMPTZ 'epoch' + (u.v[1] - u.v[2]) * interval '1 microsecond',
               TIMESTAMPTZ 'epoch' + u.v[1] * interval '1 microsecond',
               p.dbid, p.userid, p.queryid, p.toplevel, u.v[3] <> 0, %s
          FROM @extschema@.statement_stats_packed p
          LEFT JOIN @extschema@.packed_hours c
                 ON c.hour_end = p.hour_end AND c.hour_end > $1 AND c.hour_end < $2 + interval '1 hour'
         CROSS JOIN LATERAL @extschema@._unpack_columns(
                   p.intervals, (EXTRACT(epoch FROM $1) * 1000000)::bigint,
                   (EXTRACT(epoch FROM $2) * 1000000)::bigint, clock => c.interval_ends) u(n, v)
         WHERE p.hour_end > $1 AND p.hour_end < $2 + interval '1 hour'
    $q$, (SELECT pg_catalog.string_agg(CASE c.type WHEN 'double precision'
                                            THEN pg_catalog.format('u.v[%s] / 1000000.0::double precision', c.ordinal + 3)
                                            ELSE pg_catalog.format('u.v[%s]', c.ordinal + 3) END,
                                       ', ' ORDER BY c.ordinal)
            FROM @extschema@._statement_counter_columns() c)) USING since, until;
END
$$;

-- The same for statement_latency (statement_latency_packed): only the given queryids when
-- queryids is not NULL.
CREATE FUNCTION @extschema@._packed_latency_minutes(since timestamptz, until timestamptz,
                                                    queryids bigint[] DEFAULT NULL)
RETURNS SETOF @extschema@.statement_latency
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT since < until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT TIMESTAMPTZ 'epoch' + (u.v[1] - u.v[2]) * interval '1 microsecond',
               TIMESTAMPTZ 'epoch' + u.v[1] * interval '1 microsecond',
               p.dbid, p.userid, p.queryid, u.v[3] <> 0, u.v[4],
               u.v[14:13 + u.v[13]]::smallint[],
               u.v[14 + w.width:13 + w.width + u.v[13]],
               u.v[5], u.v[6], u.v[7], u.v[8],
               u.v[9] / 1000000.0::double precision, u.v[10] / 1000000.0::double precision,
               u.v[11], u.v[12], p.run_applications[u.n]
          FROM @extschema@.statement_latency_packed p
          LEFT JOIN @extschema@.packed_hours c
                 ON c.hour_end = p.hour_end AND c.hour_end > $1 AND c.hour_end < $2 + interval '1 hour'
         CROSS JOIN LATERAL @extschema@._unpack_columns(
                   p.intervals, (EXTRACT(epoch FROM $1) * 1000000)::bigint,
                   (EXTRACT(epoch FROM $2) * 1000000)::bigint, clock => c.interval_ends) u(n, v)
         CROSS JOIN LATERAL (SELECT (pg_catalog.cardinality(u.v) - 13) / 2 AS width) w
         WHERE p.hour_end > $1 AND p.hour_end < $2 + interval '1 hour'
           AND ($3 IS NULL OR p.queryid = ANY ($3))
    $q$ USING since, until, queryids;
END
$$;

-- What _latency_parts needs of the packed minutes of (since, until] (statement_latency_packed),
-- merged per statement, packed hour and run parent by _unpack_latency_totals, without a row
-- per minute; only the given queryids when queryids is not NULL.
CREATE FUNCTION @extschema@._packed_latency_parts(since timestamptz, until timestamptz,
                                                  queryids bigint[] DEFAULT NULL)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, reset boolean, executions bigint,
               buckets smallint[], counts bigint[], runs bigint, run_executions bigint,
               run_max_length bigint, run_parent_queryid bigint, cpu_user_time double precision,
               cpu_system_time double precision, disk_read_bytes bigint, disk_write_bytes bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT since < until THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT p.dbid, p.userid, p.queryid, u.reset, u.executions, u.buckets, u.counts, u.runs,
               u.run_executions, u.run_max_length, u.run_parent_queryid,
               u.cpu_user_ns / 1000000.0::double precision, u.cpu_system_ns / 1000000.0::double precision,
               u.disk_read_bytes, u.disk_write_bytes
          FROM @extschema@.statement_latency_packed p
          LEFT JOIN @extschema@.packed_hours c
                 ON c.hour_end = p.hour_end AND c.hour_end > since AND c.hour_end < until + interval '1 hour'
         CROSS JOIN LATERAL @extschema@._unpack_latency_totals(
                   p.intervals, (EXTRACT(epoch FROM since) * 1000000)::bigint,
                   (EXTRACT(epoch FROM until) * 1000000)::bigint, clock => c.interval_ends) u
         WHERE p.hour_end > since AND p.hour_end < until + interval '1 hour'
           AND (queryids IS NULL OR p.queryid = ANY (queryids));
END
$$;

-- The latency histograms and run counts of (since, until], as rows of statement_latency:
-- statement_latency_daily for the whole UTC days rolled up so far, statement_latency_hourly for
-- the other whole hours (_rollup_span), the per-interval rows for the rest, so that windows
-- longer than dbanalytics.retention_minutes keep their percentiles and a 30-day window reads
-- about 30 + 47 rows per statement. Callers merge the rows (bucket counts add up). only_queryid:
-- one statement's rows only.
CREATE FUNCTION @extschema@._compute_latency_parts(since timestamptz, until timestamptz,
                                                   only_queryid bigint)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, reset boolean, executions bigint,
               buckets smallint[], counts bigint[], runs bigint, run_executions bigint,
               run_max_length bigint, run_parent_queryid bigint, cpu_user_time double precision,
               cpu_system_time double precision, disk_read_bytes bigint, disk_write_bytes bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- the rows are gathered in a tuple store of work_mem, then handed to _latency_parts: a 30-day
-- window's (about 160,000 rows, 19 MB) stay in memory instead of a temporary file (the
-- query's own sorts and hashes may use as much)
SET work_mem = '64MB'
AS $$
DECLARE
    span record := @extschema@._rollup_span(since, until);
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT d.dbid, d.userid, d.queryid, d.reset, d.executions, d.buckets, d.counts, d.runs,
               d.run_executions, d.run_max_length, d.run_parent_queryid, d.cpu_user_time,
               d.cpu_system_time, d.disk_read_bytes, d.disk_write_bytes
          FROM @extschema@.statement_latency_daily d
         WHERE d.day_end > $5 AND d.day_end <= $6
           AND ($7 IS NULL OR d.queryid = $7)
        UNION ALL
        -- statement_latency_hourly serves (lo, day_lo] and (day_hi, hi]
        SELECT h.dbid, h.userid, h.queryid, h.reset, h.executions, h.buckets, h.counts, h.runs,
               h.run_executions, h.run_max_length, h.run_parent_queryid, h.cpu_user_time,
               h.cpu_system_time, h.disk_read_bytes, h.disk_write_bytes
          FROM @extschema@.statement_latency_hourly h
         WHERE ((h.hour_end > $3 AND h.hour_end <= $5) OR (h.hour_end > $6 AND h.hour_end <= $4))
           AND ($7 IS NULL OR h.queryid = $7)
        UNION ALL
        -- the minutes serve the rest: (since, lo] and (hi, until]
        SELECT l.dbid, l.userid, l.queryid, l.reset, l.executions, l.buckets, l.counts, l.runs,
               l.run_executions, l.run_max_length, l.run_parent_queryid, l.cpu_user_time,
               l.cpu_system_time, l.disk_read_bytes, l.disk_write_bytes
          FROM @extschema@.statement_latency l
         WHERE ((l.interval_end > $1 AND l.interval_end <= LEAST($3, $2))
                OR (l.interval_end > GREATEST($4, $1) AND l.interval_end <= $2))
           AND ($7 IS NULL OR l.queryid = $7)
        UNION ALL
        -- and their packed part
        SELECT * FROM @extschema@._packed_latency_parts($1, LEAST($3, $2), $8)
        UNION ALL
        SELECT * FROM @extschema@._packed_latency_parts(GREATEST($4, $1), $2, $8)
    $q$ USING since, until, span.lo, span.hi, span.day_lo, span.day_hi, only_queryid,
              CASE WHEN only_queryid IS NOT NULL THEN ARRAY[only_queryid] END;
END
$$;

-- The latency parts of (since, until], computed by _compute_latency_parts once per statement
-- (src/api/memo.rs).
CREATE FUNCTION @extschema@._latency_parts(since timestamptz, until timestamptz,
                                           only_queryid bigint DEFAULT NULL)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, reset boolean, executions bigint,
               buckets smallint[], counts bigint[], runs bigint, run_executions bigint,
               run_max_length bigint, run_parent_queryid bigint, cpu_user_time double precision,
               cpu_system_time double precision, disk_read_bytes bigint, disk_write_bytes bigint)
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';

-- Table and index counters summed over (since, until], one row per object: the hourly rollups
-- for the whole hours (_rollup_span), the per-snapshot rows for the rest.
CREATE FUNCTION @extschema@._table_totals(since timestamptz, until timestamptz)
RETURNS TABLE (datname text, relid oid, schemaname text, relname text, seq_scan bigint,
               seq_tup_read bigint, idx_scan bigint, n_tup_ins bigint, n_tup_upd bigint,
               n_tup_del bigint, n_tup_hot_upd bigint, heap_blks_read bigint, heap_blks_hit bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    span record := @extschema@._rollup_span(since, until);
BEGIN
    RETURN QUERY EXECUTE $q$
    WITH parts AS (
        SELECT t.datname, t.relid, t.schemaname, t.relname, t.seq_scan, t.seq_tup_read, t.idx_scan,
               t.n_tup_ins, t.n_tup_upd, t.n_tup_del, t.n_tup_hot_upd, t.heap_blks_read, t.heap_blks_hit
          FROM @extschema@.table_hourly t
         WHERE t.hour_end > $3 AND t.hour_end <= $4
        UNION ALL
        SELECT t.datname, t.relid, t.schemaname, t.relname, t.seq_scan, t.seq_tup_read, t.idx_scan,
               t.n_tup_ins, t.n_tup_upd, t.n_tup_del, t.n_tup_hot_upd, t.heap_blks_read, t.heap_blks_hit
          FROM @extschema@.table_stats t
         WHERE (t.interval_end > $1 AND t.interval_end <= LEAST($3, $2))
            OR (t.interval_end > GREATEST($4, $1) AND t.interval_end <= $2)
    )
    SELECT pg_catalog.max(p.datname), p.relid, pg_catalog.max(p.schemaname), pg_catalog.max(p.relname),
           pg_catalog.sum(p.seq_scan)::bigint, pg_catalog.sum(p.seq_tup_read)::bigint,
           pg_catalog.sum(p.idx_scan)::bigint, pg_catalog.sum(p.n_tup_ins)::bigint,
           pg_catalog.sum(p.n_tup_upd)::bigint, pg_catalog.sum(p.n_tup_del)::bigint,
           pg_catalog.sum(p.n_tup_hot_upd)::bigint, pg_catalog.sum(p.heap_blks_read)::bigint,
           pg_catalog.sum(p.heap_blks_hit)::bigint
      FROM parts p
     GROUP BY p.relid  -- one row per table even across a rename of the database
    $q$ USING since, until, span.lo, span.hi;
END
$$;

-- The sampler's tick in seconds (dbanalytics.sample_interval, 1 s when not defined here): the
-- wait analytics and the pool verdicts.
CREATE FUNCTION @extschema@._tick_seconds()
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT s.setting::double precision / 1000 FROM pg_catalog.pg_settings s
                      WHERE s.name = 'dbanalytics.sample_interval'), 1)
$$;

CREATE FUNCTION @extschema@._index_totals(since timestamptz, until timestamptz)
RETURNS TABLE (datname text, indexrelid oid, relid oid, schemaname text, relname text,
               indexrelname text, idx_scan bigint, idx_tup_read bigint, idx_tup_fetch bigint,
               idx_blks_read bigint, idx_blks_hit bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    span record := @extschema@._rollup_span(since, until);
BEGIN
    RETURN QUERY EXECUTE $q$
    WITH parts AS (
        SELECT i.datname, i.indexrelid, i.relid, i.schemaname, i.relname, i.indexrelname, i.idx_scan,
               i.idx_tup_read, i.idx_tup_fetch, i.idx_blks_read, i.idx_blks_hit
          FROM @extschema@.index_hourly i
         WHERE i.hour_end > $3 AND i.hour_end <= $4
        UNION ALL
        SELECT i.datname, i.indexrelid, i.relid, i.schemaname, i.relname, i.indexrelname, i.idx_scan,
               i.idx_tup_read, i.idx_tup_fetch, i.idx_blks_read, i.idx_blks_hit
          FROM @extschema@.index_stats i
         WHERE (i.interval_end > $1 AND i.interval_end <= LEAST($3, $2))
            OR (i.interval_end > GREATEST($4, $1) AND i.interval_end <= $2)
    )
    SELECT pg_catalog.max(p.datname), p.indexrelid, pg_catalog.max(p.relid), pg_catalog.max(p.schemaname),
           pg_catalog.max(p.relname), pg_catalog.max(p.indexrelname),
           pg_catalog.sum(p.idx_scan)::bigint, pg_catalog.sum(p.idx_tup_read)::bigint,
           pg_catalog.sum(p.idx_tup_fetch)::bigint, pg_catalog.sum(p.idx_blks_read)::bigint,
           pg_catalog.sum(p.idx_blks_hit)::bigint
      FROM parts p
     GROUP BY p.indexrelid
    $q$ USING since, until, span.lo, span.hi;
END
$$;

-- Standbys the collector recorded (replication_stats) after `since` that are not connected now,
-- told apart by application name and client address (two standbys may share the default name
-- walreceiver). A base backup or a WAL archiver streaming through a walsender (pg_basebackup,
-- pg_receivewal, a sender in state backup) is not a standby and never counts.
CREATE FUNCTION @extschema@._gone_standbys(since timestamptz)
RETURNS TABLE (application_name text, client_addr inet, last_seen timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.application_name, h.client_addr, pg_catalog.max(h.interval_end)
      FROM @extschema@.replication_stats h
     WHERE h.interval_end > since
       AND h.state IS DISTINCT FROM 'backup'
       AND COALESCE(h.application_name, '') NOT IN ('pg_basebackup', 'pg_receivewal')
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_replication r
                        WHERE r.application_name IS NOT DISTINCT FROM h.application_name
                          AND r.client_addr IS NOT DISTINCT FROM h.client_addr)
     GROUP BY 1, 2
$$;

-- merged_latency_percentiles()'s transition (src/api/latency.rs): adds a row's histogram to
-- the state. No SET clause: it resolves no name and runs once per row (docs/security.md).
CREATE FUNCTION @extschema@._latency_merge_step(state internal, buckets smallint[], counts bigint[],
                                                fractions double precision[])
RETURNS internal
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'dbanalytics_latency_merge_step';

-- Percentiles (in ms) of many rows' latency histograms merged into one: what
-- latency_percentiles() gives for all their buckets and counts concatenated, without unnesting
-- them (the histograms of a week of a statement's rollup rows merge in one pass). fractions are
-- the first row's: pass the same in every row. NULL over no row.
CREATE AGGREGATE @extschema@.merged_latency_percentiles(buckets smallint[], counts bigint[],
                                                       fractions double precision[]) (
    SFUNC = @extschema@._latency_merge_step,
    STYPE = internal,
    FINALFUNC = @extschema@._latency_merge_final,
    PARALLEL = SAFE
);
