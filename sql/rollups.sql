-- dbanalytics: rollups of the raw samples into minutes and of the per-snapshot deltas into
-- hours and days (the collector's rollup and rollup_hours sources). Internal: not executable by
-- PUBLIC.

-- Active samples per wait event and query id of the whole UTC hours and days that end in
-- (since, until], the minutes the minute rollup has just completed: an hour from its minutes
-- in activity_minute into wait_hourly, a day from its hours in wait_hourly into wait_daily, a
-- day only when wait_hourly holds all its hours (not the day of an upgrade from 0.1.0, whose
-- earlier hours are in activity_minute only). Called by _rollup_minutes; returns the rows
-- written.
CREATE FUNCTION @extschema@._rollup_waits(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- group in memory: no temporary file
AS $$
DECLARE
    hours_from timestamptz := @extschema@._time_floor(since, 3600);
    hours_to timestamptz := @extschema@._time_floor(until, 3600);
    days_from timestamptz := @extschema@._time_floor(since, 86400);
    days_to timestamptz := @extschema@._time_floor(until, 86400);
    written bigint := 0;
    n bigint;
BEGIN
    IF hours_from < hours_to THEN
        INSERT INTO @extschema@.wait_hourly
        SELECT @extschema@._time_floor(m.minute, 3600) + interval '1 hour', m.datname,
               COALESCE(m.wait_event_type, 'CPU'), COALESCE(m.wait_event, 'CPU'), m.query_id,
               pg_catalog.sum(m.samples)
          FROM @extschema@.activity_minute m
         WHERE m.minute >= hours_from AND m.minute < hours_to
           AND m.state IN ('active', 'fastpath function call')
         GROUP BY 1, 2, 3, 4, 5;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END IF;
    -- the days whose first hour wait_hourly holds (it holds every later one: rolled in order)
    days_from := GREATEST(days_from, (SELECT @extschema@._time_ceil(pg_catalog.min(h.hour_end) - interval '1 hour', 86400)
                                        FROM @extschema@.wait_hourly h));
    IF days_from < days_to THEN
        INSERT INTO @extschema@.wait_daily
        SELECT @extschema@._time_ceil(h.hour_end, 86400), h.datname, h.wait_event_type, h.wait_event,
               h.query_id, pg_catalog.sum(h.samples)
          FROM @extschema@.wait_hourly h
         WHERE h.hour_end > days_from AND h.hour_end <= days_to
         GROUP BY 1, 2, 3, 4, 5;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
    END IF;
    RETURN written;
END
$$;

-- Minute rollups of completed minutes since the last rollup (source_state 'rollup', kept here:
-- updated_at is the end of the last minute rolled up). The newest minute is left alone until a
-- few seconds after it ends, so a sample committed late is still counted. The first run starts at
-- the oldest sample. Returns the rows written.
CREATE FUNCTION @extschema@._rollup_minutes()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- group in memory: no temporary file
AS $$
DECLARE
    upper_bound timestamptz := pg_catalog.date_trunc('minute', pg_catalog.now() - interval '5 seconds');
    rolled_until timestamptz;
    lower_bound timestamptz;
    rows_written bigint := 0;
    n bigint;
BEGIN
    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'rollup';
    lower_bound := rolled_until;
    IF lower_bound IS NULL THEN
        SELECT pg_catalog.date_trunc('minute', pg_catalog.min(a.sampled_at))
          INTO lower_bound FROM @extschema@.connection_samples a;
    END IF;
    IF lower_bound IS NULL OR lower_bound >= upper_bound THEN
        IF rolled_until IS NULL THEN
            INSERT INTO @extschema@.source_state (source, updated_at) VALUES ('rollup', upper_bound);
        END IF;
        RETURN 0;
    END IF;

    -- per key first, then per group (keys also differ by client address, which groups ignore)
    INSERT INTO @extschema@.activity_minute
    SELECT g.minute, k.datname, k.usename, k.application_name, k.state, k.wait_event_type, k.wait_event,
           g.query_id, pg_catalog.sum(g.samples)
      FROM (SELECT pg_catalog.date_trunc('minute', a.sampled_at) AS minute, a.key_id, a.query_id,
                   pg_catalog.count(*) AS samples
              FROM @extschema@.activity_raw a
             WHERE a.sampled_at >= lower_bound AND a.sampled_at < upper_bound
             GROUP BY 1, 2, 3) g
      LEFT JOIN @extschema@.activity_keys k ON k.key_id = g.key_id
     GROUP BY g.minute, k.datname, k.usename, k.application_name, k.state, k.wait_event_type, k.wait_event,
              g.query_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    -- the same minutes' active samples per database and wait event, for wait charts over days
    INSERT INTO @extschema@.wait_minute
    SELECT m.minute, m.datname, COALESCE(m.wait_event_type, 'CPU'), COALESCE(m.wait_event, 'CPU'),
           pg_catalog.sum(m.samples)
      FROM @extschema@.activity_minute m
     WHERE m.minute >= lower_bound AND m.minute < upper_bound
       AND m.state IN ('active', 'fastpath function call')
     GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;
    -- and per hour and day once they are whole, for wait_events() over days
    rows_written := rows_written + @extschema@._rollup_waits(lower_bound, upper_bound);

    -- ticks per minute: a group absent at a tick had 0 backends, so averages use all ticks
    INSERT INTO @extschema@.connection_minute
    WITH ticks AS (
        SELECT pg_catalog.date_trunc('minute', s.sampled_at) AS minute,
               pg_catalog.count(DISTINCT s.sampled_at) AS ticks
          FROM @extschema@.connection_samples s
         WHERE s.sampled_at >= lower_bound AND s.sampled_at < upper_bound
         GROUP BY 1)
    SELECT g.minute, g.datname, g.usename, g.application_name, g.state, t.ticks,
           g.backends::double precision / t.ticks, g.max_backends,
           g.lock_waiting::double precision / t.ticks, g.max_lock_waiting
      FROM (SELECT pg_catalog.date_trunc('minute', s.sampled_at) AS minute, s.datname,
                   s.usename, s.application_name, s.state,
                   pg_catalog.sum(s.backends) AS backends, pg_catalog.max(s.backends) AS max_backends,
                   pg_catalog.sum(s.lock_waiting) AS lock_waiting,
                   pg_catalog.max(s.lock_waiting) AS max_lock_waiting
              FROM @extschema@.connection_samples s
             WHERE s.sampled_at >= lower_bound AND s.sampled_at < upper_bound
             GROUP BY 1, 2, 3, 4, 5) g
      JOIN ticks t USING (minute);
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    INSERT INTO @extschema@.pool_minute SELECT * FROM @extschema@._pool_minutes(lower_bound, upper_bound);
    GET DIAGNOSTICS n = ROW_COUNT;
    rows_written := rows_written + n;

    INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('rollup', upper_bound)
    ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    RETURN rows_written;
END
$$;

-- The latency histograms merged per statement and UTC hour (period 'hour': the statement_latency
-- intervals ending in (since, until] into statement_latency_hourly) or UTC day (period 'day': the
-- statement_latency_hourly hours ending in (since, until] into statement_latency_daily); called by
-- _rollup_hours for the hours and days it rolls up. Bucket counts add up; the run columns too,
-- and the parent kept is the one named for the most runs.
CREATE FUNCTION @extschema@._rollup_latency(period text, since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- an hour of 5,000 statements groups in memory: no temporary file
AS $$
DECLARE
    target text;
    source text;
    n bigint;
BEGIN
    CASE period
        WHEN 'hour' THEN
            target := 'statement_latency_hourly';
            source := $s$SELECT @extschema@._time_ceil(l.interval_end, 3600) AS period_end, 1 AS intervals,
                                l.dbid, l.userid, l.queryid, l.reset, l.executions, l.buckets, l.counts,
                                l.runs, l.run_executions, l.run_max_length, l.run_parent_queryid,
                                l.cpu_user_time, l.cpu_system_time, l.disk_read_bytes, l.disk_write_bytes
                           FROM @extschema@.statement_latency l
                          WHERE l.interval_end > $1 AND l.interval_end <= $2$s$;
        WHEN 'day' THEN
            target := 'statement_latency_daily';
            source := $s$SELECT @extschema@._time_ceil(h.hour_end, 86400) AS period_end, h.intervals,
                                h.dbid, h.userid, h.queryid, h.reset, h.executions, h.buckets, h.counts,
                                h.runs, h.run_executions, h.run_max_length, h.run_parent_queryid,
                                h.cpu_user_time, h.cpu_system_time, h.disk_read_bytes, h.disk_write_bytes
                           FROM @extschema@.statement_latency_hourly h
                          WHERE h.hour_end > $1 AND h.hour_end <= $2$s$;
        ELSE
            RAISE EXCEPTION 'dbanalytics: _rollup_latency: period must be hour or day, got %', period;
    END CASE;
    EXECUTE pg_catalog.format($q$
    INSERT INTO @extschema@.%I
    WITH src AS (%s), per_bucket AS (
        SELECT x.period_end, x.dbid, x.userid, x.queryid, u.bucket, pg_catalog.sum(u.executions)::bigint AS executions
          FROM src x, ROWS FROM (pg_catalog.unnest(x.buckets), pg_catalog.unnest(x.counts)) AS u(bucket, executions)
         GROUP BY 1, 2, 3, 4, 5
    ), histograms AS (
        SELECT b.period_end, b.dbid, b.userid, b.queryid,
               pg_catalog.array_agg(b.bucket ORDER BY b.bucket) AS buckets,
               pg_catalog.array_agg(b.executions ORDER BY b.bucket) AS counts
          FROM per_bucket b
         GROUP BY 1, 2, 3, 4
    ), parents AS (
        SELECT x.period_end, x.dbid, x.userid, x.queryid, x.run_parent_queryid AS parent,
               pg_catalog.sum(x.runs) AS runs
          FROM src x
         WHERE x.runs > 0
         GROUP BY 1, 2, 3, 4, 5
    ), top_parents AS (
        SELECT p.period_end, p.dbid, p.userid, p.queryid,
               (pg_catalog.array_agg(p.parent ORDER BY p.runs DESC, p.parent))[1] AS parent
          FROM parents p
         GROUP BY 1, 2, 3, 4
    ), totals AS (
        SELECT x.period_end, x.dbid, x.userid, x.queryid, pg_catalog.bool_or(x.reset) AS reset,
               pg_catalog.sum(x.intervals)::integer AS intervals, pg_catalog.sum(x.executions)::bigint AS executions,
               pg_catalog.sum(x.runs)::bigint AS runs, pg_catalog.sum(x.run_executions)::bigint AS run_executions,
               pg_catalog.max(x.run_max_length) AS run_max_length,
               pg_catalog.sum(x.cpu_user_time) AS cpu_user_time, pg_catalog.sum(x.cpu_system_time) AS cpu_system_time,
               pg_catalog.sum(x.disk_read_bytes)::bigint AS disk_read_bytes,
               pg_catalog.sum(x.disk_write_bytes)::bigint AS disk_write_bytes
          FROM src x
         GROUP BY 1, 2, 3, 4
    )
    SELECT t.period_end, t.dbid, t.userid, t.queryid, t.reset, t.intervals, t.executions,
           COALESCE(h.buckets, '{}'), COALESCE(h.counts, '{}'),
           t.runs, t.run_executions, t.run_max_length, p.parent,
           t.cpu_user_time, t.cpu_system_time, t.disk_read_bytes, t.disk_write_bytes
      FROM totals t
      LEFT JOIN histograms h ON (h.period_end, h.dbid, h.userid, h.queryid) = (t.period_end, t.dbid, t.userid, t.queryid)
      LEFT JOIN top_parents p ON (p.period_end, p.dbid, p.userid, p.queryid) = (t.period_end, t.dbid, t.userid, t.queryid)
    $q$, target, source) USING since, until;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The statement counters summed per statement and UTC hour (period 'hour': the statement_stats
-- intervals ending in (since, until] into statement_hourly) or UTC day (period 'day': the
-- statement_hourly hours ending in (since, until] into statement_daily); called by _rollup_hours
-- for the hours and days it rolls up. Every counter is summed (schema.sql:
-- statement_counter_values); peak_calls_per_transaction is the most calls per transaction of
-- the statement's database in any one snapshot interval of the period.
CREATE FUNCTION @extschema@._rollup_statements(period text, since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- an hour of 5,000 statements groups in memory: no temporary file
AS $$
DECLARE
    target text;
    source text;
    n bigint;
BEGIN
    -- each source row as (period_end, first_start, last_end, key, reset, intervals, counters, peak)
    CASE period
        WHEN 'hour' THEN
            target := 'statement_hourly';
            source := pg_catalog.format($s$
                SELECT @extschema@._time_ceil(s.interval_end, 3600) AS period_end, s.interval_start AS first_start,
                       s.interval_end AS last_end, s.dbid, s.userid, s.queryid, s.toplevel, s.reset, 1 AS intervals, %s,
                       CASE WHEN d.datid IS NOT NULL
                            THEN s.calls::double precision / GREATEST(d.xact_commit + d.xact_rollback, 1) END AS peak
                  FROM @extschema@.statement_stats s
                  LEFT JOIN @extschema@.database_stats d ON d.interval_end = s.interval_end AND d.datid = s.dbid
                                                        AND d.interval_end > $1 AND d.interval_end <= $2
                 WHERE s.interval_end > $1 AND s.interval_end <= $2$s$,
                @extschema@._statement_counter_list('s.%1$I'));
        WHEN 'day' THEN
            target := 'statement_daily';
            source := pg_catalog.format($s$
                SELECT @extschema@._time_ceil(h.hour_end, 86400) AS period_end, h.first_start, h.last_end,
                       h.dbid, h.userid, h.queryid, h.toplevel, h.reset, h.intervals, %s,
                       h.peak_calls_per_transaction AS peak
                  FROM @extschema@.statement_hourly h
                 WHERE h.hour_end > $1 AND h.hour_end <= $2$s$,
                @extschema@._statement_counter_list('h.%1$I'));
        ELSE
            RAISE EXCEPTION 'dbanalytics: _rollup_statements: period must be hour or day, got %', period;
    END CASE;
    EXECUTE pg_catalog.format($q$
    INSERT INTO @extschema@.%I
           (%s, first_start, last_end, dbid, userid, queryid, toplevel, reset, intervals, %s,
            peak_calls_per_transaction)
    SELECT x.period_end, pg_catalog.min(x.first_start), pg_catalog.max(x.last_end),
           x.dbid, x.userid, x.queryid, x.toplevel, pg_catalog.bool_or(x.reset), pg_catalog.sum(x.intervals)::integer,
           %s, pg_catalog.max(x.peak)
      FROM (%s) x
     GROUP BY x.period_end, x.dbid, x.userid, x.queryid, x.toplevel
    $q$, target, CASE period WHEN 'hour' THEN 'hour_end' ELSE 'day_end' END,
         @extschema@._statement_counter_list('%1$I'), @extschema@._statement_counter_list('pg_catalog.sum(x.%1$I)'),
         source) USING since, until;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The same for the table counters (table_stats into table_hourly).
CREATE FUNCTION @extschema@._rollup_table_hours(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.table_hourly
    SELECT @extschema@._time_ceil(t.interval_end, 3600), pg_catalog.min(t.interval_start), pg_catalog.max(t.interval_end),
           t.datname, t.relid, pg_catalog.max(t.schemaname), pg_catalog.max(t.relname),
           pg_catalog.bool_or(t.reset), pg_catalog.count(*)::integer,
           pg_catalog.sum(t.seq_scan), pg_catalog.sum(t.seq_tup_read), pg_catalog.sum(t.idx_scan),
           pg_catalog.sum(t.idx_tup_fetch), pg_catalog.sum(t.n_tup_ins), pg_catalog.sum(t.n_tup_upd),
           pg_catalog.sum(t.n_tup_del), pg_catalog.sum(t.n_tup_hot_upd), pg_catalog.sum(t.vacuum_count),
           pg_catalog.sum(t.autovacuum_count), pg_catalog.sum(t.analyze_count),
           pg_catalog.sum(t.autoanalyze_count), pg_catalog.sum(t.heap_blks_read), pg_catalog.sum(t.heap_blks_hit)
      FROM @extschema@.table_stats t
     WHERE t.interval_end > since AND t.interval_end <= until
     GROUP BY 1, t.datname, t.relid;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The same for the index counters (index_stats into index_hourly).
CREATE FUNCTION @extschema@._rollup_index_hours(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.index_hourly
    SELECT @extschema@._time_ceil(i.interval_end, 3600), pg_catalog.min(i.interval_start), pg_catalog.max(i.interval_end),
           i.datname, i.indexrelid, pg_catalog.max(i.relid), pg_catalog.max(i.schemaname), pg_catalog.max(i.relname),
           pg_catalog.max(i.indexrelname), pg_catalog.bool_or(i.reset), pg_catalog.count(*)::integer,
           pg_catalog.sum(i.idx_scan), pg_catalog.sum(i.idx_tup_read), pg_catalog.sum(i.idx_tup_fetch),
           pg_catalog.sum(i.idx_blks_read), pg_catalog.sum(i.idx_blks_hit)
      FROM @extschema@.index_stats i
     WHERE i.interval_end > since AND i.interval_end <= until
     GROUP BY 1, i.datname, i.indexrelid;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Daily sizes of the whole UTC days ending in (since, until]: for each database, table, index
-- and file system, the last size the day's snapshots saw (called by _rollup_hours).
CREATE FUNCTION @extschema@._rollup_size_days(since timestamptz, until timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO @extschema@.size_daily (day_end, measured_at, object_type, datname, objid, schemaname, relname, size_bytes)
    SELECT DISTINCT ON (1, 3, 4, 5, 7) u.*
      FROM (SELECT @extschema@._time_ceil(t.interval_end, 86400), t.interval_end, 'table', t.datname, t.relid,
                   t.schemaname, t.relname, t.table_size
              FROM @extschema@.table_stats t
             WHERE t.interval_end > since AND t.interval_end <= until AND t.table_size IS NOT NULL
            UNION ALL
            SELECT @extschema@._time_ceil(i.interval_end, 86400), i.interval_end, 'index', i.datname, i.indexrelid,
                   i.schemaname, i.indexrelname, i.index_size
              FROM @extschema@.index_stats i
             WHERE i.interval_end > since AND i.interval_end <= until AND i.index_size IS NOT NULL
            UNION ALL
            SELECT @extschema@._time_ceil(d.interval_end, 86400), d.interval_end, 'database', d.datname, d.datid,
                   NULL, NULL, d.database_size
              FROM @extschema@.database_stats d
             WHERE d.interval_end > since AND d.interval_end <= until AND d.database_size IS NOT NULL
            UNION ALL
            SELECT @extschema@._time_ceil(s.interval_end, 86400), s.interval_end, 'filesystem', NULL, 0::oid,
                   NULL, f.name, f.used
              FROM @extschema@.server_stats s,
                   LATERAL (VALUES ('data directory', s.disk_used_bytes), ('pg_wal', s.wal_disk_used_bytes)) f(name, used)
             WHERE s.interval_end > since AND s.interval_end <= until AND f.used IS NOT NULL
           ) u(day_end, measured_at, object_type, datname, objid, schemaname, relname, size_bytes)
     ORDER BY 1, 3, 4, 5, 7, 2 DESC;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Packs the per-interval rows of statement_stats and statement_latency of the whole hours rolled
-- up so far (source_state 'hours') into statement_stats_packed and statement_latency_packed, one
-- row per statement and hour on the hour's clock (packed_hours; src/storage/packing.rs), and
-- deletes them: the two oldest such hours per call, so that a backlog (after an upgrade, or a
-- collector stopped for long) is worked off over a few snapshots. Hours past retention_minutes
-- are left to retention, which drops their partitions. The collector's pack_minutes source,
-- after rollup_hours; returns the rows written.
CREATE FUNCTION @extschema@._pack_minutes()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'  -- an hour of 5,000 statements groups in memory: no temporary file
AS $$
DECLARE
    until timestamptz;
    oldest_kept timestamptz;
    hour_to_pack timestamptz;
    clock bigint[];
    counters text;
    width integer;
    written bigint := 0;
    n bigint;
BEGIN
    -- one run at a time, and not during a rollup (which reads the minutes)
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.rollup_hours'));
    SELECT s.updated_at INTO until FROM @extschema@.source_state s WHERE s.source = 'hours';
    IF until IS NULL THEN
        RETURN 0;
    END IF;
    -- what _packed_statement_minutes unpacks: every counter as a bigint, times in nanoseconds
    IF EXISTS (SELECT FROM @extschema@._statement_counter_columns() c
                WHERE c.type NOT IN ('bigint', 'double precision')) THEN
        RAISE EXCEPTION 'dbanalytics: a statement counter is neither bigint nor double precision'
            USING HINT = 'Packed minutes hold bigint values: map a new counter onto one of the two types.';
    END IF;
    SELECT pg_catalog.max(c.ordinal) INTO width FROM @extschema@._statement_counter_columns() c;
    SELECT pg_catalog.string_agg(CASE c.type
                                     WHEN 'bigint' THEN pg_catalog.format('s.%I', c.name)
                                     WHEN 'double precision' THEN pg_catalog.format(
                                         'CASE WHEN pg_catalog.abs(s.%1$I) < 9e12 THEN (s.%1$I * 1000000)::bigint END',
                                         c.name)
                                     ELSE 'NULL::bigint' END, ', ' ORDER BY o.ordinal)
      INTO counters
      FROM pg_catalog.generate_series(1, width) o(ordinal)
      LEFT JOIN @extschema@._statement_counter_columns() c ON c.ordinal = o.ordinal;

    SELECT @extschema@._time_floor(pg_catalog.now() - pg_catalog.make_interval(secs => t.retention_seconds), 3600)
      INTO oldest_kept
      FROM @extschema@._storage_tiers() t WHERE t.table_name = 'statement_stats_packed';
    FOR i IN 1..2 LOOP
        SELECT @extschema@._time_ceil(LEAST(
                   (SELECT pg_catalog.min(s.interval_end) FROM @extschema@.statement_stats s
                     WHERE s.interval_end > oldest_kept AND s.interval_end <= until),
                   (SELECT pg_catalog.min(l.interval_end) FROM @extschema@.statement_latency l
                     WHERE l.interval_end > oldest_kept AND l.interval_end <= until)), 3600)
          INTO hour_to_pack;
        EXIT WHEN hour_to_pack IS NULL OR hour_to_pack > until;

        -- the hour's clock, stored once: every interval end of its minutes, which the packed rows
        -- store as positions on it (none when the hour has one already, from an earlier packing)
        clock := NULL;
        IF NOT EXISTS (SELECT FROM @extschema@.packed_hours h WHERE h.hour_end = hour_to_pack) THEN
            SELECT pg_catalog.array_agg(e.t ORDER BY e.t) INTO clock
              FROM (SELECT (EXTRACT(epoch FROM s.interval_end) * 1000000)::bigint AS t
                      FROM @extschema@.statement_stats s
                     WHERE s.interval_end > hour_to_pack - interval '1 hour' AND s.interval_end <= hour_to_pack
                    UNION
                    SELECT (EXTRACT(epoch FROM l.interval_end) * 1000000)::bigint
                      FROM @extschema@.statement_latency l
                     WHERE l.interval_end > hour_to_pack - interval '1 hour' AND l.interval_end <= hour_to_pack) e;
            INSERT INTO @extschema@.packed_hours VALUES (hour_to_pack, clock);
        END IF;

        EXECUTE pg_catalog.format($q$
            INSERT INTO @extschema@.statement_stats_packed
            SELECT $1, s.dbid, s.userid, s.queryid, s.toplevel,
                   @extschema@._pack_columns(%s, pg_catalog.array_agg(ARRAY[
                       (EXTRACT(epoch FROM s.interval_end) * 1000000)::bigint,
                       (EXTRACT(epoch FROM s.interval_end - s.interval_start) * 1000000)::bigint,
                       s.reset::integer::bigint, %s] ORDER BY s.interval_end), true, $2)
              FROM @extschema@.statement_stats s
             WHERE s.interval_end > $1 - interval '1 hour' AND s.interval_end <= $1
             GROUP BY s.dbid, s.userid, s.queryid, s.toplevel
        $q$, width + 3, counters) USING hour_to_pack, clock;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
        DELETE FROM @extschema@.statement_stats s
         WHERE s.interval_end > hour_to_pack - interval '1 hour' AND s.interval_end <= hour_to_pack;

        INSERT INTO @extschema@.statement_latency_packed
        SELECT hour_to_pack, w.dbid, w.userid, w.queryid,
               @extschema@._pack_columns(13 + 2 * pg_catalog.max(w.width), pg_catalog.array_agg(
                   ARRAY[(EXTRACT(epoch FROM w.interval_end) * 1000000)::bigint,
                         (EXTRACT(epoch FROM w.interval_end - w.interval_start) * 1000000)::bigint,
                         w.reset::integer::bigint, w.executions, w.runs, w.run_executions,
                         w.run_max_length, w.run_parent_queryid,
                         CASE WHEN pg_catalog.abs(w.cpu_user_time) < 9e12 THEN (w.cpu_user_time * 1000000)::bigint END,
                         CASE WHEN pg_catalog.abs(w.cpu_system_time) < 9e12 THEN (w.cpu_system_time * 1000000)::bigint END,
                         w.disk_read_bytes, w.disk_write_bytes, pg_catalog.cardinality(w.buckets)::bigint]
                   OPERATOR(pg_catalog.||) w.buckets::bigint[]
                   OPERATOR(pg_catalog.||) pg_catalog.array_fill(NULL::bigint, ARRAY[w.width - pg_catalog.cardinality(w.buckets)])
                   OPERATOR(pg_catalog.||) w.counts
                   OPERATOR(pg_catalog.||) pg_catalog.array_fill(NULL::bigint, ARRAY[w.width - pg_catalog.cardinality(w.counts)])
                   ORDER BY w.interval_end), true, clock, 13),
               CASE WHEN pg_catalog.bool_or(w.run_application IS NOT NULL)
                    THEN pg_catalog.array_agg(w.run_application ORDER BY w.interval_end) END
          FROM (SELECT l.*, pg_catalog.max(pg_catalog.cardinality(l.buckets))
                                OVER (PARTITION BY l.dbid, l.userid, l.queryid) AS width
                  FROM @extschema@.statement_latency l
                 WHERE l.interval_end > hour_to_pack - interval '1 hour' AND l.interval_end <= hour_to_pack) w
         GROUP BY w.dbid, w.userid, w.queryid;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;
        DELETE FROM @extschema@.statement_latency l
         WHERE l.interval_end > hour_to_pack - interval '1 hour' AND l.interval_end <= hour_to_pack;
    END LOOP;
    RETURN written;
END
$$;

-- Hourly rollups of the per-snapshot deltas (statement_stats, statement_latency, table_stats,
-- index_stats), for
-- every whole hour since the last one rolled (source_state 'hours', updated_at = the hour_end
-- rolled last). An hour is whole once now() is past its end: snapshots are serialized, so no
-- later snapshot can write an interval ending in it. Returns the rows written.
CREATE FUNCTION @extschema@._rollup_hours()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rolled_until timestamptz;
    -- hour_end of the newest whole hour
    upper_bound timestamptz := @extschema@._time_floor(pg_catalog.now() - interval '1 microsecond', 3600);
    written bigint := 0;
BEGIN
    -- one run at a time (the collector, take_snapshot(), a hand call): no hour rolled twice
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.rollup_hours'));

    -- whole UTC days of sizes (source_state 'size_days'); the first run rolls yesterday only,
    -- whose rows go to today's partition of size_daily, which surely exists
    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'size_days';
    rolled_until := COALESCE(rolled_until, @extschema@._time_floor(upper_bound, 86400) - interval '1 day');
    IF rolled_until < @extschema@._time_floor(upper_bound, 86400) THEN
        written := written + @extschema@._rollup_size_days(rolled_until, @extschema@._time_floor(upper_bound, 86400));
        INSERT INTO @extschema@.source_state AS st (source, updated_at)
        VALUES ('size_days', @extschema@._time_floor(upper_bound, 86400))
        ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    END IF;

    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'hours';
    IF rolled_until IS NULL THEN
        -- first run: from the first hour with history (or nothing to do)
        SELECT @extschema@._time_floor(pg_catalog.min(t.interval_end) - interval '1 microsecond', 3600)
          INTO rolled_until
          FROM (SELECT pg_catalog.min(s.interval_end) AS interval_end FROM @extschema@.statement_stats s
                UNION ALL SELECT pg_catalog.min(s.interval_end) FROM @extschema@.statement_latency s
                UNION ALL SELECT pg_catalog.min(s.interval_end) FROM @extschema@.table_stats s
                UNION ALL SELECT pg_catalog.min(s.interval_end) FROM @extschema@.index_stats s) t;
    END IF;
    IF rolled_until IS NULL OR rolled_until >= upper_bound THEN
        RETURN 0;
    END IF;

    written := written + @extschema@._rollup_statements('hour', rolled_until, upper_bound);
    written := written + @extschema@._rollup_latency('hour', rolled_until, upper_bound);
    written := written + @extschema@._rollup_table_hours(rolled_until, upper_bound);
    written := written + @extschema@._rollup_index_hours(rolled_until, upper_bound);

    INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('hours', upper_bound)
    ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;

    -- whole UTC days of statement_hourly (source_state 'days')
    upper_bound := @extschema@._time_floor(upper_bound, 86400);
    SELECT s.updated_at INTO rolled_until FROM @extschema@.source_state s WHERE s.source = 'days';
    IF rolled_until IS NULL THEN
        SELECT @extschema@._time_floor(pg_catalog.min(h.hour_end) - interval '1 microsecond', 86400)
          INTO rolled_until FROM @extschema@.statement_hourly h;
    END IF;
    IF rolled_until < upper_bound THEN
        written := written + @extschema@._rollup_statements('day', rolled_until, upper_bound);
        written := written + @extschema@._rollup_latency('day', rolled_until, upper_bound);
        INSERT INTO @extschema@.source_state AS st (source, updated_at) VALUES ('days', upper_bound)
        ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at;
    END IF;

    RETURN written;
END
$$;
