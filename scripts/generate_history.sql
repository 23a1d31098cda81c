-- Synthetic dbanalytics history for benchmarks: N days ending now, at the default intervals.
--
--   psql -v days=7 -d DB -f scripts/generate_history.sql
--
-- Variables (psql -v):
--   days       days of rollups and deltas (statement_stats, database_stats, table_stats,
--              index_stats, bgwriter/replication stats, activity_minute, connection_minute)
--   raw_days   days of raw samples (activity_raw, connection_samples, lock_waits,
--              collector_runs); default 1 = dbanalytics.retention_raw, never more than days
--   minute_days days of per-minute statement, latency, table and index deltas (the minute
--              tier); default 1 = dbanalytics.retention_minutes, never more than days. Older
--              days have their hourly and daily rollups only, as the extension keeps them
--   seed       random seed in [-1, 1]; default 0.42 (the same data every time)
--
-- Shape (a busy OLTP server, at sample_interval 1 s and snapshot_interval 60 s):
--   raw, per 1 s tick   20 active backends in activity_raw (skewed over the 300 hot
--                       statements, 12 wait events), ~9 rows of connection_samples
--                       (3 applications x 3 states, ~100 connections), lock waits in ~3 %
--                       of the ticks (a head blocker and 2 waiters), 1 collector_runs row
--   per minute          300 changed statements in statement_stats (100 always-hot, 200
--                       rotating through a universe of 3,000 statements with texts in
--                       statements) with their latency histograms in statement_latency
--                       (every 50th an N+1 lookup with runs), 50 table_stats, 100
--                       index_stats rows: for the last minute_days; 1 database_stats and
--                       database_latency row (this database), bgwriter, 1 standby, 1 slot
--                       for every day; 10 collector_runs rows for the raw days
--   rollups             activity_minute / wait_minute / connection_minute / pool_minute by the extension's own rollup
--                       (dbanalytics._rollup_minutes) over the raw day, then the same day's
--                       rollups repeated for every older day of history, and wait_hourly /
--                       wait_daily of the whole history by dbanalytics._rollup_waits; statement_hourly,
--                       statement_latency_hourly, table_hourly and index_hourly by
--                       dbanalytics._rollup_hours() over the minute days (whose minutes
--                       dbanalytics._pack_minutes() then packs, as the collector does), then
--                       their hours repeated for every older day; statement_daily of every whole UTC day
--                       (statement_daily, statement_latency_daily) by the extension's daily rollups
--
-- It creates schema bench_app (50 tables with 100 indexes, empty) so that table_stats and
-- index_stats refer to real relations, and the daily partitions <table>_pYYYYMMDD of every
-- partitioned table of the extension for every day of the range plus the next two days, with
-- their indexes.
-- Tables not listed above (health history) get partitions, no rows. Run it once, on a database where dbanalytics was
-- just created: it appends. The history ends at the current minute, so analytics windows
-- relative to now() cover it; VACUUM (ANALYZE) at the end sets hint bits, summarizes the BRIN
-- indexes and gives the planner real statistics, as autovacuum does on a live server.

\set ON_ERROR_STOP on
\if :{?raw_days}
\else
\set raw_days 1
\endif
\if :{?minute_days}
\else
\set minute_days 1
\endif
\if :{?seed}
\else
\set seed 0.42
\endif

SELECT set_config('bench.days', :'days', false) AS days,
       set_config('bench.raw_days', least(:'raw_days'::numeric, :'days'::numeric)::text, false) AS raw_days,
       set_config('bench.minute_days', least(:'minute_days'::numeric, :'days'::numeric)::text, false) AS minute_days,
       set_config('bench.end', date_trunc('minute', now())::text, false) AS history_end,
       setseed(:seed) AS seed \gset gen_

\echo generate_history: :days day(s) of history, raw samples for the last min(:raw_days, :days) day(s), per-minute deltas for the last min(:minute_days, :days) day(s)

-- Daily partitions (UTC days) from the first day of history to two days ahead.
DO $partitions$
DECLARE
    -- every partitioned table of the extension, including ones this script does not fill
    tables text[] := ARRAY(SELECT c.relname FROM pg_class c
                            WHERE c.relnamespace = 'dbanalytics'::regnamespace AND c.relkind = 'p'
                            ORDER BY 1);
    history_end timestamptz := current_setting('bench.end')::timestamptz;
    first_day date := ((history_end - current_setting('bench.days')::numeric * interval '1 day')
                       AT TIME ZONE 'UTC')::date;
    last_day date := (history_end AT TIME ZONE 'UTC')::date + 2;
    day date;
    t text;
BEGIN
    FOR day IN SELECT d::date FROM generate_series(first_day, last_day, interval '1 day') d LOOP
        FOREACH t IN ARRAY tables LOOP
            EXECUTE format('CREATE TABLE IF NOT EXISTS dbanalytics.%I PARTITION OF dbanalytics.%I
                              FOR VALUES FROM (%L) TO (%L)',
                           t || '_p' || to_char(day, 'YYYYMMDD'), t,
                           to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                           to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
            -- with the indexes the partition manager gives each partition (partition_indexes)
            PERFORM dbanalytics._index_partition(t, t || '_p' || to_char(day, 'YYYYMMDD'));
        END LOOP;
    END LOOP;
END
$partitions$;

-- 50 application tables with a primary key and one secondary index each (100 indexes).
CREATE SCHEMA IF NOT EXISTS bench_app;
DO $objects$
BEGIN
    FOR i IN 1..50 LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS bench_app.orders_%s (id bigint PRIMARY KEY,
                          customer_id bigint, created_at timestamptz, total numeric)', i);
        EXECUTE format('CREATE INDEX IF NOT EXISTS orders_%s_customer ON bench_app.orders_%s (customer_id)', i, i);
    END LOOP;
END
$objects$;

-- Statement universe: 3,000 statements with texts; i <= 100 are the always-hot ones.
CREATE TEMP TABLE gen_statements AS
SELECT i,
       ('x' || substr(md5('q' || i), 1, 16))::bit(64)::bigint AS queryid,
       CASE
           WHEN i % 10 < 7 THEN format('SELECT o.id, o.customer_id, o.total FROM bench_app.orders_%s o WHERE o.customer_id = $1 AND o.created_at > $2 ORDER BY o.created_at DESC LIMIT $3 /* statement %s */', i % 50 + 1, i)
           WHEN i % 10 < 9 THEN format('UPDATE bench_app.orders_%s SET total = total + $1 WHERE id = $2 /* statement %s */', i % 50 + 1, i)
           ELSE format('INSERT INTO bench_app.orders_%s (id, customer_id, created_at, total) VALUES ($1, $2, now(), $3) /* statement %s */', i % 50 + 1, i)
       END AS query,
       CASE WHEN i % 97 = 0 THEN 800.0 ELSE 0.05 * (1 + i % 17) END AS mean_ms,
       i % 10 >= 7 AS writes
  FROM generate_series(1, 3000) i;
-- the latency bucket of each statement's mean time (latency_buckets() bounds)
ALTER TABLE gen_statements ADD COLUMN bucket smallint;
UPDATE gen_statements s SET bucket = (SELECT b.bucket FROM dbanalytics.latency_buckets() b
                                       WHERE b.lower_ms <= s.mean_ms ORDER BY b.bucket DESC LIMIT 1);

INSERT INTO dbanalytics.statements (dbid, userid, queryid, toplevel, datname, usename, query, first_seen)
SELECT d.oid, r.oid, s.queryid, true, d.datname, r.rolname, s.query,
       current_setting('bench.end')::timestamptz - current_setting('bench.days')::numeric * interval '1 day'
  FROM gen_statements s, pg_database d, pg_roles r
 WHERE d.datname = current_database() AND r.rolname = current_user
ON CONFLICT DO NOTHING;

\echo generate_history: raw samples
-- Raw samples: one row per tick (1 s) and active backend.
CREATE TEMP TABLE gen_ticks AS
SELECT t AS sampled_at, row_number() OVER (ORDER BY t) AS tick
  FROM generate_series(current_setting('bench.end')::timestamptz
                         - current_setting('bench.raw_days')::numeric * interval '1 day' + interval '1 second',
                       current_setting('bench.end')::timestamptz - interval '1 second',
                       interval '1 second') t;

CREATE TEMP TABLE gen_activity AS
SELECT k.sampled_at, b.pid, current_database() AS datname,
       CASE WHEN q.q > 260 THEN 'reporting' ELSE 'app' END AS usename,
       CASE WHEN q.q > 260 THEN 'reporting' WHEN q.q > 200 THEN 'worker' ELSE 'web' END AS application_name,
       ('10.1.0.' || b.pid % 20)::inet AS client_addr,
       CASE WHEN r.r1 < 0.9 THEN 'active' ELSE 'idle in transaction' END AS state,
       CASE WHEN r.r1 >= 0.9 THEN 'Client'
            ELSE (ARRAY[NULL, 'IO', 'LWLock', 'LWLock', 'IO', 'Lock', 'Lock', 'IPC', 'IO', 'Timeout'])[w.e] END
           AS wait_event_type,
       CASE WHEN r.r1 >= 0.9 THEN 'ClientRead'
            ELSE (ARRAY[NULL, 'DataFileRead', 'WALWrite', 'BufferContent', 'WALSync', 'transactionid', 'tuple',
                        'ProcArrayGroupUpdate', 'DataFileWrite', 'PgSleep'])[w.e] END AS wait_event,
       ('x' || substr(md5('q' || q.q), 1, 16))::bit(64)::bigint AS query_id,
       k.sampled_at - r.r3 * interval '2 seconds' AS xact_start,
       k.sampled_at - r.r3 * interval '200 milliseconds' AS query_start,
       k.sampled_at - r.r3 * interval '200 milliseconds' AS state_change,
       CASE WHEN r.r1 < 0.5 THEN NULL ELSE (r.r3 * 20)::int END AS backend_xid_age
  FROM gen_ticks k
 CROSS JOIN LATERAL (SELECT 10000 + (s + 20 * (k.tick / 300)) % 100 AS pid FROM generate_series(1, 20) s) b
 CROSS JOIN LATERAL (SELECT random() AS r1, random() AS r2, random() AS r3, random() AS r4
                      WHERE b.pid IS NOT NULL) r
 -- statements skewed towards the hottest; wait events: 60 % on CPU, then I/O, WAL, locks
 CROSS JOIN LATERAL (SELECT 1 + floor(300 * r.r2 ^ 4)::int AS q,
                            width_bucket(r.r4, ARRAY[0.60, 0.75, 0.82, 0.86, 0.90, 0.93, 0.95, 0.97, 0.99]) + 1 AS e
                      WHERE r.r2 IS NOT NULL) q
 CROSS JOIN LATERAL (SELECT q.e) w;

-- stored as the sampler stores them: each distinct session description once in activity_keys,
-- the samples in activity_raw
INSERT INTO dbanalytics.activity_keys (descriptor, datname, usename, application_name, client_addr, state,
                                       wait_event_type, wait_event)
SELECT DISTINCT ON (d) d, datname, usename, application_name, client_addr, state, wait_event_type, wait_event
  FROM (SELECT ROW(a.datname, a.usename, a.application_name, a.client_addr, a.state, a.wait_event_type,
                   a.wait_event)::text AS d, a.*
          FROM gen_activity a) a
ON CONFLICT (descriptor) DO NOTHING;

INSERT INTO dbanalytics.activity_raw
SELECT a.sampled_at, a.pid, k.key_id, a.query_id, dbanalytics._ms_before(a.sampled_at, a.xact_start),
       dbanalytics._ms_before(a.sampled_at, a.query_start), dbanalytics._ms_before(a.sampled_at, a.state_change),
       a.backend_xid_age
  FROM gen_activity a
  JOIN dbanalytics.activity_keys k
    ON k.descriptor = ROW(a.datname, a.usename, a.application_name, a.client_addr, a.state, a.wait_event_type,
                          a.wait_event)::text
 ORDER BY a.sampled_at;

INSERT INTO dbanalytics.connection_samples
SELECT k.sampled_at, current_database(), g.usename, g.app, g.state,
       g.base + floor(random() * 3)::int, CASE WHEN g.state = 'active' AND k.tick % 33 = 0 THEN 2 ELSE 0 END
  FROM gen_ticks k
 CROSS JOIN (VALUES ('app', 'web', 'active', 11), ('app', 'web', 'idle', 48), ('app', 'web', 'idle in transaction', 1),
                    ('app', 'worker', 'active', 3), ('app', 'worker', 'idle', 9), ('app', 'worker', 'idle in transaction', 0),
                    ('reporting', 'reporting', 'active', 3), ('reporting', 'reporting', 'idle', 17),
                    ('postgres', 'psql', 'idle', 1)) g(usename, app, state, base);

-- a head blocker and two waiters in about 3 % of the ticks
INSERT INTO dbanalytics.lock_waits
SELECT k.sampled_at, w.pid, current_database(), 'app', 'web', 'active',
       ('x' || substr(md5('q' || (91 + k.tick % 10)), 1, 16))::bit(64)::bigint,
       w.locktype, w.mode, 'bench_app', 'orders_' || (k.tick / 33 % 50 + 1), w.blockers,
       k.sampled_at - interval '1 second' * (k.tick % 5), k.sampled_at - interval '3 seconds'
  FROM gen_ticks k
 CROSS JOIN LATERAL (VALUES (20001 + (k.tick / 33) % 50, 'transactionid', 'ShareLock', ARRAY[20100 + (k.tick / 33) % 50]),
                            (20051 + (k.tick / 33) % 50, 'tuple', 'ExclusiveLock', ARRAY[20001 + (k.tick / 33) % 50]))
       AS w(pid, locktype, mode, blockers)
 WHERE k.tick % 33 = 0;

-- the head blocker itself, as the sampler records it (waiting = false)
INSERT INTO dbanalytics.lock_waits (sampled_at, pid, datname, usename, application_name, state, query_id,
                                    blocking_pids, xact_start, waiting)
SELECT k.sampled_at, 20100 + (k.tick / 33) % 50, current_database(), 'app', 'worker', 'idle in transaction',
       ('x' || substr(md5('q' || (101 + k.tick % 10)), 1, 16))::bit(64)::bigint, '{}',
       k.sampled_at - interval '4 seconds', false
  FROM gen_ticks k
 WHERE k.tick % 33 = 0;

INSERT INTO dbanalytics.collector_runs (started_at, worker, source, status, duration_ms, rows)
SELECT k.sampled_at, 'sampler', 'activity', 'ok', 0.6 + random() * 0.6, 29 + floor(random() * 3)::int
  FROM gen_ticks k;

\echo generate_history: minute rollups of the raw samples
-- as the collector's rollup source does (from the oldest sample: no rollup has run yet)
DELETE FROM dbanalytics.source_state WHERE source = 'rollup';
SELECT dbanalytics._rollup_minutes() AS rollup_rows;

\echo generate_history: statistics deltas, one snapshot per minute
CREATE TEMP TABLE gen_minutes AS
SELECT m AS interval_end, row_number() OVER (ORDER BY m) AS n
  FROM generate_series(current_setting('bench.end')::timestamptz
                         - current_setting('bench.days')::numeric * interval '1 day' + interval '1 minute',
                       current_setting('bench.end')::timestamptz, interval '1 minute') m;

INSERT INTO dbanalytics.statement_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, d.oid, r.oid, s.queryid, true, false,
       c.calls, c.calls, c.calls * s.mean_ms * c.jitter, c.calls * 0.01,
       c.calls * (1 + s.i % 10), c.calls * 6, CASE WHEN s.i % 7 = 0 THEN c.calls * 2 ELSE 0 END,
       CASE WHEN s.writes THEN c.calls ELSE 0 END, CASE WHEN s.writes THEN c.calls / 10 ELSE 0 END,
       0, 0, CASE WHEN s.i % 211 = 0 THEN 128 ELSE 0 END, CASE WHEN s.i % 211 = 0 THEN 128 ELSE 0 END,
       CASE WHEN s.i % 7 = 0 THEN c.calls * 0.02 ELSE 0 END, 0,
       CASE WHEN s.writes THEN c.calls * 2 ELSE 0 END, CASE WHEN s.writes THEN c.calls / 50 ELSE 0 END,
       CASE WHEN s.writes THEN c.calls * 180 ELSE 0 END
  FROM gen_minutes m
 CROSS JOIN LATERAL (SELECT g AS i FROM generate_series(1, 100) g
                     UNION ALL
                     SELECT 101 + ((m.n * 200 + g) % 2900)::int FROM generate_series(0, 199) g) pick
  JOIN gen_statements s ON s.i = pick.i
 CROSS JOIN LATERAL (SELECT greatest(1, (20000 / s.i * (0.8 + 0.4 * random()))::bigint) AS calls,
                            0.8 + 0.4 * random() AS jitter WHERE s.i IS NOT NULL) c
 CROSS JOIN pg_database d CROSS JOIN pg_roles r
 WHERE d.datname = current_database() AND r.rolname = current_user
   AND m.interval_end > current_setting('bench.end')::timestamptz
                        - current_setting('bench.minute_days')::numeric * interval '1 day';

-- their latency histograms: 90 % of the executions in the bucket of the mean, 10 % in a slower
-- one; every 50th statement is an N+1 lookup run after statement 1, by application shop_n_plus_one
INSERT INTO dbanalytics.statement_latency
SELECT st.interval_start, st.interval_end, st.dbid, st.userid, st.queryid, false, st.calls,
       ARRAY[s.bucket, s.bucket + 24]::smallint[], ARRAY[st.calls - st.calls / 10, st.calls / 10]::bigint[],
       r.runs, r.runs * 15, CASE WHEN r.runs > 0 THEN 15 + s.i % 7 END,
       CASE WHEN r.runs > 0 THEN (SELECT g.queryid FROM gen_statements g WHERE g.i = 1) END,
       NULL, NULL, NULL, NULL,
       -- the application the executor hooks record at each run's end
       CASE WHEN r.runs > 0 THEN 'shop_n_plus_one' END
  FROM dbanalytics.statement_stats st
  JOIN gen_statements s ON s.queryid = st.queryid
 CROSS JOIN LATERAL (SELECT CASE WHEN s.i % 50 = 0 THEN greatest(1, st.calls / 20) END AS runs) r;

INSERT INTO dbanalytics.database_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, d.oid, d.datname, false, 100,
       c.commits, c.commits / 200, c.commits / 10, c.commits * 40, c.commits * 60, c.commits * 8,
       c.commits / 4, c.commits / 2, c.commits / 50, 0,
       CASE WHEN m.n % 60 = 0 THEN 2 ELSE 0 END, CASE WHEN m.n % 60 = 0 THEN 16777216 ELSE 0 END,
       CASE WHEN m.n % 1440 = 700 THEN 1 ELSE 0 END, 0, c.commits * 0.001, c.commits * 0.0005,
       6000000, 1500000, 20000, 12, 0, 0, 0,
       5000000000 + m.n * 100000, 50000000 + m.n * 200,
       -- the minute's statement deltas, as the databases source sums them
       st.calls, st.exec_ms, st.slow
  FROM gen_minutes m
 CROSS JOIN LATERAL (SELECT (50000 + 20000 * sin(m.n / 229.0) + 5000 * random())::bigint AS commits
                      WHERE m.n IS NOT NULL) c
 CROSS JOIN pg_database d
  -- the minute's statement deltas; for days older than the minute tier, those of the same minute
  -- of the day in the minute tier (the workload repeats daily)
  LEFT JOIN (SELECT s.interval_end::time AS time_of_day, sum(s.calls)::bigint AS calls,
                    sum(s.total_exec_time) AS exec_ms,
                    count(*) FILTER (WHERE s.total_exec_time > 500 * s.calls)::int AS slow
               FROM dbanalytics.statement_stats s GROUP BY 1) st ON st.time_of_day = m.interval_end::time
 WHERE d.datname = current_database();

-- the database histograms of every minute (hour tier): the database's executions
INSERT INTO dbanalytics.database_latency
SELECT d.interval_start, d.interval_end, d.datid, d.datname, false, coalesce(d.calls, 0) + 3,
       ARRAY[130, 160, 200]::smallint[],
       ARRAY[coalesce(d.calls, 0) - coalesce(d.calls, 0) / 10 + 1, coalesce(d.calls, 0) / 10 + 1, 1]::bigint[]
  FROM dbanalytics.database_stats d;

INSERT INTO dbanalytics.table_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, current_database(), t.oid, 'bench_app', t.relname, false,
       CASE WHEN t.j % 10 = 0 THEN 30 ELSE 1 END, CASE WHEN t.j % 10 = 0 THEN 3000000 ELSE 1000 END,
       2000 / t.j, 2000 / t.j, 100 / t.j + 1, 200 / t.j + 1, 5, 150 / t.j,
       0, CASE WHEN m.n % 240 = t.j THEN 1 ELSE 0 END, 0, CASE WHEN m.n % 240 = t.j THEN 1 ELSE 0 END,
       50, 20000 / t.j, 1000000 + m.n * 10, 5000 + m.n % 1000, 800, NULL,
       NULL, NULL, NULL, 80000000, 60000000
  FROM gen_minutes m
 CROSS JOIN (SELECT c.oid, c.relname, substr(c.relname, 8)::int AS j
               FROM pg_class c WHERE c.relnamespace = 'bench_app'::regnamespace AND c.relkind = 'r') t
 WHERE m.interval_end > current_setting('bench.end')::timestamptz
                        - current_setting('bench.minute_days')::numeric * interval '1 day';

INSERT INTO dbanalytics.index_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, current_database(), i.indexrelid, i.indrelid,
       'bench_app', t.relname, c.relname, false,
       CASE WHEN c.relname LIKE '%customer' AND t.j % 5 = 0 THEN 0 ELSE 1000 / t.j + 1 END,
       2000 / t.j + 1, 1500 / t.j + 1, 3, 3000 / t.j + 1, 20000000
  FROM gen_minutes m
 CROSS JOIN (pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN (SELECT oid, relname, substr(relname, 8)::int AS j FROM pg_class
                    WHERE relnamespace = 'bench_app'::regnamespace AND relkind = 'r') t ON t.oid = i.indrelid)
 WHERE m.interval_end > current_setting('bench.end')::timestamptz
                        - current_setting('bench.minute_days')::numeric * interval '1 day';

INSERT INTO dbanalytics.bgwriter_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, false,
       CASE WHEN m.n % 5 = 0 THEN 1 ELSE 0 END, 0, CASE WHEN m.n % 5 = 0 THEN 120000 ELSE 0 END,
       CASE WHEN m.n % 5 = 0 THEN 40 ELSE 0 END, 3000, 200, 0, 50, 0, 4000
  FROM gen_minutes m;

INSERT INTO dbanalytics.replication_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, 30000, 'replicator', 'replica1', '10.1.0.200',
       'streaming', 'async', '0/3000000'::pg_lsn, '0/3000000'::pg_lsn, '0/3000000'::pg_lsn, '0/3000000'::pg_lsn,
       0.001, 0.002, 0.004 + random() * 0.01, (random() * 100000)::bigint
  FROM gen_minutes m;

INSERT INTO dbanalytics.replication_slot_stats
SELECT m.interval_end - interval '1 minute', m.interval_end, 'replica1', 'physical', NULL, true,
       'reserved', '0/3000000'::pg_lsn, NULL, (random() * 20000000)::bigint, NULL
  FROM gen_minutes m;

INSERT INTO dbanalytics.collector_runs (started_at, worker, source, status, duration_ms, rows)
SELECT m.interval_end, 'collector', s.source, 'ok', s.ms * (0.8 + 0.4 * random()), s.rows
  FROM gen_minutes m
 CROSS JOIN (VALUES ('partitions', 0.3, 0), ('statements', 25.0, 300), ('databases', 2.0, 1),
                    ('tables', 6.0, 50), ('indexes', 6.0, 100), ('bgwriter', 0.5, 1),
                    ('replication', 0.4, 1), ('replication_slots', 0.4, 1), ('rollup', 8.0, 400),
                    ('retention', 0.5, 0)) s(source, ms, rows)
 WHERE m.interval_end > current_setting('bench.end')::timestamptz
                        - current_setting('bench.raw_days')::numeric * interval '1 day';

\echo generate_history: hourly rollups of the statement, latency, table and index deltas
SELECT dbanalytics._rollup_hours() AS hourly_rows;

\echo generate_history: packing the minutes of the rolled-up hours, as the collector does (two hours per call)
SELECT count(*) AS packing_calls
  FROM generate_series(1, 100) n
 WHERE dbanalytics._pack_minutes() > 0;

\echo generate_history: hourly rollups of the days older than the minute tier (copies of its hours)
INSERT INTO dbanalytics.statement_hourly
SELECT h.hour_end - k * interval '1 day', h.first_start - k * interval '1 day', h.last_end - k * interval '1 day',
       h.dbid, h.userid, h.queryid, h.toplevel, h.reset, h.intervals, h.calls, h.plans, h.total_exec_time,
       h.total_plan_time, h.rows, h.shared_blks_hit, h.shared_blks_read, h.shared_blks_dirtied,
       h.shared_blks_written, h.local_blks_hit, h.local_blks_read, h.temp_blks_read, h.temp_blks_written,
       h.blk_read_time, h.blk_write_time, h.wal_records, h.wal_fpi, h.wal_bytes, h.peak_calls_per_transaction
  FROM dbanalytics.statement_hourly h
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE h.hour_end - k * interval '1 day' > current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND h.hour_end - k * interval '1 day' < (SELECT min(hour_end) FROM dbanalytics.statement_hourly);

INSERT INTO dbanalytics.statement_latency_hourly
SELECT h.hour_end - k * interval '1 day', h.dbid, h.userid, h.queryid, h.reset, h.intervals, h.executions,
       h.buckets, h.counts, h.runs, h.run_executions, h.run_max_length, h.run_parent_queryid
  FROM dbanalytics.statement_latency_hourly h
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE h.hour_end - k * interval '1 day' > current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND h.hour_end - k * interval '1 day' < (SELECT min(hour_end) FROM dbanalytics.statement_latency_hourly);

INSERT INTO dbanalytics.table_hourly
SELECT h.hour_end - k * interval '1 day', h.first_start - k * interval '1 day', h.last_end - k * interval '1 day',
       h.datname, h.relid, h.schemaname, h.relname, h.reset, h.intervals, h.seq_scan, h.seq_tup_read, h.idx_scan,
       h.idx_tup_fetch, h.n_tup_ins, h.n_tup_upd, h.n_tup_del, h.n_tup_hot_upd, h.vacuum_count,
       h.autovacuum_count, h.analyze_count, h.autoanalyze_count, h.heap_blks_read, h.heap_blks_hit
  FROM dbanalytics.table_hourly h
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE h.hour_end - k * interval '1 day' > current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND h.hour_end - k * interval '1 day' < (SELECT min(hour_end) FROM dbanalytics.table_hourly);

INSERT INTO dbanalytics.index_hourly
SELECT h.hour_end - k * interval '1 day', h.first_start - k * interval '1 day', h.last_end - k * interval '1 day',
       h.datname, h.indexrelid, h.relid, h.schemaname, h.relname, h.indexrelname, h.reset, h.intervals,
       h.idx_scan, h.idx_tup_read, h.idx_tup_fetch, h.idx_blks_read, h.idx_blks_hit
  FROM dbanalytics.index_hourly h
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE h.hour_end - k * interval '1 day' > current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND h.hour_end - k * interval '1 day' < (SELECT min(hour_end) FROM dbanalytics.index_hourly);

\echo generate_history: daily rollups of every whole UTC day
DELETE FROM dbanalytics.statement_daily;
DELETE FROM dbanalytics.statement_latency_daily;
SELECT dbanalytics._rollup_statements('day', '-infinity', s.updated_at) AS daily_rows,
       dbanalytics._rollup_latency('day', '-infinity', s.updated_at) AS daily_latency_rows
  FROM dbanalytics.source_state s WHERE s.source = 'days';

\echo generate_history: rollups of older days (copies of the raw day)
INSERT INTO dbanalytics.activity_minute
SELECT a.minute - k * interval '1 day', a.datname, a.usename, a.application_name, a.state,
       a.wait_event_type, a.wait_event, a.query_id, a.samples
  FROM dbanalytics.activity_minute a
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE a.minute - k * interval '1 day' >= current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND a.minute - k * interval '1 day' < (SELECT min(minute) FROM dbanalytics.activity_minute);

INSERT INTO dbanalytics.wait_minute
SELECT w.minute - k * interval '1 day', w.datname, w.wait_event_type, w.wait_event, w.samples
  FROM dbanalytics.wait_minute w
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE w.minute - k * interval '1 day' >= current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND w.minute - k * interval '1 day' < (SELECT min(minute) FROM dbanalytics.wait_minute);

INSERT INTO dbanalytics.connection_minute
SELECT c.minute - k * interval '1 day', c.datname, c.usename, c.application_name, c.state, c.ticks,
       c.avg_backends, c.max_backends, c.avg_lock_waiting, c.max_lock_waiting
  FROM dbanalytics.connection_minute c
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE c.minute - k * interval '1 day' >= current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND c.minute - k * interval '1 day' < (SELECT min(minute) FROM dbanalytics.connection_minute);

INSERT INTO dbanalytics.pool_minute
SELECT p.minute - k * interval '1 day', p.datname, p.usename, p.application_name, p.ticks, p.active_sum,
       p.max_active, p.idle_sum, p.idle_in_transaction_sum, p.waiting_sum, p.max_connections, p.cluster_peak
  FROM dbanalytics.pool_minute p
 CROSS JOIN generate_series(1, ceil(current_setting('bench.days')::numeric)::int) k
 WHERE p.minute - k * interval '1 day' >= current_setting('bench.end')::timestamptz
                                          - current_setting('bench.days')::numeric * interval '1 day'
   AND p.minute - k * interval '1 day' < (SELECT min(minute) FROM dbanalytics.pool_minute);

\echo generate_history: wait_hourly and wait_daily of the whole history, as the minute rollup writes them
DELETE FROM dbanalytics.wait_hourly;
DELETE FROM dbanalytics.wait_daily;
SELECT dbanalytics._rollup_waits(pg_catalog.min(m.minute), s.updated_at) AS wait_rollup_rows
  FROM dbanalytics.activity_minute m, dbanalytics.source_state s
 WHERE s.source = 'rollup'
 GROUP BY s.updated_at;

\echo generate_history: VACUUM (ANALYZE), as autovacuum would have done on a live server
VACUUM (ANALYZE) dbanalytics.activity_raw, dbanalytics.activity_keys, dbanalytics.connection_samples, dbanalytics.lock_waits,
        dbanalytics.collector_runs, dbanalytics.activity_minute, dbanalytics.wait_minute, dbanalytics.wait_hourly, dbanalytics.wait_daily,
        dbanalytics.connection_minute, dbanalytics.pool_minute,
        dbanalytics.statements, dbanalytics.statement_stats, dbanalytics.statement_hourly, dbanalytics.database_stats,
        dbanalytics.statement_latency, dbanalytics.statement_latency_hourly, dbanalytics.statement_latency_daily,
        dbanalytics.database_latency,
        dbanalytics.table_hourly, dbanalytics.index_hourly, dbanalytics.statement_daily,
        dbanalytics.table_stats, dbanalytics.index_stats, dbanalytics.bgwriter_stats,
        dbanalytics.replication_stats, dbanalytics.replication_slot_stats;

SELECT 'generate_history: ' || string_agg(format('%s %s rows', t, n), ', ' ORDER BY t) AS summary
  FROM (SELECT 'activity_raw' t, count(*) n FROM dbanalytics.activity_raw
        UNION ALL SELECT 'connection_samples', count(*) FROM dbanalytics.connection_samples
        UNION ALL SELECT 'activity_minute', count(*) FROM dbanalytics.activity_minute
        UNION ALL SELECT 'wait_minute', count(*) FROM dbanalytics.wait_minute
        UNION ALL SELECT 'wait_hourly', count(*) FROM dbanalytics.wait_hourly
        UNION ALL SELECT 'wait_daily', count(*) FROM dbanalytics.wait_daily
        UNION ALL SELECT 'statement_stats', count(*) FROM dbanalytics.statement_stats
        UNION ALL SELECT 'statement_hourly', count(*) FROM dbanalytics.statement_hourly
        UNION ALL SELECT 'statement_latency', count(*) FROM dbanalytics.statement_latency
        UNION ALL SELECT 'statement_latency_hourly', count(*) FROM dbanalytics.statement_latency_hourly
        UNION ALL SELECT 'statement_daily', count(*) FROM dbanalytics.statement_daily
        UNION ALL SELECT 'table_stats', count(*) FROM dbanalytics.table_stats
        UNION ALL SELECT 'index_stats', count(*) FROM dbanalytics.index_stats) s;
