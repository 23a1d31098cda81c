-- dbanalytics: the explainable health score. Every indicator is measured, compared with two
-- documented thresholds and loses points by one rule; the component scores and the overall score
-- are plain sums of those points, so health_score() equals what health_score_details() adds up to.
--
-- Scoring rule of one indicator of weight W, with value v, a "warn" and a "bad" threshold:
--   v no worse than warn                -> 0 points lost                       (status ok)
--   v at or beyond bad                  -> W points lost                       (status bad)
--   in between                          -> W * (0.5 + 0.5 * (v - warn) / (bad - warn))   (warn)
--   not measurable for lack of privilege-> W / 2 points lost                   (status unknown)
--   not configured (WAL archiving off)  -> W / 2 points lost                   (status not_configured)
--   not applicable (no replicas)        -> 0 points lost                       (status not_applicable)
-- The weights of each component's indicators add up to 100; a component score is 100 minus its
-- points lost; the overall score is the weighted mean of the components (health_components).

CREATE VIEW @extschema@.health_components (component, weight) AS
VALUES ('performance', 0.25::numeric), ('reliability', 0.25), ('efficiency', 0.20),
       ('security', 0.15), ('maintenance', 0.15);

-- Facts only some roles may read. Each checks the privilege first and reads through dynamic SQL,
-- so that a caller without it gets "not readable" (the indicator says unknown), not an error.
CREATE FUNCTION @extschema@._weak_hba_rules()
RETURNS TABLE (readable boolean, weak bigint, lines text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE') THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT true,
               pg_catalog.count(*) FILTER (WHERE r.auth_method = 'trust' OR (r.auth_method = 'password' AND r.type <> 'local')),
               pg_catalog.string_agg(pg_catalog.format('line %s: %s %s %s %s %s', r.line_number, r.type,
                                                       pg_catalog.array_to_string(r.database, ','),
                                                       pg_catalog.array_to_string(r.user_name, ','),
                                                       COALESCE(r.address, ''), r.auth_method), '; ')
                   FILTER (WHERE r.auth_method = 'trust' OR (r.auth_method = 'password' AND r.type <> 'local'))
          FROM pg_catalog.pg_hba_file_rules r$q$;
END
$$;

CREATE FUNCTION @extschema@._passwords_without_expiry()
RETURNS TABLE (readable boolean, without_expiry bigint, names text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT') THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT true, pg_catalog.count(*), pg_catalog.string_agg(a.rolname::text, ', ')
          FROM pg_catalog.pg_authid a
         WHERE a.rolcanlogin AND NOT a.rolsuper AND a.rolpassword IS NOT NULL AND a.rolvaliduntil IS NULL$q$;
END
$$;

-- Every indicator, measured. Live facts come from pg_stat_* and the catalogs now; windowed
-- facts from the collected history over the window.
-- WAL segments waiting to be archived (.ready files), or NULL for a role that may not list
-- them (pg_ls_archive_statusdir() is for pg_monitor): checked before the call, which a plain
-- SQL function would make at plan start.
CREATE FUNCTION @extschema@._archive_ready()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.has_function_privilege('pg_catalog.pg_ls_archive_statusdir()', 'EXECUTE') THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ls_archive_statusdir() f WHERE f.name LIKE '%.ready');
END
$$;

CREATE FUNCTION @extschema@._health_measures(analysis_window interval)
RETURNS TABLE (component text, indicator text, value numeric, unit text, higher_is_worse boolean,
               warn numeric, bad numeric, weight numeric, measurable text, evidence text,
               source text, impact text, mitigation text, action text, effort text,
               bad_severity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::numeric AS window_seconds,
           @extschema@._slow_query_ms() AS slow_ms,
           pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE') AS sees_all_sessions,
           pg_catalog.current_setting('max_connections')::numeric
             - pg_catalog.current_setting('superuser_reserved_connections')::numeric AS usable_connections
), disk AS (
    -- the file system that fills first, by the 30-day fit (not the window: a fit needs days)
    SELECT GREATEST(EXTRACT(epoch FROM g.forecast_at - pg_catalog.now()) / 86400, 0)::numeric AS days_left,
           pg_catalog.format('the %s file system (%s used of %s) grows %s per day and is full around %s (fit r² %s)',
                             g.relname, pg_catalog.pg_size_pretty(g.size_bytes), pg_catalog.pg_size_pretty(g.capacity_bytes),
                             pg_catalog.pg_size_pretty(g.growth_bytes_per_day::bigint), g.forecast_at,
                             pg_catalog.round(g.fit_r2::numeric, 2)) AS evidence
      FROM @extschema@.space_growth(interval '30 days') g
     WHERE g.object_type = 'filesystem' AND g.forecast_at IS NOT NULL
     ORDER BY g.forecast_at LIMIT 1
), statements AS (
    SELECT pg_catalog.sum(t.calls) AS calls,
           pg_catalog.sum(t.calls) FILTER (WHERE t.total_exec_time > a.slow_ms * t.calls) AS slow_calls,
           pg_catalog.count(*) FILTER (WHERE t.total_exec_time > a.slow_ms * t.calls) AS slow_statements
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
     WHERE t.toplevel AND t.calls > 0
), latency AS (
    SELECT (@extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.99}'))[1] AS p99_ms,
           pg_catalog.sum(l.executions) AS executions
      FROM args a, @extschema@.database_latency l
     WHERE l.interval_end > a.since AND pg_catalog.cardinality(l.buckets) > 0
), databases AS (
    SELECT pg_catalog.sum(d.blks_hit) AS blks_hit, pg_catalog.sum(d.blks_read) AS blks_read,
           pg_catalog.sum(d.temp_files) AS temp_files, pg_catalog.sum(d.temp_bytes) AS temp_bytes,
           pg_catalog.sum(d.deadlocks) AS deadlocks, pg_catalog.sum(d.xact_commit) AS commits,
           pg_catalog.sum(d.xact_rollback) AS rollbacks,
           pg_catalog.sum(EXTRACT(epoch FROM d.interval_end - d.interval_start))
               / NULLIF(pg_catalog.count(DISTINCT d.datid), 0) AS covered_seconds
      FROM args a, @extschema@.database_stats d WHERE d.interval_end > a.since
), sessions AS (
    SELECT pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - s.xact_start)) AS longest_xact,
           pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - s.state_change))
               FILTER (WHERE s.state LIKE 'idle in transaction%') AS longest_idle_in_xact,
           (pg_catalog.array_agg(pg_catalog.format('pid %s (%s, %s) idle in transaction for %s s',
                s.pid, s.usename, s.application_name,
                pg_catalog.round(EXTRACT(epoch FROM pg_catalog.now() - s.state_change))) ORDER BY s.state_change)
               FILTER (WHERE s.state LIKE 'idle in transaction%'))[1] AS idle_session,
           (pg_catalog.array_agg(s.pid ORDER BY s.state_change) FILTER (WHERE s.state LIKE 'idle in transaction%'))[1] AS idle_pid,
           (pg_catalog.array_agg(s.pid ORDER BY s.xact_start) FILTER (WHERE s.xact_start IS NOT NULL))[1] AS oldest_pid
      FROM pg_catalog.pg_stat_activity s
     WHERE s.backend_type = 'client backend' AND s.pid <> pg_catalog.pg_backend_pid()
), replication AS (
    SELECT pg_catalog.count(*) AS standbys,
           pg_catalog.max(EXTRACT(epoch FROM COALESCE(r.replay_lag, interval '0'))) AS lag,
           pg_catalog.string_agg(pg_catalog.format('%s: replay lag %s', r.application_name, COALESCE(r.replay_lag, interval '0')), '; ') AS detail
      FROM pg_catalog.pg_stat_replication r
), lost_standbys AS (
    -- standbys the collector saw in the window that are not connected now (issue 17: a lag
    -- indicator must not turn not_applicable when its standby goes away): their lag is at
    -- least the time since they were last seen; and physical slots no standby uses
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots s
             WHERE s.slot_type = 'physical' AND NOT s.active) AS inactive_slots,
           (SELECT pg_catalog.string_agg(s.slot_name::text, ', ' ORDER BY s.slot_name) FROM pg_catalog.pg_replication_slots s
             WHERE s.slot_type = 'physical' AND NOT s.active) AS slot_names,
           pg_catalog.count(*) AS lost,
           pg_catalog.max(EXTRACT(epoch FROM pg_catalog.now() - h.last_seen)) AS since_seen,
           pg_catalog.string_agg(pg_catalog.format('%s: disconnected, last seen %s', h.application_name, h.last_seen), '; '
                                 ORDER BY h.application_name) AS detail
      FROM args a, @extschema@._gone_standbys(a.since) h
), archiving AS (
    SELECT pg_catalog.current_setting('archive_mode') <> 'off' AS enabled,
           EXTRACT(epoch FROM pg_catalog.now() - a.last_archived_time) AS since_last_archive,
           a.failed_count, a.last_failed_time, a.last_archived_time,
           -- failing now: the last attempt failed (issue 17)
           a.last_failed_time IS NOT NULL AND a.last_failed_time > COALESCE(a.last_archived_time, '-infinity') AS failing,
           -- the .ready backlog (segments waiting to be archived), for roles allowed to list it
           @extschema@._archive_ready() AS ready
      FROM pg_catalog.pg_stat_archiver a
), pool_minutes AS (
    -- the minutes a pool change or an application fix would help: near the connection limit
    -- (a pooler) or connections held idle in transactions (a leak); lock hotspots are not a
    -- pool's fault and are judged by the lock indicators. The verdicts are counted as
    -- _pool_judged makes them, inlined (without the lock hotspots' objects, which these
    -- verdicts do not quote): a 7-day window's took about 100 ms as _pool_verdicts' rows
    SELECT pg_catalog.count(*) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction'))::numeric
               / NULLIF(pg_catalog.count(*), 0) AS undersized_share,
           pg_catalog.count(*) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction')) AS undersized_minutes,
           pg_catalog.max(v.minute) FILTER (WHERE v.pool_status IN ('near_connection_limit', 'idle_in_transaction')) AS latest
      FROM @extschema@._pool_judged(analysis_window) v
), pools AS (
    -- the advice is the latest such minute's: of the pools of that minute (read again, that
    -- minute only), the whole cluster's row ('(all clients)', no database or user) when it is
    -- one of them, else the first by database, user and application: the same advice at
    -- every call
    SELECT m.undersized_share, m.undersized_minutes,
           @extschema@._pool_recommendation((SELECT l::@extschema@.pool_verdict
                                               FROM (SELECT * FROM @extschema@._pool_judged(analysis_window) l
                                                      WHERE l.minute = m.latest
                                                        AND l.pool_status IN ('near_connection_limit', 'idle_in_transaction')
                                                      ORDER BY l.datname NULLS FIRST, l.usename NULLS FIRST, l.application_name
                                                      LIMIT 1) l)) AS advice
      FROM pool_minutes m
), indexes AS (
    SELECT pg_catalog.sum(i.index_bytes) AS all_bytes,
           COALESCE(pg_catalog.sum(i.index_bytes) FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL), 0) AS unused_bytes,
           COALESCE(pg_catalog.sum(i.index_bytes) FILTER (WHERE i.index_status IN ('duplicate', 'redundant', 'bloated')), 0) AS bloat_bytes,
           pg_catalog.string_agg(i.recommendation, ' ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL) AS unused_ddl,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s, %s)', i.schemaname, i.indexname, i.index_status,
                                                   pg_catalog.pg_size_pretty(i.index_bytes)), ', ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status = 'unused' AND i.protected_by IS NULL) AS unused_list,
           pg_catalog.string_agg(i.recommendation, ' ' ORDER BY i.index_bytes DESC)
               FILTER (WHERE i.index_status IN ('duplicate', 'redundant', 'bloated')) AS bloat_ddl
      FROM @extschema@.index_effectiveness(interval '7 days') i
), tables AS (
    SELECT pg_catalog.count(*) FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS needs_vacuum,
           pg_catalog.count(*) FILTER (WHERE 'needs_analyze' = ANY (t.issues)) AS needs_analyze,
           pg_catalog.count(*) FILTER (WHERE 'missing_index' = ANY (t.issues)) AS missing_index,
           pg_catalog.count(*) FILTER (WHERE 'wraparound_risk' = ANY (t.issues)) AS wraparound,
           pg_catalog.string_agg(pg_catalog.format('%I.%I: %s dead of %s tuples', t.schemaname, t.tablename,
                                                   t.n_dead_tup, t.n_live_tup + t.n_dead_tup), '; ')
               FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS vacuum_detail,
           pg_catalog.string_agg(pg_catalog.format('VACUUM (ANALYZE) %I.%I;', t.schemaname, t.tablename), ' ')
               FILTER (WHERE 'needs_vacuum' = ANY (t.issues)) AS vacuum_ddl,
           pg_catalog.string_agg(pg_catalog.format('%I.%I', t.schemaname, t.tablename), ', ')
               FILTER (WHERE 'needs_analyze' = ANY (t.issues)) AS analyze_list,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s rows per sequential scan)', t.schemaname, t.tablename,
                                                   pg_catalog.round(t.rows_per_seq_scan)), ', ')
               FILTER (WHERE 'missing_index' = ANY (t.issues)) AS missing_list,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (age %s)', t.schemaname, t.tablename, t.xid_age), ', ')
               FILTER (WHERE 'wraparound_risk' = ANY (t.issues)) AS wraparound_list
      FROM @extschema@.table_maintenance t
), sequences AS (
    SELECT pg_catalog.count(*) FILTER (WHERE s.status = 'near_exhaustion') AS near,
           pg_catalog.string_agg(pg_catalog.format('%I.%I (%s%% used%s)', s.schemaname, s.sequencename,
                                                   pg_catalog.round((100 * s.used_ratio)::numeric, 1),
                                                   ' of what ' || s.used_by || ' can hold'), ', ')
               FILTER (WHERE s.status = 'near_exhaustion') AS detail
      FROM @extschema@.sequence_usage s
), hba AS (
    SELECT * FROM @extschema@._weak_hba_rules()
), roles AS (
    SELECT pg_catalog.count(*) FILTER (WHERE r.rolsuper AND r.oid <> 10) AS extra_superusers,
           pg_catalog.string_agg(r.rolname, ', ') FILTER (WHERE r.rolsuper AND r.oid <> 10) AS superuser_names
      FROM pg_catalog.pg_roles r
), passwords AS (
    SELECT * FROM @extschema@._passwords_without_expiry()
), definers AS (
    SELECT pg_catalog.count(*) AS unpinned,
           pg_catalog.string_agg(pg_catalog.format('%s.%s(%s)', n.nspname, p.proname,
                                                   pg_catalog.pg_get_function_identity_arguments(p.oid)), ', ') AS names
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
)
SELECT * FROM (
-- performance ---------------------------------------------------------------------------------
SELECT 'performance', 'slow_query_ratio', st.slow_calls / NULLIF(st.calls, 0), 'ratio', true, 0.01, 0.10, 30::numeric,
       'yes',
       pg_catalog.format('%s of %s statement executions belong to %s statements whose mean time exceeds dbanalytics.slow_query_threshold (%s ms)',
                         COALESCE(st.slow_calls, 0), COALESCE(st.calls, 0), COALESCE(st.slow_statements, 0), a.slow_ms),
       'top_queries(window, ''mean_time'')',
       'slow statements hold connections and locks longer and delay everything queued behind them',
       'look at the plans of the slowest statements (explain_analysis) and index their filters',
       'SELECT * FROM dbanalytics.top_queries(''' || analysis_window || ''', ''mean_time'', 10);', 'medium', 'high'
  FROM args a, statements st
UNION ALL
SELECT 'performance', 'p99_latency_ms', l.p99_ms::numeric, 'ms', true, 100, 1000, 20,
       CASE WHEN l.executions IS NULL THEN 'not_applicable' ELSE 'yes' END,
       pg_catalog.format('p99 over %s recorded executions is %s ms', COALESCE(l.executions, 0), pg_catalog.round(l.p99_ms::numeric, 2)),
       'query_latency(window) / database_latency',
       'the slowest 1 % of executions is what users notice',
       'find the statements with the highest p99 and fix their plans',
       'SELECT * FROM dbanalytics.query_latency(''' || analysis_window || ''', 10);', 'medium', 'high'
  FROM latency l
UNION ALL
SELECT 'performance', 'cache_hit_ratio', d.blks_hit / NULLIF(d.blks_hit + d.blks_read, 0), 'ratio', false, 0.95, 0.90, 25,
       CASE WHEN d.blks_hit + d.blks_read > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s blocks found in shared buffers, %s read from outside', COALESCE(d.blks_hit, 0), COALESCE(d.blks_read, 0)),
       'database_stats / cache_analytics',
       'blocks read from the OS cache or disk cost far more than shared-buffer hits',
       'raise shared_buffers (about 25 % of RAM) or reduce what the worst statements in cache_analytics read',
       'SELECT * FROM dbanalytics.cache_analytics WHERE level = ''statement'';', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'performance', 'temp_files_per_hour', d.temp_files * 3600 / NULLIF(d.covered_seconds, 0), 'files/h', true, 10, 1000, 10,
       CASE WHEN d.covered_seconds > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s temporary files (%s) in the window', COALESCE(d.temp_files, 0), pg_catalog.pg_size_pretty(COALESCE(d.temp_bytes, 0)::bigint)),
       'database_stats.temp_files',
       'sorts and hashes that spill to disk are many times slower than in memory',
       'raise work_mem for the statements that spill (top_queries order_by temp_blks)',
       'SELECT * FROM dbanalytics.top_queries(''' || analysis_window || ''', ''temp_blks'', 10);', 'low', 'high'
  FROM databases d
UNION ALL
SELECT 'performance', 'longest_transaction_seconds', COALESCE(s.longest_xact, 0)::numeric, 's', true, 300, 3600, 15,
       CASE WHEN a.sees_all_sessions THEN 'yes' ELSE 'unknown' END,
       pg_catalog.format('the oldest open transaction (pid %s) started %s s ago', s.oldest_pid, pg_catalog.round(COALESCE(s.longest_xact, 0))),
       'long_running_transactions',
       'a long transaction holds back vacuum for the whole cluster and may hold locks',
       'find it in long_running_transactions and end it at its source',
       'SELECT * FROM dbanalytics.long_running_transactions;', 'low', 'high'
  FROM args a, sessions s
-- reliability ---------------------------------------------------------------------------------
UNION ALL
SELECT 'reliability', 'deadlock_frequency', d.deadlocks * 3600 / NULLIF(d.covered_seconds, 0), 'deadlocks/h', true, 0, 10, 20,
       CASE WHEN d.covered_seconds > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s deadlocks in the window', COALESCE(d.deadlocks, 0)),
       'database_stats.deadlocks / transaction_trends',
       'each deadlock aborts a transaction the application must retry',
       'make transactions take their locks in one order; the server log (log_lock_waits) names the statements',
       'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'reliability', 'rollback_ratio', d.rollbacks / NULLIF(d.commits + d.rollbacks, 0), 'ratio', true, 0.05, 0.20, 10,
       CASE WHEN d.commits + d.rollbacks > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s rollbacks against %s commits', COALESCE(d.rollbacks, 0), COALESCE(d.commits, 0)),
       'transaction_trends',
       'rolled-back work was done for nothing and often hides application errors',
       'find the failing statements in the server log (log_min_error_statement)',
       'SELECT * FROM dbanalytics.transaction_trends(''' || analysis_window || ''');', 'medium', 'high'
  FROM databases d
UNION ALL
SELECT 'reliability', 'replication_lag',
       CASE WHEN r.standbys > 0 OR ls.lost > 0 OR ls.inactive_slots > 0
            THEN GREATEST(COALESCE(r.lag, 0), COALESCE(ls.since_seen, 0),
                          CASE WHEN ls.inactive_slots > 0 THEN 60 ELSE 0 END)::numeric END, 's', true, 5, 60, 20,
       CASE WHEN r.standbys = 0 AND ls.lost = 0 AND ls.inactive_slots = 0 THEN 'not_applicable'
            WHEN a.sees_all_sessions OR r.standbys = 0 THEN 'yes' ELSE 'unknown' END,
       COALESCE(NULLIF(pg_catalog.concat_ws('; ', r.detail, ls.detail,
                                            'inactive physical replication slot(s): ' || ls.slot_names || ' (no standby uses them)'), ''),
                'no standby connected'),
       'replication_analytics',
       'a lagging or disconnected standby serves stale reads (or none) and loses more on failover',
       CASE WHEN ls.lost > 0 OR ls.inactive_slots > 0
            THEN 'a standby is disconnected: check that it runs and reaches this server (its server log says why); drop the slot of a standby that is gone for good, or it keeps WAL until the disk fills'
            ELSE 'check the standby''s I/O and network; look at replication_analytics' END,
       'SELECT * FROM dbanalytics.replication_analytics;', 'medium', 'high'
  FROM args a, replication r, lost_standbys ls
UNION ALL
SELECT 'reliability', 'backup_recency',
       CASE WHEN NOT ar.enabled THEN NULL
            -- failing now: at least the bad threshold, however recent the last success
            WHEN ar.failing THEN GREATEST(COALESCE(ar.since_last_archive, 1e9), 86400)::numeric
            -- nothing waiting to be archived: up to date, however idle the server (issue 17)
            WHEN ar.ready = 0 THEN 0
            ELSE COALESCE(ar.since_last_archive, 1e9)::numeric END, 's', true, 3600, 86400, 15,
       CASE WHEN NOT ar.enabled THEN 'not_configured' ELSE 'yes' END,
       CASE WHEN NOT ar.enabled THEN 'archive_mode is off: no WAL archive, so no point-in-time recovery'
            ELSE pg_catalog.format('last WAL segment archived at %s; %s failures, last at %s%s; %s',
                                   ar.last_archived_time, ar.failed_count, ar.last_failed_time,
                                   CASE WHEN ar.failing THEN ' (the last attempt failed)' ELSE '' END,
                                   CASE WHEN ar.ready IS NULL THEN 'the .ready backlog is not visible to this role (pg_monitor)'
                                        ELSE ar.ready || ' segment(s) waiting to be archived' END) END,
       'pg_stat_archiver, pg_ls_archive_statusdir()',
       'without a recent archived WAL, a lost disk loses the data written since the last base backup; WAL not archived stays in pg_wal until the disk fills',
       CASE WHEN NOT ar.enabled
            THEN 'set archive_mode = on with an archive_command (or a backup tool such as pgBackRest) and watch pg_stat_archiver'
            WHEN ar.failing
            THEN 'archiving is on and failing: the server log has the archive command''s error (LOG: archive command failed); fix the command, its target or its permissions'
            ELSE 'archiving is on but behind: check that the archive command keeps up (pg_stat_archiver, the .ready files in pg_wal/archive_status)' END,
       CASE WHEN NOT ar.enabled
            THEN 'ALTER SYSTEM SET archive_mode = on;  -- plus archive_command or archive_library; needs a restart'
            ELSE 'SELECT * FROM pg_catalog.pg_stat_archiver;  -- then read the server log around last_failed_time' END,
       'medium', 'high'
  FROM archiving ar
UNION ALL
SELECT 'reliability', 'xid_age', (SELECT pg_catalog.max(pg_catalog.age(db.datfrozenxid))::numeric FROM pg_catalog.pg_database db),
       'transactions', true, 500000000, 1500000000, 25, 'yes',
       (SELECT pg_catalog.format('oldest unfrozen transaction ID: %s transactions old in database %s', pg_catalog.age(db.datfrozenxid), db.datname)
          FROM pg_catalog.pg_database db ORDER BY pg_catalog.age(db.datfrozenxid) DESC LIMIT 1),
       'pg_database.datfrozenxid',
       'at 2^31 transactions the server stops accepting writes to avoid wraparound',
       'let (auto)vacuum freeze the oldest tables: end long transactions and vacuum the tables in table_maintenance flagged wraparound_risk',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''wraparound_risk'' = ANY (issues);', 'high', 'critical'
UNION ALL
SELECT 'reliability', 'disk_full_days', (SELECT dk.days_left FROM disk dk), 'days', false, 30, 7, 10,
       CASE WHEN EXISTS (SELECT FROM disk) THEN 'yes' ELSE 'not_applicable' END,
       COALESCE((SELECT dk.evidence FROM disk dk),
                'no file system of the data directory or pg_wal is filling (space_growth over 30 days)'),
       'space_growth (file systems, 30 days)',
       'a full disk stops the server: writes fail, and a full pg_wal shuts it down',
       'free space or grow the file system before the forecast date; space_growth shows what grows',
       'SELECT * FROM dbanalytics.space_growth(''30 days'') ORDER BY growth_bytes_per_day DESC NULLS LAST LIMIT 20;',
       'medium', 'critical'
-- efficiency ----------------------------------------------------------------------------------
UNION ALL
SELECT 'efficiency', 'connection_pool_efficiency', p.undersized_share, 'ratio', true, 0.05, 0.5, 30,
       CASE WHEN p.undersized_share IS NULL THEN 'not_applicable' ELSE 'yes' END,
       pg_catalog.format('%s pool-minutes of the window were near the connection limit or held connections idle in transactions',
                         COALESCE(p.undersized_minutes, 0)),
       'connection_pool_analytics',
       'clients wait for connections, or the server runs out of them',
       COALESCE(p.advice, 'size pools from their measured peak of concurrently active sessions with a buffer'),
       'SELECT * FROM dbanalytics.connection_pool_analytics WHERE pool_status <> ''optimal'';', 'medium', 'high'
  FROM pools p
UNION ALL
SELECT 'efficiency', 'idle_in_transaction_seconds', COALESCE(s.longest_idle_in_xact, 0)::numeric, 's', true, 60, 600, 20,
       CASE WHEN a.sees_all_sessions THEN 'yes' ELSE 'unknown' END,
       COALESCE(s.idle_session, 'no session is idle in a transaction'),
       'long_running_transactions',
       'an idle transaction holds its locks and snapshot, blocking vacuum and other writers',
       'set idle_in_transaction_session_timeout and fix the client that leaves transactions open',
       CASE WHEN s.idle_pid IS NOT NULL
            THEN pg_catalog.format('SELECT pg_terminate_backend(%s);  -- or: ALTER SYSTEM SET idle_in_transaction_session_timeout = ''5min''', s.idle_pid)
            ELSE 'ALTER SYSTEM SET idle_in_transaction_session_timeout = ''5min''; SELECT pg_reload_conf();' END,
       'low', 'high'
  FROM args a, sessions s
UNION ALL
SELECT 'efficiency', 'unused_index_bytes', i.unused_bytes, 'bytes', true, 10485760, 1073741824, 20, 'yes',
       COALESCE('unused for 7 days: ' || i.unused_list, 'no unused index'),
       'index_effectiveness',
       'every write must also update the unused indexes, and they take cache and disk',
       'drop them (after checking they are not needed for rare jobs)',
       COALESCE(i.unused_ddl, '-- nothing to drop'), 'low', 'high'
  FROM indexes i
UNION ALL
SELECT 'efficiency', 'index_bloat', i.bloat_bytes / NULLIF(i.all_bytes, 0), 'ratio', true, 0.10, 0.50, 15,
       CASE WHEN i.all_bytes > 0 THEN 'yes' ELSE 'not_applicable' END,
       pg_catalog.format('%s of %s index bytes are in duplicate, redundant or bloated indexes',
                         pg_catalog.pg_size_pretty(i.bloat_bytes::bigint), pg_catalog.pg_size_pretty(COALESCE(i.all_bytes, 0)::bigint)),
       'index_effectiveness',
       'bloated and duplicate indexes waste cache and slow every write',
       'drop duplicates and redundant prefixes, reindex the bloated ones',
       COALESCE(i.bloat_ddl, '-- nothing to do'), 'low', 'high'
  FROM indexes i
UNION ALL
SELECT 'efficiency', 'missing_index_tables', t.missing_index::numeric, 'tables', true, 0, 5, 15, 'yes',
       COALESCE('sequential scans of many rows on ' || t.missing_list, 'no table is read mostly by large sequential scans'),
       'table_maintenance (issue missing_index)',
       'each query filters a whole table instead of reading a few rows through an index',
       'find the filters in top_queries and index them (index_advice)',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''missing_index'' = ANY (issues);', 'medium', 'high'
  FROM tables t
-- security ------------------------------------------------------------------------------------
UNION ALL
SELECT 'security', 'hba_weak_authentication', CASE WHEN h.readable THEN h.weak::numeric END, 'rules', true, 0, 1, 30,
       CASE WHEN h.readable THEN 'yes' ELSE 'unknown' END,
       CASE WHEN NOT h.readable THEN 'pg_hba_file_rules is not readable by this role'
            ELSE COALESCE('pg_hba.conf ' || h.lines, 'no trust or cleartext-password rule') END,
       'pg_hba_file_rules',
       'trust lets anyone who can connect log in as any role; password sends it in clear text',
       'replace trust and password with scram-sha-256 in pg_hba.conf, then reload',
       'edit pg_hba.conf (the lines in the evidence), then SELECT pg_reload_conf();', 'low', 'high'
  FROM hba h
UNION ALL
SELECT 'security', 'ssl_off', (pg_catalog.current_setting('ssl') = 'off')::integer::numeric, 'flag', true, 0, 1, 15, 'yes',
       'ssl = ' || pg_catalog.current_setting('ssl'),
       'pg_settings.ssl',
       'without TLS, passwords (other than SCRAM exchanges) and data cross the network in clear',
       'configure ssl_cert_file / ssl_key_file and set ssl = on',
       'ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf();  -- after installing a certificate', 'medium', 'medium'
UNION ALL
SELECT 'security', 'extra_superusers', ro.extra_superusers::numeric, 'roles', true, 0, 3, 15, 'yes',
       COALESCE('superusers besides the bootstrap role: ' || ro.superuser_names, 'only the bootstrap superuser'),
       'pg_roles.rolsuper',
       'every superuser can read and change everything, including the server''s files',
       'give these roles only the predefined roles and grants they need',
       COALESCE((SELECT pg_catalog.string_agg(pg_catalog.format('ALTER ROLE %I NOSUPERUSER;', r.rolname), ' ')
                   FROM pg_catalog.pg_roles r WHERE r.rolsuper AND r.oid <> 10), '-- nothing to do'),
       'medium', 'high'
  FROM roles ro
UNION ALL
SELECT 'security', 'public_schema_create', pg_catalog.has_schema_privilege('public', 'public', 'CREATE')::integer::numeric, 'flag', true, 0, 1, 25, 'yes',
       CASE WHEN pg_catalog.has_schema_privilege('public', 'public', 'CREATE') THEN 'PUBLIC may CREATE in schema public'
            ELSE 'PUBLIC may not create in schema public' END,
       'has_schema_privilege(''public'', ''public'', ''CREATE'')',
       'any role can plant objects that shadow others'' functions (CVE-2018-1058)',
       'revoke CREATE on schema public from PUBLIC',
       'REVOKE CREATE ON SCHEMA public FROM PUBLIC;', 'low', 'high'
UNION ALL
SELECT 'security', 'security_definer_without_search_path', df.unpinned::numeric, 'functions', true, 0, 3, 15, 'yes',
       COALESCE('SECURITY DEFINER without SET search_path: ' || df.names, 'every SECURITY DEFINER function pins search_path'),
       'pg_proc.prosecdef / proconfig',
       'a caller can redirect unqualified names inside the function and run code with its owner''s rights',
       'pin search_path on each of them',
       'ALTER FUNCTION <function> SET search_path = pg_catalog, pg_temp;  -- for each function in the evidence', 'low', 'high'
  FROM definers df
UNION ALL
-- informational (weight 0, issue 17): nearly every cluster has such roles, and an expiry date
-- says little about how a password is kept; shown with its evidence, it costs no points
SELECT 'security', 'passwords_without_expiry', CASE WHEN pw.readable THEN pw.without_expiry::numeric END, 'roles', true, 0, 10, 0,
       CASE WHEN pw.readable THEN 'yes' ELSE 'unknown' END,
       CASE WHEN NOT pw.readable THEN 'pg_authid is not readable by this role'
            ELSE COALESCE('login roles with a password that never expires: ' || pw.names, 'none') END,
       'pg_authid.rolvaliduntil',
       'a leaked password stays valid forever',
       'set VALID UNTIL on password roles, or move them to certificate or SSO authentication',
       'ALTER ROLE <role> VALID UNTIL ''<date>'';  -- for each role in the evidence', 'low', 'medium'
  FROM passwords pw
-- maintenance ---------------------------------------------------------------------------------
UNION ALL
SELECT 'maintenance', 'dead_tuples', t.needs_vacuum::numeric, 'tables', true, 0, 5, 30, 'yes',
       COALESCE(t.vacuum_detail, 'no table has more than 20 % dead tuples'),
       'table_maintenance (issue needs_vacuum)',
       'dead tuples bloat tables and indexes and slow every scan',
       'vacuum them now, and make autovacuum more aggressive on them (autovacuum_vacuum_scale_factor)',
       COALESCE(t.vacuum_ddl, '-- nothing to vacuum'), 'low', 'high'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'wraparound_tables', t.wraparound::numeric, 'tables', true, 0, 1, 20, 'yes',
       COALESCE('tables past half of the wraparound horizon: ' || t.wraparound_list, 'no table near wraparound'),
       'table_maintenance (issue wraparound_risk)',
       'at 2^31 transactions the server stops accepting writes',
       'VACUUM (FREEZE) these tables and end long transactions',
       'SELECT * FROM dbanalytics.table_maintenance WHERE ''wraparound_risk'' = ANY (issues);', 'high', 'critical'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'stale_statistics', t.needs_analyze::numeric, 'tables', true, 0, 10, 15, 'yes',
       COALESCE('changed a lot since the last ANALYZE: ' || t.analyze_list, 'statistics are fresh'),
       'table_maintenance (issue needs_analyze)',
       'the planner plans from old row counts and distributions',
       'ANALYZE them; lower autovacuum_analyze_scale_factor on large tables',
       COALESCE('ANALYZE ' || t.analyze_list || ';', '-- nothing to analyze'), 'low', 'medium'
  FROM tables t
UNION ALL
SELECT 'maintenance', 'autovacuum_off', (pg_catalog.current_setting('autovacuum') = 'off')::integer::numeric, 'flag', true, 0, 1, 15, 'yes',
       'autovacuum = ' || pg_catalog.current_setting('autovacuum'),
       'pg_settings.autovacuum',
       'without autovacuum, dead tuples pile up and wraparound comes closer',
       'turn autovacuum back on',
       'ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();', 'low', 'critical'
UNION ALL
SELECT 'maintenance', 'sequences_near_exhaustion', sq.near::numeric, 'sequences', true, 0, 1, 20, 'yes',
       COALESCE('over 75 % used: ' || sq.detail, 'no sequence is close to its limit'),
       'sequence_usage',
       'when a sequence runs out, every insert that needs it fails',
       'widen the column (ALTER TABLE ... ALTER COLUMN ... TYPE bigint) and the sequence (ALTER SEQUENCE ... AS bigint) before it runs out',
       'SELECT * FROM dbanalytics.sequence_usage WHERE status <> ''ok'';', 'medium', 'high'
  FROM sequences sq
) indicators
$$;

-- The scoring rule (see the top of this file) applied to every measured indicator.
CREATE FUNCTION @extschema@._health_scored(analysis_window interval)
RETURNS TABLE (component text, indicator text, value numeric, unit text, status text, warn numeric,
               bad numeric, weight numeric, points numeric, evidence text, source text, impact text,
               mitigation text, action text, effort text, bad_severity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH judged AS (
    SELECT m.*,
           CASE
               WHEN m.measurable IN ('unknown', 'not_configured', 'not_applicable') THEN m.measurable
               WHEN m.value IS NULL THEN 'not_applicable'
               WHEN (m.higher_is_worse AND m.value >= m.bad) OR (NOT m.higher_is_worse AND m.value <= m.bad) THEN 'bad'
               WHEN (m.higher_is_worse AND m.value > m.warn) OR (NOT m.higher_is_worse AND m.value < m.warn) THEN 'warn'
               -- the mild band of cache_hit_ratio: 0.99 is ok, 0.95 to 0.99 a mild warning (issue 17)
               WHEN m.indicator = 'cache_hit_ratio' AND m.value < 0.99 THEN 'warn'
               ELSE 'ok'
           END AS status
      FROM @extschema@._health_measures(analysis_window) m
)
SELECT j.component, j.indicator, j.value, j.unit, j.status, j.warn, j.bad, j.weight,
       pg_catalog.round(CASE j.status
           WHEN 'bad' THEN j.weight
           -- the mild band: up to a fifth of the weight, linearly from 0.99 down to the warn threshold
           WHEN 'warn' THEN CASE WHEN j.indicator = 'cache_hit_ratio' AND j.value >= j.warn
                                 THEN j.weight * 0.2 * (0.99 - j.value) / (0.99 - j.warn)
                                 ELSE j.weight * (0.5 + 0.5 * (j.value - j.warn) / (j.bad - j.warn)) END
           WHEN 'unknown' THEN j.weight / 2
           WHEN 'not_configured' THEN j.weight / 2
           ELSE 0
       END, 4),
       j.evidence, j.source, j.impact, j.mitigation, j.action, j.effort, j.bad_severity
  FROM judged j
$$;

-- One row per indicator, scored. health_score() is built from exactly these rows.
CREATE FUNCTION @extschema@.health_score_details(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (component text, indicator text, value numeric, unit text, status text,
               warn_threshold numeric, bad_threshold numeric, weight numeric, points_lost numeric,
               overall_points_lost numeric, evidence text, source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check
    SELECT s.component, s.indicator, s.value, s.unit, s.status, s.warn, s.bad, s.weight,
           s.points, s.points * c.weight, s.evidence, s.source
      FROM @extschema@._health_scored(analysis_window) s
      JOIN @extschema@.health_components c USING (component)
     ORDER BY s.component, s.indicator
$$;

CREATE FUNCTION @extschema@.health_score(analysis_window interval DEFAULT '1 hour')
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check
WITH scored AS (
    SELECT s.*, c.weight AS component_weight FROM @extschema@._health_scored(analysis_window) s
      JOIN @extschema@.health_components c USING (component)
), components AS (
    SELECT s.component, 100 - pg_catalog.sum(s.points) AS score, pg_catalog.min(s.component_weight) AS weight
      FROM scored s GROUP BY s.component
)
SELECT pg_catalog.jsonb_build_object(
    'overall_score', (SELECT pg_catalog.round(pg_catalog.sum(c.score * c.weight), 2) FROM components c),
    'component_scores', (SELECT pg_catalog.jsonb_object_agg(c.component, pg_catalog.round(c.score, 2)) FROM components c),
    'component_weights', (SELECT pg_catalog.jsonb_object_agg(c.component, c.weight) FROM components c),
    'health_indicators', (SELECT pg_catalog.jsonb_object_agg(s.indicator,
                                 CASE WHEN s.status IN ('unknown') THEN '"unknown"'::jsonb
                                      ELSE pg_catalog.to_jsonb(s.value) END) FROM scored s),
    'risk_factors', COALESCE((
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'factor', s.indicator,
                   'component', s.component,
                   'severity', CASE s.status WHEN 'bad' THEN s.bad_severity WHEN 'warn' THEN 'medium'
                                             WHEN 'not_configured' THEN 'medium' ELSE 'low' END,
                   'impact', CASE WHEN s.status = 'unknown'
                                  THEN 'this indicator could not be measured with the caller''s privileges, so it cannot vouch for health'
                                  ELSE s.impact END,
                   'mitigation', CASE WHEN s.status = 'unknown'
                                      THEN 'run health_score() as a member of pg_read_all_stats (or a superuser for pg_hba and passwords)'
                                      ELSE s.mitigation END,
                   'points_lost', s.points,
                   'evidence', pg_catalog.jsonb_build_object('value', s.value, 'unit', s.unit, 'status', s.status,
                                                             'warn_threshold', s.warn, 'bad_threshold', s.bad,
                                                             'facts', s.evidence, 'source', s.source))
               ORDER BY s.points DESC, s.indicator)
          FROM scored s WHERE s.status IN ('warn', 'bad', 'unknown', 'not_configured')), '[]'),
    'recommendations', COALESCE((
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'priority', CASE s.status WHEN 'bad' THEN 'immediate' WHEN 'warn' THEN 'short_term' ELSE 'long_term' END,
                   'indicator', s.indicator,
                   'action', s.action,
                   'why', s.mitigation,
                   'expected_improvement', pg_catalog.format(
                       'up to %s points of the %s score (%s overall): the points this indicator loses now',
                       pg_catalog.round(s.points, 2), s.component, pg_catalog.round(s.points * s.component_weight, 2)),
                   'effort', s.effort)
               ORDER BY CASE s.status WHEN 'bad' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END, s.points DESC)
          FROM scored s WHERE s.status IN ('warn', 'bad', 'not_configured')), '[]'),
    -- the state of the collection itself (collector_status): scored indicators read its history
    'collection', (
        SELECT pg_catalog.jsonb_build_object(
                   'status', CASE WHEN e.disabled OR pg_catalog.bool_or(c.health = 'off') THEN 'off'
                                  WHEN pg_catalog.bool_or(c.health IN ('failing', 'stale', 'not running')) THEN 'degraded'
                                  ELSE 'healthy' END,
                   'problems', CASE WHEN e.disabled
                       THEN pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                'source', 'enabled', 'worker', NULL::text, 'health', 'off',
                                'detail', 'dbanalytics.enabled is off: the workers stay connected but collect nothing (take_sample() and take_snapshot() still work)'))
                       ELSE COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                'source', c.source, 'worker', c.worker, 'health', c.health,
                                'detail', CASE c.health WHEN 'failing' THEN c.last_error
                                                        WHEN 'stale' THEN pg_catalog.format('no run since %s', c.last_run)
                                                        ELSE c.skipped_reason END)
                            ORDER BY c.source, c.worker)
                            FILTER (WHERE c.health IN ('off', 'failing', 'stale', 'not running')), '[]') END)
          FROM @extschema@.collector_status c
         CROSS JOIN (SELECT pg_catalog.current_setting('dbanalytics.enabled', true) = 'off' AS disabled) e
         GROUP BY e.disabled),
    'model_version', '1',
    'window', analysis_window::text,
    'computed_at', pg_catalog.now())
$$;
