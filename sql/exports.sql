-- dbanalytics exports: what the analytics know, in formats other tools read (docs/exports.md).

-- Text escaped for the Prometheus text exposition format: backslash and line feed everywhere,
-- the double quote too inside a label value. E'' strings: the same text whatever
-- standard_conforming_strings says.
CREATE FUNCTION @extschema@._prometheus_escape(value text, in_label boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN in_label THEN pg_catalog.replace(e.text, E'"', E'\\"') ELSE e.text END
      FROM (SELECT pg_catalog.replace(pg_catalog.replace(COALESCE(value, ''), E'\\', E'\\\\'),
                                      E'\n', E'\\n') AS text) e
$$;

-- One sample line: metric{name="value",...} value. labels alternates names and values; a NULL
-- value is the empty string, which Prometheus reads as the label being absent. Values as
-- PostgreSQL prints a double precision with extra_float_digits = 1 (metrics_prometheus() pins
-- it): the shortest text that reads back exactly; NaN and the infinities as Prometheus spells them.
CREATE FUNCTION @extschema@._prometheus_sample(metric text, labels text[], value double precision)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT metric
           OPERATOR(pg_catalog.||) COALESCE('{' OPERATOR(pg_catalog.||) (
               SELECT pg_catalog.string_agg(labels[i] OPERATOR(pg_catalog.||) '="'
                          OPERATOR(pg_catalog.||) @extschema@._prometheus_escape(labels[i OPERATOR(pg_catalog.+) 1], true)
                          OPERATOR(pg_catalog.||) '"', ',' ORDER BY i)
                 FROM pg_catalog.generate_subscripts(labels, 1) i
                WHERE i OPERATOR(pg_catalog.%) 2 OPERATOR(pg_catalog.=) 1) OPERATOR(pg_catalog.||) '}', '')
           OPERATOR(pg_catalog.||) ' '
           OPERATOR(pg_catalog.||) CASE WHEN value OPERATOR(pg_catalog.=) 'Infinity'::double precision THEN '+Inf'
                                        WHEN value OPERATOR(pg_catalog.=) '-Infinity'::double precision THEN '-Inf'
                                        ELSE value::text END
$$;

-- One metric family: its HELP and TYPE lines, then its samples (none is allowed), each line
-- ending with a line feed.
CREATE FUNCTION @extschema@._prometheus_family(metric text, metric_type text, help text, samples text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '# HELP ' OPERATOR(pg_catalog.||) metric OPERATOR(pg_catalog.||) ' '
           OPERATOR(pg_catalog.||) @extschema@._prometheus_escape(help, false) OPERATOR(pg_catalog.||) E'\n'
           OPERATOR(pg_catalog.||) '# TYPE ' OPERATOR(pg_catalog.||) metric OPERATOR(pg_catalog.||) ' '
           OPERATOR(pg_catalog.||) metric_type OPERATOR(pg_catalog.||) E'\n'
           OPERATOR(pg_catalog.||) COALESCE((SELECT pg_catalog.string_agg(s.line OPERATOR(pg_catalog.||) E'\n', '' ORDER BY s.n)
                                               FROM pg_catalog.unnest(samples) WITH ORDINALITY s(line, n)), '')
$$;

-- The current state in the Prometheus text exposition format (version 0.0.4), every value a
-- gauge in base units (seconds, bytes, ratios): what a scrape every minute or so should see.
-- Read with the caller's privileges from the same functions and views users call:
-- health_score('1 hour'), collector_status, the latest sampler tick of connection_samples,
-- connection_pool_analytics('15 minutes') (each pool's latest minute), query_latency('1 hour')
-- (the 10 statements with the most executions), database_latency over the last hour, the
-- latest replication snapshot and the open alerts.
CREATE FUNCTION @extschema@.metrics_prometheus()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
WITH health AS MATERIALIZED (
    SELECT @extschema@.health_score('1 hour') AS h
), status AS MATERIALIZED (
    SELECT s.* FROM @extschema@.collector_status s WHERE s.health <> 'skipped' AND s.health <> 'off'
), tick AS (
    SELECT pg_catalog.max(c.sampled_at) AS at FROM @extschema@.connection_samples c
     WHERE c.sampled_at > pg_catalog.now() - interval '1 minute'
), connections AS MATERIALIZED (
    SELECT c.datname, c.usename, c.application_name, c.state,
           pg_catalog.sum(c.backends) AS backends, pg_catalog.sum(c.lock_waiting) AS lock_waiting
      FROM @extschema@.connection_samples c, tick t
     WHERE c.sampled_at = t.at
     GROUP BY c.datname, c.usename, c.application_name, c.state
), pools AS MATERIALIZED (
    SELECT DISTINCT ON (p.datname, p.usename, p.application_name) p.*
      FROM @extschema@.connection_pool_analytics('15 minutes') p
     ORDER BY p.datname, p.usename, p.application_name, p.minute DESC
), queries AS MATERIALIZED (
    SELECT q.* FROM @extschema@.query_latency('1 hour', 1000) q
     WHERE q.queryid <> 0
     ORDER BY q.executions DESC, q.queryid LIMIT 10
), databases AS MATERIALIZED (
    SELECT l.datname, pg_catalog.sum(l.executions) AS executions,
           @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95,0.99}') AS p
      FROM @extschema@.database_latency l
     WHERE l.interval_end > pg_catalog.now() - interval '1 hour' AND pg_catalog.cardinality(l.buckets) > 0
     GROUP BY l.datname
), replication AS MATERIALIZED (
    SELECT r.* FROM @extschema@.replication_stats r
     WHERE r.interval_end = (SELECT pg_catalog.max(x.interval_end) FROM @extschema@.replication_stats x
                              WHERE x.interval_end > pg_catalog.now() - interval '10 minutes')
), quantiles AS (
    -- a label named quantile belongs to summaries, whose _sum and _count are cumulative: these
    -- are gauges over the last hour, so the label is percentile
    SELECT * FROM (VALUES (1, '50'), (2, '95'), (3, '99')) q(i, percentile)
)
SELECT pg_catalog.concat(
    @extschema@._prometheus_family('dbanalytics_health_score', 'gauge',
        'Overall health score over the last hour, 0 to 100 (dbanalytics.health_score(''1 hour'')).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_health_score', '{}', (h.h ->> 'overall_score')::double precision)
                FROM health h WHERE h.h ->> 'overall_score' IS NOT NULL)),
    @extschema@._prometheus_family('dbanalytics_health_component_score', 'gauge',
        'Score of one health component over the last hour, 0 to 100.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_health_component_score',
                         ARRAY['component', c.key], c.value::text::double precision)
                FROM health h, pg_catalog.jsonb_each(h.h -> 'component_scores') c
               WHERE pg_catalog.jsonb_typeof(c.value) = 'number' ORDER BY c.key)),
    @extschema@._prometheus_family('dbanalytics_collector_source_healthy', 'gauge',
        '1 when the source or worker is healthy in dbanalytics.collector_status, else 0 (failing, stale, not running); sources skipped by design are left out.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_collector_source_healthy',
                         ARRAY['worker', s.worker, 'source', s.source], (s.health = 'healthy')::integer)
                FROM status s ORDER BY s.worker, s.source)),
    @extschema@._prometheus_family('dbanalytics_collector_source_duration_seconds', 'gauge',
        'Mean duration of a run of the source over the last hour.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_collector_source_duration_seconds',
                         ARRAY['worker', s.worker, 'source', s.source], s.avg_duration_ms::double precision / 1000)
                FROM status s WHERE s.avg_duration_ms IS NOT NULL ORDER BY s.worker, s.source)),
    @extschema@._prometheus_family('dbanalytics_collector_source_errors_last_hour', 'gauge',
        'Failed runs of the source over the last hour.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_collector_source_errors_last_hour',
                         ARRAY['worker', s.worker, 'source', s.source], s.errors_last_hour)
                FROM status s WHERE s.source <> 'worker' ORDER BY s.worker, s.source)),
    @extschema@._prometheus_family('dbanalytics_connections', 'gauge',
        'Client backends at the latest sampler tick, by database, user, application and state.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_connections',
                         ARRAY['datname', c.datname, 'usename', c.usename, 'application_name', c.application_name,
                               'state', c.state], c.backends)
                FROM connections c ORDER BY c.datname, c.usename, c.application_name, c.state)),
    @extschema@._prometheus_family('dbanalytics_lock_waiting_connections', 'gauge',
        'Client backends waiting on a heavyweight lock at the latest sampler tick.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_lock_waiting_connections',
                         ARRAY['datname', c.datname, 'usename', c.usename, 'application_name', c.application_name],
                         pg_catalog.sum(c.lock_waiting))
                FROM connections c GROUP BY c.datname, c.usename, c.application_name
               ORDER BY c.datname, c.usename, c.application_name)),
    @extschema@._prometheus_family('dbanalytics_pool_utilization_ratio', 'gauge',
        'Utilization of a connection pool (database, user, application) in its latest minute (dbanalytics.connection_pool_analytics).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_pool_utilization_ratio',
                         ARRAY['datname', p.datname, 'usename', p.usename, 'application_name', p.application_name],
                         p.utilization)
                FROM pools p WHERE p.utilization IS NOT NULL ORDER BY p.datname, p.usename, p.application_name)),
    @extschema@._prometheus_family('dbanalytics_pool_active_connections_max', 'gauge',
        'Most active sessions of the pool at one sampler tick in its latest minute.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_pool_active_connections_max',
                         ARRAY['datname', p.datname, 'usename', p.usename, 'application_name', p.application_name],
                         p.max_active)
                FROM pools p WHERE p.max_active IS NOT NULL ORDER BY p.datname, p.usename, p.application_name)),
    @extschema@._prometheus_family('dbanalytics_pool_recommended_size', 'gauge',
        'Pool size dbanalytics recommends for the pool, where it recommends one.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_pool_recommended_size',
                         ARRAY['datname', p.datname, 'usename', p.usename, 'application_name', p.application_name],
                         p.recommended_pool_size)
                FROM pools p WHERE p.recommended_pool_size IS NOT NULL ORDER BY p.datname, p.usename, p.application_name)),
    @extschema@._prometheus_family('dbanalytics_query_latency_seconds', 'gauge',
        'Execution time percentiles (50, 95, 99) over the last hour of the 10 statements with the most executions (latency histograms, within 5 %).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_query_latency_seconds',
                         ARRAY['datname', q.datname, 'usename', q.usename, 'queryid', q.queryid::text,
                               'percentile', k.percentile],
                         CASE k.i WHEN 1 THEN q.p50_ms WHEN 2 THEN q.p95_ms ELSE q.p99_ms END / 1000)
                FROM queries q, quantiles k ORDER BY q.executions DESC, q.queryid, k.i)),
    @extschema@._prometheus_family('dbanalytics_query_executions_last_hour', 'gauge',
        'Executions over the last hour of the statements in dbanalytics_query_latency_seconds.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_query_executions_last_hour',
                         ARRAY['datname', q.datname, 'usename', q.usename, 'queryid', q.queryid::text], q.executions)
                FROM queries q ORDER BY q.executions DESC, q.queryid)),
    @extschema@._prometheus_family('dbanalytics_database_latency_seconds', 'gauge',
        'Execution time percentiles (50, 95, 99) of all statements of a database over the last hour (latency histograms, within 5 %).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_database_latency_seconds',
                         ARRAY['datname', d.datname, 'percentile', k.percentile], d.p[k.i] / 1000)
                FROM databases d, quantiles k ORDER BY d.datname, k.i)),
    @extschema@._prometheus_family('dbanalytics_database_executions_last_hour', 'gauge',
        'Statement executions of a database over the last hour.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_database_executions_last_hour',
                         ARRAY['datname', d.datname], d.executions)
                FROM databases d ORDER BY d.datname)),
    @extschema@._prometheus_family('dbanalytics_replication_lag_seconds', 'gauge',
        'Replay lag of a standby at the latest replication snapshot (pg_stat_replication.replay_lag).',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_replication_lag_seconds',
                         ARRAY['application_name', r.application_name, 'client_addr', r.client_addr::text],
                         r.replay_lag_s)
                FROM replication r WHERE r.replay_lag_s IS NOT NULL ORDER BY r.application_name, r.client_addr)),
    @extschema@._prometheus_family('dbanalytics_replication_lag_bytes', 'gauge',
        'WAL not yet replayed by a standby at the latest replication snapshot.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_replication_lag_bytes',
                         ARRAY['application_name', r.application_name, 'client_addr', r.client_addr::text],
                         r.replay_lag_bytes)
                FROM replication r WHERE r.replay_lag_bytes IS NOT NULL ORDER BY r.application_name, r.client_addr)),
    @extschema@._prometheus_family('dbanalytics_alert_open', 'gauge',
        '1 for each open alert episode (dbanalytics.alerts), by rule and severity.',
        ARRAY(SELECT @extschema@._prometheus_sample('dbanalytics_alert_open',
                         ARRAY['rule', a.rule, 'severity', a.severity], 1)
                FROM @extschema@.alerts a WHERE a.resolved_at IS NULL ORDER BY a.rule)))
$$;
