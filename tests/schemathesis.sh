#!/usr/bin/env bash
# Runs schemathesis (pinned, in .tools/) against a fresh `bealert serve`:
# every check, stateful links, a bounded number of examples. Fails on any
# disagreement between shared/http/openapi.yaml and the server.
#
#   tests/schemathesis.sh [BEALERT_BINARY]     (default: target/debug/bealert)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/debug/bealert}"
venv="$root/.tools/schemathesis-venv"
pin="schemathesis==4.32.5"
examples="${SCHEMATHESIS_EXAMPLES:-40}"

say() { printf 'schemathesis: %s\n' "$*" >&2; }

find_python() {
  # Newest first: CPython 3.11 before 3.11.9 can fail ast.parse under threads
  # ("AST constructor recursion depth mismatch", gh-106905), which hypothesis
  # calls while describing strategies.
  for p in "$HOME"/.pyenv/versions/3.13.*/bin/python3 "$HOME"/.pyenv/versions/3.12.*/bin/python3 python3.13 python3.12 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      command -v "$p"; return 0
    fi
  done
  return 1
}

stamp="$venv/.installed-$(printf '%s|py-newest-first' "$pin" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  py="$(find_python)" || { say "needs Python >= 3.10"; exit 1; }
  say "installing $pin into $venv"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "$pin"
  touch "$stamp"
fi
[ -x "$bin" ] || { say "no bealert binary at $bin; build it first (cargo build -p bealert)"; exit 1; }

data="$(mktemp -d)"
server=""
# The server finishes the jobs in hand on SIGTERM; one that does not stop in
# 10 s is killed, so no server outlives the run.
cleanup() {
  if [ -n "$server" ] && kill "$server" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

key="$("$bin" operator create --name schemathesis --jurisdiction national --data-dir "$data" | tail -n 1)"
# Schemathesis sends many requests from one address: lift the per-client limit.
"$bin" serve --listen 127.0.0.1:0 --data-dir "$data" --client-rate 100000 --client-burst 100000 \
  >"$data/serve.out" 2>"$data/serve.log" &
server=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^listening on //p' "$data/serve.out" | head -n 1)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { say "bealert serve did not start"; cat "$data/serve.log" >&2; exit 1; }

cd "$root/tests"   # schemathesis.toml
BEALERT_KEY="$key" "$venv/bin/schemathesis" run "$url/openapi.yaml" --url "$url" \
  -H "Authorization: Bearer $key" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --max-examples "$examples" --workers 1 --seed 1 --no-color
