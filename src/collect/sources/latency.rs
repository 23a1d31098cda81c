//! The latency source: moves the histograms the executor hooks filled in shared memory into
//! statement_latency and database_latency, and puts them back if the transaction aborts.

use super::super::epoch::Interval;
use super::super::isolation::in_subtransaction;
use super::super::isolation::SourceError;
use super::super::{spi_error, Collected};
use super::counters::{epoch_arguments, read_interval, POSTMASTER_ONLY_EPOCH};
use crate::spi;
use pgrx::prelude::*;
use std::cell::RefCell;

/// Moves the latency histograms recorded since the previous snapshot from shared memory into
/// statement_latency and database_latency. Counts are taken out of shared memory (swapped with
/// zero); if they cannot be stored they are put back, so the next snapshot stores them.
pub(crate) fn persist_latency() -> Result<Collected, SourceError> {
    let Some(histograms) = crate::histogram::table::table() else {
        return Ok(Collected::skipped(
            "latency histograms need dbanalytics in shared_preload_libraries",
        ));
    };
    let (interval, current) = read_interval("latency", POSTMASTER_ONLY_EPOCH, &[])?;
    let drained = histograms.drain();
    // until this transaction commits, the counts are only in its rows: an abort (a later
    // source's error that ends the tick, a cancel, the statement timeout, a FATAL at shutdown,
    // a ROLLBACK after take_snapshot()) puts them back
    let held_from = restore_on_abort(&drained);
    let store = || {
        let rows = if drained.is_empty() {
            0
        } else {
            store_latency(&drained, interval.is_reset())
                .map_err(spi_error)?
                .unwrap_or(0)
        };
        let [server_life, stats_reset, dealloc] = epoch_arguments(&current);
        spi::execute_with_args(
            "SELECT dbanalytics._remember_epoch('latency', $1, $2, $3)",
            &[server_life, stats_reset, dealloc],
        )
        .map_err(spi_error)?;
        Ok(rows)
    };
    let outcome = in_subtransaction(store);
    // unlike counters, histograms need no baseline: the first snapshot stores what was recorded
    let interval = match interval {
        Interval::First => Interval::Continuous,
        other => other,
    };
    match outcome {
        Ok(rows) => Ok(Collected {
            rows,
            interval,
            skipped: None,
        }),
        Err(error) => {
            // not stored: back at once (the transaction itself goes on)
            UNCOMMITTED_LATENCY.with(|pending| pending.borrow_mut().truncate(held_from));
            histograms.restore(&drained, false);
            Err(error)
        }
    }
}

/// Keeps a copy of drained counts until the transaction ends: put back into shared memory if
/// it aborts, forgotten if it commits. Returns where the copy starts among the held ones.
pub(crate) fn restore_on_abort(drained: &[crate::histogram::table::Drained]) -> usize {
    let held_from = UNCOMMITTED_LATENCY.with(|pending| {
        let mut pending = pending.borrow_mut();
        let from = pending.len();
        pending.extend(drained.iter().cloned());
        from
    });
    if !LATENCY_XACT_CALLBACK.with(|registered| registered.replace(true)) {
        // SAFETY: registers a callback of this backend, for the rest of its life.
        unsafe { pg_sys::RegisterXactCallback(Some(latency_at_xact_end), std::ptr::null_mut()) };
    }
    held_from
}

#[pg_guard]
unsafe extern "C-unwind" fn latency_at_xact_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let restore = match event {
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => true,
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => false,
        _ => return,
    };
    let pending = UNCOMMITTED_LATENCY.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    if restore && !pending.is_empty() {
        if let Some(histograms) = crate::histogram::table::table() {
            histograms.restore(&pending, false);
        }
    }
}

/// One statement writing the drained histograms per query and, summed, per database, over the
/// interval since the source's previous snapshot (source_state 'latency'; the first time, since
/// the server started: counts accumulate from then). The entries reach it as typed array
/// arguments, one element per entry (the buckets flattened, each with the number of its entry),
/// never as text: the statement is the same whatever was drained.
pub(crate) fn store_latency(
    drained: &[crate::histogram::table::Drained],
    reset: bool,
) -> Result<Option<i64>, pgrx::spi::Error> {
    let count = drained.len();
    let (mut dbid, mut userid, mut queryid) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut runs, mut run_executions, mut run_max_length, mut run_parent, mut run_application) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut cpu_user, mut cpu_system, mut read_bytes, mut write_bytes) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let (mut bucket_entry, mut bucket, mut executions) = (Vec::new(), Vec::new(), Vec::new());
    for (number, entry) in drained.iter().enumerate() {
        // as int8: an oid argument of 0 (the overflow histogram's user) would become NULL
        dbid.push(i64::from(entry.dbid));
        userid.push(i64::from(entry.userid));
        queryid.push(entry.queryid);
        // the runs of the statement (the N of an N+1): NULL when none ended in the interval
        let entry_runs = entry.runs.as_ref();
        runs.push(entry_runs.map(|r| r.runs as i64));
        run_executions.push(entry_runs.map(|r| r.executions as i64));
        run_max_length.push(entry_runs.map(|r| r.max_length as i64));
        run_parent.push(entry_runs.map(|r| r.parent));
        run_application.push(entry_runs.and_then(|r| r.application.clone()));
        // the resources of the measured executions: NULL when none was measured (a drain
        // between an execution's count and its figures may leave figures with no count: they
        // are kept)
        let usage =
            (entry.usage != crate::histogram::table::Usage::default()).then_some(&entry.usage);
        cpu_user.push(usage.map(|u| u.cpu_user_us as f64 / 1000.0));
        cpu_system.push(usage.map(|u| u.cpu_system_us as f64 / 1000.0));
        read_bytes.push(usage.map(|u| u.read_bytes as i64));
        write_bytes.push(usage.map(|u| u.write_bytes as i64));
        for &(b, n) in &entry.buckets {
            bucket_entry.push(number as i64 + 1);
            bucket.push(b as i16);
            executions.push(n as i64);
        }
    }
    const SQL: &str = "WITH since AS (
             SELECT COALESCE((SELECT s.updated_at FROM dbanalytics.source_state s
                               WHERE s.source OPERATOR(pg_catalog.=) 'latency'),
                             pg_catalog.pg_postmaster_start_time()) AS at),
         drained AS (
             SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int8[]),
                                      pg_catalog.unnest($3::pg_catalog.int8[]), pg_catalog.unnest($4::pg_catalog.int8[]),
                                      pg_catalog.unnest($5::pg_catalog.int8[]), pg_catalog.unnest($6::pg_catalog.int8[]),
                                      pg_catalog.unnest($7::pg_catalog.int8[]), pg_catalog.unnest($8::pg_catalog.text[]),
                                      pg_catalog.unnest($9::pg_catalog.float8[]), pg_catalog.unnest($10::pg_catalog.float8[]),
                                      pg_catalog.unnest($11::pg_catalog.int8[]), pg_catalog.unnest($12::pg_catalog.int8[]))
                    WITH ORDINALITY AS d(dbid, userid, queryid, runs, run_executions, run_max_length,
                                         run_parent_queryid, run_application, cpu_user_time, cpu_system_time,
                                         disk_read_bytes, disk_write_bytes, entry)),
         buckets AS (
             SELECT * FROM ROWS FROM (pg_catalog.unnest($13::pg_catalog.int8[]), pg_catalog.unnest($14::pg_catalog.int2[]),
                                      pg_catalog.unnest($15::pg_catalog.int8[])) AS b(entry, bucket, executions)),
         histograms AS (
             SELECT b.entry, pg_catalog.sum(b.executions)::bigint AS executions,
                    pg_catalog.array_agg(b.bucket ORDER BY b.bucket) AS buckets,
                    pg_catalog.array_agg(b.executions ORDER BY b.bucket) AS counts
               FROM buckets b GROUP BY b.entry),
         per_query AS (
             INSERT INTO dbanalytics.statement_latency
                    (interval_start, interval_end, dbid, userid, queryid, reset, executions, buckets, counts,
                     runs, run_executions, run_max_length, run_parent_queryid, run_application,
                     cpu_user_time, cpu_system_time, disk_read_bytes, disk_write_bytes)
             SELECT (SELECT since.at FROM since), pg_catalog.now(), d.dbid::pg_catalog.oid, d.userid::pg_catalog.oid,
                    d.queryid, $16, COALESCE(h.executions, 0), COALESCE(h.buckets, '{}'), COALESCE(h.counts, '{}'),
                    d.runs, d.run_executions, d.run_max_length, d.run_parent_queryid, d.run_application,
                    d.cpu_user_time, d.cpu_system_time, d.disk_read_bytes, d.disk_write_bytes
               FROM drained d LEFT JOIN histograms h ON h.entry OPERATOR(pg_catalog.=) d.entry
             RETURNING 1),
         per_database AS (
             INSERT INTO dbanalytics.database_latency
             SELECT (SELECT since.at FROM since), pg_catalog.now(), x.dbid::pg_catalog.oid, db.datname, $16,
                    pg_catalog.sum(x.executions)::bigint,
                    pg_catalog.array_agg(x.bucket ORDER BY x.bucket),
                    pg_catalog.array_agg(x.executions ORDER BY x.bucket)
               FROM (SELECT d.dbid, b.bucket, pg_catalog.sum(b.executions)::bigint AS executions
                       FROM buckets b JOIN drained d ON d.entry OPERATOR(pg_catalog.=) b.entry
                      GROUP BY d.dbid, b.bucket) x
               LEFT JOIN pg_catalog.pg_database db ON db.oid OPERATOR(pg_catalog.=) x.dbid::pg_catalog.oid
              GROUP BY x.dbid, db.datname
             RETURNING 1)
         SELECT (SELECT pg_catalog.count(*) FROM per_query) + (SELECT pg_catalog.count(*) FROM per_database)";
    spi::execute_returning_with_args::<i64>(
        SQL,
        &[
            dbid.into(),
            userid.into(),
            queryid.into(),
            runs.into(),
            run_executions.into(),
            run_max_length.into(),
            run_parent.into(),
            run_application.into(),
            cpu_user.into(),
            cpu_system.into(),
            read_bytes.into(),
            write_bytes.into(),
            bucket_entry.into(),
            bucket.into(),
            executions.into(),
            reset.into(),
        ],
    )
}

thread_local! {
    /// Latency counts drained by this transaction and not committed yet (`restore_on_abort`).
    static UNCOMMITTED_LATENCY: RefCell<Vec<crate::histogram::table::Drained>> = const { RefCell::new(Vec::new()) };
    static LATENCY_XACT_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
