//! The plans source: moves the plans the executor hooks captured (src/plans) from shared memory
//! into `plans` and `plan_sightings` (`_store_plans`, sql/plans.sql).

use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::spi;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

pub(crate) fn store_plans() -> Result<Collected, SourceError> {
    let Some(queue) = crate::plans::queue::queue() else {
        return Ok(Collected::skipped(
            "plan capture needs dbanalytics in shared_preload_libraries",
        ));
    };
    // taken out at once: captures the transaction cannot store are lost, never stored twice
    let captures = queue.drain();
    if captures.is_empty() {
        return Ok(Collected::rows(0));
    }
    let column = |value: fn(&crate::plans::queue::Capture) -> i64| -> Vec<i64> {
        captures.iter().map(value).collect()
    };
    let rows = spi::execute_returning_with_args::<i64>(
        "SELECT dbanalytics._store_plans($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            column(|c| i64::from(c.dbid)).into(),
            column(|c| i64::from(c.userid)).into(),
            column(|c| c.queryid).into(),
            column(|c| c.planid).into(),
            captures.iter().map(|c| c.slow).collect::<Vec<_>>().into(),
            captures
                .iter()
                .map(|c| c.micros as f64 / 1000.0)
                .collect::<Vec<_>>()
                .into(),
            captures
                .iter()
                .map(|c| (c.captured_at + POSTGRES_EPOCH_UNIX_US) as f64 / 1e6)
                .collect::<Vec<_>>()
                .into(),
            captures
                .iter()
                .map(|c| c.plan.clone())
                .collect::<Vec<_>>()
                .into(),
            captures
                .iter()
                .map(|c| c.truncated)
                .collect::<Vec<_>>()
                .into(),
            captures
                .iter()
                .map(|c| c.analyzed.clone())
                .collect::<Vec<_>>()
                .into(),
        ],
    )
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}
