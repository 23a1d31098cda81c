#!/usr/bin/env bash
# End-to-end test of the exports (docs/exports.md): metrics_prometheus() on a cluster with a
# pgbench workload and a session of a role whose name needs escaping (a double quote, a
# backslash, a line feed). The output must pass `promtool check metrics` (Debian's prometheus
# package, installed when missing), its values must equal what the SQL functions and views say
# in the same snapshot, and a dbanalytics_reader gets it too.
# Expects dbanalytics to be installed into the PostgreSQL in PG_CONFIG (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-exports-pg$PG_MAJOR
PORT=5471
DB=expdb

q() { psql_at "$DIR" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }

stop_clusters_on_exit "$DIR"

ensure_command promtool prometheus

step "PostgreSQL $PG_MAJOR: a cluster sampling every second, a snapshot every 5 s"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" \
    "dbanalytics.sample_interval = '1s'" \
    "dbanalytics.snapshot_interval = '5s'"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -s 2 -q "$DB" >/dev/null 2>&1
# a role whose name holds a double quote, a backslash and a line feed
HOSTILE=$'ev"il\\\nrole'
q "DO \$\$ BEGIN EXECUTE format('CREATE ROLE %I LOGIN', E'ev\"il\\\\\\nrole'); END \$\$"
check "the hostile role exists with its exact name" "$HOSTILE" \
    "$(q "SELECT rolname FROM pg_roles WHERE rolname LIKE 'ev%role'")"
q "CREATE ROLE metrics_reader LOGIN IN ROLE dbanalytics_reader"

step "Workload: pgbench for 12 s and a sleeping session of the hostile role"
"$PG_BIN/psql" -X -q -h "$DIR" -p "$PORT" -U "$HOSTILE" -d "$DB" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
SLEEPER=$!
as_pg_user "$PG_BIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -c 4 -j 2 -T 12 "$DB" >"$DIR/pgbench.log" 2>&1
# a pool minute exists once its whole minute has passed and a snapshot rolled it up: up to 60 s
# after the workload, plus a snapshot interval
wait_for "latency histograms and a pool minute" 120 \
    holds "EXISTS (SELECT FROM dbanalytics.database_latency) AND EXISTS (SELECT FROM dbanalytics.pool_minute)"
wait_for "a sampler tick that saw the hostile role's session" 10 \
    holds "EXISTS (SELECT FROM dbanalytics.connection_samples WHERE usename = '$(sed "s/'/''/g" <<<"$HOSTILE")'
                   AND sampled_at = (SELECT max(sampled_at) FROM dbanalytics.connection_samples))"

step "metrics_prometheus() and promtool"
# one REPEATABLE READ transaction: the export and the SQL it is compared with see the same rows
# and the same now(); kept in tables of the test's own for the checks below
q "BEGIN ISOLATION LEVEL REPEATABLE READ;
   CREATE TABLE m AS SELECT dbanalytics.metrics_prometheus() AS t;
   CREATE TABLE lines AS SELECT l FROM m, regexp_split_to_table(m.t, E'\n') l WHERE l <> '';
   CREATE TABLE expected AS SELECT
       (dbanalytics.health_score('1 hour') ->> 'overall_score')::float8 AS health,
       (SELECT sum(backends) FROM dbanalytics.connection_samples
         WHERE sampled_at = (SELECT max(sampled_at) FROM dbanalytics.connection_samples
                              WHERE sampled_at > now() - interval '1 minute')) AS backends,
       (SELECT format('dbanalytics_query_executions_last_hour{datname=\"%s\",usename=\"%s\",queryid=\"%s\"} %s',
                      datname, usename, queryid, executions)
          FROM dbanalytics.query_latency('1 hour', 1000) WHERE queryid <> 0
         ORDER BY executions DESC, queryid LIMIT 1) AS top_query_line;
   COMMIT" >/dev/null
q "SELECT t FROM m" >"$DIR/metrics.prom"
check "promtool check metrics finds nothing to say" "ok:" \
    "ok:$(promtool check metrics <"$DIR/metrics.prom" 2>&1)"
info "$(grep -c '^dbanalytics_' "$DIR/metrics.prom") samples in $(grep -c '^# TYPE' "$DIR/metrics.prom") families"
families=$(grep '^# TYPE' "$DIR/metrics.prom" | cut -d' ' -f3 | tr '\n' ' ')
for family in dbanalytics_health_score dbanalytics_health_component_score dbanalytics_collector_source_healthy \
    dbanalytics_connections dbanalytics_pool_utilization_ratio dbanalytics_query_latency_seconds \
    dbanalytics_database_latency_seconds dbanalytics_replication_lag_seconds dbanalytics_alert_open; do
    [[ " $families" == *" $family "* ]] || check "family $family is exported" present absent
done
check "every family has a HELP and a TYPE line" "$(grep -c '^# TYPE' "$DIR/metrics.prom")" \
    "$(grep -c '^# HELP' "$DIR/metrics.prom")"

step "The exported values are the SQL's, in the same snapshot"
check "dbanalytics_health_score = health_score('1 hour')" t \
    "$(q "SELECT (SELECT (regexp_match(l, '^dbanalytics_health_score (\S+)$'))[1]::float8 FROM lines
                   WHERE l LIKE 'dbanalytics_health_score %') = e.health FROM expected e")"
check "the health components are exported, one per component" t \
    "$(q "SELECT count(*) = (SELECT count(*) FROM dbanalytics.health_components)
            FROM lines WHERE l LIKE 'dbanalytics_health_component_score{%'")"
check "dbanalytics_connections sums to the backends of the latest tick" t \
    "$(q "SELECT sum((regexp_match(l, ' (\S+)$'))[1]::float8) = e.backends
            FROM lines, expected e WHERE l LIKE 'dbanalytics_connections{%' GROUP BY e.backends")"
check "the busiest statement's executions, as query_latency() counts them" t \
    "$(q "SELECT EXISTS (SELECT FROM lines, expected e WHERE l = e.top_query_line)")"
check "the hostile role's label is escaped (\\\" \\\\ \\n), on one line" 1 \
    "$(q "SELECT count(*) FROM lines WHERE l LIKE 'dbanalytics_connections{%'
            AND strpos(l, 'usename=\"ev\\\"il\\\\\\nrole\"') > 0")"
check "every sample line is one metric, labels and a number" 0 \
    "$(q "SELECT count(*) FROM lines WHERE l NOT LIKE '# %'
            AND l !~ '^dbanalytics_[a-z_]+(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$'")"

step "Grafana dashboard: every panel query runs and returns what its panel expects"
FROM_TS=$(q "SELECT to_char((now() - interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
TO_TS=$(q "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
# the panels' queries with Grafana's PostgreSQL macros expanded as Grafana expands them
python3 - dashboards/grafana-dbanalytics.json "$FROM_TS" "$TO_TS" >"$DIR/panels.tsv" <<'EOF'
import json, re, sys
dash, frm, to = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for panel in dash["panels"]:
    for target in panel["targets"]:
        sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1)} BETWEEN '{frm}' AND '{to}'", target["rawSql"])
        sql = sql.replace("$__timeFrom()", f"'{frm}'").replace("$__timeTo()", f"'{to}'")
        if "$" in sql or "\t" in sql or "\n" in sql:
            sys.exit(f"panel {panel['title']!r}: an unexpanded macro or a tab or line feed in its query")
        print(f"{panel['title']}\t{target['format']}\t{sql}")
EOF
# panels this workload must fill (no standby, no alert, no lock wait, no health record yet)
MUST_HAVE_ROWS="Health score|Transactions per second|Latency p50 / p95 / p99 (ms)|Connections by state|Wait events (average active sessions)|Cache hit ratio|Top queries by total time|Query latency percentiles|Connection pools (latest minute)|Index verdicts|Collector health|The monitor's own storage"
panel_problems=""
panels=0
while IFS=$'\t' read -r title format sql; do
    panels=$((panels + 1))
    if ! out=$("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U metrics_reader -d "$DB" \
            -c "CREATE TEMP VIEW panel AS $sql" \
            -c "SELECT (SELECT count(*) FROM panel) || ' ' || string_agg(attname || ':' || format_type(atttypid, NULL), ',' ORDER BY attnum)
                  FROM pg_attribute WHERE attrelid = 'panel'::regclass AND attnum > 0" 2>&1); then
        panel_problems+="[$title: $out] "
        continue
    fi
    rows=${out%% *}
    columns=${out#* }
    info "$title ($format): $rows rows; $columns"
    if [ "$format" = time_series ]; then
        # Grafana's time series format: a time column, then numbers, optionally one text column metric
        [[ $columns == time:"timestamp with time zone",* ]] || panel_problems+="[$title: no leading time column] "
        while IFS= read -r column; do
            case $column in
                time:*|metric:text) ;;
                *:"double precision"|*:numeric|*:bigint|*:integer) ;;
                *) panel_problems+="[$title: column $column is neither a number nor metric] " ;;
            esac
        done < <(tr ',' '\n' <<<"$columns")
    fi
    if [[ "|$MUST_HAVE_ROWS|" == *"|$title|"* ]] && [ "$rows" = 0 ]; then
        panel_problems+="[$title: no rows] "
    fi
done <"$DIR/panels.tsv"
check "panel queries run as a dbanalytics_reader, time series are shaped for Grafana, the workload's panels have rows ($panels panels)" \
    "" "$panel_problems"

step "A dbanalytics_reader gets the export"
"$PG_BIN/psql" -X -q -At -h "$DIR" -p "$PORT" -U metrics_reader -d "$DB" \
    -c "SELECT dbanalytics.metrics_prometheus()" >"$DIR/metrics-reader.prom"
check "promtool accepts the reader's export" "ok:" "ok:$(promtool check metrics <"$DIR/metrics-reader.prom" 2>&1)"
check "the reader sees the health score" 1 "$(grep -c '^dbanalytics_health_score ' "$DIR/metrics-reader.prom")"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$(sed "s/'/''/g" <<<"$HOSTILE")'" >/dev/null
wait "$SLEEPER" 2>/dev/null || true

finish_checks "e2e_exports (PostgreSQL $PG_MAJOR)"
