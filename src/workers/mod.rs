//! The two background workers. They are thin: each tick calls `collect::take_sample()` or
//! `collect::take_snapshot()`, the same code the SQL functions run.
//!
//! Like pg_cron and PoWA: the schedule is drift-free (next tick = previous tick + interval);
//! before touching its tables a worker checks that collection is enabled, that the server is
//! not in recovery or binary upgrade and that the extension exists, and otherwise idles and
//! says why in pg_stat_activity; SIGHUP reloads the settings; SIGTERM ends the loop between
//! two ticks (a tick is one transaction, so nothing is half-written) and the worker exits with
//! code 1 so that the postmaster restarts it unless the server is shutting down.

use crate::collect;
use crate::gucs;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;
use std::time::{Duration, Instant};

/// How soon the postmaster restarts a worker that exited or crashed.
const RESTART_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Worker {
    Sampler,
    Collector,
}

impl Worker {
    fn name(self) -> &'static str {
        match self {
            Worker::Sampler => "dbanalytics sampler",
            Worker::Collector => "dbanalytics collector",
        }
    }

    fn interval(self) -> Duration {
        match self {
            Worker::Sampler => gucs::sample_interval(),
            Worker::Collector => gucs::snapshot_interval(),
        }
    }

    fn tick(self) {
        match self {
            Worker::Sampler => drop(collect::take_sample()),
            Worker::Collector => drop(collect::take_snapshot()),
        }
    }
}

pub fn register() {
    for (worker, function) in [
        (Worker::Sampler, "dbanalytics_sampler_main"),
        (Worker::Collector, "dbanalytics_collector_main"),
    ] {
        BackgroundWorkerBuilder::new(worker.name())
            .set_type(worker.name())
            .set_library("dbanalytics")
            .set_function(function)
            .enable_spi_access()
            .set_start_time(pgrx::bgworkers::BgWorkerStartTime::ConsistentState)
            .set_restart_time(Some(RESTART_AFTER))
            .load();
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn dbanalytics_sampler_main(_arg: pg_sys::Datum) {
    run(Worker::Sampler)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn dbanalytics_collector_main(_arg: pg_sys::Datum) {
    run(Worker::Collector)
}

/// Why a worker is not collecting right now, if it is not.
fn idle_reason(database: &str) -> Option<String> {
    if !gucs::enabled() {
        return Some("idle: dbanalytics.enabled = off".to_string());
    }
    // SAFETY: plain reads of server state.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return Some(
            "idle: server is in recovery (hot standby); collection runs on the primary".into(),
        );
    }
    if unsafe { pg_sys::IsBinaryUpgrade } {
        return Some("idle: binary upgrade in progress".to_string());
    }
    let installed = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension
                         WHERE extname OPERATOR(pg_catalog.=) 'dbanalytics')",
    );
    match installed {
        Ok(Some(true)) => None,
        _ => Some(format!(
            "idle: waiting for CREATE EXTENSION dbanalytics in database \"{database}\""
        )),
    }
}

fn report_activity(state: pg_sys::BackendState::Type, text: &str) {
    let text = CString::new(text).unwrap_or_default();
    // SAFETY: pgstat copies the string.
    unsafe { pg_sys::pgstat_report_activity(state, text.as_ptr()) };
}

/// Runs one tick in its own transaction. An error that escapes the per-source isolation
/// (it should not) aborts this transaction only, is logged, and the loop goes on.
fn run_in_transaction(worker: Worker, database: &str) -> Option<String> {
    // SAFETY: the same transaction bracket as BackgroundWorker::transaction, plus an abort path.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let outcome = PgTryBuilder::new(|| {
        let reason = idle_reason(database);
        if reason.is_none() {
            report_activity(pg_sys::BackendState::STATE_RUNNING, "collecting");
            worker.tick();
        }
        Ok(reason)
    })
    .catch_others(|caught| Err(format!("{caught:?}")))
    .execute();
    // SAFETY: commit on success; on error the abort releases everything the tick held.
    unsafe {
        match &outcome {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    match outcome {
        Ok(reason) => reason,
        Err(error) => {
            pgrx::warning!("{}: tick failed: {error}", worker.name());
            None
        }
    }
}

/// Settings every statement of a worker runs with, whatever `ALTER DATABASE ... SET` or
/// `ALTER ROLE ... SET` say: a database owner who is not superuser must not be able to steer
/// the superuser workers (an operator of theirs found through search_path, a changed meaning of
/// `= NULL`, a read-only default, a timeout that aborts every tick). Set at session level after
/// connecting, as a session's own SET, so they outrank the database's and role's settings and a
/// configuration reload, while our functions' own SET clauses still apply inside them.
const PINNED_SETTINGS: &[(&str, &str)] = &[
    ("search_path", "pg_catalog, pg_temp"),
    ("default_transaction_read_only", "off"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_deferrable", "off"),
    ("session_replication_role", "origin"),
    ("transform_null_equals", "off"),
    ("standard_conforming_strings", "on"),
    ("array_nulls", "on"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("default_tablespace", ""),
    ("temp_tablespaces", ""),
    ("default_table_access_method", "heap"),
    ("plan_cache_mode", "auto"),
    ("enable_partition_pruning", "on"),
    ("statement_timeout", "0"),
    ("lock_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    // the workers' own statements never occupy pg_stat_statements entries (issue 20)
    ("pg_stat_statements.track", "none"),
];

fn pin_settings(worker: Worker) {
    for (name, value) in PINNED_SETTINGS {
        let (Ok(c_name), Ok(c_value)) = (CString::new(*name), CString::new(*value)) else {
            continue;
        };
        // SAFETY: GetConfigOption only looks the setting up (NULL when it does not exist, e.g.
        // pg_stat_statements not loaded); SetConfigOption sets a valid value of an existing
        // setting, as a superuser session's SET would.
        unsafe {
            if pg_sys::GetConfigOption(c_name.as_ptr(), true, false).is_null() {
                continue;
            }
            pg_sys::SetConfigOption(
                c_name.as_ptr(),
                c_value.as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_SESSION,
            );
        }
    }
    let application_name = CString::new(worker.name()).unwrap_or_default();
    // SAFETY: as above.
    unsafe {
        pg_sys::SetConfigOption(
            c"application_name".as_ptr(),
            application_name.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
    }
}

fn run(worker: Worker) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    crate::histogram::hooks::ignore_this_process();
    let database = gucs::database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    pin_settings(worker);
    pgrx::log!("{} started in database \"{database}\"", worker.name());

    let mut next_tick = Instant::now();
    let mut last_reason: Option<String> = None;
    'ticks: loop {
        let reason = run_in_transaction(worker, &database);
        let status = reason
            .clone()
            .unwrap_or_else(|| "waiting for the next tick".to_string());
        report_activity(pg_sys::BackendState::STATE_IDLE, &status);
        if reason != last_reason {
            if let Some(reason) = &reason {
                pgrx::log!("{}: {reason}", worker.name());
            }
            last_reason = reason;
        }

        // Drift-free: the next tick is due one interval after the previous one was due; if we
        // fell behind (a slow tick, a suspended machine), skip to the next future slot.
        let interval = worker.interval();
        next_tick += interval;
        let now = Instant::now();
        if next_tick <= now {
            next_tick = now + interval;
        }
        loop {
            let now = Instant::now();
            if now >= next_tick {
                break;
            }
            if !BackgroundWorker::wait_latch(Some(next_tick - now)) {
                break 'ticks;
            }
            if BackgroundWorker::sighup_received() {
                // SAFETY: the documented way for a background worker to reload its settings.
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
                // a shorter interval applies from now, not after the old one elapses
                let interval = worker.interval();
                if next_tick > Instant::now() + interval {
                    next_tick = Instant::now() + interval;
                }
            }
        }
    }
    pgrx::log!("{} stopping", worker.name());
    // Exit code 1: the postmaster restarts us after RESTART_AFTER unless it is shutting down.
    // SAFETY: ends this process like any background worker exit.
    unsafe { pg_sys::proc_exit(1) };
}
