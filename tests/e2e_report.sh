#!/usr/bin/env bash
# End-to-end test of report_html() (docs/report.md) on a cluster running the demo's workload
# (scripts/demo.d/workload.sh: pgbench, a query missing an index, an N+1 loop, a lock hotspot, an
# idle-in-transaction session) plus a statement whose text and a session whose application_name
# are HTML (a </script>, an <img onerror>). The report is rendered by headless Chromium (Debian
# chromium, installed when missing): a screenshot is kept, the DOM must have every section, an
# SVG chart with data points for each time series of the workload, the hostile texts as text
# (no script or img element, no on* attribute, nothing fetched), and the figures of the SQL
# functions it is built from, in the same snapshot. A dbanalytics_reader gets the report without
# the query texts statement_texts hides from it.
# Expects dbanalytics to be installed into the PostgreSQL in PG_CONFIG (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh
source scripts/demo.d/workload.sh

DIR=$PWD/target/e2e-report-pg$PG_MAJOR
PORT=5475
DB=reportdb
WINDOW='15 minutes'
HOSTILE_QUERY='</script><img src=x onerror=alert(1)>'
HOSTILE_APP='<img src=x onerror=alert(2)>'

q() { psql_at "$DIR" "$PORT" "$DB" "$1"; }
holds() { [ "$(q "SELECT ($1)")" = t ]; }

stop_clusters_on_exit "$DIR"
ensure_command chromium chromium

step "PostgreSQL $PG_MAJOR: a cluster sampling every second, a snapshot every 5 s"
cluster_init "$DIR" "$PORT" \
    "shared_preload_libraries = 'pg_stat_statements,dbanalytics'" \
    "dbanalytics.database = '$DB'" \
    "dbanalytics.sample_interval = '1s'" \
    "dbanalytics.snapshot_interval = '5s'" \
    "max_connections = 50"
cluster_start "$DIR"
psql_at "$DIR" "$PORT" postgres "CREATE DATABASE $DB"
q "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION dbanalytics"
q "CREATE ROLE report_reader LOGIN IN ROLE dbanalytics_reader"
demo_workload_setup "$DIR" "$PORT" "$DB"

step "Workload: the demo's for 70 s (two whole minutes at least), and HTML in a query text and an application_name"
# 5 executions of 0.6 s: slower on average than slow_query_threshold (500 ms), so the statement
# is in the top queries, the latency table and the slow queries
(for _ in 1 2 3 4 5; do
    PGAPPNAME=$HOSTILE_APP psql_at "$DIR" "$PORT" "$DB" "SELECT pg_sleep(0.6) AS \"$HOSTILE_QUERY\"" >/dev/null
done) &
HOSTILE=$!
demo_workload "$DIR" "$PORT" "$DB" 70
wait "$HOSTILE"
wait_for "latency histograms and a pool minute after the workload" 120 \
    holds "EXISTS (SELECT FROM dbanalytics.database_latency)
           AND (SELECT max(minute) FROM dbanalytics.pool_minute) >= date_trunc('minute', now()) - interval '1 minute'"

step "report_html('$WINDOW', 50) and the SQL it must agree with, in one snapshot"
# one REPEATABLE READ transaction: the report and the functions it is compared with see the
# same rows and the same now()
q "BEGIN ISOLATION LEVEL REPEATABLE READ;
   CREATE TABLE r AS SELECT dbanalytics.report_html('$WINDOW', 50) AS html;
   CREATE TABLE expected AS SELECT
       dbanalytics.health_score('$WINDOW') ->> 'overall_score' AS score,
       (SELECT calls FROM dbanalytics.top_queries('$WINDOW', 'total_time', 1)) AS top_calls,
       (SELECT count(*) FROM dbanalytics.collector_status) AS collector_rows;
   COMMIT" >/dev/null
q "SELECT html FROM r" >"$DIR/report.html"
"$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U report_reader -d "$DB" \
    -c "SELECT dbanalytics.report_html('$WINDOW', 50)" >"$DIR/report-reader.html"
info "report: $(wc -c <"$DIR/report.html") bytes; the reader's: $(wc -c <"$DIR/report-reader.html") bytes"

step "Headless Chromium renders it"
# --dump-dom prints the DOM after the page loaded (and after any script would have run)
render() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$DIR/chromium-profile" "$@" 2>>"$DIR/chromium.log"
}
render --dump-dom "file://$DIR/report.html" >"$DIR/dom.html"
render --window-size=1280,6000 --screenshot="$DIR/report.png" "file://$DIR/report.html" >/dev/null
check "a screenshot was taken ($DIR/report.png)" t "$([ -s "$DIR/report.png" ] && echo t || echo f)"
info "chromium's DOM: $(wc -c <"$DIR/dom.html") bytes"

# what the DOM holds: sections, charts with their series, hostile elements, texts
python3 - "$DIR/dom.html" >"$DIR/dom-facts.txt" <<'EOF'
import sys
from html.parser import HTMLParser

class Facts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.charts, self.bad, self.text, self.chart = [], {}, [], [], None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "figure" and a.get("class") == "chart":
            self.chart = a["id"]
            self.charts[self.chart] = []
        if tag in ("polyline", "polygon") and a.get("class") == "series":
            pairs = len(a["points"].split())
            if tag == "polygon":
                pairs //= 2  # the upper edge, then the lower one back
            self.charts[self.chart].append((a["data-series"], int(a["data-points"]), pairs))
        if tag in ("script", "img", "iframe", "object", "embed", "link"):
            self.bad.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (name in ("src", "href") and value and not value.startswith("#")):
                self.bad.append(f"{tag}[{name}]")
    def handle_data(self, data):
        self.text.append(data)

f = Facts()
f.feed(open(sys.argv[1]).read())
print("sections", " ".join(f.sections))
print("forbidden", " ".join(f.bad))
for chart, series in f.charts.items():
    # a time series has data points when it draws at least two, as many as it says it has
    # every series draws as many points as it says it has, at least one; a line needs two
    drawn = sum(1 for _, n, pairs in series if n >= 1 and n == pairs)
    lines = sum(1 for _, n, pairs in series if n >= 2)
    print("chart", chart, len(series), drawn, lines)
print("text", "".join(f.text).replace("\n", " "))
EOF
fact() { grep "^$1 " "$DIR/dom-facts.txt" | cut -d' ' -f2-; }
# chart_fact CHART: its number of series, of series drawn with all their points, of lines
chart_fact() { awk -v chart="$1" '$1 == "chart" && $2 == chart { print $3, $4, $5 }' "$DIR/dom-facts.txt"; }
check "every section is in the DOM, in order" \
    "health throughput waits queries pools locks indexes cache collector" "$(fact sections)"
for chart in chart-throughput chart-latency chart-connections chart-waits chart-pools chart-locks chart-cache; do
    read -r series drawn lines <<<"$(chart_fact "$chart") "
    check "$chart: every time series draws all its data points (${series:-no} series)" "${series:-none}" "${drawn:-}"
    check "$chart: has a time series drawn as a line of several points" t \
        "$([ "${lines:-0}" -ge 1 ] && echo t || echo f)"
done
check "the replication chart has no series (no standby here) and says so" "0 0 0 t" \
    "$(chart_fact chart-replication) $(grep -q 'chart-replication.*no data in this window' "$DIR/dom.html" && echo t || echo f)"
check "no script, img, iframe, link, on* attribute or fetched URL in the DOM" "" "$(fact forbidden)"
check "the hostile query text shows as text" t \
    "$(fact text | grep -qF "$HOSTILE_QUERY" && echo t || echo f)"
check "the hostile application_name shows as text (pools table and chart legend)" t \
    "$(fact text | grep -qF "$HOSTILE_APP" && echo t || echo f)"
check "the report fetches nothing: no url(, @import or http(s) reference besides the SVG namespace" 0 \
    "$(grep -oE 'url\(|@import|https?://[^"]*' "$DIR/report.html" | grep -vc '^http://www.w3.org/2000/svg$' || true)"

step "The report's figures are the SQL's"
check "the overall score is health_score('$WINDOW')'s" t \
    "$(q "SELECT strpos(r.html, '<p class=\"score\">Overall score <b>' || e.score || '</b>') > 0 FROM r, expected e")"
check "the first top query's calls are top_queries()'s" t \
    "$(q "SELECT (regexp_match(r.html, 'By total execution time.*?<tbody><tr><td class=\"n\">1</td>(?:<td[^>]*>[^<]*</td>){3}<td class=\"n\">([0-9]+)</td>'))[1]::bigint = e.top_calls FROM r, expected e")"
check "the collector table has a row per collector_status row" t \
    "$(q "SELECT (SELECT count(*) FROM regexp_matches(substring(r.html FROM '<section id=\"collector\">.*?</table>'), '<tr><td', 'g')) = e.collector_rows FROM r, expected e")"
check "the N+1 loop is in the optimization opportunities" t \
    "$(q "SELECT substring(html FROM 'Optimization opportunities.*?</table>') LIKE '%n_plus_one%demo_customers%' FROM r")"
check "the advisor's index for the query missing one is in the index advice" t \
    "$(q "SELECT strpos(html, 'CREATE INDEX CONCURRENTLY ON public.demo_orders (customer_id);') > 0 FROM r")"
check "the lock hotspot's sessions head blocking chains" t \
    "$(q "SELECT substring(html FROM 'Blocking chains.*?</table>') LIKE '%<td>demo-hotspot</td>%' FROM r")"

step "A dbanalytics_reader gets the report without other roles' query texts"
check "the reader's report has every section" 9 "$(grep -o '<section id=' "$DIR/report-reader.html" | wc -l)"
check "the reader's report hides the query texts of postgres's statements" 0 \
    "$(grep -c 'sum(amount) FROM demo_orders' "$DIR/report-reader.html" || true)"
check "the superuser's report shows them" t "$(grep -q 'sum(amount) FROM demo_orders' "$DIR/report.html" && echo t || echo f)"
check "the reader's report says where a text was hidden" t \
    "$(grep -q '&lt;insufficient privilege&gt;' "$DIR/report-reader.html" && echo t || echo f)"

step "Charts draw at most 9 series, and only finite values"
# 12 series of 5 points each, series sN at N * 10 + minute; s0 is NaN everywhere
chart() {
    q "SELECT dbanalytics._svg_chart('c', 't', 'u', now() - interval '1 hour', now(), $1,
              array_agg(now() - interval '1 minute' * m), array_agg('s' || s),
              array_agg(CASE WHEN s = 0 THEN 'NaN'::float8 ELSE s * 10 + m END))
         FROM generate_series(0, 12) s, generate_series(1, 5) m"
}
LINES=$(chart false)
STACKED=$(chart true)
count() { grep -o "$1" <<<"$2" | wc -l; }
check "a line chart of 12 series draws the 9 largest (s4..s12) and says 3 are left out" "9 1 0 0 1" \
    "$(count '<polyline' "$LINES") $(count 'data-series="s4"' "$LINES") $(count 'data-series="s3"' "$LINES") $(count 'data-series="s0"' "$LINES") $(count '3 more series not drawn' "$LINES")"
check "a stacked chart draws the 9 largest and one \"other\" (s1..s3 added up), no NaN series" "10 1 0 0" \
    "$(count '<polygon' "$STACKED") $(count 'data-series="other"' "$STACKED") $(count 'data-series="s3"' "$STACKED") $(count 'data-series="s0"' "$STACKED")"
check "no NaN reaches the SVG" 0 "$(count NaN "$LINES$STACKED")"

step "Charts handle names in the server encoding: UTF-8 here, LATIN1 in a second database"
psql_at "$DIR" "$PORT" postgres \
    "CREATE DATABASE latin1db ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
psql_at "$DIR" "$PORT" latin1db "CREATE EXTENSION dbanalytics"
# encoded_chart DB: a line chart of 'café <b>' and a name of 45 é, read back as UTF-8
encoded_chart() {
    PGCLIENTENCODING=UTF8 psql_at "$DIR" "$PORT" "$1" \
        "SELECT dbanalytics._svg_chart('c', 'tïtle', 'ü', now() - interval '1 hour', now(), false,
                ARRAY[now() - interval '1 minute', now()], ARRAY['café <b>', repeat('é', 45)], ARRAY[1, 2]::float8[])"
}
# series FACTS: the series' names, their legends, the title and the unit, one per line
series() {
    grep -oE 'data-series="[^"]*"|class="legend" x="[0-9.]*" y="[0-9.]*">[^<]*<|<title>t[^<]*<|rotate\(-90\)">[^<]*<' <<<"$1" \
        | sed -E 's/^data-series="(.*)"$/\1/; s/^[^>]*>(.*)<$/\1/' | sort -u | tr '\n' '|'
}
FORTY=$(printf 'é%.0s' $(seq 40))
FORTY_FIVE=$(printf 'é%.0s' $(seq 45))
EXPECTED_SERIES=$(printf '%s\n' "café &lt;b&gt;" "$FORTY" "$FORTY_FIVE" tïtle ü | sort -u | tr '\n' '|')
check "UTF-8: names escaped byte for byte, the legend cut at 40 characters (not bytes)" \
    "$EXPECTED_SERIES" "$(series "$(encoded_chart "$DB")")"
check "LATIN1: the same chart" "$EXPECTED_SERIES" "$(series "$(encoded_chart latin1db)")"
# take_sample() makes the partitions and take_snapshot() records the server (max_connections);
# the pool minutes are written as the collector would
psql_at "$DIR" "$PORT" latin1db \
    "SELECT count(*) FROM dbanalytics.take_sample(); SELECT count(*) FROM dbanalytics.take_snapshot()" >/dev/null
PGCLIENTENCODING=UTF8 psql_at "$DIR" "$PORT" latin1db \
    "INSERT INTO dbanalytics.pool_minute
     SELECT date_trunc('minute', now()) - interval '1 minute' * m, 'latin1db', 'postgres', 'café <b>',
            60, 120, 3, 60, 0, 0, 4, 10
       FROM generate_series(1, 3) m"
PGCLIENTENCODING=UTF8 psql_at "$DIR" "$PORT" latin1db "SELECT dbanalytics.report_html('15 minutes')" \
    >"$DIR/report-latin1.html"
has() { grep -q "$1" "$DIR/report-latin1.html" && echo t || echo f; }
check "LATIN1: report_html() shows a pool named 'café <b>' in its table, chart series and legend" "t t t" \
    "$(has '<td>café &lt;b&gt;</td>') $(has 'data-series="latin1db postgres café &lt;b&gt;"') $(has 'class="legend" x="[0-9.]*" y="[0-9.]*">latin1db postgres café &lt;b&gt;<')"

step "The charts' resolution: about 240 buckets per window"
check "_chart_resolution() of 15 minutes, a day, a week, 30 days and a year" \
    "00:01:00 00:05:00 00:30:00 03:00:00 1 day" \
    "$(q "SELECT string_agg(dbanalytics._chart_resolution(w)::text, ' ' ORDER BY o)
            FROM unnest('{15 minutes,1 day,7 days,30 days,1 year}'::interval[]) WITH ORDINALITY u(w, o)")"

step "Arguments are checked"
refusal() {
    q "DO \$\$ DECLARE hint text; BEGIN PERFORM $1;
       EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
       RAISE NOTICE '% %', SQLSTATE, left(hint, 16); END \$\$" 2>&1 | sed 's/^NOTICE:  //'
}
check "a NULL window is refused with a HINT" "22023 Pass an interval" "$(refusal "dbanalytics.report_html(NULL)")"
check "a row limit of 0 is refused with a HINT" "22023 Pass a limit bet" "$(refusal "dbanalytics.report_html('1 hour', 0)")"

finish_checks "e2e_report (PostgreSQL $PG_MAJOR)"
