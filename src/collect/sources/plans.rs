//! The plans source: moves the plans the executor hooks captured (src/plans) from shared memory
//! into `plans` and `plan_sightings` (`_store_plans`, sql/plans.sql).

use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::plans::queue::Capture;
use crate::spi;
use pgrx::datum::{DatumWithOid, IntoDatum};

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
    // the queue's new interval: each statement's next execution is looked at in it
    if let Some(histograms) = crate::histogram::table::table() {
        histograms.clear_plan_looks();
    }
    if captures.is_empty() {
        return Ok(Collected::rows(0));
    }
    let rows = spi::execute_returning_with_args::<i64>(
        "SELECT dbanalytics._store_plans($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            column(&captures, |c| i64::from(c.dbid)),
            column(&captures, |c| i64::from(c.userid)),
            column(&captures, |c| c.queryid),
            column(&captures, |c| c.planid),
            column(&captures, |c| c.slow),
            column(&captures, |c| c.micros as f64 / 1000.0),
            column(&captures, |c| {
                (c.captured_at + POSTGRES_EPOCH_UNIX_US) as f64 / 1e6
            }),
            column(&captures, |c| c.plan.clone()),
            column(&captures, |c| c.truncated),
            column(&captures, |c| c.analyzed.clone()),
        ],
    )
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// One field of every capture, as an array argument (one element per capture).
fn column<T: IntoDatum>(
    captures: &[Capture],
    field: impl Fn(&Capture) -> T,
) -> DatumWithOid<'static>
where
    Vec<T>: IntoDatum,
{
    captures.iter().map(field).collect::<Vec<T>>().into()
}
