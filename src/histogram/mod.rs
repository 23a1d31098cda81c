//! Per-query latency histograms: log-linear buckets (`buckets`), a lock-free table in shared
//! memory (`table`), and the executor hooks that record into it (`hooks`).
pub mod buckets;
pub mod hooks;
pub mod table;
