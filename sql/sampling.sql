-- dbanalytics: the sampler's SQL (src/collect/ calls _sample_activity at every tick). Internal:
-- not executable by PUBLIC.

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
