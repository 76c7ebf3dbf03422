#!/usr/bin/env python3
"""The peer of `flowpack diff A B` in benches/diff.sh: compares two archives' flows the plain way.
Opens both zips, parses every flow document, groups them by flow name and compares the parsed
values; prints a line per flow that differs; exits 0 when the same, 1 when different."""
import json
import sys
import zipfile


def flows(path):
    by_name = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("flows/") and name.endswith("/export.json"):
                doc = json.loads(z.read(name))
                by_name.setdefault(doc["flow"]["name"], []).append(doc)
    return by_name


def main():
    left, right = flows(sys.argv[1]), flows(sys.argv[2])
    different = 0
    for name in sorted(set(left) | set(right)):
        a, b = left.get(name), right.get(name)
        status = "added" if a is None else "removed" if b is None else "changed" if a != b else None
        if status:
            different += 1
            print(f"{status:<8} {name}")
    print(f"{different} of {len(set(left) | set(right))} flows differ")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
