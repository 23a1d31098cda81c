//! explain_analysis(): one statement planned (and, on request, run) as the caller, read-only and
//! rolled back, read by the plan rules (`plan.rs`).

use crate::advisor::plan::{self, Catalog, Finding};
use crate::api::raise;
use crate::collect::isolation::in_rolled_back_subtransaction;
use crate::spi;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::{json, Value};
use std::ffi::CString;

/// Relation sizes and columns from this database's catalog.
pub struct ServerCatalog;

impl Catalog for ServerCatalog {
    fn relation_rows(&self, schema: &str, relation: &str) -> Option<f64> {
        spi::select_one_with_args::<f32>(
            "SELECT c.reltuples FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2",
            &[schema.into(), relation.into()],
        )
        .ok()
        .flatten()
        .map(f64::from)
    }

    fn has_column(&self, schema: &str, relation: &str, column: &str) -> bool {
        spi::select_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                              JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
                              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                             WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2
                               AND a.attname OPERATOR(pg_catalog.=) $3
                               AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)",
            &[schema.into(), relation.into(), column.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false)
    }

    fn quote_identifier(&self, identifier: &str) -> String {
        quote_identifier(identifier)
    }
}

/// An identifier as SQL, quoted by the server's own rule (keywords such as `user` included).
pub fn quote_identifier(identifier: &str) -> String {
    pgrx::spi::quote_identifier(identifier)
}

/// How many SQL statements a string holds (so that "SELECT 1; DROP TABLE t" is refused).
pub fn statement_count(query: &str) -> usize {
    let Ok(query) = CString::new(query) else {
        return 0;
    };
    // SAFETY: raw_parser only reads the string; a syntax error is raised as a PostgreSQL ERROR.
    unsafe {
        // PostgreSQL 14 added the parse mode; 13 parses statements only
        #[cfg(feature = "pg13")]
        let list = pg_sys::raw_parser(query.as_ptr());
        #[cfg(not(feature = "pg13"))]
        let list = pg_sys::raw_parser(query.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        if list.is_null() {
            0
        } else {
            (*list).length as usize
        }
    }
}

/// EXPLAIN (FORMAT JSON, VERBOSE[, ANALYZE, BUFFERS]) of a statement: the first element of the
/// JSON array PostgreSQL returns.
pub fn explain(statement: &str, analyze: bool) -> Value {
    let options = if analyze {
        "FORMAT JSON, VERBOSE, ANALYZE, BUFFERS"
    } else {
        "FORMAT JSON, VERBOSE"
    };
    let plan = Spi::get_one::<pgrx::Json>(&format!("EXPLAIN ({options}) {statement}"))
        .unwrap_or_else(|error| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                error.to_string(),
                "EXPLAIN failed",
            )
        })
        .map(|json| json.0)
        .unwrap_or(Value::Null);
    plan.get(0).cloned().unwrap_or(Value::Null)
}

fn finding_json(finding: &Finding) -> Value {
    json!({
        "kind": finding.kind,
        "node": finding.node,
        "relation": finding.relation.as_ref().map(|(schema, name)| format!("{schema}.{name}")),
        "index_columns": finding.index_columns,
        "evidence": finding.evidence,
        "suggestion": finding.suggestion,
        "expected_improvement": finding.expected_improvement,
    })
}

/// Sets this (sub)transaction's search_path and, unless writes are allowed, makes it read-only.
pub fn plan_settings(search_path: &str, read_only: bool) {
    let settings = if read_only {
        "SELECT pg_catalog.set_config('search_path', $1, true),
                pg_catalog.set_config('transaction_read_only', 'on', true)"
    } else {
        "SELECT pg_catalog.set_config('search_path', $1, true)"
    };
    spi::execute_with_args(settings, &[search_path.into()]).unwrap_or_else(|error| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            error.to_string(),
            "",
        )
    });
}

/// Plans `query` as the caller (read-only, rolled back), and with `analyze` runs it (rolled back,
/// refused when it modifies data unless `allow_writes`); the findings of the plan rules and the
/// plan itself. The caller checked that `query` is one statement.
pub fn explain_statement(
    query: &str,
    analyze: bool,
    allow_writes: bool,
    search_path: &str,
) -> JsonB {
    // the plan first, without running anything
    let estimated = in_rolled_back_subtransaction(|| {
        plan_settings(search_path, true);
        explain(query, false)
    });
    let modifies = plan::modifies_data(&estimated["Plan"]);
    if analyze && modifies && !allow_writes {
        raise(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "dbanalytics: explain_analysis with analyze => true runs the statement, and this one modifies data".to_string(),
            "Pass allow_writes => true to run it inside a subtransaction that is always rolled back, or analyze => false.",
        );
    }
    let result = if analyze {
        in_rolled_back_subtransaction(|| {
            // read-only also stops functions that write from inside a SELECT
            plan_settings(search_path, !allow_writes);
            explain(query, true)
        })
    } else {
        estimated
    };

    let findings: Vec<Value> = plan::findings(&result["Plan"], &ServerCatalog)
        .iter()
        .map(finding_json)
        .collect();
    JsonB(json!({
        "query": query,
        "analyzed": analyze,
        "modifies_data": modifies,
        "rolled_back": analyze,
        "total_cost": result["Plan"]["Total Cost"],
        "planning_time_ms": result.get("Planning Time"),
        "execution_time_ms": result.get("Execution Time"),
        "findings": findings,
        "execution_plan": result,
    }))
}
