-- dbanalytics analytics: WAL and replication risk (retained WAL per slot, inactive slots,
-- standbys that disappeared) and checkpoint health. The top WAL writers are
-- top_queries(order_by => 'wal_bytes').

-- Risks now, judged with the history of the window: one row per replication slot, and one per
-- standby that streamed in the window (replication_stats) and streams no more.
CREATE FUNCTION @extschema@.replication_risks(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (kind text, name text, slot_type text, active boolean, wal_status text,
               retained_bytes bigint, max_slot_wal_keep_size bigint, safe_wal_size bigint,
               retained_growth_per_hour double precision, hours_to_limit double precision,
               last_seen timestamptz, risk text, detail text, action text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    -- on a standby the slots retain WAL behind the replay position
    SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                ELSE pg_catalog.pg_current_wal_lsn() END AS lsn,
           (SELECT NULLIF(s.setting::bigint, -1) * 1024 * 1024 FROM pg_catalog.pg_settings s
             WHERE s.name = 'max_slot_wal_keep_size') AS keep_limit,
           -- space left on pg_wal's file system at the latest snapshot (server_stats), if known
           (SELECT COALESCE(x.wal_disk_available_bytes, x.disk_available_bytes) FROM @extschema@.server_stats x
             ORDER BY x.interval_end DESC LIMIT 1) AS wal_available
), slots AS (
    SELECT s.slot_name::pg_catalog.text AS slot_name, s.slot_type, s.active, s.wal_status,
           pg_catalog.pg_wal_lsn_diff(a.lsn, s.restart_lsn)::bigint AS retained, a.keep_limit, a.wal_available,
           s.safe_wal_size,
           (SELECT pg_catalog.regr_slope(h.retained_bytes, EXTRACT(epoch FROM h.interval_end)) * 3600
              FROM @extschema@.replication_slot_stats h
             WHERE h.slot_name = s.slot_name AND h.interval_end > pg_catalog.now() - analysis_window) AS growth
      FROM pg_catalog.pg_replication_slots s CROSS JOIN args a
), judged AS (
    SELECT s.*,
           CASE WHEN s.wal_status = 'lost' THEN 'lost'
                WHEN s.wal_status = 'unreserved' THEN 'critical'
                WHEN NOT s.active AND s.retained > 0 THEN 'high'
                WHEN s.wal_status = 'extended' THEN 'warning'
                ELSE 'ok' END AS risk
      FROM slots s
), gone AS (
    SELECT g.application_name, g.client_addr, g.last_seen
      FROM @extschema@._gone_standbys(pg_catalog.now() - analysis_window) g
)
SELECT u.* FROM (
SELECT 'slot', j.slot_name, j.slot_type, j.active, j.wal_status, j.retained, j.keep_limit, j.safe_wal_size,
       j.growth,
       -- until the slot loses WAL (max_slot_wal_keep_size) or pg_wal's disk is full, whichever
       -- comes first
       CASE WHEN j.growth > 0 THEN GREATEST(LEAST(j.safe_wal_size, j.wal_available), 0) / j.growth END,
       NULL::timestamptz, j.risk,
       CASE j.risk
           WHEN 'lost' THEN pg_catalog.format('slot %s lost WAL its consumer still needed (wal_status lost): the consumer cannot resume from it',
                                              j.slot_name)
           WHEN 'critical' THEN pg_catalog.format('slot %s retains %s, beyond max_slot_wal_keep_size: the next checkpoint removes WAL it needs',
                                                  j.slot_name, pg_catalog.pg_size_pretty(j.retained))
           WHEN 'high' THEN pg_catalog.format('inactive slot %s retains %s of WAL%s%s', j.slot_name,
                                              pg_catalog.pg_size_pretty(j.retained),
                                              CASE WHEN j.growth > 0 THEN pg_catalog.format(', growing by %s per hour',
                                                   pg_catalog.pg_size_pretty(j.growth::bigint)) ELSE '' END,
                                              CASE WHEN j.keep_limit IS NULL THEN ' with no max_slot_wal_keep_size: it can fill the disk'
                                                   || CASE WHEN j.wal_available IS NOT NULL
                                                           THEN pg_catalog.format(' (%s available on the file system of pg_wal)',
                                                                                  pg_catalog.pg_size_pretty(j.wal_available))
                                                           ELSE '' END
                                                   ELSE '' END)
           WHEN 'warning' THEN pg_catalog.format('slot %s retains %s, beyond max_wal_size (wal_status extended)',
                                                 j.slot_name, pg_catalog.pg_size_pretty(j.retained))
           ELSE pg_catalog.format('slot %s retains %s', j.slot_name, pg_catalog.pg_size_pretty(j.retained)) END,
       CASE WHEN j.risk = 'ok' THEN 'no action needed'
            WHEN j.risk = 'lost' THEN pg_catalog.format('drop the slot (SELECT pg_catalog.pg_drop_replication_slot(%L)) and re-create its consumer (re-seed the standby, re-sync the subscription)', j.slot_name)
            WHEN NOT j.active THEN pg_catalog.format('start its consumer again, or drop the slot if the consumer is gone: SELECT pg_catalog.pg_drop_replication_slot(%L); '
                                                     'set max_slot_wal_keep_size to cap what a slot may retain', j.slot_name)
            ELSE 'find why the consumer lags (network, replay conflicts, a long transaction on a subscriber); set max_slot_wal_keep_size to cap what a slot may retain' END
  FROM judged j
UNION ALL
SELECT 'standby_gone', COALESCE(NULLIF(g.application_name, ''), g.client_addr::pg_catalog.text, '(local)'), NULL, false, NULL,
       NULL, NULL, NULL, NULL, NULL, g.last_seen, 'high',
       pg_catalog.format('standby %s (%s) streamed until %s and is not connected now',
                         COALESCE(NULLIF(g.application_name, ''), '(no application_name)'),
                         COALESCE(g.client_addr::pg_catalog.text, 'local socket'), g.last_seen),
       'check the standby server and its primary_conninfo; while it is away, a slot it uses retains WAL and it falls behind'
  FROM gone g
) u(kind, name, slot_type, active, wal_status, retained_bytes, max_slot_wal_keep_size, safe_wal_size,
      retained_growth_per_hour, hours_to_limit, last_seen, risk, detail, action)
 ORDER BY pg_catalog.array_position(ARRAY['lost', 'critical', 'high', 'warning', 'ok'], u.risk), u.kind, u.name
$$;

CREATE VIEW @extschema@.replication_risks AS
SELECT * FROM @extschema@.replication_risks(interval '1 hour');

-- Checkpoint health over the window, from the checkpointer and background writer history.
CREATE FUNCTION @extschema@.checkpoint_health(analysis_window interval DEFAULT '1 day')
RETURNS TABLE (checkpoints_timed bigint, checkpoints_req bigint, requested_share double precision,
               minutes_between_checkpoints double precision, buffers_checkpoint bigint,
               buffers_clean bigint, buffers_backend bigint, backend_write_share double precision,
               maxwritten_clean bigint, covered interval, status text, recommendation text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH totals AS (
    SELECT pg_catalog.sum(b.checkpoints_timed)::bigint AS timed, pg_catalog.sum(b.checkpoints_req)::bigint AS req,
           pg_catalog.sum(b.buffers_checkpoint)::bigint AS by_checkpoint, pg_catalog.sum(b.buffers_clean)::bigint AS by_bgwriter,
           pg_catalog.sum(b.buffers_backend)::bigint AS by_backend, pg_catalog.sum(b.maxwritten_clean)::bigint AS maxwritten,
           pg_catalog.sum(b.interval_end - b.interval_start) AS covered
      FROM @extschema@.bgwriter_stats b
     WHERE b.interval_end > pg_catalog.now() - analysis_window
), shares AS (
    SELECT t.*, t.req::double precision / NULLIF(t.timed + t.req, 0) AS req_share,
           t.by_backend::double precision / NULLIF(t.by_checkpoint + t.by_bgwriter + t.by_backend, 0) AS backend_share
      FROM totals t
)
SELECT s.timed, s.req, s.req_share,
       EXTRACT(epoch FROM s.covered) / 60 / NULLIF(s.timed + s.req, 0),
       s.by_checkpoint, s.by_bgwriter, s.by_backend, s.backend_share, s.maxwritten, s.covered,
       CASE WHEN s.covered IS NULL THEN 'no_history'
            WHEN s.req_share > 0.1 THEN 'frequent_requested_checkpoints'
            WHEN s.backend_share > 0.1 THEN 'backends_write_buffers'
            ELSE 'ok' END,
       CASE WHEN s.covered IS NULL THEN 'no checkpointer history in the window yet (a snapshot stores it)'
            WHEN s.req_share > 0.1 THEN
                pg_catalog.format('%s%% of checkpoints were requested (WAL reached max_wal_size = %s before checkpoint_timeout = %s): '
                                  'raise max_wal_size so that checkpoints come from the timeout',
                                  pg_catalog.round((100 * s.req_share)::numeric, 1),
                                  pg_catalog.current_setting('max_wal_size'), pg_catalog.current_setting('checkpoint_timeout'))
            WHEN s.backend_share > 0.1 THEN
                pg_catalog.format('backends wrote %s%% of the buffers themselves: let the background writer do more '
                                  '(raise bgwriter_lru_maxpages, lower bgwriter_delay) or raise shared_buffers',
                                  pg_catalog.round((100 * s.backend_share)::numeric, 1))
            ELSE 'no action needed' END
  FROM shares s
$$;

-- I/O by backend type, object and context over the window (io_stats: pg_stat_io, 16+; no rows
-- on older servers), the busiest first. Times in milliseconds, as pg_stat_io gives them (they
-- need track_io_timing; track_wal_io_timing for the wal object on 18).
CREATE FUNCTION @extschema@.io_activity(analysis_window interval DEFAULT '1 hour')
RETURNS TABLE (backend_type text, object text, context text,
               reads bigint, read_bytes bigint, read_time_ms double precision,
               avg_read_ms double precision,
               writes bigint, write_bytes bigint, write_time_ms double precision,
               writebacks bigint, extends bigint, extend_bytes bigint,
               hits bigint, hit_ratio double precision, evictions bigint, reuses bigint,
               fsyncs bigint, fsync_time_ms double precision, covered interval)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH per_key AS (
    SELECT i.backend_type, i.object, i.context,
           pg_catalog.sum(i.reads)::bigint AS reads, pg_catalog.sum(i.read_bytes)::bigint AS read_bytes,
           pg_catalog.sum(i.read_time) AS read_time,
           pg_catalog.sum(i.writes)::bigint AS writes, pg_catalog.sum(i.write_bytes)::bigint AS write_bytes,
           pg_catalog.sum(i.write_time) AS write_time, pg_catalog.sum(i.writebacks)::bigint AS writebacks,
           pg_catalog.sum(i.extends)::bigint AS extends, pg_catalog.sum(i.extend_bytes)::bigint AS extend_bytes,
           pg_catalog.sum(i.hits)::bigint AS hits, pg_catalog.sum(i.evictions)::bigint AS evictions,
           pg_catalog.sum(i.reuses)::bigint AS reuses, pg_catalog.sum(i.fsyncs)::bigint AS fsyncs,
           pg_catalog.sum(i.fsync_time) AS fsync_time
      FROM @extschema@.io_stats i
     WHERE i.interval_end > pg_catalog.now() - analysis_window
     GROUP BY i.backend_type, i.object, i.context
), covered AS (
    -- the snapshots in the window: one interval each, whichever keys had I/O in it
    SELECT pg_catalog.sum(w.interval_end - w.interval_start) AS covered
      FROM (SELECT DISTINCT i.interval_start, i.interval_end FROM @extschema@.io_stats i
             WHERE i.interval_end > pg_catalog.now() - analysis_window) w
)
SELECT k.backend_type, k.object, k.context,
       k.reads, k.read_bytes, k.read_time, k.read_time / NULLIF(k.reads, 0),
       k.writes, k.write_bytes, k.write_time, k.writebacks, k.extends, k.extend_bytes,
       k.hits, k.hits::double precision / NULLIF(k.hits + k.reads, 0), k.evictions, k.reuses,
       k.fsyncs, k.fsync_time, c.covered
  FROM per_key k CROSS JOIN covered c
 ORDER BY k.read_bytes + k.write_bytes + k.extend_bytes DESC, k.hits DESC,
          k.backend_type, k.object, k.context
$$;

CREATE VIEW @extschema@.io_activity AS
SELECT * FROM @extschema@.io_activity(interval '1 hour');
