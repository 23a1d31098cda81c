//! Run one collection source in its own subtransaction, so that its failure is recorded and
//! the other sources (and the caller's transaction) carry on, as PL/pgSQL's EXCEPTION block does.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The error message of a failed source, with its detail and hint when PostgreSQL gave them.
pub type SourceError = String;

pub fn in_subtransaction<R>(
    body: impl FnOnce() -> Result<R, SourceError>,
) -> Result<R, SourceError> {
    // SAFETY: the same sequence as PL/pgSQL's exec_stmt_block: begin, run, then release or
    // roll back, restoring the caller's memory context and resource owner either way.
    unsafe {
        let caller_context = pg_sys::CurrentMemoryContext;
        let caller_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(caller_context);

        let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(body))
            .catch_others(|caught| Err(describe(&caught)))
            .execute();

        match outcome {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(caller_context);
        pg_sys::CurrentResourceOwner = caller_owner;
        outcome
    }
}

fn describe(caught: &pg_sys::panic::CaughtError) -> String {
    let report = match caught {
        pg_sys::panic::CaughtError::PostgresError(report)
        | pg_sys::panic::CaughtError::ErrorReport(report)
        | pg_sys::panic::CaughtError::RustPanic {
            ereport: report, ..
        } => report,
    };
    let mut message = report.message().to_string();
    if let Some(detail) = report.detail() {
        message.push_str(&format!(" (DETAIL: {detail})"));
    }
    if let Some(hint) = report.hint() {
        message.push_str(&format!(" (HINT: {hint})"));
    }
    message
}

/// Runs `body` in a subtransaction that is always rolled back, whatever it did; an error it
/// raised is raised again (with its code, detail and hint) after the rollback.
pub fn in_rolled_back_subtransaction<R>(body: impl FnOnce() -> R) -> R {
    // SAFETY: as in_subtransaction, but the subtransaction is never committed.
    unsafe {
        let caller_context = pg_sys::CurrentMemoryContext;
        let caller_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(caller_context);

        let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Ok(body())))
            .catch_others(|caught| Err(Box::new(caught)))
            .execute();

        pg_sys::RollbackAndReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(caller_context);
        pg_sys::CurrentResourceOwner = caller_owner;
        match outcome {
            Ok(value) => value,
            Err(caught) => caught.rethrow(),
        }
    }
}
