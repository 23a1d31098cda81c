//! In-server tests (`cargo pgrx test`), run with the library preloaded and
//! `pg_stat_statements.track = all` so that statements run from a test are counted.
//! Each test runs in one transaction, so `now()` does not move: intervals are checked by
//! their values, not their lengths.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(sql: &str) -> Option<T> {
        Spi::get_one::<T>(sql).unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    fn run(sql: &str) {
        Spi::run(sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// Tests run concurrently, each in its own transaction (rolled back at the end): collection
    /// tests take turns, each with pg_stat_statements installed for its duration.
    fn collection_test() {
        run("SELECT pg_advisory_xact_lock(20261123)");
        run("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    }

    /// Runs take_snapshot() and returns `source:status` for every source that did not succeed,
    /// but for those this server cannot run (skipped, as `_source_unavailable()` says).
    fn snapshot_problems() -> String {
        one::<String>(
            "SELECT coalesce(string_agg(source || ':' || status || ':' || coalesce(message, ''), '; '), '')
               FROM dbanalytics.take_snapshot()
              WHERE status <> 'ok'
                AND NOT (status = 'skipped' AND dbanalytics._source_unavailable(source) IS NOT NULL)",
        )
        .unwrap_or_default()
    }

    /// Calls and the reset mark of the newest statement_stats row of the statement whose text
    /// starts with `prefix`.
    fn latest_delta(prefix: &str) -> (Option<i64>, Option<bool>) {
        Spi::get_two::<i64, bool>(&format!(
            "SELECT st.calls, st.reset FROM dbanalytics.statement_stats st
               JOIN dbanalytics.statements s USING (dbid, userid, queryid, toplevel)
              WHERE s.query LIKE '{prefix}%'
              ORDER BY st.ctid DESC LIMIT 1"
        ))
        .unwrap_or((None, None))
    }

    /// Daily partitions of `tables` for the UTC days from `days_back` ago to today.
    fn partitions_back(tables: &[&str], days_back: i32) {
        for table in tables {
            run(&format!(
                "DO $$
                 DECLARE d date;
                 BEGIN
                     FOR d IN SELECT g::date FROM generate_series((now() AT TIME ZONE 'UTC')::date - {days_back},
                                                                  (now() AT TIME ZONE 'UTC')::date, interval '1 day') g LOOP
                         IF to_regclass(format('dbanalytics.%I', '{table}_p' || to_char(d, 'YYYYMMDD'))) IS NULL THEN
                             EXECUTE format('CREATE TABLE dbanalytics.%I PARTITION OF dbanalytics.{table}
                                             FOR VALUES FROM (%L) TO (%L)', '{table}_p' || to_char(d, 'YYYYMMDD'),
                                            d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
                         END IF;
                     END LOOP;
                 END $$"
            ));
        }
    }

    // the tests, by feature
    include!("tests/collection.rs");
    include!("tests/security.rs");
    include!("tests/objects.rs");
    include!("tests/connections_and_alerts.rs");
    include!("tests/latency.rs");
    include!("tests/advisor.rs");
    include!("tests/waits_and_replication.rs");
}
