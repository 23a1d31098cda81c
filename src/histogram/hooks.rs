//! Executor hooks that time each statement and record it in its query's histogram.
//!
//! Chained like pg_stat_statements': each hook calls the one installed before it (or the
//! standard executor). ExecutorStart asks for a total-time instrument when none exists (with
//! INSTRUMENT_ALL, as pg_stat_statements does, so that whichever of the two allocates it, the
//! other still gets its buffer counts); ExecutorEnd reads the total and records it. Nesting is
//! tracked through ExecutorRun/ExecutorFinish so that only top-level statements are recorded
//! unless `dbanalytics.histograms_nested` is on. ExecutorEnd also hands every top-level
//! execution to this backend's run tracker (`runs.rs`: the N of an N+1), which records a run in
//! shared memory when it ends, or when the backend exits. Around each top-level execution
//! (ExecutorStart to ExecutorEnd) getrusage measures the backend's CPU time and block I/O, as
//! pg_stat_kcache does; a top-level statement that starts while another one is open (a cursor
//! read in steps) leaves the first unmeasured.
//!
//! Version differences (docs/versions.md): PostgreSQL 18 dropped ExecutorRun's `execute_once`
//! argument; 13 and 14 have no `shmem_request_hook` (shared memory is requested directly in
//! `_PG_init`, which runs while the postmaster preloads), and 13 computes query ids only when
//! pg_stat_statements is loaded (no `EnableQueryId`) and has no `async_mode` in `InstrAlloc`.

use super::runs::RunTracker;
use super::table;
use crate::gucs;
use pgrx::pg_sys;
use pgrx::prelude::*;

static mut PREVIOUS_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREVIOUS_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREVIOUS_END: pg_sys::ExecutorEnd_hook_type = None;
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREVIOUS_SHMEM_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREVIOUS_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// State of this backend. A PostgreSQL backend runs its hooks on one thread, so a plain static
/// is per backend and needs no thread-local storage: a thread-local in a shared library costs a
/// `__tls_get_addr` call at every access, and the hooks read these several times per statement.
pub(crate) struct BackendLocal<T: Copy>(std::cell::UnsafeCell<T>);

// SAFETY: only ever accessed from the backend's one thread (the executor hooks, the exit
// callback and the workers' start-up all run on it).
unsafe impl<T: Copy> Sync for BackendLocal<T> {}

impl<T: Copy> BackendLocal<T> {
    pub(crate) const fn new(value: T) -> Self {
        BackendLocal(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    fn get(&self) -> T {
        // SAFETY: single-threaded (see the Sync impl); T is Copy, no reference escapes
        unsafe { *self.0.get() }
    }

    #[inline]
    fn set(&self, value: T) {
        // SAFETY: as in get
        unsafe { *self.0.get() = value }
    }

    /// Changes the value in place (no copy in and out).
    #[inline(always)]
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: as in get; the reference lives only for `change`, which cannot reach this
        // static again (it is handed the value, not the static)
        change(unsafe { &mut *self.0.get() })
    }
}

// Two getters of the backend's state, called at every execution, that cannot raise an error:
// declared here without pgrx's error guard, which costs about 100 instructions a call (a
// thread check, saving three globals, a sigsetjmp) for functions that take a few.
extern "C" {
    #[link_name = "GetCurrentStatementStartTimestamp"]
    fn statement_start_timestamp() -> pg_sys::TimestampTz;
    #[link_name = "GetUserId"]
    fn current_user_id() -> pg_sys::Oid;
}

/// The top-level execution being measured (its QueryDesc's address) and the backend's usage at
/// its start.
static USAGE_START: BackendLocal<Option<(usize, table::Usage)>> = BackendLocal::new(None);

/// This backend's CPU time and block I/O so far (getrusage; blocks are 512 bytes on Linux).
fn usage_now() -> table::Usage {
    // SAFETY: getrusage fills the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    table::Usage {
        executions: 0,
        cpu_user_us: micros(usage.ru_utime),
        cpu_system_us: micros(usage.ru_stime),
        read_bytes: usage.ru_inblock as u64 * 512,
        write_bytes: usage.ru_oublock as u64 * 512,
    }
}

/// What the execution of `query_desc` used, if its start was measured.
fn usage_of(query_desc: *mut pg_sys::QueryDesc) -> Option<table::Usage> {
    let (measured, start) = USAGE_START.get()?;
    if measured != query_desc as usize {
        return None;
    }
    USAGE_START.set(None);
    let end = usage_now();
    Some(table::Usage {
        executions: 1,
        cpu_user_us: end.cpu_user_us.saturating_sub(start.cpu_user_us),
        cpu_system_us: end.cpu_system_us.saturating_sub(start.cpu_system_us),
        read_bytes: end.read_bytes.saturating_sub(start.read_bytes),
        write_bytes: end.write_bytes.saturating_sub(start.write_bytes),
    })
}

/// Depth of executor calls in this backend: 0 while a top-level statement starts or ends.
static NESTING: BackendLocal<i32> = BackendLocal::new(0);
/// Set in dbanalytics' own workers: their collection statements are not the workload.
static IGNORED: BackendLocal<bool> = BackendLocal::new(false);
/// This backend's last executions, for runs of one statement.
static RUNS: BackendLocal<RunTracker> = BackendLocal::new(RunTracker::new());
/// Whether the exit callback that records the last run is registered.
static EXIT_CALLBACK: BackendLocal<bool> = BackendLocal::new(false);

/// Stops recording in this process (the sampler and the collector call it at start).
pub fn ignore_this_process() {
    IGNORED.set(true);
}

/// Decrements the nesting level however the executor call ends (an ERROR unwinds through it).
struct Nested;

impl Nested {
    fn enter() -> Self {
        NESTING.set(NESTING.get() + 1);
        Nested
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTING.set(NESTING.get() - 1);
    }
}

/// Installs the shared-memory and executor hooks. Only while preloading.
pub fn install() {
    // SAFETY: _PG_init runs once per process before any query; we save and chain the hooks.
    unsafe {
        #[cfg(not(feature = "pg13"))]
        pg_sys::EnableQueryId();
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        {
            PREVIOUS_SHMEM_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(shmem_request);
        }
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        pg_sys::RequestAddinShmemSpace(shmem_size());
        PREVIOUS_SHMEM_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
        PREVIOUS_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        PREVIOUS_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    if let Some(previous) = PREVIOUS_SHMEM_REQUEST {
        previous();
    }
    pg_sys::RequestAddinShmemSpace(shmem_size());
}

/// Shared memory of the histogram table and the plan queue.
fn shmem_size() -> usize {
    table::shmem_size(gucs::max_histogram_queries()) + crate::plans::queue::shmem_size()
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    if let Some(previous) = PREVIOUS_SHMEM_STARTUP {
        previous();
    }
    table::attach(gucs::max_histogram_queries());
    crate::plans::queue::attach();
    // the postmaster (not a backend re-attaching under EXEC_BACKEND)
    if !pg_sys::IsUnderPostmaster {
        super::persist::at_postmaster_start();
    }
}

/// Should the statement being started or ended now be recorded? (Not a plain EXPLAIN, which
/// starts and ends the executor without running the plan.)
unsafe fn tracked(query_desc: *mut pg_sys::QueryDesc) -> bool {
    let explain_only = !(*query_desc).estate.is_null()
        && (*(*query_desc).estate).es_top_eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0;
    !explain_only
        && gucs::histograms()
        && !IGNORED.get()
        // a parallel worker runs part of its leader's statement, which the leader records
        && pg_sys::ParallelWorkerNumber < 0
        && (NESTING.get() == 0 || gucs::histograms_nested())
        && (*(*query_desc).plannedstmt).queryId != 0
}

/// The statement's query id as pg_stat_statements shows it (a bigint): PostgreSQL 18 stores it
/// signed, earlier versions unsigned (the same 64 bits).
#[allow(clippy::unnecessary_cast)] // the cast is a no-op on 18
unsafe fn query_id(query_desc: *mut pg_sys::QueryDesc) -> i64 {
    (*(*query_desc).plannedstmt).queryId as i64
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    if NESTING.get() == 0 {
        let tracked = tracked(query_desc);
        if tracked {
            crate::plans::instrument_if_analyzing(query_desc, eflags);
        }
        crate::plans::note_start(query_desc, tracked);
    }
    match PREVIOUS_START {
        Some(previous) => previous(query_desc, eflags),
        None => pg_sys::standard_ExecutorStart(query_desc, eflags),
    }
    if tracked(query_desc) && (*query_desc).totaltime.is_null() {
        let caller_context = pg_sys::MemoryContextSwitchTo((*(*query_desc).estate).es_query_cxt);
        // PostgreSQL 13's InstrAlloc has no async_mode argument
        #[cfg(feature = "pg13")]
        let instrument = pg_sys::InstrAlloc(1, pg_sys::InstrumentOption::INSTRUMENT_ALL as i32);
        #[cfg(not(feature = "pg13"))]
        let instrument =
            pg_sys::InstrAlloc(1, pg_sys::InstrumentOption::INSTRUMENT_ALL as i32, false);
        (*query_desc).totaltime = instrument;
        pg_sys::MemoryContextSwitchTo(caller_context);
    }
    if NESTING.get() == 0 {
        // a start left by an execution that ended in an error is dropped here
        let measure = gucs::resource_usage() && tracked(query_desc);
        USAGE_START.set(measure.then(|| (query_desc as usize, usage_now())));
    }
}

#[cfg(not(feature = "pg18"))]
#[pg_guard]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    let _nested = Nested::enter();
    match PREVIOUS_RUN {
        Some(previous) => previous(query_desc, direction, count, execute_once),
        None => pg_sys::standard_ExecutorRun(query_desc, direction, count, execute_once),
    }
}

/// PostgreSQL 18 removed `execute_once` (a portal now always knows whether it runs once).
#[cfg(feature = "pg18")]
#[pg_guard]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    let _nested = Nested::enter();
    match PREVIOUS_RUN {
        Some(previous) => previous(query_desc, direction, count),
        None => pg_sys::standard_ExecutorRun(query_desc, direction, count),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_finish(query_desc: *mut pg_sys::QueryDesc) {
    let _nested = Nested::enter();
    match PREVIOUS_FINISH {
        Some(previous) => previous(query_desc),
        None => pg_sys::standard_ExecutorFinish(query_desc),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_end(query_desc: *mut pg_sys::QueryDesc) {
    if !(*query_desc).totaltime.is_null() && tracked(query_desc) {
        if let Some(histograms) = table::table() {
            // finishes the timing (pg_stat_statements may do it again: that is a no-op)
            pg_sys::InstrEndLoop((*query_desc).totaltime);
            let micros = ((*(*query_desc).totaltime).total * 1_000_000.0) as u64;
            let (dbid, userid, queryid) = (
                pg_sys::MyDatabaseId.to_u32(),
                current_user_id().to_u32(),
                query_id(query_desc),
            );
            let usage = if NESTING.get() == 0 {
                usage_of(query_desc)
            } else {
                None
            };
            let own = histograms.record(dbid, userid, queryid, micros, usage);
            if NESTING.get() == 0 {
                track_run(&histograms, dbid, userid, queryid, query_desc, micros);
                crate::plans::consider(query_desc, dbid, userid, queryid, micros, own);
            }
        }
    }
    match PREVIOUS_END {
        Some(previous) => previous(query_desc),
        None => pg_sys::standard_ExecutorEnd(query_desc),
    }
}

/// Feeds one top-level execution to the run tracker; records the run it ended, if any. The
/// start is the statement's (its message's arrival), the end that plus the execution time.
unsafe fn track_run(
    histograms: &table::Table,
    dbid: u32,
    userid: u32,
    queryid: i64,
    query_desc: *mut pg_sys::QueryDesc,
    micros: u64,
) {
    let rows = (*(*query_desc).estate).es_processed;
    let start = statement_start_timestamp();
    let end = start + micros as i64;
    let ended = RUNS.update(|tracker| tracker.executed(queryid, rows, start, end));
    if let Some(run) = ended {
        histograms.record_run(
            dbid,
            userid,
            run.queryid,
            run.length,
            run.parent,
            application_name(),
        );
    }
    if !EXIT_CALLBACK.get() {
        EXIT_CALLBACK.set(true);
        pg_sys::before_shmem_exit(Some(record_last_run), pg_sys::Datum::from(0));
    }
}

/// At backend exit: the run in progress ends too (a connection per request runs its N+1 and
/// disconnects).
#[pg_guard]
unsafe extern "C-unwind" fn record_last_run(_code: i32, _arg: pg_sys::Datum) {
    let ended = RUNS.update(RunTracker::end_run);
    if let (Some(run), Some(histograms)) = (ended, table::table()) {
        histograms.record_run(
            pg_sys::MyDatabaseId.to_u32(),
            current_user_id().to_u32(),
            run.queryid,
            run.length,
            run.parent,
            application_name(),
        );
    }
}

/// This connection's `application_name` (the setting's bytes; empty when unset). Read once per
/// run that ends, never per execution.
unsafe fn application_name() -> &'static [u8] {
    let name = pg_sys::application_name;
    if name.is_null() {
        return &[];
    }
    std::ffi::CStr::from_ptr(name).to_bytes()
}
