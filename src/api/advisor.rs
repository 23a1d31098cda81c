//! The query and index advisor's SQL functions: explain_analysis() for one statement and
//! index_advice() for the workload. Thin: argument checks, then src/advisor/ (explain.rs,
//! workload.rs; the plan rules in plan.rs).

use super::raise;
use crate::advisor::explain::statement_count;
use crate::spi;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

/// Explains one statement and reports what in its plan is worth acting on.
///
/// The statement is the caller's own: it is planned (and with `analyze => true` run) as the
/// caller, with the caller's `search_path` (the `search_path` argument, by default the caller's
/// setting at the call: the function itself runs with a pinned one), always inside a
/// subtransaction that is rolled back and read-only — planning alone can evaluate functions.
/// With `analyze => true` a statement that changes data is refused unless `allow_writes => true`
/// is passed, and then it too leaves nothing behind.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn explain_analysis(
    query: Option<&str>,
    analyze: default!(bool, false),
    allow_writes: default!(bool, false),
    search_path: default!(Option<&str>, "pg_catalog.current_setting('search_path')"),
) -> JsonB {
    let search_path = search_path.unwrap_or("\"$user\", public");
    let query = query.map(str::trim).unwrap_or_default();
    let query = query.strip_suffix(';').unwrap_or(query).trim();
    if query.is_empty() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "dbanalytics: explain_analysis needs a statement".to_string(),
            "Pass the statement text, e.g. explain_analysis('SELECT * FROM orders WHERE status = ''open''').",
        );
    }
    if statement_count(query) != 1 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "dbanalytics: explain_analysis takes exactly one statement".to_string(),
            "Pass one statement without other statements after a semicolon.",
        );
    }

    crate::advisor::explain::explain_statement(query, analyze, allow_writes, search_path)
}

/// Workload index advice: index candidates from the generic plans of the statements that took
/// the most time in the window, merged per table, minus those an existing index serves, ranked
/// by the statement time they would affect, and validated with HypoPG when it is installed.
// pgrx reads the SQL signature from the inline type, so it cannot be a type alias
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
pub fn index_advice(
    analysis_window: default!(Option<pgrx::datum::Interval>, "'1 day'"),
    max_candidates: default!(Option<i32>, 10),
) -> TableIterator<
    'static,
    (
        name!(table_name, String),
        name!(columns, Vec<String>),
        name!(ddl, String),
        name!(affected_queries, JsonB),
        name!(statement_time_ms, f64),
        name!(estimated_benefit, String),
        name!(cost_before, Option<f64>),
        name!(cost_after, Option<f64>),
        name!(validated, bool),
        name!(table_writes_in_window, i64),
    ),
> {
    let Some(window) = analysis_window else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "dbanalytics: the analysis window must not be NULL".to_string(),
            "Pass an interval such as '1 day'.",
        )
    };
    let limit = spi::select_one_with_args::<i32>(
        "SELECT dbanalytics._row_limit($1)",
        &[max_candidates.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(10) as usize;
    TableIterator::new(crate::advisor::workload::advise(window, limit))
}
