-- dbanalytics: roles, history tables, collector state.
-- Every name is schema-qualified: @extschema@ is replaced by CREATE EXTENSION.

-- Refuse a schema someone else prepared. CREATE EXTENSION uses an existing schema of the name
-- in the control file as it is: one created beforehand by another role (a database owner, say)
-- would leave that role owning the schema that holds the history and the functions superusers
-- run, free to drop or replace them. Install only into a schema the installing role or a
-- superuser owns, and only while it is empty (a restore, which creates the schema just before
-- the extension, passes both checks).
DO $schema_guard$
DECLARE
    schema_owner oid;
    owner_name text;
    objects bigint;
BEGIN
    SELECT n.nspowner, r.rolname INTO schema_owner, owner_name
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.oid OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace;
    IF schema_owner OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
                                              WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) schema_owner) THEN
        RAISE EXCEPTION 'dbanalytics: schema "%" already exists and is owned by role "%", who is neither you nor a superuser',
                        '@extschema@'::pg_catalog.regnamespace, owner_name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'That role could drop or replace the monitor''s history and functions. Check what the '
                         'schema holds, drop it (or make it yours while it is empty: ALTER SCHEMA ... OWNER TO '
                         'CURRENT_USER) and run CREATE EXTENSION dbanalytics again.';
    END IF;
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type t
             WHERE t.typnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator o
             WHERE o.oprnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace)
      INTO objects;
    IF objects OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'dbanalytics: schema "%" already holds % objects', '@extschema@'::pg_catalog.regnamespace, objects
            USING ERRCODE = 'duplicate_schema',
                  HINT = 'dbanalytics installs only into an empty schema of its own. Move or drop those objects '
                         '(or the schema) and run CREATE EXTENSION dbanalytics again.';
    END IF;
END
$schema_guard$;

-- The two roles are cluster-wide: they may exist already, from an install in another database,
-- or because someone created them first to be handed the monitor's rights. Use an existing one
-- only if it cannot log in and no role but a superuser may grant it (ADMIN OPTION; PostgreSQL 16
-- gives that option to a non-superuser who creates a role).
DO $roles$
DECLARE
    wanted text;
    problem text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['dbanalytics_reader', 'dbanalytics_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) wanted) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', wanted);
            CONTINUE;
        END IF;
        SELECT pg_catalog.concat_ws('; ',
                   CASE WHEN g.rolcanlogin THEN 'it can log in' END,
                   (SELECT 'these roles may grant it: ' OPERATOR(pg_catalog.||)
                           pg_catalog.string_agg(pg_catalog.quote_ident(h.rolname), ', ' ORDER BY h.rolname)
                      FROM pg_catalog.pg_auth_members m
                      JOIN pg_catalog.pg_roles h ON h.oid OPERATOR(pg_catalog.=) m.member
                     WHERE m.roleid OPERATOR(pg_catalog.=) g.oid AND m.admin_option AND NOT h.rolsuper))
          INTO problem
          FROM pg_catalog.pg_roles g
         WHERE g.rolname OPERATOR(pg_catalog.=) wanted;
        IF problem OPERATOR(pg_catalog.<>) '' THEN
            RAISE EXCEPTION 'dbanalytics: role "%" already exists and is not safe to use: %', wanted, problem
                USING ERRCODE = 'insufficient_privilege',
                      HINT = pg_catalog.format('Whoever can log in as %1$I or grant it gets the monitor''s rights. '
                                 'Make it NOLOGIN and revoke the ADMIN OPTION (ALTER ROLE %1$I NOLOGIN; '
                                 'REVOKE ADMIN OPTION FOR %1$I FROM ...), or drop it, and run CREATE EXTENSION '
                                 'dbanalytics again.', wanted);
        END IF;
    END LOOP;
END
$roles$;

GRANT dbanalytics_reader TO dbanalytics_admin;
REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Indexes of the partitioned tables: on each partition, not on the parent.
-- The daily partitions are created at run time, so pg_dump dumps them (with their rows and
-- indexes) as tables attached to the parents that CREATE EXTENSION makes on restore. An index
-- on a parent would make that ATTACH PARTITION create the partition's index before pg_restore
-- creates it again, and the restore would fail ("already exists"). So every partitioned table
-- lists its indexes here, and the partition manager creates them on each partition it makes
-- (_index_partition), named <partition>_<suffix>_idx. Never CREATE INDEX on a parent.
-------------------------------------------------------------------------------

CREATE TABLE @extschema@.partition_indexes (
    parent     text NOT NULL,  -- a partitioned table of this schema
    suffix     text NOT NULL,  -- the index of partition p is named p_<suffix>_idx
    definition text NOT NULL,  -- what follows CREATE INDEX ... ON <partition>
    PRIMARY KEY (parent, suffix)
);

-- Creates the indexes of one partition of parent that it lacks; returns how many.
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

-------------------------------------------------------------------------------
-- Raw samples (sampler worker, every dbanalytics.sample_interval).
-- Partitioned by day; kept for dbanalytics.retention_raw (docs/storage.md: the tiers).
-------------------------------------------------------------------------------

-- One row per non-idle client backend and tick, kept small (68 bytes with its tuple header):
-- what describes the session and its state is stored once in activity_keys, times as
-- millisecond offsets before sampled_at. The view activity_samples shows the full rows.
CREATE TABLE @extschema@.activity_raw (
    sampled_at       timestamptz NOT NULL,
    pid              integer     NOT NULL,
    key_id           integer     NOT NULL,  -- activity_keys.key_id
    query_id         bigint,
    xact_ms          integer,   -- sampled_at - xact_start, ms (capped at 2^31 - 1)
    query_ms         integer,   -- sampled_at - query_start, ms (capped)
    state_ms         integer,   -- sampled_at - state_change, ms (capped)
    backend_xid_age  integer
) PARTITION BY RANGE (sampled_at);
INSERT INTO @extschema@.partition_indexes VALUES ('activity_raw', 'sampled_at', 'USING brin (sampled_at) WITH (autosummarize = on)');

-- Each distinct (database, user, application, client address, state, wait event) the sampler
-- met, once. descriptor is the row of those seven values as text (NULL and '' differ there),
-- the key the sampler looks them up by.
CREATE TABLE @extschema@.activity_keys (
    key_id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    descriptor       text        NOT NULL UNIQUE,
    datname          text,
    usename          text,
    application_name text,
    client_addr      inet,
    state            text,
    wait_event_type  text,
    wait_event       text
);

CREATE TABLE @extschema@.connection_samples (
    sampled_at       timestamptz NOT NULL,
    datname          text,
    usename          text,
    application_name text,
    state            text,
    backends         integer     NOT NULL,
    lock_waiting     integer     NOT NULL
) PARTITION BY RANGE (sampled_at);
INSERT INTO @extschema@.partition_indexes VALUES ('connection_samples', 'sampled_at', 'USING brin (sampled_at) WITH (autosummarize = on)');

CREATE TABLE @extschema@.lock_waits (
    sampled_at       timestamptz NOT NULL,
    pid              integer     NOT NULL,
    datname          text,
    usename          text,
    application_name text,
    state            text,
    query_id         bigint,
    locktype         text,
    mode             text,
    relation_schema  text,
    relation_name    text,
    blocking_pids    integer[]   NOT NULL,
    wait_started     timestamptz,
    xact_start       timestamptz,
    relation_oid     oid,         -- the locked relation; names above only when it is in this database
    -- true: this session waits on a lock; false: it holds a lock others wait for and waits on
    -- none itself (a head blocker), recorded so that chains name their heads without a scan of
    -- the activity samples
    waiting          boolean      NOT NULL DEFAULT true
) PARTITION BY RANGE (sampled_at);
INSERT INTO @extschema@.partition_indexes VALUES ('lock_waits', 'sampled_at', 'USING brin (sampled_at) WITH (autosummarize = on)');

-------------------------------------------------------------------------------
-- Minute rollups of the raw samples (collector). Kept for retention_hours: their volume does
-- not grow with the number of statements or relations.
-------------------------------------------------------------------------------

CREATE TABLE @extschema@.activity_minute (
    minute           timestamptz NOT NULL,
    datname          text,
    usename          text,
    application_name text,
    state            text,
    wait_event_type  text,
    wait_event       text,
    query_id         bigint,
    samples          integer     NOT NULL
) PARTITION BY RANGE (minute);
INSERT INTO @extschema@.partition_indexes VALUES ('activity_minute', 'minute', '(minute)');

-- Active samples per minute, database and wait event ('CPU' when none): activity_minute without
-- the user, application, state and query, written by the same rollup. A few rows a minute
-- whatever the number of statements, so wait charts over days (wait_events_by_minute()) read
-- little.
CREATE TABLE @extschema@.wait_minute (
    minute          timestamptz NOT NULL,
    datname         text,
    wait_event_type text        NOT NULL,
    wait_event      text        NOT NULL,
    samples         bigint      NOT NULL
) PARTITION BY RANGE (minute);
INSERT INTO @extschema@.partition_indexes VALUES ('wait_minute', 'minute', '(minute)');

-- Active samples per UTC hour (day), database, wait event ('CPU' when none) and query id:
-- activity_minute's active rows without the user, application and state, summed over the
-- minutes [hour_end - 1 hour, hour_end) ([day_end - 1 day, day_end)). Written by the minute
-- rollup once the hour (day) is whole, so wait_events() over days and weeks sums a few thousand
-- rows an hour (a day) instead of every minute's.
CREATE TABLE @extschema@.wait_hourly (
    hour_end        timestamptz NOT NULL,
    datname         text,
    wait_event_type text        NOT NULL,
    wait_event      text        NOT NULL,
    query_id        bigint,
    samples         bigint      NOT NULL
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('wait_hourly', 'hour_end', '(hour_end)');

CREATE TABLE @extschema@.wait_daily (
    day_end         timestamptz NOT NULL,
    datname         text,
    wait_event_type text        NOT NULL,
    wait_event      text        NOT NULL,
    query_id        bigint,
    samples         bigint      NOT NULL
) PARTITION BY RANGE (day_end);
INSERT INTO @extschema@.partition_indexes VALUES ('wait_daily', 'day_end', '(day_end)');

CREATE TABLE @extschema@.connection_minute (
    minute           timestamptz NOT NULL,
    datname          text,
    usename          text,
    application_name text,
    state            text,
    ticks            integer     NOT NULL,
    avg_backends     double precision NOT NULL,
    max_backends     integer     NOT NULL,
    avg_lock_waiting double precision NOT NULL,
    max_lock_waiting integer     NOT NULL
) PARTITION BY RANGE (minute);
INSERT INTO @extschema@.partition_indexes VALUES ('connection_minute', 'minute', '(minute)');

-- Per minute and pool (database, user, application) from the per-tick sums over the pool's
-- states; application_name '(all clients)' with NULL database and user is the whole cluster.
-- Sums over the minute's ticks, so that minutes merge exactly.
CREATE TABLE @extschema@.pool_minute (
    minute           timestamptz NOT NULL,
    datname          text,
    usename          text,
    application_name text,
    ticks            integer     NOT NULL,  -- sampler ticks in the minute
    active_sum       bigint      NOT NULL,  -- active connections summed over the ticks
    max_active       integer     NOT NULL,
    idle_sum         bigint      NOT NULL,
    idle_in_transaction_sum bigint NOT NULL,
    waiting_sum      bigint      NOT NULL,  -- connections waiting on a lock, summed over the ticks
    max_connections  integer     NOT NULL,  -- most connections of the pool at one tick
    cluster_peak     integer     NOT NULL   -- most client connections of the cluster at one tick
) PARTITION BY RANGE (minute);
INSERT INTO @extschema@.partition_indexes VALUES ('pool_minute', 'minute', '(minute)');

-------------------------------------------------------------------------------
-- Deltas per snapshot interval (collector worker, every snapshot_interval).
-- Each row covers (interval_start, interval_end]; reset = true marks an
-- interval in which counters were reset, entries evicted or the server
-- restarted: its deltas are the best lower bound, never negative.
-------------------------------------------------------------------------------

CREATE TABLE @extschema@.statements (
    dbid       oid         NOT NULL,
    userid     oid         NOT NULL,
    queryid    bigint      NOT NULL,
    toplevel   boolean     NOT NULL,
    datname    text,
    usename    text,
    query      text,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (dbid, userid, queryid, toplevel)
);

-- The pg_stat_statements counters dbanalytics keeps, under its own names: the one list of them.
-- statement_counters, statement_stats, statement_hourly and statement_daily take their columns
-- from it (LIKE, at the same place in each), _statements_now maps the server's view onto it
-- (versions.sql), and the snapshot's deltas and the hourly and daily sums are written from its
-- attributes (_statement_counter_list), each naming its target columns. A counter added after
-- 0.1.0 goes at the end of every table, in a fresh install as in an upgraded one (their
-- catalogs are compared column by column): one ALTER TYPE ... ADD ATTRIBUTE line at the end of
-- this file, after the tables, whose column _add_statement_counter_columns() then adds to them;
-- the same line and a call of it in the upgrade script; a mapping in _statements_now only if
-- the server names the counter differently. Nothing else changes.
CREATE TYPE @extschema@.statement_counter_values AS (
    calls               bigint,
    plans               bigint,
    total_exec_time     double precision,
    total_plan_time     double precision,
    rows                bigint,
    shared_blks_hit     bigint,
    shared_blks_read    bigint,
    shared_blks_dirtied bigint,
    shared_blks_written bigint,
    local_blks_hit      bigint,
    local_blks_read     bigint,
    temp_blks_read      bigint,
    temp_blks_written   bigint,
    blk_read_time       double precision,
    blk_write_time      double precision,
    wal_records         bigint,
    wal_fpi             bigint,
    wal_bytes           bigint
);

-- The counters of statement_counter_values in column order, with their types.
CREATE FUNCTION @extschema@._statement_counter_columns()
RETURNS TABLE (ordinal smallint, name name, type text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = '@extschema@.statement_counter_values'::pg_catalog.regclass
       AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- format(template, column, its type) for each counter, in column order, joined with ', ': the
-- column lists of the statements that handle every counter.
CREATE FUNCTION @extschema@._statement_counter_list(template text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.string_agg(pg_catalog.format(template, c.name, c.type), ', ' ORDER BY c.ordinal)
      FROM @extschema@._statement_counter_columns() c
$$;

CREATE TABLE @extschema@.statement_stats (
    interval_start      timestamptz NOT NULL,
    interval_end        timestamptz NOT NULL,
    dbid                oid         NOT NULL,
    userid              oid         NOT NULL,
    queryid             bigint      NOT NULL,
    toplevel            boolean     NOT NULL,
    reset               boolean     NOT NULL,
    LIKE @extschema@.statement_counter_values
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_stats', 'interval_end', '(interval_end)');
INSERT INTO @extschema@.partition_indexes VALUES ('statement_stats', 'queryid', '(queryid)');

-- Hourly rollup of statement_stats (collector, rollup_hours source): one row per statement and hour
-- for the intervals ending in (hour_end - 1 hour, hour_end]. Long analysis windows read these
-- rows for their whole hours and statement_stats only for the partial hours at either end.
CREATE TABLE @extschema@.statement_hourly (
    hour_end            timestamptz NOT NULL,
    first_start         timestamptz NOT NULL,  -- earliest interval_start rolled into the row
    last_end            timestamptz NOT NULL,  -- latest interval_end rolled into the row
    dbid                oid         NOT NULL,
    userid              oid         NOT NULL,
    queryid             bigint      NOT NULL,
    toplevel            boolean     NOT NULL,
    reset               boolean     NOT NULL,
    intervals           integer     NOT NULL,  -- statement_stats rows rolled into the row
    LIKE @extschema@.statement_counter_values,
    -- the most calls per transaction of its database in any one snapshot interval of the hour
    peak_calls_per_transaction double precision
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_hourly', 'hour_end', '(hour_end)');

-- Daily rollup of statement_hourly (UTC days): one row per statement and day for the hours
-- ending in (day_end - 1 day, day_end]. Windows of several days read these for their whole days.
CREATE TABLE @extschema@.statement_daily (
    day_end             timestamptz NOT NULL,
    first_start         timestamptz NOT NULL,
    last_end            timestamptz NOT NULL,
    dbid                oid         NOT NULL,
    userid              oid         NOT NULL,
    queryid             bigint      NOT NULL,
    toplevel            boolean     NOT NULL,
    reset               boolean     NOT NULL,
    intervals           integer     NOT NULL,
    LIKE @extschema@.statement_counter_values,
    peak_calls_per_transaction double precision
) PARTITION BY RANGE (day_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_daily', 'day_end', '(day_end)');

-- Packed minutes of statement_stats (collector, after the hourly rollup: _pack_minutes): one row
-- per statement and rolled-up hour holding the hour's per-interval rows, in the minute tier
-- (retention_minutes), so that the partial hours at the far end of a window keep their minutes
-- at about a twentieth of the space. `intervals` is a matrix packed by _pack_columns
-- (src/storage/packing.rs) as a matrix of intervals on the clock of packed_hours, one row per
-- interval ending in (hour_end - 1 hour, hour_end], its columns: interval_end and its length in
-- microseconds since the epoch, reset (0 or 1), then each counter of statement_counter_values
-- at column attnum + 3 (times in nanoseconds).
-- _packed_statement_minutes() unpacks them as statement_stats rows.
CREATE TABLE @extschema@.statement_stats_packed (
    hour_end  timestamptz NOT NULL,
    dbid      oid         NOT NULL,
    userid    oid         NOT NULL,
    queryid   bigint      NOT NULL,
    toplevel  boolean     NOT NULL,
    intervals bytea       NOT NULL
) PARTITION BY RANGE (hour_end);
-- packed hour by packed hour, in time order: a BRIN index finds an hour's rows
INSERT INTO @extschema@.partition_indexes VALUES ('statement_stats_packed', 'hour_end', 'USING brin (hour_end) WITH (autosummarize = on)');

-- A delta, or a sum of deltas, is never NULL: the counters of the three history tables are NOT
-- NULL (LIKE a composite type copies no constraint).
DO $not_null$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['statement_stats', 'statement_hourly', 'statement_daily'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I %s', t,
                                  @extschema@._statement_counter_list('ALTER COLUMN %I SET NOT NULL'));
    END LOOP;
END
$not_null$;

-- Adds every counter of statement_counter_values that statement_counters, statement_stats,
-- statement_hourly or statement_daily lacks to that table, at its end (nullable: the history
-- before it has no value); returns the columns added. How a counter added after 0.1.0 reaches
-- the tables, in a fresh install (the ALTER TYPE lines at the end of sql/schema.sql) and in an
-- upgrade (the same ALTER TYPE and a call), so that both have the same columns in the same order.
CREATE FUNCTION @extschema@._add_statement_counter_columns()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing record;
    added integer := 0;
BEGIN
    FOR missing IN
        SELECT t.name AS table_name, c.name, c.type
          FROM pg_catalog.unnest(ARRAY['statement_counters', 'statement_stats', 'statement_hourly',
                                       'statement_daily']) WITH ORDINALITY t(name, n)
         CROSS JOIN @extschema@._statement_counter_columns() c
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = pg_catalog.format('@extschema@.%I', t.name)::pg_catalog.regclass
                              AND a.attname = c.name AND NOT a.attisdropped)
         ORDER BY t.n, c.ordinal
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.%I ADD COLUMN %I %s',
                                  missing.table_name, missing.name, missing.type);
        added := added + 1;
    END LOOP;
    RETURN added;
END
$$;

-- Latency histograms (executor hooks, persisted by the collector): sparse arrays of bucket
-- numbers and their execution counts; src/histogram/buckets.rs defines the buckets and
-- latency_buckets() lists their bounds. queryid = 0 and userid = 0: the database's overflow
-- histogram (queries beyond dbanalytics.max_histogram_queries).
-- The run columns count the runs of the statement that ended in the interval (the N of an N+1,
-- src/histogram/runs.rs): consecutive executions on one connection, each returning at most 10
-- rows and starting within 0.1 s of the previous one's end, after a different statement (the
-- parent); NULL when none ended (a row may then carry runs and no executions).
CREATE TABLE @extschema@.statement_latency (
    interval_start timestamptz NOT NULL,
    interval_end   timestamptz NOT NULL,
    dbid           oid         NOT NULL,
    userid         oid         NOT NULL,
    queryid        bigint      NOT NULL,
    reset          boolean     NOT NULL,
    executions     bigint      NOT NULL,
    buckets        smallint[]  NOT NULL,
    counts         bigint[]    NOT NULL,
    runs               bigint,  -- runs that ended
    run_executions     bigint,  -- executions in them (run_executions / runs: the mean length)
    run_max_length     bigint,
    run_parent_queryid bigint,  -- the statement before the most recent run
    -- resources of the top-level executions (getrusage around the executor, as pg_stat_kcache
    -- measures them): CPU time in user and kernel mode (ms), and bytes the kernel read from
    -- and wrote to storage for them (page-cache misses and writebacks); NULL in rows written
    -- before 0.2.0
    cpu_user_time      double precision,
    cpu_system_time    double precision,
    disk_read_bytes    bigint,
    disk_write_bytes   bigint,
    -- application_name of the connection that ran the most recent run (kept in these minute
    -- rows only: the hourly and daily rollups do not carry it); NULL when no run ended or the
    -- name was empty
    run_application    text
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency', 'interval_end', '(interval_end)');
-- the few rows with runs, by statement: query_analysis looks up the application of an N+1's runs
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency', 'runs', '(queryid) WHERE runs IS NOT NULL');

-- Hourly rollup of statement_latency (collector, with statement_hourly): one row per statement
-- and hour for the intervals ending in (hour_end - 1 hour, hour_end]. Histograms merge exactly
-- (bucket counts add up), so a percentile over whole hours read here equals the one over the
-- minutes. The run columns add up too; run_parent_queryid is the parent named for the most runs
-- in the hour. Kept for retention_hours, when the minute rows are long gone.
CREATE TABLE @extschema@.statement_latency_hourly (
    hour_end       timestamptz NOT NULL,
    dbid           oid         NOT NULL,
    userid         oid         NOT NULL,
    queryid        bigint      NOT NULL,
    reset          boolean     NOT NULL,
    intervals      integer     NOT NULL,  -- statement_latency rows rolled into the row
    executions     bigint      NOT NULL,
    buckets        smallint[]  NOT NULL,
    counts         bigint[]    NOT NULL,
    runs               bigint,
    run_executions     bigint,
    run_max_length     bigint,
    run_parent_queryid bigint,
    cpu_user_time      double precision,  -- the resource columns add up
    cpu_system_time    double precision,
    disk_read_bytes    bigint,
    disk_write_bytes   bigint
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency_hourly', 'hour_end', '(hour_end)');

-- Daily rollup of statement_latency_hourly (UTC days), for the whole days of long windows. Kept
-- for retention_days.
CREATE TABLE @extschema@.statement_latency_daily (
    day_end        timestamptz NOT NULL,
    dbid           oid         NOT NULL,
    userid         oid         NOT NULL,
    queryid        bigint      NOT NULL,
    reset          boolean     NOT NULL,
    intervals      integer     NOT NULL,  -- statement_latency rows merged into the row
    executions     bigint      NOT NULL,
    buckets        smallint[]  NOT NULL,
    counts         bigint[]    NOT NULL,
    runs               bigint,
    run_executions     bigint,
    run_max_length     bigint,
    run_parent_queryid bigint,
    cpu_user_time      double precision,  -- the resource columns add up
    cpu_system_time    double precision,
    disk_read_bytes    bigint,
    disk_write_bytes   bigint
) PARTITION BY RANGE (day_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency_daily', 'day_end', '(day_end)');

-- Packed minutes of statement_latency (collector, with statement_stats_packed): one row per
-- statement and rolled-up hour. `intervals` is a matrix of intervals packed by _pack_columns
-- on the clock of packed_hours, one row per interval ending in (hour_end - 1 hour, hour_end], its columns: interval_end and its length
-- (microseconds), reset (0 or 1), executions, runs, run_executions, run_max_length,
-- run_parent_queryid, cpu_user_time and cpu_system_time (nanoseconds), disk_read_bytes,
-- disk_write_bytes, the number n of histogram buckets, then the buckets and their counts, each
-- padded with NULLs to the widest histogram of the hour (column 13 is passed as _pack_columns'
-- histogram: the counts are stored by core bucket). run_applications holds the intervals'
-- run_application in the same order (NULL when none had one). _packed_latency_minutes() unpacks them
-- as statement_latency rows.
CREATE TABLE @extschema@.statement_latency_packed (
    hour_end         timestamptz NOT NULL,
    dbid             oid         NOT NULL,
    userid           oid         NOT NULL,
    queryid          bigint      NOT NULL,
    intervals        bytea       NOT NULL,
    run_applications text[]
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency_packed', 'hour_end', 'USING brin (hour_end) WITH (autosummarize = on)');
-- the statements whose runs query_analysis looks up
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency_packed', 'queryid', '(queryid) WHERE run_applications IS NOT NULL');

-- The clock of each packed hour (collector, _pack_minutes): the ends of the hour's snapshot
-- intervals in statement_stats and statement_latency, ascending, in microseconds since the
-- epoch. The matrices of statement_stats_packed and statement_latency_packed of that hour store
-- each interval's end as its position on this clock, so the collector's timing jitter is
-- stored once per hour instead of once per statement (docs/storage.md). Same tier and
-- partitions as the packed rows; a packed row whose hour has no clock was packed without one.
CREATE TABLE @extschema@.packed_hours (
    hour_end      timestamptz NOT NULL,
    interval_ends bigint[]    NOT NULL
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('packed_hours', 'hour_end', '(hour_end)');

CREATE TABLE @extschema@.database_latency (
    interval_start timestamptz NOT NULL,
    interval_end   timestamptz NOT NULL,
    dbid           oid         NOT NULL,
    datname        text,
    reset          boolean     NOT NULL,
    executions     bigint      NOT NULL,
    buckets        smallint[]  NOT NULL,
    counts         bigint[]    NOT NULL
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('database_latency', 'interval_end', '(interval_end)');

CREATE TABLE @extschema@.database_stats (
    interval_start          timestamptz NOT NULL,
    interval_end            timestamptz NOT NULL,
    datid                   oid         NOT NULL,
    datname                 text        NOT NULL,
    reset                   boolean     NOT NULL,
    numbackends             integer,
    xact_commit             bigint      NOT NULL,
    xact_rollback           bigint      NOT NULL,
    blks_read               bigint      NOT NULL,
    blks_hit                bigint      NOT NULL,
    tup_returned            bigint      NOT NULL,
    tup_fetched             bigint      NOT NULL,
    tup_inserted            bigint      NOT NULL,
    tup_updated             bigint      NOT NULL,
    tup_deleted             bigint      NOT NULL,
    conflicts               bigint      NOT NULL,
    temp_files              bigint      NOT NULL,
    temp_bytes              bigint      NOT NULL,
    deadlocks               bigint      NOT NULL,
    checksum_failures       bigint      NOT NULL,
    blk_read_time           double precision NOT NULL,
    blk_write_time          double precision NOT NULL,
    session_time            double precision NOT NULL,
    active_time             double precision NOT NULL,
    idle_in_transaction_time double precision NOT NULL,
    sessions                bigint      NOT NULL,
    sessions_abandoned      bigint      NOT NULL,
    sessions_fatal          bigint      NOT NULL,
    sessions_killed         bigint      NOT NULL,
    database_size           bigint,
    xid_age                 integer,
    -- this snapshot's top-level statement deltas of the database (statement_stats), summed at
    -- collection so that per-minute series need not read every statement row: executions,
    -- execution time (ms), and statements whose mean time exceeded
    -- dbanalytics.slow_query_threshold as the collector had it
    calls                   bigint,
    total_exec_time         double precision,
    slow_statements         integer
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('database_stats', 'interval_end', '(interval_end)');

CREATE TABLE @extschema@.table_stats (
    interval_start      timestamptz NOT NULL,
    interval_end        timestamptz NOT NULL,
    datname             text        NOT NULL,
    relid               oid         NOT NULL,
    schemaname          text        NOT NULL,
    relname             text        NOT NULL,
    reset               boolean     NOT NULL,
    seq_scan            bigint      NOT NULL,
    seq_tup_read        bigint      NOT NULL,
    idx_scan            bigint      NOT NULL,
    idx_tup_fetch       bigint      NOT NULL,
    n_tup_ins           bigint      NOT NULL,
    n_tup_upd           bigint      NOT NULL,
    n_tup_del           bigint      NOT NULL,
    n_tup_hot_upd       bigint      NOT NULL,
    vacuum_count        bigint      NOT NULL,
    autovacuum_count    bigint      NOT NULL,
    analyze_count       bigint      NOT NULL,
    autoanalyze_count   bigint      NOT NULL,
    heap_blks_read      bigint      NOT NULL,
    heap_blks_hit       bigint      NOT NULL,
    n_live_tup          bigint,
    n_dead_tup          bigint,
    n_mod_since_analyze bigint,
    last_vacuum         timestamptz,
    last_autovacuum     timestamptz,
    last_analyze        timestamptz,
    last_autoanalyze    timestamptz,
    table_size          bigint,
    frozenxid_age       integer
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('table_stats', 'interval_end', '(interval_end)');

CREATE TABLE @extschema@.index_stats (
    interval_start   timestamptz NOT NULL,
    interval_end     timestamptz NOT NULL,
    datname          text        NOT NULL,
    indexrelid       oid         NOT NULL,
    relid            oid         NOT NULL,
    schemaname       text        NOT NULL,
    relname          text        NOT NULL,
    indexrelname     text        NOT NULL,
    reset            boolean     NOT NULL,
    idx_scan         bigint      NOT NULL,
    idx_tup_read     bigint      NOT NULL,
    idx_tup_fetch    bigint      NOT NULL,
    idx_blks_read    bigint      NOT NULL,
    idx_blks_hit     bigint      NOT NULL,
    index_size       bigint
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('index_stats', 'interval_end', '(interval_end)');

-- Hourly rollups of table_stats and index_stats (collector, rollup_hours source, with
-- statement_hourly): the counters summed per object and hour for the intervals ending in
-- (hour_end - 1 hour, hour_end]. Gauges (sizes, tuple counts, last vacuum) stay in the
-- per-snapshot tables.
CREATE TABLE @extschema@.table_hourly (
    hour_end            timestamptz NOT NULL,
    first_start         timestamptz NOT NULL,
    last_end            timestamptz NOT NULL,
    datname             text        NOT NULL,
    relid               oid         NOT NULL,
    schemaname          text        NOT NULL,
    relname             text        NOT NULL,
    reset               boolean     NOT NULL,
    intervals           integer     NOT NULL,
    seq_scan            bigint      NOT NULL,
    seq_tup_read        bigint      NOT NULL,
    idx_scan            bigint      NOT NULL,
    idx_tup_fetch       bigint      NOT NULL,
    n_tup_ins           bigint      NOT NULL,
    n_tup_upd           bigint      NOT NULL,
    n_tup_del           bigint      NOT NULL,
    n_tup_hot_upd       bigint      NOT NULL,
    vacuum_count        bigint      NOT NULL,
    autovacuum_count    bigint      NOT NULL,
    analyze_count       bigint      NOT NULL,
    autoanalyze_count   bigint      NOT NULL,
    heap_blks_read      bigint      NOT NULL,
    heap_blks_hit       bigint      NOT NULL
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('table_hourly', 'hour_end', '(hour_end)');

CREATE TABLE @extschema@.index_hourly (
    hour_end         timestamptz NOT NULL,
    first_start      timestamptz NOT NULL,
    last_end         timestamptz NOT NULL,
    datname          text        NOT NULL,
    indexrelid       oid         NOT NULL,
    relid            oid         NOT NULL,
    schemaname       text        NOT NULL,
    relname          text        NOT NULL,
    indexrelname     text        NOT NULL,
    reset            boolean     NOT NULL,
    intervals        integer     NOT NULL,
    idx_scan         bigint      NOT NULL,
    idx_tup_read     bigint      NOT NULL,
    idx_tup_fetch    bigint      NOT NULL,
    idx_blks_read    bigint      NOT NULL,
    idx_blks_hit     bigint      NOT NULL
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('index_hourly', 'hour_end', '(hour_end)');

CREATE TABLE @extschema@.bgwriter_stats (
    interval_start        timestamptz NOT NULL,
    interval_end          timestamptz NOT NULL,
    reset                 boolean     NOT NULL,
    checkpoints_timed     bigint      NOT NULL,
    checkpoints_req       bigint      NOT NULL,
    checkpoint_write_time double precision NOT NULL,
    checkpoint_sync_time  double precision NOT NULL,
    buffers_checkpoint    bigint      NOT NULL,
    buffers_clean         bigint      NOT NULL,
    maxwritten_clean      bigint      NOT NULL,
    buffers_backend       bigint      NOT NULL,
    buffers_backend_fsync bigint      NOT NULL,
    buffers_alloc         bigint      NOT NULL
) PARTITION BY RANGE (interval_end);

-- pg_stat_io (PostgreSQL 16+): I/O by backend type, object and context, deltas per snapshot
-- under the names of versions.sql (_io_now()). Only the combinations with some activity in the
-- interval get a row; a counter pg_stat_io shows as NULL (an operation that does not happen in
-- that context) is 0. Bytes are the server's own on 18+ and operations times op_bytes before.
CREATE TABLE @extschema@.io_stats (
    interval_start timestamptz NOT NULL,
    interval_end   timestamptz NOT NULL,
    reset          boolean     NOT NULL,
    backend_type   text        NOT NULL,
    object         text        NOT NULL,
    context        text        NOT NULL,
    reads          bigint      NOT NULL,
    read_bytes     bigint      NOT NULL,
    read_time      double precision NOT NULL,
    writes         bigint      NOT NULL,
    write_bytes    bigint      NOT NULL,
    write_time     double precision NOT NULL,
    writebacks     bigint      NOT NULL,
    writeback_time double precision NOT NULL,
    extends        bigint      NOT NULL,
    extend_bytes   bigint      NOT NULL,
    extend_time    double precision NOT NULL,
    hits           bigint      NOT NULL,
    evictions      bigint      NOT NULL,
    reuses         bigint      NOT NULL,
    fsyncs         bigint      NOT NULL,
    fsync_time     double precision NOT NULL
) PARTITION BY RANGE (interval_end);

-- Replication is gauges (positions and lags), one row per standby / slot per snapshot.
CREATE TABLE @extschema@.replication_stats (
    interval_start   timestamptz NOT NULL,
    interval_end     timestamptz NOT NULL,
    pid              integer,
    usename          text,
    application_name text,
    client_addr      inet,
    state            text,
    sync_state       text,
    sent_lsn         pg_lsn,
    write_lsn        pg_lsn,
    flush_lsn        pg_lsn,
    replay_lsn       pg_lsn,
    write_lag_s      double precision,
    flush_lag_s      double precision,
    replay_lag_s     double precision,
    replay_lag_bytes bigint
) PARTITION BY RANGE (interval_end);

CREATE TABLE @extschema@.replication_slot_stats (
    interval_start      timestamptz NOT NULL,
    interval_end        timestamptz NOT NULL,
    slot_name           text        NOT NULL,
    slot_type           text,
    datname             text,
    active              boolean,
    wal_status          text,
    restart_lsn         pg_lsn,
    confirmed_flush_lsn pg_lsn,
    retained_bytes      bigint,
    safe_wal_size       bigint
) PARTITION BY RANGE (interval_end);

-- The server and its host at each snapshot (collector, "server" source, _server_now()): the
-- counters of the next transaction ID (full, with its epoch) and multixact ID, for the rate at
-- which they are consumed (wraparound_risk); the WAL position (wal_generation); the file
-- systems of the data directory and, where it is another one, of pg_wal: bytes used and bytes
-- still available to PostgreSQL (space_growth); and on Linux the host's cumulative CPU seconds,
-- memory, 1-minute load average and bytes read from and written to block devices (host_stats),
-- with host_status 'ok' or why /proc could not be read (then those columns are NULL).
CREATE TABLE @extschema@.server_stats (
    interval_end             timestamptz NOT NULL,
    next_xid                 bigint      NOT NULL,
    next_multixact           bigint      NOT NULL,
    wal_lsn                  pg_lsn,
    disk_used_bytes          bigint,
    disk_available_bytes     bigint,
    wal_disk_used_bytes      bigint,
    wal_disk_available_bytes bigint,
    host_status              text        NOT NULL,
    boot_time                timestamptz,
    cpus                     integer,
    cpu_user_seconds         double precision,
    cpu_system_seconds       double precision,
    cpu_iowait_seconds       double precision,
    cpu_idle_seconds         double precision,
    cpu_other_seconds        double precision,
    mem_total_bytes          bigint,
    mem_available_bytes      bigint,
    load1                    double precision,
    disk_read_bytes          bigint,
    disk_write_bytes         bigint
) PARTITION BY RANGE (interval_end);

-- Daily sizes (rollup_hours source, _rollup_size_days): per UTC day, the last size the day's
-- snapshots saw of each database, table and index, and the bytes used on the file systems of
-- the data directory and pg_wal. Kept in the day tier, for space_growth's fits over months.
CREATE TABLE @extschema@.size_daily (
    day_end     timestamptz NOT NULL,
    measured_at timestamptz NOT NULL,
    object_type text        NOT NULL CHECK (object_type IN ('database', 'table', 'index', 'filesystem')),
    -- NULL for a file system
    datname     text,
    -- the table's or index's oid, the database's oid; 0 for a file system
    objid       oid         NOT NULL,
    schemaname  text,
    -- the table or index; 'data directory' or 'pg_wal' for a file system
    relname     text,
    size_bytes  bigint      NOT NULL
) PARTITION BY RANGE (day_end);

-------------------------------------------------------------------------------
-- Self-monitoring: one row per run of one source.
-------------------------------------------------------------------------------

CREATE TABLE @extschema@.collector_runs (
    started_at  timestamptz NOT NULL,
    worker      text        NOT NULL,
    source      text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('ok', 'error', 'skipped')),
    duration_ms double precision NOT NULL,
    rows        bigint      NOT NULL DEFAULT 0,
    reset       boolean     NOT NULL DEFAULT false,
    message     text
) PARTITION BY RANGE (started_at);
INSERT INTO @extschema@.partition_indexes VALUES ('collector_runs', 'source_started_at', '(source, started_at)');
-- each source's latest error (collector_status), without walking every run of a source that
-- never failed
INSERT INTO @extschema@.partition_indexes VALUES ('collector_runs', 'errors', '(source, started_at) WHERE status = ''error''');

-------------------------------------------------------------------------------
-- Collector state: each source's progress (source_state) and the cumulative values seen at
-- the previous snapshot (the UNLOGGED *_counters tables: after a crash they are empty, and so
-- are the server's counters).
-------------------------------------------------------------------------------

-- Each source's state, written by the source's own SQL (_snapshot_source, _remember_epoch,
-- _rollup_minutes, _rollup_hours): for a counter source, the epoch its counters were last read
-- in (see src/collect/epoch.rs) and the time of that snapshot; for a rollup ('rollup', 'hours',
-- 'days', 'size_days'), updated_at is how far it has rolled up. Epoch times are kept as exact
-- epoch seconds in text, so that comparing them never depends on a session's TimeZone.
CREATE TABLE @extschema@.source_state (
    source           text PRIMARY KEY,
    server_life      text,
    stats_reset      text,
    dealloc          bigint,
    updated_at       timestamptz NOT NULL
);

-- One row that a crash wipes (unlogged) while a clean restart keeps it: with the postmaster's
-- start time it tells apart every life of the server's counters, crash restarts included.
CREATE UNLOGGED TABLE @extschema@.server_life (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    since     timestamptz NOT NULL
);

CREATE UNLOGGED TABLE @extschema@.statement_counters (
    dbid oid NOT NULL, userid oid NOT NULL, queryid bigint NOT NULL, toplevel boolean NOT NULL,
    captured_at timestamptz NOT NULL,
    LIKE @extschema@.statement_counter_values,
    PRIMARY KEY (dbid, userid, queryid, toplevel)
);

CREATE UNLOGGED TABLE @extschema@.database_counters (
    datid oid PRIMARY KEY, captured_at timestamptz NOT NULL, stats_reset timestamptz,
    xact_commit bigint, xact_rollback bigint, blks_read bigint, blks_hit bigint,
    tup_returned bigint, tup_fetched bigint, tup_inserted bigint, tup_updated bigint,
    tup_deleted bigint, conflicts bigint, temp_files bigint, temp_bytes bigint, deadlocks bigint,
    checksum_failures bigint, blk_read_time double precision, blk_write_time double precision,
    session_time double precision, active_time double precision,
    idle_in_transaction_time double precision, sessions bigint, sessions_abandoned bigint,
    sessions_fatal bigint, sessions_killed bigint
);

CREATE UNLOGGED TABLE @extschema@.table_counters (
    relid oid PRIMARY KEY, captured_at timestamptz NOT NULL,
    seq_scan bigint, seq_tup_read bigint, idx_scan bigint, idx_tup_fetch bigint,
    n_tup_ins bigint, n_tup_upd bigint, n_tup_del bigint, n_tup_hot_upd bigint,
    vacuum_count bigint, autovacuum_count bigint, analyze_count bigint, autoanalyze_count bigint,
    heap_blks_read bigint, heap_blks_hit bigint,
    n_live_tup bigint, n_dead_tup bigint, table_size bigint
);

CREATE UNLOGGED TABLE @extschema@.index_counters (
    indexrelid oid PRIMARY KEY, captured_at timestamptz NOT NULL,
    first_seen timestamptz NOT NULL,  -- when the collector first saw the index (evidence of use)
    idx_scan bigint, idx_tup_read bigint, idx_tup_fetch bigint,
    idx_blks_read bigint, idx_blks_hit bigint, index_size bigint
);

CREATE UNLOGGED TABLE @extschema@.bgwriter_counters (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), captured_at timestamptz NOT NULL,
    checkpoints_timed bigint, checkpoints_req bigint, checkpoint_write_time double precision,
    checkpoint_sync_time double precision, buffers_checkpoint bigint, buffers_clean bigint,
    maxwritten_clean bigint, buffers_backend bigint, buffers_backend_fsync bigint,
    buffers_alloc bigint
);

CREATE UNLOGGED TABLE @extschema@.io_counters (
    backend_type text NOT NULL, object text NOT NULL, context text NOT NULL,
    captured_at timestamptz NOT NULL,
    reads bigint, read_bytes bigint, read_time double precision, writes bigint,
    write_bytes bigint, write_time double precision, writebacks bigint,
    writeback_time double precision, extends bigint, extend_bytes bigint,
    extend_time double precision, hits bigint, evictions bigint, reuses bigint, fsyncs bigint,
    fsync_time double precision,
    PRIMARY KEY (backend_type, object, context)
);

-- pg_dump keeps the collected history (the counters above are rebuilt by the collector).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.statements', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.source_state', '');
-- activity_raw rows mean nothing without the keys they point to. A sequence is dumped only when
-- registered itself: the identity keeps its position, so keys added after a restore do not
-- take the restored keys' ids.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_keys', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_keys_key_id_seq', '');

-- Statement counters added after 0.1.0 go here, after every table, one line each
-- (ALTER TYPE @extschema@.statement_counter_values ADD ATTRIBUTE ...), and into their upgrade
-- script with the same call: it gives each of the four tables the column, at its end.
SELECT @extschema@._add_statement_counter_columns();
