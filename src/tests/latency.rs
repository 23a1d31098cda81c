// In-server tests (src/tests.rs includes this file into its module `tests`): Latency histograms and percentiles.

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

/// merged_latency_percentiles() gives, per group, what latency_percentiles() gives for the
/// group's arrays concatenated; a row with NULL arrays adds nothing, NULL elements are skipped;
/// no row gives NULL; SQL
/// cannot call its transition function directly.
#[pg_test]
fn merged_percentiles_equal_the_percentiles_of_the_concatenated_histograms() {
    run("CREATE TEMP TABLE h (g int, buckets smallint[], counts bigint[]) ON COMMIT DROP");
    // group 1: random histograms over 40 rows (repeated buckets across rows), and a NULL row;
    // group 2: one row; group 3: only an empty histogram
    run("SELECT setseed(0.25)");
    run("INSERT INTO h SELECT 1, array_agg((random() * 464)::smallint), array_agg((random() * 1000)::bigint)
           FROM generate_series(1, 40) r, generate_series(1, 1 + r % 7) e GROUP BY r");
    // and in group 1 a row with NULL elements (read element by element, the NULL pairs skipped)
    run("INSERT INTO h VALUES (1, NULL, NULL), (1, '{5,NULL,7}', '{2,3,NULL}'), (2, '{100,3}', '{5,0}'), (3, '{}', '{}')");
    assert_eq!(
        one::<String>(
            "WITH merged AS (SELECT g, dbanalytics.merged_latency_percentiles(buckets, counts, '{0,0.5,0.9,0.99,1}') AS p
                               FROM h GROUP BY g),
                  concatenated AS (SELECT g, dbanalytics.latency_percentiles(array_agg(u.b), array_agg(u.c), '{0,0.5,0.9,0.99,1}') AS p
                                     FROM h LEFT JOIN LATERAL unnest(h.buckets, h.counts) u(b, c) ON true GROUP BY g)
             SELECT string_agg(g || ':' || (m.p IS NOT DISTINCT FROM c.p) || ':' || (m.p[3] IS NOT NULL), ' ' ORDER BY g)
               FROM merged m JOIN concatenated c USING (g)"
        ),
        Some("1:true:true 2:true:true 3:true:false".to_string())
    );
    assert_eq!(
        one::<bool>(
            "SELECT dbanalytics.merged_latency_percentiles(buckets, counts, '{0.5}') IS NULL FROM h WHERE false"
        ),
        Some(true)
    );
    run("CREATE FUNCTION pg_temp.refusal(call text) RETURNS text LANGUAGE plpgsql AS $$
         BEGIN EXECUTE call; RETURN 'accepted';
         EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ' ' || SQLERRM; END $$");
    assert_eq!(
        one::<String>(
            "SELECT pg_temp.refusal($q$SELECT dbanalytics.merged_latency_percentiles(b, c, '{0.5}')
                                         FROM (VALUES ('{1,2}'::smallint[], '{1}'::bigint[])) v(b, c)$q$)"
        ),
        Some(
            "22023 dbanalytics: buckets and counts must have the same length, got 2 and 1"
                .to_string()
        )
    );
    // SQL cannot call the transition function itself: no value of type internal can be written
    assert_eq!(
        one::<String>(
            "SELECT pg_temp.refusal($q$SELECT dbanalytics._latency_merge_step(NULL::internal, '{1}', '{1}', '{0.5}')$q$)"
        ),
        Some("42846 cannot cast type unknown to internal".to_string())
    );
}

#[pg_test]
fn regressions_compare_the_window_with_its_baseline() {
    // statements of the last 2 hours, written by hand: the window is the last hour, the baseline
    // the hour before it; every row from the minute tables (no rollup done yet)
    partitions_back(&["statement_stats", "statement_latency"], 1);
    run("DELETE FROM dbanalytics.source_state WHERE source IN ('hours', 'days')");
    // (queryid, calls and total ms before, calls and total ms in the window):
    // 9001 mean 1 ms -> 3 ms; 9002 steady; 9003 too few calls to judge; 9004 new in the window;
    // 9005 same mean, but its histogram's p95 rose (below)
    run("INSERT INTO dbanalytics.statement_stats
         SELECT at - interval '10 minutes', at, (SELECT oid FROM pg_database WHERE datname = current_database()),
                10, q, true, false, c, 0, ms, 0, c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
           FROM (VALUES (9001, 100, 100.0, 100, 300.0), (9002, 200, 400.0, 200, 420.0),
                        (9003, 10, 10.0, 10, 100.0), (9004, NULL, NULL, 100, 500.0),
                        (9005, 100, 275.2, 100, 275.2)) v(q, c0, ms0, c1, ms1),
                LATERAL (VALUES (now() - interval '90 minutes', c0, ms0), (now() - interval '30 minutes', c1, ms1)) s(at, c, ms)
          WHERE c IS NOT NULL");
    // 9005: all 100 executions in bucket 133 (2.752 ms) before; 6 of 100 in bucket 151 (6.016 ms)
    // in the window, so its p95 is 6.016 ms: a rise by 2.19
    run("INSERT INTO dbanalytics.statement_latency (interval_start, interval_end, dbid, userid, queryid, reset,
                                                    executions, buckets, counts)
         VALUES (now() - interval '100 minutes', now() - interval '90 minutes',
                 (SELECT oid FROM pg_database WHERE datname = current_database()), 10, 9005, false, 100, '{133}', '{100}'),
                (now() - interval '40 minutes', now() - interval '30 minutes',
                 (SELECT oid FROM pg_database WHERE datname = current_database()), 10, 9005, false, 100, '{133,151}', '{94,6}')");
    assert_eq!(
        one::<String>(
            // (the collector's own statements of this database may be there too: left out)
            "SELECT string_agg(concat_ws(':', queryid, regressed_on, baseline_calls, calls,
                                         round(baseline_mean_ms::numeric, 3), round(mean_ms::numeric, 3),
                                         baseline_p95_ms, p95_ms, round(extra_time_ms::numeric, 1)), ' ' ORDER BY rank)
               FROM dbanalytics.regressions('1 hour', '1 hour', 1000) WHERE queryid BETWEEN 9001 AND 9005"
        ),
        Some(
            "9001:mean:100:100:1.000:3.000:200.0 \
             9005:p95:100:100:2.752:2.752:2.752:6.016:0.0"
                .to_string()
        )
    );
    // a baseline that holds none of the earlier rows: nothing to compare with
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM dbanalytics.regressions('1 hour', '1 minute', 1000)
              WHERE queryid BETWEEN 9001 AND 9005"
        ),
        Some(0)
    );
}

#[pg_test(error = "dbanalytics: the baseline must be a positive interval, got -01:00:00")]
fn regressions_refuse_a_negative_baseline() {
    run("SELECT * FROM dbanalytics.regressions('1 hour', '-1 hour')");
}

/// Stores one collector interval's captures, each `(queryid, planid, minutes ago)`, for
/// database 1 and role 10, with a plan text for each, and an analyzed plan for plan 100's.
fn store_captures(captures: &[(i64, i64, i64)]) {
    let column = |f: fn(&(i64, i64, i64)) -> String| {
        captures.iter().map(f).collect::<Vec<_>>().join(",")
    };
    run(&format!(
        "SELECT dbanalytics._store_plans(array_fill(1, ARRAY[{n}])::bigint[], array_fill(10, ARRAY[{n}])::bigint[],
                ARRAY[{queryids}]::bigint[], ARRAY[{planids}]::bigint[], array_fill(false, ARRAY[{n}]),
                array_fill(1.5, ARRAY[{n}])::float8[],
                ARRAY(SELECT extract(epoch FROM now() - make_interval(mins => m))::float8 FROM unnest(ARRAY[{ago}]) m),
                ARRAY(SELECT '{{\"Plan\": ' || p || '}}' FROM unnest(ARRAY[{planids}]) p), array_fill(false, ARRAY[{n}]),
                ARRAY(SELECT CASE WHEN x.p = 100 THEN 'analyzed ' || x.m END
                        FROM ROWS FROM (unnest(ARRAY[{planids}]), unnest(ARRAY[{ago}])) x(p, m)))",
        n = captures.len(),
        queryids = column(|c| c.0.to_string()),
        planids = column(|c| c.1.to_string()),
        ago = column(|c| c.2.to_string()),
    ));
}

#[pg_test]
fn plan_changes_follow_each_statements_sightings_across_the_window_start() {
    collection_test();
    partitions_back(&["plan_sightings"], 1);
    // statement 7: plan 100 two hours ago, plan 200 thirty minutes ago, plan 100 again ten
    // minutes ago; statement 8: plan 300 only, captured twice; statement 9: plan 400 three
    // hours ago, plan 500 twenty minutes ago. Each call is one collector interval.
    store_captures(&[(7, 100, 120), (9, 400, 180)]);
    store_captures(&[(7, 200, 30), (8, 300, 50), (9, 500, 20)]);
    store_captures(&[(7, 100, 10), (8, 300, 5)]);
    assert_eq!(
        one::<String>(
            "SELECT string_agg(queryid || ':' || previous_planid || '>' || planid || '@'
                               || round(extract(epoch FROM now() - changed_at) / 60), ', ' ORDER BY changed_at)
               FROM dbanalytics._plan_changes(now() - interval '1 hour', now())"
        ),
        Some("7:100>200@30, 9:400>500@20, 7:200>100@10".into())
    );
    // a window that starts after a change does not show it
    assert_eq!(
        one::<String>(
            "SELECT string_agg(queryid || ':' || planid, ', ')
               FROM dbanalytics._plan_changes(now() - interval '15 minutes', now())"
        ),
        Some("7:100".into())
    );
    // one plan row per plan, spanning its captures; the first text stays
    assert_eq!(
        one::<String>(
            "SELECT string_agg(queryid || ':' || planid || ':' || captures || ':' || plan, ', ' ORDER BY queryid, planid)
               FROM (SELECT p.queryid, p.planid, p.plan,
                            (SELECT sum(s.captures) FROM dbanalytics.plan_sightings s
                              WHERE (s.queryid, s.planid) = (p.queryid, p.planid)) AS captures
                       FROM dbanalytics.plans p WHERE p.dbid = 1 AND p.userid = 10) p"
        ),
        Some(
            "7:100:2:{\"Plan\": 100}, 7:200:1:{\"Plan\": 200}, 8:300:2:{\"Plan\": 300}, \
             9:400:1:{\"Plan\": 400}, 9:500:1:{\"Plan\": 500}"
                .into()
        )
    );
    // the latest analyzed capture is kept, with when it ended; plans never analyzed have none
    assert_eq!(
        one::<String>(
            "SELECT string_agg(planid || ':' || coalesce(analyzed_plan || '@' || round(extract(epoch FROM now() - analyzed_at) / 60)
                                                           || ':' || analyzed_ms, '-'), ', ' ORDER BY planid)
               FROM dbanalytics.plans WHERE dbid = 1 AND userid = 10 AND queryid = 7"
        ),
        Some("100:analyzed 10@10:1.5, 200:-".into())
    );
    assert_eq!(
        one::<f64>(
            "SELECT extract(epoch FROM last_seen - first_seen)::float8 / 60 FROM dbanalytics.plans
              WHERE dbid = 1 AND userid = 10 AND queryid = 7 AND planid = 100"
        )
        .map(f64::round),
        Some(110.0)
    );
}

/// Calls of `function` in this transaction so far (track_functions = all).
fn calls_of(function: &str) -> i64 {
    one::<i64>(&format!(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_xact_user_functions
          WHERE schemaname = 'dbanalytics' AND funcname = '{function}'"
    ))
    .unwrap_or(0)
}

#[pg_test]
fn heavy_analytics_are_computed_once_per_statement_and_see_every_write_of_their_transaction() {
    partitions_back(&["statement_stats"], 1);
    run("SET track_functions = 'all'");
    let totals = "(SELECT count(*) FROM dbanalytics._statement_totals(now() - interval '1 hour', now())
                    WHERE queryid BETWEEN 9101 AND 9103)";
    let insert = |queryid: i64| {
        format!(
            "INSERT INTO dbanalytics.statement_stats
             SELECT now() - interval '20 minutes', now() - interval '10 minutes',
                    (SELECT oid FROM pg_database WHERE datname = current_database()),
                    10, {queryid}, true, false, 5, 0, 1.0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0"
        )
    };
    run(&insert(9101));
    // one statement asking three times for the same window and once for another: two computations
    let before = calls_of("_compute_statement_totals");
    assert_eq!(
        one::<String>(&format!(
            "SELECT concat_ws(' ', {totals}, {totals}, {totals},
                              (SELECT count(*) FROM dbanalytics._statement_totals(now() - interval '2 hours', now())
                                WHERE queryid BETWEEN 9101 AND 9103))"
        )),
        Some("1 1 1 1".into())
    );
    assert_eq!(calls_of("_compute_statement_totals") - before, 2);

    // a row this transaction writes is counted by the next statement
    run(&insert(9102));
    assert_eq!(one::<i64>(&format!("SELECT {totals}")), Some(2));

    // a row written in a subtransaction that rolls back is counted inside it, not after it
    run(&format!(
        "DO $$
         DECLARE inside bigint; after bigint;
         BEGIN
             BEGIN
                 {};
                 SELECT {totals} INTO inside;
                 RAISE EXCEPTION 'roll back';
             EXCEPTION WHEN raise_exception THEN NULL;
             END;
             SELECT {totals} INTO after;
             PERFORM set_config('dbanalytics_test.counts', inside || ' ' || after, true);
         END $$",
        insert(9103)
    ));
    assert_eq!(
        one::<String>("SELECT current_setting('dbanalytics_test.counts')"),
        Some("3 2".into())
    );

    // another role computes its own rows, in the same statement and snapshot
    run("CREATE ROLE memo_reader IN ROLE dbanalytics_reader");
    run("CREATE FUNCTION public.memo_as_reader() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
         SET search_path = pg_catalog, pg_temp
         AS 'SELECT count(*) FROM dbanalytics._statement_totals(now() - interval ''1 hour'', now())
              WHERE queryid BETWEEN 9101 AND 9103'");
    run("ALTER FUNCTION public.memo_as_reader() OWNER TO memo_reader");
    let before = calls_of("_compute_statement_totals");
    assert_eq!(
        one::<String>(&format!("SELECT concat_ws(' ', {totals}, public.memo_as_reader(), {totals})")),
        Some("2 2 2".into())
    );
    assert_eq!(calls_of("_compute_statement_totals") - before, 2);

    // a function that writes values as text another way computes its own rows too, in the same
    // statement and snapshot (its SET clause changes IntervalStyle while it runs)
    run("CREATE FUNCTION public.memo_iso_intervals() RETURNS bigint LANGUAGE sql STABLE
         SET search_path = pg_catalog, pg_temp SET IntervalStyle = iso_8601
         AS 'SELECT count(*) FROM dbanalytics._statement_totals(now() - interval ''1 hour'', now())
              WHERE queryid BETWEEN 9101 AND 9103'");
    let before = calls_of("_compute_statement_totals");
    assert_eq!(
        one::<String>(&format!("SELECT concat_ws(' ', {totals}, public.memo_iso_intervals(), {totals})")),
        Some("2 2 2".into())
    );
    assert_eq!(calls_of("_compute_statement_totals") - before, 2);
}

/// A kept function's rows are those of the tuple store its computing function filled
/// (api/memo.rs): a store that spilled to a temporary file (copied into one held in memory), an
/// empty one, and the copy replayed later in the statement; a role that may not execute the
/// computing function gets the error the executor gives.
#[pg_test]
fn kept_rows_are_the_computed_rows_whether_their_store_spilled_or_was_empty() {
    partitions_back(&["statement_latency"], 1);
    // 3,000 statements' resource use: about 200 kB of rows, which spill at work_mem = 64kB
    // (_compute_statement_usage sets no work_mem of its own)
    run("INSERT INTO dbanalytics.statement_latency (interval_start, interval_end, dbid, userid, queryid, reset,
                 executions, buckets, counts, cpu_user_time, cpu_system_time, disk_read_bytes, disk_write_bytes)
         SELECT now() - interval '20 minutes', now() - interval '10 minutes', 1, 10, q, false, 1, '{1}', '{1}',
                q / 10.0, q / 100.0, q, 2 * q
           FROM generate_series(1, 3000) q");
    run("SET track_functions = 'all'");
    run("SET work_mem = '64kB'");
    // what makes the store spill: the computing function takes the session's work_mem
    assert_eq!(
        one::<bool>(
            "SELECT coalesce(array_to_string(proconfig, ','), '') NOT LIKE '%work_mem%' FROM pg_proc
              WHERE oid = 'dbanalytics._compute_statement_usage(timestamptz, timestamptz)'::regprocedure"
        ),
        Some(true)
    );
    let kept = |since: &str| format!("dbanalytics._statement_usage(now() - interval '{since}', now() - interval '5 minutes')");
    let computed =
        |since: &str| format!("dbanalytics._compute_statement_usage(now() - interval '{since}', now() - interval '5 minutes')");
    let before = calls_of("_compute_statement_usage");
    // the kept function computed once (its first call) and replayed three times, the same rows
    // as computing them again; the two direct calls of the computing function count too
    assert_eq!(
        one::<String>(&format!(
            "SELECT concat_ws(' ', (SELECT count(*) FROM {k} WHERE dbid = 1),
                              (SELECT sum(disk_write_bytes) FROM {k} WHERE dbid = 1),
                              (SELECT count(*) FROM (SELECT * FROM {k} EXCEPT ALL SELECT * FROM {c}) d),
                              (SELECT count(*) FROM (SELECT * FROM {c} EXCEPT ALL SELECT * FROM {k}) d))",
            k = kept("1 hour"),
            c = computed("1 hour")
        )),
        Some("3000 9003000 0 0".into())
    );
    assert_eq!(calls_of("_compute_statement_usage") - before, 3);
    // no rows: computed once, replayed once
    let before = calls_of("_compute_statement_usage");
    assert_eq!(
        one::<String>(&format!(
            "SELECT concat_ws(' ', (SELECT count(*) FROM {k}), (SELECT count(*) FROM {k}))",
            k = kept("6 minutes")
        )),
        Some("0 0".into())
    );
    assert_eq!(calls_of("_compute_statement_usage") - before, 1);
    // one call per row, each with other arguments (none asked for above, whose rows this
    // snapshot would reuse): each computed, with the function looked up once for the query
    let before = calls_of("_compute_statement_usage");
    assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM generate_series(1, 3) g,
                    LATERAL dbanalytics._statement_usage(now() - g * interval '1 hour', now() - interval '4 minutes') u
              WHERE u.dbid = 1"
        ),
        Some(9000)
    );
    assert_eq!(calls_of("_compute_statement_usage") - before, 3);
    run("RESET work_mem");

    // EXECUTE on the computing function is checked for the current role
    run("CREATE ROLE memo_no_compute IN ROLE dbanalytics_reader");
    run("REVOKE EXECUTE ON FUNCTION dbanalytics._compute_statement_usage(timestamptz, timestamptz)
         FROM dbanalytics_reader");
    run(&format!(
        "DO $$
         BEGIN
             SET LOCAL ROLE memo_no_compute;
             PERFORM count(*) FROM {k};
         EXCEPTION WHEN insufficient_privilege THEN
             PERFORM set_config('dbanalytics_test.denied', SQLERRM, true);
         END $$",
        k = kept("1 hour")
    ));
    assert_eq!(
        one::<String>("SELECT current_setting('dbanalytics_test.denied', true)"),
        Some("permission denied for function _compute_statement_usage".into())
    );
}

/// A prepared statement's plan entry (plans/mod.rs, `Planned`) lives as long as the memory
/// context of the plan it belongs to: entered once (one callback however often it is entered
/// again), emptied when the context is reset, so that a statement allocated at the same
/// address later is never taken for it.
#[pg_test]
fn plan_entries_end_with_their_plans_memory() {
    use crate::plans::for_tests::{callbacks, enter, entry, held};
    unsafe {
        let context = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"plan entry test".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        );
        let size = std::mem::size_of::<pg_sys::PlannedStmt>();
        let stmt = pg_sys::MemoryContextAllocZero(context, size) as *mut pg_sys::PlannedStmt;
        (*stmt).planTree = pg_sys::MemoryContextAllocZero(context, 64) as *mut pg_sys::Plan;
        (*stmt).queryId = 42;
        assert_eq!(entry(stmt, 42), None);
        assert!(enter(stmt, 7, context));
        assert!(enter(stmt, 7, context));
        assert_eq!(entry(stmt, 42), Some(7));
        assert_eq!(entry(stmt, 43), None, "another query id is another statement");
        assert_eq!(callbacks(context), 1, "one callback per statement");
        // the plan cache frees a plan by deleting its context; a reset runs the same callbacks
        pg_sys::MemoryContextReset(context);
        assert!(!held(stmt as usize), "the entry went with the plan's memory");
        // a new statement in the same memory, maybe at the same address (the freed one is not
        // read unless it is)
        let again = pg_sys::MemoryContextAllocZero(context, size) as *mut pg_sys::PlannedStmt;
        (*again).planTree = pg_sys::MemoryContextAllocZero(context, 64) as *mut pg_sys::Plan;
        (*again).queryId = 42;
        assert_eq!(entry(again, 42), None);
        if again == stmt {
            assert_eq!(entry(stmt, 42), None);
        }
        pg_sys::MemoryContextDelete(context);
    }
}
