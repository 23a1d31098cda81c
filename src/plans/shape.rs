//! A plan's shape: its identifier, computed from the plan tree at every top-level execution
//! plan capture looks at (captured or not; src/plans: `Sampling`), and the normalized text
//! stored for it.
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
    let mut hasher = Hasher(OFFSET_BASIS);
    hasher.mix(queryid as u64);
    let tree = Tree {
        rtable: (*stmt).rtable,
        append_relations: (*stmt).appendRelations,
    };
    walk(&mut hasher, &tree, (*stmt).planTree, 0, false);
    for &subplan in list_pointers((*stmt).subplans) {
        hasher.mix(0x5B);
        walk(&mut hasher, &tree, subplan as *const pg_sys::Plan, 0, false);
    }
    match hasher.0 as i64 {
        0 => 1,
        id => id,
    }
}

const OFFSET_BASIS: u64 = 0xCBF2_9CE4_8422_2325;

/// What the walk reads beside the nodes: the range table, and which entries are partitions (or
/// inheritance children) of which.
struct Tree {
    rtable: *const pg_sys::List,
    append_relations: *const pg_sys::List,
}

/// Partitions looked up in `appendRelations` at most per scan (beyond, a scan outside any
/// Append is hashed by its own relation).
const MAX_APPEND_RELATIONS: usize = 256;

/// Deeper trees than this hash only their top (a bound on recursion; plans are rarely deeper
/// than a few dozen nodes).
const MAX_DEPTH: u32 = 200;

/// Hashes a plan node and its subtree. Under the Append of a partitioned (or inherited) table,
/// `in_partitions`: the partitions and their indexes are not hashed (they are one table to the
/// query), and the Append hashes its table and the set of its children's shapes, so that which
/// partitions and how many survive pruning (per parameter value, or as partitions are added)
/// does not change the plan id. A scan of the one partition that survived pruning (PostgreSQL
/// then leaves the Append out) is hashed as that Append with one child.
unsafe fn walk(
    hasher: &mut Hasher,
    tree: &Tree,
    plan: *const pg_sys::Plan,
    depth: u32,
    in_partitions: bool,
) {
    use pg_sys::NodeTag::*;
    if plan.is_null() || depth > MAX_DEPTH {
        hasher.mix(0);
        return;
    }
    let tag = (*plan).type_;
    let scan = (T_SeqScan as u32..=T_CustomScan as u32).contains(&(tag as u32));
    if scan && !in_partitions {
        let scanned = (*(plan as *const pg_sys::Scan)).scanrelid;
        let table = root_of(tree.append_relations, scanned);
        if table != scanned {
            partitioned_append(
                hasher,
                T_Append,
                relation_of(tree.rtable, table),
                |shapes| shapes.add(hash_of(|child| walk(child, tree, plan, depth + 1, true))),
            );
            return;
        }
    }
    hasher.mix(tag as u64);
    if scan && !in_partitions {
        let scanned = (*(plan as *const pg_sys::Scan)).scanrelid;
        hasher.mix(u64::from(relation_of(tree.rtable, scanned)));
    }
    // an index: its OID, unless it is a partition's (its direction counts either way)
    let index = |oid: pg_sys::Oid| {
        if in_partitions {
            0
        } else {
            u64::from(oid.to_u32())
        }
    };
    match tag {
        T_IndexScan => {
            let scan = plan as *const pg_sys::IndexScan;
            hasher.mix(index((*scan).indexid));
            hasher.mix((*scan).indexorderdir as u64);
        }
        T_IndexOnlyScan => {
            let scan = plan as *const pg_sys::IndexOnlyScan;
            hasher.mix(index((*scan).indexid));
            hasher.mix((*scan).indexorderdir as u64);
        }
        T_BitmapIndexScan => {
            let scan = plan as *const pg_sys::BitmapIndexScan;
            hasher.mix(index((*scan).indexid));
        }
        T_NestLoop | T_MergeJoin | T_HashJoin => {
            hasher.mix((*(plan as *const pg_sys::Join)).jointype as u64);
        }
        T_Agg => hasher.mix((*(plan as *const pg_sys::Agg)).aggstrategy as u64),
        _ => {}
    }
    let (children, parents) = match tag {
        T_Append => {
            let append = plan as *const pg_sys::Append;
            ((*append).appendplans, first_member((*append).apprelids))
        }
        T_MergeAppend => {
            let append = plan as *const pg_sys::MergeAppend;
            ((*append).mergeplans, first_member((*append).apprelids))
        }
        T_BitmapAnd => ((*(plan as *const pg_sys::BitmapAnd)).bitmapplans, None),
        T_BitmapOr => ((*(plan as *const pg_sys::BitmapOr)).bitmapplans, None),
        T_CustomScan => ((*(plan as *const pg_sys::CustomScan)).custom_plans, None),
        #[cfg(feature = "pg13")]
        T_ModifyTable => ((*(plan as *const pg_sys::ModifyTable)).plans, None),
        _ => (std::ptr::null_mut(), None),
    };
    // the Append of a table's partitions (not of a UNION ALL's branches: their parent is a
    // subquery, no relation)
    let table = parents.map_or(0, |rti| relation_of(tree.rtable, rti));
    if table != 0 {
        let table = if in_partitions { 0 } else { table };
        partitioned_append(hasher, tag, table, |shapes| {
            for &child in list_pointers(children) {
                let child = child as *const pg_sys::Plan;
                shapes.add(hash_of(|h| walk(h, tree, child, depth + 1, true)));
            }
        });
        return;
    }
    for &child in list_pointers(children) {
        walk(
            hasher,
            tree,
            child as *const pg_sys::Plan,
            depth + 1,
            in_partitions,
        );
    }
    if tag == T_SubqueryScan {
        walk(
            hasher,
            tree,
            (*(plan as *const pg_sys::SubqueryScan)).subplan,
            depth + 1,
            in_partitions,
        );
    }
    // an absent child is a mark, not a call (most nodes have one or none)
    for child in [(*plan).lefttree, (*plan).righttree] {
        if child.is_null() {
            hasher.mix(0);
        } else {
            walk(hasher, tree, child, depth + 1, in_partitions);
        }
    }
}

/// The hash of what `walk_into` mixes into a fresh hasher.
fn hash_of(walk_into: impl FnOnce(&mut Hasher)) -> u64 {
    let mut hasher = Hasher(OFFSET_BASIS);
    walk_into(&mut hasher);
    hasher.0
}

/// Hashes the Append (`tag`) of a table's partitions: its table (0 inside another one's
/// partitions) and the set of its children's shapes, which `add_children` fills.
fn partitioned_append(
    hasher: &mut Hasher,
    tag: pg_sys::NodeTag,
    table: u32,
    add_children: impl FnOnce(&mut ShapeSet),
) {
    hasher.mix(tag as u64);
    hasher.mix(u64::from(table));
    let mut shapes = ShapeSet::default();
    add_children(&mut shapes);
    shapes.mix_into(hasher);
}

/// The distinct shapes of an Append's children, whatever their order and repeats: up to 16
/// kept and hashed in sorted order, more folded together.
#[derive(Default)]
struct ShapeSet {
    kept: [u64; 16],
    count: usize,
    folded: u64,
}

impl ShapeSet {
    fn add(&mut self, shape: u64) {
        if self.kept[..self.count].contains(&shape) {
            return;
        }
        if self.count < self.kept.len() {
            self.kept[self.count] = shape;
            self.count += 1;
        } else {
            self.folded |= shape;
        }
    }

    fn mix_into(mut self, hasher: &mut Hasher) {
        self.kept[..self.count].sort_unstable();
        for &shape in &self.kept[..self.count] {
            hasher.mix(shape);
        }
        hasher.mix(self.folded);
    }
}

/// The lowest member of a Bitmapset (range-table indexes of an Append's parent tables).
unsafe fn first_member(set: *const pg_sys::Bitmapset) -> Option<pg_sys::Index> {
    if set.is_null() {
        return None;
    }
    let words = (*set).words.as_slice((*set).nwords as usize);
    words
        .iter()
        .enumerate()
        .find(|(_, w)| **w != 0)
        .map(|(i, w)| {
            (i * pg_sys::bitmapword::BITS as usize + w.trailing_zeros() as usize) as pg_sys::Index
        })
}

/// The topmost parent of range-table entry `index` among the partitions (and inheritance
/// children) of the statement: `index` itself when it is none's child.
unsafe fn root_of(
    append_relations: *const pg_sys::List,
    mut index: pg_sys::Index,
) -> pg_sys::Index {
    let infos = list_pointers(append_relations);
    if infos.len() > MAX_APPEND_RELATIONS {
        return index;
    }
    // each step goes one level up: at most as many steps as entries
    for _ in 0..infos.len() {
        let parent = infos.iter().find_map(|&info| {
            let info = info as *const pg_sys::AppendRelInfo;
            ((*info).child_relid == index).then_some((*info).parent_relid)
        });
        match parent {
            Some(parent) => index = parent,
            None => break,
        }
    }
    index
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
pub(crate) unsafe fn list_pointers<'a>(list: *const pg_sys::List) -> &'a [*mut std::ffi::c_void] {
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

/// Keys of EXPLAIN's JSON whose string values are names, not expressions: left as they are.
const NAME_KEYS: &[&str] = &[
    "Node Type",
    "Conflict Arbiter Indexes",
    "Conflict Resolution",
    "Trigger Name",
    "Constraint Name",
    "Parent Relationship",
    "Subplan Name",
    "Relation Name",
    "Schema",
    "Alias",
    "Index Name",
    "CTE Name",
    "Function Name",
    "Table Function Name",
    "Tuplestore Name",
    "Custom Plan Provider",
    "Join Type",
    "Strategy",
    "Partial Mode",
    "Operation",
    "Scan Direction",
    "Command",
    "Sort Method",
    "Sort Space Type",
];

/// EXPLAIN's JSON with the constants of its expressions replaced by `?`. Every string value
/// but those of NAME_KEYS is an expression (a filter, a condition, a sort or group key, ...):
/// it is decoded, normalized (`normalize_expression`) and encoded again; keys, names, numbers
/// and the layout stay as EXPLAIN printed them.
pub fn normalize(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut last_key = String::new();
    let mut rest = json;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let string = &rest[start..];
        let end = string_end(string);
        let token = &string[..end];
        rest = &string[end..];
        if rest.trim_start().starts_with(':') {
            last_key = serde_json::from_str(token).unwrap_or_default();
            out.push_str(token);
        } else if NAME_KEYS.contains(&last_key.as_str()) {
            out.push_str(token);
        } else {
            match serde_json::from_str::<String>(token) {
                Ok(value) => out.push_str(
                    &serde_json::to_string(&normalize_expression(&value))
                        .unwrap_or_else(|_| "\"?\"".into()),
                ),
                // never stored as printed: it could hold a constant
                Err(_) => out.push_str("\"?\""),
            }
        }
    }
    out.push_str(rest);
    out
}

/// The length of the JSON string that `text` starts with (its quotes included; the rest of
/// `text` when it is not closed).
fn string_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// An SQL expression as PostgreSQL deparses it, with its constants replaced: string literals
/// (`'…'`, quotes doubled inside; `E'…'` with backslash escapes) by `'?'`, numbers by `?`.
/// Quoted identifiers (`"…"`, quotes doubled inside) and words (names, keywords, `$1`) are kept
/// whole, digits in them included.
pub fn normalize_expression(expression: &str) -> String {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = String::with_capacity(expression.len());
    let mut i = 0;
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // a quoted identifier, up to its closing quote
            let start = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.extend(&chars[start..i]);
        } else if c == '\'' {
            let escapes =
                out.ends_with(['E', 'e']) && !out[..out.len() - 1].ends_with(|p: char| word(p));
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' if escapes => i += 2,
                    '\'' if chars.get(i + 1) == Some(&'\'') => i += 2,
                    '\'' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            out.push_str("'?'");
        } else if c.is_ascii_digit() {
            // a number: digits, a point, an exponent
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    d if d.is_ascii_digit() || d == '.' => i += 1,
                    'e' | 'E' => {
                        i += 1;
                        if matches!(chars.get(i), Some('+' | '-')) {
                            i += 1;
                        }
                    }
                    _ => break,
                }
            }
            out.push('?');
        } else if word(c) {
            // a word, digits in it included
            while i < chars.len() && word(chars[i]) {
                out.push(chars[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{normalize, normalize_expression, Hasher, ShapeSet, OFFSET_BASIS};

    fn set_hash(shapes: &[u64]) -> u64 {
        let mut set = ShapeSet::default();
        for &shape in shapes {
            set.add(shape);
        }
        let mut hasher = Hasher(OFFSET_BASIS);
        set.mix_into(&mut hasher);
        hasher.0
    }

    #[test]
    fn an_appends_children_count_as_a_set() {
        // order and repeats do not count, a different shape does
        assert_eq!(set_hash(&[7, 9, 7]), set_hash(&[9, 7]));
        assert_ne!(set_hash(&[7, 9]), set_hash(&[7, 10]));
        assert_ne!(set_hash(&[7]), set_hash(&[7, 9]));
        // 16 distinct shapes are kept whole (a change in any is seen); more are folded together
        let many: Vec<u64> = (1..=16).map(|i| i * 0x9E37_79B9).collect();
        let mut other = many.clone();
        other[11] ^= 1;
        assert_ne!(set_hash(&many), set_hash(&other));
    }

    #[test]
    fn constants_in_expressions_become_question_marks() {
        let plan = r#"{"Plan": {"Node Type": "Index Scan", "Relation Name": "t2", "Alias": "2024_sales", "Index Cond": "(id = 42)", "Filter": "((name)::text = 'O''Brien'::text AND x > 1.5e-3)", "Sort Key": ["(a + 1)", "b"], "Workers Planned": 2, "Subplan Name": "InitPlan 1"}}"#;
        assert_eq!(
            normalize(plan),
            r#"{"Plan": {"Node Type": "Index Scan", "Relation Name": "t2", "Alias": "2024_sales", "Index Cond": "(id = ?)", "Filter": "((name)::text = '?'::text AND x > ?)", "Sort Key": ["(a + ?)", "b"], "Workers Planned": 2, "Subplan Name": "InitPlan 1"}}"#
        );
    }

    #[test]
    fn quotes_in_identifiers_and_names_hide_no_constant() {
        // a table named it's, a column named o'x, a constant after them
        let plan = r#"{"Plan": {"Relation Name": "it's", "Alias": "it's", "Filter": "((\"o'x\" = 'topsecret'::text) AND (pin = 4242))"}}"#;
        let normalized = normalize(plan);
        assert_eq!(
            normalized,
            r#"{"Plan": {"Relation Name": "it's", "Alias": "it's", "Filter": "((\"o'x\" = '?'::text) AND (pin = ?))"}}"#
        );
        assert!(serde_json::from_str::<serde_json::Value>(&normalized).is_ok());
    }

    #[test]
    fn identifiers_parameters_and_escaped_strings() {
        assert_eq!(
            normalize_expression(
                r#"(c1 = $1) AND ("t""9".x_2 = 7) AND (s = E'a\'b') AND (e = 'x''y')"#
            ),
            r#"(c1 = $1) AND ("t""9".x_2 = ?) AND (s = E'?') AND (e = '?')"#
        );
        assert_eq!(
            normalize_expression("(d = '2024-01-01'::date)"),
            "(d = '?'::date)"
        );
        assert_eq!(
            normalize_expression("(x = '-5'::integer) OR (y = -5)"),
            "(x = '?'::integer) OR (y = -?)"
        );
    }
}
