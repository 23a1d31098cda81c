//! Reading an `EXPLAIN (FORMAT JSON)` plan: the rules that turn plan nodes into findings.
//! Pure functions over serde_json values, unit-tested on plans built by hand; the SQL-facing
//! code (explain.rs, workload.rs) runs EXPLAIN and looks up table sizes and columns.

use serde_json::{json, Value};

/// A relation is "large" for the sequential-scan rule from this many rows.
pub const LARGE_RELATION_ROWS: f64 = 10_000.0;
/// A sort is expensive from this much cost of its own (its total minus its input's).
pub const EXPENSIVE_SORT_COST: f64 = 1_000.0;
/// A nested loop is large when outer rows times inner rows per loop reach this.
pub const LARGE_NESTED_LOOP: f64 = 100_000.0;
/// A row estimate is off when actual and estimated rows differ by this factor (and one of
/// them is at least MISESTIMATE_MIN_ROWS).
pub const MISESTIMATE_FACTOR: f64 = 10.0;
pub const MISESTIMATE_MIN_ROWS: f64 = 100.0;
/// An index scan filters away most of what it reads when it removes this many times what it returns.
pub const INDEX_FILTER_WASTE: f64 = 10.0;

/// One thing worth acting on, at one plan node.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: &'static str,
    pub node: String,
    pub relation: Option<(String, String)>,
    /// Columns an index could serve, in the order the index should have them.
    pub index_columns: Vec<String>,
    pub evidence: Value,
    pub suggestion: String,
    pub expected_improvement: String,
}

/// Facts about relations the rules need, looked up by the caller (rows from pg_class).
pub trait Catalog {
    fn relation_rows(&self, schema: &str, relation: &str) -> Option<f64>;
    fn has_column(&self, schema: &str, relation: &str, column: &str) -> bool;
    /// An identifier as SQL. The server quotes keywords too (`"user"`, `"order"`); this
    /// default, for tests without a server, quotes whatever is not plain lower case.
    fn quote_identifier(&self, identifier: &str) -> String {
        quote(identifier)
    }
}

/// The one builder of the advisor's `CREATE INDEX` DDL.
pub fn create_index_ddl(
    catalog: &dyn Catalog,
    schema: &str,
    table: &str,
    columns: &[String],
) -> String {
    format!(
        "CREATE INDEX CONCURRENTLY ON {}.{} ({});",
        catalog.quote_identifier(schema),
        catalog.quote_identifier(table),
        columns
            .iter()
            .map(|c| catalog.quote_identifier(c))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn number(node: &Value, key: &str) -> Option<f64> {
    node.get(key).and_then(Value::as_f64)
}

fn text<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Value::as_str)
}

fn node_label(node: &Value) -> String {
    let kind = text(node, "Node Type").unwrap_or("?");
    match (text(node, "Relation Name"), text(node, "Alias")) {
        (Some(relation), Some(alias)) if alias != relation => {
            format!("{kind} on {relation} {alias}")
        }
        (Some(relation), _) => format!("{kind} on {relation}"),
        _ => kind.to_string(),
    }
}

/// Rows a node produced per loop: actual when analyzed, else the estimate.
fn rows(node: &Value) -> f64 {
    number(node, "Actual Rows")
        .or_else(|| number(node, "Plan Rows"))
        .unwrap_or(0.0)
}

fn loops(node: &Value) -> f64 {
    number(node, "Actual Loops").unwrap_or(1.0).max(1.0)
}

fn children(node: &Value) -> &[Value] {
    node.get("Plans")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A possibly qualified name at the start of `text` (`a.b`, `"My ""T"""."user"`), as EXPLAIN
/// prints column references: its parts unquoted, and how many bytes it takes. None when `text`
/// does not start with a name.
fn qualified_name(text: &str) -> Option<(Vec<String>, usize)> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            // a quoted identifier: "" stands for one "
            let mut name = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut closed_at = None;
            while let Some((at, c)) = chars.next() {
                if c == '"' {
                    if chars.peek().map(|&(_, next)| next) == Some('"') {
                        name.push('"');
                        chars.next();
                    } else {
                        closed_at = Some(at);
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
            let closed_at = closed_at?;
            parts.push(name);
            rest = &quoted[closed_at + 1..];
        } else {
            let length = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len());
            let name = &rest[..length];
            if !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                return None;
            }
            parts.push(name.to_string());
            rest = &rest[length..];
        }
        match rest.strip_prefix('.') {
            Some(after_dot) => rest = after_dot,
            None => return Some((parts, text.len() - rest.len())),
        }
    }
}

/// Column names compared in a filter or condition, in order of appearance, equality first:
/// `((status = 'x'::text) AND (created_at > now()))` gives `[status, created_at]`. Column
/// references may be qualified and quoted (`("T".""user"" = $1)`): the column is the last part.
pub fn filter_columns(condition: &str) -> Vec<String> {
    let mut equality = Vec::new();
    let mut other = Vec::new();
    for (open, _) in condition.match_indices('(') {
        // an operand right after '(' followed by a comparison operator
        let after = &condition[open + 1..];
        let Some((parts, length)) = qualified_name(after) else {
            continue;
        };
        let rest = after[length..].trim_start();
        let operator = rest.split_whitespace().next().unwrap_or("");
        let is_comparison = matches!(
            operator,
            "=" | "<" | ">" | "<=" | ">=" | "<>" | "~~" | "~~*" | "IS"
        ) || rest.starts_with("= ANY");
        // a function call such as lower(name) is not a column
        if !is_comparison || rest.starts_with('(') {
            continue;
        }
        let Some(column) = parts.last().cloned() else {
            continue;
        };
        let list = if operator == "=" {
            &mut equality
        } else {
            &mut other
        };
        if !list.contains(&column) {
            list.push(column);
        }
    }
    other.retain(|column| !equality.contains(column));
    equality.extend(other);
    equality
}

/// Walks the whole plan (the value of the top-level "Plan" key) and returns every finding.
pub fn findings(plan: &Value, catalog: &dyn Catalog) -> Vec<Finding> {
    let mut found = Vec::new();
    walk(plan, catalog, &mut found);
    found
}

/// A plan node as the rules read it.
struct Node<'a> {
    value: &'a Value,
    kind: &'a str,
    analyzed: bool,
    relation: Option<(String, String)>,
}

/// One rule: reads one plan node and adds what it finds.
type Rule = fn(&Node, &dyn Catalog, &mut Vec<Finding>);

/// Every rule, in the order their findings are listed for a node.
const RULES: &[Rule] = &[
    seq_scan_with_filter,
    sort_spilled_or_expensive,
    large_nested_loop,
    row_misestimate,
    hash_spilled_to_disk,
    lossy_bitmap,
    index_scan_filters_most_rows,
];

fn walk(node: &Value, catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let read = Node {
        value: node,
        kind: text(node, "Node Type").unwrap_or(""),
        analyzed: node.get("Actual Rows").is_some(),
        relation: match (text(node, "Schema"), text(node, "Relation Name")) {
            (Some(schema), Some(name)) => Some((schema.to_string(), name.to_string())),
            _ => None,
        },
    };
    for rule in RULES {
        rule(&read, catalog, found);
    }
    for child in children(node) {
        walk(child, catalog, found);
    }
}

/// A sequential scan of a large table that a filter narrows: an index on the filtered columns.
fn seq_scan_with_filter(read: &Node, catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let kind = read.kind;
    let relation = &read.relation;
    if kind == "Seq Scan" {
        if let (Some((schema, name)), Some(filter)) = (&relation, text(node, "Filter")) {
            let table_rows = catalog.relation_rows(schema, name).unwrap_or(0.0);
            if table_rows >= LARGE_RELATION_ROWS {
                let columns: Vec<String> = filter_columns(filter)
                    .into_iter()
                    .filter(|column| catalog.has_column(schema, name, column))
                    .collect();
                if !columns.is_empty() {
                    let returned = rows(node) * loops(node);
                    found.push(Finding {
                        kind: "seq_scan_with_filter",
                        node: node_label(node),
                        relation: relation.clone(),
                        suggestion: create_index_ddl(catalog, schema, name, &columns),
                        index_columns: columns,
                        evidence: json!({
                            "filter": filter,
                            "table_rows": table_rows,
                            "rows_returned": returned,
                            "rows_removed_by_filter": number(node, "Rows Removed by Filter"),
                            "total_cost": number(node, "Total Cost"),
                        }),
                        expected_improvement: format!(
                            "the scan reads all ~{table_rows:.0} rows of {name} to return ~{returned:.0}; an index on the \
                             filtered columns reads about the rows it returns (basis: table rows from pg_class, rows from the plan)"
                        ),
                    });
                }
            }
        }
    }
}

/// A sort that spilled to disk, or costs much on its own: work_mem, or an index that gives the order.
fn sort_spilled_or_expensive(read: &Node, _catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let kind = read.kind;
    if kind == "Sort" {
        let own_cost = number(node, "Total Cost").unwrap_or(0.0)
            - children(node)
                .first()
                .and_then(|c| number(c, "Total Cost"))
                .unwrap_or(0.0);
        let spilled = text(node, "Sort Space Type") == Some("Disk")
            || text(node, "Sort Method").is_some_and(|m| m.contains("external"));
        if spilled || own_cost >= EXPENSIVE_SORT_COST {
            let keys: Vec<String> = node
                .get("Sort Key")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let space = number(node, "Sort Space Used");
            let (suggestion, improvement) = if spilled {
                let kb = space.unwrap_or(0.0);
                (
                    format!(
                        "SET work_mem = '{}MB';  -- for this statement or role: the sort needs about {kb:.0} kB; \
                         or an index on ({}) to read the rows already in order",
                        ((kb * 2.0 / 1024.0).ceil() as i64).max(4),
                        keys.join(", ")
                    ),
                    format!("the sort wrote {kb:.0} kB to disk; in memory it avoids that I/O (basis: Sort Space Used)"),
                )
            } else {
                (
                    format!("an index on ({}) returns the rows in order and removes the sort", keys.join(", ")),
                    format!("removes a sort costing {own_cost:.0} planner units of the plan's total (basis: plan costs)"),
                )
            };
            found.push(Finding {
                kind: if spilled {
                    "sort_spilled_to_disk"
                } else {
                    "expensive_sort"
                },
                node: node_label(node),
                relation: None,
                index_columns: Vec::new(),
                evidence: json!({
                    "sort_key": keys,
                    "sort_method": text(node, "Sort Method"),
                    "sort_space_used_kb": space,
                    "sort_space_type": text(node, "Sort Space Type"),
                    "own_cost": own_cost,
                    "rows": rows(node),
                }),
                suggestion,
                expected_improvement: improvement,
            });
        }
    }
}

/// A nested loop that runs its inner side many times over many rows.
fn large_nested_loop(read: &Node, catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let kind = read.kind;
    if kind == "Nested Loop" {
        if let [outer, inner] = children(node) {
            let outer_rows = rows(outer) * loops(outer);
            let inner_rows = rows(inner);
            if outer_rows * inner_rows >= LARGE_NESTED_LOOP
                && !text(inner, "Node Type").unwrap_or("").contains("Index")
            {
                let inner_relation = match (text(inner, "Schema"), text(inner, "Relation Name")) {
                    (Some(schema), Some(name)) => Some((schema.to_string(), name.to_string())),
                    _ => None,
                };
                let condition = text(node, "Join Filter")
                    .or_else(|| text(inner, "Filter"))
                    .unwrap_or("");
                let columns: Vec<String> = match &inner_relation {
                    Some((schema, name)) => filter_columns(condition)
                        .into_iter()
                        .filter(|column| catalog.has_column(schema, name, column))
                        .collect(),
                    None => Vec::new(),
                };
                let suggestion = match (&inner_relation, columns.is_empty()) {
                    (Some((schema, name)), false) => format!(
                        "{}  -- the inner side's join key, so each outer row probes an index",
                        create_index_ddl(catalog, schema, name, &columns)
                    ),
                    _ => "index the inner side's join key, or let the planner hash-join (check enable_hashjoin and the row estimates)".to_string(),
                };
                found.push(Finding {
                    kind: "large_nested_loop",
                    node: node_label(node),
                    relation: inner_relation,
                    index_columns: columns,
                    evidence: json!({
                        "outer_rows": outer_rows,
                        "inner_rows_per_loop": inner_rows,
                        "join_condition": condition,
                        "inner_node": node_label(inner),
                    }),
                    suggestion,
                    expected_improvement: format!(
                        "the inner side is read {outer_rows:.0} times ({:.0} row visits); an index probe per outer row \
                         reads only matching rows (basis: plan row counts)",
                        outer_rows * inner_rows
                    ),
                });
            }
        }
    }
}

/// Actual rows far from the estimate (analyzed plans only): statistics to refresh or extend.
fn row_misestimate(read: &Node, _catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let analyzed = read.analyzed;
    let relation = &read.relation;
    if analyzed && number(node, "Actual Loops").unwrap_or(0.0) > 0.0 {
        let estimated = number(node, "Plan Rows").unwrap_or(0.0);
        let actual = rows(node);
        let (low, high) = if estimated < actual {
            (estimated, actual)
        } else {
            (actual, estimated)
        };
        if high >= MISESTIMATE_MIN_ROWS && high >= MISESTIMATE_FACTOR * low.max(1.0) {
            let columns = text(node, "Filter")
                .or_else(|| text(node, "Index Cond"))
                .map(filter_columns)
                .unwrap_or_default();
            let suggestion = match (&relation, columns.len()) {
                (Some((schema, name)), n) if n >= 2 => {
                    format!(
                    "ANALYZE {0}.{1}; and if the estimate stays off, the columns are correlated: \
                     CREATE STATISTICS {0}.{3} ON {2} FROM {0}.{1}; ANALYZE {0}.{1};",
                    quote(schema),
                    quote(name),
                    columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                    quote(&format!("{name}_{}_stats", columns.join("_")))
                )
                }
                (Some((schema, name)), _) => format!("ANALYZE {}.{};", quote(schema), quote(name)),
                _ => "ANALYZE the tables below this node".to_string(),
            };
            found.push(Finding {
                kind: "row_misestimate",
                node: node_label(node),
                relation: relation.clone(),
                index_columns: Vec::new(),
                evidence: json!({ "estimated_rows": estimated, "actual_rows": actual, "loops": loops(node) }),
                suggestion,
                expected_improvement: format!(
                    "the planner expected {estimated:.0} rows and got {actual:.0}: plans chosen on a {:.0}x error are often the wrong \
                     join order or method (basis: Plan Rows vs Actual Rows)",
                    high / low.max(1.0)
                ),
            });
        }
    }
}

/// A hash or hash aggregate that needed batches or disk.
fn hash_spilled_to_disk(read: &Node, _catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let kind = read.kind;
    let batches = number(node, "Hash Batches")
        .or_else(|| number(node, "HashAgg Batches"))
        .unwrap_or(1.0);
    let disk_kb = number(node, "Disk Usage").unwrap_or(0.0);
    if (kind == "Hash" || kind == "Aggregate") && (batches > 1.0 || disk_kb > 0.0) {
        found.push(Finding {
            kind: "hash_spilled_to_disk",
            node: node_label(node),
            relation: None,
            index_columns: Vec::new(),
            evidence: json!({
                "batches": batches,
                "original_batches": number(node, "Original Hash Batches"),
                "peak_memory_kb": number(node, "Peak Memory Usage"),
                "disk_usage_kb": disk_kb,
            }),
            suggestion: "raise work_mem (or hash_mem_multiplier) for this statement so the hash table fits in memory".to_string(),
            expected_improvement: format!(
                "the hash was split into {batches:.0} batches written to disk; in one batch it avoids that I/O (basis: Hash Batches / Disk Usage)"
            ),
        });
    }
}

/// A bitmap heap scan that went lossy: work_mem too small for its bitmap.
fn lossy_bitmap(read: &Node, _catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let kind = read.kind;
    let relation = &read.relation;
    let lossy = number(node, "Lossy Heap Blocks").unwrap_or(0.0);
    if kind == "Bitmap Heap Scan" && lossy > 0.0 {
        found.push(Finding {
            kind: "lossy_bitmap",
            node: node_label(node),
            relation: relation.clone(),
            index_columns: Vec::new(),
            evidence: json!({ "lossy_heap_blocks": lossy, "exact_heap_blocks": number(node, "Exact Heap Blocks") }),
            suggestion: "raise work_mem so the bitmap stays exact (lossy pages make every row on them be rechecked)".to_string(),
            expected_improvement: format!("{lossy:.0} heap pages were rechecked row by row (basis: Lossy Heap Blocks)"),
        });
    }
}

/// An index scan that reads many rows its filter then throws away (analyzed plans only).
fn index_scan_filters_most_rows(read: &Node, catalog: &dyn Catalog, found: &mut Vec<Finding>) {
    let node = read.value;
    let kind = read.kind;
    let analyzed = read.analyzed;
    let relation = &read.relation;
    if kind.starts_with("Index") && analyzed {
        let removed = number(node, "Rows Removed by Filter").unwrap_or(0.0);
        let returned = rows(node) * loops(node);
        if removed >= INDEX_FILTER_WASTE * returned.max(1.0) && removed >= MISESTIMATE_MIN_ROWS {
            let mut columns = text(node, "Index Cond")
                .map(filter_columns)
                .unwrap_or_default();
            for column in text(node, "Filter").map(filter_columns).unwrap_or_default() {
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
            if let Some((schema, name)) = &relation {
                columns.retain(|column| catalog.has_column(schema, name, column));
            }
            found.push(Finding {
                kind: "index_scan_filters_most_rows",
                node: node_label(node),
                relation: relation.clone(),
                suggestion: match &relation {
                    Some((schema, name)) if !columns.is_empty() => format!(
                        "CREATE INDEX CONCURRENTLY ON {}.{} ({});  -- the filter's columns in the index",
                        quote(schema),
                        quote(name),
                        columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
                    ),
                    _ => "add the filtered columns to the index".to_string(),
                },
                index_columns: columns,
                evidence: json!({
                    "index": text(node, "Index Name"),
                    "rows_returned": returned,
                    "rows_removed_by_filter": removed,
                    "filter": text(node, "Filter"),
                }),
                expected_improvement: format!(
                    "the index scan fetched {:.0} rows to keep {returned:.0} (basis: Rows Removed by Filter)",
                    removed + returned
                ),
            });
        }
    }
}

/// Whether a plan contains a data-modifying node (INSERT, UPDATE, DELETE, MERGE), CTEs included.
pub fn modifies_data(node: &Value) -> bool {
    text(node, "Node Type") == Some("ModifyTable") || children(node).iter().any(modifies_data)
}

/// An identifier as SQL: quoted only when needed.
pub fn quote(identifier: &str) -> String {
    let plain = identifier
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && identifier
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        identifier.to_string()
    } else {
        format!("\"{}\"", identifier.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tables;
    impl Catalog for Tables {
        fn relation_rows(&self, _schema: &str, relation: &str) -> Option<f64> {
            match relation {
                "orders" => Some(1_000_000.0),
                "tiny" => Some(50.0),
                _ => None,
            }
        }
        fn has_column(&self, _schema: &str, _relation: &str, column: &str) -> bool {
            ["status", "customer_id", "created_at", "id", "region"].contains(&column)
        }
    }

    #[test]
    fn filter_columns_put_equality_first() {
        assert_eq!(
            filter_columns("((created_at > now()) AND (status = 'open'::text))"),
            vec!["status", "created_at"]
        );
        assert_eq!(filter_columns("(o.customer_id = 42)"), vec!["customer_id"]);
        assert_eq!(filter_columns("(\"Region\" = 'x'::text)"), vec!["Region"]);
        assert_eq!(
            filter_columns("(lower(name) = 'x'::text)"),
            Vec::<String>::new()
        );
        // qualified, quoted, with "" inside, keywords and non-ASCII
        assert_eq!(
            filter_columns(
                "((\"order \"\"T\"\"\nlé\".\"user\" = $1) AND (\"order \"\"T\"\"\nlé\".\"Größe\" > 3))"
            ),
            vec!["user", "Größe"]
        );
        assert_eq!(filter_columns("(s.\"we\"\"ird\" = 1)"), vec!["we\"ird"]);
    }

    #[test]
    fn seq_scan_on_a_large_table_gets_an_index_candidate() {
        let plan = json!({"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public", "Alias": "orders",
                          "Plan Rows": 10, "Total Cost": 20000.0,
                          "Filter": "((status = 'open'::text) AND (customer_id = 42))"});
        let found = findings(&plan, &Tables);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "seq_scan_with_filter");
        assert_eq!(
            found[0].suggestion,
            "CREATE INDEX CONCURRENTLY ON public.orders (status, customer_id);"
        );
        // a small table is left alone
        let small = json!({"Node Type": "Seq Scan", "Relation Name": "tiny", "Schema": "public", "Filter": "(id = 1)"});
        assert!(findings(&small, &Tables).is_empty());
    }

    #[test]
    fn sorts_that_spill_suggest_work_mem() {
        let plan = json!({"Node Type": "Sort", "Sort Key": ["created_at"], "Sort Method": "external merge",
                          "Sort Space Used": 10240, "Sort Space Type": "Disk", "Total Cost": 10.0, "Actual Rows": 5.0,
                          "Plan Rows": 5.0, "Plans": [{"Node Type": "Seq Scan", "Relation Name": "tiny", "Schema": "public",
                          "Total Cost": 5.0, "Actual Rows": 5.0, "Plan Rows": 5.0}]});
        let found = findings(&plan, &Tables);
        assert_eq!(found[0].kind, "sort_spilled_to_disk");
        assert!(
            found[0].suggestion.starts_with("SET work_mem = '20MB'"),
            "{}",
            found[0].suggestion
        );
    }

    #[test]
    fn misestimates_suggest_analyze_or_extended_statistics() {
        let plan = json!({"Node Type": "Seq Scan", "Relation Name": "tiny", "Schema": "public",
                          "Plan Rows": 5.0, "Actual Rows": 5000.0, "Actual Loops": 1.0,
                          "Filter": "((status = 'x'::text) AND (region = 'y'::text))"});
        let found = findings(&plan, &Tables);
        assert_eq!(found[0].kind, "row_misestimate");
        assert!(found[0].suggestion.contains(
            "CREATE STATISTICS public.tiny_status_region_stats ON status, region FROM public.tiny"
        ));
    }

    #[test]
    fn large_nested_loops_name_the_inner_join_key() {
        let plan = json!({"Node Type": "Nested Loop", "Plan Rows": 1000.0, "Join Filter": "(o.customer_id = c.id)",
        "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "tiny", "Schema": "public", "Alias": "c", "Plan Rows": 1000.0},
            {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public", "Alias": "o", "Plan Rows": 5000.0}
        ]});
        let found: Vec<_> = findings(&plan, &Tables)
            .into_iter()
            .filter(|f| f.kind == "large_nested_loop")
            .collect();
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .suggestion
                .starts_with("CREATE INDEX CONCURRENTLY ON public.orders (customer_id"),
            "{}",
            found[0].suggestion
        );
    }

    #[test]
    fn spills_lossy_bitmaps_and_wasteful_index_scans_are_found() {
        let hash = json!({"Node Type": "Hash", "Hash Batches": 8.0, "Original Hash Batches": 1.0, "Plan Rows": 1.0});
        assert_eq!(findings(&hash, &Tables)[0].kind, "hash_spilled_to_disk");
        let bitmap = json!({"Node Type": "Bitmap Heap Scan", "Relation Name": "tiny", "Schema": "public",
                            "Lossy Heap Blocks": 40.0, "Plan Rows": 1.0});
        assert_eq!(findings(&bitmap, &Tables)[0].kind, "lossy_bitmap");
        let index = json!({"Node Type": "Index Scan", "Relation Name": "orders", "Schema": "public", "Index Name": "orders_status",
                           "Index Cond": "(status = 'open'::text)", "Filter": "(region = 'eu'::text)",
                           "Plan Rows": 10.0, "Actual Rows": 10.0, "Actual Loops": 1.0, "Rows Removed by Filter": 5000.0});
        let found = findings(&index, &Tables);
        assert_eq!(found[0].kind, "index_scan_filters_most_rows");
        assert_eq!(found[0].index_columns, vec!["status", "region"]);
    }

    #[test]
    fn data_modification_is_detected_anywhere() {
        let select = json!({"Node Type": "Seq Scan", "Plans": [{"Node Type": "Result"}]});
        let cte_delete = json!({"Node Type": "Result", "Plans": [{"Node Type": "ModifyTable", "Operation": "Delete"}]});
        assert!(!modifies_data(&select));
        assert!(modifies_data(&cte_delete));
    }
}
