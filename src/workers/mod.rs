//! The background workers: a launcher, connected to no database, that starts the sampler and
//! the collector as dynamic workers once `dbanalytics.database` exists (and again when one
//! exits), and the two workers themselves. They are thin: each tick calls
//! `collect::take_sample()` or `collect::take_snapshot()`, the same code the SQL functions run.
//!
//! Like pg_cron and PoWA: the schedule is drift-free (next tick = previous tick + interval);
//! before touching its tables a worker checks that collection is enabled, that the server is
//! not in recovery or binary upgrade and that the extension exists, and otherwise idles and
//! says why in pg_stat_activity; SIGHUP reloads the settings. SIGTERM is PostgreSQL's own `die`,
//! as for its background processes: the worker ends at the next CHECK_FOR_INTERRUPTS wherever it
//! is — between ticks, or inside a tick waiting on a lock — with a FATAL that aborts the tick's
//! transaction (a tick is one transaction, so nothing is half-written); the launcher starts it
//! again unless the server is shutting down. Lock and statement timeouts bound every tick, so a
//! held lock costs a failed source recorded in collector_runs, not a silent gap.

use crate::collect;
use crate::gucs;
use crate::timeouts;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use std::ffi::CString;
use std::time::{Duration, Instant};

/// How soon a worker that exited or crashed is started again, and how often the launcher
/// looks at the database and the workers.
const RESTART_AFTER: Duration = Duration::from_secs(5);

/// The launcher's name and bgw_type.
const LAUNCHER: &str = "dbanalytics launcher";

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

    /// How long one of the worker's statements may wait for a lock, and run: a sample is due
    /// every second, so the sampler gives up soon; a snapshot may legitimately take longer.
    fn timeouts(self) -> (&'static str, &'static str) {
        match self {
            Worker::Sampler => ("1s", "30s"),
            Worker::Collector => ("10s", "10min"),
        }
    }

    fn main_function(self) -> &'static str {
        match self {
            Worker::Sampler => "dbanalytics_sampler_main",
            Worker::Collector => "dbanalytics_collector_main",
        }
    }

    fn tick(self) {
        match self {
            Worker::Sampler => drop(collect::take_sample()),
            Worker::Collector => drop(collect::take_snapshot()),
        }
    }
}

/// Registers the launcher, the one static worker. It connects to no database, so it can tell
/// whether `dbanalytics.database` exists before anything tries to connect to it (a worker
/// connecting to a missing database dies with a FATAL, and the postmaster would restart it every
/// few seconds, forever), and it starts the sampler and the collector as dynamic workers,
/// saying once and clearly when one cannot start (no free background worker slot) or the
/// database is missing, and starting them again when they exit.
pub fn register() {
    BackgroundWorkerBuilder::new(LAUNCHER)
        .set_type(LAUNCHER)
        .set_library("dbanalytics")
        .set_function("dbanalytics_launcher_main")
        .enable_spi_access()
        .set_start_time(pgrx::bgworkers::BgWorkerStartTime::ConsistentState)
        .set_restart_time(Some(RESTART_AFTER))
        .load();
}

/// Whether a database of that name exists (a shared catalog: readable without being connected
/// to a database). A heap scan of pg_database, as the autovacuum launcher reads it: an index scan
/// (get_database_oid) needs pg_class to open the index, which a process connected to no database
/// cannot read before the shared relcache init file exists (the first start after initdb: "cannot
/// read pg_class without having selected a database").
fn database_available(database: &str) -> bool {
    let Ok(name) = CString::new(database) else {
        return false;
    };
    // SAFETY: a catalog scan inside a transaction of its own; the scan key compares datname with
    // a NUL-terminated string, as get_database_oid does, and every resource is released before
    // the commit.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, lock);
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            pg_sys::Anum_pg_database_datname as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_NAMEEQ),
            pg_sys::Datum::from(name.as_ptr()),
        );
        let scan = pg_sys::systable_beginscan(
            rel,
            pg_sys::Oid::from(pg_sys::DatabaseNameIndexId),
            false, // heap scan: no index to open
            std::ptr::null_mut(),
            1,
            &mut key,
        );
        let found = !pg_sys::systable_getnext(scan).is_null();
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(rel, lock);
        pg_sys::CommitTransactionCommand();
        found
    }
}

fn start_dynamic(worker: Worker) -> Option<DynamicBackgroundWorker> {
    BackgroundWorkerBuilder::new(worker.name())
        .set_type(worker.name())
        .set_library("dbanalytics")
        .set_function(worker.main_function())
        .enable_spi_access()
        .set_start_time(pgrx::bgworkers::BgWorkerStartTime::ConsistentState)
        // never restarted by the postmaster: the launcher does it, after looking at the database
        .set_restart_time(None)
        // SAFETY: a plain read of this process's id, so that the postmaster tells us about it
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .ok()
}

fn warn_with_hint(code: PgSqlErrorCode, message: String, hint: &str) {
    ErrorReport::new(code, message, "dbanalytics")
        .set_hint(hint)
        .report(PgLogLevel::WARNING);
}

/// A situation the launcher reports once, when it starts to hold, not at every look.
#[derive(Clone, PartialEq, Eq)]
enum Trouble {
    MissingDatabase,
    NoSlot(&'static str),
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn dbanalytics_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    die_on_sigterm();
    crate::histogram::hooks::ignore_this_process();
    BackgroundWorker::connect_worker_to_spi(None, None);
    let database = gucs::database();
    let mut running: [(Worker, Option<DynamicBackgroundWorker>); 2] =
        [(Worker::Sampler, None), (Worker::Collector, None)];
    let mut reported: Vec<Trouble> = Vec::new();
    loop {
        let mut troubles = Vec::new();
        if !database_available(&database) {
            troubles.push(Trouble::MissingDatabase);
            report_activity(
                pg_sys::BackendState::STATE_IDLE,
                &format!("idle: database \"{database}\" (dbanalytics.database) does not exist"),
            );
        } else {
            for (worker, handle) in running.iter_mut() {
                let alive = handle.as_ref().is_some_and(|h| {
                    !matches!(
                        h.pid(),
                        Err(pgrx::bgworkers::BackgroundWorkerStatus::Stopped)
                    )
                });
                if !alive {
                    *handle = start_dynamic(*worker);
                    if handle.is_none() {
                        troubles.push(Trouble::NoSlot(worker.name()));
                    }
                }
            }
            report_activity(pg_sys::BackendState::STATE_IDLE, "watching the workers");
        }
        for trouble in troubles.iter().filter(|t| !reported.contains(t)) {
            match trouble {
                Trouble::MissingDatabase => warn_with_hint(
                    PgSqlErrorCode::ERRCODE_INVALID_CATALOG_NAME,
                    format!(
                        "dbanalytics: database \"{database}\" named by dbanalytics.database does not exist; collection waits for it"
                    ),
                    "Create that database (and CREATE EXTENSION dbanalytics in it), or set dbanalytics.database to an existing database and restart the server. This is said once; collection starts by itself when the database appears.",
                ),
                Trouble::NoSlot(name) => warn_with_hint(
                    PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                    format!("dbanalytics: could not start the {name}: no free background worker slot"),
                    "Raise max_worker_processes (it counts every background worker, parallel workers included) and restart the server. The launcher tries again every few seconds.",
                ),
            }
        }
        for trouble in reported.iter().filter(|t| !troubles.contains(t)) {
            match trouble {
                Trouble::MissingDatabase => {
                    pgrx::log!(
                        "dbanalytics: database \"{database}\" exists now; starting the workers"
                    )
                }
                Trouble::NoSlot(name) => pgrx::log!("dbanalytics: the {name} could start now"),
            }
        }
        reported = troubles;

        if !BackgroundWorker::wait_latch(Some(RESTART_AFTER)) {
            break;
        }
        pgrx::check_for_interrupts!();
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to reload its settings.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
    }
    // SAFETY: ends this process like any background worker exit.
    unsafe { pg_sys::proc_exit(1) };
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
    let installed = Spi::get_one::<String>(
        "SELECT extversion FROM pg_catalog.pg_extension
          WHERE extname OPERATOR(pg_catalog.=) 'dbanalytics'",
    );
    let version = match installed {
        Ok(Some(version)) => version,
        _ => {
            return Some(format!(
                "idle: waiting for CREATE EXTENSION dbanalytics in database \"{database}\""
            ))
        }
    };
    // This library runs the SQL objects of its own version only (docs/releasing.md).
    if version != LIBRARY_VERSION {
        return Some(format!(
            "idle: dbanalytics {version} is installed in database \"{database}\" but the loaded \
             library is {LIBRARY_VERSION}: run ALTER EXTENSION dbanalytics UPDATE there, or restart \
             the server with the library of version {version}"
        ));
    }
    // While pg_restore fills this database, collecting would create partitions, keys and texts
    // before the restore creates them with their rows, and the restore would fail on them.
    let restoring = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
                         WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                           AND a.application_name OPERATOR(pg_catalog.=) 'pg_restore')",
    );
    if let Ok(Some(true)) = restoring {
        return Some(format!(
            "idle: pg_restore is restoring database \"{database}\"; collection resumes when it ends"
        ));
    }
    None
}

/// The extension version this library belongs to (Cargo.toml, default_version of the control file).
const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

fn report_activity(state: pg_sys::BackendState::Type, text: &str) {
    let text = CString::new(text).unwrap_or_default();
    // SAFETY: pgstat copies the string.
    unsafe { pg_sys::pgstat_report_activity(state, text.as_ptr()) };
}

/// Runs `body` in a transaction of its own, as a client's statement runs: with the worker's
/// statement_timeout armed, committed when it returns, aborted when it raises an error (which
/// comes back as `Err`).
fn in_transaction<R>(body: impl FnOnce() -> R) -> Result<R, String> {
    // SAFETY: the same transaction bracket as BackgroundWorker::transaction, plus an abort path.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    timeouts::arm_statement_timeout();
    let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Ok(body())))
        .catch_others(|caught| Err(format!("{caught:?}")))
        .execute();
    // SAFETY: commit on success; on error the abort releases everything the body held.
    unsafe {
        match &outcome {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    timeouts::disarm_statement_timeout();
    // between two transactions there is nothing to cancel (as for a client between commands):
    // a timeout that fired as the transaction ended must not cancel the next one
    // SAFETY: the flag the cancel handler sets.
    unsafe { pg_sys::QueryCancelPending = 0 };
    outcome
}

/// Runs one tick in its own transaction. An error that escapes the per-source isolation
/// (a cancel, the statement timeout, or a bug) aborts this transaction only, is logged and
/// recorded, and the loop goes on.
fn run_in_transaction(worker: Worker, database: &str) -> Option<String> {
    // today's partitions first (once a day), committed before the tick that writes into them
    if collect::partitions_missing_today() {
        let _ = in_transaction(|| {
            if idle_reason(database).is_none() {
                collect::partitions_before_tick();
            }
        });
    }
    let outcome = in_transaction(|| {
        let reason = idle_reason(database);
        if reason.is_none() {
            report_activity(pg_sys::BackendState::STATE_RUNNING, "collecting");
            worker.tick();
        }
        reason
    });
    match outcome {
        Ok(reason) => reason,
        Err(error) => {
            pgrx::warning!("{}: tick failed: {error}", worker.name());
            record_tick_failure(worker, &error);
            None
        }
    }
}

/// Leaves a trace of a tick that failed as a whole (not one of its sources): a collector_runs
/// row of source `tick`, written in a transaction of its own. If even that fails (the extension
/// is being dropped, say), the WARNING already logged is the trace.
fn record_tick_failure(worker: Worker, error: &str) {
    let worker_name = match worker {
        Worker::Sampler => "sampler",
        Worker::Collector => "collector",
    };
    let _ = in_transaction(|| collect::record_failed_tick(worker_name, error));
}

/// Settings every statement of a worker runs with, whatever `ALTER DATABASE ... SET` or
/// `ALTER ROLE ... SET` say: a database owner who is not superuser must not be able to steer
/// the superuser workers (an operator of theirs found through search_path, a changed meaning of
/// `= NULL`, a read-only default, a timeout that aborts every tick). Set at session level after
/// connecting, as a session's own SET, so they outrank the database's and role's settings and a
/// configuration reload, while our functions' own SET clauses still apply inside them.
const PINNED_SETTINGS: &[(&str, &str)] = &[
    ("search_path", "pg_catalog, pg_temp"),
    // `ALTER DATABASE … SET role = x` (which a database owner may run) would make the workers
    // act as x: they act as the role they connected as
    ("role", "none"),
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
    let (lock_timeout, statement_timeout) = worker.timeouts();
    for (name, value) in [
        (c"application_name", worker.name()),
        (c"lock_timeout", lock_timeout),
        (c"statement_timeout", statement_timeout),
    ] {
        let value = CString::new(value).unwrap_or_default();
        // SAFETY: as above; these settings always exist.
        unsafe {
            pg_sys::SetConfigOption(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
            );
        }
    }
}

/// SIGTERM as PostgreSQL's own background processes take it: `die` sets ProcDiePending and
/// InterruptPending and the latch, so the next CHECK_FOR_INTERRUPTS ends the process (also
/// while it waits on a lock), instead of pgrx's flag that is only read between two ticks.
fn die_on_sigterm() {
    extern "C-unwind" {
        // the server's own SIGTERM handler (pgrx's binding wraps it in a Rust function, which
        // is not a signal handler)
        #[link_name = "die"]
        fn postgres_die(signal: std::ffi::c_int);
    }
    // SAFETY: installs the server's handler for this process, as bgworker mains do.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(postgres_die));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(postgres_die));
    }
}

fn run(worker: Worker) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    die_on_sigterm();
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
            // a SIGTERM (die) ends the process here
            pgrx::check_for_interrupts!();
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
    // the launcher starts the worker again after RESTART_AFTER unless the server is shutting down
    // SAFETY: ends this process like any background worker exit.
    unsafe { pg_sys::proc_exit(1) };
}
