//! Time-partitioned storage: one partition manager used by every history table, and the codec
//! of packed minutes.
pub mod packing;
pub mod partitions;
