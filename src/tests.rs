//! In-server tests (`cargo pgrx test`), run with the library preloaded and
//! `pg_stat_statements.track = all` so that statements run from a test are counted.
//! Each test runs in one transaction, so `now()` does not move: intervals are checked by
//! their values, not their lengths.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(sql: &str) -> Option<T> {
        Spi::get_one::<T>(sql).unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    fn run(sql: &str) {
        Spi::run(sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// Tests run concurrently, each in its own transaction (rolled back at the end): collection
    /// tests take turns, each with pg_stat_statements installed for its duration.
    fn collection_test() {
        run("SELECT pg_advisory_xact_lock(20261123)");
        run("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    }

    /// Runs take_snapshot() and returns `source:status` for every source that did not succeed,
    /// but for those this server cannot run (skipped, as `_source_unavailable()` says).
    fn snapshot_problems() -> String {
        one::<String>(
            "SELECT coalesce(string_agg(source || ':' || status || ':' || coalesce(message, ''), '; '), '')
               FROM dbanalytics.take_snapshot()
              WHERE status <> 'ok'
                AND NOT (status = 'skipped' AND dbanalytics._source_unavailable(source) IS NOT NULL)",
        )
        .unwrap_or_default()
    }

    /// Calls in the newest statement_stats row of the statement whose text starts with `prefix`.
    fn latest_delta(prefix: &str) -> (Option<i64>, Option<bool>) {
        Spi::get_two::<i64, bool>(&format!(
            "SELECT st.calls, st.reset FROM dbanalytics.statement_stats st
               JOIN dbanalytics.statements s USING (dbid, userid, queryid, toplevel)
              WHERE s.query LIKE '{prefix}%'
              ORDER BY st.ctid DESC LIMIT 1"
        ))
        .unwrap_or((None, None))
    }

    /// Daily partitions of `tables` for the UTC days from `days_back` ago to today.
    fn partitions_back(tables: &[&str], days_back: i32) {
        for table in tables {
            run(&format!(
                "DO $$
                 DECLARE d date;
                 BEGIN
                     FOR d IN SELECT g::date FROM generate_series((now() AT TIME ZONE 'UTC')::date - {days_back},
                                                                  (now() AT TIME ZONE 'UTC')::date, interval '1 day') g LOOP
                         IF to_regclass(format('dbanalytics.%I', '{table}_p' || to_char(d, 'YYYYMMDD'))) IS NULL THEN
                             EXECUTE format('CREATE TABLE dbanalytics.%I PARTITION OF dbanalytics.{table}
                                             FOR VALUES FROM (%L) TO (%L)', '{table}_p' || to_char(d, 'YYYYMMDD'),
                                            d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
                         END IF;
                     END LOOP;
                 END $$"
            ));
        }
    }

    #[pg_test]
    fn rollups_give_the_same_totals_as_the_snapshots() {
        partitions_back(
            &[
                "statement_stats",
                "statement_hourly",
                "statement_daily",
                "database_stats",
            ],
            3,
        );
        // one statement with a delta every 10 minutes for the last 50 hours: 1 call, 2 ms each
        run("DELETE FROM dbanalytics.source_state WHERE source IN ('hours', 'days')");
        run("INSERT INTO dbanalytics.statement_stats
             SELECT e - interval '10 minutes', e, 1, 10, 4242, true, false, 1, 0, 2.0, 0, 1, 5, 1,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
               FROM generate_series(now() - interval '50 hours', now(), interval '10 minutes') e");
        // the database ran 4 transactions per snapshot, and only 1 in the snapshot 3 hours ago
        run("INSERT INTO dbanalytics.database_stats (interval_start, interval_end, datid, datname, reset,
                                                      xact_commit, xact_rollback, blks_read, blks_hit, tup_returned,
                                                      tup_fetched, tup_inserted, tup_updated, tup_deleted, conflicts,
                                                      temp_files, temp_bytes, deadlocks, checksum_failures,
                                                      blk_read_time, blk_write_time, session_time, active_time,
                                                      idle_in_transaction_time, sessions, sessions_abandoned,
                                                      sessions_fatal, sessions_killed)
             SELECT e - interval '10 minutes', e, 1, 'x', false, CASE WHEN e = now() - interval '3 hours' THEN 1 ELSE 4 END,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
               FROM generate_series(now() - interval '50 hours', now(), interval '10 minutes') e");
        let totals = |window: &str| {
            Spi::get_two::<i64, f64>(&format!(
                "SELECT calls, peak_calls_per_transaction
                   FROM dbanalytics._statement_totals(now() - interval '{window}', now())
                  WHERE queryid = 4242"
            ))
            .unwrap()
        };
        let expected = |window: &str| {
            one::<i64>(&format!(
                "SELECT count(*) FROM generate_series(now() - interval '50 hours', now(), interval '10 minutes') e
                  WHERE e > now() - interval '{window}'"
            ))
        };
        let windows = ["40 hours", "2 days", "7 hours 5 minutes", "25 minutes"];
        for window in windows {
            assert_eq!(
                totals(window).0,
                expected(window),
                "before the rollup: {window}"
            );
        }

        let rolled = one::<i64>("SELECT dbanalytics._rollup_hours()").unwrap();
        let hours =
            one::<i64>("SELECT count(*) FROM dbanalytics.statement_hourly WHERE queryid = 4242")
                .unwrap();
        let days =
            one::<i64>("SELECT count(*) FROM dbanalytics.statement_daily WHERE queryid = 4242")
                .unwrap();
        // 50 hours of deltas end in 50 or 51 whole hours and cover 1 to 3 whole UTC days
        assert!(
            (50..=51).contains(&hours) && (1..=3).contains(&days),
            "{hours} {days}"
        );
        assert_eq!(rolled, hours + days);
        assert_eq!(
            one::<i64>(
                "SELECT sum(calls)::bigint FROM dbanalytics.statement_hourly WHERE queryid = 4242"
            ),
            one::<i64>(
                "SELECT count(*) FROM dbanalytics.statement_stats WHERE queryid = 4242
                  AND interval_end <= (SELECT updated_at FROM dbanalytics.source_state WHERE source = 'hours')"
            )
        );
        for window in windows {
            assert_eq!(
                totals(window).0,
                expected(window),
                "after the rollup: {window}"
            );
        }
        // rollup hours are UTC hours whatever the reader's time zone (India is 5:30 ahead)
        run("SET LOCAL timezone = 'Asia/Kolkata'");
        for window in windows {
            assert_eq!(
                totals(window).0,
                expected(window),
                "in Asia/Kolkata: {window}"
            );
        }
        run("SET LOCAL timezone = 'UTC'");
        // a whole hour in the middle of the longer windows is read from the rollups: its
        // snapshots can go without changing their totals
        run(
            "DELETE FROM dbanalytics.statement_stats WHERE queryid = 4242
              AND interval_end > dbanalytics._time_floor(now(), 3600) - interval '10 hours'
              AND interval_end <= dbanalytics._time_floor(now(), 3600) - interval '9 hours'",
        );
        for window in ["40 hours", "2 days"] {
            assert_eq!(
                totals(window).0,
                expected(window),
                "without the raw hour: {window}"
            );
        }
        // the peak calls per transaction of the snapshot with 1 transaction passes through the
        // rollups; the last 25 minutes only have 1 call per 4 transactions
        assert_eq!(totals("2 days").1, Some(1.0));
        assert_eq!(totals("25 minutes").1, Some(0.25));
    }

    #[pg_test]
    fn activity_is_stored_compactly_and_shown_whole() {
        partitions_back(&["activity_raw"], 0);
        run("INSERT INTO dbanalytics.activity_keys (descriptor, datname, usename, application_name, client_addr,
                                                      state, wait_event_type, wait_event)
             VALUES (ROW('db', 'u', '', NULL::inet, 'active', NULL, NULL)::text, 'db', 'u', '', NULL, 'active', NULL, NULL),
                    (ROW('db', 'u', NULL, NULL::inet, 'active', NULL, NULL)::text, 'db', 'u', NULL, NULL, 'active', NULL, NULL),
                    (ROW('db', 'u', 'gone', '10.0.0.1'::inet, 'idle in transaction', 'Client', 'ClientRead')::text,
                     'db', 'u', 'gone', '10.0.0.1', 'idle in transaction', 'Client', 'ClientRead')");
        // an empty application name and none at all are different keys
        assert_eq!(
            one::<i64>("SELECT count(DISTINCT descriptor) FROM dbanalytics.activity_keys WHERE datname = 'db'"),
            Some(3)
        );
        run("INSERT INTO dbanalytics.activity_raw
             SELECT now(), 4711, k.key_id, 99,
                    dbanalytics._ms_before(now(), now() - interval '2.5 seconds'),
                    dbanalytics._ms_before(now(), now() - interval '40 days'),
                    dbanalytics._ms_before(now(), NULL), 7
               FROM dbanalytics.activity_keys k WHERE k.application_name = ''");
        assert_eq!(
            one::<String>(
                "SELECT concat_ws('|', datname, usename, quote_nullable(application_name), state,
                                  now() - xact_start, now() - query_start, state_change IS NULL, backend_xid_age)
                   FROM dbanalytics.activity_samples WHERE pid = 4711"
            ),
            // a start older than 24.8 days is kept to the second
            Some("db|u|''|active|00:00:02.5|40 days|t|7".to_string())
        );
        // helpers called per row (the sampler's per backend, counter_delta per counter of every
        // statement) must be inlined: a plain expression in the plan, no SQL-function call
        for call in [
            "dbanalytics._ms_before(t, t - interval '1 second')",
            "dbanalytics._ms_before_at(t, 5)",
            "dbanalytics._time_ceil(t, 3600)",
            "dbanalytics.counter_delta(n, n - 1, false)",
        ] {
            let plan = one::<pgrx::Json>(&format!(
                "EXPLAIN (VERBOSE, FORMAT JSON) SELECT {call} FROM (VALUES (now(), 5::bigint)) v(t, n)"
            ))
            .unwrap();
            let function = call
                .split('(')
                .next()
                .unwrap()
                .trim_start_matches("dbanalytics.");
            assert!(
                !plan.0.to_string().contains(function),
                "{call} is not inlined: {}",
                plan.0
            );
        }
        // keys no sample refers to go; the one in use stays
        assert_eq!(
            one::<i64>("SELECT dbanalytics._prune_activity_keys()"),
            Some(2)
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(quote_nullable(application_name), ',') FROM dbanalytics.activity_keys
                  WHERE datname = 'db'"
            ),
            Some("''".to_string())
        );
    }

    #[pg_test(
        error = "dbanalytics: this transaction started before the last hour the collector rolled up"
    )]
    fn take_snapshot_refuses_a_transaction_older_than_the_rollups() {
        // as if the collector had rolled up an hour that ends after this transaction began
        run("INSERT INTO dbanalytics.source_state (source, updated_at) VALUES ('hours', now() + interval '1 hour')
             ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at");
        run("SELECT * FROM dbanalytics.take_snapshot()");
    }

    #[pg_test]
    fn preloaded_in_tests() {
        assert_eq!(
            one::<bool>("SELECT dbanalytics.collection_preloaded()"),
            Some(true)
        );
    }

    #[pg_test]
    fn counter_delta_is_never_negative() {
        let cases = [
            ("10, 4, false", 6),   // normal growth
            ("3, 10, false", 3),   // the counter went down: what accumulated since
            ("10, 4, true", 10),   // counters zeroed during the interval
            ("5, NULL, false", 5), // a new entry
            ("NULL, 5, false", 0), // no current value
        ];
        for (arguments, expected) in cases {
            let sql = format!(
                "SELECT dbanalytics.counter_delta(a::bigint, b::bigint, z) FROM (VALUES ({arguments})) v(a, b, z)"
            );
            assert_eq!(one::<i64>(&sql), Some(expected), "{arguments}");
        }
        assert_eq!(
            one::<f64>("SELECT dbanalytics.counter_delta(2.5::float8, 7.0::float8, false)"),
            Some(2.5)
        );
    }

    #[pg_test]
    fn first_snapshot_is_a_baseline_then_deltas_are_exact() {
        collection_test();
        run("CREATE TABLE delta_probe (id int)");
        assert_eq!(snapshot_problems(), "");
        assert_eq!(
            one::<String>(
                "SELECT message FROM dbanalytics.collector_runs WHERE source = 'statements'
                  ORDER BY started_at DESC LIMIT 1"
            )
            .as_deref(),
            Some("first snapshot: counters remembered, deltas start next time")
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM dbanalytics.statement_stats"),
            Some(0)
        );

        for _ in 0..3 {
            run("SELECT count(*) FROM delta_probe WHERE id = 17");
        }
        assert_eq!(snapshot_problems(), "");
        assert_eq!(
            latest_delta("SELECT count(*) FROM delta_probe WHERE id ="),
            (Some(3), Some(false))
        );
        // the texts came along once, with the statement's database and role names
        assert_eq!(
            one::<String>(
                "SELECT datname || '/' || usename FROM dbanalytics.statements
                  WHERE query LIKE 'SELECT count(*) FROM delta_probe%'"
            ),
            one::<String>("SELECT current_database() || '/' || current_user")
        );
        // a statement that did not run again writes no row
        assert_eq!(
            one::<i64>("SELECT count(*) FROM dbanalytics.statement_stats WHERE calls = 0"),
            Some(0)
        );
    }

    #[pg_test]
    fn statistics_reset_zeroes_and_marks_the_interval() {
        collection_test();
        run("CREATE TABLE reset_probe (id int)");
        assert_eq!(snapshot_problems(), "");
        for _ in 0..5 {
            run("SELECT count(*) FROM reset_probe WHERE id = 1");
        }
        assert_eq!(snapshot_problems(), "");
        run("SELECT pg_stat_statements_reset()");
        for _ in 0..2 {
            run("SELECT count(*) FROM reset_probe WHERE id = 1");
        }
        assert_eq!(snapshot_problems(), "");
        assert_eq!(
            latest_delta("SELECT count(*) FROM reset_probe WHERE id ="),
            (Some(2), Some(true))
        );
        assert_eq!(
            one::<String>(
                "SELECT message FROM dbanalytics.collector_runs
                  WHERE source = 'statements' AND reset ORDER BY started_at DESC LIMIT 1"
            )
            .as_deref(),
            Some("statistics were reset")
        );
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM dbanalytics.statement_stats
                  WHERE least(calls, rows, shared_blks_hit, wal_bytes) < 0 OR total_exec_time < 0"
            ),
            Some(0)
        );
    }

    #[pg_test]
    fn eviction_marks_reset_but_keeps_true_deltas() {
        collection_test();
        run("CREATE TABLE evict_probe (id int)");
        assert_eq!(snapshot_problems(), "");
        for _ in 0..4 {
            run("SELECT count(*) FROM evict_probe WHERE id = 2");
        }
        // pretend pg_stat_statements evicted an entry since the previous snapshot
        run(
            "UPDATE dbanalytics.source_state SET dealloc = dealloc + 1 WHERE source = 'statements'",
        );
        assert_eq!(snapshot_problems(), "");
        // surviving entries keep counting: the delta is 4, not the whole counter
        assert_eq!(
            latest_delta("SELECT count(*) FROM evict_probe WHERE id ="),
            (Some(4), Some(true))
        );
    }

    #[pg_test]
    fn a_counter_that_went_down_yields_its_current_value() {
        collection_test();
        run("CREATE TABLE down_probe (id int)");
        run("SELECT count(*) FROM down_probe WHERE id = 3");
        assert_eq!(snapshot_problems(), "");
        // as if the previous snapshot had seen a much larger counter (an entry reset on its own)
        run(
            "UPDATE dbanalytics.statement_counters c SET calls = 1000000
               FROM dbanalytics.statements s
              WHERE (s.dbid, s.userid, s.queryid, s.toplevel) = (c.dbid, c.userid, c.queryid, c.toplevel)
                AND s.query LIKE 'SELECT count(*) FROM down_probe%'",
        );
        run("SELECT count(*) FROM down_probe WHERE id = 3");
        assert_eq!(snapshot_problems(), "");
        assert_eq!(
            latest_delta("SELECT count(*) FROM down_probe WHERE id ="),
            (Some(2), Some(true))
        );
    }

    #[pg_test]
    fn partitions_exist_ahead_and_expired_ones_are_dropped() {
        collection_test();
        assert_eq!(snapshot_problems(), "");
        let ahead = one::<i64>(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
              WHERE p.relnamespace = 'dbanalytics'::regnamespace
                AND c.relname IN (
                    SELECT p.relname || to_char(now() AT TIME ZONE 'UTC' + d * interval '1 day', '\"_p\"YYYYMMDD')
                      FROM generate_series(0, 2) d)",
        );
        assert_eq!(
            ahead,
            Some(3 * crate::storage::partitions::PARTITIONED_TABLES.len() as i64)
        );
        // every partitioned table of the schema is in the one list, and nothing else is
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM pg_class
                  WHERE relnamespace = 'dbanalytics'::regnamespace AND relkind = 'p'
                    AND relname IN (SELECT table_name FROM dbanalytics._storage_tiers())"
            ),
            Some(crate::storage::partitions::PARTITIONED_TABLES.len() as i64)
        );
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM pg_class
                  WHERE relnamespace = 'dbanalytics'::regnamespace AND relkind = 'p'"
            ),
            Some(crate::storage::partitions::PARTITIONED_TABLES.len() as i64)
        );

        // retention 1 day for raw samples and minute deltas: partitions from 3 days ago expire;
        // a minute-tier partition goes only once the hourly rollup has passed its end (or when
        // it is empty), an hour-tier one stays for 30 days
        let (day, from, to) = Spi::get_three::<String, String, String>(
            "SELECT to_char(d, 'YYYYMMDD'), to_char(d, 'YYYY-MM-DD'), to_char(d + 1, 'YYYY-MM-DD')
               FROM (SELECT (now() AT TIME ZONE 'UTC')::date - 3 AS d) s",
        )
        .unwrap();
        let (day, from, to) = (day.unwrap(), from.unwrap(), to.unwrap());
        for table in [
            "lock_waits",
            "statement_stats",
            "statement_latency",
            "statement_hourly",
        ] {
            run(&format!(
                "CREATE TABLE dbanalytics.{table}_p{day} PARTITION OF dbanalytics.{table}
                 FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')"
            ));
        }
        run(&format!(
            "INSERT INTO dbanalytics.statement_stats
             SELECT '{from} 09:59:00+00', '{from} 10:00:00+00', 1, 10, 42, true, false,
                    1, 0, 1.5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0"
        ));
        let expired = |rolled_until: &str| {
            run(&format!(
                "INSERT INTO dbanalytics.source_state (source, updated_at) VALUES ('hours', '{rolled_until}')
                 ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at"
            ));
            crate::storage::partitions::expired_partitions()
                .unwrap()
                .into_iter()
                .map(|(_, name)| name)
                .filter(|name| name.ends_with(&day))
                .collect::<Vec<_>>()
                .join(",")
        };
        // rolled up to 05:00 that day: the row at 10:00 is not, its (empty) neighbour is
        assert_eq!(
            expired(&format!("{from} 05:00:00+00")),
            format!("lock_waits_p{day},statement_latency_p{day}")
        );
        // rolled up past the day's end: both minute partitions go, the hourly one stays
        assert_eq!(
            expired(&format!("{to} 00:00:00+00")),
            format!("lock_waits_p{day},statement_stats_p{day},statement_latency_p{day}")
        );
        run("DELETE FROM dbanalytics.source_state WHERE source = 'hours'");
        run("DELETE FROM dbanalytics.statement_stats WHERE queryid = 42 AND userid = 10");
        assert_eq!(snapshot_problems(), "");
        for (table, kept) in [
            ("lock_waits", false),
            ("statement_stats", false),
            ("statement_latency", false),
            ("statement_hourly", true),
        ] {
            assert_eq!(
                one::<bool>(&format!(
                    "SELECT to_regclass('dbanalytics.{table}_p{day}') IS NOT NULL"
                )),
                Some(kept),
                "{table}_p{day}"
            );
        }
        assert_eq!(
            one::<i64>(
                "SELECT rows FROM dbanalytics.collector_runs WHERE source = 'retention'
                  ORDER BY started_at DESC, rows DESC LIMIT 1"
            ),
            Some(3)
        );
    }

    #[pg_test]
    fn take_sample_records_its_run() {
        collection_test();
        let status = one::<String>(
            "SELECT string_agg(source || ':' || status, ',' ORDER BY source) FROM dbanalytics.take_sample()",
        );
        // the first tick of a process also makes sure today's partitions exist
        assert!(matches!(
            status.as_deref(),
            Some("activity:ok") | Some("activity:ok,partitions:ok")
        ));
        assert_eq!(
            one::<String>(
                "SELECT health FROM dbanalytics.collector_status WHERE source = 'activity'"
            )
            .as_deref(),
            Some("healthy")
        );
    }

    #[pg_test]
    fn a_failing_source_is_recorded_and_the_others_run() {
        collection_test();
        // break one source on purpose: its state table disappears
        run("ALTER TABLE dbanalytics.bgwriter_counters RENAME TO bgwriter_counters_gone");
        let problems = snapshot_problems();
        assert!(problems.starts_with("bgwriter:error:"), "{problems}");
        assert!(!problems.contains("databases"), "{problems}");
        assert_eq!(
            one::<String>(
                "SELECT health FROM dbanalytics.collector_status WHERE source = 'bgwriter'"
            )
            .as_deref(),
            Some("failing")
        );
        assert_eq!(
            one::<String>(
                "SELECT health FROM dbanalytics.collector_status WHERE source = 'databases'"
            )
            .as_deref(),
            Some("healthy")
        );
    }

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
                 dbanalytics.resource_usage=on,dbanalytics.retention_days=525600min,dbanalytics.retention_hours=43200min,\
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
                 dbanalytics.retention_days:1440..5270400,dbanalytics.retention_hours:1440..5270400,\
                 dbanalytics.retention_minutes:1440..5270400,dbanalytics.retention_raw:60..527040,\
                 dbanalytics.sample_interval:100..3600000,dbanalytics.slow_query_threshold:1..3600000,\
                 dbanalytics.snapshot_interval:5..86400"
            )
        );
    }

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

    /// Issue 17: the causes of a busy pool are told apart, and no pool waiting on locks or on a
    /// cluster near its connection limit is told to grow.
    #[pg_test]
    fn pool_verdicts_tell_lock_hotspots_leaks_and_limits_apart() {
        collection_test();
        partitions_back(&["connection_samples", "lock_waits"], 1);
        // only raw samples: nothing rolled up in the window
        run("DELETE FROM dbanalytics.source_state WHERE source = 'rollup'");
        // three ticks in one minute; pools: (application, state, backends, lock waiters)
        run("INSERT INTO dbanalytics.connection_samples
             SELECT date_trunc('minute', now()) - interval '5 minutes' + t * interval '10 seconds',
                    current_database(), 'postgres', p.app, p.state, p.backends, p.waiting
               FROM generate_series(1, 3) t,
                    (VALUES ('e17_locks', 'active', 4, 3),
                            -- waiting on locks with one idle connection left, 90 % busy
                            ('e17_locksidle', 'active', 9, 2), ('e17_locksidle', 'idle', 1, 0),
                            ('e17_leak', 'active', 1, 0), ('e17_leak', 'idle in transaction', 3, 0),
                            ('e17_busy', 'active', 9, 0), ('e17_busy', 'idle', 1, 0),
                            ('e17_idle', 'active', 2, 0), ('e17_idle', 'idle', 20, 0)) p(app, state, backends, waiting)");
        // the waiters of e17_locks wait on public.hot (one sampled per tick)
        run("INSERT INTO dbanalytics.lock_waits (sampled_at, pid, datname, usename, application_name, state,
                                                 locktype, mode, relation_schema, relation_name, blocking_pids)
             SELECT date_trunc('minute', now()) - interval '5 minutes' + t * interval '10 seconds', 4242,
                    current_database(), 'postgres', 'e17_locks', 'active', 'relation', 'RowExclusiveLock',
                    'public', 'hot', '{4243}'
               FROM generate_series(1, 3) t");
        // the next minute, one pool takes the cluster to its connection limit: 5 active, the rest idle
        run("INSERT INTO dbanalytics.connection_samples
             SELECT date_trunc('minute', now()) - interval '4 minutes', current_database(), 'postgres', 'e17_many',
                    p.state, p.backends, 0
               FROM (VALUES ('active', 5),
                            ('idle', current_setting('max_connections')::int
                                     - current_setting('superuser_reserved_connections')::int - 5)) p(state, backends)");
        let verdicts = one::<String>(
            "SELECT string_agg(application_name || ':' || pool_status || ':' || recommended_pool_size, ' '
                               ORDER BY application_name)
               FROM dbanalytics.connection_pool_analytics('1 hour') WHERE application_name LIKE 'e17%'",
        );
        assert_eq!(
            verdicts.as_deref(),
            Some(
                "e17_busy:high_utilization:11 e17_idle:oversized:3 e17_leak:idle_in_transaction:4 \
                 e17_locks:lock_hotspot:4 e17_locksidle:lock_hotspot:10 e17_many:near_connection_limit:6"
            )
        );
        let advice = |app: &str| {
            one::<String>(&format!(
                "SELECT recommendation FROM dbanalytics.connection_pool_analytics('1 hour') WHERE application_name = '{app}'"
            ))
            .unwrap_or_default()
        };
        let locks = advice("e17_locks");
        assert!(locks.starts_with("3.00 sessions on average wait on locks (most on public.hot: 3 of 3 waiting samples)"), "{locks}");
        assert!(locks.contains("do not grow the pool"), "{locks}");
        assert!(!locks.contains("grow the pool to"), "{locks}");
        // saturated with one idle connection left: still locks, never "grow"
        let locks_idle = advice("e17_locksidle");
        assert!(locks_idle.contains("do not grow the pool"), "{locks_idle}");
        let many = advice("e17_many");
        assert!(many.contains("do not add connections"), "{many}");
        assert!(
            many.contains("measured peak of 5 concurrently active sessions (sampled every 1 s)"),
            "{many}"
        );
        assert!(advice("e17_leak").contains("idle_in_transaction_session_timeout"));
        assert!(advice("e17_busy").contains("cl_waiting"));
        // the health score counts the leak and the limit, not the lock hotspot
        assert_eq!(
            one::<bool>(
                "SELECT evidence LIKE '% near the connection limit or held connections idle in transactions'
                   FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'connection_pool_efficiency'"
            ),
            Some(true)
        );
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM dbanalytics.connection_pool_analytics('1 hour')
                         WHERE pool_status IN ('lock_hotspot', 'near_connection_limit')
                           AND recommended_pool_size > max_connections_used"
            ),
            Some(0)
        );
    }

    /// Issue 15: a background worker's SPI never arms statement_timeout (postgres.c arms it for
    /// each client statement): the workers arm it for each transaction with
    /// `timeouts::arm_statement_timeout`, which must cancel what runs longer. (A SET inside this
    /// test's statement does not arm it for the statement already running: only the call does.)
    #[pg_test]
    fn the_statement_timeout_the_workers_arm_cancels_a_long_statement() {
        run("SET statement_timeout = '200ms'");
        crate::timeouts::arm_statement_timeout();
        let message = PgTryBuilder::new(|| {
            crate::collect::isolation::in_rolled_back_subtransaction(|| {
                Spi::run("SELECT pg_catalog.pg_sleep(5)").ok()
            });
            String::from("not cancelled")
        })
        .catch_others(|caught| match caught {
            pg_sys::panic::CaughtError::PostgresError(report) => report.message().to_string(),
            other => format!("{other:?}"),
        })
        .execute();
        crate::timeouts::disarm_statement_timeout();
        run("RESET statement_timeout");
        assert_eq!(message, "canceling statement due to statement timeout");
    }

    /// Issue 17: an alert rule with a duration opens once its condition has held that long, is
    /// announced once, and a condition that returns within the cool-down continues the episode.
    /// (now() does not move inside the test: the holding time is moved back instead.)
    #[pg_test]
    fn an_alert_with_a_duration_opens_once_and_a_flapping_one_pages_once() {
        collection_test();
        run("UPDATE dbanalytics.alert_rules SET enabled = false");
        // connections_ratio is above 0 while this test's own session is connected
        run("INSERT INTO dbanalytics.alert_rules (rule, metric, comparison, threshold, severity, for_duration, cooldown)
             VALUES ('t_for', 'connections_ratio', '>', 0, 'low', '5 minutes', '10 minutes')");
        let opened = || one::<i64>("SELECT dbanalytics._evaluate_alerts()").unwrap_or(-1);
        let episodes = || {
            one::<String>(
                "SELECT count(*) || ' episodes, ' || count(*) FILTER (WHERE resolved_at IS NULL) || ' open'
                   FROM dbanalytics.alerts WHERE rule = 't_for'",
            )
            .unwrap_or_default()
        };
        let held_for = |ago: &str| {
            run(&format!(
                "UPDATE dbanalytics.alert_conditions SET holding_since = now() - interval '{ago}' WHERE rule = 't_for'"
            ))
        };
        assert_eq!(opened(), 0, "the condition starts holding");
        assert_eq!(episodes(), "0 episodes, 0 open");
        held_for("4 minutes");
        assert_eq!(opened(), 0, "held 4 of 5 minutes");
        held_for("6 minutes");
        assert_eq!(opened(), 1, "held 6 of 5 minutes: opened and announced");
        assert_eq!(opened(), 0, "still holding: not announced again");
        assert_eq!(episodes(), "1 episodes, 1 open");
        // the condition clears: the episode resolves and the holding time is forgotten
        run("UPDATE dbanalytics.alert_rules SET threshold = 1e9 WHERE rule = 't_for'");
        assert_eq!(opened(), 0);
        assert_eq!(episodes(), "1 episodes, 0 open");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM dbanalytics.alert_conditions WHERE rule = 't_for'"),
            Some(0)
        );
        // it returns within the cool-down and holds 6 minutes: the same episode goes on, unannounced
        run("UPDATE dbanalytics.alert_rules SET threshold = 0 WHERE rule = 't_for'");
        assert_eq!(opened(), 0, "holding again, for_duration not reached");
        assert_eq!(episodes(), "1 episodes, 0 open");
        held_for("6 minutes");
        assert_eq!(
            opened(),
            0,
            "within the cool-down: continued, not announced"
        );
        assert_eq!(episodes(), "1 episodes, 1 open");
        // it clears again, and returns after the cool-down: a new episode, announced
        run("UPDATE dbanalytics.alert_rules SET threshold = 1e9 WHERE rule = 't_for'");
        opened();
        run("UPDATE dbanalytics.alerts SET resolved_at = now() - interval '11 minutes' WHERE rule = 't_for'");
        run("UPDATE dbanalytics.alert_rules SET threshold = 0 WHERE rule = 't_for'");
        opened();
        held_for("6 minutes");
        assert_eq!(opened(), 1, "after the cool-down: a new episode");
        assert_eq!(episodes(), "2 episodes, 1 open");
        // a rule that is disabled forgets its holding time
        run("UPDATE dbanalytics.alert_rules SET enabled = false WHERE rule = 't_for'");
        opened();
        assert_eq!(
            one::<String>(
                "SELECT (SELECT count(*) FROM dbanalytics.alert_conditions WHERE rule = 't_for') || ' conditions, '
                        || (SELECT count(*) FROM dbanalytics.alerts WHERE rule = 't_for' AND resolved_at IS NULL) || ' open'"
            )
            .as_deref(),
            Some("0 conditions, 0 open")
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
            one::<f64>("SELECT bloat_ratio FROM dbanalytics._btree_bloat() WHERE indexrelid = 'bl_v'::regclass")
                .unwrap_or(-1.0)
        };
        let fresh = ratio();
        assert!(
            (0.0..0.1).contains(&fresh),
            "a freshly built index: {fresh}"
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

    /// Runs `SELECT pg_sleep(seconds)` and returns how long it took in ms, timed by the caller.
    fn timed_sleep(seconds: f64) -> f64 {
        let started = std::time::Instant::now();
        run(&format!("SELECT pg_sleep({seconds})"));
        started.elapsed().as_secs_f64() * 1000.0
    }

    #[pg_test]
    fn sleeps_land_in_their_buckets_and_percentiles_match_the_clock() {
        collection_test();
        // statements run from this test are nested inside the test's own statement
        run("SET dbanalytics.histograms_nested = on");
        assert_eq!(snapshot_problems(), ""); // drain what came before
                                             // the query identifier the executor sees for these sleeps
        let plan =
            one::<pgrx::Json>("EXPLAIN (VERBOSE, FORMAT JSON) SELECT pg_sleep(0.005)").unwrap();
        let queryid = plan.0[0]["Query Identifier"]
            .as_i64()
            .expect("compute_query_id is on");
        let calls_before = one::<i64>(&format!(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE queryid = {queryid}"
        ))
        .unwrap();

        let mut measured = Vec::new();
        for (seconds, times) in [(0.005, 10), (0.03, 6), (0.08, 4)] {
            for _ in 0..times {
                measured.push(timed_sleep(seconds));
            }
        }
        assert_eq!(snapshot_problems(), "");

        // a sleep never runs shorter than asked (a busy machine may make it longer): all 20 are
        // in buckets ending above 5 ms, the 10 of 30 and 80 ms in buckets reaching 30 ms, the 4
        // of 80 ms in buckets reaching 80 ms
        let (total, over_30, over_80) = Spi::get_three::<i64, i64, i64>(&format!(
            "SELECT sum(executions)::bigint,
                    (sum(executions) FILTER (WHERE upper_ms > 30))::bigint,
                    (sum(executions) FILTER (WHERE upper_ms > 80))::bigint
               FROM dbanalytics.latency_histogram({queryid}, '1 hour') WHERE upper_ms > 5"
        ))
        .unwrap();
        assert_eq!(total, Some(20));
        assert!(
            over_30.unwrap_or(0) >= 10 && over_80.unwrap_or(0) >= 4,
            "{over_30:?} {over_80:?}"
        );
        assert_eq!(
            one::<i64>(&format!(
                "SELECT coalesce(sum(executions), 0)::bigint FROM dbanalytics.latency_histogram({queryid}, '1 hour')
                  WHERE upper_ms <= 5"
            )),
            Some(0)
        );

        // percentiles from the histogram agree with the exact percentiles of the clock
        measured.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let exact = |fraction: f64| {
            measured[((fraction * measured.len() as f64).ceil() as usize).max(1) - 1]
        };
        let (p50, p90, p99) = Spi::get_three::<f64, f64, f64>(&format!(
            "SELECT p50_ms, p90_ms, p99_ms FROM dbanalytics.query_latency('1 hour', 1000) WHERE queryid = {queryid}"
        ))
        .unwrap();
        for (label, from_histogram, exact) in [
            ("p50", p50.unwrap(), exact(0.5)),
            ("p90", p90.unwrap(), exact(0.9)),
            ("p99", p99.unwrap(), exact(0.99)),
        ] {
            // 5 % bucket error, plus the parse/plan time the clock sees and the executor does not
            assert!(
                (from_histogram - exact).abs() <= 0.05 * exact + 0.5,
                "{label}: histogram {from_histogram} ms, clock {exact} ms"
            );
        }

        // pg_stat_statements' own hook kept counting, buffers included
        assert_eq!(
            one::<i64>(&format!(
                "SELECT sum(calls)::bigint FROM pg_stat_statements WHERE queryid = {queryid}"
            )),
            Some(calls_before + 20)
        );
    }

    #[pg_test]
    fn histograms_off_records_nothing() {
        collection_test();
        run("SET dbanalytics.histograms_nested = on");
        assert_eq!(snapshot_problems(), "");
        run("SET dbanalytics.histograms = off");
        run("SELECT count(*) FROM pg_class WHERE relname = 'histograms_off_probe'");
        run("SET dbanalytics.histograms = on");
        assert_eq!(snapshot_problems(), "");
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM dbanalytics.statement_latency l
                   JOIN pg_stat_statements s ON s.queryid = l.queryid
                  WHERE s.query LIKE '%histograms_off_probe%'"
            ),
            Some(0)
        );
        assert_eq!(
            one::<bool>("SELECT enabled FROM dbanalytics.histogram_status"),
            Some(true)
        );
    }

    #[pg_test]
    fn percentile_function_merges_repeated_buckets() {
        // two intervals of the same query: buckets repeat and add up
        let bucket_of_1ms = one::<i32>(
            "SELECT bucket FROM dbanalytics.latency_buckets() WHERE lower_ms <= 1 AND upper_ms > 1",
        )
        .unwrap();
        let bucket_of_50ms = one::<i32>("SELECT bucket FROM dbanalytics.latency_buckets() WHERE lower_ms <= 50 AND upper_ms > 50")
            .unwrap();
        let p = one::<Vec<Option<f64>>>(&format!(
            "SELECT dbanalytics.latency_percentiles('{{{bucket_of_1ms},{bucket_of_50ms},{bucket_of_1ms}}}'::smallint[],
                                                    '{{50,10,40}}'::bigint[], '{{0.5,0.9,0.95}}')"
        ))
        .unwrap();
        let (p50, p90, p95) = (p[0].unwrap(), p[1].unwrap(), p[2].unwrap());
        assert!(
            (p50 - 1.0).abs() < 0.05 && (p90 - 1.0).abs() < 0.05,
            "{p:?}"
        );
        assert!((p95 - 50.0).abs() < 2.5, "{p:?}");
    }

    fn advisor_table() {
        run("CREATE TABLE adv (id int, customer int, flag boolean, a int, b int, payload text)");
        run(
            "INSERT INTO adv SELECT g, g % 1000, g % 2 = 0, g % 100, g % 100, md5(g::text)
               FROM generate_series(1, 20000) g",
        );
        run("ANALYZE adv");
    }

    fn finding_kinds(analysis: &str) -> String {
        one::<String>(&format!(
            "SELECT string_agg(f->>'kind', ',' ORDER BY f->>'kind')
               FROM jsonb_array_elements(({analysis})->'findings') f"
        ))
        .unwrap_or_default()
    }

    #[pg_test]
    fn explain_analysis_finds_a_missing_index_and_an_index_suppresses_it() {
        advisor_table();
        let analysis = "dbanalytics.explain_analysis('SELECT * FROM adv WHERE customer = 7')";
        assert_eq!(finding_kinds(analysis), "seq_scan_with_filter");
        assert_eq!(
            one::<String>(&format!(
                "SELECT ({analysis})->'findings'->0->>'suggestion'"
            ))
            .as_deref(),
            Some("CREATE INDEX CONCURRENTLY ON public.adv (customer);")
        );
        assert_eq!(
            one::<bool>(&format!("SELECT ({analysis})->>'total_cost' IS NOT NULL AND ({analysis})->'execution_plan' ? 'Plan'")),
            Some(true)
        );
        run("CREATE INDEX adv_customer ON adv (customer)");
        assert_eq!(finding_kinds(analysis), "");
    }

    #[pg_test]
    fn explain_analysis_sees_a_sort_spill_and_a_misestimate() {
        advisor_table();
        run("SET LOCAL work_mem = '64kB'");
        let spill = "dbanalytics.explain_analysis('SELECT * FROM adv ORDER BY payload', true)";
        assert!(
            finding_kinds(spill).contains("sort_spilled_to_disk"),
            "{}",
            finding_kinds(spill)
        );
        // a and b are always equal: the planner multiplies their selectivities and is 100x off
        let correlated =
            "dbanalytics.explain_analysis('SELECT * FROM adv WHERE a = 5 AND b = 5', true)";
        assert!(
            finding_kinds(correlated).contains("row_misestimate"),
            "{}",
            finding_kinds(correlated)
        );
        assert!(one::<String>(&format!(
            "SELECT f->>'suggestion' FROM jsonb_array_elements(({correlated})->'findings') f WHERE f->>'kind' = 'row_misestimate'"
        ))
        .unwrap()
        .contains("CREATE STATISTICS public.adv_a_b_stats ON a, b FROM public.adv"));
    }

    #[pg_test(
        error = "dbanalytics: explain_analysis with analyze => true runs the statement, and this one modifies data"
    )]
    fn explain_analysis_refuses_to_run_a_delete_by_default() {
        advisor_table();
        run("SELECT dbanalytics.explain_analysis('DELETE FROM adv WHERE id < 100', true)");
    }

    #[pg_test]
    fn explain_analysis_with_opt_in_leaves_the_table_unchanged() {
        advisor_table();
        let analysis = one::<pgrx::JsonB>(
            "SELECT dbanalytics.explain_analysis('DELETE FROM adv WHERE id < 100', true, true)",
        )
        .unwrap();
        assert_eq!(analysis.0["rolled_back"], true);
        assert_eq!(
            analysis.0["execution_plan"]["Plan"]["Node Type"],
            "ModifyTable"
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM adv"), Some(20000));
    }

    #[pg_test(error = "syntax error at or near \"SELEC\"")]
    fn explain_analysis_reports_invalid_sql() {
        run("SELECT dbanalytics.explain_analysis('SELEC 1')");
    }

    #[pg_test(error = "dbanalytics: explain_analysis takes exactly one statement")]
    fn explain_analysis_refuses_two_statements() {
        run("SELECT dbanalytics.explain_analysis('SELECT 1; SELECT 2')");
    }

    /// Runs the workload index_advice() will read: statements recorded between two snapshots.
    fn advised_workload() {
        collection_test();
        advisor_table();
        assert_eq!(snapshot_problems(), "");
        for _ in 0..3 {
            run("SELECT * FROM adv WHERE customer = 7");
            run("SELECT count(*) FROM adv WHERE b < 90");
        }
        assert_eq!(snapshot_problems(), "");
    }

    #[pg_test]
    #[cfg_attr(
        feature = "pg18",
        ignore = "HypoPG is not packaged for PostgreSQL 18 here (Debian 12 has it for 15 only)"
    )]
    fn index_advice_validates_with_hypopg_and_rejects_a_useless_index() {
        advised_workload();
        run("CREATE EXTENSION IF NOT EXISTS hypopg");
        assert_eq!(
            one::<String>(
                "SELECT string_agg(table_name || ':' || array_to_string(columns, ',') || ':' || validated
                                   || ':' || (cost_after < cost_before), ' ')
                   FROM dbanalytics.index_advice('1 hour')"
            )
            .as_deref(),
            // b < 90 matches 90 % of the table: HypoPG shows no gain, so it is not advised
            Some("public.adv:customer:true:true")
        );
        assert_eq!(
            one::<String>("SELECT ddl FROM dbanalytics.index_advice('1 hour')").as_deref(),
            Some("CREATE INDEX CONCURRENTLY ON public.adv (customer);")
        );
    }

    #[pg_test]
    fn index_advice_without_hypopg_says_it_is_unvalidated() {
        advised_workload();
        run("DROP EXTENSION IF EXISTS hypopg");
        assert_eq!(
            one::<String>(
                "SELECT string_agg(array_to_string(columns, ',') || ':' || validated || ':' || left(estimated_benefit, 11), ' '
                                   ORDER BY columns)
                   FROM dbanalytics.index_advice('1 hour')"
            )
            .as_deref(),
            Some("b:false:unvalidated customer:false:unvalidated")
        );
        // an existing index suppresses the candidate
        run("CREATE INDEX adv_customer ON adv (customer)");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM dbanalytics.index_advice('1 hour') WHERE 'customer' = ANY (columns)"),
            Some(0)
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

    #[pg_test]
    fn texts_that_may_carry_a_secret_are_redacted_and_the_others_kept() {
        for (text, redacted) in [
            ("CREATE ROLE app LOGIN PASSWORD 'secret-1'", true),
            ("alter user app with encrypted password 'secret-2'", true),
            (
                "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'a', password 'secret-3')",
                true,
            ),
            ("ALTER SERVER s OPTIONS (SET host 'h')", true),
            (
                "ALTER SYSTEM SET primary_conninfo = 'host=h password=secret-4'",
                true,
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p",
                true,
            ),
            (
                "DO $$BEGIN PERFORM dblink_connect('password=secret-5'); END$$",
                true,
            ),
            ("SELECT * FROM users WHERE password = $1", false),
            ("WITH x AS (SELECT $1) SELECT * FROM x", false),
            ("CREATE TABLE orders (id int)", false),
            ("VACUUM ANALYZE orders", false),
        ] {
            let stored = one::<String>(&format!(
                "SELECT dbanalytics._redact_secrets({})",
                pgrx::spi::quote_literal(text)
            ))
            .unwrap_or_default();
            assert_eq!(
                stored.starts_with("<redacted by dbanalytics"),
                redacted,
                "{text} -> {stored}"
            );
            assert!(!stored.contains("secret-"), "{text} -> {stored}");
        }
    }

    /// A database's stats_reset moves when one table is reset (pg_stat_reset_single_table_counters
    /// on 15): the other tables' deltas stay their true deltas, marked as a reset interval.
    #[pg_test]
    fn a_moved_database_stats_reset_does_not_zero_other_tables() {
        collection_test();
        run("CREATE TABLE untouched_probe (id int)");
        assert_eq!(snapshot_problems(), "");
        assert_eq!(snapshot_problems(), "");
        run("UPDATE dbanalytics.source_state SET stats_reset = '1' WHERE source = 'tables'");
        // the remembered counters: 3 scans fewer than the table has now
        run(
            "UPDATE dbanalytics.table_counters SET seq_scan = seq_scan - 3
              WHERE relid = 'untouched_probe'::regclass",
        );
        assert_eq!(snapshot_problems(), "");
        assert_eq!(
            Spi::get_two::<i64, bool>(
                "SELECT seq_scan, reset FROM dbanalytics.table_stats
                  WHERE relid = 'untouched_probe'::regclass ORDER BY interval_end DESC LIMIT 1"
            )
            .unwrap(),
            (Some(3), Some(true))
        );
    }

    /// Wait events: minute rollups up to where the rollup has got, raw samples after it; shares
    /// of the database's active samples, averages over all sampler ticks.
    #[pg_test]
    fn wait_events_share_active_time_between_cpu_and_waits() {
        partitions_back(
            &[
                "activity_raw",
                "activity_minute",
                "connection_samples",
                "connection_minute",
            ],
            1,
        );
        // rolled up until R = the minute 5 minutes before now's minute
        run(
            "CREATE TEMP TABLE r AS SELECT date_trunc('minute', now()) - interval '5 minutes' AS r",
        );
        run(
            "INSERT INTO dbanalytics.source_state (source, updated_at) SELECT 'rollup', r FROM r
             ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at",
        );
        // two rolled minutes: 30 samples of query 11 on a lock and 20 of query 12 on CPU each,
        // 60 ticks; a minute 20 minutes back (outside a 10-minute window); a row at R, which
        // the raw samples serve (not counted twice); an idle-in-transaction row (not active)
        run("INSERT INTO dbanalytics.activity_minute
             SELECT r - m * interval '1 minute', 'wdb', 'u', 'app', st, wt, we, q, n
               FROM r, (VALUES (1, 'active', 'Lock', 'transactionid', 11, 30),
                               (1, 'active', NULL, NULL, 12, 20),
                               (2, 'active', 'Lock', 'transactionid', 11, 30),
                               (2, 'active', NULL, NULL, 12, 20),
                               (2, 'idle in transaction', 'Client', 'ClientRead', 14, 60),
                               (20, 'active', 'Lock', 'transactionid', 11, 1000),
                               (0, 'active', 'IO', 'DataFileRead', 15, 500)) v(m, st, wt, we, q, n)");
        run(
            "INSERT INTO dbanalytics.connection_minute
             SELECT r - m * interval '1 minute', 'wdb', 'u', 'app', st, 60, 1, 1, 0, 0
               FROM r, (VALUES (1, 'active'), (1, 'idle'), (2, 'active'), (20, 'active')) v(m, st)",
        );
        // raw samples: 10 ticks from R + 10 s, each with query 13 in pg_sleep and query 11 on a lock
        run("INSERT INTO dbanalytics.activity_keys (descriptor, datname, usename, application_name, state,
                                                      wait_event_type, wait_event)
             VALUES ('wtest-sleep', 'wdb', 'u', 'app', 'active', 'Timeout', 'PgSleep'),
                    ('wtest-lock', 'wdb', 'u', 'app', 'active', 'Lock', 'transactionid'),
                    ('wtest-idle', 'wdb', 'u', 'app', 'idle in transaction', 'Client', 'ClientRead')");
        run("INSERT INTO dbanalytics.activity_raw (sampled_at, pid, key_id, query_id)
             SELECT r + (10 + i) * interval '1 second', p, k.key_id, q
               FROM r, generate_series(0, 9) i,
                    (VALUES (1, 'wtest-sleep', 13), (2, 'wtest-lock', 11), (3, 'wtest-idle', 14)) v(p, d, q)
               JOIN dbanalytics.activity_keys k ON k.descriptor = v.d");
        run("INSERT INTO dbanalytics.connection_samples
             SELECT r + (10 + i) * interval '1 second', 'wdb', 'u', 'app', 'active', 2, 1
               FROM r, generate_series(0, 9) i");
        // 130 ticks; 120 active samples: Lock 70, CPU 40, Timeout 10
        assert_eq!(
            one::<String>(
                "SELECT string_agg(concat_ws(':', wait_event_type, wait_event, samples, round(share::numeric, 3),
                                             round(avg_active_sessions::numeric, 4), top_query_id,
                                             round(top_query_share::numeric, 2)), ' ' ORDER BY samples DESC)
                   FROM dbanalytics.wait_events('10 minutes') WHERE datname = 'wdb'"
            ),
            Some(
                "Lock:transactionid:70:0.583:0.5385:11:1.00 CPU:CPU:40:0.333:0.3077:12:1.00 \
                 Timeout:PgSleep:10:0.083:0.0769:13:1.00"
                    .to_string()
            )
        );
        // the minute 20 minutes back is in a 1-hour window
        assert_eq!(
            one::<i64>(
                "SELECT samples FROM dbanalytics.wait_events('1 hour')
                  WHERE datname = 'wdb' AND wait_event_type = 'Lock'"
            ),
            Some(1070)
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(concat_ws(':', wait_event_type, samples, round(share::numeric, 2)), ' '
                                   ORDER BY samples DESC)
                   FROM dbanalytics.query_waits(11, '10 minutes')"
            ),
            Some("Lock:70:1.00".to_string())
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(concat_ws(':', wait_event, samples, share), ' ')
                   FROM dbanalytics.query_waits(13, '10 minutes')"
            ),
            Some("PgSleep:10:1".to_string())
        );
        // per minute: the rolled minute R - 1 min has 30 lock samples over 60 ticks
        assert_eq!(
            one::<String>(
                "SELECT concat_ws(':', w.samples, w.ticks, w.avg_active_sessions)
                   FROM dbanalytics.wait_events_by_minute('10 minutes') w, r
                  WHERE w.minute = r.r - interval '1 minute' AND w.datname = 'wdb' AND w.wait_event_type = 'Lock'"
            ),
            Some("30:60:0.5".to_string())
        );
        // the view is the last hour
        assert_eq!(
            one::<i64>(
                "SELECT sum(samples)::bigint FROM dbanalytics.wait_events WHERE datname = 'wdb'"
            ),
            Some(1120)
        );
    }

    /// The minute rollup writes wait_minute: activity_minute's active samples per database and
    /// wait event. wait_events_by_minute reads it, and activity_minute for minutes rolled up
    /// before wait_minute's first row (history from 0.1.0); per minute it adds up to wait_events.
    #[pg_test]
    fn wait_minute_is_the_rollup_of_active_samples_per_wait_event() {
        partitions_back(
            &[
                "activity_raw",
                "activity_minute",
                "wait_minute",
                "connection_samples",
                "connection_minute",
                "pool_minute",
            ],
            1,
        );
        run(
            "CREATE TEMP TABLE r AS SELECT date_trunc('minute', now()) - interval '4 minutes' AS r",
        );
        run("INSERT INTO dbanalytics.activity_keys (descriptor, datname, usename, application_name, state,
                                                      wait_event_type, wait_event)
             VALUES ('wm-lock', 'wmdb', 'u', 'app', 'active', 'Lock', 'tuple'),
                    ('wm-cpu', 'wmdb', 'u', 'app', 'active', NULL, NULL),
                    ('wm-cpu-other-app', 'wmdb', 'u', 'other', 'active', NULL, NULL),
                    ('wm-idle', 'wmdb', 'u', 'app', 'idle in transaction', 'Client', 'ClientRead')");
        // minute R: 10 ticks of a lock waiter (query 21), two CPU sessions of two applications
        // (queries 22 and 23) and an idle-in-transaction one; minute R + 1: 5 ticks on CPU
        run(
            "INSERT INTO dbanalytics.activity_raw (sampled_at, pid, key_id, query_id)
             SELECT r + m * interval '1 minute' + i * interval '1 second', p, k.key_id, q
               FROM r, (VALUES (0, 10, 1, 'wm-lock', 21), (0, 10, 2, 'wm-cpu', 22),
                               (0, 10, 3, 'wm-cpu-other-app', 23), (0, 10, 4, 'wm-idle', 24),
                               (1, 5, 2, 'wm-cpu', 22)) v(m, ticks, p, d, q)
               JOIN dbanalytics.activity_keys k ON k.descriptor = v.d,
                    generate_series(0, v.ticks - 1) i",
        );
        run("INSERT INTO dbanalytics.connection_samples
             SELECT r + m * interval '1 minute' + i * interval '1 second', 'wmdb', 'u', 'app', 'active', 3, 1
               FROM r, (VALUES (0, 10), (1, 5)) v(m, ticks), generate_series(0, v.ticks - 1) i");
        // a minute rolled up before wait_minute existed: in activity_minute only
        run("INSERT INTO dbanalytics.activity_minute
             SELECT r - interval '6 minutes', 'wmdb', 'u', 'app', 'active', 'IO', 'DataFileRead', 25, 40 FROM r");
        // one rollup run, recorded as the collector records it
        run("INSERT INTO dbanalytics.source_state (source, updated_at)
             SELECT 'rollup', u.new_rolled_until FROM dbanalytics._rollup_minutes((SELECT r FROM r)) u
             ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at");
        assert_eq!(
            one::<String>(
                "SELECT string_agg(concat_ws(':', extract(minute FROM w.minute - r.r), w.wait_event_type,
                                             w.wait_event, w.samples), ' '
                                   ORDER BY w.minute, w.wait_event_type)
                   FROM dbanalytics.wait_minute w, r WHERE w.datname = 'wmdb'"
            ),
            Some("0:CPU:CPU:20 0:Lock:tuple:10 1:CPU:CPU:5".to_string())
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(concat_ws(':', extract(minute FROM w.minute - r.r), w.wait_event_type,
                                             w.samples), ' ' ORDER BY w.minute, w.wait_event_type)
                   FROM dbanalytics.wait_events_by_minute('15 minutes') w, r WHERE w.datname = 'wmdb'"
            ),
            Some("-6:IO:40 0:CPU:20 0:Lock:10 1:CPU:5".to_string())
        );
        assert_eq!(
            one::<bool>(
                "SELECT (SELECT array_agg(wait_event_type || sum ORDER BY wait_event_type)
                           FROM (SELECT wait_event_type, sum(samples) FROM dbanalytics.wait_events_by_minute('15 minutes')
                                  WHERE datname = 'wmdb' GROUP BY 1) m)
                      = (SELECT array_agg(wait_event_type || samples ORDER BY wait_event_type)
                           FROM dbanalytics.wait_events('15 minutes') WHERE datname = 'wmdb')"
            ),
            Some(true)
        );
    }

    #[pg_test(error = "dbanalytics: the query id must not be NULL")]
    fn query_waits_refuses_a_null_query_id() {
        run("SELECT * FROM dbanalytics.query_waits(NULL, '1 hour')");
    }

    #[pg_test(error = "dbanalytics: the analysis window must be positive, got -01:00:00")]
    fn wait_events_refuses_a_negative_window() {
        run("SELECT * FROM dbanalytics.wait_events('-1 hour')");
    }

    /// vacuum_blockers answers in a transaction that holds an xid, without naming its caller.
    #[pg_test]
    fn vacuum_blockers_leaves_out_the_caller() {
        run("SELECT pg_current_xact_id()");
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM dbanalytics.vacuum_blockers WHERE pid = pg_backend_pid()"
            ),
            Some(0)
        );
        assert_eq!(
            one::<bool>(
                "SELECT bool_and(xmin_age >= 0 AND action <> '') IS NOT FALSE FROM dbanalytics.vacuum_blockers"
            ),
            Some(true)
        );
    }

    /// WAL and replication risk: an inactive slot that retains WAL (and grew in history), a
    /// standby seen in the window and gone now, one gone before the window.
    #[pg_test]
    fn replication_risks_name_inactive_slots_and_vanished_standbys() {
        partitions_back(&["replication_stats", "replication_slot_stats"], 1);
        run(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
              WHERE slot_name = 'w_test_slot'",
        );
        run("SELECT pg_create_physical_replication_slot('w_test_slot', true)");
        run("CREATE TABLE w_wal AS SELECT g FROM generate_series(1, 10000) g");
        // 1000 bytes retained 30 minutes ago, 2000 15 minutes ago: 4000 bytes per hour
        run("INSERT INTO dbanalytics.replication_slot_stats (interval_start, interval_end, slot_name, active,
                                                               retained_bytes)
             VALUES (now() - interval '35 minutes', now() - interval '30 minutes', 'w_test_slot', false, 1000),
                    (now() - interval '20 minutes', now() - interval '15 minutes', 'w_test_slot', false, 2000)");
        run("INSERT INTO dbanalytics.replication_stats (interval_start, interval_end, pid, application_name,
                                                          client_addr, state)
             VALUES (now() - interval '20 minutes', now() - interval '10 minutes', 999, 'w_gone', '10.1.2.3', 'streaming'),
                    (now() - interval '3 hours', now() - interval '2 hours', 998, 'w_long_gone', NULL, 'streaming')");
        assert_eq!(
            one::<String>(
                "SELECT concat_ws('|', risk, active, retained_bytes > 0, round(retained_growth_per_hour::numeric),
                                  max_slot_wal_keep_size IS NULL, detail LIKE '%it can fill the disk',
                                  action LIKE '%pg_drop_replication_slot(''w_test_slot'')%')
                   FROM dbanalytics.replication_risks('1 hour') WHERE kind = 'slot' AND name = 'w_test_slot'"
            ),
            Some("high|f|t|4000|t|t|t".to_string())
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(concat_ws('|', name, risk, last_seen = now() - interval '10 minutes'), ',')
                   FROM dbanalytics.replication_risks WHERE kind = 'standby_gone'"
            ),
            Some("w_gone|high|t".to_string())
        );
        run("SELECT pg_drop_replication_slot('w_test_slot')");
    }

    /// Checkpoint health sums the checkpointer history of the window.
    #[pg_test]
    fn checkpoint_health_flags_requested_checkpoints() {
        partitions_back(&["bgwriter_stats"], 1);
        run("INSERT INTO dbanalytics.bgwriter_stats
             VALUES (now() - interval '2 hours', now() - interval '1 hour', false, 1, 3, 0, 0, 100, 50, 0, 50, 0, 0),
                    (now() - interval '1 hour', now(), false, 1, 1, 0, 0, 100, 50, 0, 50, 0, 0)");
        assert_eq!(
            one::<String>(
                "SELECT concat_ws('|', checkpoints_timed, checkpoints_req, round(requested_share::numeric, 3),
                                  minutes_between_checkpoints, backend_write_share, status)
                   FROM dbanalytics.checkpoint_health('1 day')"
            ),
            Some("2|4|0.667|20|0.25|frequent_requested_checkpoints".to_string())
        );
    }
}
