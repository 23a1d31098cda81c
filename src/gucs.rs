//! Every `dbanalytics.*` setting, registered in one place and read through typed accessors.
//! Units are declared so that PostgreSQL accepts `'1s'`, `'7d'` and names the bounds on error.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;
use std::time::Duration;

/// Database the background workers connect to (where `CREATE EXTENSION dbanalytics` runs).
static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Master switch for background collection.
static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Milliseconds between two activity samples.
static SAMPLE_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Seconds between two statistics snapshots.
static SNAPSHOT_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(60);
/// Minutes raw samples are kept (activity_raw, connection_samples, lock_waits, collector_runs).
static RETENTION_RAW_MIN: GucSetting<i32> = GucSetting::<i32>::new(24 * 60);
/// Minutes the per-minute statement, latency, table and index deltas are kept (the minute tier).
static RETENTION_MINUTES_MIN: GucSetting<i32> = GucSetting::<i32>::new(24 * 60);
/// Minutes the hourly rollups and the small per-minute tables are kept (the hour tier).
static RETENTION_HOURS_MIN: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 60);
/// Minutes the daily statement rollups are kept (the day tier).
static RETENTION_DAYS_MIN: GucSetting<i32> = GucSetting::<i32>::new(365 * 24 * 60);
/// Milliseconds of mean execution time above which a statement counts as slow in an interval.
static SLOW_QUERY_THRESHOLD_MS: GucSetting<i32> = GucSetting::<i32>::new(500);
/// Seconds between two records of the health score in health_history.
static HEALTH_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(300);
/// Whether the executor hooks record latency histograms.
static HISTOGRAMS: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Whether the executor hooks measure each top-level execution's CPU time and block I/O.
static RESOURCE_USAGE: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Whether statements run inside functions are recorded too (not only top-level ones).
static HISTOGRAMS_NESTED: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Queries with their own histogram in shared memory.
static MAX_HISTOGRAM_QUERIES: GucSetting<i32> = GucSetting::<i32>::new(5000);
/// Milliseconds the index advisor may spend planning one statement text (0: no limit).
static ADVICE_PLANNING_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Top-level executions whose plan is captured in one collector interval at most (0: no capture).
static PLAN_CAPTURE_MAX_PER_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(100);
/// Milliseconds from which a top-level execution's plan is captured (as slow).
static PLAN_CAPTURE_THRESHOLD_MS: GucSetting<i32> = GucSetting::<i32>::new(500);
/// Whether a plan shape never explained is captured even when its execution was fast.
static PLAN_CAPTURE_NEW_SHAPES: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Share of fast top-level executions whose plan plan capture identifies (hashes and looks up).
static PLAN_SHAPE_SAMPLE_RATE: GucSetting<f64> = GucSetting::<f64>::new(0.02);
/// Whether top-level executions count rows per plan node, so that slow ones are captured with them.
static PLAN_CAPTURE_ANALYZE: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Whether idle-in-transaction backends are sampled (into activity_raw; activity_samples shows them).
static TRACK_IDLE_IN_TRANSACTION: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `preloading`: a postmaster-context setting can only be defined while the library is loaded
/// by shared_preload_libraries; without preloading there are no workers for it to configure.
pub fn init(preloading: bool) {
    if preloading {
        GucRegistry::define_string_guc(
            c"dbanalytics.database",
            c"Database the dbanalytics background workers connect to.",
            c"Run CREATE EXTENSION dbanalytics in this database. Requires a restart.",
            &DATABASE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_int_guc(
            c"dbanalytics.max_histogram_queries",
            c"Queries that get their own latency histogram in shared memory.",
            c"Each costs about 3.9 kB of shared memory. When all are taken, further queries are \
recorded in an overflow histogram per database (queryid 0). Requires a restart.",
            &MAX_HISTOGRAM_QUERIES,
            100,
            100_000,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"dbanalytics.health_interval",
        c"Time between two records of the health score in health_history.",
        c"The collector computes health_score('1 hour') at its first snapshot after this much time.",
        &HEALTH_INTERVAL_S,
        5,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.histograms",
        c"Records a latency histogram per query (needs shared_preload_libraries).",
        c"When off, the executor hooks do nothing. Percentiles come from these histograms.",
        &HISTOGRAMS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.resource_usage",
        c"Measures the CPU time and block I/O of each top-level execution (getrusage).",
        c"Needs dbanalytics.histograms. Two system calls per top-level execution; off: none, and no resource figures.",
        &RESOURCE_USAGE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.histograms_nested",
        c"Also records statements executed inside functions and procedures.",
        c"Off: only top-level statements, as pg_stat_statements.track = top.",
        &HISTOGRAMS_NESTED,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.enabled",
        c"Enables background sampling and snapshots.",
        c"When off, the workers stay connected but idle; take_sample() and take_snapshot() still work.",
        &ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.sample_interval",
        c"Time between two samples of pg_stat_activity and waiting locks.",
        c"Raw samples go to activity_samples, connection_samples and lock_waits.",
        &SAMPLE_INTERVAL_MS,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.snapshot_interval",
        c"Time between two snapshots of the cumulative statistics.",
        c"Each snapshot stores per-interval deltas of pg_stat_statements, pg_stat_database, \
pg_stat_user_tables, pg_stat_user_indexes, pg_stat_bgwriter and replication gauges, and runs maintenance.",
        &SNAPSHOT_INTERVAL_S,
        5,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.retention_raw",
        c"How long raw samples and collector runs are kept.",
        c"Whole daily partitions are dropped once their newest possible row is older than this.",
        &RETENTION_RAW_MIN,
        60,
        366 * 24 * 60,
        GucContext::Sighup,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.retention_minutes",
        c"How long the per-minute statement, latency, table and index deltas are kept (minute tier).",
        c"Older minutes are answered from the hourly rollups. A partition is dropped only once its hours are rolled up.",
        &RETENTION_MINUTES_MIN,
        24 * 60,
        3660 * 24 * 60,
        GucContext::Sighup,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.retention_hours",
        c"How long hourly rollups and the per-minute rollups of samples, databases and pools are kept (hour tier).",
        c"Older days are answered from the daily statement rollups. A partition is dropped only once its days are rolled up.",
        &RETENTION_HOURS_MIN,
        24 * 60,
        3660 * 24 * 60,
        GucContext::Sighup,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.retention_days",
        c"How long the daily statement rollups are kept (day tier).",
        c"Whole daily partitions are dropped once their newest possible row is older than this.",
        &RETENTION_DAYS_MIN,
        24 * 60,
        3660 * 24 * 60,
        GucContext::Sighup,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.slow_query_threshold",
        c"Mean execution time above which a statement counts as slow.",
        c"Used by database_performance_metrics (slow_queries) and query_analysis(); any user may set it for a session.",
        &SLOW_QUERY_THRESHOLD_MS,
        1,
        3_600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.advice_planning_timeout",
        c"Longest time index_advice() spends planning one statement text (0: no limit).",
        c"Planning evaluates the statement's IMMUTABLE and STABLE functions; a text that takes longer is skipped. Any user may set it for a session.",
        &ADVICE_PLANNING_TIMEOUT_MS,
        0,
        3_600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.plan_capture_max_per_interval",
        c"Plans the executor hooks capture in one collector interval at most (0: plan capture off).",
        c"Needs dbanalytics.histograms. New plan shapes get at most half of it; captures beyond it are dropped and counted in plan_capture_status().",
        &PLAN_CAPTURE_MAX_PER_INTERVAL,
        0,
        10_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"dbanalytics.plan_capture_threshold",
        c"Execution time from which a top-level execution's plan is captured.",
        c"Plans are explained without instrumentation (EXPLAIN (FORMAT JSON, COSTS OFF)), once per plan shape; later slow executions of a known shape are recorded as sightings.",
        &PLAN_CAPTURE_THRESHOLD_MS,
        0,
        3_600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.plan_capture_new_shapes",
        c"Captures a plan shape never explained before, even when its execution was fast.",
        c"So that a query's plan is known before it turns slow and a plan change is seen when it happens.",
        &PLAN_CAPTURE_NEW_SHAPES,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc_with_hooks(
        c"dbanalytics.plan_shape_sample_rate",
        c"Share of fast top-level executions whose plan shape is identified (for new shapes and plan switches).",
        c"Slow executions and a statement's first execution in each collector interval always are. 1: every execution (about 260 instructions each for a statement planned at each execution); a fast plan switch is then seen when it happens, at a lower rate after about 1/rate executions or in the next interval, whichever comes first.",
        &PLAN_SHAPE_SAMPLE_RATE,
        0.0,
        1.0,
        GucContext::Suset,
        GucFlags::default(),
        None,
        Some(crate::plans::sample_rate_assigned),
        None,
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.plan_capture_analyze",
        c"Counts rows per plan node in every top-level execution, so that a slow one's captured plan shows its actual rows.",
        c"Costs every statement the executor's per-node row counting (as auto_explain.log_analyze with log_timing off); off by default.",
        &PLAN_CAPTURE_ANALYZE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"dbanalytics.track_idle_in_transaction",
        c"Samples backends that are idle in a transaction.",
        c"They hold locks and snapshots, so they are sampled by default; connection counts always include them.",
        &TRACK_IDLE_IN_TRANSACTION,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

pub fn database() -> String {
    DATABASE
        .get()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "postgres".to_string())
}

pub fn enabled() -> bool {
    ENABLED.get()
}

pub fn sample_interval() -> Duration {
    Duration::from_millis(SAMPLE_INTERVAL_MS.get() as u64)
}

pub fn snapshot_interval() -> Duration {
    Duration::from_secs(SNAPSHOT_INTERVAL_S.get() as u64)
}

pub fn retention_raw() -> Duration {
    Duration::from_secs(RETENTION_RAW_MIN.get() as u64 * 60)
}

pub fn retention_minutes() -> Duration {
    Duration::from_secs(RETENTION_MINUTES_MIN.get() as u64 * 60)
}

pub fn retention_hours() -> Duration {
    Duration::from_secs(RETENTION_HOURS_MIN.get() as u64 * 60)
}

pub fn retention_days() -> Duration {
    Duration::from_secs(RETENTION_DAYS_MIN.get() as u64 * 60)
}

pub fn health_interval() -> Duration {
    Duration::from_secs(HEALTH_INTERVAL_S.get() as u64)
}

/// A setting the executor hooks read at every statement, read without the check pgrx's
/// `GucSetting::get` makes that it runs on the backend's main thread (a thread-local lookup,
/// about 25 instructions a read): the hooks only ever run on that thread.
fn read_in_hooks<T: pgrx::guc::GucValue<Raw = T> + Copy>(setting: &GucSetting<T>) -> T {
    // SAFETY: the value PostgreSQL's GUC machinery writes through this pointer, on this thread
    unsafe { *setting.as_ptr() }
}

pub fn histograms() -> bool {
    read_in_hooks(&HISTOGRAMS)
}

pub fn resource_usage() -> bool {
    read_in_hooks(&RESOURCE_USAGE)
}

pub fn histograms_nested() -> bool {
    read_in_hooks(&HISTOGRAMS_NESTED)
}

pub fn max_histogram_queries() -> u32 {
    MAX_HISTOGRAM_QUERIES.get() as u32
}

pub fn advice_planning_timeout_ms() -> i32 {
    ADVICE_PLANNING_TIMEOUT_MS.get()
}

/// dbanalytics.slow_query_threshold in milliseconds.
pub fn slow_query_threshold_ms() -> i32 {
    SLOW_QUERY_THRESHOLD_MS.get()
}

pub fn plan_capture_max_per_interval() -> u32 {
    read_in_hooks(&PLAN_CAPTURE_MAX_PER_INTERVAL) as u32
}

/// dbanalytics.plan_capture_threshold in microseconds.
pub fn plan_capture_threshold_us() -> u64 {
    read_in_hooks(&PLAN_CAPTURE_THRESHOLD_MS) as u64 * 1000
}

pub fn plan_capture_new_shapes() -> bool {
    read_in_hooks(&PLAN_CAPTURE_NEW_SHAPES)
}

pub fn plan_shape_sample_rate() -> f64 {
    read_in_hooks(&PLAN_SHAPE_SAMPLE_RATE)
}

pub fn plan_capture_analyze() -> bool {
    read_in_hooks(&PLAN_CAPTURE_ANALYZE)
}

pub fn track_idle_in_transaction() -> bool {
    TRACK_IDLE_IN_TRANSACTION.get()
}
