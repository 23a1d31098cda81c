// In-server tests (src/tests.rs includes this file into its module `tests`): The query and index advisor.

fn advisor_table() {
    run("CREATE TABLE adv (id int, customer int, flag boolean, a int, b int, payload text)");
    run(
        "INSERT INTO adv SELECT g, g % 1000, g % 2 = 0, g % 100, g % 100, md5(g::text)
           FROM generate_series(1, 20000) g",
    );
    run("ANALYZE adv");
}

fn finding_kinds(analysis: &str) -> String {
    one::<String>(&format!(
        "SELECT string_agg(f->>'kind', ',' ORDER BY f->>'kind')
           FROM jsonb_array_elements(({analysis})->'findings') f"
    ))
    .unwrap_or_default()
}

#[pg_test]
fn explain_analysis_finds_a_missing_index_and_an_index_suppresses_it() {
    advisor_table();
    let analysis = "dbanalytics.explain_analysis('SELECT * FROM adv WHERE customer = 7')";
    assert_eq!(finding_kinds(analysis), "seq_scan_with_filter");
    assert_eq!(
        one::<String>(&format!(
            "SELECT ({analysis})->'findings'->0->>'suggestion'"
        ))
        .as_deref(),
        Some("CREATE INDEX CONCURRENTLY ON public.adv (customer);")
    );
    assert_eq!(
        one::<bool>(&format!("SELECT ({analysis})->>'total_cost' IS NOT NULL AND ({analysis})->'execution_plan' ? 'Plan'")),
        Some(true)
    );
    run("CREATE INDEX adv_customer ON adv (customer)");
    assert_eq!(finding_kinds(analysis), "");
}

#[pg_test]
fn explain_analysis_sees_a_sort_spill_and_a_misestimate() {
    advisor_table();
    run("SET LOCAL work_mem = '64kB'");
    let spill = "dbanalytics.explain_analysis('SELECT * FROM adv ORDER BY payload', true)";
    assert!(
        finding_kinds(spill).contains("sort_spilled_to_disk"),
        "{}",
        finding_kinds(spill)
    );
    // a and b are always equal: the planner multiplies their selectivities and is 100x off
    let correlated =
        "dbanalytics.explain_analysis('SELECT * FROM adv WHERE a = 5 AND b = 5', true)";
    assert!(
        finding_kinds(correlated).contains("row_misestimate"),
        "{}",
        finding_kinds(correlated)
    );
    assert!(one::<String>(&format!(
        "SELECT f->>'suggestion' FROM jsonb_array_elements(({correlated})->'findings') f WHERE f->>'kind' = 'row_misestimate'"
    ))
    .unwrap()
    .contains("CREATE STATISTICS public.adv_a_b_stats ON a, b FROM public.adv"));
}

#[pg_test(
    error = "dbanalytics: explain_analysis with analyze => true runs the statement, and this one modifies data"
)]
fn explain_analysis_refuses_to_run_a_delete_by_default() {
    advisor_table();
    run("SELECT dbanalytics.explain_analysis('DELETE FROM adv WHERE id < 100', true)");
}

#[pg_test]
fn explain_analysis_with_opt_in_leaves_the_table_unchanged() {
    advisor_table();
    let analysis = one::<pgrx::JsonB>(
        "SELECT dbanalytics.explain_analysis('DELETE FROM adv WHERE id < 100', true, true)",
    )
    .unwrap();
    assert_eq!(analysis.0["rolled_back"], true);
    assert_eq!(
        analysis.0["execution_plan"]["Plan"]["Node Type"],
        "ModifyTable"
    );
    assert_eq!(one::<i64>("SELECT count(*) FROM adv"), Some(20000));
}

#[pg_test(error = "syntax error at or near \"SELEC\"")]
fn explain_analysis_reports_invalid_sql() {
    run("SELECT dbanalytics.explain_analysis('SELEC 1')");
}

#[pg_test(error = "dbanalytics: explain_analysis takes exactly one statement")]
fn explain_analysis_refuses_two_statements() {
    run("SELECT dbanalytics.explain_analysis('SELECT 1; SELECT 2')");
}

/// Runs the workload index_advice() will read: statements recorded between two snapshots.
fn advised_workload() {
    collection_test();
    advisor_table();
    assert_eq!(snapshot_problems(), "");
    for _ in 0..3 {
        run("SELECT * FROM adv WHERE customer = 7");
        run("SELECT count(*) FROM adv WHERE b < 90");
    }
    assert_eq!(snapshot_problems(), "");
}

#[pg_test]
#[cfg_attr(
    feature = "pg18",
    ignore = "HypoPG is not packaged for PostgreSQL 18 here (Debian 12 has it for 15 only)"
)]
fn index_advice_validates_with_hypopg_and_rejects_a_useless_index() {
    advised_workload();
    run("CREATE EXTENSION IF NOT EXISTS hypopg");
    assert_eq!(
        one::<String>(
            "SELECT string_agg(table_name || ':' || array_to_string(columns, ',') || ':' || validated
                               || ':' || (cost_after < cost_before), ' ')
               FROM dbanalytics.index_advice('1 hour')"
        )
        .as_deref(),
        // b < 90 matches 90 % of the table: HypoPG shows no gain, so it is not advised
        Some("public.adv:customer:true:true")
    );
    assert_eq!(
        one::<String>("SELECT ddl FROM dbanalytics.index_advice('1 hour')").as_deref(),
        Some("CREATE INDEX CONCURRENTLY ON public.adv (customer);")
    );
}

#[pg_test]
fn index_advice_without_hypopg_says_it_is_unvalidated() {
    advised_workload();
    run("DROP EXTENSION IF EXISTS hypopg");
    assert_eq!(
        one::<String>(
            "SELECT string_agg(array_to_string(columns, ',') || ':' || validated || ':' || left(estimated_benefit, 11), ' '
                               ORDER BY columns)
               FROM dbanalytics.index_advice('1 hour')"
        )
        .as_deref(),
        Some("b:false:unvalidated customer:false:unvalidated")
    );
    // an existing index suppresses the candidate
    run("CREATE INDEX adv_customer ON adv (customer)");
    assert_eq!(
        one::<i64>("SELECT count(*) FROM dbanalytics.index_advice('1 hour') WHERE 'customer' = ANY (columns)"),
        Some(0)
    );
}
