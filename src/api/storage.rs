//! The retention tiers as SQL sees them (`storage_usage`): the one definition is
//! `storage::partitions::PARTITIONED_TABLES`.

use crate::storage::partitions::PARTITIONED_TABLES;
use pgrx::prelude::*;

/// Every partitioned table of the extension with its tier and that tier's retention (seconds,
/// as set now), in the order the tiers go from raw samples to daily rollups.
// pgrx reads the SQL signature from the inline type, so it cannot be a type alias
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _storage_tiers() -> TableIterator<
    'static,
    (
        name!(table_name, String),
        name!(tier, String),
        name!(retention_seconds, i64),
    ),
> {
    TableIterator::new(PARTITIONED_TABLES.iter().map(|t| {
        (
            t.name.to_string(),
            t.tier.name().to_string(),
            t.tier.retention().as_secs() as i64,
        )
    }))
}
