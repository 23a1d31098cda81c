#!/usr/bin/env bash
# End-to-end: pg_dump -Fc of a database with dbanalytics and its collected history, pg_restore
# into a fresh database of another server that preloads dbanalytics with its workers pointed at
# that database (issue 12; issue 15 item 7). pg_restore reports no error; the history (runtime
# partitions with their rows and indexes, activity rows with their keys), the user's changes to
# alert_rules and the identities' positions come back exactly; the workers idle while
# pg_restore runs, then go on collecting into the restored tables.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh
source tests/release_lib.sh

DIR=$REPO_ROOT/target/e2e-dump-restore-pg$PG_MAJOR
SRC=$DIR/source
DST=$DIR/target
SRC_PORT=5482
DST_PORT=5483
DB=app
RESTORED=restored
src_q() { psql_at "$SRC" "$SRC_PORT" "$DB" "$1"; }
dst_q() { psql_at "$DST" "$DST_PORT" "$RESTORED" "$1"; }
started=$(date +%s)

stop_clusters_on_exit "$SRC" "$DST"
cluster_stop "$SRC"; cluster_stop "$DST"  # servers left over by an interrupted run
CUR_TREE=$(current_tree)
private_pg "$DIR/pg"
install_tree "$CUR_TREE"
settings=("shared_preload_libraries = 'pg_stat_statements,dbanalytics'"
          "dbanalytics.sample_interval = '200ms'" "dbanalytics.snapshot_interval = '5s'"
          "pg_stat_statements.track = 'all'")

step "A server collecting in database $DB"
fault_case dump_restore
cluster_init "$SRC" "$SRC_PORT" "${settings[@]}" "dbanalytics.database = '$DB'"
cluster_start "$SRC"
psql_at "$SRC" "$SRC_PORT" postgres "CREATE DATABASE $DB"
src_q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics" 2>/dev/null
"$PG_BIN/pgbench" -h "$SRC" -p "$SRC_PORT" -U postgres -i -s 1 -q "$DB" >/dev/null 2>&1
src_q "SELECT * FROM dbanalytics.take_snapshot()" >/dev/null
# sessions the sampler sees, each with its own descriptor (activity_keys)
"$PG_BIN/psql" -X -q -h "$SRC" -p "$SRC_PORT" -U postgres -d "$DB" \
    -c "SET application_name = 'dump-sleeper'" -c "SELECT pg_sleep(2)" >/dev/null &
"$PG_BIN/psql" -X -q -h "$SRC" -p "$SRC_PORT" -U postgres -d "$DB" \
    -c "SET application_name = 'dump-idle-xact'" -c "BEGIN" -c "SELECT 1" -c "SELECT pg_sleep(2)" >/dev/null &
"$PG_BIN/pgbench" -h "$SRC" -p "$SRC_PORT" -U postgres -n -c 2 -t 300 "$DB" >/dev/null 2>&1
for _ in 1 2 3; do src_q "SELECT * FROM dbanalytics.take_sample()" >/dev/null; done
wait
src_q "SELECT * FROM dbanalytics.take_snapshot()" >/dev/null

step "The user's changes to alert_rules: one rule changed, one disabled, one added"
src_q "UPDATE dbanalytics.alert_rules SET threshold = 50 WHERE rule = 'slow_queries';
       UPDATE dbanalytics.alert_rules SET enabled = false WHERE rule = 'replication_lag';
       INSERT INTO dbanalytics.alert_rules (rule, metric, comparison, threshold, severity, description)
       VALUES ('any_connection', 'xid_age', '>', 0, 'low', 'fires always: every database has a transaction ID age')"
delete_error=$(src_q "DELETE FROM dbanalytics.alert_rules WHERE rule = 'deadlock'" 2>&1 || true)
check "a built-in rule is not deleted (a restore would bring it back), with a HINT to disable it" yes \
    "$(grep -q 'cannot be deleted' <<<"$delete_error" && grep -q 'SET enabled = false' <<<"$delete_error" && echo yes || echo "$delete_error")"
alert_opened() {
    [ "$(src_q "SELECT count(*) FROM dbanalytics.alerts WHERE rule = 'any_connection'")" -gt 0 ]
}
wait_for "the added rule opened an alert (alerts and its identity have rows to dump)" 30 alert_opened
both_workers_collected() {
    [ "$(src_q "SELECT count(DISTINCT worker) FROM dbanalytics.collector_runs
                 WHERE worker IN ('sampler', 'collector') AND status = 'ok'")" = 2 ]
}
wait_for "both workers collected" 30 both_workers_collected

step "Collection stops, the database is dumped"
psql_at "$SRC" "$SRC_PORT" postgres "ALTER SYSTEM SET dbanalytics.enabled = off"
psql_at "$SRC" "$SRC_PORT" postgres "SELECT pg_reload_conf()" >/dev/null
workers_idle() {
    [ "$(src_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'dbanalytics %'
                 AND query = 'idle: dbanalytics.enabled = off'")" = 2 ]
}
wait_for "both source workers idle" 30 workers_idle

# What must come back: the activity rows as the view reads them, the alert rules, the identities'
# positions, the partitions and their indexes, every row of every history and config table.
snapshot() {  # snapshot CLUSTER_DIR PORT DATABASE OUTPUT_PREFIX
    local dir=$1 port=$2 db=$3 out=$4
    local p=("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db")
    "${p[@]}" -c "COPY (SELECT * FROM dbanalytics.activity_samples ORDER BY sampled_at, pid) TO STDOUT" >"$out.activity"
    "${p[@]}" -c "COPY (SELECT * FROM dbanalytics.alert_rules ORDER BY rule) TO STDOUT" >"$out.rules"
    "${p[@]}" -c "SELECT 'activity_keys_key_id_seq ' || last_value || ' ' || is_called FROM dbanalytics.activity_keys_key_id_seq
                  UNION ALL SELECT 'alerts_alert_id_seq ' || last_value || ' ' || is_called FROM dbanalytics.alerts_alert_id_seq" >"$out.sequences"
    "${p[@]}" -c "SELECT c.relname || ' ' || coalesce(string_agg(i.relname, ',' ORDER BY i.relname), '(no index)')
                    FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
                    LEFT JOIN pg_index x ON x.indrelid = c.oid LEFT JOIN pg_class i ON i.oid = x.indexrelid
                   WHERE c.relnamespace = 'dbanalytics'::regnamespace GROUP BY c.relname ORDER BY 1" >"$out.partitions"
    local table
    for table in $("${p[@]}" -c "SELECT c.oid::regclass FROM pg_class c
                                  WHERE c.relnamespace = 'dbanalytics'::regnamespace
                                    AND (c.relkind = 'p' OR c.relname IN ('activity_keys', 'statements', 'alerts'))
                                  ORDER BY 1"); do
        "${p[@]}" -c "COPY (SELECT '$table', t::text FROM $table t) TO STDOUT"
    done | LC_ALL=C sort >"$out.rows"
}
snapshot "$SRC" "$SRC_PORT" "$DB" "$DIR/before"
info "dumped: $(wc -l <"$DIR/before.rows") history and config rows, $(wc -l <"$DIR/before.activity") activity rows, $(wc -l <"$DIR/before.partitions") partitions, $(wc -l <"$DIR/before.rules") alert rules"
check "activity rows of both sessions exist" 2 \
    "$(grep -cE 'dump-sleeper|dump-idle-xact' <<<"$(cut -f5 "$DIR/before.activity" | sort -u)")"
"$PG_BIN/pg_dump" -h "$SRC" -p "$SRC_PORT" -U postgres -Fc -f "$DIR/app.dump" "$DB"
"$PG_BIN/pg_restore" -l "$DIR/app.dump" >"$DIR/app.toc"
check "the dump holds activity_keys' rows" 1 "$(grep -c 'TABLE DATA dbanalytics activity_keys ' "$DIR/app.toc")"
check "the dump holds the identities' positions" 2 \
    "$(grep -cE 'SEQUENCE SET dbanalytics (activity_keys_key_id_seq|alerts_alert_id_seq) ' "$DIR/app.toc")"
check "the dump holds the runtime partitions" "$(wc -l <"$DIR/before.partitions")" \
    "$(grep -c 'TABLE ATTACH dbanalytics ' "$DIR/app.toc")"
check "the dump holds the 3 alert rules that differ from the built-in ones, nothing else" \
    "any_connection replication_lag slow_queries" \
    "$("$PG_BIN/pg_restore" -a -t alert_rules -f - "$DIR/app.dump" | awk '/^COPY/ {on=1; next} /^\\\./ {on=0} on {print $1}' | sort | tr '\n' ' ' | sed 's/ $//')"
cluster_stop "$SRC"

step "Restore into a fresh database of a server whose workers collect there"
cluster_init "$DST" "$DST_PORT" "${settings[@]}" "dbanalytics.database = '$RESTORED'"
cluster_start "$DST"
psql_at "$DST" "$DST_PORT" postgres "CREATE DATABASE $RESTORED"
workers_wait_for_extension() {
    [ "$(dst_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'dbanalytics %'
                 AND query LIKE 'idle: waiting for CREATE EXTENSION%'")" = 2 ]
}
wait_for "the target's workers wait in $RESTORED" 30 workers_wait_for_extension
mark=$(stat -c %s "$DST/server.log")
restore_output=$("$PG_BIN/pg_restore" -h "$DST" -p "$DST_PORT" -U postgres -d "$RESTORED" "$DIR/app.dump" 2>&1) \
    && restore_rc=0 || restore_rc=$?
check "pg_restore succeeds" 0 "$restore_rc"
check "pg_restore reports no error or warning" "" "$restore_output"
info "the workers during the restore: $(tail -c +"$((mark + 1))" "$DST/server.log" | grep -oE 'dbanalytics (sampler|collector): idle: pg_restore[^;]*' | sort -u | tr '\n' ';')"

step "Everything comes back exactly"
snapshot "$DST" "$DST_PORT" "$RESTORED" "$DIR/after"
# the workers collect again right after the restore: compare what existed before
cutoff=$(tail -n 1 "$DIR/before.activity" | cut -f1)
check "every activity row reads exactly as before (keys restored with their ids)" "" \
    "$(diff <(cat "$DIR/before.activity") <(awk -F'\t' -v c="$cutoff" '$1 <= c' "$DIR/after.activity") || true)"
check "alert_rules: the changed, disabled and added rules and the untouched built-in ones" "" \
    "$(diff "$DIR/before.rules" "$DIR/after.rules" || true)"
check "every history and config row is back" 0 "$(LC_ALL=C comm -23 "$DIR/before.rows" "$DIR/after.rows" | wc -l)"
LC_ALL=C comm -23 "$DIR/before.rows" "$DIR/after.rows" | head -n 5 | cut -c 1-200 >&2
check "every partition is back with its indexes" "" \
    "$(diff "$DIR/before.partitions" <(grep -Fxf "$DIR/before.partitions" "$DIR/after.partitions") || true)"
check "no index on a partitioned parent (a restore's ATTACH would create the partitions' again)" 0 \
    "$(dst_q "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
               WHERE c.relkind = 'p' AND c.relnamespace = 'dbanalytics'::regnamespace")"
keys_before=$(sed -n 's/^activity_keys_key_id_seq \([0-9]*\) .*/\1/p' "$DIR/before.sequences")
alerts_before=$(sed -n 's/^alerts_alert_id_seq \([0-9]*\) .*/\1/p' "$DIR/before.sequences")
check "the identities continue past the restored rows" "true true" \
    "$(dst_q "SELECT (SELECT last_value >= $keys_before FROM dbanalytics.activity_keys_key_id_seq) || ' ' ||
                     (SELECT last_value >= $alerts_before FROM dbanalytics.alerts_alert_id_seq)")"

step "The workers go on collecting into the restored tables"
"$PG_BIN/psql" -X -q -h "$DST" -p "$DST_PORT" -U postgres -d "$RESTORED" \
    -c "SET application_name = 'after-restore'" -c "SELECT pg_sleep(2)" >/dev/null &
restored_at=$(dst_q "SELECT now()")
sampled_after() {
    [ "$(dst_q "SELECT count(*) FROM dbanalytics.activity_samples WHERE application_name = 'after-restore'")" -gt 0 ]
}
wait_for "the sampler records a session of the target" 30 sampled_after
wait
snapshot_after() {
    [ "$(dst_q "SELECT count(*) FROM dbanalytics.collector_runs
                 WHERE worker = 'collector' AND source = 'retention' AND started_at > '$restored_at'")" -gt 0 ]
}
wait_for "a worker snapshot after the restore" 30 snapshot_after
check "the new session got a new key, after the restored ones" t \
    "$(dst_q "SELECT bool_and(k.key_id > $keys_before) FROM dbanalytics.activity_keys k WHERE k.application_name = 'after-restore'")"
check "every source's last run was ok" "" \
    "$(dst_q "SELECT string_agg(source || ': ' || last_status || ' ' || coalesce(last_error, skipped_reason, ''), '; ')
               FROM dbanalytics.collector_status WHERE last_status <> 'ok' AND NOT $UNAVAILABLE_HERE")"
check "no source failed since the restore" "" \
    "$(dst_q "SELECT string_agg(DISTINCT source || ': ' || message, '; ') FROM dbanalytics.collector_runs
               WHERE started_at > '$restored_at' AND status = 'error'")"
check "the restored open alert episode goes on (the added rule still fires)" t \
    "$(dst_q "SELECT count(*) = 1 FROM dbanalytics.alerts WHERE rule = 'any_connection' AND resolved_at IS NULL
               AND alert_id <= $alerts_before AND last_seen_at > '$restored_at'")"

info "took $(( $(date +%s) - started ))s"
finish_checks "e2e_dump_restore (PostgreSQL $PG_MAJOR)"
