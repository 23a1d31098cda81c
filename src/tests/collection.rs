// In-server tests (src/tests.rs includes this file into its module `tests`): Collection: snapshots and their deltas, resets, partitions, source runs, redaction.

#[pg_test]
fn rollups_give_the_same_totals_as_the_snapshots() {
    partitions_back(
        &[
            "statement_stats",
            "statement_hourly",
            "statement_daily",
            "database_stats",
            "statement_stats_packed",
            "packed_hours",
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
    // packing takes the minutes of the two oldest rolled hours within retention_minutes (one
    // day): one statement_stats_packed row each, their minutes gone from statement_stats
    assert_eq!(one::<i64>("SELECT dbanalytics._pack_minutes()"), Some(2));
    let packed_hours = || {
        one::<i64>("SELECT count(*) FROM dbanalytics.statement_stats_packed WHERE queryid = 4242")
            .unwrap()
    };
    assert_eq!(packed_hours(), 2);
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM dbanalytics.statement_stats s
               JOIN dbanalytics.statement_stats_packed p
                 ON s.interval_end > p.hour_end - interval '1 hour' AND s.interval_end <= p.hour_end"
        ),
        Some(0)
    );
    // the next runs pack two more hours each, up to the last rolled hour
    let mut runs = 0;
    while one::<i64>("SELECT dbanalytics._pack_minutes()").unwrap() > 0 {
        runs += 1;
        assert!(runs < 20, "the backlog never ends");
    }
    // the packed hours: those ending after the hour one day ago, up to the last rolled one
    assert_eq!(
        Some(packed_hours()),
        one::<i64>(
            "SELECT count(DISTINCT dbanalytics._time_ceil(interval_end, 3600))
               FROM generate_series(now() - interval '50 hours', now(), interval '10 minutes') interval_end
              WHERE interval_end > dbanalytics._time_floor(now() - interval '1 day', 3600)
                AND interval_end <= (SELECT updated_at FROM dbanalytics.source_state WHERE source = 'hours')"
        )
    );
    assert!(runs >= 9, "{runs}");
    // one clock per packed hour, holding its 6 interval ends, on which the rows were packed
    assert_eq!(
        one::<String>(
            "SELECT count(*) || ' ' || min(cardinality(interval_ends)) || '-' || max(cardinality(interval_ends))
               FROM dbanalytics.packed_hours"
        ),
        Some(format!("{} 6-6", packed_hours()))
    );
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM dbanalytics.statement_stats_packed WHERE get_byte(intervals, 0) <> 3"
        ),
        Some(0)
    );
    // the minutes of the packed hours unpack to the rows that were packed
    assert_eq!(
        one::<i64>(
            "SELECT sum(calls)::bigint FROM dbanalytics.statement_hourly WHERE queryid = 4242"
        ),
        one::<i64>(
            "SELECT count(*) FROM (SELECT * FROM dbanalytics.statement_stats
                                   UNION ALL
                                   SELECT * FROM dbanalytics._packed_statement_minutes(now() - interval '3 days', now())) s
              WHERE queryid = 4242 AND calls = 1 AND total_exec_time = 2.0 AND rows = 1 AND shared_blks_hit = 5
                AND shared_blks_read = 1 AND interval_end - interval_start = interval '10 minutes'
                AND interval_end <= (SELECT updated_at FROM dbanalytics.source_state WHERE source = 'hours')
                AND interval_end > now() - interval '50 hours 5 minutes'"
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
fn an_hour_packed_again_is_packed_without_a_second_clock() {
    partitions_back(
        &["statement_stats", "statement_stats_packed", "packed_hours"],
        1,
    );
    // two intervals of the last whole hour, rolled up (source_state 'hours') and packed
    let insert = |end: &str| {
        run(&format!(
            "INSERT INTO dbanalytics.statement_stats
             SELECT e - interval '10 minutes', e, 1, 10, 4343, true, false, 1, 0, 2.0, 0, 1, 5, 1,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
               FROM (SELECT date_trunc('hour', now()) - interval '{end}' AS e) x"
        ))
    };
    insert("30 minutes");
    insert("20 minutes");
    run("INSERT INTO dbanalytics.source_state (source, updated_at) VALUES ('hours', date_trunc('hour', now()))
         ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at");
    assert_eq!(one::<i64>("SELECT dbanalytics._pack_minutes()"), Some(1));
    // a late interval of the same hour, packed by the next run: its hour keeps the first clock,
    // which lacks its end, so it is packed without one (format 2) and read with the others (the
    // hour is not rolled up here: read its packed part directly)
    insert("5 minutes");
    assert_eq!(one::<i64>("SELECT dbanalytics._pack_minutes()"), Some(1));
    assert_eq!(
        one::<String>(
            "SELECT string_agg(get_byte(intervals, 0)::text, ',' ORDER BY get_byte(intervals, 0))
               FROM dbanalytics.statement_stats_packed WHERE queryid = 4343"
        ),
        Some("2,3".to_string())
    );
    assert_eq!(
        one::<String>(
            "SELECT count(*) || ':' || max(cardinality(interval_ends)) FROM dbanalytics.packed_hours
              WHERE hour_end = date_trunc('hour', now())"
        ),
        Some("1:2".to_string())
    );
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM dbanalytics._packed_statement_minutes(now() - interval '1 day', now())
              WHERE queryid = 4343 AND calls = 1"
        ),
        Some(3)
    );
    assert_eq!(
        one::<i64>(
            "SELECT sum(calls)::bigint FROM dbanalytics._packed_statement_totals(now() - interval '1 day', now())
              WHERE queryid = 4343"
        ),
        Some(3)
    );
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

/// A counter source's state is kept by its SQL (`_snapshot_source`): the first snapshot only
/// stores the epoch it is given, the next one starts its rows at the previous snapshot's time.
#[pg_test]
fn snapshot_source_keeps_the_state_of_its_source() {
    collection_test();
    partitions_back(&["database_stats"], 0);
    run("DELETE FROM dbanalytics.source_state WHERE source = 'databases'");
    assert_eq!(
        one::<i64>(
            "SELECT dbanalytics._snapshot_source('databases', false, false, 'life-1', 'reset-1', NULL)"
        ),
        Some(0)
    );
    assert_eq!(
        one::<String>(
            "SELECT concat_ws('|', server_life, stats_reset, coalesce(dealloc::text, '-'), updated_at = now())
               FROM dbanalytics.source_state WHERE source = 'databases'"
        ),
        Some("life-1|reset-1|-|t".to_string())
    );
    run("UPDATE dbanalytics.source_state SET updated_at = now() - interval '5 minutes' WHERE source = 'databases'");
    let written = one::<i64>(
        "SELECT dbanalytics._snapshot_source('databases', false, false, 'life-1', 'reset-1', 7)",
    )
    .unwrap();
    assert!(written > 0, "one row per database");
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM dbanalytics.database_stats
              WHERE interval_start = now() - interval '5 minutes' AND interval_end = now()"
        ),
        Some(written)
    );
    assert_eq!(
        one::<String>(
            "SELECT concat_ws('|', dealloc, updated_at = now()) FROM dbanalytics.source_state WHERE source = 'databases'"
        ),
        Some("7|t".to_string())
    );
}

#[pg_test(error = "dbanalytics: 'nope' is not a counter source")]
fn snapshot_source_refuses_an_unknown_source() {
    run("SELECT dbanalytics._snapshot_source('nope', false, false, NULL, NULL, NULL)");
}

#[pg_test]
fn a_counter_added_to_the_list_is_collected_and_rolled_up() {
    // statement_counter_values is the one list of the statement counters: one attribute there
    // and _add_statement_counter_columns() (as schema.sql says) carry a counter dbanalytics does
    // not keep, pg_stat_statements' local_blks_dirtied, through the snapshot and both rollups
    collection_test();
    run("ALTER TYPE dbanalytics.statement_counter_values ADD ATTRIBUTE local_blks_dirtied bigint");
    assert_eq!(
        one::<i32>("SELECT dbanalytics._add_statement_counter_columns()"),
        Some(4),
        "one column on each of the four tables"
    );
    assert_eq!(
        one::<String>(
            "SELECT string_agg(c.relname || ':' || a.attname || ':' || a.attnotnull, ' ' ORDER BY c.relname)
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              WHERE c.relnamespace = 'dbanalytics'::regnamespace AND c.relkind IN ('r', 'p')
                AND a.attname = 'local_blks_dirtied'
                AND a.attnum = (SELECT max(attnum) FROM pg_attribute WHERE attrelid = c.oid)"
        ),
        Some(
            "statement_counters:local_blks_dirtied:false statement_daily:local_blks_dirtied:false \
             statement_hourly:local_blks_dirtied:false statement_stats:local_blks_dirtied:false"
                .to_string()
        ),
        "at the end of each table, nullable"
    );
    assert_eq!(
        one::<i32>("SELECT dbanalytics._add_statement_counter_columns()"),
        Some(0),
        "nothing more to add"
    );
    run("CREATE TEMP TABLE counter_probe (id int, pad text)");
    assert_eq!(snapshot_problems(), "");
    for _ in 0..3 {
        run("INSERT INTO counter_probe SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
    }
    assert_eq!(snapshot_problems(), "");
    let server = one::<i64>(
        "SELECT sum(local_blks_dirtied)::bigint FROM pg_stat_statements
          WHERE query LIKE 'INSERT INTO counter_probe%'",
    )
    .unwrap();
    assert!(server > 0, "temporary-table inserts dirty local blocks");
    assert_eq!(
        Spi::get_two::<i64, i64>(
            "SELECT sum(st.local_blks_dirtied)::bigint, sum(st.calls)::bigint
               FROM dbanalytics.statement_stats st
               JOIN dbanalytics.statements s USING (dbid, userid, queryid, toplevel)
              WHERE s.query LIKE 'INSERT INTO counter_probe%'"
        )
        .unwrap(),
        (Some(server), Some(3)),
        "the snapshot's delta of a statement first seen since the previous snapshot is its value"
    );

    // two intervals of one hour, two days ago: the hourly rollup sums them, the daily one the hour
    // (partitions made after the snapshots, whose retention drops those of past days)
    partitions_back(
        &["statement_stats", "statement_hourly", "statement_daily"],
        3,
    );
    run("INSERT INTO dbanalytics.statement_stats
              (interval_start, interval_end, dbid, userid, queryid, toplevel, reset,
               calls, plans, total_exec_time, total_plan_time, rows, shared_blks_hit, shared_blks_read,
               shared_blks_dirtied, shared_blks_written, local_blks_hit, local_blks_read, temp_blks_read,
               temp_blks_written, blk_read_time, blk_write_time, wal_records, wal_fpi, wal_bytes,
               local_blks_dirtied)
         SELECT e - interval '10 minutes', e, 1, 10, 4343, true, false, 1, 0, 2.0, 0, 1, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, d
           FROM (VALUES (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days' + interval '10 hours 20 minutes', 3),
                        (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days' + interval '10 hours 40 minutes', 4)) v(e, d)");
    run("SELECT dbanalytics._rollup_statements('hour',
                    date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days' + interval '10 hours',
                    date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days' + interval '11 hours')");
    run("SELECT dbanalytics._rollup_statements('day',
                    date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days',
                    date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day')");
    assert_eq!(
        one::<String>(
            "SELECT string_agg(concat_ws(':', t, calls, local_blks_dirtied), ' ' ORDER BY t)
               FROM (SELECT 'hourly' AS t, calls, local_blks_dirtied FROM dbanalytics.statement_hourly WHERE queryid = 4343
                     UNION ALL
                     SELECT 'daily', calls, local_blks_dirtied FROM dbanalytics.statement_daily WHERE queryid = 4343) r"
        ),
        Some("daily:2:7 hourly:2:7".to_string())
    );
}
