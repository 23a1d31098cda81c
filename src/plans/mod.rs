//! Plan history: the executor hooks identify each top-level execution's plan shape and capture
//! a plan when the execution was slow or its shape was never explained; the collector stores
//! the captures in `plans` and `plan_sightings` (sql/plans.sql, docs/plans.md).
//!
//! At every tracked top-level execution with capture on, the plan tree is hashed (shape.rs:
//! a walk of its nodes, no allocation), compared with the plan id the statement's histogram
//! slot holds from its previous execution, and looked up in this backend's set of known shapes.
//! Only a slow execution, a plan switch or a shape this backend has not met goes further: the
//! shared shape set (queue.rs) says whether it was explained already, the interval's budget is
//! asked for a capture, and only a shape never explained is explained (EXPLAIN (FORMAT JSON,
//! COSTS OFF) of the finished QueryDesc, as auto_explain does), normalized and queued. A slow execution of a known shape is queued as a sighting without text. With
//! `dbanalytics.plan_capture_analyze`, every top-level execution counts rows per plan node and a
//! slow one is also explained with its actual row counts.

pub mod queue;
pub mod shape;

use crate::gucs;
use crate::histogram::hooks::BackendLocal;
use crate::histogram::table::Slot;
use pgrx::pg_sys;
use queue::{Capture, Reason};
use std::sync::atomic::Ordering;

/// Shapes this backend knows were explained: a small open-addressed set of keys (0: free).
#[derive(Clone, Copy)]
struct Known {
    keys: [u64; KNOWN_KEYS],
    used: usize,
    /// The shared set's epoch these keys belong to (queue::Queue::shapes_epoch).
    epoch: u32,
}

const KNOWN_KEYS: usize = 1024;

impl Known {
    fn contains(&self, key: u64) -> bool {
        let start = key as usize % KNOWN_KEYS;
        for probe in 0..KNOWN_KEYS {
            match self.keys[(start + probe) % KNOWN_KEYS] {
                0 => return false,
                found if found == key => return true,
                _ => {}
            }
        }
        false
    }

    /// Adds a key; when three quarters are used the set starts again empty (the shared set
    /// still answers for what it forgot).
    fn insert(&mut self, key: u64) {
        if self.used >= KNOWN_KEYS * 3 / 4 {
            let epoch = self.epoch;
            *self = Known::new();
            self.epoch = epoch;
        }
        let start = key as usize % KNOWN_KEYS;
        for probe in 0..KNOWN_KEYS {
            let entry = &mut self.keys[(start + probe) % KNOWN_KEYS];
            if *entry == key {
                return;
            }
            if *entry == 0 {
                *entry = key;
                self.used += 1;
                return;
            }
        }
    }

    /// Whether the key is known in the shared set's `epoch`; the set is emptied first when
    /// the shared one was.
    fn contains_in(&mut self, key: u64, epoch: u32) -> bool {
        if self.epoch != epoch {
            *self = Known::new();
            self.epoch = epoch;
        }
        self.contains(key)
    }

    const fn new() -> Self {
        Known {
            keys: [0; KNOWN_KEYS],
            used: 0,
            epoch: 0,
        }
    }
}

static KNOWN: BackendLocal<Known> = BackendLocal::new(Known::new());

/// The key of a shape run by a role in a database (never 0).
fn shape_key(dbid: u32, userid: u32, planid: i64) -> u64 {
    let mut x = (planid as u64) ^ (u64::from(dbid) << 32 | u64::from(userid)).rotate_left(29);
    x = (x ^ (x >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x.max(1)
}

/// Looks at one finished top-level execution (called from ExecutorEnd, before the executor
/// state is freed) and captures its plan when it was slow, its shape is new, or the statement
/// ran with another plan the time before (`statement`: its histogram slot, when it has one of
/// its own, which keeps its latest plan id).
///
/// # Safety
/// `query_desc` must be the QueryDesc being ended, its estate still alive.
pub unsafe fn consider(
    query_desc: *mut pg_sys::QueryDesc,
    dbid: u32,
    userid: u32,
    queryid: i64,
    micros: u64,
    statement: Option<&Slot>,
) {
    let max = gucs::plan_capture_max_per_interval();
    if max == 0 {
        return;
    }
    let slow = micros >= gucs::plan_capture_threshold_us();
    let new_shapes = gucs::plan_capture_new_shapes();
    if !slow && !new_shapes {
        return;
    }
    let Some(queue) = queue::queue() else {
        return;
    };
    let planid = shape::plan_id((*query_desc).plannedstmt, queryid);
    // a plan switch: the statement ran with another plan the time before. Read first, written
    // only when it changed (a statement keeping its plan writes nothing shared); one switch per
    // statement and interval is taken (by the backend whose compare-and-swap succeeds), and
    // until the next interval the slot keeps the plan switched to, so that the plan the
    // statement runs with at the end of an interval is taken then.
    let mut switched_from = 0;
    if let (Some(slot), true) = (statement, new_shapes) {
        let previous = slot.plan.load(Ordering::Relaxed);
        if previous == 0 {
            let _ = slot
                .plan
                .compare_exchange(0, planid, Ordering::Relaxed, Ordering::Relaxed);
        } else if previous != planid {
            // the interval's mark, never 0 (a slot's initial value)
            let interval = queue.interval().wrapping_add(1).max(1);
            if slot.plan_switched_in.load(Ordering::Relaxed) != interval
                && slot
                    .plan
                    .compare_exchange(previous, planid, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                slot.plan_switched_in.store(interval, Ordering::Relaxed);
                switched_from = previous;
            }
        }
    }
    let switched = switched_from != 0;
    let key = shape_key(dbid, userid, planid);
    let epoch = queue.shapes_epoch();
    let mut known = KNOWN.update(|set| set.contains_in(key, epoch));
    if !known && queue.shape_known(key, false) {
        KNOWN.update(|set| set.insert(key));
        known = true;
    }
    if known && !slow && !switched {
        return;
    }
    let reason = if slow { Reason::Slow } else { Reason::NewShape };
    if !queue.has_room() || !queue.reserve(reason, max) {
        forget_switch(statement, switched_from, planid);
        return;
    }
    // databases in another encoding than UTF-8: sightings only (their text would be mangled)
    let utf8 = pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32;
    let plan = (!known && utf8).then(|| shape::normalize(&explain_json(query_desc, false)));
    // a slow execution that ran instrumented (plan_capture_analyze): its actual row counts
    let analyzed = (slow && utf8 && instrumented(query_desc))
        .then(|| shape::normalize(&explain_json(query_desc, true)));
    let queued = queue.push(&Capture {
        dbid,
        userid,
        queryid,
        planid,
        slow,
        micros,
        captured_at: pg_sys::GetCurrentTimestamp(),
        plan,
        analyzed,
        truncated: false,
    });
    if !queued {
        forget_switch(statement, switched_from, planid);
    } else if !known {
        // remembered once its capture is on its way (a capture dropped leaves the shape new;
        // in a database that is not UTF-8, the sighting without text stands for it)
        queue.shape_known(key, true);
        KNOWN.update(|set| set.insert(key));
    }
}

/// A switch whose capture was dropped: the statement's slot goes back to the plan it switched
/// from (unless another execution changed it meanwhile), so that its first execution with the
/// new plan in the next interval is a switch again. The interval stays marked: until then its
/// executions only read the slot.
fn forget_switch(statement: Option<&Slot>, switched_from: i64, planid: i64) {
    if let (Some(slot), true) = (statement, switched_from != 0) {
        let _ =
            slot.plan
                .compare_exchange(planid, switched_from, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Asks, before a top-level execution starts, for the row counts of every plan node when
/// `dbanalytics.plan_capture_analyze` is on (as auto_explain's log_analyze with log_timing off:
/// counting rows, no clock reads), so that a slow execution's plan can be shown with them.
///
/// # Safety
/// `query_desc` must be the QueryDesc being started, before the executor initializes its plan.
pub unsafe fn instrument_if_analyzing(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    if gucs::plan_capture_analyze()
        && eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 == 0
        && gucs::plan_capture_max_per_interval() > 0
    {
        (*query_desc).instrument_options |= pg_sys::InstrumentOption::INSTRUMENT_ROWS as i32;
    }
}

/// Whether the execution counted rows per plan node (instrument_if_analyzing, or EXPLAIN
/// ANALYZE's own instrumentation of a statement run inside it).
unsafe fn instrumented(query_desc: *mut pg_sys::QueryDesc) -> bool {
    (*query_desc).instrument_options & pg_sys::InstrumentOption::INSTRUMENT_ROWS as i32 != 0
        && gucs::plan_capture_analyze()
}

/// EXPLAIN (FORMAT JSON, COSTS OFF) of a finished execution, as auto_explain prints it; with
/// `analyze`, its actual row counts and loops too (no timing: the nodes were not timed).
///
/// Interrupts are held meanwhile: a cancel or a statement timeout arriving now waits for the
/// statement's next check (an ERROR here would fail a statement that has already run; an ERROR
/// resets the hold count).
unsafe fn explain_json(query_desc: *mut pg_sys::QueryDesc, analyze: bool) -> String {
    pg_sys::InterruptHoldoffCount += 1;
    let caller_context = pg_sys::MemoryContextSwitchTo((*(*query_desc).estate).es_query_cxt);
    let es = pg_sys::NewExplainState();
    (*es).costs = false;
    (*es).analyze = analyze;
    (*es).timing = false;
    (*es).summary = false;
    (*es).format = pg_sys::ExplainFormat::EXPLAIN_FORMAT_JSON;
    pg_sys::ExplainBeginOutput(es);
    pg_sys::ExplainPrintPlan(es, query_desc);
    pg_sys::ExplainEndOutput(es);
    let output = (*es).str_;
    let bytes = std::slice::from_raw_parts((*output).data as *const u8, (*output).len as usize);
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    // JSON output is a list of what EXPLAIN printed, here one plan: an object, as auto_explain
    // makes it (its first and last characters are the brackets)
    if text.starts_with('[') && text.ends_with(']') {
        text.replace_range(..1, "{");
        text.replace_range(text.len() - 1.., "}");
    }
    pg_sys::MemoryContextSwitchTo(caller_context);
    pg_sys::InterruptHoldoffCount -= 1;
    text
}

#[cfg(test)]
mod tests {
    use super::Known;

    #[test]
    fn the_known_set_forgets_everything_when_three_quarters_full() {
        let mut known = Box::new(Known::new());
        for key in 1..=768u64 {
            known.insert(key * 7919);
        }
        assert!(known.contains(7919) && known.contains(768 * 7919));
        known.insert(1);
        assert!(known.contains(1) && !known.contains(7919));
    }
}
