#!/usr/bin/env python3
"""Writes the fault table of docs/reliability.md from a scripts/test run.

    tests/fault_table.py MAJOR...

Reads tests/fault_cases.tsv (the cases, what each must show, which tests show it), the checks
the end-to-end tests recorded for each case (target/fault-results/results.tsv, written by
`fault_case` and `check`/`wait_for` in tests/lib.sh) and the in-server tests' outcomes
(target/fault-results/pg_test-MAJOR.log, cargo pgrx test's output). A case passes on a major
when each of its #[pg_test] functions passed there and, if it has end-to-end checks, at least
one was recorded and none failed. A case whose end-to-end test said it does not apply to a
major (skip_part, with its reason) and recorded no check there is "not applicable" on it; it
counts as passing only if it passed on some other major. Replaces the table between the
markers of docs/reliability.md, prints the summary and exits 1 unless every case passes.
"""
import csv
import datetime
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "fault_cases.tsv"
RESULTS = ROOT / "target" / "fault-results"
DOC = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- fault table: written by tests/fault_table.py at the end of scripts/test; do not edit -->"
END = "<!-- end of the fault table -->"


def read_cases():
    lines = [l for l in CASES.read_text().splitlines() if l and not l.startswith("#")]
    cases = []
    for row in csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE):
        if len(row) != 7:
            sys.exit(f"{CASES}: expected 7 tab-separated columns, got {len(row)}: {row[:1]}")
        ident, issue_case, case, verdict, evidence, pg_tests, e2e = row
        if not pg_tests and e2e != "yes":
            sys.exit(f"{CASES}: case {ident} names no #[pg_test] and no end-to-end check: no evidence")
        cases.append(dict(id=ident, issue_case=issue_case, case=case, verdict=verdict,
                          evidence=evidence, pg_tests=[t for t in pg_tests.split(",") if t],
                          e2e=e2e == "yes"))
    return cases


def read_checks():
    """{(case id, major): [passed, failed, skip reasons]} from the end-to-end tests."""
    checks = {}
    path = RESULTS / "results.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            ident, major, outcome, _script, why = line.split("\t")
            counts = checks.setdefault((ident, major), [0, 0, []])
            if outcome == "skipped":
                counts[2].append(why)
            else:
                counts[0 if outcome == "passed" else 1] += 1
    return checks


def read_pg_tests(major):
    """{test function: 'ok' | 'FAILED'} from cargo pgrx test's output on MAJOR."""
    path = RESULTS / f"pg_test-{major}.log"
    if not path.exists():
        return {}
    return dict(re.findall(r"^test tests::tests::pg_(\w+) \.\.\. (ok|FAILED)", path.read_text(), re.M))


def verdict(case, major, checks, pg_tests):
    """('passed' | 'FAILED' | 'not run' | 'not applicable: why', how many checks)"""
    outcomes = [pg_tests.get(t) for t in case["pg_tests"]]
    passed, failed, skipped = checks.get((case["id"], major), [0, 0, []])
    if "FAILED" in outcomes or failed:
        return "FAILED", passed + failed
    if case["e2e"] and passed == 0 and skipped and not case["pg_tests"]:
        return "not applicable: " + "; ".join(dict.fromkeys(skipped)), 0
    if None in outcomes or (case["e2e"] and passed == 0):
        return "not run", passed
    return "passed", passed + len(outcomes)


def case_passes(case, majors, results):
    """Passed on every major, or on some and not applicable on the others."""
    verdicts = [results[(case["id"], m)][0] for m in majors]
    return "passed" in verdicts and all(v == "passed" or v.startswith("not applicable") for v in verdicts)


def main(majors):
    if not majors:
        sys.exit("usage: tests/fault_table.py MAJOR...")
    cases, checks = read_cases(), read_checks()
    pg = {m: read_pg_tests(m) for m in majors}
    unknown = {i for (i, _m) in checks} - {c["id"] for c in cases}
    if unknown:
        sys.exit(f"checks recorded for fault cases that {CASES.name} does not list: {sorted(unknown)}")
    results = {(c["id"], m): verdict(c, m, checks, pg[m]) for c in cases for m in majors}
    issue_cases = list(dict.fromkeys(c["issue_case"] for c in cases if c["issue_case"] != "-"))
    issue_passed = [ic for ic in issue_cases
                    if all(case_passes(c, majors, results) for c in cases if c["issue_case"] == ic)]
    rows_passed = sum(case_passes(c, majors, results) for c in cases)
    not_applicable = [f"{c['id']} on PostgreSQL {m}" for c in cases for m in majors
                      if results[(c["id"], m)][0].startswith("not applicable")]
    total_checks = sum(n for (_v, n) in results.values())
    versions = " and ".join(majors)
    summary = (f"**{len(issue_passed)} of {len(issue_cases)}** cases of issue 15 pass on PostgreSQL "
               f"{versions} ({rows_passed} of {len(cases)} rows, {total_checks} checks), in the "
               f"`scripts/test` run of {datetime.date.today().isoformat()}"
               + (f"; not applicable: {', '.join(not_applicable)}" if not_applicable else "") + ".")

    out = [BEGIN, "", summary, "",
           "| case | issue 15's case | verdict | evidence (test) | "
           + " | ".join(f"PG {m}" for m in majors) + " |",
           "|---|---|---|---|" + "---|" * len(majors)]
    for c in cases:
        cells = []
        for m in majors:
            v, n = results[(c["id"], m)]
            cells.append(f"{v} ({n} check{'' if n == 1 else 's'})" if v == "passed"
                         else v if v.startswith("not applicable") else f"**{v}**")
        out.append(f"| {c['case']} | {c['issue_case']} | {c['verdict']} | {c['evidence']} | "
                   + " | ".join(cells) + " |")
    out += ["", END]

    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{DOC} has no fault table markers")
    head, rest = doc.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    DOC.write_text(head + "\n".join(out) + tail)
    print(summary.replace("**", ""))
    for c in cases:
        for m in majors:
            v, _n = results[(c["id"], m)]
            if v != "passed":
                print(f"  {c['id']} on PostgreSQL {m}: {v}")
    return 0 if len(issue_passed) == len(issue_cases) and rows_passed == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
