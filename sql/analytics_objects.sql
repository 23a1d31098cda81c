-- dbanalytics analytics: indexes, tables, sequences, cache, replication.

-- Estimated free space of the btree indexes of the current database listed in indexrelids,
-- from the planner's statistics: the pages an index's rows would fill at its fillfactor (row
-- width from pg_stats, row count from pg_class), against the pages it has. This is the
-- well-known estimate of ioguix/pgsql-bloat-estimation that PgHero and check_pgactivity use.
-- An index is not estimated when a column (key or INCLUDE) has no pg_stats row the caller can
-- read (never analyzed, or no privilege on the column) or is of type name (its statistics width
-- is not its stored width). Deduplicated btrees (PostgreSQL 13+) can be smaller than the
-- estimate: then no bloat is reported, never a negative one.
CREATE FUNCTION @extschema@._btree_bloat(indexrelids oid[])
RETURNS TABLE (indexrelid oid, real_bytes bigint, expected_bytes bigint, bloat_bytes bigint,
               bloat_ratio double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH consts AS (
    -- block size; page header and btree special space; MAXALIGN of 64-bit platforms
    SELECT pg_catalog.current_setting('block_size')::numeric AS bs, 24 AS pagehdr, 16 AS special, 8 AS align
), idx AS (
    SELECT i.indexrelid, i.indrelid, i.indkey, i.indnatts, c.relpages, GREATEST(c.reltuples, 0) AS reltuples,
           COALESCE((SELECT pg_catalog.substring(o.opt, '^fillfactor=([0-9]+)$')::numeric
                       FROM pg_catalog.unnest(c.reloptions) AS o(opt)
                      WHERE o.opt LIKE 'fillfactor=%'), 90) AS fillfactor
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_am am ON am.oid = c.relam
     WHERE am.amname = 'btree' AND c.relpages > 0
       AND i.indexrelid = ANY (indexrelids)
), cols AS (
    -- each index column's statistics: the table column's, or the index's own for an expression
    SELECT x.indexrelid, x.relpages, x.reltuples, x.fillfactor, a.atttypid, s.null_frac, s.avg_width
      FROM idx x
     CROSS JOIN LATERAL pg_catalog.generate_series(1, x.indnatts) AS k(pos)
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = CASE WHEN x.indkey[k.pos - 1] <> 0 THEN x.indrelid ELSE x.indexrelid END
       AND a.attnum = CASE WHEN x.indkey[k.pos - 1] <> 0 THEN x.indkey[k.pos - 1] ELSE k.pos END
      JOIN pg_catalog.pg_class r ON r.oid = a.attrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
      -- looked up column by column through the catalogs' name indexes (LIMIT 1: not flattened
      -- into a join with pg_stats of the whole database, which a few indexes among thousands of
      -- partitions paid in full)
      LEFT JOIN LATERAL (
           SELECT s.null_frac, s.avg_width FROM pg_catalog.pg_stats s
            WHERE s.schemaname = n.nspname AND s.tablename = r.relname AND s.attname = a.attname
              AND NOT s.inherited LIMIT 1) s ON true
), rows AS (
    -- each index with what its expected size needs (carried here: no join back to idx, whose
    -- row count the planner cannot estimate)
    SELECT c.indexrelid, c.relpages, c.reltuples, c.fillfactor,
           pg_catalog.count(c.avg_width) = pg_catalog.count(*)
               AND NOT pg_catalog.bool_or(c.atttypid = 'pg_catalog.name'::pg_catalog.regtype) AS estimable,
           -- IndexTupleData, plus the null bitmap when a column has NULLs; then the data
           CASE WHEN pg_catalog.max(COALESCE(c.null_frac, 0)) = 0 THEN 8 ELSE 12 END AS header,
           pg_catalog.sum((1 - COALESCE(c.null_frac, 0)) * c.avg_width) AS data
      FROM cols c
     GROUP BY c.indexrelid, c.relpages, c.reltuples, c.fillfactor
), expected AS (
    SELECT x.indexrelid, x.relpages, k.bs,
           -- the metapage, then the pages the rows fill: each row MAXALIGNed, plus its 4-byte line pointer
           1 + pg_catalog.ceil(x.reltuples / pg_catalog.floor(
                   (k.bs - k.pagehdr - k.special) * x.fillfactor
                   / (100 * (4 + pg_catalog.ceil(x.header / k.align) * k.align
                               + pg_catalog.ceil(x.data / k.align) * k.align)))) AS pages
      FROM rows x
     CROSS JOIN consts k
     WHERE x.estimable
)
SELECT e.indexrelid, (e.relpages * e.bs)::bigint, (LEAST(e.pages, e.relpages) * e.bs)::bigint,
       (GREATEST(e.relpages - e.pages, 0) * e.bs)::bigint,
       GREATEST(e.relpages - e.pages, 0)::double precision / e.relpages
  FROM expected e
$$;

-- Indexes of the current database, judged over a window from the collector's history plus
-- the scans since its last snapshot. Index statistics are per database: run this in the
-- database the collector watches (dbanalytics.database).
CREATE FUNCTION @extschema@._compute_index_effectiveness(analysis_window interval)
RETURNS TABLE (
    schemaname text, tablename text, indexname text, index_method text,
    scans_in_window bigint, scans_per_second double precision, tuples_read_per_scan double precision,
    index_bytes bigint, table_bytes bigint, size_ratio double precision,
    table_writes_in_window bigint, watched_seconds double precision,
    protected_by text, index_status text, recommendation text, evidence text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (
    SELECT pg_catalog.now() - analysis_window AS since,
           EXTRACT(epoch FROM analysis_window)::double precision AS window_seconds,
           @extschema@._threshold('index_min_evidence')::double precision AS min_evidence,
           @extschema@._threshold('index_rare_scans_per_day')::double precision AS rare_per_day,
           @extschema@._threshold('index_low_selectivity')::double precision AS low_selectivity,
           @extschema@._threshold('index_bloat_ratio')::double precision AS bloat_ratio_min,
           @extschema@._threshold('index_bloat_min_bytes')::double precision AS bloat_bytes_min
), live AS (
    SELECT i.indexrelid, i.indrelid, n.nspname::text AS schemaname, t.relname::text AS tablename,
           c.relname::text AS indexname, am.amname::text AS method, i.indisvalid, i.indisunique,
           i.indisprimary, i.indisreplident, i.indkey::text AS keys, i.indclass::text AS opclasses,
           i.indoption::text AS options,
           i.indcollation::text AS collations, i.indnkeyatts,
           COALESCE(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), '') AS expressions,
           COALESCE(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '') AS predicate,
           -- NULL for a relation locked against reading now (VACUUM FULL, ALTER TABLE): never wait
           @extschema@._relation_size_nowait(i.indexrelid, false) AS index_bytes,
           @extschema@._relation_size_nowait(i.indrelid, true) AS table_bytes,
           GREATEST(t.reltuples, 0) AS table_rows,
           s.idx_scan AS live_scans, s.idx_tup_read AS live_tup_read,
           (SELECT pg_catalog.string_agg(pg_catalog.format('%s constraint %s',
                       CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
                                      WHEN 'x' THEN 'exclusion' ELSE 'foreign key' END, k.conname), ', ')
              FROM pg_catalog.pg_constraint k
             WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) AS constraint_use,
           -- foreign keys of this table whose columns are exactly the index's leading key columns
           -- (in any order, as PgHero checks): the index serves the parent's DELETE / key UPDATE
           (SELECT pg_catalog.string_agg(pg_catalog.format('foreign key %s: without it every DELETE or key UPDATE on %s scans %I.%I',
                                                           k.conname, k.confrelid::pg_catalog.regclass, n.nspname, t.relname),
                                         ', ' ORDER BY k.conname)
              FROM pg_catalog.pg_constraint k
             WHERE k.contype = 'f' AND k.conrelid = i.indrelid AND i.indpred IS NULL
               AND pg_catalog.cardinality(k.conkey) <= i.indnkeyatts
               AND NOT EXISTS (SELECT FROM pg_catalog.unnest(k.conkey) AS x(attnum)
                                WHERE COALESCE(pg_catalog.array_position(i.indkey::pg_catalog.int2[], x.attnum)
                                               - pg_catalog.array_lower(i.indkey::pg_catalog.int2[], 1), 2147483647)
                                      >= pg_catalog.cardinality(k.conkey))) AS foreign_key_use
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
      JOIN pg_catalog.pg_am am ON am.oid = c.relam
      LEFT JOIN pg_catalog.pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '@extschema@')
       AND n.nspname !~ '^pg_(toast|temp_)'
), history AS (
    SELECT h.indexrelid, h.idx_scan AS scans, h.idx_tup_read AS tup_read
      FROM args a, @extschema@._index_totals(a.since, pg_catalog.now()) h
), writes AS (
    SELECT w.relid, w.n_tup_ins + w.n_tup_upd - w.n_tup_hot_upd AS writes
      FROM args a, @extschema@._table_totals(a.since, pg_catalog.now()) w
), measured AS (
    SELECT l.*,
           -- scans recorded in the window, plus those since the last snapshot
           COALESCE(h.scans, 0) + CASE
               WHEN l.live_scans IS NULL OR k.idx_scan IS NULL THEN 0
               WHEN l.live_scans >= k.idx_scan THEN l.live_scans - k.idx_scan
               ELSE l.live_scans END AS scans,
           COALESCE(h.tup_read, 0) + CASE
               WHEN l.live_tup_read IS NULL OR k.idx_tup_read IS NULL THEN 0
               WHEN l.live_tup_read >= k.idx_tup_read THEN l.live_tup_read - k.idx_tup_read
               ELSE l.live_tup_read END AS tup_read,
           -- how long the collector has watched this index (never seen: not watched at all; the
           -- server's own counters cannot tell, since the index may be younger than stats_reset)
           COALESCE(EXTRACT(epoch FROM pg_catalog.now() - GREATEST(a.since, k.first_seen))::double precision, 0) AS watched,
           COALESCE(wr.writes, 0) AS writes,
           a.window_seconds, a.min_evidence, a.rare_per_day, a.low_selectivity, a.bloat_ratio_min, a.bloat_bytes_min,
           b.expected_bytes, b.bloat_bytes, b.bloat_ratio,
           CASE
               WHEN l.constraint_use IS NOT NULL THEN 'backs ' || l.constraint_use
               WHEN l.indisunique THEN 'enforces uniqueness'
               WHEN l.indisreplident THEN 'is the replica identity'
               WHEN l.foreign_key_use IS NOT NULL THEN 'backs ' || l.foreign_key_use
           END AS protected_by,
           -- a standby's scans are counted on the standby only (pg_stat_user_indexes is per server)
           EXISTS (SELECT FROM pg_catalog.pg_stat_replication) OR EXISTS (SELECT FROM pg_catalog.pg_replication_slots r WHERE r.slot_type = 'physical') AS has_standbys
      FROM live l
      CROSS JOIN args a
      LEFT JOIN history h ON h.indexrelid = l.indexrelid
      LEFT JOIN @extschema@.index_counters k ON k.indexrelid = l.indexrelid
      LEFT JOIN writes wr ON wr.relid = l.indrelid
      -- estimated for the indexes judged here only (pg_stats for every index of a database
      -- with thousands of partitions took most of this function's time)
      LEFT JOIN @extschema@._btree_bloat(ARRAY(SELECT o.indexrelid FROM live o)) b ON b.indexrelid = l.indexrelid
), twins AS (
    -- an identical index on the same table: the newer one, unless only the older is droppable
    SELECT m.indexrelid, pg_catalog.min(o.indexname) AS twin
      FROM measured m JOIN measured o
        ON o.indrelid = m.indrelid AND o.indexrelid <> m.indexrelid
       AND (o.method, o.keys, o.opclasses, o.options, o.collations, o.expressions, o.predicate, o.indnkeyatts)
         = (m.method, m.keys, m.opclasses, m.options, m.collations, m.expressions, m.predicate, m.indnkeyatts)
     -- the twin that stays must be valid: never call the only valid copy a duplicate
     WHERE m.protected_by IS NULL AND o.indisvalid
       AND (o.protected_by IS NOT NULL OR NOT m.indisvalid OR o.indexrelid < m.indexrelid)
     GROUP BY m.indexrelid
), covering AS (
    -- a wider index whose leading columns are exactly this index's columns
    SELECT m.indexrelid, pg_catalog.min(o.indexname) AS wider
      FROM measured m JOIN measured o
        ON o.indrelid = m.indrelid AND o.indexrelid <> m.indexrelid
       AND o.method = m.method AND o.predicate = m.predicate
       AND m.expressions = '' AND o.expressions = ''
       AND o.keys LIKE m.keys || ' %' AND o.opclasses LIKE m.opclasses || ' %'
       AND o.options LIKE m.options || ' %' AND o.collations LIKE m.collations || ' %'
     WHERE NOT m.indisunique AND m.method = 'btree' AND o.indisvalid
     GROUP BY m.indexrelid
), judged AS (
    SELECT m.*, tw.twin, cv.wider,
           m.watched >= 0.9 * LEAST(m.window_seconds, m.min_evidence) AS enough_evidence,
           m.scans / GREATEST(m.watched, 1) * 86400 AS scans_per_day,
           CASE
               WHEN NOT m.indisvalid THEN 'invalid'
               WHEN tw.twin IS NOT NULL THEN 'duplicate'
               WHEN cv.wider IS NOT NULL THEN 'redundant'
               WHEN m.scans = 0 AND m.watched >= 0.9 * LEAST(m.window_seconds, m.min_evidence) THEN 'unused'
               WHEN m.scans = 0 THEN 'insufficient_history'
               WHEN m.watched >= 0.9 * LEAST(m.window_seconds, m.min_evidence)
                    AND m.scans / GREATEST(m.watched, 1) * 86400 < m.rare_per_day THEN 'rarely_used'
               WHEN m.table_rows > 1000
                    AND m.tup_read::double precision / m.scans > m.low_selectivity * m.table_rows THEN 'low_selectivity'
               WHEN m.bloat_ratio > m.bloat_ratio_min AND m.bloat_bytes > m.bloat_bytes_min THEN 'bloated'
               ELSE 'effective'
           END AS status
      FROM measured m
      LEFT JOIN twins tw ON tw.indexrelid = m.indexrelid
      LEFT JOIN covering cv ON cv.indexrelid = m.indexrelid
)
SELECT j.schemaname, j.tablename, j.indexname, j.method,
       j.scans, j.scans / NULLIF(j.watched, 0), j.tup_read::double precision / NULLIF(j.scans, 0),
       j.index_bytes, j.table_bytes, j.index_bytes::double precision / NULLIF(j.table_bytes, 0),
       j.writes, j.watched, j.protected_by, j.status,
       CASE
           WHEN j.status = 'effective' THEN 'keep'
           WHEN j.status = 'insufficient_history' THEN
               pg_catalog.format('not scanned while watched for %s; judge again after %s of history',
                                 pg_catalog.make_interval(secs => pg_catalog.round(j.watched::numeric)),
                                 pg_catalog.make_interval(secs => 0.9 * LEAST(j.window_seconds, j.min_evidence)))
           WHEN j.status = 'invalid' THEN
               pg_catalog.format('REINDEX INDEX CONCURRENTLY %I.%I;  -- a failed CREATE INDEX CONCURRENTLY left it invalid: it is maintained on every write but never used',
                                 j.schemaname, j.indexname)
           WHEN j.status = 'bloated' THEN
               pg_catalog.format('REINDEX INDEX CONCURRENTLY %I.%I;  -- an estimated %s%% of it is free space',
                                 j.schemaname, j.indexname, pg_catalog.round((100 * j.bloat_ratio)::numeric))
           WHEN j.status = 'low_selectivity' AND j.protected_by IS NULL THEN
               pg_catalog.format('each scan reads %s%% of the table: consider a partial index or DROP INDEX CONCURRENTLY %I.%I;',
                                 pg_catalog.round((100 * j.tup_read / j.scans / NULLIF(j.table_rows, 0))::numeric, 1),
                                 j.schemaname, j.indexname)
           WHEN j.protected_by IS NOT NULL THEN
               pg_catalog.format('keep: it %s', j.protected_by)
           WHEN j.has_standbys THEN
               pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;  -- first check its scans on every standby (pg_stat_user_indexes there): they are not counted here',
                                 j.schemaname, j.indexname)
           ELSE
               pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;', j.schemaname, j.indexname)
       END,
       CASE j.status
           WHEN 'duplicate' THEN pg_catalog.format('same definition as %I', j.twin)
           WHEN 'redundant' THEN pg_catalog.format('its columns lead index %I, which serves the same lookups', j.wider)
           WHEN 'unused' THEN pg_catalog.format('0 scans on this server while watched for %s (scans on standbys are not counted)',
                                                pg_catalog.make_interval(secs => pg_catalog.round(j.watched::numeric)))
           WHEN 'rarely_used' THEN pg_catalog.format('%s scans per day on this server (threshold %s; scans on standbys are not counted) against %s table writes',
                                                    pg_catalog.round(j.scans_per_day::numeric, 2), j.rare_per_day, j.writes)
           WHEN 'invalid' THEN 'pg_index.indisvalid is false'
           WHEN 'bloated' THEN pg_catalog.format('%s bytes, where its %s rows (pg_class.reltuples) would fill about %s at its fillfactor (estimated from pg_stats): %s bytes of free space',
                                                j.index_bytes, (SELECT pg_catalog.round(c.reltuples) FROM pg_catalog.pg_class c WHERE c.oid = j.indexrelid),
                                                j.expected_bytes, j.bloat_bytes)
           ELSE pg_catalog.format('%s scans in %s of watching', j.scans, pg_catalog.make_interval(secs => pg_catalog.round(j.watched::numeric)))
       END
  FROM judged j
 ORDER BY CASE j.status WHEN 'effective' THEN 1 ELSE 0 END, j.schemaname, j.tablename, j.indexname
$$;

-- Computed by _compute_index_effectiveness once per statement: the health score and the report
-- both read it (src/api/memo.rs).
CREATE FUNCTION @extschema@.index_effectiveness(analysis_window interval)
RETURNS TABLE (
    schemaname text, tablename text, indexname text, index_method text,
    scans_in_window bigint, scans_per_second double precision, tuples_read_per_scan double precision,
    index_bytes bigint, table_bytes bigint, size_ratio double precision,
    table_writes_in_window bigint, watched_seconds double precision,
    protected_by text, index_status text, recommendation text, evidence text)
LANGUAGE c STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'dbanalytics_memoized';

CREATE VIEW @extschema@.index_effectiveness AS
SELECT * FROM @extschema@.index_effectiveness(interval '7 days');

-- Constraints of the current database a DBA should act on (issue 17, the checks PgHero has):
-- a foreign key with no index leading with its columns (every DELETE or key UPDATE on the
-- parent scans the child), and a constraint added NOT VALID and never validated (existing
-- rows are not checked, and the planner cannot rely on it).
CREATE VIEW @extschema@.constraint_checks AS
WITH constraints AS (
    SELECT k.oid, k.conname::pg_catalog.text AS constraint_name, k.contype, k.convalidated, k.conrelid, k.confrelid, k.conkey,
           n.nspname::pg_catalog.text AS schemaname, t.relname::pg_catalog.text AS tablename
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_class t ON t.oid = k.conrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
     WHERE k.contype IN ('f', 'c') AND k.conparentid = 0
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', '@extschema@')
       AND n.nspname !~ '^pg_(toast|temp_)'
), unindexed AS (
    SELECT c.*,
           (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY x.ord)
              FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS x(attnum, ord)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = x.attnum) AS columns
      FROM constraints c
     WHERE c.contype = 'f'
       AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_index i
            WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
              AND pg_catalog.cardinality(c.conkey) <= i.indnkeyatts
              AND NOT EXISTS (SELECT FROM pg_catalog.unnest(c.conkey) AS x(attnum)
                               WHERE COALESCE(pg_catalog.array_position(i.indkey::pg_catalog.int2[], x.attnum)
                                              - pg_catalog.array_lower(i.indkey::pg_catalog.int2[], 1), 2147483647)
                                     >= pg_catalog.cardinality(c.conkey)))
)
SELECT u.schemaname, u.tablename, u.constraint_name, 'foreign_key_without_index'::pg_catalog.text AS issue,
       pg_catalog.format('no index on %I.%I leads with (%s): every DELETE or key UPDATE on %s scans the whole table, and joins on the key cannot use an index',
                         u.schemaname, u.tablename, u.columns, u.confrelid::pg_catalog.regclass) AS detail,
       pg_catalog.format('CREATE INDEX CONCURRENTLY ON %I.%I (%s);', u.schemaname, u.tablename, u.columns) AS recommendation
  FROM unindexed u
UNION ALL
SELECT c.schemaname, c.tablename, c.constraint_name, 'not_valid',
       pg_catalog.format('%s constraint added NOT VALID and never validated: rows that existed before are not checked',
                         CASE WHEN c.contype OPERATOR(pg_catalog.=) 'f' THEN 'foreign key' ELSE 'check' END),
       pg_catalog.format('ALTER TABLE %I.%I VALIDATE CONSTRAINT %I;  -- takes only a SHARE UPDATE EXCLUSIVE lock',
                         c.schemaname, c.tablename, c.constraint_name)
  FROM constraints c
 WHERE NOT c.convalidated
 ORDER BY 1, 2, 3, 4;

-- Live table health of the current database: access pattern, vacuum, bloat, wraparound.
-- missing_index is judged from the scans of the last missing_index_window (the collector's
-- table_stats plus the live counters since its last snapshot), so that it clears once an index
-- serves the scans (issue 17); a table the collector has not seen is judged from the
-- cumulative counters, as the server keeps them since the last statistics reset.
CREATE VIEW @extschema@.table_maintenance AS
WITH args AS (
    SELECT @extschema@._threshold('seq_scan_rows_missing_index') AS missing_index_rows,
           @extschema@._threshold('dead_tuple_ratio') AS dead_ratio,
           @extschema@._threshold('xid_age_warning') AS xid_warning,
           @extschema@._threshold('missing_index_window')::double precision AS missing_index_window_s,
           pg_catalog.now() - pg_catalog.make_interval(secs => @extschema@._threshold('missing_index_window')::double precision) AS since
), recent AS (
    SELECT w.relid, w.seq_scan, w.seq_tup_read, w.idx_scan
      FROM args a, @extschema@._table_totals(a.since, pg_catalog.now()) w
), tables AS (
    SELECT s.relid, s.schemaname::pg_catalog.text, s.relname::pg_catalog.text AS tablename, s.seq_scan, s.seq_tup_read,
           COALESCE(s.idx_scan, 0) AS idx_scan, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
           s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
           @extschema@._relation_size_nowait(s.relid, true) AS table_bytes,
           pg_catalog.age(c.relfrozenxid) AS xid_age,
           k.relid IS NOT NULL AS watched,
           -- scans in the window: recorded ones plus those since the last snapshot (all live
           -- ones after a reset, which put the counter below the remembered value)
           CASE WHEN k.relid IS NULL THEN s.seq_scan
                ELSE COALESCE(r.seq_scan, 0) + CASE WHEN s.seq_scan >= k.seq_scan THEN s.seq_scan - k.seq_scan ELSE s.seq_scan END
           END AS window_seq_scan,
           CASE WHEN k.relid IS NULL THEN s.seq_tup_read
                ELSE COALESCE(r.seq_tup_read, 0)
                     + CASE WHEN s.seq_tup_read >= k.seq_tup_read THEN s.seq_tup_read - k.seq_tup_read ELSE s.seq_tup_read END
           END AS window_seq_tup_read,
           CASE WHEN k.relid IS NULL THEN COALESCE(s.idx_scan, 0)
                ELSE COALESCE(r.idx_scan, 0)
                     + CASE WHEN COALESCE(s.idx_scan, 0) >= COALESCE(k.idx_scan, 0) THEN COALESCE(s.idx_scan, 0) - COALESCE(k.idx_scan, 0)
                            ELSE COALESCE(s.idx_scan, 0) END
           END AS window_idx_scan
      FROM pg_catalog.pg_stat_user_tables s
      JOIN pg_catalog.pg_class c ON c.oid = s.relid
      LEFT JOIN @extschema@.table_counters k ON k.relid = s.relid
      LEFT JOIN recent r ON r.relid = s.relid
     WHERE s.schemaname <> '@extschema@'
), judged AS (
    SELECT t.*, a.*,
           t.window_seq_scan > t.window_idx_scan
               AND t.window_seq_tup_read::numeric / NULLIF(t.window_seq_scan, 0) > a.missing_index_rows AS missing_index
      FROM tables t CROSS JOIN args a
)
SELECT t.schemaname, t.tablename, t.seq_scan, t.idx_scan,
       t.seq_scan::double precision / NULLIF(t.seq_scan + t.idx_scan, 0) AS seq_scan_ratio,
       t.seq_tup_read::double precision / NULLIF(t.seq_scan, 0) AS rows_per_seq_scan,
       t.n_live_tup, t.n_dead_tup,
       t.n_dead_tup::double precision / NULLIF(t.n_live_tup + t.n_dead_tup, 0) AS dead_tuple_ratio,
       t.n_mod_since_analyze, t.last_vacuum, t.last_autovacuum, t.last_analyze, t.last_autoanalyze,
       t.table_bytes,
       (t.table_bytes * t.n_dead_tup::double precision / NULLIF(t.n_live_tup + t.n_dead_tup, 0))::bigint
           AS estimated_bloat_bytes,
       t.xid_age,
       2147483647 - t.xid_age AS wraparound_headroom,
       pg_catalog.array_remove(ARRAY[
           CASE WHEN t.missing_index THEN 'missing_index' END,
           CASE WHEN t.n_dead_tup > 1000 AND t.n_dead_tup > t.dead_ratio * (t.n_live_tup + t.n_dead_tup)
                THEN 'needs_vacuum' END,
           CASE WHEN t.n_mod_since_analyze > GREATEST(1000, 0.2 * t.n_live_tup)
                THEN 'needs_analyze' END,
           CASE WHEN t.xid_age > t.xid_warning * 2147483647 THEN 'wraparound_risk' END
       ], NULL) AS issues,
       pg_catalog.concat_ws(' ',
           CASE WHEN t.missing_index
                THEN pg_catalog.format('Sequential scans read %s rows each (%s scans %s): find the filter in top_queries() and index it.',
                                       pg_catalog.round(t.window_seq_tup_read::numeric / t.window_seq_scan), t.window_seq_scan,
                                       CASE WHEN t.watched THEN 'in the last ' || pg_catalog.make_interval(secs => t.missing_index_window_s)::pg_catalog.text
                                            ELSE 'since the statistics were reset' END) END,
           CASE WHEN t.n_dead_tup > 1000 AND t.n_dead_tup > t.dead_ratio * (t.n_live_tup + t.n_dead_tup)
                THEN pg_catalog.format('VACUUM (ANALYZE) %I.%I;', t.schemaname, t.tablename) END,
           CASE WHEN t.n_mod_since_analyze > GREATEST(1000, 0.2 * t.n_live_tup)
                     AND NOT (t.n_dead_tup > 1000 AND t.n_dead_tup > t.dead_ratio * (t.n_live_tup + t.n_dead_tup))
                THEN pg_catalog.format('ANALYZE %I.%I;', t.schemaname, t.tablename) END,
           CASE WHEN t.xid_age > t.xid_warning * 2147483647
                THEN pg_catalog.format('VACUUM (FREEZE) %I.%I;  -- %s transactions from wraparound',
                                       t.schemaname, t.tablename, 2147483647 - t.xid_age) END
       ) AS recommendation,
       t.window_seq_scan AS seq_scans_in_window, t.window_seq_tup_read AS seq_rows_in_window,
       t.window_idx_scan AS idx_scans_in_window
  FROM judged t
 ORDER BY t.n_dead_tup DESC;

-- Sequences, measured against the narrowest column they feed (issue 17, as PgHero does): an
-- integer column fed by a bigint sequence fails at 2^31 - 1, long before the sequence does.
CREATE VIEW @extschema@.sequence_usage AS
SELECT u.schemaname, u.sequencename, u.data_type, u.last_value, u.min_value, u.max_value, u.increment_by,
       u.used_ratio, u.cycle,
       CASE WHEN NOT u.cycle AND u.used_ratio > @extschema@._threshold('sequence_exhaustion')
            THEN 'near_exhaustion' ELSE 'ok' END AS status,
       u.column_limit, u.used_by
  FROM (SELECT s.schemaname, s.sequencename, s.data_type, s.last_value, s.min_value,
               s.max_value, s.increment_by, s.cycle, s.column_limit, s.used_by,
               -- the share of the range already used, in the direction the sequence moves, up to
               -- the end of the range or the narrowest column's limit, whichever comes first
               CASE WHEN s.increment_by > 0
                    THEN (COALESCE(s.last_value, s.start_value) - s.min_value)::double precision
                         / NULLIF(LEAST(s.max_value, s.column_limit)::double precision - s.min_value, 0)
                    ELSE (s.max_value - COALESCE(s.last_value, s.start_value))::double precision
                         / NULLIF(s.max_value - GREATEST(s.min_value::double precision, -s.column_limit::double precision - 1), 0)
               END AS used_ratio
          FROM (SELECT q.schemaname::pg_catalog.text, q.sequencename::pg_catalog.text, q.data_type::pg_catalog.text,
                       q.last_value, q.start_value, q.min_value, q.max_value, q.increment_by, q.cycle,
                       c.column_limit, c.used_by
                  FROM pg_catalog.pg_sequences q
                  JOIN pg_catalog.pg_namespace n ON n.nspname = q.schemaname
                  JOIN pg_catalog.pg_class sc ON sc.relnamespace = n.oid AND sc.relname = q.sequencename
                  LEFT JOIN LATERAL (
                      -- the columns it feeds: owned (serial, identity) or named in a DEFAULT
                      SELECT pg_catalog.min(CASE WHEN a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.int2'::pg_catalog.regtype THEN 32767
                                                            WHEN a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647
                                                            ELSE 9223372036854775807 END) AS column_limit,
                             pg_catalog.string_agg(DISTINCT pg_catalog.format('%s.%I (%s)', f.relid::pg_catalog.regclass, a.attname,
                                                                              pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ') AS used_by
                        FROM (SELECT d.refobjid AS relid, d.refobjsubid AS attnum
                                FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = sc.oid
                                 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
                                 AND d.deptype IN ('a', 'i')
                              UNION
                              SELECT ad.adrelid, ad.adnum
                                FROM pg_catalog.pg_depend d
                                JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
                               WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
                                 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = sc.oid) f
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = f.relid AND a.attnum = f.attnum
                       WHERE a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,
                                            'pg_catalog.int8'::pg_catalog.regtype)) c ON true
                 WHERE q.schemaname <> '@extschema@') s) u;

-- Buffer cache hit ratios: per hour and database, per table and index over the window, and the
-- statements that read the most blocks from outside shared buffers.
CREATE FUNCTION @extschema@.cache_analytics(analysis_window interval)
RETURNS TABLE (level text, hour timestamptz, object_name text, blks_hit bigint, blks_read bigint,
               hit_ratio double precision, queryid bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (SELECT pg_catalog.now() - analysis_window AS since)
SELECT * FROM (
    SELECT 'database'::text, pg_catalog.date_trunc('hour', d.interval_end), d.datname,
           pg_catalog.sum(d.blks_hit)::bigint, pg_catalog.sum(d.blks_read)::bigint,
           pg_catalog.sum(d.blks_hit)::double precision / NULLIF(pg_catalog.sum(d.blks_hit + d.blks_read), 0),
           NULL::bigint
      FROM @extschema@.database_stats d, args a WHERE d.interval_end > a.since
     GROUP BY 2, 3
    ORDER BY 2, 3) per_database
UNION ALL
SELECT * FROM (
    SELECT 'table', NULL::timestamptz, pg_catalog.format('%I.%I', t.schemaname, t.relname),
           pg_catalog.sum(t.heap_blks_hit)::bigint, pg_catalog.sum(t.heap_blks_read)::bigint,
           pg_catalog.sum(t.heap_blks_hit)::double precision / NULLIF(pg_catalog.sum(t.heap_blks_hit + t.heap_blks_read), 0),
           NULL::bigint
      FROM args a, @extschema@._table_totals(a.since, pg_catalog.now()) t
     GROUP BY 3 HAVING pg_catalog.sum(t.heap_blks_hit + t.heap_blks_read) > 0
    ORDER BY 5 DESC LIMIT 50) per_table
UNION ALL
SELECT * FROM (
    SELECT 'index', NULL::timestamptz, pg_catalog.format('%I.%I', i.schemaname, i.indexrelname),
           pg_catalog.sum(i.idx_blks_hit)::bigint, pg_catalog.sum(i.idx_blks_read)::bigint,
           pg_catalog.sum(i.idx_blks_hit)::double precision / NULLIF(pg_catalog.sum(i.idx_blks_hit + i.idx_blks_read), 0),
           NULL::bigint
      FROM args a, @extschema@._index_totals(a.since, pg_catalog.now()) i
     GROUP BY 3 HAVING pg_catalog.sum(i.idx_blks_hit + i.idx_blks_read) > 0
    ORDER BY 5 DESC LIMIT 50) per_index
UNION ALL
SELECT * FROM (
    -- worst statements, weighted by how many blocks they had to read
    SELECT 'statement', NULL::timestamptz, pg_catalog.left(COALESCE(tx.query, '<query text not collected>'), 200),
           pg_catalog.sum(s.shared_blks_hit)::bigint, pg_catalog.sum(s.shared_blks_read)::bigint,
           pg_catalog.sum(s.shared_blks_hit)::double precision / NULLIF(pg_catalog.sum(s.shared_blks_hit + s.shared_blks_read), 0),
           s.queryid
      FROM args a
     CROSS JOIN @extschema@._statement_totals(a.since, pg_catalog.now()) s
      LEFT JOIN @extschema@.statement_texts tx USING (dbid, userid, queryid, toplevel)
     GROUP BY s.dbid, s.userid, s.queryid, s.toplevel, tx.query
    HAVING pg_catalog.sum(s.shared_blks_read) > 0
     ORDER BY 5 DESC LIMIT 20) per_statement
$$;

CREATE VIEW @extschema@.cache_analytics AS
SELECT * FROM @extschema@.cache_analytics(interval '1 day');

-- Replication seen from this server: standbys and slots on a primary, the WAL receiver on a
-- standby, and always one summary row (so a server without replicas answers, not errors).
CREATE FUNCTION @extschema@.replication_analytics(analysis_window interval)
RETURNS TABLE (kind text, name text, state text, sync_state text,
               write_lag_seconds double precision, flush_lag_seconds double precision,
               replay_lag_seconds double precision, replay_lag_bytes bigint,
               max_replay_lag_seconds_in_window double precision,
               avg_replay_lag_seconds_in_window double precision,
               retained_bytes bigint, max_retained_bytes_in_window bigint, active boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@._window_start(analysis_window);  -- argument check, even with no history
WITH args AS (SELECT pg_catalog.now() - analysis_window AS since,
                     pg_catalog.pg_is_in_recovery() AS standby),
history AS (
    SELECT r.application_name, pg_catalog.max(r.replay_lag_s) AS max_lag, pg_catalog.avg(r.replay_lag_s) AS avg_lag
      FROM @extschema@.replication_stats r, args a WHERE r.interval_end > a.since
     GROUP BY r.application_name
), slot_history AS (
    SELECT s.slot_name, pg_catalog.max(s.retained_bytes) AS max_retained
      FROM @extschema@.replication_slot_stats s, args a WHERE s.interval_end > a.since
     GROUP BY s.slot_name
)
SELECT 'summary'::text, CASE WHEN a.standby THEN 'standby' ELSE 'primary' END, NULL::text, NULL::text,
       NULL::double precision, NULL::double precision,
       CASE WHEN a.standby THEN EXTRACT(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())::double precision END,
       NULL::bigint, NULL::double precision, NULL::double precision, NULL::bigint, NULL::bigint,
       NULL::boolean,
       pg_catalog.format('%s standby(s) connected, %s replication slot(s)',
                         (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication),
                         (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots))
  FROM args a
UNION ALL
SELECT 'standby', COALESCE(r.application_name, r.client_addr::text), r.state, r.sync_state,
       EXTRACT(epoch FROM r.write_lag)::double precision, EXTRACT(epoch FROM r.flush_lag)::double precision,
       EXTRACT(epoch FROM r.replay_lag)::double precision,
       CASE WHEN NOT pg_catalog.pg_is_in_recovery()
            THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)::bigint END,
       h.max_lag, h.avg_lag, NULL, NULL, true,
       pg_catalog.format('client %s, sent %s, replayed %s', r.client_addr, r.sent_lsn, r.replay_lsn)
  FROM pg_catalog.pg_stat_replication r
  LEFT JOIN history h ON h.application_name = r.application_name
UNION ALL
SELECT 'slot', s.slot_name::text, s.wal_status, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL
            ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint END,
       sh.max_retained, s.active,
       CASE WHEN NOT s.active THEN 'inactive slot: it retains WAL until dropped (pg_drop_replication_slot) or used again'
            ELSE pg_catalog.format('%s slot', s.slot_type) END
  FROM pg_catalog.pg_replication_slots s
  LEFT JOIN slot_history sh ON sh.slot_name = s.slot_name
UNION ALL
SELECT 'wal_receiver', w.sender_host, w.status, NULL, NULL, NULL,
       EXTRACT(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())::double precision,
       pg_catalog.pg_wal_lsn_diff(w.flushed_lsn, pg_catalog.pg_last_wal_replay_lsn())::bigint,
       NULL, NULL, NULL, NULL, true,
       pg_catalog.format('receiving from %s:%s since %s, last message %s', w.sender_host, w.sender_port,
                         w.last_msg_send_time, w.last_msg_receipt_time)
  FROM pg_catalog.pg_stat_wal_receiver w
$$;

CREATE VIEW @extschema@.replication_analytics AS
SELECT * FROM @extschema@.replication_analytics(interval '1 hour');
