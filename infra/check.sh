#!/usr/bin/env bash
# Lints infra/template.yaml (cfn-lint, checkov: zero findings; every skip is
# justified in the template) and checks that template and code agree.
# Installs the pinned tools into .tools/py-tools on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/py-tools"
PINS=("cfn-lint==1.41.0" "checkov==3.3.30" "aws-sam-cli==1.148.0" "cargo-lambda==1.9.2" "ziglang==0.17.1")

stamp="$(printf '%s\n' "${PINS[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$venv/.installed-$stamp" ]; then
  py=""
  for p in python3.12 python3.13 /root/.pyenv/versions/3.12.*/bin/python3 "$HOME"/.pyenv/versions/3.12.*/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      py="$(command -v "$p")"; break
    fi
  done
  [ -n "$py" ] || { echo "infra/check.sh: needs Python >= 3.10" >&2; exit 1; }
  echo "infra/check.sh: installing ${PINS[*]} into $venv" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
  touch "$venv/.installed-$stamp"
fi

cd "$root"
echo "cfn-lint:"
"$venv/bin/cfn-lint" infra/template.yaml && echo "  no findings"
echo "checkov:"
"$venv/bin/checkov" -f infra/template.yaml --framework cloudformation --compact --quiet --skip-download
echo "sam validate --lint:"
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}" SAM_CLI_TELEMETRY=0 \
  "$venv/bin/sam" validate --lint -t infra/template.yaml 2>&1 | grep -v -i "update available\|To download"
echo "agreement:"
"$venv/bin/python" infra/check_template.py
