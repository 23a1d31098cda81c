//! SQL functions over the latency histograms: bucket bounds, percentiles of merged histograms,
//! and the state of the shared-memory table.

use crate::histogram::buckets;
use crate::histogram::table;
use pgrx::array::RawArray;
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
/// in the aggregate's memory context. A row whose buckets or counts are NULL adds nothing. It
/// runs once per row (a week of all statements' histograms is ~100,000 rows), so it is a C
/// function reading its arguments in place: through pgrx's argument conversion (type lookups,
/// a copy of each array) the rows of a week took 80 ms to merge. No pinned search_path: it
/// resolves no name, and a SET clause makes PostgreSQL save and restore the settings around
/// every call (fmgr_security_definer) (tests/e2e_security.sh exempts aggregate support
/// functions, docs/security.md). SQL: `_latency_merge_step(state internal, buckets smallint[],
/// counts bigint[], fractions double precision[]) RETURNS internal` (sql/analytics_common.sql).
///
/// # Safety
/// Called by PostgreSQL's function manager with the arguments declared above.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn dbanalytics_latency_merge_step(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
        if pg_sys::AggCheckCallContext(fcinfo, &mut context) == 0 {
            super::raise(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "dbanalytics: _latency_merge_step() is the transition of merged_latency_percentiles()"
                    .to_string(),
                "Call dbanalytics.merged_latency_percentiles(buckets, counts, fractions) instead.",
            );
        }
        let arguments = std::slice::from_raw_parts((*fcinfo).args.as_ptr(), 4);
        // the state: a MergedHistogram in the aggregate's context (dropped with it)
        let merged: *mut MergedHistogram = if arguments[0].isnull {
            PgMemoryContexts::For(context).leak_and_drop_on_delete(MergedHistogram::default())
        } else {
            arguments[0].value.cast_mut_ptr()
        };
        let merged = &mut *merged;
        if merged.fractions.is_none() && !arguments[3].isnull {
            let fractions = Array::<f64>::from_polymorphic_datum(
                arguments[3].value,
                false,
                pg_sys::FLOAT8ARRAYOID,
            );
            merged.fractions = fractions.map(|f| f.iter().collect());
        }
        if !arguments[1].isnull && !arguments[2].isnull {
            let mut buckets = raw_array(arguments[1].value);
            let mut counts = raw_array(arguments[2].value);
            let lengths = (buckets.len(), counts.len());
            if buckets.any_nulls() || counts.any_nulls() {
                // rare: element by element, the NULLs skipped
                let buckets = Array::<i16>::from_polymorphic_datum(
                    arguments[1].value,
                    false,
                    pg_sys::INT2ARRAYOID,
                );
                let counts = Array::<i64>::from_polymorphic_datum(
                    arguments[2].value,
                    false,
                    pg_sys::INT8ARRAYOID,
                );
                if let (Some(buckets), Some(counts)) = (buckets, counts) {
                    merged
                        .pairs
                        .extend(histogram_pairs(lengths, buckets.iter().zip(counts.iter())));
                }
            } else {
                // SAFETY: int2 and int8 arrays without NULLs hold their elements contiguously
                let (buckets, counts) = (
                    buckets.data::<i16>().as_ref(),
                    counts.data::<i64>().as_ref(),
                );
                merged.pairs.extend(histogram_pairs(
                    lengths,
                    buckets
                        .iter()
                        .zip(counts)
                        .map(|(b, c)| (Some(*b), Some(*c))),
                ));
            }
            if merged.pairs.len() > 4 * buckets::BUCKETS {
                merged.pairs = buckets::merge(std::mem::take(&mut merged.pairs));
            }
        }
        pg_sys::Datum::from(merged as *mut MergedHistogram)
    }
}

/// An array argument, detoasted when it has to be (in the current memory context).
///
/// # Safety
/// `datum` is a non-NULL array datum.
unsafe fn raw_array(datum: pg_sys::Datum) -> RawArray {
    unsafe {
        let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        RawArray::from_ptr(std::ptr::NonNull::new(array).expect("a detoasted array"))
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_dbanalytics_latency_merge_step() -> &'static pg_sys::Pg_finfo_record {
    const V1_API: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1_API
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
