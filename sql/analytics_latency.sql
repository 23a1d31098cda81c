-- dbanalytics analytics: latency percentiles from the persisted histograms. A percentile over a
-- window merges the interval histograms (bucket counts add up); it never averages percentiles.

CREATE FUNCTION @extschema@.query_latency(analysis_window interval DEFAULT '1 hour',
                                          row_limit integer DEFAULT 20)
RETURNS TABLE (rank bigint, queryid bigint, datname text, usename text, query text,
               executions bigint, p50_ms double precision, p90_ms double precision,
               p95_ms double precision, p99_ms double precision, max_ms double precision,
               reset boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._row_limit(row_limit);  -- argument checks
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since, LEAST(row_limit, 1000) AS max_rows
), measured AS (
    -- each statement's histograms of the window merged (the parts' executions are their counts' sum)
    SELECT l.dbid, l.userid, l.queryid, pg_catalog.sum(l.executions)::bigint AS executions,
           @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.9,0.95,0.99,1}') AS p,
           pg_catalog.bool_or(l.reset) AS reset
      FROM args a, @extschema@._latency_parts(a.since, pg_catalog.now()) l
     WHERE pg_catalog.cardinality(l.buckets) > 0
     GROUP BY l.dbid, l.userid, l.queryid
), ranked AS (
    SELECT m.*, pg_catalog.row_number() OVER (ORDER BY m.p[4] DESC, m.executions DESC, m.queryid) AS rank
      FROM measured m
)
SELECT r.rank, r.queryid, d.datname::text, u.rolname::text,
       CASE WHEN r.queryid = 0 AND r.userid = 0
            THEN '<overflow: queries beyond dbanalytics.max_histogram_queries>'
            ELSE (SELECT t.query FROM @extschema@.statement_texts t
                   WHERE (t.dbid, t.userid, t.queryid) = (r.dbid, r.userid, r.queryid)
                   ORDER BY t.toplevel DESC LIMIT 1)
       END,
       r.executions, r.p[1], r.p[2], r.p[3], r.p[4], r.p[5], r.reset
  FROM ranked r
  CROSS JOIN args a
  LEFT JOIN pg_catalog.pg_database d ON d.oid = r.dbid
  LEFT JOIN pg_catalog.pg_roles u ON u.oid = r.userid
 WHERE r.rank <= a.max_rows
 ORDER BY r.rank
$$;

-- One query's histogram over a window, merged across databases and users, for plotting.
CREATE FUNCTION @extschema@.latency_histogram(query_id bigint, analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (bucket integer, lower_ms double precision, upper_ms double precision, executions bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
    SELECT u.bucket::integer, b.lower_ms, b.upper_ms, pg_catalog.sum(u.executions)::bigint
      FROM @extschema@._latency_parts(pg_catalog.now() - analysis_window, pg_catalog.now(), query_id) l,
           ROWS FROM (pg_catalog.unnest(l.buckets), pg_catalog.unnest(l.counts)) AS u(bucket, executions),
           @extschema@.latency_buckets() b
     WHERE b.bucket = u.bucket
     GROUP BY u.bucket, b.lower_ms, b.upper_ms
     ORDER BY u.bucket
$$;

CREATE VIEW @extschema@.histogram_status AS
SELECT * FROM @extschema@.histogram_status();
