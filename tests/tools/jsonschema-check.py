#!/usr/bin/env python3
"""Validates the JSON document on stdin against the JSON Schema file SCHEMA (draft 2020-12)
with the jsonschema module (Debian: python3-jsonschema). Exit 0 when valid, 1 when not (each
error on stderr: its path and message), 2 when the schema itself is not a valid schema.
With --each, stdin is an array of documents: one line each on stdout, "ok" or "invalid: ERROR"
(the first error), and exit 0."""

import json
import sys

import jsonschema


def main() -> int:
    each = sys.argv[2:] == ["--each"]
    if len(sys.argv) != 2 and not each:
        print("usage: jsonschema-check.py SCHEMA [--each] < DOCUMENT", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.Draft202012Validator
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        print(f"{sys.argv[1]}: not a valid schema: {e.message}", file=sys.stderr)
        return 2
    # The $id ("rewind-json/1/NAME.schema.json") is a relative URI, which jsonschema before
    # 4.18 (Debian 12's 4.10) cannot resolve "#/$defs/..." against; the schema's references
    # are all local, so it validates without it.
    schema.pop("$id", None)
    doc = json.load(sys.stdin)
    if each:
        for d in doc:
            e = jsonschema.exceptions.best_match(cls(schema).iter_errors(d))
            print("ok" if e is None else f"invalid: {'/'.join(map(str, e.absolute_path))}: {e.message}")
        return 0
    errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        print(f"{where}: {e.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
