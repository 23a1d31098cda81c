-- dbanalytics: what the monitor costs on disk, per table and retention tier (docs/storage.md).

-- One row per table of the extension: its tier (the dbanalytics.retention_* setting that keeps
-- it; 'state' for the tables that do not grow with time: texts, keys, collector state), its
-- partitions, rows (pg_class.reltuples, as of the last ANALYZE or VACUUM of each partition),
-- bytes on disk (pg_total_relation_size: indexes and TOAST included), the oldest and newest
-- row, and the standing size projected from the rate so far: bytes per day of history covered
-- times the retention. The raw tier has no B-tree on its time column: its oldest and newest
-- times are read from the first and last pages of its oldest and newest non-empty partitions
-- (rows are only ever appended, in time order), so that this view never scans a day of samples.
-- Rows are read through the parent tables, with the caller's privileges.
CREATE FUNCTION @extschema@.storage_usage()
RETURNS TABLE (tier text, table_name text, retention interval, partitions integer,
               rows_estimated bigint, bytes bigint, oldest timestamptz, newest timestamptz,
               bytes_per_day bigint, projected_bytes bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    part record;
    time_column name;
    btree boolean;
    last_row timestamptz;
    covered double precision;
BEGIN
    FOR t IN
        SELECT s.table_name, s.tier, s.retention_seconds, p.oid AS relid
          FROM @extschema@._storage_tiers() WITH ORDINALITY AS s(table_name, tier, retention_seconds, ord)
          JOIN pg_catalog.pg_class p
            ON p.relname OPERATOR(pg_catalog.=) s.table_name
           AND p.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
         ORDER BY s.ord
    LOOP
        tier := t.tier;
        table_name := t.table_name;
        retention := pg_catalog.make_interval(secs => t.retention_seconds);
        SELECT a.attname INTO time_column
          FROM pg_catalog.pg_partitioned_table pt
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) pt.partrelid AND a.attnum OPERATOR(pg_catalog.=) pt.partattrs[0]
         WHERE pt.partrelid OPERATOR(pg_catalog.=) t.relid;
        SELECT pg_catalog.count(*)::integer,
               COALESCE(pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint,
               COALESCE(pg_catalog.sum(GREATEST(c.reltuples, 0)), 0)::bigint
          INTO partitions, bytes, rows_estimated
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
         WHERE i.inhparent OPERATOR(pg_catalog.=) t.relid;
        SELECT NOT EXISTS (SELECT FROM @extschema@.partition_indexes x
                            WHERE x.parent OPERATOR(pg_catalog.=) t.table_name
                              AND x.definition OPERATOR(pg_catalog.~~) 'USING brin%')
          INTO btree;
        oldest := NULL;
        newest := NULL;
        IF btree THEN
            -- min() and max() of a B-tree indexed column: one index probe per partition
            EXECUTE pg_catalog.format('SELECT pg_catalog.min(%1$I), pg_catalog.max(%1$I) FROM %2$s',
                                      time_column, t.relid::pg_catalog.regclass)
               INTO oldest, newest;
        ELSE
            FOR part IN
                SELECT pg_catalog.pg_relation_size(c.oid) AS size,
                       pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD')::timestamp
                           AT TIME ZONE 'UTC' AS lo
                  FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                 WHERE i.inhparent OPERATOR(pg_catalog.=) t.relid
                   AND pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog.>) 0
                 ORDER BY c.relname
            LOOP
                -- through the parent (the caller's privileges), pruned to the one partition
                IF oldest IS NULL THEN
                    EXECUTE pg_catalog.format(
                        'SELECT pg_catalog.min(%1$I) FROM %2$s WHERE %1$I OPERATOR(pg_catalog.>=) $1
                            AND %1$I OPERATOR(pg_catalog.<) $2 AND ctid OPERATOR(pg_catalog.<) ''(8,0)''::pg_catalog.tid',
                        time_column, t.relid::pg_catalog.regclass)
                       INTO oldest USING part.lo, part.lo OPERATOR(pg_catalog.+) interval '1 day';
                END IF;
                EXECUTE pg_catalog.format(
                    'SELECT pg_catalog.max(%1$I) FROM %2$s WHERE %1$I OPERATOR(pg_catalog.>=) $1
                        AND %1$I OPERATOR(pg_catalog.<) $2 AND ctid OPERATOR(pg_catalog.>=) $3::pg_catalog.tid',
                    time_column, t.relid::pg_catalog.regclass)
                   INTO last_row
                  USING part.lo, part.lo OPERATOR(pg_catalog.+) interval '1 day',
                        pg_catalog.format('(%s,0)', GREATEST(part.size OPERATOR(pg_catalog./) 8192 OPERATOR(pg_catalog.-) 8, 0));
                newest := COALESCE(last_row, newest);
            END LOOP;
        END IF;
        covered := EXTRACT(epoch FROM newest OPERATOR(pg_catalog.-) oldest);
        IF covered OPERATOR(pg_catalog.>=) 3600 THEN
            bytes_per_day := (bytes OPERATOR(pg_catalog.*) 86400.0 OPERATOR(pg_catalog./) covered)::bigint;
            projected_bytes := (bytes_per_day OPERATOR(pg_catalog.*) t.retention_seconds OPERATOR(pg_catalog./) 86400.0)::bigint;
        ELSE
            bytes_per_day := NULL;  -- less than an hour of history: no rate yet
            projected_bytes := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;

    -- the tables that do not grow with time
    FOR t IN
        SELECT c.relname::text AS table_name, c.oid AS relid, c.reltuples
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r' AND NOT c.relispartition
         ORDER BY c.relname
    LOOP
        tier := 'state';
        table_name := t.table_name;
        retention := NULL;
        partitions := NULL;
        rows_estimated := GREATEST(t.reltuples, 0)::bigint;
        bytes := pg_catalog.pg_total_relation_size(t.relid);
        oldest := NULL;
        newest := NULL;
        bytes_per_day := NULL;
        projected_bytes := bytes;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE VIEW @extschema@.storage_usage AS
SELECT * FROM @extschema@.storage_usage();
