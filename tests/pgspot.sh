#!/usr/bin/env bash
# pgspot (https://github.com/timescale/pgspot) over the extension's SQL: the install script of the
# installed extension (what CREATE EXTENSION runs, pgrx's generated statements included) and every
# upgrade script sql/dbanalytics--A--B.sql. Fails on any pgspot error; warnings are allowed (each
# one that remains is justified in docs/security.md) and counted by code in the summary.
# Run by tests/e2e_security.sh; runs alone too, after install_extension (scripts/test does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib.sh

PGSPOT_VERSION=0.9.4
VENV=$PWD/target/pgspot-venv
# Exceptions, each justified in docs/security.md: pgspot options such as
#   --proc-without-search-path 'extschema.some_function(argument types)'
PGSPOT_OPTIONS=()
# and for the upgrade scripts only (they replace the extension's own members: CREATE OR REPLACE of
# an object that is not a member of the extension is refused by the server since CVE-2022-2625)
PGSPOT_UPGRADE_OPTIONS=()
# The extension's schema, as CREATE EXTENSION makes it (schema = dbanalytics in the control
# file): created for the extension by the installing role, and refused by the install script when
# it exists beforehand owned by another role or not empty (sql/schema.sql, docs/security.md).
# pgspot learns it from this preamble, read before each script (--append), and so judges
# CREATE OR REPLACE and unqualified creations in it as in an extension-owned schema.
PREAMBLE=$PWD/target/pgspot-extension-schema.sql
mkdir -p "$(dirname "$PREAMBLE")"
printf '%s\n' "-- created by CREATE EXTENSION dbanalytics (schema = dbanalytics in dbanalytics.control)" \
    "CREATE SCHEMA @extschema@;" >"$PREAMBLE"

if [ ! -x "$VENV/bin/pgspot" ] || [ "$("$VENV/bin/pgspot" --version 2>/dev/null)" != "pgspot $PGSPOT_VERSION" ]; then
    step "Installing pgspot $PGSPOT_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "pgspot==$PGSPOT_VERSION"
fi

extension_dir=$("$PG_CONFIG" --sharedir)/extension
version=$(sed -nE "s/^default_version = '([^']+)'.*/\1/p" "$extension_dir/dbanalytics.control" 2>/dev/null || true)
install_script=$extension_dir/dbanalytics--$version.sql
if [ -z "$version" ] || [ ! -f "$install_script" ]; then
    echo "no installed dbanalytics in $extension_dir: run install_extension (scripts/test) first" >&2
    exit 1
fi

# pgspot counts PS005 (a function without SET search_path) as a warning. Such a function is run
# with its caller's search_path (and an SQL function is inlined, i.e. parsed, under it), so it is
# safe only if every name in it is qualified: a PS005 function with an unqualified operator, function
# or type (PS001, PS016, PS017) fails here too. pgspot reports the line where the whitespace before
# a statement starts: the statement is the first CREATE at or after that line.
unpinned_and_unqualified() {
    python3 - "$1" "$2" <<'PY'
import collections, re, sys
script = open(sys.argv[1], encoding="utf-8").read().splitlines()
create = re.compile(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|VIEW|MATERIALIZED\s+VIEW|TABLE|TYPE|"
                    r"INDEX|SEQUENCE|AGGREGATE|OPERATOR)\s+([^\s(]+)", re.I)
def statement(line):
    for i in range(max(line - 1, 0), len(script)):
        m = create.match(script[i])
        if m:
            return i + 1, m.group(1).replace('"', "").replace("@extschema@.", "")
    return None, "?"
codes = collections.defaultdict(collections.Counter)
for message in open(sys.argv[2], encoding="utf-8"):
    m = re.match(r"(PS\d+): .* at line (\d+)$", message.strip())
    if m:
        codes[statement(int(m.group(2)))][m.group(1)] += 1
for (line, name), counted in sorted(codes.items(), key=lambda item: item[0][0] or 0):
    unqualified = {c: n for c, n in counted.items() if c in ("PS001", "PS016", "PS017")}
    if counted["PS005"] and unqualified:
        print(f"    {name} (line {line}): no SET search_path and unqualified references "
              + ", ".join(f"{c} x{n}" for c, n in sorted(unqualified.items())))
PY
}

failed=0
for script in "$install_script" sql/dbanalytics--*--*.sql; do
    options=("${PGSPOT_OPTIONS[@]}")
    [ "$script" = "$install_script" ] || options+=("${PGSPOT_UPGRADE_OPTIONS[@]}")
    out=$("$VENV/bin/pgspot" "${options[@]}" --append "$PREAMBLE" "$script" 2>&1 || true)
    summary=$(printf '%s\n' "$out" | grep -E '^TOTAL: Errors: [0-9]+ Warnings: [0-9]+' | sed 's/^TOTAL: *//;s/ *$//')
    errors=$(printf '%s\n' "$summary" | sed -nE 's/.*Errors: ([0-9]+).*/\1/p')
    by_code=$(printf '%s\n' "$out" | grep -oE '^PS[0-9]+' | sort | uniq -c | awk '{printf "%s %s x%s", sep, $2, $1; sep=","}')
    echo "pgspot $(basename "$script"): ${summary:-no summary} ${by_code:+(${by_code# })}"
    if [ -z "$errors" ]; then
        printf '%s\n' "$out" | tail -n 20
        failed=1
        continue
    fi
    if [ "$errors" -ne 0 ]; then
        # pgspot prints errors and warnings alike: every message but the (many) PS001 warnings
        printf '%s\n' "$out" | grep -E '^PS' | grep -v '^PS001:' | sed 's/^/    /'
        failed=1
    fi
    printf '%s\n' "$out" >"${TMPDIR:-/tmp}/pgspot.$$.out"
    unqualified=$(unpinned_and_unqualified "$script" "${TMPDIR:-/tmp}/pgspot.$$.out")
    rm -f "${TMPDIR:-/tmp}/pgspot.$$.out"
    if [ -n "$unqualified" ]; then
        echo "  functions without SET search_path whose names are not all qualified:"
        printf '%s\n' "$unqualified"
        failed=1
    fi
done
exit "$failed"
