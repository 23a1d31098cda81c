-- dbanalytics analytics: wait events (where active time goes) and what holds back vacuum.
--
-- Wait events come from the activity samples: one row per non-idle client backend and tick.
-- Active time is the samples in state 'active' (or 'fastpath function call'); a sample with no
-- wait event is CPU (shown as wait_event_type = wait_event = 'CPU'). Averages divide by the
-- sampler's ticks, so avg_active_sessions is the average number of sessions in that wait, as
-- Oracle's ASH and pg_wait_sampling's profile report.

-- The minutes of a window the minute rollups serve: [lo, hi), the whole minutes from the
-- first one starting at or after since up to where the rollup has got. The raw samples serve
-- [since, lo) and [hi, now].
CREATE FUNCTION @extschema@._minute_span(since timestamptz, OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.lo, GREATEST(b.lo, COALESCE(@extschema@._rolled_until('rollup'), '-infinity'::timestamptz))
      FROM (SELECT CASE WHEN pg_catalog.date_trunc('minute', since) = since THEN since
                        ELSE pg_catalog.date_trunc('minute', since) + interval '1 minute' END AS lo) b
$$;

-- Active samples per minute, database, wait event and query id in the raw samples since a
-- time, outside the minutes [lo, hi) the minute rollups serve.
CREATE FUNCTION @extschema@._wait_raw(since timestamptz, lo timestamptz, hi timestamptz)
RETURNS TABLE (minute timestamptz, datname text, wait_event_type text, wait_event text,
               query_id bigint, samples bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.date_trunc('minute', r.sampled_at), k.datname, COALESCE(k.wait_event_type, 'CPU'),
       COALESCE(k.wait_event, 'CPU'), r.query_id, pg_catalog.count(*)
  FROM @extschema@.activity_raw r
  JOIN @extschema@.activity_keys k ON k.key_id = r.key_id
 WHERE ((r.sampled_at >= since AND r.sampled_at < lo) OR r.sampled_at >= GREATEST(since, hi))
   AND k.state IN ('active', 'fastpath function call')
 GROUP BY 1, 2, 3, 4, 5
$$;

-- Active samples per database, wait event and query id since a time (only_query: that query's
-- alone), summed over the window in one pass. The minutes the minute rollups serve (_minute_span)
-- are split by tier: whole UTC days from wait_daily, the other whole hours from wait_hourly, the
-- other minutes from activity_minute; the raw samples serve the rest. A tier serves only from
-- its first row on (an installation upgraded from 0.1.0 has minutes before it). EXECUTE plans
-- with the actual bounds, so the partitions are pruned.
CREATE FUNCTION @extschema@._wait_totals(since timestamptz, only_query bigint DEFAULT NULL)
RETURNS TABLE (datname text, wait_event_type text, wait_event text, query_id bigint, samples bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $f$
DECLARE
    span record := @extschema@._minute_span(since);
    hours_from timestamptz := (SELECT pg_catalog.min(h.hour_end) - interval '1 hour' FROM @extschema@.wait_hourly h);
    days_from timestamptz := (SELECT pg_catalog.min(d.day_end) - interval '1 day' FROM @extschema@.wait_daily d);
    -- [d0, d1): the whole days; [a0, a1) and [b0, b1): the whole hours before and after them
    d0 timestamptz := GREATEST(@extschema@._time_ceil(span.lo, 86400), days_from);
    d1 timestamptz := @extschema@._time_floor(span.hi, 86400);
    a0 timestamptz;
    a1 timestamptz;
    b0 timestamptz;
    b1 timestamptz;
BEGIN
    IF days_from IS NULL OR d0 >= d1 THEN
        d0 := span.hi;
        d1 := span.hi;
    END IF;
    a0 := GREATEST(@extschema@._time_ceil(span.lo, 3600), hours_from);
    a1 := @extschema@._time_floor(d0, 3600);
    IF hours_from IS NULL OR a0 >= a1 THEN
        a0 := d0;
        a1 := d0;
    END IF;
    b0 := GREATEST(d1, hours_from);
    b1 := @extschema@._time_floor(span.hi, 3600);
    IF hours_from IS NULL OR b0 >= b1 THEN
        b0 := span.hi;
        b1 := span.hi;
    END IF;
    RETURN QUERY EXECUTE $q$
    WITH parts AS (
        SELECT d.datname, d.wait_event_type, d.wait_event, d.query_id, d.samples
          FROM @extschema@.wait_daily d
         WHERE d.day_end > $5 AND d.day_end <= $6
           AND ($4 IS NULL OR d.query_id = $4)
        UNION ALL
        SELECT h.datname, h.wait_event_type, h.wait_event, h.query_id, h.samples
          FROM @extschema@.wait_hourly h
         WHERE ((h.hour_end > $7 AND h.hour_end <= $8) OR (h.hour_end > $9 AND h.hour_end <= $10))
           AND ($4 IS NULL OR h.query_id = $4)
        UNION ALL
        -- the minutes of [lo, hi) outside those days and hours
        SELECT m.datname, COALESCE(m.wait_event_type, 'CPU') AS wait_event_type,
               COALESCE(m.wait_event, 'CPU') AS wait_event, m.query_id, m.samples::bigint AS samples
          FROM @extschema@.activity_minute m
         WHERE ((m.minute >= $2 AND m.minute < $7) OR (m.minute >= $8 AND m.minute < $5)
                OR (m.minute >= $6 AND m.minute < $9) OR (m.minute >= $10 AND m.minute < $3))
           AND m.state IN ('active', 'fastpath function call')
           AND ($4 IS NULL OR m.query_id = $4)
        UNION ALL
        SELECT r.datname, r.wait_event_type, r.wait_event, r.query_id, r.samples
          FROM @extschema@._wait_raw($1, $2, $3) r
         WHERE $4 IS NULL OR r.query_id = $4
    )
    SELECT p.datname, p.wait_event_type, p.wait_event, p.query_id, pg_catalog.sum(p.samples)::bigint
      FROM parts p GROUP BY 1, 2, 3, 4
    $q$ USING since, span.lo, span.hi, only_query, d0, d1, a0, a1, b0, b1;
END
$f$;

-- The same without the query ids, from wait_minute: a few rows a minute instead of one per
-- statement. Minutes rolled up before wait_minute's first row (an installation upgraded from
-- 0.1.0, whose rollups wrote activity_minute only) come from activity_minute.
CREATE FUNCTION @extschema@._wait_minutes(since timestamptz)
RETURNS TABLE (minute timestamptz, datname text, wait_event_type text, wait_event text, samples bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH span AS (
    SELECT m.lo, m.hi,
           LEAST(m.hi, COALESCE((SELECT pg_catalog.min(w.minute) FROM @extschema@.wait_minute w), m.hi)) AS covered
      FROM @extschema@._minute_span(since) m
)
SELECT w.minute, w.datname, w.wait_event_type, w.wait_event, w.samples
  FROM span s, @extschema@.wait_minute w
 WHERE w.minute >= GREATEST(s.lo, s.covered) AND w.minute < s.hi
UNION ALL
SELECT m.minute, m.datname, COALESCE(m.wait_event_type, 'CPU'), COALESCE(m.wait_event, 'CPU'),
       pg_catalog.sum(m.samples)::bigint
  FROM span s, @extschema@.activity_minute m
 WHERE m.minute >= s.lo AND m.minute < s.covered
   AND m.state IN ('active', 'fastpath function call')
 GROUP BY 1, 2, 3, 4
UNION ALL
SELECT r.minute, r.datname, r.wait_event_type, r.wait_event, pg_catalog.sum(r.samples)::bigint
  FROM span s, @extschema@._wait_raw(since, s.lo, s.hi) r
 GROUP BY 1, 2, 3, 4
$$;

-- Sampler ticks per minute since a time (every tick leaves at least one connection_samples row;
-- connection_minute stores each minute's ticks on every row of the minute).
CREATE FUNCTION @extschema@._sample_ticks(since timestamptz)
RETURNS TABLE (minute timestamptz, ticks bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH span AS (SELECT * FROM @extschema@._minute_span(since))
SELECT c.minute, pg_catalog.max(c.ticks)::bigint
  FROM span s, @extschema@.connection_minute c
 WHERE c.minute >= s.lo AND c.minute < s.hi
 GROUP BY 1
UNION ALL
SELECT pg_catalog.date_trunc('minute', c.sampled_at), pg_catalog.count(DISTINCT c.sampled_at)
  FROM span s, @extschema@.connection_samples c
 WHERE (c.sampled_at >= since AND c.sampled_at < s.lo) OR c.sampled_at >= GREATEST(since, s.hi)
 GROUP BY 1
$$;

CREATE FUNCTION @extschema@.wait_events(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (datname text, wait_event_type text, wait_event text, samples bigint,
               estimated_seconds double precision, avg_active_sessions double precision,
               share double precision, cluster_share double precision,
               top_query_id bigint, top_query_share double precision, top_query text,
               top_queries jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH ticks AS (
    SELECT pg_catalog.sum(t.ticks)::double precision AS ticks
      FROM @extschema@._sample_ticks(pg_catalog.now() - analysis_window) t
), per_query AS (
    SELECT w.datname, w.wait_event_type, w.wait_event, w.query_id, w.samples
      FROM @extschema@._wait_totals(pg_catalog.now() - analysis_window) w
), per_wait AS (
    SELECT q.datname, q.wait_event_type, q.wait_event, pg_catalog.sum(q.samples)::bigint AS samples,
           pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('query_id', q.query_id, 'samples', q.samples)
                                ORDER BY q.samples DESC, q.query_id) FILTER (WHERE q.query_id IS NOT NULL) AS queries
      FROM per_query q GROUP BY 1, 2, 3
), shares AS (
    SELECT w.*,
           w.samples::double precision / pg_catalog.sum(w.samples) OVER (PARTITION BY w.datname) AS share,
           w.samples::double precision / pg_catalog.sum(w.samples) OVER () AS cluster_share
      FROM per_wait w
)
SELECT s.datname, s.wait_event_type, s.wait_event, s.samples,
       s.samples * @extschema@._tick_seconds(),
       s.samples / NULLIF(t.ticks, 0), s.share, s.cluster_share,
       (s.queries -> 0 ->> 'query_id')::bigint,
       (s.queries -> 0 ->> 'samples')::double precision / s.samples,
       (SELECT x.query FROM @extschema@.statement_texts x
         WHERE x.datname = s.datname AND x.queryid = (s.queries -> 0 ->> 'query_id')::bigint
         ORDER BY x.toplevel DESC LIMIT 1),
       (SELECT pg_catalog.jsonb_agg(e.value || pg_catalog.jsonb_build_object(
                   'share', (e.value ->> 'samples')::double precision / s.samples) ORDER BY e.ordinality)
          FROM pg_catalog.jsonb_array_elements(s.queries) WITH ORDINALITY e
         WHERE e.ordinality <= 5)
  FROM shares s CROSS JOIN ticks t
 ORDER BY s.datname NULLS LAST, s.samples DESC, s.wait_event_type, s.wait_event
$$;

CREATE VIEW @extschema@.wait_events AS
SELECT * FROM @extschema@.wait_events(interval '1 hour');

-- The same over time, for charts: one row per time bucket (a minute by default), database and
-- wait event. A coarser resolution sums each bucket's minutes (samples and sampler ticks), so a
-- chart of days reads as many minutes but returns and sorts a few hundred buckets.
CREATE FUNCTION @extschema@.wait_events_by_minute(analysis_window interval DEFAULT '1 hour',
                                                  resolution interval DEFAULT '1 minute')
RETURNS TABLE (minute timestamptz, datname text, wait_event_type text, wait_event text,
               samples bigint, ticks bigint, avg_active_sessions double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window), @extschema@._check_resolution(resolution);  -- argument checks
WITH ticks AS (
    -- buckets aligned on the Unix epoch, as the rollups' hours and days are
    SELECT pg_catalog.date_bin(resolution, t.minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS minute,
           pg_catalog.sum(t.ticks)::bigint AS ticks
      FROM @extschema@._sample_ticks(pg_catalog.now() - analysis_window) t GROUP BY 1
), waits AS (
    SELECT pg_catalog.date_bin(resolution, w.minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS minute,
           w.datname, w.wait_event_type, w.wait_event, pg_catalog.sum(w.samples)::bigint AS samples
      FROM @extschema@._wait_minutes(pg_catalog.now() - analysis_window) w
     GROUP BY 1, 2, 3, 4
)
SELECT w.minute, w.datname, w.wait_event_type, w.wait_event, w.samples,
       t.ticks, w.samples::double precision / NULLIF(t.ticks, 0)
  FROM waits w
  LEFT JOIN ticks t USING (minute)
 ORDER BY 1, 2 NULLS LAST, 5 DESC, 3, 4
$$;

-- Where one statement spends its active time: CPU and each wait event, per database.
CREATE FUNCTION @extschema@.query_waits(queryid bigint, analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (datname text, wait_event_type text, wait_event text, samples bigint,
               estimated_seconds double precision, avg_active_sessions double precision,
               share double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since timestamptz := @extschema@._window_start(analysis_window);
    wanted bigint := queryid;
BEGIN
    IF wanted IS NULL THEN
        RAISE EXCEPTION 'dbanalytics: the query id must not be NULL'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a queryid from top_queries, wait_events (top_query_id) or pg_stat_statements.';
    END IF;
    RETURN QUERY
    WITH ticks AS (
        SELECT pg_catalog.sum(t.ticks)::double precision AS ticks FROM @extschema@._sample_ticks(since) t
    ), per_wait AS (
        SELECT w.datname, w.wait_event_type, w.wait_event, pg_catalog.sum(w.samples)::bigint AS samples
          FROM @extschema@._wait_totals(since, wanted) w
         GROUP BY 1, 2, 3
    )
    SELECT p.datname, p.wait_event_type, p.wait_event, p.samples,
           p.samples * @extschema@._tick_seconds(),
           p.samples / NULLIF(t.ticks, 0),
           p.samples::double precision / pg_catalog.sum(p.samples) OVER (PARTITION BY p.datname)
      FROM per_wait p CROSS JOIN ticks t
     ORDER BY p.datname NULLS LAST, p.samples DESC, p.wait_event_type, p.wait_event;
END
$$;

-- Live: who holds the xmin horizon back, so that vacuum cannot remove dead rows (or freeze).
-- One row per holder: a transaction (running or idle in transaction), a replication slot's
-- xmin or catalog_xmin, a prepared transaction, a standby's hot_standby_feedback. Reads only
-- views a hot standby answers too.
CREATE VIEW @extschema@.vacuum_blockers AS
WITH holders AS (
    SELECT CASE WHEN a.state LIKE 'idle in transaction%' THEN 'idle_in_transaction' ELSE 'transaction' END
               AS holder_type,
           a.pid, a.datname::pg_catalog.text AS datname, a.usename::pg_catalog.text AS usename,
           a.application_name, a.client_addr, a.state, NULL::pg_catalog.text AS slot_name,
           NULL::pg_catalog.text AS gid,
           CASE WHEN a.backend_xid IS NULL THEN a.backend_xmin
                WHEN a.backend_xmin IS NULL THEN a.backend_xid
                WHEN pg_catalog.age(a.backend_xid) > pg_catalog.age(a.backend_xmin) THEN a.backend_xid
                ELSE a.backend_xmin END AS horizon,
           a.xact_start AS since, false AS all_databases, false AS catalog_only,
           CASE WHEN a.state LIKE 'idle in transaction%'
                THEN pg_catalog.format('the session is idle in an open transaction: commit or roll back in the application, '
                                       'or end it with SELECT pg_catalog.pg_terminate_backend(%s); '
                                       'set idle_in_transaction_session_timeout to prevent this', a.pid)
                ELSE pg_catalog.format('a long transaction: let it finish, or cancel it with '
                                       'SELECT pg_catalog.pg_cancel_backend(%s) (pg_terminate_backend ends the session)', a.pid)
           END AS action
      FROM pg_catalog.pg_stat_activity a
     WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
       AND a.pid <> pg_catalog.pg_backend_pid()
       -- a walsender's xmin is a standby's feedback (below); vacuum's own xmin holds back no one
       AND a.backend_type NOT IN ('walsender', 'autovacuum worker')
    UNION ALL
    SELECT 'replication_slot', s.active_pid, s.database::pg_catalog.text, NULL, NULL, NULL,
           CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.slot_name::pg_catalog.text, NULL,
           s.xmin, NULL, true, false,
           CASE WHEN s.active
                THEN pg_catalog.format('the consumer of slot %s (pid %s) lags: make it catch up, or drop the slot', s.slot_name, s.active_pid)
                ELSE pg_catalog.format('slot %s is inactive: if its consumer is gone, SELECT pg_catalog.pg_drop_replication_slot(%L)',
                                       s.slot_name, s.slot_name) END
      FROM pg_catalog.pg_replication_slots s
     WHERE s.xmin IS NOT NULL
    UNION ALL
    SELECT 'replication_slot_catalog', s.active_pid, s.database::pg_catalog.text, NULL, NULL, NULL,
           CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.slot_name::pg_catalog.text, NULL,
           s.catalog_xmin, NULL, true, true,
           CASE WHEN s.active
                THEN pg_catalog.format('the logical consumer of slot %s (pid %s) lags: make it catch up, or drop the slot', s.slot_name, s.active_pid)
                ELSE pg_catalog.format('logical slot %s is inactive: if its consumer is gone, SELECT pg_catalog.pg_drop_replication_slot(%L)',
                                       s.slot_name, s.slot_name) END
      FROM pg_catalog.pg_replication_slots s
     WHERE s.catalog_xmin IS NOT NULL
    UNION ALL
    SELECT 'prepared_transaction', NULL, p.database::pg_catalog.text, p.owner::pg_catalog.text, NULL, NULL,
           'prepared', NULL, p.gid, p.transaction, p.prepared, false, false,
           pg_catalog.format('a prepared transaction waits for its transaction manager: COMMIT PREPARED %L or ROLLBACK PREPARED %L (in database %s)',
                             p.gid, p.gid, p.database)
      FROM pg_catalog.pg_prepared_xacts p
    UNION ALL
    SELECT 'standby_feedback', r.pid, NULL, r.usename::pg_catalog.text, r.application_name, r.client_addr,
           r.state, NULL, NULL, r.backend_xmin, r.backend_start, true, false,
           pg_catalog.format('a query on standby %s holds it through hot_standby_feedback: end long queries there, '
                             'or set hot_standby_feedback = off on it (queries there may then be cancelled)',
                             COALESCE(NULLIF(r.application_name, ''), r.client_addr::pg_catalog.text, r.pid::pg_catalog.text))
      FROM pg_catalog.pg_stat_replication r
     WHERE r.backend_xmin IS NOT NULL
), dead AS (
    -- dead rows in this database's tables now, all of them and the system catalogs' alone
    SELECT COALESCE(pg_catalog.sum(t.n_dead_tup), 0)::bigint AS all_tables,
           COALESCE(pg_catalog.sum(t.n_dead_tup) FILTER (WHERE t.schemaname = 'pg_catalog'), 0)::bigint AS catalogs
      FROM pg_catalog.pg_stat_all_tables t
), aged AS (
    SELECT h.*, pg_catalog.age(h.horizon) AS xmin_age FROM holders h
)
SELECT h.holder_type, h.pid, h.datname, h.usename, h.application_name, h.client_addr, h.state,
       h.slot_name, h.gid, h.horizon AS xmin, h.xmin_age,
       h.xmin_age = pg_catalog.max(h.xmin_age) OVER () AS oldest,
       h.since, pg_catalog.now() - h.since AS duration,
       CASE WHEN h.all_databases THEN 'all databases' ELSE COALESCE(h.datname, 'all databases') END AS holds_back,
       -- the dead rows vacuum cannot remove while this horizon stays, at most: those of this
       -- database's tables when the holder reaches them, not only the ones newer than it
       CASE WHEN NOT (h.all_databases OR h.datname IS NULL OR h.datname = pg_catalog.current_database()::pg_catalog.text) THEN NULL
            WHEN h.catalog_only THEN d.catalogs
            ELSE d.all_tables END AS dead_tuples_here,
       h.action
  FROM aged h CROSS JOIN dead d
 ORDER BY h.xmin_age DESC, h.holder_type, h.pid;
