//! Sizes of the user's relations without waiting on their locks.
//!
//! `pg_table_size()` and `pg_relation_size()` open the relation with an ACCESS SHARE lock, so a
//! snapshot waits behind any ACCESS EXCLUSIVE lock on a monitored table (VACUUM FULL, ALTER
//! TABLE, TRUNCATE, a `LOCK TABLE` in a prepared transaction) until the collector's lock_timeout
//! fails the whole source, for every table, for as long as the lock is held. Here a relation
//! whose lock is not free at once has no size in that snapshot (NULL); its counters, which come
//! from the statistics system without any lock, are still collected.

use pgrx::prelude::*;

/// The size of `relation` as `pg_table_size()` gives it (`whole_table`: every fork and the
/// TOAST table) or `pg_relation_size()` (its main fork, for an index), or NULL when the
/// relation is locked against reading now (or no longer exists).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _relation_size_nowait(relation: pg_sys::Oid, whole_table: bool) -> Option<i64> {
    let mode = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    // SAFETY: a conditional lock request (never waits); the size functions take their own lock
    // (granted at once: we hold one) and release it; ours is released right after.
    unsafe {
        if !pg_sys::ConditionalLockRelationOid(relation, mode) {
            return None;
        }
        let size = if whole_table {
            pgrx::direct_function_call::<i64>(pg_sys::pg_table_size, &[relation.into_datum()])
        } else {
            pgrx::direct_function_call::<i64>(
                pg_sys::pg_relation_size,
                &[relation.into_datum(), "main".into_datum()],
            )
        };
        pg_sys::UnlockRelationOid(relation, mode);
        size
    }
}
