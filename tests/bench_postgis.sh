#!/usr/bin/env bash
# bealert beside PostGIS 3 on the same synthetic addresses and zones; prints
# warm medians and the ratio (see tests/bench_postgis.py). Installs
# PostgreSQL 15 + PostGIS 3 from Debian when missing (needs root), builds
# bealert in release. Not part of tests/run: a benchmark, not a test.
#
#   tests/bench_postgis.sh [SUBSCRIBERS (default 1000000)] [RUNS (default 9)]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || [ ! -d /usr/share/postgresql/15/extension ] \
  || ! ls /usr/share/postgresql/15/extension/postgis.control >/dev/null 2>&1; then
  echo "bench_postgis: installing postgresql-15-postgis-3 (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 postgresql-15-postgis-3 >/dev/null
fi
cargo build --release -q -p bealert
exec python3 tests/bench_postgis.py "$@"
