//! The counter sources: each reads a cumulative statistics view, decides whether the interval
//! since its previous snapshot is a plain delta or a reset (`epoch.rs`) and has its
//! `_snapshot_*` function (sql/snapshots.sql) write the deltas.

use super::super::epoch::{self, Epoch, Interval};
use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::spi;
use pgrx::prelude::*;

/// Reads a source's epoch and classifies the interval since its previous snapshot. Returns the
/// verdict, the previous snapshot's time (a timestamptz literal, or None the first time) and the
/// current epoch, to be stored with `remember_epoch` once the snapshot is written.
pub(crate) fn read_interval(
    source: &str,
    epoch_sql: &str,
) -> Result<(Interval, Option<String>, Epoch), SourceError> {
    let current = Spi::get_three::<String, String, i64>(epoch_sql)
        .map(|(server_life, stats_reset, dealloc)| Epoch {
            server_life,
            stats_reset,
            dealloc,
        })
        .map_err(spi_error)?;
    let stored = Spi::connect(|client| {
        let table = client.select(
            &format!(
                "SELECT server_life, stats_reset, dealloc, updated_at::text
                   FROM dbanalytics.source_state WHERE source = {}",
                spi::literal(Some(source))
            ),
            Some(1),
            &[],
        )?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::Error>(None);
        }
        let row = table.first();
        Ok(Some((
            Epoch {
                server_life: row.get::<String>(1)?,
                stats_reset: row.get::<String>(2)?,
                dealloc: row.get::<i64>(3)?,
            },
            row.get::<String>(4)?,
        )))
    })
    .map_err(spi_error)?;
    let interval = epoch::classify(stored.as_ref().map(|(epoch, _)| epoch), &current);
    let previous_snapshot = match &interval {
        Interval::First => None,
        _ => Some(format!(
            "{}::timestamptz",
            spi::literal(stored.as_ref().and_then(|(_, at)| at.as_deref()))
        )),
    };
    Ok((interval, previous_snapshot, current))
}

/// Stores the epoch a source's counters were read in, with this snapshot's time.
pub(crate) fn remember_epoch(source: &str, epoch: &Epoch) -> Result<(), SourceError> {
    spi::execute(&format!(
        "INSERT INTO dbanalytics.source_state AS s (source, server_life, stats_reset, dealloc, updated_at)
         VALUES ({source}, {life}, {reset}, {dealloc}, pg_catalog.now())
         ON CONFLICT (source) DO UPDATE
            SET server_life = excluded.server_life, stats_reset = excluded.stats_reset,
                dealloc = excluded.dealloc, updated_at = excluded.updated_at",
        source = spi::literal(Some(source)),
        life = spi::literal(epoch.server_life.as_deref()),
        reset = spi::literal(epoch.stats_reset.as_deref()),
        dealloc = epoch.dealloc.map_or("NULL".to_string(), |d| d.to_string()),
    ))
    .map_err(spi_error)
}

/// Classifies the interval, runs the source's snapshot function with that verdict and stores
/// the new epoch — all in the caller's subtransaction, so a failure leaves the previous state.
pub(crate) fn snapshot_counters(
    source: &str,
    epoch_sql: &str,
    snapshot_call: impl FnOnce(&str, &Interval) -> String,
) -> Result<Collected, SourceError> {
    let (interval, previous_snapshot, current) = read_interval(source, epoch_sql)?;
    let previous_snapshot = previous_snapshot.unwrap_or_else(|| "NULL::timestamptz".to_string());
    let rows = spi::select_one::<i64>(&snapshot_call(&previous_snapshot, &interval))
        .map_err(spi_error)?
        .unwrap_or(0);
    remember_epoch(source, &current)?;
    Ok(Collected {
        rows,
        interval,
        skipped: None,
    })
}

/// `(previous_snapshot, interval_reset, counters_zeroed)` as SQL arguments.
pub(crate) fn interval_arguments(previous_snapshot: &str, interval: &Interval) -> String {
    format!(
        "{previous_snapshot}, {}, {}",
        interval.is_reset(),
        interval.counters_zeroed()
    )
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
    let epoch_sql = format!(
        "SELECT dbanalytics._server_life(), e.stats_reset, e.dealloc
           FROM dbanalytics._statements_epoch({}) e",
        spi::literal(Some(&schema))
    );
    snapshot_counters("statements", &epoch_sql, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_statements({}, {})",
            spi::literal(Some(&schema)),
            interval_arguments(previous, interval)
        )
    })
}

pub(crate) fn snapshot_databases() -> Result<Collected, SourceError> {
    snapshot_counters("databases", POSTMASTER_ONLY_EPOCH, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_databases({})",
            interval_arguments(previous, interval)
        )
    })
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
    snapshot_counters("tables", DATABASE_EPOCH, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_tables({})",
            interval_arguments(previous, &per_object(interval))
        )
    })
}

pub(crate) fn snapshot_indexes() -> Result<Collected, SourceError> {
    snapshot_counters("indexes", DATABASE_EPOCH, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_indexes({})",
            interval_arguments(previous, &per_object(interval))
        )
    })
}

pub(crate) fn snapshot_bgwriter() -> Result<Collected, SourceError> {
    // pg_stat_bgwriter's reset time up to 16; none from 17 (versions.sql says why)
    let epoch_sql =
        "SELECT dbanalytics._server_life(), dbanalytics._bgwriter_epoch(), NULL::bigint";
    snapshot_counters("bgwriter", epoch_sql, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_bgwriter({})",
            interval_arguments(previous, interval)
        )
    })
}

/// pg_stat_io, on the servers that have it (versions.sql says which).
pub(crate) fn snapshot_io() -> Result<Collected, SourceError> {
    let unavailable = spi::select_one::<String>("SELECT dbanalytics._source_unavailable('io')")
        .map_err(spi_error)?;
    if let Some(reason) = unavailable {
        return Ok(Collected::skipped(reason));
    }
    let epoch_sql = "SELECT dbanalytics._server_life(), dbanalytics._io_epoch(), NULL::bigint";
    snapshot_counters("io", epoch_sql, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_io({})",
            interval_arguments(previous, interval)
        )
    })
}

pub(crate) fn snapshot_replication() -> Result<Collected, SourceError> {
    snapshot_counters("replication", POSTMASTER_ONLY_EPOCH, |previous, _| {
        format!("SELECT dbanalytics._snapshot_replication({previous})")
    })
    .map(|collected| Collected::rows(collected.rows))
}

pub(crate) fn snapshot_replication_slots() -> Result<Collected, SourceError> {
    snapshot_counters("replication_slots", POSTMASTER_ONLY_EPOCH, |previous, _| {
        format!("SELECT dbanalytics._snapshot_replication_slots({previous})")
    })
    .map(|collected| Collected::rows(collected.rows))
}

/// The server's transaction counters, WAL position, disk space and host figures.
pub(crate) fn snapshot_server() -> Result<Collected, SourceError> {
    let rows = spi::execute_returning::<i64>("SELECT dbanalytics._snapshot_server()")
        .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}
