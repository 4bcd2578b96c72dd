#!/usr/bin/env python3
"""Compares two runs of SQLAlchemy's dialect compliance suite (JUnit XML):
every test the baseline driver passed must pass on dbmux too.

    sqlalchemy-suite-compare.py BASELINE.xml DBMUX.xml [--label NAME] [--report]

Test ids are matched with the driver's part of the class name taken out
(`DateTest_sqlite+pysqlite_3_46_1` and `DateTest_sqlite+dbmux_3_46_1` are
one test). Prints both runs' counts; exits 1, listing them, when a test that
passed on the baseline did not pass on dbmux."""

import re
import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        cls = re.sub(r"_[a-z0-9]+\+[a-z0-9_]+$", "", case.get("classname", "").split(".")[-1])
        key = f"{cls}::{case.get('name')}"
        tags = {child.tag for child in case}
        if "failure" in tags or "error" in tags:
            state = "failed"
        elif "skipped" in tags:
            state = "skipped"
        else:
            state = "passed"
        # a test reported twice (an error in teardown) keeps its worst outcome
        if out.get(key) != "failed":
            out[key] = state
    return out


def counts(o):
    return {s: sum(1 for v in o.values() if v == s) for s in ("passed", "failed", "skipped")}


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, mine = outcomes(argv[1]), outcomes(argv[2])
    label = argv[argv.index("--label") + 1] if "--label" in argv else "baseline"
    b, m = counts(base), counts(mine)
    print(f"{label}: {b['passed']} passed, {b['failed']} failed, {b['skipped']} skipped")
    print(f"dbmux: {m['passed']} passed, {m['failed']} failed, {m['skipped']} skipped")
    missing = sorted(k for k, v in base.items() if v == "passed" and mine.get(k) != "passed")
    extra = sorted(k for k, v in mine.items() if v == "passed" and base.get(k) != "passed")
    print(f"passed on dbmux but not on {label}: {len(extra)}")
    if missing:
        print(f"passed on {label} but not on dbmux: {len(missing)}")
        if "--report" in argv:
            by_class = {}
            for k in missing:
                by_class.setdefault(k.split("::")[0], []).append(k)
            for cls, ks in sorted(by_class.items()):
                print(f"  {cls}: {len(ks)}")
            return 0
        for k in missing:
            print(f"  {k}: {mine.get(k, 'not run')}")
        return 1
    print(f"every test that passed on {label} passed on dbmux")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
