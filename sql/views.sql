-- dbanalytics: views over the collected data that the analytics build on.

-- Query texts, shown exactly as pg_stat_statements shows them: to roles with the privileges of
-- pg_read_all_stats, and to the role that ran the statement; '<insufficient privilege>'
-- otherwise (text_visible says which; plan_texts shows plans by the same rule). The role is
-- matched by OID and by name: after a restore into another cluster, a different role that
-- happens to have the same OID does not see the original role's texts.
CREATE VIEW @extschema@.statement_texts AS
SELECT s.dbid, s.datname, s.userid, s.usename, s.queryid, s.toplevel, s.first_seen,
       CASE WHEN v.visible THEN s.query ELSE '<insufficient privilege>' END AS query,
       v.visible AS text_visible
  FROM @extschema@.statements s
 CROSS JOIN LATERAL (
       SELECT pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE')
              OR (s.userid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
                                                    WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
                  AND s.usename OPERATOR(pg_catalog.=) CURRENT_USER::pg_catalog.text) AS visible) v;

-- The sampled backends as pg_stat_activity showed them: activity_raw with its activity_keys
-- and its time offsets turned back into timestamps (to the millisecond; to the second for
-- times more than 24.8 days before the sample).
CREATE VIEW @extschema@.activity_samples AS
SELECT r.sampled_at, r.pid, k.datname, k.usename, k.application_name, k.client_addr, k.state,
       k.wait_event_type, k.wait_event, r.query_id,
       @extschema@._ms_before_at(r.sampled_at, r.xact_ms) AS xact_start,
       @extschema@._ms_before_at(r.sampled_at, r.query_ms) AS query_start,
       @extschema@._ms_before_at(r.sampled_at, r.state_ms) AS state_change,
       r.backend_xid_age
  FROM @extschema@.activity_raw r
  LEFT JOIN @extschema@.activity_keys k ON k.key_id = r.key_id;

-- The workers' processes as pg_stat_activity lists them. A reader without pg_read_all_stats
-- sees no backend_type for other roles' sessions, the workers' included (they run as the
-- bootstrap superuser), so collector_status would call running workers "not running": this
-- runs as the extension's owner and returns only the workers' type, database, pid and start.
CREATE FUNCTION @extschema@._worker_processes()
RETURNS TABLE (backend_type text, datname name, pid integer, backend_start timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.backend_type, a.datname, a.pid, a.backend_start FROM pg_catalog.pg_stat_activity a
     WHERE a.backend_type IN ('dbanalytics sampler', 'dbanalytics collector')
$$;

-- Health of the collection itself: one row per source, and one per background worker (source
-- 'worker'): whether its process runs, and if not, why not as far as can be told (a worker that
-- could not start, e.g. for want of max_worker_processes slots, leaves no other trace here).
CREATE VIEW @extschema@.collector_status AS
WITH RECURSIVE sources AS (
    -- the distinct sources, one probe each of the (source, started_at) indexes (a loose index
    -- scan): sorting every run kept to find each source's latest took ~150 ms with a day of
    -- 1-second sampler runs
    SELECT pg_catalog.min(r.source) AS source FROM @extschema@.collector_runs r
    UNION ALL
    SELECT (SELECT pg_catalog.min(r.source) FROM @extschema@.collector_runs r
             WHERE r.source OPERATOR(pg_catalog.>) s.source)
      FROM sources s WHERE s.source IS NOT NULL
), latest AS (
    SELECT l.source, l.worker, l.started_at, l.status, l.message
      FROM sources s
     CROSS JOIN LATERAL (
           SELECT r.source, r.worker, r.started_at, r.status, r.message
             FROM @extschema@.collector_runs r
            WHERE r.source OPERATOR(pg_catalog.=) s.source
              -- a whole tick that failed, or a snapshot that could not take its turn: shown for an hour
              AND (r.source OPERATOR(pg_catalog.<>) ALL (ARRAY['tick', 'snapshot'])
                   OR r.started_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour'))
            ORDER BY r.started_at DESC
            LIMIT 1) l
), last_hour AS (
    SELECT r.source,
           pg_catalog.count(*) AS runs,
           pg_catalog.count(*) FILTER (WHERE r.status = 'error') AS errors,
           pg_catalog.avg(r.duration_ms) AS avg_duration_ms,
           pg_catalog.max(r.duration_ms) AS max_duration_ms,
           pg_catalog.avg(r.rows) AS avg_rows
      FROM @extschema@.collector_runs r
     WHERE r.started_at > pg_catalog.now() - interval '1 hour'
     GROUP BY r.source
)
SELECT l.source,
       l.worker,
       l.status AS last_status,
       l.started_at AS last_run,
       (SELECT pg_catalog.max(r.started_at) FROM @extschema@.collector_runs r
         WHERE r.source = l.source AND r.status = 'ok') AS last_success,
       (SELECT pg_catalog.max(r.started_at) FROM @extschema@.collector_runs r
         WHERE r.source = l.source AND r.status = 'error') AS last_error_at,
       (SELECT r.message FROM @extschema@.collector_runs r
         WHERE r.source = l.source AND r.status = 'error'
         ORDER BY r.started_at DESC LIMIT 1) AS last_error,
       CASE WHEN l.status = 'skipped' THEN l.message END AS skipped_reason,
       COALESCE(h.runs, 0) AS runs_last_hour,
       COALESCE(h.errors, 0) AS errors_last_hour,
       pg_catalog.round(h.avg_duration_ms::numeric, 3) AS avg_duration_ms,
       pg_catalog.round(h.max_duration_ms::numeric, 3) AS max_duration_ms,
       pg_catalog.round(h.avg_rows, 1) AS avg_rows_per_run,
       CASE
           WHEN l.status = 'error' THEN 'failing'
           WHEN l.status = 'skipped' THEN 'skipped'
           WHEN l.started_at < pg_catalog.now() - 3 * (CASE
                    -- partitions is the collector's source; the sampler runs it too, at its
                    -- start and at midnight, and is not expected to run it again a tick later
                    WHEN l.worker OPERATOR(pg_catalog.=) 'sampler' AND l.source OPERATOR(pg_catalog.<>) 'partitions'
                    THEN pg_catalog.current_setting('dbanalytics.sample_interval', true)
                    ELSE pg_catalog.current_setting('dbanalytics.snapshot_interval', true)
                END)::interval THEN 'stale'
           ELSE 'healthy'
       END AS health
  FROM latest l
  LEFT JOIN last_hour h USING (source)
UNION ALL
SELECT 'worker', w.worker,
       CASE WHEN a.pid IS NOT NULL THEN 'ok'
            WHEN s.database IS NULL OR s.database OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN 'skipped'
            ELSE 'error' END,
       a.backend_start, NULL::pg_catalog.timestamptz, NULL::pg_catalog.timestamptz, NULL::pg_catalog.text,
       CASE
           WHEN a.pid IS NOT NULL THEN NULL::pg_catalog.text
           WHEN s.database IS NULL
           THEN 'dbanalytics is not in shared_preload_libraries: no background collection'
           WHEN s.database OPERATOR(pg_catalog.<>) pg_catalog.current_database()
           THEN pg_catalog.format('the workers collect in database %I (dbanalytics.database)', s.database)
           ELSE 'no such process: it could not start (is max_worker_processes large enough? see the server log) or it is restarting'
       END,
       0::pg_catalog.int8, 0::pg_catalog.int8, NULL::pg_catalog.numeric, NULL::pg_catalog.numeric,
       NULL::pg_catalog.numeric,
       CASE WHEN a.pid IS NOT NULL THEN 'healthy'
            WHEN s.database IS NULL OR s.database OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN 'off'
            ELSE 'not running' END
  FROM (VALUES ('sampler', 'dbanalytics sampler'), ('collector', 'dbanalytics collector')) AS w(worker, backend_type)
 CROSS JOIN (SELECT pg_catalog.current_setting('dbanalytics.database', true) AS database) s
  LEFT JOIN @extschema@._worker_processes() a
         ON a.backend_type OPERATOR(pg_catalog.=) w.backend_type
        AND a.datname OPERATOR(pg_catalog.=) s.database;

