-- dbanalytics: plan history (src/plans, docs/plans.md). The executor hooks capture the plan of a
-- top-level execution that took dbanalytics.plan_capture_threshold or longer, or whose plan shape
-- was never explained; the collector's plans source stores the captures here.

-- One row per plan shape of a statement: the plan id (a hash of the plan tree's node types,
-- relations, indexes, scan directions, join types and aggregation strategies, in tree order,
-- with the query id: src/plans/shape.rs) and the plan as EXPLAIN (FORMAT JSON, COSTS OFF)
-- printed it at its first capture, with the constants of its expressions replaced by ?. plan is
-- NULL when the capture that explained it was lost (a collector transaction that failed);
-- truncated when the plan was longer than the queue's 16 kB. The analyzed_* columns hold the
-- latest slow capture explained with its actual row counts (dbanalytics.plan_capture_analyze),
-- normalized the same way, when it ended and how long it took. Read through plan_texts: the
-- plans of a statement are shown to whoever may see its text.
CREATE TABLE @extschema@.plans (
    dbid          oid              NOT NULL,
    userid        oid              NOT NULL,
    queryid       bigint           NOT NULL,
    planid        bigint           NOT NULL,
    plan          text,
    truncated     boolean          NOT NULL DEFAULT false,
    first_seen    timestamptz      NOT NULL,
    last_seen     timestamptz      NOT NULL,
    analyzed_plan text,
    analyzed_at   timestamptz,
    analyzed_ms   double precision,
    PRIMARY KEY (dbid, userid, queryid, planid)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.plans', '');

-- The captures of one collector interval, per statement and plan: how many (and how many were
-- slow), when the first and the last execution ended, and their mean and longest execution
-- time. Only captured executions count: a fast execution of a known shape leaves no row (the
-- latency histograms count every execution). Hour tier.
CREATE TABLE @extschema@.plan_sightings (
    interval_end  timestamptz      NOT NULL,
    dbid          oid              NOT NULL,
    userid        oid              NOT NULL,
    queryid       bigint           NOT NULL,
    planid        bigint           NOT NULL,
    captures      bigint           NOT NULL,
    slow_captures bigint           NOT NULL,
    first_at      timestamptz      NOT NULL,
    last_at       timestamptz      NOT NULL,
    mean_ms       double precision NOT NULL,
    max_ms        double precision NOT NULL
) PARTITION BY RANGE (interval_end);
INSERT INTO @extschema@.partition_indexes VALUES ('plan_sightings', 'interval_end', '(interval_end)');
INSERT INTO @extschema@.partition_indexes VALUES ('plan_sightings', 'statement', '(queryid, dbid, userid, first_at)');

-- Stores the captures drained from shared memory (the plans source), one element per capture;
-- returns the rows written.
CREATE FUNCTION @extschema@._store_plans(dbids bigint[], userids bigint[], queryids bigint[],
                                         planids bigint[], slow boolean[], ms double precision[],
                                         ended_at double precision[], plan_texts text[],
                                         truncated boolean[], analyzed_plans text[])
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
WITH captured AS (
    SELECT c.dbid::pg_catalog.oid AS dbid, c.userid::pg_catalog.oid AS userid, c.queryid, c.planid,
           c.slow, c.ms, pg_catalog.to_timestamp(c.ended_at) AS ended_at, c.plan, c.truncated, c.analyzed
      FROM ROWS FROM (pg_catalog.unnest(dbids), pg_catalog.unnest(userids), pg_catalog.unnest(queryids),
                      pg_catalog.unnest(planids), pg_catalog.unnest(slow), pg_catalog.unnest(ms),
                      pg_catalog.unnest(ended_at), pg_catalog.unnest(plan_texts), pg_catalog.unnest(truncated),
                      pg_catalog.unnest(analyzed_plans))
           AS c(dbid, userid, queryid, planid, slow, ms, ended_at, plan, truncated, analyzed)
), stored AS (
    INSERT INTO @extschema@.plans AS p (dbid, userid, queryid, planid, plan, truncated, first_seen, last_seen,
                                        analyzed_plan, analyzed_at, analyzed_ms)
    SELECT c.dbid, c.userid, c.queryid, c.planid, pg_catalog.max(c.plan),
           COALESCE(pg_catalog.bool_or(c.truncated) FILTER (WHERE c.plan IS NOT NULL), false),
           pg_catalog.min(c.ended_at), pg_catalog.max(c.ended_at),
           -- the latest analyzed capture
           (pg_catalog.array_agg(c.analyzed ORDER BY c.ended_at DESC) FILTER (WHERE c.analyzed IS NOT NULL))[1],
           (pg_catalog.array_agg(c.ended_at ORDER BY c.ended_at DESC) FILTER (WHERE c.analyzed IS NOT NULL))[1],
           (pg_catalog.array_agg(c.ms ORDER BY c.ended_at DESC) FILTER (WHERE c.analyzed IS NOT NULL))[1]
      FROM captured c
     GROUP BY c.dbid, c.userid, c.queryid, c.planid
    ON CONFLICT (dbid, userid, queryid, planid) DO UPDATE
       SET first_seen = LEAST(p.first_seen, excluded.first_seen),
           last_seen = GREATEST(p.last_seen, excluded.last_seen),
           truncated = CASE WHEN p.plan IS NULL THEN excluded.truncated ELSE p.truncated END,
           plan = COALESCE(p.plan, excluded.plan),
           analyzed_plan = COALESCE(excluded.analyzed_plan, p.analyzed_plan),
           analyzed_at = CASE WHEN excluded.analyzed_plan IS NULL THEN p.analyzed_at ELSE excluded.analyzed_at END,
           analyzed_ms = CASE WHEN excluded.analyzed_plan IS NULL THEN p.analyzed_ms ELSE excluded.analyzed_ms END
    RETURNING 1
), sighted AS (
    INSERT INTO @extschema@.plan_sightings
    SELECT pg_catalog.now(), c.dbid, c.userid, c.queryid, c.planid, pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE c.slow), pg_catalog.min(c.ended_at), pg_catalog.max(c.ended_at),
           pg_catalog.avg(c.ms), pg_catalog.max(c.ms)
      FROM captured c
     GROUP BY c.dbid, c.userid, c.queryid, c.planid
    RETURNING 1
)
SELECT (SELECT pg_catalog.count(*) FROM stored) + (SELECT pg_catalog.count(*) FROM sighted)
$$;

-- The plans with their texts as statement_texts shows the statement's text to the caller: the
-- plans are NULL for a role that may not see the text (or when the text is gone).
CREATE VIEW @extschema@.plan_texts AS
SELECT p.dbid, p.userid, p.queryid, p.planid, p.first_seen, p.last_seen, p.truncated,
       CASE WHEN v.visible THEN p.plan END AS plan,
       p.analyzed_at, p.analyzed_ms,
       CASE WHEN v.visible THEN p.analyzed_plan END AS analyzed_plan
  FROM @extschema@.plans p
 CROSS JOIN LATERAL (
       SELECT (SELECT t.text_visible FROM @extschema@.statement_texts t
                WHERE t.dbid OPERATOR(pg_catalog.=) p.dbid AND t.userid OPERATOR(pg_catalog.=) p.userid
                  AND t.queryid OPERATOR(pg_catalog.=) p.queryid
                ORDER BY t.toplevel DESC LIMIT 1) AS visible) v;

-- Plan changes in [since, until): each sighting of a statement in the stretch whose plan differs
-- from the statement's previous sighting (in the stretch or before it, as far as plan_sightings
-- goes; sightings in the order their first execution ended). changed_at: when the first captured
-- execution with the new plan ended.
CREATE FUNCTION @extschema@._plan_changes(since timestamptz, until timestamptz)
RETURNS TABLE (dbid oid, userid oid, queryid bigint, previous_planid bigint, planid bigint,
               changed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH stretch AS (
        SELECT s.dbid, s.userid, s.queryid, s.planid, s.first_at, s.last_at
          FROM @extschema@.plan_sightings s
         WHERE s.interval_end >= since AND s.first_at < until
    ), before AS (
        -- each statement's last sighting before the stretch
        SELECT b.*
          FROM (SELECT DISTINCT t.dbid, t.userid, t.queryid FROM stretch t) k
         CROSS JOIN LATERAL (
                SELECT s.dbid, s.userid, s.queryid, s.planid, s.first_at, s.last_at
                  FROM @extschema@.plan_sightings s
                 WHERE s.queryid OPERATOR(pg_catalog.=) k.queryid AND s.dbid OPERATOR(pg_catalog.=) k.dbid
                   AND s.userid OPERATOR(pg_catalog.=) k.userid AND s.first_at < since
                 ORDER BY s.first_at DESC, s.last_at DESC LIMIT 1) b
    ), ordered AS (
        SELECT x.*, pg_catalog.lag(x.planid) OVER (PARTITION BY x.dbid, x.userid, x.queryid
                                                   ORDER BY x.first_at, x.last_at, x.planid) AS previous_planid
          FROM (SELECT * FROM stretch UNION ALL SELECT * FROM before) x
    )
    SELECT o.dbid, o.userid, o.queryid, o.previous_planid, o.planid, o.first_at
      FROM ordered o
     WHERE o.first_at >= since AND o.previous_planid OPERATOR(pg_catalog.<>) o.planid
$$;

-- Every plan a statement used in the window (queryid NULL: every statement), with its captures
-- there and its plan (and latest analyzed plan) as plan_texts shows them to the caller, newest
-- first.
CREATE FUNCTION @extschema@.query_plans(queryid bigint, analysis_window interval DEFAULT '1 day')
RETURNS TABLE (queryid bigint, datname text, usename text, planid bigint, first_seen timestamptz,
               last_seen timestamptz, captures bigint, slow_captures bigint,
               mean_ms double precision, max_ms double precision, plan text, truncated boolean,
               analyzed_at timestamptz, analyzed_ms double precision, analyzed_plan text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.queryid, d.datname::text, u.rolname::text, s.planid, pg_catalog.min(s.first_at), pg_catalog.max(s.last_at),
           pg_catalog.sum(s.captures)::bigint, pg_catalog.sum(s.slow_captures)::bigint,
           pg_catalog.sum(s.mean_ms * s.captures) / pg_catalog.sum(s.captures), pg_catalog.max(s.max_ms),
           pg_catalog.max(t.plan), pg_catalog.bool_or(t.truncated),
           pg_catalog.max(t.analyzed_at), pg_catalog.max(t.analyzed_ms), pg_catalog.max(t.analyzed_plan)
      FROM @extschema@.plan_sightings s
      LEFT JOIN @extschema@.plan_texts t
             ON t.dbid OPERATOR(pg_catalog.=) s.dbid AND t.userid OPERATOR(pg_catalog.=) s.userid
            AND t.queryid OPERATOR(pg_catalog.=) s.queryid AND t.planid OPERATOR(pg_catalog.=) s.planid
      LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.dbid
      LEFT JOIN pg_catalog.pg_roles u ON u.oid OPERATOR(pg_catalog.=) s.userid
     WHERE s.interval_end >= @extschema@._window_start(analysis_window)
       AND s.last_at >= pg_catalog.now() OPERATOR(pg_catalog.-) analysis_window
       AND (query_plans.queryid IS NULL OR s.queryid OPERATOR(pg_catalog.=) query_plans.queryid)
     GROUP BY s.dbid, s.userid, s.queryid, s.planid, d.datname, u.rolname
     ORDER BY pg_catalog.max(s.last_at) DESC, s.planid
$$;

-- Statements whose plan changed in the window, newest change first: the plan before and after
-- (as plan_texts shows them to the caller), and the statement's top-level executions and
-- latency percentiles (the histograms) over the same length of time before the change and
-- from the change to now.
CREATE FUNCTION @extschema@.plan_changes(analysis_window interval DEFAULT '1 day',
                                         row_limit integer DEFAULT 20)
RETURNS TABLE (queryid bigint, datname text, usename text, query text, changed_at timestamptz,
               previous_planid bigint, planid bigint,
               executions_before bigint, p50_ms_before double precision, p95_ms_before double precision,
               executions_after bigint, p50_ms_after double precision, p95_ms_after double precision,
               previous_plan text, plan text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._row_limit(row_limit);  -- argument check, even with no history
    SELECT c.queryid, d.datname::text, u.rolname::text,
           (SELECT t.query FROM @extschema@.statement_texts t
             WHERE t.dbid OPERATOR(pg_catalog.=) c.dbid AND t.userid OPERATOR(pg_catalog.=) c.userid
               AND t.queryid OPERATOR(pg_catalog.=) c.queryid
             ORDER BY t.toplevel DESC LIMIT 1),
           c.changed_at, c.previous_planid, c.planid,
           b.executions, b.percentiles[1], b.percentiles[2], a.executions, a.percentiles[1], a.percentiles[2],
           (SELECT t.plan FROM @extschema@.plan_texts t
             WHERE (t.dbid, t.userid, t.queryid, t.planid) OPERATOR(pg_catalog.=) (c.dbid, c.userid, c.queryid, c.previous_planid)),
           (SELECT t.plan FROM @extschema@.plan_texts t
             WHERE (t.dbid, t.userid, t.queryid, t.planid) OPERATOR(pg_catalog.=) (c.dbid, c.userid, c.queryid, c.planid))
      FROM (SELECT c.* FROM @extschema@._plan_changes(@extschema@._window_start(analysis_window), pg_catalog.now()) c
             ORDER BY c.changed_at DESC, c.queryid LIMIT LEAST(row_limit, 1000)) c
      CROSS JOIN LATERAL (
            SELECT pg_catalog.sum(l.executions)::bigint AS executions,
                   @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95}') AS percentiles
              FROM @extschema@._latency_parts(c.changed_at OPERATOR(pg_catalog.-) (pg_catalog.now() OPERATOR(pg_catalog.-) c.changed_at),
                                              c.changed_at, c.queryid) l
             WHERE l.dbid OPERATOR(pg_catalog.=) c.dbid AND l.userid OPERATOR(pg_catalog.=) c.userid) b
      CROSS JOIN LATERAL (
            SELECT pg_catalog.sum(l.executions)::bigint AS executions,
                   @extschema@.merged_latency_percentiles(l.buckets, l.counts, '{0.5,0.95}') AS percentiles
              FROM @extschema@._latency_parts(c.changed_at, pg_catalog.now(), c.queryid) l
             WHERE l.dbid OPERATOR(pg_catalog.=) c.dbid AND l.userid OPERATOR(pg_catalog.=) c.userid) a
      LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) c.dbid
      LEFT JOIN pg_catalog.pg_roles u ON u.oid OPERATOR(pg_catalog.=) c.userid
     ORDER BY c.changed_at DESC, c.queryid
$$;
