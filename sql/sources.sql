-- dbanalytics: one function per collection source. They are called by the Rust collector
-- (src/collect/), which decides whether the interval is a reset (src/collect/epoch.rs) and runs
-- each source in its own subtransaction. Internal: not executable by PUBLIC.

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
-- Sampler: one read of pg_stat_activity, one INSERT per table.
-------------------------------------------------------------------------------
CREATE TYPE @extschema@.backend_sample AS (
    pid integer, datname text, usename text, application_name text, client_addr inet,
    state text, wait_event_type text, wait_event text, query_id bigint,
    xact_start timestamptz, query_start timestamptz, state_change timestamptz,
    backend_xid_age integer
);

-- How long before sampled_at a time was, as activity_raw stores it in an integer: milliseconds
-- up to 2^31 - 1 (about 24.8 days); beyond, minus the whole seconds (up to 68 years); 0 for a
-- time after the sample; NULL stays NULL. _ms_before_at() turns it back into the time.
CREATE FUNCTION @extschema@._ms_before(sampled_at timestamptz, earlier timestamptz)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- one expression (no FROM), so that the planner inlines it: the sampler calls it three
    -- times per sampled backend
    SELECT CASE WHEN earlier IS NULL THEN NULL
                WHEN (sampled_at OPERATOR(pg_catalog.-) earlier)
                     OPERATOR(pg_catalog.<=) interval '2147483647 milliseconds'
                THEN GREATEST(pg_catalog.round(EXTRACT(epoch FROM sampled_at OPERATOR(pg_catalog.-) earlier)
                                               OPERATOR(pg_catalog.*) 1000), 0)::integer
                ELSE (OPERATOR(pg_catalog.-) LEAST(pg_catalog.floor(EXTRACT(epoch FROM sampled_at OPERATOR(pg_catalog.-) earlier)),
                                                  2147483647))::integer END
$$;

CREATE FUNCTION @extschema@._ms_before_at(sampled_at timestamptz, ms_before integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE  -- as timestamptz - interval: so that it is inlined
AS $$
    SELECT CASE WHEN ms_before OPERATOR(pg_catalog.>=) 0
                THEN sampled_at OPERATOR(pg_catalog.-) (ms_before OPERATOR(pg_catalog.*) interval '1 millisecond')
                ELSE sampled_at OPERATOR(pg_catalog.+) (ms_before OPERATOR(pg_catalog.*) interval '1 second') END
$$;

-- Keys no activity_raw row refers to. The retention source calls it before it drops raw
-- partitions (keys of the dropped day go at the next drop). The lock makes a sampler that is
-- about to use a key wait, and the DELETE sees what it wrote; samplers take activity_keys before
-- activity_raw, and so does this, so the two never wait on each other in a circle.
CREATE FUNCTION @extschema@._prune_activity_keys()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    LOCK TABLE @extschema@.activity_keys IN SHARE ROW EXCLUSIVE MODE;
    -- the distinct keys in use: a hash of a few hundred ids, not of every sample
    DELETE FROM @extschema@.activity_keys k
     WHERE k.key_id <> ALL (ARRAY(SELECT DISTINCT r.key_id FROM @extschema@.activity_raw r));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE FUNCTION @extschema@._sample_activity(track_idle_in_transaction boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sampled_at timestamptz := pg_catalog.now();
    backends @extschema@.backend_sample[];
    written bigint := 0;
    n bigint;
BEGIN
    SELECT pg_catalog.array_agg(ROW(a.pid, a.datname, a.usename, a.application_name,
               a.client_addr, a.state, a.wait_event_type, a.wait_event, a.query_id,
               a.xact_start, a.query_start, a.state_change,
               pg_catalog.age(a.backend_xid))::@extschema@.backend_sample)
      INTO backends
      FROM pg_catalog.pg_stat_activity a
     WHERE a.backend_type = 'client backend'
       AND a.pid <> pg_catalog.pg_backend_pid();

    IF backends IS NULL THEN
        -- no client backend at all: one row with backends = 0 keeps the tick countable
        INSERT INTO @extschema@.connection_samples VALUES (sampled_at, NULL, NULL, NULL, NULL, 0, 0);
        RETURN 1;
    END IF;

    -- activity_keys before activity_raw, always (see _prune_activity_keys)
    LOCK TABLE @extschema@.activity_keys IN ROW EXCLUSIVE MODE;
    -- the non-idle backends, each with the key of what describes it (new keys added first)
    WITH sampled AS MATERIALIZED (
        SELECT b.*, ROW(b.datname, b.usename, b.application_name, b.client_addr, b.state,
                        b.wait_event_type, b.wait_event)::text AS descriptor
          FROM pg_catalog.unnest(backends) b
         WHERE b.state IS DISTINCT FROM 'idle'
           AND (track_idle_in_transaction OR b.state IS NULL OR b.state NOT LIKE 'idle in transaction%')
    ), new_keys AS (
        -- DO UPDATE (not NOTHING): a key another sampler adds concurrently is returned too
        INSERT INTO @extschema@.activity_keys AS k (descriptor, datname, usename, application_name, client_addr,
                                                    state, wait_event_type, wait_event)
        SELECT DISTINCT ON (s.descriptor) s.descriptor, s.datname, s.usename, s.application_name, s.client_addr,
               s.state, s.wait_event_type, s.wait_event
          FROM sampled s
         WHERE NOT EXISTS (SELECT FROM @extschema@.activity_keys k WHERE k.descriptor = s.descriptor)
        ON CONFLICT (descriptor) DO UPDATE SET descriptor = excluded.descriptor
        RETURNING k.key_id, k.descriptor
    ), keys AS (
        SELECT n.key_id, n.descriptor FROM new_keys n
        UNION ALL
        SELECT k.key_id, k.descriptor FROM @extschema@.activity_keys k
         WHERE k.descriptor IN (SELECT s.descriptor FROM sampled s)
    )
    INSERT INTO @extschema@.activity_raw
    SELECT sampled_at, s.pid, k.key_id, s.query_id,
           @extschema@._ms_before(sampled_at, s.xact_start), @extschema@._ms_before(sampled_at, s.query_start),
           @extschema@._ms_before(sampled_at, s.state_change), s.backend_xid_age
      FROM sampled s JOIN keys k USING (descriptor);
    GET DIAGNOSTICS n = ROW_COUNT;
    written := written + n;

    INSERT INTO @extschema@.connection_samples
    SELECT sampled_at, b.datname, b.usename, b.application_name, b.state,
           pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE b.wait_event_type = 'Lock')
      FROM pg_catalog.unnest(backends) b
     GROUP BY b.datname, b.usename, b.application_name, b.state;
    GET DIAGNOSTICS n = ROW_COUNT;
    written := written + n;

    -- pg_locks and pg_blocking_pids take every lock-manager partition lock: only when someone waits.
    IF EXISTS (SELECT FROM pg_catalog.unnest(backends) b WHERE b.wait_event_type = 'Lock') THEN
        -- the waiters, then the client sessions that block them without waiting themselves
        -- (the heads of the blocking chains), so that chains never need the activity samples
        WITH waiters AS MATERIALIZED (
            SELECT sampled_at, b.pid, b.datname, b.usename, b.application_name, b.state, b.query_id,
                   l.locktype, l.mode, n.nspname, c.relname,
                   pg_catalog.pg_blocking_pids(b.pid) AS blocking_pids, l.waitstart, b.xact_start, l.relation
              FROM pg_catalog.unnest(backends) b
              LEFT JOIN pg_catalog.pg_locks l ON l.pid = b.pid AND NOT l.granted
              -- names come from this database's catalog: only for locks in it (or shared relations)
              LEFT JOIN pg_catalog.pg_class c ON c.oid = l.relation
                    AND (l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                        WHERE d.datname = pg_catalog.current_database())
                         OR l.database = 0)
              LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE b.wait_event_type = 'Lock'
        ), written_waiters AS (
            INSERT INTO @extschema@.lock_waits SELECT w.*, true FROM waiters w RETURNING 1
        ), written_holders AS (
            INSERT INTO @extschema@.lock_waits
            SELECT sampled_at, b.pid, b.datname, b.usename, b.application_name, b.state, b.query_id,
                   NULL, NULL, NULL, NULL, '{}', NULL, b.xact_start, NULL, false
              FROM pg_catalog.unnest(backends) b
             WHERE b.wait_event_type IS DISTINCT FROM 'Lock'
               AND b.pid IN (SELECT pg_catalog.unnest(w.blocking_pids) FROM waiters w)
            RETURNING 1
        )
        SELECT (SELECT pg_catalog.count(*) FROM written_waiters) + (SELECT pg_catalog.count(*) FROM written_holders)
          INTO n;
        written := written + n;
    END IF;
    RETURN written;
END
$$;

-------------------------------------------------------------------------------
-- Collector sources. Arguments decided by the Rust epoch check:
--   previous_snapshot  end of the previous snapshot of this source, the start of every row's
--                      interval; NULL = first snapshot: remember the counters, write no delta
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

-- Minute rollups of completed minutes since the last rollup. The newest minute is left
-- alone until a few seconds after it ends, so a sample committed late is still counted.
CREATE FUNCTION @extschema@._rollup_minutes(rolled_until timestamptz)
RETURNS TABLE (rows_written bigint, new_rolled_until timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- group in memory: no temporary file
AS $$
DECLARE
    upper_bound timestamptz := pg_catalog.date_trunc('minute', pg_catalog.now() - interval '5 seconds');
    lower_bound timestamptz := rolled_until;
    n bigint;
BEGIN
    rows_written := 0;
    IF lower_bound IS NULL THEN
        SELECT pg_catalog.date_trunc('minute', pg_catalog.min(a.sampled_at))
          INTO lower_bound FROM @extschema@.connection_samples a;
    END IF;
    IF lower_bound IS NULL OR lower_bound >= upper_bound THEN
        new_rolled_until := COALESCE(rolled_until, upper_bound);
        RETURN NEXT;
        RETURN;
    END IF;

    -- per key first, then per group (keys also differ by client address, which groups ignore)
    INSERT INTO @extschema@.activity_minute
    SELECT g.minute, k.datname, k.usename, k.application_name, k.state, k.wait_event_type, k.wait_event,
           g.query_id, pg_catalog.sum(g.samples)
      FROM (SELECT pg_catalog.date_trunc('minute', a.sampled_at) AS minute, a.key_id, a.query_id,
                   pg_catalog.count(*) AS samples
              FROM @extschema@.activity_raw a
             WHERE a.sampled_at >= lower_bound AND a.sampled_at < upper_bound
             GROUP BY 1, 2, 3) g
      LEFT JOIN @extschema@.activity_keys k ON k.key_id = g.key_id
     GROUP BY g.minute, k.datname, k.usename, k.application_name, k.state, k.wait_event_type, k.wait_event,
              g.query_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    -- the same minutes' active samples per database and wait event, for wait charts over days
    INSERT INTO @extschema@.wait_minute
    SELECT m.minute, m.datname, COALESCE(m.wait_event_type, 'CPU'), COALESCE(m.wait_event, 'CPU'),
           pg_catalog.sum(m.samples)
      FROM @extschema@.activity_minute m
     WHERE m.minute >= lower_bound AND m.minute < upper_bound
       AND m.state IN ('active', 'fastpath function call')
     GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    -- ticks per minute: a group absent at a tick had 0 backends, so averages use all ticks
    INSERT INTO @extschema@.connection_minute
    WITH ticks AS (
        SELECT pg_catalog.date_trunc('minute', s.sampled_at) AS minute,
               pg_catalog.count(DISTINCT s.sampled_at) AS ticks
          FROM @extschema@.connection_samples s
         WHERE s.sampled_at >= lower_bound AND s.sampled_at < upper_bound
         GROUP BY 1)
    SELECT g.minute, g.datname, g.usename, g.application_name, g.state, t.ticks,
           g.backends::double precision / t.ticks, g.max_backends,
           g.lock_waiting::double precision / t.ticks, g.max_lock_waiting
      FROM (SELECT pg_catalog.date_trunc('minute', s.sampled_at) AS minute, s.datname,
                   s.usename, s.application_name, s.state,
                   pg_catalog.sum(s.backends) AS backends, pg_catalog.max(s.backends) AS max_backends,
                   pg_catalog.sum(s.lock_waiting) AS lock_waiting,
                   pg_catalog.max(s.lock_waiting) AS max_lock_waiting
              FROM @extschema@.connection_samples s
             WHERE s.sampled_at >= lower_bound AND s.sampled_at < upper_bound
             GROUP BY 1, 2, 3, 4, 5) g
      JOIN ticks t USING (minute);
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    INSERT INTO @extschema@.pool_minute SELECT * FROM @extschema@._pool_minutes(lower_bound, upper_bound);
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    new_rolled_until := upper_bound;
    RETURN NEXT;
END
$$;

-- The latency histograms merged per statement and UTC hour (period 'hour': the statement_latency
-- intervals ending in (since, until] into statement_latency_hourly) or UTC day (period 'day': the
-- statement_latency_hourly hours ending in (since, until] into statement_latency_daily); called by
-- _rollup_hours for the hours and days it rolls up. Bucket counts add up; the run columns too,
-- and the parent kept is the one named for the most runs.
CREATE FUNCTION @extschema@._rollup_latency(period text, since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- an hour of 5,000 statements groups in memory: no temporary file
AS $$
DECLARE
    target text;
    source text;
    n bigint;
BEGIN
    CASE period
        WHEN 'hour' THEN
            target := 'statement_latency_hourly';
            source := $s$SELECT @extschema@._time_ceil(l.interval_end, 3600) AS period_end, 1 AS intervals,
                                l.dbid, l.userid, l.queryid, l.reset, l.executions, l.buckets, l.counts,
                                l.runs, l.run_executions, l.run_max_length, l.run_parent_queryid,
                                l.cpu_user_time, l.cpu_system_time, l.disk_read_bytes, l.disk_write_bytes
                           FROM @extschema@.statement_latency l
                          WHERE l.interval_end > $1 AND l.interval_end <= $2$s$;
        WHEN 'day' THEN
            target := 'statement_latency_daily';
            source := $s$SELECT @extschema@._time_ceil(h.hour_end, 86400) AS period_end, h.intervals,
                                h.dbid, h.userid, h.queryid, h.reset, h.executions, h.buckets, h.counts,
                                h.runs, h.run_executions, h.run_max_length, h.run_parent_queryid,
                                h.cpu_user_time, h.cpu_system_time, h.disk_read_bytes, h.disk_write_bytes
                           FROM @extschema@.statement_latency_hourly h
                          WHERE h.hour_end > $1 AND h.hour_end <= $2$s$;
        ELSE
            RAISE EXCEPTION 'dbanalytics: _rollup_latency: period must be hour or day, got %', period;
    END CASE;
    EXECUTE pg_catalog.format($q$
    INSERT INTO @extschema@.%I
    WITH src AS (%s), per_bucket AS (
        SELECT x.period_end, x.dbid, x.userid, x.queryid, u.bucket, pg_catalog.sum(u.executions)::bigint AS executions
          FROM src x, ROWS FROM (pg_catalog.unnest(x.buckets), pg_catalog.unnest(x.counts)) AS u(bucket, executions)
         GROUP BY 1, 2, 3, 4, 5
    ), histograms AS (
        SELECT b.period_end, b.dbid, b.userid, b.queryid,
               pg_catalog.array_agg(b.bucket ORDER BY b.bucket) AS buckets,
               pg_catalog.array_agg(b.executions ORDER BY b.bucket) AS counts
          FROM per_bucket b
         GROUP BY 1, 2, 3, 4
    ), parents AS (
        SELECT x.period_end, x.dbid, x.userid, x.queryid, x.run_parent_queryid AS parent,
               pg_catalog.sum(x.runs) AS runs
          FROM src x
         WHERE x.runs > 0
         GROUP BY 1, 2, 3, 4, 5
    ), top_parents AS (
        SELECT p.period_end, p.dbid, p.userid, p.queryid,
               (pg_catalog.array_agg(p.parent ORDER BY p.runs DESC, p.parent))[1] AS parent
          FROM parents p
         GROUP BY 1, 2, 3, 4
    ), totals AS (
        SELECT x.period_end, x.dbid, x.userid, x.queryid, pg_catalog.bool_or(x.reset) AS reset,
               pg_catalog.sum(x.intervals)::integer AS intervals, pg_catalog.sum(x.executions)::bigint AS executions,
               pg_catalog.sum(x.runs)::bigint AS runs, pg_catalog.sum(x.run_executions)::bigint AS run_executions,
               pg_catalog.max(x.run_max_length) AS run_max_length,
               pg_catalog.sum(x.cpu_user_time) AS cpu_user_time, pg_catalog.sum(x.cpu_system_time) AS cpu_system_time,
               pg_catalog.sum(x.disk_read_bytes)::bigint AS disk_read_bytes,
               pg_catalog.sum(x.disk_write_bytes)::bigint AS disk_write_bytes
          FROM src x
         GROUP BY 1, 2, 3, 4
    )
    SELECT t.period_end, t.dbid, t.userid, t.queryid, t.reset, t.intervals, t.executions,
           COALESCE(h.buckets, '{}'), COALESCE(h.counts, '{}'),
           t.runs, t.run_executions, t.run_max_length, p.parent,
           t.cpu_user_time, t.cpu_system_time, t.disk_read_bytes, t.disk_write_bytes
      FROM totals t
      LEFT JOIN histograms h ON (h.period_end, h.dbid, h.userid, h.queryid) = (t.period_end, t.dbid, t.userid, t.queryid)
      LEFT JOIN top_parents p ON (p.period_end, p.dbid, p.userid, p.queryid) = (t.period_end, t.dbid, t.userid, t.queryid)
    $q$, target, source) USING since, until;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The statement deltas of the intervals ending in (since, until] summed per statement and UTC
-- hour into statement_hourly (called by _rollup_hours for the hours it rolls up), with the most
-- calls per transaction of the statement's database in any one interval of the hour.
CREATE FUNCTION @extschema@._rollup_statement_hours(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- an hour of 5,000 statements groups in memory: no temporary file
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.statement_hourly
    SELECT @extschema@._time_ceil(s.interval_end, 3600), pg_catalog.min(s.interval_start), pg_catalog.max(s.interval_end),
           s.dbid, s.userid, s.queryid, s.toplevel, pg_catalog.bool_or(s.reset), pg_catalog.count(*)::integer,
           pg_catalog.sum(s.calls), pg_catalog.sum(s.plans), pg_catalog.sum(s.total_exec_time),
           pg_catalog.sum(s.total_plan_time), pg_catalog.sum(s.rows), pg_catalog.sum(s.shared_blks_hit),
           pg_catalog.sum(s.shared_blks_read), pg_catalog.sum(s.shared_blks_dirtied),
           pg_catalog.sum(s.shared_blks_written), pg_catalog.sum(s.local_blks_hit),
           pg_catalog.sum(s.local_blks_read), pg_catalog.sum(s.temp_blks_read),
           pg_catalog.sum(s.temp_blks_written), pg_catalog.sum(s.blk_read_time),
           pg_catalog.sum(s.blk_write_time), pg_catalog.sum(s.wal_records), pg_catalog.sum(s.wal_fpi),
           pg_catalog.sum(s.wal_bytes),
           pg_catalog.max(CASE WHEN d.datid IS NOT NULL
                               THEN s.calls::double precision / GREATEST(d.xact_commit + d.xact_rollback, 1) END)
      FROM @extschema@.statement_stats s
      LEFT JOIN @extschema@.database_stats d ON d.interval_end = s.interval_end AND d.datid = s.dbid
                                            AND d.interval_end > since AND d.interval_end <= until
     WHERE s.interval_end > since AND s.interval_end <= until
     GROUP BY 1, s.dbid, s.userid, s.queryid, s.toplevel;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The same for the table counters (table_stats into table_hourly).
CREATE FUNCTION @extschema@._rollup_table_hours(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.table_hourly
    SELECT @extschema@._time_ceil(t.interval_end, 3600), pg_catalog.min(t.interval_start), pg_catalog.max(t.interval_end),
           t.datname, t.relid, pg_catalog.max(t.schemaname), pg_catalog.max(t.relname),
           pg_catalog.bool_or(t.reset), pg_catalog.count(*)::integer,
           pg_catalog.sum(t.seq_scan), pg_catalog.sum(t.seq_tup_read), pg_catalog.sum(t.idx_scan),
           pg_catalog.sum(t.idx_tup_fetch), pg_catalog.sum(t.n_tup_ins), pg_catalog.sum(t.n_tup_upd),
           pg_catalog.sum(t.n_tup_del), pg_catalog.sum(t.n_tup_hot_upd), pg_catalog.sum(t.vacuum_count),
           pg_catalog.sum(t.autovacuum_count), pg_catalog.sum(t.analyze_count),
           pg_catalog.sum(t.autoanalyze_count), pg_catalog.sum(t.heap_blks_read), pg_catalog.sum(t.heap_blks_hit)
      FROM @extschema@.table_stats t
     WHERE t.interval_end > since AND t.interval_end <= until
     GROUP BY 1, t.datname, t.relid;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The same for the index counters (index_stats into index_hourly).
CREATE FUNCTION @extschema@._rollup_index_hours(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.index_hourly
    SELECT @extschema@._time_ceil(i.interval_end, 3600), pg_catalog.min(i.interval_start), pg_catalog.max(i.interval_end),
           i.datname, i.indexrelid, pg_catalog.max(i.relid), pg_catalog.max(i.schemaname), pg_catalog.max(i.relname),
           pg_catalog.max(i.indexrelname), pg_catalog.bool_or(i.reset), pg_catalog.count(*)::integer,
           pg_catalog.sum(i.idx_scan), pg_catalog.sum(i.idx_tup_read), pg_catalog.sum(i.idx_tup_fetch),
           pg_catalog.sum(i.idx_blks_read), pg_catalog.sum(i.idx_blks_hit)
      FROM @extschema@.index_stats i
     WHERE i.interval_end > since AND i.interval_end <= until
     GROUP BY 1, i.datname, i.indexrelid;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The hourly statement rows of the hours ending in (since, until] summed per statement and UTC
-- day into statement_daily (called by _rollup_hours for the whole days rolled up).
CREATE FUNCTION @extschema@._rollup_statement_days(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.statement_daily
    SELECT @extschema@._time_ceil(h.hour_end, 86400),
           pg_catalog.min(h.first_start), pg_catalog.max(h.last_end),
           h.dbid, h.userid, h.queryid, h.toplevel, pg_catalog.bool_or(h.reset), pg_catalog.sum(h.intervals)::integer,
           pg_catalog.sum(h.calls), pg_catalog.sum(h.plans), pg_catalog.sum(h.total_exec_time),
           pg_catalog.sum(h.total_plan_time), pg_catalog.sum(h.rows), pg_catalog.sum(h.shared_blks_hit),
           pg_catalog.sum(h.shared_blks_read), pg_catalog.sum(h.shared_blks_dirtied),
           pg_catalog.sum(h.shared_blks_written), pg_catalog.sum(h.local_blks_hit),
           pg_catalog.sum(h.local_blks_read), pg_catalog.sum(h.temp_blks_read),
           pg_catalog.sum(h.temp_blks_written), pg_catalog.sum(h.blk_read_time),
           pg_catalog.sum(h.blk_write_time), pg_catalog.sum(h.wal_records), pg_catalog.sum(h.wal_fpi),
           pg_catalog.sum(h.wal_bytes), pg_catalog.max(h.peak_calls_per_transaction)
      FROM @extschema@.statement_hourly h
     WHERE h.hour_end > since AND h.hour_end <= until
     GROUP BY 1, h.dbid, h.userid, h.queryid, h.toplevel;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Daily sizes of the whole UTC days ending in (since, until]: for each database, table, index
-- and file system, the last size the day's snapshots saw (called by _rollup_hours).
CREATE FUNCTION @extschema@._rollup_size_days(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.size_daily (day_end, measured_at, object_type, datname, objid, schemaname, relname, size_bytes)
    SELECT DISTINCT ON (1, 3, 4, 5, 7) u.*
      FROM (SELECT @extschema@._time_ceil(t.interval_end, 86400), t.interval_end, 'table', t.datname, t.relid,
                   t.schemaname, t.relname, t.table_size
              FROM @extschema@.table_stats t
             WHERE t.interval_end > since AND t.interval_end <= until AND t.table_size IS NOT NULL
            UNION ALL
            SELECT @extschema@._time_ceil(i.interval_end, 86400), i.interval_end, 'index', i.datname, i.indexrelid,
                   i.schemaname, i.indexrelname, i.index_size
              FROM @extschema@.index_stats i
             WHERE i.interval_end > since AND i.interval_end <= until AND i.index_size IS NOT NULL
            UNION ALL
            SELECT @extschema@._time_ceil(d.interval_end, 86400), d.interval_end, 'database', d.datname, d.datid,
                   NULL, NULL, d.database_size
              FROM @extschema@.database_stats d
             WHERE d.interval_end > since AND d.interval_end <= until AND d.database_size IS NOT NULL
            UNION ALL
            SELECT @extschema@._time_ceil(s.interval_end, 86400), s.interval_end, 'filesystem', NULL, 0::oid,
                   NULL, f.name, f.used
              FROM @extschema@.server_stats s,
                   LATERAL (VALUES ('data directory', s.disk_used_bytes), ('pg_wal', s.wal_disk_used_bytes)) f(name, used)
             WHERE s.interval_end > since AND s.interval_end <= until AND f.used IS NOT NULL
           ) u(day_end, measured_at, object_type, datname, objid, schemaname, relname, size_bytes)
     ORDER BY 1, 3, 4, 5, 7, 2 DESC;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Hourly rollups of the per-snapshot deltas (statement_stats, statement_latency, table_stats,
-- index_stats), for
-- every whole hour since the last one rolled (source_state 'hours', updated_at = the hour_end
-- rolled last). An hour is whole once now() is past its end: snapshots are serialized, so no
-- later snapshot can write an interval ending in it. Returns the rows written.
CREATE FUNCTION @extschema@._rollup_hours()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rolled_until timestamptz;
    -- hour_end of the newest whole hour
    upper_bound timestamptz := @extschema@._time_floor(pg_catalog.now() - interval '1 microsecond', 3600);
    written bigint := 0;
BEGIN
    -- one run at a time (the collector, take_snapshot(), a hand call): no hour rolled twice
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.rollup_hours'));

    -- whole UTC days of sizes (source_state 'size_days'); the first run rolls yesterday only,
    -- whose rows go to today's partition of size_daily, which surely exists
    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'size_days';
    rolled_until := COALESCE(rolled_until, @extschema@._time_floor(upper_bound, 86400) - interval '1 day');
    IF rolled_until < @extschema@._time_floor(upper_bound, 86400) THEN
        written := written + @extschema@._rollup_size_days(rolled_until, @extschema@._time_floor(upper_bound, 86400));
        INSERT INTO @extschema@.source_state AS st (source, updated_at)
        VALUES ('size_days', @extschema@._time_floor(upper_bound, 86400))
        ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    END IF;

    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'hours';
    IF rolled_until IS NULL THEN
        -- first run: from the first hour with history (or nothing to do)
        SELECT @extschema@._time_floor(pg_catalog.min(t.interval_end) - interval '1 microsecond', 3600)
          INTO rolled_until
          FROM (SELECT pg_catalog.min(s.interval_end) AS interval_end FROM @extschema@.statement_stats s
                UNION ALL SELECT pg_catalog.min(s.interval_end) FROM @extschema@.statement_latency s
                UNION ALL SELECT pg_catalog.min(s.interval_end) FROM @extschema@.table_stats s
                UNION ALL SELECT pg_catalog.min(s.interval_end) FROM @extschema@.index_stats s) t;
    END IF;
    IF rolled_until IS NULL OR rolled_until >= upper_bound THEN
        RETURN 0;
    END IF;

    written := written + @extschema@._rollup_statement_hours(rolled_until, upper_bound);
    written := written + @extschema@._rollup_latency('hour', rolled_until, upper_bound);
    written := written + @extschema@._rollup_table_hours(rolled_until, upper_bound);
    written := written + @extschema@._rollup_index_hours(rolled_until, upper_bound);

    INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('hours', upper_bound)
    ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;

    -- whole UTC days of statement_hourly (source_state 'days')
    upper_bound := @extschema@._time_floor(upper_bound, 86400);
    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'days';
    IF rolled_until IS NULL THEN
        SELECT @extschema@._time_floor(pg_catalog.min(h.hour_end) - interval '1 microsecond', 86400)
          INTO rolled_until FROM @extschema@.statement_hourly h;
    END IF;
    IF rolled_until < upper_bound THEN
        written := written + @extschema@._rollup_statement_days(rolled_until, upper_bound);
        written := written + @extschema@._rollup_latency('day', rolled_until, upper_bound);
        INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('days', upper_bound)
        ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    END IF;

    RETURN written;
END
$$;

-- Rollup boundaries are whole multiples of an hour (or a day) since the Unix epoch, i.e. UTC
-- hours and UTC days, whatever the session's TimeZone: the collector and every reader cut the
-- same hours. _time_ceil gives the boundary at or after ts (the end of the rollup row holding an
-- interval that ends at ts: a row ending at E holds (E - width, E]), _time_floor the one at or
-- before ts.
CREATE FUNCTION @extschema@._time_ceil(ts timestamptz, width_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_timestamp((pg_catalog.ceil(EXTRACT(epoch FROM ts) OPERATOR(pg_catalog./) width_seconds)
                                    OPERATOR(pg_catalog.*) width_seconds)::double precision)
$$;

CREATE FUNCTION @extschema@._time_floor(ts timestamptz, width_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_timestamp((pg_catalog.floor(EXTRACT(epoch FROM ts) OPERATOR(pg_catalog./) width_seconds)
                                    OPERATOR(pg_catalog.*) width_seconds)::double precision)
$$;

-- How far the rollups have got (source_state updated_at of 'rollup', 'hours' or 'days'), for
-- the analytics of readers, who may not read source_state itself.
CREATE FUNCTION @extschema@._rolled_until(rollup text)
RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.updated_at FROM @extschema@.source_state s
     WHERE s.source = rollup AND rollup IN ('rollup', 'hours', 'days')
$$;

-- Which part of (since, until] the rollups serve. The hourly rollups serve (lo, hi], the whole
-- hours inside the window rolled up so far, and the per-snapshot tables (since, lo] and
-- (hi, until]. Within (lo, hi], statement_daily serves (day_lo, day_hi], the whole UTC days
-- rolled up so far, and the hourly rollup the rest.
CREATE FUNCTION @extschema@._rollup_span(since timestamptz, until timestamptz,
                                         OUT lo timestamptz, OUT hi timestamptz,
                                         OUT day_lo timestamptz, OUT day_hi timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.lo, h.hi, d.day_lo,
           GREATEST(d.day_lo, LEAST(@extschema@._time_floor(h.hi, 86400),
                                    COALESCE(@extschema@._rolled_until('days'), d.day_lo)))
      FROM (SELECT b.lo,
                   GREATEST(b.lo, LEAST(@extschema@._time_floor(until, 3600),
                                        COALESCE(@extschema@._rolled_until('hours'), b.lo))) AS hi
              FROM (SELECT @extschema@._time_ceil(since, 3600) AS lo) b) h
     CROSS JOIN LATERAL (SELECT LEAST(@extschema@._time_ceil(h.lo, 86400), h.hi) AS day_lo) d
$$;
