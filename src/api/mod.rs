//! The SQL surface of the foundation: on-demand collection and whether workers are loaded.
//! Thin: argument handling, then a call into `collect`.

pub mod advisor;
pub mod chart;
pub mod latency;
pub mod memo;
pub mod plans;
pub mod server;
pub mod sizes;
pub mod storage;

use crate::collect::{self, SourceRun};
use crate::spi;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raises an ERROR with a HINT.
pub(crate) fn raise(code: PgSqlErrorCode, message: String, hint: &str) -> ! {
    ErrorReport::new(code, message, "dbanalytics")
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// One row per source run: the same facts the run leaves in collector_runs.
type RunRow = (String, String, i64, bool, f64, Option<String>);

fn as_rows(runs: Vec<SourceRun>) -> impl Iterator<Item = RunRow> {
    runs.into_iter().map(|run| {
        (
            run.source.to_string(),
            run.status.as_str().to_string(),
            run.rows,
            run.reset,
            run.duration_ms,
            run.message,
        )
    })
}

/// One sampler tick, exactly as the sampler worker runs it.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn take_sample() -> TableIterator<
    'static,
    (
        name!(source, String),
        name!(status, String),
        name!(rows, i64),
        name!(reset, bool),
        name!(duration_ms, f64),
        name!(message, Option<String>),
    ),
> {
    TableIterator::new(as_rows(collect::take_sample()))
}

/// One collector snapshot (statistics and maintenance), exactly as the collector worker runs it.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn take_snapshot() -> TableIterator<
    'static,
    (
        name!(source, String),
        name!(status, String),
        name!(rows, i64),
        name!(reset, bool),
        name!(duration_ms, f64),
        name!(message, Option<String>),
    ),
> {
    // the extension's lock before any of its tables' (collect::lock_extension says why)
    if !collect::lock_extension() {
        return TableIterator::new(as_rows(Vec::new()));
    }
    // deltas end at now(), the start of this transaction: in a transaction older than the last
    // hour rolled up they would land in an hour the rollups never read again. Checked under the
    // snapshot lock (taken again, re-entrantly, by the snapshot), so no snapshot rolls an hour
    // between the check and the deltas.
    if spi::select_one::<bool>(
        "SELECT pg_catalog.now() <= (SELECT s.updated_at FROM dbanalytics.source_state s
                                      WHERE s.source = 'hours')
           FROM (SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.take_snapshot'))) l",
    )
    .ok()
    .flatten()
        == Some(true)
    {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "dbanalytics: this transaction started before the last hour the collector rolled up".into(),
            "Call take_snapshot() in a new transaction (outside BEGIN ... COMMIT, or right after BEGIN).",
        );
    }
    TableIterator::new(as_rows(collect::take_snapshot()))
}

/// Whether the library was loaded by shared_preload_libraries, so the workers run.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn collection_preloaded() -> bool {
    crate::preloaded()
}

/// dbanalytics.slow_query_threshold in milliseconds, through the setting's typed value: the
/// analytics call this rather than parse `current_setting()`'s text.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _slow_query_ms() -> f64 {
    f64::from(crate::gucs::slow_query_threshold_ms())
}
