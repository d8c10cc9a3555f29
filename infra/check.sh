#!/usr/bin/env bash
# Lints infra/template.yaml (cfn-lint, which also applies the SAM transform;
# checkov: zero findings, every skip is justified in the template) and checks
# that template and code agree. Installs the pinned linters into
# .tools/lint-tools on first use. The packaging tools (SAM CLI, cargo-lambda,
# zig) are infra/build.sh's, not needed here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/lint-tools"
# shellcheck source=infra/pytools.sh
. "$root/infra/pytools.sh"
pytools_install "$venv" "cfn-lint==1.41.0" "checkov==3.3.30"

cd "$root"
echo "cfn-lint (SAM transform included):"
"$venv/bin/cfn-lint" infra/template.yaml && echo "  no findings"
echo "checkov:"
"$venv/bin/checkov" -f infra/template.yaml --framework cloudformation --compact --quiet --skip-download
echo "agreement:"
"$venv/bin/python" infra/check_template.py
