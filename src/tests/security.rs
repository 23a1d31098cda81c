// In-server tests (src/tests.rs includes this file into its module `tests`): Privileges and settings.

#[pg_test]
fn nothing_is_granted_to_public_and_definers_pin_search_path() {
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.relnamespace = 'dbanalytics'::regnamespace AND a.grantee = 0"
        ),
        Some(0)
    );
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.pronamespace = 'dbanalytics'::regnamespace AND a.grantee = 0"
        ),
        Some(0)
    );
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM pg_proc p
              WHERE p.pronamespace = 'dbanalytics'::regnamespace AND p.prosecdef
                AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']"
        ),
        Some(0)
    );
    assert_eq!(
        one::<String>(
            "SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p
              WHERE p.pronamespace = 'dbanalytics'::regnamespace AND p.prosecdef"
        ),
        Some("_rolled_until,_worker_processes,take_sample,take_snapshot".to_string())
    );
    // every function that pins its search_path also turns JIT off (sql/finalize.sql)
    assert_eq!(
        one::<String>(
            "SELECT coalesce(string_agg(p.proname, ','), '') FROM pg_proc p
              WHERE p.pronamespace = 'dbanalytics'::regnamespace AND p.proconfig IS NOT NULL
                AND NOT p.proconfig @> ARRAY['jit=off', 'search_path=pg_catalog, pg_temp']"
        )
        .as_deref(),
        Some("")
    );
}

#[pg_test]
fn settings_declare_units_and_bounds() {
    assert_eq!(
        one::<String>(
            "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ',' ORDER BY name)
               FROM pg_settings WHERE name LIKE 'dbanalytics.%'"
        )
        .as_deref(),
        Some(
            "dbanalytics.advice_planning_timeout=1000ms,\
             dbanalytics.database=pgrx_tests,dbanalytics.enabled=off,dbanalytics.health_interval=300s,\
             dbanalytics.histograms=on,\
             dbanalytics.histograms_nested=off,dbanalytics.max_histogram_queries=5000,\
             dbanalytics.plan_capture_analyze=off,dbanalytics.plan_capture_max_per_interval=100,\
             dbanalytics.plan_capture_new_shapes=on,dbanalytics.plan_capture_threshold=500ms,\
             dbanalytics.plan_shape_sample_rate=0.02,dbanalytics.resource_usage=on,dbanalytics.retention_days=525600min,dbanalytics.retention_hours=43200min,\
             dbanalytics.retention_minutes=1440min,dbanalytics.retention_raw=1440min,\
             dbanalytics.sample_interval=1000ms,dbanalytics.slow_query_threshold=500ms,\
             dbanalytics.snapshot_interval=60s,\
             dbanalytics.track_idle_in_transaction=on"
        )
    );
    assert_eq!(
        one::<String>(
            "SELECT string_agg(name || ':' || min_val || '..' || max_val, ',' ORDER BY name)
               FROM pg_settings WHERE name LIKE 'dbanalytics.%' AND vartype = 'integer'"
        )
        .as_deref(),
        Some(
            "dbanalytics.advice_planning_timeout:0..3600000,\
             dbanalytics.health_interval:5..86400,dbanalytics.max_histogram_queries:100..100000,\
             dbanalytics.plan_capture_max_per_interval:0..10000,dbanalytics.plan_capture_threshold:0..3600000,\
             dbanalytics.retention_days:1440..5270400,dbanalytics.retention_hours:1440..5270400,\
             dbanalytics.retention_minutes:1440..5270400,dbanalytics.retention_raw:60..527040,\
             dbanalytics.sample_interval:100..3600000,dbanalytics.slow_query_threshold:1..3600000,\
             dbanalytics.snapshot_interval:5..86400"
        )
    );
}

#[pg_test]
fn health_score_for_a_reader_says_unknown_instead_of_failing() {
    collection_test();
    assert_eq!(snapshot_problems(), "");
    run("CREATE ROLE health_reader IN ROLE dbanalytics_reader");
    run("SET LOCAL ROLE health_reader");
    assert_eq!(
        one::<String>(
            "SELECT string_agg(indicator || ':' || status, ' ' ORDER BY indicator)
               FROM dbanalytics.health_score_details('1 hour')
              WHERE indicator IN ('hba_weak_authentication', 'passwords_without_expiry', 'idle_in_transaction_seconds')"
        )
        .as_deref(),
        Some("hba_weak_authentication:unknown idle_in_transaction_seconds:unknown passwords_without_expiry:unknown")
    );
    // unknown is never healthy: each such indicator withholds half its weight
    assert_eq!(
        one::<String>(
            "SELECT string_agg(DISTINCT (points_lost = weight / 2)::text, ',') FROM dbanalytics.health_score_details('1 hour')
              WHERE status = 'unknown'"
        )
        .as_deref(),
        Some("true")
    );
    run("RESET ROLE");
}
