-- dbanalytics analytics: database performance per minute, top queries, query analysis.

-- Connection counts per minute since a time: the minute rollups, then the raw samples of the
-- minutes not rolled up yet (so the current minutes are never missing).
CREATE FUNCTION @extschema@._connection_minutes(since timestamptz)
RETURNS TABLE (minute timestamptz, datname text, usename text, application_name text, state text,
               avg_backends double precision, max_backends integer, avg_lock_waiting double precision)
LANGUAGE sql STABLE
AS $$
WITH rolled AS (
    SELECT c.* FROM @extschema@.connection_minute c WHERE c.minute >= since
), rolled_until AS (
    SELECT COALESCE(pg_catalog.max(r.minute) + interval '1 minute', since) AS minute FROM rolled r
), raw AS (
    SELECT s.* FROM @extschema@.connection_samples s, rolled_until u
     WHERE s.sampled_at >= GREATEST(u.minute, since)
), ticks AS (
    SELECT pg_catalog.date_trunc('minute', r.sampled_at) AS minute,
           pg_catalog.count(DISTINCT r.sampled_at) AS ticks
      FROM raw r GROUP BY 1
)
SELECT r.minute, r.datname, r.usename, r.application_name, r.state, r.avg_backends, r.max_backends,
       r.avg_lock_waiting
  FROM rolled r
UNION ALL
SELECT t.minute, r.datname, r.usename, r.application_name, r.state,
       pg_catalog.sum(r.backends)::double precision / t.ticks, pg_catalog.max(r.backends),
       pg_catalog.sum(r.lock_waiting)::double precision / t.ticks
  FROM raw r JOIN ticks t ON t.minute = pg_catalog.date_trunc('minute', r.sampled_at)
 WHERE r.backends > 0
 GROUP BY t.minute, t.ticks, r.datname, r.usename, r.application_name, r.state
$$;

CREATE FUNCTION @extschema@.database_performance_metrics(analysis_window interval)
RETURNS TABLE (
    minute timestamptz, datname text, covered_seconds double precision,
    queries_per_second double precision, transactions_per_second double precision,
    commits bigint, rollbacks bigint,
    active_connections double precision, idle_connections double precision,
    idle_in_transaction_connections double precision, lock_waiting_connections double precision,
    avg_query_time_ms double precision, p50_ms double precision, p95_ms double precision,
    p99_ms double precision, max_ms double precision,
    slow_queries bigint, deadlocks bigint, temp_bytes bigint,
    blks_read bigint, blks_hit bigint, cache_hit_ratio double precision, reset boolean)
LANGUAGE sql STABLE
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH bounds AS (
    SELECT @extschema@._window_start(analysis_window) AS since, @extschema@._slow_query_ms() AS slow_ms
), db AS (
    SELECT pg_catalog.date_trunc('minute', d.interval_end) AS minute, d.datid, d.datname,
           pg_catalog.sum(EXTRACT(epoch FROM d.interval_end - d.interval_start))::double precision AS seconds,
           pg_catalog.sum(d.xact_commit)::bigint AS commits,
           pg_catalog.sum(d.xact_rollback)::bigint AS rollbacks,
           pg_catalog.sum(d.deadlocks)::bigint AS deadlocks,
           pg_catalog.sum(d.temp_bytes)::bigint AS temp_bytes,
           pg_catalog.sum(d.blks_read)::bigint AS blks_read,
           pg_catalog.sum(d.blks_hit)::bigint AS blks_hit,
           pg_catalog.bool_or(d.reset) AS reset
      FROM @extschema@.database_stats d, bounds b
     WHERE d.interval_end > b.since
     GROUP BY 1, 2, 3
), st AS (
    SELECT pg_catalog.date_trunc('minute', s.interval_end) AS minute, s.dbid,
           pg_catalog.sum(s.calls)::bigint AS calls,
           pg_catalog.sum(s.total_exec_time) AS exec_ms,
           pg_catalog.count(*) FILTER (WHERE s.total_exec_time > b.slow_ms * s.calls) AS slow
      FROM @extschema@.statement_stats s, bounds b
     WHERE s.interval_end > b.since AND s.toplevel AND s.calls > 0
     GROUP BY 1, 2
), latency AS (
    -- per minute: the database histograms of the intervals ending in it, merged
    SELECT x.minute, x.dbid,
           @extschema@.latency_percentiles(pg_catalog.array_agg(x.bucket), pg_catalog.array_agg(x.executions),
                                           '{0.5,0.95,0.99,1}') AS p
      FROM (SELECT pg_catalog.date_trunc('minute', l.interval_end) AS minute, l.dbid, u.bucket, u.executions
              FROM bounds b, @extschema@.database_latency l,
                   ROWS FROM (pg_catalog.unnest(l.buckets), pg_catalog.unnest(l.counts)) AS u(bucket, executions)
             WHERE l.interval_end > b.since) x
     GROUP BY x.minute, x.dbid
), conn AS (
    SELECT c.minute, c.datname,
           pg_catalog.sum(c.avg_backends) FILTER (WHERE c.state = 'active') AS active,
           pg_catalog.sum(c.avg_backends) FILTER (WHERE c.state = 'idle') AS idle,
           pg_catalog.sum(c.avg_backends) FILTER (WHERE c.state LIKE 'idle in transaction%') AS idle_in_transaction,
           pg_catalog.sum(c.avg_lock_waiting) AS lock_waiting
      FROM bounds b, @extschema@._connection_minutes(b.since - interval '1 minute') c
     GROUP BY 1, 2
)
SELECT db.minute, db.datname, db.seconds,
       COALESCE(st.calls, 0) / NULLIF(db.seconds, 0),
       (db.commits + db.rollbacks) / NULLIF(db.seconds, 0),
       db.commits, db.rollbacks,
       COALESCE(conn.active, 0), COALESCE(conn.idle, 0), COALESCE(conn.idle_in_transaction, 0),
       COALESCE(conn.lock_waiting, 0),
       st.exec_ms / NULLIF(st.calls, 0),
       latency.p[1], latency.p[2], latency.p[3], latency.p[4],
       COALESCE(st.slow, 0), db.deadlocks, db.temp_bytes, db.blks_read, db.blks_hit,
       db.blks_hit::double precision / NULLIF(db.blks_hit + db.blks_read, 0),
       db.reset
  FROM db
  LEFT JOIN st ON st.minute = db.minute AND st.dbid = db.datid
  LEFT JOIN conn ON conn.minute = db.minute AND conn.datname = db.datname
  LEFT JOIN latency ON latency.minute = db.minute AND latency.dbid = db.datid
 ORDER BY db.minute, db.datname
$$;

CREATE VIEW @extschema@.database_performance_metrics AS
SELECT * FROM @extschema@.database_performance_metrics(interval '1 hour');

-- Statement totals over [since, until), one row per statement (toplevel and nested apart).
CREATE FUNCTION @extschema@._statement_totals(since timestamptz, until timestamptz)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, toplevel boolean, calls bigint,
               total_exec_time double precision, rows bigint, shared_blks_hit bigint,
               shared_blks_read bigint, temp_blks bigint, wal_bytes bigint, covered_seconds double precision)
LANGUAGE sql STABLE
AS $$
    SELECT s.dbid, s.userid, s.queryid, s.toplevel,
           pg_catalog.sum(s.calls)::bigint, pg_catalog.sum(s.total_exec_time),
           pg_catalog.sum(s.rows)::bigint, pg_catalog.sum(s.shared_blks_hit)::bigint,
           pg_catalog.sum(s.shared_blks_read)::bigint,
           pg_catalog.sum(s.temp_blks_read + s.temp_blks_written)::bigint,
           pg_catalog.sum(s.wal_bytes)::bigint,
           EXTRACT(epoch FROM pg_catalog.max(s.interval_end) - pg_catalog.min(s.interval_start))::double precision
      FROM @extschema@.statement_stats s
     WHERE s.interval_end > since AND s.interval_end <= until
     GROUP BY 1, 2, 3, 4
$$;

CREATE FUNCTION @extschema@._check_order_by(order_by text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF order_by IS NULL OR order_by NOT IN ('total_time', 'mean_time', 'calls', 'rows',
                                            'shared_blks_read', 'temp_blks', 'wal_bytes') THEN
        RAISE EXCEPTION 'dbanalytics: unknown order_by %', COALESCE(pg_catalog.quote_literal(order_by), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of total_time, mean_time, calls, rows, shared_blks_read, temp_blks, wal_bytes.';
    END IF;
    RETURN order_by;
END
$$;

CREATE FUNCTION @extschema@.top_queries(analysis_window interval DEFAULT '1 hour',
                                        order_by text DEFAULT 'total_time',
                                        row_limit integer DEFAULT 20)
RETURNS TABLE (
    rank bigint, queryid bigint, datname text, usename text, toplevel boolean, query text,
    calls bigint, total_time_ms double precision, mean_time_ms double precision,
    rows_per_call double precision, cache_hit_ratio double precision,
    shared_blks_read bigint, temp_blks bigint, wal_bytes bigint,
    share_of_total_time double precision,
    previous_calls bigint, previous_total_time_ms double precision, trend text)
LANGUAGE sql STABLE
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._check_order_by(order_by),
           @extschema@._row_limit(row_limit);  -- argument checks, even with no history
WITH args AS (
    SELECT @extschema@._window_start(analysis_window) AS since,
           @extschema@._check_order_by(order_by) AS order_key,
           @extschema@._row_limit(row_limit) AS max_rows
), cur AS (
    SELECT t.* FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
), prev AS (
    SELECT t.* FROM args a, @extschema@._statement_totals(a.since - analysis_window, a.since) t
), total AS (
    SELECT NULLIF(pg_catalog.sum(c.total_exec_time) FILTER (WHERE c.toplevel), 0) AS all_time FROM cur c
), ranked AS (
    SELECT c.*, p.calls AS prev_calls, p.total_exec_time AS prev_time,
           pg_catalog.row_number() OVER (ORDER BY CASE a.order_key
                WHEN 'total_time' THEN c.total_exec_time
                WHEN 'mean_time' THEN c.total_exec_time / NULLIF(c.calls, 0)
                WHEN 'calls' THEN c.calls
                WHEN 'rows' THEN c.rows
                WHEN 'shared_blks_read' THEN c.shared_blks_read
                WHEN 'temp_blks' THEN c.temp_blks
                WHEN 'wal_bytes' THEN c.wal_bytes
             END DESC NULLS LAST, c.queryid) AS rank
      FROM cur c CROSS JOIN args a
      LEFT JOIN prev p USING (dbid, userid, queryid, toplevel)
     WHERE c.calls > 0
)
SELECT r.rank, r.queryid, d.datname::text, u.rolname::text, r.toplevel,
       COALESCE(t.query, '<query text not collected>'),
       r.calls, r.total_exec_time, r.total_exec_time / r.calls,
       r.rows::double precision / r.calls,
       r.shared_blks_hit::double precision / NULLIF(r.shared_blks_hit + r.shared_blks_read, 0),
       r.shared_blks_read, r.temp_blks, r.wal_bytes,
       CASE WHEN r.toplevel THEN r.total_exec_time / total.all_time END,
       r.prev_calls, r.prev_time,
       CASE
           WHEN r.prev_time IS NULL THEN 'new'
           WHEN r.prev_time = 0 THEN 'up'
           ELSE pg_catalog.to_char(100 * (r.total_exec_time - r.prev_time) / r.prev_time, 'FMSG999990') || '%'
       END
  FROM ranked r
  CROSS JOIN args a
  CROSS JOIN total
  LEFT JOIN @extschema@.statement_texts t USING (dbid, userid, queryid, toplevel)
  LEFT JOIN pg_catalog.pg_database d ON d.oid = r.dbid
  LEFT JOIN pg_catalog.pg_roles u ON u.oid = r.userid
 WHERE r.rank <= a.max_rows
 ORDER BY r.rank
$$;

-- Optimization opportunities read from statement history (query_analysis() assembles them).

-- The same single-row lookup run many times per transaction: a loop in the client (N+1).
CREATE FUNCTION @extschema@._n_plus_one(analysis_window interval)
RETURNS TABLE (entry jsonb, weight double precision)
LANGUAGE sql STABLE
AS $$
WITH args AS (
    SELECT @extschema@._window_start(analysis_window) AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._threshold('n_plus_one_calls_per_transaction')::double precision AS per_transaction,
           @extschema@._threshold('n_plus_one_rows_per_call')::double precision AS max_rows
), bursts AS (
    -- per snapshot interval: the lookup's calls against all transactions of its database then
    SELECT s.dbid, s.userid, s.queryid, s.toplevel,
           pg_catalog.max(s.calls::double precision / GREATEST(d.xact_commit + d.xact_rollback, 1)) AS per_transaction,
           pg_catalog.sum(d.xact_commit + d.xact_rollback) AS transactions
      FROM args a, @extschema@.statement_stats s
      JOIN @extschema@.database_stats d ON d.interval_end = s.interval_end AND d.datid = s.dbid
     WHERE s.interval_end > a.since AND s.toplevel AND s.calls > 0
     GROUP BY 1, 2, 3, 4
), lookups AS (
    SELECT t.*, x.query, bu.transactions, bu.per_transaction
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
      JOIN @extschema@.statement_texts x USING (dbid, userid, queryid, toplevel)
      JOIN bursts bu USING (dbid, userid, queryid, toplevel)
     WHERE t.toplevel AND t.calls > 0
       AND t.rows::double precision / t.calls <= a.max_rows
       AND bu.per_transaction >= a.per_transaction
       -- one table, looked up by a parameter
       AND x.query ~* '^\s*SELECT\M.*\mFROM\s+[\w."]+(\s+(AS\s+)?\w+)?\s+WHERE\M.*=\s*\$\d'
       AND x.query !~* '\m(JOIN|UNION|GROUP\s+BY)\M'
), applications AS (
    SELECT m.query_id, (pg_catalog.array_agg(m.application_name ORDER BY m.samples DESC))[1] AS application
      FROM (SELECT am.query_id, am.application_name, pg_catalog.sum(am.samples) AS samples
              FROM @extschema@.activity_minute am, args a WHERE am.minute > a.since GROUP BY 1, 2) m
     GROUP BY m.query_id
)
SELECT pg_catalog.jsonb_build_object(
           'type', 'n_plus_one', 'queryid', l.queryid, 'query', l.query, 'impact', 'high',
           'evidence', pg_catalog.jsonb_build_object(
               'calls', l.calls, 'transactions_in_database', l.transactions,
               'calls_per_transaction', pg_catalog.round(l.per_transaction::numeric, 1),
               'calls_per_second', pg_catalog.round((l.calls / a.window_seconds)::numeric, 1),
               'rows_per_call', pg_catalog.round((l.rows::double precision / l.calls)::numeric, 2),
               'mean_time_ms', pg_catalog.round((l.total_exec_time / l.calls)::numeric, 3),
               'application', ap.application),
           'solution', 'fetch the rows in one statement instead of one per key: JOIN this table into the query '
                       || 'that produced the keys, or batch them: ... WHERE <key> = ANY($1) with an array of keys',
           'reason', pg_catalog.format('a single-row lookup ran %s times per transaction of its database in one snapshot interval',
                                       pg_catalog.round(l.per_transaction::numeric, 1))),
       l.calls::double precision
  FROM lookups l CROSS JOIN args a
  LEFT JOIN applications ap ON ap.query_id = l.queryid
$$;

-- Read-only statements called very often over tables that hardly change.
CREATE FUNCTION @extschema@._caching_opportunities(analysis_window interval)
RETURNS TABLE (entry jsonb, weight double precision)
LANGUAGE sql STABLE
AS $$
WITH args AS (
    SELECT @extschema@._window_start(analysis_window) AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._threshold('caching_calls_per_second')::double precision AS min_rate,
           @extschema@._threshold('caching_write_ratio')::double precision AS write_ratio
), reads AS (
    SELECT t.*, x.query,
           ARRAY(SELECT pg_catalog.lower(pg_catalog.regexp_replace(m[1], '^.*\.', ''))
                   FROM pg_catalog.regexp_matches(x.query, '\m(?:FROM|JOIN)\s+([\w."]+)', 'gi') m) AS tables
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
      JOIN @extschema@.statement_texts x USING (dbid, userid, queryid, toplevel)
     WHERE t.toplevel AND t.calls / a.window_seconds > a.min_rate
       AND x.query ~* '^\s*SELECT\M' AND x.query !~* '\mFOR\s+(UPDATE|SHARE|NO KEY|KEY)\M|nextval|random\(|now\(|clock_timestamp'
       AND x.query ~* '\mFROM\M'
), writes AS (
    SELECT r.queryid, r.dbid, r.userid,
           COALESCE(pg_catalog.sum(w.n_tup_ins + w.n_tup_upd + w.n_tup_del), 0) AS row_writes,
           pg_catalog.count(DISTINCT w.relid) AS tables_seen
      FROM reads r CROSS JOIN args a
      LEFT JOIN @extschema@.table_stats w ON w.relname = ANY (r.tables) AND w.interval_end > a.since
     GROUP BY r.queryid, r.dbid, r.userid
)
SELECT pg_catalog.jsonb_build_object(
           'type', 'caching_opportunity', 'queryid', r.queryid, 'query', r.query, 'impact', 'medium',
           'evidence', pg_catalog.jsonb_build_object(
               'calls_per_second', pg_catalog.round((r.calls / a.window_seconds)::numeric, 1),
               'tables', r.tables, 'row_writes_to_those_tables', w.row_writes,
               'rows_per_call', pg_catalog.round((r.rows::double precision / r.calls)::numeric, 2)),
           'cache_hit_rate_potential', pg_catalog.round((1 - w.row_writes::double precision / r.calls)::numeric, 4),
           'implementation', 'cache the result in the application (or a materialized view), invalidated when '
                             || pg_catalog.array_to_string(r.tables, ', ') || ' change',
           'reason', pg_catalog.format('%s calls per second read tables that received %s row writes in the window',
                                       pg_catalog.round((r.calls / a.window_seconds)::numeric, 1), w.row_writes)),
       r.calls::double precision
  FROM reads r CROSS JOIN args a
  JOIN writes w USING (queryid, dbid, userid)
 WHERE w.row_writes <= a.write_ratio * r.calls
$$;

-- Statements written in a form with a known better one.
CREATE FUNCTION @extschema@._query_rewrites(analysis_window interval)
RETURNS TABLE (entry jsonb, total_time double precision)
LANGUAGE sql STABLE
AS $$
WITH args AS (
    SELECT @extschema@._window_start(analysis_window) AS since,
           @extschema@._threshold('select_star_rows_per_call')::double precision AS star_rows
), candidates AS (
    SELECT t.*, x.query
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
      JOIN @extschema@.statement_texts x USING (dbid, userid, queryid, toplevel)
     WHERE t.toplevel AND t.calls > 0
), patterns (pattern, matcher, suggested, explanation) AS (
    VALUES
    ('offset_pagination', '\mOFFSET\s+\$?\d',
     'keyset pagination: ... WHERE (sort_key, id) > ($last_sort_key, $last_id) ORDER BY sort_key, id LIMIT $n',
     'OFFSET reads and throws away every skipped row, so deep pages get slower and slower; a keyset condition starts at the right row through an index'),
    ('not_in_subquery', '\mNOT\s+IN\s*\(\s*SELECT\M',
     '... WHERE NOT EXISTS (SELECT 1 FROM <subquery table> s WHERE s.<column> = <outer>.<column>)',
     'NOT IN (SELECT ...) cannot become an anti-join and returns nothing when the subquery yields a NULL; NOT EXISTS is an anti-join with the expected semantics'),
    ('function_on_column', '\mWHERE\M.*\m(lower|upper|date|date_trunc|coalesce|trim|substr|to_char)\s*\(\s*"?\w+"?(\.\w+)?\s*[,)]|\mWHERE\M.*\w+::(date|text)\s*(=|<|>)',
     'compare the bare column (e.g. created_at >= $1 AND created_at < $1 + 1 day instead of date(created_at) = $1), or add an expression index such as CREATE INDEX ON t (lower(email))',
     'a function applied to a column in the filter hides the column from its index, so the table is scanned'),
    ('or_in_filter', '\mWHERE\M.*\w+\s*=\s*\$\d+\s+OR\s+\w+(\.\w+)?\s*=',
     'one column: ... WHERE a = ANY($1); different columns: ... WHERE a = $1 UNION ALL ... WHERE b = $2 AND a IS DISTINCT FROM $1 (or one index per column, combined by a BitmapOr)',
     'OR in a filter cannot use one index scan: on one column it is an = ANY list, across columns it needs two index scans'),
    ('select_star_wide', '^\s*SELECT\s+\*',
     'SELECT only the columns the application uses',
     'SELECT * on many rows ships and detoasts columns nobody reads')
)
SELECT pg_catalog.jsonb_build_object(
           'pattern', p.pattern, 'queryid', c.queryid, 'original_query', c.query,
           'suggested_form', p.suggested, 'explanation', p.explanation,
           'evidence', pg_catalog.jsonb_build_object('calls', c.calls,
                                                     'total_time_ms', pg_catalog.round(c.total_exec_time::numeric, 3),
                                                     'rows_per_call', pg_catalog.round((c.rows::double precision / c.calls)::numeric, 2))),
       c.total_exec_time
  FROM candidates c CROSS JOIN args a
  JOIN patterns p ON c.query ~* p.matcher
 WHERE p.pattern <> 'select_star_wide' OR c.rows::double precision / c.calls > a.star_rows
$$;

CREATE FUNCTION @extschema@.query_analysis(analysis_window interval DEFAULT '1 hour')
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    SELECT @extschema@._window_start(analysis_window) AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._slow_query_ms() AS slow_ms,
           @extschema@._threshold('frequent_calls_per_second')::double precision AS frequent_cps,
           @extschema@._threshold('expensive_share')::double precision AS expensive_share
), cur AS (
    SELECT t.*, t.total_exec_time / t.calls AS mean_ms
      FROM args a, @extschema@._statement_totals(a.since, pg_catalog.now()) t
     WHERE t.calls > 0 AND t.toplevel
), totals AS (
    SELECT NULLIF(pg_catalog.sum(c.shared_blks_read), 0) AS blks_read,
           NULLIF(pg_catalog.sum(c.temp_blks), 0) AS temp_blks,
           NULLIF(pg_catalog.sum(c.wal_bytes), 0) AS wal_bytes
      FROM cur c
), described AS (
    SELECT c.*, COALESCE(t.query, '<query text not collected>') AS query,
           pg_catalog.jsonb_build_object('queryid', c.queryid, 'query', COALESCE(t.query, '<query text not collected>'),
               'calls', c.calls, 'total_time_ms', pg_catalog.round(c.total_exec_time::numeric, 3),
               'mean_time_ms', pg_catalog.round(c.mean_ms::numeric, 3),
               'rows_per_call', pg_catalog.round((c.rows::double precision / c.calls)::numeric, 2),
               'shared_blks_read', c.shared_blks_read, 'temp_blks', c.temp_blks,
               'wal_bytes', c.wal_bytes) AS entry
      FROM cur c
      LEFT JOIN @extschema@.statement_texts t USING (dbid, userid, queryid, toplevel)
)
SELECT pg_catalog.jsonb_build_object(
    'window', analysis_window::text,
    'computed_at', pg_catalog.now(),
    'thresholds', pg_catalog.jsonb_build_object(
        'slow_query_threshold_ms', a.slow_ms,
        'frequent_calls_per_second', a.frequent_cps,
        'expensive_share', a.expensive_share),
    'slow_queries', COALESCE((
        SELECT pg_catalog.jsonb_agg(d.entry || pg_catalog.jsonb_build_object('reason',
                   pg_catalog.format('mean execution time %s ms exceeds dbanalytics.slow_query_threshold (%s ms)',
                                     pg_catalog.round(d.mean_ms::numeric, 1), a.slow_ms))
                   ORDER BY d.mean_ms DESC)
          FROM (SELECT * FROM described d WHERE d.mean_ms > a.slow_ms ORDER BY d.mean_ms DESC LIMIT 20) d), '[]'),
    'frequent_queries', COALESCE((
        SELECT pg_catalog.jsonb_agg(d.entry || pg_catalog.jsonb_build_object('reason',
                   pg_catalog.format('called %s times per second on average over the window (threshold %s/s)',
                                     pg_catalog.round((d.calls / a.window_seconds)::numeric, 1), a.frequent_cps))
                   ORDER BY d.calls DESC)
          FROM (SELECT * FROM described d WHERE d.calls / a.window_seconds > a.frequent_cps
                 ORDER BY d.calls DESC LIMIT 20) d), '[]'),
    'expensive_queries', COALESCE((
        SELECT pg_catalog.jsonb_agg(d.entry || pg_catalog.jsonb_build_object('reason', d.reason)
                   ORDER BY d.weight DESC)
          FROM (SELECT d.entry,
                       pg_catalog.concat_ws('; ',
                           CASE WHEN d.shared_blks_read / tt.blks_read > a.expensive_share THEN
                               pg_catalog.format('%s%% of all shared blocks read from disk or OS cache',
                                                 pg_catalog.round((100 * d.shared_blks_read / tt.blks_read)::numeric, 1)) END,
                           CASE WHEN d.temp_blks / tt.temp_blks > a.expensive_share THEN
                               pg_catalog.format('%s%% of all temporary-file blocks (sorts or hashes spilling to disk)',
                                                 pg_catalog.round((100 * d.temp_blks / tt.temp_blks)::numeric, 1)) END,
                           CASE WHEN d.wal_bytes / tt.wal_bytes > a.expensive_share THEN
                               pg_catalog.format('%s%% of all WAL written',
                                                 pg_catalog.round((100 * d.wal_bytes / tt.wal_bytes)::numeric, 1)) END
                       ) AS reason,
                       GREATEST(COALESCE(d.shared_blks_read / tt.blks_read, 0),
                                COALESCE(d.temp_blks / tt.temp_blks, 0),
                                COALESCE(d.wal_bytes / tt.wal_bytes, 0)) AS weight
                  FROM described d CROSS JOIN totals tt
                 WHERE d.shared_blks_read / tt.blks_read > a.expensive_share
                    OR d.temp_blks / tt.temp_blks > a.expensive_share
                    OR d.wal_bytes / tt.wal_bytes > a.expensive_share
                 ORDER BY weight DESC LIMIT 20) d), '[]'),
    'optimization_opportunities', COALESCE((
        SELECT pg_catalog.jsonb_agg(o.entry ORDER BY o.weight DESC)
          FROM (SELECT n.entry, n.weight FROM @extschema@._n_plus_one(analysis_window) n
                UNION ALL
                SELECT c.entry, c.weight FROM @extschema@._caching_opportunities(analysis_window) c) o), '[]'),
    'query_rewrites', COALESCE((
        SELECT pg_catalog.jsonb_agg(r.entry ORDER BY r.total_time DESC)
          FROM @extschema@._query_rewrites(analysis_window) r), '[]'))
  FROM args a
$$;
