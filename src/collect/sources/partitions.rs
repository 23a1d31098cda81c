//! The partitions source (today's and the days ahead) and the retention source (whole
//! partitions past their tier's retention dropped).

use super::super::isolation::SourceError;
use super::super::partitions_checked_today;
use super::super::{spi_error, Collected};
use crate::gucs;
use crate::spi;
use crate::storage::partitions;

pub(crate) fn create_partitions() -> Result<Collected, SourceError> {
    match partitions::ensure_partitions().map_err(spi_error)? {
        Some(created) => {
            partitions_checked_today();
            Ok(Collected::rows(created))
        }
        // the other worker is creating them: this process checks again at its next tick
        None => Ok(Collected::rows(0)),
    }
}

/// Drops expired partitions, then (when something was dropped) forgets the statement texts that
/// no retained row of any tier refers to.
pub(crate) fn drop_expired_partitions() -> Result<Collected, SourceError> {
    let expired = partitions::expired_partitions().map_err(spi_error)?;
    if expired.iter().any(|(table, _)| *table == "activity_raw") {
        // once a day, before the drop takes activity_raw: the session keys no sample refers to
        spi::execute("SELECT dbanalytics._prune_activity_keys()").map_err(spi_error)?;
    }
    let dropped = partitions::drop_partitions(&expired).map_err(spi_error)?;
    if dropped > 0 {
        // first_seen guards a text whose first delta is not written yet
        spi::execute_with_args(
            "DELETE FROM dbanalytics.statements s
              WHERE s.first_seen < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_stats st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_stats_packed st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_hourly st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_daily st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))",
            &[gucs::retention_minutes().as_secs_f64().into()],
        )
        .map_err(spi_error)?;
        // the plans of the hour tier's retention that no retained sighting refers to
        spi::execute_with_args(
            "DELETE FROM dbanalytics.plans p
              WHERE p.last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
                AND NOT EXISTS (SELECT FROM dbanalytics.plan_sightings s
                                 WHERE (s.dbid, s.userid, s.queryid, s.planid)
                                       OPERATOR(pg_catalog.=) (p.dbid, p.userid, p.queryid, p.planid))",
            &[gucs::retention_hours().as_secs_f64().into()],
        )
        .map_err(spi_error)?;
    }
    Ok(Collected::rows(dropped))
}
