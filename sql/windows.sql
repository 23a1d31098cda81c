-- dbanalytics: the rollup boundaries (UTC hours and days) and how far each tier is rolled up,
-- which the rollups and every analytic that splits a window between tiers use.

-- Rollup boundaries are whole multiples of an hour (or a day) since the Unix epoch, i.e. UTC
-- hours and UTC days, whatever the session's TimeZone: the collector and every reader cut the
-- same hours. _time_ceil gives the boundary at or after ts (the end of the rollup row holding an
-- interval that ends at ts: a row ending at E holds (E - width, E]), _time_floor the one at or
-- before ts.
CREATE FUNCTION @extschema@._time_ceil(ts timestamptz, width_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_timestamp((pg_catalog.ceil(EXTRACT(epoch FROM ts) OPERATOR(pg_catalog./) width_seconds)
                                    OPERATOR(pg_catalog.*) width_seconds)::double precision)
$$;

CREATE FUNCTION @extschema@._time_floor(ts timestamptz, width_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_timestamp((pg_catalog.floor(EXTRACT(epoch FROM ts) OPERATOR(pg_catalog./) width_seconds)
                                    OPERATOR(pg_catalog.*) width_seconds)::double precision)
$$;

-- How far the rollups have got (source_state updated_at of 'rollup', 'hours' or 'days'), for
-- the analytics of readers, who may not read source_state itself.
CREATE FUNCTION @extschema@._rolled_until(rollup text)
RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.updated_at FROM @extschema@.source_state s
     WHERE s.source = rollup AND rollup IN ('rollup', 'hours', 'days')
$$;

-- Which part of (since, until] the rollups serve. The hourly rollups serve (lo, hi], the whole
-- hours inside the window rolled up so far, and the per-snapshot tables (since, lo] and
-- (hi, until]. Within (lo, hi], statement_daily serves (day_lo, day_hi], the whole UTC days
-- rolled up so far, and the hourly rollup the rest.
CREATE FUNCTION @extschema@._rollup_span(since timestamptz, until timestamptz,
                                         OUT lo timestamptz, OUT hi timestamptz,
                                         OUT day_lo timestamptz, OUT day_hi timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.lo, h.hi, d.day_lo,
           GREATEST(d.day_lo, LEAST(@extschema@._time_floor(h.hi, 86400),
                                    COALESCE(@extschema@._rolled_until('days'), d.day_lo)))
      FROM (SELECT b.lo,
                   GREATEST(b.lo, LEAST(@extschema@._time_floor(until, 3600),
                                        COALESCE(@extschema@._rolled_until('hours'), b.lo))) AS hi
              FROM (SELECT @extschema@._time_ceil(since, 3600) AS lo) b) h
     CROSS JOIN LATERAL (SELECT LEAST(@extschema@._time_ceil(h.lo, 86400), h.hi) AS day_lo) d
$$;
