-- dbanalytics: views over the collected data that the analytics build on.

-- Query texts, shown exactly as pg_stat_statements shows them: to roles with the privileges of
-- pg_read_all_stats, and to the role that ran the statement; '<insufficient privilege>'
-- otherwise. The role is matched by OID and by name: after a restore into another cluster, a
-- different role that happens to have the same OID does not see the original role's texts.
CREATE VIEW @extschema@.statement_texts AS
SELECT s.dbid, s.datname, s.userid, s.usename, s.queryid, s.toplevel, s.first_seen,
       CASE WHEN pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE')
              OR (s.userid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
                                                    WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)
                  AND s.usename OPERATOR(pg_catalog.=) CURRENT_USER::pg_catalog.text)
            THEN s.query
            ELSE '<insufficient privilege>'
       END AS query
  FROM @extschema@.statements s;

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

-- Health of the collection itself: one row per source.
CREATE VIEW @extschema@.collector_status AS
WITH latest AS (
    SELECT DISTINCT ON (r.source) r.source, r.worker, r.started_at, r.status, r.message
      FROM @extschema@.collector_runs r
     ORDER BY r.source, r.started_at DESC
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
                    WHEN l.worker OPERATOR(pg_catalog.=) 'sampler'
                    THEN pg_catalog.current_setting('dbanalytics.sample_interval', true)
                    ELSE pg_catalog.current_setting('dbanalytics.snapshot_interval', true)
                END)::interval THEN 'stale'
           ELSE 'healthy'
       END AS health
  FROM latest l
  LEFT JOIN last_hour h USING (source);

