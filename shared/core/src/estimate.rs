//! The Alert-SMS population estimate: who is in a zone, by the networks' cells.
//!
//! For one network and one zone:
//! * `present_devices` = Σ active_devices × area(footprint ∩ zone) ÷ area(footprint);
//! * `reach_devices` = Σ active_devices of every cell whose footprint meets
//!   the zone with positive area (more than [`MIN_SHARED_M2`]): a cell-based
//!   send reaches all of them;
//! * the overshoot: the area of those cells outside the zone (their union
//!   minus the zone) and the devices there.
//!
//! Areas are geodesic (WGS84) areas of polygons with straight edges in
//! longitude/latitude, as GeoJSON draws them. A circle of the zone counts as
//! the 256-gon inscribed in it (its area within 0.01 % of the disk's).
//!
//! Speed comes from preparing once: a cell knows its area, bounding box and
//! and bounding box; a zone is a union without overlaps with its edges in an
//! R-tree. A cell no zone edge comes near is wholly in or out (one point
//! test); a cell on the border is intersected exactly with the zone cut down
//! to the cell's box (Sutherland–Hodgman on a rectangle, cheap), so the
//! general polygon intersection only ever sees small shapes.

use crate::area::{Area, Circle};
use crate::network::CellRecord;
use geo::orient::Direction;
use geo::{
    BooleanOps, BoundingRect, Coord, Destination, Geodesic, GeodesicArea, Line, LineString,
    MultiPolygon, Orient, Point, Polygon, Rect,
};
use rstar::{AABB, RTree, RTreeObject};
use std::sync::Arc;

/// Vertices of the polygon a zone's circle counts as.
pub const CIRCLE_VERTICES: usize = 256;
/// A cell shares "positive area" with a zone above this many square metres
/// (below it, a shared border's rounding).
pub const MIN_SHARED_M2: f64 = 1.0;

/// A cell ready for estimates.
#[derive(Debug, Clone)]
pub struct PreparedCell {
    pub cell_id: String,
    pub active_devices: u64,
    pub shape: MultiPolygon<f64>,
    pub bbox: Rect<f64>,
    pub area_m2: f64,
}

impl PreparedCell {
    pub fn new(record: &CellRecord) -> Self {
        let shape = record.multipolygon().orient(Direction::Default);
        let bbox = shape
            .bounding_rect()
            .unwrap_or_else(|| Rect::new(Coord { x: 0.0, y: 0.0 }, Coord { x: 0.0, y: 0.0 }));
        let area_m2 = shape.geodesic_area_unsigned();
        Self {
            cell_id: record.cell_id.clone(),
            active_devices: record.active_devices,
            shape,
            bbox,
            area_m2,
        }
    }
}

struct Edge(Line<f64>);

impl RTreeObject for Edge {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners(
            [self.0.start.x, self.0.start.y],
            [self.0.end.x, self.0.end.y],
        )
    }
}

/// A zone ready for estimates: its shapes merged into one multipolygon
/// (exteriors counter-clockwise, holes clockwise), its edges indexed.
pub struct ZoneShape {
    shape: MultiPolygon<f64>,
    bbox: Option<Rect<f64>>,
    edges: RTree<Edge>,
    pub area_m2: f64,
}

/// The polygon a circle counts as: [`CIRCLE_VERTICES`] points on it, CCW.
pub fn circle_polygon(c: &Circle) -> Polygon<f64> {
    let centre = Point::new(c.lon, c.lat);
    let mut pts: Vec<Coord<f64>> = (0..CIRCLE_VERTICES)
        .map(|i| {
            // Bearings clockwise from north: reversed below for CCW.
            let bearing = 360.0 * i as f64 / CIRCLE_VERTICES as f64;
            Geodesic.destination(centre, bearing, c.radius_m()).0
        })
        .collect();
    pts.reverse();
    pts.push(pts[0]);
    Polygon::new(LineString::new(pts), vec![])
}

impl ZoneShape {
    pub fn new(area: &Area) -> Self {
        let mut parts: Vec<Polygon<f64>> = area.geo_polygons();
        parts.extend(area.circles.iter().map(circle_polygon));
        let shape = if parts.len() == 1 {
            MultiPolygon::new(parts)
        } else {
            geo::unary_union(&parts)
        }
        .orient(Direction::Default);
        Self::from_shape(shape)
    }

    fn from_shape(shape: MultiPolygon<f64>) -> Self {
        let mut edges = Vec::new();
        for p in &shape {
            for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                edges.extend(ring.lines().map(Edge));
            }
        }
        Self {
            bbox: shape.bounding_rect(),
            area_m2: shape.geodesic_area_unsigned(),
            edges: RTree::bulk_load(edges),
            shape,
        }
    }

    /// The zone within `rect` (grown by a hair): each polygon's rings
    /// clipped to it. Clipping leaves zero-width spurs along the rectangle's
    /// edges, which have no inside and which the polygon intersection drops.
    fn clipped_to(&self, rect: &Rect<f64>) -> MultiPolygon<f64> {
        let pad = 1e-7;
        let (lo, hi) = (rect.min(), rect.max());
        let clip = [
            Coord {
                x: lo.x - pad,
                y: lo.y - pad,
            },
            Coord {
                x: hi.x + pad,
                y: lo.y - pad,
            },
            Coord {
                x: hi.x + pad,
                y: hi.y + pad,
            },
            Coord {
                x: lo.x - pad,
                y: hi.y + pad,
            },
        ];
        let meets = |b: &Rect<f64>| {
            !(b.max().x < clip[0].x
                || b.min().x > clip[2].x
                || b.max().y < clip[0].y
                || b.min().y > clip[2].y)
        };
        let ring = |ls: &LineString<f64>| -> Option<LineString<f64>> {
            let b = ls.bounding_rect()?;
            if !meets(&b) {
                return None;
            }
            let mut pts = clip_ring(&ls.0, &clip);
            if pts.len() < 3 {
                return None;
            }
            pts.push(pts[0]);
            Some(LineString::new(pts))
        };
        let mut out = Vec::new();
        for p in &self.shape {
            if let Some(ext) = ring(p.exterior()) {
                out.push(Polygon::new(
                    ext,
                    p.interiors().iter().filter_map(ring).collect(),
                ));
            }
        }
        MultiPolygon::new(out)
    }

    pub fn shape(&self) -> &MultiPolygon<f64> {
        &self.shape
    }

    /// Whether a point is inside (even-odd over every ring, via the index).
    fn contains(&self, p: Coord<f64>) -> bool {
        let Some(b) = self.bbox else { return false };
        if p.x < b.min().x || p.x > b.max().x || p.y < b.min().y || p.y > b.max().y {
            return false;
        }
        let ray = AABB::from_corners([p.x, p.y], [b.max().x + 1.0, p.y]);
        let mut crossings = 0;
        for e in self.edges.locate_in_envelope_intersecting(&ray) {
            let (a, c) = (e.0.start, e.0.end);
            if (a.y > p.y) != (c.y > p.y) {
                let x = a.x + (p.y - a.y) * (c.x - a.x) / (c.y - a.y);
                if x > p.x {
                    crossings += 1;
                }
            }
        }
        crossings % 2 == 1
    }

    /// The geodesic area (m²) a cell shares with the zone.
    pub fn shared_area(&self, cell: &PreparedCell) -> f64 {
        let Some(zb) = self.bbox else { return 0.0 };
        let cb = cell.bbox;
        if cb.max().x < zb.min().x
            || cb.min().x > zb.max().x
            || cb.max().y < zb.min().y
            || cb.min().y > zb.max().y
        {
            return 0.0;
        }
        let envelope = AABB::from_corners([cb.min().x, cb.min().y], [cb.max().x, cb.max().y]);
        if self
            .edges
            .locate_in_envelope_intersecting(&envelope)
            .next()
            .is_none()
        {
            // No border near: the cell is wholly in or wholly out.
            let probe = cell
                .shape
                .0
                .first()
                .and_then(|p| p.exterior().0.first().copied());
            return match probe {
                Some(c) if self.contains(c) => cell.area_m2,
                _ => 0.0,
            };
        }
        // On the border: the zone cut down to the cell's box (a cheap clip
        // by a rectangle), then an exact polygon intersection of small shapes.
        let local = self.clipped_to(&cb);
        if local.0.is_empty() {
            return 0.0;
        }
        cell.shape.intersection(&local).geodesic_area_unsigned()
    }
}

/// Sutherland–Hodgman: the part of `ring` (closed) inside the convex,
/// counter-clockwise `clip`; the result keeps the ring's orientation.
fn clip_ring(ring: &[Coord<f64>], clip: &[Coord<f64>]) -> Vec<Coord<f64>> {
    let mut out: Vec<Coord<f64>> = ring.to_vec();
    if out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    for i in 0..clip.len() {
        if out.is_empty() {
            break;
        }
        let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
        let side = |p: Coord<f64>| (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
        let input = std::mem::take(&mut out);
        let mut prev = input[input.len() - 1];
        for &cur in &input {
            let (sc, sp) = (side(cur), side(prev));
            if sc >= 0.0 {
                if sp < 0.0 {
                    out.push(cross(prev, cur, sp, sc));
                }
                out.push(cur);
            } else if sp >= 0.0 {
                out.push(cross(prev, cur, sp, sc));
            }
            prev = cur;
        }
    }
    out
}

fn cross(p: Coord<f64>, q: Coord<f64>, sp: f64, sq: f64) -> Coord<f64> {
    let t = sp / (sp - sq);
    Coord {
        x: p.x + t * (q.x - p.x),
        y: p.y + t * (q.y - p.y),
    }
}

/// One network's part of an [`Estimate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkEstimate {
    /// People present: devices present ÷ devices per person.
    pub estimated_present: f64,
    /// Σ active_devices × shared area ÷ cell area.
    pub present_devices: f64,
    /// Active devices on every cell a cell-based send would use.
    pub reach_devices: u64,
    /// How many cells those are.
    pub cells: usize,
    /// Their area outside the zone, and the people estimated there.
    pub overshoot_km2: f64,
    pub overshoot_people: f64,
    /// When the network last replaced its cells (RFC 3339), and whether
    /// that is older than the configured age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
    pub stale: bool,
}

/// `POST /v1/zones:estimate`: who is in a zone, by the networks' cells.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    /// People present, summed over networks (each device counted on its network).
    pub estimated_present: f64,
    pub reach_devices: u64,
    /// The union of every network's overshoot, and the people there.
    pub overshoot_km2: f64,
    pub overshoot_people: f64,
    /// The calibration the people figures used.
    pub devices_per_person: f64,
    /// Some network's cells are older than the configured age.
    pub stale: bool,
    pub networks: std::collections::BTreeMap<String, NetworkEstimate>,
}

/// One network's figures for one zone (devices, before any calibration).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkFigures {
    /// Σ active_devices × shared area ÷ cell area.
    pub present_devices: f64,
    /// Active devices on the selected cells.
    pub reach_devices: u64,
    /// Cells that share positive area with the zone (indices into the input).
    pub selected: Vec<usize>,
    /// The selected cells' area outside the zone.
    pub overshoot_km2: f64,
    /// Their devices outside the zone: Σ active_devices × outside share.
    pub overshoot_devices: f64,
    /// The selected cells' part outside the zone.
    pub overshoot: MultiPolygon<f64>,
}

/// The estimate for one network's cells (see the module doc).
pub fn estimate(cells: &[Arc<PreparedCell>], zone: &ZoneShape) -> NetworkFigures {
    let mut f = NetworkFigures {
        present_devices: 0.0,
        reach_devices: 0,
        selected: Vec::new(),
        overshoot_km2: 0.0,
        overshoot_devices: 0.0,
        overshoot: MultiPolygon::new(vec![]),
    };
    let mut border: Vec<Polygon<f64>> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let shared = zone.shared_area(cell);
        if shared <= MIN_SHARED_M2 || cell.area_m2 <= 0.0 {
            continue;
        }
        let share = (shared / cell.area_m2).min(1.0);
        f.present_devices += cell.active_devices as f64 * share;
        f.reach_devices += cell.active_devices;
        f.overshoot_devices += cell.active_devices as f64 * (1.0 - share);
        f.selected.push(i);
        if share < 1.0 {
            border.extend(cell.shape.0.iter().cloned());
        }
    }
    if !border.is_empty() {
        let union = geo::unary_union(&border);
        f.overshoot = union.difference(zone.shape());
        f.overshoot_km2 = f.overshoot.geodesic_area_unsigned() / 1e6;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect_rings(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<Vec<[f64; 2]>> {
        vec![vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]
    }

    fn cell(id: &str, devices: u64, footprint: Vec<Vec<Vec<[f64; 2]>>>) -> Arc<PreparedCell> {
        Arc::new(PreparedCell::new(&CellRecord {
            cell_id: id.into(),
            active_devices: devices,
            footprint,
            derived: false,
        }))
    }

    /// A 10 × 10 grid of 0.01° cells from (4.0, 50.0), 100 devices each.
    fn grid() -> Vec<Arc<PreparedCell>> {
        let mut out = Vec::new();
        for i in 0..10 {
            for j in 0..10 {
                let (x, y) = (4.0 + 0.01 * i as f64, 50.0 + 0.01 * j as f64);
                out.push(cell(
                    &format!("{i}-{j}"),
                    100,
                    vec![rect_rings(x, y, x + 0.01, y + 0.01)],
                ));
            }
        }
        out
    }

    fn area_of(polygons: Vec<Vec<Vec<[f64; 2]>>>) -> Area {
        Area {
            polygons,
            circles: vec![],
        }
    }

    /// The reference: a general intersection per cell, no shortcuts.
    fn reference(cells: &[Arc<PreparedCell>], zone: &ZoneShape) -> (f64, u64) {
        let mut present = 0.0;
        let mut reach = 0;
        for c in cells {
            let shared = c.shape.intersection(zone.shape()).geodesic_area_unsigned();
            if shared > MIN_SHARED_M2 {
                present += c.active_devices as f64 * shared / c.area_m2;
                reach += c.active_devices;
            }
        }
        (present, reach)
    }

    // Tolerances are one part per million: the polygon intersection snaps
    // coordinates to a grid of about 1e-9 degrees.

    #[test]
    fn a_zone_on_cell_edges_takes_exactly_its_cells() {
        // Cells 2..5 × 3..7 (4 × 4 = 16 cells), edges shared with the zone.
        let zone = ZoneShape::new(&area_of(vec![rect_rings(4.02, 50.03, 4.06, 50.07)]));
        let f = estimate(&grid(), &zone);
        assert_eq!(f.selected.len(), 16);
        assert_eq!(f.reach_devices, 1600);
        assert!(
            (f.present_devices - 1600.0).abs() < 1e-6 * 1600.0,
            "{}",
            f.present_devices
        );
        assert!(f.overshoot_km2 < 1e-6 && f.overshoot_devices.abs() < 1e-3);
    }

    #[test]
    fn a_zone_halving_cells_by_longitude_counts_half_of_them() {
        // x from 4.025 (half of column 2) to 4.06; y whole rows 3..7.
        let zone = ZoneShape::new(&area_of(vec![rect_rings(4.025, 50.03, 4.06, 50.07)]));
        let f = estimate(&grid(), &zone);
        // Columns 3, 4, 5 whole (12 cells) and column 2 half (4 cells):
        // halves by longitude have equal geodesic areas.
        assert_eq!(f.reach_devices, 1600);
        assert!(
            (f.present_devices - 1400.0).abs() < 1e-6 * 1400.0,
            "{}",
            f.present_devices
        );
        assert!((f.overshoot_devices - 200.0).abs() < 1e-6 * 200.0);
        // The overshoot: the four half cells, 0.005° × 0.04° at 50°N.
        let half = area_of(vec![rect_rings(4.02, 50.03, 4.025, 50.07)]);
        let expected = ZoneShape::new(&half).area_m2 / 1e6;
        assert!((f.overshoot_km2 - expected).abs() / expected < 1e-6);
    }

    #[test]
    fn enclaves_are_left_out_and_border_cells_match_the_reference() {
        // A zone over the grid with a hole (an enclave outside the zone)
        // and an oblique edge.
        let zone = area_of(vec![vec![
            vec![
                [3.995, 49.995],
                [4.105, 50.0],
                [4.09, 50.105],
                [3.99, 50.1],
                [3.995, 49.995],
            ],
            vec![
                [4.033, 50.033],
                [4.033, 50.061],
                [4.071, 50.061],
                [4.071, 50.033],
                [4.033, 50.033],
            ],
        ]]);
        let zs = ZoneShape::new(&zone);
        let cells = grid();
        let f = estimate(&cells, &zs);
        let (present, reach) = reference(&cells, &zs);
        assert!(
            (f.present_devices - present).abs() < 1e-6 * present,
            "{} vs {present}",
            f.present_devices
        );
        assert_eq!(f.reach_devices, reach);
        // Cells wholly inside the hole (4.04..4.06 × 50.04..50.06) are not selected.
        assert!(!f.selected.iter().any(|&i| cells[i].cell_id == "4-4"));
    }

    #[test]
    fn overlapping_discs_and_concave_cells_match_the_reference() {
        // Discs (convex 256-gons) overlapping each other, and an L-shaped cell.
        let disc = |lat, lon, r| {
            circle_polygon(&Circle {
                lat,
                lon,
                radius_km: r,
            })
        };
        let to_rings = |p: Polygon<f64>| {
            vec![
                p.exterior()
                    .coords()
                    .map(|c| [c.x, c.y])
                    .collect::<Vec<_>>(),
            ]
        };
        let cells = vec![
            cell("d1", 500, vec![to_rings(disc(50.85, 4.35, 2.0))]),
            cell("d2", 300, vec![to_rings(disc(50.86, 4.37, 1.5))]),
            cell("d3", 200, vec![to_rings(disc(50.90, 4.50, 1.0))]),
            cell(
                "l",
                400,
                vec![vec![vec![
                    [4.30, 50.80],
                    [4.40, 50.80],
                    [4.40, 50.82],
                    [4.32, 50.82],
                    [4.32, 50.86],
                    [4.30, 50.86],
                    [4.30, 50.80],
                ]]],
            ),
        ];
        let zone = Area {
            polygons: vec![rect_rings(4.31, 50.83, 4.36, 50.87)],
            circles: vec![Circle {
                lat: 50.84,
                lon: 4.39,
                radius_km: 1.2,
            }],
        };
        let zs = ZoneShape::new(&zone);
        let f = estimate(&cells, &zs);
        let (present, reach) = reference(&cells, &zs);
        assert!(
            (f.present_devices - present).abs() < 1e-6 * present,
            "{} vs {present}",
            f.present_devices
        );
        assert_eq!(f.reach_devices, reach);
        assert_eq!(reach, 1200, "d1, d2 and the L cell, not d3");
    }

    #[test]
    fn a_cell_wholly_inside_or_outside_needs_no_clipping() {
        let zone = ZoneShape::new(&area_of(vec![rect_rings(3.0, 49.0, 5.0, 51.0)]));
        let f = estimate(&grid(), &zone);
        assert_eq!(f.reach_devices, 10_000);
        assert!((f.present_devices - 10_000.0).abs() < 1e-6);
        let far = ZoneShape::new(&area_of(vec![rect_rings(5.0, 49.0, 5.1, 49.1)]));
        let f = estimate(&grid(), &far);
        assert_eq!((f.reach_devices, f.selected.len()), (0, 0));
    }

    #[test]
    fn clipped_voronoi_cells_match_the_reference_and_add_up_to_the_network() {
        // 200 sites on a jittered lattice over Belgium, regions clipped to it.
        let country = crate::network::belgium();
        let mut sites = Vec::new();
        for i in 0..40 {
            for j in 0..20 {
                let p = Point::new(
                    2.6 + 0.09 * i as f64 + 0.013 * ((i * 7 + j * 3) % 5) as f64,
                    49.5 + 0.09 * j as f64 + 0.011 * ((i * 3 + j * 5) % 7) as f64,
                );
                if geo::Contains::contains(country, &p) {
                    sites.push(p);
                }
            }
        }
        let footprints = crate::network::voronoi_footprints(&sites).unwrap();
        let cells: Vec<Arc<PreparedCell>> = footprints
            .into_iter()
            .enumerate()
            .map(|(i, fp)| cell(&i.to_string(), 1000 + i as u64, fp))
            .collect();
        let total: u64 = cells.iter().map(|c| c.active_devices).sum();
        // A zone holding the whole country counts every device once.
        let all = ZoneShape::new(&area_of(vec![rect_rings(2.0, 49.0, 7.0, 52.0)]));
        let f = estimate(&cells, &all);
        assert_eq!(f.reach_devices, total);
        assert!((f.present_devices - total as f64).abs() < 1e-6 * total as f64);
        // A concave zone across many regions agrees with the reference.
        let zone = area_of(vec![vec![vec![
            [4.0, 50.5],
            [4.9, 50.45],
            [4.95, 51.0],
            [4.5, 50.7],
            [4.05, 51.05],
            [4.0, 50.5],
        ]]]);
        let zs = ZoneShape::new(&zone);
        let f = estimate(&cells, &zs);
        let (present, reach) = reference(&cells, &zs);
        assert!(
            (f.present_devices - present).abs() < 1e-6 * present,
            "{} vs {present}",
            f.present_devices
        );
        assert_eq!(f.reach_devices, reach);
        assert!(f.overshoot_km2 > 0.0 && f.selected.len() > 10);
    }
}
