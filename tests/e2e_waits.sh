#!/usr/bin/env bash
# End-to-end test of the wait-event analytics and vacuum_blockers on a real cluster:
# - one session holds a row lock while it sleeps (a Timeout wait), two others wait for the row
#   (Lock waits); the sampler's samples put each wait where it belongs in wait_events() and
#   query_waits() of each statement shows its own wait;
# - a query reading a table much larger than shared_buffers with the kernel's page cache dropped
#   spends its samples in IO, and is IO's top query;
# - an inactive logical slot, a session idle in transaction, a prepared transaction and a
#   standby's hot_standby_feedback through a physical slot each hold the xmin horizon and are
#   named by vacuum_blockers, which also answers on the hot standby;
# - the standby stops after a snapshot recorded it: replication_risks reports it gone and its
#   slot, now inactive, retaining WAL; past the inactive_slot_wal threshold the alert opens.
# Expects dbanalytics to be installed into the PostgreSQL in PG_CONFIG (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-waits
PRIMARY=$DIR/primary
STANDBY=$DIR/standby
PORT=5580
STANDBY_PORT=5581
DB=appdb
q() { psql_at "$PRIMARY" "$PORT" "$DB" "$1"; }
qs() { psql_at "$STANDBY" "$STANDBY_PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }
stop_clusters_on_exit "$PRIMARY" "$STANDBY"

step "Primary sampling every 200 ms, with prepared transactions and logical slots"
rm -rf "$DIR"; mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$DIR"
cluster_init "$PRIMARY" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.sample_interval = '200ms'" \
    "dbanalytics.snapshot_interval = '5s'" \
    "wal_level = logical" "max_wal_senders = 4" "max_replication_slots = 4" \
    "max_prepared_transactions = 2" "autovacuum = off" "shared_buffers = '16MB'"
cluster_start "$PRIMARY"
psql_at "$PRIMARY" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
q "CREATE TABLE w_locked (id int PRIMARY KEY, v int); INSERT INTO w_locked VALUES (1, 0)"
wait_for "the sampler samples" 20 holds "EXISTS (SELECT FROM dbanalytics.connection_samples)"

step "A row lock held for 6 s by a sleeping session, two sessions waiting for the row"
PGAPPNAME=w_holder q "BEGIN; UPDATE w_locked SET v = v + 1 WHERE id = 1; SELECT pg_sleep(6); COMMIT" >/dev/null &
HOLDER=$!
wait_for "the holder sleeps" 10 holds "EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'w_holder'
                                                AND wait_event = 'PgSleep')"
PGAPPNAME=w_waiter q "UPDATE w_locked SET v = v + 10 WHERE id = 1" &
W1=$!
PGAPPNAME=w_waiter q "UPDATE w_locked SET v = v + 10 WHERE id = 1" &
W2=$!
wait $HOLDER $W1 $W2
sleep 0.5  # the last sample is committed

UPDATE_ID=$(q "SELECT queryid FROM pg_stat_statements WHERE query LIKE 'UPDATE w_locked SET v = v + \$1 WHERE id = \$2'
                 ORDER BY calls DESC LIMIT 1")
SLEEP_ID=$(q "SELECT queryid FROM pg_stat_statements WHERE query LIKE 'SELECT pg_sleep(\$1)'")
info "UPDATE query id $UPDATE_ID, pg_sleep query id $SLEEP_ID"
wait_for "a snapshot stored the statements' texts" 20 \
    holds "EXISTS (SELECT FROM dbanalytics.statement_texts WHERE queryid = $UPDATE_ID)"
q "SELECT datname, wait_event_type, wait_event, samples, round(share::numeric, 3) AS share,
          round(avg_active_sessions::numeric, 3) AS aas, top_query_id
     FROM dbanalytics.wait_events('5 minutes') WHERE datname = '$DB'" | sed 's/^/    /'

# the first waiter waits for the holder's transaction id, the second for the first (the tuple)
check "wait_events puts the waiters on Lock (transactionid, tuple), most often the UPDATE" "t" \
    "$(q "SELECT sum(samples) >= 15 AND bool_and(top_query_id = $UPDATE_ID AND top_query LIKE 'UPDATE w_locked%')
            FROM dbanalytics.wait_events('5 minutes')
           WHERE datname = '$DB' AND wait_event_type = 'Lock'")"
check "wait_events puts the sleeper on Timeout/PgSleep, most often pg_sleep" "t" \
    "$(q "SELECT samples >= 8 AND top_query_id = $SLEEP_ID
            FROM dbanalytics.wait_events('5 minutes')
           WHERE datname = '$DB' AND wait_event_type = 'Timeout' AND wait_event = 'PgSleep'")"
check "two waiters against one sleeper: Lock has more of the active time than Timeout" "t" \
    "$(q "SELECT sum(share) FILTER (WHERE wait_event_type = 'Lock') > sum(share) FILTER (WHERE wait_event_type = 'Timeout')
                 AND sum(share) FILTER (WHERE wait_event_type IN ('Lock', 'Timeout')) > 0.8
            FROM dbanalytics.wait_events('5 minutes') WHERE datname = '$DB'")"
check "query_waits of the UPDATE: its time went to the lock" "Lock" \
    "$(q "SELECT wait_event_type FROM dbanalytics.query_waits($UPDATE_ID, '5 minutes')
           WHERE datname = '$DB' GROUP BY 1 ORDER BY sum(samples) DESC LIMIT 1")"
check "query_waits of the UPDATE: 90 % or more" "t" \
    "$(q "SELECT sum(share) >= 0.9 FROM dbanalytics.query_waits($UPDATE_ID, '5 minutes')
           WHERE datname = '$DB' AND wait_event_type = 'Lock'")"
check "query_waits of pg_sleep: only Timeout/PgSleep (no lock)" "Timeout:PgSleep" \
    "$(q "SELECT string_agg(wait_event_type || ':' || wait_event, ',')
            FROM dbanalytics.query_waits($SLEEP_ID, '5 minutes') WHERE datname = '$DB'
             AND share >= 0.9")"
check "no Lock sample for pg_sleep" "0" \
    "$(q "SELECT count(*) FROM dbanalytics.query_waits($SLEEP_ID, '5 minutes') WHERE wait_event_type = 'Lock'")"
check "per minute, the Lock samples add up to the window's" "t" \
    "$(q "SELECT (SELECT sum(samples) FROM dbanalytics.wait_events_by_minute('5 minutes')
                   WHERE datname = '$DB' AND wait_event_type = 'Lock')
               = (SELECT sum(samples) FROM dbanalytics.wait_events('5 minutes')
                   WHERE datname = '$DB' AND wait_event_type = 'Lock')")"
check "a bad window is an error with a hint" "HINT:  Pass an interval such as '1 hour' or '7 days'." \
    "$(q "SELECT * FROM dbanalytics.wait_events('0')" 2>&1 | grep HINT || true)"

step "A query reading a cold table: its time goes to IO"
# one 900-byte row per page (fillfactor 10), 50000 pages (391 MB, far more than shared_buffers),
# read in index order, which is random order: one random read per row once the kernel's page
# cache is dropped
if [ -w /proc/sys/vm/drop_caches ]; then
    q "CREATE TABLE w_cold (id int, k int, pad text) WITH (fillfactor = 10);
       INSERT INTO w_cold SELECT i, (random() * 1e9)::int, repeat('p', 900) FROM generate_series(1, 50000) i;
       CREATE INDEX w_cold_k ON w_cold (k); ANALYZE w_cold"
    q "CHECKPOINT"
    sync; echo 3 > /proc/sys/vm/drop_caches
    PGAPPNAME=w_cold_reader q "SET enable_seqscan = off; SET enable_bitmapscan = off;
                               SELECT count(*), sum(length(pad)) FROM w_cold WHERE k >= 0" >/dev/null
    sleep 0.5  # the last sample is committed
    COLD_ID=$(q "SELECT queryid FROM pg_stat_statements WHERE query LIKE 'SELECT count(*), sum(length(pad)) FROM w_cold%'")
    q "SELECT wait_event_type, wait_event, samples FROM dbanalytics.query_waits($COLD_ID, '5 minutes')" | sed 's/^/    /'
    check "query_waits of the cold read: IO has most of its samples" "IO" \
        "$(q "SELECT wait_event_type FROM dbanalytics.query_waits($COLD_ID, '5 minutes')
               GROUP BY 1 ORDER BY sum(samples) DESC LIMIT 1")"
    check "wait_events: IO's top query is the cold read, the UPDATE stays on Lock" "t" \
        "$(q "SELECT bool_or(wait_event_type = 'IO' AND top_query_id = $COLD_ID)
                     AND NOT bool_or(wait_event_type = 'IO' AND top_query_id = $UPDATE_ID)
                FROM dbanalytics.wait_events('5 minutes') WHERE datname = '$DB'")"
else
    skip_part "the cold-cache IO case" "/proc/sys/vm/drop_caches is not writable (run as root)"
fi

step "Horizon holders: a physical slot fed by a standby, a logical slot, idle in transaction, a prepared transaction"
mkdir -p "$STANDBY"; [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$STANDBY"
as_pg_user "$PG_BIN/pg_basebackup" -h "$PRIMARY" -p "$PORT" -U postgres -D "$STANDBY/data" \
    -R -C -S w_standby_slot -X stream -c fast >/dev/null
{
    echo "port = $STANDBY_PORT"
    echo "unix_socket_directories = '$STANDBY'"
    echo "hot_standby_feedback = on"
    echo "wal_receiver_status_interval = 1s"
} | as_pg_user tee -a "$STANDBY/data/postgresql.auto.conf" >/dev/null
cluster_start "$STANDBY"
wait_for "the standby's feedback sets the slot's xmin" 30 \
    holds "(SELECT xmin IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'w_standby_slot')"
# a logical slot waits for running transactions: created before the holders below
q "SELECT pg_create_logical_replication_slot('w_logical_slot', 'pgoutput')" >/dev/null
{ echo "BEGIN; SELECT pg_current_xact_id();"; sleep 60; echo "COMMIT;"; } \
    | PGAPPNAME=w_idle "$PG_BIN/psql" -X -q -h "$PRIMARY" -p "$PORT" -U postgres -d "$DB" >/dev/null &
wait_for "the session is idle in transaction" 10 \
    holds "EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'w_idle' AND state = 'idle in transaction')"
IDLE_PID=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'w_idle'")
q "BEGIN; INSERT INTO w_locked VALUES (2, 0); PREPARE TRANSACTION 'w_prepared'"
for i in $(seq 1 20); do q "UPDATE w_locked SET v = v + 1 WHERE id = 1"; done
q "SELECT holder_type, pid, slot_name, gid, xmin, xmin_age, oldest, holds_back, dead_tuples_here
     FROM dbanalytics.vacuum_blockers" | sed 's/^/    /'

check "the idle-in-transaction session is named by its pid, with its application" "idle_in_transaction:w_idle" \
    "$(q "SELECT holder_type || ':' || application_name FROM dbanalytics.vacuum_blockers WHERE pid = $IDLE_PID")"
check "its action ends the session" "t" \
    "$(q "SELECT action LIKE '%pg_terminate_backend($IDLE_PID)%' FROM dbanalytics.vacuum_blockers WHERE pid = $IDLE_PID")"
wait_for "the 20 updates' dead rows are counted against it" 10 \
    holds "(SELECT dead_tuples_here >= 20 FROM dbanalytics.vacuum_blockers WHERE pid = $IDLE_PID)"
check "the inactive logical slot holds the catalog horizon, for all databases" "inactive:all databases" \
    "$(q "SELECT state || ':' || holds_back FROM dbanalytics.vacuum_blockers
           WHERE holder_type = 'replication_slot_catalog' AND slot_name = 'w_logical_slot'")"
check "its action drops the slot" "t" \
    "$(q "SELECT action LIKE '%pg_drop_replication_slot(''w_logical_slot'')%' FROM dbanalytics.vacuum_blockers
           WHERE slot_name = 'w_logical_slot'")"
check "the standby's physical slot holds the horizon through its feedback" "replication_slot:active" \
    "$(q "SELECT holder_type || ':' || state FROM dbanalytics.vacuum_blockers WHERE slot_name = 'w_standby_slot'")"
check "the prepared transaction is named by its gid, with COMMIT/ROLLBACK PREPARED" "t" \
    "$(q "SELECT holder_type = 'prepared_transaction' AND action LIKE '%ROLLBACK PREPARED ''w_prepared''%'
            FROM dbanalytics.vacuum_blockers WHERE gid = 'w_prepared'")"
check "the rows flagged oldest have the greatest xmin age" "t" \
    "$(q "SELECT bool_and(xmin_age = (SELECT max(xmin_age) FROM dbanalytics.vacuum_blockers))
            FROM dbanalytics.vacuum_blockers WHERE oldest")"
check "the logical slot, created first, is older than the idle session's transaction" "t" \
    "$(q "SELECT s.xmin_age >= i.xmin_age AND i.xmin_age > 0
            FROM dbanalytics.vacuum_blockers s, dbanalytics.vacuum_blockers i
           WHERE s.slot_name = 'w_logical_slot' AND i.pid = $IDLE_PID")"
# a reader sees other users' sessions as pg_stat_activity shows them (no xmin without
# pg_read_all_stats), and every slot and prepared transaction
check "a reader sees the slots and the prepared transaction" "3" \
    "$(q "SET ROLE dbanalytics_reader; SELECT count(*) FROM dbanalytics.vacuum_blockers WHERE pid IS DISTINCT FROM $IDLE_PID")"

step "On the hot standby"
wait_for "the standby replays the extension's objects" 20 \
    eval "[ \"\$(qs 'SELECT count(*) FROM dbanalytics.vacuum_blockers' 2>/dev/null)\" != '' ]"
{ echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;"; sleep 60; echo "COMMIT;"; } \
    | PGAPPNAME=w_standby_reader "$PG_BIN/psql" -X -q -h "$STANDBY" -p "$STANDBY_PORT" -U postgres -d "$DB" >/dev/null &
wait_for "a standby session idles in a snapshot" 10 \
    eval "[ \"\$(qs \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'w_standby_reader'
                          AND state = 'idle in transaction' AND backend_xmin IS NOT NULL\")\" = 1 ]"
check "vacuum_blockers answers on the hot standby and names the session holding its snapshot" "idle_in_transaction:true" \
    "$(qs "SELECT holder_type || ':' || pg_is_in_recovery() FROM dbanalytics.vacuum_blockers
            WHERE application_name = 'w_standby_reader'")"

step "WAL and replication risk: the standby stops after a snapshot recorded it"
# (not pg_basebackup's WAL stream, which a snapshot during the base backup may have recorded)
wait_for "a snapshot recorded the streaming standby" 20 \
    holds "EXISTS (SELECT FROM dbanalytics.replication_stats WHERE state = 'streaming'
                     AND COALESCE(application_name, '') NOT IN ('pg_basebackup', 'pg_receivewal'))"
check "while it streams, no standby is gone and its slot is fine" "0" \
    "$(q "SELECT count(*) FROM dbanalytics.replication_risks
           WHERE kind = 'standby_gone' OR (name = 'w_standby_slot' AND risk <> 'ok')")"
cluster_stop "$STANDBY"
wait_for "the standby's walsender is gone" 20 holds "NOT EXISTS (SELECT FROM pg_stat_replication)"
q "CREATE TABLE w_wal AS SELECT g FROM generate_series(1, 10000) g"
check "the stopped standby is a high risk, not a silence" "high" \
    "$(q "SELECT string_agg(risk, ',') FROM dbanalytics.replication_risks WHERE kind = 'standby_gone'")"
check "its slot, now inactive, retains WAL: high, with no max_slot_wal_keep_size, and the space left on pg_wal's disk" "high:false:true" \
    "$(q "SELECT risk || ':' || active || ':' || (retained_bytes > 0 AND detail LIKE '%can fill the disk (% available on the file system of pg_wal)')
            FROM dbanalytics.replication_risks WHERE name = 'w_standby_slot'")"
check "the inactive logical slot too" "high" \
    "$(q "SELECT risk FROM dbanalytics.replication_risks WHERE name = 'w_logical_slot'")"
# inactive_slot_wal fires above 1 GiB for 10 minutes: lowered to 5 MB above the WAL retained
# now (the collector writes far less than that in a few seconds), with no duration
RETAINED=$(q "SELECT max(retained_bytes) + 5000000 FROM dbanalytics.replication_risks WHERE kind = 'slot' AND NOT active")
q "UPDATE dbanalytics.alert_rules SET threshold = $RETAINED, for_duration = '0' WHERE rule = 'inactive_slot_wal'"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
check "inactive_slot_wal: not while the retained WAL is below the threshold" "0" \
    "$(q "SELECT count(*) FROM dbanalytics.alerts WHERE rule = 'inactive_slot_wal'")"
q "CREATE TABLE w_wal_more AS SELECT g, repeat('w', 500) AS pad FROM generate_series(1, 20000) g"
q "SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
check "inactive_slot_wal opens once the inactive slots' retained WAL grows past it, naming both slots" "1|true" \
    "$(q "SELECT count(*) || '|' || bool_and(details->'slots' ?& ARRAY['w_standby_slot', 'w_logical_slot'] AND value > $RETAINED)
            FROM dbanalytics.alerts WHERE rule = 'inactive_slot_wal' AND resolved_at IS NULL")"
check "checkpoint_health reads the checkpointer history" "t" \
    "$(q "SELECT status IN ('ok', 'frequent_requested_checkpoints', 'backends_write_buffers')
                 AND checkpoints_timed + checkpoints_req >= 0 FROM dbanalytics.checkpoint_health('1 hour')")"

q "ROLLBACK PREPARED 'w_prepared'"
q "SELECT pg_drop_replication_slot('w_logical_slot')" >/dev/null
check "once released, neither is named any more" "0" \
    "$(q "SELECT count(*) FROM dbanalytics.vacuum_blockers WHERE gid = 'w_prepared' OR slot_name = 'w_logical_slot'")"

finish_checks "e2e_waits"
