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
//! Areas are WGS84 ellipsoidal areas of regions bounded by straight lines in
//! longitude/latitude, as GeoJSON draws them ([`area_m2`]): exact along
//! every edge, so a cell's inside and outside parts add up to the cell. A
//! circle of the zone counts as the 256-gon inscribed in it (its area
//! within 0.01 % of the disk's).
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
    BooleanOps, BoundingRect, Coord, Destination, Geodesic, Line, LineString, MultiPolygon, Orient,
    Point, Polygon, Rect,
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
        let area_m2 = area_m2(&shape);
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
    /// Per polygon, its rings (exterior first) in runs with their boxes.
    rings: Vec<Vec<ChunkedRing>>,
}

/// Vertices per run of a [`ChunkedRing`].
const RUN: usize = 64;

/// A ring (closing point dropped) in runs of [`RUN`] vertices, each with
/// its bounding box: clipping a long ring to a small box skips the runs
/// that lie wholly in one of the eight regions around the box.
struct ChunkedRing {
    bbox: Rect<f64>,
    pts: Vec<Coord<f64>>,
    runs: Vec<(usize, usize, Rect<f64>)>,
}

impl ChunkedRing {
    fn new(ring: &LineString<f64>) -> Option<Self> {
        let mut pts = ring.0.clone();
        if pts.len() > 1 && pts.first() == pts.last() {
            pts.pop();
        }
        let bbox = ring.bounding_rect()?;
        let runs = (0..pts.len())
            .step_by(RUN)
            .map(|start| {
                let end = (start + RUN).min(pts.len()) - 1;
                let b = LineString::new(pts[start..=end].to_vec())
                    .bounding_rect()
                    .unwrap_or(bbox);
                (start, end, b)
            })
            .collect();
        Some(Self { bbox, pts, runs })
    }

    /// The ring with every run that lies wholly in one region outside
    /// `clip` (left, upper left, above, …) cut to its two ends. Such a run
    /// and the straight segment between its ends stay in that (convex)
    /// region, so clipping maps both onto the same stretch of the box's
    /// border: the clipped shape is the same.
    fn compressed(&self, lo: Coord<f64>, hi: Coord<f64>) -> Vec<Coord<f64>> {
        let side = |min: f64, max: f64, a: f64, b: f64| {
            if max < a {
                Some(0)
            } else if min > b {
                Some(2)
            } else if min >= a && max <= b {
                Some(1)
            } else {
                None
            }
        };
        let mut out = Vec::with_capacity(self.runs.len() * 2);
        for &(start, end, b) in &self.runs {
            let region = (
                side(b.min().x, b.max().x, lo.x, hi.x),
                side(b.min().y, b.max().y, lo.y, hi.y),
            );
            match region {
                (Some(x), Some(y)) if (x, y) != (1, 1) => {
                    out.push(self.pts[start]);
                    out.push(self.pts[end]);
                }
                _ => out.extend_from_slice(&self.pts[start..=end]),
            }
        }
        out
    }
}

/// The area (m²) on the WGS84 ellipsoid of a shape whose edges are
/// straight lines in longitude/latitude, as GeoJSON (RFC 7946) draws them.
///
/// By Green's theorem the area is −∮ q(φ) dλ, where q is the integral of
/// the ellipsoid's area element over latitude (closed form); along a
/// straight edge it is integrated by 5-point Gauss–Legendre quadrature
/// (edges over half a degree of latitude are split first). Unlike the area
/// of a polygon with geodesic edges, this one adds up exactly when a shape
/// is cut into pieces — a cell's part inside the zone plus its part outside
/// is the cell — which the estimate relies on. Each ring counts by its
/// absolute value (exteriors add, holes subtract), whatever its winding.
pub fn area_m2(shape: &MultiPolygon<f64>) -> f64 {
    shape
        .iter()
        .map(|p| ring_area(p.exterior()) - p.interiors().iter().map(ring_area).sum::<f64>())
        .sum()
}

const WGS84_A: f64 = 6_378_137.0;
const WGS84_F: f64 = 1.0 / 298.257_223_563;

/// q(φ) = ∫₀^φ a²(1−e²) cos φ′ / (1 − e² sin² φ′)² dφ′.
fn q(phi: f64) -> f64 {
    let e2 = WGS84_F * (2.0 - WGS84_F);
    let e = e2.sqrt();
    let s = phi.sin();
    let k = WGS84_A * WGS84_A * (1.0 - e2) / 2.0;
    k * (s / (1.0 - e2 * s * s) + ((1.0 + e * s) / (1.0 - e * s)).ln() / (2.0 * e))
}

/// ∫ q(φ) dλ along the straight edge from `a` to `b` (degrees).
fn edge_integral(a: Coord<f64>, b: Coord<f64>) -> f64 {
    const NODES: [(f64, f64); 5] = [
        (0.046_910_077_030_668, 0.118_463_442_528_095),
        (0.230_765_344_947_158, 0.239_314_335_249_683),
        (0.5, 0.284_444_444_444_444),
        (0.769_234_655_052_842, 0.239_314_335_249_683),
        (0.953_089_922_969_332, 0.118_463_442_528_095),
    ];
    let dlon = (b.x - a.x).to_radians();
    if dlon == 0.0 {
        return 0.0;
    }
    let pieces = ((b.y - a.y).abs() / 0.5).ceil().max(1.0) as usize;
    let (p0, p1) = (a.y.to_radians(), b.y.to_radians());
    let mut sum = 0.0;
    for k in 0..pieces {
        let (t0, t1) = (k as f64 / pieces as f64, (k + 1) as f64 / pieces as f64);
        for (x, w) in NODES {
            let t = t0 + (t1 - t0) * x;
            sum += w * (t1 - t0) * q(p0 + (p1 - p0) * t);
        }
    }
    dlon * sum
}

/// A ring's area (m²), by its absolute value.
fn ring_area(ring: &LineString<f64>) -> f64 {
    let pts = &ring.0;
    if pts.len() < 3 {
        return 0.0;
    }
    let mut sum = 0.0;
    for w in pts.windows(2) {
        sum += edge_integral(w[0], w[1]);
    }
    if pts.first() != pts.last() {
        sum += edge_integral(pts[pts.len() - 1], pts[0]);
    }
    sum.abs()
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
        // The union's fill rule counts windings: every part the same way round.
        let parts: Vec<Polygon<f64>> = parts.iter().map(|p| p.orient(Direction::Default)).collect();
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
        let mut rings = Vec::new();
        for p in &shape {
            let mut chunked = Vec::new();
            for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                edges.extend(ring.lines().map(Edge));
                chunked.extend(ChunkedRing::new(ring));
            }
            rings.push(chunked);
        }
        Self {
            bbox: shape.bounding_rect(),
            edges: RTree::bulk_load(edges),
            rings,
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
        let ring = |r: &ChunkedRing| -> Option<LineString<f64>> {
            if !meets(&r.bbox) {
                return None;
            }
            let mut pts = clip_ring(&r.compressed(clip[0], clip[2]), &clip);
            if pts.len() < 3 {
                return None;
            }
            pts.push(pts[0]);
            Some(LineString::new(pts))
        };
        let mut out = Vec::new();
        for rings in &self.rings {
            let Some((exterior, holes)) = rings.split_first() else {
                continue;
            };
            if let Some(ext) = ring(exterior) {
                out.push(Polygon::new(ext, holes.iter().filter_map(ring).collect()));
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
        let Some(zb) = self.bbox else {
            return 0.0;
        };
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
        // by a rectangle), then an exact intersection of small shapes.
        let local = self.clipped_to(&cb);
        if local.0.is_empty() {
            return 0.0;
        }
        area_m2(&cell.shape.intersection(&local))
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
    /// The selected cells partly outside the zone (indices into the input).
    pub border: Vec<usize>,
}

/// The estimate for one network's cells (see the module doc).
pub fn estimate(cells: &[Arc<PreparedCell>], zone: &ZoneShape) -> NetworkFigures {
    let mut f = NetworkFigures {
        present_devices: 0.0,
        reach_devices: 0,
        selected: Vec::new(),
        border: Vec::new(),
        overshoot_km2: 0.0,
        overshoot_devices: 0.0,
    };
    let mut outside_m2 = 0.0;
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
            f.border.push(i);
            outside_m2 += cell.area_m2 - shared;
        }
    }
    if f.border.is_empty() {
        return f;
    }
    // The overshoot is the union of the border cells minus the zone. Cells
    // that tile the land (Voronoi regions, grids) do not overlap: then it
    // is the sum of their outside parts, already known. Overlapping
    // footprints (discs) need the union's difference with the zone.
    let union = union_of(f.border.iter().map(|&i| &cells[i].shape));
    let cells_m2: f64 = f.border.iter().map(|&i| cells[i].area_m2).sum();
    f.overshoot_km2 = if (area_m2(&union) - cells_m2).abs() <= NO_OVERLAP * cells_m2 {
        outside_m2 / 1e6
    } else {
        area_m2(&union.difference(zone.shape())) / 1e6
    };
    f
}

/// Footprints overlapping by less than this share of their area count as a
/// tiling (the union snaps coordinates to about 1e-9 degrees).
const NO_OVERLAP: f64 = 1e-6;

/// The union of shapes, each oriented first (the union's fill rule counts
/// windings).
pub fn union_of<'a>(shapes: impl Iterator<Item = &'a MultiPolygon<f64>>) -> MultiPolygon<f64> {
    let polygons: Vec<Polygon<f64>> = shapes
        .flat_map(|s| s.iter().map(|p| p.orient(Direction::Default)))
        .collect();
    geo::unary_union(&polygons)
}

/// The area (km²) outside the zone of any of these cells: the overshoot of
/// several networks together.
pub fn overshoot_km2<'a>(cells: impl Iterator<Item = &'a PreparedCell>, zone: &ZoneShape) -> f64 {
    let union = union_of(cells.map(|c| &c.shape));
    area_m2(&union.difference(zone.shape())) / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::GeodesicArea;

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
            ..Area::default()
        }
    }

    /// The reference: a general intersection per cell, no shortcuts.
    fn reference(cells: &[Arc<PreparedCell>], zone: &ZoneShape) -> (f64, u64) {
        let mut present = 0.0;
        let mut reach = 0;
        for c in cells {
            let shared = area_m2(&c.shape.intersection(zone.shape()));
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
        let expected = area_m2(ZoneShape::new(&half).shape()) / 1e6;
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
            ..Area::default()
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
        // The overshoot, against the union of the selected cells minus the zone.
        let expected =
            area_m2(&union_of(f.selected.iter().map(|&i| &cells[i].shape)).difference(zs.shape()))
                / 1e6;
        assert!(
            (f.overshoot_km2 - expected).abs() < 1e-6 * expected,
            "{} vs {expected}",
            f.overshoot_km2
        );
    }

    #[test]
    fn long_borders_clipped_by_runs_match_the_reference() {
        // A 4,000-vertex wobbly ring with a 1,500-vertex hole over the grid:
        // most runs of the border lie far from any one cell.
        let wobbly = |n: usize, r: f64, k: f64, rev: bool| {
            let mut ring: Vec<[f64; 2]> = (0..n)
                .map(|i| {
                    let t = std::f64::consts::TAU * i as f64 / n as f64;
                    let rr = r * (1.0 + 0.15 * (k * t).sin() + 0.05 * (7.0 * k * t).cos());
                    [4.05 + rr * t.cos(), 50.05 + 0.7 * rr * t.sin()]
                })
                .collect();
            if rev {
                ring.reverse();
            }
            ring.push(ring[0]);
            ring
        };
        let zone = area_of(vec![vec![
            wobbly(4000, 0.045, 9.0, false),
            wobbly(1500, 0.012, 5.0, true),
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
        for c in &cells {
            let fast = zs.shared_area(c);
            let slow = area_m2(&c.shape.intersection(zs.shape()));
            assert!(
                (fast - slow).abs() <= 1e-6 * c.area_m2,
                "{}: {fast} vs {slow}",
                c.cell_id
            );
        }
    }

    #[test]
    fn overlapping_zone_polygons_drawn_either_way_round_are_one_union() {
        // Two overlapping squares, one clockwise: the zone is their union
        // (a union of opposite windings would cancel where they overlap).
        let mut b = rect_rings(4.03, 50.03, 4.07, 50.07);
        b[0].reverse();
        let zone = ZoneShape::new(&area_of(vec![rect_rings(4.01, 50.01, 4.05, 50.05), b]));
        let f = estimate(&grid(), &zone);
        // 16 + 16 cells less the 4 shared: 28 cells of 100 devices.
        assert_eq!(f.reach_devices, 2800, "{}", f.reach_devices);
        assert!(
            (f.present_devices - 2800.0).abs() < 1e-6 * 2800.0,
            "{}",
            f.present_devices
        );
    }

    #[test]
    fn areas_agree_with_geodesic_ones_where_edges_are_short_and_add_up_when_cut() {
        // A 1 km square: straight and geodesic edges differ by millimetres.
        let small = MultiPolygon::new(vec![crate::area::rings_to_polygon(&rect_rings(
            4.35, 50.85, 4.364, 50.859,
        ))]);
        let (a, g) = (
            area_m2(&small),
            small.orient(Direction::Default).geodesic_area_unsigned(),
        );
        assert!((a - g).abs() < 1e-6 * g, "{a} vs {g}");
        // Belgium (Natural Earth outline): about 30,700 km².
        let be = area_m2(&MultiPolygon::new(vec![crate::network::belgium().clone()])) / 1e6;
        assert!((30_500.0..30_900.0).contains(&be), "{be}");
        // A long edge cut at a point on it: the two pieces add up exactly.
        let whole = crate::area::rings_to_polygon(&[vec![
            [3.0, 50.0],
            [6.0, 51.5],
            [3.0, 51.5],
            [3.0, 50.0],
        ]]);
        let left = crate::area::rings_to_polygon(&[vec![
            [3.0, 50.0],
            [4.5, 50.75],
            [4.5, 51.5],
            [3.0, 51.5],
            [3.0, 50.0],
        ]]);
        let right = crate::area::rings_to_polygon(&[vec![
            [4.5, 50.75],
            [6.0, 51.5],
            [4.5, 51.5],
            [4.5, 50.75],
        ]]);
        let one = |p: Polygon<f64>| area_m2(&MultiPolygon::new(vec![p]));
        let (w, l, r) = (one(whole), one(left), one(right));
        assert!((w - (l + r)).abs() < 1e-9 * w, "{w} vs {}", l + r);
    }

    #[test]
    fn areas_of_polygon_results_do_not_depend_on_their_winding() {
        // Polygon operations may return clockwise rings; read as they are,
        // a clockwise square is the rest of the Earth (the bench's overshoot
        // read -1.0e9 km² before the helper).
        let ccw = MultiPolygon::new(vec![crate::area::rings_to_polygon(&rect_rings(
            4.0, 50.0, 4.1, 50.1,
        ))]);
        let cw = ccw.orient(Direction::Reversed);
        assert!(
            cw.geodesic_area_unsigned() > 1e14,
            "the trap this helper avoids"
        );
        let a = area_m2(&ccw);
        assert!(
            (a - area_m2(&cw)).abs() < 1e-6 * a && a > 7e7 && a < 8e7,
            "{a}"
        );
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
        // The overshoot lies within the selected cells: never more than
        // their area less the shared part.
        // Voronoi regions tile the land: the overshoot is the sum of the
        // border cells' outside parts; it agrees with union minus zone.
        let expected =
            area_m2(&union_of(f.selected.iter().map(|&i| &cells[i].shape)).difference(zs.shape()))
                / 1e6;
        assert!(
            (f.overshoot_km2 - expected).abs() < 1e-6 * expected,
            "{} vs {expected}",
            f.overshoot_km2
        );
    }
}
