//! The query and index advisor's SQL functions: explain_analysis() for one statement and
//! index_advice() for the workload. Plans come from EXPLAIN (FORMAT JSON); the rules that read
//! them live in src/advisor/plan.rs.

use super::raise;
use crate::advisor::plan::{self, Catalog, Finding};
use crate::advisor::sandbox;
use crate::collect::isolation::{in_rolled_back_subtransaction, in_subtransaction};
use crate::spi;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::{json, Value};
use std::ffi::CString;

/// A cost cut of at least this share makes a hypothetical index worth recommending.
const MATERIAL_COST_CUT: f64 = 0.10;
/// Statements (by total time in the window) whose plans index_advice() reads.
const STATEMENTS_TO_PLAN: i64 = 50;

/// Relation sizes and columns from this database's catalog.
struct ServerCatalog;

impl Catalog for ServerCatalog {
    fn relation_rows(&self, schema: &str, relation: &str) -> Option<f64> {
        spi::select_one::<f32>(&format!(
            "SELECT c.reltuples FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = {} AND c.relname = {}",
            spi::literal(Some(schema)),
            spi::literal(Some(relation))
        ))
        .ok()
        .flatten()
        .map(f64::from)
    }

    fn has_column(&self, schema: &str, relation: &str, column: &str) -> bool {
        spi::select_one::<bool>(&format!(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                              JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname = {} AND c.relname = {} AND a.attname = {}
                               AND a.attnum > 0 AND NOT a.attisdropped)",
            spi::literal(Some(schema)),
            spi::literal(Some(relation)),
            spi::literal(Some(column))
        ))
        .ok()
        .flatten()
        .unwrap_or(false)
    }

    fn quote_identifier(&self, identifier: &str) -> String {
        quote_identifier(identifier)
    }
}

/// How many SQL statements a string holds (so that "SELECT 1; DROP TABLE t" is refused).
fn statement_count(query: &str) -> usize {
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
fn explain(statement: &str, analyze: bool) -> Value {
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
fn plan_settings(search_path: &str, read_only: bool) {
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

/// One statement of the workload with its generic plan.
struct PlannedStatement {
    /// the role that ran it: its text is planned as that role
    owner: pg_sys::Oid,
    queryid: i64,
    calls: i64,
    total_time_ms: f64,
    text: String,
}

/// The generic plan of a normalized statement ($n parameters), planned as the role that ran it
/// (src/advisor/sandbox.rs): PREPARE, then EXPLAIN EXECUTE with NULL arguments under
/// plan_cache_mode = force_generic_plan.
fn generic_plan(statement: &PlannedStatement) -> Result<Value, String> {
    // one statement only: the text goes after PREPARE ... AS
    if statement_count_or_zero(&statement.text) != 1 {
        return Err("not planned: not exactly one statement".to_string());
    }
    let text = &statement.text;
    let parameters = (1..=100)
        .rev()
        .find(|n| text.contains(&format!("${n}")))
        .unwrap_or(0);
    let arguments = if parameters == 0 {
        String::new()
    } else {
        format!("({})", vec!["NULL"; parameters].join(", "))
    };
    let name = prepared_statement_name();
    let search_path = sandbox::role_search_path(statement.owner);
    let outcome = sandbox::as_text_owner(
        statement.owner,
        &search_path,
        || spi::execute(&format!("PREPARE {name} AS {text}")).map_err(|e| e.to_string()),
        || {
            spi::execute(
                "SELECT pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)",
            )
            .map_err(|e| e.to_string())?;
            let plan = Spi::get_one::<pgrx::Json>(&format!(
                "EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE {name}{arguments}"
            ))
            .map_err(|e| e.to_string())?;
            Ok(plan.map(|p| p.0).unwrap_or(Value::Null))
        },
    );
    // prepared statements outlive subtransactions: always let go of it (as the caller)
    let _ = in_subtransaction(|| {
        spi::execute(&format!("DEALLOCATE {name}")).map_err(|e| e.to_string())
    });
    outcome.map(|plan| plan.get(0).cloned().unwrap_or(Value::Null))
}

/// A prepared statement name no other statement of this session uses.
fn prepared_statement_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // SAFETY: a plain read of this backend's process id.
    let pid = unsafe { pg_sys::MyProcPid };
    format!(
        "dbanalytics_advice_{pid}_{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// statement_count() for a text that may not parse: 0 instead of an error.
fn statement_count_or_zero(text: &str) -> usize {
    in_subtransaction(|| Ok(statement_count(text))).unwrap_or(0)
}

/// An identifier as SQL, quoted by the server's own rule (keywords such as `user` included).
fn quote_identifier(identifier: &str) -> String {
    pgrx::spi::quote_identifier(identifier)
}

fn plan_cost(plan: &Value) -> f64 {
    plan["Plan"]["Total Cost"].as_f64().unwrap_or(0.0)
}

struct Candidate {
    schema: String,
    table: String,
    columns: Vec<String>,
    statements: Vec<usize>,
}

/// Existing valid indexes of a table, as lists of their key column names.
fn existing_indexes(schema: &str, table: &str) -> Vec<Vec<String>> {
    Spi::connect(|client| {
        let rows = client.select(
            &format!(
                "SELECT pg_catalog.array_to_string(ARRAY(
                            SELECT a.attname FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, position)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                             ORDER BY k.position), ',')
                   FROM pg_catalog.pg_index i
                  WHERE i.indrelid = pg_catalog.to_regclass({}) AND i.indisvalid AND i.indpred IS NULL",
                spi::literal(Some(&format!("{}.{}", quote_identifier(schema), quote_identifier(table))))
            ),
            None,
            &[],
        )?;
        let mut indexes = Vec::new();
        for row in rows {
            if let Some(columns) = row.get::<String>(1)? {
                indexes.push(columns.split(',').map(str::to_string).collect());
            }
        }
        Ok::<_, pgrx::spi::Error>(indexes)
    })
    .unwrap_or_default()
}

/// An existing index serves the candidate when its leading columns are the candidate's columns.
fn covered_by(candidate: &[String], existing: &[Vec<String>]) -> bool {
    existing.iter().any(|index| {
        index.len() >= candidate.len() && {
            let mut leading: Vec<&String> = index[..candidate.len()].iter().collect();
            let mut wanted: Vec<&String> = candidate.iter().collect();
            leading.sort();
            wanted.sort();
            leading == wanted
        }
    })
}

fn hypopg_schema() -> Option<String> {
    spi::select_one::<String>(
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'hypopg'",
    )
    .ok()
    .flatten()
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
    let limit = spi::select_one::<i32>(&format!(
        "SELECT dbanalytics._row_limit({})",
        max_candidates.map_or("NULL".to_string(), |n| n.to_string())
    ))
    .ok()
    .flatten()
    .unwrap_or(10) as usize;
    let window_sql = format!("{}::interval", spi::literal(Some(&window.to_string())));
    let since = format!("dbanalytics._window_start({window_sql})");

    // the statements of this database that took the most time, with their texts. From
    // PostgreSQL 18, pg_stat_statements gives the statement inside an EXPLAIN the query id of
    // that statement, so an entry's text can be the EXPLAIN that ran it first: its statement is
    // what is planned (docs/versions.md).
    let statements: Vec<PlannedStatement> = Spi::connect(|client| {
        let rows = client.select(
            &format!(
                "SELECT t.queryid, t.calls, t.total_exec_time, q.query, t.userid
                   FROM dbanalytics._statement_totals({since}, pg_catalog.now()) t
                   JOIN dbanalytics.statement_texts x USING (dbid, userid, queryid, toplevel)
                  CROSS JOIN LATERAL (SELECT pg_catalog.regexp_replace(x.query,
                        '^\\s*EXPLAIN\\s*(\\([^)]*\\)\\s*)?((ANALYZE|ANALYSE|VERBOSE)\\s+)*', '', 'i') AS query) q
                  WHERE t.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                    AND t.calls > 0 AND q.query ~* '^\\s*(WITH|SELECT|INSERT|UPDATE|DELETE|VALUES|TABLE)\\M'
                    AND q.query NOT LIKE '%dbanalytics%'
                  ORDER BY t.total_exec_time DESC LIMIT {STATEMENTS_TO_PLAN}"
            ),
            None,
            &[],
        )?;
        let mut statements = Vec::new();
        for row in rows {
            statements.push(PlannedStatement {
                queryid: row.get::<i64>(1)?.unwrap_or(0),
                calls: row.get::<i64>(2)?.unwrap_or(0),
                total_time_ms: row.get::<f64>(3)?.unwrap_or(0.0),
                text: row.get::<String>(4)?.unwrap_or_default(),
                owner: row.get::<pg_sys::Oid>(5)?.unwrap_or(pg_sys::Oid::INVALID),
            });
        }
        Ok::<_, pgrx::spi::Error>(statements)
    })
    .unwrap_or_default();

    // candidates from their plans, merged per table: a list that another starts with joins it
    let mut plans: Vec<Option<Value>> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (position, statement) in statements.iter().enumerate() {
        let plan = generic_plan(statement).ok();
        if let Some(plan) = &plan {
            for finding in plan::findings(&plan["Plan"], &ServerCatalog) {
                let (Some((schema, table)), false) =
                    (finding.relation.clone(), finding.index_columns.is_empty())
                else {
                    continue;
                };
                let existing = candidates.iter_mut().find(|c| {
                    c.schema == schema
                        && c.table == table
                        && (c.columns.starts_with(&finding.index_columns)
                            || finding.index_columns.starts_with(&c.columns))
                });
                match existing {
                    Some(candidate) => {
                        if finding.index_columns.len() > candidate.columns.len() {
                            candidate.columns = finding.index_columns.clone();
                        }
                        if !candidate.statements.contains(&position) {
                            candidate.statements.push(position);
                        }
                    }
                    None => candidates.push(Candidate {
                        schema,
                        table,
                        columns: finding.index_columns.clone(),
                        statements: vec![position],
                    }),
                }
            }
        }
        plans.push(plan);
    }
    candidates.retain(|c| !covered_by(&c.columns, &existing_indexes(&c.schema, &c.table)));

    let hypopg = hypopg_schema();
    let mut advice = Vec::new();
    for candidate in candidates {
        let ddl = plan::create_index_ddl(
            &ServerCatalog,
            &candidate.schema,
            &candidate.table,
            &candidate.columns,
        );
        let affected: Vec<&PlannedStatement> = candidate
            .statements
            .iter()
            .map(|&i| &statements[i])
            .collect();
        let statement_time: f64 = affected.iter().map(|s| s.total_time_ms).sum();
        let cost_of = |i: usize| plans[i].as_ref().map(plan_cost);
        let mut cost_before: f64 = candidate
            .statements
            .iter()
            .filter_map(|&i| cost_of(i))
            .sum();
        let (cost_after, validated) = match &hypopg {
            Some(schema) => {
                let costs = in_rolled_back_subtransaction(|| {
                    spi::execute(&format!(
                        "SELECT {}.hypopg_create_index({})",
                        quote_identifier(schema),
                        spi::literal(Some(ddl.replace(" CONCURRENTLY", "").trim_end_matches(';')))
                    ))
                    .ok()?;
                    // the same statements on both sides: one that does not plan again with
                    // the index counts in neither sum
                    let costs = candidate
                        .statements
                        .iter()
                        .filter_map(|&i| {
                            let before = cost_of(i)?;
                            let after = generic_plan(&statements[i]).ok()?;
                            Some((before, plan_cost(&after)))
                        })
                        .fold((0.0, 0.0), |(before, after), (b, a)| {
                            (before + b, after + a)
                        });
                    let _ = spi::execute(&format!(
                        "SELECT {}.hypopg_reset()",
                        quote_identifier(schema)
                    ));
                    Some(costs)
                });
                if let Some((before, _)) = costs {
                    cost_before = before;
                }
                (costs.map(|(_, after)| after), costs.is_some())
            }
            None => (None, false),
        };
        if let Some(after) = cost_after {
            if after > (1.0 - MATERIAL_COST_CUT) * cost_before {
                continue; // HypoPG says the planner would not gain materially from it
            }
        }
        let writes = spi::select_one::<i64>(&format!(
            "SELECT COALESCE(pg_catalog.sum(w.n_tup_ins + w.n_tup_upd + w.n_tup_del), 0)::bigint
               FROM dbanalytics._table_totals({since}, pg_catalog.now()) w
              WHERE w.schemaname = {} AND w.relname = {}",
            spi::literal(Some(&candidate.schema)),
            spi::literal(Some(&candidate.table))
        ))
        .ok()
        .flatten()
        .unwrap_or(0);
        let benefit = match cost_after {
            Some(after) => format!(
                "HypoPG: the planner's cost of the affected statements falls from {cost_before:.0} to {after:.0} \
                 ({:.0} % less) with this index; they took {statement_time:.0} ms in the window",
                100.0 * (cost_before - after) / cost_before.max(1.0)
            ),
            None => format!(
                "unvalidated (install HypoPG to check it with a hypothetical index): the generic plans of the affected \
                 statements scan {}.{} sequentially with a filter on these columns; they took {statement_time:.0} ms in the window",
                candidate.schema, candidate.table
            ),
        };
        let queries: Vec<Value> = affected
            .iter()
            .map(|s| json!({"queryid": s.queryid, "calls": s.calls, "total_time_ms": s.total_time_ms}))
            .collect();
        advice.push((
            format!("{}.{}", candidate.schema, candidate.table),
            candidate.columns.clone(),
            ddl,
            JsonB(Value::Array(queries)),
            statement_time,
            benefit,
            Some(cost_before),
            cost_after,
            validated,
            writes,
        ));
    }
    advice.sort_by(|a, b| b.4.partial_cmp(&a.4).unwrap_or(std::cmp::Ordering::Equal));
    advice.truncate(limit);
    TableIterator::new(advice)
}
