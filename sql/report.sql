-- dbanalytics report: one self-contained HTML document with charts (docs/report.md). Inline CSS
-- and SVG only: no script, no font or image fetched from anywhere, readable without JavaScript.
-- Every value that comes from the database goes through _html_escape().

-- Text made safe inside HTML element content and double- or single-quoted attribute values.
CREATE FUNCTION @extschema@._html_escape(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
               COALESCE(value, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

-- A JSON array of objects (json_agg of rows: the keys keep the columns' order) as an HTML table:
-- the first object's keys are the header, numbers are right-aligned, JSON nulls are empty cells,
-- arrays are their elements and objects their key: value pairs, comma-separated.
-- No row: a paragraph saying if_empty.
CREATE FUNCTION @extschema@._html_table(table_rows json, if_empty text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN table_rows IS NULL OR pg_catalog.json_array_length(table_rows) = 0
        THEN '<p class="empty">' || @extschema@._html_escape(if_empty) || '</p>'
        ELSE '<table><thead><tr>'
             || (SELECT pg_catalog.string_agg('<th>' || @extschema@._html_escape(h.key) || '</th>', '' ORDER BY h.n)
                   FROM pg_catalog.json_each(table_rows -> 0) WITH ORDINALITY h(key, value, n))
             || '</tr></thead><tbody>'
             || (SELECT pg_catalog.string_agg(
                            '<tr>' || (SELECT pg_catalog.string_agg(
                                                  CASE pg_catalog.json_typeof(c.value) WHEN 'number' THEN '<td class="n">'
                                                                                       ELSE '<td>' END
                                                  || @extschema@._html_escape(CASE pg_catalog.json_typeof(c.value)
                                                         WHEN 'array' THEN (SELECT pg_catalog.string_agg(e.v, ', ' ORDER BY e.k)
                                                                              FROM pg_catalog.json_array_elements_text(c.value)
                                                                                   WITH ORDINALITY e(v, k))
                                                         WHEN 'object' THEN (SELECT pg_catalog.string_agg(e.key || ': ' || COALESCE(e.value, ''), ', ' ORDER BY e.k)
                                                                               FROM pg_catalog.json_each_text(c.value)
                                                                                    WITH ORDINALITY e(key, value, k))
                                                         ELSE c.value #>> '{}' END) || '</td>', '' ORDER BY c.n)
                                          FROM pg_catalog.json_each(r.item) WITH ORDINALITY c(key, value, n))
                            || '</tr>', '' ORDER BY r.n)
                   FROM pg_catalog.json_array_elements(table_rows) WITH ORDINALITY r(item, n))
             || '</tbody></table>'
    END
$$;

-- A timestamp for a table cell, to the second, in the session's time zone.
CREATE FUNCTION @extschema@._html_time(at timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_char(at, 'YYYY-MM-DD HH24:MI:SS')
$$;

-- A time-series chart as an inline SVG figure (src/api/chart.rs). The points are three parallel
-- arrays (time, series, value); they are averaged into at most 240 buckets across [from_time,
-- to_time], so a week of minutes draws as fast as an hour. Lines: each series' own average in a
-- bucket. Stacked (areas): each series' sum over the bucket's distinct times (a series absent at
-- a time counts as zero there), stacked in the order of the series' totals, largest at the
-- bottom. Every series is one <polyline> (lines) or <polygon> (areas) with data-series and
-- data-points attributes, and a <title> a browser shows on hover; the y axis starts at 0, goes up
-- in 4 steps of 1, 2 or 5 times a power of ten and names the unit; axis numbers have at most two
-- decimals. At most 9 series are drawn (a stacked chart adds the others up as "other", a line
-- chart says how many it left out); NULL, NaN and infinite values are left out, negative ones
-- drawn as 0; series are ordered by the call's collation and their legend shows 40 characters.
-- Text is handled as the server encoding's bytes, so any database encoding works. NULL when
-- from_time, to_time or stacked is NULL.
CREATE FUNCTION @extschema@._svg_chart(chart_id text, title text, unit text, from_time timestamptz,
                                       to_time timestamptz, stacked boolean,
                                       at timestamptz[], series text[], value double precision[])
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_svg_chart';

-- The resolution of the report's time-series functions for a window: the widest of 1, 2, 5,
-- 10, 15 and 30 minutes, 1, 2, 3, 6 and 12 hours and 1 day that still gives each of
-- _svg_chart's 240 buckets at least one point (a minute for windows under 4 hours), so a week
-- is read as 336 half-hours instead of 10,080 minutes and draws the same line.
CREATE FUNCTION @extschema@._chart_resolution(analysis_window interval)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.max(r.width), interval '1 minute')
      FROM pg_catalog.unnest('{1 minute,2 minutes,5 minutes,10 minutes,15 minutes,30 minutes,1 hour,2 hours,3 hours,6 hours,12 hours,1 day}'::interval[]) r(width)
     WHERE r.width * 240 <= analysis_window
$$;

-- One section of the report: an anchor, a heading and its body (already HTML).
CREATE FUNCTION @extschema@._html_section(section_id text, heading text, body text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '<section id="' || @extschema@._html_escape(section_id) || '"><h2>' || @extschema@._html_escape(heading)
           || '</h2>' || COALESCE(body, '') || '</section>'
$$;

-- The report: everything the analytics say about the window, as one HTML document. Read with the
-- caller's privileges from the functions and views users call, so it never disagrees with them
-- and a dbanalytics_reader sees only the query texts statement_texts shows it. row_limit bounds
-- every table (1 to 1000).
CREATE FUNCTION @extschema@.report_html(analysis_window interval DEFAULT '1 day', row_limit integer DEFAULT 15)
RETURNS text
LANGUAGE sql VOLATILE  -- index_advice() is volatile (it may try hypothetical indexes)
SET search_path = pg_catalog, pg_temp
-- for every function it calls: a week of minutes grouped and sorted in memory, not in temporary
-- files (the default 4 MB spilled wait_events_by_minute's 100,000 rows of a week to disk)
SET work_mem = '64MB'
AS $$
WITH args AS MATERIALIZED (
    SELECT @extschema@._window_start(analysis_window) AS lo, pg_catalog.now() AS hi,
           @extschema@._row_limit(row_limit) AS n,
           -- the time-series functions' buckets: about 240 per chart whatever the window
           @extschema@._chart_resolution(analysis_window) AS resolution
), health AS MATERIALIZED (
    SELECT @extschema@.health_score(analysis_window) AS h
), analysis AS MATERIALIZED (
    SELECT @extschema@.query_analysis(analysis_window) AS a
), perf AS MATERIALIZED (
    SELECT m.* FROM args a, @extschema@.database_performance_metrics(analysis_window, a.resolution) m
), waits AS MATERIALIZED (
    SELECT w.minute, w.wait_event_type || ': ' || w.wait_event AS event, pg_catalog.sum(w.avg_active_sessions) AS sessions
      FROM args a, @extschema@.wait_events_by_minute(analysis_window, a.resolution) w
     GROUP BY 1, 2
), pools AS MATERIALIZED (
    -- connection_pool_analytics' rows, their advice in words only for the rows the table shows
    SELECT p.* FROM @extschema@._pool_verdicts(analysis_window) p
), chains AS MATERIALIZED (
    SELECT c.* FROM @extschema@.blocking_chains(analysis_window) c
), sections AS (
    SELECT 1 AS ord, @extschema@._html_section('health', 'Health', pg_catalog.concat(
        pg_catalog.format('<p class="score">Overall score <b>%s</b> / 100</p>',
                          @extschema@._html_escape(COALESCE(h.h ->> 'overall_score', 'unknown'))),
        '<h3>Components</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'component', c.key, 'score', c.value::text::numeric,
                                     'weight', (h.h -> 'component_weights' ->> c.key)::numeric) ORDER BY c.key)
                                   FROM pg_catalog.jsonb_each(h.h -> 'component_scores') c), 'No component was scored.'),
        '<h3>Risks</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'factor', r ->> 'factor', 'component', r ->> 'component', 'severity', r ->> 'severity',
                                     'points lost', (r ->> 'points_lost')::numeric, 'impact', r ->> 'impact',
                                     'mitigation', r ->> 'mitigation') ORDER BY o)
                                   FROM pg_catalog.jsonb_array_elements(h.h -> 'risk_factors') WITH ORDINALITY x(r, o)),
                                'No risk found in this window.'),
        '<h3>Recommendations</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'priority', r ->> 'priority', 'indicator', r ->> 'indicator', 'action', r ->> 'action',
                                     'why', r ->> 'why', 'expected improvement', r ->> 'expected_improvement',
                                     'effort', r ->> 'effort') ORDER BY o)
                                   FROM pg_catalog.jsonb_array_elements(h.h -> 'recommendations') WITH ORDINALITY x(r, o)),
                                'Nothing to recommend.'),
        '<h3>Open alerts</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'rule', a.rule, 'severity', a.severity, 'opened at', @extschema@._html_time(a.opened_at),
                                     'last seen', @extschema@._html_time(a.last_seen_at), 'value', a.value, 'threshold', a.threshold)
                                     ORDER BY a.opened_at)
                                   FROM (SELECT a.* FROM @extschema@.alerts a WHERE a.resolved_at IS NULL
                                          ORDER BY a.opened_at LIMIT x.n) a), 'No alert is open.'))) AS html
      FROM health h, args x
    UNION ALL
    SELECT 2, @extschema@._html_section('throughput', 'Throughput, latency and connections', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-throughput', 'Throughput', 'per second', a.lo, a.hi, false,
                    pg_catalog.array_agg(x.minute), pg_catalog.array_agg(x.name), pg_catalog.array_agg(x.v))
           FROM (SELECT m.minute, COALESCE(m.datname, '(none)') || ' ' || t.name AS name, t.v
                   FROM perf m CROSS JOIN LATERAL (VALUES ('transactions', m.transactions_per_second),
                                                          ('queries', m.queries_per_second)) t(name, v)) x),
        (SELECT @extschema@._svg_chart('chart-latency', 'Statement latency p50 / p95 / p99', 'ms', a.lo, a.hi, false,
                    pg_catalog.array_agg(x.minute), pg_catalog.array_agg(x.name), pg_catalog.array_agg(x.v))
           FROM (SELECT m.minute, COALESCE(m.datname, '(none)') || ' ' || t.name AS name, t.v
                   FROM perf m CROSS JOIN LATERAL (VALUES ('p50', m.p50_ms), ('p95', m.p95_ms),
                                                          ('p99', m.p99_ms)) t(name, v)) x),
        (SELECT @extschema@._svg_chart('chart-connections', 'Connections by state', 'connections', a.lo, a.hi, true,
                    pg_catalog.array_agg(x.minute), pg_catalog.array_agg(x.name), pg_catalog.array_agg(x.v))
           FROM (SELECT m.minute, t.name, pg_catalog.sum(t.v) AS v
                   FROM perf m CROSS JOIN LATERAL (VALUES ('active', m.active_connections),
                                                          ('idle in transaction', m.idle_in_transaction_connections),
                                                          ('idle', m.idle_connections)) t(name, v)
                  GROUP BY 1, 2) x)))
      FROM args a
    UNION ALL
    SELECT 3, @extschema@._html_section('waits', 'Wait events', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-waits', 'Wait events (average active sessions, stacked)', 'sessions',
                    a.lo, a.hi, true, pg_catalog.array_agg(w.minute), pg_catalog.array_agg(w.event),
                    pg_catalog.array_agg(w.sessions))
           FROM waits w),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'wait event', x.event, 'average active sessions', pg_catalog.round(x.aas::numeric, 3))
                                     ORDER BY x.aas DESC)
                                   -- each bucket's average active sessions times the minutes of the window
                                   -- it covers (the first bucket may start before the window)
                                   FROM (SELECT w.event,
                                                pg_catalog.sum(w.sessions * pg_catalog.date_part('epoch',
                                                    LEAST(w.minute + a.resolution, a.hi) - GREATEST(w.minute, a.lo)) / 60)
                                                / GREATEST(pg_catalog.date_part('epoch', a.hi - a.lo) / 60, 1) AS aas
                                           FROM waits w GROUP BY w.event ORDER BY 2 DESC LIMIT a.n) x),
                                'No backend was sampled waiting in this window.')))
      FROM args a
    UNION ALL
    SELECT 4, @extschema@._html_section('queries', 'Top queries', pg_catalog.concat(
        '<h3>By total execution time, with the trend against the window before</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'rank', t.rank, 'database', t.datname, 'user', t.usename,
                                     'query', pg_catalog.left(t.query, 300), 'calls', t.calls,
                                     'total ms', pg_catalog.round(t.total_time_ms::numeric, 1),
                                     'mean ms', pg_catalog.round(t.mean_time_ms::numeric, 3),
                                     'CPU ms', pg_catalog.round((t.cpu_user_time_ms + t.cpu_system_time_ms)::numeric, 1),
                                     'share', pg_catalog.round(t.share_of_total_time::numeric, 3),
                                     'trend', t.trend) ORDER BY t.rank)
                                   FROM @extschema@.top_queries(analysis_window, 'total_time', a.n) t),
                                'No statement ran in this window.'),
        '<h3>Latency percentiles (from the per-statement histograms)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'rank', l.rank, 'database', l.datname, 'user', l.usename,
                                     'query', pg_catalog.left(l.query, 300), 'executions', l.executions,
                                     'p50 ms', pg_catalog.round(l.p50_ms::numeric, 3),
                                     'p95 ms', pg_catalog.round(l.p95_ms::numeric, 3),
                                     'p99 ms', pg_catalog.round(l.p99_ms::numeric, 3),
                                     'max ms', pg_catalog.round(l.max_ms::numeric, 3)) ORDER BY l.rank)
                                   FROM @extschema@.query_latency(analysis_window, a.n) l),
                                'No latency histogram covers this window.'),
        '<h3>Optimization opportunities (N+1 loops, caching)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'type', o ->> 'type', 'impact', o ->> 'impact',
                                     'query', pg_catalog.left(o ->> 'query', 300),
                                     'parent query', pg_catalog.left(o ->> 'parent_query', 300),
                                     'evidence', o -> 'evidence', 'solution', o ->> 'solution') ORDER BY x.k)
                                   FROM (SELECT o, k FROM pg_catalog.jsonb_array_elements(q.a -> 'optimization_opportunities')
                                                 WITH ORDINALITY e(o, k) LIMIT a.n) x),
                                'No N+1 loop or caching opportunity found.'),
        '<h3>Slow queries</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'query', pg_catalog.left(o ->> 'query', 300), 'calls', (o ->> 'calls')::numeric,
                                     'mean ms', (o ->> 'mean_time_ms')::numeric, 'reason', o ->> 'reason') ORDER BY x.k)
                                   FROM (SELECT o, k FROM pg_catalog.jsonb_array_elements(q.a -> 'slow_queries')
                                                 WITH ORDINALITY e(o, k) LIMIT a.n) x),
                                'No statement is slower on average than dbanalytics.slow_query_threshold.'),
        '<h3>Plan changes (plan history)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'changed at', c.changed_at, 'database', c.datname, 'user', c.usename,
                                     'query', pg_catalog.left(c.query, 300),
                                     'p95 ms before', pg_catalog.round(c.p95_ms_before::numeric, 3),
                                     'p95 ms after', pg_catalog.round(c.p95_ms_after::numeric, 3),
                                     'plan before', pg_catalog.left(c.previous_plan, 600),
                                     'plan after', pg_catalog.left(c.plan, 600)) ORDER BY c.changed_at DESC)
                                   FROM @extschema@.plan_changes(analysis_window, a.n) c),
                                'No statement changed its plan in this window (or no plan was captured).'),
        '<h3>Index advice (the advisor)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'table', i.table_name, 'ddl', i.ddl,
                                     'statement ms', pg_catalog.round(i.statement_time_ms::numeric, 1),
                                     'estimated benefit', i.estimated_benefit, 'validated', i.validated,
                                     'table writes', i.table_writes_in_window))
                                   FROM @extschema@.index_advice(analysis_window, a.n) i),
                                'The advisor has no index to suggest.')))
      FROM args a, analysis q
    UNION ALL
    SELECT 5, @extschema@._html_section('pools', 'Connection pools', pg_catalog.concat(
        -- each pool's mean in each of the time-series functions' buckets: a few hundred points
        -- for the chart to draw, not one per pool and minute (50,000 in a week)
        (SELECT @extschema@._svg_chart('chart-pools', 'Pool utilization (active over the largest pool seen)', 'ratio',
                    a.lo, a.hi, false, pg_catalog.array_agg(p.bucket),
                    pg_catalog.array_agg(pg_catalog.concat_ws(' ', p.datname, p.usename, p.application_name)),
                    pg_catalog.array_agg(p.utilization))
           FROM (SELECT pg_catalog.date_bin(a.resolution, p.minute, a.lo) AS bucket, p.datname, p.usename,
                        p.application_name, pg_catalog.avg(p.utilization) AS utilization
                   FROM pools p GROUP BY 1, 2, 3, 4) p),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'database', p.datname, 'user', p.usename, 'application', p.application_name,
                                     'max active', p.max_active, 'utilization', pg_catalog.round(p.utilization::numeric, 3),
                                     'status', p.pool_status, 'recommended size', p.recommended_pool_size,
                                     'recommendation', @extschema@._pool_recommendation(p))
                                     ORDER BY p.datname, p.usename, p.application_name)
                                   -- each pool's latest minute, found by hashing (sorting the week's
                                   -- rows by their names took a tenth of a second)
                                   FROM (SELECT p.* FROM pools p
                                           JOIN (SELECT l.datname, l.usename, l.application_name,
                                                        pg_catalog.max(l.minute) AS minute
                                                   FROM pools l GROUP BY 1, 2, 3) l
                                             ON l.minute = p.minute
                                            AND (l.datname, l.usename, l.application_name)
                                                IS NOT DISTINCT FROM (p.datname, p.usename, p.application_name)
                                          ORDER BY p.datname, p.usename, p.application_name
                                          LIMIT a.n) p),
                                'No pool was sampled in this window.')))
      FROM args a
    UNION ALL
    SELECT 6, @extschema@._html_section('locks', 'Lock contention and blocking chains', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-locks', 'Sessions blocked behind another', 'sessions', a.lo, a.hi, false,
                    pg_catalog.array_agg(c.sampled_at), pg_catalog.array_agg('blocked sessions'::text),
                    pg_catalog.array_agg(c.blocked))
           FROM (SELECT c.sampled_at, pg_catalog.sum(c.blocked_count)::float8 AS blocked FROM chains c GROUP BY 1) c),
        '<h3>Most waited-on objects</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'waited on', l.waited_on, 'lock type', l.locktype, 'modes', l.modes,
                                     'waits', l.waits, 'waiters', l.waiters,
                                     'estimated wait s', pg_catalog.round(l.estimated_wait_seconds::numeric, 1),
                                     'longest wait', l.max_wait::text, 'last seen', @extschema@._html_time(l.last_seen)))
                                   FROM (SELECT l.* FROM @extschema@.lock_contention(analysis_window) l LIMIT a.n) l),
                                'No lock wait was sampled in this window.'),
        '<h3>Blocking chains (latest first)</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'sampled at', @extschema@._html_time(c.sampled_at), 'head pid', c.head_pid, 'head user', c.head_usename,
                                     'head application', c.head_application_name, 'head state', c.head_state,
                                     'blocked', c.blocked_count, 'depth', c.chain_depth, 'relations', c.relations)
                                     ORDER BY c.sampled_at DESC)
                                   FROM (SELECT c.* FROM chains c ORDER BY c.sampled_at DESC, c.head_pid LIMIT a.n) c),
                                'No blocking chain was sampled in this window.')))
      FROM args a
    UNION ALL
    SELECT 7, @extschema@._html_section('indexes', 'Index verdicts', @extschema@._html_table(
        (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                    'schema', i.schemaname, 'table', i.tablename, 'index', i.indexname, 'verdict', i.index_status,
                    'scans', i.scans_in_window, 'size', pg_catalog.pg_size_pretty(i.index_bytes),
                    'recommendation (DDL)', i.recommendation)
                    ORDER BY i.index_status = 'effective', i.index_status, i.schemaname, i.tablename, i.indexname)
           FROM (SELECT i.* FROM @extschema@.index_effectiveness(analysis_window) i
                  ORDER BY i.index_status = 'effective', i.index_status, i.schemaname, i.tablename, i.indexname
                  LIMIT a.n) i),
        'No index was watched in this window.'))
      FROM args a
    UNION ALL
    SELECT 8, @extschema@._html_section('cache', 'Cache and replication', pg_catalog.concat(
        (SELECT @extschema@._svg_chart('chart-cache', 'Buffer cache hit ratio', 'ratio', a.lo, a.hi, false,
                    pg_catalog.array_agg(m.minute), pg_catalog.array_agg(COALESCE(m.datname, '(none)')),
                    pg_catalog.array_agg(m.cache_hit_ratio))
           FROM perf m),
        '<h3>Tables read most from disk</h3>',
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'table', c.object_name, 'blocks hit', c.hit, 'blocks read', c.read,
                                     'hit ratio', pg_catalog.round((c.hit::float8 / NULLIF(c.hit + c.read, 0))::numeric, 4))
                                     ORDER BY c.read DESC)
                                   FROM (SELECT c.object_name, pg_catalog.sum(c.blks_hit) AS hit, pg_catalog.sum(c.blks_read) AS read
                                           FROM @extschema@.cache_analytics(analysis_window) c WHERE c.level = 'table'
                                          GROUP BY 1 ORDER BY 3 DESC NULLS LAST LIMIT a.n) c),
                                'No table was read in this window.'),
        (SELECT @extschema@._svg_chart('chart-replication', 'Replication replay lag', 's', a.lo, a.hi, false,
                    pg_catalog.array_agg(r.interval_end),
                    pg_catalog.array_agg(COALESCE(r.application_name, '?') || ' ' || COALESCE(r.client_addr::text, 'local')),
                    pg_catalog.array_agg(r.replay_lag_s))
           FROM @extschema@.replication_stats r WHERE r.interval_end >= a.lo),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'kind', r.kind, 'name', r.name, 'state', r.state,
                                     'replay lag s', r.replay_lag_seconds, 'replay lag bytes', r.replay_lag_bytes,
                                     'max replay lag s in window', r.max_replay_lag_seconds_in_window,
                                     'retained bytes', r.retained_bytes, 'detail', r.detail))
                                   FROM (SELECT r.* FROM @extschema@.replication_analytics(analysis_window) r LIMIT a.n) r),
                                'No standby or replication slot.')))
      FROM args a
    UNION ALL
    SELECT 9, @extschema@._html_section('collector', 'Collector health and the monitor''s own storage', pg_catalog.concat(
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'source', s.source, 'worker', s.worker, 'health', s.health, 'last run', @extschema@._html_time(s.last_run),
                                     'avg ms', pg_catalog.round(s.avg_duration_ms::numeric, 1),
                                     'errors last hour', s.errors_last_hour,
                                     'detail', COALESCE(s.last_error, s.skipped_reason)) ORDER BY s.health = 'healthy', s.source)
                                   FROM @extschema@.collector_status s), 'No collector status.'),
        @extschema@._html_table((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                     'table', u.table_name, 'tier', u.tier, 'rows (estimate)', u.rows_estimated,
                                     'size', pg_catalog.pg_size_pretty(u.bytes), 'per day', pg_catalog.pg_size_pretty(u.bytes_per_day),
                                     'projected', pg_catalog.pg_size_pretty(u.projected_bytes)) ORDER BY u.bytes DESC)
                                   FROM @extschema@.storage_usage u), 'No storage figures.')))
      FROM args a
)
SELECT pg_catalog.concat(
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>dbanalytics report: ', @extschema@._html_escape(pg_catalog.current_database()), '</title><style>',
    'body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}',
    'h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:32px}h3{font-size:15px}',
    'table{border-collapse:collapse;margin:8px 0;font-size:12px}th,td{border:1px solid #ddd;padding:3px 6px;',
    'vertical-align:top;text-align:left;max-width:420px;overflow-wrap:anywhere}td.n{text-align:right}',
    'th{background:#f3f3f3}.score b{font-size:28px}.empty{color:#666;font-style:italic}nav a{margin-right:12px}',
    'figure{margin:12px 0}figcaption{font-weight:600}svg text{font-size:11px;fill:#333}',
    'svg .ylabel{text-anchor:end}svg .xlabel,svg .xtitle,svg .unit,svg .nodata{text-anchor:middle}',
    'svg .grid{stroke:#eee}svg .axis{stroke:#999}</style></head><body>',
    '<h1>dbanalytics report: database ', @extschema@._html_escape(pg_catalog.current_database()), '</h1>',
    pg_catalog.format('<p class="meta">Window %s to %s (%s), generated %s for role %s. PostgreSQL %s. Times in %s.</p>',
                      @extschema@._html_time(a.lo), @extschema@._html_time(a.hi),
                      @extschema@._html_escape(analysis_window::text), @extschema@._html_time(pg_catalog.clock_timestamp()),
                      @extschema@._html_escape(CURRENT_USER::text), @extschema@._html_escape(pg_catalog.current_setting('server_version')),
                      @extschema@._html_escape(pg_catalog.current_setting('TimeZone'))),
    '<nav><a href="#health">Health</a><a href="#throughput">Throughput</a><a href="#waits">Waits</a>',
    '<a href="#queries">Queries</a><a href="#pools">Pools</a><a href="#locks">Locks</a><a href="#indexes">Indexes</a>',
    '<a href="#cache">Cache and replication</a><a href="#collector">Collector</a></nav>',
    (SELECT pg_catalog.string_agg(s.html, E'\n' ORDER BY s.ord) FROM sections s),
    '</body></html>')
  FROM args a
$$;
