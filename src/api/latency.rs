//! SQL functions over the latency histograms: bucket bounds, percentiles of merged histograms,
//! and the state of the shared-memory table.

use crate::histogram::buckets;
use crate::histogram::table;
use pgrx::prelude::*;

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
#[pg_extern(immutable, strict, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn latency_percentiles(
    buckets: Vec<Option<i16>>,
    counts: Vec<Option<i64>>,
    fractions: Vec<Option<f64>>,
) -> Result<Vec<Option<f64>>, String> {
    if buckets.len() != counts.len() {
        return Err(format!(
            "buckets and counts must have the same length ({} and {})",
            buckets.len(),
            counts.len()
        ));
    }
    let dense = buckets::merge(buckets.into_iter().zip(counts).filter_map(
        |(bucket, count)| match (bucket, count) {
            (Some(bucket), Some(count)) if bucket >= 0 && count > 0 => {
                Some((bucket as usize, count as u64))
            }
            _ => None,
        },
    ));
    Ok(fractions
        .into_iter()
        .map(|fraction| {
            fraction
                .and_then(|f| buckets::percentile(&dense, f))
                .map(|micros| micros / 1000.0)
        })
        .collect())
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
