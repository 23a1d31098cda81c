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
-- Security (issue 14)
-------------------------------------------------------------------------------

-- Inlined helpers keep no SET clause (it would stop inlining): their operators are qualified.
CREATE OR REPLACE FUNCTION @extschema@.counter_delta(current_value bigint, previous_value bigint,
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

CREATE OR REPLACE FUNCTION @extschema@.counter_delta(current_value double precision,
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

CREATE OR REPLACE FUNCTION @extschema@._ms_before(sampled_at timestamptz, earlier timestamptz)
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

CREATE OR REPLACE FUNCTION @extschema@._ms_before_at(sampled_at timestamptz, ms_before integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE  -- as timestamptz - interval: so that it is inlined
AS $$
    SELECT CASE WHEN ms_before OPERATOR(pg_catalog.>=) 0
                THEN sampled_at OPERATOR(pg_catalog.-) (ms_before OPERATOR(pg_catalog.*) interval '1 millisecond')
                ELSE sampled_at OPERATOR(pg_catalog.+) (ms_before OPERATOR(pg_catalog.*) interval '1 second') END
$$;

CREATE OR REPLACE FUNCTION @extschema@._time_ceil(ts timestamptz, width_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_timestamp((pg_catalog.ceil(EXTRACT(epoch FROM ts) OPERATOR(pg_catalog./) width_seconds)
                                    OPERATOR(pg_catalog.*) width_seconds)::double precision)
$$;

CREATE OR REPLACE FUNCTION @extschema@._time_floor(ts timestamptz, width_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_timestamp((pg_catalog.floor(EXTRACT(epoch FROM ts) OPERATOR(pg_catalog./) width_seconds)
                                    OPERATOR(pg_catalog.*) width_seconds)::double precision)
$$;

-- Texts that may carry a secret are not stored; texts stored before are redacted now.
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

REVOKE ALL ON FUNCTION @extschema@._redact_secrets(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._redact_secrets(text) TO dbanalytics_reader;
UPDATE @extschema@.statements s SET query = @extschema@._redact_secrets(s.query)
 WHERE s.query IS DISTINCT FROM @extschema@._redact_secrets(s.query);

-- (_snapshot_statements: replaced once, by its latest version, further down)

-- Texts are shown exactly as pg_stat_statements shows them, matched by role OID and name;
-- text_visible says whether they are (plan_texts shows plans by the same rule).
CREATE OR REPLACE VIEW @extschema@.statement_texts AS
SELECT s.dbid, s.datname, s.userid, s.usename, s.queryid, s.toplevel, s.first_seen,
       CASE WHEN v.visible THEN s.query ELSE '<insufficient privilege>' END AS query,
       v.visible AS text_visible
  FROM @extschema@.statements s
 CROSS JOIN LATERAL (
       SELECT pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE')
              OR (s.userid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
                                                    WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
                  AND s.usename OPERATOR(pg_catalog.=) CURRENT_USER::pg_catalog.text) AS visible) v;

-- Bounded alert rules; payloads with what every listener may see; one failing rule never stops
-- the others.
ALTER TABLE @extschema@.alert_rules
    ADD CONSTRAINT alert_rules_rule_check CHECK (pg_catalog.length(rule) BETWEEN 1 AND 63),
    ADD CONSTRAINT alert_rules_description_check CHECK (pg_catalog.length(description) <= 1000);

-- (_evaluate_alerts: replaced once, by its latest version, further down)

-- (collector_status: replaced once, by its latest version, further down)

-- explain_analysis() pins its search_path and takes the caller's as an argument (its default is
-- evaluated in the caller's context, before the pinned one applies); it plans read-only.
DROP FUNCTION @extschema@.explain_analysis(text, boolean, boolean);
CREATE FUNCTION @extschema@.explain_analysis(
	"query" TEXT,
	"analyze" bool DEFAULT false,
	"allow_writes" bool DEFAULT false,
	"search_path" TEXT DEFAULT pg_catalog.current_setting('search_path')
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'explain_analysis_wrapper';
REVOKE ALL ON FUNCTION @extschema@.explain_analysis(text, boolean, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.explain_analysis(text, boolean, boolean, text) TO dbanalytics_reader;

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
    FOR part IN SELECT p.relname::pg_catalog.text AS parent, c.relname::pg_catalog.text AS partition
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

-- (_builtin_alert_rules: created further down, in the alert rules of issue 17)
-- (_alert_rule_as_shipped: created once, in its latest version, further down)

-- alert_rules: only the rules that differ from the built-in ones are dumped; a restored change
-- of a built-in rule replaces the seeded one; built-in rules are disabled, never deleted.
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

REVOKE ALL ON FUNCTION @extschema@._alert_rules_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._alert_rules_guard() TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Reliability (issue 15): a database's changed stats_reset marks its row as a reset without
-- zeroing its counters (a single-table reset moves it on 15; each counter that went down says so).
-------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @extschema@._snapshot_databases(previous_snapshot timestamptz,
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

-------------------------------------------------------------------------------
-- N+1 where it happens (issue 20): the executor hooks count runs of one statement after
-- another one (src/histogram/runs.rs); the collector stores them with the latency histograms;
-- query_analysis reports a lookup run once per key of its parent statement, with both.
-------------------------------------------------------------------------------
ALTER TABLE @extschema@.statement_latency
    ADD COLUMN runs bigint, ADD COLUMN run_executions bigint, ADD COLUMN run_max_length bigint,
    ADD COLUMN run_parent_queryid bigint;

-- (analytics_thresholds: replaced once, by its latest version, further down)

-- (_n_plus_one: replaced once, by its latest version, in the section of issue 20's run application)

-------------------------------------------------------------------------------
-- Issue 17 BEGIN: verdicts a DBA can act on. Pools tell lock hotspots, idle-in-transaction
-- leaks and a cluster near its connection limit apart and never grow a pool for them; an
-- index backing a foreign key is protected; constraint_checks (new) reports foreign keys
-- without an index and NOT VALID constraints; sequence_usage measures a sequence against the
-- column it feeds (new columns column_limit, used_by); table_maintenance judges missing_index
-- from the last hour's scans (new columns *_in_window); health_score counts only pool minutes a
-- pool or application change fixes; backup_recency scores a failing archiver and the .ready
-- backlog (new _archive_ready) and no longer calls an idle server bad; replication_lag stays
-- measured when a standby disconnects; cache_hit_ratio warns mildly from 0.99 to 0.95 (_health_scored). Restated whole from sql/analytics_*.sql and sql/health.sql.
-------------------------------------------------------------------------------
-- (analytics_thresholds: replaced once, by its latest version, further down)

CREATE FUNCTION @extschema@._archive_ready()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.has_function_privilege('pg_catalog.pg_ls_archive_statusdir()', 'EXECUTE') THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ls_archive_statusdir() f WHERE f.name LIKE '%.ready');
END
$$;
REVOKE ALL ON FUNCTION @extschema@._archive_ready() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._archive_ready() TO dbanalytics_reader;

-- (_pool_analytics: replaced once, by its latest version, further down)

-- (index_effectiveness: replaced once, by its latest version, further down)

-- (_health_measures: replaced once, by its latest version, further down)

CREATE OR REPLACE FUNCTION @extschema@._health_scored(analysis_window interval)
RETURNS TABLE (component text, indicator text, value numeric, unit text, status text, warn numeric,
               bad numeric, weight numeric, points numeric, evidence text, source text, impact text,
               mitigation text, action text, effort text, bad_severity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH judged AS (
    SELECT m.*,
           CASE
               WHEN m.measurable IN ('unknown', 'not_configured', 'not_applicable') THEN m.measurable
               WHEN m.value IS NULL THEN 'not_applicable'
               WHEN (m.higher_is_worse AND m.value >= m.bad) OR (NOT m.higher_is_worse AND m.value <= m.bad) THEN 'bad'
               WHEN (m.higher_is_worse AND m.value > m.warn) OR (NOT m.higher_is_worse AND m.value < m.warn) THEN 'warn'
               -- the mild band of cache_hit_ratio: 0.99 is ok, 0.95 to 0.99 a mild warning (issue 17)
               WHEN m.indicator = 'cache_hit_ratio' AND m.value < 0.99 THEN 'warn'
               ELSE 'ok'
           END AS status
      FROM @extschema@._health_measures(analysis_window) m
)
SELECT j.component, j.indicator, j.value, j.unit, j.status, j.warn, j.bad, j.weight,
       pg_catalog.round(CASE j.status
           WHEN 'bad' THEN j.weight
           -- the mild band: up to a fifth of the weight, linearly from 0.99 down to the warn threshold
           WHEN 'warn' THEN CASE WHEN j.indicator = 'cache_hit_ratio' AND j.value >= j.warn
                                 THEN j.weight * 0.2 * (0.99 - j.value) / (0.99 - j.warn)
                                 ELSE j.weight * (0.5 + 0.5 * (j.value - j.warn) / (j.bad - j.warn)) END
           WHEN 'unknown' THEN j.weight / 2
           WHEN 'not_configured' THEN j.weight / 2
           ELSE 0
       END, 4),
       j.evidence, j.source, j.impact, j.mitigation, j.action, j.effort, j.bad_severity
  FROM judged j
$$;

-- (table_maintenance: replaced once, by its latest version, further down)

CREATE OR REPLACE VIEW @extschema@.sequence_usage AS
SELECT u.schemaname, u.sequencename, u.data_type, u.last_value, u.min_value, u.max_value, u.increment_by,
       u.used_ratio, u.cycle,
       CASE WHEN NOT u.cycle AND u.used_ratio > @extschema@._threshold('sequence_exhaustion')
            THEN 'near_exhaustion' ELSE 'ok' END AS status,
       u.column_limit, u.used_by
  FROM (SELECT s.schemaname, s.sequencename, s.data_type, s.last_value, s.min_value,
               s.max_value, s.increment_by, s.cycle, s.column_limit, s.used_by,
               -- the share of the range already used, in the direction the sequence moves, up to
               -- the end of the range or the narrowest column's limit, whichever comes first
               CASE WHEN s.increment_by > 0
                    THEN (COALESCE(s.last_value, s.start_value) - s.min_value)::double precision
                         / NULLIF(LEAST(s.max_value, s.column_limit)::double precision - s.min_value, 0)
                    ELSE (s.max_value - COALESCE(s.last_value, s.start_value))::double precision
                         / NULLIF(s.max_value - GREATEST(s.min_value::double precision, -s.column_limit::double precision - 1), 0)
               END AS used_ratio
          FROM (SELECT q.schemaname::pg_catalog.text, q.sequencename::pg_catalog.text, q.data_type::pg_catalog.text,
                       q.last_value, q.start_value, q.min_value, q.max_value, q.increment_by, q.cycle,
                       c.column_limit, c.used_by
                  FROM pg_catalog.pg_sequences q
                  JOIN pg_catalog.pg_namespace n ON n.nspname = q.schemaname
                  JOIN pg_catalog.pg_class sc ON sc.relnamespace = n.oid AND sc.relname = q.sequencename
                  LEFT JOIN LATERAL (
                      -- the columns it feeds: owned (serial, identity) or named in a DEFAULT
                      SELECT pg_catalog.min(CASE WHEN a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.int2'::pg_catalog.regtype THEN 32767
                                                            WHEN a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647
                                                            ELSE 9223372036854775807 END) AS column_limit,
                             pg_catalog.string_agg(DISTINCT pg_catalog.format('%s.%I (%s)', f.relid::pg_catalog.regclass, a.attname,
                                                                              pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ') AS used_by
                        FROM (SELECT d.refobjid AS relid, d.refobjsubid AS attnum
                                FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = sc.oid
                                 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
                                 AND d.deptype IN ('a', 'i')
                              UNION
                              SELECT ad.adrelid, ad.adnum
                                FROM pg_catalog.pg_depend d
                                JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
                               WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
                                 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = sc.oid) f
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = f.relid AND a.attnum = f.attnum
                       WHERE a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,
                                            'pg_catalog.int8'::pg_catalog.regtype)) c ON true
                 WHERE q.schemaname <> '@extschema@') s) u;

CREATE VIEW @extschema@.constraint_checks AS
WITH constraints AS (
    SELECT k.oid, k.conname::pg_catalog.text AS constraint_name, k.contype, k.convalidated, k.conrelid, k.confrelid, k.conkey,
           n.nspname::pg_catalog.text AS schemaname, t.relname::pg_catalog.text AS tablename
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_class t ON t.oid = k.conrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
     WHERE k.contype IN ('f', 'c') AND k.conparentid = 0
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', '@extschema@')
       AND n.nspname !~ '^pg_(toast|temp_)'
), unindexed AS (
    SELECT c.*,
           (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY x.ord)
              FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS x(attnum, ord)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = x.attnum) AS columns
      FROM constraints c
     WHERE c.contype = 'f'
       AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_index i
            WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
              AND pg_catalog.cardinality(c.conkey) <= i.indnkeyatts
              AND NOT EXISTS (SELECT FROM pg_catalog.unnest(c.conkey) AS x(attnum)
                               WHERE COALESCE(pg_catalog.array_position(i.indkey::pg_catalog.int2[], x.attnum)
                                              - pg_catalog.array_lower(i.indkey::pg_catalog.int2[], 1), 2147483647)
                                     >= pg_catalog.cardinality(c.conkey)))
)
SELECT u.schemaname, u.tablename, u.constraint_name, 'foreign_key_without_index'::pg_catalog.text AS issue,
       pg_catalog.format('no index on %I.%I leads with (%s): every DELETE or key UPDATE on %s scans the whole table, and joins on the key cannot use an index',
                         u.schemaname, u.tablename, u.columns, u.confrelid::pg_catalog.regclass) AS detail,
       pg_catalog.format('CREATE INDEX CONCURRENTLY ON %I.%I (%s);', u.schemaname, u.tablename, u.columns) AS recommendation
  FROM unindexed u
UNION ALL
SELECT c.schemaname, c.tablename, c.constraint_name, 'not_valid',
       pg_catalog.format('%s constraint added NOT VALID and never validated: rows that existed before are not checked',
                         CASE WHEN c.contype OPERATOR(pg_catalog.=) 'f' THEN 'foreign key' ELSE 'check' END),
       pg_catalog.format('ALTER TABLE %I.%I VALIDATE CONSTRAINT %I;  -- takes only a SHARE UPDATE EXCLUSIVE lock',
                         c.schemaname, c.tablename, c.constraint_name)
  FROM constraints c
 WHERE NOT c.convalidated
 ORDER BY 1, 2, 3, 4;
GRANT SELECT ON @extschema@.constraint_checks TO dbanalytics_reader;
-- Issue 17 END

-------------------------------------------------------------------------------
-- Issue 18 BEGIN (wait events, vacuum blockers, WAL and replication risk): sql/analytics_waits.sql
-- and sql/analytics_wal.sql, restated whole,
-- with the privileges sql/finalize.sql gives every analytics object on a fresh install.
-- dbanalytics analytics: wait events (where active time goes) and what holds back vacuum.
--
-- Wait events come from the activity samples: one row per non-idle client backend and tick.
-- Active time is the samples in state 'active' (or 'fastpath function call'); a sample with no
-- wait event is CPU (shown as wait_event_type = wait_event = 'CPU'). Averages divide by the
-- sampler's ticks, so avg_active_sessions is the average number of sessions in that wait, as
-- Oracle's ASH and pg_wait_sampling's profile report.

-- The minutes of a window the minute rollups serve: [lo, hi), the whole minutes from the
-- first one starting at or after since up to where the rollup has got. The raw samples serve
-- [since, lo) and [hi, now].
CREATE FUNCTION @extschema@._minute_span(since timestamptz, OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.lo, GREATEST(b.lo, COALESCE(@extschema@._rolled_until('rollup'), '-infinity'::timestamptz))
      FROM (SELECT CASE WHEN pg_catalog.date_trunc('minute', since) = since THEN since
                        ELSE pg_catalog.date_trunc('minute', since) + interval '1 minute' END AS lo) b
$$;

-- (_wait_samples: not created; issue 13 below replaced it by _wait_totals before 0.2.0)

-- Sampler ticks per minute since a time (every tick leaves at least one connection_samples row;
-- connection_minute stores each minute's ticks on every row of the minute).
CREATE FUNCTION @extschema@._sample_ticks(since timestamptz)
RETURNS TABLE (minute timestamptz, ticks bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH span AS (SELECT * FROM @extschema@._minute_span(since))
SELECT c.minute, pg_catalog.max(c.ticks)::bigint
  FROM span s, @extschema@.connection_minute c
 WHERE c.minute >= s.lo AND c.minute < s.hi
 GROUP BY 1
UNION ALL
SELECT pg_catalog.date_trunc('minute', c.sampled_at), pg_catalog.count(DISTINCT c.sampled_at)
  FROM span s, @extschema@.connection_samples c
 WHERE (c.sampled_at >= since AND c.sampled_at < s.lo) OR c.sampled_at >= GREATEST(since, s.hi)
 GROUP BY 1
$$;

-- The sampler's tick in seconds (dbanalytics.sample_interval, 1 s when not defined here).
CREATE FUNCTION @extschema@._tick_seconds()
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT s.setting::double precision / 1000 FROM pg_catalog.pg_settings s
                      WHERE s.name = 'dbanalytics.sample_interval'), 1)
$$;

-- (wait_events, function and view: created once, in their latest version, further down)

-- (wait_events_by_minute: created once, in its latest version, further down)

-- (query_waits: created once, in its latest version, further down)

-- Live: who holds the xmin horizon back, so that vacuum cannot remove dead rows (or freeze).
-- One row per holder: a transaction (running or idle in transaction), a replication slot's
-- xmin or catalog_xmin, a prepared transaction, a standby's hot_standby_feedback. Reads only
-- views a hot standby answers too.
CREATE VIEW @extschema@.vacuum_blockers AS
WITH holders AS (
    SELECT CASE WHEN a.state LIKE 'idle in transaction%' THEN 'idle_in_transaction' ELSE 'transaction' END
               AS holder_type,
           a.pid, a.datname::pg_catalog.text AS datname, a.usename::pg_catalog.text AS usename,
           a.application_name, a.client_addr, a.state, NULL::pg_catalog.text AS slot_name,
           NULL::pg_catalog.text AS gid,
           CASE WHEN a.backend_xid IS NULL THEN a.backend_xmin
                WHEN a.backend_xmin IS NULL THEN a.backend_xid
                WHEN pg_catalog.age(a.backend_xid) > pg_catalog.age(a.backend_xmin) THEN a.backend_xid
                ELSE a.backend_xmin END AS horizon,
           a.xact_start AS since, false AS all_databases, false AS catalog_only,
           CASE WHEN a.state LIKE 'idle in transaction%'
                THEN pg_catalog.format('the session is idle in an open transaction: commit or roll back in the application, '
                                       'or end it with SELECT pg_catalog.pg_terminate_backend(%s); '
                                       'set idle_in_transaction_session_timeout to prevent this', a.pid)
                ELSE pg_catalog.format('a long transaction: let it finish, or cancel it with '
                                       'SELECT pg_catalog.pg_cancel_backend(%s) (pg_terminate_backend ends the session)', a.pid)
           END AS action
      FROM pg_catalog.pg_stat_activity a
     WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
       AND a.pid <> pg_catalog.pg_backend_pid()
       -- a walsender's xmin is a standby's feedback (below); vacuum's own xmin holds back no one
       AND a.backend_type NOT IN ('walsender', 'autovacuum worker')
    UNION ALL
    SELECT 'replication_slot', s.active_pid, s.database::pg_catalog.text, NULL, NULL, NULL,
           CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.slot_name::pg_catalog.text, NULL,
           s.xmin, NULL, true, false,
           CASE WHEN s.active
                THEN pg_catalog.format('the consumer of slot %s (pid %s) lags: make it catch up, or drop the slot', s.slot_name, s.active_pid)
                ELSE pg_catalog.format('slot %s is inactive: if its consumer is gone, SELECT pg_catalog.pg_drop_replication_slot(%L)',
                                       s.slot_name, s.slot_name) END
      FROM pg_catalog.pg_replication_slots s
     WHERE s.xmin IS NOT NULL
    UNION ALL
    SELECT 'replication_slot_catalog', s.active_pid, s.database::pg_catalog.text, NULL, NULL, NULL,
           CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.slot_name::pg_catalog.text, NULL,
           s.catalog_xmin, NULL, true, true,
           CASE WHEN s.active
                THEN pg_catalog.format('the logical consumer of slot %s (pid %s) lags: make it catch up, or drop the slot', s.slot_name, s.active_pid)
                ELSE pg_catalog.format('logical slot %s is inactive: if its consumer is gone, SELECT pg_catalog.pg_drop_replication_slot(%L)',
                                       s.slot_name, s.slot_name) END
      FROM pg_catalog.pg_replication_slots s
     WHERE s.catalog_xmin IS NOT NULL
    UNION ALL
    SELECT 'prepared_transaction', NULL, p.database::pg_catalog.text, p.owner::pg_catalog.text, NULL, NULL,
           'prepared', NULL, p.gid, p.transaction, p.prepared, false, false,
           pg_catalog.format('a prepared transaction waits for its transaction manager: COMMIT PREPARED %L or ROLLBACK PREPARED %L (in database %s)',
                             p.gid, p.gid, p.database)
      FROM pg_catalog.pg_prepared_xacts p
    UNION ALL
    SELECT 'standby_feedback', r.pid, NULL, r.usename::pg_catalog.text, r.application_name, r.client_addr,
           r.state, NULL, NULL, r.backend_xmin, r.backend_start, true, false,
           pg_catalog.format('a query on standby %s holds it through hot_standby_feedback: end long queries there, '
                             'or set hot_standby_feedback = off on it (queries there may then be cancelled)',
                             COALESCE(NULLIF(r.application_name, ''), r.client_addr::pg_catalog.text, r.pid::pg_catalog.text))
      FROM pg_catalog.pg_stat_replication r
     WHERE r.backend_xmin IS NOT NULL
), dead AS (
    -- dead rows in this database's tables now, all of them and the system catalogs' alone
    SELECT COALESCE(pg_catalog.sum(t.n_dead_tup), 0)::bigint AS all_tables,
           COALESCE(pg_catalog.sum(t.n_dead_tup) FILTER (WHERE t.schemaname = 'pg_catalog'), 0)::bigint AS catalogs
      FROM pg_catalog.pg_stat_all_tables t
), aged AS (
    SELECT h.*, pg_catalog.age(h.horizon) AS xmin_age FROM holders h
)
SELECT h.holder_type, h.pid, h.datname, h.usename, h.application_name, h.client_addr, h.state,
       h.slot_name, h.gid, h.horizon AS xmin, h.xmin_age,
       h.xmin_age = pg_catalog.max(h.xmin_age) OVER () AS oldest,
       h.since, pg_catalog.now() - h.since AS duration,
       CASE WHEN h.all_databases THEN 'all databases' ELSE COALESCE(h.datname, 'all databases') END AS holds_back,
       -- the dead rows vacuum cannot remove while this horizon stays, at most: those of this
       -- database's tables when the holder reaches them, not only the ones newer than it
       CASE WHEN NOT (h.all_databases OR h.datname IS NULL OR h.datname = pg_catalog.current_database()::pg_catalog.text) THEN NULL
            WHEN h.catalog_only THEN d.catalogs
            ELSE d.all_tables END AS dead_tuples_here,
       h.action
  FROM aged h CROSS JOIN dead d
 ORDER BY h.xmin_age DESC, h.holder_type, h.pid;

-- dbanalytics analytics: WAL and replication risk (retained WAL per slot, inactive slots,
-- standbys that disappeared) and checkpoint health. The top WAL writers are
-- top_queries(order_by => 'wal_bytes').

-- (replication_risks, function and view: created once, in their latest version, further down)

-- Checkpoint health over the window, from the checkpointer and background writer history.
CREATE FUNCTION @extschema@.checkpoint_health(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (checkpoints_timed bigint, checkpoints_req bigint, requested_share double precision,
               minutes_between_checkpoints double precision, buffers_checkpoint bigint,
               buffers_clean bigint, buffers_backend bigint, backend_write_share double precision,
               maxwritten_clean bigint, covered interval, status text, recommendation text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH totals AS (
    SELECT pg_catalog.sum(b.checkpoints_timed)::bigint AS timed, pg_catalog.sum(b.checkpoints_req)::bigint AS req,
           pg_catalog.sum(b.buffers_checkpoint)::bigint AS by_checkpoint, pg_catalog.sum(b.buffers_clean)::bigint AS by_bgwriter,
           pg_catalog.sum(b.buffers_backend)::bigint AS by_backend, pg_catalog.sum(b.maxwritten_clean)::bigint AS maxwritten,
           pg_catalog.sum(b.interval_end - b.interval_start) AS covered
      FROM @extschema@.bgwriter_stats b
     WHERE b.interval_end > pg_catalog.now() - analysis_window
), shares AS (
    SELECT t.*, t.req::double precision / NULLIF(t.timed + t.req, 0) AS req_share,
           t.by_backend::double precision / NULLIF(t.by_checkpoint + t.by_bgwriter + t.by_backend, 0) AS backend_share
      FROM totals t
)
SELECT s.timed, s.req, s.req_share,
       EXTRACT(epoch FROM s.covered) / 60 / NULLIF(s.timed + s.req, 0),
       s.by_checkpoint, s.by_bgwriter, s.by_backend, s.backend_share, s.maxwritten, s.covered,
       CASE WHEN s.covered IS NULL THEN 'no_history'
            WHEN s.req_share > 0.1 THEN 'frequent_requested_checkpoints'
            WHEN s.backend_share > 0.1 THEN 'backends_write_buffers'
            ELSE 'ok' END,
       CASE WHEN s.covered IS NULL THEN 'no checkpointer history in the window yet (a snapshot stores it)'
            WHEN s.req_share > 0.1 THEN
                pg_catalog.format('%s%% of checkpoints were requested (WAL reached max_wal_size = %s before checkpoint_timeout = %s): '
                                  'raise max_wal_size so that checkpoints come from the timeout',
                                  pg_catalog.round((100 * s.req_share)::numeric, 1),
                                  pg_catalog.current_setting('max_wal_size'), pg_catalog.current_setting('checkpoint_timeout'))
            WHEN s.backend_share > 0.1 THEN
                pg_catalog.format('backends wrote %s%% of the buffers themselves: let the background writer do more '
                                  '(raise bgwriter_lru_maxpages, lower bgwriter_delay) or raise shared_buffers',
                                  pg_catalog.round((100 * s.backend_share)::numeric, 1))
            ELSE 'no action needed' END
  FROM shares s
$$;

REVOKE ALL ON FUNCTION @extschema@._minute_span(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._minute_span(timestamptz) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@._sample_ticks(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._sample_ticks(timestamptz) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@._tick_seconds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._tick_seconds() TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@.checkpoint_health(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.checkpoint_health(interval) TO dbanalytics_reader;
REVOKE ALL ON @extschema@.vacuum_blockers FROM PUBLIC;
GRANT SELECT ON @extschema@.vacuum_blockers TO dbanalytics_reader;
-- Issue 18 END

-- Every function pins its search_path (0.1.0 left 32 without): all that still have no SET
-- clause get one, except the inlined helpers above (a SET clause stops inlining). Functions
-- replaced above already carry their SET clause, and so do those the sections below create.
-------------------------------------------------------------------------------
DO $pin_search_path$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d
            ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
          JOIN pg_catalog.pg_extension e
            ON e.oid OPERATOR(pg_catalog.=) d.refobjid AND e.extname OPERATOR(pg_catalog.=) 'dbanalytics'
         WHERE p.proconfig IS NULL
           AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['counter_delta', '_ms_before', '_ms_before_at',
                                                             '_time_ceil', '_time_floor']::pg_catalog.name[])
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$pin_search_path$;

-------------------------------------------------------------------------------
-- Every supported PostgreSQL version (issue 11): sql/versions.sql maps each server's column
-- names to ours (docs/versions.md); the statements and bgwriter sources read through it.
-- _snapshot_statements and _snapshot_bgwriter are restated whole here: a later change to either
-- must be restated after this section.
-------------------------------------------------------------------------------

-- One list of the statement counters (issue 12): the tables statement_counters, statement_stats,
-- statement_hourly and statement_daily keep their columns (a fresh install takes them LIKE this
-- type, at the same places); the functions that name every counter build their lists from it.
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


REVOKE ALL ON FUNCTION @extschema@._statement_counter_columns(), @extschema@._statement_counter_list(text),
    @extschema@._add_statement_counter_columns() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._statement_counter_columns(), @extschema@._statement_counter_list(text)
    TO dbanalytics_reader;


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

-- The version-mapping readers are collection internals, like the _snapshot_* functions that call
-- them: not executable by readers (restated last, after the section that created them).
REVOKE EXECUTE ON FUNCTION @extschema@._statements_now(text), @extschema@._statements_epoch(text),
    @extschema@._bgwriter_now(), @extschema@._bgwriter_epoch()
    FROM dbanalytics_reader;

-------------------------------------------------------------------------------
-- Retention tiers (issue 13, docs/storage.md). dbanalytics.retention_history is replaced by
-- retention_minutes (statement, latency, table and index deltas: 1 day), retention_hours
-- (hourly rollups and the small per-minute tables: 30 days) and retention_days (daily
-- statement rollups: 1 year), settings only. The latency histograms get an hourly rollup,
-- statement_latency_hourly, which the latency analytics and N+1 runs read for whole hours, so
-- that percentiles outlive the minute rows; storage_usage shows what each tier costs.
-------------------------------------------------------------------------------
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
    run_parent_queryid bigint
) PARTITION BY RANGE (hour_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency_hourly', 'hour_end', '(hour_end)');
REVOKE ALL ON @extschema@.statement_latency_hourly FROM PUBLIC;
GRANT SELECT ON @extschema@.statement_latency_hourly TO dbanalytics_reader;
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
    run_parent_queryid bigint
) PARTITION BY RANGE (day_end);
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency_daily', 'day_end', '(day_end)');
REVOKE ALL ON @extschema@.statement_latency_daily FROM PUBLIC;
GRANT SELECT ON @extschema@.statement_latency_daily TO dbanalytics_reader;

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
                                l.runs, l.run_executions, l.run_max_length, l.run_parent_queryid
                           FROM @extschema@.statement_latency l
                          WHERE l.interval_end > $1 AND l.interval_end <= $2$s$;
        WHEN 'day' THEN
            target := 'statement_latency_daily';
            source := $s$SELECT @extschema@._time_ceil(h.hour_end, 86400) AS period_end, h.intervals,
                                h.dbid, h.userid, h.queryid, h.reset, h.executions, h.buckets, h.counts,
                                h.runs, h.run_executions, h.run_max_length, h.run_parent_queryid
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
               pg_catalog.max(x.run_max_length) AS run_max_length
          FROM src x
         GROUP BY 1, 2, 3, 4
    )
    SELECT t.period_end, t.dbid, t.userid, t.queryid, t.reset, t.intervals, t.executions,
           COALESCE(h.buckets, '{}'), COALESCE(h.counts, '{}'),
           t.runs, t.run_executions, t.run_max_length, p.parent
      FROM totals t
      LEFT JOIN histograms h ON (h.period_end, h.dbid, h.userid, h.queryid) = (t.period_end, t.dbid, t.userid, t.queryid)
      LEFT JOIN top_parents p ON (p.period_end, p.dbid, p.userid, p.queryid) = (t.period_end, t.dbid, t.userid, t.queryid)
    $q$, target, source) USING since, until;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The statement counters summed per statement and UTC hour (period 'hour': the statement_stats
-- intervals ending in (since, until] into statement_hourly) or UTC day (period 'day': the
-- statement_hourly hours ending in (since, until] into statement_daily); called by _rollup_hours
-- for the hours and days it rolls up. Every counter is summed (schema.sql:
-- statement_counter_values); peak_calls_per_transaction is the most calls per transaction of
-- the statement's database in any one snapshot interval of the period.
CREATE FUNCTION @extschema@._rollup_statements(period text, since timestamptz, until timestamptz)
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
    -- each source row as (period_end, first_start, last_end, key, reset, intervals, counters, peak)
    CASE period
        WHEN 'hour' THEN
            target := 'statement_hourly';
            source := pg_catalog.format($s$
                SELECT @extschema@._time_ceil(s.interval_end, 3600) AS period_end, s.interval_start AS first_start,
                       s.interval_end AS last_end, s.dbid, s.userid, s.queryid, s.toplevel, s.reset, 1 AS intervals, %s,
                       CASE WHEN d.datid IS NOT NULL
                            THEN s.calls::double precision / GREATEST(d.xact_commit + d.xact_rollback, 1) END AS peak
                  FROM @extschema@.statement_stats s
                  LEFT JOIN @extschema@.database_stats d ON d.interval_end = s.interval_end AND d.datid = s.dbid
                                                        AND d.interval_end > $1 AND d.interval_end <= $2
                 WHERE s.interval_end > $1 AND s.interval_end <= $2$s$,
                @extschema@._statement_counter_list('s.%1$I'));
        WHEN 'day' THEN
            target := 'statement_daily';
            source := pg_catalog.format($s$
                SELECT @extschema@._time_ceil(h.hour_end, 86400) AS period_end, h.first_start, h.last_end,
                       h.dbid, h.userid, h.queryid, h.toplevel, h.reset, h.intervals, %s,
                       h.peak_calls_per_transaction AS peak
                  FROM @extschema@.statement_hourly h
                 WHERE h.hour_end > $1 AND h.hour_end <= $2$s$,
                @extschema@._statement_counter_list('h.%1$I'));
        ELSE
            RAISE EXCEPTION 'dbanalytics: _rollup_statements: period must be hour or day, got %', period;
    END CASE;
    EXECUTE pg_catalog.format($q$
    INSERT INTO @extschema@.%I
           (%s, first_start, last_end, dbid, userid, queryid, toplevel, reset, intervals, %s,
            peak_calls_per_transaction)
    SELECT x.period_end, pg_catalog.min(x.first_start), pg_catalog.max(x.last_end),
           x.dbid, x.userid, x.queryid, x.toplevel, pg_catalog.bool_or(x.reset), pg_catalog.sum(x.intervals)::integer,
           %s, pg_catalog.max(x.peak)
      FROM (%s) x
     GROUP BY x.period_end, x.dbid, x.userid, x.queryid, x.toplevel
    $q$, target, CASE period WHEN 'hour' THEN 'hour_end' ELSE 'day_end' END,
         @extschema@._statement_counter_list('%1$I'), @extschema@._statement_counter_list('pg_catalog.sum(x.%1$I)'),
         source) USING since, until;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

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

REVOKE ALL ON FUNCTION @extschema@._rollup_latency(text, timestamptz, timestamptz),
    @extschema@._rollup_statements(text, timestamptz, timestamptz),
    @extschema@._rollup_table_hours(timestamptz, timestamptz),
    @extschema@._rollup_index_hours(timestamptz, timestamptz) FROM PUBLIC;

-- (_rollup_hours: replaced once, by its latest version, further down)

CREATE FUNCTION @extschema@._latency_parts(since timestamptz, until timestamptz,
                                           only_queryid bigint DEFAULT NULL)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, reset boolean, executions bigint,
               buckets smallint[], counts bigint[], runs bigint, run_executions bigint,
               run_max_length bigint, run_parent_queryid bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    span record := @extschema@._rollup_span(since, until);
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT d.dbid, d.userid, d.queryid, d.reset, d.executions, d.buckets, d.counts, d.runs,
               d.run_executions, d.run_max_length, d.run_parent_queryid
          FROM @extschema@.statement_latency_daily d
         WHERE d.day_end > $5 AND d.day_end <= $6
           AND ($7 IS NULL OR d.queryid = $7)
        UNION ALL
        -- statement_latency_hourly serves (lo, day_lo] and (day_hi, hi]
        SELECT h.dbid, h.userid, h.queryid, h.reset, h.executions, h.buckets, h.counts, h.runs,
               h.run_executions, h.run_max_length, h.run_parent_queryid
          FROM @extschema@.statement_latency_hourly h
         WHERE ((h.hour_end > $3 AND h.hour_end <= $5) OR (h.hour_end > $6 AND h.hour_end <= $4))
           AND ($7 IS NULL OR h.queryid = $7)
        UNION ALL
        -- statement_latency serves the rest: (since, lo] and (hi, until]
        SELECT l.dbid, l.userid, l.queryid, l.reset, l.executions, l.buckets, l.counts, l.runs,
               l.run_executions, l.run_max_length, l.run_parent_queryid
          FROM @extschema@.statement_latency l
         WHERE ((l.interval_end > $1 AND l.interval_end <= LEAST($3, $2))
                OR (l.interval_end > GREATEST($4, $1) AND l.interval_end <= $2))
           AND ($7 IS NULL OR l.queryid = $7)
    $q$ USING since, until, span.lo, span.hi, span.day_lo, span.day_hi, only_queryid;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._latency_parts(timestamptz, timestamptz, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._latency_parts(timestamptz, timestamptz, bigint) TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@._window_start(analysis_window interval)
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

-- Histograms merged in one pass: merged_latency_percentiles(buckets, counts, fractions) is
-- latency_percentiles() of many rows' histograms concatenated, without unnesting them (query
-- latency over a week unnested ~200,000 bucket counts to merge them). Its transition and final
-- functions are the library's, without a SET clause (docs/security.md: they resolve no name and
-- run once per row).
CREATE FUNCTION @extschema@."_latency_merge_step"(
	"state" internal,
	"buckets" smallint[],
	"counts" bigint[],
	"fractions" double precision[]
) RETURNS internal
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'dbanalytics_latency_merge_step';
CREATE FUNCTION @extschema@."_latency_merge_final"(
	"state" internal
) RETURNS double precision[]
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_latency_merge_final_wrapper';
CREATE AGGREGATE @extschema@.merged_latency_percentiles(buckets smallint[], counts bigint[],
                                                       fractions double precision[]) (
    SFUNC = @extschema@._latency_merge_step,
    STYPE = internal,
    FINALFUNC = @extschema@._latency_merge_final,
    PARALLEL = SAFE
);
REVOKE ALL ON FUNCTION @extschema@._latency_merge_step(internal, smallint[], bigint[], double precision[]),
    @extschema@._latency_merge_final(internal),
    @extschema@.merged_latency_percentiles(smallint[], bigint[], double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._latency_merge_step(internal, smallint[], bigint[], double precision[]),
    @extschema@._latency_merge_final(internal),
    @extschema@.merged_latency_percentiles(smallint[], bigint[], double precision[]) TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@.query_latency(analysis_window interval DEFAULT '1 hour',
                                          row_limit integer DEFAULT 20)
RETURNS TABLE (rank bigint, queryid bigint, datname text, usename text, query text,
               executions bigint, p50_ms double precision, p90_ms double precision,
               p95_ms double precision, p99_ms double precision, max_ms double precision,
               reset boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._row_limit(row_limit);  -- argument checks
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since, LEAST(row_limit, 1000) AS max_rows
), measured AS (
    -- each statement's histograms of the window merged (the parts' executions are their counts' sum)
    SELECT l.dbid, l.userid, l.queryid, pg_catalog.sum(l.executions)::bigint AS executions,
           @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.9,0.95,0.99,1}') AS p,
           pg_catalog.bool_or(l.reset) AS reset
      FROM args a, @extschema@._latency_parts(a.since, pg_catalog.now()) l
     WHERE pg_catalog.cardinality(l.buckets) > 0
     GROUP BY l.dbid, l.userid, l.queryid
), ranked AS (
    SELECT m.*, pg_catalog.row_number() OVER (ORDER BY m.p[4] DESC, m.executions DESC, m.queryid) AS rank
      FROM measured m
)
SELECT r.rank, r.queryid, d.datname::text, u.rolname::text,
       CASE WHEN r.queryid = 0 AND r.userid = 0
            THEN '<overflow: queries beyond dbanalytics.max_histogram_queries>'
            ELSE (SELECT t.query FROM @extschema@.statement_texts t
                   WHERE (t.dbid, t.userid, t.queryid) = (r.dbid, r.userid, r.queryid)
                   ORDER BY t.toplevel DESC LIMIT 1)
       END,
       r.executions, r.p[1], r.p[2], r.p[3], r.p[4], r.p[5], r.reset
  FROM ranked r
  CROSS JOIN args a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = r.dbid
  LEFT JOIN pg_catalog.pg_roles u ON u.oid = r.userid
 WHERE r.rank <= a.max_rows
 ORDER BY r.rank
$$;

CREATE OR REPLACE FUNCTION @extschema@.latency_histogram(query_id bigint, analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (bucket integer, lower_ms double precision, upper_ms double precision, executions bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
    SELECT u.bucket::integer, b.lower_ms, b.upper_ms, pg_catalog.sum(u.executions)::bigint
      FROM @extschema@._latency_parts(pg_catalog.now() - analysis_window, pg_catalog.now(), query_id) l,
           ROWS FROM (pg_catalog.unnest(l.buckets), pg_catalog.unnest(l.counts)) AS u(bucket, executions),
           @extschema@.latency_buckets() b
     WHERE b.bucket = u.bucket
     GROUP BY u.bucket, b.lower_ms, b.upper_ms
     ORDER BY u.bucket
$$;

-- (_n_plus_one: replaced once, by its latest version, in the section of issue 20's run application)

-- the hours rolled up before this upgrade: their histograms, merged from the minute rows still
-- kept, into partitions made here for those days (the partition manager makes today's and
-- the next days' at its next run)
DO $latency_backfill$
DECLARE
    rolled timestamptz := (SELECT s.updated_at FROM @extschema@.source_state s
                            WHERE s.source OPERATOR(pg_catalog.=) 'hours');
    rolled_days timestamptz := (SELECT s.updated_at FROM @extschema@.source_state s
                                 WHERE s.source OPERATOR(pg_catalog.=) 'days');
    first_end timestamptz := (SELECT pg_catalog.min(l.interval_end) FROM @extschema@.statement_latency l);
    t text;
    day date;
    part text;
BEGIN
    IF rolled IS NULL OR first_end IS NULL OR first_end OPERATOR(pg_catalog.>) rolled THEN
        RETURN;
    END IF;
    FOREACH t IN ARRAY ARRAY['statement_latency_hourly', 'statement_latency_daily'] LOOP
        FOR day IN SELECT d::pg_catalog.date FROM pg_catalog.generate_series(
                       (@extschema@._time_ceil(first_end, 3600) AT TIME ZONE 'UTC')::pg_catalog.date,
                       (rolled AT TIME ZONE 'UTC')::pg_catalog.date, interval '1 day') d
        LOOP
            part := t OPERATOR(pg_catalog.||) '_p' OPERATOR(pg_catalog.||) pg_catalog.to_char(day, 'YYYYMMDD');
            EXECUTE pg_catalog.format(
                'CREATE TABLE @extschema@.%I PARTITION OF @extschema@.%I FOR VALUES FROM (%L) TO (%L)',
                part, t, pg_catalog.to_char(day, 'YYYY-MM-DD') OPERATOR(pg_catalog.||) ' 00:00:00+00',
                pg_catalog.to_char(day OPERATOR(pg_catalog.+) 1, 'YYYY-MM-DD') OPERATOR(pg_catalog.||) ' 00:00:00+00');
            PERFORM @extschema@._index_partition(t, part);
        END LOOP;
    END LOOP;
    PERFORM @extschema@._rollup_latency('hour', '-infinity', rolled);
    IF rolled_days IS NOT NULL THEN
        PERFORM @extschema@._rollup_latency('day', '-infinity', rolled_days);
    END IF;
END
$latency_backfill$;

CREATE FUNCTION @extschema@."_storage_tiers"() RETURNS TABLE (
	"table_name" TEXT,  /* String */
	"tier" TEXT,  /* String */
	"retention_seconds" bigint  /* i64 */
)
STRICT STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', '_storage_tiers_wrapper';
REVOKE ALL ON FUNCTION @extschema@._storage_tiers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._storage_tiers() TO dbanalytics_reader;

-- One row per table of the extension: its tier (the dbanalytics.retention_* setting that keeps
-- it; 'state' for the tables that do not grow with time: texts, keys, collector state), its
-- partitions, rows (pg_class.reltuples, as of the last ANALYZE or VACUUM of each partition),
-- bytes on disk (pg_total_relation_size: indexes and TOAST included), the oldest and newest
-- row, and the standing size projected from the rate so far: bytes per day of history covered
-- times the retention. The raw tier has no B-tree on its time column: its oldest and newest
-- times are read from the first and last pages of its oldest and newest non-empty partitions
-- (rows are only ever appended, in time order), so that this view never scans a day of samples.
-- Rows are read through the parent tables, with the caller's privileges.
CREATE FUNCTION @extschema@.storage_usage()
RETURNS TABLE (tier text, table_name text, retention interval, partitions integer,
               rows_estimated bigint, bytes bigint, oldest timestamptz, newest timestamptz,
               bytes_per_day bigint, projected_bytes bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    part record;
    time_column name;
    btree boolean;
    last_row timestamptz;
    covered double precision;
BEGIN
    FOR t IN
        SELECT s.table_name, s.tier, s.retention_seconds, p.oid AS relid
          FROM @extschema@._storage_tiers() WITH ORDINALITY AS s(table_name, tier, retention_seconds, ord)
          JOIN pg_catalog.pg_class p
            ON p.relname OPERATOR(pg_catalog.=) s.table_name
           AND p.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
         ORDER BY s.ord
    LOOP
        tier := t.tier;
        table_name := t.table_name;
        retention := pg_catalog.make_interval(secs => t.retention_seconds);
        SELECT a.attname INTO time_column
          FROM pg_catalog.pg_partitioned_table pt
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) pt.partrelid AND a.attnum OPERATOR(pg_catalog.=) pt.partattrs[0]
         WHERE pt.partrelid OPERATOR(pg_catalog.=) t.relid;
        SELECT pg_catalog.count(*)::integer,
               COALESCE(pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint,
               COALESCE(pg_catalog.sum(GREATEST(c.reltuples, 0)), 0)::bigint
          INTO partitions, bytes, rows_estimated
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
         WHERE i.inhparent OPERATOR(pg_catalog.=) t.relid;
        SELECT NOT EXISTS (SELECT FROM @extschema@.partition_indexes x
                            WHERE x.parent OPERATOR(pg_catalog.=) t.table_name
                              AND x.definition OPERATOR(pg_catalog.~~) 'USING brin%')
          INTO btree;
        oldest := NULL;
        newest := NULL;
        IF btree THEN
            -- min() and max() of a B-tree indexed column: one index probe per partition
            EXECUTE pg_catalog.format('SELECT pg_catalog.min(%1$I), pg_catalog.max(%1$I) FROM %2$s',
                                      time_column, t.relid::pg_catalog.regclass)
               INTO oldest, newest;
        ELSE
            FOR part IN
                SELECT pg_catalog.pg_relation_size(c.oid) AS size,
                       pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD')::timestamp
                           AT TIME ZONE 'UTC' AS lo
                  FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                 WHERE i.inhparent OPERATOR(pg_catalog.=) t.relid
                   AND pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog.>) 0
                 ORDER BY c.relname
            LOOP
                -- through the parent (the caller's privileges), pruned to the one partition
                IF oldest IS NULL THEN
                    EXECUTE pg_catalog.format(
                        'SELECT pg_catalog.min(%1$I) FROM %2$s WHERE %1$I OPERATOR(pg_catalog.>=) $1
                            AND %1$I OPERATOR(pg_catalog.<) $2 AND ctid OPERATOR(pg_catalog.<) ''(8,0)''::pg_catalog.tid',
                        time_column, t.relid::pg_catalog.regclass)
                       INTO oldest USING part.lo, part.lo OPERATOR(pg_catalog.+) interval '1 day';
                END IF;
                EXECUTE pg_catalog.format(
                    'SELECT pg_catalog.max(%1$I) FROM %2$s WHERE %1$I OPERATOR(pg_catalog.>=) $1
                        AND %1$I OPERATOR(pg_catalog.<) $2 AND ctid OPERATOR(pg_catalog.>=) $3::pg_catalog.tid',
                    time_column, t.relid::pg_catalog.regclass)
                   INTO last_row
                  USING part.lo, part.lo OPERATOR(pg_catalog.+) interval '1 day',
                        pg_catalog.format('(%s,0)', GREATEST(part.size OPERATOR(pg_catalog./) 8192 OPERATOR(pg_catalog.-) 8, 0));
                newest := COALESCE(last_row, newest);
            END LOOP;
        END IF;
        covered := EXTRACT(epoch FROM newest OPERATOR(pg_catalog.-) oldest);
        IF covered OPERATOR(pg_catalog.>=) 3600 THEN
            bytes_per_day := (bytes OPERATOR(pg_catalog.*) 86400.0 OPERATOR(pg_catalog./) covered)::bigint;
            projected_bytes := (bytes_per_day OPERATOR(pg_catalog.*) t.retention_seconds OPERATOR(pg_catalog./) 86400.0)::bigint;
        ELSE
            bytes_per_day := NULL;  -- less than an hour of history: no rate yet
            projected_bytes := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;

    -- the tables that do not grow with time
    FOR t IN
        SELECT c.relname::text AS table_name, c.oid AS relid, c.reltuples
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r' AND NOT c.relispartition
         ORDER BY c.relname
    LOOP
        tier := 'state';
        table_name := t.table_name;
        retention := NULL;
        partitions := NULL;
        rows_estimated := GREATEST(t.reltuples, 0)::bigint;
        bytes := pg_catalog.pg_total_relation_size(t.relid);
        oldest := NULL;
        newest := NULL;
        bytes_per_day := NULL;
        projected_bytes := bytes;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE VIEW @extschema@.storage_usage AS
SELECT * FROM @extschema@.storage_usage();
REVOKE ALL ON FUNCTION @extschema@.storage_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.storage_usage() TO dbanalytics_reader;
REVOKE ALL ON @extschema@.storage_usage FROM PUBLIC;
GRANT SELECT ON @extschema@.storage_usage TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- _pool_analytics: the object most waited on in a lock hotspot from one pass over the window's
-- lock waits instead of a lookup per row (health_score('1 day') on 30 days of history: 2.8 s -> 0.16 s).
-------------------------------------------------------------------------------
-- (_pool_analytics: replaced once, by its latest version, further down)

-------------------------------------------------------------------------------
-- pg_stat_io as a source of its own (16+): io_stats (hours tier, partitions made by the
-- collector), its counters, the version mapping, the io source and io_activity.
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

-- I/O by backend type, object and context over the window (io_stats: pg_stat_io, 16+; no rows
-- on older servers), the busiest first. Times in milliseconds, as pg_stat_io gives them (they
-- need track_io_timing; track_wal_io_timing for the wal object on 18).
CREATE FUNCTION @extschema@.io_activity(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (backend_type text, object text, context text,
               reads bigint, read_bytes bigint, read_time_ms double precision,
               avg_read_ms double precision,
               writes bigint, write_bytes bigint, write_time_ms double precision,
               writebacks bigint, extends bigint, extend_bytes bigint,
               hits bigint, hit_ratio double precision, evictions bigint, reuses bigint,
               fsyncs bigint, fsync_time_ms double precision, covered interval)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH per_key AS (
    SELECT i.backend_type, i.object, i.context,
           pg_catalog.sum(i.reads)::bigint AS reads, pg_catalog.sum(i.read_bytes)::bigint AS read_bytes,
           pg_catalog.sum(i.read_time) AS read_time,
           pg_catalog.sum(i.writes)::bigint AS writes, pg_catalog.sum(i.write_bytes)::bigint AS write_bytes,
           pg_catalog.sum(i.write_time) AS write_time, pg_catalog.sum(i.writebacks)::bigint AS writebacks,
           pg_catalog.sum(i.extends)::bigint AS extends, pg_catalog.sum(i.extend_bytes)::bigint AS extend_bytes,
           pg_catalog.sum(i.hits)::bigint AS hits, pg_catalog.sum(i.evictions)::bigint AS evictions,
           pg_catalog.sum(i.reuses)::bigint AS reuses, pg_catalog.sum(i.fsyncs)::bigint AS fsyncs,
           pg_catalog.sum(i.fsync_time) AS fsync_time
      FROM @extschema@.io_stats i
     WHERE i.interval_end > pg_catalog.now() - analysis_window
     GROUP BY i.backend_type, i.object, i.context
), covered AS (
    -- the snapshots in the window: one interval each, whichever keys had I/O in it
    SELECT pg_catalog.sum(w.interval_end - w.interval_start) AS covered
      FROM (SELECT DISTINCT i.interval_start, i.interval_end FROM @extschema@.io_stats i
             WHERE i.interval_end > pg_catalog.now() - analysis_window) w
)
SELECT k.backend_type, k.object, k.context,
       k.reads, k.read_bytes, k.read_time, k.read_time / NULLIF(k.reads, 0),
       k.writes, k.write_bytes, k.write_time, k.writebacks, k.extends, k.extend_bytes,
       k.hits, k.hits::double precision / NULLIF(k.hits + k.reads, 0), k.evictions, k.reuses,
       k.fsyncs, k.fsync_time, c.covered
  FROM per_key k CROSS JOIN covered c
 ORDER BY k.read_bytes + k.write_bytes + k.extend_bytes DESC, k.hits DESC,
          k.backend_type, k.object, k.context
$$;

CREATE VIEW @extschema@.io_activity AS
SELECT * FROM @extschema@.io_activity(interval '1 hour');

REVOKE ALL ON @extschema@.io_stats, @extschema@.io_counters, @extschema@.io_activity FROM PUBLIC;
GRANT SELECT ON @extschema@.io_stats, @extschema@.io_activity TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@._source_unavailable(text), @extschema@._io_now(), @extschema@._io_epoch(),
    @extschema@._snapshot_io(timestamptz, boolean, boolean), @extschema@.io_activity(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.io_activity(interval) TO dbanalytics_reader;


-------------------------------------------------------------------------------
-- Exports: metrics_prometheus() and its helpers (sql/exports.sql).
-------------------------------------------------------------------------------

-- Text escaped for the Prometheus text exposition format: backslash and line feed everywhere,
-- the double quote too inside a label value. E'' strings: the same text whatever
-- standard_conforming_strings says.
CREATE FUNCTION @extschema@._prometheus_escape(value text, in_label boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN in_label THEN pg_catalog.replace(e.text, E'"', E'\\"') ELSE e.text END
      FROM (SELECT pg_catalog.replace(pg_catalog.replace(COALESCE(value, ''), E'\\', E'\\\\'),
                                      E'\n', E'\\n') AS text) e
$$;

-- One sample line: metric{name="value",...} value. labels alternates names and values; a NULL
-- value is the empty string, which Prometheus reads as the label being absent. Values as
-- PostgreSQL prints a double precision with extra_float_digits = 1 (metrics_prometheus() pins
-- it): the shortest text that reads back exactly; NaN and the infinities as Prometheus spells them.
CREATE FUNCTION @extschema@._prometheus_sample(metric text, labels text[], value double precision)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT metric
           OPERATOR(pg_catalog.||) COALESCE('{' OPERATOR(pg_catalog.||) (
               SELECT pg_catalog.string_agg(labels[i] OPERATOR(pg_catalog.||) '="'
                          OPERATOR(pg_catalog.||) @extschema@._prometheus_escape(labels[i OPERATOR(pg_catalog.+) 1], true)
                          OPERATOR(pg_catalog.||) '"', ',' ORDER BY i)
                 FROM pg_catalog.generate_subscripts(labels, 1) i
                WHERE i OPERATOR(pg_catalog.%) 2 OPERATOR(pg_catalog.=) 1) OPERATOR(pg_catalog.||) '}', '')
           OPERATOR(pg_catalog.||) ' '
           OPERATOR(pg_catalog.||) CASE WHEN value OPERATOR(pg_catalog.=) 'Infinity'::double precision THEN '+Inf'
                                        WHEN value OPERATOR(pg_catalog.=) '-Infinity'::double precision THEN '-Inf'
                                        ELSE value::text END
$$;

-- One metric family: its HELP and TYPE lines, then its samples (none is allowed), each line
-- ending with a line feed.
CREATE FUNCTION @extschema@._prometheus_family(metric text, metric_type text, help text, samples text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '# HELP ' OPERATOR(pg_catalog.||) metric OPERATOR(pg_catalog.||) ' '
           OPERATOR(pg_catalog.||) @extschema@._prometheus_escape(help, false) OPERATOR(pg_catalog.||) E'\n'
           OPERATOR(pg_catalog.||) '# TYPE ' OPERATOR(pg_catalog.||) metric OPERATOR(pg_catalog.||) ' '
           OPERATOR(pg_catalog.||) metric_type OPERATOR(pg_catalog.||) E'\n'
           OPERATOR(pg_catalog.||) COALESCE((SELECT pg_catalog.string_agg(s.line OPERATOR(pg_catalog.||) E'\n', '' ORDER BY s.n)
                                               FROM pg_catalog.unnest(samples) WITH ORDINALITY s(line, n)), '')
$$;

-- The current state in the Prometheus text exposition format (version 0.0.4), every value a
-- gauge in base units (seconds, bytes, ratios): what a scrape every minute or so should see.
-- Read with the caller's privileges from the same functions and views users call:
-- health_score('1 hour'), collector_status, the latest sampler tick of connection_samples,
-- connection_pool_analytics('15 minutes') (each pool's latest minute), query_latency('1 hour')
-- (the 10 statements with the most executions), database_latency over the last hour, the
-- latest replication snapshot and the open alerts.
CREATE FUNCTION @extschema@.metrics_prometheus()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
WITH health AS MATERIALIZED (
    SELECT @extschema@.health_score('1 hour') AS h
), status AS MATERIALIZED (
    SELECT s.* FROM @extschema@.collector_status s WHERE s.health <> 'skipped' AND s.health <> 'off'
), tick AS (
    SELECT pg_catalog.max(c.sampled_at) AS at FROM @extschema@.connection_samples c
     WHERE c.sampled_at > pg_catalog.now() - interval '1 minute'
), connections AS MATERIALIZED (
    SELECT c.datname, c.usename, c.application_name, c.state,
           pg_catalog.sum(c.backends) AS backends, pg_catalog.sum(c.lock_waiting) AS lock_waiting
      FROM @extschema@.connection_samples c, tick t
     WHERE c.sampled_at = t.at
     GROUP BY c.datname, c.usename, c.application_name, c.state
), pools AS MATERIALIZED (
    SELECT DISTINCT ON (p.datname, p.usename, p.application_name) p.*
      FROM @extschema@.connection_pool_analytics('15 minutes') p
     ORDER BY p.datname, p.usename, p.application_name, p.minute DESC
), queries AS MATERIALIZED (
    SELECT q.* FROM @extschema@.query_latency('1 hour', 1000) q
     WHERE q.queryid <> 0
     ORDER BY q.executions DESC, q.queryid LIMIT 10
), databases AS MATERIALIZED (
    SELECT l.datname, pg_catalog.sum(l.executions) AS executions,
           @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95,0.99}') AS p
      FROM @extschema@.database_latency l
     WHERE l.interval_end > pg_catalog.now() - interval '1 hour' AND pg_catalog.cardinality(l.buckets) > 0
     GROUP BY l.datname
), replication AS MATERIALIZED (
    SELECT r.* FROM @extschema@.replication_stats r
     WHERE r.interval_end = (SELECT pg_catalog.max(x.interval_end) FROM @extschema@.replication_stats x
                              WHERE x.interval_end > pg_catalog.now() - interval '10 minutes')
), quantiles AS (
    -- a label named quantile belongs to summaries, whose _sum and _count are cumulative: these
    -- are gauges over the last hour, so the label is percentile
    SELECT * FROM (VALUES (1, '50'), (2, '95'), (3, '99')) q(i, percentile)
)
SELECT pg_catalog.concat(
    @extschema@._prometheus_family('dbanalytics_health_score', 'gauge',
        'Overall health score over the last hour, 0 to 100 (dbanalytics.health_score(''1 hour'')).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_health_score', '{}', (h.h ->> 'overall_score')::double precision)
                FROM health h WHERE h.h ->> 'overall_score' IS NOT NULL)),
    @extschema@._prometheus_family('dbanalytics_health_component_score', 'gauge',
        'Score of one health component over the last hour, 0 to 100.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_health_component_score',
                         ARRAY['component', c.key], c.value::text::double precision)
                FROM health h, pg_catalog.jsonb_each(h.h -> 'component_scores') c
               WHERE pg_catalog.jsonb_typeof(c.value) = 'number' ORDER BY c.key)),
    @extschema@._prometheus_family('dbanalytics_collector_source_healthy', 'gauge',
        '1 when the source or worker is healthy in dbanalytics.collector_status, else 0 (failing, stale, not running); sources skipped by design are left out.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_collector_source_healthy',
                         ARRAY['worker', s.worker, 'source', s.source], (s.health = 'healthy')::integer)
                FROM status s ORDER BY s.worker, s.source)),
    @extschema@._prometheus_family('dbanalytics_collector_source_duration_seconds', 'gauge',
        'Mean duration of a run of the source over the last hour.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_collector_source_duration_seconds',
                         ARRAY['worker', s.worker, 'source', s.source], s.avg_duration_ms::double precision / 1000)
                FROM status s WHERE s.avg_duration_ms IS NOT NULL ORDER BY s.worker, s.source)),
    @extschema@._prometheus_family('dbanalytics_collector_source_errors_last_hour', 'gauge',
        'Failed runs of the source over the last hour.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_collector_source_errors_last_hour',
                         ARRAY['worker', s.worker, 'source', s.source], s.errors_last_hour)
                FROM status s WHERE s.source <> 'worker' ORDER BY s.worker, s.source)),
    @extschema@._prometheus_family('dbanalytics_connections', 'gauge',
        'Client backends at the latest sampler tick, by database, user, application and state.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_connections',
                         ARRAY['datname', c.datname, 'usename', c.usename, 'application_name', c.application_name,
                               'state', c.state], c.backends)
                FROM connections c ORDER BY c.datname, c.usename, c.application_name, c.state)),
    @extschema@._prometheus_family('dbanalytics_lock_waiting_connections', 'gauge',
        'Client backends waiting on a heavyweight lock at the latest sampler tick.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_lock_waiting_connections',
                         ARRAY['datname', c.datname, 'usename', c.usename, 'application_name', c.application_name],
                         pg_catalog.sum(c.lock_waiting))
                FROM connections c GROUP BY c.datname, c.usename, c.application_name
               ORDER BY c.datname, c.usename, c.application_name)),
    @extschema@._prometheus_family('dbanalytics_pool_utilization_ratio', 'gauge',
        'Utilization of a connection pool (database, user, application) in its latest minute (dbanalytics.connection_pool_analytics).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_pool_utilization_ratio',
                         ARRAY['datname', p.datname, 'usename', p.usename, 'application_name', p.application_name],
                         p.utilization)
                FROM pools p WHERE p.utilization IS NOT NULL ORDER BY p.datname, p.usename, p.application_name)),
    @extschema@._prometheus_family('dbanalytics_pool_active_connections_max', 'gauge',
        'Most active sessions of the pool at one sampler tick in its latest minute.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_pool_active_connections_max',
                         ARRAY['datname', p.datname, 'usename', p.usename, 'application_name', p.application_name],
                         p.max_active)
                FROM pools p WHERE p.max_active IS NOT NULL ORDER BY p.datname, p.usename, p.application_name)),
    @extschema@._prometheus_family('dbanalytics_pool_recommended_size', 'gauge',
        'Pool size dbanalytics recommends for the pool, where it recommends one.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_pool_recommended_size',
                         ARRAY['datname', p.datname, 'usename', p.usename, 'application_name', p.application_name],
                         p.recommended_pool_size)
                FROM pools p WHERE p.recommended_pool_size IS NOT NULL ORDER BY p.datname, p.usename, p.application_name)),
    @extschema@._prometheus_family('dbanalytics_query_latency_seconds', 'gauge',
        'Execution time percentiles (50, 95, 99) over the last hour of the 10 statements with the most executions (latency histograms, within 5 %).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_query_latency_seconds',
                         ARRAY['datname', q.datname, 'usename', q.usename, 'queryid', q.queryid::text,
                               'percentile', k.percentile],
                         CASE k.i WHEN 1 THEN q.p50_ms WHEN 2 THEN q.p95_ms ELSE q.p99_ms END / 1000)
                FROM queries q, quantiles k ORDER BY q.executions DESC, q.queryid, k.i)),
    @extschema@._prometheus_family('dbanalytics_query_executions_last_hour', 'gauge',
        'Executions over the last hour of the statements in dbanalytics_query_latency_seconds.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_query_executions_last_hour',
                         ARRAY['datname', q.datname, 'usename', q.usename, 'queryid', q.queryid::text], q.executions)
                FROM queries q ORDER BY q.executions DESC, q.queryid)),
    @extschema@._prometheus_family('dbanalytics_database_latency_seconds', 'gauge',
        'Execution time percentiles (50, 95, 99) of all statements of a database over the last hour (latency histograms, within 5 %).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_database_latency_seconds',
                         ARRAY['datname', d.datname, 'percentile', k.percentile], d.p[k.i] / 1000)
                FROM databases d, quantiles k ORDER BY d.datname, k.i)),
    @extschema@._prometheus_family('dbanalytics_database_executions_last_hour', 'gauge',
        'Statement executions of a database over the last hour.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_database_executions_last_hour',
                         ARRAY['datname', d.datname], d.executions)
                FROM databases d ORDER BY d.datname)),
    @extschema@._prometheus_family('dbanalytics_replication_lag_seconds', 'gauge',
        'Replay lag of a standby at the latest replication snapshot (pg_stat_replication.replay_lag).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_replication_lag_seconds',
                         ARRAY['application_name', r.application_name, 'client_addr', r.client_addr::text],
                         r.replay_lag_s)
                FROM replication r WHERE r.replay_lag_s IS NOT NULL ORDER BY r.application_name, r.client_addr)),
    @extschema@._prometheus_family('dbanalytics_replication_lag_bytes', 'gauge',
        'WAL not yet replayed by a standby at the latest replication snapshot.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_replication_lag_bytes',
                         ARRAY['application_name', r.application_name, 'client_addr', r.client_addr::text],
                         r.replay_lag_bytes)
                FROM replication r WHERE r.replay_lag_bytes IS NOT NULL ORDER BY r.application_name, r.client_addr)),
    @extschema@._prometheus_family('dbanalytics_alert_open', 'gauge',
        '1 for each open alert episode (dbanalytics.alerts), by rule and severity.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_alert_open',
                         ARRAY['rule', a.rule, 'severity', a.severity], 1)
                FROM @extschema@.alerts a WHERE a.resolved_at IS NULL ORDER BY a.rule)))
$$;

REVOKE ALL ON FUNCTION @extschema@._prometheus_escape(text, boolean),
    @extschema@._prometheus_sample(text, text[], double precision),
    @extschema@._prometheus_family(text, text, text, text[]), @extschema@.metrics_prometheus() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._prometheus_escape(text, boolean),
    @extschema@._prometheus_sample(text, text[], double precision),
    @extschema@._prometheus_family(text, text, text, text[]), @extschema@.metrics_prometheus()
    TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- wait_minute (issue 13): active samples per minute, database and wait event, written by the
-- minute rollup from now on; wait_events_by_minute() reads it, and activity_minute for the
-- minutes rolled up before it (this installation's history from 0.1.0). Its partitions are
-- made by the collector, as every partitioned table's.
-------------------------------------------------------------------------------
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
REVOKE ALL ON @extschema@.wait_minute FROM PUBLIC;
GRANT SELECT ON @extschema@.wait_minute TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- wait_hourly and wait_daily (issue 13): the minute rollup sums each whole hour's and day's
-- active samples per wait event and query id from now on, and wait_events() reads them for the
-- whole hours and days of a window from their first row on (activity_minute serves the history
-- from 0.1.0). Their partitions are made by the collector, as every partitioned table's.
-------------------------------------------------------------------------------
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
REVOKE ALL ON @extschema@.wait_hourly, @extschema@.wait_daily FROM PUBLIC;
GRANT SELECT ON @extschema@.wait_hourly, @extschema@.wait_daily TO dbanalytics_reader;

-- Active samples per wait event and query id of the whole UTC hours and days that end in
-- (since, until], the minutes the minute rollup has just completed: an hour from its minutes
-- in activity_minute into wait_hourly, a day from its hours in wait_hourly into wait_daily, a
-- day only when wait_hourly holds all its hours (not the day of an upgrade from 0.1.0, whose
-- earlier hours are in activity_minute only). Called by _rollup_minutes; returns the rows
-- written.
CREATE FUNCTION @extschema@._rollup_waits(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- group in memory: no temporary file
AS $$
DECLARE
    hours_from timestamptz := @extschema@._time_floor(since, 3600);
    hours_to timestamptz := @extschema@._time_floor(until, 3600);
    days_from timestamptz := @extschema@._time_floor(since, 86400);
    days_to timestamptz := @extschema@._time_floor(until, 86400);
    written bigint := 0;
    n bigint;
BEGIN
    IF hours_from < hours_to THEN
        INSERT INTO @extschema@.wait_hourly
        SELECT @extschema@._time_floor(m.minute, 3600) + interval '1 hour', m.datname,
               COALESCE(m.wait_event_type, 'CPU'), COALESCE(m.wait_event, 'CPU'), m.query_id,
               pg_catalog.sum(m.samples)
          FROM @extschema@.activity_minute m
         WHERE m.minute >= hours_from AND m.minute < hours_to
           AND m.state IN ('active', 'fastpath function call')
         GROUP BY 1, 2, 3, 4, 5;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END IF;
    -- the days whose first hour wait_hourly holds (it holds every later one: rolled in order)
    days_from := GREATEST(days_from, (SELECT @extschema@._time_ceil(pg_catalog.min(h.hour_end) - interval '1 hour', 86400)
                                        FROM @extschema@.wait_hourly h));
    IF days_from < days_to THEN
        INSERT INTO @extschema@.wait_daily
        SELECT @extschema@._time_ceil(h.hour_end, 86400), h.datname, h.wait_event_type, h.wait_event,
               h.query_id, pg_catalog.sum(h.samples)
          FROM @extschema@.wait_hourly h
         WHERE h.hour_end > days_from AND h.hour_end <= days_to
         GROUP BY 1, 2, 3, 4, 5;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END IF;
    RETURN written;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._rollup_waits(timestamptz, timestamptz) FROM PUBLIC;

-- (_rollup_minutes: dropped and created again without an argument further down, issue 12)

CREATE FUNCTION @extschema@._wait_raw(since timestamptz, lo timestamptz, hi timestamptz)
RETURNS TABLE (minute timestamptz, datname text, wait_event_type text, wait_event text,
               query_id bigint, samples bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.date_trunc('minute', r.sampled_at), k.datname, COALESCE(k.wait_event_type, 'CPU'),
       COALESCE(k.wait_event, 'CPU'), r.query_id, pg_catalog.count(*)
  FROM @extschema@.activity_raw r
  JOIN @extschema@.activity_keys k ON k.key_id = r.key_id
 WHERE ((r.sampled_at >= since AND r.sampled_at < lo) OR r.sampled_at >= GREATEST(since, hi))
   AND k.state IN ('active', 'fastpath function call')
 GROUP BY 1, 2, 3, 4, 5
$$;

CREATE FUNCTION @extschema@._wait_minutes(since timestamptz)
RETURNS TABLE (minute timestamptz, datname text, wait_event_type text, wait_event text, samples bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH span AS (
    SELECT m.lo, m.hi,
           LEAST(m.hi, COALESCE((SELECT pg_catalog.min(w.minute) FROM @extschema@.wait_minute w), m.hi)) AS covered
      FROM @extschema@._minute_span(since) m
)
SELECT w.minute, w.datname, w.wait_event_type, w.wait_event, w.samples
  FROM span s, @extschema@.wait_minute w
 WHERE w.minute >= GREATEST(s.lo, s.covered) AND w.minute < s.hi
UNION ALL
SELECT m.minute, m.datname, COALESCE(m.wait_event_type, 'CPU'), COALESCE(m.wait_event, 'CPU'),
       pg_catalog.sum(m.samples)::bigint
  FROM span s, @extschema@.activity_minute m
 WHERE m.minute >= s.lo AND m.minute < s.covered
   AND m.state IN ('active', 'fastpath function call')
 GROUP BY 1, 2, 3, 4
UNION ALL
SELECT r.minute, r.datname, r.wait_event_type, r.wait_event, pg_catalog.sum(r.samples)::bigint
  FROM span s, @extschema@._wait_raw(since, s.lo, s.hi) r
 GROUP BY 1, 2, 3, 4
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
REVOKE ALL ON FUNCTION @extschema@._check_resolution(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._check_resolution(interval) TO dbanalytics_reader;

-- The same over time, for charts: one row per time bucket (a minute by default), database and
-- wait event. A coarser resolution sums each bucket's minutes (samples and sampler ticks), so a
-- chart of days reads as many minutes but returns and sorts a few hundred buckets.
CREATE FUNCTION @extschema@.wait_events_by_minute(analysis_window interval DEFAULT '1 hour',
                                                  resolution interval DEFAULT '1 minute')
RETURNS TABLE (minute timestamptz, datname text, wait_event_type text, wait_event text,
               samples bigint, ticks bigint, avg_active_sessions double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._check_resolution(resolution);  -- argument checks
WITH ticks AS (
    -- buckets aligned on the Unix epoch, as the rollups' hours and days are
    SELECT pg_catalog.date_bin(resolution, t.minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS minute,
           pg_catalog.sum(t.ticks)::bigint AS ticks
      FROM @extschema@._sample_ticks(pg_catalog.now() - analysis_window) t GROUP BY 1
), waits AS (
    SELECT pg_catalog.date_bin(resolution, w.minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS minute,
           w.datname, w.wait_event_type, w.wait_event, pg_catalog.sum(w.samples)::bigint AS samples
      FROM @extschema@._wait_minutes(pg_catalog.now() - analysis_window) w
     GROUP BY 1, 2, 3, 4
)
SELECT w.minute, w.datname, w.wait_event_type, w.wait_event, w.samples,
       t.ticks, w.samples::double precision / NULLIF(t.ticks, 0)
  FROM waits w
  LEFT JOIN ticks t USING (minute)
 ORDER BY 1, 2 NULLS LAST, 5 DESC, 3, 4
$$;
REVOKE ALL ON FUNCTION @extschema@.wait_events_by_minute(interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.wait_events_by_minute(interval, interval) TO dbanalytics_reader;

REVOKE ALL ON FUNCTION @extschema@._wait_raw(timestamptz, timestamptz, timestamptz),
    @extschema@._wait_minutes(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._wait_raw(timestamptz, timestamptz, timestamptz),
    @extschema@._wait_minutes(timestamptz) TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- The HTML report: report_html() and its helpers (sql/report.sql).
-------------------------------------------------------------------------------
-- Text made safe inside HTML element content and double- or single-quoted attribute values.
CREATE FUNCTION @extschema@._html_escape(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
               COALESCE(value, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

-- A JSON array of objects (json_agg of rows: the keys keep the columns' order) as an HTML table:
-- the first object's keys are the header, numbers are right-aligned, JSON nulls are empty cells,
-- arrays are their elements and objects their key: value pairs, comma-separated.
-- No row: a paragraph saying if_empty.
CREATE FUNCTION @extschema@._html_table(table_rows json, if_empty text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN table_rows IS NULL OR pg_catalog.json_array_length(table_rows) = 0
        THEN '<p class="empty">' || @extschema@._html_escape(if_empty) || '</p>'
        ELSE '<table><thead><tr>'
             || (SELECT pg_catalog.string_agg('<th>' || @extschema@._html_escape(h.key) || '</th>', '' ORDER BY h.n)
                   FROM pg_catalog.json_each(table_rows -> 0) WITH ORDINALITY h(key, value, n))
             || '</tr></thead><tbody>'
             || (SELECT pg_catalog.string_agg(
                            '<tr>' || (SELECT pg_catalog.string_agg(
                                                  CASE pg_catalog.json_typeof(c.value) WHEN 'number' THEN '<td class="n">'
                                                                                       ELSE '<td>' END
                                                  || @extschema@._html_escape(CASE pg_catalog.json_typeof(c.value)
                                                         WHEN 'array' THEN (SELECT pg_catalog.string_agg(e.v, ', ' ORDER BY e.k)
                                                                              FROM pg_catalog.json_array_elements_text(c.value)
                                                                                   WITH ORDINALITY e(v, k))
                                                         WHEN 'object' THEN (SELECT pg_catalog.string_agg(e.key || ': ' || COALESCE(e.value, ''), ', ' ORDER BY e.k)
                                                                               FROM pg_catalog.json_each_text(c.value)
                                                                                    WITH ORDINALITY e(key, value, k))
                                                         ELSE c.value #>> '{}' END) || '</td>', '' ORDER BY c.n)
                                          FROM pg_catalog.json_each(r.item) WITH ORDINALITY c(key, value, n))
                            || '</tr>', '' ORDER BY r.n)
                   FROM pg_catalog.json_array_elements(table_rows) WITH ORDINALITY r(item, n))
             || '</tbody></table>'
    END
$$;

-- A timestamp for a table cell, to the second, in the session's time zone.
CREATE FUNCTION @extschema@._html_time(at timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_char(at, 'YYYY-MM-DD HH24:MI:SS')
$$;

-- A time-series chart as an inline SVG figure (src/api/chart.rs). The points are three parallel
-- arrays (time, series, value); they are averaged into at most 240 buckets across [from_time,
-- to_time], so a week of minutes draws as fast as an hour. Lines: each series' own average in a
-- bucket. Stacked (areas): each series' sum over the bucket's distinct times (a series absent at
-- a time counts as zero there), stacked in the order of the series' totals, largest at the
-- bottom. Every series is one <polyline> (lines) or <polygon> (areas) with data-series and
-- data-points attributes, and a <title> a browser shows on hover; the y axis starts at 0, goes up
-- in 4 steps of 1, 2 or 5 times a power of ten and names the unit; axis numbers have at most two
-- decimals. At most 9 series are drawn (a stacked chart adds the others up as "other", a line
-- chart says how many it left out); NULL, NaN and infinite values are left out, negative ones
-- drawn as 0; series are ordered by the call's collation and their legend shows 40 characters.
-- Text is handled as the server encoding's bytes, so any database encoding works. NULL when
-- from_time, to_time or stacked is NULL.
CREATE FUNCTION @extschema@._svg_chart(chart_id text, title text, unit text, from_time timestamptz,
                                       to_time timestamptz, stacked boolean,
                                       at timestamptz[], series text[], value double precision[])
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_svg_chart';

-- One section of the report: an anchor, a heading and its body (already HTML).
CREATE FUNCTION @extschema@._html_section(section_id text, heading text, body text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '<section id="' || @extschema@._html_escape(section_id) || '"><h2>' || @extschema@._html_escape(heading)
           || '</h2>' || COALESCE(body, '') || '</section>'
$$;

-- (report_html: created once, in its latest version, further down)

REVOKE ALL ON FUNCTION @extschema@._html_escape(text), @extschema@._html_table(json, text),
    @extschema@._html_time(timestamp with time zone),
    @extschema@._svg_chart(text, text, text, timestamp with time zone, timestamp with time zone, boolean,
                           timestamp with time zone[], text[], double precision[]),
    @extschema@._html_section(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._html_escape(text), @extschema@._html_table(json, text),
    @extschema@._html_time(timestamp with time zone),
    @extschema@._svg_chart(text, text, text, timestamp with time zone, timestamp with time zone, boolean,
                           timestamp with time zone[], text[], double precision[]),
    @extschema@._html_section(text, text, text) TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Security: an alert rule's threshold is bounded like its name and description, since it goes
-- into every NOTIFY payload of the rule's alerts. A stored threshold beyond the bound makes this
-- step fail with the constraint's name: change or delete that rule and update again.
-------------------------------------------------------------------------------
ALTER TABLE @extschema@.alert_rules
    ADD CONSTRAINT alert_rules_threshold_check
    CHECK (pg_catalog.abs(threshold) < 1e15 AND pg_catalog.scale(threshold) <= 6);

-------------------------------------------------------------------------------
-- Reliability: the tables and indexes sources read sizes without waiting on a relation's lock
-- (an ACCESS EXCLUSIVE lock on one monitored table failed the whole source, for every table).
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@."_relation_size_nowait"(
	"relation" oid, /* pg_sys :: Oid */
	"whole_table" bool /* bool */
) RETURNS bigint /* Option < i64 > */
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_relation_size_nowait_wrapper';
REVOKE ALL ON FUNCTION @extschema@._relation_size_nowait(oid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._relation_size_nowait(oid, boolean) TO dbanalytics_reader;

CREATE OR REPLACE VIEW @extschema@._tables_now AS
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

CREATE OR REPLACE VIEW @extschema@._indexes_now AS
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

-------------------------------------------------------------------------------
-- Verdicts (issue 17): alert rules get a duration (for_duration) and a cool-down, the built-in
-- rules get theirs (a built-in rule still as 0.1.0 shipped it takes the new definition; a
-- changed or disabled one is left as it is), a new built-in rule archiver_failing, a
-- replication_lag alert that stays open while a standby is gone; passwords_without_expiry is
-- informational (its 10 points go to public_schema_create); a pool whose sessions wait on locks
-- while it is saturated is a lock hotspot even with one idle connection left; index bloat is
-- the btree estimate from statistics (status bloated, replacing oversized); standbys that are
-- gone are told apart by name and address, base backups excluded (_gone_standbys); analytics
-- read sizes without waiting on a locked relation.
-------------------------------------------------------------------------------
ALTER TABLE @extschema@.alert_rules
    DROP CONSTRAINT alert_rules_metric_check,
    ADD CONSTRAINT alert_rules_metric_check CHECK (metric IN ('slow_queries_per_minute', 'deadlocks', 'replication_lag_seconds',
                                                   'idle_in_transaction_seconds', 'connections_ratio', 'xid_age',
                                                   'health_score', 'health_score_drop', 'archive_failing')),
    ADD COLUMN for_duration interval NOT NULL DEFAULT '0' CHECK (for_duration BETWEEN '0' AND '7 days'),
    ADD COLUMN cooldown    interval NOT NULL DEFAULT '0' CHECK (cooldown BETWEEN '0' AND '7 days');

CREATE TABLE @extschema@.alert_conditions (
    rule          text        PRIMARY KEY,
    holding_since timestamptz NOT NULL
);
REVOKE ALL ON @extschema@.alert_conditions FROM PUBLIC;
GRANT SELECT ON @extschema@.alert_conditions TO dbanalytics_reader;

-- The built-in alert rules as of issue 17 (the capacity section further down replaces it: three rules more).
CREATE FUNCTION @extschema@._builtin_alert_rules()
RETURNS TABLE (rule text, metric text, comparison text, threshold numeric, severity text, description text,
               for_duration interval, cooldown interval)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ VALUES
    ('slow_queries', 'slow_queries_per_minute', '>', 10, 'medium',
     'more than 10 executions per minute slower than dbanalytics.slow_query_threshold, for 2 minutes',
     interval '2 minutes', interval '15 minutes'),
    ('deadlock', 'deadlocks', '>', 0, 'high', 'a deadlock in the last snapshot interval',
     interval '0', interval '15 minutes'),
    ('replication_lag', 'replication_lag_seconds', '>', 5, 'high',
     'a standby replays more than 5 s behind, or was connected within the last hour and is not now',
     interval '0', interval '15 minutes'),
    ('idle_in_transaction', 'idle_in_transaction_seconds', '>', 300, 'medium',
     'a session idle in a transaction for more than 5 minutes', interval '0', interval '15 minutes'),
    ('connections_near_limit', 'connections_ratio', '>', 0.9, 'high',
     'client connections above 90 % of max_connections - superuser_reserved_connections, for 5 minutes',
     interval '5 minutes', interval '15 minutes'),
    ('xid_wraparound', 'xid_age', '>', 1000000000, 'critical',
     'a database''s oldest unfrozen transaction ID is more than 1 billion transactions old (wraparound at 2^31)',
     interval '0', interval '15 minutes'),
    ('health_low', 'health_score', '<', 60, 'high', 'the recorded health score is below 60',
     interval '0', interval '15 minutes'),
    ('health_drop', 'health_score_drop', '>', 15, 'medium',
     'the recorded health score fell by more than 15 points within the last hour', interval '0', interval '15 minutes'),
    ('archiver_failing', 'archive_failing', '>', 0, 'high',
     'WAL archiving is on and its last attempt failed (pg_stat_archiver)', interval '0', interval '15 minutes')
$$;

CREATE FUNCTION @extschema@._alert_rule_as_shipped(r @extschema@.alert_rules)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.enabled AND EXISTS (
        SELECT FROM @extschema@._builtin_alert_rules() b
         WHERE b.rule OPERATOR(pg_catalog.=) r.rule
           AND ROW(b.metric, b.comparison, b.threshold, b.severity, b.description, b.for_duration, b.cooldown)
               IS NOT DISTINCT FROM ROW(r.metric, r.comparison, r.threshold, r.severity, r.description, r.for_duration,
                                        r.cooldown))
$$;

REVOKE ALL ON FUNCTION @extschema@._builtin_alert_rules(), @extschema@._alert_rule_as_shipped(@extschema@.alert_rules)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._builtin_alert_rules(), @extschema@._alert_rule_as_shipped(@extschema@.alert_rules)
    TO dbanalytics_reader;

-- the built-in rules as 0.1.0 shipped them (enabled, unchanged) take the new definition
UPDATE @extschema@.alert_rules r
   SET description = b.description, for_duration = b.for_duration, cooldown = b.cooldown
  FROM @extschema@._builtin_alert_rules() b
 WHERE b.rule OPERATOR(pg_catalog.=) r.rule AND r.enabled
   AND r.for_duration OPERATOR(pg_catalog.=) '0' AND r.cooldown OPERATOR(pg_catalog.=) '0'
   AND ROW(r.metric, r.comparison, r.threshold, r.severity) IS NOT DISTINCT FROM ROW(b.metric, b.comparison, b.threshold, b.severity)
   AND (r.description OPERATOR(pg_catalog.=) b.description
        OR (r.rule, r.description) IN (('slow_queries', 'more than 10 executions per minute slower than dbanalytics.slow_query_threshold'),
                                       ('replication_lag', 'a standby replays more than 5 s behind'),
                                       ('connections_near_limit', 'client connections above 90 % of max_connections - superuser_reserved_connections')));
-- the one rule new in 0.2.0 (a built-in rule deleted under 0.1.0, which had no guard against
-- it, stays deleted)
INSERT INTO @extschema@.alert_rules (rule, metric, comparison, threshold, severity, description, for_duration, cooldown)
SELECT b.* FROM @extschema@._builtin_alert_rules() b
 WHERE b.rule OPERATOR(pg_catalog.=) 'archiver_failing'
   AND NOT EXISTS (SELECT FROM @extschema@.alert_rules r WHERE r.rule OPERATOR(pg_catalog.=) b.rule);

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

REVOKE ALL ON FUNCTION @extschema@._gone_standbys(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._gone_standbys(timestamptz) TO dbanalytics_reader;

-- (replication_risks: created once, in its latest version, further down)

CREATE OR REPLACE VIEW @extschema@.table_maintenance AS
WITH args AS (
    SELECT @extschema@._threshold('seq_scan_rows_missing_index') AS missing_index_rows,
           @extschema@._threshold('dead_tuple_ratio') AS dead_ratio,
           @extschema@._threshold('xid_age_warning') AS xid_warning,
           @extschema@._threshold('missing_index_window')::double precision AS missing_index_window_s,
           pg_catalog.now() - pg_catalog.make_interval(secs => @extschema@._threshold('missing_index_window')::double precision) AS since
), recent AS (
    SELECT w.relid, w.seq_scan, w.seq_tup_read, w.idx_scan
      FROM args a, @extschema@._table_totals(a.since, pg_catalog.now()) w
), tables AS (
    SELECT s.relid, s.schemaname::pg_catalog.text, s.relname::pg_catalog.text AS tablename, s.seq_scan, s.seq_tup_read,
           COALESCE(s.idx_scan, 0) AS idx_scan, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
           s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
           @extschema@._relation_size_nowait(s.relid, true) AS table_bytes,
           pg_catalog.age(c.relfrozenxid) AS xid_age,
           k.relid IS NOT NULL AS watched,
           -- scans in the window: recorded ones plus those since the last snapshot (all live
           -- ones after a reset, which put the counter below the remembered value)
           CASE WHEN k.relid IS NULL THEN s.seq_scan
                ELSE COALESCE(r.seq_scan, 0) + CASE WHEN s.seq_scan >= k.seq_scan THEN s.seq_scan - k.seq_scan ELSE s.seq_scan END
           END AS window_seq_scan,
           CASE WHEN k.relid IS NULL THEN s.seq_tup_read
                ELSE COALESCE(r.seq_tup_read, 0)
                     + CASE WHEN s.seq_tup_read >= k.seq_tup_read THEN s.seq_tup_read - k.seq_tup_read ELSE s.seq_tup_read END
           END AS window_seq_tup_read,
           CASE WHEN k.relid IS NULL THEN COALESCE(s.idx_scan, 0)
                ELSE COALESCE(r.idx_scan, 0)
                     + CASE WHEN COALESCE(s.idx_scan, 0) >= COALESCE(k.idx_scan, 0) THEN COALESCE(s.idx_scan, 0) - COALESCE(k.idx_scan, 0)
                            ELSE COALESCE(s.idx_scan, 0) END
           END AS window_idx_scan
      FROM pg_catalog.pg_stat_user_tables s
      JOIN pg_catalog.pg_class c ON c.oid = s.relid
      LEFT JOIN @extschema@.table_counters k ON k.relid = s.relid
      LEFT JOIN recent r ON r.relid = s.relid
     WHERE s.schemaname <> '@extschema@'
), judged AS (
    SELECT t.*, a.*,
           t.window_seq_scan > t.window_idx_scan
               AND t.window_seq_tup_read::numeric / NULLIF(t.window_seq_scan, 0) > a.missing_index_rows AS missing_index
      FROM tables t CROSS JOIN args a
)
SELECT t.schemaname, t.tablename, t.seq_scan, t.idx_scan,
       t.seq_scan::double precision / NULLIF(t.seq_scan + t.idx_scan, 0) AS seq_scan_ratio,
       t.seq_tup_read::double precision / NULLIF(t.seq_scan, 0) AS rows_per_seq_scan,
       t.n_live_tup, t.n_dead_tup,
       t.n_dead_tup::double precision / NULLIF(t.n_live_tup + t.n_dead_tup, 0) AS dead_tuple_ratio,
       t.n_mod_since_analyze, t.last_vacuum, t.last_autovacuum, t.last_analyze, t.last_autoanalyze,
       t.table_bytes,
       (t.table_bytes * t.n_dead_tup::double precision / NULLIF(t.n_live_tup + t.n_dead_tup, 0))::bigint
           AS estimated_bloat_bytes,
       t.xid_age,
       2147483647 - t.xid_age AS wraparound_headroom,
       pg_catalog.array_remove(ARRAY[
           CASE WHEN t.missing_index THEN 'missing_index' END,
           CASE WHEN t.n_dead_tup > 1000 AND t.n_dead_tup > t.dead_ratio * (t.n_live_tup + t.n_dead_tup)
                THEN 'needs_vacuum' END,
           CASE WHEN t.n_mod_since_analyze > GREATEST(1000, 0.2 * t.n_live_tup)
                THEN 'needs_analyze' END,
           CASE WHEN t.xid_age > t.xid_warning * 2147483647 THEN 'wraparound_risk' END
       ], NULL) AS issues,
       pg_catalog.concat_ws(' ',
           CASE WHEN t.missing_index
                THEN pg_catalog.format('Sequential scans read %s rows each (%s scans %s): find the filter in top_queries() and index it.',
                                       pg_catalog.round(t.window_seq_tup_read::numeric / t.window_seq_scan), t.window_seq_scan,
                                       CASE WHEN t.watched THEN 'in the last ' || pg_catalog.make_interval(secs => t.missing_index_window_s)::pg_catalog.text
                                            ELSE 'since the statistics were reset' END) END,
           CASE WHEN t.n_dead_tup > 1000 AND t.n_dead_tup > t.dead_ratio * (t.n_live_tup + t.n_dead_tup)
                THEN pg_catalog.format('VACUUM (ANALYZE) %I.%I;', t.schemaname, t.tablename) END,
           CASE WHEN t.n_mod_since_analyze > GREATEST(1000, 0.2 * t.n_live_tup)
                     AND NOT (t.n_dead_tup > 1000 AND t.n_dead_tup > t.dead_ratio * (t.n_live_tup + t.n_dead_tup))
                THEN pg_catalog.format('ANALYZE %I.%I;', t.schemaname, t.tablename) END,
           CASE WHEN t.xid_age > t.xid_warning * 2147483647
                THEN pg_catalog.format('VACUUM (FREEZE) %I.%I;  -- %s transactions from wraparound',
                                       t.schemaname, t.tablename, 2147483647 - t.xid_age) END
       ) AS recommendation,
       t.window_seq_scan AS seq_scans_in_window, t.window_seq_tup_read AS seq_rows_in_window,
       t.window_idx_scan AS idx_scans_in_window
  FROM judged t
 ORDER BY t.n_dead_tup DESC;

-- (_alert_metrics: replaced once, by its latest version, further down)

CREATE OR REPLACE FUNCTION @extschema@._evaluate_alerts()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    candidate record;
    open_alert @extschema@.alerts;
    opened bigint := 0;
    firing boolean;
BEGIN
    FOR candidate IN
        SELECT r.rule, r.comparison, r.threshold, r.severity, r.for_duration, r.cooldown, m.value, m.details
          FROM @extschema@.alert_rules r
          JOIN @extschema@._alert_metrics() m ON m.metric = r.metric
         WHERE r.enabled
    LOOP
      BEGIN
        firing := candidate.value IS NOT NULL AND CASE candidate.comparison
            WHEN '>' THEN candidate.value > candidate.threshold
            ELSE candidate.value < candidate.threshold END;
        -- for_duration: the condition must have held since at least that long ago
        IF firing THEN
            INSERT INTO @extschema@.alert_conditions AS c (rule, holding_since)
            VALUES (candidate.rule, pg_catalog.now()) ON CONFLICT (rule) DO NOTHING;
            firing := (SELECT c.holding_since FROM @extschema@.alert_conditions c WHERE c.rule = candidate.rule)
                      <= pg_catalog.now() - candidate.for_duration;
        ELSE
            DELETE FROM @extschema@.alert_conditions c WHERE c.rule = candidate.rule;
        END IF;
        SELECT * INTO open_alert FROM @extschema@.alerts a
         WHERE a.rule = candidate.rule AND a.resolved_at IS NULL;
        IF firing AND open_alert.alert_id IS NULL THEN
            -- cooldown: an episode resolved less than that ago goes on, without a new NOTIFY
            UPDATE @extschema@.alerts a SET resolved_at = NULL, last_seen_at = pg_catalog.now(),
                                            value = candidate.value, details = candidate.details
             WHERE a.alert_id = (SELECT r.alert_id FROM @extschema@.alerts r
                                  WHERE r.rule = candidate.rule
                                    AND r.resolved_at > pg_catalog.now() - candidate.cooldown
                                  ORDER BY r.resolved_at DESC LIMIT 1)
            RETURNING * INTO open_alert;
        END IF;
        IF firing AND open_alert.alert_id IS NULL THEN
            INSERT INTO @extschema@.alerts (rule, severity, opened_at, last_seen_at, value, threshold, details)
            VALUES (candidate.rule, candidate.severity, pg_catalog.now(), pg_catalog.now(), candidate.value,
                    candidate.threshold, candidate.details)
            RETURNING * INTO open_alert;
            PERFORM pg_catalog.pg_notify('dbanalytics_alerts', pg_catalog.jsonb_build_object(
                'alert_id', open_alert.alert_id, 'rule', candidate.rule, 'severity', candidate.severity,
                'value', candidate.value, 'threshold', candidate.threshold,
                'opened_at', pg_catalog.now())::text);
            opened := opened + 1;
        ELSIF firing THEN
            UPDATE @extschema@.alerts SET last_seen_at = pg_catalog.now(), value = candidate.value,
                                          details = candidate.details
             WHERE alert_id = open_alert.alert_id;
        ELSIF open_alert.alert_id IS NOT NULL THEN
            UPDATE @extschema@.alerts SET resolved_at = pg_catalog.now() WHERE alert_id = open_alert.alert_id;
        END IF;
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'dbanalytics: alert rule "%" could not be evaluated: %',
                      pg_catalog.left(candidate.rule, 63), SQLERRM;
      END;
    END LOOP;
    -- an episode whose rule was disabled or deleted ends too, and its condition is forgotten
    UPDATE @extschema@.alerts a SET resolved_at = pg_catalog.now()
     WHERE a.resolved_at IS NULL
       AND NOT EXISTS (SELECT FROM @extschema@.alert_rules r WHERE r.rule = a.rule AND r.enabled);
    DELETE FROM @extschema@.alert_conditions c
     WHERE NOT EXISTS (SELECT FROM @extschema@.alert_rules r WHERE r.rule = c.rule AND r.enabled);
    RETURN opened;
END
$$;

-- (analytics_thresholds: replaced once, by its latest version, further down)

CREATE FUNCTION @extschema@._btree_bloat(indexrelids oid[])
RETURNS TABLE (indexrelid oid, real_bytes bigint, expected_bytes bigint, bloat_bytes bigint,
               bloat_ratio double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH consts AS (
    -- block size; page header and btree special space; MAXALIGN of 64-bit platforms
    SELECT pg_catalog.current_setting('block_size')::numeric AS bs, 24 AS pagehdr, 16 AS special, 8 AS align
), idx AS (
    SELECT i.indexrelid, i.indrelid, i.indkey, i.indnatts, c.relpages, GREATEST(c.reltuples, 0) AS reltuples,
           COALESCE((SELECT pg_catalog.substring(o.opt, '^fillfactor=([0-9]+)$')::numeric
                       FROM pg_catalog.unnest(c.reloptions) AS o(opt)
                      WHERE o.opt LIKE 'fillfactor=%'), 90) AS fillfactor
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_am am ON am.oid = c.relam
     WHERE am.amname = 'btree' AND c.relpages > 0
       AND i.indexrelid = ANY (indexrelids)
), cols AS (
    -- each index column's statistics: the table column's, or the index's own for an expression
    SELECT x.indexrelid, x.relpages, x.reltuples, x.fillfactor, a.atttypid, s.null_frac, s.avg_width
      FROM idx x
     CROSS JOIN LATERAL pg_catalog.generate_series(1, x.indnatts) AS k(pos)
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = CASE WHEN x.indkey[k.pos - 1] <> 0 THEN x.indrelid ELSE x.indexrelid END
       AND a.attnum = CASE WHEN x.indkey[k.pos - 1] <> 0 THEN x.indkey[k.pos - 1] ELSE k.pos END
      JOIN pg_catalog.pg_class r ON r.oid = a.attrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
      -- looked up column by column through the catalogs' name indexes (LIMIT 1: not flattened
      -- into a join with pg_stats of the whole database, which a few indexes among thousands of
      -- partitions paid in full)
      LEFT JOIN LATERAL (
           SELECT s.null_frac, s.avg_width FROM pg_catalog.pg_stats s
            WHERE s.schemaname = n.nspname AND s.tablename = r.relname AND s.attname = a.attname
              AND NOT s.inherited LIMIT 1) s ON true
), rows AS (
    -- each index with what its expected size needs (carried here: no join back to idx, whose
    -- row count the planner cannot estimate)
    SELECT c.indexrelid, c.relpages, c.reltuples, c.fillfactor,
           pg_catalog.count(c.avg_width) = pg_catalog.count(*)
               AND NOT pg_catalog.bool_or(c.atttypid = 'pg_catalog.name'::pg_catalog.regtype) AS estimable,
           -- IndexTupleData, plus the null bitmap when a column has NULLs; then the data
           CASE WHEN pg_catalog.max(COALESCE(c.null_frac, 0)) = 0 THEN 8 ELSE 12 END AS header,
           pg_catalog.sum((1 - COALESCE(c.null_frac, 0)) * c.avg_width) AS data
      FROM cols c
     GROUP BY c.indexrelid, c.relpages, c.reltuples, c.fillfactor
), expected AS (
    SELECT x.indexrelid, x.relpages, k.bs,
           -- the metapage, then the pages the rows fill: each row MAXALIGNed, plus its 4-byte line pointer
           1 + pg_catalog.ceil(x.reltuples / pg_catalog.floor(
                   (k.bs - k.pagehdr - k.special) * x.fillfactor
                   / (100 * (4 + pg_catalog.ceil(x.header / k.align) * k.align
                               + pg_catalog.ceil(x.data / k.align) * k.align)))) AS pages
      FROM rows x
     CROSS JOIN consts k
     WHERE x.estimable
)
SELECT e.indexrelid, (e.relpages * e.bs)::bigint, (LEAST(e.pages, e.relpages) * e.bs)::bigint,
       (GREATEST(e.relpages - e.pages, 0) * e.bs)::bigint,
       GREATEST(e.relpages - e.pages, 0)::double precision / e.relpages
  FROM expected e
$$;

REVOKE ALL ON FUNCTION @extschema@._btree_bloat(oid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._btree_bloat(oid[]) TO dbanalytics_reader;

CREATE FUNCTION @extschema@._compute_index_effectiveness(analysis_window interval)
RETURNS TABLE (
    schemaname text, tablename text, indexname text, index_method text,
    scans_in_window bigint, scans_per_second double precision, tuples_read_per_scan double precision,
    index_bytes bigint, table_bytes bigint, size_ratio double precision,
    table_writes_in_window bigint, watched_seconds double precision,
    protected_by text, index_status text, recommendation text, evidence text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._threshold('index_min_evidence')::double precision AS min_evidence,
           @extschema@._threshold('index_rare_scans_per_day')::double precision AS rare_per_day,
           @extschema@._threshold('index_low_selectivity')::double precision AS low_selectivity,
           @extschema@._threshold('index_bloat_ratio')::double precision AS bloat_ratio_min,
           @extschema@._threshold('index_bloat_min_bytes')::double precision AS bloat_bytes_min
), live AS (
    SELECT i.indexrelid, i.indrelid, n.nspname::text AS schemaname, t.relname::text AS tablename,
           c.relname::text AS indexname, am.amname::text AS method, i.indisvalid, i.indisunique,
           i.indisprimary, i.indisreplident, i.indkey::text AS keys, i.indclass::text AS opclasses,
           i.indoption::text AS options,
           i.indcollation::text AS collations, i.indnkeyatts,
           COALESCE(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), '') AS expressions,
           COALESCE(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '') AS predicate,
           -- NULL for a relation locked against reading now (VACUUM FULL, ALTER TABLE): never wait
           @extschema@._relation_size_nowait(i.indexrelid, false) AS index_bytes,
           @extschema@._relation_size_nowait(i.indrelid, true) AS table_bytes,
           GREATEST(t.reltuples, 0) AS table_rows,
           s.idx_scan AS live_scans, s.idx_tup_read AS live_tup_read,
           (SELECT pg_catalog.string_agg(pg_catalog.format('%s constraint %s',
                       CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
                                      WHEN 'x' THEN 'exclusion' ELSE 'foreign key' END, k.conname), ', ')
              FROM pg_catalog.pg_constraint k
             WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) AS constraint_use,
           -- foreign keys of this table whose columns are exactly the index's leading key columns
           -- (in any order, as PgHero checks): the index serves the parent's DELETE / key UPDATE
           (SELECT pg_catalog.string_agg(pg_catalog.format('foreign key %s: without it every DELETE or key UPDATE on %s scans %I.%I',
                                                           k.conname, k.confrelid::pg_catalog.regclass, n.nspname, t.relname),
                                         ', ' ORDER BY k.conname)
              FROM pg_catalog.pg_constraint k
             WHERE k.contype = 'f' AND k.conrelid = i.indrelid AND i.indpred IS NULL
               AND pg_catalog.cardinality(k.conkey) <= i.indnkeyatts
               AND NOT EXISTS (SELECT FROM pg_catalog.unnest(k.conkey) AS x(attnum)
                                WHERE COALESCE(pg_catalog.array_position(i.indkey::pg_catalog.int2[], x.attnum)
                                               - pg_catalog.array_lower(i.indkey::pg_catalog.int2[], 1), 2147483647)
                                      >= pg_catalog.cardinality(k.conkey))) AS foreign_key_use
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
      JOIN pg_catalog.pg_am am ON am.oid = c.relam
      LEFT JOIN pg_catalog.pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '@extschema@')
       AND n.nspname !~ '^pg_(toast|temp_)'
), history AS (
    SELECT h.indexrelid, h.idx_scan AS scans, h.idx_tup_read AS tup_read
      FROM args a, @extschema@._index_totals(a.since, pg_catalog.now()) h
), writes AS (
    SELECT w.relid, w.n_tup_ins + w.n_tup_upd - w.n_tup_hot_upd AS writes
      FROM args a, @extschema@._table_totals(a.since, pg_catalog.now()) w
), measured AS (
    SELECT l.*,
           -- scans recorded in the window, plus those since the last snapshot
           COALESCE(h.scans, 0) + CASE
               WHEN l.live_scans IS NULL OR k.idx_scan IS NULL THEN 0
               WHEN l.live_scans >= k.idx_scan THEN l.live_scans - k.idx_scan
               ELSE l.live_scans END AS scans,
           COALESCE(h.tup_read, 0) + CASE
               WHEN l.live_tup_read IS NULL OR k.idx_tup_read IS NULL THEN 0
               WHEN l.live_tup_read >= k.idx_tup_read THEN l.live_tup_read - k.idx_tup_read
               ELSE l.live_tup_read END AS tup_read,
           -- how long the collector has watched this index (never seen: not watched at all; the
           -- server's own counters cannot tell, since the index may be younger than stats_reset)
           COALESCE(EXTRACT(epoch FROM pg_catalog.now() - GREATEST(a.since, k.first_seen))::double precision, 0) AS watched,
           COALESCE(wr.writes, 0) AS writes,
           a.window_seconds, a.min_evidence, a.rare_per_day, a.low_selectivity, a.bloat_ratio_min, a.bloat_bytes_min,
           b.expected_bytes, b.bloat_bytes, b.bloat_ratio,
           CASE
               WHEN l.constraint_use IS NOT NULL THEN 'backs ' || l.constraint_use
               WHEN l.indisunique THEN 'enforces uniqueness'
               WHEN l.indisreplident THEN 'is the replica identity'
               WHEN l.foreign_key_use IS NOT NULL THEN 'backs ' || l.foreign_key_use
           END AS protected_by,
           -- a standby's scans are counted on the standby only (pg_stat_user_indexes is per server)
           EXISTS (SELECT FROM pg_catalog.pg_stat_replication) OR EXISTS (SELECT FROM pg_catalog.pg_replication_slots r WHERE r.slot_type = 'physical') AS has_standbys
      FROM live l
      CROSS JOIN args a
      LEFT JOIN history h ON h.indexrelid = l.indexrelid
      LEFT JOIN @extschema@.index_counters k ON k.indexrelid = l.indexrelid
      LEFT JOIN writes wr ON wr.relid = l.indrelid
      -- estimated for the indexes judged here only (pg_stats for every index of a database
      -- with thousands of partitions took most of this function's time)
      LEFT JOIN @extschema@._btree_bloat(ARRAY(SELECT o.indexrelid FROM live o)) b ON b.indexrelid = l.indexrelid
), twins AS (
    -- an identical index on the same table: the newer one, unless only the older is droppable
    SELECT m.indexrelid, pg_catalog.min(o.indexname) AS twin
      FROM measured m JOIN measured o
        ON o.indrelid = m.indrelid AND o.indexrelid <> m.indexrelid
       AND (o.method, o.keys, o.opclasses, o.options, o.collations, o.expressions, o.predicate, o.indnkeyatts)
         = (m.method, m.keys, m.opclasses, m.options, m.collations, m.expressions, m.predicate, m.indnkeyatts)
     -- the twin that stays must be valid: never call the only valid copy a duplicate
     WHERE m.protected_by IS NULL AND o.indisvalid
       AND (o.protected_by IS NOT NULL OR NOT m.indisvalid OR o.indexrelid < m.indexrelid)
     GROUP BY m.indexrelid
), covering AS (
    -- a wider index whose leading columns are exactly this index's columns
    SELECT m.indexrelid, pg_catalog.min(o.indexname) AS wider
      FROM measured m JOIN measured o
        ON o.indrelid = m.indrelid AND o.indexrelid <> m.indexrelid
       AND o.method = m.method AND o.predicate = m.predicate
       AND m.expressions = '' AND o.expressions = ''
       AND o.keys LIKE m.keys || ' %' AND o.opclasses LIKE m.opclasses || ' %'
       AND o.options LIKE m.options || ' %' AND o.collations LIKE m.collations || ' %'
     WHERE NOT m.indisunique AND m.method = 'btree' AND o.indisvalid
     GROUP BY m.indexrelid
), judged AS (
    SELECT m.*, tw.twin, cv.wider,
           m.watched >= 0.9 * LEAST(m.window_seconds, m.min_evidence) AS enough_evidence,
           m.scans / GREATEST(m.watched, 1) * 86400 AS scans_per_day,
           CASE
               WHEN NOT m.indisvalid THEN 'invalid'
               WHEN tw.twin IS NOT NULL THEN 'duplicate'
               WHEN cv.wider IS NOT NULL THEN 'redundant'
               WHEN m.scans = 0 AND m.watched >= 0.9 * LEAST(m.window_seconds, m.min_evidence) THEN 'unused'
               WHEN m.scans = 0 THEN 'insufficient_history'
               WHEN m.watched >= 0.9 * LEAST(m.window_seconds, m.min_evidence)
                    AND m.scans / GREATEST(m.watched, 1) * 86400 < m.rare_per_day THEN 'rarely_used'
               WHEN m.table_rows > 1000
                    AND m.tup_read::double precision / m.scans > m.low_selectivity * m.table_rows THEN 'low_selectivity'
               WHEN m.bloat_ratio > m.bloat_ratio_min AND m.bloat_bytes > m.bloat_bytes_min THEN 'bloated'
               ELSE 'effective'
           END AS status
      FROM measured m
      LEFT JOIN twins tw ON tw.indexrelid = m.indexrelid
      LEFT JOIN covering cv ON cv.indexrelid = m.indexrelid
)
SELECT j.schemaname, j.tablename, j.indexname, j.method,
       j.scans, j.scans / NULLIF(j.watched, 0), j.tup_read::double precision / NULLIF(j.scans, 0),
       j.index_bytes, j.table_bytes, j.index_bytes::double precision / NULLIF(j.table_bytes, 0),
       j.writes, j.watched, j.protected_by, j.status,
       CASE
           WHEN j.status = 'effective' THEN 'keep'
           WHEN j.status = 'insufficient_history' THEN
               pg_catalog.format('not scanned while watched for %s; judge again after %s of history',
                                 pg_catalog.make_interval(secs => pg_catalog.round(j.watched::numeric)),
                                 pg_catalog.make_interval(secs => 0.9 * LEAST(j.window_seconds, j.min_evidence)))
           WHEN j.status = 'invalid' THEN
               pg_catalog.format('REINDEX INDEX CONCURRENTLY %I.%I;  -- a failed CREATE INDEX CONCURRENTLY left it invalid: it is maintained on every write but never used',
                                 j.schemaname, j.indexname)
           WHEN j.status = 'bloated' THEN
               pg_catalog.format('REINDEX INDEX CONCURRENTLY %I.%I;  -- an estimated %s%% of it is free space',
                                 j.schemaname, j.indexname, pg_catalog.round((100 * j.bloat_ratio)::numeric))
           WHEN j.status = 'low_selectivity' AND j.protected_by IS NULL THEN
               pg_catalog.format('each scan reads %s%% of the table: consider a partial index or DROP INDEX CONCURRENTLY %I.%I;',
                                 pg_catalog.round((100 * j.tup_read / j.scans / NULLIF(j.table_rows, 0))::numeric, 1),
                                 j.schemaname, j.indexname)
           WHEN j.protected_by IS NOT NULL THEN
               pg_catalog.format('keep: it %s', j.protected_by)
           WHEN j.has_standbys THEN
               pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;  -- first check its scans on every standby (pg_stat_user_indexes there): they are not counted here',
                                 j.schemaname, j.indexname)
           ELSE
               pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;', j.schemaname, j.indexname)
       END,
       CASE j.status
           WHEN 'duplicate' THEN pg_catalog.format('same definition as %I', j.twin)
           WHEN 'redundant' THEN pg_catalog.format('its columns lead index %I, which serves the same lookups', j.wider)
           WHEN 'unused' THEN pg_catalog.format('0 scans on this server while watched for %s (scans on standbys are not counted)',
                                                pg_catalog.make_interval(secs => pg_catalog.round(j.watched::numeric)))
           WHEN 'rarely_used' THEN pg_catalog.format('%s scans per day on this server (threshold %s; scans on standbys are not counted) against %s table writes',
                                                    pg_catalog.round(j.scans_per_day::numeric, 2), j.rare_per_day, j.writes)
           WHEN 'invalid' THEN 'pg_index.indisvalid is false'
           WHEN 'bloated' THEN pg_catalog.format('%s bytes, where its %s rows (pg_class.reltuples) would fill about %s at its fillfactor (estimated from pg_stats): %s bytes of free space',
                                                j.index_bytes, (SELECT pg_catalog.round(c.reltuples) FROM pg_catalog.pg_class c WHERE c.oid = j.indexrelid),
                                                j.expected_bytes, j.bloat_bytes)
           ELSE pg_catalog.format('%s scans in %s of watching', j.scans, pg_catalog.make_interval(secs => pg_catalog.round(j.watched::numeric)))
       END
  FROM judged j
 ORDER BY CASE j.status WHEN 'effective' THEN 1 ELSE 0 END, j.schemaname, j.tablename, j.indexname
$$;

-- Computed by _compute_index_effectiveness once per statement: the health score and the report
-- both read it (src/api/memo.rs).
CREATE OR REPLACE FUNCTION @extschema@.index_effectiveness(analysis_window interval)
RETURNS TABLE (
    schemaname text, tablename text, indexname text, index_method text,
    scans_in_window bigint, scans_per_second double precision, tuples_read_per_scan double precision,
    index_bytes bigint, table_bytes bigint, size_ratio double precision,
    table_writes_in_window bigint, watched_seconds double precision,
    protected_by text, index_status text, recommendation text, evidence text)
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';
REVOKE ALL ON FUNCTION @extschema@._compute_index_effectiveness(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._compute_index_effectiveness(interval) TO dbanalytics_reader;

-- (_health_measures: replaced once, by its latest version, further down)

-- (_pool_analytics: dropped further down, replaced by _pool_verdicts and _pool_recommendation)

-------------------------------------------------------------------------------
-- Packed minutes (issue 13): once an hour is rolled up, its per-interval statement_stats and
-- statement_latency rows are packed into one row per statement and hour
-- (statement_stats_packed, statement_latency_packed, on the hour's clock in packed_hours; the
-- collector's pack_minutes source), and the readers of minutes read both.
-------------------------------------------------------------------------------
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

GRANT SELECT ON @extschema@.statement_stats_packed, @extschema@.statement_latency_packed, @extschema@.packed_hours
    TO dbanalytics_reader;

-- The codec of packed minutes (src/storage/packing.rs).
CREATE FUNCTION @extschema@."_pack_columns"(
	"columns" INT, /* Option < i32 > */
	"values" bigint[], /* :: std :: option :: Option < pgrx :: Array < i64 > > */
	"intervals" bool DEFAULT false, /* Option < bool > */
	"clock" bigint[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"histogram" INT DEFAULT NULL /* Option < i32 > */
) RETURNS bytea /* :: std :: option :: Option < Vec < u8 > > */
IMMUTABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_pack_columns_wrapper';

CREATE FUNCTION @extschema@."_unpack_columns"(
	"packed" bytea, /* Option < & [u8] > */
	"after" bigint DEFAULT NULL, /* Option < i64 > */
	"upto" bigint DEFAULT NULL, /* Option < i64 > */
	"clock" bigint[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < i64 > > > */
) RETURNS TABLE (
	"n" INT,  /* i32 */
	"row_values" bigint[]  /* Vec < Option < i64 > > */
)
IMMUTABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_unpack_columns_wrapper';

CREATE FUNCTION @extschema@."_unpack_totals"(
	"packed" bytea, /* Option < & [u8] > */
	"after" bigint, /* Option < i64 > */
	"upto" bigint, /* Option < i64 > */
	"ratio_column" INT DEFAULT NULL, /* Option < i32 > */
	"ratio_keys" bigint[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"ratio_divisors" bigint[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"clock" bigint[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < i64 > > > */
) RETURNS TABLE (
	"rows" INT,  /* i32 */
	"sums" bigint[],  /* Vec < Option < i64 > > */
	"first_row" bigint[],  /* Vec < Option < i64 > > */
	"last_row" bigint[],  /* Vec < Option < i64 > > */
	"peak_ratio" double precision  /* Option < f64 > */
)
IMMUTABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_unpack_totals_wrapper';

CREATE FUNCTION @extschema@."_unpack_latency_totals"(
	"packed" bytea, /* Option < & [u8] > */
	"after" bigint, /* Option < i64 > */
	"upto" bigint, /* Option < i64 > */
	"applications" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"clock" bigint[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < i64 > > > */
) RETURNS TABLE (
	"reset" bool,  /* bool */
	"executions" bigint,  /* i64 */
	"buckets" smallint[],  /* Vec < i16 > */
	"counts" bigint[],  /* Vec < i64 > */
	"runs" bigint,  /* Option < i64 > */
	"run_executions" bigint,  /* Option < i64 > */
	"run_max_length" bigint,  /* Option < i64 > */
	"run_parent_queryid" bigint,  /* Option < i64 > */
	"cpu_user_ns" bigint,  /* Option < i64 > */
	"cpu_system_ns" bigint,  /* Option < i64 > */
	"disk_read_bytes" bigint,  /* Option < i64 > */
	"disk_write_bytes" bigint,  /* Option < i64 > */
	"run_application" TEXT  /* Option < String > */
)
IMMUTABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_unpack_latency_totals_wrapper';

-- Packs the per-interval rows of statement_stats and statement_latency of the whole hours rolled
-- up so far (source_state 'hours') into statement_stats_packed and statement_latency_packed, one
-- row per statement and hour on the hour's clock (packed_hours; src/storage/packing.rs), and
-- deletes them: the two oldest such hours per call, so that a backlog (after an upgrade, or a
-- collector stopped for long) is worked off over a few snapshots. Hours past retention_minutes
-- are left to retention, which drops their partitions. The collector's pack_minutes source,
-- after rollup_hours; returns the rows written.
CREATE FUNCTION @extschema@._pack_minutes()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- an hour of 5,000 statements groups in memory: no temporary file
AS $$
DECLARE
    until timestamptz;
    oldest_kept timestamptz;
    hour_to_pack timestamptz;
    clock bigint[];
    counters text;
    width integer;
    written bigint := 0;
    n bigint;
BEGIN
    -- one run at a time, and not during a rollup (which reads the minutes)
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.rollup_hours'));
    SELECT s.updated_at INTO until FROM @extschema@.source_state s WHERE s.source = 'hours';
    IF until IS NULL THEN
        RETURN 0;
    END IF;
    -- what _packed_statement_minutes unpacks: every counter as a bigint, times in nanoseconds
    IF EXISTS (SELECT FROM @extschema@._statement_counter_columns() c
                WHERE c.type NOT IN ('bigint', 'double precision')) THEN
        RAISE EXCEPTION 'dbanalytics: a statement counter is neither bigint nor double precision'
            USING HINT = 'Packed minutes hold bigint values: map a new counter onto one of the two types.';
    END IF;
    SELECT pg_catalog.max(c.ordinal) INTO width FROM @extschema@._statement_counter_columns() c;
    SELECT pg_catalog.string_agg(CASE c.type
                                     WHEN 'bigint' THEN pg_catalog.format('s.%I', c.name)
                                     WHEN 'double precision' THEN pg_catalog.format(
                                         'CASE WHEN pg_catalog.abs(s.%1$I) < 9e12 THEN (s.%1$I * 1000000)::bigint END',
                                         c.name)
                                     ELSE 'NULL::bigint' END, ', ' ORDER BY o.ordinal)
      INTO counters
      FROM pg_catalog.generate_series(1, width) o(ordinal)
      LEFT JOIN @extschema@._statement_counter_columns() c ON c.ordinal = o.ordinal;

    SELECT @extschema@._time_floor(pg_catalog.now() - pg_catalog.make_interval(secs => t.retention_seconds), 3600)
      INTO oldest_kept
      FROM @extschema@._storage_tiers() t WHERE t.table_name = 'statement_stats_packed';
    FOR i IN 1..2 LOOP
        SELECT @extschema@._time_ceil(LEAST(
                   (SELECT pg_catalog.min(s.interval_end) FROM @extschema@.statement_stats s
                     WHERE s.interval_end > oldest_kept AND s.interval_end <= until),
                   (SELECT pg_catalog.min(l.interval_end) FROM @extschema@.statement_latency l
                     WHERE l.interval_end > oldest_kept AND l.interval_end <= until)), 3600)
          INTO hour_to_pack;
        EXIT WHEN hour_to_pack IS NULL OR hour_to_pack > until;

        -- the hour's clock, stored once: every interval end of its minutes, which the packed rows
        -- store as positions on it (none when the hour has one already, from an earlier packing)
        clock := NULL;
        IF NOT EXISTS (SELECT FROM @extschema@.packed_hours h WHERE h.hour_end = hour_to_pack) THEN
            SELECT pg_catalog.array_agg(e.t ORDER BY e.t) INTO clock
              FROM (SELECT (EXTRACT(epoch FROM s.interval_end) * 1000000)::bigint AS t
                      FROM @extschema@.statement_stats s
                     WHERE s.interval_end > hour_to_pack - interval '1 hour' AND s.interval_end <= hour_to_pack
                    UNION
                    SELECT (EXTRACT(epoch FROM l.interval_end) * 1000000)::bigint
                      FROM @extschema@.statement_latency l
                     WHERE l.interval_end > hour_to_pack - interval '1 hour' AND l.interval_end <= hour_to_pack) e;
            INSERT INTO @extschema@.packed_hours VALUES (hour_to_pack, clock);
        END IF;

        EXECUTE pg_catalog.format($q$
            INSERT INTO @extschema@.statement_stats_packed
            SELECT $1, s.dbid, s.userid, s.queryid, s.toplevel,
                   @extschema@._pack_columns(%s, pg_catalog.array_agg(ARRAY[
                       (EXTRACT(epoch FROM s.interval_end) * 1000000)::bigint,
                       (EXTRACT(epoch FROM s.interval_end - s.interval_start) * 1000000)::bigint,
                       s.reset::integer::bigint, %s] ORDER BY s.interval_end), true, $2)
              FROM @extschema@.statement_stats s
             WHERE s.interval_end > $1 - interval '1 hour' AND s.interval_end <= $1
             GROUP BY s.dbid, s.userid, s.queryid, s.toplevel
        $q$, width + 3, counters) USING hour_to_pack, clock;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
        DELETE FROM @extschema@.statement_stats s
         WHERE s.interval_end > hour_to_pack - interval '1 hour' AND s.interval_end <= hour_to_pack;

        INSERT INTO @extschema@.statement_latency_packed
        SELECT hour_to_pack, w.dbid, w.userid, w.queryid,
               @extschema@._pack_columns(13 + 2 * pg_catalog.max(w.width), pg_catalog.array_agg(
                   ARRAY[(EXTRACT(epoch FROM w.interval_end) * 1000000)::bigint,
                         (EXTRACT(epoch FROM w.interval_end - w.interval_start) * 1000000)::bigint,
                         w.reset::integer::bigint, w.executions, w.runs, w.run_executions,
                         w.run_max_length, w.run_parent_queryid,
                         CASE WHEN pg_catalog.abs(w.cpu_user_time) < 9e12 THEN (w.cpu_user_time * 1000000)::bigint END,
                         CASE WHEN pg_catalog.abs(w.cpu_system_time) < 9e12 THEN (w.cpu_system_time * 1000000)::bigint END,
                         w.disk_read_bytes, w.disk_write_bytes, pg_catalog.cardinality(w.buckets)::bigint]
                   OPERATOR(pg_catalog.||) w.buckets::bigint[]
                   OPERATOR(pg_catalog.||) pg_catalog.array_fill(NULL::bigint, ARRAY[w.width - pg_catalog.cardinality(w.buckets)])
                   OPERATOR(pg_catalog.||) w.counts
                   OPERATOR(pg_catalog.||) pg_catalog.array_fill(NULL::bigint, ARRAY[w.width - pg_catalog.cardinality(w.counts)])
                   ORDER BY w.interval_end), true, clock, 13),
               CASE WHEN pg_catalog.bool_or(w.run_application IS NOT NULL)
                    THEN pg_catalog.array_agg(w.run_application ORDER BY w.interval_end) END
          FROM (SELECT l.*, pg_catalog.max(pg_catalog.cardinality(l.buckets))
                                OVER (PARTITION BY l.dbid, l.userid, l.queryid) AS width
                  FROM @extschema@.statement_latency l
                 WHERE l.interval_end > hour_to_pack - interval '1 hour' AND l.interval_end <= hour_to_pack) w
         GROUP BY w.dbid, w.userid, w.queryid;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
        DELETE FROM @extschema@.statement_latency l
         WHERE l.interval_end > hour_to_pack - interval '1 hour' AND l.interval_end <= hour_to_pack;
    END LOOP;
    RETURN written;
END
$$;

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

REVOKE ALL ON FUNCTION @extschema@._pack_minutes() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._pack_columns(integer, bigint[], boolean, bigint[], integer),
    @extschema@._unpack_columns(bytea, bigint, bigint, bigint[]),
    @extschema@._unpack_totals(bytea, bigint, bigint, integer, bigint[], bigint[], bigint[]),
    @extschema@._unpack_latency_totals(bytea, bigint, bigint, text[], bigint[]),
    @extschema@._packed_statement_minutes(timestamptz, timestamptz),
    @extschema@._packed_latency_minutes(timestamptz, timestamptz, bigint[]),
    @extschema@._packed_statement_totals(timestamptz, timestamptz),
    @extschema@._packed_latency_parts(timestamptz, timestamptz, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._pack_columns(integer, bigint[], boolean, bigint[], integer),
    @extschema@._unpack_columns(bytea, bigint, bigint, bigint[]),
    @extschema@._unpack_totals(bytea, bigint, bigint, integer, bigint[], bigint[], bigint[]),
    @extschema@._unpack_latency_totals(bytea, bigint, bigint, text[], bigint[]),
    @extschema@._packed_statement_minutes(timestamptz, timestamptz),
    @extschema@._packed_latency_minutes(timestamptz, timestamptz, bigint[]),
    @extschema@._packed_statement_totals(timestamptz, timestamptz),
    @extschema@._packed_latency_parts(timestamptz, timestamptz, bigint[]) TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Capacity (issue 18): server_stats (transaction-ID and multixact counters, WAL position,
-- file-system space, the host's CPU, memory, load and paging) each snapshot and size_daily
-- each day; wraparound_risk, space_growth, wal_generation and host_stats; the alert rules
-- inactive_slot_wal, wraparound_soon and disk_full_soon; the health indicator disk_full_days
-- (reliability; deadlock_frequency and rollback_ratio give it 5 points each); per-statement
-- CPU time and block I/O.
-------------------------------------------------------------------------------
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

-- Daily sizes (rollup source, _rollup_size_days): per UTC day, the last size the day's
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
REVOKE ALL ON @extschema@.server_stats, @extschema@.size_daily FROM PUBLIC;
GRANT SELECT ON @extschema@.server_stats, @extschema@.size_daily TO dbanalytics_reader;

CREATE FUNCTION @extschema@."_server_now"() RETURNS TABLE (
	"next_xid" bigint,  /* i64 */
	"next_multixact" bigint,  /* i64 */
	"disk_used_bytes" bigint,  /* Option < i64 > */
	"disk_available_bytes" bigint,  /* Option < i64 > */
	"wal_disk_used_bytes" bigint,  /* Option < i64 > */
	"wal_disk_available_bytes" bigint,  /* Option < i64 > */
	"host_status" TEXT,  /* String */
	"boot_time" timestamp with time zone,  /* Option < pgrx :: datum :: TimestampWithTimeZone > */
	"cpus" INT,  /* Option < i32 > */
	"cpu_user_seconds" double precision,  /* Option < f64 > */
	"cpu_system_seconds" double precision,  /* Option < f64 > */
	"cpu_iowait_seconds" double precision,  /* Option < f64 > */
	"cpu_idle_seconds" double precision,  /* Option < f64 > */
	"cpu_other_seconds" double precision,  /* Option < f64 > */
	"mem_total_bytes" bigint,  /* Option < i64 > */
	"mem_available_bytes" bigint,  /* Option < i64 > */
	"load1" double precision,  /* Option < f64 > */
	"disk_read_bytes" bigint,  /* Option < i64 > */
	"disk_write_bytes" bigint  /* Option < i64 > */
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_server_now_wrapper';
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

CREATE OR REPLACE FUNCTION @extschema@._rollup_hours()
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

    written := written + @extschema@._rollup_statements('hour', rolled_until, upper_bound);
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
        written := written + @extschema@._rollup_statements('day', rolled_until, upper_bound);
        written := written + @extschema@._rollup_latency('day', rolled_until, upper_bound);
        INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('days', upper_bound)
        ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    END IF;

    RETURN written;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._server_now(), @extschema@._snapshot_server(),
    @extschema@._rollup_size_days(timestamptz, timestamptz) FROM PUBLIC;

CREATE OR REPLACE VIEW @extschema@.analytics_thresholds (name, value, unit, used_by, meaning) AS
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

-- dbanalytics analytics: capacity. Transaction-ID and multixact wraparound, space growth and
-- the date the disk fills, WAL generated per hour, and the host's CPU, memory, load and I/O,
-- from server_stats (each snapshot) and size_daily (each day).

-- Approximate age at which PostgreSQL stops assigning transaction IDs (or multixact IDs) to
-- protect itself from wraparound: 2^31 - 1 minus the 3 million it keeps in reserve.
CREATE FUNCTION @extschema@._wraparound_stop_age()
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 2147483647 - 3000000 $$;

-- Transaction IDs and multixact IDs consumed per day over the window, from server_stats: NULL
-- unless its snapshots span consumption_min_history (a burst of minutes says little about
-- days). The XID counter is the full one (it never wraps); the multixact counter is 32 bits,
-- so its steps are taken modulo 2^32. Always one row.
CREATE FUNCTION @extschema@._id_consumption(analysis_window interval)
RETURNS TABLE (xids_per_day double precision, multixacts_per_day double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN t.span >= @extschema@._threshold('consumption_min_history')
                THEN t.xids::double precision * 86400 / t.span END,
           CASE WHEN t.span >= @extschema@._threshold('consumption_min_history')
                THEN t.multixacts::double precision * 86400 / t.span END
      FROM (SELECT EXTRACT(epoch FROM pg_catalog.max(x.interval_end) - pg_catalog.min(x.interval_end)) AS span,
                   pg_catalog.max(x.next_xid) - pg_catalog.min(x.next_xid) AS xids,
                   pg_catalog.sum(x.multixact_step) AS multixacts
              FROM (SELECT s.interval_end, s.next_xid,
                           (s.next_multixact - pg_catalog.lag(s.next_multixact) OVER (ORDER BY s.interval_end)
                            + 4294967296) % 4294967296 AS multixact_step
                      FROM @extschema@.server_stats s
                     WHERE s.interval_end > @extschema@._window_start(analysis_window)) x) t
$$;

-- Per database (every one) and per table of this database (TOAST tables and materialized views
-- included): the age of the oldest unfrozen transaction ID and multixact ID, the age at which
-- autovacuum forces an anti-wraparound vacuum (autovacuum_freeze_max_age and
-- autovacuum_multixact_freeze_max_age, or a table's lower storage parameter), and, at the rate
-- the window's history shows, when that forced vacuum is due and when the server would stop
-- assigning IDs (_wraparound_stop_age).
CREATE FUNCTION @extschema@.wraparound_risk(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (object_type text, datname text, schemaname text, relname text,
               xid_age bigint, xid_freeze_max_age bigint, multixact_age bigint, multixact_freeze_max_age bigint,
               xids_per_day double precision, multixacts_per_day double precision,
               forced_vacuum_at timestamptz, wraparound_stop_at timestamptz, risk text, action text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH settings AS (
    SELECT pg_catalog.current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max,
           pg_catalog.current_setting('autovacuum_multixact_freeze_max_age')::bigint AS mxid_freeze_max,
           @extschema@._wraparound_stop_age() AS stop_age
), objects AS (
    SELECT 'database' AS object_type, d.datname::pg_catalog.text AS datname, NULL::pg_catalog.text AS schemaname,
           NULL::pg_catalog.text AS relname, pg_catalog.age(d.datfrozenxid)::bigint AS xid_age,
           st.freeze_max AS xid_freeze_max, pg_catalog.mxid_age(d.datminmxid)::bigint AS mxid_age,
           st.mxid_freeze_max
      FROM pg_catalog.pg_database d CROSS JOIN settings st
    UNION ALL
    SELECT 'table', pg_catalog.current_database()::pg_catalog.text, n.nspname::pg_catalog.text,
           c.relname::pg_catalog.text, pg_catalog.age(c.relfrozenxid)::bigint,
           LEAST(st.freeze_max, o.freeze_max), pg_catalog.mxid_age(c.relminmxid)::bigint,
           LEAST(st.mxid_freeze_max, o.mxid_freeze_max)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN settings st
     CROSS JOIN LATERAL (
           SELECT pg_catalog.max(r.option_value::bigint) FILTER (WHERE r.option_name = 'autovacuum_freeze_max_age'),
                  pg_catalog.max(r.option_value::bigint) FILTER (WHERE r.option_name = 'autovacuum_multixact_freeze_max_age')
             FROM pg_catalog.pg_options_to_table(c.reloptions) r) o(freeze_max, mxid_freeze_max)
     WHERE c.relkind IN ('r', 'm', 't')
), judged AS (
    SELECT o.*, r.xids_per_day, r.multixacts_per_day,
           -- days until each limit at the current rate (0 when already reached, NULL when the
           -- rate is unknown or zero)
           LEAST(CASE WHEN o.xid_age >= o.xid_freeze_max THEN 0
                      ELSE (o.xid_freeze_max - o.xid_age) / NULLIF(r.xids_per_day, 0) END,
                 CASE WHEN o.mxid_age >= o.mxid_freeze_max THEN 0
                      ELSE (o.mxid_freeze_max - o.mxid_age) / NULLIF(r.multixacts_per_day, 0) END) AS days_to_forced,
           LEAST((st.stop_age - o.xid_age) / NULLIF(r.xids_per_day, 0),
                 (st.stop_age - o.mxid_age) / NULLIF(r.multixacts_per_day, 0)) AS days_to_stop,
           GREATEST(o.xid_age, o.mxid_age)::double precision / st.stop_age AS share_of_stop
      FROM objects o CROSS JOIN settings st CROSS JOIN @extschema@._id_consumption(analysis_window) r
), risked AS (
    SELECT j.*,
           CASE WHEN j.days_to_stop < @extschema@._threshold('wraparound_critical_days')
                  OR j.share_of_stop > @extschema@._threshold('xid_age_critical') THEN 'critical'
                WHEN j.days_to_stop < @extschema@._threshold('wraparound_warning_days')
                  OR j.share_of_stop > @extschema@._threshold('xid_age_warning') THEN 'warning'
                WHEN j.days_to_forced = 0 THEN 'vacuum_due'
                ELSE 'ok' END AS risk
      FROM judged j
)
SELECT r.object_type, r.datname, r.schemaname, r.relname, r.xid_age, r.xid_freeze_max, r.mxid_age, r.mxid_freeze_max,
       r.xids_per_day, r.multixacts_per_day,
       -- beyond a century: NULL (as for no consumption)
       CASE WHEN r.days_to_forced < 36500 THEN pg_catalog.now() + pg_catalog.make_interval(secs => r.days_to_forced * 86400) END,
       CASE WHEN r.days_to_stop < 36500 THEN pg_catalog.now() + pg_catalog.make_interval(secs => GREATEST(r.days_to_stop, 0) * 86400) END,
       r.risk,
       CASE WHEN r.risk = 'ok' THEN 'no action needed'
            WHEN r.risk = 'vacuum_due' THEN
                'autovacuum runs (or is about to run) an anti-wraparound vacuum of it: make sure nothing cancels or blocks it (vacuum_blockers)'
            WHEN r.object_type = 'table' THEN
                pg_catalog.format('VACUUM (FREEZE, VERBOSE) %s; first release what holds the xmin horizon (vacuum_blockers)',
                                  pg_catalog.format('%I.%I', r.schemaname, r.relname))
            ELSE pg_catalog.format('connect to database %I, freeze its oldest tables (wraparound_risk there lists them) '
                                   'with VACUUM (FREEZE); first release what holds the xmin horizon (vacuum_blockers)',
                                   r.datname) END
  FROM risked r
 ORDER BY pg_catalog.array_position(ARRAY['critical', 'warning', 'vacuum_due', 'ok'], r.risk),
          GREATEST(r.xid_age::double precision / r.xid_freeze_max, r.mxid_age::double precision / r.mxid_freeze_max) DESC,
          r.object_type, r.datname, r.schemaname, r.relname
$$;

CREATE VIEW @extschema@.wraparound_risk AS
SELECT * FROM @extschema@.wraparound_risk(interval '1 day');

-- target_bytes of space_growth, checked: positive or NULL.
CREATE FUNCTION @extschema@._check_target_bytes(target_bytes bigint)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target_bytes <= 0 THEN
        RAISE EXCEPTION 'dbanalytics: target_bytes must be positive, got %', target_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a size in bytes, such as pg_catalog.pg_size_bytes(''500 GB''), or NULL for no target.';
    END IF;
    RETURN target_bytes;
END
$$;

-- Size growth per database, table, index and file system: the size now, the growth per day
-- from a least-squares line through the window's daily sizes (size_daily) and the latest
-- snapshot, how well the line fits (r², 1 = a straight line), and the date the size now,
-- growing at that rate, reaches the file system's capacity (used + available now) or, given
-- target_bytes, that size.
CREATE FUNCTION @extschema@.space_growth(analysis_window interval DEFAULT '30 days', target_bytes bigint DEFAULT NULL)
RETURNS TABLE (object_type text, datname text, schemaname text, relname text, size_bytes bigint,
               measured_at timestamptz, days_measured integer, growth_bytes_per_day double precision,
               fit_r2 double precision, capacity_bytes bigint, forecast_of text, forecast_at timestamptz,
               status text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH args AS MATERIALIZED (
    -- the thresholds read once, not for every object
    SELECT @extschema@._window_start(analysis_window) AS since,
           @extschema@._check_target_bytes(target_bytes) AS target,
           @extschema@._threshold('growth_min_history') * interval '1 s' AS min_history,
           @extschema@._threshold('disk_full_warning_days') * interval '1 day' AS full_warning,
           @extschema@._threshold('growth_stable_ratio') AS stable_ratio
), latest AS (
    SELECT (SELECT pg_catalog.max(t.interval_end) FROM @extschema@.table_stats t) AS tables,
           (SELECT pg_catalog.max(i.interval_end) FROM @extschema@.index_stats i) AS indexes,
           (SELECT pg_catalog.max(d.interval_end) FROM @extschema@.database_stats d) AS databases,
           (SELECT pg_catalog.max(s.interval_end) FROM @extschema@.server_stats s) AS server
), disk AS (
    SELECT f.name, f.used + f.available AS capacity
      FROM @extschema@.server_stats s CROSS JOIN latest l,
           LATERAL (VALUES ('data directory', s.disk_used_bytes, s.disk_available_bytes),
                           ('pg_wal', s.wal_disk_used_bytes, s.wal_disk_available_bytes)) f(name, used, available)
     WHERE s.interval_end = l.server AND f.used IS NOT NULL
), points AS (
    SELECT d.object_type, d.datname, d.objid, d.schemaname, d.relname, d.measured_at, d.size_bytes
      FROM @extschema@.size_daily d, args a WHERE d.day_end > a.since
    UNION  -- the latest snapshot: today's point (the same as the last daily one when nothing newer)
    SELECT 'table', t.datname, t.relid, t.schemaname, t.relname, t.interval_end, t.table_size
      FROM @extschema@.table_stats t, latest l WHERE t.interval_end = l.tables AND t.table_size IS NOT NULL
    UNION
    SELECT 'index', i.datname, i.indexrelid, i.schemaname, i.indexrelname, i.interval_end, i.index_size
      FROM @extschema@.index_stats i, latest l WHERE i.interval_end = l.indexes AND i.index_size IS NOT NULL
    UNION
    SELECT 'database', d.datname, d.datid, NULL, NULL, d.interval_end, d.database_size
      FROM @extschema@.database_stats d, latest l WHERE d.interval_end = l.databases AND d.database_size IS NOT NULL
    UNION
    SELECT 'filesystem', NULL, 0::oid, NULL, f.name, s.interval_end, f.used
      FROM @extschema@.server_stats s CROSS JOIN latest l,
           LATERAL (VALUES ('data directory', s.disk_used_bytes), ('pg_wal', s.wal_disk_used_bytes)) f(name, used)
     WHERE s.interval_end = l.server AND f.used IS NOT NULL
), fitted AS (
    SELECT p.object_type, p.datname, p.objid,
           (pg_catalog.array_agg(p.schemaname ORDER BY p.measured_at DESC))[1] AS schemaname,
           (pg_catalog.array_agg(p.relname ORDER BY p.measured_at DESC))[1] AS relname,
           (pg_catalog.array_agg(p.size_bytes ORDER BY p.measured_at DESC))[1] AS size_bytes,
           pg_catalog.max(p.measured_at) AS measured_at,
           pg_catalog.count(DISTINCT @extschema@._time_ceil(p.measured_at, 86400))::integer AS days_measured,
           pg_catalog.max(p.measured_at) - pg_catalog.min(p.measured_at) AS span,
           pg_catalog.regr_slope(p.size_bytes, EXTRACT(epoch FROM p.measured_at)) AS slope,
           pg_catalog.regr_r2(p.size_bytes, EXTRACT(epoch FROM p.measured_at)) AS r2
      FROM points p
     -- file systems have no oid: told apart by name (data directory, pg_wal)
     GROUP BY p.object_type, p.datname, p.objid, CASE WHEN p.object_type = 'filesystem' THEN p.relname END
), goals AS (
    SELECT f.*, dk.capacity,
           CASE WHEN f.object_type = 'filesystem' THEN 'disk full'
                WHEN a.target IS NOT NULL THEN 'target size' END AS forecast_of,
           CASE WHEN f.object_type = 'filesystem' THEN dk.capacity ELSE a.target END AS goal,
           f.span >= a.min_history AS enough, a.full_warning, a.stable_ratio
      FROM fitted f CROSS JOIN args a
      LEFT JOIN disk dk ON f.object_type = 'filesystem' AND dk.name = f.relname
), forecast AS (
    -- days from the latest measurement to the goal at the fitted growth (from the size measured,
    -- not from the line: after a clean-up the line lies above the size); 0 when reached; NULL
    -- when not growing, too little history, or more than a century away
    SELECT g.*,
           CASE WHEN g.goal IS NULL THEN NULL
                WHEN g.size_bytes >= g.goal THEN 0
                WHEN g.enough AND g.slope > 0 AND (g.goal - g.size_bytes) / (g.slope * 86400) < 36500
                THEN (g.goal - g.size_bytes) / (g.slope * 86400) END AS days_to_goal
      FROM goals g
)
SELECT g.object_type, g.datname, g.schemaname, g.relname, g.size_bytes, g.measured_at, g.days_measured,
       CASE WHEN g.enough THEN g.slope * 86400 END, CASE WHEN g.enough THEN g.r2 END, g.capacity, g.forecast_of,
       g.measured_at + pg_catalog.make_interval(secs => g.days_to_goal * 86400),
       CASE WHEN g.object_type = 'filesystem' AND g.size_bytes >= g.capacity THEN 'full'
            WHEN NOT g.enough THEN 'too_little_history'
            WHEN g.object_type = 'filesystem'
                 AND g.measured_at + pg_catalog.make_interval(secs => g.days_to_goal * 86400)
                     < pg_catalog.now() + g.full_warning THEN 'full_soon'
            WHEN g.slope * 86400 > g.stable_ratio * g.size_bytes THEN 'growing'
            WHEN g.slope * 86400 < -g.stable_ratio * g.size_bytes THEN 'shrinking'
            ELSE 'stable' END
  FROM forecast g
 ORDER BY pg_catalog.array_position(ARRAY['filesystem', 'database', 'table', 'index'], g.object_type),
          g.slope * 86400 DESC NULLS LAST, g.size_bytes DESC, g.datname, g.schemaname, g.relname
$$;

CREATE VIEW @extschema@.space_growth AS
SELECT * FROM @extschema@.space_growth(interval '30 days', NULL);

-- WAL generated per hour of the window, from the WAL position at each snapshot (on a standby:
-- WAL replayed).
CREATE FUNCTION @extschema@.wal_generation(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (hour_start timestamptz, wal_bytes numeric, bytes_per_second double precision, measured_seconds double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH steps AS (
    SELECT s.interval_end,
           pg_catalog.pg_wal_lsn_diff(s.wal_lsn, pg_catalog.lag(s.wal_lsn) OVER w) AS bytes,
           EXTRACT(epoch FROM s.interval_end - pg_catalog.lag(s.interval_end) OVER w) AS seconds
      FROM @extschema@.server_stats s
     WHERE s.interval_end > @extschema@._window_start(analysis_window)
    WINDOW w AS (ORDER BY s.interval_end)
)
SELECT pg_catalog.date_trunc('hour', st.interval_end), pg_catalog.sum(st.bytes),
       (pg_catalog.sum(st.bytes) / NULLIF(pg_catalog.sum(st.seconds), 0))::double precision,
       pg_catalog.sum(st.seconds)::double precision
  FROM steps st
 WHERE st.bytes >= 0  -- a standby promoted or rebuilt in between: not a measurement
 GROUP BY 1
 ORDER BY 1
$$;

-- The host per minute (Linux): CPU time by kind as a share of all CPUs' time, the 1-minute load
-- average, memory, and bytes read from and written to block devices per second. Where /proc
-- could not be read, host_status says why and the figures are NULL.
CREATE FUNCTION @extschema@.host_stats(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (minute timestamptz, host_status text, cpus integer, cpu_user_pct double precision,
               cpu_system_pct double precision, cpu_iowait_pct double precision, cpu_idle_pct double precision,
               load1 double precision, mem_total_bytes bigint, mem_available_bytes bigint,
               disk_read_bytes_per_second double precision, disk_write_bytes_per_second double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH steps AS (
    SELECT s.*,
           -- a reboot between two snapshots restarts the counters: no delta across it
           -- (btime may move by a second or so between reads: NTP, a virtual machine)
           COALESCE(pg_catalog.abs(EXTRACT(epoch FROM s.boot_time - pg_catalog.lag(s.boot_time) OVER w)) < 60, false)
               AS same_boot,
           EXTRACT(epoch FROM s.interval_end - pg_catalog.lag(s.interval_end) OVER w) AS seconds,
           s.cpu_user_seconds - pg_catalog.lag(s.cpu_user_seconds) OVER w AS d_user,
           s.cpu_system_seconds - pg_catalog.lag(s.cpu_system_seconds) OVER w AS d_system,
           s.cpu_iowait_seconds - pg_catalog.lag(s.cpu_iowait_seconds) OVER w AS d_iowait,
           s.cpu_idle_seconds - pg_catalog.lag(s.cpu_idle_seconds) OVER w AS d_idle,
           s.cpu_other_seconds - pg_catalog.lag(s.cpu_other_seconds) OVER w AS d_other,
           s.disk_read_bytes - pg_catalog.lag(s.disk_read_bytes) OVER w AS d_read,
           s.disk_write_bytes - pg_catalog.lag(s.disk_write_bytes) OVER w AS d_write
      FROM @extschema@.server_stats s
     WHERE s.interval_end > @extschema@._window_start(analysis_window)
    WINDOW w AS (ORDER BY s.interval_end)
), valid AS (
    SELECT st.*, CASE WHEN st.same_boot AND st.host_status = 'ok' THEN
                      NULLIF(st.d_user + st.d_system + st.d_iowait + st.d_idle + st.d_other, 0) END AS d_total
      FROM steps st
)
SELECT pg_catalog.date_trunc('minute', v.interval_end),
       (pg_catalog.array_agg(v.host_status ORDER BY v.interval_end DESC))[1],
       pg_catalog.max(v.cpus),
       100 * pg_catalog.sum(v.d_user) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       100 * pg_catalog.sum(v.d_system) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       100 * pg_catalog.sum(v.d_iowait) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       100 * pg_catalog.sum(v.d_idle) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       pg_catalog.avg(v.load1), pg_catalog.max(v.mem_total_bytes), pg_catalog.min(v.mem_available_bytes),
       pg_catalog.sum(v.d_read) FILTER (WHERE v.d_total IS NOT NULL)
           / NULLIF(pg_catalog.sum(v.seconds) FILTER (WHERE v.d_total IS NOT NULL), 0),
       pg_catalog.sum(v.d_write) FILTER (WHERE v.d_total IS NOT NULL)
           / NULLIF(pg_catalog.sum(v.seconds) FILTER (WHERE v.d_total IS NOT NULL), 0)
  FROM valid v
 GROUP BY 1
 ORDER BY 1
$$;

CREATE VIEW @extschema@.host_stats AS
SELECT * FROM @extschema@.host_stats(interval '1 hour');

REVOKE ALL ON FUNCTION @extschema@._wraparound_stop_age() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._wraparound_stop_age() TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@._id_consumption(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._id_consumption(interval) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@.wraparound_risk(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.wraparound_risk(interval) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@._check_target_bytes(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._check_target_bytes(bigint) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@.space_growth(interval, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.space_growth(interval, bigint) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@.wal_generation(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.wal_generation(interval) TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@.host_stats(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.host_stats(interval) TO dbanalytics_reader;
REVOKE ALL ON @extschema@.wraparound_risk FROM PUBLIC;
GRANT SELECT ON @extschema@.wraparound_risk TO dbanalytics_reader;
REVOKE ALL ON @extschema@.space_growth FROM PUBLIC;
GRANT SELECT ON @extschema@.space_growth TO dbanalytics_reader;
REVOKE ALL ON @extschema@.host_stats FROM PUBLIC;
GRANT SELECT ON @extschema@.host_stats TO dbanalytics_reader;

ALTER TABLE @extschema@.alert_rules
    DROP CONSTRAINT alert_rules_metric_check,
    ADD CONSTRAINT alert_rules_metric_check CHECK (metric IN ('slow_queries_per_minute', 'deadlocks', 'replication_lag_seconds',
                                                   'idle_in_transaction_seconds', 'connections_ratio', 'xid_age',
                                                   'health_score', 'health_score_drop', 'archive_failing',
                                                   'inactive_slot_retained_bytes', 'wraparound_days', 'disk_full_days',
                                                   'plan_regressions'));

-- Risks now, judged with the history of the window: one row per replication slot, and one per
-- standby that streamed in the window (replication_stats) and streams no more.
CREATE FUNCTION @extschema@.replication_risks(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (kind text, name text, slot_type text, active boolean, wal_status text,
               retained_bytes bigint, max_slot_wal_keep_size bigint, safe_wal_size bigint,
               retained_growth_per_hour double precision, hours_to_limit double precision,
               last_seen timestamptz, risk text, detail text, action text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    -- on a standby the slots retain WAL behind the replay position
    SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                ELSE pg_catalog.pg_current_wal_lsn() END AS lsn,
           (SELECT NULLIF(s.setting::bigint, -1) * 1024 * 1024 FROM pg_catalog.pg_settings s
             WHERE s.name = 'max_slot_wal_keep_size') AS keep_limit,
           -- space left on pg_wal's file system at the latest snapshot (server_stats), if known
           (SELECT COALESCE(x.wal_disk_available_bytes, x.disk_available_bytes) FROM @extschema@.server_stats x
             ORDER BY x.interval_end DESC LIMIT 1) AS wal_available
), slots AS (
    SELECT s.slot_name::pg_catalog.text AS slot_name, s.slot_type, s.active, s.wal_status,
           pg_catalog.pg_wal_lsn_diff(a.lsn, s.restart_lsn)::bigint AS retained, a.keep_limit, a.wal_available,
           s.safe_wal_size,
           (SELECT pg_catalog.regr_slope(h.retained_bytes, EXTRACT(epoch FROM h.interval_end)) * 3600
              FROM @extschema@.replication_slot_stats h
             WHERE h.slot_name = s.slot_name AND h.interval_end > pg_catalog.now() - analysis_window) AS growth
      FROM pg_catalog.pg_replication_slots s CROSS JOIN args a
), judged AS (
    SELECT s.*,
           CASE WHEN s.wal_status = 'lost' THEN 'lost'
                WHEN s.wal_status = 'unreserved' THEN 'critical'
                WHEN NOT s.active AND s.retained > 0 THEN 'high'
                WHEN s.wal_status = 'extended' THEN 'warning'
                ELSE 'ok' END AS risk
      FROM slots s
), gone AS (
    SELECT g.application_name, g.client_addr, g.last_seen
      FROM @extschema@._gone_standbys(pg_catalog.now() - analysis_window) g
)
SELECT u.* FROM (
SELECT 'slot', j.slot_name, j.slot_type, j.active, j.wal_status, j.retained, j.keep_limit, j.safe_wal_size,
       j.growth,
       -- until the slot loses WAL (max_slot_wal_keep_size) or pg_wal's disk is full, whichever
       -- comes first
       CASE WHEN j.growth > 0 THEN GREATEST(LEAST(j.safe_wal_size, j.wal_available), 0) / j.growth END,
       NULL::timestamptz, j.risk,
       CASE j.risk
           WHEN 'lost' THEN pg_catalog.format('slot %s lost WAL its consumer still needed (wal_status lost): the consumer cannot resume from it',
                                              j.slot_name)
           WHEN 'critical' THEN pg_catalog.format('slot %s retains %s, beyond max_slot_wal_keep_size: the next checkpoint removes WAL it needs',
                                                  j.slot_name, pg_catalog.pg_size_pretty(j.retained))
           WHEN 'high' THEN pg_catalog.format('inactive slot %s retains %s of WAL%s%s', j.slot_name,
                                              pg_catalog.pg_size_pretty(j.retained),
                                              CASE WHEN j.growth > 0 THEN pg_catalog.format(', growing by %s per hour',
                                                   pg_catalog.pg_size_pretty(j.growth::bigint)) ELSE '' END,
                                              CASE WHEN j.keep_limit IS NULL THEN ' with no max_slot_wal_keep_size: it can fill the disk'
                                                   || CASE WHEN j.wal_available IS NOT NULL
                                                           THEN pg_catalog.format(' (%s available on the file system of pg_wal)',
                                                                                  pg_catalog.pg_size_pretty(j.wal_available))
                                                           ELSE '' END
                                                   ELSE '' END)
           WHEN 'warning' THEN pg_catalog.format('slot %s retains %s, beyond max_wal_size (wal_status extended)',
                                                 j.slot_name, pg_catalog.pg_size_pretty(j.retained))
           ELSE pg_catalog.format('slot %s retains %s', j.slot_name, pg_catalog.pg_size_pretty(j.retained)) END,
       CASE WHEN j.risk = 'ok' THEN 'no action needed'
            WHEN j.risk = 'lost' THEN pg_catalog.format('drop the slot (SELECT pg_catalog.pg_drop_replication_slot(%L)) and re-create its consumer (re-seed the standby, re-sync the subscription)', j.slot_name)
            WHEN NOT j.active THEN pg_catalog.format('start its consumer again, or drop the slot if the consumer is gone: SELECT pg_catalog.pg_drop_replication_slot(%L); '
                                                     'set max_slot_wal_keep_size to cap what a slot may retain', j.slot_name)
            ELSE 'find why the consumer lags (network, replay conflicts, a long transaction on a subscriber); set max_slot_wal_keep_size to cap what a slot may retain' END
  FROM judged j
UNION ALL
SELECT 'standby_gone', COALESCE(NULLIF(g.application_name, ''), g.client_addr::pg_catalog.text, '(local)'), NULL, false, NULL,
       NULL, NULL, NULL, NULL, NULL, g.last_seen, 'high',
       pg_catalog.format('standby %s (%s) streamed until %s and is not connected now',
                         COALESCE(NULLIF(g.application_name, ''), '(no application_name)'),
                         COALESCE(g.client_addr::pg_catalog.text, 'local socket'), g.last_seen),
       'check the standby server and its primary_conninfo; while it is away, a slot it uses retains WAL and it falls behind'
  FROM gone g
) u(kind, name, slot_type, active, wal_status, retained_bytes, max_slot_wal_keep_size, safe_wal_size,
      retained_growth_per_hour, hours_to_limit, last_seen, risk, detail, action)
 ORDER BY pg_catalog.array_position(ARRAY['lost', 'critical', 'high', 'warning', 'ok'], u.risk), u.kind, u.name
$$;
REVOKE ALL ON FUNCTION @extschema@.replication_risks(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.replication_risks(interval) TO dbanalytics_reader;

CREATE VIEW @extschema@.replication_risks AS
SELECT * FROM @extschema@.replication_risks(interval '1 hour');
REVOKE ALL ON @extschema@.replication_risks FROM PUBLIC;
GRANT SELECT ON @extschema@.replication_risks TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@._builtin_alert_rules()
RETURNS TABLE (rule text, metric text, comparison text, threshold numeric, severity text, description text,
               for_duration interval, cooldown interval)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ VALUES
    ('slow_queries', 'slow_queries_per_minute', '>', 10, 'medium',
     'more than 10 executions per minute slower than dbanalytics.slow_query_threshold, for 2 minutes',
     interval '2 minutes', interval '15 minutes'),
    ('deadlock', 'deadlocks', '>', 0, 'high', 'a deadlock in the last snapshot interval',
     interval '0', interval '15 minutes'),
    ('replication_lag', 'replication_lag_seconds', '>', 5, 'high',
     'a standby replays more than 5 s behind, or was connected within the last hour and is not now',
     interval '0', interval '15 minutes'),
    ('idle_in_transaction', 'idle_in_transaction_seconds', '>', 300, 'medium',
     'a session idle in a transaction for more than 5 minutes', interval '0', interval '15 minutes'),
    ('connections_near_limit', 'connections_ratio', '>', 0.9, 'high',
     'client connections above 90 % of max_connections - superuser_reserved_connections, for 5 minutes',
     interval '5 minutes', interval '15 minutes'),
    ('xid_wraparound', 'xid_age', '>', 1000000000, 'critical',
     'a database''s oldest unfrozen transaction ID is more than 1 billion transactions old (wraparound at 2^31)',
     interval '0', interval '15 minutes'),
    ('health_low', 'health_score', '<', 60, 'high', 'the recorded health score is below 60',
     interval '0', interval '15 minutes'),
    ('health_drop', 'health_score_drop', '>', 15, 'medium',
     'the recorded health score fell by more than 15 points within the last hour', interval '0', interval '15 minutes'),
    ('archiver_failing', 'archive_failing', '>', 0, 'high',
     'WAL archiving is on and its last attempt failed (pg_stat_archiver)', interval '0', interval '15 minutes'),
    ('inactive_slot_wal', 'inactive_slot_retained_bytes', '>', 1073741824, 'high',
     'an inactive replication slot retains more than 1 GiB of WAL, for 10 minutes (replication_risks)',
     interval '10 minutes', interval '1 hour'),
    ('wraparound_soon', 'wraparound_days', '<', 30, 'critical',
     'at the transaction-ID or multixact consumption rate of the last day, the server stops assigning IDs within 30 days (wraparound_risk)',
     interval '0', interval '1 hour'),
    ('disk_full_soon', 'disk_full_days', '<', 7, 'high',
     'the used space of the data directory''s (or pg_wal''s) file system, fitted over 30 days, reaches its capacity within 7 days (space_growth)',
     interval '0', interval '1 hour'),
    ('plan_regression', 'plan_regressions', '>', 0, 'medium',
     'a statement''s plan changed within the last hour and its p95 since the change is regression_ratio times its p95 before (plan_changes)',
     interval '0', interval '1 hour')
$$;

-- the rules new in this section
INSERT INTO @extschema@.alert_rules (rule, metric, comparison, threshold, severity, description, for_duration, cooldown)
SELECT b.* FROM @extschema@._builtin_alert_rules() b
 WHERE b.rule IN ('inactive_slot_wal', 'wraparound_soon', 'disk_full_soon', 'plan_regression')
   AND NOT EXISTS (SELECT FROM @extschema@.alert_rules r WHERE r.rule OPERATOR(pg_catalog.=) b.rule);
-------------------------------------------------------------------------------
-- Issue 19: plan history. The executor hooks capture the plans of slow executions and of plan
-- shapes never explained; the collector's plans source stores them (sql/plans.sql); the alert
-- rule plan_regression (below) and regressions() report plan changes.
-------------------------------------------------------------------------------
-- One row per plan shape of a statement: the plan id (a hash of the plan tree's node types,
-- relations, indexes, scan directions, join types and aggregation strategies, in tree order,
-- with the query id: src/plans/shape.rs) and the plan as EXPLAIN (FORMAT JSON, COSTS OFF)
-- printed it at its first capture, with the constants of its expressions replaced by ?. plan is
-- NULL when the capture that explained it was lost (a collector transaction that failed);
-- truncated when the plan was longer than the queue's 16 kB. The analyzed_* columns hold the
-- latest slow capture explained with its actual row counts (dbanalytics.plan_capture_analyze),
-- normalized the same way, when it ended and how long it took. Read through plan_texts: the
-- plans of a statement are shown to whoever may see its text.
CREATE TABLE @extschema@.plans (
    dbid          oid              NOT NULL,
    userid        oid              NOT NULL,
    queryid       bigint           NOT NULL,
    planid        bigint           NOT NULL,
    plan          text,
    truncated     boolean          NOT NULL DEFAULT false,
    first_seen    timestamptz      NOT NULL,
    last_seen     timestamptz      NOT NULL,
    analyzed_plan text,
    analyzed_at   timestamptz,
    analyzed_ms   double precision,
    PRIMARY KEY (dbid, userid, queryid, planid)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.plans', '');

-- The captures of one collector interval, per statement and plan: how many (and how many were
-- slow), when the first and the last execution ended, and their mean and longest execution
-- time. Only captured executions count: a fast execution of a known shape leaves no row (the
-- latency histograms count every execution). Hour tier.
CREATE TABLE @extschema@.plan_sightings (
    interval_end  timestamptz      NOT NULL,
    dbid          oid              NOT NULL,
    userid        oid              NOT NULL,
    queryid       bigint           NOT NULL,
    planid        bigint           NOT NULL,
    captures      bigint           NOT NULL,
    slow_captures bigint           NOT NULL,
    first_at      timestamptz      NOT NULL,
    last_at       timestamptz      NOT NULL,
    mean_ms       double precision NOT NULL,
    max_ms        double precision NOT NULL
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('plan_sightings', 'interval_end', '(interval_end)');
INSERT INTO @extschema@.partition_indexes VALUES ('plan_sightings', 'statement', '(queryid, dbid, userid, first_at)');

-- Stores the captures drained from shared memory (the plans source), one element per capture;
-- returns the rows written.
CREATE FUNCTION @extschema@._store_plans(dbids bigint[], userids bigint[], queryids bigint[],
                                         planids bigint[], slow boolean[], ms double precision[],
                                         ended_at double precision[], plan_texts text[],
                                         truncated boolean[], analyzed_plans text[])
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
WITH captured AS (
    SELECT c.dbid::pg_catalog.oid AS dbid, c.userid::pg_catalog.oid AS userid, c.queryid, c.planid,
           c.slow, c.ms, pg_catalog.to_timestamp(c.ended_at) AS ended_at, c.plan, c.truncated, c.analyzed
      FROM ROWS FROM (pg_catalog.unnest(dbids), pg_catalog.unnest(userids), pg_catalog.unnest(queryids),
                      pg_catalog.unnest(planids), pg_catalog.unnest(slow), pg_catalog.unnest(ms),
                      pg_catalog.unnest(ended_at), pg_catalog.unnest(plan_texts), pg_catalog.unnest(truncated),
                      pg_catalog.unnest(analyzed_plans))
           AS c(dbid, userid, queryid, planid, slow, ms, ended_at, plan, truncated, analyzed)
), stored AS (
    INSERT INTO @extschema@.plans AS p (dbid, userid, queryid, planid, plan, truncated, first_seen, last_seen,
                                        analyzed_plan, analyzed_at, analyzed_ms)
    SELECT c.dbid, c.userid, c.queryid, c.planid, pg_catalog.max(c.plan),
           COALESCE(pg_catalog.bool_or(c.truncated) FILTER (WHERE c.plan IS NOT NULL), false),
           pg_catalog.min(c.ended_at), pg_catalog.max(c.ended_at),
           -- the latest analyzed capture
           (pg_catalog.array_agg(c.analyzed ORDER BY c.ended_at DESC) FILTER (WHERE c.analyzed IS NOT NULL))[1],
           (pg_catalog.array_agg(c.ended_at ORDER BY c.ended_at DESC) FILTER (WHERE c.analyzed IS NOT NULL))[1],
           (pg_catalog.array_agg(c.ms ORDER BY c.ended_at DESC) FILTER (WHERE c.analyzed IS NOT NULL))[1]
      FROM captured c
     GROUP BY c.dbid, c.userid, c.queryid, c.planid
    ON CONFLICT (dbid, userid, queryid, planid) DO UPDATE
       SET first_seen = LEAST(p.first_seen, excluded.first_seen),
           last_seen = GREATEST(p.last_seen, excluded.last_seen),
           truncated = CASE WHEN p.plan IS NULL THEN excluded.truncated ELSE p.truncated END,
           plan = COALESCE(p.plan, excluded.plan),
           analyzed_plan = COALESCE(excluded.analyzed_plan, p.analyzed_plan),
           analyzed_at = CASE WHEN excluded.analyzed_plan IS NULL THEN p.analyzed_at ELSE excluded.analyzed_at END,
           analyzed_ms = CASE WHEN excluded.analyzed_plan IS NULL THEN p.analyzed_ms ELSE excluded.analyzed_ms END
    RETURNING 1
), sighted AS (
    INSERT INTO @extschema@.plan_sightings
    SELECT pg_catalog.now(), c.dbid, c.userid, c.queryid, c.planid, pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE c.slow), pg_catalog.min(c.ended_at), pg_catalog.max(c.ended_at),
           pg_catalog.avg(c.ms), pg_catalog.max(c.ms)
      FROM captured c
     GROUP BY c.dbid, c.userid, c.queryid, c.planid
    RETURNING 1
)
SELECT (SELECT pg_catalog.count(*) FROM stored) + (SELECT pg_catalog.count(*) FROM sighted)
$$;

-- The plans with their texts as statement_texts shows the statement's text to the caller: the
-- plans are NULL for a role that may not see the text (or when the text is gone).
CREATE VIEW @extschema@.plan_texts AS
SELECT p.dbid, p.userid, p.queryid, p.planid, p.first_seen, p.last_seen, p.truncated,
       CASE WHEN v.visible THEN p.plan END AS plan,
       p.analyzed_at, p.analyzed_ms,
       CASE WHEN v.visible THEN p.analyzed_plan END AS analyzed_plan
  FROM @extschema@.plans p
 CROSS JOIN LATERAL (
       SELECT (SELECT t.text_visible FROM @extschema@.statement_texts t
                WHERE t.dbid OPERATOR(pg_catalog.=) p.dbid AND t.userid OPERATOR(pg_catalog.=) p.userid
                  AND t.queryid OPERATOR(pg_catalog.=) p.queryid
                ORDER BY t.toplevel DESC LIMIT 1) AS visible) v;

-- Plan changes in [since, until): each sighting of a statement in the stretch whose plan differs
-- from the statement's previous sighting (in the stretch or before it, as far as plan_sightings
-- goes; sightings in the order their first execution ended). changed_at: when the first captured
-- execution with the new plan ended.
CREATE FUNCTION @extschema@._plan_changes(since timestamptz, until timestamptz)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, previous_planid bigint, planid bigint,
               changed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH stretch AS (
        SELECT s.dbid, s.userid, s.queryid, s.planid, s.first_at, s.last_at
          FROM @extschema@.plan_sightings s
         WHERE s.interval_end >= since AND s.first_at < until
    ), before AS (
        -- each statement's last sighting before the stretch
        SELECT b.*
          FROM (SELECT DISTINCT t.dbid, t.userid, t.queryid FROM stretch t) k
         CROSS JOIN LATERAL (
                SELECT s.dbid, s.userid, s.queryid, s.planid, s.first_at, s.last_at
                  FROM @extschema@.plan_sightings s
                 WHERE s.queryid OPERATOR(pg_catalog.=) k.queryid AND s.dbid OPERATOR(pg_catalog.=) k.dbid
                   AND s.userid OPERATOR(pg_catalog.=) k.userid AND s.first_at < since
                 ORDER BY s.first_at DESC, s.last_at DESC LIMIT 1) b
    ), ordered AS (
        SELECT x.*, pg_catalog.lag(x.planid) OVER (PARTITION BY x.dbid, x.userid, x.queryid
                                                   ORDER BY x.first_at, x.last_at, x.planid) AS previous_planid
          FROM (SELECT * FROM stretch UNION ALL SELECT * FROM before) x
    )
    SELECT o.dbid, o.userid, o.queryid, o.previous_planid, o.planid, o.first_at
      FROM ordered o
     WHERE o.first_at >= since AND o.previous_planid OPERATOR(pg_catalog.<>) o.planid
$$;

-- Every plan a statement used in the window (queryid NULL: every statement), with its captures
-- there and its plan (and latest analyzed plan) as plan_texts shows them to the caller, newest
-- first.
CREATE FUNCTION @extschema@.query_plans(queryid bigint, analysis_window interval DEFAULT '1 day')
RETURNS TABLE (queryid bigint, datname text, usename text, planid bigint, first_seen timestamptz,
               last_seen timestamptz, captures bigint, slow_captures bigint,
               mean_ms double precision, max_ms double precision, plan text, truncated boolean,
               analyzed_at timestamptz, analyzed_ms double precision, analyzed_plan text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.queryid, d.datname::text, u.rolname::text, s.planid, pg_catalog.min(s.first_at), pg_catalog.max(s.last_at),
           pg_catalog.sum(s.captures)::bigint, pg_catalog.sum(s.slow_captures)::bigint,
           pg_catalog.sum(s.mean_ms * s.captures) / pg_catalog.sum(s.captures), pg_catalog.max(s.max_ms),
           pg_catalog.max(t.plan), pg_catalog.bool_or(t.truncated),
           pg_catalog.max(t.analyzed_at), pg_catalog.max(t.analyzed_ms), pg_catalog.max(t.analyzed_plan)
      FROM @extschema@.plan_sightings s
      LEFT JOIN @extschema@.plan_texts t
             ON t.dbid OPERATOR(pg_catalog.=) s.dbid AND t.userid OPERATOR(pg_catalog.=) s.userid
            AND t.queryid OPERATOR(pg_catalog.=) s.queryid AND t.planid OPERATOR(pg_catalog.=) s.planid
      LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.dbid
      LEFT JOIN pg_catalog.pg_roles u ON u.oid OPERATOR(pg_catalog.=) s.userid
     WHERE s.interval_end >= @extschema@._window_start(analysis_window)
       AND s.last_at >= pg_catalog.now() OPERATOR(pg_catalog.-) analysis_window
       AND (query_plans.queryid IS NULL OR s.queryid OPERATOR(pg_catalog.=) query_plans.queryid)
     GROUP BY s.dbid, s.userid, s.queryid, s.planid, d.datname, u.rolname
     ORDER BY pg_catalog.max(s.last_at) DESC, s.planid
$$;

-- Statements whose plan changed in the window, newest change first: the plan before and after
-- (as plan_texts shows them to the caller), and the statement's top-level executions and
-- latency percentiles (the histograms) over the same length of time before the change and
-- from the change to now.
CREATE FUNCTION @extschema@.plan_changes(analysis_window interval DEFAULT '1 day',
                                         row_limit integer DEFAULT 20)
RETURNS TABLE (queryid bigint, datname text, usename text, query text, changed_at timestamptz,
               previous_planid bigint, planid bigint,
               executions_before bigint, p50_ms_before double precision, p95_ms_before double precision,
               executions_after bigint, p50_ms_after double precision, p95_ms_after double precision,
               previous_plan text, plan text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._row_limit(row_limit);  -- argument check, even with no history
    SELECT c.queryid, d.datname::text, u.rolname::text,
           (SELECT t.query FROM @extschema@.statement_texts t
             WHERE t.dbid OPERATOR(pg_catalog.=) c.dbid AND t.userid OPERATOR(pg_catalog.=) c.userid
               AND t.queryid OPERATOR(pg_catalog.=) c.queryid
             ORDER BY t.toplevel DESC LIMIT 1),
           c.changed_at, c.previous_planid, c.planid,
           b.executions, b.percentiles[1], b.percentiles[2], a.executions, a.percentiles[1], a.percentiles[2],
           (SELECT t.plan FROM @extschema@.plan_texts t
             WHERE (t.dbid, t.userid, t.queryid, t.planid) OPERATOR(pg_catalog.=) (c.dbid, c.userid, c.queryid, c.previous_planid)),
           (SELECT t.plan FROM @extschema@.plan_texts t
             WHERE (t.dbid, t.userid, t.queryid, t.planid) OPERATOR(pg_catalog.=) (c.dbid, c.userid, c.queryid, c.planid))
      FROM (SELECT c.* FROM @extschema@._plan_changes(@extschema@._window_start(analysis_window), pg_catalog.now()) c
             ORDER BY c.changed_at DESC, c.queryid LIMIT LEAST(row_limit, 1000)) c
      CROSS JOIN LATERAL (
            SELECT pg_catalog.sum(l.executions)::bigint AS executions,
                   @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95}') AS percentiles
              FROM @extschema@._latency_parts(c.changed_at OPERATOR(pg_catalog.-) (pg_catalog.now() OPERATOR(pg_catalog.-) c.changed_at),
                                              c.changed_at, c.queryid) l
             WHERE l.dbid OPERATOR(pg_catalog.=) c.dbid AND l.userid OPERATOR(pg_catalog.=) c.userid) b
      CROSS JOIN LATERAL (
            SELECT pg_catalog.sum(l.executions)::bigint AS executions,
                   @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95}') AS percentiles
              FROM @extschema@._latency_parts(c.changed_at, pg_catalog.now(), c.queryid) l
             WHERE l.dbid OPERATOR(pg_catalog.=) c.dbid AND l.userid OPERATOR(pg_catalog.=) c.userid) a
      LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) c.dbid
      LEFT JOIN pg_catalog.pg_roles u ON u.oid OPERATOR(pg_catalog.=) c.userid
     ORDER BY c.changed_at DESC, c.queryid
$$;

CREATE FUNCTION @extschema@."plan_capture_status"() RETURNS TABLE (
	"enabled" bool,
	"captured" bigint,
	"dropped_over_limit" bigint,
	"dropped_queue_full" bigint,
	"truncated" bigint,
	"waiting" bigint,
	"shapes_explained" bigint,
	"shape_capacity" bigint,
	"shape_set_emptied" bigint,
	"shared_memory_bytes" bigint
)
STRICT VOLATILE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'plan_capture_status_wrapper';
REVOKE ALL ON @extschema@.plans, @extschema@.plan_sightings, @extschema@.plan_texts FROM PUBLIC;
GRANT SELECT ON @extschema@.plan_sightings, @extschema@.plan_texts TO dbanalytics_reader;
REVOKE ALL ON FUNCTION @extschema@._store_plans(bigint[], bigint[], bigint[], bigint[], boolean[], double precision[],
                                                double precision[], text[], boolean[], text[]),
    @extschema@._plan_changes(timestamptz, timestamptz), @extschema@.query_plans(bigint, interval),
    @extschema@.plan_changes(interval, integer), @extschema@.plan_capture_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._plan_changes(timestamptz, timestamptz), @extschema@.query_plans(bigint, interval),
    @extschema@.plan_changes(interval, integer), @extschema@.plan_capture_status() TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@._alert_metrics()
RETURNS TABLE (metric text, value numeric, details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH latest_db AS (
    SELECT d.* FROM @extschema@.database_stats d
     WHERE d.interval_end = (SELECT pg_catalog.max(x.interval_end) FROM @extschema@.database_stats x)
), latest_latency AS (
    SELECT l.* FROM @extschema@.database_latency l
     WHERE l.interval_end = (SELECT pg_catalog.max(x.interval_end) FROM @extschema@.database_latency x)
), threshold AS MATERIALIZED (  -- once, not for each of latency_buckets()' rows
    SELECT @extschema@._slow_query_ms() AS slow_ms
), slow_buckets AS (
    SELECT b.bucket FROM @extschema@.latency_buckets() b, threshold t WHERE b.lower_ms >= t.slow_ms
), slow AS (
    SELECT pg_catalog.sum(u.executions) FILTER (WHERE u.bucket IN (SELECT sb.bucket FROM slow_buckets sb)) AS executions,
           pg_catalog.max(EXTRACT(epoch FROM l.interval_end - l.interval_start)) AS seconds
      FROM latest_latency l,
           ROWS FROM (pg_catalog.unnest(l.buckets), pg_catalog.unnest(l.counts)) AS u(bucket, executions)
), gone_standbys AS (
    -- the 20 seen last, by name
    SELECT COALESCE(g.application_name, '') AS application_name, g.last_seen
      FROM @extschema@._gone_standbys(pg_catalog.now() - interval '1 hour') g
     ORDER BY g.last_seen DESC LIMIT 20
), history AS (
    SELECT (SELECT h.overall_score FROM @extschema@.health_history h ORDER BY h.computed_at DESC LIMIT 1) AS latest,
           (SELECT pg_catalog.max(h.overall_score) FROM @extschema@.health_history h
             WHERE h.computed_at > pg_catalog.now() - interval '1 hour') AS best_last_hour
)
SELECT 'slow_queries_per_minute', COALESCE(s.executions, 0) * 60 / NULLIF(s.seconds, 0)::numeric,
       pg_catalog.jsonb_build_object('slow_executions', COALESCE(s.executions, 0), 'interval_seconds', s.seconds,
                                     'slow_query_threshold_ms', @extschema@._slow_query_ms(),
                                     'source', 'database_latency (latest interval)')
  FROM slow s
UNION ALL
SELECT 'deadlocks', pg_catalog.sum(d.deadlocks)::numeric,
       pg_catalog.jsonb_build_object('per_database', pg_catalog.jsonb_object_agg(d.datname, d.deadlocks),
                                     'interval_start', pg_catalog.min(d.interval_start),
                                     'interval_end', pg_catalog.max(d.interval_end), 'source', 'database_stats')
  FROM latest_db d
UNION ALL
SELECT 'replication_lag_seconds',
       -- a standby seen in the last hour that is not connected now lags at least since then
       -- (the alert stays open while it is gone, instead of resolving)
       GREATEST((SELECT pg_catalog.max(EXTRACT(epoch FROM r.replay_lag)) FROM pg_catalog.pg_stat_replication r),
                (SELECT pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - g.last_seen)) FROM gone_standbys g))::numeric,
       pg_catalog.jsonb_build_object(
           'standbys', (SELECT pg_catalog.jsonb_object_agg(COALESCE(r.application_name, r.pid::text),
                                                           EXTRACT(epoch FROM r.replay_lag))
                          FROM pg_catalog.pg_stat_replication r),
           'disconnected', (SELECT pg_catalog.jsonb_object_agg(g.application_name, g.last_seen) FROM gone_standbys g),
           'source', 'pg_stat_replication, replication_stats (last hour)')
UNION ALL
SELECT 'archive_failing',
       CASE WHEN pg_catalog.current_setting('archive_mode') = 'off' THEN NULL
            WHEN a.last_failed_time > COALESCE(a.last_archived_time, '-infinity') THEN 1 ELSE 0 END,
       pg_catalog.jsonb_build_object('failed_count', a.failed_count, 'last_failed_wal', a.last_failed_wal,
                                     'last_failed_time', a.last_failed_time, 'last_archived_time', a.last_archived_time,
                                     'source', 'pg_stat_archiver')
  FROM pg_catalog.pg_stat_archiver a
UNION ALL
SELECT 'idle_in_transaction_seconds', pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - a.state_change))::numeric,
       -- the longest 5 only: a NOTIFY payload must stay under 8000 bytes
       pg_catalog.jsonb_build_object(
           'sessions', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                   'pid', l.pid, 'usename', l.usename, 'application_name', l.application_name,
                                   'idle_seconds', pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() - l.state_change))))
                          FROM (SELECT * FROM pg_catalog.pg_stat_activity x WHERE x.state LIKE 'idle in transaction%'
                                 ORDER BY x.state_change LIMIT 5) l),
           'idle_sessions', pg_catalog.count(*), 'source', 'pg_stat_activity')
  FROM pg_catalog.pg_stat_activity a WHERE a.state LIKE 'idle in transaction%'
UNION ALL
SELECT 'connections_ratio',
       pg_catalog.count(*)::numeric / (pg_catalog.current_setting('max_connections')::numeric
                                       - pg_catalog.current_setting('superuser_reserved_connections')::numeric),
       pg_catalog.jsonb_build_object('client_backends', pg_catalog.count(*),
                                     'max_connections', pg_catalog.current_setting('max_connections')::integer,
                                     'superuser_reserved_connections', pg_catalog.current_setting('superuser_reserved_connections')::integer)
  FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'client backend'
UNION ALL
SELECT 'xid_age', pg_catalog.max(pg_catalog.age(d.datfrozenxid))::numeric,
       pg_catalog.jsonb_build_object('oldest_database', (pg_catalog.array_agg(d.datname ORDER BY pg_catalog.age(d.datfrozenxid) DESC))[1])
  FROM pg_catalog.pg_database d
UNION ALL
SELECT 'inactive_slot_retained_bytes', COALESCE(pg_catalog.max(r.retained_bytes), 0)::numeric,
       pg_catalog.jsonb_build_object('slots', pg_catalog.jsonb_object_agg(r.name, r.retained_bytes),
                                     'source', 'pg_replication_slots')
  FROM @extschema@.replication_risks(interval '1 hour') r WHERE r.kind = 'slot' AND NOT r.active
UNION ALL
SELECT 'wraparound_days', (EXTRACT(epoch FROM pg_catalog.min(w.wraparound_stop_at) - pg_catalog.now()) / 86400)::numeric,
       pg_catalog.jsonb_build_object('database', (pg_catalog.array_agg(w.datname ORDER BY w.wraparound_stop_at))[1],
                                     'xids_per_day', pg_catalog.max(w.xids_per_day),
                                     'multixacts_per_day', pg_catalog.max(w.multixacts_per_day),
                                     'source', 'wraparound_risk (databases, last day)')
  FROM @extschema@.wraparound_risk(interval '1 day') w WHERE w.object_type = 'database'
UNION ALL
SELECT 'disk_full_days', (EXTRACT(epoch FROM pg_catalog.min(g.forecast_at) - pg_catalog.now()) / 86400)::numeric,
       pg_catalog.jsonb_build_object('filesystem', (pg_catalog.array_agg(g.relname ORDER BY g.forecast_at))[1],
                                     'growth_bytes_per_day', (pg_catalog.array_agg(g.growth_bytes_per_day ORDER BY g.forecast_at))[1],
                                     'source', 'space_growth (file systems, 30 days)')
  FROM @extschema@.space_growth(interval '30 days') g WHERE g.object_type = 'filesystem'
UNION ALL
SELECT 'plan_regressions', pg_catalog.count(*)::numeric,
       pg_catalog.jsonb_build_object('queryids', (pg_catalog.array_agg(c.queryid ORDER BY c.changed_at DESC))[1:5],
                                     'source', 'plan_changes (last hour)')
  FROM @extschema@.plan_changes(interval '1 hour', 1000) c
 WHERE c.executions_before >= @extschema@._threshold('regression_min_executions')
   AND c.executions_after >= @extschema@._threshold('regression_min_executions')
   AND c.p95_ms_after >= @extschema@._threshold('regression_ratio')::double precision * c.p95_ms_before
   AND c.p95_ms_after - c.p95_ms_before >= @extschema@._threshold('regression_min_rise_ms')::double precision
UNION ALL
SELECT 'health_score', h.latest, pg_catalog.jsonb_build_object('source', 'health_history') FROM history h
UNION ALL
SELECT 'health_score_drop', h.best_last_hour - h.latest,
       pg_catalog.jsonb_build_object('best_last_hour', h.best_last_hour, 'latest', h.latest, 'source', 'health_history')
  FROM history h
$$;

-- (_health_measures: replaced once, by its latest version, further down)


-- Resource use per statement: CPU time and block I/O of the top-level executions (getrusage in
-- the executor hooks) in statement_latency and its rollups, shown by top_queries and
-- query_analysis.
ALTER TABLE @extschema@.statement_latency
    ADD COLUMN cpu_user_time double precision, ADD COLUMN cpu_system_time double precision,
    ADD COLUMN disk_read_bytes bigint, ADD COLUMN disk_write_bytes bigint;
ALTER TABLE @extschema@.statement_latency_hourly
    ADD COLUMN cpu_user_time double precision, ADD COLUMN cpu_system_time double precision,
    ADD COLUMN disk_read_bytes bigint, ADD COLUMN disk_write_bytes bigint;
ALTER TABLE @extschema@.statement_latency_daily
    ADD COLUMN cpu_user_time double precision, ADD COLUMN cpu_system_time double precision,
    ADD COLUMN disk_read_bytes bigint, ADD COLUMN disk_write_bytes bigint;
CREATE OR REPLACE FUNCTION @extschema@._rollup_latency(period text, since timestamptz, until timestamptz)
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

-- their results have more columns: dropped and created again (no object depends on them)
DROP FUNCTION @extschema@._latency_parts(timestamptz, timestamptz, bigint);
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

DROP FUNCTION @extschema@.top_queries(interval, text, integer);
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

REVOKE ALL ON FUNCTION @extschema@._latency_parts(timestamptz, timestamptz, bigint),
    @extschema@._compute_latency_parts(timestamptz, timestamptz, bigint),
    @extschema@._compute_statement_usage(timestamptz, timestamptz),
    @extschema@._statement_usage(timestamptz, timestamptz), @extschema@.top_queries(interval, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._latency_parts(timestamptz, timestamptz, bigint),
    @extschema@._compute_latency_parts(timestamptz, timestamptz, bigint),
    @extschema@._compute_statement_usage(timestamptz, timestamptz),
    @extschema@._statement_usage(timestamptz, timestamptz), @extschema@.top_queries(interval, text, integer)
    TO dbanalytics_reader;
CREATE OR REPLACE FUNCTION @extschema@.query_analysis(analysis_window interval DEFAULT '1 hour')
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


-------------------------------------------------------------------------------
-- Issue 15: health_score() says how the collection itself is (key "collection", from
-- collector_status): a worker that does not run or a failing source leaves the windowed
-- indicators without history. collector_status finds the workers through _worker_processes(),
-- which readers without pg_read_all_stats need, and judges the sampler's partitions runs by the
-- snapshot interval. Restated whole from sql/views.sql and sql/health.sql.
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@._worker_processes()
RETURNS TABLE (backend_type text, datname name, pid integer, backend_start timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.backend_type, a.datname, a.pid, a.backend_start FROM pg_catalog.pg_stat_activity a
     WHERE a.backend_type IN ('dbanalytics sampler', 'dbanalytics collector')
$$;
REVOKE ALL ON FUNCTION @extschema@._worker_processes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._worker_processes() TO dbanalytics_reader;

CREATE OR REPLACE VIEW @extschema@.collector_status AS
WITH RECURSIVE sources AS (
    -- the distinct sources, one probe each of the (source, started_at) indexes (a loose index
    -- scan): sorting every run kept to find each source's latest took ~150 ms with a day of
    -- 1-second sampler runs
    SELECT pg_catalog.min(r.source) AS source FROM @extschema@.collector_runs r
    UNION ALL
    SELECT (SELECT pg_catalog.min(r.source) FROM @extschema@.collector_runs r
             WHERE r.source OPERATOR(pg_catalog.>) s.source)
      FROM sources s WHERE s.source IS NOT NULL
), latest AS (
    SELECT l.source, l.worker, l.started_at, l.status, l.message
      FROM sources s
     CROSS JOIN LATERAL (
           SELECT r.source, r.worker, r.started_at, r.status, r.message
             FROM @extschema@.collector_runs r
            WHERE r.source OPERATOR(pg_catalog.=) s.source
              -- a whole tick that failed, or a snapshot that could not take its turn: shown for an hour
              AND (r.source OPERATOR(pg_catalog.<>) ALL (ARRAY['tick', 'snapshot'])
                   OR r.started_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour'))
            ORDER BY r.started_at DESC
            LIMIT 1) l
), last_hour AS (
    SELECT r.source,
           pg_catalog.count(*) AS runs,
           pg_catalog.count(*) FILTER (WHERE r.status = 'error') AS errors,
           pg_catalog.avg(r.duration_ms) AS avg_duration_ms,
           pg_catalog.max(r.duration_ms) AS max_duration_ms,
           pg_catalog.avg(r.rows) AS avg_rows
      FROM @extschema@.collector_runs r
     WHERE r.started_at > pg_catalog.now() - interval '1 hour'
     GROUP BY r.source
)
SELECT l.source,
       l.worker,
       l.status AS last_status,
       l.started_at AS last_run,
       (SELECT pg_catalog.max(r.started_at) FROM @extschema@.collector_runs r
         WHERE r.source = l.source AND r.status = 'ok') AS last_success,
       (SELECT pg_catalog.max(r.started_at) FROM @extschema@.collector_runs r
         WHERE r.source = l.source AND r.status = 'error') AS last_error_at,
       (SELECT r.message FROM @extschema@.collector_runs r
         WHERE r.source = l.source AND r.status = 'error'
         ORDER BY r.started_at DESC LIMIT 1) AS last_error,
       CASE WHEN l.status = 'skipped' THEN l.message END AS skipped_reason,
       COALESCE(h.runs, 0) AS runs_last_hour,
       COALESCE(h.errors, 0) AS errors_last_hour,
       pg_catalog.round(h.avg_duration_ms::numeric, 3) AS avg_duration_ms,
       pg_catalog.round(h.max_duration_ms::numeric, 3) AS max_duration_ms,
       pg_catalog.round(h.avg_rows, 1) AS avg_rows_per_run,
       CASE
           WHEN l.status = 'error' THEN 'failing'
           WHEN l.status = 'skipped' THEN 'skipped'
           WHEN l.started_at < pg_catalog.now() - 3 * (CASE
                    -- partitions is the collector's source; the sampler runs it too, at its
                    -- start and at midnight, and is not expected to run it again a tick later
                    WHEN l.worker OPERATOR(pg_catalog.=) 'sampler' AND l.source OPERATOR(pg_catalog.<>) 'partitions'
                    THEN pg_catalog.current_setting('dbanalytics.sample_interval', true)
                    ELSE pg_catalog.current_setting('dbanalytics.snapshot_interval', true)
                END)::interval THEN 'stale'
           ELSE 'healthy'
       END AS health
  FROM latest l
  LEFT JOIN last_hour h USING (source)
UNION ALL
SELECT 'worker', w.worker,
       CASE WHEN a.pid IS NOT NULL THEN 'ok'
            WHEN s.database IS NULL OR s.database OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN 'skipped'
            ELSE 'error' END,
       a.backend_start, NULL::pg_catalog.timestamptz, NULL::pg_catalog.timestamptz, NULL::pg_catalog.text,
       CASE
           WHEN a.pid IS NOT NULL THEN NULL::pg_catalog.text
           WHEN s.database IS NULL
           THEN 'dbanalytics is not in shared_preload_libraries: no background collection'
           WHEN s.database OPERATOR(pg_catalog.<>) pg_catalog.current_database()
           THEN pg_catalog.format('the workers collect in database %I (dbanalytics.database)', s.database)
           ELSE 'no such process: it could not start (is max_worker_processes large enough? see the server log) or it is restarting'
       END,
       0::pg_catalog.int8, 0::pg_catalog.int8, NULL::pg_catalog.numeric, NULL::pg_catalog.numeric,
       NULL::pg_catalog.numeric,
       CASE WHEN a.pid IS NOT NULL THEN 'healthy'
            WHEN s.database IS NULL OR s.database OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN 'off'
            ELSE 'not running' END
  FROM (VALUES ('sampler', 'dbanalytics sampler'), ('collector', 'dbanalytics collector')) AS w(worker, backend_type)
 CROSS JOIN (SELECT pg_catalog.current_setting('dbanalytics.database', true) AS database) s
  LEFT JOIN @extschema@._worker_processes() a
         ON a.backend_type OPERATOR(pg_catalog.=) w.backend_type
        AND a.datname OPERATOR(pg_catalog.=) s.database;

CREATE OR REPLACE FUNCTION @extschema@.health_score(analysis_window interval DEFAULT '1 hour')
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check
WITH scored AS (
    SELECT s.*, c.weight AS component_weight FROM @extschema@._health_scored(analysis_window) s
      JOIN @extschema@.health_components c USING (component)
), components AS (
    SELECT s.component, 100 - pg_catalog.sum(s.points) AS score, pg_catalog.min(s.component_weight) AS weight
      FROM scored s GROUP BY s.component
)
SELECT pg_catalog.jsonb_build_object(
    'overall_score', (SELECT pg_catalog.round(pg_catalog.sum(c.score * c.weight), 2) FROM components c),
    'component_scores', (SELECT pg_catalog.jsonb_object_agg(c.component, pg_catalog.round(c.score, 2)) FROM components c),
    'component_weights', (SELECT pg_catalog.jsonb_object_agg(c.component, c.weight) FROM components c),
    'health_indicators', (SELECT pg_catalog.jsonb_object_agg(s.indicator,
                                 CASE WHEN s.status IN ('unknown') THEN '"unknown"'::jsonb
                                      ELSE pg_catalog.to_jsonb(s.value) END) FROM scored s),
    'risk_factors', COALESCE((
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'factor', s.indicator,
                   'component', s.component,
                   'severity', CASE s.status WHEN 'bad' THEN s.bad_severity WHEN 'warn' THEN 'medium'
                                             WHEN 'not_configured' THEN 'medium' ELSE 'low' END,
                   'impact', CASE WHEN s.status = 'unknown'
                                  THEN 'this indicator could not be measured with the caller''s privileges, so it cannot vouch for health'
                                  ELSE s.impact END,
                   'mitigation', CASE WHEN s.status = 'unknown'
                                      THEN 'run health_score() as a member of pg_read_all_stats (or a superuser for pg_hba and passwords)'
                                      ELSE s.mitigation END,
                   'points_lost', s.points,
                   'evidence', pg_catalog.jsonb_build_object('value', s.value, 'unit', s.unit, 'status', s.status,
                                                             'warn_threshold', s.warn, 'bad_threshold', s.bad,
                                                             'facts', s.evidence, 'source', s.source))
               ORDER BY s.points DESC, s.indicator)
          FROM scored s WHERE s.status IN ('warn', 'bad', 'unknown', 'not_configured')), '[]'),
    'recommendations', COALESCE((
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'priority', CASE s.status WHEN 'bad' THEN 'immediate' WHEN 'warn' THEN 'short_term' ELSE 'long_term' END,
                   'indicator', s.indicator,
                   'action', s.action,
                   'why', s.mitigation,
                   'expected_improvement', pg_catalog.format(
                       'up to %s points of the %s score (%s overall): the points this indicator loses now',
                       pg_catalog.round(s.points, 2), s.component, pg_catalog.round(s.points * s.component_weight, 2)),
                   'effort', s.effort)
               ORDER BY CASE s.status WHEN 'bad' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END, s.points DESC)
          FROM scored s WHERE s.status IN ('warn', 'bad', 'not_configured')), '[]'),
    -- the state of the collection itself (collector_status): scored indicators read its history
    'collection', (
        SELECT pg_catalog.jsonb_build_object(
                   'status', CASE WHEN e.disabled OR pg_catalog.bool_or(c.health = 'off') THEN 'off'
                                  WHEN pg_catalog.bool_or(c.health IN ('failing', 'stale', 'not running')) THEN 'degraded'
                                  ELSE 'healthy' END,
                   'problems', CASE WHEN e.disabled
                       THEN pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                'source', 'enabled', 'worker', NULL::text, 'health', 'off',
                                'detail', 'dbanalytics.enabled is off: the workers stay connected but collect nothing (take_sample() and take_snapshot() still work)'))
                       ELSE COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                'source', c.source, 'worker', c.worker, 'health', c.health,
                                'detail', CASE c.health WHEN 'failing' THEN c.last_error
                                                        WHEN 'stale' THEN pg_catalog.format('no run since %s', c.last_run)
                                                        ELSE c.skipped_reason END)
                            ORDER BY c.source, c.worker)
                            FILTER (WHERE c.health IN ('off', 'failing', 'stale', 'not running')), '[]') END)
          FROM @extschema@.collector_status c
         CROSS JOIN (SELECT pg_catalog.current_setting('dbanalytics.enabled', true) = 'off' AS disabled) e
         GROUP BY e.disabled),
    'model_version', '1',
    'window', analysis_window::text,
    'computed_at', pg_catalog.now())
$$;

-------------------------------------------------------------------------------
-- Issue 20: the application of an N+1 is the one the executor hooks saw run its runs
-- (statement_latency.run_application, minute rows), not only what the sampler caught.
-------------------------------------------------------------------------------
ALTER TABLE @extschema@.statement_latency ADD COLUMN run_application text;
INSERT INTO @extschema@.partition_indexes VALUES ('statement_latency', 'runs', '(queryid) WHERE runs IS NOT NULL');
DO $runs_index$
DECLARE
    part pg_catalog.text;
BEGIN
    FOR part IN SELECT c.relname::pg_catalog.text
                  FROM pg_catalog.pg_inherits h
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
                 WHERE h.inhparent OPERATOR(pg_catalog.=) '@extschema@.statement_latency'::pg_catalog.regclass
                 ORDER BY 1 LOOP
        PERFORM @extschema@._index_partition('statement_latency', part);
    END LOOP;
END
$runs_index$;

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

-------------------------------------------------------------------------------
-- Issue 16: the statement totals of a window are grouped in memory by one process (5 of them per
-- report_html); collector_status's latest run per source comes from one index probe per source.
-- (collector_status itself: its last version above carries the change.)
-------------------------------------------------------------------------------
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
CREATE OR REPLACE FUNCTION @extschema@._statement_totals(since timestamptz, until timestamptz)
RETURNS SETOF @extschema@.statement_total
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';
REVOKE ALL ON FUNCTION @extschema@._compute_statement_totals(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._compute_statement_totals(timestamptz, timestamptz) TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Issue 13: wait_events and query_waits sum the window's samples per wait and query in one pass
-- (_wait_totals) instead of per minute first (_wait_samples, gone): wait_events('7 days') on
-- generated history took about 30 s.
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@._wait_totals(since timestamptz, only_query bigint DEFAULT NULL)
RETURNS TABLE (datname text, wait_event_type text, wait_event text, query_id bigint, samples bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $f$
DECLARE
    span record := @extschema@._minute_span(since);
    hours_from timestamptz := (SELECT pg_catalog.min(h.hour_end) - interval '1 hour' FROM @extschema@.wait_hourly h);
    days_from timestamptz := (SELECT pg_catalog.min(d.day_end) - interval '1 day' FROM @extschema@.wait_daily d);
    -- [d0, d1): the whole days; [a0, a1) and [b0, b1): the whole hours before and after them
    d0 timestamptz := GREATEST(@extschema@._time_ceil(span.lo, 86400), days_from);
    d1 timestamptz := @extschema@._time_floor(span.hi, 86400);
    a0 timestamptz;
    a1 timestamptz;
    b0 timestamptz;
    b1 timestamptz;
BEGIN
    IF days_from IS NULL OR d0 >= d1 THEN
        d0 := span.hi;
        d1 := span.hi;
    END IF;
    a0 := GREATEST(@extschema@._time_ceil(span.lo, 3600), hours_from);
    a1 := @extschema@._time_floor(d0, 3600);
    IF hours_from IS NULL OR a0 >= a1 THEN
        a0 := d0;
        a1 := d0;
    END IF;
    b0 := GREATEST(d1, hours_from);
    b1 := @extschema@._time_floor(span.hi, 3600);
    IF hours_from IS NULL OR b0 >= b1 THEN
        b0 := span.hi;
        b1 := span.hi;
    END IF;
    RETURN QUERY EXECUTE $q$
    WITH parts AS (
        SELECT d.datname, d.wait_event_type, d.wait_event, d.query_id, d.samples
          FROM @extschema@.wait_daily d
         WHERE d.day_end > $5 AND d.day_end <= $6
           AND ($4 IS NULL OR d.query_id = $4)
        UNION ALL
        SELECT h.datname, h.wait_event_type, h.wait_event, h.query_id, h.samples
          FROM @extschema@.wait_hourly h
         WHERE ((h.hour_end > $7 AND h.hour_end <= $8) OR (h.hour_end > $9 AND h.hour_end <= $10))
           AND ($4 IS NULL OR h.query_id = $4)
        UNION ALL
        -- the minutes of [lo, hi) outside those days and hours
        SELECT m.datname, COALESCE(m.wait_event_type, 'CPU') AS wait_event_type,
               COALESCE(m.wait_event, 'CPU') AS wait_event, m.query_id, m.samples::bigint AS samples
          FROM @extschema@.activity_minute m
         WHERE ((m.minute >= $2 AND m.minute < $7) OR (m.minute >= $8 AND m.minute < $5)
                OR (m.minute >= $6 AND m.minute < $9) OR (m.minute >= $10 AND m.minute < $3))
           AND m.state IN ('active', 'fastpath function call')
           AND ($4 IS NULL OR m.query_id = $4)
        UNION ALL
        SELECT r.datname, r.wait_event_type, r.wait_event, r.query_id, r.samples
          FROM @extschema@._wait_raw($1, $2, $3) r
         WHERE $4 IS NULL OR r.query_id = $4
    )
    SELECT p.datname, p.wait_event_type, p.wait_event, p.query_id, pg_catalog.sum(p.samples)::bigint
      FROM parts p GROUP BY 1, 2, 3, 4
    $q$ USING since, span.lo, span.hi, only_query, d0, d1, a0, a1, b0, b1;
END
$f$;
REVOKE ALL ON FUNCTION @extschema@._wait_totals(timestamptz, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._wait_totals(timestamptz, bigint) TO dbanalytics_reader;

CREATE FUNCTION @extschema@.wait_events(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (datname text, wait_event_type text, wait_event text, samples bigint,
               estimated_seconds double precision, avg_active_sessions double precision,
               share double precision, cluster_share double precision,
               top_query_id bigint, top_query_share double precision, top_query text,
               top_queries jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH ticks AS (
    SELECT pg_catalog.sum(t.ticks)::double precision AS ticks
      FROM @extschema@._sample_ticks(pg_catalog.now() - analysis_window) t
), per_query AS (
    SELECT w.datname, w.wait_event_type, w.wait_event, w.query_id, w.samples
      FROM @extschema@._wait_totals(pg_catalog.now() - analysis_window) w
), per_wait AS (
    SELECT q.datname, q.wait_event_type, q.wait_event, pg_catalog.sum(q.samples)::bigint AS samples,
           pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('query_id', q.query_id, 'samples', q.samples)
                                ORDER BY q.samples DESC, q.query_id) FILTER (WHERE q.query_id IS NOT NULL) AS queries
      FROM per_query q GROUP BY 1, 2, 3
), shares AS (
    SELECT w.*,
           w.samples::double precision / pg_catalog.sum(w.samples) OVER (PARTITION BY w.datname) AS share,
           w.samples::double precision / pg_catalog.sum(w.samples) OVER () AS cluster_share
      FROM per_wait w
)
SELECT s.datname, s.wait_event_type, s.wait_event, s.samples,
       s.samples * @extschema@._tick_seconds(),
       s.samples / NULLIF(t.ticks, 0), s.share, s.cluster_share,
       (s.queries -> 0 ->> 'query_id')::bigint,
       (s.queries -> 0 ->> 'samples')::double precision / s.samples,
       (SELECT x.query FROM @extschema@.statement_texts x
         WHERE x.datname = s.datname AND x.queryid = (s.queries -> 0 ->> 'query_id')::bigint
         ORDER BY x.toplevel DESC LIMIT 1),
       (SELECT pg_catalog.jsonb_agg(e.value || pg_catalog.jsonb_build_object(
                   'share', (e.value ->> 'samples')::double precision / s.samples) ORDER BY e.ordinality)
          FROM pg_catalog.jsonb_array_elements(s.queries) WITH ORDINALITY e
         WHERE e.ordinality <= 5)
  FROM shares s CROSS JOIN ticks t
 ORDER BY s.datname NULLS LAST, s.samples DESC, s.wait_event_type, s.wait_event
$$;
REVOKE ALL ON FUNCTION @extschema@.wait_events(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.wait_events(interval) TO dbanalytics_reader;

CREATE VIEW @extschema@.wait_events AS
SELECT * FROM @extschema@.wait_events(interval '1 hour');
REVOKE ALL ON @extschema@.wait_events FROM PUBLIC;
GRANT SELECT ON @extschema@.wait_events TO dbanalytics_reader;

-- Where one statement spends its active time: CPU and each wait event, per database.
CREATE FUNCTION @extschema@.query_waits(queryid bigint, analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (datname text, wait_event_type text, wait_event text, samples bigint,
               estimated_seconds double precision, avg_active_sessions double precision,
               share double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since timestamptz := @extschema@._window_start(analysis_window);
    wanted bigint := queryid;
BEGIN
    IF wanted IS NULL THEN
        RAISE EXCEPTION 'dbanalytics: the query id must not be NULL'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a queryid from top_queries, wait_events (top_query_id) or pg_stat_statements.';
    END IF;
    RETURN QUERY
    WITH ticks AS (
        SELECT pg_catalog.sum(t.ticks)::double precision AS ticks FROM @extschema@._sample_ticks(since) t
    ), per_wait AS (
        SELECT w.datname, w.wait_event_type, w.wait_event, pg_catalog.sum(w.samples)::bigint AS samples
          FROM @extschema@._wait_totals(since, wanted) w
         GROUP BY 1, 2, 3
    )
    SELECT p.datname, p.wait_event_type, p.wait_event, p.samples,
           p.samples * @extschema@._tick_seconds(),
           p.samples / NULLIF(t.ticks, 0),
           p.samples::double precision / pg_catalog.sum(p.samples) OVER (PARTITION BY p.datname)
      FROM per_wait p CROSS JOIN ticks t
     ORDER BY p.datname NULLS LAST, p.samples DESC, p.wait_event_type, p.wait_event;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.query_waits(bigint, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.query_waits(bigint, interval) TO dbanalytics_reader;

-- (_wait_samples: not created, see above: _wait_totals took its place before 0.2.0)

-------------------------------------------------------------------------------
-- Issue 12: the slow-query threshold is read through the setting's typed value (Rust), not
-- parsed from current_setting()'s text.
-------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @extschema@."_slow_query_ms"() RETURNS double precision /* f64 */
STRICT STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_slow_query_ms_wrapper';

-------------------------------------------------------------------------------
-- Issue 12: each source's state on one side. The minute rollup reads and writes its own
-- progress (source_state 'rollup') instead of taking it from the collector; the counter sources
-- go through _snapshot_source, which reads the previous snapshot's time and stores the epoch
-- (_remember_epoch), taking the collector's verdict as typed arguments.
-------------------------------------------------------------------------------
DROP FUNCTION @extschema@._rollup_minutes(timestamptz);

-- Minute rollups of completed minutes since the last rollup (source_state 'rollup', kept here:
-- updated_at is the end of the last minute rolled up). The newest minute is left alone until a
-- few seconds after it ends, so a sample committed late is still counted. The first run starts at
-- the oldest sample. Returns the rows written.
CREATE FUNCTION @extschema@._rollup_minutes()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- group in memory: no temporary file
AS $$
DECLARE
    upper_bound timestamptz := pg_catalog.date_trunc('minute', pg_catalog.now() - interval '5 seconds');
    rolled_until timestamptz;
    lower_bound timestamptz;
    rows_written bigint := 0;
    n bigint;
BEGIN
    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'rollup';
    lower_bound := rolled_until;
    IF lower_bound IS NULL THEN
        SELECT pg_catalog.date_trunc('minute', pg_catalog.min(a.sampled_at))
          INTO lower_bound FROM @extschema@.connection_samples a;
    END IF;
    IF lower_bound IS NULL OR lower_bound >= upper_bound THEN
        IF rolled_until IS NULL THEN
            INSERT INTO @extschema@.source_state (source, updated_at) VALUES ('rollup', upper_bound);
        END IF;
        RETURN 0;
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
    -- and per hour and day once they are whole, for wait_events() over days
    rows_written := rows_written + @extschema@._rollup_waits(lower_bound, upper_bound);

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

    INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('rollup', upper_bound)
    ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    RETURN rows_written;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._rollup_minutes() FROM PUBLIC;

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
REVOKE ALL ON FUNCTION @extschema@._remember_epoch(text, text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._snapshot_source(text, boolean, boolean, text, text, bigint, text) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Issue 16: the pool verdicts apart from their advice in words (_pool_verdicts,
-- _pool_recommendation), so that health_score() and report_html() format it only for the rows
-- they show; report_html() runs with work_mem = 64MB. Restated whole from
-- sql/analytics_connections.sql, sql/health.sql and sql/report.sql.
-------------------------------------------------------------------------------
CREATE TYPE @extschema@.pool_verdict AS (
    minute timestamptz, datname text, usename text, application_name text,
    avg_active double precision, max_active integer, avg_idle double precision,
    avg_idle_in_transaction double precision, avg_waiting double precision,
    max_connections_used integer, utilization double precision,
    pool_status text, recommended_pool_size integer,
    hotspot_object text, hotspot_samples bigint, hotspot_total numeric,
    near_limit boolean, cluster_peak integer, usable_connections integer,
    tick_seconds double precision, growth_buffer double precision);

CREATE FUNCTION @extschema@._compute_pool_verdicts(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- the rows are gathered in a tuple store of work_mem, then handed to _pool_verdicts: a 30-day
-- window's (a row per pool and minute: about 210,000 rows, 36 MB) stay in memory instead of a
-- temporary file (the query's own sorts and hashes may use as much)
SET work_mem = '64MB'
AS $$
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           pg_catalog.current_setting('max_connections')::integer
             - pg_catalog.current_setting('superuser_reserved_connections')::integer AS usable,
           COALESCE((SELECT s.setting::double precision / 1000 FROM pg_catalog.pg_settings s
                      WHERE s.name = 'dbanalytics.sample_interval'), 1) AS tick_seconds,
           @extschema@._threshold('pool_limit_ratio')::double precision AS limit_ratio,
           @extschema@._threshold('pool_high_utilization')::double precision AS high_util,
           @extschema@._threshold('pool_low_utilization')::double precision AS low_util,
           @extschema@._threshold('pool_idle_surplus')::double precision AS idle_surplus,
           @extschema@._threshold('pool_idle_in_transaction_ratio')::double precision AS iit_ratio,
           @extschema@._threshold('pool_growth_buffer')::double precision AS grow,
           @extschema@._threshold('pool_shrink_buffer')::double precision AS shrink
), rolled AS (
    -- the minutes overlapping the window: rolled up, then from raw samples after the rollup
    SELECT COALESCE(@extschema@._rolled_until('rollup'), '-infinity') AS until
), pools AS (
    SELECT p.* FROM @extschema@.pool_minute p
     WHERE p.minute > pg_catalog.now() - analysis_window - interval '1 minute'
       AND p.minute < (SELECT r.until FROM rolled r)
    UNION ALL
    SELECT p.* FROM rolled r, args a,
           @extschema@._pool_minutes(GREATEST(r.until, pg_catalog.date_trunc('minute', a.since)), 'infinity') p
), measured AS (
    SELECT p.minute, p.datname, p.usename, p.application_name,
           p.active_sum::double precision / p.ticks AS avg_active, p.max_active,
           p.idle_sum::double precision / p.ticks AS avg_idle,
           p.idle_in_transaction_sum::double precision / p.ticks AS avg_iit,
           p.waiting_sum::double precision / p.ticks AS avg_waiting,
           p.max_connections AS max_used,
           p.active_sum::double precision / NULLIF(p.active_sum + p.idle_sum, 0) AS utilization,
           p.cluster_peak >= a.limit_ratio * a.usable AS near_limit, p.cluster_peak AS peak, a.*
      FROM pools p CROSS JOIN args a
), judged AS (
    SELECT m.*,
           CASE
               -- sessions wait on locks while the pool is saturated (nothing idle, or busier than
               -- high_util): more connections would only queue on the same locks
               WHEN m.avg_waiting > 0 AND (m.avg_idle < 1 OR m.utilization > m.high_util) THEN 'lock_hotspot'
               WHEN m.near_limit THEN 'near_connection_limit'
               WHEN m.avg_iit >= 1 AND m.avg_iit > m.iit_ratio * m.avg_active THEN 'idle_in_transaction'
               WHEN m.utilization < m.low_util AND m.avg_idle > m.idle_surplus THEN 'oversized'
               WHEN m.utilization > m.high_util THEN 'high_utilization'
               ELSE 'optimal'
           END AS status,
           -- the measured need: the peak of concurrently active sessions, with a buffer
           GREATEST(1, pg_catalog.ceil(m.max_active * m.grow))::integer AS measured_need
      FROM measured m
), lock_objects AS (
    -- what the sessions waited on, per minute and pool: one pass over the window's lock waits
    SELECT pg_catalog.date_trunc('minute', w.sampled_at) AS minute, w.datname, w.usename, w.application_name,
           COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS object,
           pg_catalog.count(*) AS samples
      FROM @extschema@.lock_waits w
     WHERE w.waiting AND w.sampled_at > pg_catalog.now() - analysis_window - interval '1 minute'
     GROUP BY 1, 2, 3, 4, 5
), lock_objects_all AS (
    SELECT o.minute, o.datname, o.usename, o.application_name, o.object, o.samples FROM lock_objects o
    UNION ALL
    -- the whole cluster's row ('(all clients)', no database and user): every pool's waits
    SELECT o.minute, NULL, NULL, '(all clients)', o.object, pg_catalog.sum(o.samples)::bigint
      FROM lock_objects o
     GROUP BY o.minute, o.object
), hotspots AS (
    -- the object most waited on, per minute and pool
    SELECT DISTINCT ON (o.minute, o.datname, o.usename, o.application_name)
           o.minute, o.datname, o.usename, o.application_name, o.object, o.samples,
           pg_catalog.sum(o.samples) OVER (PARTITION BY o.minute, o.datname, o.usename, o.application_name) AS total
      FROM lock_objects_all o
     ORDER BY o.minute, o.datname, o.usename, o.application_name, o.samples DESC, o.object
)
SELECT j.minute, j.datname, j.usename, j.application_name,
       j.avg_active, j.max_active, j.avg_idle, j.avg_iit, j.avg_waiting, j.max_used, j.utilization,
       j.status,
       CASE j.status
           -- never more connections than the pool has now when it waits on locks or the cluster is near its limit
           WHEN 'lock_hotspot' THEN j.max_used
           WHEN 'near_connection_limit' THEN LEAST(j.max_used, j.measured_need)
           WHEN 'idle_in_transaction' THEN j.max_used
           WHEN 'high_utilization' THEN j.measured_need
           WHEN 'oversized' THEN GREATEST(1, pg_catalog.ceil(j.max_active * j.shrink))::integer
           ELSE j.max_used
       END,
       h.object, h.samples, h.total, j.near_limit, j.peak, j.usable, j.tick_seconds, j.grow
  FROM judged j
  LEFT JOIN hotspots h
         ON j.status = 'lock_hotspot' AND h.minute = j.minute
        AND (h.datname, h.usename, h.application_name) IS NOT DISTINCT FROM (j.datname, j.usename, j.application_name)
$$;

-- The pool verdicts of the window, computed by _compute_pool_verdicts once per statement: the
-- health score and the report both read them (src/api/memo.rs).
CREATE FUNCTION @extschema@._pool_verdicts(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';
REVOKE ALL ON FUNCTION @extschema@._pool_verdicts(interval), @extschema@._compute_pool_verdicts(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._pool_verdicts(interval), @extschema@._compute_pool_verdicts(interval)
    TO dbanalytics_reader;

CREATE FUNCTION @extschema@._pool_recommendation(v @extschema@.pool_verdict)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN v.pool_status IS NULL THEN NULL  -- no verdict (health_score: no minute to quote)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'lock_hotspot' THEN
            pg_catalog.format('%s sessions on average wait on locks%s in a saturated pool: a lock hotspot, '
                              'not a pool too small (more sessions would only queue behind the same locks); do not grow the pool, '
                              'find the blockers in blocking_chains() and lock_contention%s',
                              pg_catalog.round(v.avg_waiting::numeric, 2),
                              CASE WHEN v.hotspot_object IS NOT NULL
                                   THEN pg_catalog.format(' (most on %s: %s of %s waiting samples)',
                                                          v.hotspot_object, v.hotspot_samples, v.hotspot_total)
                                   ELSE '' END,
                              CASE WHEN v.near_limit
                                   THEN pg_catalog.format('; the cluster is also near its connection limit (%s of %s usable)',
                                                          v.cluster_peak, v.usable_connections)
                                   ELSE '' END)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'near_connection_limit' THEN
            pg_catalog.format('client connections peaked at %s of %s usable (max_connections - superuser_reserved_connections): '
                              'do not add connections; put a pooler such as PgBouncer (transaction pooling) in front, '
                              'sized to the measured peak of %s concurrently active sessions (sampled every %s s) plus %s%%: about %s',
                              v.cluster_peak, v.usable_connections, v.max_active, v.tick_seconds,
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) (v.growth_buffer OPERATOR(pg_catalog.-) 1))::numeric),
                              v.recommended_pool_size)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'idle_in_transaction' THEN
            pg_catalog.format('%s connections on average sit idle inside an open transaction, against %s active: '
                              'the application holds connections (and their locks and snapshots) without using them; '
                              'fix the code path that leaves transactions open (long_running_transactions names the sessions) '
                              'and set idle_in_transaction_session_timeout; do not grow the pool',
                              pg_catalog.round(v.avg_idle_in_transaction::numeric, 2), pg_catalog.round(v.avg_active::numeric, 2))
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'oversized' THEN
            pg_catalog.format('only %s%% of connections are active while %s sit idle on average: shrink the pool to about %s '
                              '(peak of %s concurrently active sessions, sampled every %s s)',
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) v.utilization)::numeric, 1),
                              pg_catalog.round(v.avg_idle::numeric, 1), v.recommended_pool_size, v.max_active, v.tick_seconds)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'high_utilization' THEN
            pg_catalog.format('%s%% of connections are busy, at most %s active at once (sampled every %s s; shorter peaks are not seen): '
                              'if clients wait for a connection, size the pool to about %s; the server cannot see clients queued '
                              'in an application pool or a pooler: check its wait count (PgBouncer: SHOW POOLS, cl_waiting)',
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) v.utilization)::numeric, 1), v.max_active,
                              v.tick_seconds, v.recommended_pool_size)
        ELSE 'no action needed'
    END
$$;
REVOKE ALL ON FUNCTION @extschema@._pool_recommendation(@extschema@.pool_verdict) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._pool_recommendation(@extschema@.pool_verdict) TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@.connection_pool_analytics(analysis_window interval)
RETURNS TABLE (
    minute timestamptz, datname text, usename text, application_name text,
    avg_active double precision, max_active integer, avg_idle double precision,
    avg_idle_in_transaction double precision, avg_waiting double precision,
    max_connections_used integer, utilization double precision,
    pool_status text, recommended_pool_size integer, recommendation text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
    SELECT p.minute, p.datname, p.usename, p.application_name, p.avg_active, p.max_active, p.avg_idle,
           p.avg_idle_in_transaction, p.avg_waiting, p.max_connections_used, p.utilization, p.pool_status,
           p.recommended_pool_size, @extschema@._pool_recommendation(p)
      FROM @extschema@._pool_verdicts(analysis_window) p
     ORDER BY p.minute, p.datname NULLS LAST, p.usename, p.application_name
$$;

CREATE OR REPLACE FUNCTION @extschema@._health_measures(analysis_window interval)
RETURNS TABLE (component text, indicator text, value numeric, unit text, higher_is_worse boolean,
               warn numeric, bad numeric, weight numeric, measurable text, evidence text,
               source text, impact text, mitigation text, action text, effort text,
               bad_severity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::numeric AS window_seconds,
           @extschema@._slow_query_ms() AS slow_ms,
           pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE') AS sees_all_sessions,
           pg_catalog.current_setting('max_connections')::numeric
             - pg_catalog.current_setting('superuser_reserved_connections')::numeric AS usable_connections
), disk AS (
    -- the file system that fills first, by the 30-day fit (not the window: a fit needs days)
    SELECT GREATEST(EXTRACT(epoch FROM g.forecast_at - pg_catalog.now()) / 86400, 0)::numeric AS days_left,
           pg_catalog.format('the %s file system (%s used of %s) grows %s per day and is full around %s (fit r² %s)',
                             g.relname, pg_catalog.pg_size_pretty(g.size_bytes), pg_catalog.pg_size_pretty(g.capacity_bytes),
                             pg_catalog.pg_size_pretty(g.growth_bytes_per_day::bigint), g.forecast_at,
                             pg_catalog.round(g.fit_r2::numeric, 2)) AS evidence
      FROM @extschema@.space_growth(interval '30 days') g
     WHERE g.object_type = 'filesystem' AND g.forecast_at IS NOT NULL
     ORDER BY g.forecast_at LIMIT 1
), statements AS (
    SELECT pg_catalog.sum(t.calls) AS calls,
           pg_catalog.sum(t.calls) FILTER (WHERE t.total_exec_time > a.slow_ms * t.calls) AS slow_calls,
           pg_catalog.count(*) FILTER (WHERE t.total_exec_time > a.slow_ms * t.calls) AS slow_statements
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
     WHERE t.toplevel AND t.calls > 0
), latency AS (
    SELECT (@extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.99}'))[1] AS p99_ms,
           pg_catalog.sum(l.executions) AS executions
      FROM args a, @extschema@.database_latency l
     WHERE l.interval_end > a.since AND pg_catalog.cardinality(l.buckets) > 0
), databases AS (
    SELECT pg_catalog.sum(d.blks_hit) AS blks_hit, pg_catalog.sum(d.blks_read) AS blks_read,
           pg_catalog.sum(d.temp_files) AS temp_files, pg_catalog.sum(d.temp_bytes) AS temp_bytes,
           pg_catalog.sum(d.deadlocks) AS deadlocks, pg_catalog.sum(d.xact_commit) AS commits,
           pg_catalog.sum(d.xact_rollback) AS rollbacks,
           pg_catalog.sum(EXTRACT(epoch FROM d.interval_end - d.interval_start))
               / NULLIF(pg_catalog.count(DISTINCT d.datid), 0) AS covered_seconds
      FROM args a, @extschema@.database_stats d WHERE d.interval_end > a.since
), sessions AS (
    SELECT pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - s.xact_start)) AS longest_xact,
           pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - s.state_change))
               FILTER (WHERE s.state LIKE 'idle in transaction%') AS longest_idle_in_xact,
           (pg_catalog.array_agg(pg_catalog.format('pid %s (%s, %s) idle in transaction for %s s',
                s.pid, s.usename, s.application_name,
                pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() - s.state_change))) ORDER BY s.state_change)
               FILTER (WHERE s.state LIKE 'idle in transaction%'))[1] AS idle_session,
           (pg_catalog.array_agg(s.pid ORDER BY s.state_change) FILTER (WHERE s.state LIKE 'idle in transaction%'))[1] AS idle_pid,
           (pg_catalog.array_agg(s.pid ORDER BY s.xact_start) FILTER (WHERE s.xact_start IS NOT NULL))[1] AS oldest_pid
      FROM pg_catalog.pg_stat_activity s
     WHERE s.backend_type = 'client backend' AND s.pid <> pg_catalog.pg_backend_pid()
), replication AS (
    SELECT pg_catalog.count(*) AS standbys,
           pg_catalog.max(EXTRACT(epoch FROM COALESCE(r.replay_lag, interval '0'))) AS lag,
           pg_catalog.string_agg(pg_catalog.format('%s: replay lag %s', r.application_name, COALESCE(r.replay_lag, interval '0')), '; ') AS detail
      FROM pg_catalog.pg_stat_replication r
), lost_standbys AS (
    -- standbys the collector saw in the window that are not connected now (issue 17: a lag
    -- indicator must not turn not_applicable when its standby goes away): their lag is at
    -- least the time since they were last seen; and physical slots no standby uses
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots s
             WHERE s.slot_type = 'physical' AND NOT s.active) AS inactive_slots,
           (SELECT pg_catalog.string_agg(s.slot_name::text, ', ' ORDER BY s.slot_name) FROM pg_catalog.pg_replication_slots s
             WHERE s.slot_type = 'physical' AND NOT s.active) AS slot_names,
           pg_catalog.count(*) AS lost,
           pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - h.last_seen)) AS since_seen,
           pg_catalog.string_agg(pg_catalog.format('%s: disconnected, last seen %s', h.application_name, h.last_seen), '; '
                                 ORDER BY h.application_name) AS detail
      FROM args a, @extschema@._gone_standbys(a.since) h
), archiving AS (
    SELECT pg_catalog.current_setting('archive_mode') <> 'off' AS enabled,
           EXTRACT(epoch FROM pg_catalog.now() - a.last_archived_time) AS since_last_archive,
           a.failed_count, a.last_failed_time, a.last_archived_time,
           -- failing now: the last attempt failed (issue 17)
           a.last_failed_time IS NOT NULL AND a.last_failed_time > COALESCE(a.last_archived_time, '-infinity') AS failing,
           -- the .ready backlog (segments waiting to be archived), for roles allowed to list it
           @extschema@._archive_ready() AS ready
      FROM pg_catalog.pg_stat_archiver a
), verdicts AS MATERIALIZED (
    SELECT p.* FROM @extschema@._pool_verdicts(analysis_window) p
), pools AS (
    -- the minutes a pool change or an application fix would help: near the connection limit
    -- (a pooler) or connections held idle in transactions (a leak); lock hotspots are not a
    -- pool's fault and are judged by the lock indicators. The advice is the latest such
    -- minute's, picked as one row (aggregating every verdict row to keep one cost a third of
    -- the pool part on 30 days of history)
    SELECT pg_catalog.count(*) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction'))::numeric
               / NULLIF(pg_catalog.count(*), 0) AS undersized_share,
           pg_catalog.count(*) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction')) AS undersized_minutes,
           -- (the latest row picked first, then made a pool_verdict: making every candidate one
           -- before the sort cost a fifth of the pool part). Of the pools of that minute, the
           -- whole cluster's row ('(all clients)', no database or user) when it is one of them,
           -- else the first by database, user and application: the same advice at every call
           @extschema@._pool_recommendation((SELECT l::@extschema@.pool_verdict
                                               FROM (SELECT * FROM verdicts l
                                                      WHERE l.pool_status IN ('near_connection_limit', 'idle_in_transaction')
                                                      ORDER BY l.minute DESC, l.datname NULLS FIRST, l.usename NULLS FIRST,
                                                               l.application_name
                                                      LIMIT 1) l)) AS advice
      FROM verdicts v
), indexes AS (
    SELECT pg_catalog.sum(i.index_bytes) AS all_bytes,
           COALESCE(pg_catalog.sum(i.index_bytes) FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL), 0) AS unused_bytes,
           COALESCE(pg_catalog.sum(i.index_bytes) FILTER (WHERE i.index_status IN ('duplicate', 'redundant', 'bloated')), 0) AS bloat_bytes,
           pg_catalog.string_agg(i.recommendation, ' ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL) AS unused_ddl,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s, %s)', i.schemaname, i.indexname, i.index_status,
                                                   pg_catalog.pg_size_pretty(i.index_bytes)), ', ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL) AS unused_list,
           pg_catalog.string_agg(i.recommendation, ' ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status IN ('duplicate', 'redundant', 'bloated')) AS bloat_ddl
      FROM @extschema@.index_effectiveness(interval '7 days') i
), tables AS (
    SELECT pg_catalog.count(*) FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS needs_vacuum,
           pg_catalog.count(*) FILTER (WHERE 'needs_analyze' = ANY (t.issues)) AS needs_analyze,
           pg_catalog.count(*) FILTER (WHERE 'missing_index' = ANY (t.issues)) AS missing_index,
           pg_catalog.count(*) FILTER (WHERE 'wraparound_risk' = ANY (t.issues)) AS wraparound,
           pg_catalog.string_agg(pg_catalog.format('%I.%I: %s dead of %s tuples', t.schemaname, t.tablename,
                                                   t.n_dead_tup, t.n_live_tup + t.n_dead_tup), '; ')
               FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS vacuum_detail,
           pg_catalog.string_agg(pg_catalog.format('VACUUM (ANALYZE) %I.%I;', t.schemaname, t.tablename), ' ')
               FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS vacuum_ddl,
           pg_catalog.string_agg(pg_catalog.format('%I.%I', t.schemaname, t.tablename), ', ')
               FILTER (WHERE 'needs_analyze' = ANY (t.issues)) AS analyze_list,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s rows per sequential scan)', t.schemaname, t.tablename,
                                                   pg_catalog.round(t.rows_per_seq_scan)), ', ')
               FILTER (WHERE 'missing_index' = ANY (t.issues)) AS missing_list,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (age %s)', t.schemaname, t.tablename, t.xid_age), ', ')
               FILTER (WHERE 'wraparound_risk' = ANY (t.issues)) AS wraparound_list
      FROM @extschema@.table_maintenance t
), sequences AS (
    SELECT pg_catalog.count(*) FILTER (WHERE s.status = 'near_exhaustion') AS near,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s%% used%s)', s.schemaname, s.sequencename,
                                                   pg_catalog.round((100 * s.used_ratio)::numeric, 1),
                                                   ' of what ' || s.used_by || ' can hold'), ', ')
               FILTER (WHERE s.status = 'near_exhaustion') AS detail
      FROM @extschema@.sequence_usage s
), hba AS (
    SELECT * FROM @extschema@._weak_hba_rules()
), roles AS (
    SELECT pg_catalog.count(*) FILTER (WHERE r.rolsuper AND r.oid <> 10) AS extra_superusers,
           pg_catalog.string_agg(r.rolname, ', ') FILTER (WHERE r.rolsuper AND r.oid <> 10) AS superuser_names
      FROM pg_catalog.pg_roles r
), passwords AS (
    SELECT * FROM @extschema@._passwords_without_expiry()
), definers AS (
    SELECT pg_catalog.count(*) AS unpinned,
           pg_catalog.string_agg(pg_catalog.format('%s.%s(%s)', n.nspname, p.proname,
                                                   pg_catalog.pg_get_function_identity_arguments(p.oid)), ', ') AS names
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
)
SELECT * FROM (
-- performance ---------------------------------------------------------------------------------
SELECT 'performance', 'slow_query_ratio', st.slow_calls / NULLIF(st.calls, 0), 'ratio', true, 0.01, 0.10, 30::numeric,
       'yes',
       pg_catalog.format('%s of %s statement executions belong to %s statements whose mean time exceeds dbanalytics.slow_query_threshold (%s ms)',
                         COALESCE(st.slow_calls, 0), COALESCE(st.calls, 0), COALESCE(st.slow_statements, 0), a.slow_ms),
       'top_queries(window, ''mean_time'')',
       'slow statements hold connections and locks longer and delay everything queued behind them',
       'look at the plans of the slowest statements (explain_analysis) and index their filters',
       'SELECT * FROM dbanalytics.top_queries(''' || analysis_window || ''', ''mean_time'', 10);', 'medium', 'high'
  FROM args a, statements st
UNION ALL
SELECT 'performance', 'p99_latency_ms', l.p99_ms::numeric, 'ms', true, 100, 1000, 20,
       CASE WHEN l.executions IS NULL THEN 'not_applicable' ELSE 'yes' END,
       pg_catalog.format('p99 over %s recorded executions is %s ms', COALESCE(l.executions, 0), pg_catalog.round(l.p99_ms::numeric, 2)),
       'query_latency(window) / database_latency',
       'the slowest 1 % of executions is what users notice',
       'find the statements with the highest p99 and fix their plans',
       'SELECT * FROM dbanalytics.query_latency(''' || analysis_window || ''', 10);', 'medium', 'high'
  FROM latency l
UNION ALL
SELECT 'performance', 'cache_hit_ratio', d.blks_hit / NULLIF(d.blks_hit + d.blks_read, 0), 'ratio', false, 0.95, 0.90, 25,
       CASE WHEN d.blks_hit + d.blks_read > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s blocks found in shared buffers, %s read from outside', COALESCE(d.blks_hit, 0), COALESCE(d.blks_read, 0)),
       'database_stats / cache_analytics',
       'blocks read from the OS cache or disk cost far more than shared-buffer hits',
       'raise shared_buffers (about 25 % of RAM) or reduce what the worst statements in cache_analytics read',
       'SELECT * FROM dbanalytics.cache_analytics WHERE level = ''statement'';', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'performance', 'temp_files_per_hour', d.temp_files * 3600 / NULLIF(d.covered_seconds, 0), 'files/h', true, 10, 1000, 10,
       CASE WHEN d.covered_seconds > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s temporary files (%s) in the window', COALESCE(d.temp_files, 0), pg_catalog.pg_size_pretty(COALESCE(d.temp_bytes, 0)::bigint)),
       'database_stats.temp_files',
       'sorts and hashes that spill to disk are many times slower than in memory',
       'raise work_mem for the statements that spill (top_queries order_by temp_blks)',
       'SELECT * FROM dbanalytics.top_queries(''' || analysis_window || ''', ''temp_blks'', 10);', 'low', 'high'
  FROM databases d
UNION ALL
SELECT 'performance', 'longest_transaction_seconds', COALESCE(s.longest_xact, 0)::numeric, 's', true, 300, 3600, 15,
       CASE WHEN a.sees_all_sessions THEN 'yes' ELSE 'unknown' END,
       pg_catalog.format('the oldest open transaction (pid %s) started %s s ago', s.oldest_pid, pg_catalog.round(COALESCE(s.longest_xact, 0))),
       'long_running_transactions',
       'a long transaction holds back vacuum for the whole cluster and may hold locks',
       'find it in long_running_transactions and end it at its source',
       'SELECT * FROM dbanalytics.long_running_transactions;', 'low', 'high'
  FROM args a, sessions s
-- reliability ---------------------------------------------------------------------------------
UNION ALL
SELECT 'reliability', 'deadlock_frequency', d.deadlocks * 3600 / NULLIF(d.covered_seconds, 0), 'deadlocks/h', true, 0, 10, 20,
       CASE WHEN d.covered_seconds > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s deadlocks in the window', COALESCE(d.deadlocks, 0)),
       'database_stats.deadlocks / transaction_trends',
       'each deadlock aborts a transaction the application must retry',
       'make transactions take their locks in one order; the server log (log_lock_waits) names the statements',
       'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'reliability', 'rollback_ratio', d.rollbacks / NULLIF(d.commits + d.rollbacks, 0), 'ratio', true, 0.05, 0.20, 10,
       CASE WHEN d.commits + d.rollbacks > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s rollbacks against %s commits', COALESCE(d.rollbacks, 0), COALESCE(d.commits, 0)),
       'transaction_trends',
       'rolled-back work was done for nothing and often hides application errors',
       'find the failing statements in the server log (log_min_error_statement)',
       'SELECT * FROM dbanalytics.transaction_trends(''' || analysis_window || ''');', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'reliability', 'replication_lag',
       CASE WHEN r.standbys > 0 OR ls.lost > 0 OR ls.inactive_slots > 0
            THEN GREATEST(COALESCE(r.lag, 0), COALESCE(ls.since_seen, 0),
                          CASE WHEN ls.inactive_slots > 0 THEN 60 ELSE 0 END)::numeric END, 's', true, 5, 60, 20,
       CASE WHEN r.standbys = 0 AND ls.lost = 0 AND ls.inactive_slots = 0 THEN 'not_applicable'
            WHEN a.sees_all_sessions OR r.standbys = 0 THEN 'yes' ELSE 'unknown' END,
       COALESCE(NULLIF(pg_catalog.concat_ws('; ', r.detail, ls.detail,
                                            'inactive physical replication slot(s): ' || ls.slot_names || ' (no standby uses them)'), ''),
                'no standby connected'),
       'replication_analytics',
       'a lagging or disconnected standby serves stale reads (or none) and loses more on failover',
       CASE WHEN ls.lost > 0 OR ls.inactive_slots > 0
            THEN 'a standby is disconnected: check that it runs and reaches this server (its server log says why); drop the slot of a standby that is gone for good, or it keeps WAL until the disk fills'
            ELSE 'check the standby''s I/O and network; look at replication_analytics' END,
       'SELECT * FROM dbanalytics.replication_analytics;', 'medium', 'high'
  FROM args a, replication r, lost_standbys ls
UNION ALL
SELECT 'reliability', 'backup_recency',
       CASE WHEN NOT ar.enabled THEN NULL
            -- failing now: at least the bad threshold, however recent the last success
            WHEN ar.failing THEN GREATEST(COALESCE(ar.since_last_archive, 1e9), 86400)::numeric
            -- nothing waiting to be archived: up to date, however idle the server (issue 17)
            WHEN ar.ready = 0 THEN 0
            ELSE COALESCE(ar.since_last_archive, 1e9)::numeric END, 's', true, 3600, 86400, 15,
       CASE WHEN NOT ar.enabled THEN 'not_configured' ELSE 'yes' END,
       CASE WHEN NOT ar.enabled THEN 'archive_mode is off: no WAL archive, so no point-in-time recovery'
            ELSE pg_catalog.format('last WAL segment archived at %s; %s failures, last at %s%s; %s',
                                   ar.last_archived_time, ar.failed_count, ar.last_failed_time,
                                   CASE WHEN ar.failing THEN ' (the last attempt failed)' ELSE '' END,
                                   CASE WHEN ar.ready IS NULL THEN 'the .ready backlog is not visible to this role (pg_monitor)'
                                        ELSE ar.ready || ' segment(s) waiting to be archived' END) END,
       'pg_stat_archiver, pg_ls_archive_statusdir()',
       'without a recent archived WAL, a lost disk loses the data written since the last base backup; WAL not archived stays in pg_wal until the disk fills',
       CASE WHEN NOT ar.enabled
            THEN 'set archive_mode = on with an archive_command (or a backup tool such as pgBackRest) and watch pg_stat_archiver'
            WHEN ar.failing
            THEN 'archiving is on and failing: the server log has the archive command''s error (LOG: archive command failed); fix the command, its target or its permissions'
            ELSE 'archiving is on but behind: check that the archive command keeps up (pg_stat_archiver, the .ready files in pg_wal/archive_status)' END,
       CASE WHEN NOT ar.enabled
            THEN 'ALTER SYSTEM SET archive_mode = on;  -- plus archive_command or archive_library; needs a restart'
            ELSE 'SELECT * FROM pg_catalog.pg_stat_archiver;  -- then read the server log around last_failed_time' END,
       'medium', 'high'
  FROM archiving ar
UNION ALL
SELECT 'reliability', 'xid_age', (SELECT pg_catalog.max(pg_catalog.age(db.datfrozenxid))::numeric FROM pg_catalog.pg_database db),
       'transactions', true, 500000000, 1500000000, 25, 'yes',
       (SELECT pg_catalog.format('oldest unfrozen transaction ID: %s transactions old in database %s', pg_catalog.age(db.datfrozenxid), db.datname)
          FROM pg_catalog.pg_database db ORDER BY pg_catalog.age(db.datfrozenxid) DESC LIMIT 1),
       'pg_database.datfrozenxid',
       'at 2^31 transactions the server stops accepting writes to avoid wraparound',
       'let (auto)vacuum freeze the oldest tables: end long transactions and vacuum the tables in table_maintenance flagged wraparound_risk',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''wraparound_risk'' = ANY (issues);', 'high', 'critical'
UNION ALL
SELECT 'reliability', 'disk_full_days', (SELECT dk.days_left FROM disk dk), 'days', false, 30, 7, 10,
       CASE WHEN EXISTS (SELECT FROM disk) THEN 'yes' ELSE 'not_applicable' END,
       COALESCE((SELECT dk.evidence FROM disk dk),
                'no file system of the data directory or pg_wal is filling (space_growth over 30 days)'),
       'space_growth (file systems, 30 days)',
       'a full disk stops the server: writes fail, and a full pg_wal shuts it down',
       'free space or grow the file system before the forecast date; space_growth shows what grows',
       'SELECT * FROM dbanalytics.space_growth(''30 days'') ORDER BY growth_bytes_per_day DESC NULLS LAST LIMIT 20;',
       'medium', 'critical'
-- efficiency ----------------------------------------------------------------------------------
UNION ALL
SELECT 'efficiency', 'connection_pool_efficiency', p.undersized_share, 'ratio', true, 0.05, 0.5, 30,
       CASE WHEN p.undersized_share IS NULL THEN 'not_applicable' ELSE 'yes' END,
       pg_catalog.format('%s pool-minutes of the window were near the connection limit or held connections idle in transactions',
                         COALESCE(p.undersized_minutes, 0)),
       'connection_pool_analytics',
       'clients wait for connections, or the server runs out of them',
       COALESCE(p.advice, 'size pools from their measured peak of concurrently active sessions with a buffer'),
       'SELECT * FROM dbanalytics.connection_pool_analytics WHERE pool_status <> ''optimal'';', 'medium', 'high'
  FROM pools p
UNION ALL
SELECT 'efficiency', 'idle_in_transaction_seconds', COALESCE(s.longest_idle_in_xact, 0)::numeric, 's', true, 60, 600, 20,
       CASE WHEN a.sees_all_sessions THEN 'yes' ELSE 'unknown' END,
       COALESCE(s.idle_session, 'no session is idle in a transaction'),
       'long_running_transactions',
       'an idle transaction holds its locks and snapshot, blocking vacuum and other writers',
       'set idle_in_transaction_session_timeout and fix the client that leaves transactions open',
       CASE WHEN s.idle_pid IS NOT NULL
            THEN pg_catalog.format('SELECT pg_terminate_backend(%s);  -- or: ALTER SYSTEM SET idle_in_transaction_session_timeout = ''5min''', s.idle_pid)
            ELSE 'ALTER SYSTEM SET idle_in_transaction_session_timeout = ''5min''; SELECT pg_reload_conf();' END,
       'low', 'high'
  FROM args a, sessions s
UNION ALL
SELECT 'efficiency', 'unused_index_bytes', i.unused_bytes, 'bytes', true, 10485760, 1073741824, 20, 'yes',
       COALESCE('unused for 7 days: ' || i.unused_list, 'no unused index'),
       'index_effectiveness',
       'every write must also update the unused indexes, and they take cache and disk',
       'drop them (after checking they are not needed for rare jobs)',
       COALESCE(i.unused_ddl, '-- nothing to drop'), 'low', 'high'
  FROM indexes i
UNION ALL
SELECT 'efficiency', 'index_bloat', i.bloat_bytes / NULLIF(i.all_bytes, 0), 'ratio', true, 0.10, 0.50, 15,
       CASE WHEN i.all_bytes > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s of %s index bytes are in duplicate, redundant or bloated indexes',
                         pg_catalog.pg_size_pretty(i.bloat_bytes::bigint), pg_catalog.pg_size_pretty(COALESCE(i.all_bytes, 0)::bigint)),
       'index_effectiveness',
       'bloated and duplicate indexes waste cache and slow every write',
       'drop duplicates and redundant prefixes, reindex the bloated ones',
       COALESCE(i.bloat_ddl, '-- nothing to do'), 'low', 'high'
  FROM indexes i
UNION ALL
SELECT 'efficiency', 'missing_index_tables', t.missing_index::numeric, 'tables', true, 0, 5, 15, 'yes',
       COALESCE('sequential scans of many rows on ' || t.missing_list, 'no table is read mostly by large sequential scans'),
       'table_maintenance (issue missing_index)',
       'each query filters a whole table instead of reading a few rows through an index',
       'find the filters in top_queries and index them (index_advice)',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''missing_index'' = ANY (issues);', 'medium', 'high'
  FROM tables t
-- security ------------------------------------------------------------------------------------
UNION ALL
SELECT 'security', 'hba_weak_authentication', CASE WHEN h.readable THEN h.weak::numeric END, 'rules', true, 0, 1, 30,
       CASE WHEN h.readable THEN 'yes' ELSE 'unknown' END,
       CASE WHEN NOT h.readable THEN 'pg_hba_file_rules is not readable by this role'
            ELSE COALESCE('pg_hba.conf ' || h.lines, 'no trust or cleartext-password rule') END,
       'pg_hba_file_rules',
       'trust lets anyone who can connect log in as any role; password sends it in clear text',
       'replace trust and password with scram-sha-256 in pg_hba.conf, then reload',
       'edit pg_hba.conf (the lines in the evidence), then SELECT pg_reload_conf();', 'low', 'high'
  FROM hba h
UNION ALL
SELECT 'security', 'ssl_off', (pg_catalog.current_setting('ssl') = 'off')::integer::numeric, 'flag', true, 0, 1, 15, 'yes',
       'ssl = ' || pg_catalog.current_setting('ssl'),
       'pg_settings.ssl',
       'without TLS, passwords (other than SCRAM exchanges) and data cross the network in clear',
       'configure ssl_cert_file / ssl_key_file and set ssl = on',
       'ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf();  -- after installing a certificate', 'medium', 'medium'
UNION ALL
SELECT 'security', 'extra_superusers', ro.extra_superusers::numeric, 'roles', true, 0, 3, 15, 'yes',
       COALESCE('superusers besides the bootstrap role: ' || ro.superuser_names, 'only the bootstrap superuser'),
       'pg_roles.rolsuper',
       'every superuser can read and change everything, including the server''s files',
       'give these roles only the predefined roles and grants they need',
       COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format('ALTER ROLE %I NOSUPERUSER;', r.rolname), ' ')
                   FROM pg_catalog.pg_roles r WHERE r.rolsuper AND r.oid <> 10), '-- nothing to do'),
       'medium', 'high'
  FROM roles ro
UNION ALL
SELECT 'security', 'public_schema_create', pg_catalog.has_schema_privilege('public', 'public', 'CREATE')::integer::numeric, 'flag', true, 0, 1, 25, 'yes',
       CASE WHEN pg_catalog.has_schema_privilege('public', 'public', 'CREATE') THEN 'PUBLIC may CREATE in schema public'
            ELSE 'PUBLIC may not create in schema public' END,
       'has_schema_privilege(''public'', ''public'', ''CREATE'')',
       'any role can plant objects that shadow others'' functions (CVE-2018-1058)',
       'revoke CREATE on schema public from PUBLIC',
       'REVOKE CREATE ON SCHEMA public FROM PUBLIC;', 'low', 'high'
UNION ALL
SELECT 'security', 'security_definer_without_search_path', df.unpinned::numeric, 'functions', true, 0, 3, 15, 'yes',
       COALESCE('SECURITY DEFINER without SET search_path: ' || df.names, 'every SECURITY DEFINER function pins search_path'),
       'pg_proc.prosecdef / proconfig',
       'a caller can redirect unqualified names inside the function and run code with its owner''s rights',
       'pin search_path on each of them',
       'ALTER FUNCTION <function> SET search_path = pg_catalog, pg_temp;  -- for each function in the evidence', 'low', 'high'
  FROM definers df
UNION ALL
-- informational (weight 0, issue 17): nearly every cluster has such roles, and an expiry date
-- says little about how a password is kept; shown with its evidence, it costs no points
SELECT 'security', 'passwords_without_expiry', CASE WHEN pw.readable THEN pw.without_expiry::numeric END, 'roles', true, 0, 10, 0,
       CASE WHEN pw.readable THEN 'yes' ELSE 'unknown' END,
       CASE WHEN NOT pw.readable THEN 'pg_authid is not readable by this role'
            ELSE COALESCE('login roles with a password that never expires: ' || pw.names, 'none') END,
       'pg_authid.rolvaliduntil',
       'a leaked password stays valid forever',
       'set VALID UNTIL on password roles, or move them to certificate or SSO authentication',
       'ALTER ROLE <role> VALID UNTIL ''<date>'';  -- for each role in the evidence', 'low', 'medium'
  FROM passwords pw
-- maintenance ---------------------------------------------------------------------------------
UNION ALL
SELECT 'maintenance', 'dead_tuples', t.needs_vacuum::numeric, 'tables', true, 0, 5, 30, 'yes',
       COALESCE(t.vacuum_detail, 'no table has more than 20 % dead tuples'),
       'table_maintenance (issue needs_vacuum)',
       'dead tuples bloat tables and indexes and slow every scan',
       'vacuum them now, and make autovacuum more aggressive on them (autovacuum_vacuum_scale_factor)',
       COALESCE(t.vacuum_ddl, '-- nothing to vacuum'), 'low', 'high'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'wraparound_tables', t.wraparound::numeric, 'tables', true, 0, 1, 20, 'yes',
       COALESCE('tables past half of the wraparound horizon: ' || t.wraparound_list, 'no table near wraparound'),
       'table_maintenance (issue wraparound_risk)',
       'at 2^31 transactions the server stops accepting writes',
       'VACUUM (FREEZE) these tables and end long transactions',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''wraparound_risk'' = ANY (issues);', 'high', 'critical'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'stale_statistics', t.needs_analyze::numeric, 'tables', true, 0, 10, 15, 'yes',
       COALESCE('changed a lot since the last ANALYZE: ' || t.analyze_list, 'statistics are fresh'),
       'table_maintenance (issue needs_analyze)',
       'the planner plans from old row counts and distributions',
       'ANALYZE them; lower autovacuum_analyze_scale_factor on large tables',
       COALESCE('ANALYZE ' || t.analyze_list || ';', '-- nothing to analyze'), 'low', 'medium'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'autovacuum_off', (pg_catalog.current_setting('autovacuum') = 'off')::integer::numeric, 'flag', true, 0, 1, 15, 'yes',
       'autovacuum = ' || pg_catalog.current_setting('autovacuum'),
       'pg_settings.autovacuum',
       'without autovacuum, dead tuples pile up and wraparound comes closer',
       'turn autovacuum back on',
       'ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();', 'low', 'critical'
UNION ALL
SELECT 'maintenance', 'sequences_near_exhaustion', sq.near::numeric, 'sequences', true, 0, 1, 20, 'yes',
       COALESCE('over 75 % used: ' || sq.detail, 'no sequence is close to its limit'),
       'sequence_usage',
       'when a sequence runs out, every insert that needs it fails',
       'widen the column (ALTER TABLE ... ALTER COLUMN ... TYPE bigint) and the sequence (ALTER SEQUENCE ... AS bigint) before it runs out',
       'SELECT * FROM dbanalytics.sequence_usage WHERE status <> ''ok'';', 'medium', 'high'
  FROM sequences sq
) indicators
$$;

-- Its connection columns come from _connection_states(), summed per database and state, which
-- replaces _connection_minutes() (one row per pool and state: 90,000 a week, summed by the caller).
DROP FUNCTION @extschema@._connection_minutes(timestamptz);
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
REVOKE ALL ON FUNCTION @extschema@._connection_states(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._connection_states(timestamptz) TO dbanalytics_reader;

-- database_performance_metrics() gains a resolution (time buckets of whole minutes; the
-- report asks for about 240 per chart): the view and the one-argument function are replaced.
DROP VIEW @extschema@.database_performance_metrics;
DROP FUNCTION @extschema@.database_performance_metrics(interval);
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
REVOKE ALL ON FUNCTION @extschema@.database_performance_metrics(interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.database_performance_metrics(interval, interval) TO dbanalytics_reader;
GRANT SELECT ON @extschema@.database_performance_metrics TO dbanalytics_reader;

-- The resolution of the report's time-series functions for a window: the widest of 1, 2, 5,
-- 10, 15 and 30 minutes, 1, 2, 3, 6 and 12 hours and 1 day that still gives each of
-- _svg_chart's 240 buckets at least one point (a minute for windows under 4 hours), so a week
-- is read as 336 half-hours instead of 10,080 minutes and draws the same line.
CREATE FUNCTION @extschema@._chart_resolution(analysis_window interval)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.max(r.width), interval '1 minute')
      FROM pg_catalog.unnest('{1 minute,2 minutes,5 minutes,10 minutes,15 minutes,30 minutes,1 hour,2 hours,3 hours,6 hours,12 hours,1 day}'::interval[]) r(width)
     WHERE r.width * 240 <= analysis_window
$$;
REVOKE ALL ON FUNCTION @extschema@._chart_resolution(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._chart_resolution(interval) TO dbanalytics_reader;

-- lock_contention() computes blocking_chains() once (inlined into its per-object subquery, it ran
-- once per object waited on).
CREATE OR REPLACE FUNCTION @extschema@.lock_contention(analysis_window interval)
RETURNS TABLE (waited_on text, locktype text, modes text[], wait_samples bigint, waits bigint,
               waiters bigint, estimated_wait_seconds double precision, max_wait interval,
               head_blockers integer[], last_seen timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           COALESCE((SELECT s.setting::double precision / 1000 FROM pg_catalog.pg_settings s
                      WHERE s.name = 'dbanalytics.sample_interval'), 1) AS tick_seconds
), waits AS (
    SELECT w.*, COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS object
      FROM @extschema@.lock_waits w
     WHERE w.sampled_at > pg_catalog.now() - analysis_window AND w.waiting
), heads AS MATERIALIZED (
    -- computed once (inlined, the per-object subquery below ran blocking_chains() once per object)
    SELECT c.sampled_at, c.head_pid, r.object
      FROM @extschema@.blocking_chains(analysis_window) c
     CROSS JOIN LATERAL pg_catalog.unnest(c.relations) AS r(object)
)
SELECT w.object, pg_catalog.min(w.locktype), pg_catalog.array_agg(DISTINCT w.mode),
       pg_catalog.count(*), pg_catalog.count(DISTINCT (w.pid, w.wait_started)),
       pg_catalog.count(DISTINCT w.pid), pg_catalog.count(*) * pg_catalog.min(a.tick_seconds),
       pg_catalog.max(w.sampled_at - w.wait_started),
       (SELECT pg_catalog.array_agg(DISTINCT h.head_pid) FROM heads h WHERE h.object = w.object),
       pg_catalog.max(w.sampled_at)
  FROM waits w CROSS JOIN args a
 GROUP BY w.object
 ORDER BY pg_catalog.count(*) DESC
$$;

-- The report: everything the analytics say about the window, as one HTML document. Read with the
-- caller's privileges from the functions and views users call, so it never disagrees with them
-- and a dbanalytics_reader sees only the query texts statement_texts shows it. row_limit bounds
-- every table (1 to 1000).
CREATE FUNCTION @extschema@.report_html(analysis_window interval DEFAULT '1 day', row_limit integer DEFAULT 15)
RETURNS text
LANGUAGE sql VOLATILE  -- index_advice() is volatile (it may try hypothetical indexes)
SET search_path = pg_catalog, pg_temp
-- for every function it calls: a week of minutes grouped and sorted in memory, not in temporary
-- files (the default 4 MB spilled wait_events_by_minute's 100,000 rows of a week to disk)
SET work_mem = '64MB'
AS $$
WITH args AS MATERIALIZED (
    SELECT @extschema@._window_start(analysis_window) AS lo, pg_catalog.now() AS hi,
           @extschema@._row_limit(row_limit) AS n,
           -- the time-series functions' buckets: about 240 per chart whatever the window
           @extschema@._chart_resolution(analysis_window) AS resolution
), health AS MATERIALIZED (
    SELECT @extschema@.health_score(analysis_window) AS h
), analysis AS MATERIALIZED (
    SELECT @extschema@.query_analysis(analysis_window) AS a
), perf AS MATERIALIZED (
    SELECT m.* FROM args a, @extschema@.database_performance_metrics(analysis_window, a.resolution) m
), waits AS MATERIALIZED (
    SELECT w.minute, w.wait_event_type || ': ' || w.wait_event AS event, pg_catalog.sum(w.avg_active_sessions) AS sessions
      FROM args a, @extschema@.wait_events_by_minute(analysis_window, a.resolution) w
     GROUP BY 1, 2
), pools AS MATERIALIZED (
    -- connection_pool_analytics' rows, their advice in words only for the rows the table shows
    SELECT p.* FROM @extschema@._pool_verdicts(analysis_window) p
), chains AS MATERIALIZED (
    SELECT c.* FROM @extschema@.blocking_chains(analysis_window) c
), sections AS (
    SELECT 1 AS ord, @extschema@._html_section('health', 'Health', pg_catalog.concat(
        pg_catalog.format('<p class="score">Overall score <b>%s</b> / 100</p>',
                          @extschema@._html_escape(COALESCE(h.h ->> 'overall_score', 'unknown'))),
        '<h3>Components</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'component', c.key, 'score', c.value::text::numeric,
                                     'weight', (h.h -> 'component_weights' ->> c.key)::numeric) ORDER BY c.key)
                                   FROM pg_catalog.jsonb_each(h.h -> 'component_scores') c), 'No component was scored.'),
        '<h3>Risks</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'factor', r ->> 'factor', 'component', r ->> 'component', 'severity', r ->> 'severity',
                                     'points lost', (r ->> 'points_lost')::numeric, 'impact', r ->> 'impact',
                                     'mitigation', r ->> 'mitigation') ORDER BY o)
                                   FROM pg_catalog.jsonb_array_elements(h.h -> 'risk_factors') WITH ORDINALITY x(r, o)),
                                'No risk found in this window.'),
        '<h3>Recommendations</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'priority', r ->> 'priority', 'indicator', r ->> 'indicator', 'action', r ->> 'action',
                                     'why', r ->> 'why', 'expected improvement', r ->> 'expected_improvement',
                                     'effort', r ->> 'effort') ORDER BY o)
                                   FROM pg_catalog.jsonb_array_elements(h.h -> 'recommendations') WITH ORDINALITY x(r, o)),
                                'Nothing to recommend.'),
        '<h3>Open alerts</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'rule', a.rule, 'severity', a.severity, 'opened at', @extschema@._html_time(a.opened_at),
                                     'last seen', @extschema@._html_time(a.last_seen_at), 'value', a.value, 'threshold', a.threshold)
                                     ORDER BY a.opened_at)
                                   FROM (SELECT a.* FROM @extschema@.alerts a WHERE a.resolved_at IS NULL
                                          ORDER BY a.opened_at LIMIT x.n) a), 'No alert is open.'))) AS html
      FROM health h, args x
    UNION ALL
    SELECT 2, @extschema@._html_section('throughput', 'Throughput, latency and connections', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-throughput', 'Throughput', 'per second', a.lo, a.hi, false,
                    pg_catalog.array_agg(x.minute), pg_catalog.array_agg(x.name), pg_catalog.array_agg(x.v))
           FROM (SELECT m.minute, COALESCE(m.datname, '(none)') || ' ' || t.name AS name, t.v
                   FROM perf m CROSS JOIN LATERAL (VALUES ('transactions', m.transactions_per_second),
                                                          ('queries', m.queries_per_second)) t(name, v)) x),
        (SELECT @extschema@._svg_chart('chart-latency', 'Statement latency p50 / p95 / p99', 'ms', a.lo, a.hi, false,
                    pg_catalog.array_agg(x.minute), pg_catalog.array_agg(x.name), pg_catalog.array_agg(x.v))
           FROM (SELECT m.minute, COALESCE(m.datname, '(none)') || ' ' || t.name AS name, t.v
                   FROM perf m CROSS JOIN LATERAL (VALUES ('p50', m.p50_ms), ('p95', m.p95_ms),
                                                          ('p99', m.p99_ms)) t(name, v)) x),
        (SELECT @extschema@._svg_chart('chart-connections', 'Connections by state', 'connections', a.lo, a.hi, true,
                    pg_catalog.array_agg(x.minute), pg_catalog.array_agg(x.name), pg_catalog.array_agg(x.v))
           FROM (SELECT m.minute, t.name, pg_catalog.sum(t.v) AS v
                   FROM perf m CROSS JOIN LATERAL (VALUES ('active', m.active_connections),
                                                          ('idle in transaction', m.idle_in_transaction_connections),
                                                          ('idle', m.idle_connections)) t(name, v)
                  GROUP BY 1, 2) x)))
      FROM args a
    UNION ALL
    SELECT 3, @extschema@._html_section('waits', 'Wait events', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-waits', 'Wait events (average active sessions, stacked)', 'sessions',
                    a.lo, a.hi, true, pg_catalog.array_agg(w.minute), pg_catalog.array_agg(w.event),
                    pg_catalog.array_agg(w.sessions))
           FROM waits w),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'wait event', x.event, 'average active sessions', pg_catalog.round(x.aas::numeric, 3))
                                     ORDER BY x.aas DESC)
                                   -- each bucket's average active sessions times the minutes of the window
                                   -- it covers (the first bucket may start before the window)
                                   FROM (SELECT w.event,
                                                pg_catalog.sum(w.sessions * pg_catalog.date_part('epoch',
                                                    LEAST(w.minute + a.resolution, a.hi) - GREATEST(w.minute, a.lo)) / 60)
                                                / GREATEST(pg_catalog.date_part('epoch', a.hi - a.lo) / 60, 1) AS aas
                                           FROM waits w GROUP BY w.event ORDER BY 2 DESC LIMIT a.n) x),
                                'No backend was sampled waiting in this window.')))
      FROM args a
    UNION ALL
    SELECT 4, @extschema@._html_section('queries', 'Top queries', pg_catalog.concat(
        '<h3>By total execution time, with the trend against the window before</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'rank', t.rank, 'database', t.datname, 'user', t.usename,
                                     'query', pg_catalog.left(t.query, 300), 'calls', t.calls,
                                     'total ms', pg_catalog.round(t.total_time_ms::numeric, 1),
                                     'mean ms', pg_catalog.round(t.mean_time_ms::numeric, 3),
                                     'CPU ms', pg_catalog.round((t.cpu_user_time_ms + t.cpu_system_time_ms)::numeric, 1),
                                     'share', pg_catalog.round(t.share_of_total_time::numeric, 3),
                                     'trend', t.trend) ORDER BY t.rank)
                                   FROM @extschema@.top_queries(analysis_window, 'total_time', a.n) t),
                                'No statement ran in this window.'),
        '<h3>Latency percentiles (from the per-statement histograms)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'rank', l.rank, 'database', l.datname, 'user', l.usename,
                                     'query', pg_catalog.left(l.query, 300), 'executions', l.executions,
                                     'p50 ms', pg_catalog.round(l.p50_ms::numeric, 3),
                                     'p95 ms', pg_catalog.round(l.p95_ms::numeric, 3),
                                     'p99 ms', pg_catalog.round(l.p99_ms::numeric, 3),
                                     'max ms', pg_catalog.round(l.max_ms::numeric, 3)) ORDER BY l.rank)
                                   FROM @extschema@.query_latency(analysis_window, a.n) l),
                                'No latency histogram covers this window.'),
        '<h3>Optimization opportunities (N+1 loops, caching)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'type', o ->> 'type', 'impact', o ->> 'impact',
                                     'query', pg_catalog.left(o ->> 'query', 300),
                                     'parent query', pg_catalog.left(o ->> 'parent_query', 300),
                                     'evidence', o -> 'evidence', 'solution', o ->> 'solution') ORDER BY x.k)
                                   FROM (SELECT o, k FROM pg_catalog.jsonb_array_elements(q.a -> 'optimization_opportunities')
                                                 WITH ORDINALITY e(o, k) LIMIT a.n) x),
                                'No N+1 loop or caching opportunity found.'),
        '<h3>Slow queries</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'query', pg_catalog.left(o ->> 'query', 300), 'calls', (o ->> 'calls')::numeric,
                                     'mean ms', (o ->> 'mean_time_ms')::numeric, 'reason', o ->> 'reason') ORDER BY x.k)
                                   FROM (SELECT o, k FROM pg_catalog.jsonb_array_elements(q.a -> 'slow_queries')
                                                 WITH ORDINALITY e(o, k) LIMIT a.n) x),
                                'No statement is slower on average than dbanalytics.slow_query_threshold.'),
        '<h3>Plan changes (plan history)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'changed at', c.changed_at, 'database', c.datname, 'user', c.usename,
                                     'query', pg_catalog.left(c.query, 300),
                                     'p95 ms before', pg_catalog.round(c.p95_ms_before::numeric, 3),
                                     'p95 ms after', pg_catalog.round(c.p95_ms_after::numeric, 3),
                                     'plan before', pg_catalog.left(c.previous_plan, 600),
                                     'plan after', pg_catalog.left(c.plan, 600)) ORDER BY c.changed_at DESC)
                                   FROM @extschema@.plan_changes(analysis_window, a.n) c),
                                'No statement changed its plan in this window (or no plan was captured).'),
        '<h3>Index advice (the advisor)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'table', i.table_name, 'ddl', i.ddl,
                                     'statement ms', pg_catalog.round(i.statement_time_ms::numeric, 1),
                                     'estimated benefit', i.estimated_benefit, 'validated', i.validated,
                                     'table writes', i.table_writes_in_window))
                                   FROM @extschema@.index_advice(analysis_window, a.n) i),
                                'The advisor has no index to suggest.')))
      FROM args a, analysis q
    UNION ALL
    SELECT 5, @extschema@._html_section('pools', 'Connection pools', pg_catalog.concat(
        -- each pool's mean in each of the time-series functions' buckets: a few hundred points
        -- for the chart to draw, not one per pool and minute (50,000 in a week)
        (SELECT @extschema@._svg_chart('chart-pools', 'Pool utilization (active over the largest pool seen)', 'ratio',
                    a.lo, a.hi, false, pg_catalog.array_agg(p.bucket),
                    pg_catalog.array_agg(pg_catalog.concat_ws(' ', p.datname, p.usename, p.application_name)),
                    pg_catalog.array_agg(p.utilization))
           FROM (SELECT pg_catalog.date_bin(a.resolution, p.minute, a.lo) AS bucket, p.datname, p.usename,
                        p.application_name, pg_catalog.avg(p.utilization) AS utilization
                   FROM pools p GROUP BY 1, 2, 3, 4) p),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'database', p.datname, 'user', p.usename, 'application', p.application_name,
                                     'max active', p.max_active, 'utilization', pg_catalog.round(p.utilization::numeric, 3),
                                     'status', p.pool_status, 'recommended size', p.recommended_pool_size,
                                     'recommendation', @extschema@._pool_recommendation(p))
                                     ORDER BY p.datname, p.usename, p.application_name)
                                   -- each pool's latest minute, found by hashing (sorting the week's
                                   -- rows by their names took a tenth of a second)
                                   FROM (SELECT p.* FROM pools p
                                           JOIN (SELECT l.datname, l.usename, l.application_name,
                                                        pg_catalog.max(l.minute) AS minute
                                                   FROM pools l GROUP BY 1, 2, 3) l
                                             ON l.minute = p.minute
                                            AND (l.datname, l.usename, l.application_name)
                                                IS NOT DISTINCT FROM (p.datname, p.usename, p.application_name)
                                          ORDER BY p.datname, p.usename, p.application_name
                                          LIMIT a.n) p),
                                'No pool was sampled in this window.')))
      FROM args a
    UNION ALL
    SELECT 6, @extschema@._html_section('locks', 'Lock contention and blocking chains', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-locks', 'Sessions blocked behind another', 'sessions', a.lo, a.hi, false,
                    pg_catalog.array_agg(c.sampled_at), pg_catalog.array_agg('blocked sessions'::text),
                    pg_catalog.array_agg(c.blocked))
           FROM (SELECT c.sampled_at, pg_catalog.sum(c.blocked_count)::float8 AS blocked FROM chains c GROUP BY 1) c),
        '<h3>Most waited-on objects</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'waited on', l.waited_on, 'lock type', l.locktype, 'modes', l.modes,
                                     'waits', l.waits, 'waiters', l.waiters,
                                     'estimated wait s', pg_catalog.round(l.estimated_wait_seconds::numeric, 1),
                                     'longest wait', l.max_wait::text, 'last seen', @extschema@._html_time(l.last_seen)))
                                   FROM (SELECT l.* FROM @extschema@.lock_contention(analysis_window) l LIMIT a.n) l),
                                'No lock wait was sampled in this window.'),
        '<h3>Blocking chains (latest first)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'sampled at', @extschema@._html_time(c.sampled_at), 'head pid', c.head_pid, 'head user', c.head_usename,
                                     'head application', c.head_application_name, 'head state', c.head_state,
                                     'blocked', c.blocked_count, 'depth', c.chain_depth, 'relations', c.relations)
                                     ORDER BY c.sampled_at DESC)
                                   FROM (SELECT c.* FROM chains c ORDER BY c.sampled_at DESC, c.head_pid LIMIT a.n) c),
                                'No blocking chain was sampled in this window.')))
      FROM args a
    UNION ALL
    SELECT 7, @extschema@._html_section('indexes', 'Index verdicts', @extschema@._html_table(
        (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                    'schema', i.schemaname, 'table', i.tablename, 'index', i.indexname, 'verdict', i.index_status,
                    'scans', i.scans_in_window, 'size', pg_catalog.pg_size_pretty(i.index_bytes),
                    'recommendation (DDL)', i.recommendation)
                    ORDER BY i.index_status = 'effective', i.index_status, i.schemaname, i.tablename, i.indexname)
           FROM (SELECT i.* FROM @extschema@.index_effectiveness(analysis_window) i
                  ORDER BY i.index_status = 'effective', i.index_status, i.schemaname, i.tablename, i.indexname
                  LIMIT a.n) i),
        'No index was watched in this window.'))
      FROM args a
    UNION ALL
    SELECT 8, @extschema@._html_section('cache', 'Cache and replication', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-cache', 'Buffer cache hit ratio', 'ratio', a.lo, a.hi, false,
                    pg_catalog.array_agg(m.minute), pg_catalog.array_agg(COALESCE(m.datname, '(none)')),
                    pg_catalog.array_agg(m.cache_hit_ratio))
           FROM perf m),
        '<h3>Tables read most from disk</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'table', c.object_name, 'blocks hit', c.hit, 'blocks read', c.read,
                                     'hit ratio', pg_catalog.round((c.hit::float8 / NULLIF(c.hit + c.read, 0))::numeric, 4))
                                     ORDER BY c.read DESC)
                                   FROM (SELECT c.object_name, pg_catalog.sum(c.blks_hit) AS hit, pg_catalog.sum(c.blks_read) AS read
                                           FROM @extschema@.cache_analytics(analysis_window) c WHERE c.level = 'table'
                                          GROUP BY 1 ORDER BY 3 DESC NULLS LAST LIMIT a.n) c),
                                'No table was read in this window.'),
        (SELECT @extschema@._svg_chart('chart-replication', 'Replication replay lag', 's', a.lo, a.hi, false,
                    pg_catalog.array_agg(r.interval_end),
                    pg_catalog.array_agg(COALESCE(r.application_name, '?') || ' ' || COALESCE(r.client_addr::text, 'local')),
                    pg_catalog.array_agg(r.replay_lag_s))
           FROM @extschema@.replication_stats r WHERE r.interval_end >= a.lo),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'kind', r.kind, 'name', r.name, 'state', r.state,
                                     'replay lag s', r.replay_lag_seconds, 'replay lag bytes', r.replay_lag_bytes,
                                     'max replay lag s in window', r.max_replay_lag_seconds_in_window,
                                     'retained bytes', r.retained_bytes, 'detail', r.detail))
                                   FROM (SELECT r.* FROM @extschema@.replication_analytics(analysis_window) r LIMIT a.n) r),
                                'No standby or replication slot.')))
      FROM args a
    UNION ALL
    SELECT 9, @extschema@._html_section('collector', 'Collector health and the monitor''s own storage', pg_catalog.concat(
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'source', s.source, 'worker', s.worker, 'health', s.health, 'last run', @extschema@._html_time(s.last_run),
                                     'avg ms', pg_catalog.round(s.avg_duration_ms::numeric, 1),
                                     'errors last hour', s.errors_last_hour,
                                     'detail', COALESCE(s.last_error, s.skipped_reason)) ORDER BY s.health = 'healthy', s.source)
                                   FROM @extschema@.collector_status s), 'No collector status.'),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'table', u.table_name, 'tier', u.tier, 'rows (estimate)', u.rows_estimated,
                                     'size', pg_catalog.pg_size_pretty(u.bytes), 'per day', pg_catalog.pg_size_pretty(u.bytes_per_day),
                                     'projected', pg_catalog.pg_size_pretty(u.projected_bytes)) ORDER BY u.bytes DESC)
                                   FROM @extschema@.storage_usage u), 'No storage figures.')))
      FROM args a
)
SELECT pg_catalog.concat(
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>dbanalytics report: ', @extschema@._html_escape(pg_catalog.current_database()), '</title><style>',
    'body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}',
    'h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:32px}h3{font-size:15px}',
    'table{border-collapse:collapse;margin:8px 0;font-size:12px}th,td{border:1px solid #ddd;padding:3px 6px;',
    'vertical-align:top;text-align:left;max-width:420px;overflow-wrap:anywhere}td.n{text-align:right}',
    'th{background:#f3f3f3}.score b{font-size:28px}.empty{color:#666;font-style:italic}nav a{margin-right:12px}',
    'figure{margin:12px 0}figcaption{font-weight:600}svg text{font-size:11px;fill:#333}',
    'svg .ylabel{text-anchor:end}svg .xlabel,svg .xtitle,svg .unit,svg .nodata{text-anchor:middle}',
    'svg .grid{stroke:#eee}svg .axis{stroke:#999}</style></head><body>',
    '<h1>dbanalytics report: database ', @extschema@._html_escape(pg_catalog.current_database()), '</h1>',
    pg_catalog.format('<p class="meta">Window %s to %s (%s), generated %s for role %s. PostgreSQL %s. Times in %s.</p>',
                      @extschema@._html_time(a.lo), @extschema@._html_time(a.hi),
                      @extschema@._html_escape(analysis_window::text), @extschema@._html_time(pg_catalog.clock_timestamp()),
                      @extschema@._html_escape(CURRENT_USER::text), @extschema@._html_escape(pg_catalog.current_setting('server_version')),
                      @extschema@._html_escape(pg_catalog.current_setting('TimeZone'))),
    '<nav><a href="#health">Health</a><a href="#throughput">Throughput</a><a href="#waits">Waits</a>',
    '<a href="#queries">Queries</a><a href="#pools">Pools</a><a href="#locks">Locks</a><a href="#indexes">Indexes</a>',
    '<a href="#cache">Cache and replication</a><a href="#collector">Collector</a></nav>',
    (SELECT pg_catalog.string_agg(s.html, E'\n' ORDER BY s.ord) FROM sections s),
    '</body></html>')
  FROM args a
$$;

REVOKE ALL ON FUNCTION @extschema@.report_html(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.report_html(interval, integer) TO dbanalytics_reader;

DROP FUNCTION @extschema@._pool_analytics(interval);

-------------------------------------------------------------------------------
-- Issue 19 (a first part): regressions(), statements slower in the window than in the baseline
-- before it, from the statement totals and the latency histograms (sql/analytics_queries.sql);
-- its thresholds are rows of analytics_thresholds (above).
-------------------------------------------------------------------------------
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
-- mean) × calls. The query text as statement_texts shows it to the caller.
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

REVOKE ALL ON FUNCTION @extschema@._check_baseline(interval), @extschema@.regressions(interval, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._check_baseline(interval), @extschema@.regressions(interval, interval, integer)
    TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Issue 16: blocking_chains() computed once per statement (src/api/memo.rs), like the other
-- functions the report and the health score both read.
-------------------------------------------------------------------------------
CREATE FUNCTION @extschema@._compute_blocking_chains(analysis_window interval)
RETURNS TABLE (sampled_at timestamptz, head_pid integer, head_usename text, head_application_name text,
               head_state text, head_query_id bigint, blocked_pids integer[], blocked_count integer,
               chain_depth integer, relations text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH RECURSIVE waits AS (
    SELECT w.* FROM @extschema@.lock_waits w
     WHERE w.sampled_at > pg_catalog.now() - analysis_window AND w.waiting
), edges AS (
    SELECT w.sampled_at, b.blocker, w.pid AS waiter,
           COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS waited_on
      FROM waits w CROSS JOIN LATERAL pg_catalog.unnest(w.blocking_pids) AS b(blocker)
), heads AS (
    SELECT DISTINCT e.sampled_at, e.blocker AS head
      FROM edges e
     WHERE NOT EXISTS (SELECT FROM waits w WHERE w.sampled_at = e.sampled_at AND w.pid = e.blocker)
), chain AS (
    SELECT h.sampled_at, h.head, e.waiter, e.waited_on, 1 AS depth, ARRAY[h.head, e.waiter] AS path
      FROM heads h JOIN edges e ON e.sampled_at = h.sampled_at AND e.blocker = h.head
    UNION ALL
    SELECT c.sampled_at, c.head, e.waiter, e.waited_on, c.depth + 1, c.path || e.waiter
      FROM chain c JOIN edges e ON e.sampled_at = c.sampled_at AND e.blocker = c.waiter
     WHERE e.waiter <> ALL (c.path)
)
SELECT c.sampled_at, c.head, h.usename, h.application_name, h.state, h.query_id,
       pg_catalog.array_agg(DISTINCT c.waiter), pg_catalog.count(DISTINCT c.waiter)::integer,
       pg_catalog.max(c.depth), pg_catalog.array_agg(DISTINCT c.waited_on)
  FROM chain c
  -- the head as the sampler saw it (a client session; other heads, e.g. autovacuum, have no row)
  LEFT JOIN @extschema@.lock_waits h
         ON h.sampled_at = c.sampled_at AND h.pid = c.head AND NOT h.waiting
        AND h.sampled_at > pg_catalog.now() - analysis_window
 GROUP BY c.sampled_at, c.head, h.usename, h.application_name, h.state, h.query_id
 ORDER BY c.sampled_at, c.head
$$;

-- Computed by _compute_blocking_chains once per statement: lock_contention() and the report
-- both read it (src/api/memo.rs).
CREATE OR REPLACE FUNCTION @extschema@.blocking_chains(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (sampled_at timestamptz, head_pid integer, head_usename text, head_application_name text,
               head_state text, head_query_id bigint, blocked_pids integer[], blocked_count integer,
               chain_depth integer, relations text[])
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';
REVOKE ALL ON FUNCTION @extschema@._compute_blocking_chains(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._compute_blocking_chains(interval) TO dbanalytics_reader;

-------------------------------------------------------------------------------
-- Issue 16: collector_status finds each source's latest error through a partial index (it
-- walked every run of a source that never failed: about 35 ms a call, twice per report).
-------------------------------------------------------------------------------
INSERT INTO @extschema@.partition_indexes VALUES ('collector_runs', 'errors', '(source, started_at) WHERE status = ''error''');
DO $errors_index$
DECLARE
    part pg_catalog.text;
BEGIN
    FOR part IN SELECT c.relname::pg_catalog.text
                  FROM pg_catalog.pg_inherits h
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
                 WHERE h.inhparent OPERATOR(pg_catalog.=) '@extschema@.collector_runs'::pg_catalog.regclass
                 ORDER BY 1 LOOP
        PERFORM @extschema@._index_partition('collector_runs', part);
    END LOOP;
END
$errors_index$;

-------------------------------------------------------------------------------
-- Issue 16: _query_rewrites reads its threshold once (its args CTE was inlined, so
-- _threshold() ran for every statement and pattern: 15,000 calls on a week of 3,000
-- statements), skips SELECT * statements returning few rows, and looks for a cheap necessary
-- part of each pattern before the whole pattern.
-------------------------------------------------------------------------------
-- Statements written in a form with a known better one.
CREATE OR REPLACE FUNCTION @extschema@._query_rewrites(analysis_window interval, totals @extschema@.statement_total[])
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

-- _threshold: IMMUTABLE (the thresholds are constants of analytics_thresholds' definition), so
-- a call with a constant name is evaluated once when the statement is planned, not once per row.
-- Cached plans depend on the function, not on the view: an upgrade that changes a threshold
-- restates _threshold too (ALTER or CREATE OR REPLACE), which makes sessions plan again.
ALTER FUNCTION @extschema@._threshold(text) IMMUTABLE PARALLEL SAFE;

-- Issue 13: the health score counts the pool verdicts as _pool_judged makes them, inlined into
-- its query, instead of reading every verdict row of _pool_verdicts (health_score('7 days') on
-- 7 days of generated history: about 100 ms less); it reads the latest undersized minute's
-- verdicts again for its advice. _compute_pool_verdicts adds the lock hotspots' objects to
-- _pool_judged's verdicts (one definition of the verdict). Restated whole from
-- sql/analytics_connections.sql and sql/health.sql.
CREATE FUNCTION @extschema@._pool_judged(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE sql STABLE
AS $$
WITH args AS (
    SELECT pg_catalog.now() OPERATOR(pg_catalog.-) analysis_window AS since,
           pg_catalog.current_setting('max_connections')::integer
             OPERATOR(pg_catalog.-) pg_catalog.current_setting('superuser_reserved_connections')::integer AS usable,
           @extschema@._tick_seconds() AS tick_seconds,
           @extschema@._threshold('pool_limit_ratio')::double precision AS limit_ratio,
           @extschema@._threshold('pool_high_utilization')::double precision AS high_util,
           @extschema@._threshold('pool_low_utilization')::double precision AS low_util,
           @extschema@._threshold('pool_idle_surplus')::double precision AS idle_surplus,
           @extschema@._threshold('pool_idle_in_transaction_ratio')::double precision AS iit_ratio,
           @extschema@._threshold('pool_growth_buffer')::double precision AS grow,
           @extschema@._threshold('pool_shrink_buffer')::double precision AS shrink
), rolled AS (
    -- the minutes overlapping the window: rolled up, then from raw samples after the rollup
    SELECT COALESCE(@extschema@._rolled_until('rollup'), '-infinity') AS until
), pools AS (
    SELECT p.* FROM @extschema@.pool_minute p
     WHERE p.minute OPERATOR(pg_catalog.>) ((pg_catalog.now() OPERATOR(pg_catalog.-) analysis_window)
                                           OPERATOR(pg_catalog.-) interval '1 minute')
       AND p.minute OPERATOR(pg_catalog.<) (SELECT r.until FROM rolled r)
    UNION ALL
    SELECT p.* FROM rolled r, args a,
           @extschema@._pool_minutes(GREATEST(r.until, pg_catalog.date_trunc('minute', a.since)), 'infinity') p
), measured AS (
    SELECT p.minute, p.datname, p.usename, p.application_name,
           (p.active_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_active, p.max_active,
           (p.idle_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_idle,
           (p.idle_in_transaction_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_iit,
           (p.waiting_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_waiting,
           p.max_connections AS max_used,
           CASE WHEN (p.active_sum OPERATOR(pg_catalog.+) p.idle_sum) OPERATOR(pg_catalog.<>) 0
                THEN (p.active_sum::double precision
                      OPERATOR(pg_catalog./) (p.active_sum OPERATOR(pg_catalog.+) p.idle_sum)) END AS utilization,
           (p.cluster_peak OPERATOR(pg_catalog.>=) (a.limit_ratio OPERATOR(pg_catalog.*) a.usable)) AS near_limit,
           p.cluster_peak AS peak, a.*
      FROM pools p CROSS JOIN args a
), judged AS (
    SELECT m.*,
           CASE
               -- sessions wait on locks while the pool is saturated (nothing idle, or busier than
               -- high_util): more connections would only queue on the same locks
               WHEN m.avg_waiting OPERATOR(pg_catalog.>) 0
                    AND (m.avg_idle OPERATOR(pg_catalog.<) 1 OR m.utilization OPERATOR(pg_catalog.>) m.high_util)
                   THEN 'lock_hotspot'
               WHEN m.near_limit THEN 'near_connection_limit'
               WHEN m.avg_iit OPERATOR(pg_catalog.>=) 1
                    AND m.avg_iit OPERATOR(pg_catalog.>) (m.iit_ratio OPERATOR(pg_catalog.*) m.avg_active)
                   THEN 'idle_in_transaction'
               WHEN m.utilization OPERATOR(pg_catalog.<) m.low_util AND m.avg_idle OPERATOR(pg_catalog.>) m.idle_surplus
                   THEN 'oversized'
               WHEN m.utilization OPERATOR(pg_catalog.>) m.high_util THEN 'high_utilization'
               ELSE 'optimal'
           END AS status,
           -- the measured need: the peak of concurrently active sessions, with a buffer
           GREATEST(1, pg_catalog.ceil(m.max_active OPERATOR(pg_catalog.*) m.grow))::integer AS measured_need
      FROM measured m
)
SELECT j.minute, j.datname, j.usename, j.application_name,
       j.avg_active, j.max_active, j.avg_idle, j.avg_iit, j.avg_waiting, j.max_used, j.utilization,
       j.status,
       CASE
           -- never more connections than the pool has now when it waits on locks or the cluster is near its limit
           WHEN j.status OPERATOR(pg_catalog.=) 'lock_hotspot' THEN j.max_used
           WHEN j.status OPERATOR(pg_catalog.=) 'near_connection_limit' THEN LEAST(j.max_used, j.measured_need)
           WHEN j.status OPERATOR(pg_catalog.=) 'idle_in_transaction' THEN j.max_used
           WHEN j.status OPERATOR(pg_catalog.=) 'high_utilization' THEN j.measured_need
           WHEN j.status OPERATOR(pg_catalog.=) 'oversized'
               THEN GREATEST(1, pg_catalog.ceil(j.max_active OPERATOR(pg_catalog.*) j.shrink))::integer
           ELSE j.max_used
       END,
       NULL::pg_catalog.text, NULL::bigint, NULL::numeric, j.near_limit, j.peak, j.usable, j.tick_seconds, j.grow
  FROM judged j
$$;
REVOKE ALL ON FUNCTION @extschema@._pool_judged(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._pool_judged(interval) TO dbanalytics_reader;

CREATE OR REPLACE FUNCTION @extschema@._compute_pool_verdicts(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- the rows are gathered in a tuple store of work_mem, then handed to _pool_verdicts: a 30-day
-- window's (a row per pool and minute: about 210,000 rows, 36 MB) stay in memory instead of a
-- temporary file (the query's own sorts and hashes may use as much)
SET work_mem = '64MB'
AS $$
WITH lock_objects AS (
    -- what the sessions waited on, per minute and pool: one pass over the window's lock waits
    SELECT pg_catalog.date_trunc('minute', w.sampled_at) AS minute, w.datname, w.usename, w.application_name,
           COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS object,
           pg_catalog.count(*) AS samples
      FROM @extschema@.lock_waits w
     WHERE w.waiting AND w.sampled_at > pg_catalog.now() - analysis_window - interval '1 minute'
     GROUP BY 1, 2, 3, 4, 5
), lock_objects_all AS (
    SELECT o.minute, o.datname, o.usename, o.application_name, o.object, o.samples FROM lock_objects o
    UNION ALL
    -- the whole cluster's row ('(all clients)', no database and user): every pool's waits
    SELECT o.minute, NULL, NULL, '(all clients)', o.object, pg_catalog.sum(o.samples)::bigint
      FROM lock_objects o
     GROUP BY o.minute, o.object
), hotspots AS (
    -- the object most waited on, per minute and pool
    SELECT DISTINCT ON (o.minute, o.datname, o.usename, o.application_name)
           o.minute, o.datname, o.usename, o.application_name, o.object, o.samples,
           pg_catalog.sum(o.samples) OVER (PARTITION BY o.minute, o.datname, o.usename, o.application_name) AS total
      FROM lock_objects_all o
     ORDER BY o.minute, o.datname, o.usename, o.application_name, o.samples DESC, o.object
)
SELECT j.minute, j.datname, j.usename, j.application_name,
       j.avg_active, j.max_active, j.avg_idle, j.avg_idle_in_transaction, j.avg_waiting, j.max_connections_used,
       j.utilization, j.pool_status, j.recommended_pool_size,
       h.object, h.samples, h.total, j.near_limit, j.cluster_peak, j.usable_connections, j.tick_seconds, j.growth_buffer
  FROM @extschema@._pool_judged(analysis_window) j
  LEFT JOIN hotspots h
         ON j.pool_status = 'lock_hotspot' AND h.minute = j.minute
        AND (h.datname, h.usename, h.application_name) IS NOT DISTINCT FROM (j.datname, j.usename, j.application_name)
$$;

CREATE OR REPLACE FUNCTION @extschema@._health_measures(analysis_window interval)
RETURNS TABLE (component text, indicator text, value numeric, unit text, higher_is_worse boolean,
               warn numeric, bad numeric, weight numeric, measurable text, evidence text,
               source text, impact text, mitigation text, action text, effort text,
               bad_severity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::numeric AS window_seconds,
           @extschema@._slow_query_ms() AS slow_ms,
           pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE') AS sees_all_sessions,
           pg_catalog.current_setting('max_connections')::numeric
             - pg_catalog.current_setting('superuser_reserved_connections')::numeric AS usable_connections
), disk AS (
    -- the file system that fills first, by the 30-day fit (not the window: a fit needs days)
    SELECT GREATEST(EXTRACT(epoch FROM g.forecast_at - pg_catalog.now()) / 86400, 0)::numeric AS days_left,
           pg_catalog.format('the %s file system (%s used of %s) grows %s per day and is full around %s (fit r² %s)',
                             g.relname, pg_catalog.pg_size_pretty(g.size_bytes), pg_catalog.pg_size_pretty(g.capacity_bytes),
                             pg_catalog.pg_size_pretty(g.growth_bytes_per_day::bigint), g.forecast_at,
                             pg_catalog.round(g.fit_r2::numeric, 2)) AS evidence
      FROM @extschema@.space_growth(interval '30 days') g
     WHERE g.object_type = 'filesystem' AND g.forecast_at IS NOT NULL
     ORDER BY g.forecast_at LIMIT 1
), statements AS (
    SELECT pg_catalog.sum(t.calls) AS calls,
           pg_catalog.sum(t.calls) FILTER (WHERE t.total_exec_time > a.slow_ms * t.calls) AS slow_calls,
           pg_catalog.count(*) FILTER (WHERE t.total_exec_time > a.slow_ms * t.calls) AS slow_statements
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
     WHERE t.toplevel AND t.calls > 0
), latency AS (
    SELECT (@extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.99}'))[1] AS p99_ms,
           pg_catalog.sum(l.executions) AS executions
      FROM args a, @extschema@.database_latency l
     WHERE l.interval_end > a.since AND pg_catalog.cardinality(l.buckets) > 0
), databases AS (
    SELECT pg_catalog.sum(d.blks_hit) AS blks_hit, pg_catalog.sum(d.blks_read) AS blks_read,
           pg_catalog.sum(d.temp_files) AS temp_files, pg_catalog.sum(d.temp_bytes) AS temp_bytes,
           pg_catalog.sum(d.deadlocks) AS deadlocks, pg_catalog.sum(d.xact_commit) AS commits,
           pg_catalog.sum(d.xact_rollback) AS rollbacks,
           pg_catalog.sum(EXTRACT(epoch FROM d.interval_end - d.interval_start))
               / NULLIF(pg_catalog.count(DISTINCT d.datid), 0) AS covered_seconds
      FROM args a, @extschema@.database_stats d WHERE d.interval_end > a.since
), sessions AS (
    SELECT pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - s.xact_start)) AS longest_xact,
           pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - s.state_change))
               FILTER (WHERE s.state LIKE 'idle in transaction%') AS longest_idle_in_xact,
           (pg_catalog.array_agg(pg_catalog.format('pid %s (%s, %s) idle in transaction for %s s',
                s.pid, s.usename, s.application_name,
                pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() - s.state_change))) ORDER BY s.state_change)
               FILTER (WHERE s.state LIKE 'idle in transaction%'))[1] AS idle_session,
           (pg_catalog.array_agg(s.pid ORDER BY s.state_change) FILTER (WHERE s.state LIKE 'idle in transaction%'))[1] AS idle_pid,
           (pg_catalog.array_agg(s.pid ORDER BY s.xact_start) FILTER (WHERE s.xact_start IS NOT NULL))[1] AS oldest_pid
      FROM pg_catalog.pg_stat_activity s
     WHERE s.backend_type = 'client backend' AND s.pid <> pg_catalog.pg_backend_pid()
), replication AS (
    SELECT pg_catalog.count(*) AS standbys,
           pg_catalog.max(EXTRACT(epoch FROM COALESCE(r.replay_lag, interval '0'))) AS lag,
           pg_catalog.string_agg(pg_catalog.format('%s: replay lag %s', r.application_name, COALESCE(r.replay_lag, interval '0')), '; ') AS detail
      FROM pg_catalog.pg_stat_replication r
), lost_standbys AS (
    -- standbys the collector saw in the window that are not connected now (issue 17: a lag
    -- indicator must not turn not_applicable when its standby goes away): their lag is at
    -- least the time since they were last seen; and physical slots no standby uses
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots s
             WHERE s.slot_type = 'physical' AND NOT s.active) AS inactive_slots,
           (SELECT pg_catalog.string_agg(s.slot_name::text, ', ' ORDER BY s.slot_name) FROM pg_catalog.pg_replication_slots s
             WHERE s.slot_type = 'physical' AND NOT s.active) AS slot_names,
           pg_catalog.count(*) AS lost,
           pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - h.last_seen)) AS since_seen,
           pg_catalog.string_agg(pg_catalog.format('%s: disconnected, last seen %s', h.application_name, h.last_seen), '; '
                                 ORDER BY h.application_name) AS detail
      FROM args a, @extschema@._gone_standbys(a.since) h
), archiving AS (
    SELECT pg_catalog.current_setting('archive_mode') <> 'off' AS enabled,
           EXTRACT(epoch FROM pg_catalog.now() - a.last_archived_time) AS since_last_archive,
           a.failed_count, a.last_failed_time, a.last_archived_time,
           -- failing now: the last attempt failed (issue 17)
           a.last_failed_time IS NOT NULL AND a.last_failed_time > COALESCE(a.last_archived_time, '-infinity') AS failing,
           -- the .ready backlog (segments waiting to be archived), for roles allowed to list it
           @extschema@._archive_ready() AS ready
      FROM pg_catalog.pg_stat_archiver a
), pool_minutes AS (
    -- the minutes a pool change or an application fix would help: near the connection limit
    -- (a pooler) or connections held idle in transactions (a leak); lock hotspots are not a
    -- pool's fault and are judged by the lock indicators. The verdicts are counted as
    -- _pool_judged makes them, inlined (without the lock hotspots' objects, which these
    -- verdicts do not quote): a 7-day window's took about 100 ms as _pool_verdicts' rows
    SELECT pg_catalog.count(*) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction'))::numeric
               / NULLIF(pg_catalog.count(*), 0) AS undersized_share,
           pg_catalog.count(*) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction')) AS undersized_minutes,
           pg_catalog.max(v.minute) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction')) AS latest
      FROM @extschema@._pool_judged(analysis_window) v
), pools AS (
    -- the advice is the latest such minute's: of the pools of that minute (read again, that
    -- minute only), the whole cluster's row ('(all clients)', no database or user) when it is
    -- one of them, else the first by database, user and application: the same advice at
    -- every call
    SELECT m.undersized_share, m.undersized_minutes,
           @extschema@._pool_recommendation((SELECT l::@extschema@.pool_verdict
                                               FROM (SELECT * FROM @extschema@._pool_judged(analysis_window) l
                                                      WHERE l.minute = m.latest
                                                        AND l.pool_status IN ('near_connection_limit', 'idle_in_transaction')
                                                      ORDER BY l.datname NULLS FIRST, l.usename NULLS FIRST, l.application_name
                                                      LIMIT 1) l)) AS advice
      FROM pool_minutes m
), indexes AS (
    SELECT pg_catalog.sum(i.index_bytes) AS all_bytes,
           COALESCE(pg_catalog.sum(i.index_bytes) FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL), 0) AS unused_bytes,
           COALESCE(pg_catalog.sum(i.index_bytes) FILTER (WHERE i.index_status IN ('duplicate', 'redundant', 'bloated')), 0) AS bloat_bytes,
           pg_catalog.string_agg(i.recommendation, ' ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL) AS unused_ddl,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s, %s)', i.schemaname, i.indexname, i.index_status,
                                                   pg_catalog.pg_size_pretty(i.index_bytes)), ', ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL) AS unused_list,
           pg_catalog.string_agg(i.recommendation, ' ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status IN ('duplicate', 'redundant', 'bloated')) AS bloat_ddl
      FROM @extschema@.index_effectiveness(interval '7 days') i
), tables AS (
    SELECT pg_catalog.count(*) FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS needs_vacuum,
           pg_catalog.count(*) FILTER (WHERE 'needs_analyze' = ANY (t.issues)) AS needs_analyze,
           pg_catalog.count(*) FILTER (WHERE 'missing_index' = ANY (t.issues)) AS missing_index,
           pg_catalog.count(*) FILTER (WHERE 'wraparound_risk' = ANY (t.issues)) AS wraparound,
           pg_catalog.string_agg(pg_catalog.format('%I.%I: %s dead of %s tuples', t.schemaname, t.tablename,
                                                   t.n_dead_tup, t.n_live_tup + t.n_dead_tup), '; ')
               FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS vacuum_detail,
           pg_catalog.string_agg(pg_catalog.format('VACUUM (ANALYZE) %I.%I;', t.schemaname, t.tablename), ' ')
               FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS vacuum_ddl,
           pg_catalog.string_agg(pg_catalog.format('%I.%I', t.schemaname, t.tablename), ', ')
               FILTER (WHERE 'needs_analyze' = ANY (t.issues)) AS analyze_list,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s rows per sequential scan)', t.schemaname, t.tablename,
                                                   pg_catalog.round(t.rows_per_seq_scan)), ', ')
               FILTER (WHERE 'missing_index' = ANY (t.issues)) AS missing_list,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (age %s)', t.schemaname, t.tablename, t.xid_age), ', ')
               FILTER (WHERE 'wraparound_risk' = ANY (t.issues)) AS wraparound_list
      FROM @extschema@.table_maintenance t
), sequences AS (
    SELECT pg_catalog.count(*) FILTER (WHERE s.status = 'near_exhaustion') AS near,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s%% used%s)', s.schemaname, s.sequencename,
                                                   pg_catalog.round((100 * s.used_ratio)::numeric, 1),
                                                   ' of what ' || s.used_by || ' can hold'), ', ')
               FILTER (WHERE s.status = 'near_exhaustion') AS detail
      FROM @extschema@.sequence_usage s
), hba AS (
    SELECT * FROM @extschema@._weak_hba_rules()
), roles AS (
    SELECT pg_catalog.count(*) FILTER (WHERE r.rolsuper AND r.oid <> 10) AS extra_superusers,
           pg_catalog.string_agg(r.rolname, ', ') FILTER (WHERE r.rolsuper AND r.oid <> 10) AS superuser_names
      FROM pg_catalog.pg_roles r
), passwords AS (
    SELECT * FROM @extschema@._passwords_without_expiry()
), definers AS (
    SELECT pg_catalog.count(*) AS unpinned,
           pg_catalog.string_agg(pg_catalog.format('%s.%s(%s)', n.nspname, p.proname,
                                                   pg_catalog.pg_get_function_identity_arguments(p.oid)), ', ') AS names
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
)
SELECT * FROM (
-- performance ---------------------------------------------------------------------------------
SELECT 'performance', 'slow_query_ratio', st.slow_calls / NULLIF(st.calls, 0), 'ratio', true, 0.01, 0.10, 30::numeric,
       'yes',
       pg_catalog.format('%s of %s statement executions belong to %s statements whose mean time exceeds dbanalytics.slow_query_threshold (%s ms)',
                         COALESCE(st.slow_calls, 0), COALESCE(st.calls, 0), COALESCE(st.slow_statements, 0), a.slow_ms),
       'top_queries(window, ''mean_time'')',
       'slow statements hold connections and locks longer and delay everything queued behind them',
       'look at the plans of the slowest statements (explain_analysis) and index their filters',
       'SELECT * FROM dbanalytics.top_queries(''' || analysis_window || ''', ''mean_time'', 10);', 'medium', 'high'
  FROM args a, statements st
UNION ALL
SELECT 'performance', 'p99_latency_ms', l.p99_ms::numeric, 'ms', true, 100, 1000, 20,
       CASE WHEN l.executions IS NULL THEN 'not_applicable' ELSE 'yes' END,
       pg_catalog.format('p99 over %s recorded executions is %s ms', COALESCE(l.executions, 0), pg_catalog.round(l.p99_ms::numeric, 2)),
       'query_latency(window) / database_latency',
       'the slowest 1 % of executions is what users notice',
       'find the statements with the highest p99 and fix their plans',
       'SELECT * FROM dbanalytics.query_latency(''' || analysis_window || ''', 10);', 'medium', 'high'
  FROM latency l
UNION ALL
SELECT 'performance', 'cache_hit_ratio', d.blks_hit / NULLIF(d.blks_hit + d.blks_read, 0), 'ratio', false, 0.95, 0.90, 25,
       CASE WHEN d.blks_hit + d.blks_read > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s blocks found in shared buffers, %s read from outside', COALESCE(d.blks_hit, 0), COALESCE(d.blks_read, 0)),
       'database_stats / cache_analytics',
       'blocks read from the OS cache or disk cost far more than shared-buffer hits',
       'raise shared_buffers (about 25 % of RAM) or reduce what the worst statements in cache_analytics read',
       'SELECT * FROM dbanalytics.cache_analytics WHERE level = ''statement'';', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'performance', 'temp_files_per_hour', d.temp_files * 3600 / NULLIF(d.covered_seconds, 0), 'files/h', true, 10, 1000, 10,
       CASE WHEN d.covered_seconds > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s temporary files (%s) in the window', COALESCE(d.temp_files, 0), pg_catalog.pg_size_pretty(COALESCE(d.temp_bytes, 0)::bigint)),
       'database_stats.temp_files',
       'sorts and hashes that spill to disk are many times slower than in memory',
       'raise work_mem for the statements that spill (top_queries order_by temp_blks)',
       'SELECT * FROM dbanalytics.top_queries(''' || analysis_window || ''', ''temp_blks'', 10);', 'low', 'high'
  FROM databases d
UNION ALL
SELECT 'performance', 'longest_transaction_seconds', COALESCE(s.longest_xact, 0)::numeric, 's', true, 300, 3600, 15,
       CASE WHEN a.sees_all_sessions THEN 'yes' ELSE 'unknown' END,
       pg_catalog.format('the oldest open transaction (pid %s) started %s s ago', s.oldest_pid, pg_catalog.round(COALESCE(s.longest_xact, 0))),
       'long_running_transactions',
       'a long transaction holds back vacuum for the whole cluster and may hold locks',
       'find it in long_running_transactions and end it at its source',
       'SELECT * FROM dbanalytics.long_running_transactions;', 'low', 'high'
  FROM args a, sessions s
-- reliability ---------------------------------------------------------------------------------
UNION ALL
SELECT 'reliability', 'deadlock_frequency', d.deadlocks * 3600 / NULLIF(d.covered_seconds, 0), 'deadlocks/h', true, 0, 10, 20,
       CASE WHEN d.covered_seconds > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s deadlocks in the window', COALESCE(d.deadlocks, 0)),
       'database_stats.deadlocks / transaction_trends',
       'each deadlock aborts a transaction the application must retry',
       'make transactions take their locks in one order; the server log (log_lock_waits) names the statements',
       'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'reliability', 'rollback_ratio', d.rollbacks / NULLIF(d.commits + d.rollbacks, 0), 'ratio', true, 0.05, 0.20, 10,
       CASE WHEN d.commits + d.rollbacks > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s rollbacks against %s commits', COALESCE(d.rollbacks, 0), COALESCE(d.commits, 0)),
       'transaction_trends',
       'rolled-back work was done for nothing and often hides application errors',
       'find the failing statements in the server log (log_min_error_statement)',
       'SELECT * FROM dbanalytics.transaction_trends(''' || analysis_window || ''');', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'reliability', 'replication_lag',
       CASE WHEN r.standbys > 0 OR ls.lost > 0 OR ls.inactive_slots > 0
            THEN GREATEST(COALESCE(r.lag, 0), COALESCE(ls.since_seen, 0),
                          CASE WHEN ls.inactive_slots > 0 THEN 60 ELSE 0 END)::numeric END, 's', true, 5, 60, 20,
       CASE WHEN r.standbys = 0 AND ls.lost = 0 AND ls.inactive_slots = 0 THEN 'not_applicable'
            WHEN a.sees_all_sessions OR r.standbys = 0 THEN 'yes' ELSE 'unknown' END,
       COALESCE(NULLIF(pg_catalog.concat_ws('; ', r.detail, ls.detail,
                                            'inactive physical replication slot(s): ' || ls.slot_names || ' (no standby uses them)'), ''),
                'no standby connected'),
       'replication_analytics',
       'a lagging or disconnected standby serves stale reads (or none) and loses more on failover',
       CASE WHEN ls.lost > 0 OR ls.inactive_slots > 0
            THEN 'a standby is disconnected: check that it runs and reaches this server (its server log says why); drop the slot of a standby that is gone for good, or it keeps WAL until the disk fills'
            ELSE 'check the standby''s I/O and network; look at replication_analytics' END,
       'SELECT * FROM dbanalytics.replication_analytics;', 'medium', 'high'
  FROM args a, replication r, lost_standbys ls
UNION ALL
SELECT 'reliability', 'backup_recency',
       CASE WHEN NOT ar.enabled THEN NULL
            -- failing now: at least the bad threshold, however recent the last success
            WHEN ar.failing THEN GREATEST(COALESCE(ar.since_last_archive, 1e9), 86400)::numeric
            -- nothing waiting to be archived: up to date, however idle the server (issue 17)
            WHEN ar.ready = 0 THEN 0
            ELSE COALESCE(ar.since_last_archive, 1e9)::numeric END, 's', true, 3600, 86400, 15,
       CASE WHEN NOT ar.enabled THEN 'not_configured' ELSE 'yes' END,
       CASE WHEN NOT ar.enabled THEN 'archive_mode is off: no WAL archive, so no point-in-time recovery'
            ELSE pg_catalog.format('last WAL segment archived at %s; %s failures, last at %s%s; %s',
                                   ar.last_archived_time, ar.failed_count, ar.last_failed_time,
                                   CASE WHEN ar.failing THEN ' (the last attempt failed)' ELSE '' END,
                                   CASE WHEN ar.ready IS NULL THEN 'the .ready backlog is not visible to this role (pg_monitor)'
                                        ELSE ar.ready || ' segment(s) waiting to be archived' END) END,
       'pg_stat_archiver, pg_ls_archive_statusdir()',
       'without a recent archived WAL, a lost disk loses the data written since the last base backup; WAL not archived stays in pg_wal until the disk fills',
       CASE WHEN NOT ar.enabled
            THEN 'set archive_mode = on with an archive_command (or a backup tool such as pgBackRest) and watch pg_stat_archiver'
            WHEN ar.failing
            THEN 'archiving is on and failing: the server log has the archive command''s error (LOG: archive command failed); fix the command, its target or its permissions'
            ELSE 'archiving is on but behind: check that the archive command keeps up (pg_stat_archiver, the .ready files in pg_wal/archive_status)' END,
       CASE WHEN NOT ar.enabled
            THEN 'ALTER SYSTEM SET archive_mode = on;  -- plus archive_command or archive_library; needs a restart'
            ELSE 'SELECT * FROM pg_catalog.pg_stat_archiver;  -- then read the server log around last_failed_time' END,
       'medium', 'high'
  FROM archiving ar
UNION ALL
SELECT 'reliability', 'xid_age', (SELECT pg_catalog.max(pg_catalog.age(db.datfrozenxid))::numeric FROM pg_catalog.pg_database db),
       'transactions', true, 500000000, 1500000000, 25, 'yes',
       (SELECT pg_catalog.format('oldest unfrozen transaction ID: %s transactions old in database %s', pg_catalog.age(db.datfrozenxid), db.datname)
          FROM pg_catalog.pg_database db ORDER BY pg_catalog.age(db.datfrozenxid) DESC LIMIT 1),
       'pg_database.datfrozenxid',
       'at 2^31 transactions the server stops accepting writes to avoid wraparound',
       'let (auto)vacuum freeze the oldest tables: end long transactions and vacuum the tables in table_maintenance flagged wraparound_risk',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''wraparound_risk'' = ANY (issues);', 'high', 'critical'
UNION ALL
SELECT 'reliability', 'disk_full_days', (SELECT dk.days_left FROM disk dk), 'days', false, 30, 7, 10,
       CASE WHEN EXISTS (SELECT FROM disk) THEN 'yes' ELSE 'not_applicable' END,
       COALESCE((SELECT dk.evidence FROM disk dk),
                'no file system of the data directory or pg_wal is filling (space_growth over 30 days)'),
       'space_growth (file systems, 30 days)',
       'a full disk stops the server: writes fail, and a full pg_wal shuts it down',
       'free space or grow the file system before the forecast date; space_growth shows what grows',
       'SELECT * FROM dbanalytics.space_growth(''30 days'') ORDER BY growth_bytes_per_day DESC NULLS LAST LIMIT 20;',
       'medium', 'critical'
-- efficiency ----------------------------------------------------------------------------------
UNION ALL
SELECT 'efficiency', 'connection_pool_efficiency', p.undersized_share, 'ratio', true, 0.05, 0.5, 30,
       CASE WHEN p.undersized_share IS NULL THEN 'not_applicable' ELSE 'yes' END,
       pg_catalog.format('%s pool-minutes of the window were near the connection limit or held connections idle in transactions',
                         COALESCE(p.undersized_minutes, 0)),
       'connection_pool_analytics',
       'clients wait for connections, or the server runs out of them',
       COALESCE(p.advice, 'size pools from their measured peak of concurrently active sessions with a buffer'),
       'SELECT * FROM dbanalytics.connection_pool_analytics WHERE pool_status <> ''optimal'';', 'medium', 'high'
  FROM pools p
UNION ALL
SELECT 'efficiency', 'idle_in_transaction_seconds', COALESCE(s.longest_idle_in_xact, 0)::numeric, 's', true, 60, 600, 20,
       CASE WHEN a.sees_all_sessions THEN 'yes' ELSE 'unknown' END,
       COALESCE(s.idle_session, 'no session is idle in a transaction'),
       'long_running_transactions',
       'an idle transaction holds its locks and snapshot, blocking vacuum and other writers',
       'set idle_in_transaction_session_timeout and fix the client that leaves transactions open',
       CASE WHEN s.idle_pid IS NOT NULL
            THEN pg_catalog.format('SELECT pg_terminate_backend(%s);  -- or: ALTER SYSTEM SET idle_in_transaction_session_timeout = ''5min''', s.idle_pid)
            ELSE 'ALTER SYSTEM SET idle_in_transaction_session_timeout = ''5min''; SELECT pg_reload_conf();' END,
       'low', 'high'
  FROM args a, sessions s
UNION ALL
SELECT 'efficiency', 'unused_index_bytes', i.unused_bytes, 'bytes', true, 10485760, 1073741824, 20, 'yes',
       COALESCE('unused for 7 days: ' || i.unused_list, 'no unused index'),
       'index_effectiveness',
       'every write must also update the unused indexes, and they take cache and disk',
       'drop them (after checking they are not needed for rare jobs)',
       COALESCE(i.unused_ddl, '-- nothing to drop'), 'low', 'high'
  FROM indexes i
UNION ALL
SELECT 'efficiency', 'index_bloat', i.bloat_bytes / NULLIF(i.all_bytes, 0), 'ratio', true, 0.10, 0.50, 15,
       CASE WHEN i.all_bytes > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s of %s index bytes are in duplicate, redundant or bloated indexes',
                         pg_catalog.pg_size_pretty(i.bloat_bytes::bigint), pg_catalog.pg_size_pretty(COALESCE(i.all_bytes, 0)::bigint)),
       'index_effectiveness',
       'bloated and duplicate indexes waste cache and slow every write',
       'drop duplicates and redundant prefixes, reindex the bloated ones',
       COALESCE(i.bloat_ddl, '-- nothing to do'), 'low', 'high'
  FROM indexes i
UNION ALL
SELECT 'efficiency', 'missing_index_tables', t.missing_index::numeric, 'tables', true, 0, 5, 15, 'yes',
       COALESCE('sequential scans of many rows on ' || t.missing_list, 'no table is read mostly by large sequential scans'),
       'table_maintenance (issue missing_index)',
       'each query filters a whole table instead of reading a few rows through an index',
       'find the filters in top_queries and index them (index_advice)',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''missing_index'' = ANY (issues);', 'medium', 'high'
  FROM tables t
-- security ------------------------------------------------------------------------------------
UNION ALL
SELECT 'security', 'hba_weak_authentication', CASE WHEN h.readable THEN h.weak::numeric END, 'rules', true, 0, 1, 30,
       CASE WHEN h.readable THEN 'yes' ELSE 'unknown' END,
       CASE WHEN NOT h.readable THEN 'pg_hba_file_rules is not readable by this role'
            ELSE COALESCE('pg_hba.conf ' || h.lines, 'no trust or cleartext-password rule') END,
       'pg_hba_file_rules',
       'trust lets anyone who can connect log in as any role; password sends it in clear text',
       'replace trust and password with scram-sha-256 in pg_hba.conf, then reload',
       'edit pg_hba.conf (the lines in the evidence), then SELECT pg_reload_conf();', 'low', 'high'
  FROM hba h
UNION ALL
SELECT 'security', 'ssl_off', (pg_catalog.current_setting('ssl') = 'off')::integer::numeric, 'flag', true, 0, 1, 15, 'yes',
       'ssl = ' || pg_catalog.current_setting('ssl'),
       'pg_settings.ssl',
       'without TLS, passwords (other than SCRAM exchanges) and data cross the network in clear',
       'configure ssl_cert_file / ssl_key_file and set ssl = on',
       'ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf();  -- after installing a certificate', 'medium', 'medium'
UNION ALL
SELECT 'security', 'extra_superusers', ro.extra_superusers::numeric, 'roles', true, 0, 3, 15, 'yes',
       COALESCE('superusers besides the bootstrap role: ' || ro.superuser_names, 'only the bootstrap superuser'),
       'pg_roles.rolsuper',
       'every superuser can read and change everything, including the server''s files',
       'give these roles only the predefined roles and grants they need',
       COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format('ALTER ROLE %I NOSUPERUSER;', r.rolname), ' ')
                   FROM pg_catalog.pg_roles r WHERE r.rolsuper AND r.oid <> 10), '-- nothing to do'),
       'medium', 'high'
  FROM roles ro
UNION ALL
SELECT 'security', 'public_schema_create', pg_catalog.has_schema_privilege('public', 'public', 'CREATE')::integer::numeric, 'flag', true, 0, 1, 25, 'yes',
       CASE WHEN pg_catalog.has_schema_privilege('public', 'public', 'CREATE') THEN 'PUBLIC may CREATE in schema public'
            ELSE 'PUBLIC may not create in schema public' END,
       'has_schema_privilege(''public'', ''public'', ''CREATE'')',
       'any role can plant objects that shadow others'' functions (CVE-2018-1058)',
       'revoke CREATE on schema public from PUBLIC',
       'REVOKE CREATE ON SCHEMA public FROM PUBLIC;', 'low', 'high'
UNION ALL
SELECT 'security', 'security_definer_without_search_path', df.unpinned::numeric, 'functions', true, 0, 3, 15, 'yes',
       COALESCE('SECURITY DEFINER without SET search_path: ' || df.names, 'every SECURITY DEFINER function pins search_path'),
       'pg_proc.prosecdef / proconfig',
       'a caller can redirect unqualified names inside the function and run code with its owner''s rights',
       'pin search_path on each of them',
       'ALTER FUNCTION <function> SET search_path = pg_catalog, pg_temp;  -- for each function in the evidence', 'low', 'high'
  FROM definers df
UNION ALL
-- informational (weight 0, issue 17): nearly every cluster has such roles, and an expiry date
-- says little about how a password is kept; shown with its evidence, it costs no points
SELECT 'security', 'passwords_without_expiry', CASE WHEN pw.readable THEN pw.without_expiry::numeric END, 'roles', true, 0, 10, 0,
       CASE WHEN pw.readable THEN 'yes' ELSE 'unknown' END,
       CASE WHEN NOT pw.readable THEN 'pg_authid is not readable by this role'
            ELSE COALESCE('login roles with a password that never expires: ' || pw.names, 'none') END,
       'pg_authid.rolvaliduntil',
       'a leaked password stays valid forever',
       'set VALID UNTIL on password roles, or move them to certificate or SSO authentication',
       'ALTER ROLE <role> VALID UNTIL ''<date>'';  -- for each role in the evidence', 'low', 'medium'
  FROM passwords pw
-- maintenance ---------------------------------------------------------------------------------
UNION ALL
SELECT 'maintenance', 'dead_tuples', t.needs_vacuum::numeric, 'tables', true, 0, 5, 30, 'yes',
       COALESCE(t.vacuum_detail, 'no table has more than 20 % dead tuples'),
       'table_maintenance (issue needs_vacuum)',
       'dead tuples bloat tables and indexes and slow every scan',
       'vacuum them now, and make autovacuum more aggressive on them (autovacuum_vacuum_scale_factor)',
       COALESCE(t.vacuum_ddl, '-- nothing to vacuum'), 'low', 'high'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'wraparound_tables', t.wraparound::numeric, 'tables', true, 0, 1, 20, 'yes',
       COALESCE('tables past half of the wraparound horizon: ' || t.wraparound_list, 'no table near wraparound'),
       'table_maintenance (issue wraparound_risk)',
       'at 2^31 transactions the server stops accepting writes',
       'VACUUM (FREEZE) these tables and end long transactions',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''wraparound_risk'' = ANY (issues);', 'high', 'critical'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'stale_statistics', t.needs_analyze::numeric, 'tables', true, 0, 10, 15, 'yes',
       COALESCE('changed a lot since the last ANALYZE: ' || t.analyze_list, 'statistics are fresh'),
       'table_maintenance (issue needs_analyze)',
       'the planner plans from old row counts and distributions',
       'ANALYZE them; lower autovacuum_analyze_scale_factor on large tables',
       COALESCE('ANALYZE ' || t.analyze_list || ';', '-- nothing to analyze'), 'low', 'medium'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'autovacuum_off', (pg_catalog.current_setting('autovacuum') = 'off')::integer::numeric, 'flag', true, 0, 1, 15, 'yes',
       'autovacuum = ' || pg_catalog.current_setting('autovacuum'),
       'pg_settings.autovacuum',
       'without autovacuum, dead tuples pile up and wraparound comes closer',
       'turn autovacuum back on',
       'ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();', 'low', 'critical'
UNION ALL
SELECT 'maintenance', 'sequences_near_exhaustion', sq.near::numeric, 'sequences', true, 0, 1, 20, 'yes',
       COALESCE('over 75 % used: ' || sq.detail, 'no sequence is close to its limit'),
       'sequence_usage',
       'when a sequence runs out, every insert that needs it fails',
       'widen the column (ALTER TABLE ... ALTER COLUMN ... TYPE bigint) and the sequence (ALTER SEQUENCE ... AS bigint) before it runs out',
       'SELECT * FROM dbanalytics.sequence_usage WHERE status <> ''ok'';', 'medium', 'high'
  FROM sequences sq
) indicators
$$;

-------------------------------------------------------------------------------
-- KEEP THIS SECTION LAST in every upgrade script: no JIT in any function that pins its settings
-- (sql/finalize.sql says why); it also covers the functions replaced above.
-------------------------------------------------------------------------------
DO $jit_off$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d
            ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
          JOIN pg_catalog.pg_extension e
            ON e.oid OPERATOR(pg_catalog.=) d.refobjid AND e.extname OPERATOR(pg_catalog.=) 'dbanalytics'
         WHERE p.proconfig IS NOT NULL
           AND NOT p.proconfig OPERATOR(pg_catalog.@>) ARRAY['jit=off']
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET jit = off', f);
    END LOOP;
END
$jit_off$;
