//! dbanalytics: PostgreSQL as its own performance analyst.
//!
//! `_PG_init` registers the settings and, when preloaded, the sampler and collector workers.
//! The SQL objects live in `sql/`; the Rust modules are the collection pipeline.

use pgrx::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

mod advisor;
mod api;
mod collect;
mod gucs;
mod histogram;
mod plans;
mod spi;
mod storage;
mod timeouts;
mod workers;

::pgrx::pg_module_magic!();

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!(
    "../sql/versions.sql",
    name = "versions",
    requires = ["schema"]
);
// the collection pipeline: raw samples, counter snapshots, rollups, and the tier boundaries
// that the rollups and the analytics share
extension_sql_file!(
    "../sql/sampling.sql",
    name = "sampling",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/snapshots.sql",
    name = "snapshots",
    requires = [
        "schema",
        "versions",
        api::sizes::_relation_size_nowait,
        api::server::_server_now,
        api::_slow_query_ms
    ]
);
extension_sql_file!(
    "../sql/windows.sql",
    name = "windows",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/rollups.sql",
    name = "rollups",
    requires = ["windows"]
);
extension_sql_file!(
    "../sql/views.sql",
    name = "views",
    requires = ["sampling", "snapshots", "rollups"]
);
extension_sql_file!(
    "../sql/analytics_common.sql",
    name = "analytics_common",
    requires = [
        "views",
        api::_slow_query_ms,
        api::latency::_latency_merge_final
    ]
);
extension_sql_file!(
    "../sql/analytics_latency.sql",
    name = "analytics_latency",
    requires = [
        "analytics_common",
        api::latency::latency_percentiles,
        api::latency::latency_buckets,
        api::latency::histogram_status
    ]
);
extension_sql_file!(
    "../sql/plans.sql",
    name = "plans",
    requires = ["analytics_common"]
);
extension_sql_file!(
    "../sql/analytics_queries.sql",
    name = "analytics_queries",
    requires = [
        "analytics_common",
        "plans",
        api::latency::latency_percentiles
    ]
);
extension_sql_file!(
    "../sql/analytics_connections.sql",
    name = "analytics_connections",
    requires = ["analytics_common"]
);
extension_sql_file!(
    "../sql/analytics_objects.sql",
    name = "analytics_objects",
    requires = ["analytics_common"]
);
extension_sql_file!(
    "../sql/analytics_waits.sql",
    name = "analytics_waits",
    requires = ["analytics_common"]
);
extension_sql_file!(
    "../sql/analytics_wal.sql",
    name = "analytics_wal",
    requires = ["analytics_common"]
);
extension_sql_file!(
    "../sql/analytics_capacity.sql",
    name = "analytics_capacity",
    requires = ["analytics_common"]
);
extension_sql_file!(
    "../sql/health.sql",
    name = "health",
    requires = [
        "analytics_capacity",
        "analytics_queries",
        "analytics_connections",
        "analytics_objects",
        "analytics_latency"
    ]
);
extension_sql_file!(
    "../sql/alerts.sql",
    name = "alerts",
    requires = ["health", "analytics_capacity", "analytics_wal"]
);
extension_sql_file!(
    "../sql/exports.sql",
    name = "exports",
    requires = [
        "alerts",
        "analytics_latency",
        "analytics_connections",
        api::latency::latency_percentiles
    ]
);
extension_sql_file!(
    "../sql/storage.sql",
    name = "storage",
    requires = ["schema", api::storage::_storage_tiers]
);
extension_sql_file!(
    "../sql/report.sql",
    name = "report",
    requires = [
        "alerts",
        "analytics_waits",
        "storage",
        api::advisor::index_advice
    ]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Whether this library was loaded through shared_preload_libraries (so the workers exist).
pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: a plain read of a flag the postmaster sets while loading preload libraries.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    gucs::init(preloading);
    if preloading {
        PRELOADED.store(true, Ordering::Relaxed);
        histogram::hooks::install();
        workers::register();
    }
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// This module is required by `cargo pgrx test` invocations.
/// It must be visible at the root of your extension crate.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    /// The test server preloads the library, as production does; the workers are off so that
    /// the tests drive take_sample() / take_snapshot() themselves.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'pg_stat_statements,dbanalytics'",
            "dbanalytics.database = 'pgrx_tests'",
            "dbanalytics.enabled = off",
            "pg_stat_statements.track = 'all'",
        ]
    }
}
