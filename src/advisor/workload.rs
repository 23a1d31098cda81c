//! index_advice(): index candidates from the generic plans of the window's busiest statements,
//! planned as the roles that ran them (`sandbox.rs`), merged per table, validated with HypoPG
//! when it is installed.

use crate::advisor::explain::{quote_identifier, statement_count, ServerCatalog};
use crate::advisor::plan;
use crate::advisor::sandbox;
use crate::collect::isolation::{in_rolled_back_subtransaction, in_subtransaction};
use crate::spi;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

/// A cost cut of at least this share makes a hypothetical index worth recommending.
const MATERIAL_COST_CUT: f64 = 0.10;
/// Statements (by total time in the window) whose plans index_advice() reads.
const STATEMENTS_TO_PLAN: i64 = 50;

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
                "SELECT pg_catalog.array_to_string(ARRAY(
                            SELECT a.attname FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, position)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                             ORDER BY k.position), ',')
                   FROM pg_catalog.pg_index i
                  WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND i.indisvalid AND i.indpred IS NULL",
            None,
            &[format!("{}.{}", quote_identifier(schema), quote_identifier(table)).into()],
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

/// One row of index_advice(): table, columns, DDL, affected statements, their time, the benefit,
/// the costs before and after, whether HypoPG validated it, the table's writes in the window.
pub type Advice = (
    String,
    Vec<String>,
    String,
    JsonB,
    f64,
    String,
    Option<f64>,
    Option<f64>,
    bool,
    i64,
);

/// Index advice for the workload of `window`, at most `limit` candidates (index_advice() checked
/// the arguments).
pub fn advise(window: pgrx::datum::Interval, limit: usize) -> Vec<Advice> {
    // the statements of this database that took the most time, with their texts. From
    // PostgreSQL 18, pg_stat_statements gives the statement inside an EXPLAIN the query id of
    // that statement, so an entry's text can be the EXPLAIN that ran it first: its statement is
    // what is planned (docs/versions.md).
    let statements: Vec<PlannedStatement> = Spi::connect(|client| {
        let rows = client.select(
            &format!(
                // sorted first, then read in that order until enough pass the filters: the
                // regular expressions run on a few statements, not on every statement of the
                // window (3,000 on a week of generated history)
                "SELECT t.queryid, t.calls, t.total_exec_time, q.query, t.userid
                   FROM (SELECT t.queryid, t.calls, t.total_exec_time, x.query, t.userid
                           FROM dbanalytics._statement_totals(dbanalytics._window_start($1), pg_catalog.now()) t
                           JOIN dbanalytics.statement_texts x USING (dbid, userid, queryid, toplevel)
                          WHERE t.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                            AND t.calls > 0
                          ORDER BY t.total_exec_time DESC OFFSET 0) t
                  CROSS JOIN LATERAL (SELECT pg_catalog.regexp_replace(t.query,
                        '^\\s*EXPLAIN\\s*(\\([^)]*\\)\\s*)?((ANALYZE|ANALYSE|VERBOSE)\\s+)*', '', 'i') AS query) q
                  WHERE q.query ~* '^\\s*(WITH|SELECT|INSERT|UPDATE|DELETE|VALUES|TABLE)\\M'
                    AND q.query NOT LIKE '%dbanalytics%'
                  ORDER BY t.total_exec_time DESC LIMIT {STATEMENTS_TO_PLAN}"
            ),
            None,
            &[window.into()],
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
                    spi::execute_with_args(
                        &format!(
                            "SELECT {}.hypopg_create_index($1)",
                            quote_identifier(schema)
                        ),
                        &[ddl
                            .replace(" CONCURRENTLY", "")
                            .trim_end_matches(';')
                            .into()],
                    )
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
        let writes = spi::select_one_with_args::<i64>(
            "SELECT COALESCE(pg_catalog.sum(w.n_tup_ins + w.n_tup_upd + w.n_tup_del), 0)::bigint
               FROM dbanalytics._table_totals(dbanalytics._window_start($1), pg_catalog.now()) w
              WHERE w.schemaname OPERATOR(pg_catalog.=) $2 AND w.relname OPERATOR(pg_catalog.=) $3",
            &[
                window.into(),
                candidate.schema.as_str().into(),
                candidate.table.as_str().into(),
            ],
        )
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
    advice
}
