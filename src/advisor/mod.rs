//! The query and index advisor: plan reading rules (`plan`).
pub mod plan;
pub mod sandbox;
