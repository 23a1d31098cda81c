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

        let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Ok(body())))
            .catch_others(|caught| Err(Box::new(caught)))
            .execute();

        match outcome {
            Ok(Ok(_)) => pg_sys::ReleaseCurrentSubTransaction(),
            _ => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(caller_context);
        pg_sys::CurrentResourceOwner = caller_owner;
        match outcome {
            Ok(result) => result,
            // a cancel (the user's, statement_timeout) ends the whole statement, as PL/pgSQL's
            // WHEN OTHERS lets it: it is not one source's failure
            Err(caught) if is_cancel(&caught) => caught.rethrow(),
            Err(caught) => Err(describe(&caught)),
        }
    }
}

/// Whether an error is a query cancel (SQLSTATE 57014).
pub fn is_cancel(caught: &pg_sys::panic::CaughtError) -> bool {
    matches!(
        caught,
        pg_sys::panic::CaughtError::PostgresError(report)
            | pg_sys::panic::CaughtError::ErrorReport(report)
            if report.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED
    )
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
