//! Time-partitioned storage: one partition manager used by every history table.
pub mod partitions;
