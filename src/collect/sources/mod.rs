//! The collection sources, grouped by what they read: the sampler's activity, the partitions and
//! retention, the cumulative counters, the latency histograms, and the maintenance (rollups,
//! health, alerts). `collect/mod.rs` runs them in order (SNAPSHOT_SOURCES) and records each run.

pub mod activity;
pub mod counters;
pub mod latency;
pub mod maintenance;
pub mod partitions;
pub mod plans;
