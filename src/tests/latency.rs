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
