-- dbanalytics: counter snapshots, one function per collection source, and the delta rule they
-- share. The Rust collector (src/collect/) decides whether the interval is a reset
-- (src/collect/epoch.rs), runs each source in its own subtransaction and calls
-- _snapshot_source, which keeps the source's state (source_state) and calls its function. Internal:
-- not executable by PUBLIC. The pipeline: sampling.sql (raw samples) -> snapshots.sql (deltas)
-- -> rollups.sql (minutes, hours, days) -> windows.sql (which tier answers a window).

-- The one delta rule. A counter that went down, or an interval whose counters were zeroed,
-- yields the current value (what accumulated since the reset): never a negative delta.
-- Two overloads with the same body so that bigint counters stay exact; both are inlined.
-- Inlined helpers (counter_delta, _ms_before, _ms_before_at, _time_ceil, _time_floor) have no
-- SET search_path, which would stop the planner from inlining them; their bodies are parsed in
-- the calling query's search_path, so every operator in them is written OPERATOR(pg_catalog.x)
-- and every function pg_catalog.x (docs/security.md, pgspot PS005 warnings).
CREATE FUNCTION @extschema@.counter_delta(current_value bigint, previous_value bigint,
                                          counters_zeroed boolean)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN current_value IS NULL THEN 0
        WHEN previous_value IS NULL OR counters_zeroed
             OR current_value OPERATOR(pg_catalog.<) previous_value
            THEN current_value
        ELSE current_value OPERATOR(pg_catalog.-) previous_value
    END
$$;

CREATE FUNCTION @extschema@.counter_delta(current_value double precision,
                                          previous_value double precision,
                                          counters_zeroed boolean)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN current_value IS NULL THEN 0
        WHEN previous_value IS NULL OR counters_zeroed
             OR current_value OPERATOR(pg_catalog.<) previous_value
            THEN current_value
        ELSE current_value OPERATOR(pg_catalog.-) previous_value
    END
$$;

-- Identifies this life of the server: postmaster start (a restart) and the server_life row
-- (gone after a crash restart, which keeps the postmaster start time). Exact epoch seconds as
-- text, so that comparing never depends on a session's TimeZone.
CREATE FUNCTION @extschema@._server_life()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    life_since timestamptz;
BEGIN
    SELECT l.since INTO life_since FROM @extschema@.server_life l;
    IF life_since IS NULL THEN
        INSERT INTO @extschema@.server_life VALUES (true, pg_catalog.clock_timestamp())
        ON CONFLICT DO NOTHING;
        SELECT l.since INTO life_since FROM @extschema@.server_life l;
    END IF;
    RETURN EXTRACT(epoch FROM pg_catalog.pg_postmaster_start_time())::text
           || '/' || EXTRACT(epoch FROM life_since)::text;
END
$$;

-------------------------------------------------------------------------------
-- Collector sources, called by _snapshot_source (below) with the Rust epoch check's verdict:
--   previous_snapshot  end of the previous snapshot of this source (source_state), the start of
--                      every row's interval; NULL = first snapshot: remember the counters, write
--                      no delta
--   interval_reset  mark every row of this interval reset = true
--   counters_zeroed the counters were reset to zero: the delta is the current value
-------------------------------------------------------------------------------

-- A statement text as dbanalytics stores it: texts of utility statements that can carry a
-- secret (a password, a connection string, a user mapping's or server's options) are replaced
-- by a note. pg_stat_statements keeps utility statements verbatim (it replaces constants by $n
-- only in planned statements), so without this a password would sit in the history, in every
-- pg_dump of it and in front of whoever may read texts. The rule is deliberately broad: a
-- redacted text costs a DBA one look at pg_stat_statements; a stored password costs more.
CREATE FUNCTION @extschema@._redact_secrets(query text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- planned statements reach pg_stat_statements with their constants replaced by $n: only
    -- the others (utility statements: CREATE ROLE, DO, ALTER SYSTEM, ...) keep literals
    SELECT CASE
        WHEN query !~* '^[\s(]*(SELECT|INSERT|UPDATE|DELETE|WITH|VALUES|TABLE|MERGE)\M'
         AND (query ~* '\m(password|passwd|pwd|secret|user\s+mapping|subscription|connection|dblink\w*)\M'
              OR query ~* '^\s*(CREATE|ALTER)\s+(SERVER|FOREIGN\s+DATA\s+WRAPPER)\M'
              OR query ~* '^\s*ALTER\s+SYSTEM\M')
        THEN pg_catalog.format('<redacted by dbanalytics: this %s statement may carry a secret; see pg_stat_statements>',
                               pg_catalog.upper(pg_catalog.substring(query, '^\s*(\w+)')))
        ELSE query
    END
$$;

CREATE FUNCTION @extschema@._snapshot_statements(pgss_schema text, previous_snapshot timestamptz,
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
            SELECT s.* FROM @extschema@._statements_now(%1$L) s
        ), deltas AS (
            INSERT INTO @extschema@.statement_stats
                   (interval_start, interval_end, dbid, userid, queryid, toplevel, reset, %4$s)
            SELECT $1, c.captured_at, c.dbid, c.userid, c.queryid, c.toplevel,
                   $2 OR c.calls < p.calls IS TRUE,
                   %2$s
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
               SET captured_at = excluded.captured_at, %3$s
             WHERE p.calls IS DISTINCT FROM excluded.calls OR $3
        )
        SELECT (SELECT pg_catalog.count(*) FROM deltas),
               EXISTS (SELECT FROM cur c
                        WHERE NOT EXISTS (SELECT FROM @extschema@.statements s
                                           WHERE (s.dbid, s.userid, s.queryid, s.toplevel)
                                               = (c.dbid, c.userid, c.queryid, c.toplevel)))$q$,
        pgss_schema,
        -- each counter's delta, and its new value remembered (schema.sql: statement_counter_values)
        @extschema@._statement_counter_list('@extschema@.counter_delta(c.%1$I, p.%1$I, $3)'),
        @extschema@._statement_counter_list('%1$I = excluded.%1$I'),
        @extschema@._statement_counter_list('%1$I'))
    INTO written, has_new_entries
    USING previous_snapshot, interval_reset, counters_zeroed;

    -- pg_stat_statements has no per-entry text access: pg_stat_statements(true) reads the whole
    -- text file, so it is called only when some entry has no text stored yet.
    IF has_new_entries THEN
        EXECUTE pg_catalog.format($q$
            INSERT INTO @extschema@.statements (dbid, userid, queryid, toplevel, datname, usename, query)
            SELECT s.dbid, s.userid, s.queryid, s.toplevel, d.datname, r.rolname,
                   @extschema@._redact_secrets(s.query)
              FROM %I.pg_stat_statements(true) s
              LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
             WHERE s.queryid IS NOT NULL
            ON CONFLICT DO NOTHING$q$, pgss_schema);
    END IF;
    RETURN COALESCE(written, 0);
END
$$;

-- Current values of each cumulative source, as the snapshot functions read them (twice: for
-- the deltas, then to remember them; both reads see one statistics snapshot).
CREATE VIEW @extschema@._database_now AS
    SELECT d.datid, d.datname, d.numbackends, d.stats_reset, d.xact_commit, d.xact_rollback,
           d.blks_read, d.blks_hit, d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated,
           d.tup_deleted, d.conflicts, d.temp_files, d.temp_bytes, d.deadlocks,
           COALESCE(d.checksum_failures, 0) AS checksum_failures, d.blk_read_time,
           d.blk_write_time, d.session_time, d.active_time, d.idle_in_transaction_time,
           d.sessions, d.sessions_abandoned, d.sessions_fatal, d.sessions_killed,
           pg_catalog.pg_database_size(d.datid) AS database_size,
           pg_catalog.age(db.datfrozenxid) AS xid_age
      FROM pg_catalog.pg_stat_database d
      JOIN pg_catalog.pg_database db ON db.oid = d.datid
     WHERE d.datid <> 0 AND db.datallowconn;

CREATE VIEW @extschema@._tables_now AS
    SELECT t.relid, t.schemaname, t.relname,
           t.seq_scan, t.seq_tup_read, COALESCE(t.idx_scan, 0) AS idx_scan,
           COALESCE(t.idx_tup_fetch, 0) AS idx_tup_fetch, t.n_tup_ins, t.n_tup_upd, t.n_tup_del,
           t.n_tup_hot_upd, t.vacuum_count, t.autovacuum_count, t.analyze_count,
           t.autoanalyze_count, COALESCE(io.heap_blks_read, 0) AS heap_blks_read,
           COALESCE(io.heap_blks_hit, 0) AS heap_blks_hit, t.n_live_tup, t.n_dead_tup,
           t.n_mod_since_analyze, t.last_vacuum, t.last_autovacuum, t.last_analyze,
           t.last_autoanalyze, @extschema@._relation_size_nowait(t.relid, true) AS table_size,
           pg_catalog.age(cl.relfrozenxid) AS frozenxid_age
      FROM pg_catalog.pg_stat_user_tables t
      JOIN pg_catalog.pg_class cl ON cl.oid = t.relid
      LEFT JOIN pg_catalog.pg_statio_user_tables io ON io.relid = t.relid
     WHERE t.schemaname <> '@extschema@';

CREATE VIEW @extschema@._indexes_now AS
    SELECT i.indexrelid, i.relid, i.schemaname, i.relname, i.indexrelname,
           i.idx_scan, i.idx_tup_read, i.idx_tup_fetch,
           COALESCE(io.idx_blks_read, 0) AS idx_blks_read,
           COALESCE(io.idx_blks_hit, 0) AS idx_blks_hit,
           @extschema@._relation_size_nowait(i.indexrelid, false) AS index_size,
           COALESCE(seen.first_seen, pg_catalog.now()) AS first_seen
      FROM pg_catalog.pg_stat_user_indexes i
      LEFT JOIN pg_catalog.pg_statio_user_indexes io ON io.indexrelid = i.indexrelid
      LEFT JOIN @extschema@.index_counters seen ON seen.indexrelid = i.indexrelid
     WHERE i.schemaname <> '@extschema@';

CREATE FUNCTION @extschema@._snapshot_databases(previous_snapshot timestamptz,
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
        INSERT INTO @extschema@.database_stats
        SELECT previous_snapshot, snapshot_at, c.datid, c.datname, z.reset,
               c.numbackends,
               @extschema@.counter_delta(c.xact_commit, p.xact_commit, z.zeroed),
               @extschema@.counter_delta(c.xact_rollback, p.xact_rollback, z.zeroed),
               @extschema@.counter_delta(c.blks_read, p.blks_read, z.zeroed),
               @extschema@.counter_delta(c.blks_hit, p.blks_hit, z.zeroed),
               @extschema@.counter_delta(c.tup_returned, p.tup_returned, z.zeroed),
               @extschema@.counter_delta(c.tup_fetched, p.tup_fetched, z.zeroed),
               @extschema@.counter_delta(c.tup_inserted, p.tup_inserted, z.zeroed),
               @extschema@.counter_delta(c.tup_updated, p.tup_updated, z.zeroed),
               @extschema@.counter_delta(c.tup_deleted, p.tup_deleted, z.zeroed),
               @extschema@.counter_delta(c.conflicts, p.conflicts, z.zeroed),
               @extschema@.counter_delta(c.temp_files, p.temp_files, z.zeroed),
               @extschema@.counter_delta(c.temp_bytes, p.temp_bytes, z.zeroed),
               @extschema@.counter_delta(c.deadlocks, p.deadlocks, z.zeroed),
               @extschema@.counter_delta(c.checksum_failures, p.checksum_failures, z.zeroed),
               @extschema@.counter_delta(c.blk_read_time, p.blk_read_time, z.zeroed),
               @extschema@.counter_delta(c.blk_write_time, p.blk_write_time, z.zeroed),
               @extschema@.counter_delta(c.session_time, p.session_time, z.zeroed),
               @extschema@.counter_delta(c.active_time, p.active_time, z.zeroed),
               @extschema@.counter_delta(c.idle_in_transaction_time, p.idle_in_transaction_time, z.zeroed),
               @extschema@.counter_delta(c.sessions, p.sessions, z.zeroed),
               @extschema@.counter_delta(c.sessions_abandoned, p.sessions_abandoned, z.zeroed),
               @extschema@.counter_delta(c.sessions_fatal, p.sessions_fatal, z.zeroed),
               @extschema@.counter_delta(c.sessions_killed, p.sessions_killed, z.zeroed),
               c.database_size, c.xid_age, COALESCE(st.calls, 0), COALESCE(st.exec_ms, 0),
               COALESCE(st.slow, 0)
          FROM @extschema@._database_now c
          LEFT JOIN @extschema@.database_counters p ON p.datid = c.datid
          -- the statements source of this snapshot ran first, in this transaction
          LEFT JOIN (SELECT s.dbid, pg_catalog.sum(s.calls)::bigint AS calls,
                            pg_catalog.sum(s.total_exec_time) AS exec_ms,
                            pg_catalog.count(*) FILTER (WHERE s.total_exec_time > b.slow_ms * s.calls)::integer AS slow
                       FROM @extschema@.statement_stats s, (SELECT @extschema@._slow_query_ms() AS slow_ms) b
                      WHERE s.interval_end = snapshot_at AND s.toplevel AND s.calls > 0
                      GROUP BY s.dbid) st ON st.dbid = c.datid
         CROSS JOIN LATERAL (
               -- a changed stats_reset marks the row as a reset but zeroes nothing by itself: on
               -- 15, resetting one table's counters moves its database's stats_reset too while
               -- the database's own counters go on; each counter that went down says so itself
               SELECT counters_zeroed AS zeroed,
                      interval_reset
                      OR (p.datid IS NOT NULL AND p.stats_reset IS DISTINCT FROM c.stats_reset)
                      OR c.xact_commit < p.xact_commit IS TRUE AS reset) z;
        GET DIAGNOSTICS written = ROW_COUNT;
    END IF;

    DELETE FROM @extschema@.database_counters;
    INSERT INTO @extschema@.database_counters
    SELECT c.datid, snapshot_at, c.stats_reset, c.xact_commit, c.xact_rollback, c.blks_read,
           c.blks_hit, c.tup_returned, c.tup_fetched, c.tup_inserted, c.tup_updated,
           c.tup_deleted, c.conflicts, c.temp_files, c.temp_bytes, c.deadlocks,
           c.checksum_failures, c.blk_read_time, c.blk_write_time, c.session_time,
           c.active_time, c.idle_in_transaction_time, c.sessions, c.sessions_abandoned,
           c.sessions_fatal, c.sessions_killed
      FROM @extschema@._database_now c;
    RETURN written;
END
$$;

CREATE FUNCTION @extschema@._snapshot_tables(previous_snapshot timestamptz,
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
        INSERT INTO @extschema@.table_stats
        SELECT previous_snapshot, snapshot_at, pg_catalog.current_database(),
               c.relid, c.schemaname, c.relname,
               interval_reset OR c.seq_scan < p.seq_scan IS TRUE OR c.idx_scan < p.idx_scan IS TRUE
                   OR c.n_tup_ins < p.n_tup_ins IS TRUE,
               @extschema@.counter_delta(c.seq_scan, p.seq_scan, counters_zeroed),
               @extschema@.counter_delta(c.seq_tup_read, p.seq_tup_read, counters_zeroed),
               @extschema@.counter_delta(c.idx_scan, p.idx_scan, counters_zeroed),
               @extschema@.counter_delta(c.idx_tup_fetch, p.idx_tup_fetch, counters_zeroed),
               @extschema@.counter_delta(c.n_tup_ins, p.n_tup_ins, counters_zeroed),
               @extschema@.counter_delta(c.n_tup_upd, p.n_tup_upd, counters_zeroed),
               @extschema@.counter_delta(c.n_tup_del, p.n_tup_del, counters_zeroed),
               @extschema@.counter_delta(c.n_tup_hot_upd, p.n_tup_hot_upd, counters_zeroed),
               @extschema@.counter_delta(c.vacuum_count, p.vacuum_count, counters_zeroed),
               @extschema@.counter_delta(c.autovacuum_count, p.autovacuum_count, counters_zeroed),
               @extschema@.counter_delta(c.analyze_count, p.analyze_count, counters_zeroed),
               @extschema@.counter_delta(c.autoanalyze_count, p.autoanalyze_count, counters_zeroed),
               @extschema@.counter_delta(c.heap_blks_read, p.heap_blks_read, counters_zeroed),
               @extschema@.counter_delta(c.heap_blks_hit, p.heap_blks_hit, counters_zeroed),
               c.n_live_tup, c.n_dead_tup, c.n_mod_since_analyze, c.last_vacuum,
               c.last_autovacuum, c.last_analyze, c.last_autoanalyze, c.table_size,
               c.frozenxid_age
          FROM @extschema@._tables_now c
          LEFT JOIN @extschema@.table_counters p ON p.relid = c.relid
         -- a row only when something moved: an idle table costs nothing
         WHERE counters_zeroed OR p.relid IS NULL
            OR (c.seq_scan, c.idx_scan, c.n_tup_ins, c.n_tup_upd, c.n_tup_del, c.vacuum_count,
                c.autovacuum_count, c.analyze_count, c.autoanalyze_count, c.heap_blks_read,
                c.heap_blks_hit, c.n_live_tup, c.n_dead_tup, c.table_size)
               IS DISTINCT FROM
               (p.seq_scan, p.idx_scan, p.n_tup_ins, p.n_tup_upd, p.n_tup_del, p.vacuum_count,
                p.autovacuum_count, p.analyze_count, p.autoanalyze_count, p.heap_blks_read,
                p.heap_blks_hit, p.n_live_tup, p.n_dead_tup, p.table_size);
        GET DIAGNOSTICS written = ROW_COUNT;
    END IF;

    DELETE FROM @extschema@.table_counters;
    INSERT INTO @extschema@.table_counters
    SELECT c.relid, snapshot_at, c.seq_scan, c.seq_tup_read, c.idx_scan, c.idx_tup_fetch,
           c.n_tup_ins, c.n_tup_upd, c.n_tup_del, c.n_tup_hot_upd, c.vacuum_count,
           c.autovacuum_count, c.analyze_count, c.autoanalyze_count, c.heap_blks_read,
           c.heap_blks_hit, c.n_live_tup, c.n_dead_tup, c.table_size
      FROM @extschema@._tables_now c;
    RETURN written;
END
$$;

CREATE FUNCTION @extschema@._snapshot_indexes(previous_snapshot timestamptz,
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
        INSERT INTO @extschema@.index_stats
        SELECT previous_snapshot, snapshot_at, pg_catalog.current_database(),
               c.indexrelid, c.relid, c.schemaname, c.relname, c.indexrelname,
               interval_reset OR c.idx_scan < p.idx_scan IS TRUE,
               @extschema@.counter_delta(c.idx_scan, p.idx_scan, counters_zeroed),
               @extschema@.counter_delta(c.idx_tup_read, p.idx_tup_read, counters_zeroed),
               @extschema@.counter_delta(c.idx_tup_fetch, p.idx_tup_fetch, counters_zeroed),
               @extschema@.counter_delta(c.idx_blks_read, p.idx_blks_read, counters_zeroed),
               @extschema@.counter_delta(c.idx_blks_hit, p.idx_blks_hit, counters_zeroed),
               c.index_size
          FROM @extschema@._indexes_now c
          LEFT JOIN @extschema@.index_counters p ON p.indexrelid = c.indexrelid
         WHERE counters_zeroed OR p.indexrelid IS NULL
            OR (c.idx_scan, c.idx_tup_read, c.idx_blks_read, c.idx_blks_hit, c.index_size)
               IS DISTINCT FROM
               (p.idx_scan, p.idx_tup_read, p.idx_blks_read, p.idx_blks_hit, p.index_size);
        GET DIAGNOSTICS written = ROW_COUNT;
    END IF;

    -- upsert, not replace: first_seen must survive (it is the evidence for "unused")
    DELETE FROM @extschema@.index_counters k
     WHERE NOT EXISTS (SELECT FROM @extschema@._indexes_now c WHERE c.indexrelid = k.indexrelid);
    INSERT INTO @extschema@.index_counters AS k
    SELECT c.indexrelid, snapshot_at, c.first_seen, c.idx_scan, c.idx_tup_read, c.idx_tup_fetch,
           c.idx_blks_read, c.idx_blks_hit, c.index_size
      FROM @extschema@._indexes_now c
    ON CONFLICT (indexrelid) DO UPDATE
       SET captured_at = excluded.captured_at, idx_scan = excluded.idx_scan,
           idx_tup_read = excluded.idx_tup_read, idx_tup_fetch = excluded.idx_tup_fetch,
           idx_blks_read = excluded.idx_blks_read, idx_blks_hit = excluded.idx_blks_hit,
           index_size = excluded.index_size;
    RETURN written;
END
$$;

CREATE FUNCTION @extschema@._snapshot_bgwriter(previous_snapshot timestamptz,
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

-- pg_stat_io deltas (16+; the collector skips the source before, _source_unavailable()): one
-- row per backend type, object and context that did any I/O in the interval.
CREATE FUNCTION @extschema@._snapshot_io(previous_snapshot timestamptz,
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
        INSERT INTO @extschema@.io_stats
        SELECT d.*
          FROM @extschema@._io_now() c  -- our names on every server version (versions.sql)
          LEFT JOIN @extschema@.io_counters p
                 ON (p.backend_type, p.object, p.context)
                    OPERATOR(pg_catalog.=) (c.backend_type, c.object, c.context)
         CROSS JOIN LATERAL (SELECT
               previous_snapshot AS interval_start, snapshot_at AS interval_end,
               interval_reset OR c.reads < p.reads IS TRUE OR c.writes < p.writes IS TRUE
                   OR c.hits < p.hits IS TRUE OR c.extends < p.extends IS TRUE AS reset,
               c.backend_type, c.object, c.context,
               @extschema@.counter_delta(c.reads, p.reads, counters_zeroed) AS reads,
               @extschema@.counter_delta(c.read_bytes, p.read_bytes, counters_zeroed) AS read_bytes,
               @extschema@.counter_delta(c.read_time, p.read_time, counters_zeroed) AS read_time,
               @extschema@.counter_delta(c.writes, p.writes, counters_zeroed) AS writes,
               @extschema@.counter_delta(c.write_bytes, p.write_bytes, counters_zeroed) AS write_bytes,
               @extschema@.counter_delta(c.write_time, p.write_time, counters_zeroed) AS write_time,
               @extschema@.counter_delta(c.writebacks, p.writebacks, counters_zeroed) AS writebacks,
               @extschema@.counter_delta(c.writeback_time, p.writeback_time, counters_zeroed) AS writeback_time,
               @extschema@.counter_delta(c.extends, p.extends, counters_zeroed) AS extends,
               @extschema@.counter_delta(c.extend_bytes, p.extend_bytes, counters_zeroed) AS extend_bytes,
               @extschema@.counter_delta(c.extend_time, p.extend_time, counters_zeroed) AS extend_time,
               @extschema@.counter_delta(c.hits, p.hits, counters_zeroed) AS hits,
               @extschema@.counter_delta(c.evictions, p.evictions, counters_zeroed) AS evictions,
               @extschema@.counter_delta(c.reuses, p.reuses, counters_zeroed) AS reuses,
               @extschema@.counter_delta(c.fsyncs, p.fsyncs, counters_zeroed) AS fsyncs,
               @extschema@.counter_delta(c.fsync_time, p.fsync_time, counters_zeroed) AS fsync_time) d
         WHERE (d.reads, d.writes, d.writebacks, d.extends, d.hits, d.evictions, d.reuses, d.fsyncs)
               OPERATOR(pg_catalog.<>) (0, 0, 0, 0, 0, 0, 0, 0);
        GET DIAGNOSTICS written = ROW_COUNT;
    END IF;

    DELETE FROM @extschema@.io_counters;
    INSERT INTO @extschema@.io_counters SELECT * FROM @extschema@._io_now();
    RETURN written;
END
$$;

-- Gauges: the interval is the time since the previous snapshot of the same source.
CREATE FUNCTION @extschema@._snapshot_replication(previous_snapshot timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written bigint;
BEGIN
    INSERT INTO @extschema@.replication_stats
    SELECT COALESCE(previous_snapshot, pg_catalog.now()), pg_catalog.now(), r.pid, r.usename, r.application_name, r.client_addr,
           r.state, r.sync_state, r.sent_lsn, r.write_lsn, r.flush_lsn, r.replay_lsn,
           EXTRACT(epoch FROM r.write_lag), EXTRACT(epoch FROM r.flush_lag),
           EXTRACT(epoch FROM r.replay_lag),
           pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)::bigint
      FROM pg_catalog.pg_stat_replication r;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

CREATE FUNCTION @extschema@._snapshot_replication_slots(previous_snapshot timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written bigint;
BEGIN
    INSERT INTO @extschema@.replication_slot_stats
    SELECT COALESCE(previous_snapshot, pg_catalog.now()), pg_catalog.now(), s.slot_name, s.slot_type, s.database, s.active,
           s.wal_status, s.restart_lsn, s.confirmed_flush_lsn,
           pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint,
           s.safe_wal_size
      FROM pg_catalog.pg_replication_slots s;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- The server and its host now (_server_now()) and the WAL position: one row of server_stats.
CREATE FUNCTION @extschema@._snapshot_server()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written bigint;
BEGIN
    INSERT INTO @extschema@.server_stats
        (interval_end, next_xid, next_multixact, wal_lsn, disk_used_bytes, disk_available_bytes,
         wal_disk_used_bytes, wal_disk_available_bytes, host_status, boot_time, cpus, cpu_user_seconds,
         cpu_system_seconds, cpu_iowait_seconds, cpu_idle_seconds, cpu_other_seconds, mem_total_bytes,
         mem_available_bytes, load1, disk_read_bytes, disk_write_bytes)
    SELECT pg_catalog.now(), s.next_xid, s.next_multixact,
           CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                ELSE pg_catalog.pg_current_wal_lsn() END,
           s.disk_used_bytes, s.disk_available_bytes, s.wal_disk_used_bytes, s.wal_disk_available_bytes,
           s.host_status, s.boot_time, s.cpus, s.cpu_user_seconds, s.cpu_system_seconds, s.cpu_iowait_seconds,
           s.cpu_idle_seconds, s.cpu_other_seconds, s.mem_total_bytes, s.mem_available_bytes, s.load1,
           s.disk_read_bytes, s.disk_write_bytes
      FROM @extschema@._server_now() s;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- Stores the epoch a source's counters were read in (src/collect/epoch.rs), with this snapshot's
-- time: the next snapshot of the source starts its interval there.
CREATE FUNCTION @extschema@._remember_epoch(source text, server_life text, stats_reset text, dealloc bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO @extschema@.source_state AS s (source, server_life, stats_reset, dealloc, updated_at)
    VALUES (source, server_life, stats_reset, dealloc, pg_catalog.now())
    ON CONFLICT (source) DO UPDATE
       SET server_life = excluded.server_life, stats_reset = excluded.stats_reset,
           dealloc = excluded.dealloc, updated_at = excluded.updated_at
$$;

-- One counter source's snapshot with its state kept here: the interval starts at the source's
-- previous snapshot (source_state; NULL the first time), its rows are written by the source's
-- _snapshot_* function with the collector's verdict on it (interval_reset, counters_zeroed:
-- src/collect/epoch.rs), and the epoch the counters were read in is stored for the next one.
-- pgss_schema: where pg_stat_statements is installed (statements only). Returns the rows written.
CREATE FUNCTION @extschema@._snapshot_source(source text, interval_reset boolean, counters_zeroed boolean,
                                             server_life text, stats_reset text, dealloc bigint,
                                             pgss_schema text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous_snapshot timestamptz;
    written bigint;
BEGIN
    SELECT s.updated_at INTO previous_snapshot
      FROM @extschema@.source_state s WHERE s.source OPERATOR(pg_catalog.=) _snapshot_source.source;
    written := CASE source
        WHEN 'statements' THEN @extschema@._snapshot_statements(pgss_schema, previous_snapshot, interval_reset, counters_zeroed)
        WHEN 'databases' THEN @extschema@._snapshot_databases(previous_snapshot, interval_reset, counters_zeroed)
        WHEN 'tables' THEN @extschema@._snapshot_tables(previous_snapshot, interval_reset, counters_zeroed)
        WHEN 'indexes' THEN @extschema@._snapshot_indexes(previous_snapshot, interval_reset, counters_zeroed)
        WHEN 'bgwriter' THEN @extschema@._snapshot_bgwriter(previous_snapshot, interval_reset, counters_zeroed)
        WHEN 'io' THEN @extschema@._snapshot_io(previous_snapshot, interval_reset, counters_zeroed)
        WHEN 'replication' THEN @extschema@._snapshot_replication(previous_snapshot)
        WHEN 'replication_slots' THEN @extschema@._snapshot_replication_slots(previous_snapshot)
    END;
    IF written IS NULL THEN
        RAISE EXCEPTION 'dbanalytics: % is not a counter source', pg_catalog.quote_literal(source)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The counter sources are statements, databases, tables, indexes, bgwriter, io, replication and replication_slots.';
    END IF;
    PERFORM @extschema@._remember_epoch(source, server_life, stats_reset, dealloc);
    RETURN written;
END
$$;
