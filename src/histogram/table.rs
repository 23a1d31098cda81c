//! The histogram table in shared memory: one slot per (database, user, queryid), lock-free.
//!
//! Slots are claimed with a compare-and-swap and never freed, so a recording backend needs no
//! lock: it finds its slot by open addressing and adds one to a bucket with an atomic
//! increment. The collector drains a slot by swapping each bucket with zero, so no execution
//! is lost or counted twice. When `dbanalytics.max_histogram_queries` slots are taken, new
//! queries are recorded in their database's overflow slot (queryid 0, userid 0), and when even
//! the overflow slots are taken, in `lost_executions` — nothing is evicted silently.
//!
//! A slot also counts the runs of its statement that ended since the last drain (`runs.rs`):
//! how many, their executions and longest length, and the statement that preceded them. A run
//! is recorded once, when it ends, never per execution.

use super::buckets::{bucket_of, BUCKETS};
use pgrx::pg_sys;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

const EMPTY: u32 = 0;
const CLAIMED: u32 = 1;
const READY: u32 = 2;
/// Overflow slots, one per database that overflowed.
const OVERFLOW_SLOTS: usize = 64;
/// A lookup gives up after this many probes and treats the table as full (bounds the hot path).
const MAX_PROBES: usize = 64;
const SHMEM_NAME: &CStr = c"dbanalytics latency histograms";
/// Words of a run's application name: NAMEDATALEN bytes, the longest `application_name`
/// PostgreSQL keeps (63 bytes and a NUL).
const APPLICATION_WORDS: usize = pg_sys::NAMEDATALEN as usize / 8;

#[repr(C)]
struct Header {
    capacity: u32,
    regular_slots: u32,
    used: AtomicU32,
    overflow_used: AtomicU32,
    lost_executions: AtomicU64,
}

#[repr(C)]
pub struct Slot {
    state: AtomicU32,
    pub dbid: u32,
    pub userid: u32,
    pub queryid: i64,
    counts: [AtomicU64; BUCKETS],
    /// Runs of this statement that ended since the last drain (0: none, the others are 0 too).
    runs: AtomicU64,
    /// Executions in those runs (their lengths added up).
    run_executions: AtomicU64,
    run_max_length: AtomicU64,
    /// The statement that preceded the most recent run (kept across drains).
    run_parent: AtomicI64,
    /// The `application_name` of the connection that ran the most recent run (kept across
    /// drains), NUL-padded; written under `run_application_seq` (a sequence lock: odd while
    /// a backend writes it, a second writer skips, a reader that sees it change reads again).
    run_application: [AtomicU64; APPLICATION_WORDS],
    run_application_seq: AtomicU32,
    /// Resources of its top-level executions since the last drain (getrusage around them),
    /// and how many executions were measured.
    measured: AtomicU64,
    cpu_user_us: AtomicU64,
    cpu_system_us: AtomicU64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    /// The plan id of the statement's latest top-level execution that plan capture looked at
    /// (0: none yet; src/plans): a different one is a plan switch. Kept across drains.
    pub plan: AtomicI64,
    /// The plan queue's interval (queue::Queue::interval, plus 1; 0: none) of the statement's
    /// latest plan switch that was taken: one per interval.
    pub plan_switched_in: AtomicU32,
    /// Whether plan capture looked at one of its executions in the plan queue's interval
    /// (src/plans: until then, its fast executions are not passed over, so that the plan it
    /// runs with is compared with its latest one at least once per collector interval);
    /// cleared by `clear_plan_looks` when the interval ends.
    pub plan_looked: AtomicBool,
}

/// Resources one or more top-level executions used, as getrusage(RUSAGE_SELF) measured them
/// around the executor: CPU time in user and kernel mode, and bytes the kernel read from and
/// wrote to storage for the backend (its page cache's misses and writebacks: blocks served from
/// the page cache are not reads here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Executions measured (0: nothing was, and the other fields are 0 too).
    pub executions: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

impl Usage {
    fn add_to(&self, slot: &Slot) {
        slot.measured.fetch_add(self.executions, Ordering::Relaxed);
        slot.cpu_user_us
            .fetch_add(self.cpu_user_us, Ordering::Relaxed);
        slot.cpu_system_us
            .fetch_add(self.cpu_system_us, Ordering::Relaxed);
        slot.read_bytes
            .fetch_add(self.read_bytes, Ordering::Relaxed);
        slot.write_bytes
            .fetch_add(self.write_bytes, Ordering::Relaxed);
    }

    fn take_from(slot: &Slot) -> Usage {
        Usage {
            executions: slot.measured.swap(0, Ordering::Relaxed),
            cpu_user_us: slot.cpu_user_us.swap(0, Ordering::Relaxed),
            cpu_system_us: slot.cpu_system_us.swap(0, Ordering::Relaxed),
            read_bytes: slot.read_bytes.swap(0, Ordering::Relaxed),
            write_bytes: slot.write_bytes.swap(0, Ordering::Relaxed),
        }
    }
}

/// Where this process sees the table (set in the postmaster, inherited by every child).
static TABLE: AtomicPtr<Header> = AtomicPtr::new(std::ptr::null_mut());

fn regular_slots(capacity: u32) -> usize {
    // at most 3/4 full, so that probe chains stay short
    capacity as usize * 4 / 3 + 1
}

/// Bytes of shared memory for a capacity.
pub fn shmem_size(capacity: u32) -> usize {
    std::mem::size_of::<Header>()
        + (regular_slots(capacity) + OVERFLOW_SLOTS) * std::mem::size_of::<Slot>()
}

/// Creates (or attaches to) the table. Called from the shmem startup hook.
///
/// # Safety
/// Must run in the shmem startup hook, after the space was requested.
pub unsafe fn attach(capacity: u32) {
    let header = attach_shared(SHMEM_NAME, shmem_size(capacity), |memory| {
        let header = memory as *mut Header;
        (*header).capacity = capacity;
        (*header).regular_slots = regular_slots(capacity) as u32;
    }) as *mut Header;
    TABLE.store(header, Ordering::Release);
}

/// Finds the named struct of `size` bytes in shared memory, or creates it zeroed and lets
/// `initialize` fill it first (under AddinShmemInitLock, so that only one process does).
///
/// # Safety
/// Must run in the shmem startup hook, after the space was requested.
pub unsafe fn attach_shared(name: &CStr, size: usize, initialize: impl FnOnce(*mut u8)) -> *mut u8 {
    let mut found = false;
    let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
    pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let memory = pg_sys::ShmemInitStruct(name.as_ptr(), size, &mut found) as *mut u8;
    if !found {
        std::ptr::write_bytes(memory, 0, size);
        initialize(memory);
    }
    pg_sys::LWLockRelease(lock);
    memory
}

pub struct Table {
    header: &'static Header,
    regular: &'static [Slot],
    overflow: &'static [Slot],
}

/// The table, when the library was preloaded.
pub fn table() -> Option<Table> {
    let header = TABLE.load(Ordering::Acquire);
    if header.is_null() {
        return None;
    }
    // SAFETY: the layout written by `attach`, which lives as long as the server.
    unsafe {
        let header: &'static Header = &*header;
        let first = (header as *const Header).add(1) as *const Slot;
        let regular = std::slice::from_raw_parts(first, header.regular_slots as usize);
        let overflow =
            std::slice::from_raw_parts(first.add(header.regular_slots as usize), OVERFLOW_SLOTS);
        Some(Table {
            header,
            regular,
            overflow,
        })
    }
}

fn hash(dbid: u32, userid: u32, queryid: i64) -> u64 {
    // splitmix64 over the key
    let mut x = (queryid as u64) ^ (u64::from(dbid) << 32 | u64::from(userid)).rotate_left(17);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn wait_until_ready(slot: &Slot) -> bool {
    for _ in 0..10_000 {
        if slot.state.load(Ordering::Acquire) == READY {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

/// Finds the key's slot, claiming an empty one when `may_claim` allows; the flag says whether
/// this call claimed it.
fn find<'a>(
    slots: &'a [Slot],
    dbid: u32,
    userid: u32,
    queryid: i64,
    may_claim: &dyn Fn() -> bool,
) -> Option<(&'a Slot, bool)> {
    let start = hash(dbid, userid, queryid) as usize % slots.len();
    for probe in 0..MAX_PROBES.min(slots.len()) {
        let slot = &slots[(start + probe) % slots.len()];
        loop {
            match slot.state.load(Ordering::Acquire) {
                READY => {
                    if slot.dbid == dbid && slot.userid == userid && slot.queryid == queryid {
                        return Some((slot, false));
                    }
                    break;
                }
                CLAIMED => {
                    if !wait_until_ready(slot) {
                        return None;
                    }
                }
                _ => {
                    if !may_claim() {
                        return None;
                    }
                    if slot
                        .state
                        .compare_exchange(EMPTY, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        // SAFETY: the CAS made this process the slot's only writer until READY.
                        unsafe {
                            let writable = slot as *const Slot as *mut Slot;
                            (*writable).dbid = dbid;
                            (*writable).userid = userid;
                            (*writable).queryid = queryid;
                        }
                        slot.state.store(READY, Ordering::Release);
                        return Some((slot, true));
                    }
                    // another backend claimed it first: look at it again
                }
            }
        }
    }
    None
}

/// Writes the application name of a run into its slot: the first 63 bytes, NUL-padded. A
/// backend that finds another one writing skips (that one's name is as recent).
fn store_application(slot: &Slot, name: &[u8]) {
    let seq = slot.run_application_seq.load(Ordering::Relaxed);
    if seq & 1 == 1
        || slot
            .run_application_seq
            .compare_exchange(
                seq,
                seq.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
    {
        return;
    }
    let mut bytes = [0u8; APPLICATION_WORDS * 8];
    let len = name.len().min(bytes.len() - 1);
    bytes[..len].copy_from_slice(&name[..len]);
    for (word, chunk) in slot.run_application.iter().zip(bytes.chunks_exact(8)) {
        let chunk: [u8; 8] = chunk.try_into().unwrap_or_default();
        word.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
    }
    slot.run_application_seq
        .store(seq.wrapping_add(2), Ordering::Release);
}

/// Reads the application name of a slot's most recent run; None when there is none, or when
/// writers kept changing it while it was read.
fn load_application(slot: &Slot) -> Option<String> {
    for _ in 0..4 {
        let before = slot.run_application_seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let mut bytes = [0u8; APPLICATION_WORDS * 8];
        for (word, chunk) in slot.run_application.iter().zip(bytes.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        std::sync::atomic::fence(Ordering::Acquire);
        if slot.run_application_seq.load(Ordering::Relaxed) != before {
            continue;
        }
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        return (len > 0).then(|| String::from_utf8_lossy(&bytes[..len]).into_owned());
    }
    None
}

impl Table {
    /// Adds one execution of `micros` to the query's histogram; returns the query's own slot
    /// (None when it was recorded in its database's overflow slot, or lost).
    pub fn record(
        &self,
        dbid: u32,
        userid: u32,
        queryid: i64,
        micros: u64,
        usage: Option<Usage>,
    ) -> Option<&Slot> {
        let bucket = bucket_of(micros);
        let header = self.header;
        let room_left = || header.used.load(Ordering::Relaxed) < header.capacity;
        let own = find(self.regular, dbid, userid, queryid, &room_left).map(|(slot, claimed)| {
            if claimed {
                header.used.fetch_add(1, Ordering::Relaxed);
            }
            slot
        });
        let slot = own.or_else(|| {
            find(self.overflow, dbid, 0, 0, &|| true).map(|(slot, claimed)| {
                if claimed {
                    header.overflow_used.fetch_add(1, Ordering::Relaxed);
                }
                slot
            })
        });
        match slot {
            Some(slot) => {
                slot.counts[bucket].fetch_add(1, Ordering::Relaxed);
                if let Some(usage) = usage {
                    usage.add_to(slot);
                }
            }
            None => {
                header.lost_executions.fetch_add(1, Ordering::Relaxed);
            }
        }
        own
    }

    /// Adds one ended run to its statement's slot (claimed like `record` would; a statement
    /// without a slot of its own loses the run: the overflow slot has no statement to name).
    pub fn record_run(
        &self,
        dbid: u32,
        userid: u32,
        queryid: i64,
        length: u32,
        parent: i64,
        application: &[u8],
    ) {
        let header = self.header;
        let room_left = || header.used.load(Ordering::Relaxed) < header.capacity;
        let Some((slot, claimed)) = find(self.regular, dbid, userid, queryid, &room_left) else {
            return;
        };
        if claimed {
            header.used.fetch_add(1, Ordering::Relaxed);
        }
        // the count last: a drain that sees it sees the rest of the run too (drain takes it first)
        slot.run_executions
            .fetch_add(u64::from(length), Ordering::Relaxed);
        slot.run_max_length
            .fetch_max(u64::from(length), Ordering::Relaxed);
        slot.run_parent.store(parent, Ordering::Relaxed);
        store_application(slot, application);
        slot.runs.fetch_add(1, Ordering::Release);
    }

    /// Opens a new interval for plan capture (src/plans): each statement's next execution is
    /// looked at. Called by the plans source right after it drained the plan queue, so that
    /// those looks find the new interval's budget and an empty queue.
    pub fn clear_plan_looks(&self) {
        for slot in self.regular.iter().chain(self.overflow.iter()) {
            slot.plan_looked.store(false, Ordering::Relaxed);
        }
    }

    /// Takes every non-zero count out of the table: `(dbid, userid, queryid, [(bucket, count)])`
    /// and the runs.
    pub fn drain(&self) -> Vec<Drained> {
        let mut drained = Vec::new();
        for slot in self.regular.iter().chain(self.overflow.iter()) {
            if slot.state.load(Ordering::Acquire) != READY {
                continue;
            }
            let mut buckets = Vec::new();
            for (bucket, count) in slot.counts.iter().enumerate() {
                if count.load(Ordering::Relaxed) != 0 {
                    let taken = count.swap(0, Ordering::AcqRel);
                    if taken != 0 {
                        buckets.push((bucket, taken));
                    }
                }
            }
            let runs = match slot.runs.swap(0, Ordering::Acquire) {
                0 => None,
                runs => Some(Runs {
                    runs,
                    executions: slot.run_executions.swap(0, Ordering::Relaxed),
                    max_length: slot.run_max_length.swap(0, Ordering::Relaxed),
                    parent: slot.run_parent.load(Ordering::Relaxed),
                    application: load_application(slot),
                }),
            };
            let usage = Usage::take_from(slot);
            if !buckets.is_empty() || runs.is_some() || usage != Usage::default() {
                drained.push(Drained {
                    dbid: slot.dbid,
                    userid: slot.userid,
                    queryid: slot.queryid,
                    buckets,
                    runs,
                    usage,
                });
            }
        }
        drained
    }

    /// Puts drained counts back: when they could not be stored (their slots exist), or when
    /// the postmaster reads them back after a clean restart (`claim`: an entry takes a free
    /// slot as `record` would; what finds no room is counted in `lost_executions`).
    pub fn restore(&self, drained: &[Drained], claim: bool) {
        let header = self.header;
        let room_left = || claim && header.used.load(Ordering::Relaxed) < header.capacity;
        let overflow_room = || claim;
        for entry in drained {
            let overflow = entry.queryid == 0 && entry.userid == 0;
            let found = if overflow {
                find(self.overflow, entry.dbid, 0, 0, &overflow_room)
            } else {
                find(
                    self.regular,
                    entry.dbid,
                    entry.userid,
                    entry.queryid,
                    &room_left,
                )
            };
            let Some((slot, claimed)) = found else {
                let executions = entry.buckets.iter().map(|(_, count)| count).sum();
                header
                    .lost_executions
                    .fetch_add(executions, Ordering::Relaxed);
                continue;
            };
            if claimed {
                let used = if overflow {
                    &header.overflow_used
                } else {
                    &header.used
                };
                used.fetch_add(1, Ordering::Relaxed);
            }
            for (bucket, count) in &entry.buckets {
                slot.counts[*bucket].fetch_add(*count, Ordering::Relaxed);
            }
            entry.usage.add_to(slot);
            if let Some(runs) = &entry.runs {
                if claimed {
                    slot.run_parent.store(runs.parent, Ordering::Relaxed);
                    if let Some(application) = &runs.application {
                        store_application(slot, application.as_bytes());
                    }
                }
                slot.run_executions
                    .fetch_add(runs.executions, Ordering::Relaxed);
                slot.run_max_length
                    .fetch_max(runs.max_length, Ordering::Relaxed);
                slot.runs.fetch_add(runs.runs, Ordering::Release);
            }
        }
    }

    pub fn status(&self) -> Status {
        Status {
            capacity: i64::from(self.header.capacity),
            used: i64::from(
                self.header
                    .used
                    .load(Ordering::Relaxed)
                    .min(self.header.capacity),
            ),
            overflow_databases: i64::from(self.header.overflow_used.load(Ordering::Relaxed)),
            lost_executions: self.header.lost_executions.load(Ordering::Relaxed) as i64,
            shared_memory_bytes: shmem_size(self.header.capacity) as i64,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drained {
    pub dbid: u32,
    pub userid: u32,
    pub queryid: i64,
    pub buckets: Vec<(usize, u64)>,
    pub runs: Option<Runs>,
    pub usage: Usage,
}

/// The runs of one statement drained from its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runs {
    pub runs: u64,
    pub executions: u64,
    pub max_length: u64,
    pub parent: i64,
    /// The application of the most recent run (None: unknown, or an empty name).
    pub application: Option<String>,
}

pub struct Status {
    pub capacity: i64,
    pub used: i64,
    pub overflow_databases: i64,
    pub lost_executions: i64,
    pub shared_memory_bytes: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_slot_size() {
        // docs/latency.md and docs/settings.md (dbanalytics.max_histogram_queries)
        assert_eq!(std::mem::size_of::<Slot>(), 3904);
        assert_eq!(shmem_size(5000), 26_277_848);
    }

    fn empty_slot() -> Box<Slot> {
        // SAFETY: every field of a slot is an integer or an atomic integer: all zeros is the
        // empty slot, as `attach` makes it in shared memory.
        Box::new(unsafe { std::mem::zeroed() })
    }

    #[test]
    fn a_run_keeps_the_application_name_of_the_latest_run() {
        let slot = empty_slot();
        assert_eq!(load_application(&slot), None, "no run yet");
        store_application(&slot, b"shop_n_plus_one");
        assert_eq!(load_application(&slot).as_deref(), Some("shop_n_plus_one"));
        store_application(&slot, b"web");
        assert_eq!(
            load_application(&slot).as_deref(),
            Some("web"),
            "the shorter name is padded"
        );
        store_application(&slot, b"");
        assert_eq!(load_application(&slot), None, "an empty name is no name");
    }

    #[test]
    fn an_application_name_is_cut_at_63_bytes() {
        let slot = empty_slot();
        let long = [b'a'; 100];
        store_application(&slot, &long);
        assert_eq!(load_application(&slot), Some("a".repeat(63)));
    }

    #[test]
    fn a_second_writer_skips_while_one_writes() {
        let slot = empty_slot();
        store_application(&slot, b"first");
        slot.run_application_seq.fetch_add(1, Ordering::Relaxed); // a writer is in the middle
        store_application(&slot, b"second");
        assert_eq!(
            load_application(&slot),
            None,
            "a reader does not read a name being written"
        );
        slot.run_application_seq.fetch_add(1, Ordering::Relaxed);
        assert_eq!(load_application(&slot).as_deref(), Some("first"));
    }
}
