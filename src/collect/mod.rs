//! The collection pipeline: what one sampler tick and one collector snapshot do.
//!
//! The background workers and the SQL functions `take_sample()` / `take_snapshot()` call
//! exactly these two functions. Each source runs in its own subtransaction, and every run is
//! recorded in `collector_runs`; a failing source is logged once (not at every tick) and the
//! others still run.

pub mod epoch;
pub mod isolation;
mod sources;

use crate::spi;
use crate::storage::partitions;
use epoch::Interval;
use isolation::{in_subtransaction, SourceError};
use pgrx::prelude::*;
use sources::{
    activity::sample_activity,
    counters::{
        snapshot_bgwriter, snapshot_databases, snapshot_indexes, snapshot_io, snapshot_replication,
        snapshot_replication_slots, snapshot_server, snapshot_statements, snapshot_tables,
    },
    latency::persist_latency,
    maintenance::{evaluate_alerts, pack_minutes, record_health, rollup_hours, rollup_minutes},
    partitions::{create_partitions, drop_expired_partitions},
    plans::store_plans,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

/// The result of one run of one source.
#[derive(Clone, Debug)]
pub struct SourceRun {
    pub source: &'static str,
    pub status: RunStatus,
    pub rows: i64,
    pub reset: bool,
    pub duration_ms: f64,
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Error,
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
        }
    }
}

/// What a source reports when it ran (as opposed to failing).
pub(crate) struct Collected {
    rows: i64,
    interval: Interval,
    skipped: Option<String>,
}

impl Collected {
    fn rows(rows: i64) -> Self {
        Collected {
            rows,
            interval: Interval::Continuous,
            skipped: None,
        }
    }

    /// A source that cannot run here, and why (collector_status shows it).
    fn skipped(reason: impl Into<String>) -> Self {
        Collected {
            rows: 0,
            interval: Interval::Continuous,
            skipped: Some(reason.into()),
        }
    }
}

type SourceFn = fn() -> Result<Collected, SourceError>;

/// The collector's sources, in the order they run.
const SNAPSHOT_SOURCES: &[(&str, SourceFn)] = &[
    ("partitions", create_partitions),
    ("statements", snapshot_statements),
    ("latency", persist_latency),
    ("plans", store_plans),
    ("databases", snapshot_databases),
    ("tables", snapshot_tables),
    ("indexes", snapshot_indexes),
    ("bgwriter", snapshot_bgwriter),
    ("io", snapshot_io),
    ("replication", snapshot_replication),
    ("replication_slots", snapshot_replication_slots),
    ("server", snapshot_server),
    ("rollup", rollup_minutes),
    ("rollup_hours", rollup_hours),
    ("pack_minutes", pack_minutes),
    ("health", record_health),
    ("alerts", evaluate_alerts),
    ("retention", drop_expired_partitions),
];

/// One sampler tick: activity, connections and lock waits in one read of pg_stat_activity.
pub fn take_sample() -> Vec<SourceRun> {
    if !lock_extension() {
        return Vec::new();
    }
    let mut runs = Vec::new();
    if partitions_missing_today() {
        runs.push(run_source("sampler", "partitions", create_partitions));
    }
    let activity = run_source("sampler", "activity", sample_activity);
    if activity.status == RunStatus::Error {
        // a partition detached or dropped during the day: look again at the next tick
        PARTITIONS_CHECKED_DAY.with(|checked| *checked.borrow_mut() = None);
    }
    runs.push(activity);
    runs
}

/// Remembers that today's partitions were seen in place by this process.
pub(crate) fn partitions_checked_today() {
    PARTITIONS_CHECKED_DAY.with(|checked| *checked.borrow_mut() = clock_day());
}

/// Today (UTC) by the system clock, for the once-a-day check (which needs no transaction).
fn clock_day() -> Option<i64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|since| partitions::day_of(since.as_secs() as i64))
}

/// One collector snapshot: every statistics source, then maintenance. Snapshots take turns
/// (the worker's and any take_snapshot() call): two at once would compute the same deltas twice.
pub fn take_snapshot() -> Vec<SourceRun> {
    if !lock_extension() {
        return Vec::new();
    }
    // Waiting is bounded by lock_timeout (the collector's own, or the caller's): a snapshot
    // that cannot take its turn is skipped and says so, never run twice at once.
    let turn = in_subtransaction(|| {
        spi::execute(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.take_snapshot'))",
        )
        .map_err(spi_error)
    });
    if let Err(error) = turn {
        let run = SourceRun {
            source: "snapshot",
            status: RunStatus::Skipped,
            rows: 0,
            reset: false,
            duration_ms: 0.0,
            message: Some(format!(
                "skipped: another snapshot holds the snapshot lock ({error})"
            )),
        };
        record_run("collector", &run);
        return vec![run];
    }
    SNAPSHOT_SOURCES
        .iter()
        .map(|(name, source)| run_source("collector", name, *source))
        .collect()
}

thread_local! {
    /// Day for which this process last saw its partitions in place.
    static PARTITIONS_CHECKED_DAY: RefCell<Option<i64>> = const { RefCell::new(None) };
    /// Last error logged per source, so that a persistent failure is logged once.
    static LAST_LOGGED_ERROR: RefCell<HashMap<&'static str, String>> = RefCell::new(HashMap::new());
}

/// The sampler checks its partitions once per day and process (after a success), not at
/// every tick; the workers create them before their tick when this says so. By the system
/// clock (no transaction needed): the check itself uses the transaction's now().
pub fn partitions_missing_today() -> bool {
    let today = clock_day();
    PARTITIONS_CHECKED_DAY.with(|checked| *checked.borrow() != today)
}

fn run_source(worker: &str, source: &'static str, collect: SourceFn) -> SourceRun {
    let started = Instant::now();
    let outcome = in_subtransaction(collect);
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let run = match outcome {
        Ok(collected) => SourceRun {
            source,
            status: if collected.skipped.is_some() {
                RunStatus::Skipped
            } else {
                RunStatus::Ok
            },
            rows: collected.rows,
            reset: collected.interval.is_reset(),
            duration_ms,
            message: collected
                .skipped
                .or(collected.interval.note().map(str::to_string)),
        },
        Err(error) => SourceRun {
            source,
            status: RunStatus::Error,
            rows: 0,
            reset: false,
            duration_ms,
            message: Some(error),
        },
    };
    log_once(&run);
    record_run(worker, &run);
    run
}

/// WARNING when a source starts failing or fails differently; LOG when it recovers. "The same
/// failure" is judged by the message without its DETAIL, which often holds the failing row's
/// values (a timestamp that differs at every tick).
fn log_once(run: &SourceRun) {
    LAST_LOGGED_ERROR.with(|logged| {
        let mut logged = logged.borrow_mut();
        match (run.status, logged.get(run.source)) {
            (RunStatus::Error, previous) => {
                let message = run.message.clone().unwrap_or_default();
                let failure = message
                    .split(" (DETAIL: ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if previous != Some(&failure) {
                    pgrx::warning!("dbanalytics: source \"{}\" failed: {}", run.source, message);
                    logged.insert(run.source, failure);
                }
            }
            (_, Some(_)) => {
                pgrx::log!("dbanalytics: source \"{}\" works again", run.source);
                logged.remove(run.source);
            }
            (_, None) => {}
        }
    });
}

/// Records a tick that failed as a whole (called by the workers, in a new transaction).
pub fn record_failed_tick(worker: &str, error: &str) {
    if !lock_extension() {
        return;
    }
    record_run(
        worker,
        &SourceRun {
            source: "tick",
            status: RunStatus::Error,
            rows: 0,
            reset: false,
            duration_ms: 0.0,
            message: Some(error.to_string()),
        },
    );
}

fn record_run(worker: &str, run: &SourceRun) {
    let insert = || {
        spi::execute_with_args(
            "INSERT INTO dbanalytics.collector_runs
                 (started_at, worker, source, status, duration_ms, rows, reset, message)
             VALUES (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $5 OPERATOR(pg_catalog./) 1000.0),
                     $1, $2, $3, $5, $4, $6, $7)",
            &[
                worker.into(),
                run.source.into(),
                run.status.as_str().into(),
                run.rows.into(),
                run.duration_ms.into(),
                run.reset.into(),
                run.message.as_deref().into(),
            ],
        )
        .map_err(|e| e.to_string())
    };
    // A missing collector_runs partition must not take the tick down with it.
    if let Err(error) = in_subtransaction(insert) {
        let failure = SourceRun {
            source: "collector_runs",
            status: RunStatus::Error,
            rows: 0,
            reset: false,
            duration_ms: 0.0,
            message: Some(error),
        };
        log_once(&failure);
    }
}

pub(crate) fn spi_error(error: pgrx::spi::Error) -> SourceError {
    error.to_string()
}

/// A worker, before its tick, when this process has not seen today's partitions in place yet
/// (`partitions_missing_today`): creates the missing ones in the transaction it is called in,
/// which the worker commits at once. Otherwise the first snapshot after CREATE EXTENSION would create them inside its own
/// long transaction, and the sampler, waiting for them, would lose its first ticks. A failure
/// is left to the tick's own `partitions` source, which records it.
pub fn partitions_before_tick() {
    if lock_extension() {
        let _ = in_subtransaction(create_partitions);
    }
}

/// Takes a share lock on the extension itself, before any lock on its tables, for the rest of
/// the transaction; false when the extension is not (or no longer) installed. DROP EXTENSION
/// locks the extension exclusively before it locks its objects, so a tick that gets this lock
/// first ends before the drop starts, and a drop that gets it first ends before the tick
/// starts, which then finds nothing to collect into. Without it, a tick and a drop took their
/// table locks in opposite orders and one of them died of a deadlock (issue 15, 9a).
pub fn lock_extension() -> bool {
    // SAFETY: catalog lookups and a heavyweight lock inside the caller's transaction; the lock
    // is released at its end.
    unsafe {
        let extension = pg_sys::get_extension_oid(c"dbanalytics".as_ptr(), true);
        if extension == pg_sys::InvalidOid {
            return false;
        }
        pg_sys::LockDatabaseObject(
            pg_sys::ExtensionRelationId,
            extension,
            0,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        );
        // a drop may have committed while we waited (taking the lock read the invalidations)
        pg_sys::get_extension_oid(c"dbanalytics".as_ptr(), true) == extension
    }
}
