#!/usr/bin/env bash
# End-to-end test of the verdicts that need a real server (issue 17): WAL archiving that is on
# and failing is a bad backup_recency with the right action (not "turn archive_mode on") and an
# archiver_failing alert, and a standby that stops keeps replication_lag measured and raised
# instead of not_applicable, with one replication_lag alert that stays open while it is gone.
# (The pool, index, constraint, sequence and missing-index verdicts are #[pg_test]s.)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-verdicts-pg$PG_MAJOR
PRIMARY=$DIR/primary
STANDBY=$DIR/standby
PORT=5570
STANDBY_PORT=5571
DB=appdb
q() { psql_at "$PRIMARY" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
detail() { q "SELECT $2 FROM dbanalytics.health_score_details('1 hour') WHERE indicator = '$1'"; }

stop_clusters_on_exit "$PRIMARY" "$STANDBY"

step "Primary with archiving on and an archive_command that fails; snapshots every 5 s"
mkdir -p "$DIR"
cluster_init "$PRIMARY" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.snapshot_interval = '5s'" \
    "archive_mode = on" "archive_command = 'false'" "wal_level = replica"
cluster_start "$PRIMARY"
psql_at "$PRIMARY" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"

step "The workers' first ticks after CREATE EXTENSION"
fault_case first_ticks
wait_for "a sampler tick and a collector snapshot succeeded" 30 holds "(SELECT count(DISTINCT worker) = 2
    FROM dbanalytics.collector_runs WHERE status = 'ok' AND source IN ('activity', 'statements'))"
# (a failure to write collector_runs itself, for want of a partition, is only in the log)
check "no source failed: today's partitions were in place for the first ticks" "" \
    "$(grep 'WARNING:  dbanalytics: source' "$PRIMARY/server.log" | cut -c 1-200 || true)"

step "Archiving fails"
fault_case ""
q "CREATE TABLE filler AS SELECT g FROM generate_series(1, 10000) g; SELECT pg_switch_wal()" >/dev/null
wait_for "the archiver has failed" 60 holds "(SELECT failed_count > 0 FROM pg_stat_archiver)"
check "backup_recency is bad" bad "$(detail backup_recency status)"
check "its evidence says the last attempt failed and counts the backlog" t \
    "$(q "SELECT evidence LIKE '%(the last attempt failed); % segment(s) waiting to be archived'
            FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'backup_recency'")"
check "the risk says archiving is on and failing" t \
    "$(q "SELECT bool_or(r->>'mitigation' LIKE 'archiving is on and failing%')
            FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'risk_factors') r WHERE r->>'factor' = 'backup_recency'")"
check "the action reads pg_stat_archiver, it does not turn archive_mode on" t \
    "$(q "SELECT bool_and(r->>'action' LIKE 'SELECT * FROM pg_catalog.pg_stat_archiver;%' AND r->>'action' NOT LIKE '%ALTER SYSTEM%')
            FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'recommendations') r WHERE r->>'indicator' = 'backup_recency'")"
wait_for "the built-in rule archiver_failing has an open alert" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.alerts WHERE rule = 'archiver_failing' AND resolved_at IS NULL)"
check "its details name the WAL file that failed and the failures" t \
    "$(q "SELECT details->>'last_failed_wal' IS NOT NULL AND (details->>'failed_count')::int > 0 AND details->>'source' = 'pg_stat_archiver'
            FROM dbanalytics.alerts WHERE rule = 'archiver_failing' AND resolved_at IS NULL")"

step "A standby with a physical slot connects, then stops"
rm -rf "$STANDBY"
mkdir -p "$STANDBY"
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$STANDBY"
as_pg_user "$PG_BIN/pg_basebackup" -h "$PRIMARY" -p "$PORT" -U postgres -D "$STANDBY/data" -R -X stream -c fast \
    -C -S e2e_slot >"$DIR/basebackup.log" 2>&1 || { cat "$DIR/basebackup.log"; exit 1; }
{
    echo "port = $STANDBY_PORT"
    echo "unix_socket_directories = '$STANDBY'"
    echo "cluster_name = 'e2e_standby'"
    echo "shared_preload_libraries = ''"
    echo "archive_mode = off"
} | as_pg_user tee -a "$STANDBY/data/postgresql.conf" >/dev/null
cluster_start "$STANDBY"
wait_for "the standby streams" 30 holds "(SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'e2e_standby')"
wait_for "a snapshot records it" 30 \
    holds "(SELECT count(*) > 0 FROM dbanalytics.replication_stats WHERE application_name = 'e2e_standby')"
check "replication_lag is measured while it streams" yes \
    "$(q "SELECT CASE WHEN status IN ('ok', 'warn', 'bad') THEN 'yes' ELSE status END
            FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'replication_lag'")"
cluster_stop "$STANDBY"
wait_for "the standby is gone" 30 holds "(SELECT count(*) = 0 FROM pg_stat_replication)"
check "replication_lag stays measured and is bad (its slot is inactive)" bad "$(detail replication_lag status)"
check "its evidence names the disconnected standby and the inactive slot" t \
    "$(q "SELECT evidence LIKE 'e2e_standby: disconnected, last seen %; inactive physical replication slot(s): e2e_slot (no standby uses them)'
            FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'replication_lag'")"
check "the risk says a standby is disconnected" t \
    "$(q "SELECT bool_or(r->>'mitigation' LIKE 'a standby is disconnected%')
            FROM jsonb_array_elements(dbanalytics.health_score('1 hour')->'risk_factors') r WHERE r->>'factor' = 'replication_lag'")"
wait_for "the built-in rule replication_lag has an open alert naming the disconnected standby" 30 \
    holds "EXISTS (SELECT FROM dbanalytics.alerts WHERE rule = 'replication_lag' AND resolved_at IS NULL
                     AND details->'disconnected' ? 'e2e_standby')"
stopped_alert=$(q "SELECT alert_id FROM dbanalytics.alerts WHERE rule = 'replication_lag' AND resolved_at IS NULL")
after=$(q "SELECT now()")
wait_for "two more snapshots" 30 holds "(SELECT count(*) >= 2 FROM dbanalytics.collector_runs
    WHERE worker = 'collector' AND source = 'alerts' AND started_at > '$after')"
check "the alert stays open, one episode (announced once): it does not resolve while the standby is gone" "1|$stopped_alert" \
    "$(q "SELECT count(*) || '|' || min(alert_id) FROM dbanalytics.alerts WHERE rule = 'replication_lag'")"
q "SELECT pg_drop_replication_slot('e2e_slot')" >/dev/null
wait_for "after the slot is dropped, the lag still grows past 5 s (warn or bad)" 30 \
    holds "(SELECT status IN ('warn', 'bad') AND value > 5 FROM dbanalytics.health_score_details('1 hour') WHERE indicator = 'replication_lag')"

finish_checks "e2e_verdicts (PostgreSQL $PG_MAJOR)"
