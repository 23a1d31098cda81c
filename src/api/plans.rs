//! plan_capture_status(): what the executor hooks' plan capture did since the server started.

use crate::plans::queue;
use pgrx::prelude::*;

/// The plan queue's counters: captures handed to the collector, captures dropped because the
/// interval's budget (`dbanalytics.plan_capture_max_per_interval`) was spent or every queue slot
/// was taken, plans cut at the slot's size, captures waiting for the collector, plan shapes
/// explained (of the set's capacity) and how many times the collector emptied the full set.
/// NULLs when dbanalytics is not preloaded.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub fn plan_capture_status() -> TableIterator<
    'static,
    (
        name!(enabled, bool),
        name!(captured, Option<i64>),
        name!(dropped_over_limit, Option<i64>),
        name!(dropped_queue_full, Option<i64>),
        name!(truncated, Option<i64>),
        name!(waiting, Option<i64>),
        name!(shapes_explained, Option<i64>),
        name!(shape_capacity, Option<i64>),
        name!(shape_set_emptied, Option<i64>),
        name!(shared_memory_bytes, Option<i64>),
    ),
> {
    let row = match queue::queue() {
        Some(plans) => {
            let status = plans.status();
            (
                crate::gucs::histograms() && crate::gucs::plan_capture_max_per_interval() > 0,
                Some(status.captured),
                Some(status.dropped_limit),
                Some(status.dropped_full),
                Some(status.truncated),
                Some(status.waiting),
                Some(status.shapes),
                Some(queue::SHAPES as i64),
                Some(status.shape_epochs),
                Some(queue::shmem_size() as i64),
            )
        }
        None => (false, None, None, None, None, None, None, None, None, None),
    };
    TableIterator::once(row)
}
