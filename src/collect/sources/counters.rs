//! The counter sources: each reads a cumulative statistics view, decides whether the interval
//! since its previous snapshot is a plain delta or a reset (`epoch.rs`) and has its
//! `_snapshot_*` function (sql/snapshots.sql) write the deltas.

use super::super::epoch::{self, Epoch, Interval};
use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::spi;
use pgrx::datum::DatumWithOid;

/// Reads a source's current epoch (`epoch_sql`, with `epoch_args`) and the one stored with its
/// previous snapshot, and classifies the interval between them. Returns the verdict and the
/// current epoch, which the source's SQL stores with its snapshot (`_remember_epoch`).
pub(crate) fn read_interval(
    source: &str,
    epoch_sql: &str,
    epoch_args: &[DatumWithOid],
) -> Result<(Interval, Epoch), SourceError> {
    let current = epoch_row(epoch_sql, epoch_args)
        .map_err(spi_error)?
        .unwrap_or_default();
    let stored = epoch_row(
        "SELECT s.server_life, s.stats_reset, s.dealloc
           FROM dbanalytics.source_state s WHERE s.source OPERATOR(pg_catalog.=) $1",
        &[source.into()],
    )
    .map_err(spi_error)?;
    Ok((epoch::classify(stored.as_ref(), &current), current))
}

/// The epoch in the first row of a query returning (server_life, stats_reset, dealloc).
fn epoch_row(sql: &str, args: &[DatumWithOid]) -> Result<Option<Epoch>, pgrx::spi::Error> {
    Ok(spi::select_row3::<String, String, i64>(sql, args)?.map(
        |(server_life, stats_reset, dealloc)| Epoch {
            server_life,
            stats_reset,
            dealloc,
        },
    ))
}

/// The epoch as three SPI arguments (server_life, stats_reset, dealloc), as `_snapshot_source`
/// and `_remember_epoch` take them.
pub(crate) fn epoch_arguments(epoch: &Epoch) -> [DatumWithOid<'static>; 3] {
    [
        epoch.server_life.clone().into(),
        epoch.stats_reset.clone().into(),
        epoch.dealloc.into(),
    ]
}

/// Classifies the interval and has `_snapshot_source` (sql/snapshots.sql) write the source's
/// deltas with that verdict and store the new epoch — all in the caller's subtransaction, so a
/// failure leaves the previous state. `judge` adjusts the verdict for the source (`per_object`);
/// `pgss_schema` is where pg_stat_statements lives (statements only).
pub(crate) fn snapshot_counters(
    source: &str,
    (epoch_sql, epoch_args): (&str, &[DatumWithOid]),
    judge: fn(&Interval) -> Interval,
    pgss_schema: Option<&str>,
) -> Result<Collected, SourceError> {
    let (interval, current) = read_interval(source, epoch_sql, epoch_args)?;
    let verdict = judge(&interval);
    let [server_life, stats_reset, dealloc] = epoch_arguments(&current);
    let rows = spi::execute_returning_with_args::<i64>(
        "SELECT dbanalytics._snapshot_source($1, $2, $3, $4, $5, $6, $7)",
        &[
            source.into(),
            verdict.is_reset().into(),
            verdict.counters_zeroed().into(),
            server_life,
            stats_reset,
            dealloc,
            pgss_schema.into(),
        ],
    )
    .map_err(spi_error)?
    .unwrap_or(0);
    Ok(Collected {
        rows,
        interval,
        skipped: None,
    })
}

/// The verdict as it is, for the sources whose counters are all reset together.
pub(crate) fn as_judged(interval: &Interval) -> Interval {
    interval.clone()
}

/// Epoch queries return times as exact epoch seconds (numeric text): independent of TimeZone.
pub(crate) const POSTMASTER_ONLY_EPOCH: &str =
    "SELECT dbanalytics._server_life(), NULL::text, NULL::bigint";

/// The current database's stats_reset covers its tables and indexes.
pub(crate) const DATABASE_EPOCH: &str = "SELECT dbanalytics._server_life(),
        EXTRACT(epoch FROM d.stats_reset)::text, NULL::bigint
   FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database()";

pub(crate) fn snapshot_statements() -> Result<Collected, SourceError> {
    let schema = spi::select_one::<String>(
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_stat_statements'",
    )
    .map_err(spi_error)?;
    let Some(schema) = schema else {
        return Ok(Collected::skipped(
            "pg_stat_statements is not installed in this database: \
                 CREATE EXTENSION pg_stat_statements (and preload it) to collect statements",
        ));
    };
    // pg_stat_statements_info's reset time and evictions, where its version has them (versions.sql)
    let epoch_sql = "SELECT dbanalytics._server_life(), e.stats_reset, e.dealloc
                       FROM dbanalytics._statements_epoch($1) e";
    snapshot_counters(
        "statements",
        (epoch_sql, &[schema.as_str().into()]),
        as_judged,
        Some(&schema),
    )
}

pub(crate) fn snapshot_databases() -> Result<Collected, SourceError> {
    snapshot_counters("databases", (POSTMASTER_ONLY_EPOCH, &[]), as_judged, None)
}

/// A database's stats_reset also moves when only one table's counters are reset
/// (`pg_stat_reset_single_table_counters()` on PostgreSQL 15), so for per-object counters it
/// never means that every counter went to zero: the interval is marked as a reset and each
/// counter is judged by itself (counter_delta: one that went down yields its current value).
/// After a full `pg_stat_reset()` a counter that has already passed its old value is thus
/// undercounted for one interval, never overcounted.
pub(crate) fn per_object(interval: &Interval) -> Interval {
    match interval {
        Interval::Reset { reason, .. } => Interval::Reset {
            counters_zeroed: false,
            reason,
        },
        other => other.clone(),
    }
}

pub(crate) fn snapshot_tables() -> Result<Collected, SourceError> {
    snapshot_counters("tables", (DATABASE_EPOCH, &[]), per_object, None)
}

pub(crate) fn snapshot_indexes() -> Result<Collected, SourceError> {
    snapshot_counters("indexes", (DATABASE_EPOCH, &[]), per_object, None)
}

pub(crate) fn snapshot_bgwriter() -> Result<Collected, SourceError> {
    // pg_stat_bgwriter's reset time up to 16; none from 17 (versions.sql says why)
    let epoch_sql =
        "SELECT dbanalytics._server_life(), dbanalytics._bgwriter_epoch(), NULL::bigint";
    snapshot_counters("bgwriter", (epoch_sql, &[]), as_judged, None)
}

/// pg_stat_io, on the servers that have it (versions.sql says which).
pub(crate) fn snapshot_io() -> Result<Collected, SourceError> {
    let unavailable = spi::select_one::<String>("SELECT dbanalytics._source_unavailable('io')")
        .map_err(spi_error)?;
    if let Some(reason) = unavailable {
        return Ok(Collected::skipped(reason));
    }
    let epoch_sql = "SELECT dbanalytics._server_life(), dbanalytics._io_epoch(), NULL::bigint";
    snapshot_counters("io", (epoch_sql, &[]), as_judged, None)
}

/// Gauges: the interval only dates the rows, a reset changes nothing.
pub(crate) fn snapshot_replication() -> Result<Collected, SourceError> {
    snapshot_counters("replication", (POSTMASTER_ONLY_EPOCH, &[]), as_judged, None)
        .map(|collected| Collected::rows(collected.rows))
}

pub(crate) fn snapshot_replication_slots() -> Result<Collected, SourceError> {
    snapshot_counters(
        "replication_slots",
        (POSTMASTER_ONLY_EPOCH, &[]),
        as_judged,
        None,
    )
    .map(|collected| Collected::rows(collected.rows))
}

/// The server's transaction counters, WAL position, disk space and host figures.
pub(crate) fn snapshot_server() -> Result<Collected, SourceError> {
    let rows = spi::execute_returning::<i64>("SELECT dbanalytics._snapshot_server()")
        .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}
