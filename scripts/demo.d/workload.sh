# The demo's workload, sourced by scripts/demo and tests/e2e_report.sh (after tests/lib.sh):
# pgbench's TPC-B-like transactions alongside what a DBA comes to dbanalytics for: a query that
# misses an index, an N+1 loop, a lock hotspot and a session left idle in a transaction. Each
# part runs under an application_name of its own (demo-tpcb, demo-orders, demo-n-plus-one,
# demo-hotspot, demo-idle), so the pool and query analytics tell them apart.

# demo_workload_setup DIR PORT DB: pgbench's tables (scale 10) and the demo's own
demo_workload_setup() {
    local dir=$1 port=$2 db=$3
    as_pg_user "$PG_BIN/pgbench" -h "$dir" -p "$port" -U postgres -i -s 10 -q "$db" 2>&1 | tail -n 1
    psql_at "$dir" "$port" "$db" "
        CREATE TABLE demo_customers (id integer PRIMARY KEY, name text NOT NULL);
        INSERT INTO demo_customers SELECT g, 'customer ' || g FROM generate_series(1, 20000) g;
        -- orders by customer, with no index on customer_id: the query that misses an index
        CREATE TABLE demo_orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                  customer_id integer NOT NULL, amount numeric NOT NULL,
                                  created_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO demo_orders (customer_id, amount)
             SELECT 1 + (g::bigint * 7919) % 20000, (g % 1000) / 10.0 FROM generate_series(1, 300000) g;
        -- an index no statement uses
        CREATE INDEX demo_orders_created_at ON demo_orders (created_at);
        -- the lock hotspot: every transaction of demo-hotspot updates the same row
        CREATE TABLE demo_counters (id integer PRIMARY KEY, n bigint NOT NULL);
        INSERT INTO demo_counters SELECT g, 0 FROM generate_series(1, 10) g;
        ANALYZE" >/dev/null
}

# demo_workload DIR PORT DB SECONDS: every part at once for SECONDS; pgbench's progress every 10 s
demo_workload() {
    local dir=$1 port=$2 db=$3 seconds=$4 scripts
    scripts=$(mktemp -d)
    chmod 755 "$scripts"
    {
        echo '\set c random(1, 20000)'
        echo 'SELECT count(*), sum(amount) FROM demo_orders WHERE customer_id = :c;'
    } >"$scripts/orders.sql"
    {
        # one query for 20 keys, then one lookup per key: the N+1 loop
        echo '\set s random(1, 19980)'
        echo 'SELECT id FROM demo_customers WHERE id >= :s ORDER BY id LIMIT 20;'
        for i in $(seq 0 19); do
            echo "\\set k :s + $i"
            echo 'SELECT name FROM demo_customers WHERE id = :k;'
        done
    } >"$scripts/n_plus_one.sql"
    {
        echo 'BEGIN;'
        echo 'UPDATE demo_counters SET n = n + 1 WHERE id = 1;'
        echo 'SELECT pg_sleep(0.05);'
        echo 'COMMIT;'
    } >"$scripts/hotspot.sql"
    chmod 644 "$scripts"/*.sql
    local bench=("$PG_BIN/pgbench" -h "$dir" -p "$port" -U postgres -T "$seconds")
    local pids=()
    as_pg_user env PGAPPNAME=demo-orders "${bench[@]}" -n -c 1 -f "$scripts/orders.sql" "$db" >/dev/null 2>&1 &
    pids+=($!)
    as_pg_user env PGAPPNAME=demo-n-plus-one "${bench[@]}" -n -c 1 -f "$scripts/n_plus_one.sql" "$db" >/dev/null 2>&1 &
    pids+=($!)
    as_pg_user env PGAPPNAME=demo-hotspot "${bench[@]}" -n -c 3 -f "$scripts/hotspot.sql" "$db" >/dev/null 2>&1 &
    pids+=($!)
    # a transaction opened and left idle for the whole run
    { echo 'BEGIN; SELECT count(*) FROM demo_counters;'; sleep "$seconds"; echo 'COMMIT;'; } \
        | as_pg_user env PGAPPNAME=demo-idle "$PG_BIN/psql" -X -q -h "$dir" -p "$port" -U postgres -d "$db" >/dev/null 2>&1 &
    pids+=($!)
    as_pg_user env PGAPPNAME=demo-tpcb "${bench[@]}" -c 4 -j 2 -P 10 "$db" 2>&1 \
        | grep --line-buffered -E '^progress|^tps|^number of transactions actually' | sed -u 's/^/    /'
    wait "${pids[@]}" || true
    rm -rf "$scripts"
}
