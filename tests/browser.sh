#!/usr/bin/env bash
# The signup page and the operator console in a real browser: Debian's Chromium driven by
# playwright-core, checked by axe-core (tests/browser/signup.mjs).
# Installs what it needs: the chromium package (apt-get, as root or with
# sudo) and the pinned npm packages (tests/browser/package-lock.json).
# Then the operator console (tests/browser/console.mjs). Screenshots go to
# target/test-artifacts/signup/ and target/test-artifacts/console/.
#
#   tests/browser.sh [BEALERT_BINARY]     (default: target/debug/bealert)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/debug/bealert}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
say() { printf 'browser: %s\n' "$*" >&2; }

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  say "installing Debian's chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v node >/dev/null || { say "needs Node.js (node, npm) on PATH"; exit 1; }
cd "$root/tests/browser"
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock.json; then
  say "installing playwright-core and axe-core (npm ci)"
  npm ci --no-audit --no-fund --silent
fi
[ -x "$bin" ] || { say "no bealert binary at $bin; build it first (cargo build -p bealert)"; exit 1; }

data="$(mktemp -d)"
servers=()
# A server finishes the jobs in hand on SIGTERM; one that does not stop in
# 10 s is killed, so no server outlives the run.
cleanup() {
  for server in "${servers[@]}"; do
    if kill "$server" 2>/dev/null; then
      for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$server" 2>/dev/null || true
    fi
  done
  rm -rf "$data"
}
trap cleanup EXIT
# start DIR [SERVE FLAGS...]: runs `bealert serve` on DIR; sets $url.
start() {
  local dir="$1"; shift
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$dir" "$@" >"$dir/serve.out" 2>"$dir/serve.log" &
  servers+=($!)
  url=""
  for _ in $(seq 1 100); do
    url="$(sed -n 's/^listening on //p' "$dir/serve.out" | head -n 1)"
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { say "bealert serve did not start"; cat "$dir/serve.log" >&2; exit 1; }
}

# BROWSER_ONLY=signup or =console runs one page's checks (while you work).
if [ "${BROWSER_ONLY:-signup}" = signup ]; then
mkdir -p "$data/signup"
key="$("$bin" operator create --name browser-test --jurisdiction national --data-dir "$data/signup" | tail -n 1)"
start "$data/signup"
artifacts="$root/target/test-artifacts/signup"
rm -rf "$artifacts"
CHROMIUM="$chromium" node signup.mjs "$url" "$data/signup" "$key" "$artifacts"
say "screenshots in $artifacts"
fi

# The operator console: two people of a national operator (four-eyes), a
# mayor of Elsene/Ixelles (21009, a municipality the shipped data holds),
# and an SMS limit low enough to cancel an alert while it sends.
[ "${BROWSER_ONLY:-}" = signup ] && exit 0
c="$data/console"
mkdir -p "$c"
officer="$("$bin" operator create --name crisis-centre --jurisdiction national --data-dir "$c" | tail -n 1)"
second="$("$bin" user create --operator crisis-centre --name second-officer --may approve,halt --data-dir "$c" | tail -n 1)"
mayor="$("$bin" operator create --name elsene --jurisdiction municipality:21009 --valid-for 10d --data-dir "$c" | tail -n 1)"
network="$("$bin" network create --name proximus --data-dir "$c" | tail -n 1)"
start "$c" --sms-rate 20
artifacts="$root/target/test-artifacts/console"
rm -rf "$artifacts"
CHROMIUM="$chromium" node console.mjs "$url" "$c" "$artifacts" "$officer" "$second" "$mayor" "$network"
# The console's benchmark figures (printed, never asserted).
CHROMIUM="$chromium" node console-bench.mjs "$url" "$officer" 5
say "screenshots in $artifacts"
