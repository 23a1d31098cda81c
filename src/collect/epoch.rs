//! Is the interval since the previous snapshot a plain delta, or did something reset the
//! counters underneath? The decision is pure (unit-tested below); `sql/snapshots.sql` applies it
//! row by row with `counter_delta()`, which also catches a single counter that went down.

/// What identifies one "life" of a source's cumulative counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Epoch {
    /// `_server_life()`: postmaster start time plus a marker that a crash wipes. A clean
    /// restart keeps the counters, a crash loses them; either way the interval is suspect.
    pub server_life: Option<String>,
    /// The source's own `stats_reset`: a change means every counter restarted from zero.
    pub stats_reset: Option<String>,
    /// `pg_stat_statements_info.dealloc`: a change means entries were evicted (and may return
    /// with fresh counters).
    pub dealloc: Option<i64>,
}

/// How the interval ending now relates to the previous snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interval {
    /// No previous snapshot: remember the counters, write no delta.
    First,
    /// Same epoch: deltas are current minus previous.
    Continuous,
    /// Something reset counters during the interval; its rows are marked `reset`.
    Reset {
        /// Every counter restarted from zero, so the current value is the delta.
        counters_zeroed: bool,
        reason: &'static str,
    },
}

impl Interval {
    pub fn is_reset(&self) -> bool {
        matches!(self, Interval::Reset { .. })
    }

    pub fn counters_zeroed(&self) -> bool {
        matches!(
            self,
            Interval::Reset {
                counters_zeroed: true,
                ..
            }
        )
    }

    pub fn note(&self) -> Option<&'static str> {
        match self {
            Interval::First => Some("first snapshot: counters remembered, deltas start next time"),
            Interval::Continuous => None,
            Interval::Reset { reason, .. } => Some(reason),
        }
    }
}

pub fn classify(previous: Option<&Epoch>, current: &Epoch) -> Interval {
    let Some(previous) = previous else {
        return Interval::First;
    };
    if previous.stats_reset != current.stats_reset {
        // A changed stats_reset is the one case where we know the counters went to zero.
        return Interval::Reset {
            counters_zeroed: true,
            reason: "statistics were reset",
        };
    }
    if previous.server_life != current.server_life {
        // A clean restart keeps the counters, a crash loses them: counter_delta() sees which.
        return Interval::Reset {
            counters_zeroed: false,
            reason: "the server restarted",
        };
    }
    if previous.dealloc != current.dealloc {
        // Surviving entries keep counting; evicted ones come back with lower counters.
        return Interval::Reset {
            counters_zeroed: false,
            reason: "pg_stat_statements evicted entries",
        };
    }
    Interval::Continuous
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(start: &str, reset: Option<&str>, dealloc: Option<i64>) -> Epoch {
        Epoch {
            server_life: Some(start.to_string()),
            stats_reset: reset.map(str::to_string),
            dealloc,
        }
    }

    #[test]
    fn first_snapshot_is_a_baseline() {
        assert_eq!(classify(None, &epoch("t0", None, Some(0))), Interval::First);
        assert!(!Interval::First.is_reset());
    }

    #[test]
    fn same_epoch_is_continuous() {
        let e = epoch("t0", Some("r0"), Some(3));
        assert_eq!(classify(Some(&e), &e.clone()), Interval::Continuous);
    }

    #[test]
    fn counter_reset_zeroes_counters() {
        let before = epoch("t0", Some("r0"), Some(3));
        let after = epoch("t0", Some("r1"), Some(0));
        let interval = classify(Some(&before), &after);
        assert!(interval.is_reset());
        assert!(interval.counters_zeroed());
        // a first reset (stats_reset was NULL) counts too
        let never_reset = epoch("t0", None, Some(0));
        assert!(classify(Some(&never_reset), &after).counters_zeroed());
    }

    #[test]
    fn eviction_is_a_reset_without_zeroing() {
        let before = epoch("t0", Some("r0"), Some(3));
        let after = epoch("t0", Some("r0"), Some(4));
        let interval = classify(Some(&before), &after);
        assert!(interval.is_reset());
        assert!(!interval.counters_zeroed());
        assert_eq!(interval.note(), Some("pg_stat_statements evicted entries"));
    }

    #[test]
    fn restart_is_a_reset_without_zeroing() {
        let before = epoch("t0", Some("r0"), Some(3));
        let after = epoch("t1", Some("r0"), Some(3));
        let interval = classify(Some(&before), &after);
        assert!(interval.is_reset());
        assert!(!interval.counters_zeroed());
        assert_eq!(interval.note(), Some("the server restarted"));
    }

    #[test]
    fn restart_with_reset_zeroes() {
        let before = epoch("t0", Some("r0"), Some(3));
        let after = epoch("t1", Some("r1"), Some(0));
        assert!(classify(Some(&before), &after).counters_zeroed());
    }
}
