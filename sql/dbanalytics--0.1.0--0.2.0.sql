-- dbanalytics 0.1.0 -> 0.2.0
--
-- Append-only: 0.1.0 (tag v0.1.0) is released, so its install script is frozen and every
-- change to the catalog since then is made here as well as in the install sources under sql/.
-- tests/e2e_upgrade.sh checks that an upgraded database's catalog equals a fresh install's.
--
-- Like every script of this extension it runs with search_path = @extschema@, pg_catalog
-- set by CREATE/ALTER EXTENSION: every name is schema-qualified all the same.

\echo Use "ALTER EXTENSION dbanalytics UPDATE TO '0.2.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- Every supported PostgreSQL version (issue 11): sql/versions.sql maps each server's column
-- names to ours (docs/versions.md); the statements and bgwriter sources read through it.
-- _snapshot_statements and _snapshot_bgwriter are restated whole here: a later change to either
-- must be restated after this section.
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@._statements_now(pgss_schema text)
RETURNS SETOF @extschema@.statement_counters
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    version integer[];
BEGIN
    SELECT pg_catalog.string_to_array(e.extversion, '.')::integer[] INTO version
      FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_stat_statements';
    RETURN QUERY EXECUTE pg_catalog.format($q$
        SELECT s.dbid, s.userid, s.queryid, %s, pg_catalog.now(),
               s.calls, s.plans, s.total_exec_time, s.total_plan_time, s.rows,
               s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied, s.shared_blks_written,
               s.local_blks_hit, s.local_blks_read, s.temp_blks_read, s.temp_blks_written,
               %s, %s, s.wal_records, s.wal_fpi, s.wal_bytes::bigint
          FROM %I.pg_stat_statements(false) s
         WHERE s.queryid IS NOT NULL$q$,
        CASE WHEN version >= '{1,9}' THEN 's.toplevel' ELSE 'true' END,
        CASE WHEN version >= '{1,11}' THEN 's.shared_blk_read_time' ELSE 's.blk_read_time' END,
        CASE WHEN version >= '{1,11}' THEN 's.shared_blk_write_time' ELSE 's.blk_write_time' END,
        pgss_schema);
END
$$;

-- The statements source's epoch (src/collect/epoch.rs): pg_stat_statements_info exists from
-- 1.9 (PostgreSQL 14); before it, no reset time and no eviction count (NULL).
CREATE FUNCTION @extschema@._statements_epoch(pgss_schema text, OUT stats_reset text, OUT dealloc bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension e
                WHERE e.extname = 'pg_stat_statements'
                  AND pg_catalog.string_to_array(e.extversion, '.')::integer[] >= '{1,9}') THEN
        EXECUTE pg_catalog.format(
            'SELECT EXTRACT(epoch FROM i.stats_reset)::text, i.dealloc FROM %I.pg_stat_statements_info i',
            pgss_schema)
        INTO stats_reset, dealloc;
    END IF;
END
$$;

-- Checkpointer and background writer counters, by server version:
--   up to 16  all from pg_stat_bgwriter, under these names
--   17+       checkpoints_timed = pg_stat_checkpointer.num_timed, checkpoints_req = num_requested,
--             checkpoint_write_time = write_time, checkpoint_sync_time = sync_time,
--             buffers_checkpoint = buffers_written; buffers_clean, maxwritten_clean and
--             buffers_alloc still from pg_stat_bgwriter; buffers_backend and
--             buffers_backend_fsync (removed from pg_stat_bgwriter) from pg_stat_io: the writes
--             and fsyncs of relation blocks by every process other than the checkpointer and
--             the background writer
CREATE FUNCTION @extschema@._bgwriter_now()
RETURNS SETOF @extschema@.bgwriter_counters
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer >= 170000 THEN
        RETURN QUERY
        SELECT true, pg_catalog.now(), c.num_timed, c.num_requested, c.write_time, c.sync_time,
               c.buffers_written, b.buffers_clean, b.maxwritten_clean,
               io.writes::bigint, io.fsyncs::bigint, b.buffers_alloc
          FROM pg_catalog.pg_stat_checkpointer c,
               pg_catalog.pg_stat_bgwriter b,
               (SELECT pg_catalog.sum(i.writes) AS writes, pg_catalog.sum(i.fsyncs) AS fsyncs
                  FROM pg_catalog.pg_stat_io i
                 WHERE i.object = 'relation'
                   AND i.backend_type NOT IN ('checkpointer', 'background writer')) io;
    ELSE
        RETURN QUERY
        SELECT true, pg_catalog.now(), b.checkpoints_timed, b.checkpoints_req,
               b.checkpoint_write_time, b.checkpoint_sync_time, b.buffers_checkpoint,
               b.buffers_clean, b.maxwritten_clean, b.buffers_backend, b.buffers_backend_fsync,
               b.buffers_alloc
          FROM pg_catalog.pg_stat_bgwriter b;
    END IF;
END
$$;

-- The bgwriter source's epoch: up to 16 one view with one stats_reset, which zeroes all its
-- counters together. From 17 the counters come from three views that are reset separately
-- (pg_stat_reset_shared('bgwriter' | 'checkpointer' | 'io')): one reset time standing for all
-- of them would treat the counters of the views that were not reset as zeroed and count them
-- twice, so none is given and counter_delta() finds, counter by counter, which went back.
CREATE FUNCTION @extschema@._bgwriter_epoch()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer >= 170000 THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT EXTRACT(epoch FROM b.stats_reset)::text FROM pg_catalog.pg_stat_bgwriter b);
END
$$;

REVOKE ALL ON FUNCTION @extschema@._statements_now(text), @extschema@._statements_epoch(text),
    @extschema@._bgwriter_now(), @extschema@._bgwriter_epoch() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._statements_now(text), @extschema@._statements_epoch(text),
    @extschema@._bgwriter_now(), @extschema@._bgwriter_epoch() TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@._snapshot_statements(pgss_schema text, previous_snapshot timestamptz,
                                                 interval_reset boolean, counters_zeroed boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written bigint;
    has_new_entries boolean;
BEGIN
    -- One statement reads pg_stat_statements once, writes the deltas and remembers the
    -- counters of the entries that changed (all its parts see the same previous counters).
    EXECUTE pg_catalog.format($q$
        WITH cur AS MATERIALIZED (
            -- the counters under our names, whatever the pg_stat_statements version (versions.sql)
            SELECT s.* FROM @extschema@._statements_now(%L) s
        ), deltas AS (
            INSERT INTO @extschema@.statement_stats
            SELECT $1, c.captured_at, c.dbid, c.userid, c.queryid, c.toplevel,
                   $2 OR c.calls < p.calls IS TRUE,
                   @extschema@.counter_delta(c.calls, p.calls, $3),
                   @extschema@.counter_delta(c.plans, p.plans, $3),
                   @extschema@.counter_delta(c.total_exec_time, p.total_exec_time, $3),
                   @extschema@.counter_delta(c.total_plan_time, p.total_plan_time, $3),
                   @extschema@.counter_delta(c.rows, p.rows, $3),
                   @extschema@.counter_delta(c.shared_blks_hit, p.shared_blks_hit, $3),
                   @extschema@.counter_delta(c.shared_blks_read, p.shared_blks_read, $3),
                   @extschema@.counter_delta(c.shared_blks_dirtied, p.shared_blks_dirtied, $3),
                   @extschema@.counter_delta(c.shared_blks_written, p.shared_blks_written, $3),
                   @extschema@.counter_delta(c.local_blks_hit, p.local_blks_hit, $3),
                   @extschema@.counter_delta(c.local_blks_read, p.local_blks_read, $3),
                   @extschema@.counter_delta(c.temp_blks_read, p.temp_blks_read, $3),
                   @extschema@.counter_delta(c.temp_blks_written, p.temp_blks_written, $3),
                   @extschema@.counter_delta(c.blk_read_time, p.blk_read_time, $3),
                   @extschema@.counter_delta(c.blk_write_time, p.blk_write_time, $3),
                   @extschema@.counter_delta(c.wal_records, p.wal_records, $3),
                   @extschema@.counter_delta(c.wal_fpi, p.wal_fpi, $3),
                   @extschema@.counter_delta(c.wal_bytes, p.wal_bytes, $3)
              FROM cur c
              LEFT JOIN @extschema@.statement_counters p
                     ON (p.dbid, p.userid, p.queryid, p.toplevel) = (c.dbid, c.userid, c.queryid, c.toplevel)
             WHERE $1 IS NOT NULL AND (p.calls IS DISTINCT FROM c.calls OR $3)
            RETURNING 1
        ), forgotten AS (
            DELETE FROM @extschema@.statement_counters p
             WHERE NOT EXISTS (SELECT FROM cur c WHERE (p.dbid, p.userid, p.queryid, p.toplevel)
                                                     = (c.dbid, c.userid, c.queryid, c.toplevel))
        ), remembered AS (
            INSERT INTO @extschema@.statement_counters AS p
            SELECT c.* FROM cur c
            ON CONFLICT (dbid, userid, queryid, toplevel) DO UPDATE
               SET captured_at = excluded.captured_at, calls = excluded.calls, plans = excluded.plans,
                   total_exec_time = excluded.total_exec_time, total_plan_time = excluded.total_plan_time,
                   rows = excluded.rows, shared_blks_hit = excluded.shared_blks_hit,
                   shared_blks_read = excluded.shared_blks_read,
                   shared_blks_dirtied = excluded.shared_blks_dirtied,
                   shared_blks_written = excluded.shared_blks_written,
                   local_blks_hit = excluded.local_blks_hit, local_blks_read = excluded.local_blks_read,
                   temp_blks_read = excluded.temp_blks_read, temp_blks_written = excluded.temp_blks_written,
                   blk_read_time = excluded.blk_read_time, blk_write_time = excluded.blk_write_time,
                   wal_records = excluded.wal_records, wal_fpi = excluded.wal_fpi,
                   wal_bytes = excluded.wal_bytes
             WHERE p.calls IS DISTINCT FROM excluded.calls OR $3
        )
        SELECT (SELECT pg_catalog.count(*) FROM deltas),
               EXISTS (SELECT FROM cur c
                        WHERE NOT EXISTS (SELECT FROM @extschema@.statements s
                                           WHERE (s.dbid, s.userid, s.queryid, s.toplevel)
                                               = (c.dbid, c.userid, c.queryid, c.toplevel)))$q$,
        pgss_schema)
    INTO written, has_new_entries
    USING previous_snapshot, interval_reset, counters_zeroed;

    -- pg_stat_statements has no per-entry text access: pg_stat_statements(true) reads the whole
    -- text file, so it is called only when some entry has no text stored yet.
    IF has_new_entries THEN
        EXECUTE pg_catalog.format($q$
            INSERT INTO @extschema@.statements (dbid, userid, queryid, toplevel, datname, usename, query)
            SELECT s.dbid, s.userid, s.queryid, s.toplevel, d.datname, r.rolname, s.query
              FROM %I.pg_stat_statements(true) s
              LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
             WHERE s.queryid IS NOT NULL
            ON CONFLICT DO NOTHING$q$, pgss_schema);
    END IF;
    RETURN COALESCE(written, 0);
END
$$;

CREATE OR REPLACE FUNCTION @extschema@._snapshot_bgwriter(previous_snapshot timestamptz,
    interval_reset boolean, counters_zeroed boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET stats_fetch_consistency = snapshot
AS $$
DECLARE
    snapshot_at timestamptz := pg_catalog.now();
    written bigint := 0;
BEGIN
    IF previous_snapshot IS NOT NULL THEN
        INSERT INTO @extschema@.bgwriter_stats
        SELECT previous_snapshot, snapshot_at,
               -- from 17 the views are reset separately (versions.sql): any counter that went back
               interval_reset OR c.buffers_alloc < p.buffers_alloc IS TRUE
                   OR c.checkpoints_timed < p.checkpoints_timed IS TRUE
                   OR c.buffers_checkpoint < p.buffers_checkpoint IS TRUE
                   OR c.buffers_backend < p.buffers_backend IS TRUE,
               @extschema@.counter_delta(c.checkpoints_timed, p.checkpoints_timed, counters_zeroed),
               @extschema@.counter_delta(c.checkpoints_req, p.checkpoints_req, counters_zeroed),
               @extschema@.counter_delta(c.checkpoint_write_time, p.checkpoint_write_time, counters_zeroed),
               @extschema@.counter_delta(c.checkpoint_sync_time, p.checkpoint_sync_time, counters_zeroed),
               @extschema@.counter_delta(c.buffers_checkpoint, p.buffers_checkpoint, counters_zeroed),
               @extschema@.counter_delta(c.buffers_clean, p.buffers_clean, counters_zeroed),
               @extschema@.counter_delta(c.maxwritten_clean, p.maxwritten_clean, counters_zeroed),
               @extschema@.counter_delta(c.buffers_backend, p.buffers_backend, counters_zeroed),
               @extschema@.counter_delta(c.buffers_backend_fsync, p.buffers_backend_fsync, counters_zeroed),
               @extschema@.counter_delta(c.buffers_alloc, p.buffers_alloc, counters_zeroed)
          FROM @extschema@._bgwriter_now() c  -- our names on every server version (versions.sql)
          LEFT JOIN @extschema@.bgwriter_counters p ON true;
        GET DIAGNOSTICS written = ROW_COUNT;
    END IF;

    DELETE FROM @extschema@.bgwriter_counters;
    INSERT INTO @extschema@.bgwriter_counters
    SELECT true, snapshot_at, c.checkpoints_timed, c.checkpoints_req, c.checkpoint_write_time,
           c.checkpoint_sync_time, c.buffers_checkpoint, c.buffers_clean, c.maxwritten_clean,
           c.buffers_backend, c.buffers_backend_fsync, c.buffers_alloc
      FROM @extschema@._bgwriter_now() c;
    RETURN written;
END
$$;

-------------------------------------------------------------------------------
-- N+1 where it happens (issue 20): the executor hooks count runs of one statement after
-- another one (src/histogram/runs.rs); the collector stores them with the latency histograms;
-- query_analysis reports a lookup run once per key of its parent statement, with both.
-------------------------------------------------------------------------------
ALTER TABLE @extschema@.statement_latency
    ADD COLUMN runs bigint, ADD COLUMN run_executions bigint, ADD COLUMN run_max_length bigint,
    ADD COLUMN run_parent_queryid bigint;

CREATE OR REPLACE VIEW @extschema@.analytics_thresholds (name, value, unit, used_by, meaning) AS
VALUES
    ('pool_limit_ratio', 0.9, 'ratio', 'connection_pool_analytics',
     'undersized when peak client connections reach this share of max_connections - superuser_reserved_connections'),
    ('pool_high_utilization', 0.8, 'ratio', 'connection_pool_analytics',
     'high_utilization when active / (active + idle) exceeds this'),
    ('pool_low_utilization', 0.3, 'ratio', 'connection_pool_analytics',
     'oversized when utilization is below this and more than pool_idle_surplus connections sit idle'),
    ('pool_idle_surplus', 10, 'connections', 'connection_pool_analytics',
     'oversized needs more idle connections than this on average'),
    ('pool_growth_buffer', 1.2, 'factor', 'connection_pool_analytics',
     'recommended size of an undersized or busy pool: peak connections times this'),
    ('pool_shrink_buffer', 1.1, 'factor', 'connection_pool_analytics',
     'recommended size of an oversized pool: peak active connections times this'),
    ('index_min_evidence', 604800, 's', 'index_effectiveness',
     'an index is judged unused or rarely used only after being watched this long (collector history or counters since stats_reset)'),
    ('index_rare_scans_per_day', 10, 'scans/day', 'index_effectiveness',
     'rarely_used below this many scans per day'),
    ('index_low_selectivity', 0.3, 'ratio', 'index_effectiveness',
     'low_selectivity when an average scan reads more than this share of the table''s rows'),
    ('index_oversized_ratio', 1.0, 'ratio', 'index_effectiveness',
     'oversized when the index is larger than this multiple of its table (and larger than index_oversized_min_bytes)'),
    ('index_oversized_min_bytes', 8388608, 'bytes', 'index_effectiveness',
     'indexes smaller than this are never called oversized'),
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
     'runs shorter than this, and runs without a parent (a steady stream of one lookup), are not recorded'),
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
    ('dead_tuple_ratio', 0.2, 'ratio', 'table_maintenance',
     'needs_vacuum when dead tuples exceed this share of all tuples (and 1000 tuples)'),
    ('xid_age_warning', 0.5, 'ratio', 'table_maintenance',
     'wraparound_risk when the table''s transaction-ID age passes this share of the 2^31 wraparound horizon'),
    ('sequence_exhaustion', 0.75, 'ratio', 'sequence_usage',
     'a sequence that used more than this share of its range is flagged');

CREATE OR REPLACE FUNCTION @extschema@._n_plus_one(analysis_window interval, totals @extschema@.statement_total[])
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
      FROM args a, @extschema@.statement_latency l
     WHERE l.interval_end > a.since AND l.runs > 0
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
), sampled AS (
    -- what the sampler saw running the lookups and their parents, in the last day of the
    -- window at most: the minute rollups, then the raw samples of the minutes not rolled up yet
    SELECT am.query_id, am.application_name, am.samples
      FROM args a, @extschema@.activity_minute am
     WHERE am.minute > a.sampled_since
       AND am.query_id IN (SELECT l.queryid FROM lookups l UNION ALL SELECT r.queryid FROM run_lookups r
                           UNION ALL SELECT r.parent FROM run_lookups r)
    UNION ALL
    SELECT s.query_id, s.application_name, 1
      FROM args a, @extschema@.activity_samples s
     WHERE s.sampled_at >= GREATEST(a.sampled_since,
                                    (SELECT pg_catalog.max(am.minute) + interval '1 minute'
                                       FROM @extschema@.activity_minute am))
       AND s.query_id IN (SELECT l.queryid FROM lookups l UNION ALL SELECT r.queryid FROM run_lookups r
                          UNION ALL SELECT r.parent FROM run_lookups r)
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
               'application', COALESCE(ap.application, app.application)),
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

-------------------------------------------------------------------------------
-- Dump and restore (issue 12, issue 15 item 7): a pg_dump of a database with dbanalytics
-- restores without errors and with the exact meaning of every row.
-------------------------------------------------------------------------------

-- Indexes move from the partitioned parents to each partition (an index on a parent makes the
-- restore's ATTACH PARTITION create the partition's index before pg_restore creates it again).
CREATE TABLE @extschema@.partition_indexes (
    parent     text NOT NULL,  -- a partitioned table of this schema
    suffix     text NOT NULL,  -- the index of partition p is named p_<suffix>_idx
    definition text NOT NULL,  -- what follows CREATE INDEX ... ON <partition>
    PRIMARY KEY (parent, suffix)
);
INSERT INTO @extschema@.partition_indexes VALUES
    ('activity_raw', 'sampled_at', 'USING brin (sampled_at) WITH (autosummarize = on)'),
    ('connection_samples', 'sampled_at', 'USING brin (sampled_at) WITH (autosummarize = on)'),
    ('lock_waits', 'sampled_at', 'USING brin (sampled_at) WITH (autosummarize = on)'),
    ('activity_minute', 'minute', '(minute)'),
    ('connection_minute', 'minute', '(minute)'),
    ('pool_minute', 'minute', '(minute)'),
    ('statement_stats', 'interval_end', '(interval_end)'),
    ('statement_stats', 'queryid', '(queryid)'),
    ('statement_hourly', 'hour_end', '(hour_end)'),
    ('statement_daily', 'day_end', '(day_end)'),
    ('statement_latency', 'interval_end', '(interval_end)'),
    ('database_latency', 'interval_end', '(interval_end)'),
    ('database_stats', 'interval_end', '(interval_end)'),
    ('table_stats', 'interval_end', '(interval_end)'),
    ('index_stats', 'interval_end', '(interval_end)'),
    ('table_hourly', 'hour_end', '(hour_end)'),
    ('index_hourly', 'hour_end', '(hour_end)'),
    ('collector_runs', 'source_started_at', '(source, started_at)'),
    ('health_history', 'computed_at', '(computed_at)');
GRANT SELECT ON @extschema@.partition_indexes TO dbanalytics_reader;

CREATE FUNCTION @extschema@._index_partition(parent text, partition text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    idx record;
    created integer := 0;
BEGIN
    FOR idx IN SELECT x.suffix, x.definition FROM @extschema@.partition_indexes x
                WHERE x.parent OPERATOR(pg_catalog.=) _index_partition.parent ORDER BY x.suffix LOOP
        IF pg_catalog.to_regclass(pg_catalog.format('@extschema@.%I',
               partition OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) idx.suffix
               OPERATOR(pg_catalog.||) '_idx')) IS NULL THEN
            EXECUTE pg_catalog.format('CREATE INDEX %I ON @extschema@.%I %s',
                partition OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) idx.suffix
                OPERATOR(pg_catalog.||) '_idx', partition, idx.definition);
            created := created OPERATOR(pg_catalog.+) 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._index_partition(text, text) FROM PUBLIC;

-- The parents' indexes go, with the partitions' indexes attached to them; then every partition
-- gets its own, under the same names.
DO $partition_indexes$
DECLARE
    idx pg_catalog.regclass;
    part record;
BEGIN
    FOR idx IN SELECT i.indexrelid::pg_catalog.regclass
                 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid
                WHERE c.relkind OPERATOR(pg_catalog.=) 'p'
                  AND c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace LOOP
        EXECUTE pg_catalog.format('DROP INDEX %s', idx);
    END LOOP;
    FOR part IN SELECT p.relname::text AS parent, c.relname::text AS partition
                  FROM pg_catalog.pg_inherits h
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
                  JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) h.inhparent
                 WHERE p.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
                 ORDER BY 1, 2 LOOP
        PERFORM @extschema@._index_partition(part.parent, part.partition);
    END LOOP;
END
$partition_indexes$;

-- activity_raw rows mean nothing without their keys; identities keep their position.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_keys', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_keys_key_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alerts_alert_id_seq', '');

-- alert_rules: only the rules that differ from the built-in ones are dumped; a restored change
-- of a built-in rule replaces the seeded one; built-in rules are disabled, never deleted.
CREATE FUNCTION @extschema@._builtin_alert_rules()
RETURNS TABLE (rule text, metric text, comparison text, threshold numeric, severity text, description text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ VALUES
    ('slow_queries', 'slow_queries_per_minute', '>', 10, 'medium',
     'more than 10 executions per minute slower than dbanalytics.slow_query_threshold'),
    ('deadlock', 'deadlocks', '>', 0, 'high', 'a deadlock in the last snapshot interval'),
    ('replication_lag', 'replication_lag_seconds', '>', 5, 'high', 'a standby replays more than 5 s behind'),
    ('idle_in_transaction', 'idle_in_transaction_seconds', '>', 300, 'medium',
     'a session idle in a transaction for more than 5 minutes'),
    ('connections_near_limit', 'connections_ratio', '>', 0.9, 'high',
     'client connections above 90 % of max_connections - superuser_reserved_connections'),
    ('xid_wraparound', 'xid_age', '>', 1000000000, 'critical',
     'a database''s oldest unfrozen transaction ID is more than 1 billion transactions old (wraparound at 2^31)'),
    ('health_low', 'health_score', '<', 60, 'high', 'the recorded health score is below 60'),
    ('health_drop', 'health_score_drop', '>', 15, 'medium',
     'the recorded health score fell by more than 15 points within the last hour')
$$;

CREATE FUNCTION @extschema@._alert_rule_as_shipped(r @extschema@.alert_rules)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.enabled AND EXISTS (
        SELECT FROM @extschema@._builtin_alert_rules() b
         WHERE b.rule OPERATOR(pg_catalog.=) r.rule
           AND ROW(b.metric, b.comparison, b.threshold, b.severity, b.description)
               IS NOT DISTINCT FROM ROW(r.metric, r.comparison, r.threshold, r.severity, r.description))
$$;

CREATE FUNCTION @extschema@._alert_rules_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        DELETE FROM @extschema@.alert_rules r
         WHERE r.rule OPERATOR(pg_catalog.=) NEW.rule AND @extschema@._alert_rule_as_shipped(r);
        RETURN NEW;
    END IF;
    -- (the DELETE just above runs at depth 2)
    IF (TG_OP OPERATOR(pg_catalog.=) 'DELETE' OR NEW.rule IS DISTINCT FROM OLD.rule)
       AND pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.=) 1
       AND EXISTS (SELECT FROM @extschema@._builtin_alert_rules() b WHERE b.rule OPERATOR(pg_catalog.=) OLD.rule) THEN
        RAISE EXCEPTION 'dbanalytics: the built-in alert rule "%" cannot be deleted or renamed', OLD.rule
            USING HINT = pg_catalog.format('Disable it instead: UPDATE dbanalytics.alert_rules SET enabled = false WHERE rule = %L;',
                                           OLD.rule);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER alert_rules_guard BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.alert_rules
    FOR EACH ROW EXECUTE FUNCTION @extschema@._alert_rules_guard();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.alert_rules',
    'WHERE NOT @extschema@._alert_rule_as_shipped(alert_rules)');

REVOKE ALL ON FUNCTION @extschema@._builtin_alert_rules(), @extschema@._alert_rule_as_shipped(@extschema@.alert_rules),
    @extschema@._alert_rules_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._builtin_alert_rules(), @extschema@._alert_rule_as_shipped(@extschema@.alert_rules),
    @extschema@._alert_rules_guard() TO dbanalytics_reader;

