#!/usr/bin/env bash
# The default build of bealert (no AWS home), the one the README's first
# command runs: it builds, says how to get the AWS home, makes an operator,
# and serves the signup page, the console and the API. (Every command is
# tested by the cli:: tests on the full build, in the test step.)
#
#   tests/default_build.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -p bealert --locked
bin="$root/target/debug/bealert"
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "default build: $*" >&2; exit 1; }

if out="$("$bin" serve --backend aws --data-dir "$dir" 2>&1)"; then
  fail "serve --backend aws started in a build without the AWS home"
fi
grep -q "rebuild with --features aws" <<<"$out" || fail "serve --backend aws did not say how to get it: $out"

key="$("$bin" operator create --name centre --jurisdiction national --data-dir "$dir" | tail -n 1)"
[ -n "$key" ] || fail "operator create printed no key"

BEALERT_DATA_DIR="$dir" BEALERT_LISTEN="127.0.0.1:$port" "$bin" serve >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/" >/dev/null || { cat "$dir/serve.log" >&2; fail "serve does not answer on /"; }
# (Read whole first: grep -q ending a pipe early fails curl under pipefail.)
console="$(curl -fsS "http://127.0.0.1:$port/console")"
grep -qi "<html" <<<"$console" || fail "no console on /console"
me="$(curl -fsS "http://127.0.0.1:$port/v1/operator" -H "Authorization: Bearer $key")"
grep -q '"centre"' <<<"$me" || fail "GET /v1/operator did not name the operator: $me"
echo "default build: builds, refuses the AWS home with the way to get it, makes an operator, serves / /console /v1/operator"
