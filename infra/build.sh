#!/usr/bin/env bash
# Builds the fourteen Lambda packages for arm64 (Graviton), for size, and prints
# each zip's size. Installs the pinned packaging tools (AWS SAM CLI,
# cargo-lambda, zig) into .tools/build-tools on first use; put
# .tools/build-tools/bin on PATH to run `sam build` / `sam deploy` yourself.
#   infra/build.sh            # target/lambda/<function>/bootstrap.zip
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/build-tools"
# shellcheck source=infra/pytools.sh
. "$root/infra/pytools.sh"
pytools_install "$venv" "aws-sam-cli==1.148.0" "cargo-lambda==1.9.2" "ziglang==0.17.1"
export PATH="$venv/bin:$PATH"
rustup target add aarch64-unknown-linux-gnu >/dev/null

cd "$root"
FUNCTIONS=(api-subscribers api-alerts api-public api-zones api-signup api-networks resolve-zone send-sms send-voice send-email send-broadcast send-public drill receipts)
# Cargo unifies features across the packages of one build: functions that
# turn on the same adapters of bealert-aws (`http`: reqwest, `email`:
# lettre; see their Cargo.toml) build together, so each package links only
# the clients it uses (as `sam build` does, one function at a time).
BUILDS=(
  "api-subscribers api-alerts api-public api-zones api-networks resolve-zone send-voice drill receipts"
  "send-sms send-broadcast send-public"
  "send-email"
  "api-signup"
)
for build in "${BUILDS[@]}"; do
  read -r -a names <<<"$build"
  packages=()
  for f in "${names[@]}"; do packages+=(-p "$f"); done
  # The same flags as CargoLambdaFlags in infra/template.yaml.
  cargo lambda build --release --arm64 --output-format zip \
    --config 'profile.release.opt-level="s"' --config 'profile.release.lto=true' \
    --config 'profile.release.codegen-units=1' --config 'profile.release.panic="abort"' \
    "${packages[@]}"
done
echo
echo "package sizes (arm64 zip):"
for f in "${FUNCTIONS[@]}"; do
  z="target/lambda/$f/bootstrap.zip"
  awk -v n="$(stat -c %s "$z")" -v f="$f" 'BEGIN { printf "  %-16s %8.2f MB\n", f, n / 1000000 }'
done
