//! Polygon validity in O(n log n): rings that cross, touch along a line or
//! fold back on themselves, and holes outside their polygon or inside another.
//!
//! `geo`'s `Validation` compares every pair of segments of a ring (O(n²)):
//! 5 s for a real 22,000-vertex canton. Here the candidate pairs come from
//! `geo`'s sweep line (`Intersections`: only segments whose x-ranges overlap
//! are compared), and the hole checks use indexed point location ([`IndexedPolygons`]).
//! The verdicts follow `geo`'s rules, which the tests pin against it.

use crate::containment::IndexedPolygons;
use geo::algorithm::sweep::{Cross, Intersections};
use geo::line_intersection::LineIntersection;
use geo::{BoundingRect, Coord, Intersects, Line, LineString, Polygon, Rect};

/// One segment of one ring, for the sweep.
#[derive(Debug, Clone, Copy)]
struct Segment {
    line: Line<f64>,
    ring: usize,
}

impl Cross for Segment {
    type Scalar = f64;
    fn line(&self) -> Line<f64> {
        self.line
    }
}

fn ring_name(ring: usize) -> String {
    if ring == 0 {
        "the exterior ring".to_string()
    } else {
        format!("hole {ring}")
    }
}

fn at(c: Coord<f64>) -> String {
    format!("[{}, {}]", c.x, c.y)
}

/// Segments of a ring, skipping zero-length ones (repeated positions).
fn segments(ring_index: usize, ring: &[[f64; 2]]) -> Vec<Segment> {
    let mut points: Vec<Coord<f64>> = Vec::with_capacity(ring.len());
    for p in ring {
        let c = Coord { x: p[0], y: p[1] };
        if points.last() != Some(&c) {
            points.push(c);
        }
    }
    let n = points.len().saturating_sub(1);
    (0..n)
        .map(|i| Segment {
            line: Line::new(points[i], points[i + 1]),
            ring: ring_index,
        })
        .collect()
}

/// The first problem with one intersection, if it is one.
fn judge(a: &Segment, b: &Segment, x: &LineIntersection<f64>) -> Option<String> {
    if a.ring == b.ring {
        let ring = ring_name(a.ring);
        match x {
            // geo's rule: segments of a ring may meet only where one ends
            // and the other starts (neighbours, or a ring touching itself at a vertex).
            _ if a.line.end == b.line.start || a.line.start == b.line.end => None,
            LineIntersection::Collinear { intersection } => Some(format!(
                "{ring} runs back over itself between {} and {} (a spike or a doubled edge)",
                at(intersection.start),
                at(intersection.end)
            )),
            LineIntersection::SinglePoint { intersection, .. } => Some(format!(
                "{ring} has a self-intersection at {}",
                at(*intersection)
            )),
        }
    } else {
        let (r1, r2) = (ring_name(a.ring.min(b.ring)), ring_name(a.ring.max(b.ring)));
        match x {
            LineIntersection::Collinear { intersection } => Some(format!(
                "{r1} and {r2} touch along a line from {} to {}",
                at(intersection.start),
                at(intersection.end)
            )),
            LineIntersection::SinglePoint {
                intersection,
                is_proper: true,
            } => Some(format!("{r1} and {r2} cross at {}", at(*intersection))),
            // Rings may touch at a point.
            LineIntersection::SinglePoint { .. } => None,
        }
    }
}

/// A ring's bounding box and the ring indexed for point location.
type IndexedRing = (Rect<f64>, IndexedPolygons);

/// A ring as a polygon without holes, indexed for point location.
fn indexed(ring: &[[f64; 2]]) -> IndexedRing {
    let ls = LineString::from(ring.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    let poly = Polygon::new(ls, vec![]);
    let rect = poly
        .bounding_rect()
        .unwrap_or_else(|| Rect::new(Coord { x: 0.0, y: 0.0 }, Coord { x: 0.0, y: 0.0 }));
    (rect, IndexedPolygons::new(std::slice::from_ref(&poly)))
}

/// Whether every vertex of `ring` is inside `other` or on its boundary.
/// With no crossing rings, that says whether `ring` lies inside `other`.
fn inside(ring: &[[f64; 2]], other: &IndexedRing) -> bool {
    let (rect, index) = other;
    ring.iter().all(|p| {
        let c = Coord { x: p[0], y: p[1] };
        rect.intersects(&c) && index.covers(c)
    })
}

/// Every reason the rings (exterior first, each closed, positions finite)
/// do not make a valid polygon; empty when valid. Stops after `max` reasons.
/// Whether every point of a ring lies on one line (it encloses nothing).
fn flat(ring: &[[f64; 2]]) -> bool {
    let Some(a) = ring.first() else { return true };
    let Some(b) = ring.iter().find(|p| *p != a) else {
        return true;
    };
    ring.iter()
        .all(|p| (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) == 0.0)
}

pub fn polygon_problems(rings: &[Vec<[f64; 2]>], max: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let all: Vec<Segment> = rings
        .iter()
        .enumerate()
        .flat_map(|(r, ring)| segments(r, ring))
        .collect();
    for (r, ring) in rings.iter().enumerate() {
        let distinct = segments(r, ring).len();
        if distinct < 3 {
            problems.push(format!(
                "{} has {distinct} distinct edges; a ring needs at least 3",
                ring_name(r)
            ));
        } else if flat(ring) {
            problems.push(format!(
                "{} encloses no area: its points lie on one line",
                ring_name(r)
            ));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    for (a, b, x) in Intersections::from_iter(all) {
        if let Some(p) = judge(&a, &b, &x) {
            problems.push(p);
            if problems.len() >= max {
                return problems;
            }
        }
    }
    if !problems.is_empty() || rings.len() < 2 {
        return problems;
    }

    // No ring crosses another: each hole is wholly inside or outside the
    // exterior, and wholly inside or outside every other hole.
    let exterior = indexed(&rings[0]);
    for (h, hole) in rings.iter().enumerate().skip(1) {
        if !inside(hole, &exterior) {
            problems.push(format!("hole {h} is not inside the exterior ring"));
            if problems.len() >= max {
                return problems;
            }
        }
    }
    let holes: Vec<(usize, IndexedRing)> = rings
        .iter()
        .enumerate()
        .skip(1)
        .map(|(h, ring)| (h, indexed(ring)))
        .collect();
    let mut by_x: Vec<usize> = (0..holes.len()).collect();
    by_x.sort_by(|&a, &b| holes[a].1.0.min().x.total_cmp(&holes[b].1.0.min().x));
    for (k, &i) in by_x.iter().enumerate() {
        let ri = holes[i].1.0;
        for &j in &by_x[k + 1..] {
            let rj = holes[j].1.0;
            if rj.min().x > ri.max().x {
                break;
            }
            if !ri.intersects(&rj) {
                continue;
            }
            let (hi, hj) = (holes[i].0, holes[j].0);
            if inside(&rings[hi], &holes[j].1) || inside(&rings[hj], &holes[i].1) {
                problems.push(format!(
                    "holes {} and {} overlap (one lies inside the other)",
                    hi.min(hj),
                    hi.max(hj)
                ));
                if problems.len() >= max {
                    return problems;
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Validation;
    use proptest::prelude::*;

    fn ring(points: &[(f64, f64)]) -> Vec<[f64; 2]> {
        let mut r: Vec<[f64; 2]> = points.iter().map(|p| [p.0, p.1]).collect();
        r.push(r[0]);
        r
    }

    fn geo_polygon(rings: &[Vec<[f64; 2]>]) -> Polygon<f64> {
        let ls = |r: &Vec<[f64; 2]>| {
            LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>())
        };
        Polygon::new(ls(&rings[0]), rings[1..].iter().map(ls).collect())
    }

    fn square(x: f64, y: f64, size: f64) -> Vec<[f64; 2]> {
        ring(&[(x, y), (x + size, y), (x + size, y + size), (x, y + size)])
    }

    #[test]
    fn a_square_with_a_hole_is_valid() {
        assert!(polygon_problems(&[square(0.0, 0.0, 10.0), square(2.0, 2.0, 2.0)], 10).is_empty());
    }

    #[test]
    fn a_bow_tie_self_intersects() {
        let p = polygon_problems(
            &[ring(&[(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])],
            10,
        );
        assert!(p[0].contains("self-intersection at [0.5, 0.5]"), "{p:?}");
    }

    #[test]
    fn a_spike_is_refused() {
        let p = polygon_problems(
            &[ring(&[
                (0.0, 0.0),
                (2.0, 0.0),
                (2.0, 2.0),
                (3.0, 2.0),
                (2.0, 2.0),
                (0.0, 2.0),
            ])],
            10,
        );
        assert!(!p.is_empty());
    }

    #[test]
    fn holes_outside_crossing_or_nested_are_refused() {
        let outer = square(0.0, 0.0, 10.0);
        let p = polygon_problems(&[outer.clone(), square(20.0, 20.0, 1.0)], 10);
        assert!(p[0].contains("hole 1 is not inside"), "{p:?}");
        let p = polygon_problems(&[outer.clone(), square(8.0, 8.0, 4.0)], 10);
        assert!(p[0].contains("cross"), "{p:?}");
        let p = polygon_problems(
            &[outer.clone(), square(1.0, 1.0, 5.0), square(2.0, 2.0, 1.0)],
            10,
        );
        assert!(p[0].contains("holes 1 and 2 overlap"), "{p:?}");
        let p = polygon_problems(&[outer, square(1.0, 1.0, 2.0), square(3.0, 1.0, 2.0)], 10);
        assert!(p[0].contains("touch along a line"), "{p:?}");
    }

    #[test]
    fn a_ring_with_no_area_is_refused_even_where_geo_accepts_it() {
        // Found by the property test below: all on x = 7, with a hole
        // touching it; geo's validation accepts it.
        let flat = vec![[7.0, 6.0], [7.0, 0.0], [7.0, 1.0], [7.0, 6.0]];
        assert!(!polygon_problems(&[flat.clone(), square(7.0, 1.0, 1.0)], 10).is_empty());
        assert!(!polygon_problems(&[flat], 10).is_empty());
    }

    #[test]
    fn repeated_positions_are_harmless() {
        let r = vec![
            [0.0, 0.0],
            [1.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.0, 1.0],
            [0.0, 0.0],
        ];
        assert!(polygon_problems(&[r], 10).is_empty());
    }

    proptest! {
        // Random star-ish and scrambled rings: the sweep says valid exactly
        // when geo's quadratic validation does.
        #[test]
        fn agrees_with_geo_validation(
            points in prop::collection::vec((0u8..12, 0u8..12), 3..12),
            hole in prop::option::of((1u8..9, 1u8..9, 1u8..4)),
        ) {
            let distinct: std::collections::HashSet<_> = points.iter().collect();
            prop_assume!(distinct.len() == points.len());
            let pts: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (f64::from(x), f64::from(y))).collect();
            // geo calls a ring with no area (all its points on one line)
            // valid, even with a hole touching it; bealert refuses it
            // (a_ring_with_no_area_is_refused…). The oracle is not asked.
            let mut rings = vec![ring(&pts)];
            prop_assume!(!flat(&rings[0]));
            if let Some((x, y, s)) = hole {
                rings.push(square(f64::from(x), f64::from(y), f64::from(s)));
            }
            let ours = polygon_problems(&rings, 10).is_empty();
            let geos = geo_polygon(&rings).is_valid();
            prop_assert_eq!(ours, geos, "rings {:?}: ours {:?}", rings, polygon_problems(&rings, 10));
        }
    }
}
