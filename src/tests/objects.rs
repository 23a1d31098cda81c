// In-server tests (src/tests.rs includes this file into its module `tests`): Index, table, sequence and cache verdicts; every analytic on an empty history.

/// Status and recommendation of every index on `table`, as `name:status:recommendation-start`.
fn index_verdicts(table: &str) -> String {
    one::<String>(&format!(
        "SELECT string_agg(indexname || ':' || index_status || ':' || split_part(recommendation, ' ', 1),
                           ' ' ORDER BY indexname)
           FROM dbanalytics.index_effectiveness('7 days') WHERE tablename = '{table}'"
    ))
    .unwrap_or_default()
}

#[pg_test]
fn index_verdicts_on_indexes_built_on_purpose() {
    collection_test();
    run("CREATE TABLE ix (id int PRIMARY KEY, a int, b int, c text, d int)");
    run("INSERT INTO ix SELECT g, g % 100, g % 7, md5(g::text), g FROM generate_series(1, 5000) g");
    run("CREATE INDEX ix_a ON ix (a)");
    run("CREATE INDEX ix_a_again ON ix (a)");
    run("CREATE INDEX ix_a_b ON ix (a, b)");
    run("CREATE INDEX ix_c ON ix (c)");
    run("CREATE INDEX ix_d ON ix (d)");
    run("CREATE UNIQUE INDEX ix_c_unique ON ix (b, c, id)");
    run("ANALYZE ix");
    assert_eq!(snapshot_problems(), "");

    // just created: never scanned, but not watched long enough to call anything unused
    assert_eq!(
        index_verdicts("ix"),
        "ix_a:redundant:DROP ix_a_again:duplicate:DROP ix_a_b:insufficient_history:not \
         ix_c:insufficient_history:not ix_c_unique:insufficient_history:not \
         ix_d:insufficient_history:not ix_pkey:insufficient_history:not"
    );

    // the collector has watched these indexes for 8 days; ix_d was scanned 5000 times in
    // that window before a statistics reset left its live counter at 0
    run("UPDATE dbanalytics.index_counters SET first_seen = now() - interval '8 days'");
    partitions_back(&["index_stats"], 1);
    run("INSERT INTO dbanalytics.index_stats
         SELECT now() - interval '2 hours', now() - interval '1 hour', current_database(),
                'ix_d'::regclass, 'ix'::regclass, 'public', 'ix', 'ix_d', false,
                5000, 5000, 5000, 0, 100, 8192");
    assert_eq!(
        index_verdicts("ix"),
        "ix_a:redundant:DROP ix_a_again:duplicate:DROP ix_a_b:unused:DROP \
         ix_c:unused:DROP ix_c_unique:unused:keep: \
         ix_d:effective:keep ix_pkey:unused:keep:"
    );
    // the primary key and the unique index say why they stay, and give no DDL
    assert_eq!(
        one::<String>(
            "SELECT recommendation FROM dbanalytics.index_effectiveness('7 days') WHERE indexname = 'ix_pkey'"
        )
        .as_deref(),
        Some("keep: it backs primary key constraint ix_pkey")
    );
    assert_eq!(
        one::<String>(
            "SELECT recommendation FROM dbanalytics.index_effectiveness('7 days') WHERE indexname = 'ix_c'"
        )
        .as_deref(),
        Some("DROP INDEX CONCURRENTLY public.ix_c;")
    );
    assert_eq!(
        one::<i64>(
            "SELECT scans_in_window FROM dbanalytics.index_effectiveness('7 days') WHERE indexname = 'ix_d'"
        ),
        Some(5000)
    );
}

/// Issue 17: index bloat is estimated from the statistics (the btree estimate), not guessed
/// from the index's size against its table's. 90 % of the rows deleted (and analyzed): the
/// index keeps its pages (no VACUUM can run inside this test, and VACUUM would keep most of
/// them too), so about 90 % of it is free space.
#[pg_test]
fn an_index_emptied_by_deletes_is_bloated_by_the_statistics_estimate() {
    collection_test();
    run("CREATE TABLE bl (id int PRIMARY KEY, v int)");
    run("INSERT INTO bl SELECT g, g FROM generate_series(1, 1000000) g");
    run("CREATE INDEX bl_v ON bl (v)");
    run("ANALYZE bl");
    let ratio = || {
        one::<f64>("SELECT bloat_ratio FROM dbanalytics._btree_bloat(ARRAY['bl_v'::regclass]::oid[]) WHERE indexrelid = 'bl_v'::regclass")
            .unwrap_or(-1.0)
    };
    let fresh = ratio();
    assert!(
        (0.0..0.1).contains(&fresh),
        "a freshly built index: {fresh}"
    );
    // only the indexes asked for: bl_pkey is estimable too
    assert_eq!(
        one::<String>(
            "SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY indexrelid::regclass::text)
               FROM dbanalytics._btree_bloat(ARRAY['bl_v'::regclass, 'bl_pkey'::regclass]::oid[])"
        ),
        Some("bl_pkey,bl_v".into())
    );
    assert_eq!(
        one::<String>(
            "SELECT string_agg(indexrelid::regclass::text, ',')
               FROM dbanalytics._btree_bloat(ARRAY['bl_v'::regclass]::oid[])"
        ),
        Some("bl_v".into())
    );
    run("DELETE FROM bl WHERE id > 100000");
    run("ANALYZE bl");
    let emptied = ratio();
    assert!(
        (0.85..0.95).contains(&emptied),
        "90 % of its rows deleted: {emptied}"
    );
    // scanned enough in the window that nothing else is said of it
    assert_eq!(snapshot_problems(), "");
    run("UPDATE dbanalytics.index_counters SET first_seen = now() - interval '8 days'");
    partitions_back(&["index_stats"], 1);
    run("INSERT INTO dbanalytics.index_stats
         SELECT now() - interval '2 hours', now() - interval '1 hour', current_database(),
                'bl_v'::regclass, 'bl'::regclass, 'public', 'bl', 'bl_v', false,
                5000, 5000, 5000, 0, 100, 8192");
    assert_eq!(
        one::<String>(
            "SELECT index_status || ': ' || recommendation FROM dbanalytics.index_effectiveness('7 days')
              WHERE indexname = 'bl_v'"
        )
        .as_deref(),
        Some(format!(
            "bloated: REINDEX INDEX CONCURRENTLY public.bl_v;  -- an estimated {}% of it is free space",
            (100.0 * emptied).round()
        ))
        .as_deref()
    );
    assert!(
        one::<String>("SELECT evidence FROM dbanalytics.index_effectiveness('7 days') WHERE indexname = 'bl_v'")
            .unwrap_or_default()
            .contains("where its 100000 rows (pg_class.reltuples) would fill about"),
    );
}

/// Issue 17: an index backing a foreign key stays, and says why; a foreign key without an
/// index and a NOT VALID constraint are reported with their DDL.
#[pg_test]
fn foreign_key_indexes_and_constraints_built_on_purpose() {
    collection_test();
    run("CREATE TABLE fk_parent (id int PRIMARY KEY, a int, b int, UNIQUE (a, b))");
    run("CREATE TABLE fk_child (id int PRIMARY KEY, parent_id int REFERENCES fk_parent, a int, b int,
                                other int, loose int REFERENCES fk_parent,
                                FOREIGN KEY (a, b) REFERENCES fk_parent (a, b))");
    run("INSERT INTO fk_parent SELECT g, g, g FROM generate_series(1, 100) g");
    run("INSERT INTO fk_child SELECT g, g % 100 + 1, g % 100 + 1, g % 100 + 1, g, NULL FROM generate_series(1, 2000) g");
    run("CREATE INDEX fk_child_parent ON fk_child (parent_id)");
    // the foreign key's columns in another order, then one more: it still backs (a, b)
    run("CREATE INDEX fk_child_ba ON fk_child (b, a, other)");
    run("CREATE INDEX fk_child_other ON fk_child (other)");
    run("ALTER TABLE fk_child ADD CONSTRAINT fk_child_other_positive CHECK (other > 0) NOT VALID");
    run("ANALYZE fk_child");
    assert_eq!(snapshot_problems(), "");
    // watched for 8 days; the foreign-key index was scanned 10 times (rarely used)
    run("UPDATE dbanalytics.index_counters SET first_seen = now() - interval '8 days'");
    partitions_back(&["index_stats"], 1);
    run("INSERT INTO dbanalytics.index_stats
         SELECT now() - interval '2 hours', now() - interval '1 hour', current_database(),
                'fk_child_parent'::regclass, 'fk_child'::regclass, 'public', 'fk_child', 'fk_child_parent', false,
                10, 10, 10, 0, 100, 8192");
    assert_eq!(
        index_verdicts("fk_child"),
        "fk_child_ba:unused:keep: fk_child_other:unused:DROP fk_child_parent:rarely_used:keep: \
         fk_child_pkey:unused:keep:"
    );
    assert_eq!(
        one::<String>(
            "SELECT recommendation FROM dbanalytics.index_effectiveness('7 days') WHERE indexname = 'fk_child_parent'"
        )
        .as_deref(),
        Some(
            "keep: it backs foreign key fk_child_parent_id_fkey: without it every DELETE or key UPDATE \
             on public.fk_parent scans public.fk_child"
        )
    );
    // usage on standbys is invisible here, and the evidence says so
    assert_eq!(
        one::<bool>(
            "SELECT evidence LIKE '%scans on standbys are not counted%'
               FROM dbanalytics.index_effectiveness('7 days') WHERE indexname = 'fk_child_other'"
        ),
        Some(true)
    );
    assert_eq!(
        one::<String>(
            "SELECT string_agg(constraint_name || ':' || issue || ':' || recommendation, ' | ' ORDER BY constraint_name)
               FROM dbanalytics.constraint_checks WHERE tablename = 'fk_child'"
        )
        .as_deref(),
        Some(
            "fk_child_loose_fkey:foreign_key_without_index:CREATE INDEX CONCURRENTLY ON public.fk_child (loose); | \
             fk_child_other_positive:not_valid:ALTER TABLE public.fk_child VALIDATE CONSTRAINT fk_child_other_positive;  \
             -- takes only a SHARE UPDATE EXCLUSIVE lock"
        )
    );
}

/// Issue 17: missing_index is judged from the last hour's scans, so it clears once an index
/// serves them instead of lasting until the next statistics reset.
#[pg_test]
fn missing_index_clears_once_an_index_serves_the_scans() {
    collection_test();
    partitions_back(&["table_stats"], 1);
    run("CREATE TABLE mi (id int, v int)");
    assert_eq!(snapshot_problems(), "");
    // 10 sequential scans of 50000 rows each, 50 minutes ago
    let scans = |end: &str, seq: i64, rows: i64, idx: i64| {
        run(&format!(
            "INSERT INTO dbanalytics.table_stats (interval_start, interval_end, datname, relid, schemaname, relname,
                 reset, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, n_tup_upd, n_tup_del,
                 n_tup_hot_upd, vacuum_count, autovacuum_count, analyze_count, autoanalyze_count,
                 heap_blks_read, heap_blks_hit)
             VALUES (now() - interval '{end}' - interval '10 minutes', now() - interval '{end}', current_database(),
                     'mi'::regclass, 'public', 'mi', false, {seq}, {rows}, {idx}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
        ))
    };
    scans("50 minutes", 10, 500000, 0);
    let verdict = || {
        one::<String>(
            "SELECT issues::text || ' ' || seq_scans_in_window || ' ' || idx_scans_in_window || ' ' || recommendation
               FROM dbanalytics.table_maintenance WHERE tablename = 'mi'",
        )
        .unwrap_or_default()
    };
    assert_eq!(
        verdict(),
        "{missing_index} 10 0 Sequential scans read 50000 rows each (10 scans in the last 01:00:00): \
         find the filter in top_queries() and index it."
    );
    // an index was created: those scans are now more than an hour old, and index scans
    // serve the lookups since
    run("UPDATE dbanalytics.table_stats SET interval_start = interval_start - interval '1 hour',
                interval_end = interval_end - interval '1 hour' WHERE relid = 'mi'::regclass");
    scans("20 minutes", 0, 0, 200);
    assert_eq!(verdict(), "{} 0 200 ");
}

/// Issue 17: a cache hit ratio of 0.99 is ok, 0.95 to 0.99 a mild warning (at most a fifth
/// of the weight), below 0.95 the usual rule.
#[pg_test]
fn cache_hit_ratio_between_95_and_99_percent_is_a_mild_warning() {
    collection_test();
    partitions_back(&["database_stats"], 1);
    run("INSERT INTO dbanalytics.database_stats
         SELECT * FROM jsonb_populate_record(NULL::dbanalytics.database_stats,
             (SELECT jsonb_object_agg(attname, 0) FROM pg_attribute
               WHERE attrelid = 'dbanalytics.database_stats'::regclass AND attnum > 0 AND NOT attisdropped
                 AND atttypid IN ('int4'::regtype, 'int8'::regtype, 'float8'::regtype, 'numeric'::regtype))
             || jsonb_build_object('interval_start', now() - interval '20 minutes', 'interval_end', now() - interval '10 minutes',
                                   'datid', 1, 'datname', 'e17', 'reset', false, 'blks_hit', 970000, 'blks_read', 30000))");
    let cache = || {
        one::<String>(
            "SELECT status || ':' || points_lost FROM dbanalytics.health_score_details('1 hour')
              WHERE indicator = 'cache_hit_ratio'",
        )
        .unwrap_or_default()
    };
    assert_eq!(cache(), "warn:2.5000");
    run("UPDATE dbanalytics.database_stats SET blks_hit = 995000, blks_read = 5000 WHERE datname = 'e17'");
    assert_eq!(cache(), "ok:0.0000");
    run("UPDATE dbanalytics.database_stats SET blks_hit = 930000, blks_read = 70000 WHERE datname = 'e17'");
    assert_eq!(cache(), "warn:17.5000");
}

/// Issue 17: a sequence is measured against the column it feeds (an integer column on a
/// bigint sequence runs out at 2^31 - 1).
#[pg_test]
fn sequence_on_an_integer_column_is_measured_against_the_column() {
    run("CREATE TABLE seq_narrow (id integer)");
    run("CREATE SEQUENCE seq_narrow_id AS bigint OWNED BY seq_narrow.id");
    run("ALTER TABLE seq_narrow ALTER id SET DEFAULT nextval('seq_narrow_id')");
    run("SELECT setval('seq_narrow_id', 2000000000)");
    run("CREATE TABLE seq_wide (id bigint)");
    run("CREATE SEQUENCE seq_wide_id AS bigint OWNED BY seq_wide.id");
    run("ALTER TABLE seq_wide ALTER id SET DEFAULT nextval('seq_wide_id')");
    run("SELECT setval('seq_wide_id', 2000000000)");
    assert_eq!(
        one::<String>(
            "SELECT string_agg(sequencename || ':' || status || ':' || column_limit || ':' || used_by, ' ' ORDER BY sequencename)
               FROM dbanalytics.sequence_usage WHERE sequencename LIKE 'seq\\_%'"
        )
        .as_deref(),
        Some(
            "seq_narrow_id:near_exhaustion:2147483647:seq_narrow.id (integer) \
             seq_wide_id:ok:9223372036854775807:seq_wide.id (bigint)"
        )
    );
}

#[pg_test]
fn every_analytic_answers_on_an_empty_history() {
    collection_test();
    for sql in [
        "SELECT count(*) FROM dbanalytics.database_performance_metrics",
        "SELECT count(*) FROM dbanalytics.top_queries()",
        "SELECT count(*) FROM dbanalytics.connection_pool_analytics",
        "SELECT count(*) FROM dbanalytics.index_effectiveness",
        "SELECT count(*) FROM dbanalytics.table_maintenance",
        "SELECT count(*) FROM dbanalytics.sequence_usage",
        "SELECT count(*) FROM dbanalytics.long_running_transactions",
        "SELECT count(*) FROM dbanalytics.lock_contention",
        "SELECT count(*) FROM dbanalytics.blocking_chains()",
        "SELECT count(*) FROM dbanalytics.transaction_trends()",
        "SELECT count(*) FROM dbanalytics.cache_analytics",
    ] {
        assert!(one::<i64>(sql).is_some(), "{sql}");
    }
    // no replicas: one summary row saying so, not an error
    assert_eq!(
        one::<String>("SELECT kind || ':' || name || ':' || detail FROM dbanalytics.replication_analytics")
            .as_deref(),
        Some("summary:primary:0 standby(s) connected, 0 replication slot(s)")
    );
    assert_eq!(
        one::<String>("SELECT string_agg(key, ',' ORDER BY key) FROM jsonb_object_keys(dbanalytics.query_analysis()) key")
            .as_deref(),
        Some("computed_at,expensive_queries,frequent_queries,optimization_opportunities,query_rewrites,slow_queries,thresholds,window")
    );
}

#[pg_test]
fn sequences_near_exhaustion_are_flagged() {
    run("CREATE SEQUENCE nearly_done AS smallint MAXVALUE 100");
    run("SELECT setval('nearly_done', 90)");
    run("CREATE SEQUENCE fresh");
    assert_eq!(
        one::<String>(
            "SELECT string_agg(sequencename || ':' || status, ' ' ORDER BY sequencename)
               FROM dbanalytics.sequence_usage WHERE sequencename IN ('nearly_done', 'fresh')"
        )
        .as_deref(),
        Some("fresh:ok nearly_done:near_exhaustion")
    );
}
