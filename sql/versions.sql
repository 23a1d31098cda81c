-- dbanalytics: the one place that knows how the statistics views differ between PostgreSQL
-- and pg_stat_statements versions (docs/versions.md). Each function reads the server's view
-- with the column names that version has and returns dbanalytics' own, stable names (the
-- columns of the source's *_counters table); the collection functions in snapshots.sql and the
-- epoch queries in src/collect/ read only these. A column a server does not have is NULL here.
--
-- Branches are chosen at run time from server_version_num or the installed
-- pg_stat_statements version: PL/pgSQL plans a statement only when it first runs, so a branch
-- naming a view of another version is never planned on this server.

-- pg_stat_statements counters, by pg_stat_statements version:
--   toplevel          1.9+ (PostgreSQL 14); before: true (only top-level statements are tracked)
--   blk_read_time     1.11+ (PostgreSQL 17): shared_blk_read_time; before: blk_read_time
--   blk_write_time    1.11+: shared_blk_write_time; before: blk_write_time
-- Every other counter has kept its name since 1.8 (PostgreSQL 13).
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
    -- the view's row under our names: the renamed columns aliased, then every counter of
    -- statement_counter_values (schema.sql) by name, cast to our type
    RETURN QUERY EXECUTE pg_catalog.format($q$
        SELECT s.dbid, s.userid, s.queryid, s.toplevel, pg_catalog.now(), %s
          FROM (SELECT p.* %s FROM %I.pg_stat_statements(false) p) s
         WHERE s.queryid IS NOT NULL$q$,
        @extschema@._statement_counter_list('s.%1$I::%2$s'),
        CASE WHEN version < '{1,9}' THEN ', true AS toplevel' ELSE '' END
        || CASE WHEN version >= '{1,11}'
                THEN ', p.shared_blk_read_time AS blk_read_time, p.shared_blk_write_time AS blk_write_time'
                ELSE '' END,
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

-- Why a source cannot run on this server (NULL when it can): the collector skips it and
-- collector_status shows the reason.
CREATE FUNCTION @extschema@._source_unavailable(source text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN source OPERATOR(pg_catalog.=) 'io'
         AND pg_catalog.current_setting('server_version_num')::integer OPERATOR(pg_catalog.<) 160000
        THEN pg_catalog.format('pg_stat_io needs PostgreSQL 16 or later (this server runs %s)',
                               pg_catalog.current_setting('server_version'))
    END
$$;

-- pg_stat_io (16+), one row per backend type, object and context:
--   read_bytes, write_bytes, extend_bytes   18+: the view's own; 16-17: reads, writes, extends
--                                           times op_bytes (removed in 18)
--   every other counter                     same name on 16, 17 and 18
-- NULL counters (an operation that does not happen in a context) stay NULL here. No rows
-- before 16.
CREATE FUNCTION @extschema@._io_now()
RETURNS SETOF @extschema@.io_counters
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer < 160000 THEN
        RETURN;
    ELSIF pg_catalog.current_setting('server_version_num')::integer >= 180000 THEN
        RETURN QUERY
        SELECT i.backend_type, i.object, i.context, pg_catalog.now(),
               i.reads, i.read_bytes::bigint, i.read_time, i.writes, i.write_bytes::bigint,
               i.write_time, i.writebacks, i.writeback_time, i.extends, i.extend_bytes::bigint,
               i.extend_time, i.hits, i.evictions, i.reuses, i.fsyncs, i.fsync_time
          FROM pg_catalog.pg_stat_io i;
    ELSE
        RETURN QUERY
        SELECT i.backend_type, i.object, i.context, pg_catalog.now(),
               i.reads, i.reads OPERATOR(pg_catalog.*) i.op_bytes, i.read_time,
               i.writes, i.writes OPERATOR(pg_catalog.*) i.op_bytes, i.write_time,
               i.writebacks, i.writeback_time,
               i.extends, i.extends OPERATOR(pg_catalog.*) i.op_bytes, i.extend_time,
               i.hits, i.evictions, i.reuses, i.fsyncs, i.fsync_time
          FROM pg_catalog.pg_stat_io i;
    END IF;
END
$$;

-- The io source's epoch: pg_stat_reset_shared('io') zeroes every row of pg_stat_io and sets
-- one stats_reset for all of them. NULL before 16.
CREATE FUNCTION @extschema@._io_epoch()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer < 160000 THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT EXTRACT(epoch FROM pg_catalog.max(i.stats_reset))::text FROM pg_catalog.pg_stat_io i);
END
$$;
