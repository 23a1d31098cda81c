//! Rows of the heavy internal analytics, computed once per statement and snapshot (issue 16).
//!
//! `health_score()`, `query_analysis()`, `top_queries()`, `index_advice()` and the report each sum
//! the same window's statement history: `report_html('7 days')` asked for one week's
//! `_statement_totals` five times. Each function listed in [`MEMOIZED`] is declared in SQL as
//! `LANGUAGE c` on [`dbanalytics_memoized`], which calls the function that computes its rows
//! (`_compute_<name>`, same arguments, same result type) as the executor calls a function in
//! FROM, returns the tuple store it filled and keeps a copy of the rows. A later call gets the
//! copy back when nothing it could see has changed:
//!
//! - same function and the same argument values;
//! - same current role;
//! - same top-level statement (its start time), and the same settings that change how values
//!   are written as text (DateStyle, IntervalStyle, TimeZone, extra_float_digits);
//! - the same MVCC snapshot: same `xmin`, `xmax`, transactions in progress and command id. Two
//!   such snapshots see exactly the same rows. Inside one statement every STABLE function
//!   shares its caller's snapshot, so a report reuses the rows; its own writes, or another
//!   snapshot (a READ COMMITTED query in a function after a commit), compute them again. What
//!   is not MVCC (statistics views, relation sizes) is read once per statement, as PostgreSQL
//!   lets a STABLE function do.
//!
//! The copies live in this backend's memory and are dropped at the end of every transaction, and
//! at the abort of the subtransaction they were computed in. At most [`MAX_ENTRIES`] results of
//! at most [`MAX_BYTES`] together are kept, the least recently used dropped first; a larger
//! result is returned without a copy.

use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};

/// The functions whose rows are kept, and the function that computes them (same schema).
const MEMOIZED: &[(&str, &str)] = &[
    ("_statement_totals", "_compute_statement_totals"),
    ("_latency_parts", "_compute_latency_parts"),
    ("_statement_usage", "_compute_statement_usage"),
    ("_pool_verdicts", "_compute_pool_verdicts"),
    ("index_effectiveness", "_compute_index_effectiveness"),
    ("blocking_chains", "_compute_blocking_chains"),
];

/// How many results are kept at most (a report asks for about twelve distinct ones).
const MAX_ENTRIES: usize = 32;
/// How many bytes of rows are kept at most, all results together.
const MAX_BYTES: usize = 64 << 20;

/// What a result depends on besides the rows a snapshot sees.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Key {
    function: u32,
    role: u32,
    /// when the top-level statement started: results are reused within one statement only
    statement: i64,
    /// the settings that change how values are written as text
    settings: Vec<u8>,
    /// the snapshot's identity (snapshot_identity)
    snapshot: Vec<u32>,
    /// each argument's bytes, None for NULL
    arguments: Vec<Option<Vec<u8>>>,
}

/// One kept result: its rows (minimal tuples, each starting on an 8-byte boundary).
struct Entry {
    key: Key,
    /// the subtransaction it was computed in: gone if that one aborts
    subtransaction: pg_sys::SubTransactionId,
    words: Vec<u64>,
    /// (first word, length in bytes) of each row
    rows: Vec<(usize, u32)>,
}

impl Entry {
    /// The memory its rows hold (what was allocated, not only what is used).
    fn bytes(&self) -> usize {
        self.words.capacity() * 8 + self.rows.capacity() * std::mem::size_of::<(usize, u32)>()
    }
}

thread_local! {
    static KEPT: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static CALLBACKS_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// The kept result for `key`, if any, handed to `f`; it becomes the last one dropped.
fn with_kept<R>(key: &Key, f: impl FnOnce(Option<&Entry>) -> R) -> R {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some(at) = kept.iter().position(|e| &e.key == key) {
            let entry = kept.remove(at);
            kept.push(entry);
        }
        f(kept.last().filter(|e| &e.key == key))
    })
}

/// Keeps `entry`, dropping the least recently used results beyond the limits.
fn keep(entry: Entry) {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.retain(|e| e.key != entry.key);
        kept.push(entry);
        while kept.len() > MAX_ENTRIES || kept.iter().map(Entry::bytes).sum::<usize>() > MAX_BYTES {
            kept.remove(0);
        }
    });
    if !CALLBACKS_REGISTERED.with(|registered| registered.replace(true)) {
        // SAFETY: registers callbacks of this backend, for the rest of its life
        unsafe {
            pg_sys::RegisterXactCallback(Some(forget_at_xact_end), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(forget_at_subxact_abort), std::ptr::null_mut());
        }
    }
}

/// Forgets the results computed in subtransaction `from` or in any later one (all of them: 1).
fn forget_since(from: pg_sys::SubTransactionId) {
    KEPT.with(|kept| kept.borrow_mut().retain(|e| e.subtransaction < from));
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_at_xact_end(
    _event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    // (the top transaction's subtransaction id is 1, the lowest)
    forget_since(1);
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_at_subxact_abort(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    _parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    // a result computed in the aborted subtransaction may count rows it wrote (a snapshot taken
    // after the abort differs anyway: the abort moves xmax; this keeps nothing to compare); one
    // computed before it saw none of them (its snapshot's command id came first)
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        forget_since(my_subid);
    }
}

/// The active snapshot's identity: its bounds, the transactions it sees as running and its
/// command id, if it is an MVCC snapshot. Snapshots alike in these see the same rows.
///
/// SAFETY: reads the active snapshot, if one is set.
unsafe fn snapshot_identity() -> Option<Vec<u32>> {
    unsafe {
        if !pg_sys::ActiveSnapshotSet() {
            return None;
        }
        let snapshot = pg_sys::GetActiveSnapshot().as_ref()?;
        if snapshot.snapshot_type != pg_sys::SnapshotType::SNAPSHOT_MVCC {
            return None;
        }
        let running = |xids: *mut pg_sys::TransactionId, count: usize| {
            if count == 0 || xids.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(xids, count)
            }
        };
        let xip = running(snapshot.xip, snapshot.xcnt as usize);
        let subxip = running(snapshot.subxip, snapshot.subxcnt.max(0) as usize);
        let mut identity = vec![
            snapshot.xmin.into_inner(),
            snapshot.xmax.into_inner(),
            snapshot.curcid,
            u32::from(snapshot.suboverflowed) | u32::from(snapshot.takenDuringRecovery) << 1,
            xip.len() as u32,
        ];
        identity.extend(xip.iter().map(|x| x.into_inner()));
        identity.extend(subxip.iter().map(|x| x.into_inner()));
        Some(identity)
    }
}

/// The values of the settings that change how a result's values are written as text
/// (`format('%s', ...)` of times, intervals and floats), NUL-separated.
fn text_settings() -> Vec<u8> {
    let mut values = Vec::new();
    for name in [
        c"DateStyle",
        c"IntervalStyle",
        c"TimeZone",
        c"extra_float_digits",
    ] {
        // SAFETY: GetConfigOption returns the setting's current value (NULL only if missing_ok)
        unsafe {
            let value = pg_sys::GetConfigOption(name.as_ptr(), true, false);
            if !value.is_null() {
                values.extend_from_slice(CStr::from_ptr(value).to_bytes());
            }
        }
        values.push(0);
    }
    values
}

/// The bytes of one argument value of type `type_oid`.
///
/// SAFETY: `value` is a non-null Datum of type `type_oid`.
unsafe fn argument_bytes(type_oid: pg_sys::Oid, value: pg_sys::Datum) -> Vec<u8> {
    unsafe {
        let (mut length, mut by_value) = (0i16, false);
        pg_sys::get_typlenbyval(type_oid, &mut length, &mut by_value);
        if by_value {
            value.value().to_ne_bytes().to_vec()
        } else if length > 0 {
            std::slice::from_raw_parts(value.cast_mut_ptr::<u8>(), length as usize).to_vec()
        } else if length == -1 {
            let flat = pg_sys::pg_detoast_datum_packed(value.cast_mut_ptr());
            std::slice::from_raw_parts(
                pgrx::varlena::vardata_any(flat) as *const u8,
                pgrx::varlena::varsize_any_exhdr(flat),
            )
            .to_vec()
        } else {
            CStr::from_ptr(value.cast_mut_ptr()).to_bytes().to_vec()
        }
    }
}

fn internal_error(message: String) -> ! {
    super::raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        message,
        "Reinstall the extension: its SQL and its library do not match.",
    )
}

/// The function computing the rows of function `oid`: `_compute_<name>` in the same schema,
/// with the same argument types.
///
/// SAFETY: `oid` is the OID of the function being called, `types` its argument types.
unsafe fn computing_function(oid: pg_sys::Oid, types: &[pg_sys::Oid]) -> pg_sys::Oid {
    unsafe {
        let name = pg_sys::get_func_name(oid);
        let name = if name.is_null() {
            ""
        } else {
            CStr::from_ptr(name).to_str().unwrap_or("")
        };
        let Some((_, computing)) = MEMOIZED.iter().find(|(memoized, _)| *memoized == name) else {
            internal_error(format!(
                "dbanalytics: {name}() is not a function whose rows are kept"
            ));
        };
        let schema = pg_sys::get_namespace_name(pg_sys::get_func_namespace(oid));
        let computing = CString::new(*computing).expect("no NUL in a function name");
        let mut names = pg_sys::lappend(std::ptr::null_mut(), pg_sys::makeString(schema).cast());
        names = pg_sys::lappend(
            names,
            pg_sys::makeString(pg_sys::pstrdup(computing.as_ptr())).cast(),
        );
        let found = pg_sys::LookupFuncName(names, types.len() as i32, types.as_ptr(), true);
        if found == pg_sys::InvalidOid {
            internal_error(format!(
                "dbanalytics: the function computing the rows of {name}() is missing"
            ));
        }
        found
    }
}

/// Checks, as the executor checks a function it calls, that the current role may execute
/// function `oid`, and runs the object access hook for it.
///
/// SAFETY: `oid` is the OID of an existing function.
unsafe fn check_may_execute(oid: pg_sys::Oid) {
    unsafe {
        #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
        let allowed = pg_sys::pg_proc_aclcheck(
            oid,
            pg_sys::GetUserId(),
            pg_sys::ACL_EXECUTE as pg_sys::AclMode,
        );
        #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
        let allowed = pg_sys::object_aclcheck(
            pg_sys::ProcedureRelationId,
            oid,
            pg_sys::GetUserId(),
            pg_sys::ACL_EXECUTE as pg_sys::AclMode,
        );
        if allowed != pg_sys::AclResult::ACLCHECK_OK {
            pg_sys::aclcheck_error(
                allowed,
                pg_sys::ObjectType::OBJECT_FUNCTION,
                pg_sys::get_func_name(oid),
            );
        }
        if std::ptr::addr_of!(pg_sys::object_access_hook)
            .read()
            .is_some()
        {
            pg_sys::RunFunctionExecuteHook(oid);
        }
    }
}

/// Checks that rows of `computed` can be returned as rows of `declared`.
///
/// SAFETY: both are valid tuple descriptors.
unsafe fn check_same_columns(declared: pg_sys::TupleDesc, computed: pg_sys::TupleDesc) {
    // SAFETY: neither descriptor is released by these wrappers
    let (declared, computed) = unsafe {
        (
            pgrx::PgTupleDesc::from_pg_unchecked(declared),
            pgrx::PgTupleDesc::from_pg_unchecked(computed),
        )
    };
    let same = declared.len() == computed.len()
        && declared
            .iter()
            .zip(computed.iter())
            .all(|(d, c)| d.atttypid == c.atttypid && d.attlen == c.attlen);
    if !same {
        internal_error(
            "dbanalytics: a kept function's columns differ from the function computing them".into(),
        );
    }
}

/// Appends the minimal tuple `slot` shows to `entry` (values still in TOAST tables read now:
/// the copy must stand alone). False when the row cannot be kept: no memory for it (Rust would
/// abort the backend), or the rows grew larger than the bound.
///
/// SAFETY: `slot` is a minimal-tuple slot of descriptor `desc` holding a row.
unsafe fn keep_row(
    entry: &mut Entry,
    slot: *mut pg_sys::TupleTableSlot,
    desc: pg_sys::TupleDesc,
) -> bool {
    unsafe {
        let mut should_free = false;
        let shown = pg_sys::ExecFetchSlotMinimalTuple(slot, &mut should_free);
        // the flattened copy and what was made on the way to it, freed once copied
        let mut made: Vec<*mut std::ffi::c_void> = Vec::new();
        let tuple = if ((*shown).t_infomask as u32 & pg_sys::HEAP_HASEXTERNAL) != 0 {
            let heap = pg_sys::heap_tuple_from_minimal_tuple(shown);
            let flat = pg_sys::heap_copy_tuple_as_datum(heap, desc)
                .cast_mut_ptr::<pg_sys::HeapTupleHeaderData>();
            let mut flat_tuple = pg_sys::HeapTupleData {
                t_len: pgrx::varlena::varsize(flat as *const pg_sys::varlena) as u32,
                t_data: flat,
                ..Default::default()
            };
            #[cfg(not(feature = "pg18"))]
            let minimal = pg_sys::minimal_tuple_from_heap_tuple(&mut flat_tuple);
            #[cfg(feature = "pg18")]
            let minimal = pg_sys::minimal_tuple_from_heap_tuple(&mut flat_tuple, 0);
            made.extend([heap.cast(), flat.cast(), minimal.cast()]);
            minimal
        } else {
            shown
        };
        let length = (*tuple).t_len as usize;
        let words = length.div_ceil(8);
        let kept = entry.words.try_reserve(words).is_ok() && entry.rows.try_reserve(1).is_ok();
        if kept {
            let first = entry.words.len();
            entry.words.resize(first + words, 0);
            std::ptr::copy_nonoverlapping(
                tuple as *const u8,
                entry.words.as_mut_ptr().add(first) as *mut u8,
                length,
            );
            entry.rows.push((first, length as u32));
        }
        for pointer in made {
            pg_sys::pfree(pointer);
        }
        kept && entry.words.len() * 8 + entry.rows.len() * std::mem::size_of::<(usize, u32)>()
            <= MAX_BYTES
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_dbanalytics_memoized() -> &'static pg_sys::Pg_finfo_record {
    const V1_API: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1_API
}

/// The C function behind every function of [`MEMOIZED`]: returns its rows, from the kept copy
/// when there is one for this call (see the module's documentation), otherwise computed by
/// `_compute_<name>` and kept. A set-returning function in materialize mode.
///
/// # Safety
/// Called by PostgreSQL's function manager, with a valid `fcinfo`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn dbanalytics_memoized(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let call = &mut *fcinfo;
        let rsinfo = call.resultinfo as *mut pg_sys::ReturnSetInfo;
        if rsinfo.is_null()
            || (*rsinfo).type_ != pg_sys::NodeTag::T_ReturnSetInfo
            || ((*rsinfo).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32)
                == 0
        {
            super::raise(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "dbanalytics: set-valued function called in context that cannot accept a set"
                    .into(),
                "Call it in a FROM clause.",
            );
        }
        let function = (*call.flinfo).fn_oid;
        let mut declared: pg_sys::TupleDesc = std::ptr::null_mut();
        if pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut declared)
            != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE
        {
            internal_error(
                "dbanalytics: a kept function must return rows of a composite type".into(),
            );
        }

        // the arguments, as declared
        let mut argument_types: *mut pg_sys::Oid = std::ptr::null_mut();
        let mut nargs: i32 = 0;
        pg_sys::get_func_signature(function, &mut argument_types, &mut nargs);
        let nargs = nargs as usize;
        let types = std::slice::from_raw_parts(argument_types, nargs);
        let arguments = std::slice::from_raw_parts(call.args.as_ptr(), nargs);

        let key = snapshot_identity().map(|snapshot| Key {
            function: function.to_u32(),
            role: pg_sys::GetUserId().to_u32(),
            statement: pg_sys::GetCurrentStatementStartTimestamp(),
            settings: text_settings(),
            snapshot,
            arguments: arguments
                .iter()
                .zip(types)
                .map(|(a, t)| (!a.isnull).then(|| argument_bytes(*t, a.value)))
                .collect(),
        });

        // the result: a tuple store in the query's memory that holds `bytes` of rows without
        // spilling to a temporary file when they fit in the kept results' bound (the rows are
        // in memory already: written out and read back, 11 MB of latency parts cost more than
        // computing them), otherwise in work_mem as any other set
        let per_query = (*(*rsinfo).econtext).ecxt_per_query_memory;
        let random_access = ((*rsinfo).allowedModes
            & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32)
            != 0;
        let hand_over = |store: *mut pg_sys::Tuplestorestate| {
            let previous = pg_sys::MemoryContextSwitchTo(per_query);
            (*rsinfo).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
            (*rsinfo).setResult = store;
            (*rsinfo).setDesc = pg_sys::CreateTupleDescCopy(declared);
            pg_sys::MemoryContextSwitchTo(previous);
        };
        let begin_store = |bytes: usize| {
            let previous = pg_sys::MemoryContextSwitchTo(per_query);
            let kilobytes = if bytes <= MAX_BYTES {
                (bytes / 1024 + 64).max(pg_sys::work_mem as usize) as i32
            } else {
                pg_sys::work_mem
            };
            let store = pg_sys::tuplestore_begin_heap(random_access, false, kilobytes);
            pg_sys::MemoryContextSwitchTo(previous);
            store
        };
        // a slot showing minimal tuples of the declared columns, for the rows copied
        let slot = pg_sys::MakeSingleTupleTableSlot(declared, &pg_sys::TTSOpsMinimalTuple);
        let replayed = key.as_ref().is_some_and(|key| {
            with_kept(key, |entry| {
                let Some(entry) = entry else { return false };
                let store = begin_store(entry.bytes());
                for &(first, _) in &entry.rows {
                    let tuple = entry.words.as_ptr().add(first) as pg_sys::MinimalTuple;
                    pg_sys::ExecStoreMinimalTuple(tuple, slot, false);
                    pg_sys::tuplestore_puttupleslot(store, slot);
                }
                hand_over(store);
                true
            })
        });
        if replayed {
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            return pg_sys::Datum::from(0);
        }

        // computed: `_compute_<name>` called with the same arguments, as the executor calls a
        // set-returning function in FROM (same expression context, a tuple store asked for), on
        // this same snapshot; its tuple store becomes this call's result. Its FmgrInfo is made
        // at the first call of the query and kept in this function's fn_extra, so that what
        // hangs on it (fmgr_sql's parsed statements) is made once per query too
        let own = call.flinfo;
        let mut flinfo = (*own).fn_extra as *mut pg_sys::FmgrInfo;
        if flinfo.is_null() {
            let computing = computing_function(function, types);
            flinfo = pg_sys::MemoryContextAllocZero(
                (*own).fn_mcxt,
                std::mem::size_of::<pg_sys::FmgrInfo>(),
            ) as *mut pg_sys::FmgrInfo;
            pg_sys::fmgr_info_cxt(computing, flinfo, (*own).fn_mcxt);
            (*own).fn_extra = flinfo.cast();
        }
        check_may_execute((*flinfo).fn_oid);
        let inner = pg_sys::palloc0(std::mem::size_of::<pg_sys::ReturnSetInfo>())
            as *mut pg_sys::ReturnSetInfo;
        (*inner).type_ = pg_sys::NodeTag::T_ReturnSetInfo;
        (*inner).econtext = (*rsinfo).econtext;
        (*inner).expectedDesc = declared;
        (*inner).allowedModes = (pg_sys::SetFunctionReturnMode::SFRM_ValuePerCall
            | pg_sys::SetFunctionReturnMode::SFRM_Materialize
            | pg_sys::SetFunctionReturnMode::SFRM_Materialize_Preferred)
            as i32
            | ((*rsinfo).allowedModes
                & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32);
        (*inner).returnMode = pg_sys::SetFunctionReturnMode::SFRM_ValuePerCall;
        (*inner).isDone = pg_sys::ExprDoneCond::ExprSingleResult;
        let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
            + nargs * std::mem::size_of::<pg_sys::NullableDatum>();
        let inner_call = pg_sys::palloc0(size) as pg_sys::FunctionCallInfo;
        (*inner_call).flinfo = flinfo;
        (*inner_call).nargs = nargs as i16;
        (*inner_call).fncollation = call.fncollation;
        (*inner_call).resultinfo = inner.cast();
        std::ptr::copy_nonoverlapping(arguments.as_ptr(), (*inner_call).args.as_mut_ptr(), nargs);
        // counted in pg_stat_user_functions as the executor counts the functions it calls; an
        // error in it comes back through pgrx's guard, which unwinds this frame
        let function_address = (*flinfo).fn_addr.expect("a function's address");
        let mut usage = pg_sys::PgStat_FunctionCallUsage::default();
        pg_sys::pgstat_init_function_usage(inner_call, &mut usage);
        pg_sys::ffi::pg_guard_ffi_boundary(|| function_address(inner_call));
        pg_sys::pgstat_end_function_usage(&mut usage, true);
        if (*inner).returnMode != pg_sys::SetFunctionReturnMode::SFRM_Materialize {
            internal_error(
                "dbanalytics: the function computing a kept function's rows returned no tuple store"
                    .into(),
            );
        }
        if !(*inner).setDesc.is_null() {
            check_same_columns(declared, (*inner).setDesc);
            if (*(*inner).setDesc).tdrefcount == -1 {
                pg_sys::FreeTupleDesc((*inner).setDesc);
            }
        }
        let mut entry = key.map(|key| Entry {
            key,
            subtransaction: pg_sys::GetCurrentSubTransactionId(),
            words: Vec::new(),
            rows: Vec::new(),
        });
        let computed = (*inner).setResult;
        if computed.is_null() {
            // no rows
            hand_over(begin_store(0));
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            if let Some(entry) = entry {
                keep(entry);
            }
            return pg_sys::Datum::from(0);
        }

        // the copy kept: each row once, as a minimal tuple standing alone. A store that spilled
        // to a temporary file is copied into one held in memory as it is read (the caller reads
        // it once more); without a copy to keep, the store is handed over as it is
        if entry.is_none() {
            hand_over(computed);
        } else {
            let copy = (!pg_sys::tuplestore_in_memory(computed)).then(|| begin_store(MAX_BYTES));
            while pg_sys::tuplestore_gettupleslot(computed, true, false, slot) {
                if let Some(copy) = copy {
                    pg_sys::tuplestore_puttupleslot(copy, slot);
                }
                if let Some(e) = entry.as_mut() {
                    if !keep_row(e, slot, declared) {
                        entry = None;
                    }
                }
            }
            match copy {
                Some(copy) => {
                    pg_sys::tuplestore_end(computed);
                    hand_over(copy);
                }
                None => {
                    pg_sys::tuplestore_rescan(computed);
                    hand_over(computed);
                }
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        if let Some(mut entry) = entry {
            // (grown by doubling: what is not used is given back before it is counted)
            entry.words.shrink_to_fit();
            entry.rows.shrink_to_fit();
            keep(entry);
        }
        pg_sys::Datum::from(0)
    }
}
