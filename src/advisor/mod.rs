//! The query and index advisor: one statement explained (`explain`), the workload's index advice
//! (`workload`), the plan-reading rules both use (`plan`), and planning as another role
//! (`sandbox`). The SQL functions are declared in src/api/advisor.rs.
pub mod explain;
pub mod plan;
pub mod sandbox;
pub mod workload;
