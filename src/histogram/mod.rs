//! Per-query latency histograms: log-linear buckets (`buckets`), a lock-free table in shared
//! memory (`table`), and the executor hooks that record into it (`hooks`). The same hooks and
//! slots count runs of one statement, the N of an N+1 (`runs`). The counts not yet collected
//! survive a clean restart (`persist`).
pub mod buckets;
pub mod hooks;
pub mod persist;
pub mod runs;
pub mod table;
