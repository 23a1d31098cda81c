#!/usr/bin/env bash
# End-to-end security test (issue 14): every attack of the security review is tried as an
# attacker would, with real roles on a real cluster (dbanalytics and pg_stat_statements
# preloaded, collection driven by take_sample() / take_snapshot(), the workers started only for
# the per-database-settings attack), and each verdict checks that the attacker gained nothing:
# rolsuper unchanged, no side-effect rows, no sequence advanced, no secret text visible.
#
#  1. index_advice() plans another user's text (IMMUTABLE / STABLE functions calling a VOLATILE
#     one that escalates), as a superuser and as a dbanalytics_admin member, with and without
#     HypoPG (HypoPG: PostgreSQL 15 only)
#  5. secret-bearing texts (passwords of roles and user mappings) are not stored, not shown, not
#     dumped; who sees which text is exactly pg_stat_statements' rule
#  6. a text whose stored role no longer owns its OID (a restore) is not shown to the new owner
#  7. explain_analysis(..., analyze => false) runs nothing: no sequence advances, nothing written;
#     every explain_analysis example in the docs is valid SQL
#  8. an alert rule with a 9,000-character name (or description) does not stop other alerts
#  3. attacker operators in a schema on the caller's path (public with CREATE for PUBLIC) are
#     not run by any analytics function or view
#  9. hostile names (quotes, newlines, non-ASCII, keywords) in schemas, tables, columns, roles,
#     databases and application names: the analytics run, index_advice quotes its DDL; the ACL
#     walk over every object in schema dbanalytics, compared with docs/security-privileges.md
#  4. a pre-created schema dbanalytics makes CREATE EXTENSION fail; a table planted where a
#     partition will go is not silently accepted
#  2. a database owner's ALTER DATABASE ... SET search_path does not reach the workers
# 10. pgspot over the install and upgrade scripts (tests/pgspot.sh)
#
# UPDATE_PRIVILEGES=1 rewrites docs/security-privileges.md from the catalog instead of comparing.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

DIR=$PWD/target/e2e-security-pg$PG_MAJOR
PORT=5500
DB=secdb
PRIVILEGES_DOC=docs/security-privileges.md

# sql_as ROLE DATABASE SQL: one unaligned, tuples-only result; fails on the first error
sql_as() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U "$1" -d "$2" -c "$3"
}
# qv SQL / qvp: verdicts, run as the superuser with search_path = pg_catalog, pg_temp given on the
# command line (it overrides ALTER DATABASE ... SET), so that no attacker object can take part
# role=none: part 2 sets the database's role to its owner, which a client's setting overrides
qv() { PGOPTIONS="-c search_path=pg_catalog,pg_temp -c role=none" sql_as postgres "$DB" "$1"; }
qvp() { PGOPTIONS="-c search_path=pg_catalog,pg_temp" sql_as postgres postgres "$1"; }
holds() { [ "$(qv "SELECT ($1)")" = t ]; }
# try ROLE DATABASE SQL: "ok", or "error: " and the server's first ERROR line; never fails
try() {
    local out
    if out=$(sql_as "$1" "$2" "$3" 2>&1); then
        echo ok
    else
        echo "error: $(printf '%s\n' "$out" | grep -m 1 'ERROR' || printf '%s' "$out" | head -n 1)"
    fi
}
rolsuper() { qvp "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = '$1'"; }
snapshot() { qv "SELECT pg_catalog.count(*) FROM dbanalytics.take_snapshot()" >/dev/null; }
# ident TEXT / literal TEXT: TEXT as a quoted SQL identifier / string literal
ident() { printf '"%s"' "${1//\"/\"\"}"; }
literal() { printf "'%s'" "${1//\'/\'\'}"; }

# What a DBA runs: every view of schema dbanalytics and every function callable with its defaults
# (a window where an interval is required), plus the two that need a statement or a query id; and
# every function without a pinned search_path, with arguments made up from their types (such a
# function runs, or is inlined, under its caller's search_path). Each call converts its rows to
# text, so that every column is computed (count(*) alone would leave view columns unevaluated).
CALLS=()
list_calls() {
    mapfile -t CALLS < <(qv "
        WITH fn AS (
            SELECT p.*, n.nspname,
                   EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c WHERE c LIKE 'search\_path=%') AS pinned,
                   ARRAY(SELECT CASE t.o
                                    WHEN 'bigint'::pg_catalog.regtype THEN '5::pg_catalog.int8'
                                    WHEN 'integer'::pg_catalog.regtype THEN '60::pg_catalog.int4'
                                    WHEN 'smallint'::pg_catalog.regtype THEN '1::pg_catalog.int2'
                                    WHEN 'numeric'::pg_catalog.regtype THEN '1.5::pg_catalog.numeric'
                                    WHEN 'double precision'::pg_catalog.regtype THEN '1.5::pg_catalog.float8'
                                    WHEN 'real'::pg_catalog.regtype THEN '1.5::pg_catalog.float4'
                                    WHEN 'boolean'::pg_catalog.regtype THEN 'false'
                                    WHEN 'interval'::pg_catalog.regtype THEN '''1 hour''::pg_catalog.interval'
                                    WHEN 'timestamptz'::pg_catalog.regtype THEN 'pg_catalog.now() - ''1 hour''::pg_catalog.interval'
                                    WHEN 'text'::pg_catalog.regtype THEN '''x''::pg_catalog.text'
                                END
                           FROM pg_catalog.unnest(p.proargtypes) WITH ORDINALITY t(o, i) ORDER BY t.i) AS made_up
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'dbanalytics' AND p.prokind = 'f'
               AND p.prorettype NOT IN ('trigger'::pg_catalog.regtype, 'event_trigger'::pg_catalog.regtype)
        )
        SELECT s FROM (
            SELECT 1 AS k, pg_catalog.format('SELECT pg_catalog.count(v::pg_catalog.text) FROM %I.%I v', n.nspname, c.relname) AS s
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'dbanalytics' AND c.relkind IN ('v', 'm')
            UNION ALL
            SELECT 2, pg_catalog.format('SELECT pg_catalog.count(f::pg_catalog.text) FROM %I.%I(%s) f', f.nspname, f.proname,
                          pg_catalog.array_to_string(pg_catalog.array_fill('''1 hour'''::text,
                                                     ARRAY[f.pronargs - f.pronargdefaults]), ', '))
              FROM fn f
             WHERE NOT EXISTS (SELECT FROM pg_catalog.unnest(f.proargtypes[0:f.pronargs - f.pronargdefaults - 1]) t(o)
                                WHERE t.o <> 'interval'::pg_catalog.regtype)
            UNION ALL
            SELECT 3, 'SELECT pg_catalog.count(f::pg_catalog.text) FROM dbanalytics.explain_analysis(''SELECT 1'') f'
            UNION ALL
            SELECT 3, 'SELECT pg_catalog.count(f::pg_catalog.text) FROM dbanalytics.latency_histogram(0) f'
            UNION ALL
            SELECT 4, pg_catalog.format('SELECT pg_catalog.count(f::pg_catalog.text) FROM %I.%I(%s) f', f.nspname, f.proname,
                                        pg_catalog.array_to_string(f.made_up, ', '))
              FROM fn f
             WHERE NOT f.pinned AND f.pronargs > 0 AND pg_catalog.array_position(f.made_up, NULL) IS NULL
        ) x ORDER BY k, s")
}
# some_activity: a session busy for a while and two samples of it, so that the views over the
# samples have rows to compute
some_activity() {
    sql_as plain "$DB" "SELECT pg_sleep(60) /* sampled */" >/dev/null 2>&1 &
    wait_for "a sampled session is active" 20 holds \
        "EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE usename = 'plain' AND state = 'active')"
    qv "SELECT pg_catalog.count(*) FROM dbanalytics.take_sample()" >/dev/null
    qv "SELECT pg_catalog.count(*) FROM dbanalytics.take_sample()" >/dev/null
    qv "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
         WHERE usename = 'plain'" >/dev/null
}
# call_everything ROLE MARKER_SQL: runs every call of CALLS as ROLE with its own settings, one
# session each; counts failures in CALL_ERRORS and names the calls after which MARKER_SQL (a
# count, read as the verdict role) went up
call_everything() {
    local role=$1 marker_sql=$2 call outcome before after
    CALL_ERRORS=0
    before=$(qv "$marker_sql")
    for call in "${CALLS[@]}"; do
        outcome=$(try "$role" "$DB" "$call")
        if [ "$outcome" != ok ]; then
            CALL_ERRORS=$((CALL_ERRORS + 1))
            info "call failed: $call -> $outcome"
        fi
        after=$(qv "$marker_sql")
        if [ "$after" != "$before" ]; then
            info "attacker code ran during: $call ($before -> $after)"
            before=$after
        fi
    done
    info "${#CALLS[@]} calls as $role, $CALL_ERRORS failed"
}

# index_advice() among the calls plans mallory's texts of part 1 again: keep their effect (seen in
# part 1) out of the later parts
reset_mallory() {
    if [ "$(rolsuper mallory)" = t ]; then
        info "(mallory became superuser again during these calls: part 1's attack; reset)"
        qvp "ALTER ROLE mallory NOSUPERUSER"
    fi
    qv "TRUNCATE mallory.marker"
}

stop_clusters_on_exit "$DIR"
# a worker busy in a long tick ignores the fast shutdown: stop it immediately rather than leave it
stop_immediately() {
    [ -f "$DIR/data/postmaster.pid" ] || return 0
    echo "the server did not stop within 60 s: immediate shutdown" >&2
    as_pg_user "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
}
trap 'status=$?; _e2e_exit "$status"; stop_immediately' EXIT

step "Cluster (PostgreSQL $PG_MAJOR) with dbanalytics and pg_stat_statements preloaded, workers off"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" "dbanalytics.enabled = off" \
    "pg_stat_statements.track_utility = on" "max_connections = 40"
cluster_start "$DIR"
qvp "CREATE ROLE dbowner LOGIN; CREATE ROLE mallory LOGIN; CREATE ROLE eve LOGIN; CREATE ROLE bob LOGIN;
     CREATE ROLE plain LOGIN; CREATE ROLE adm LOGIN; CREATE ROLE rdr LOGIN; CREATE ROLE stats LOGIN"
qvp "CREATE DATABASE $DB OWNER dbowner"
qv "CREATE EXTENSION pg_stat_statements SCHEMA public; CREATE EXTENSION dbanalytics"
qv "GRANT dbanalytics_admin TO adm; GRANT dbanalytics_reader TO rdr, bob, stats; GRANT pg_read_all_stats TO stats;
    CREATE SCHEMA mallory AUTHORIZATION mallory"
snapshot # the counters every later delta starts from
list_calls
check "the analytics calls are listed from the catalog" t "$([ "${#CALLS[@]}" -gt 10 ] && echo t || echo f)"
info "${#CALLS[@]} analytics calls: every view of schema dbanalytics and every function callable with its defaults"

###############################################################################################
step "1. index_advice() and another user's IMMUTABLE / STABLE functions"
sql_as mallory "$DB" "
CREATE TABLE mallory.marker (who name, tag text, at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT USAGE ON SCHEMA mallory TO PUBLIC;
GRANT SELECT, INSERT ON mallory.marker TO PUBLIC;   -- so that the side effect would succeed
CREATE TABLE mallory.t (id integer, v integer);
INSERT INTO mallory.t SELECT g, g % 100 FROM pg_catalog.generate_series(1, 20000) g;
ANALYZE mallory.t;
GRANT SELECT ON mallory.t TO PUBLIC;
-- run by anyone but mallory: leaves a row, and makes mallory superuser if it runs as one
CREATE FUNCTION mallory.escalate(tag text) RETURNS integer LANGUAGE plpgsql VOLATILE AS \$f\$
BEGIN
    IF CURRENT_USER::text OPERATOR(pg_catalog.<>) 'mallory' THEN
        INSERT INTO mallory.marker (who, tag) VALUES (CURRENT_USER, tag);
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            EXECUTE 'ALTER ROLE mallory SUPERUSER';
        END IF;
    END IF;
    RETURN 1;
END
\$f\$;
-- folded by the planner (no arguments)
CREATE FUNCTION mallory.imm() RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
    \$f\$ BEGIN RETURN mallory.escalate('immutable'); END \$f\$;
-- evaluated by the selectivity estimate of a WHERE clause
CREATE FUNCTION mallory.stab() RETURNS integer LANGUAGE plpgsql STABLE AS
    \$f\$ BEGIN RETURN mallory.escalate('stable'); END \$f\$;"
for _ in 1 2 3; do
    sql_as mallory "$DB" "SELECT mallory.imm()" >/dev/null
    sql_as mallory "$DB" "SELECT count(*) FROM mallory.t WHERE v = mallory.stab()" >/dev/null
done
snapshot
check "pre-condition: both of mallory's texts are in dbanalytics.statements" 2 \
    "$(qv "SELECT pg_catalog.count(*) FROM dbanalytics.statements WHERE query IN
             ('SELECT mallory.imm()', 'SELECT count(*) FROM mallory.t WHERE v = mallory.stab()')")"
check "pre-condition: mallory's own runs left no marker row" 0 "$(qv "SELECT pg_catalog.count(*) FROM mallory.marker")"

index_advice_attack() {
    local label=$1 outcome advice
    for caller in postgres adm; do
        if advice=$(sql_as "$caller" "$DB" "SELECT COALESCE(string_agg(table_name || ' (validated: ' || validated || ')', ', '),
                                                          'no advice') FROM dbanalytics.index_advice('1 hour')" 2>&1); then
            outcome=ok
            info "$caller gets: $advice"
        else
            outcome="error: $(printf '%s\n' "$advice" | grep -m 1 ERROR)"
        fi
        check "$label: index_advice('1 hour') called by $caller completes" ok "$outcome"
        check "$label: after $caller's index_advice, mallory is not superuser" f "$(rolsuper mallory)"
        check "$label: after $caller's index_advice, mallory's functions left no side effect" 0 \
            "$(qv "SELECT pg_catalog.count(*) FROM mallory.marker")"
        info "marker rows: $(qv "SELECT pg_catalog.string_agg(who || ':' || tag, ', ') FROM mallory.marker")"
        # the next attempt starts clean whatever happened
        qvp "ALTER ROLE mallory NOSUPERUSER"
        qv "TRUNCATE mallory.marker"
    done
}
index_advice_attack "without HypoPG"
if has_pg_extension hypopg; then
    qv "CREATE EXTENSION hypopg SCHEMA public"
    index_advice_attack "with HypoPG"
else
    skip_part "index_advice() with HypoPG" "HypoPG is not installed for this PostgreSQL"
fi

step "1b. A slow function in another role's statement: planning is bounded, cancels are not swallowed"
sql_as mallory "$DB" "
CREATE FUNCTION mallory.slow() RETURNS integer LANGUAGE plpgsql IMMUTABLE AS \$f\$
BEGIN
    RAISE NOTICE 'mallory.slow: started';
    PERFORM pg_catalog.pg_sleep(3);
    RAISE NOTICE 'mallory.slow: finished';
    RETURN 1;
END
\$f\$;" >/dev/null
sql_as mallory "$DB" "SELECT mallory.slow()" >/dev/null 2>&1
snapshot
# advice_as SETTINGS: index_advice('1 hour') as postgres after SET SETTINGS; its output and
# NOTICEs, and "ERROR: ..." when it failed
advice_as() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d "$DB" \
        -c "$1" -c "SELECT pg_catalog.count(*) FROM dbanalytics.index_advice('1 hour')" 2>&1 || true
}
out=$(advice_as "SET dbanalytics.advice_planning_timeout = 0")
check "without a planning timeout, planning runs mallory.slow() to its end" t \
    "$(printf '%s\n' "$out" | grep -q 'mallory.slow: finished' && echo t || echo f)"
out=$(advice_as "SET dbanalytics.advice_planning_timeout = '300ms'")
info "$(printf '%s\n' "$out" | tr '\n' ' ' | cut -c 1-200)"
check "with advice_planning_timeout = 300ms, planning starts mallory.slow()" t \
    "$(printf '%s\n' "$out" | grep -q 'mallory.slow: started' && echo t || echo f)"
check "... and stops it before its end" 0 "$(printf '%s\n' "$out" | grep -c 'mallory.slow: finished' || true)"
check "... and index_advice() completes without it" 0 "$(printf '%s\n' "$out" | grep -c 'ERROR' || true)"
out=$(advice_as "SET dbanalytics.advice_planning_timeout = 0; SET statement_timeout = '1s'")
check "the caller's statement_timeout ends index_advice() (not swallowed as one statement's failure)" 1 \
    "$(printf '%s\n' "$out" | grep -c 'ERROR:  canceling statement due to statement timeout' || true)"
sql_as mallory "$DB" "CREATE OR REPLACE FUNCTION mallory.slow() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 1'"

###############################################################################################
step "5. Secret-bearing texts: not stored, not shown, not dumped"
qv "CREATE ROLE pwuser LOGIN PASSWORD 'secret-1'"
qv "ALTER ROLE pwuser PASSWORD 'secret-2'"
qv "CREATE FOREIGN DATA WRAPPER sec_w"
qv "CREATE SERVER sec_s FOREIGN DATA WRAPPER sec_w"
qv "CREATE USER MAPPING FOR CURRENT_USER SERVER sec_s OPTIONS (password 'secret-3')"
sql_as mallory "$DB" "ALTER ROLE mallory PASSWORD 'secret-4'"
info "pg_stat_statements holds $(qv "SELECT pg_catalog.count(*) FROM public.pg_stat_statements WHERE query LIKE '%secret-%'") texts with a secret"
# texts to tell who sees what
sql_as mallory "$DB" "SELECT count(*) AS mallory_visible_probe FROM mallory.t" >/dev/null
sql_as adm "$DB" "SELECT 1 AS adm_own_probe" >/dev/null
sql_as rdr "$DB" "SELECT 1 AS rdr_own_probe" >/dev/null
snapshot
check "no secret in dbanalytics.statements" 0 \
    "$(qv "SELECT pg_catalog.count(*) FROM dbanalytics.statements s WHERE s::text LIKE '%secret-%'")"
info "stored texts with a secret: $(qv "SELECT COALESCE(pg_catalog.string_agg(pg_catalog.regexp_replace(
        pg_catalog.left(s.query, 80), 'secret-[0-9]', 'secret-N', 'g'), ' | '), 'none')
        FROM dbanalytics.statements s WHERE s::text LIKE '%secret-%'")"
for role in adm rdr; do
    leaks=0
    readable=$(qv "SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ' ' ORDER BY c.relname)
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'dbanalytics' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
                      AND pg_catalog.has_table_privilege('$role', c.oid, 'SELECT')")
    for relation in $readable; do
        found=$(sql_as "$role" "$DB" "SELECT count(*) FROM $relation t WHERE t::text LIKE '%secret-%'" 2>&1 || true)
        [ "$found" = 0 ] || { info "$role reads a secret in $relation: $found"; leaks=$((leaks + 1)); }
    done
    for call in "dbanalytics.top_queries('1 hour', 'calls', 1000)" "dbanalytics.query_analysis('1 hour')"; do
        found=$(sql_as "$role" "$DB" "SELECT count(*) FROM $call t WHERE t::text LIKE '%secret-%'" 2>&1 || true)
        [ "$found" = 0 ] || { info "$role reads a secret in $call: $found"; leaks=$((leaks + 1)); }
    done
    check "$role ($(echo "$readable" | wc -w) readable relations, top_queries, query_analysis) reads no secret" 0 "$leaks"
done
qv "DROP USER MAPPING FOR CURRENT_USER SERVER sec_s; DROP SERVER sec_s; DROP FOREIGN DATA WRAPPER sec_w"
"$PG_BIN/pg_dump" -h "$DIR" -p "$PORT" -U postgres -d "$DB" >"$DIR/dump.sql"
check "pg_dump of the database holds no secret" 0 "$(grep -c 'secret-' "$DIR/dump.sql" || true)"

step "5b. Who sees which text: exactly pg_stat_statements' rule"
sees() { sql_as "$1" "$DB" "SELECT count(*) FROM dbanalytics.statement_texts WHERE query LIKE '%$2%'"; }
check "adm (dbanalytics_admin) sees its own text" 1 "$(sees adm adm_own_probe)"
check "adm (dbanalytics_admin, no pg_read_all_stats) does not see mallory's text" 0 "$(sees adm mallory_visible_probe)"
check "rdr (dbanalytics_reader) sees its own text" 1 "$(sees rdr rdr_own_probe)"
check "rdr (dbanalytics_reader) does not see mallory's text" 0 "$(sees rdr mallory_visible_probe)"
check "stats (pg_read_all_stats) sees mallory's text" 1 "$(sees stats mallory_visible_probe)"
# the entries whose text dbanalytics stored (texts it chose not to store, or redacted, aside)
qv "CREATE TABLE public.sec_stored AS
        SELECT dbid, userid, queryid, toplevel FROM dbanalytics.statements
         WHERE query IS NOT NULL AND query !~* 'password';
    GRANT SELECT ON public.sec_stored TO PUBLIC"
for role in adm rdr stats bob; do
    check "$role: a stored text is visible in statement_texts exactly when pg_stat_statements shows it to $role" 0 \
        "$(sql_as "$role" "$DB" "
            SELECT count(*) FROM dbanalytics.statement_texts x
              JOIN public.sec_stored s USING (dbid, userid, queryid, toplevel)
              JOIN public.pg_stat_statements p USING (dbid, userid, queryid, toplevel)
             WHERE (x.query IS NOT NULL AND x.query <> '<insufficient privilege>')
                   IS DISTINCT FROM (p.query IS NOT NULL AND p.query <> '<insufficient privilege>')")"
done
qv "DROP TABLE public.sec_stored"

###############################################################################################
step "6. A text whose role OID now belongs to another role (restore into another cluster)"
qv "GRANT dbanalytics_reader TO mallory"
check "pre-condition: mallory sees her own text" 1 "$(sees mallory mallory_visible_probe)"
check "pre-condition: bob does not see mallory's text" 0 "$(sees bob mallory_visible_probe)"
# what a restore does when an unrelated role got mallory's old OID: the stored OID is bob's now,
# the stored role name is still mallory's
qv "UPDATE dbanalytics.statements SET userid = 'bob'::pg_catalog.regrole
     WHERE query LIKE '%mallory_visible_probe%' AND userid = 'mallory'::pg_catalog.regrole"
check "bob, who owns the OID now, does not see mallory's text" 0 "$(sees bob mallory_visible_probe)"
qv "UPDATE dbanalytics.statements SET userid = 'mallory'::pg_catalog.regrole
     WHERE query LIKE '%mallory_visible_probe%' AND userid = 'bob'::pg_catalog.regrole"

###############################################################################################
step "7. explain_analysis(query, analyze => false) runs nothing"
qv "CREATE SCHEMA sec7; CREATE SEQUENCE sec7.folded;
    CREATE FUNCTION sec7.next_id() RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS
        \$f\$ BEGIN RETURN pg_catalog.nextval('sec7.folded'); END \$f\$"
sql_as mallory "$DB" "
CREATE SEQUENCE mallory.planted_seq;
GRANT USAGE, UPDATE ON SEQUENCE mallory.planted_seq TO PUBLIC;
CREATE TABLE mallory.explain_marker (who name, at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT INSERT ON mallory.explain_marker TO PUBLIC;
CREATE FUNCTION mallory.side_effects() RETURNS integer LANGUAGE plpgsql VOLATILE AS \$f\$
BEGIN
    INSERT INTO mallory.explain_marker (who) VALUES (CURRENT_USER);
    PERFORM pg_catalog.nextval('mallory.planted_seq');
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    END IF;
    RETURN 1;
END
\$f\$;
CREATE FUNCTION mallory.planted() RETURNS integer LANGUAGE plpgsql IMMUTABLE AS
    \$f\$ BEGIN RETURN mallory.side_effects(); END \$f\$;"
info "explain_analysis('SELECT sec7.next_id()', false): $(try postgres "$DB" "SELECT dbanalytics.explain_analysis('SELECT sec7.next_id()', false)")"
info "explain_analysis('SELECT mallory.planted()'): $(try postgres "$DB" "SELECT dbanalytics.explain_analysis('SELECT mallory.planted()')")"
check "the IMMUTABLE function's nextval did not advance the sequence" f "$(qv "SELECT is_called FROM sec7.folded")"
check "the planted function did not advance its sequence" f "$(qv "SELECT is_called FROM mallory.planted_seq")"
check "the planted function wrote nothing" 0 "$(qv "SELECT pg_catalog.count(*) FROM mallory.explain_marker")"
check "the planted function did not make mallory superuser" f "$(rolsuper mallory)"
qvp "ALTER ROLE mallory NOSUPERUSER"

step "7b. Every explain_analysis example in README.md and docs/ is valid SQL"
mapfile -d '' -t EXAMPLES < <(python3 - README.md docs/*.md <<'PY'
import re, sys
# statements of ```sql blocks that call explain_analysis, split at ; outside quotes and comments
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        statement, quoted, i = "", False, 0
        while i < len(block):
            c = block[i]
            if not quoted and block.startswith("--", i):
                end = block.find("\n", i)
                i = len(block) if end < 0 else end
                continue
            if c == "'":
                quoted = not quoted
            if c == ";" and not quoted:
                if "explain_analysis(" in statement:
                    sys.stdout.write(path + "\t" + statement.strip() + "\0")
                statement = ""
            else:
                statement += c
            i += 1
        if "explain_analysis(" in statement:
            sys.stdout.write(path + "\t" + statement.strip() + "\0")
PY
)
check "the docs have explain_analysis examples" t "$([ "${#EXAMPLES[@]}" -gt 0 ] && echo t || echo f)"
for example in "${EXAMPLES[@]}"; do
    file=${example%%$'\t'*}
    statement=${example#*$'\t'}
    # PREPARE parses and analyzes the statement without running it
    check "valid SQL in $file: $(echo "$statement" | tr -s ' \n' ' ' | cut -c 1-90)" ok \
        "$(try postgres "$DB" "PREPARE doc_example AS $statement")"
done

###############################################################################################
step "8. An alert rule with a 9,000-character name does not stop the other alerts"
long_name=$(try adm "$DB" "INSERT INTO dbanalytics.alert_rules (rule, metric, comparison, threshold, severity, description)
    VALUES ('sec_long_' || pg_catalog.repeat('n', 9000), 'connections_ratio', '>', 0, 'low', 'a 9,000-character name')")
long_description=$(try adm "$DB" "INSERT INTO dbanalytics.alert_rules (rule, metric, comparison, threshold, severity, description)
    VALUES ('sec_long_description', 'connections_ratio', '>', 0, 'low', pg_catalog.repeat('d', 9000))")
long_threshold=$(try adm "$DB" "INSERT INTO dbanalytics.alert_rules (rule, metric, comparison, threshold, severity, description)
    VALUES ('sec_long_threshold', 'connections_ratio', '>', ('1' || pg_catalog.repeat('0', 9000))::numeric, 'low', 'a 9,001-digit threshold')")
check "a 9,000-character rule name is refused" t "$([[ $long_name == error*alert_rules_rule_check* ]] && echo t || echo f)"
check "a 9,000-character description is refused" t \
    "$([[ $long_description == error*alert_rules_description_check* ]] && echo t || echo f)"
check "a 9,001-digit threshold is refused" t "$([[ $long_threshold == error*alert_rules_threshold_check* ]] && echo t || echo f)"
check "an ordinary rule is accepted" ok "$(try adm "$DB" "INSERT INTO dbanalytics.alert_rules
    (rule, metric, comparison, threshold, severity, description)
    VALUES ('sec_ok', 'connections_ratio', '>', 0, 'low', 'always fires: a client is connected')")"
# A rule that fails when it fires: a superuser lifts the bound on names, so that this rule's
# NOTIFY payload is too long. It must cost that rule only.
qv "ALTER TABLE dbanalytics.alert_rules DROP CONSTRAINT alert_rules_rule_check;
    INSERT INTO dbanalytics.alert_rules (rule, metric, comparison, threshold, severity, description)
    VALUES ('sec_long_' || pg_catalog.repeat('n', 9000), 'connections_ratio', '>', 0, 'low', 'fails when it fires')"
# the session that takes the snapshot LISTENs: it receives the NOTIFYs of its own transaction
# when that commits, and psql prints them after the next command
"$PG_BIN/psql" -X -At -h "$DIR" -p "$PORT" -U postgres -d "$DB" \
    -c "LISTEN dbanalytics_alerts" \
    -c "SELECT 'alerts source: ' || status || ' ' || COALESCE(message, '') FROM dbanalytics.take_snapshot() WHERE source = 'alerts'" \
    -c "SELECT 'done'" >"$DIR/listener.out" 2>&1 || true
info "$(grep -m 1 'alerts source' "$DIR/listener.out" | cut -c 1-200)"
check "the alerts source succeeded" 1 "$(grep -c '^alerts source: ok' "$DIR/listener.out" || true)"
check "the failing rule is named in a WARNING" 1 \
    "$(grep -c 'WARNING:  dbanalytics: alert rule "sec_long_nnn.*could not be evaluated: payload string too long' "$DIR/listener.out" || true)"
check "the failing rule has no alert" 0 \
    "$(qv "SELECT pg_catalog.count(*) FROM dbanalytics.alerts WHERE rule LIKE 'sec\_long\_%'")"
check "the LISTENer received the alert of rule sec_ok" 1 "$(grep -c '"rule": "sec_ok"' "$DIR/listener.out" || true)"
check "rule sec_ok has an open alert" 1 \
    "$(qv "SELECT pg_catalog.count(*) FROM dbanalytics.alerts WHERE rule = 'sec_ok' AND resolved_at IS NULL")"
check "every payload received is under 8000 bytes" 0 \
    "$(grep 'Asynchronous notification' "$DIR/listener.out" | awk 'length($0) >= 8000' | wc -l)"
qv "DELETE FROM dbanalytics.alert_rules WHERE rule LIKE 'sec\_%';
    ALTER TABLE dbanalytics.alert_rules
        ADD CONSTRAINT alert_rules_rule_check CHECK (pg_catalog.length(rule) BETWEEN 1 AND 63)"

###############################################################################################
step "3. Attacker operators in public (CREATE granted to PUBLIC) and every analytics call"
qv "GRANT CREATE ON SCHEMA public TO PUBLIC"
sql_as eve "$DB" "
CREATE TABLE public.eve_marker (who name, tag text);
GRANT INSERT ON public.eve_marker TO PUBLIC;
CREATE FUNCTION public.eve_escalate(tag text) RETURNS void LANGUAGE plpgsql VOLATILE AS \$f\$
BEGIN
    IF CURRENT_USER::text OPERATOR(pg_catalog.<>) 'eve' THEN
        INSERT INTO public.eve_marker VALUES (CURRENT_USER, tag);
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
            EXECUTE 'ALTER ROLE eve SUPERUSER';
        END IF;
    END IF;
END
\$f\$;
-- an exact-match operator in public for every (operator, left, right) that pg_catalog serves
-- only through an implicit cast, e.g. *(numeric, integer), ||(text, interval), =(bigint, numeric):
-- it wins over pg_catalog's, escalates, and returns pg_catalog's result so that nothing fails
DO \$gen\$
DECLARE
    types text[] := ARRAY['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'text', 'name',
                          '\"char\"', 'interval', 'timestamptz', 'timestamp', 'date', 'oid', 'boolean', 'jsonb', 'inet'];
    op text; l text; r text; result text; n integer := 0;
BEGIN
    FOREACH op IN ARRAY ARRAY['+', '-', '*', '/', '%', '=', '<>', '<', '>', '<=', '>=', '||', '~~'] LOOP
        FOREACH l IN ARRAY types LOOP
            FOREACH r IN ARRAY types LOOP
                CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_operator o
                                       WHERE o.oprname OPERATOR(pg_catalog.=) op
                                         AND o.oprleft OPERATOR(pg_catalog.=) l::pg_catalog.regtype::pg_catalog.oid
                                         AND o.oprright OPERATOR(pg_catalog.=) r::pg_catalog.regtype::pg_catalog.oid);
                BEGIN
                    EXECUTE pg_catalog.format('SELECT pg_catalog.pg_typeof(NULL::%s OPERATOR(pg_catalog.%s) NULL::%s)::text', l, op, r)
                       INTO result;
                EXCEPTION WHEN OTHERS THEN
                    CONTINUE;
                END;
                n := n OPERATOR(pg_catalog.+) 1;
                EXECUTE pg_catalog.format(
                    'CREATE FUNCTION public.eve_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS \$b\$ BEGIN '
                    'PERFORM public.eve_escalate(%L); RETURN \$1 OPERATOR(pg_catalog.%s) \$2; END \$b\$',
                    n, l, r, result, pg_catalog.format('%s(%s, %s)', op, l, r), op);
                EXECUTE pg_catalog.format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.eve_op_%s)',
                                          op, l, r, n);
            END LOOP;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'eve created % operators', n;
END
\$gen\$;"
info "eve's operators in public: $(qv "SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator WHERE oprnamespace = 'public'::pg_catalog.regnamespace")"
some_activity
snapshot
call_everything postgres "SELECT pg_catalog.count(*) FROM public.eve_marker"
reset_mallory
info "operators of eve run by others: $(qv "SELECT pg_catalog.string_agg(DISTINCT tag, ' ') FROM public.eve_marker")"
check "every analytics call succeeds with eve's operators around" 0 "$CALL_ERRORS"
check "eve is not superuser" f "$(rolsuper eve)"
check "no operator of eve ran as another role" 0 "$(qv "SELECT pg_catalog.count(*) FROM public.eve_marker")"
qvp "ALTER ROLE eve NOSUPERUSER"
qv "DROP OWNED BY eve CASCADE; REVOKE CREATE ON SCHEMA public FROM PUBLIC"

###############################################################################################
step "9. Hostile names: schemas, tables, columns, roles, databases, application names"
HS=$'Hostile "S"\né'          # schema
HT=$'order "T"\nlé'           # table
HW=$'Wé"ird'                  # a column, next to "user" and "order"
HR=$'Rôle "q"\nuser'          # role
HD=$'DB "q"\né order'         # database
HA=$'app \'"; DROP TABLE x; --'  # application_name
qv "CREATE ROLE $(ident "$HR") LOGIN; GRANT dbanalytics_reader TO $(ident "$HR");
    CREATE SCHEMA $(ident "$HS") AUTHORIZATION $(ident "$HR")"
qvp "CREATE DATABASE $(ident "$HD") OWNER $(ident "$HR")"
TABLE_SQL="$(ident "$HS").$(ident "$HT")"
sql_as "$HR" "$DB" "
CREATE TABLE $TABLE_SQL (id integer, \"user\" text, \"order\" integer, $(ident "$HW") text);
INSERT INTO $TABLE_SQL SELECT g, 'u' || g % 1000, g % 500, 'w' || g % 300 FROM pg_catalog.generate_series(1, 20000) g;
ANALYZE $TABLE_SQL;"
for _ in 1 2 3 4 5; do
    PGAPPNAME=$HA sql_as "$HR" "$DB" "SELECT count(*) FROM $TABLE_SQL
        WHERE \"user\" = 'u7' AND \"order\" = 7 AND $(ident "$HW") = 'w7'" >/dev/null
done
sql_as "$HR" "$HD" "CREATE TABLE \"user\" (\"order\" integer); INSERT INTO \"user\" SELECT pg_catalog.generate_series(1, 100)"
for _ in 1 2 3; do PGAPPNAME=$HA sql_as "$HR" "$HD" "SELECT count(*) FROM \"user\" WHERE \"order\" = 1" >/dev/null; done
# a session of the hostile role, database and application while a sample is taken
PGAPPNAME=$HA sql_as "$HR" "$HD" "SELECT pg_sleep(60)" >/dev/null 2>&1 &
wait_for "the hostile session is active" 20 holds \
    "EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE usename = $(literal "$HR") AND state = 'active')"
qv "SELECT pg_catalog.count(*) FROM dbanalytics.take_sample()" >/dev/null
snapshot
qv "SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
     WHERE usename = $(literal "$HR")" >/dev/null
check "the sample recorded the hostile role, database and application" 1 \
    "$(qv "SELECT pg_catalog.count(DISTINCT (usename, datname, application_name)) FROM dbanalytics.activity_samples
            WHERE usename = $(literal "$HR") AND datname = $(literal "$HD") AND application_name = $(literal "$HA")")"
check "the hostile role's text is stored with its role and database names" 1 \
    "$(qv "SELECT pg_catalog.count(*) FROM dbanalytics.statements
            WHERE usename = $(literal "$HR") AND datname = $(literal "$HD") AND query LIKE '%\"order\" = \$1%'")"
call_everything postgres "SELECT 0"
reset_mallory
check "every analytics call succeeds with hostile names in the history" 0 "$CALL_ERRORS"
EXPECTED_DDL="CREATE INDEX CONCURRENTLY ON $TABLE_SQL (\"user\", \"order\", $(ident "$HW"));"
check "index_advice() gives exactly the quoted DDL for the hostile table" "1|1" \
    "$(qv "SELECT pg_catalog.count(*) FILTER (WHERE ddl = $(literal "$EXPECTED_DDL")) || '|' || pg_catalog.count(*)
             FROM dbanalytics.index_advice('1 hour') WHERE table_name LIKE 'Hostile%'")"
info "its DDL: $(qv "SELECT pg_catalog.string_agg(pg_catalog.replace(ddl, E'\n', '\\n'), ' | ')
                      FROM dbanalytics.index_advice('1 hour') WHERE table_name LIKE 'Hostile%'")"
check "that DDL runs and indexes the three columns" "ok user,order,$HW" \
    "$(try postgres "$DB" "$EXPECTED_DDL") $(qv "SELECT pg_catalog.string_agg(a.attname, ',' ORDER BY k.i)
         FROM pg_catalog.pg_index x, pg_catalog.unnest(x.indkey) WITH ORDINALITY k(attnum, i), pg_catalog.pg_attribute a
        WHERE x.indrelid = $(literal "$TABLE_SQL")::pg_catalog.regclass AND a.attrelid = x.indrelid AND a.attnum = k.attnum")"

step "9b. ACL walk over every object in schema dbanalytics"
# letters as in aclitem: r SELECT, a INSERT, w UPDATE, d DELETE, D TRUNCATE, x REFERENCES,
# t TRIGGER, X EXECUTE, U USAGE, C CREATE
privileges_markdown() {
    qv "
WITH roles(k, r) AS (VALUES (1, 'plain'), (2, 'dbanalytics_reader'), (3, 'dbanalytics_admin'),
                            (4, (SELECT e.extowner::pg_catalog.regrole::text FROM pg_catalog.pg_extension e
                                  WHERE e.extname = 'dbanalytics'))),
ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'dbanalytics'),
objects(kind, name, privs) AS (
    SELECT 'schema', 'dbanalytics', (SELECT pg_catalog.array_agg(
               CASE WHEN pg_catalog.has_schema_privilege(r, 'dbanalytics', 'USAGE') THEN 'U' ELSE '' END ||
               CASE WHEN pg_catalog.has_schema_privilege(r, 'dbanalytics', 'CREATE') THEN 'C' ELSE '' END ORDER BY k) FROM roles)
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' ELSE 'relation ' || c.relkind::text END,
           c.relname::text,
           (SELECT pg_catalog.array_agg(CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN
                   CASE WHEN pg_catalog.has_sequence_privilege(r, c.oid, 'SELECT') THEN 'r' ELSE '' END ||
                   CASE WHEN pg_catalog.has_sequence_privilege(r, c.oid, 'USAGE') THEN 'U' ELSE '' END ||
                   CASE WHEN pg_catalog.has_sequence_privilege(r, c.oid, 'UPDATE') THEN 'w' ELSE '' END
               ELSE (SELECT pg_catalog.string_agg(CASE WHEN pg_catalog.has_table_privilege(r, c.oid, p) THEN l ELSE '' END, '' ORDER BY o)
                       FROM (VALUES (1, 'SELECT', 'r'), (2, 'INSERT', 'a'), (3, 'UPDATE', 'w'), (4, 'DELETE', 'd'),
                                    (5, 'TRUNCATE', 'D'), (6, 'REFERENCES', 'x'), (7, 'TRIGGER', 't')) v(o, p, l))
               END ORDER BY k) FROM roles)
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
           p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
           (SELECT pg_catalog.array_agg(CASE WHEN pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE') THEN 'X' ELSE '' END
                                        ORDER BY k) FROM roles)
      FROM pg_catalog.pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'type', t.typname::text,
           (SELECT pg_catalog.array_agg(CASE WHEN pg_catalog.has_type_privilege(r, t.oid, 'USAGE') THEN 'U' ELSE '' END
                                        ORDER BY k) FROM roles)
      FROM pg_catalog.pg_type t
     WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typelem OPERATOR(pg_catalog.=) 0
       AND (t.typrelid OPERATOR(pg_catalog.=) 0
            OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) OPERATOR(pg_catalog.=) 'c')
)
SELECT pg_catalog.format('| %s | \`%s\` | %s |', kind, name,
                         pg_catalog.array_to_string(ARRAY(SELECT COALESCE(NULLIF(x, ''), '–') FROM pg_catalog.unnest(privs) x), ' | '))
  FROM objects
 ORDER BY CASE kind WHEN 'schema' THEN 0 WHEN 'partitioned table' THEN 1 WHEN 'table' THEN 2 WHEN 'view' THEN 3
                    WHEN 'materialized view' THEN 4 WHEN 'sequence' THEN 5 WHEN 'function' THEN 6 ELSE 7 END,
          kind, name COLLATE \"C\""
}
{
    cat <<'EOF'
# dbanalytics: privileges of every object (generated)

Generated from the catalog of a fresh install by `tests/e2e_security.sh`, which regenerates it at
every run and fails when the catalog no longer matches: an object added, removed or granted
differently must be a decision recorded here. After such a change, run
`UPDATE_PRIVILEGES=1 tests/e2e_security.sh` (or copy `target/e2e-security-pg<major>/security-privileges.md`
here), review the diff, and explain the decision in [security.md](security.md).

Each cell lists what the role may do, directly or through its memberships (`has_*_privilege()`):
`r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE, `D` TRUNCATE, `x` REFERENCES, `t` TRIGGER (tables
and views; for sequences `r` SELECT, `U` USAGE, `w` UPDATE), `X` EXECUTE (functions), `U` USAGE,
`C` CREATE (schema, types); `–` nothing. *plain* is a login role with no grant (what PUBLIC
gets); *owner* is the role that ran `CREATE EXTENSION` (a superuser: everything). Daily
partitions, created at run time, are not listed: they have no grants and are read through their
parent.

| kind | object | plain | dbanalytics_reader | dbanalytics_admin | owner |
|---|---|---|---|---|---|
EOF
    privileges_markdown
} >"$DIR/security-privileges.md"
if [ "${UPDATE_PRIVILEGES:-}" = 1 ]; then
    cp "$DIR/security-privileges.md" "$PRIVILEGES_DOC"
    info "wrote $PRIVILEGES_DOC ($(grep -c '^| [a-z]' "$PRIVILEGES_DOC") objects)"
elif diff -u "$PRIVILEGES_DOC" "$DIR/security-privileges.md" >"$DIR/security-privileges.diff"; then
    info "ok: $PRIVILEGES_DOC matches the catalog ($(grep -c '^| [a-z]' "$PRIVILEGES_DOC") objects)"
else
    cat "$DIR/security-privileges.diff" >&2
    check "$PRIVILEGES_DOC matches the catalog (new or changed objects above need a decision: review them, then run UPDATE_PRIVILEGES=1 tests/e2e_security.sh and commit the file)" same different
fi
check "plain (PUBLIC) has no privilege on any relation, function or on the schema" 0 \
    "$(grep -E '^\| (schema|table|partitioned table|view|materialized view|sequence|function|procedure) ' "$DIR/security-privileges.md" \
        | awk -F'|' '$4 !~ /–/' | wc -l)"
check "only the owner may write, truncate, reference or trigger on tables, except the admin's INSERT/UPDATE/DELETE on alert_rules" "" \
    "$(grep -E '^\| (table|partitioned table|view) ' "$DIR/security-privileges.md" \
        | awk -F'|' '{ for (i = 4; i <= 6; i++) { c = $i; gsub(/[ r–]/, "", c); if (c != "" && !($3 ~ /`alert_rules`/ && i == 6 && c == "awd")) print $3 ": " c } }')"
check "only the owner reads the raw texts (table statements)" "| table | \`statements\` | – | – | – |" \
    "$(grep -E '^\| table \| `statements` ' "$DIR/security-privileges.md" | cut -d'|' -f1-6 | sed 's/ *$//;s/$/ |/')"
# an SQL function may go without (to be inlined) if every name in it is qualified: pgspot checks
# that in part 10. An aggregate has no settings of its own, and its transition and final
# functions resolve no name and run once per row, where a SET clause would save and restore the
# settings around every call (docs/security.md, pgspot); they must take the internal state
check "every function of schema dbanalytics but SQL ones and aggregates' pins search_path = pg_catalog, ..., pg_temp" "" \
    "$(qv "SELECT pg_catalog.string_agg(p.oid::pg_catalog.regprocedure::text, ', ' ORDER BY 1)
             FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'dbanalytics'::pg_catalog.regnamespace AND p.prokind <> 'a'
              AND NOT (p.proargtypes[0] = 'internal'::pg_catalog.regtype
                       AND EXISTS (SELECT FROM pg_catalog.pg_aggregate a
                                    WHERE p.oid IN (a.aggtransfn, a.aggfinalfn)))
              AND p.prolang <> (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname = 'sql')
              AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
                               WHERE c LIKE 'search\_path=pg\_catalog%' AND c LIKE '%pg\_temp')")"
check "every SECURITY DEFINER function pins search_path" "" \
    "$(qv "SELECT pg_catalog.string_agg(p.oid::pg_catalog.regprocedure::text, ', ')
             FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'dbanalytics'::pg_catalog.regnamespace AND p.prosecdef
              AND NOT ('search_path=pg_catalog, pg_temp' = ANY (COALESCE(p.proconfig, '{}')))")"

###############################################################################################
step "4. A schema dbanalytics created in advance by a database owner"
qvp "CREATE DATABASE precreated OWNER dbowner"
TOMORROW=$(qv "SELECT pg_catalog.to_char((pg_catalog.now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD')")
sql_as dbowner precreated "CREATE SCHEMA dbanalytics;
    CREATE TABLE dbanalytics.activity_raw_p$TOMORROW (sampled_at timestamptz, pid integer, key_id integer,
        query_id bigint, xact_ms integer, query_ms integer, state_ms integer, backend_xid_age integer)"
create_extension_in_precreated() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h "$DIR" -p "$PORT" -U postgres -d precreated \
        -c "CREATE EXTENSION dbanalytics" 2>&1 && echo "INSTALLED"
}
out=$(create_extension_in_precreated || true)
info "$(printf '%s' "$out" | grep -E '^(ERROR|HINT|INSTALLED)' | tr '\n' ' ')"
check "CREATE EXTENSION into the owner's schema (holding a planted partition) fails" 1 "$(printf '%s\n' "$out" | grep -c '^ERROR:' || true)"
check "the error has a HINT" 1 "$(printf '%s\n' "$out" | sed -n '/^ERROR:/,$p' | grep -c '^HINT:' || true)"
check "nothing is left behind: no extension, only the planted table in the schema, still the owner's" "0|1|0|dbowner" \
    "$(PGOPTIONS="-c search_path=pg_catalog" sql_as postgres precreated "
        SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'dbanalytics') || '|' ||
               (SELECT count(*) FROM pg_class WHERE relnamespace = 'dbanalytics'::regnamespace) || '|' ||
               (SELECT count(*) FROM pg_proc WHERE pronamespace = 'dbanalytics'::regnamespace) || '|' ||
               (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'dbanalytics')")"
PGOPTIONS="-c search_path=pg_catalog" sql_as postgres precreated "DROP EXTENSION IF EXISTS dbanalytics CASCADE" 2>/dev/null
sql_as dbowner precreated "DROP TABLE dbanalytics.activity_raw_p$TOMORROW"
out=$(create_extension_in_precreated || true)
check "CREATE EXTENSION into the owner's empty schema fails too" 1 "$(printf '%s\n' "$out" | grep -c '^ERROR:' || true)"

step "4b. A table planted where a partition will be created"
qvp "CREATE DATABASE planted"
PGOPTIONS="-c search_path=pg_catalog" sql_as postgres planted "CREATE EXTENSION dbanalytics" >/dev/null 2>&1
DAY2=$(qv "SELECT pg_catalog.to_char((pg_catalog.now() AT TIME ZONE 'UTC')::date + 2, 'YYYYMMDD')")
PLANTED=dbanalytics.activity_raw_p$DAY2
PGOPTIONS="-c search_path=pg_catalog" sql_as postgres planted "
    CREATE TABLE $PLANTED (LIKE dbanalytics.activity_raw); ALTER TABLE $PLANTED OWNER TO mallory"
run=$(PGOPTIONS="-c search_path=pg_catalog" sql_as postgres planted \
    "SELECT status || ' ' || COALESCE(message, '') FROM dbanalytics.take_snapshot() WHERE source = 'partitions'")
state=$(PGOPTIONS="-c search_path=pg_catalog" sql_as postgres planted \
    "SELECT relispartition || ' ' || relowner::regrole::text FROM pg_class WHERE oid = '$PLANTED'::regclass")
info "partitions source: $run; $PLANTED: relispartition, owner = $state"
check "the planted table is refused (an error names it) or replaced by a real partition of the extension's owner" t \
    "$( { [[ $run == error*activity_raw_p$DAY2* ]] && [ "$state" = "false mallory" ]; } \
        || { [[ $state == true* ]] && [ "$state" != "true mallory" ]; } && echo t || echo f)"

step "4c. Roles dbanalytics_reader / dbanalytics_admin that someone else can log in as or grant"
qvp "CREATE DATABASE roles_check"
install_roles_check() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d roles_check \
        -c "CREATE EXTENSION dbanalytics" 2>&1 && echo "INSTALLED"
}
# what a non-superuser with CREATEROLE who made the role first holds on PostgreSQL 16+
qvp "GRANT dbanalytics_admin TO mallory WITH ADMIN OPTION"
out=$(install_roles_check || true)
info "$(printf '%s' "$out" | grep -E '^(ERROR|HINT|INSTALLED)' | tr '\n' ' ' | cut -c 1-300)"
check "CREATE EXTENSION refuses a dbanalytics_admin that mallory may grant, naming mallory" 1 \
    "$(printf '%s\n' "$out" | grep -c '^ERROR:  dbanalytics: role "dbanalytics_admin" already exists and is not safe to use: these roles may grant it: mallory$' || true)"
check "the refusal has a HINT" 1 "$(printf '%s\n' "$out" | grep -c '^HINT:' || true)"
qvp "REVOKE ADMIN OPTION FOR dbanalytics_admin FROM mallory; REVOKE dbanalytics_admin FROM mallory;
     ALTER ROLE dbanalytics_reader LOGIN"
out=$(install_roles_check || true)
check "CREATE EXTENSION refuses a dbanalytics_reader that can log in" 1 \
    "$(printf '%s\n' "$out" | grep -c '^ERROR:  dbanalytics: role "dbanalytics_reader" already exists and is not safe to use: it can log in$' || true)"
qvp "ALTER ROLE dbanalytics_reader NOLOGIN"
check "with both roles made safe again, CREATE EXTENSION succeeds" INSTALLED "$(install_roles_check | tail -n 1)"
qvp "DROP DATABASE roles_check"

###############################################################################################
step "2. A database owner's search_path for the workers"
sql_as dbowner "$DB" "
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.marker (who name, tag text, at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT INSERT ON evil.marker TO PUBLIC;
-- cheap after its first call in a transaction: the operators below take part in catalog joins
CREATE FUNCTION evil.escalate(tag text) RETURNS void LANGUAGE plpgsql VOLATILE AS \$f\$
BEGIN
    IF CURRENT_USER::text OPERATOR(pg_catalog.<>) 'dbowner'
       AND COALESCE(pg_catalog.current_setting('evil.tried', true), '') OPERATOR(pg_catalog.<>) 'on' THEN
        PERFORM pg_catalog.set_config('evil.tried', 'on', true);
        BEGIN
            INSERT INTO evil.marker (who, tag) VALUES (CURRENT_USER, tag);
            IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
                EXECUTE 'ALTER ROLE dbowner SUPERUSER';
            END IF;
        EXCEPTION WHEN OTHERS THEN NULL;  -- never stop the caller: the attack must stay unnoticed
        END;
    END IF;
END
\$f\$;
CREATE FUNCTION evil.eq(name, name) RETURNS boolean LANGUAGE plpgsql AS
    \$f\$ BEGIN PERFORM evil.escalate('=(name, name)'); RETURN \$1 OPERATOR(pg_catalog.=) \$2; END \$f\$;
CREATE FUNCTION evil.eq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS
    \$f\$ BEGIN PERFORM evil.escalate('=(oid, oid)'); RETURN \$1 OPERATOR(pg_catalog.=) \$2; END \$f\$;
CREATE FUNCTION evil.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
    \$f\$ BEGIN PERFORM evil.escalate('=(text, text)'); RETURN \$1 OPERATOR(pg_catalog.=) \$2; END \$f\$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.eq);
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.eq);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq);
ALTER DATABASE $DB SET search_path = evil, pg_catalog, public;
-- and make every session of the database, the workers' too, act as the owner
ALTER DATABASE $DB SET role = dbowner;"
qvp "ALTER SYSTEM SET dbanalytics.enabled = on"
qvp "ALTER SYSTEM SET dbanalytics.sample_interval = '1s'"
qvp "ALTER SYSTEM SET dbanalytics.snapshot_interval = '5s'"
cluster_stop "$DIR"
stop_immediately
cluster_start "$DIR"
RESTARTED=$(qvp "SELECT pg_catalog.now()")
wait_for "the sampler ticked 3 times and the collector took 2 snapshots" 120 holds \
    "(SELECT count(*) FROM dbanalytics.collector_runs WHERE worker = 'sampler' AND source = 'activity' AND status = 'ok' AND started_at > '$RESTARTED') >= 3
     AND (SELECT count(*) FROM dbanalytics.collector_runs WHERE worker = 'collector' AND source = 'statements' AND status = 'ok' AND started_at > '$RESTARTED') >= 2" \
    || check "the workers ran (as themselves, not as the database's role setting) after the restart" ran "did not run"
check "no worker run failed after the restart" 0 \
    "$(qv "SELECT pg_catalog.count(*) FROM dbanalytics.collector_runs WHERE status = 'error' AND started_at > '$RESTARTED'")"
check "dbowner is not superuser" f "$(rolsuper dbowner)"
check "no operator of dbowner ran as another role" 0 "$(qv "SELECT pg_catalog.count(*) FROM evil.marker")"
info "evil.marker: $(qv "SELECT pg_catalog.string_agg(DISTINCT who || ' ' || tag, ', ') FROM evil.marker")"

###############################################################################################
step "10. pgspot over the install script and every upgrade script"
if tests/pgspot.sh >"$DIR/pgspot.out" 2>&1; then pgspot_verdict=ok; else pgspot_verdict=failed; fi
sed 's/^/    /' "$DIR/pgspot.out"
check "pgspot reports no error" ok "$pgspot_verdict"

finish_checks "e2e security (PostgreSQL $PG_MAJOR)"
