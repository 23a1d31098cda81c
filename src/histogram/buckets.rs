//! Log-linear latency buckets, HDR-histogram style, in microseconds.
//!
//! Values below 16 µs get one bucket per microsecond. From 16 µs on, every power of two is
//! split into 16 equal sub-buckets, so a bucket is at most 1/16 of its lower bound wide: its
//! midpoint is within 1/32 (3.1 %) of any value in it, and within 5 % from 10 µs on. The last
//! regular bucket ends at 2^32 µs (about 71.6 minutes); longer executions share one overflow
//! bucket. 465 buckets in all.

/// Sub-buckets per power of two (2^SUB_BITS).
const SUB_BITS: u32 = 4;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Regular buckets cover [0, 2^MAX_BITS) µs.
const MAX_BITS: u32 = 32;
/// Index of the overflow bucket (values of 2^32 µs and more).
pub const OVERFLOW_BUCKET: usize =
    (SUB_BUCKETS + (MAX_BITS - SUB_BITS) as u64 * SUB_BUCKETS) as usize;
pub const BUCKETS: usize = OVERFLOW_BUCKET + 1;

/// The bucket a duration in microseconds falls into.
pub fn bucket_of(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    if micros >> MAX_BITS != 0 {
        return OVERFLOW_BUCKET;
    }
    let exponent = 63 - micros.leading_zeros(); // >= SUB_BITS
    let shift = exponent - SUB_BITS;
    let sub = (micros >> shift) - SUB_BUCKETS;
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as usize
}

/// `[lower, upper)` of a bucket in microseconds; the overflow bucket has no upper bound.
pub fn bounds(bucket: usize) -> (u64, Option<u64>) {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return (bucket, Some(bucket + 1));
    }
    if bucket >= OVERFLOW_BUCKET as u64 {
        return (1 << MAX_BITS, None);
    }
    let shift = (bucket - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (bucket - SUB_BUCKETS) % SUB_BUCKETS;
    let lower = (SUB_BUCKETS + sub) << shift;
    (lower, Some(lower + (1 << shift)))
}

/// The value reported for a bucket: its midpoint (the overflow bucket reports its lower bound).
pub fn representative_micros(bucket: usize) -> f64 {
    match bounds(bucket) {
        (lower, Some(upper)) => (lower + upper) as f64 / 2.0,
        (lower, None) => lower as f64,
    }
}

/// Merges sparse `(bucket, count)` pairs (in any order, buckets may repeat) into one pair per
/// non-empty bucket, in bucket order; pairs beyond the last bucket are left out. Sparse, so that
/// merging the few buckets of one interval costs nothing like the 465 counters of every bucket.
pub fn merge(pairs: impl IntoIterator<Item = (usize, u64)>) -> Vec<(usize, u64)> {
    let mut pairs: Vec<(usize, u64)> = pairs
        .into_iter()
        .filter(|&(bucket, count)| bucket < BUCKETS && count > 0)
        .collect();
    pairs.sort_unstable_by_key(|&(bucket, _)| bucket);
    let mut merged: Vec<(usize, u64)> = Vec::with_capacity(pairs.len());
    for (bucket, count) in pairs {
        match merged.last_mut() {
            Some((last, total)) if *last == bucket => *total += count,
            _ => merged.push((bucket, count)),
        }
    }
    merged
}

/// The value (µs) below which `fraction` of the recorded executions fall in a histogram merged by
/// [`merge`]: the representative of the first bucket whose cumulative count reaches
/// ceil(fraction × total). `None` when empty.
pub fn percentile(merged: &[(usize, u64)], fraction: f64) -> Option<f64> {
    let total: u64 = merged.iter().map(|&(_, count)| count).sum();
    if total == 0 {
        return None;
    }
    let rank = ((fraction.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for &(bucket, count) in merged {
        seen += count;
        if seen >= rank {
            return Some(representative_micros(bucket));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value lands in a bucket whose bounds contain it, buckets are contiguous.
    #[test]
    fn buckets_contain_their_values() {
        let mut probe: Vec<u64> = (0..100_000).collect();
        let mut v = 100_000u64;
        while v < (1 << 40) {
            probe.extend([v - 1, v, v + 1]);
            v = v * 21 / 20 + 1;
        }
        for micros in probe {
            let bucket = bucket_of(micros);
            let (lower, upper) = bounds(bucket);
            assert!(
                lower <= micros,
                "{micros} below bucket {bucket} [{lower}, {upper:?})"
            );
            if let Some(upper) = upper {
                assert!(
                    micros < upper,
                    "{micros} above bucket {bucket} [{lower}, {upper})"
                );
            }
        }
        for bucket in 0..OVERFLOW_BUCKET {
            assert_eq!(
                bounds(bucket).1,
                Some(bounds(bucket + 1).0),
                "gap after bucket {bucket}"
            );
        }
    }

    /// The reported midpoint is within 5 % of every value from 10 µs to the last regular bucket.
    #[test]
    fn relative_error_is_at_most_five_percent() {
        let mut worst: f64 = 0.0;
        for bucket in bucket_of(10)..OVERFLOW_BUCKET {
            let (lower, upper) = bounds(bucket);
            let upper = upper.unwrap() - 1;
            let mid = representative_micros(bucket);
            for value in [lower.max(10), upper] {
                worst = worst.max((mid - value as f64).abs() / value as f64);
            }
        }
        assert!(worst <= 0.05, "worst relative error {worst}");
        // from 16 µs on the bound is 1/32
        let (lower, upper) = bounds(bucket_of(3_600_000_000));
        assert!((upper.unwrap() - lower) as f64 / 2.0 / lower as f64 <= 1.0 / 32.0);
    }

    #[test]
    fn range_reaches_beyond_an_hour() {
        assert!(bucket_of(3_600_000_000) < OVERFLOW_BUCKET);
        assert_eq!(bucket_of(u64::MAX), OVERFLOW_BUCKET);
        assert_eq!(BUCKETS, 465);
    }

    #[test]
    fn merging_is_associative_and_commutative() {
        let a = [(bucket_of(120), 3u64), (bucket_of(5_000), 1)];
        let b = [(bucket_of(120), 2u64), (bucket_of(9_000_000), 4)];
        let c = [(bucket_of(7), 5u64)];
        let ab_c = merge(
            merge(a.iter().chain(b.iter()).copied())
                .into_iter()
                .chain(c),
        );
        let a_bc = merge(
            a.iter()
                .copied()
                .chain(merge(b.iter().chain(c.iter()).copied())),
        );
        let cba = merge(c.iter().chain(b.iter()).chain(a.iter()).copied());
        assert_eq!(ab_c, a_bc);
        assert_eq!(ab_c, cba);
        assert_eq!(
            ab_c,
            vec![
                (bucket_of(7), 5),
                (bucket_of(120), 5),
                (bucket_of(5_000), 1),
                (bucket_of(9_000_000), 4)
            ]
        );
        // empty counts and buckets beyond the last are left out
        assert_eq!(merge([(3, 0), (BUCKETS, 9), (3, 2)]), vec![(3, 2)]);
    }

    #[test]
    fn percentiles_walk_the_cumulative_counts() {
        // 90 executions of ~1 ms and 10 of ~100 ms
        let dense = merge([(bucket_of(1_000), 90), (bucket_of(100_000), 10)]);
        let p50 = percentile(&dense, 0.5).unwrap();
        let p90 = percentile(&dense, 0.9).unwrap();
        let p95 = percentile(&dense, 0.95).unwrap();
        assert!((p50 - 1_000.0).abs() / 1_000.0 < 0.05, "{p50}");
        assert_eq!(p50, p90);
        assert!((p95 - 100_000.0).abs() / 100_000.0 < 0.05, "{p95}");
        assert_eq!(percentile(&merge([]), 0.5), None);
    }
}
