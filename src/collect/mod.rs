//! The collection pipeline: what one sampler tick and one collector snapshot do.
//!
//! The background workers and the SQL functions `take_sample()` / `take_snapshot()` call
//! exactly these two functions. Each source runs in its own subtransaction, and every run is
//! recorded in `collector_runs`; a failing source is logged once (not at every tick) and the
//! others still run.

pub mod epoch;
pub mod isolation;

use crate::gucs;
use crate::spi;
use crate::storage::partitions;
use epoch::{Epoch, Interval};
use isolation::{in_subtransaction, SourceError};
use pgrx::prelude::*;
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
struct Collected {
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
fn partitions_checked_today() {
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
    /// Latency counts drained by this transaction and not committed yet (`restore_on_abort`).
    static UNCOMMITTED_LATENCY: RefCell<Vec<crate::histogram::table::Drained>> = const { RefCell::new(Vec::new()) };
    static LATENCY_XACT_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    let insert = format!(
        "INSERT INTO dbanalytics.collector_runs
             (started_at, worker, source, status, duration_ms, rows, reset, message)
         VALUES (pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => {duration} / 1000.0),
                 {worker}, {source}, {status}, {duration}, {rows}, {reset}, {message})",
        duration = run.duration_ms,
        worker = spi::literal(Some(worker)),
        source = spi::literal(Some(run.source)),
        status = spi::literal(Some(run.status.as_str())),
        rows = run.rows,
        reset = run.reset,
        message = spi::literal(run.message.as_deref()),
    );
    // A missing collector_runs partition must not take the tick down with it.
    if let Err(error) = in_subtransaction(|| spi::execute(&insert).map_err(|e| e.to_string())) {
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

fn spi_error(error: pgrx::spi::Error) -> SourceError {
    error.to_string()
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

fn sample_activity() -> Result<Collected, SourceError> {
    let rows = spi::select_one::<i64>(&format!(
        "SELECT dbanalytics._sample_activity({})",
        gucs::track_idle_in_transaction()
    ))
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
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

fn create_partitions() -> Result<Collected, SourceError> {
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
fn drop_expired_partitions() -> Result<Collected, SourceError> {
    let expired = partitions::expired_partitions().map_err(spi_error)?;
    if expired.iter().any(|(table, _)| *table == "activity_raw") {
        // once a day, before the drop takes activity_raw: the session keys no sample refers to
        spi::execute("SELECT dbanalytics._prune_activity_keys()").map_err(spi_error)?;
    }
    let dropped = partitions::drop_partitions(&expired).map_err(spi_error)?;
    if dropped > 0 {
        // first_seen guards a text whose first delta is not written yet
        spi::execute(&format!(
            "DELETE FROM dbanalytics.statements s
              WHERE s.first_seen < pg_catalog.now() - pg_catalog.make_interval(secs => {})
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_stats st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_hourly st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))
                AND NOT EXISTS (SELECT FROM dbanalytics.statement_daily st
                                 WHERE (st.dbid, st.userid, st.queryid, st.toplevel)
                                       OPERATOR(pg_catalog.=) (s.dbid, s.userid, s.queryid, s.toplevel))",
            gucs::retention_minutes().as_secs()
        ))
        .map_err(spi_error)?;
    }
    Ok(Collected::rows(dropped))
}

/// Reads a source's epoch and classifies the interval since its previous snapshot. Returns the
/// verdict, the previous snapshot's time (a timestamptz literal, or None the first time) and the
/// current epoch, to be stored with `remember_epoch` once the snapshot is written.
fn read_interval(
    source: &str,
    epoch_sql: &str,
) -> Result<(Interval, Option<String>, Epoch), SourceError> {
    let current = Spi::get_three::<String, String, i64>(epoch_sql)
        .map(|(server_life, stats_reset, dealloc)| Epoch {
            server_life,
            stats_reset,
            dealloc,
        })
        .map_err(spi_error)?;
    let stored = Spi::connect(|client| {
        let table = client.select(
            &format!(
                "SELECT server_life, stats_reset, dealloc, updated_at::text
                   FROM dbanalytics.source_state WHERE source = {}",
                spi::literal(Some(source))
            ),
            Some(1),
            &[],
        )?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::Error>(None);
        }
        let row = table.first();
        Ok(Some((
            Epoch {
                server_life: row.get::<String>(1)?,
                stats_reset: row.get::<String>(2)?,
                dealloc: row.get::<i64>(3)?,
            },
            row.get::<String>(4)?,
        )))
    })
    .map_err(spi_error)?;
    let interval = epoch::classify(stored.as_ref().map(|(epoch, _)| epoch), &current);
    let previous_snapshot = match &interval {
        Interval::First => None,
        _ => Some(format!(
            "{}::timestamptz",
            spi::literal(stored.as_ref().and_then(|(_, at)| at.as_deref()))
        )),
    };
    Ok((interval, previous_snapshot, current))
}

/// Stores the epoch a source's counters were read in, with this snapshot's time.
fn remember_epoch(source: &str, epoch: &Epoch) -> Result<(), SourceError> {
    spi::execute(&format!(
        "INSERT INTO dbanalytics.source_state AS s (source, server_life, stats_reset, dealloc, updated_at)
         VALUES ({source}, {life}, {reset}, {dealloc}, pg_catalog.now())
         ON CONFLICT (source) DO UPDATE
            SET server_life = excluded.server_life, stats_reset = excluded.stats_reset,
                dealloc = excluded.dealloc, updated_at = excluded.updated_at",
        source = spi::literal(Some(source)),
        life = spi::literal(epoch.server_life.as_deref()),
        reset = spi::literal(epoch.stats_reset.as_deref()),
        dealloc = epoch.dealloc.map_or("NULL".to_string(), |d| d.to_string()),
    ))
    .map_err(spi_error)
}

/// Classifies the interval, runs the source's snapshot function with that verdict and stores
/// the new epoch — all in the caller's subtransaction, so a failure leaves the previous state.
fn snapshot_counters(
    source: &str,
    epoch_sql: &str,
    snapshot_call: impl FnOnce(&str, &Interval) -> String,
) -> Result<Collected, SourceError> {
    let (interval, previous_snapshot, current) = read_interval(source, epoch_sql)?;
    let previous_snapshot = previous_snapshot.unwrap_or_else(|| "NULL::timestamptz".to_string());
    let rows = spi::select_one::<i64>(&snapshot_call(&previous_snapshot, &interval))
        .map_err(spi_error)?
        .unwrap_or(0);
    remember_epoch(source, &current)?;
    Ok(Collected {
        rows,
        interval,
        skipped: None,
    })
}

/// Moves the latency histograms recorded since the previous snapshot from shared memory into
/// statement_latency and database_latency. Counts are taken out of shared memory (swapped with
/// zero); if they cannot be stored they are put back, so the next snapshot stores them.
fn persist_latency() -> Result<Collected, SourceError> {
    let Some(histograms) = crate::histogram::table::table() else {
        return Ok(Collected::skipped(
            "latency histograms need dbanalytics in shared_preload_libraries",
        ));
    };
    let (interval, previous_snapshot, current) = read_interval("latency", POSTMASTER_ONLY_EPOCH)?;
    // the first time, counts have accumulated since the server started
    let interval_start =
        previous_snapshot.unwrap_or_else(|| "pg_catalog.pg_postmaster_start_time()".to_string());
    let drained = histograms.drain();
    // until this transaction commits, the counts are only in its rows: an abort (a later
    // source's error that ends the tick, a cancel, the statement timeout, a FATAL at shutdown,
    // a ROLLBACK after take_snapshot()) puts them back
    let held_from = restore_on_abort(&drained);
    let store = || {
        let rows = if drained.is_empty() {
            0
        } else {
            store_latency(&drained, &interval_start, interval.is_reset())
                .map_err(spi_error)?
                .unwrap_or(0)
        };
        remember_epoch("latency", &current)?;
        Ok(rows)
    };
    let outcome = in_subtransaction(store);
    // unlike counters, histograms need no baseline: the first snapshot stores what was recorded
    let interval = match interval {
        Interval::First => Interval::Continuous,
        other => other,
    };
    match outcome {
        Ok(rows) => Ok(Collected {
            rows,
            interval,
            skipped: None,
        }),
        Err(error) => {
            // not stored: back at once (the transaction itself goes on)
            UNCOMMITTED_LATENCY.with(|pending| pending.borrow_mut().truncate(held_from));
            histograms.restore(&drained, false);
            Err(error)
        }
    }
}

/// Keeps a copy of drained counts until the transaction ends: put back into shared memory if
/// it aborts, forgotten if it commits. Returns where the copy starts among the held ones.
fn restore_on_abort(drained: &[crate::histogram::table::Drained]) -> usize {
    let held_from = UNCOMMITTED_LATENCY.with(|pending| {
        let mut pending = pending.borrow_mut();
        let from = pending.len();
        pending.extend(drained.iter().cloned());
        from
    });
    if !LATENCY_XACT_CALLBACK.with(|registered| registered.replace(true)) {
        // SAFETY: registers a callback of this backend, for the rest of its life.
        unsafe { pg_sys::RegisterXactCallback(Some(latency_at_xact_end), std::ptr::null_mut()) };
    }
    held_from
}

#[pg_guard]
unsafe extern "C-unwind" fn latency_at_xact_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let restore = match event {
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => true,
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => false,
        _ => return,
    };
    let pending = UNCOMMITTED_LATENCY.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    if restore && !pending.is_empty() {
        if let Some(histograms) = crate::histogram::table::table() {
            histograms.restore(&pending, false);
        }
    }
}

/// One statement writing the drained histograms per query and, summed, per database. The
/// entries reach it as typed array arguments, one element per entry (the buckets flattened, each
/// with the number of its entry), never as text: the statement is the same whatever was drained.
fn store_latency(
    drained: &[crate::histogram::table::Drained],
    interval_start: &str,
    reset: bool,
) -> Result<Option<i64>, pgrx::spi::Error> {
    let count = drained.len();
    let (mut dbid, mut userid, mut queryid) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut runs, mut run_executions, mut run_max_length, mut run_parent, mut run_application) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut cpu_user, mut cpu_system, mut read_bytes, mut write_bytes) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut bucket_entry, mut bucket, mut executions) = (Vec::new(), Vec::new(), Vec::new());
    for (number, entry) in drained.iter().enumerate() {
        // as int8: an oid argument of 0 (the overflow histogram's user) would become NULL
        dbid.push(i64::from(entry.dbid));
        userid.push(i64::from(entry.userid));
        queryid.push(entry.queryid);
        // the runs of the statement (the N of an N+1): NULL when none ended in the interval
        let entry_runs = entry.runs.as_ref();
        runs.push(entry_runs.map(|r| r.runs as i64));
        run_executions.push(entry_runs.map(|r| r.executions as i64));
        run_max_length.push(entry_runs.map(|r| r.max_length as i64));
        run_parent.push(entry_runs.map(|r| r.parent));
        run_application.push(entry_runs.and_then(|r| r.application.clone()));
        // the resources of the measured executions: NULL when none was measured (a drain
        // between an execution's count and its figures may leave figures with no count: they
        // are kept)
        let usage =
            (entry.usage != crate::histogram::table::Usage::default()).then_some(&entry.usage);
        cpu_user.push(usage.map(|u| u.cpu_user_us as f64 / 1000.0));
        cpu_system.push(usage.map(|u| u.cpu_system_us as f64 / 1000.0));
        read_bytes.push(usage.map(|u| u.read_bytes as i64));
        write_bytes.push(usage.map(|u| u.write_bytes as i64));
        for &(b, n) in &entry.buckets {
            bucket_entry.push(number as i64 + 1);
            bucket.push(b as i16);
            executions.push(n as i64);
        }
    }
    let sql = format!(
        "WITH drained AS (
             SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int8[]),
                                      pg_catalog.unnest($3::pg_catalog.int8[]), pg_catalog.unnest($4::pg_catalog.int8[]),
                                      pg_catalog.unnest($5::pg_catalog.int8[]), pg_catalog.unnest($6::pg_catalog.int8[]),
                                      pg_catalog.unnest($7::pg_catalog.int8[]), pg_catalog.unnest($8::pg_catalog.text[]),
                                      pg_catalog.unnest($9::pg_catalog.float8[]), pg_catalog.unnest($10::pg_catalog.float8[]),
                                      pg_catalog.unnest($11::pg_catalog.int8[]), pg_catalog.unnest($12::pg_catalog.int8[]))
                    WITH ORDINALITY AS d(dbid, userid, queryid, runs, run_executions, run_max_length,
                                         run_parent_queryid, run_application, cpu_user_time, cpu_system_time,
                                         disk_read_bytes, disk_write_bytes, entry)),
         buckets AS (
             SELECT * FROM ROWS FROM (pg_catalog.unnest($13::pg_catalog.int8[]), pg_catalog.unnest($14::pg_catalog.int2[]),
                                      pg_catalog.unnest($15::pg_catalog.int8[])) AS b(entry, bucket, executions)),
         histograms AS (
             SELECT b.entry, pg_catalog.sum(b.executions)::bigint AS executions,
                    pg_catalog.array_agg(b.bucket ORDER BY b.bucket) AS buckets,
                    pg_catalog.array_agg(b.executions ORDER BY b.bucket) AS counts
               FROM buckets b GROUP BY b.entry),
         per_query AS (
             INSERT INTO dbanalytics.statement_latency
                    (interval_start, interval_end, dbid, userid, queryid, reset, executions, buckets, counts,
                     runs, run_executions, run_max_length, run_parent_queryid, run_application,
                     cpu_user_time, cpu_system_time, disk_read_bytes, disk_write_bytes)
             SELECT {interval_start}, pg_catalog.now(), d.dbid::pg_catalog.oid, d.userid::pg_catalog.oid, d.queryid, {reset},
                    COALESCE(h.executions, 0), COALESCE(h.buckets, '{{}}'), COALESCE(h.counts, '{{}}'),
                    d.runs, d.run_executions, d.run_max_length, d.run_parent_queryid, d.run_application,
                    d.cpu_user_time, d.cpu_system_time, d.disk_read_bytes, d.disk_write_bytes
               FROM drained d LEFT JOIN histograms h ON h.entry OPERATOR(pg_catalog.=) d.entry
             RETURNING 1),
         per_database AS (
             INSERT INTO dbanalytics.database_latency
             SELECT {interval_start}, pg_catalog.now(), x.dbid::pg_catalog.oid, db.datname, {reset},
                    pg_catalog.sum(x.executions)::bigint,
                    pg_catalog.array_agg(x.bucket ORDER BY x.bucket),
                    pg_catalog.array_agg(x.executions ORDER BY x.bucket)
               FROM (SELECT d.dbid, b.bucket, pg_catalog.sum(b.executions)::bigint AS executions
                       FROM buckets b JOIN drained d ON d.entry OPERATOR(pg_catalog.=) b.entry
                      GROUP BY d.dbid, b.bucket) x
               LEFT JOIN pg_catalog.pg_database db ON db.oid OPERATOR(pg_catalog.=) x.dbid::pg_catalog.oid
              GROUP BY x.dbid, db.datname
             RETURNING 1)
         SELECT (SELECT pg_catalog.count(*) FROM per_query) + (SELECT pg_catalog.count(*) FROM per_database)"
    );
    spi::execute_returning_with_args::<i64>(
        &sql,
        &[
            dbid.into(),
            userid.into(),
            queryid.into(),
            runs.into(),
            run_executions.into(),
            run_max_length.into(),
            run_parent.into(),
            run_application.into(),
            cpu_user.into(),
            cpu_system.into(),
            read_bytes.into(),
            write_bytes.into(),
            bucket_entry.into(),
            bucket.into(),
            executions.into(),
        ],
    )
}

/// `(previous_snapshot, interval_reset, counters_zeroed)` as SQL arguments.
fn interval_arguments(previous_snapshot: &str, interval: &Interval) -> String {
    format!(
        "{previous_snapshot}, {}, {}",
        interval.is_reset(),
        interval.counters_zeroed()
    )
}

/// Epoch queries return times as exact epoch seconds (numeric text): independent of TimeZone.
const POSTMASTER_ONLY_EPOCH: &str = "SELECT dbanalytics._server_life(), NULL::text, NULL::bigint";

/// The current database's stats_reset covers its tables and indexes.
const DATABASE_EPOCH: &str = "SELECT dbanalytics._server_life(),
        EXTRACT(epoch FROM d.stats_reset)::text, NULL::bigint
   FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database()";

fn snapshot_statements() -> Result<Collected, SourceError> {
    let schema = spi::select_one::<String>(
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_stat_statements'",
    )
    .map_err(spi_error)?;
    let Some(schema) = schema else {
        return Ok(Collected::skipped(
            "pg_stat_statements is not installed in this database: \
                 CREATE EXTENSION pg_stat_statements (and preload it) to collect statements",
        ));
    };
    // pg_stat_statements_info's reset time and evictions, where its version has them (versions.sql)
    let epoch_sql = format!(
        "SELECT dbanalytics._server_life(), e.stats_reset, e.dealloc
           FROM dbanalytics._statements_epoch({}) e",
        spi::literal(Some(&schema))
    );
    snapshot_counters("statements", &epoch_sql, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_statements({}, {})",
            spi::literal(Some(&schema)),
            interval_arguments(previous, interval)
        )
    })
}

fn snapshot_databases() -> Result<Collected, SourceError> {
    snapshot_counters("databases", POSTMASTER_ONLY_EPOCH, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_databases({})",
            interval_arguments(previous, interval)
        )
    })
}

/// A database's stats_reset also moves when only one table's counters are reset
/// (`pg_stat_reset_single_table_counters()` on PostgreSQL 15), so for per-object counters it
/// never means that every counter went to zero: the interval is marked as a reset and each
/// counter is judged by itself (counter_delta: one that went down yields its current value).
/// After a full `pg_stat_reset()` a counter that has already passed its old value is thus
/// undercounted for one interval, never overcounted.
fn per_object(interval: &Interval) -> Interval {
    match interval {
        Interval::Reset { reason, .. } => Interval::Reset {
            counters_zeroed: false,
            reason,
        },
        other => other.clone(),
    }
}

fn snapshot_tables() -> Result<Collected, SourceError> {
    snapshot_counters("tables", DATABASE_EPOCH, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_tables({})",
            interval_arguments(previous, &per_object(interval))
        )
    })
}

fn snapshot_indexes() -> Result<Collected, SourceError> {
    snapshot_counters("indexes", DATABASE_EPOCH, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_indexes({})",
            interval_arguments(previous, &per_object(interval))
        )
    })
}

fn snapshot_bgwriter() -> Result<Collected, SourceError> {
    // pg_stat_bgwriter's reset time up to 16; none from 17 (versions.sql says why)
    let epoch_sql =
        "SELECT dbanalytics._server_life(), dbanalytics._bgwriter_epoch(), NULL::bigint";
    snapshot_counters("bgwriter", epoch_sql, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_bgwriter({})",
            interval_arguments(previous, interval)
        )
    })
}

/// pg_stat_io, on the servers that have it (versions.sql says which).
fn snapshot_io() -> Result<Collected, SourceError> {
    let unavailable = spi::select_one::<String>("SELECT dbanalytics._source_unavailable('io')")
        .map_err(spi_error)?;
    if let Some(reason) = unavailable {
        return Ok(Collected::skipped(reason));
    }
    let epoch_sql = "SELECT dbanalytics._server_life(), dbanalytics._io_epoch(), NULL::bigint";
    snapshot_counters("io", epoch_sql, |previous, interval| {
        format!(
            "SELECT dbanalytics._snapshot_io({})",
            interval_arguments(previous, interval)
        )
    })
}

fn snapshot_replication() -> Result<Collected, SourceError> {
    snapshot_counters("replication", POSTMASTER_ONLY_EPOCH, |previous, _| {
        format!("SELECT dbanalytics._snapshot_replication({previous})")
    })
    .map(|collected| Collected::rows(collected.rows))
}

fn snapshot_replication_slots() -> Result<Collected, SourceError> {
    snapshot_counters("replication_slots", POSTMASTER_ONLY_EPOCH, |previous, _| {
        format!("SELECT dbanalytics._snapshot_replication_slots({previous})")
    })
    .map(|collected| Collected::rows(collected.rows))
}

/// The server's transaction counters, WAL position, disk space and host figures.
fn snapshot_server() -> Result<Collected, SourceError> {
    let rows = spi::execute_returning::<i64>("SELECT dbanalytics._snapshot_server()")
        .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Minute rollups of the raw samples.
fn rollup_minutes() -> Result<Collected, SourceError> {
    let rolled_until = spi::select_one::<String>(
        "SELECT updated_at::text FROM dbanalytics.source_state WHERE source = 'rollup'",
    )
    .map_err(spi_error)?;
    let (rows, new_rolled_until) = Spi::get_two::<i64, String>(&format!(
        "SELECT rows_written, new_rolled_until::text
           FROM dbanalytics._rollup_minutes({}::timestamptz)",
        spi::literal(rolled_until.as_deref())
    ))
    .map_err(spi_error)?;
    spi::execute(&format!(
        "INSERT INTO dbanalytics.source_state AS s (source, updated_at)
         VALUES ('rollup', {until}::timestamptz)
         ON CONFLICT (source) DO UPDATE SET updated_at = excluded.updated_at",
        until = spi::literal(new_rolled_until.as_deref()),
    ))
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Hourly rollups of the statement, table and index deltas, then daily ones of statements.
fn rollup_hours() -> Result<Collected, SourceError> {
    let rows =
        spi::execute_returning::<i64>("SELECT dbanalytics._rollup_hours()").map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Records the health score when the last record is older than dbanalytics.health_interval.
fn record_health() -> Result<Collected, SourceError> {
    let rows = spi::execute_returning::<i64>(&format!(
        "SELECT dbanalytics._record_health(pg_catalog.make_interval(secs => {}))",
        gucs::health_interval().as_secs()
    ))
    .map_err(spi_error)?;
    Ok(Collected::rows(rows.unwrap_or(0)))
}

/// Opens, updates and resolves alerts; each opening is announced with NOTIFY dbanalytics_alerts.
fn evaluate_alerts() -> Result<Collected, SourceError> {
    let opened = spi::execute_returning::<i64>("SELECT dbanalytics._evaluate_alerts()")
        .map_err(spi_error)?;
    Ok(Collected::rows(opened.unwrap_or(0)))
}
