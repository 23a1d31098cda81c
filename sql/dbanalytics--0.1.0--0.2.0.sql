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
