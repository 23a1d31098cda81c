//! The SQL surface of the foundation: on-demand collection and whether workers are loaded.
//! Thin: argument handling, then a call into `collect`.

pub mod advisor;
pub mod latency;

use crate::collect::{self, SourceRun};
use pgrx::prelude::*;

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
    TableIterator::new(as_rows(collect::take_snapshot()))
}

/// Whether the library was loaded by shared_preload_libraries, so the workers run.
#[pg_extern(stable, parallel_safe)]
fn collection_preloaded() -> bool {
    crate::preloaded()
}
