-- dbanalytics: health history and alerts. The collector records the health score every
-- dbanalytics.health_interval and evaluates alert_rules at every snapshot.

CREATE TABLE @extschema@.health_history (
    computed_at   timestamptz NOT NULL,
    overall_score numeric     NOT NULL,
    performance   numeric     NOT NULL,
    reliability   numeric     NOT NULL,
    efficiency    numeric     NOT NULL,
    security      numeric     NOT NULL,
    maintenance   numeric     NOT NULL,
    risk_factors  jsonb       NOT NULL
) PARTITION BY RANGE (computed_at);
INSERT INTO @extschema@.partition_indexes VALUES ('health_history', 'computed_at', '(computed_at)');

-- Records the score if the last record is older than min_spacing; returns rows written.
CREATE FUNCTION @extschema@._record_health(min_spacing interval)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    score jsonb;
BEGIN
    IF EXISTS (SELECT FROM @extschema@.health_history h
                WHERE h.computed_at > pg_catalog.now() - min_spacing) THEN
        RETURN 0;
    END IF;
    score := @extschema@.health_score(interval '1 hour');
    INSERT INTO @extschema@.health_history
    VALUES (pg_catalog.now(), (score->>'overall_score')::numeric,
            (score->'component_scores'->>'performance')::numeric,
            (score->'component_scores'->>'reliability')::numeric,
            (score->'component_scores'->>'efficiency')::numeric,
            (score->'component_scores'->>'security')::numeric,
            (score->'component_scores'->>'maintenance')::numeric,
            score->'risk_factors');
    RETURN 1;
END
$$;

-- The score over time, with what changed since the previous record and the risks behind it.
CREATE VIEW @extschema@.health_trend AS
SELECT h.computed_at, h.overall_score,
       h.overall_score - pg_catalog.lag(h.overall_score) OVER w AS change,
       h.performance, h.reliability, h.efficiency, h.security, h.maintenance,
       (SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s, -%s)', r->>'factor', r->>'severity', r->>'points_lost'), ', ')
          FROM pg_catalog.jsonb_array_elements(h.risk_factors) r) AS risks
  FROM @extschema@.health_history h
WINDOW w AS (ORDER BY h.computed_at)
 ORDER BY h.computed_at;

CREATE TABLE @extschema@.alert_rules (
    -- bounded: a rule's name goes into every NOTIFY payload of its alerts (8000 bytes at most)
    rule        text PRIMARY KEY CHECK (pg_catalog.length(rule) BETWEEN 1 AND 63),
    metric      text    NOT NULL CHECK (metric IN ('slow_queries_per_minute', 'deadlocks', 'replication_lag_seconds',
                                                   'idle_in_transaction_seconds', 'connections_ratio', 'xid_age',
                                                   'health_score', 'health_score_drop', 'archive_failing',
                                                   'inactive_slot_retained_bytes', 'wraparound_days', 'disk_full_days',
                                                   'plan_regressions')),
    comparison  text    NOT NULL CHECK (comparison IN ('>', '<')),
    -- bounded for the same reason: at most 15 digits before the point and 6 after it
    threshold   numeric NOT NULL CHECK (pg_catalog.abs(threshold) < 1e15 AND pg_catalog.scale(threshold) <= 6),
    severity    text    NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    enabled     boolean NOT NULL DEFAULT true,
    description text CHECK (pg_catalog.length(description) <= 1000),
    -- the condition must hold this long (at consecutive evaluations) before an alert opens
    for_duration interval NOT NULL DEFAULT '0' CHECK (for_duration BETWEEN '0' AND '7 days'),
    -- an episode that resolved less than this ago is continued (reopened, not announced again)
    -- when its condition returns: a flapping value pages once
    cooldown    interval NOT NULL DEFAULT '0' CHECK (cooldown BETWEEN '0' AND '7 days')
);

-- The rules dbanalytics ships, enabled. CREATE EXTENSION seeds them; pg_dump keeps only the
-- rules that differ from them (added, changed or disabled ones, see the end of this section),
-- since the CREATE EXTENSION of a restore seeds them again.
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

INSERT INTO @extschema@.alert_rules (rule, metric, comparison, threshold, severity, description, for_duration, cooldown)
SELECT * FROM @extschema@._builtin_alert_rules();

-- Whether a rule is one of the built-in rules exactly as shipped (enabled, unchanged).
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

-- Keeps what a dump holds of alert_rules restorable with its exact meaning:
--  - a rule inserted under the name of a built-in rule still as shipped replaces it: this is how
--    pg_restore brings back a changed built-in rule, which CREATE EXTENSION has just seeded;
--  - a built-in rule is never deleted or renamed (a restore would bring it back): disable it.
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

-- One alert episode: opened once, updated while the condition holds, resolved when it clears.
CREATE TABLE @extschema@.alerts (
    alert_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule         text        NOT NULL,
    severity     text        NOT NULL,
    opened_at    timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    resolved_at  timestamptz,
    value        numeric,
    threshold    numeric     NOT NULL,
    details      jsonb
);
CREATE UNIQUE INDEX alerts_one_open_episode ON @extschema@.alerts (rule) WHERE resolved_at IS NULL;
CREATE INDEX ON @extschema@.alerts (opened_at);

-- Since when each enabled rule's condition has held, at consecutive evaluations (a rule whose
-- condition does not hold has no row): what for_duration is measured against. Not dumped: a
-- restored server starts counting again.
CREATE TABLE @extschema@.alert_conditions (
    rule          text        PRIMARY KEY,
    holding_since timestamptz NOT NULL
);

-- pg_dump keeps the rules that differ from the built-in ones, and the alert history with the
-- position of its identity (a sequence is dumped only when registered itself).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alert_rules',
    'WHERE NOT @extschema@._alert_rule_as_shipped(alert_rules)');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alerts_alert_id_seq', '');

-- The current value of every alert metric (from the latest snapshot interval or live).
CREATE FUNCTION @extschema@._alert_metrics()
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

-- Opens, updates and resolves alert episodes; announces each opening once with NOTIFY. Any
-- role may LISTEN on any channel, so the payload holds only what every listener may see (the
-- episode's id, rule, severity, value and threshold); the details stay in dbanalytics.alerts,
-- readable by dbanalytics_reader. Each rule is evaluated in its own subtransaction: one rule
-- that fails never stops the others.
CREATE FUNCTION @extschema@._evaluate_alerts()
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
