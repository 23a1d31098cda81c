// In-server tests (src/tests.rs includes this file into its module `tests`): Wait events, vacuum blockers, replication risks, checkpoints.

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
    // coarser buckets sum their minutes' samples and ticks (the ticks of every sampled minute
    // of the bucket, waits or not): compared with the minutes summed by hand, and the same total
    for (resolution, seconds) in [("15 minutes", 900), ("1 day", 86400)] {
        assert_eq!(
            one::<String>(&format!(
                "WITH fine AS (SELECT * FROM dbanalytics.wait_events_by_minute('30 minutes')),
                      ticks AS (SELECT b, sum(t.ticks)::bigint AS ticks
                                  FROM (SELECT DISTINCT dbanalytics._time_floor(minute, {seconds}) AS b, minute, ticks
                                          FROM fine) t GROUP BY 1),
                      summed AS (SELECT dbanalytics._time_floor(f.minute, {seconds}) AS minute, f.datname,
                                        f.wait_event_type, f.wait_event, sum(f.samples)::bigint AS samples
                                   FROM fine f GROUP BY 1, 2, 3, 4),
                      coarse AS (SELECT * FROM dbanalytics.wait_events_by_minute('30 minutes', '{resolution}'))
                 SELECT count(*) FILTER (WHERE c.samples IS DISTINCT FROM s.samples OR c.ticks IS DISTINCT FROM t.ticks
                                            OR c.avg_active_sessions IS DISTINCT FROM s.samples::float8 / t.ticks)
                        || ':' || sum(c.samples)
                   FROM coarse c
                   FULL JOIN summed s USING (minute, datname, wait_event_type, wait_event)
                   LEFT JOIN ticks t ON t.b = s.minute
                  WHERE datname = 'wdb'"
            )),
            Some("0:1120".to_string()),
            "resolution {resolution}"
        );
    }
    // a resolution of whole minutes from 1 minute to 1 day, or an error with a hint
    run("CREATE FUNCTION pg_temp.refusal(call text) RETURNS text LANGUAGE plpgsql AS $$
         DECLARE hint text;
         BEGIN EXECUTE call; RETURN 'accepted';
         EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
              RETURN SQLSTATE || ' ' || left(hint, 16); END $$");
    for (resolution, outcome) in [
        ("'90 seconds'", "22023 Pass an interval"),
        ("'2 days'", "22023 Pass an interval"),
        ("NULL", "22023 Pass an interval"),
        ("'1 day'", "accepted"),
    ] {
        assert_eq!(
            one::<String>(&format!(
                "SELECT pg_temp.refusal($q$SELECT * FROM dbanalytics.wait_events_by_minute('1 hour', {resolution})$q$)"
            )),
            Some(outcome.to_string()),
            "resolution {resolution}"
        );
    }
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
            "wait_hourly",
            "wait_daily",
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
    run("INSERT INTO dbanalytics.source_state (source, updated_at) SELECT 'rollup', r FROM r
         ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at");
    run("SELECT dbanalytics._rollup_minutes()");
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

/// Issue 13: the minute rollup sums the active samples of each whole UTC hour into wait_hourly
/// and of each whole day into wait_daily (a day only once wait_hourly holds all its hours), and
/// wait_events reads whole days and hours from them with the same answers as the minutes give.
/// History: every minute of [T0, U) in activity_minute, U the rollup's bound, T0 three hours
/// before the previous UTC day: a partial day, one whole day, and the hours of today.
#[pg_test]
fn wait_hours_and_days_give_the_minutes_totals() {
    partitions_back(
        &[
            "activity_raw",
            "activity_minute",
            "wait_minute",
            "wait_hourly",
            "wait_daily",
            "connection_samples",
            "connection_minute",
            "pool_minute",
        ],
        3,
    );
    run("CREATE TEMP TABLE b AS
         SELECT u, dbanalytics._time_floor(u, 86400) - interval '27 hours' AS t0
           FROM (SELECT date_trunc('minute', now() - interval '5 seconds') AS u) x");
    // per minute: query 31 on a lock twice, query 32 on CPU once, query 33 idle in transaction
    run("INSERT INTO dbanalytics.activity_minute
         SELECT m, 'whdb', 'u', 'app', st, wt, we, q, n
           FROM b, generate_series(b.t0, b.u - interval '1 minute', interval '1 minute') m,
                (VALUES ('active', 'Lock', 'tuple', 31, 2), ('active', NULL, NULL, 32, 1),
                        ('idle in transaction', 'Client', 'ClientRead', 33, 5)) v(st, wt, we, q, n)");
    // the minutes up to T0 were rolled up by an earlier run: this one rolls [T0, U)
    run("INSERT INTO dbanalytics.source_state (source, updated_at) SELECT 'rollup', t0 FROM b
         ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at");
    run("SELECT dbanalytics._rollup_minutes()");
    assert_eq!(
        one::<String>("SELECT string_agg(DISTINCT concat_ws(':', wait_event_type, wait_event, query_id, samples), ' ')
                         FROM dbanalytics.wait_hourly WHERE datname = 'whdb'"),
        Some("CPU:CPU:32:60 Lock:tuple:31:120".to_string())
    );
    assert_eq!(
        one::<bool>("SELECT (SELECT array_agg(DISTINCT h.hour_end ORDER BY h.hour_end)
                             FROM dbanalytics.wait_hourly h WHERE h.datname = 'whdb')
                          = (SELECT array_agg(g ORDER BY g) FROM b,
                                    generate_series(b.t0 + interval '1 hour', dbanalytics._time_floor(b.u, 3600),
                                                    interval '1 hour') g)"),
        Some(true)
    );
    // the day ending at T0 + 3 hours is not whole in wait_hourly: only the next one is rolled
    assert_eq!(
        one::<String>("SELECT string_agg(concat_ws(':', d.day_end = dbanalytics._time_floor(b.u, 86400),
                                                   d.wait_event_type, d.query_id, d.samples), ' '
                                         ORDER BY d.wait_event_type)
                         FROM dbanalytics.wait_daily d, b WHERE d.datname = 'whdb'"),
        Some("t:CPU:32:1440 t:Lock:31:2880".to_string())
    );
    // the same totals as the minutes of each window, which a day, hours and minutes serve
    let answers = "SELECT string_agg(concat_ws(':', wait_event_type, samples, top_query_id), ' ' ORDER BY wait_event_type)
                     FROM dbanalytics.wait_events(w::interval) WHERE datname = 'whdb'";
    let minutes = "SELECT string_agg(concat_ws(':', t, n, q), ' ' ORDER BY t)
                     FROM (SELECT COALESCE(m.wait_event_type, 'CPU') t, sum(m.samples) n, min(m.query_id) q
                             FROM dbanalytics.activity_minute m
                            WHERE m.minute >= date_trunc('minute', now() - w::interval + interval '59.999999 seconds')
                              AND m.state = 'active' AND m.datname = 'whdb' GROUP BY 1) x";
    let totals = |sql: &str, window: &str| {
        one::<String>(&sql.replace("w::interval", &format!("'{window}'::interval")))
    };
    for window in ["3 hours", "30 hours", "3 days"] {
        assert!(totals(answers, window).is_some());
        assert_eq!(totals(answers, window), totals(minutes, window), "wait_events('{window}')");
    }
    let lock = |window: &str| {
        one::<i64>(&format!(
            "SELECT samples FROM dbanalytics.wait_events('{window}') WHERE datname = 'whdb' AND wait_event_type = 'Lock'"
        ))
        .unwrap_or(-1)
    };
    let lock_minutes = |window: &str| {
        one::<i64>(&format!(
            "SELECT sum(samples)::bigint FROM dbanalytics.activity_minute
              WHERE minute >= date_trunc('minute', now() - '{window}'::interval + interval '59.999999 seconds')
                AND state = 'active' AND wait_event_type = 'Lock' AND datname = 'whdb'"
        ))
        .unwrap_or(-2)
    };
    let bump_hour = |hour_end: &str, by: i64| {
        run(&format!(
            "UPDATE dbanalytics.wait_hourly h SET samples = samples + {by} FROM b
              WHERE h.wait_event_type = 'Lock' AND h.hour_end = {hour_end}"
        ))
    };
    // the last whole hour comes from wait_hourly
    bump_hour("dbanalytics._time_floor(b.u, 3600)", 10);
    assert_eq!(lock("3 hours"), lock_minutes("3 hours") + 10);
    bump_hour("dbanalytics._time_floor(b.u, 3600)", -10);
    // the whole day from wait_daily, the hours before it from wait_hourly
    run("UPDATE dbanalytics.wait_daily SET samples = samples + 1000000 WHERE wait_event_type = 'Lock'");
    bump_hour("b.t0 + interval '3 hours'", 1000);
    assert_eq!(lock("3 days"), lock_minutes("3 days") + 1_001_000);
    assert_eq!(
        one::<i64>("SELECT samples FROM dbanalytics.query_waits(31, '3 days') WHERE datname = 'whdb'"),
        Some(lock_minutes("3 days") + 1_001_000)
    );
    // hours before wait_hourly's first row (history from 0.1.0): the minutes serve them
    run("UPDATE dbanalytics.wait_daily SET samples = samples - 1000000 WHERE wait_event_type = 'Lock'");
    run("DELETE FROM dbanalytics.wait_hourly h USING b WHERE h.hour_end <= b.t0 + interval '2 hours'");
    assert_eq!(lock("3 days"), lock_minutes("3 days") + 1000);
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
