//! SQL functions over the latency histograms: bucket bounds, percentiles of merged histograms,
//! and the state of the shared-memory table.

use crate::histogram::buckets;
use crate::histogram::table;
use pgrx::datum::Array;
use pgrx::prelude::*;
use pgrx::{Internal, PgMemoryContexts, PgSqlErrorCode};

/// Every bucket with its bounds in milliseconds (upper is NULL for the overflow bucket).
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn latency_buckets() -> TableIterator<
    'static,
    (
        name!(bucket, i32),
        name!(lower_ms, f64),
        name!(upper_ms, Option<f64>),
    ),
> {
    TableIterator::new((0..buckets::BUCKETS).map(|bucket| {
        let (lower, upper) = buckets::bounds(bucket);
        (
            bucket as i32,
            lower as f64 / 1000.0,
            upper.map(|upper| upper as f64 / 1000.0),
        )
    }))
}

/// Percentiles (in ms) of the histogram made of `buckets` and `counts` — parallel arrays, in any
/// order, buckets may repeat (so histograms of many intervals are merged by concatenation).
/// Each value is the midpoint of the bucket holding that rank: within 5 % of the true value.
/// NULL elements are skipped (a NULL fraction gives NULL); a bucket outside latency_buckets(), a
/// negative count or a fraction outside [0, 1] is an error.
#[pg_extern(immutable, strict, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn latency_percentiles(
    buckets: Vec<Option<i16>>,
    counts: Vec<Option<i64>>,
    fractions: Vec<Option<f64>>,
) -> Vec<Option<f64>> {
    let merged = buckets::merge(histogram_pairs(
        (buckets.len(), counts.len()),
        buckets.into_iter().zip(counts),
    ));
    percentiles_ms(&merged, &fractions)
}

/// The `(bucket, count)` pairs of the parallel arrays `buckets` and `counts` (their `lengths`,
/// their elements zipped), NULL elements skipped; arrays of different lengths, a bucket outside
/// latency_buckets() or a negative count is an error.
fn histogram_pairs(
    lengths: (usize, usize),
    elements: impl Iterator<Item = (Option<i16>, Option<i64>)>,
) -> Vec<(usize, u64)> {
    if lengths.0 != lengths.1 {
        super::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "dbanalytics: buckets and counts must have the same length, got {} and {}",
                lengths.0, lengths.1
            ),
            "Pass parallel arrays, as statement_latency's buckets and counts columns are.",
        );
    }
    let mut pairs = Vec::with_capacity(lengths.0);
    for (bucket, count) in elements {
        let (Some(bucket), Some(count)) = (bucket, count) else {
            continue;
        };
        if bucket < 0 || bucket as usize >= buckets::BUCKETS || count < 0 {
            super::raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("dbanalytics: no latency histogram has bucket {bucket} with count {count}"),
                &format!(
                    "Buckets are 0 to {} (latency_buckets()); counts are at least 0.",
                    buckets::BUCKETS - 1
                ),
            );
        }
        pairs.push((bucket as usize, count as u64));
    }
    pairs
}

/// The percentiles (in ms) of a histogram merged by buckets::merge at `fractions` (NULL for a
/// NULL fraction or an empty histogram); a fraction outside [0, 1] is an error.
fn percentiles_ms(merged: &[(usize, u64)], fractions: &[Option<f64>]) -> Vec<Option<f64>> {
    if let Some(fraction) = fractions
        .iter()
        .flatten()
        .find(|f| !(0.0..=1.0).contains(*f))
    {
        super::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("dbanalytics: a percentile fraction must be between 0 and 1, got {fraction}"),
            "Pass fractions such as ARRAY[0.5, 0.95, 0.99].",
        );
    }
    fractions
        .iter()
        .map(|fraction| {
            fraction
                .and_then(|f| buckets::percentile(merged, f))
                .map(|micros| micros / 1000.0)
        })
        .collect()
}

/// The state of the aggregate merged_latency_percentiles(): the `(bucket, count)` pairs added so
/// far (merged again whenever they outgrow the buckets, so at most a few times 465) and the
/// fractions of the first row that gave them. Sparse: a group of one interval's few buckets,
/// as each minute of database_performance_metrics is, costs a few pairs, not 465 counters.
#[derive(Default)]
struct MergedHistogram {
    pairs: Vec<(usize, u64)>,
    fractions: Option<Vec<Option<f64>>>,
}

/// merged_latency_percentiles()'s transition: adds one row's histogram to the state, which lives
/// in the aggregate's memory context. A row whose buckets or counts are NULL adds nothing. The
/// arrays are read in place, not converted into vectors (it runs once per row: a week of all
/// statements' histograms is ~100,000 rows). No pinned search_path: it resolves no name, and a
/// SET clause makes PostgreSQL save and restore the settings around every call
/// (fmgr_security_definer): 155 of the 220 ms a week of histogram rows took to merge
/// (tests/e2e_security.sh exempts aggregate support functions, docs/security.md).
#[pg_extern(immutable, parallel_safe)]
pub fn _latency_merge_step(
    state: Internal,
    buckets: Option<Array<'_, i16>>,
    counts: Option<Array<'_, i64>>,
    fractions: Option<Array<'_, f64>>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is this call's; AggCheckCallContext only reads it
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) } == 0 {
        super::raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "dbanalytics: _latency_merge_step() is the transition of merged_latency_percentiles()"
                .to_string(),
            "Call dbanalytics.merged_latency_percentiles(buckets, counts, fractions) instead.",
        );
    }
    // SAFETY: the state is a MergedHistogram allocated below, in the aggregate's context, which
    // outlives every call of this group (it is also where PostgreSQL keeps the state)
    let merged = unsafe {
        PgMemoryContexts::For(context)
            .switch_to(|_| state.get_or_insert_default::<MergedHistogram>())
    };
    if merged.fractions.is_none() {
        merged.fractions = fractions.map(|f| f.iter().collect());
    }
    if let (Some(buckets), Some(counts)) = (buckets, counts) {
        merged.pairs.extend(histogram_pairs(
            (buckets.len(), counts.len()),
            buckets.iter().zip(counts.iter()),
        ));
        if merged.pairs.len() > 4 * buckets::BUCKETS {
            merged.pairs = buckets::merge(std::mem::take(&mut merged.pairs));
        }
    }
    state
}

/// merged_latency_percentiles()'s final function: the percentiles of the merged histogram, NULL
/// when no row had fractions (no row at all, or only NULL fractions). Like the transition, no
/// pinned search_path: it resolves no name.
#[pg_extern(immutable, parallel_safe)]
pub fn _latency_merge_final(state: Internal) -> Option<Vec<Option<f64>>> {
    // SAFETY: a non-NULL state is the MergedHistogram _latency_merge_step made
    let merged = unsafe { state.get::<MergedHistogram>() }?;
    let fractions = merged.fractions.as_ref()?;
    Some(percentiles_ms(
        &buckets::merge(merged.pairs.iter().copied()),
        fractions,
    ))
}

/// The shared-memory histogram table: capacity, queries with their own histogram, databases
/// that overflowed, executions that could not be recorded at all.
// pgrx reads the SQL signature from the inline type, so it cannot be a type alias
#[allow(clippy::type_complexity)]
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub fn histogram_status() -> TableIterator<
    'static,
    (
        name!(enabled, bool),
        name!(capacity, Option<i64>),
        name!(queries, Option<i64>),
        name!(overflow_databases, Option<i64>),
        name!(lost_executions, Option<i64>),
        name!(shared_memory_bytes, Option<i64>),
    ),
> {
    let row = match table::table() {
        Some(histograms) => {
            let status = histograms.status();
            (
                crate::gucs::histograms(),
                Some(status.capacity),
                Some(status.used),
                Some(status.overflow_databases),
                Some(status.lost_executions),
                Some(status.shared_memory_bytes),
            )
        }
        None => (false, None, None, None, None, None),
    };
    TableIterator::once(row)
}
