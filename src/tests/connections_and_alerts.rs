// In-server tests (src/tests.rs includes this file into its module `tests`): Connection pool verdicts and alert rules.

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
    // the next minute, one pool takes the cluster to its connection limit: 5 active, the rest
    // idle; another one has 1 active and 3 idle in a transaction then
    run("INSERT INTO dbanalytics.connection_samples
         SELECT date_trunc('minute', now()) - interval '4 minutes', current_database(), 'postgres', p.app,
                p.state, p.backends, 0
           FROM (VALUES ('e17_many', 'active', 5),
                        ('e17_many', 'idle', current_setting('max_connections')::int
                                             - current_setting('superuser_reserved_connections')::int - 5),
                        ('e17_leak2', 'active', 1), ('e17_leak2', 'idle in transaction', 3)) p(app, state, backends)");
    let verdicts = one::<String>(
        "SELECT string_agg(application_name || ':' || pool_status || ':' || recommended_pool_size, ' '
                           ORDER BY application_name)
           FROM dbanalytics.connection_pool_analytics('1 hour') WHERE application_name LIKE 'e17%'",
    );
    assert_eq!(
        verdicts.as_deref(),
        Some(
            "e17_busy:high_utilization:11 e17_idle:oversized:3 e17_leak:idle_in_transaction:4 \
             e17_leak2:near_connection_limit:2 e17_locks:lock_hotspot:4 e17_locksidle:lock_hotspot:10 \
             e17_many:near_connection_limit:6"
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
    // its mitigation quotes the latest of those minutes' advice (_pool_recommendation of one
    // verdict); with no such minute, its own fixed text
    assert_eq!(
        one::<bool>(
            "SELECT mitigation LIKE 'client connections peaked at %'
               FROM dbanalytics._health_measures('1 hour') WHERE indicator = 'connection_pool_efficiency'"
        ),
        Some(true)
    );
    // three pools of that minute are near the limit (the whole cluster's row, e17_leak2 and
    // e17_many, with peaks of 6, 1 and 5 active sessions): the cluster's row is quoted
    let mitigation = one::<String>(
        "SELECT mitigation FROM dbanalytics._health_measures('1 hour') WHERE indicator = 'connection_pool_efficiency'",
    )
    .unwrap_or_default();
    assert!(
        mitigation.contains("measured peak of 6 concurrently active sessions"),
        "{mitigation}"
    );
    assert_eq!(
        one::<bool>("SELECT dbanalytics._pool_recommendation(NULL::dbanalytics.pool_verdict) IS NULL"),
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
