//! The collector's maintenance sources: minute and hourly rollups (sql/rollups.sql), the health
//! record and the alerts.

use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::{gucs, spi};
use pgrx::prelude::*;

/// Minute rollups of the raw samples.
pub(crate) fn rollup_minutes() -> Result<Collected, SourceError> {
    let rolled_until = spi::select_one::<String>(
        "SELECT updated_at::text FROM dbanalytics.source_state WHERE source = 'rollup'",
    )
    .map_err(spi_error)?;
    let (rows, new_rolled_until) = Spi::get_two::<i64, String>(&format!(
        "SELECT rows_written, new_rolled_until::text
           FROM dbanalytics._rollup_minutes({}::timestamptz)",
        spi::literal(rolled_until.as_deref())
    ))
    .map_err(spi_error)?;
    spi::execute(&format!(
        "INSERT INTO dbanalytics.source_state AS s (source, updated_at)
         VALUES ('rollup', {until}::timestamptz)
         ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at",
        until = spi::literal(new_rolled_until.as_deref()),
    ))
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Hourly rollups of the statement, table and index deltas, then daily ones of statements.
pub(crate) fn rollup_hours() -> Result<Collected, SourceError> {
    let rows =
        spi::execute_returning::<i64>("SELECT dbanalytics._rollup_hours()").map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Records the health score when the last record is older than dbanalytics.health_interval.
pub(crate) fn record_health() -> Result<Collected, SourceError> {
    let rows = spi::execute_returning::<i64>(&format!(
        "SELECT dbanalytics._record_health(pg_catalog.make_interval(secs => {}))",
        gucs::health_interval().as_secs()
    ))
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Opens, updates and resolves alerts; each opening is announced with NOTIFY dbanalytics_alerts.
pub(crate) fn evaluate_alerts() -> Result<Collected, SourceError> {
    let opened = spi::execute_returning::<i64>("SELECT dbanalytics._evaluate_alerts()")
        .map_err(spi_error)?;
    Ok(Collected::rows(opened.unwrap_or(0)))
}
