-- dbanalytics: views, privileges and the set-up notice. Runs after every function exists.

-- Privileges: nothing for PUBLIC; readers read history and run the analytics (as themselves:
-- live views show them only what pg_stat_activity shows them); admins also collect on demand.
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO dbanalytics_reader;
-- raw query texts only through statement_texts; collector state only for admins
REVOKE SELECT ON @extschema@.statements, @extschema@.plans, @extschema@.source_state, @extschema@.server_life,
    @extschema@.statement_counters, @extschema@.database_counters, @extschema@.table_counters,
    @extschema@.bgwriter_counters, @extschema@.io_counters
    FROM dbanalytics_reader;
GRANT SELECT ON @extschema@.source_state TO dbanalytics_admin;
GRANT INSERT, UPDATE, DELETE ON @extschema@.alert_rules TO dbanalytics_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA @extschema@ TO dbanalytics_reader;
-- collection writes: only through take_sample() / take_snapshot(), for admins
REVOKE EXECUTE ON FUNCTION @extschema@.take_sample(), @extschema@.take_snapshot(),
    @extschema@._sample_activity(boolean), @extschema@._prune_activity_keys(), @extschema@._server_life(),
    @extschema@._snapshot_statements(text, timestamptz, boolean, boolean),
    @extschema@._snapshot_databases(timestamptz, boolean, boolean),
    @extschema@._snapshot_tables(timestamptz, boolean, boolean),
    @extschema@._snapshot_indexes(timestamptz, boolean, boolean),
    @extschema@._snapshot_bgwriter(timestamptz, boolean, boolean),
    @extschema@._snapshot_io(timestamptz, boolean, boolean),
    @extschema@._snapshot_replication(timestamptz),
    @extschema@._snapshot_replication_slots(timestamptz),
    @extschema@._snapshot_server(), @extschema@._server_now(),
    @extschema@._snapshot_source(text, boolean, boolean, text, text, bigint, text),
    @extschema@._remember_epoch(text, text, text, bigint),
    @extschema@._rollup_size_days(timestamptz, timestamptz),
    @extschema@._rollup_minutes(), @extschema@._rollup_waits(timestamptz, timestamptz),
    @extschema@._rollup_hours(),
    @extschema@._rollup_latency(text, timestamptz, timestamptz),
    @extschema@._rollup_statements(text, timestamptz, timestamptz),
    @extschema@._pack_minutes(),
    @extschema@._store_plans(bigint[], bigint[], bigint[], bigint[], boolean[], double precision[],
                             double precision[], text[], boolean[], text[]),
    @extschema@._rollup_table_hours(timestamptz, timestamptz),
    @extschema@._rollup_index_hours(timestamptz, timestamptz),
    @extschema@._record_health(interval), @extschema@._evaluate_alerts(),
    @extschema@._index_partition(text, text), @extschema@._add_statement_counter_columns(),
    @extschema@._statements_now(text), @extschema@._statements_epoch(text),
    @extschema@._bgwriter_now(), @extschema@._bgwriter_epoch(),
    @extschema@._io_now(), @extschema@._io_epoch(), @extschema@._source_unavailable(text)
    FROM dbanalytics_reader;
GRANT EXECUTE ON FUNCTION @extschema@.take_sample(), @extschema@.take_snapshot() TO dbanalytics_admin;

-- No JIT compilation in any function that pins its settings (all but the inlined helpers): the
-- analytics' plans over many partitions carry large estimated costs, so PostgreSQL compiled them
-- with LLVM (jit_above_cost), which took seconds for queries that run in tens of milliseconds
-- (query_analysis('1 day') on 30 days of history: 3.2 s with JIT, 0.34 s without). Applied here
-- to every such function, and restated at the end of every upgrade script.
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

-- A WARNING, not a NOTICE: CREATE EXTENSION runs this script with client_min_messages
-- raised to WARNING, so a NOTICE would never reach the user.
DO $notice$
BEGIN
    IF NOT @extschema@.collection_preloaded() THEN
        RAISE WARNING 'dbanalytics: background collection is off because the library is not preloaded'
            USING HINT = 'Add dbanalytics (and pg_stat_statements) to shared_preload_libraries, set '
                         'dbanalytics.database to this database and restart; meanwhile schedule '
                         'dbanalytics.take_sample() and dbanalytics.take_snapshot() yourself.';
    ELSIF pg_catalog.current_setting('dbanalytics.database') <> pg_catalog.current_database() THEN
        RAISE WARNING 'dbanalytics: the background workers collect in database "%", not here',
            pg_catalog.current_setting('dbanalytics.database')
            USING HINT = pg_catalog.format('Set dbanalytics.database = %L and restart the server.',
                                           pg_catalog.current_database());
    END IF;
END
$notice$;
