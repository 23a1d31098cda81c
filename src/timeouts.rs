//! PostgreSQL's timeouts (utils/timeout.h, which pgrx does not bind): the statement timeout of
//! the workers' transactions, and a backend's own user timeouts. None of these functions
//! raises an ERROR (only a FATAL when the timer cannot be set or every user timeout is taken),
//! so they are called without pgrx's guard.

use std::ffi::c_int;

extern "C-unwind" {
    fn RegisterTimeout(id: c_int, handler: Option<extern "C-unwind" fn()>) -> c_int;
    fn enable_timeout_after(id: c_int, delay_ms: c_int);
    fn disable_timeout(id: c_int, keep_indicator: bool);
}

/// `STATEMENT_TIMEOUT` of enum TimeoutId: 3 in every version (13 to 18).
const STATEMENT_TIMEOUT: c_int = 3;

/// Asks RegisterTimeout for a free user timeout: any id at or above USER_TIMEOUT does, and
/// USER_TIMEOUT is 8 on PostgreSQL 13, 10 on 14, 12 on 15 and 16, 13 on 17 and 18.
const ANY_USER_TIMEOUT: c_int = 13;

/// A timeout of this backend that calls `handler` (in the SIGALRM handler: it may only set
/// flags) when it fires. Register each once per backend and keep the id.
pub fn register_user_timeout(handler: extern "C-unwind" fn()) -> c_int {
    // SAFETY: registers a handler in the backend's timeout table.
    unsafe { RegisterTimeout(ANY_USER_TIMEOUT, Some(handler)) }
}

/// Fires timeout `id` after `ms` milliseconds (again from now if it was armed).
pub fn arm(id: c_int, ms: c_int) {
    // SAFETY: schedules a timeout registered in this backend.
    unsafe { enable_timeout_after(id, ms) }
}

pub fn disarm(id: c_int) {
    // SAFETY: cancels a timeout of this backend (nothing when it is not armed).
    unsafe { disable_timeout(id, false) }
}

/// What postgres.c does at the start of every client statement and a background worker's SPI
/// never does: arm `statement_timeout` (as set in the session) for the transaction that
/// starts. When it fires, the next interrupt check raises "canceling statement due to
/// statement timeout".
pub fn arm_statement_timeout() {
    // SAFETY: reads the setting's variable.
    let ms = unsafe { pgrx::pg_sys::StatementTimeout };
    if ms > 0 {
        arm(STATEMENT_TIMEOUT, ms);
    }
}

pub fn disarm_statement_timeout() {
    disarm(STATEMENT_TIMEOUT);
}
