//! A plan's shape: its identifier, computed from the plan tree at every captured-or-not
//! top-level execution, and the normalized text stored for it.
//!
//! The identifier hashes what makes two plans of one query differ in how they run, as
//! pg_store_plans' does: each node's type, the relations it scans, the index it uses and the
//! scan direction, the join type and the aggregation strategy, in tree order (so the join order
//! counts), with the subplans, mixed with the query id. Estimates, costs and constants do not
//! enter it: a query that keeps its plan keeps its plan id across executions, parameters and
//! ANALYZE. The normalized text is EXPLAIN's JSON without costs, with the constants of its
//! expressions replaced by `?`.

use pgrx::pg_sys;

/// FNV-1a steps over 64-bit words: cheap, and enough for a key that is compared whole.
struct Hasher(u64);

impl Hasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// The plan id of `stmt` for the query `queryid`: never 0.
///
/// # Safety
/// `stmt` must be a valid PlannedStmt whose tree the executor is running.
pub unsafe fn plan_id(stmt: *const pg_sys::PlannedStmt, queryid: i64) -> i64 {
    let mut hasher = Hasher(0xCBF2_9CE4_8422_2325);
    hasher.mix(queryid as u64);
    let rtable = (*stmt).rtable;
    walk(&mut hasher, rtable, (*stmt).planTree, 0);
    for &subplan in list_pointers((*stmt).subplans) {
        hasher.mix(0x5B);
        walk(&mut hasher, rtable, subplan as *const pg_sys::Plan, 0);
    }
    match hasher.0 as i64 {
        0 => 1,
        id => id,
    }
}

/// Deeper trees than this hash only their top (a bound on recursion; plans are rarely deeper
/// than a few dozen nodes).
const MAX_DEPTH: u32 = 200;

unsafe fn walk(
    hasher: &mut Hasher,
    rtable: *const pg_sys::List,
    plan: *const pg_sys::Plan,
    depth: u32,
) {
    use pg_sys::NodeTag::*;
    if plan.is_null() || depth > MAX_DEPTH {
        hasher.mix(0);
        return;
    }
    let tag = (*plan).type_;
    hasher.mix(tag as u64);
    let tag_number = tag as u32;
    if (T_SeqScan as u32..=T_CustomScan as u32).contains(&tag_number) {
        let scan = plan as *const pg_sys::Scan;
        hasher.mix(u64::from(relation_of(rtable, (*scan).scanrelid)));
    }
    match tag {
        T_IndexScan => {
            let scan = plan as *const pg_sys::IndexScan;
            hasher.mix(u64::from((*scan).indexid.to_u32()));
            hasher.mix((*scan).indexorderdir as u64);
        }
        T_IndexOnlyScan => {
            let scan = plan as *const pg_sys::IndexOnlyScan;
            hasher.mix(u64::from((*scan).indexid.to_u32()));
            hasher.mix((*scan).indexorderdir as u64);
        }
        T_BitmapIndexScan => {
            let scan = plan as *const pg_sys::BitmapIndexScan;
            hasher.mix(u64::from((*scan).indexid.to_u32()));
        }
        T_NestLoop | T_MergeJoin | T_HashJoin => {
            hasher.mix((*(plan as *const pg_sys::Join)).jointype as u64);
        }
        T_Agg => hasher.mix((*(plan as *const pg_sys::Agg)).aggstrategy as u64),
        _ => {}
    }
    let children = match tag {
        T_Append => (*(plan as *const pg_sys::Append)).appendplans,
        T_MergeAppend => (*(plan as *const pg_sys::MergeAppend)).mergeplans,
        T_BitmapAnd => (*(plan as *const pg_sys::BitmapAnd)).bitmapplans,
        T_BitmapOr => (*(plan as *const pg_sys::BitmapOr)).bitmapplans,
        T_CustomScan => (*(plan as *const pg_sys::CustomScan)).custom_plans,
        #[cfg(feature = "pg13")]
        T_ModifyTable => (*(plan as *const pg_sys::ModifyTable)).plans,
        _ => std::ptr::null_mut(),
    };
    for &child in list_pointers(children) {
        walk(hasher, rtable, child as *const pg_sys::Plan, depth + 1);
    }
    if tag == T_SubqueryScan {
        walk(
            hasher,
            rtable,
            (*(plan as *const pg_sys::SubqueryScan)).subplan,
            depth + 1,
        );
    }
    // an absent child is a mark, not a call (most nodes have one or none)
    for child in [(*plan).lefttree, (*plan).righttree] {
        if child.is_null() {
            hasher.mix(0);
        } else {
            walk(hasher, rtable, child, depth + 1);
        }
    }
}

/// The relation OID of range-table entry `index` (1-based; 0 for none or not a relation).
unsafe fn relation_of(rtable: *const pg_sys::List, index: pg_sys::Index) -> u32 {
    let entries = list_pointers(rtable);
    match (index as usize).checked_sub(1).and_then(|i| entries.get(i)) {
        Some(&entry) => (*(entry as *const pg_sys::RangeTblEntry)).relid.to_u32(),
        None => 0,
    }
}

/// The pointers of a List (empty for NIL).
unsafe fn list_pointers<'a>(list: *const pg_sys::List) -> &'a [*mut std::ffi::c_void] {
    if list.is_null() {
        return &[];
    }
    // SAFETY: a pointer List's cells are `ListCell` unions whose pointer member is the whole
    // cell on every platform PostgreSQL supports (a pointer is the widest member).
    std::slice::from_raw_parts(
        (*list).elements as *const *mut std::ffi::c_void,
        (*list).length as usize,
    )
}

/// EXPLAIN's JSON with the constants of its expressions replaced by `?`: inside JSON strings,
/// SQL string literals (`'…'`, quotes doubled inside) and numbers that do not continue an
/// identifier. Keys, node names, relation and index names are left as they are.
pub fn normalize(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut chars = json.chars().peekable();
    let mut in_string = false;
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        if !in_string {
            in_string = c == '"';
            out.push(c);
            previous = c;
            continue;
        }
        match c {
            '\\' => {
                out.push(c);
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
                previous = 'a'; // an escaped character continues a word (\" in an identifier)
                continue;
            }
            '"' => in_string = false,
            '\'' => {
                // a literal: up to its closing quote ('' inside stays in it)
                while let Some(inner) = chars.next() {
                    if inner == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                out.push_str("'?'");
                previous = '\'';
                continue;
            }
            digit
                if digit.is_ascii_digit()
                    && !(previous.is_alphanumeric() || previous == '_' || previous == '$') =>
            {
                while chars
                    .peek()
                    .is_some_and(|next| next.is_ascii_digit() || *next == '.')
                {
                    chars.next();
                }
                out.push('?');
                previous = '0';
                continue;
            }
            _ => {}
        }
        out.push(c);
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn constants_in_expressions_become_question_marks() {
        let plan = r#"[{"Plan": {"Node Type": "Index Scan", "Relation Name": "t2", "Index Cond": "(id = 42)", "Filter": "((name)::text = 'O''Brien'::text AND x > 1.5)", "Workers Planned": 2}}]"#;
        assert_eq!(
            normalize(plan),
            r#"[{"Plan": {"Node Type": "Index Scan", "Relation Name": "t2", "Index Cond": "(id = ?)", "Filter": "((name)::text = '?'::text AND x > ?)", "Workers Planned": 2}}]"#
        );
    }

    #[test]
    fn identifiers_and_parameters_keep_their_digits() {
        let plan = r#"{"Filter": "(c1 = $1) AND (\"t\\\"9\".x_2 = 7)"}"#;
        assert_eq!(
            normalize(plan),
            r#"{"Filter": "(c1 = $1) AND (\"t\\\"9\".x_2 = ?)"}"#
        );
    }
}
