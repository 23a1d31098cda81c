//! SQL functions over the latency histograms: bucket bounds, percentiles of merged histograms,
//! and the state of the shared-memory table.

use crate::histogram::buckets;
use crate::histogram::table;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

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
    if buckets.len() != counts.len() {
        super::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "dbanalytics: buckets and counts must have the same length, got {} and {}",
                buckets.len(),
                counts.len()
            ),
            "Pass parallel arrays, as statement_latency's buckets and counts columns are.",
        );
    }
    let mut pairs = Vec::with_capacity(buckets.len());
    for (bucket, count) in buckets.into_iter().zip(counts) {
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
    let dense = buckets::merge(pairs);
    fractions
        .into_iter()
        .map(|fraction| {
            fraction
                .and_then(|f| buckets::percentile(&dense, f))
                .map(|micros| micros / 1000.0)
        })
        .collect()
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
