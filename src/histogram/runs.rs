//! Runs of one statement: the N of an N+1, seen where it happens.
//!
//! An application that fetches N keys with one statement and then looks each key up with its
//! own statement runs, on one connection, the parent statement once and then the same lookup N
//! times in a row, each right after the previous one (autocommit or not). The executor hooks
//! feed every top-level execution of a backend to its `RunTracker`, which only compares the
//! query id with the previous one and counts: a few comparisons, nothing allocated. A run is
//! a sequence of consecutive executions of one statement, each returning at most
//! `RUN_MAX_ROWS` rows and starting at most `RUN_MAX_GAP_MICROS` after the previous execution
//! ended; its parent is the different statement that ended at most as long before the run's
//! first execution. When a run ends (another statement runs, a gap is too long, a bigger
//! result, the backend exits) it is reported if it has a parent, `RUN_MIN_LENGTH` executions
//! and no more executions than its parent returned rows (the N keys of the "1"). A steady
//! stream of one lookup is never reported, whether nothing ran before it (no parent) or one
//! other statement did (a stream is longer than what that statement returned): it is a caching
//! question, not an N+1.

/// An execution returning more rows than this neither continues nor starts a run (a lookup
/// by key returns one row; a has-many lookup a few).
pub const RUN_MAX_ROWS: u64 = 10;
/// Longest pause between the end of one execution and the start of the next one of the run,
/// and between the parent's end and the run's first execution (0.1 s).
pub const RUN_MAX_GAP_MICROS: i64 = 100_000;
/// Shortest run that is recorded.
pub const RUN_MIN_LENGTH: u32 = 2;

/// A run that ended, to be recorded for its statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndedRun {
    pub queryid: i64,
    pub length: u32,
    /// The statement executed just before the run's first execution.
    pub parent: i64,
}

/// One backend's view of its last executions. Query id 0 means none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTracker {
    previous_queryid: i64,
    previous_end: i64,
    previous_rows: u64,
    run_queryid: i64,
    run_length: u32,
    run_parent: i64,
    /// Rows the parent returned: a run longer than that is not the parent's N lookups.
    run_parent_rows: u64,
}

impl RunTracker {
    pub const fn new() -> Self {
        RunTracker {
            previous_queryid: 0,
            previous_end: 0,
            previous_rows: 0,
            run_queryid: 0,
            run_length: 0,
            run_parent: 0,
            run_parent_rows: 0,
        }
    }

    /// One top-level execution of `queryid` that returned `rows` rows, started at `start` and
    /// ended at `end` (microseconds on one clock). Returns the run this execution ended, when
    /// it is worth recording.
    #[inline(always)]
    pub fn executed(&mut self, queryid: i64, rows: u64, start: i64, end: i64) -> Option<EndedRun> {
        let close = self.previous_queryid != 0 && start - self.previous_end <= RUN_MAX_GAP_MICROS;
        let small = rows <= RUN_MAX_ROWS;
        let ended = if small && close && queryid == self.run_queryid {
            self.run_length = self.run_length.saturating_add(1);
            None
        } else {
            let ended = self.end_run();
            if small {
                self.run_queryid = queryid;
                self.run_length = 1;
                (self.run_parent, self.run_parent_rows) =
                    if close && self.previous_queryid != queryid {
                        (self.previous_queryid, self.previous_rows)
                    } else {
                        (0, 0)
                    };
            }
            ended
        };
        self.previous_queryid = queryid;
        self.previous_end = end;
        self.previous_rows = rows;
        ended
    }

    /// Ends the current run (the backend exits): returns it when it is worth recording.
    pub fn end_run(&mut self) -> Option<EndedRun> {
        let run = EndedRun {
            queryid: self.run_queryid,
            length: self.run_length,
            parent: self.run_parent,
        };
        let within_parent = u64::from(run.length) <= self.run_parent_rows;
        self.run_queryid = 0;
        self.run_length = 0;
        self.run_parent = 0;
        self.run_parent_rows = 0;
        (run.queryid != 0 && run.parent != 0 && run.length >= RUN_MIN_LENGTH && within_parent)
            .then_some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: i64 = 11;
    const LOOKUP: i64 = 22;
    const OTHER: i64 = 33;

    /// Feeds executions `(queryid, rows)` 1 ms apart, each lasting 0.1 ms; collects ended runs.
    fn feed(tracker: &mut RunTracker, executions: &[(i64, u64)], from: i64) -> Vec<EndedRun> {
        executions
            .iter()
            .enumerate()
            .filter_map(|(i, &(queryid, rows))| {
                let start = from + i as i64 * 1_000;
                tracker.executed(queryid, rows, start, start + 100)
            })
            .collect()
    }

    fn n_plus_one(n: usize) -> Vec<(i64, u64)> {
        let mut executions = vec![(PARENT, 20)];
        executions.extend(std::iter::repeat_n((LOOKUP, 1), n));
        executions
    }

    #[test]
    fn a_parent_then_n_lookups_is_one_run_of_n_after_the_parent() {
        let mut tracker = RunTracker::new();
        let mut executions = n_plus_one(20);
        executions.extend(n_plus_one(20));
        let ended = feed(&mut tracker, &executions, 0);
        let run = EndedRun {
            queryid: LOOKUP,
            length: 20,
            parent: PARENT,
        };
        assert_eq!(ended, vec![run], "the second parent ends the first run");
        assert_eq!(tracker.end_run(), Some(run), "the exit ends the second one");
        assert_eq!(tracker.end_run(), None, "a run is reported once");
    }

    #[test]
    fn a_stream_of_one_lookup_has_no_parent() {
        let mut tracker = RunTracker::new();
        let executions = vec![(LOOKUP, 1); 1000];
        assert!(feed(&mut tracker, &executions, 0).is_empty());
        assert_eq!(tracker.end_run(), None);
    }

    #[test]
    fn a_stream_after_one_other_statement_is_no_run_of_it() {
        let mut tracker = RunTracker::new();
        let mut executions = vec![(OTHER, 1)];
        executions.extend([(LOOKUP, 1); 1000]);
        assert!(feed(&mut tracker, &executions, 0).is_empty());
        assert_eq!(
            tracker.end_run(),
            None,
            "1000 lookups after a statement of one row"
        );
    }

    #[test]
    fn a_run_is_at_most_as_long_as_its_parent_returned_rows() {
        let mut tracker = RunTracker::new();
        let mut executions = n_plus_one(20);
        executions.push((LOOKUP, 1));
        executions.extend(n_plus_one(19));
        let ended = feed(&mut tracker, &executions, 0);
        assert!(ended.is_empty(), "21 lookups after 20 rows: {ended:?}");
        assert_eq!(
            tracker.end_run(),
            Some(EndedRun {
                queryid: LOOKUP,
                length: 19,
                parent: PARENT
            }),
            "19 lookups after 20 rows"
        );
    }

    #[test]
    fn lookups_far_apart_are_runs_of_one() {
        let mut tracker = RunTracker::new();
        let mut ended = Vec::new();
        for i in 0..100 {
            let start = i * (RUN_MAX_GAP_MICROS + 1_000);
            let (queryid, rows) = if i % 2 == 0 {
                (PARENT, 20)
            } else {
                (LOOKUP, 1)
            };
            ended.extend(tracker.executed(queryid, rows, start, start + 100));
        }
        ended.extend(tracker.end_run());
        assert!(ended.is_empty(), "{ended:?}");
    }

    #[test]
    fn a_long_pause_ends_the_run_and_the_rest_has_no_parent() {
        let mut tracker = RunTracker::new();
        let mut ended = feed(&mut tracker, &n_plus_one(5), 0);
        let resumed = 5_100 + RUN_MAX_GAP_MICROS + 1;
        ended.extend(feed(&mut tracker, &[(LOOKUP, 1); 7], resumed));
        ended.extend(tracker.end_run());
        assert_eq!(
            ended,
            vec![EndedRun {
                queryid: LOOKUP,
                length: 5,
                parent: PARENT
            }]
        );
    }

    #[test]
    fn the_parent_must_end_shortly_before_the_run() {
        let mut tracker = RunTracker::new();
        tracker.executed(PARENT, 20, 0, 100);
        let start = 100 + RUN_MAX_GAP_MICROS + 1;
        assert!(feed(&mut tracker, &[(LOOKUP, 1); 20], start).is_empty());
        assert_eq!(tracker.end_run(), None);
    }

    #[test]
    fn big_results_neither_continue_nor_start_a_run() {
        let mut tracker = RunTracker::new();
        let mut executions = vec![(PARENT, 20)];
        executions.extend([(LOOKUP, 1), (LOOKUP, 1), (LOOKUP, RUN_MAX_ROWS + 1)]);
        executions.extend([(LOOKUP, RUN_MAX_ROWS); 3]);
        let ended = feed(&mut tracker, &executions, 0);
        assert_eq!(
            ended,
            vec![EndedRun {
                queryid: LOOKUP,
                length: 2,
                parent: PARENT
            }],
            "the big result ends the run of two"
        );
        // the three after it follow an execution of the same statement: no parent
        assert_eq!(tracker.end_run(), None);
    }

    #[test]
    fn a_single_execution_is_not_a_run() {
        let mut tracker = RunTracker::new();
        let executions = [
            (PARENT, 20),
            (LOOKUP, 1),
            (OTHER, 1),
            (LOOKUP, 1),
            (OTHER, 1),
        ];
        assert!(feed(&mut tracker, &executions, 0).is_empty());
        assert_eq!(tracker.end_run(), None);
    }

    #[test]
    fn the_parent_may_itself_be_a_small_lookup() {
        let mut tracker = RunTracker::new();
        let executions = [
            (OTHER, 3),
            (LOOKUP, 1),
            (LOOKUP, 1),
            (LOOKUP, 1),
            (OTHER, 1),
        ];
        assert_eq!(
            feed(&mut tracker, &executions, 0),
            vec![EndedRun {
                queryid: LOOKUP,
                length: 3,
                parent: OTHER
            }]
        );
    }
}
