//! The collector's maintenance sources: minute and hourly rollups (sql/rollups.sql), the health
//! record and the alerts.

use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::{gucs, spi};

/// Minute rollups of the raw samples since the last one (`_rollup_minutes` keeps its state).
pub(crate) fn rollup_minutes() -> Result<Collected, SourceError> {
    let rows =
        spi::execute_returning::<i64>("SELECT dbanalytics._rollup_minutes()").map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Hourly rollups of the statement, table and index deltas, then daily ones of statements.
pub(crate) fn rollup_hours() -> Result<Collected, SourceError> {
    let rows =
        spi::execute_returning::<i64>("SELECT dbanalytics._rollup_hours()").map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Packs the minutes of the hours rolled up so far, two hours at most per run
/// (`_pack_minutes`, docs/storage.md).
pub(crate) fn pack_minutes() -> Result<Collected, SourceError> {
    let rows =
        spi::execute_returning::<i64>("SELECT dbanalytics._pack_minutes()").map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Records the health score when the last record is older than dbanalytics.health_interval.
pub(crate) fn record_health() -> Result<Collected, SourceError> {
    let rows = spi::execute_returning_with_args::<i64>(
        "SELECT dbanalytics._record_health(pg_catalog.make_interval(secs => $1))",
        &[(gucs::health_interval().as_secs_f64()).into()],
    )
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Opens, updates and resolves alerts; each opening is announced with NOTIFY dbanalytics_alerts.
pub(crate) fn evaluate_alerts() -> Result<Collected, SourceError> {
    let opened = spi::execute_returning::<i64>("SELECT dbanalytics._evaluate_alerts()")
        .map_err(spi_error)?;
    Ok(Collected::rows(opened.unwrap_or(0)))
}
