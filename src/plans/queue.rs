//! The plan queue in shared memory: captured plans on their way from the executor hooks to the
//! collector, and the set of plan shapes already explained.
//!
//! A capturing backend takes an empty slot with a compare-and-swap, writes the plan into it
//! and marks it ready; the collector copies the ready slots out and empties them. Nothing
//! waits: a backend that finds no empty slot drops its capture and counts it (`dropped_full`),
//! and captures beyond `dbanalytics.plan_capture_max_per_interval` in one collector interval
//! are dropped and counted before anything is explained (`dropped_limit`). The shape set holds
//! the keys of the plans already explained (lock-free open addressing): a shape in it is not
//! explained again, only sighted. When it is three quarters full the collector empties it (and
//! counts a new shape epoch, which tells the backends to forget their own sets): the shapes are
//! then explained again as they run, and stored once.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

const EMPTY: u32 = 0;
const CLAIMED: u32 = 1;
const READY: u32 = 2;
/// Being copied out by a drain (a second drain, from `take_snapshot()` in another database,
/// skips it).
const DRAINING: u32 = 3;
/// Captures waiting for the collector at most.
pub const SLOTS: usize = 32;
/// Bytes of plan text a slot holds: the normalized plan and the analyzed one together (a longer
/// plan is cut and marked truncated; an analyzed plan that does not fit whole is left out).
pub const PLAN_BYTES: usize = 16 * 1024;
/// Plan shapes remembered as explained.
pub const SHAPES: usize = 16 * 1024;
/// A shape lookup gives up after this many probes (the shape counts as known until the set is
/// emptied).
const MAX_PROBES: usize = 32;
const SHMEM_NAME: &CStr = c"dbanalytics plan queue";

#[repr(C)]
struct Header {
    // shapes_epoch and interval are read at every execution and written once per drain: they
    // have a cache line of their own, apart from the counters that refused captures write
    /// Times the shape set was emptied.
    shapes_epoch: AtomicU32,
    /// Collector intervals (drains) so far: a statement's plan switch is captured once per
    /// interval.
    interval: AtomicU32,
    _read_mostly: [u8; 56],
    /// Captures reserved in this collector interval, of which for new shapes.
    taken: AtomicU32,
    taken_new: AtomicU32,
    captured: AtomicU64,
    dropped_limit: AtomicU64,
    dropped_full: AtomicU64,
    truncated: AtomicU64,
    _written: [u8; 24],
    shapes: [AtomicU64; SHAPES],
}

#[repr(C)]
struct Slot {
    state: AtomicU32,
    /// Written only by the backend that CLAIMED the slot, read only by the collector once READY.
    payload: UnsafeCell<Payload>,
}

// SAFETY: a slot's payload is written and read by one process at a time, handed over through
// `state` (CLAIMED by a writer, READY with Release, read after an Acquire load of READY).
unsafe impl Sync for Slot {}

#[repr(C)]
struct Payload {
    slow: u32,
    dbid: u32,
    userid: u32,
    queryid: i64,
    planid: i64,
    micros: u64,
    captured_at: i64,
    /// Bytes of `text` holding the normalized plan (0 when the shape was explained before: a
    /// sighting), then bytes holding the analyzed plan (0 without plan_capture_analyze).
    length: u32,
    analyzed_length: u32,
    truncated: u32,
    text: [u8; PLAN_BYTES],
}

/// One capture, as the hook hands it over and the collector takes it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    pub dbid: u32,
    pub userid: u32,
    pub queryid: i64,
    pub planid: i64,
    pub slow: bool,
    pub micros: u64,
    /// When the execution ended (a TimestampTz).
    pub captured_at: i64,
    /// The normalized plan, when this capture explained it.
    pub plan: Option<String>,
    /// The plan with actual row counts (`dbanalytics.plan_capture_analyze`), normalized too;
    /// left out when it does not fit in the slot beside the plan.
    pub analyzed: Option<String>,
    /// Set by the queue, read by the collector: the plan was cut to fit in its slot.
    pub truncated: bool,
}

/// Why a capture is made: the execution was slow, or its shape was never explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Slow,
    NewShape,
}

static QUEUE: AtomicPtr<Header> = AtomicPtr::new(std::ptr::null_mut());

/// Bytes of shared memory for the queue.
pub fn shmem_size() -> usize {
    std::mem::size_of::<Header>() + SLOTS * std::mem::size_of::<Slot>()
}

/// Creates (or attaches to) the queue. Called from the shmem startup hook.
///
/// # Safety
/// Must run in the shmem startup hook, after the space was requested.
pub unsafe fn attach() {
    let header =
        crate::histogram::table::attach_shared(SHMEM_NAME, shmem_size(), |_| {}) as *mut Header;
    QUEUE.store(header, Ordering::Release);
}

pub struct Queue {
    header: &'static Header,
    slots: &'static [Slot],
}

/// The queue, when the library was preloaded.
pub fn queue() -> Option<Queue> {
    let header = QUEUE.load(Ordering::Acquire);
    if header.is_null() {
        return None;
    }
    // SAFETY: the layout written by `attach`, which lives as long as the server.
    Some(unsafe { Queue::at(header) })
}

impl Queue {
    /// The queue laid out at `header`: the header, then its slots.
    ///
    /// # Safety
    /// `header` must point to `shmem_size()` bytes, zeroed at first, that live forever.
    unsafe fn at(header: *const Header) -> Queue {
        let header: &'static Header = &*header;
        let first = (header as *const Header).add(1) as *const Slot;
        Queue {
            header,
            slots: std::slice::from_raw_parts(first, SLOTS),
        }
    }
}

/// What `plan_capture_status()` shows.
pub struct Status {
    pub captured: i64,
    pub dropped_limit: i64,
    pub dropped_full: i64,
    pub truncated: i64,
    pub waiting: i64,
    pub shapes: i64,
    pub shape_epochs: i64,
}

impl Queue {
    /// Takes one capture out of this interval's budget of `max`; new shapes get at most half
    /// of it, so that the slow executions of a busy interval still find room. Counts a refusal.
    pub fn reserve(&self, reason: Reason, max: u32) -> bool {
        // read before adding: once the budget is spent, refusals write no shared counter but one
        let take = |counter: &AtomicU32, limit: u32| {
            counter.load(Ordering::Relaxed) < limit
                && counter.fetch_add(1, Ordering::Relaxed) < limit
        };
        let granted = match reason {
            Reason::Slow => take(&self.header.taken, max),
            Reason::NewShape => {
                take(&self.header.taken_new, max.div_ceil(2)) && take(&self.header.taken, max)
            }
        };
        if !granted {
            self.header.dropped_limit.fetch_add(1, Ordering::Relaxed);
        }
        granted
    }

    /// The collector interval now (how many drains so far).
    pub fn interval(&self) -> u32 {
        self.header.interval.load(Ordering::Relaxed)
    }

    /// The shape set's epoch: a backend forgets the shapes it knows when it changes.
    pub fn shapes_epoch(&self) -> u32 {
        // Acquire, with the Release of its increment: whoever reads the new epoch reads the
        // emptied set (a shape marked known in that epoch was looked up in it)
        self.header.shapes_epoch.load(Ordering::Acquire)
    }

    /// Whether the shape `key` was explained already; `remember` adds it when it was not.
    /// A set too full to take it answers "known", until the collector empties it.
    pub fn shape_known(&self, key: u64, remember: bool) -> bool {
        let key = key.max(1); // 0 marks a free entry
        let start = key as usize % SHAPES;
        for probe in 0..MAX_PROBES {
            let entry = &self.header.shapes[(start + probe) % SHAPES];
            match entry.load(Ordering::Relaxed) {
                found if found == key => return true,
                0 if !remember => return false,
                0 => match entry.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return false,
                    Err(found) if found == key => return true,
                    Err(_) => continue,
                },
                _ => continue,
            }
        }
        true
    }

    /// Whether a slot is free now (checked before explaining; counted when none is).
    pub fn has_room(&self) -> bool {
        let room = self
            .slots
            .iter()
            .any(|slot| slot.state.load(Ordering::Relaxed) == EMPTY);
        if !room {
            self.header.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    /// Hands a capture to the collector; false (and counted) when every slot is taken.
    pub fn push(&self, capture: &Capture) -> bool {
        for slot in self.slots {
            if slot
                .state
                .compare_exchange(EMPTY, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let plan = capture.plan.as_deref().unwrap_or("").as_bytes();
            let analyzed = capture.analyzed.as_deref().unwrap_or("").as_bytes();
            let (plan_length, plan_cut) = cut(plan, PLAN_BYTES);
            let analyzed_fits = analyzed.len() <= PLAN_BYTES - plan_length;
            let analyzed_length = if analyzed_fits { analyzed.len() } else { 0 };
            let truncated = plan_cut || !analyzed_fits;
            // SAFETY: the slot is CLAIMED by this backend: no other process reads or writes
            // its payload until it is READY.
            let payload = unsafe { &mut *slot.payload.get() };
            payload.slow = u32::from(capture.slow);
            payload.dbid = capture.dbid;
            payload.userid = capture.userid;
            payload.queryid = capture.queryid;
            payload.planid = capture.planid;
            payload.micros = capture.micros;
            payload.captured_at = capture.captured_at;
            payload.length = plan_length as u32;
            payload.analyzed_length = analyzed_length as u32;
            payload.truncated = u32::from(plan_cut);
            payload.text[..plan_length].copy_from_slice(&plan[..plan_length]);
            payload.text[plan_length..plan_length + analyzed_length]
                .copy_from_slice(&analyzed[..analyzed_length]);
            if truncated {
                self.header.truncated.fetch_add(1, Ordering::Relaxed);
            }
            self.header.captured.fetch_add(1, Ordering::Relaxed);
            slot.state.store(READY, Ordering::Release);
            return true;
        }
        self.header.dropped_full.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Takes every ready capture out and opens the next interval's budget.
    pub fn drain(&self) -> Vec<Capture> {
        let mut captures = Vec::new();
        for slot in self.slots {
            if slot
                .state
                .compare_exchange(READY, DRAINING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: READY when this drain took it (Acquire): the writer is done, and no other
            // drain reads it
            let payload = unsafe { &*slot.payload.get() };
            let plan_end = payload.length as usize;
            let text = |bytes: &[u8]| {
                (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
            };
            captures.push(Capture {
                dbid: payload.dbid,
                userid: payload.userid,
                queryid: payload.queryid,
                planid: payload.planid,
                slow: payload.slow != 0,
                micros: payload.micros,
                captured_at: payload.captured_at,
                plan: text(&payload.text[..plan_end]),
                analyzed: text(
                    &payload.text[plan_end..plan_end + payload.analyzed_length as usize],
                ),
                truncated: payload.truncated != 0,
            });
            slot.state.store(EMPTY, Ordering::Release);
        }
        self.header.taken.store(0, Ordering::Relaxed);
        self.header.taken_new.store(0, Ordering::Relaxed);
        self.header.interval.fetch_add(1, Ordering::Relaxed);
        if self.shapes_used() > SHAPES * 3 / 4 {
            // a key a backend adds meanwhile may be lost: its shape is explained once more
            for entry in &self.header.shapes {
                entry.store(0, Ordering::Relaxed);
            }
            self.header.shapes_epoch.fetch_add(1, Ordering::Release);
        }
        captures
    }

    fn shapes_used(&self) -> usize {
        self.header
            .shapes
            .iter()
            .filter(|entry| entry.load(Ordering::Relaxed) != 0)
            .count()
    }

    pub fn status(&self) -> Status {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as i64;
        Status {
            captured: count(&self.header.captured),
            dropped_limit: count(&self.header.dropped_limit),
            dropped_full: count(&self.header.dropped_full),
            truncated: count(&self.header.truncated),
            waiting: self
                .slots
                .iter()
                .filter(|slot| slot.state.load(Ordering::Relaxed) == READY)
                .count() as i64,
            shapes: self.shapes_used() as i64,
            shape_epochs: i64::from(self.shapes_epoch()),
        }
    }
}

/// How much of `text` fits in `room` bytes, cut on a character boundary, and whether it was cut.
fn cut(text: &[u8], room: usize) -> (usize, bool) {
    if text.len() <= room {
        return (text.len(), false);
    }
    let mut end = room;
    // a UTF-8 continuation byte is 0b10xxxxxx
    while end > 0 && text[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    (end, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_plan_is_cut_on_a_character_boundary() {
        let mut text = vec![b'a'; PLAN_BYTES - 1];
        text.extend_from_slice("é…".as_bytes());
        let (length, truncated) = cut(&text, PLAN_BYTES);
        assert!(truncated);
        assert_eq!(length, PLAN_BYTES - 1);
        assert_eq!(cut(b"short", 5), (5, false));
        assert_eq!(cut(b"short", 0), (0, true));
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    /// A queue in zeroed memory of its own, as `attach` makes it in shared memory.
    fn new_queue() -> Queue {
        let layout = std::alloc::Layout::from_size_align(shmem_size(), 64).unwrap();
        // SAFETY: zeroed memory of the queue's size, leaked so that it lives forever
        unsafe { Queue::at(std::alloc::alloc_zeroed(layout) as *const Header) }
    }

    fn capture(queryid: i64, plan: Option<String>, analyzed: Option<String>) -> Capture {
        Capture {
            dbid: 1,
            userid: 10,
            queryid,
            planid: queryid * 7,
            slow: true,
            micros: 1500,
            captured_at: 42,
            plan,
            analyzed,
            truncated: false,
        }
    }

    #[test]
    fn new_shapes_get_half_the_budget_and_a_drain_opens_the_next() {
        let queue = new_queue();
        let granted = |reason| (0..10).filter(|_| queue.reserve(reason, 4)).count();
        assert_eq!(granted(Reason::NewShape), 2);
        assert_eq!(granted(Reason::Slow), 2);
        assert_eq!(queue.status().dropped_limit, 16);
        queue.drain();
        assert_eq!(granted(Reason::Slow), 4);
        assert_eq!(queue.interval(), 1);
    }

    #[test]
    fn captures_go_through_whole_and_a_full_queue_counts_its_drops() {
        let queue = new_queue();
        let long = "é".repeat(PLAN_BYTES); // 2 bytes each: cut at PLAN_BYTES, on a boundary
        assert!(queue.push(&capture(
            1,
            Some("{\"Plan\": 1}".into()),
            Some("analyzed".into())
        )));
        assert!(queue.push(&capture(2, Some(long), Some("left out".into()))));
        for queryid in 3..=SLOTS as i64 {
            assert!(queue.push(&capture(queryid, None, None)));
        }
        assert!(!queue.has_room() && !queue.push(&capture(99, None, None)));
        let status = queue.status();
        assert_eq!(
            (
                status.captured,
                status.dropped_full,
                status.truncated,
                status.waiting
            ),
            (32, 2, 1, 32)
        );
        let drained = queue.drain();
        assert_eq!(drained.len(), SLOTS);
        assert_eq!(
            drained[0],
            capture(1, Some("{\"Plan\": 1}".into()), Some("analyzed".into()))
        );
        assert_eq!(drained[1].plan.as_ref().map(String::len), Some(PLAN_BYTES));
        assert_eq!(
            (drained[1].analyzed.as_deref(), drained[1].truncated),
            (None, true)
        );
        assert_eq!(drained[2], capture(3, None, None));
        assert!(queue.has_room() && queue.drain().is_empty());
    }

    #[test]
    fn the_collector_empties_the_shape_set_when_three_quarters_full() {
        let queue = new_queue();
        assert!(!queue.shape_known(5, true) && queue.shape_known(5, false));
        let mut key = 0u64;
        let mut add = |count: usize| {
            for _ in 0..count {
                key += 1;
                queue.shape_known(key * 0x9E37_79B9, true);
            }
        };
        // three quarters, at most (a key that finds no free entry in 32 probes is not added)
        add(SHAPES * 3 / 4 - 1);
        let used = queue.status().shapes;
        assert!(used <= SHAPES as i64 * 3 / 4 && used > SHAPES as i64 * 3 / 4 - 16);
        queue.drain();
        assert_eq!((queue.status().shapes, queue.shapes_epoch()), (used, 0));
        while queue.status().shapes <= SHAPES as i64 * 3 / 4 {
            add(1);
        }
        queue.drain();
        assert_eq!((queue.status().shapes, queue.shapes_epoch()), (0, 1));
        assert!(!queue.shape_known(5, false));
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn the_documented_shared_memory_size() {
        // docs/plans.md and plan_capture_status().shared_memory_bytes
        assert_eq!(super::shmem_size(), 657_792);
    }
}
