-- dbanalytics analytics: capacity. Transaction-ID and multixact wraparound, space growth and
-- the date the disk fills, WAL generated per hour, and the host's CPU, memory, load and I/O,
-- from server_stats (each snapshot) and size_daily (each day).

-- Approximate age at which PostgreSQL stops assigning transaction IDs (or multixact IDs) to
-- protect itself from wraparound: 2^31 - 1 minus the 3 million it keeps in reserve.
CREATE FUNCTION @extschema@._wraparound_stop_age()
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 2147483647 - 3000000 $$;

-- Transaction IDs and multixact IDs consumed per day over the window, from server_stats: NULL
-- unless its snapshots span consumption_min_history (a burst of minutes says little about
-- days). The XID counter is the full one (it never wraps); the multixact counter is 32 bits,
-- so its steps are taken modulo 2^32. Always one row.
CREATE FUNCTION @extschema@._id_consumption(analysis_window interval)
RETURNS TABLE (xids_per_day double precision, multixacts_per_day double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN t.span >= @extschema@._threshold('consumption_min_history')
                THEN t.xids::double precision * 86400 / t.span END,
           CASE WHEN t.span >= @extschema@._threshold('consumption_min_history')
                THEN t.multixacts::double precision * 86400 / t.span END
      FROM (SELECT EXTRACT(epoch FROM pg_catalog.max(x.interval_end) - pg_catalog.min(x.interval_end)) AS span,
                   pg_catalog.max(x.next_xid) - pg_catalog.min(x.next_xid) AS xids,
                   pg_catalog.sum(x.multixact_step) AS multixacts
              FROM (SELECT s.interval_end, s.next_xid,
                           (s.next_multixact - pg_catalog.lag(s.next_multixact) OVER (ORDER BY s.interval_end)
                            + 4294967296) % 4294967296 AS multixact_step
                      FROM @extschema@.server_stats s
                     WHERE s.interval_end > @extschema@._window_start(analysis_window)) x) t
$$;

-- Per database (every one) and per table of this database (TOAST tables and materialized views
-- included): the age of the oldest unfrozen transaction ID and multixact ID, the age at which
-- autovacuum forces an anti-wraparound vacuum (autovacuum_freeze_max_age and
-- autovacuum_multixact_freeze_max_age, or a table's lower storage parameter), and, at the rate
-- the window's history shows, when that forced vacuum is due and when the server would stop
-- assigning IDs (_wraparound_stop_age).
CREATE FUNCTION @extschema@.wraparound_risk(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (object_type text, datname text, schemaname text, relname text,
               xid_age bigint, xid_freeze_max_age bigint, multixact_age bigint, multixact_freeze_max_age bigint,
               xids_per_day double precision, multixacts_per_day double precision,
               forced_vacuum_at timestamptz, wraparound_stop_at timestamptz, risk text, action text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH settings AS (
    SELECT pg_catalog.current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max,
           pg_catalog.current_setting('autovacuum_multixact_freeze_max_age')::bigint AS mxid_freeze_max,
           @extschema@._wraparound_stop_age() AS stop_age
), objects AS (
    SELECT 'database' AS object_type, d.datname::pg_catalog.text AS datname, NULL::pg_catalog.text AS schemaname,
           NULL::pg_catalog.text AS relname, pg_catalog.age(d.datfrozenxid)::bigint AS xid_age,
           st.freeze_max AS xid_freeze_max, pg_catalog.mxid_age(d.datminmxid)::bigint AS mxid_age,
           st.mxid_freeze_max
      FROM pg_catalog.pg_database d CROSS JOIN settings st
    UNION ALL
    SELECT 'table', pg_catalog.current_database()::pg_catalog.text, n.nspname::pg_catalog.text,
           c.relname::pg_catalog.text, pg_catalog.age(c.relfrozenxid)::bigint,
           LEAST(st.freeze_max, o.freeze_max), pg_catalog.mxid_age(c.relminmxid)::bigint,
           LEAST(st.mxid_freeze_max, o.mxid_freeze_max)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN settings st
     CROSS JOIN LATERAL (
           SELECT pg_catalog.max(r.option_value::bigint) FILTER (WHERE r.option_name = 'autovacuum_freeze_max_age'),
                  pg_catalog.max(r.option_value::bigint) FILTER (WHERE r.option_name = 'autovacuum_multixact_freeze_max_age')
             FROM pg_catalog.pg_options_to_table(c.reloptions) r) o(freeze_max, mxid_freeze_max)
     WHERE c.relkind IN ('r', 'm', 't')
), judged AS (
    SELECT o.*, r.xids_per_day, r.multixacts_per_day,
           -- days until each limit at the current rate (0 when already reached, NULL when the
           -- rate is unknown or zero)
           LEAST(CASE WHEN o.xid_age >= o.xid_freeze_max THEN 0
                      ELSE (o.xid_freeze_max - o.xid_age) / NULLIF(r.xids_per_day, 0) END,
                 CASE WHEN o.mxid_age >= o.mxid_freeze_max THEN 0
                      ELSE (o.mxid_freeze_max - o.mxid_age) / NULLIF(r.multixacts_per_day, 0) END) AS days_to_forced,
           LEAST((st.stop_age - o.xid_age) / NULLIF(r.xids_per_day, 0),
                 (st.stop_age - o.mxid_age) / NULLIF(r.multixacts_per_day, 0)) AS days_to_stop,
           GREATEST(o.xid_age, o.mxid_age)::double precision / st.stop_age AS share_of_stop
      FROM objects o CROSS JOIN settings st CROSS JOIN @extschema@._id_consumption(analysis_window) r
), risked AS (
    SELECT j.*,
           CASE WHEN j.days_to_stop < @extschema@._threshold('wraparound_critical_days')
                  OR j.share_of_stop > @extschema@._threshold('xid_age_critical') THEN 'critical'
                WHEN j.days_to_stop < @extschema@._threshold('wraparound_warning_days')
                  OR j.share_of_stop > @extschema@._threshold('xid_age_warning') THEN 'warning'
                WHEN j.days_to_forced = 0 THEN 'vacuum_due'
                ELSE 'ok' END AS risk
      FROM judged j
)
SELECT r.object_type, r.datname, r.schemaname, r.relname, r.xid_age, r.xid_freeze_max, r.mxid_age, r.mxid_freeze_max,
       r.xids_per_day, r.multixacts_per_day,
       -- beyond a century: NULL (as for no consumption)
       CASE WHEN r.days_to_forced < 36500 THEN pg_catalog.now() + pg_catalog.make_interval(secs => r.days_to_forced * 86400) END,
       CASE WHEN r.days_to_stop < 36500 THEN pg_catalog.now() + pg_catalog.make_interval(secs => GREATEST(r.days_to_stop, 0) * 86400) END,
       r.risk,
       CASE WHEN r.risk = 'ok' THEN 'no action needed'
            WHEN r.risk = 'vacuum_due' THEN
                'autovacuum runs (or is about to run) an anti-wraparound vacuum of it: make sure nothing cancels or blocks it (vacuum_blockers)'
            WHEN r.object_type = 'table' THEN
                pg_catalog.format('VACUUM (FREEZE, VERBOSE) %s; first release what holds the xmin horizon (vacuum_blockers)',
                                  pg_catalog.format('%I.%I', r.schemaname, r.relname))
            ELSE pg_catalog.format('connect to database %I, freeze its oldest tables (wraparound_risk there lists them) '
                                   'with VACUUM (FREEZE); first release what holds the xmin horizon (vacuum_blockers)',
                                   r.datname) END
  FROM risked r
 ORDER BY pg_catalog.array_position(ARRAY['critical', 'warning', 'vacuum_due', 'ok'], r.risk),
          GREATEST(r.xid_age::double precision / r.xid_freeze_max, r.mxid_age::double precision / r.mxid_freeze_max) DESC,
          r.object_type, r.datname, r.schemaname, r.relname
$$;

CREATE VIEW @extschema@.wraparound_risk AS
SELECT * FROM @extschema@.wraparound_risk(interval '1 day');

-- target_bytes of space_growth, checked: positive or NULL.
CREATE FUNCTION @extschema@._check_target_bytes(target_bytes bigint)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target_bytes <= 0 THEN
        RAISE EXCEPTION 'dbanalytics: target_bytes must be positive, got %', target_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a size in bytes, such as pg_catalog.pg_size_bytes(''500 GB''), or NULL for no target.';
    END IF;
    RETURN target_bytes;
END
$$;

-- Size growth per database, table, index and file system: the size now, the growth per day
-- from a least-squares line through the window's daily sizes (size_daily) and the latest
-- snapshot, how well the line fits (r², 1 = a straight line), and the date the size now,
-- growing at that rate, reaches the file system's capacity (used + available now) or, given
-- target_bytes, that size.
CREATE FUNCTION @extschema@.space_growth(analysis_window interval DEFAULT '30 days', target_bytes bigint DEFAULT NULL)
RETURNS TABLE (object_type text, datname text, schemaname text, relname text, size_bytes bigint,
               measured_at timestamptz, days_measured integer, growth_bytes_per_day double precision,
               fit_r2 double precision, capacity_bytes bigint, forecast_of text, forecast_at timestamptz,
               status text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH args AS MATERIALIZED (
    -- the thresholds read once, not for every object
    SELECT @extschema@._window_start(analysis_window) AS since,
           @extschema@._check_target_bytes(target_bytes) AS target,
           @extschema@._threshold('growth_min_history') * interval '1 s' AS min_history,
           @extschema@._threshold('disk_full_warning_days') * interval '1 day' AS full_warning,
           @extschema@._threshold('growth_stable_ratio') AS stable_ratio
), latest AS (
    SELECT (SELECT pg_catalog.max(t.interval_end) FROM @extschema@.table_stats t) AS tables,
           (SELECT pg_catalog.max(i.interval_end) FROM @extschema@.index_stats i) AS indexes,
           (SELECT pg_catalog.max(d.interval_end) FROM @extschema@.database_stats d) AS databases,
           (SELECT pg_catalog.max(s.interval_end) FROM @extschema@.server_stats s) AS server
), disk AS (
    SELECT f.name, f.used + f.available AS capacity
      FROM @extschema@.server_stats s CROSS JOIN latest l,
           LATERAL (VALUES ('data directory', s.disk_used_bytes, s.disk_available_bytes),
                           ('pg_wal', s.wal_disk_used_bytes, s.wal_disk_available_bytes)) f(name, used, available)
     WHERE s.interval_end = l.server AND f.used IS NOT NULL
), points AS (
    SELECT d.object_type, d.datname, d.objid, d.schemaname, d.relname, d.measured_at, d.size_bytes
      FROM @extschema@.size_daily d, args a WHERE d.day_end > a.since
    UNION  -- the latest snapshot: today's point (the same as the last daily one when nothing newer)
    SELECT 'table', t.datname, t.relid, t.schemaname, t.relname, t.interval_end, t.table_size
      FROM @extschema@.table_stats t, latest l WHERE t.interval_end = l.tables AND t.table_size IS NOT NULL
    UNION
    SELECT 'index', i.datname, i.indexrelid, i.schemaname, i.indexrelname, i.interval_end, i.index_size
      FROM @extschema@.index_stats i, latest l WHERE i.interval_end = l.indexes AND i.index_size IS NOT NULL
    UNION
    SELECT 'database', d.datname, d.datid, NULL, NULL, d.interval_end, d.database_size
      FROM @extschema@.database_stats d, latest l WHERE d.interval_end = l.databases AND d.database_size IS NOT NULL
    UNION
    SELECT 'filesystem', NULL, 0::oid, NULL, f.name, s.interval_end, f.used
      FROM @extschema@.server_stats s CROSS JOIN latest l,
           LATERAL (VALUES ('data directory', s.disk_used_bytes), ('pg_wal', s.wal_disk_used_bytes)) f(name, used)
     WHERE s.interval_end = l.server AND f.used IS NOT NULL
), fitted AS (
    SELECT p.object_type, p.datname, p.objid,
           (pg_catalog.array_agg(p.schemaname ORDER BY p.measured_at DESC))[1] AS schemaname,
           (pg_catalog.array_agg(p.relname ORDER BY p.measured_at DESC))[1] AS relname,
           (pg_catalog.array_agg(p.size_bytes ORDER BY p.measured_at DESC))[1] AS size_bytes,
           pg_catalog.max(p.measured_at) AS measured_at,
           pg_catalog.count(DISTINCT @extschema@._time_ceil(p.measured_at, 86400))::integer AS days_measured,
           pg_catalog.max(p.measured_at) - pg_catalog.min(p.measured_at) AS span,
           pg_catalog.regr_slope(p.size_bytes, EXTRACT(epoch FROM p.measured_at)) AS slope,
           pg_catalog.regr_r2(p.size_bytes, EXTRACT(epoch FROM p.measured_at)) AS r2
      FROM points p
     -- file systems have no oid: told apart by name (data directory, pg_wal)
     GROUP BY p.object_type, p.datname, p.objid, CASE WHEN p.object_type = 'filesystem' THEN p.relname END
), goals AS (
    SELECT f.*, dk.capacity,
           CASE WHEN f.object_type = 'filesystem' THEN 'disk full'
                WHEN a.target IS NOT NULL THEN 'target size' END AS forecast_of,
           CASE WHEN f.object_type = 'filesystem' THEN dk.capacity ELSE a.target END AS goal,
           f.span >= a.min_history AS enough, a.full_warning, a.stable_ratio
      FROM fitted f CROSS JOIN args a
      LEFT JOIN disk dk ON f.object_type = 'filesystem' AND dk.name = f.relname
), forecast AS (
    -- days from the latest measurement to the goal at the fitted growth (from the size measured,
    -- not from the line: after a clean-up the line lies above the size); 0 when reached; NULL
    -- when not growing, too little history, or more than a century away
    SELECT g.*,
           CASE WHEN g.goal IS NULL THEN NULL
                WHEN g.size_bytes >= g.goal THEN 0
                WHEN g.enough AND g.slope > 0 AND (g.goal - g.size_bytes) / (g.slope * 86400) < 36500
                THEN (g.goal - g.size_bytes) / (g.slope * 86400) END AS days_to_goal
      FROM goals g
)
SELECT g.object_type, g.datname, g.schemaname, g.relname, g.size_bytes, g.measured_at, g.days_measured,
       CASE WHEN g.enough THEN g.slope * 86400 END, CASE WHEN g.enough THEN g.r2 END, g.capacity, g.forecast_of,
       g.measured_at + pg_catalog.make_interval(secs => g.days_to_goal * 86400),
       CASE WHEN g.object_type = 'filesystem' AND g.size_bytes >= g.capacity THEN 'full'
            WHEN NOT g.enough THEN 'too_little_history'
            WHEN g.object_type = 'filesystem'
                 AND g.measured_at + pg_catalog.make_interval(secs => g.days_to_goal * 86400)
                     < pg_catalog.now() + g.full_warning THEN 'full_soon'
            WHEN g.slope * 86400 > g.stable_ratio * g.size_bytes THEN 'growing'
            WHEN g.slope * 86400 < -g.stable_ratio * g.size_bytes THEN 'shrinking'
            ELSE 'stable' END
  FROM forecast g
 ORDER BY pg_catalog.array_position(ARRAY['filesystem', 'database', 'table', 'index'], g.object_type),
          g.slope * 86400 DESC NULLS LAST, g.size_bytes DESC, g.datname, g.schemaname, g.relname
$$;

CREATE VIEW @extschema@.space_growth AS
SELECT * FROM @extschema@.space_growth(interval '30 days', NULL);

-- WAL generated per hour of the window, from the WAL position at each snapshot (on a standby:
-- WAL replayed).
CREATE FUNCTION @extschema@.wal_generation(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (hour_start timestamptz, wal_bytes numeric, bytes_per_second double precision, measured_seconds double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH steps AS (
    SELECT s.interval_end,
           pg_catalog.pg_wal_lsn_diff(s.wal_lsn, pg_catalog.lag(s.wal_lsn) OVER w) AS bytes,
           EXTRACT(epoch FROM s.interval_end - pg_catalog.lag(s.interval_end) OVER w) AS seconds
      FROM @extschema@.server_stats s
     WHERE s.interval_end > @extschema@._window_start(analysis_window)
    WINDOW w AS (ORDER BY s.interval_end)
)
SELECT pg_catalog.date_trunc('hour', st.interval_end), pg_catalog.sum(st.bytes),
       (pg_catalog.sum(st.bytes) / NULLIF(pg_catalog.sum(st.seconds), 0))::double precision,
       pg_catalog.sum(st.seconds)::double precision
  FROM steps st
 WHERE st.bytes >= 0  -- a standby promoted or rebuilt in between: not a measurement
 GROUP BY 1
 ORDER BY 1
$$;

-- The host per minute (Linux): CPU time by kind as a share of all CPUs' time, the 1-minute load
-- average, memory, and bytes read from and written to block devices per second. Where /proc
-- could not be read, host_status says why and the figures are NULL.
CREATE FUNCTION @extschema@.host_stats(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (minute timestamptz, host_status text, cpus integer, cpu_user_pct double precision,
               cpu_system_pct double precision, cpu_iowait_pct double precision, cpu_idle_pct double precision,
               load1 double precision, mem_total_bytes bigint, mem_available_bytes bigint,
               disk_read_bytes_per_second double precision, disk_write_bytes_per_second double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH steps AS (
    SELECT s.*,
           -- a reboot between two snapshots restarts the counters: no delta across it
           -- (btime may move by a second or so between reads: NTP, a virtual machine)
           COALESCE(pg_catalog.abs(EXTRACT(epoch FROM s.boot_time - pg_catalog.lag(s.boot_time) OVER w)) < 60, false)
               AS same_boot,
           EXTRACT(epoch FROM s.interval_end - pg_catalog.lag(s.interval_end) OVER w) AS seconds,
           s.cpu_user_seconds - pg_catalog.lag(s.cpu_user_seconds) OVER w AS d_user,
           s.cpu_system_seconds - pg_catalog.lag(s.cpu_system_seconds) OVER w AS d_system,
           s.cpu_iowait_seconds - pg_catalog.lag(s.cpu_iowait_seconds) OVER w AS d_iowait,
           s.cpu_idle_seconds - pg_catalog.lag(s.cpu_idle_seconds) OVER w AS d_idle,
           s.cpu_other_seconds - pg_catalog.lag(s.cpu_other_seconds) OVER w AS d_other,
           s.disk_read_bytes - pg_catalog.lag(s.disk_read_bytes) OVER w AS d_read,
           s.disk_write_bytes - pg_catalog.lag(s.disk_write_bytes) OVER w AS d_write
      FROM @extschema@.server_stats s
     WHERE s.interval_end > @extschema@._window_start(analysis_window)
    WINDOW w AS (ORDER BY s.interval_end)
), valid AS (
    SELECT st.*, CASE WHEN st.same_boot AND st.host_status = 'ok' THEN
                      NULLIF(st.d_user + st.d_system + st.d_iowait + st.d_idle + st.d_other, 0) END AS d_total
      FROM steps st
)
SELECT pg_catalog.date_trunc('minute', v.interval_end),
       (pg_catalog.array_agg(v.host_status ORDER BY v.interval_end DESC))[1],
       pg_catalog.max(v.cpus),
       100 * pg_catalog.sum(v.d_user) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       100 * pg_catalog.sum(v.d_system) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       100 * pg_catalog.sum(v.d_iowait) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       100 * pg_catalog.sum(v.d_idle) FILTER (WHERE v.d_total IS NOT NULL) / pg_catalog.sum(v.d_total),
       pg_catalog.avg(v.load1), pg_catalog.max(v.mem_total_bytes), pg_catalog.min(v.mem_available_bytes),
       pg_catalog.sum(v.d_read) FILTER (WHERE v.d_total IS NOT NULL)
           / NULLIF(pg_catalog.sum(v.seconds) FILTER (WHERE v.d_total IS NOT NULL), 0),
       pg_catalog.sum(v.d_write) FILTER (WHERE v.d_total IS NOT NULL)
           / NULLIF(pg_catalog.sum(v.seconds) FILTER (WHERE v.d_total IS NOT NULL), 0)
  FROM valid v
 GROUP BY 1
 ORDER BY 1
$$;

CREATE VIEW @extschema@.host_stats AS
SELECT * FROM @extschema@.host_stats(interval '1 hour');
