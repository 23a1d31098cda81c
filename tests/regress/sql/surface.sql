-- The SQL surface of dbanalytics, pinned (issue 12): every function's signature, result shape,
-- volatility, security and settings; every view's and table's columns; the documented defaults
-- (thresholds, health components, alert rules, latency buckets); the pure functions' results;
-- and the errors and HINTs a caller meets. tests/e2e_regress.sh runs this file with psql -a on
-- a fresh cluster and compares the transcript with expected/surface.out (UPDATE_EXPECTED=1
-- writes it after a deliberate change: review the diff, it is the change users see).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = notice;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET extra_float_digits = 0;

-- Without shared_preload_libraries: created, with a warning that collection is off.
CREATE EXTENSION dbanalytics;

-- The catalog listings unaligned, one line per object: a change shows as the lines it changes.
\pset format unaligned
-- Functions: identity, result, language, strictness, volatility, SECURITY DEFINER, settings,
-- who may run them.
SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS arguments,
       pg_catalog.pg_get_function_result(p.oid) AS result,
       (SELECT l.lanname FROM pg_catalog.pg_language l WHERE l.oid = p.prolang) AS language,
       p.proisstrict AS strict, p.provolatile AS volatility,
       p.prosecdef AS security_definer, p.proconfig AS settings,
       pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_run,
       pg_catalog.has_function_privilege('dbanalytics_reader', p.oid, 'EXECUTE') AS reader_may_run
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'dbanalytics'::regnamespace
 ORDER BY 1, 2;

-- Views and tables: their columns, in order.
SELECT c.relname, c.relkind, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'dbanalytics'::regnamespace AND c.relkind IN ('v', 'p', 'r', 'c')
   AND c.relname !~ '_p[0-9]{8}$'
 ORDER BY c.relname, a.attnum;

-- Types of the schema.
SELECT t.typname, t.typtype FROM pg_catalog.pg_type t
 WHERE t.typnamespace = 'dbanalytics'::regnamespace AND t.typtype IN ('c', 'e', 'd')
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
 ORDER BY 1;

\pset format aligned

-- The documented defaults.
SELECT * FROM dbanalytics.analytics_thresholds ORDER BY name;
-- A threshold with a constant name is folded into a constant when the statement is planned
-- (_threshold is IMMUTABLE): it is not evaluated once per row.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT c.relname FROM pg_catalog.pg_class c
 WHERE pg_catalog.age(c.relfrozenxid) > dbanalytics._threshold('xid_age_warning') * 2147483647;
SELECT * FROM dbanalytics.health_components ORDER BY 1;
SELECT * FROM dbanalytics.alert_rules ORDER BY 1;
SELECT * FROM dbanalytics.latency_buckets() WHERE bucket % 40 = 0 OR bucket >= 460 ORDER BY bucket;
SELECT pg_catalog.count(*) AS buckets FROM dbanalytics.latency_buckets();
SELECT * FROM dbanalytics.partition_indexes ORDER BY 1, 2;

-- Pure functions.
SELECT dbanalytics.counter_delta(10::bigint, 4::bigint, false) AS plain,
       dbanalytics.counter_delta(3::bigint, 4::bigint, false) AS went_down,
       dbanalytics.counter_delta(10::bigint, 4::bigint, true) AS zeroed,
       dbanalytics.counter_delta(10::bigint, NULL::bigint, false) AS first,
       dbanalytics.counter_delta(2.5::double precision, 1.0::double precision, false) AS float_plain;
SELECT dbanalytics.latency_percentiles(ARRAY[0, 100, 200]::smallint[], ARRAY[50, 40, 10]::bigint[],
                                       ARRAY[0.5, 0.9, 0.99]);
SELECT dbanalytics.latency_percentiles('{}'::smallint[], '{}'::bigint[], ARRAY[0.5]);

-- Empty history: what each analytic returns before anything was collected.
SELECT pg_catalog.count(*) AS top_queries FROM dbanalytics.top_queries('1 hour', 'calls', 10);
SELECT pg_catalog.count(*) AS query_latency FROM dbanalytics.query_latency('1 hour', 10);
SELECT pg_catalog.count(*) AS regressions FROM dbanalytics.regressions('1 hour', '1 day', 10);
SELECT pg_catalog.count(*) AS index_advice FROM dbanalytics.index_advice('1 hour', 10);
SELECT pg_catalog.count(*) AS lock_contention FROM dbanalytics.lock_contention('1 hour');
SELECT pg_catalog.count(*) AS wait_events FROM dbanalytics.wait_events('1 hour');
SELECT pg_catalog.jsonb_object_keys(dbanalytics.health_score('1 hour')) ORDER BY 1;
SELECT pg_catalog.jsonb_object_keys(dbanalytics.query_analysis('1 hour')) ORDER BY 1;
SELECT dbanalytics.collection_preloaded();

-- Errors and their HINTs.
SELECT dbanalytics.health_score(NULL);
SELECT dbanalytics.health_score('-1 hour');
SELECT dbanalytics.health_score('0');
SELECT * FROM dbanalytics.top_queries('1 hour', 'bogus', 10);
SELECT * FROM dbanalytics.top_queries('1 hour', NULL, 10);
SELECT * FROM dbanalytics.top_queries('1 hour', 'calls', 0);
SELECT * FROM dbanalytics.query_latency('1 hour', -1);
SELECT * FROM dbanalytics.regressions('1 hour', NULL);
SELECT * FROM dbanalytics.regressions('1 hour', '0');
SELECT * FROM dbanalytics.regressions(NULL, '1 day');
SELECT * FROM dbanalytics.regressions('1 hour', '1 day', 0);
SELECT * FROM dbanalytics.index_advice('1 hour', 0);
SELECT * FROM dbanalytics.latency_histogram(1, '-1 day');
SELECT dbanalytics.latency_percentiles(ARRAY[0, 1]::smallint[], ARRAY[1]::bigint[], ARRAY[0.5]);
SELECT dbanalytics.latency_percentiles(ARRAY[0]::smallint[], ARRAY[1]::bigint[], ARRAY[1.5]);
SELECT dbanalytics.latency_percentiles(ARRAY[9999]::smallint[], ARRAY[1]::bigint[], ARRAY[0.5]);
SELECT dbanalytics.latency_percentiles(ARRAY[3]::smallint[], ARRAY[-1]::bigint[], ARRAY[0.5]);
SELECT dbanalytics.latency_percentiles(ARRAY[3, NULL]::smallint[], ARRAY[2, 5]::bigint[], ARRAY[0.5, NULL]);
SELECT * FROM dbanalytics.space_growth('1 day', -5);
SELECT dbanalytics.report_html('1 hour', 0);
SELECT * FROM dbanalytics.explain_analysis('SELECT 1; SELECT 2');
SELECT * FROM dbanalytics.explain_analysis('');
SELECT * FROM dbanalytics.explain_analysis(NULL);
SELECT * FROM dbanalytics.query_waits(NULL, '1 hour');
-- Packed minutes: the codec round-trips, refuses bad shapes and damaged values.
SELECT u.n, u.row_values FROM dbanalytics._unpack_columns(dbanalytics._pack_columns(3, ARRAY[[10, NULL, 0], [20, -5, 9223372036854775807], [30, 7, -9223372036854775808]])) u;
SELECT u.n, u.row_values FROM dbanalytics._unpack_columns(dbanalytics._pack_columns(1, ARRAY[10, 20, 30]), 10, 30) u;
SELECT pg_catalog.count(*) AS no_rows FROM dbanalytics._unpack_columns(NULL);
SELECT dbanalytics._pack_columns(0, ARRAY[1]);
SELECT dbanalytics._pack_columns(2, ARRAY[1, 2, 3]);
SELECT * FROM dbanalytics._unpack_columns('\x0102'::bytea);
SELECT * FROM dbanalytics._unpack_columns('\x01010163ff'::bytea);
SELECT * FROM dbanalytics._unpack_totals(dbanalytics._pack_columns(3, ARRAY[[60, 4, 1], [120, NULL, 8], [180, 6, 3]]), 60, NULL, 3, ARRAY[120, 180], ARRAY[4, 0]);
SELECT * FROM dbanalytics._unpack_totals(dbanalytics._pack_columns(1, ARRAY[60]), 60, NULL);
SELECT * FROM dbanalytics._unpack_totals(dbanalytics._pack_columns(1, ARRAY[9223372036854775807, 9223372036854775807]), NULL, NULL);
SELECT * FROM dbanalytics._unpack_latency_totals(dbanalytics._pack_columns(14, pg_catalog.array_fill(1::bigint, ARRAY[14])), NULL, NULL);
-- intervals packed on a clock (packed_hours): read back with the same clock only
SELECT u.n, u.row_values FROM dbanalytics._unpack_columns(dbanalytics._pack_columns(3, ARRAY[[60000000, 60000000, 1], [180000123, 120000123, 2]], true, ARRAY[60000000, 120000000, 180000123]), 60000000, NULL, ARRAY[60000000, 120000000, 180000123]) u;
SELECT * FROM dbanalytics._unpack_columns(dbanalytics._pack_columns(3, ARRAY[60000000, 60000000, 1], true, ARRAY[60000000]));
SELECT dbanalytics._pack_columns(3, ARRAY[60000001, 60000000, 1], true, ARRAY[60000000]);
SELECT dbanalytics._pack_columns(3, ARRAY[60000000, 60000000, 1], true, ARRAY[NULL, 60000000]);
SELECT dbanalytics._pack_columns(NULL, ARRAY[1]) IS NULL AS null_columns_pack_to_null;
-- histograms (n at column 2, then buckets and counts padded to width 3) packed by core bucket:
-- the same rows come back, with the format's histogram flag (16) set
SELECT pg_catalog.get_byte(p, 0) AS format, (SELECT pg_catalog.array_agg(u.row_values ORDER BY u.n) FROM dbanalytics._unpack_columns(p) u) AS row_values
  FROM dbanalytics._pack_columns(8, ARRAY[[1, 2, 4, 5, NULL, 10, 0, NULL], [2, 3, 4, 5, 40, 7, 1, 1], [3, 1, 5, NULL, NULL, 3, NULL, NULL], [4, 2, 4, 5, NULL, 1, 2, NULL]]::bigint[], false, NULL, 2) p;
