//! Plan history: the executor hooks identify the plan shape of top-level executions (slow ones,
//! each statement's first in each collector interval, a sample of the others) and capture a
//! plan when the execution was slow or its shape was never explained; the collector stores the
//! captures in `plans` and `plan_sightings` (sql/plans.sql, docs/plans.md).
//!
//! A fast execution of a statement already looked at in the collector interval is passed over,
//! after a few comparisons, unless it is in the sample (`Sampling`,
//! `dbanalytics.plan_shape_sample_rate`); slow executions and a statement's first in each
//! interval are always looked at, so that a fast plan switch is seen within the interval after
//! it at the latest.
//! At every tracked top-level execution looked at, the plan tree is hashed (shape.rs:
//! a walk of its nodes, no allocation; once per plan for a plan the plan cache keeps, see
//! `Planned`), compared with the plan id the statement's histogram slot holds from its previous
//! execution, and looked up in this backend's set of known shapes.
//! Only a slow execution, a plan switch or a shape this backend has not met goes further: the
//! shared shape set (queue.rs) says whether it was explained already, the interval's budget is
//! asked for a capture, and only a shape never explained is explained (EXPLAIN (FORMAT JSON, COSTS
//! OFF) of the finished QueryDesc, as auto_explain does), normalized and queued. A slow execution
//! of a known shape is queued as a sighting without text. With `dbanalytics.plan_capture_analyze`,
//! every top-level execution counts rows per plan node and a slow one is also explained with its
//! actual row counts.

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

/// A cached plan's statement this backend executed, by address, and what executing it
/// established: its plan id, and the role for which its shape is known explained. A prepared
/// statement's generic plan, executed again and again, is hashed and looked up once; after
/// that an execution of it that is neither slow nor a plan switch reads its entry and returns.
///
/// Only statements of a plan the plan cache keeps (`refcount` ≥ 2 while a portal runs it: the
/// prepared statement's own reference and the portal's) get an entry, at the start of their
/// execution (`note_start`), and with it a callback on the plan's memory context that empties
/// the entry when the plan is freed; an entry is therefore never read for another statement
/// allocated at the same address later. A one-shot statement, or a custom plan freed after its
/// one execution, is hashed at each execution.
#[derive(Clone, Copy)]
struct Planned {
    /// The PlannedStmt's address (0: a free entry), its plan tree's and its query id: an entry
    /// is used only when all three match.
    stmt: usize,
    tree: usize,
    queryid: i64,
    /// 0 until the end of its first execution hashes the plan.
    planid: i64,
    /// The role whose key of this shape was known explained (0: none yet), in which epoch of
    /// the shared set.
    known_for: u32,
    known_epoch: u32,
}

const PLANNED_ENTRIES: usize = 256;

impl Planned {
    const FREE: Planned = Planned {
        stmt: 0,
        tree: 0,
        queryid: 0,
        planid: 0,
        known_for: 0,
        known_epoch: 0,
    };

    /// The entry an address maps to (direct-mapped: a statement replaces another one at its
    /// place, which is then hashed and entered again at its next execution).
    fn index(stmt: usize) -> usize {
        ((stmt >> 4) ^ (stmt >> 12)) % PLANNED_ENTRIES
    }
}

static PLANNED: BackendLocal<[Planned; PLANNED_ENTRIES]> =
    BackendLocal::new([Planned::FREE; PLANNED_ENTRIES]);

/// Which fast executions of statements already looked at in the interval have their plan looked at
/// (`dbanalytics.plan_shape_sample_rate`): the backend passes over `skip` executions, then looks at
/// one and draws the next `skip` at random, uniformly in 0 ..= 2 (1 - rate) / rate (rounded at
/// random), so that on average a share `rate` of the executions is looked at, whatever order the
/// backend runs its statements in (a fixed period could look at the same statement of a loop every
/// time). Passing over costs 20 instructions (docs/plans.md): the plan tree is not hashed.
#[derive(Clone, Copy)]
struct Sampling {
    /// Fast executions to pass over before the next one looked at.
    skip: u32,
    /// The state of a xorshift64 generator (0: not seeded yet).
    random: u64,
}

impl Sampling {
    /// Whether to look at a fast execution whose turn it is (`skip` is 0), at the rate `rate`;
    /// draws the executions to pass over after it.
    fn look(&mut self, rate: f64, seed: u64) -> bool {
        if rate >= 1.0 {
            return true;
        }
        if rate <= 0.0 {
            return false;
        }
        // the longest run to pass over, 2 (1 - rate) / rate, rounded up or down at random in
        // proportion, so that the mean of the runs is (1 - rate) / rate whatever the rate
        let most = (2.0 * (1.0 - rate) / rate).min(f64::from(u32::MAX - 1));
        let fraction = (self.next_random(seed) >> 11) as f64 / (1u64 << 53) as f64;
        let most = most as u64 + u64::from(fraction < most.fract());
        self.skip = (self.next_random(seed) % (most + 1)) as u32;
        true
    }

    fn next_random(&mut self, seed: u64) -> u64 {
        let mut x = if self.random == 0 {
            seed | 1
        } else {
            self.random
        };
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }
}

static SAMPLING: BackendLocal<Sampling> = BackendLocal::new(Sampling { skip: 0, random: 0 });

/// The assign hook of `dbanalytics.plan_shape_sample_rate`: a new rate applies from the next
/// execution on (the run drawn at the old one is dropped). Cannot raise an error.
pub unsafe extern "C-unwind" fn sample_rate_assigned(_rate: f64, _extra: *mut std::ffi::c_void) {
    SAMPLING.update(|sampling| sampling.skip = 0);
}

/// Gives a statement of a plan the plan cache keeps an entry as a top-level execution of it
/// starts (`tracked`: the execution is recorded): the portal running it holds the plan then,
/// so its memory context is alive when the callback that empties the entry is registered on
/// it. The entry is pending (plan id 0) until the execution's end hashes the plan. A statement
/// whose entry is in place costs a comparison.
///
/// # Safety
/// `query_desc` must be the QueryDesc being started.
#[allow(clippy::unnecessary_cast)] // the cast is a no-op on 18
#[inline(never)] // as consider
pub unsafe fn note_start(query_desc: *mut pg_sys::QueryDesc, tracked: bool) {
    // an execution whose end will pass over its plan (unless it is slow or its statement's
    // first in the interval: then its plan is hashed without an entry, once per interval)
    if !tracked || SAMPLING.update(|sampling| sampling.skip > 0) {
        return;
    }
    let portal = pg_sys::ActivePortal;
    if gucs::plan_capture_max_per_interval() == 0 || portal.is_null() {
        return;
    }
    let plan = (*portal).cplan;
    let stmt = (*query_desc).plannedstmt;
    if plan.is_null()
        || (*plan).refcount < 2
        || (*plan).is_oneshot
        || (*plan).context.is_null()
        || remembered_id(stmt, (*stmt).queryId as i64).1.is_some()
        || !shape::list_pointers((*plan).stmt_list)
            .iter()
            .any(|&member| std::ptr::eq(member, stmt.cast()))
    {
        return;
    }
    enter_planned(stmt, (*plan).context);
}

/// The plan id of the statement `query_desc` ran, and its entry when it has one: read from the
/// entry (hashed into it at the end of its first execution), else hashed.
#[inline(always)]
unsafe fn planned_id(query_desc: *mut pg_sys::QueryDesc, queryid: i64) -> (i64, Option<usize>) {
    let stmt = (*query_desc).plannedstmt;
    match remembered_id(stmt, queryid) {
        (index, Some(planid)) if planid != 0 => (planid, Some(index)),
        (index, Some(_)) => {
            let planid = shape::plan_id(stmt, queryid);
            PLANNED.update(|entries| entries[index].planid = planid);
            (planid, Some(index))
        }
        (_, None) => (shape::plan_id(stmt, queryid), None),
    }
}

/// The place of `stmt`'s entry, and the plan id it holds if it is `stmt`'s, run as `queryid`.
#[inline(always)]
unsafe fn remembered_id(stmt: *const pg_sys::PlannedStmt, queryid: i64) -> (usize, Option<i64>) {
    let index = Planned::index(stmt as usize);
    let tree = (*stmt).planTree as usize;
    let planid = PLANNED.update(|entries| {
        let entry = &entries[index];
        (entry.stmt == stmt as usize && entry.tree == tree && entry.queryid == queryid)
            .then_some(entry.planid)
    });
    (index, planid)
}

/// Gives a statement of a plan the plan cache keeps a pending entry, once its callback on the
/// plan's memory context `context` is registered (none when it could not be).
#[cold]
#[inline(never)]
#[allow(clippy::unnecessary_cast)] // the cast is a no-op on 18
unsafe fn enter_planned(stmt: *mut pg_sys::PlannedStmt, context: pg_sys::MemoryContext) {
    if !forget_when_freed(context, stmt) {
        return;
    }
    PLANNED.update(|entries| {
        entries[Planned::index(stmt as usize)] = Planned {
            stmt: stmt as usize,
            tree: (*stmt).planTree as usize,
            queryid: (*stmt).queryId as i64,
            ..Planned::FREE
        }
    });
}

/// Registers, once per statement, the callback that empties its entry when `context` (its
/// plan's) is reset or deleted. False when it could not be registered (out of memory).
unsafe fn forget_when_freed(
    context: pg_sys::MemoryContext,
    stmt: *mut pg_sys::PlannedStmt,
) -> bool {
    let arg = stmt as *mut std::ffi::c_void;
    let mut callback = (*context).reset_cbs;
    while !callback.is_null() {
        if (*callback).func.map(|func| func as usize)
            == Some(forget_planned as FreedCallback as usize)
            && (*callback).arg == arg
        {
            return true;
        }
        callback = (*callback).next;
    }
    let callback = pg_sys::MemoryContextAllocExtended(
        context,
        std::mem::size_of::<pg_sys::MemoryContextCallback>(),
        pg_sys::MCXT_ALLOC_NO_OOM as i32,
    ) as *mut pg_sys::MemoryContextCallback;
    if callback.is_null() {
        return false;
    }
    (*callback).func = Some(forget_planned);
    (*callback).arg = arg;
    pg_sys::MemoryContextRegisterResetCallback(context, callback);
    true
}

/// The type of `forget_planned` (a memory context callback).
type FreedCallback = unsafe extern "C-unwind" fn(*mut std::ffi::c_void);

/// Empties the entry of the statement `arg` (its plan's memory context is being reset or
/// deleted). Cannot raise an error or panic.
unsafe extern "C-unwind" fn forget_planned(arg: *mut std::ffi::c_void) {
    let stmt = arg as usize;
    PLANNED.update(|entries| {
        let entry = &mut entries[Planned::index(stmt)];
        if entry.stmt == stmt {
            *entry = Planned::FREE;
        }
    });
}

/// For the in-server tests: gives `stmt` (allocated in `context`) an entry as a statement of a
/// plan kept in `context`; the plan id its entry holds for `queryid` (None: no entry); how many
/// callbacks are registered on `context`.
#[cfg(any(test, feature = "pg_test"))]
pub mod for_tests {
    use super::*;

    /// # Safety
    /// `stmt` must be a PlannedStmt allocated in `context`.
    pub unsafe fn enter(
        stmt: *mut pg_sys::PlannedStmt,
        planid: i64,
        context: pg_sys::MemoryContext,
    ) -> bool {
        enter_planned(stmt, context);
        let index = Planned::index(stmt as usize);
        PLANNED.update(|entries| {
            let entry = &mut entries[index];
            if entry.stmt == stmt as usize {
                entry.planid = planid;
            }
            entry.stmt == stmt as usize
        })
    }

    /// # Safety
    /// `stmt` must point to a PlannedStmt (its plan tree's address is read).
    pub unsafe fn entry(stmt: *mut pg_sys::PlannedStmt, queryid: i64) -> Option<i64> {
        remembered_id(stmt, queryid).1
    }

    /// Whether an entry is kept for a statement at `address` (not read).
    pub fn held(address: usize) -> bool {
        PLANNED.update(|entries| entries[Planned::index(address)].stmt == address)
    }

    /// # Safety
    /// `context` must be a live memory context.
    pub unsafe fn callbacks(context: pg_sys::MemoryContext) -> usize {
        let mut count = 0;
        let mut callback = (*context).reset_cbs;
        while !callback.is_null() {
            count += 1;
            callback = (*callback).next;
        }
        count
    }
}

/// Whether the entry says the shape is known explained for `userid` in the shared set's `epoch`.
fn planned_known(entry: Option<usize>, userid: u32, epoch: u32) -> bool {
    entry.is_some_and(|index| {
        PLANNED.update(|entries| {
            entries[index].known_for == userid && entries[index].known_epoch == epoch
        })
    })
}

/// Notes in the entry that the shape is known explained for `userid` in `epoch`.
fn planned_now_known(entry: Option<usize>, userid: u32, epoch: u32) {
    if let Some(index) = entry {
        PLANNED.update(|entries| {
            entries[index].known_for = userid;
            entries[index].known_epoch = epoch;
        });
    }
}

/// The key of a shape run by a role in a database (never 0).
fn shape_key(dbid: u32, userid: u32, planid: i64) -> u64 {
    let mut x = (planid as u64) ^ (u64::from(dbid) << 32 | u64::from(userid)).rotate_left(29);
    x = (x ^ (x >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x.max(1)
}

/// Looks at one finished top-level execution (called from ExecutorEnd, before the executor
/// state is freed) and captures its plan when it was slow, its shape is new, or the statement
/// ran with another plan the time before (`statement`: its histogram slot, when it has one of
/// its own, which keeps its latest plan id). A fast execution of a statement already looked at
/// in this collector interval is passed over unless sampled (`Sampling`).
///
/// # Safety
/// `query_desc` must be the QueryDesc being ended, its estate still alive.
#[inline(never)] // a function of its own, so that callgrind counts what plan capture costs
pub unsafe fn consider(
    query_desc: *mut pg_sys::QueryDesc,
    dbid: u32,
    userid: u32,
    queryid: i64,
    micros: u64,
    statement: Option<&Slot>,
) {
    // the common case: a fast execution passed over
    let passed_over = SAMPLING.update(|sampling| {
        sampling.skip > 0
            && micros < gucs::plan_capture_threshold_us()
            && looked_at_in_interval(statement)
            && {
                sampling.skip -= 1;
                true
            }
    });
    if !passed_over {
        look_at(query_desc, dbid, userid, queryid, micros, statement);
    }
}

/// Whether plan capture looked at an execution of the statement in the plan queue's interval
/// (the plans source clears the flags as it empties the queue, at each snapshot), as its slot
/// says; a statement without a slot of its own counts as looked at: it is only sampled.
#[inline(always)]
fn looked_at_in_interval(statement: Option<&Slot>) -> bool {
    statement.is_none_or(|slot| slot.plan_looked.load(Ordering::Relaxed))
}

/// `consider` for an execution not passed over.
#[inline(never)]
unsafe fn look_at(
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
    // a fast execution of a statement looked at before in this interval: looked at when
    // sampled (a statement's first execution in each interval always is, so that its plan is
    // known before it turns slow and a switch is seen within the interval after it)
    if !slow
        && looked_at_in_interval(statement)
        && !SAMPLING.update(|sampling| {
            sampling.look(
                gucs::plan_shape_sample_rate(),
                (pg_sys::MyProcPid as u64) << 32 ^ micros,
            )
        })
    {
        return;
    }
    let Some(queue) = queue::queue() else {
        return;
    };
    let (planid, entry) = planned_id(query_desc, queryid);
    if let Some(slot) = statement {
        // read first: a statement looked at again in the interval writes nothing shared
        if !slot.plan_looked.load(Ordering::Relaxed) {
            slot.plan_looked.store(true, Ordering::Relaxed);
        }
    }
    // the common case, read without writing anything: a fast execution of a plan whose entry
    // knows its shape was explained, which its statement ran with the time before too
    if entry.is_some()
        && !slow
        && statement.is_some_and(|slot| slot.plan.load(Ordering::Relaxed) == planid)
        && planned_known(entry, userid, queue.shapes_epoch())
    {
        return;
    }
    // a plan switch: the statement ran with another plan the time before. Read first, written
    // only when it changed (a statement keeping its plan writes nothing shared); one switch per
    // statement and interval is taken (by the backend whose compare-and-swap succeeds), and
    // until the next interval the slot keeps the plan switched to, so that the plan the
    // statement runs with at the end of an interval is taken then.
    let mut switched_from = 0;
    // what the slot held before this execution wrote its plan id (None: not written), put
    // back when the capture is dropped
    let mut replaced = None;
    if let (Some(slot), true) = (statement, new_shapes) {
        let previous = slot.plan.load(Ordering::Relaxed);
        if previous == 0 {
            if slot
                .plan
                .compare_exchange(0, planid, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                replaced = Some(0);
            }
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
                replaced = Some(previous);
            }
        }
    }
    let switched = switched_from != 0;
    let epoch = queue.shapes_epoch();
    let mut known = planned_known(entry, userid, epoch);
    let key = shape_key(dbid, userid, planid);
    if !known {
        known = KNOWN.update(|set| set.contains_in(key, epoch));
        if !known && queue.shape_known(key, false) {
            KNOWN.update(|set| set.insert(key));
            known = true;
        }
        if known {
            planned_now_known(entry, userid, epoch);
        }
    }
    if known && !slow && !switched {
        return;
    }
    let reason = if slow { Reason::Slow } else { Reason::NewShape };
    if !queue.has_room() || !queue.reserve(reason, max) {
        put_back(statement, replaced, planid);
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
        put_back(statement, replaced, planid);
    } else if !known {
        // remembered once its capture is on its way (a capture dropped leaves the shape new;
        // in a database that is not UTF-8, the sighting without text stands for it)
        queue.shape_known(key, true);
        KNOWN.update(|set| set.insert(key));
        planned_now_known(entry, userid, epoch);
    }
}

/// A capture dropped after this execution wrote its plan id into the statement's slot: the
/// slot gets back what it held (`replaced`), unless another execution changed it meanwhile.
/// For a switch, the plan it switched from, so that its first execution with the new plan in
/// the next interval is a switch again (the interval stays marked: until then its executions
/// only read the slot). For the statement's first execution, no plan id, so that a plan never
/// stored is not the "before" of a switch (its fast executions in this interval are passed
/// over unless sampled: the budget or the queue that dropped it stays full until the next
/// snapshot, after which its first execution is looked at again).
fn put_back(statement: Option<&Slot>, replaced: Option<i64>, planid: i64) {
    if let (Some(slot), Some(before)) = (statement, replaced) {
        let _ = slot
            .plan
            .compare_exchange(planid, before, Ordering::Relaxed, Ordering::Relaxed);
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
    use super::{Known, Sampling};

    /// Looks at `executions` fast executions as `consider` does; the share looked at and the
    /// longest run passed over.
    fn sample(rate: f64, executions: u32) -> (f64, u32) {
        let mut sampling = Sampling { skip: 0, random: 0 };
        let (mut looked, mut run, mut longest) = (0, 0, 0);
        for execution in 0..executions {
            if sampling.skip > 0 {
                sampling.skip -= 1;
                run += 1;
            } else if sampling.look(rate, u64::from(execution)) {
                looked += 1;
                longest = longest.max(run);
                run = 0;
            }
        }
        (f64::from(looked) / f64::from(executions), longest)
    }

    #[test]
    fn sampling_looks_at_the_rate_asked_and_never_passes_over_more_than_twice_its_mean() {
        assert_eq!(sample(1.0, 1000), (1.0, 0));
        assert_eq!(sample(0.0, 1000), (0.0, 0));
        let (share, longest) = sample(0.02, 1_000_000);
        assert!((0.019..0.021).contains(&share), "{share}");
        assert_eq!(longest, 98);
        let (share, longest) = sample(0.5, 100_000);
        assert!((0.49..0.51).contains(&share), "{share}");
        assert_eq!(longest, 2);
        // rates whose longest run is not a whole number: rounded at random, not down
        for rate in [0.05, 0.3, 0.6, 0.9] {
            let (share, _) = sample(rate, 1_000_000);
            assert!(
                (share - rate).abs() < 0.02 * rate.max(0.1),
                "{rate}: {share}"
            );
        }
    }

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
