//! The sampler's source: one read of pg_stat_activity into the raw samples (sql/sampling.sql).

use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use crate::{gucs, spi};

pub(crate) fn sample_activity() -> Result<Collected, SourceError> {
    let rows = spi::select_one_with_args::<i64>(
        "SELECT dbanalytics._sample_activity($1)",
        &[gucs::track_idle_in_transaction().into()],
    )
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}
