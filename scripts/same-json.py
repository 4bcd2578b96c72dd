#!/usr/bin/env python3
"""same-json.py A.json B.json [KEY...]: exits 0 when the two JSON documents
are equal once every KEY (at any depth) is removed from both (the times that
differ between two runs), else prints both and exits 1. The bindings' tests
use it to check that C and Python hand out Rust's documents."""
import json
import sys


def strip(v, keys):
    if isinstance(v, dict):
        return {k: strip(x, keys) for k, x in v.items() if k not in keys}
    if isinstance(v, list):
        return [strip(x, keys) for x in v]
    return v


a, b, keys = sys.argv[1], sys.argv[2], set(sys.argv[3:])
da, db = (strip(json.load(open(p)), keys) for p in (a, b))
if da != db:
    print(f"same-json: {a} and {b} differ (ignoring {sorted(keys)}):", file=sys.stderr)
    print(json.dumps(da, sort_keys=True, indent=1), file=sys.stderr)
    print(json.dumps(db, sort_keys=True, indent=1), file=sys.stderr)
    sys.exit(1)
print(f"same-json: {a} equals {b} (ignoring {', '.join(sorted(keys))})")
