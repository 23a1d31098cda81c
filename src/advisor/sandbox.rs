//! Planning a statement text that another role wrote, without lending it our privileges.
//!
//! Planning runs code: constant folding evaluates IMMUTABLE functions, selectivity estimation
//! calls STABLE ones and the operators' restriction functions, inlining parses SQL function
//! bodies. A text from pg_stat_statements is written by whoever ran it, so a superuser (or a
//! dbanalytics_admin) who plans it would run that role's functions with the caller's rights.
//! PostgreSQL's own answer, used by autovacuum's ANALYZE of index expressions and by REFRESH
//! MATERIALIZED VIEW, is to switch to the object's owner in a restricted security context; we do
//! the same for the text's owner, and only when the caller holds that role's privileges anyway
//! (so nothing runs as a role the caller could not become).
//!
//! Everything happens in a subtransaction that is always rolled back and read-only: the owner's
//! functions can neither write nor leave anything behind, and the rollback restores the caller's
//! user id, security context and settings whatever happened inside.

use crate::collect::isolation::{
    in_rolled_back_subtransaction, in_subtransaction, is_cancel, SourceError,
};
use crate::{gucs, spi, timeouts};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// This backend's timeout for planning one text (a PostgreSQL user timeout, registered on first
/// use; -1 before), and whether it fired.
static PLANNING_TIMEOUT: AtomicI32 = AtomicI32::new(-1);
static PLANNING_TIMED_OUT: AtomicBool = AtomicBool::new(false);

/// Runs in the SIGALRM handler: asks for a query cancel, as statement_timeout does, and says it
/// was ours (the timeout machinery sets the latch). Only stores, nothing that could fail.
extern "C-unwind" fn planning_timed_out() {
    PLANNING_TIMED_OUT.store(true, Ordering::SeqCst);
    // SAFETY: the two flags the server's own cancel handler sets; sig_atomic_t stores.
    unsafe {
        pg_sys::QueryCancelPending = 1;
        pg_sys::InterruptPending = 1;
    }
}

/// Runs `plan` with the planning timeout armed (`dbanalytics.advice_planning_timeout`): a
/// cancel it caused comes back as `Err`; any other cancel (the user's, statement_timeout) or
/// error propagates.
fn with_planning_timeout<R>(
    plan: impl FnOnce() -> Result<R, SourceError>,
) -> Result<R, SourceError> {
    let ms = gucs::advice_planning_timeout_ms();
    if ms <= 0 {
        return plan();
    }
    let mut id = PLANNING_TIMEOUT.load(Ordering::SeqCst);
    if id < 0 {
        id = timeouts::register_user_timeout(planning_timed_out);
        PLANNING_TIMEOUT.store(id, Ordering::SeqCst);
    }
    PLANNING_TIMED_OUT.store(false, Ordering::SeqCst);
    timeouts::arm(id, ms);
    let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Ok(plan())))
        .catch_others(|caught| Err(Box::new(caught)))
        .execute();
    timeouts::disarm(id);
    let fired = PLANNING_TIMED_OUT.swap(false, Ordering::SeqCst);
    let too_long = || {
        format!(
            "not planned: planning took longer than dbanalytics.advice_planning_timeout ({ms} ms)"
        )
    };
    match outcome {
        Err(caught) if fired && is_cancel(&caught) => Err(too_long()),
        Err(caught) => caught.rethrow(),
        // it fired, but no cancel came out: planning ended just then, or a function of the
        // statement caught the cancel (EXCEPTION WHEN query_canceled) and went on. Either way
        // the text took too long: skipped, and no cancel is left pending for the caller
        Ok(_) if fired => {
            // SAFETY: clears the request planning_timed_out made.
            unsafe { pg_sys::QueryCancelPending = 0 };
            Err(too_long())
        }
        Ok(result) => result,
    }
}

/// Why a statement text was not planned.
pub const NOT_PLANNED_OTHER_ROLE: &str =
    "not planned: the statement belongs to a role whose privileges the caller does not have";

/// The search_path a role's statements were most likely planned with in this database: its own
/// per-database setting, then its own, then the database's, then the server's default.
pub fn role_search_path(role: pg_sys::Oid) -> String {
    spi::select_one_with_args::<String>(
        "SELECT COALESCE(
                  (SELECT pg_catalog.substr(c.setting, 13)
                     FROM pg_catalog.pg_db_role_setting s,
                          pg_catalog.unnest(s.setconfig) AS c(setting)
                    WHERE c.setting OPERATOR(pg_catalog.^@) 'search_path='
                      AND s.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[$1, 0::pg_catalog.oid])
                      AND s.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[d.oid, 0::pg_catalog.oid])
                    ORDER BY s.setrole OPERATOR(pg_catalog.=) 0, s.setdatabase OPERATOR(pg_catalog.=) 0
                    LIMIT 1),
                  (SELECT g.boot_val FROM pg_catalog.pg_settings g
                    WHERE g.name OPERATOR(pg_catalog.=) 'search_path'))
           FROM pg_catalog.pg_database d
          WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()",
        &[role.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| "\"$user\", public".to_string())
}

/// Runs `body` (which plans a text of `owner`'s) as `owner`, in a restricted security context,
/// read-only, with `search_path` set, inside a subtransaction that is always rolled back.
/// `prepare` runs first, as the owner too but outside the restricted context (PostgreSQL refuses
/// PREPARE there, and parse analysis runs none of the owner's functions); it must not plan.
/// An error inside comes back as `Err`; nothing the owner's code did survives.
pub fn as_text_owner<R>(
    owner: pg_sys::Oid,
    search_path: &str,
    prepare: impl FnOnce() -> Result<(), SourceError>,
    body: impl FnOnce() -> Result<R, SourceError>,
) -> Result<R, SourceError> {
    // a role dropped since it ran the statement (or no role at all) plans nothing
    let exists = owner != pg_sys::Oid::INVALID
        && spi::select_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) $1)",
            &[owner.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
    if !exists {
        return Err("not planned: the role that ran the statement no longer exists".to_string());
    }
    // SAFETY: plain reads of the session's user id and role membership.
    let allowed = unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) };
    if !allowed {
        return Err(NOT_PLANNED_OTHER_ROLE.to_string());
    }
    with_planning_timeout(|| {
        in_rolled_back_subtransaction(|| {
            in_subtransaction(|| {
                spi::execute_with_args(
                    "SELECT pg_catalog.set_config('search_path', $1, true),
                        pg_catalog.set_config('transaction_read_only', 'on', true)",
                    &[search_path.into()],
                )
                .map_err(|e| e.to_string())?;
                let (mut caller, mut context) = (pg_sys::Oid::INVALID, 0);
                // SAFETY: the subtransaction records the caller's user id and security context when
                // it starts and puts them back when it is rolled back (AbortSubTransaction), so
                // neither an error nor a return leaves the session as the owner.
                unsafe {
                    pg_sys::GetUserIdAndSecContext(&mut caller, &mut context);
                    pg_sys::SetUserIdAndSecContext(
                        owner,
                        context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
                    );
                }
                prepare()?;
                // SAFETY: as above.
                unsafe {
                    pg_sys::SetUserIdAndSecContext(
                        owner,
                        context
                            | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                            | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
                    );
                }
                body()
            })
        })
    })
}
