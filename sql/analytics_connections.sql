-- dbanalytics analytics: connection pools, long transactions, lock contention, transaction trends.

-- Pool minutes over [from_time, to_time) computed from the raw connection samples: what the
-- rollup stores in pool_minute, and what connection_pool_analytics reads for the minutes not
-- rolled up yet.
CREATE FUNCTION @extschema@._pool_minutes(from_time timestamptz, to_time timestamptz)
RETURNS SETOF @extschema@.pool_minute
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH samples AS (
    SELECT s.* FROM @extschema@.connection_samples s WHERE s.sampled_at >= from_time AND s.sampled_at < to_time
), ticks_per_minute AS (
    SELECT pg_catalog.date_trunc('minute', s.sampled_at) AS minute,
           pg_catalog.count(DISTINCT s.sampled_at)::integer AS ticks
      FROM samples s GROUP BY 1
), per_tick AS (
    -- one row per tick and pool; a pool absent at a tick had no connection then
    SELECT s.sampled_at, s.datname, s.usename, s.application_name,
           COALESCE(pg_catalog.sum(s.backends) FILTER (WHERE s.state = 'active'), 0) AS active,
           COALESCE(pg_catalog.sum(s.backends) FILTER (WHERE s.state = 'idle'), 0) AS idle,
           COALESCE(pg_catalog.sum(s.backends) FILTER (WHERE s.state LIKE 'idle in transaction%'), 0) AS idle_in_transaction,
           pg_catalog.sum(s.lock_waiting) AS waiting,
           pg_catalog.sum(s.backends) AS connections
      FROM samples s WHERE s.backends > 0
     GROUP BY 1, 2, 3, 4
), cluster_per_tick AS (
    SELECT s.sampled_at, pg_catalog.sum(s.backends) AS connections, pg_catalog.sum(s.lock_waiting) AS waiting,
           COALESCE(pg_catalog.sum(s.backends) FILTER (WHERE s.state = 'active'), 0) AS active,
           COALESCE(pg_catalog.sum(s.backends) FILTER (WHERE s.state = 'idle'), 0) AS idle,
           COALESCE(pg_catalog.sum(s.backends) FILTER (WHERE s.state LIKE 'idle in transaction%'), 0) AS idle_in_transaction
      FROM samples s GROUP BY 1
), cluster_peak AS (
    SELECT pg_catalog.date_trunc('minute', c.sampled_at) AS minute, pg_catalog.max(c.connections)::integer AS peak
      FROM cluster_per_tick c GROUP BY 1
), pools AS (
    SELECT pg_catalog.date_trunc('minute', p.sampled_at) AS minute, p.datname, p.usename, p.application_name,
           pg_catalog.sum(p.active) AS active_sum, pg_catalog.max(p.active) AS max_active,
           pg_catalog.sum(p.idle) AS idle_sum, pg_catalog.sum(p.idle_in_transaction) AS iit_sum,
           pg_catalog.sum(p.waiting) AS waiting_sum, pg_catalog.max(p.connections) AS max_connections
      FROM per_tick p GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT pg_catalog.date_trunc('minute', c.sampled_at), NULL, NULL, '(all clients)',
           pg_catalog.sum(c.active), pg_catalog.max(c.active), pg_catalog.sum(c.idle),
           pg_catalog.sum(c.idle_in_transaction), pg_catalog.sum(c.waiting), pg_catalog.max(c.connections)
      FROM cluster_per_tick c GROUP BY 1
)
SELECT p.minute, p.datname, p.usename, p.application_name, t.ticks, p.active_sum::bigint,
       p.max_active::integer, p.idle_sum::bigint, p.iit_sum::bigint, p.waiting_sum::bigint,
       p.max_connections::integer, cp.peak
  FROM pools p
  JOIN ticks_per_minute t USING (minute)
  JOIN cluster_peak cp USING (minute)
$$;

-- The verdict on one pool in one minute (_pool_verdicts), with the evidence its advice quotes
-- (_pool_recommendation): the object most waited on in a lock hotspot, the cluster's peak
-- against its usable connections, the sampling tick and the growth buffer.
CREATE TYPE @extschema@.pool_verdict AS (
    minute timestamptz, datname text, usename text, application_name text,
    avg_active double precision, max_active integer, avg_idle double precision,
    avg_idle_in_transaction double precision, avg_waiting double precision,
    max_connections_used integer, utilization double precision,
    pool_status text, recommended_pool_size integer,
    hotspot_object text, hotspot_samples bigint, hotspot_total numeric,
    near_limit boolean, cluster_peak integer, usable_connections integer,
    tick_seconds double precision, growth_buffer double precision);

-- The pool analysis itself: each pool's verdict in each minute of the window. Causes are told
-- apart (issue 17): sessions waiting on locks are a lock hotspot (more sessions queue more
-- waiters), connections idle inside transactions are an application leak, a cluster near its
-- connection limit never gets more connections, and a size is recommended only from the
-- measured peak of concurrently active sessions. The object most waited on in a lock hotspot is
-- left to _compute_pool_verdicts (hotspot_* are NULL here), the advice's text to
-- _pool_recommendation, so that a caller that needs neither for every minute of the window (the
-- health score counts the minutes of each verdict) does not compute them.
-- Inlined into its callers (no SET clause), so written with pg_catalog-qualified functions and
-- operators (sql/snapshots.sql says why): the health score counts a 7-day window's verdicts
-- (about 49,000 pool-minutes) in a few milliseconds, where a function handing them over as rows
-- took about 100.
CREATE FUNCTION @extschema@._pool_judged(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE sql STABLE
AS $$
WITH args AS (
    SELECT pg_catalog.now() OPERATOR(pg_catalog.-) analysis_window AS since,
           pg_catalog.current_setting('max_connections')::integer
             OPERATOR(pg_catalog.-) pg_catalog.current_setting('superuser_reserved_connections')::integer AS usable,
           @extschema@._tick_seconds() AS tick_seconds,
           @extschema@._threshold('pool_limit_ratio')::double precision AS limit_ratio,
           @extschema@._threshold('pool_high_utilization')::double precision AS high_util,
           @extschema@._threshold('pool_low_utilization')::double precision AS low_util,
           @extschema@._threshold('pool_idle_surplus')::double precision AS idle_surplus,
           @extschema@._threshold('pool_idle_in_transaction_ratio')::double precision AS iit_ratio,
           @extschema@._threshold('pool_growth_buffer')::double precision AS grow,
           @extschema@._threshold('pool_shrink_buffer')::double precision AS shrink
), rolled AS (
    -- the minutes overlapping the window: rolled up, then from raw samples after the rollup
    SELECT COALESCE(@extschema@._rolled_until('rollup'), '-infinity') AS until
), pools AS (
    SELECT p.* FROM @extschema@.pool_minute p
     WHERE p.minute OPERATOR(pg_catalog.>) ((pg_catalog.now() OPERATOR(pg_catalog.-) analysis_window)
                                           OPERATOR(pg_catalog.-) interval '1 minute')
       AND p.minute OPERATOR(pg_catalog.<) (SELECT r.until FROM rolled r)
    UNION ALL
    SELECT p.* FROM rolled r, args a,
           @extschema@._pool_minutes(GREATEST(r.until, pg_catalog.date_trunc('minute', a.since)), 'infinity') p
), measured AS (
    SELECT p.minute, p.datname, p.usename, p.application_name,
           (p.active_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_active, p.max_active,
           (p.idle_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_idle,
           (p.idle_in_transaction_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_iit,
           (p.waiting_sum::double precision OPERATOR(pg_catalog./) p.ticks) AS avg_waiting,
           p.max_connections AS max_used,
           CASE WHEN (p.active_sum OPERATOR(pg_catalog.+) p.idle_sum) OPERATOR(pg_catalog.<>) 0
                THEN (p.active_sum::double precision
                      OPERATOR(pg_catalog./) (p.active_sum OPERATOR(pg_catalog.+) p.idle_sum)) END AS utilization,
           (p.cluster_peak OPERATOR(pg_catalog.>=) (a.limit_ratio OPERATOR(pg_catalog.*) a.usable)) AS near_limit,
           p.cluster_peak AS peak, a.*
      FROM pools p CROSS JOIN args a
), judged AS (
    SELECT m.*,
           CASE
               -- sessions wait on locks while the pool is saturated (nothing idle, or busier than
               -- high_util): more connections would only queue on the same locks
               WHEN m.avg_waiting OPERATOR(pg_catalog.>) 0
                    AND (m.avg_idle OPERATOR(pg_catalog.<) 1 OR m.utilization OPERATOR(pg_catalog.>) m.high_util)
                   THEN 'lock_hotspot'
               WHEN m.near_limit THEN 'near_connection_limit'
               WHEN m.avg_iit OPERATOR(pg_catalog.>=) 1
                    AND m.avg_iit OPERATOR(pg_catalog.>) (m.iit_ratio OPERATOR(pg_catalog.*) m.avg_active)
                   THEN 'idle_in_transaction'
               WHEN m.utilization OPERATOR(pg_catalog.<) m.low_util AND m.avg_idle OPERATOR(pg_catalog.>) m.idle_surplus
                   THEN 'oversized'
               WHEN m.utilization OPERATOR(pg_catalog.>) m.high_util THEN 'high_utilization'
               ELSE 'optimal'
           END AS status,
           -- the measured need: the peak of concurrently active sessions, with a buffer
           GREATEST(1, pg_catalog.ceil(m.max_active OPERATOR(pg_catalog.*) m.grow))::integer AS measured_need
      FROM measured m
)
SELECT j.minute, j.datname, j.usename, j.application_name,
       j.avg_active, j.max_active, j.avg_idle, j.avg_iit, j.avg_waiting, j.max_used, j.utilization,
       j.status,
       CASE
           -- never more connections than the pool has now when it waits on locks or the cluster is near its limit
           WHEN j.status OPERATOR(pg_catalog.=) 'lock_hotspot' THEN j.max_used
           WHEN j.status OPERATOR(pg_catalog.=) 'near_connection_limit' THEN LEAST(j.max_used, j.measured_need)
           WHEN j.status OPERATOR(pg_catalog.=) 'idle_in_transaction' THEN j.max_used
           WHEN j.status OPERATOR(pg_catalog.=) 'high_utilization' THEN j.measured_need
           WHEN j.status OPERATOR(pg_catalog.=) 'oversized'
               THEN GREATEST(1, pg_catalog.ceil(j.max_active OPERATOR(pg_catalog.*) j.shrink))::integer
           ELSE j.max_used
       END,
       NULL::pg_catalog.text, NULL::bigint, NULL::numeric, j.near_limit, j.peak, j.usable, j.tick_seconds, j.grow
  FROM judged j
$$;

-- The pool verdicts with the object most waited on in each lock hotspot, from one pass over the
-- window's lock waits (not a lookup per row: a day of lock-hotspot minutes would scan the raw
-- samples thousands of times).
CREATE FUNCTION @extschema@._compute_pool_verdicts(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- the rows are gathered in a tuple store of work_mem, then handed to _pool_verdicts: a 30-day
-- window's (a row per pool and minute: about 210,000 rows, 36 MB) stay in memory instead of a
-- temporary file (the query's own sorts and hashes may use as much)
SET work_mem = '64MB'
AS $$
WITH lock_objects AS (
    -- what the sessions waited on, per minute and pool: one pass over the window's lock waits
    SELECT pg_catalog.date_trunc('minute', w.sampled_at) AS minute, w.datname, w.usename, w.application_name,
           COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS object,
           pg_catalog.count(*) AS samples
      FROM @extschema@.lock_waits w
     WHERE w.waiting AND w.sampled_at > pg_catalog.now() - analysis_window - interval '1 minute'
     GROUP BY 1, 2, 3, 4, 5
), lock_objects_all AS (
    SELECT o.minute, o.datname, o.usename, o.application_name, o.object, o.samples FROM lock_objects o
    UNION ALL
    -- the whole cluster's row ('(all clients)', no database and user): every pool's waits
    SELECT o.minute, NULL, NULL, '(all clients)', o.object, pg_catalog.sum(o.samples)::bigint
      FROM lock_objects o
     GROUP BY o.minute, o.object
), hotspots AS (
    -- the object most waited on, per minute and pool
    SELECT DISTINCT ON (o.minute, o.datname, o.usename, o.application_name)
           o.minute, o.datname, o.usename, o.application_name, o.object, o.samples,
           pg_catalog.sum(o.samples) OVER (PARTITION BY o.minute, o.datname, o.usename, o.application_name) AS total
      FROM lock_objects_all o
     ORDER BY o.minute, o.datname, o.usename, o.application_name, o.samples DESC, o.object
)
SELECT j.minute, j.datname, j.usename, j.application_name,
       j.avg_active, j.max_active, j.avg_idle, j.avg_idle_in_transaction, j.avg_waiting, j.max_connections_used,
       j.utilization, j.pool_status, j.recommended_pool_size,
       h.object, h.samples, h.total, j.near_limit, j.cluster_peak, j.usable_connections, j.tick_seconds, j.growth_buffer
  FROM @extschema@._pool_judged(analysis_window) j
  LEFT JOIN hotspots h
         ON j.pool_status = 'lock_hotspot' AND h.minute = j.minute
        AND (h.datname, h.usename, h.application_name) IS NOT DISTINCT FROM (j.datname, j.usename, j.application_name)
$$;

-- The pool verdicts of the window, computed by _compute_pool_verdicts once per statement:
-- connection_pool_analytics and the report read them (src/api/memo.rs; the health score counts
-- _pool_judged's instead).
CREATE FUNCTION @extschema@._pool_verdicts(analysis_window interval)
RETURNS SETOF @extschema@.pool_verdict
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';

-- What to do about one pool verdict, in words. Clients waiting for a connection in an
-- application pool or a pooler are invisible to the server: the busy-pool advice says so.
-- Inlined into its callers (no SET clause; STABLE as format() is), so written with
-- pg_catalog-qualified functions and operators (sql/snapshots.sql says why).
CREATE FUNCTION @extschema@._pool_recommendation(v @extschema@.pool_verdict)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN v.pool_status IS NULL THEN NULL  -- no verdict (health_score: no minute to quote)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'lock_hotspot' THEN
            pg_catalog.format('%s sessions on average wait on locks%s in a saturated pool: a lock hotspot, '
                              'not a pool too small (more sessions would only queue behind the same locks); do not grow the pool, '
                              'find the blockers in blocking_chains() and lock_contention%s',
                              pg_catalog.round(v.avg_waiting::numeric, 2),
                              CASE WHEN v.hotspot_object IS NOT NULL
                                   THEN pg_catalog.format(' (most on %s: %s of %s waiting samples)',
                                                          v.hotspot_object, v.hotspot_samples, v.hotspot_total)
                                   ELSE '' END,
                              CASE WHEN v.near_limit
                                   THEN pg_catalog.format('; the cluster is also near its connection limit (%s of %s usable)',
                                                          v.cluster_peak, v.usable_connections)
                                   ELSE '' END)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'near_connection_limit' THEN
            pg_catalog.format('client connections peaked at %s of %s usable (max_connections - superuser_reserved_connections): '
                              'do not add connections; put a pooler such as PgBouncer (transaction pooling) in front, '
                              'sized to the measured peak of %s concurrently active sessions (sampled every %s s) plus %s%%: about %s',
                              v.cluster_peak, v.usable_connections, v.max_active, v.tick_seconds,
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) (v.growth_buffer OPERATOR(pg_catalog.-) 1))::numeric),
                              v.recommended_pool_size)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'idle_in_transaction' THEN
            pg_catalog.format('%s connections on average sit idle inside an open transaction, against %s active: '
                              'the application holds connections (and their locks and snapshots) without using them; '
                              'fix the code path that leaves transactions open (long_running_transactions names the sessions) '
                              'and set idle_in_transaction_session_timeout; do not grow the pool',
                              pg_catalog.round(v.avg_idle_in_transaction::numeric, 2), pg_catalog.round(v.avg_active::numeric, 2))
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'oversized' THEN
            pg_catalog.format('only %s%% of connections are active while %s sit idle on average: shrink the pool to about %s '
                              '(peak of %s concurrently active sessions, sampled every %s s)',
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) v.utilization)::numeric, 1),
                              pg_catalog.round(v.avg_idle::numeric, 1), v.recommended_pool_size, v.max_active, v.tick_seconds)
        WHEN v.pool_status OPERATOR(pg_catalog.=) 'high_utilization' THEN
            pg_catalog.format('%s%% of connections are busy, at most %s active at once (sampled every %s s; shorter peaks are not seen): '
                              'if clients wait for a connection, size the pool to about %s; the server cannot see clients queued '
                              'in an application pool or a pooler: check its wait count (PgBouncer: SHOW POOLS, cl_waiting)',
                              pg_catalog.round((100 OPERATOR(pg_catalog.*) v.utilization)::numeric, 1), v.max_active,
                              v.tick_seconds, v.recommended_pool_size)
        ELSE 'no action needed'
    END
$$;

CREATE FUNCTION @extschema@.connection_pool_analytics(analysis_window interval)
RETURNS TABLE (
    minute timestamptz, datname text, usename text, application_name text,
    avg_active double precision, max_active integer, avg_idle double precision,
    avg_idle_in_transaction double precision, avg_waiting double precision,
    max_connections_used integer, utilization double precision,
    pool_status text, recommended_pool_size integer, recommendation text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
    SELECT p.minute, p.datname, p.usename, p.application_name, p.avg_active, p.max_active, p.avg_idle,
           p.avg_idle_in_transaction, p.avg_waiting, p.max_connections_used, p.utilization, p.pool_status,
           p.recommended_pool_size, @extschema@._pool_recommendation(p)
      FROM @extschema@._pool_verdicts(analysis_window) p
     ORDER BY p.minute, p.datname NULLS LAST, p.usename, p.application_name
$$;

CREATE VIEW @extschema@.connection_pool_analytics AS
SELECT * FROM @extschema@.connection_pool_analytics(interval '1 hour');

-- Live: transactions open longer than the long_transaction threshold.
CREATE VIEW @extschema@.long_running_transactions AS
SELECT a.pid, a.datname::pg_catalog.text, a.usename::pg_catalog.text, a.application_name, a.client_addr, a.state,
       a.xact_start, pg_catalog.now() - a.xact_start AS duration,
       pg_catalog.now() - a.state_change AS in_state_for,
       a.wait_event_type, a.wait_event, a.query, a.backend_xid, a.backend_xmin,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_catalog.pg_blocking_pids(a.pid) END AS blocked_by,
       (SELECT pg_catalog.array_agg(w.pid ORDER BY w.pid)
          FROM pg_catalog.pg_stat_activity w
         WHERE w.wait_event_type = 'Lock' AND a.pid = ANY (pg_catalog.pg_blocking_pids(w.pid))) AS blocking
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'client backend'
   AND a.xact_start < pg_catalog.now()
       - pg_catalog.make_interval(secs => @extschema@._threshold('long_transaction')::double precision)
 ORDER BY a.xact_start;

-- Who blocked whom, per sample tick: every head blocker (a blocker that is not itself waiting)
-- with the sessions it holds up directly or through others.
CREATE FUNCTION @extschema@._compute_blocking_chains(analysis_window interval)
RETURNS TABLE (sampled_at timestamptz, head_pid integer, head_usename text, head_application_name text,
               head_state text, head_query_id bigint, blocked_pids integer[], blocked_count integer,
               chain_depth integer, relations text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH RECURSIVE waits AS (
    SELECT w.* FROM @extschema@.lock_waits w
     WHERE w.sampled_at > pg_catalog.now() - analysis_window AND w.waiting
), edges AS (
    SELECT w.sampled_at, b.blocker, w.pid AS waiter,
           COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS waited_on
      FROM waits w CROSS JOIN LATERAL pg_catalog.unnest(w.blocking_pids) AS b(blocker)
), heads AS (
    SELECT DISTINCT e.sampled_at, e.blocker AS head
      FROM edges e
     WHERE NOT EXISTS (SELECT FROM waits w WHERE w.sampled_at = e.sampled_at AND w.pid = e.blocker)
), chain AS (
    SELECT h.sampled_at, h.head, e.waiter, e.waited_on, 1 AS depth, ARRAY[h.head, e.waiter] AS path
      FROM heads h JOIN edges e ON e.sampled_at = h.sampled_at AND e.blocker = h.head
    UNION ALL
    SELECT c.sampled_at, c.head, e.waiter, e.waited_on, c.depth + 1, c.path || e.waiter
      FROM chain c JOIN edges e ON e.sampled_at = c.sampled_at AND e.blocker = c.waiter
     WHERE e.waiter <> ALL (c.path)
)
SELECT c.sampled_at, c.head, h.usename, h.application_name, h.state, h.query_id,
       pg_catalog.array_agg(DISTINCT c.waiter), pg_catalog.count(DISTINCT c.waiter)::integer,
       pg_catalog.max(c.depth), pg_catalog.array_agg(DISTINCT c.waited_on)
  FROM chain c
  -- the head as the sampler saw it (a client session; other heads, e.g. autovacuum, have no row)
  LEFT JOIN @extschema@.lock_waits h
         ON h.sampled_at = c.sampled_at AND h.pid = c.head AND NOT h.waiting
        AND h.sampled_at > pg_catalog.now() - analysis_window
 GROUP BY c.sampled_at, c.head, h.usename, h.application_name, h.state, h.query_id
 ORDER BY c.sampled_at, c.head
$$;

-- Computed by _compute_blocking_chains once per statement: lock_contention() and the report
-- both read it (src/api/memo.rs).
CREATE FUNCTION @extschema@.blocking_chains(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (sampled_at timestamptz, head_pid integer, head_usename text, head_application_name text,
               head_state text, head_query_id bigint, blocked_pids integer[], blocked_count integer,
               chain_depth integer, relations text[])
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';

-- Lock hotspots: one row per waited-on object over the window.
CREATE FUNCTION @extschema@.lock_contention(analysis_window interval)
RETURNS TABLE (waited_on text, locktype text, modes text[], wait_samples bigint, waits bigint,
               waiters bigint, estimated_wait_seconds double precision, max_wait interval,
               head_blockers integer[], last_seen timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           COALESCE((SELECT s.setting::double precision / 1000 FROM pg_catalog.pg_settings s
                      WHERE s.name = 'dbanalytics.sample_interval'), 1) AS tick_seconds
), waits AS (
    SELECT w.*, COALESCE(w.relation_schema || '.' || w.relation_name, w.locktype) AS object
      FROM @extschema@.lock_waits w
     WHERE w.sampled_at > pg_catalog.now() - analysis_window AND w.waiting
), heads AS MATERIALIZED (
    -- computed once (inlined, the per-object subquery below ran blocking_chains() once per object)
    SELECT c.sampled_at, c.head_pid, r.object
      FROM @extschema@.blocking_chains(analysis_window) c
     CROSS JOIN LATERAL pg_catalog.unnest(c.relations) AS r(object)
)
SELECT w.object, pg_catalog.min(w.locktype), pg_catalog.array_agg(DISTINCT w.mode),
       pg_catalog.count(*), pg_catalog.count(DISTINCT (w.pid, w.wait_started)),
       pg_catalog.count(DISTINCT w.pid), pg_catalog.count(*) * pg_catalog.min(a.tick_seconds),
       pg_catalog.max(w.sampled_at - w.wait_started),
       (SELECT pg_catalog.array_agg(DISTINCT h.head_pid) FROM heads h WHERE h.object = w.object),
       pg_catalog.max(w.sampled_at)
  FROM waits w CROSS JOIN args a
 GROUP BY w.object
 ORDER BY pg_catalog.count(*) DESC
$$;

CREATE VIEW @extschema@.lock_contention AS
SELECT * FROM @extschema@.lock_contention(interval '1 hour');

-- Commits, rollbacks and deadlocks per hour and database.
CREATE FUNCTION @extschema@.transaction_trends(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (hour timestamptz, datname text, commits bigint, rollbacks bigint,
               rollback_ratio double precision, deadlocks bigint, sessions bigint,
               sessions_abandoned bigint, sessions_fatal bigint, sessions_killed bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
    SELECT pg_catalog.date_trunc('hour', d.interval_end), d.datname,
           pg_catalog.sum(d.xact_commit)::bigint, pg_catalog.sum(d.xact_rollback)::bigint,
           pg_catalog.sum(d.xact_rollback)::double precision
               / NULLIF(pg_catalog.sum(d.xact_commit + d.xact_rollback), 0),
           pg_catalog.sum(d.deadlocks)::bigint, pg_catalog.sum(d.sessions)::bigint,
           pg_catalog.sum(d.sessions_abandoned)::bigint, pg_catalog.sum(d.sessions_fatal)::bigint,
           pg_catalog.sum(d.sessions_killed)::bigint
      FROM @extschema@.database_stats d
     WHERE d.interval_end > pg_catalog.now() - analysis_window
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;
