//! Mobile networks (Alert-SMS): their names, the cells they upload, and
//! the footprints bealert derives when a network gives only site positions.
//!
//! A *network* is a mobile network operator (`proximus`, `orange`, `base`);
//! an *operator* in bealert is an alerting authority. A network uploads its
//! cells as a GeoJSON FeatureCollection: each feature has
//! `properties.cell_id`, `properties.active_devices` and a footprint
//! (Polygon/MultiPolygon), or a Point (the site), whose footprint is then its
//! Voronoi region clipped to the country.

use crate::area::AreaRequest;
use crate::error::{Collector, ValidationErrors};
use geo::{BooleanOps, BoundingRect, Contains, Coord, MultiPoint, MultiPolygon, Point, Polygon};
use geo::{Voronoi, VoronoiClip, VoronoiParams};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;

/// Belgium's outline as a GeoJSON Feature (Natural Earth 1:10m, public domain).
pub const BELGIUM_GEOJSON: &str = include_str!("../data/belgium.geojson");

/// Cells are indexed by the H3 cells of this resolution their footprint
/// touches (about 250 km² each): a zone reads only the cells of its own
/// parents, never a whole network.
pub const INDEX_RESOLUTION: Resolution = Resolution::Five;

/// The most cells one upload may carry.
pub const MAX_CELLS: usize = 50_000;
/// The most active devices one cell may report.
pub const MAX_DEVICES_PER_CELL: u64 = 10_000_000;

/// The country's outline, parsed once.
pub fn belgium() -> &'static Polygon<f64> {
    static SHAPE: OnceLock<Polygon<f64>> = OnceLock::new();
    SHAPE.get_or_init(|| {
        let v: serde_json::Value =
            serde_json::from_str(BELGIUM_GEOJSON).expect("the bundled outline is JSON");
        let rings: Vec<Vec<[f64; 2]>> =
            serde_json::from_value(v["geometry"]["coordinates"].clone())
                .expect("the bundled outline is a Polygon");
        // Counter-clockwise, as geodesic areas expect (Natural Earth's is clockwise).
        geo::Orient::orient(
            &crate::area::rings_to_polygon(&rings),
            geo::orient::Direction::Default,
        )
    })
}

/// A network's name: lowercase letters, digits and hyphens, 2 to 32
/// characters, starting with a letter (`proximus`, `orange`, `base`).
pub fn validate_network_name(name: &str) -> Result<(), String> {
    let ok = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "network name {name:?} must be 2 to 32 lowercase letters, digits or hyphens, \
             starting with a letter, e.g. \"proximus\""
        ))
    }
}

/// A footprint: polygons, each its rings (exterior first) of `[lon, lat]`.
pub type Footprint = Vec<Vec<Vec<[f64; 2]>>>;

/// One cell as stored: its footprint as polygons of rings of `[lon, lat]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub cell_id: String,
    pub active_devices: u64,
    pub footprint: Footprint,
    /// The footprint is the site's Voronoi region, derived by bealert.
    #[serde(default)]
    pub derived: bool,
}

impl CellRecord {
    pub fn multipolygon(&self) -> MultiPolygon<f64> {
        MultiPolygon::new(
            self.footprint
                .iter()
                .map(|p| crate::area::rings_to_polygon(p))
                .collect(),
        )
    }

    /// The index cells ([`INDEX_RESOLUTION`]) the footprint touches.
    pub fn parents(&self) -> Vec<u64> {
        cover_index_cells(&self.multipolygon())
    }
}

/// A validated upload.
#[derive(Debug, Clone, PartialEq)]
pub struct CellsUpload {
    pub cells: Vec<CellRecord>,
    /// How many footprints bealert derived from a site position.
    pub derived: usize,
}

impl CellsUpload {
    pub fn active_devices(&self) -> u64 {
        self.cells.iter().map(|c| c.active_devices).sum()
    }
}

/// The index cells a shape touches, with their neighbours: H3 cells have
/// great-circle edges, the shape straight ones, so a shape that touches a
/// cell by centimetres is still found through the neighbour ring.
pub fn cover_index_cells(shape: &MultiPolygon<f64>) -> Vec<u64> {
    let mut tiler = TilerBuilder::new(INDEX_RESOLUTION)
        .containment_mode(ContainmentMode::Covers)
        .build();
    for p in shape {
        // Validated shapes only; one the tiler refuses is indexed by its vertices.
        if tiler.add(p.clone()).is_err() {
            continue;
        }
    }
    let mut out: BTreeSet<u64> = BTreeSet::new();
    for cell in tiler.into_coverage() {
        out.insert(u64::from(cell));
    }
    // Every vertex's own cell too (a shape the tiler refused, or a sliver).
    for p in shape {
        for c in p.exterior().coords() {
            if let Ok(ll) = h3o::LatLng::new(c.y, c.x) {
                out.insert(u64::from(ll.to_cell(INDEX_RESOLUTION)));
            }
        }
    }
    let found: Vec<u64> = out.iter().copied().collect();
    for raw in found {
        if let Ok(cell) = CellIndex::try_from(raw) {
            for n in cell.grid_disk::<Vec<_>>(1) {
                out.insert(u64::from(n));
            }
        }
    }
    out.into_iter().collect()
}

#[derive(Deserialize)]
struct RawCollection {
    #[serde(rename = "type")]
    kind: String,
    features: Vec<RawFeature>,
}

#[derive(Deserialize)]
struct RawFeature {
    #[serde(default)]
    properties: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    geometry: Option<serde_json::Value>,
}

/// Parses and validates a network's cells; every problem is reported with
/// the path of the feature it is in.
pub fn parse_cells(body: &[u8]) -> Result<CellsUpload, ValidationErrors> {
    let raw: RawCollection = crate::error::parse_json(body)?;
    let mut errors = Collector::default();
    if raw.kind != "FeatureCollection" {
        errors.push(
            "type",
            format!(
                "expected a FeatureCollection, got {:?}; wrap the cells in one",
                raw.kind
            ),
        );
    }
    if raw.features.is_empty() {
        errors.push("features", "no cells: give at least one feature");
    }
    if raw.features.len() > MAX_CELLS {
        errors.push(
            "features",
            format!(
                "{} cells is more than the {MAX_CELLS} accepted in one upload",
                raw.features.len()
            ),
        );
        return errors.finish(CellsUpload {
            cells: Vec::new(),
            derived: 0,
        });
    }
    let mut cells = Vec::with_capacity(raw.features.len());
    let mut sites: Vec<(usize, Point<f64>)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, f) in raw.features.iter().enumerate() {
        let path = format!("features[{i}]");
        let props = f.properties.as_ref();
        let cell_id = match props.and_then(|p| p.get("cell_id")) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() && s.len() <= 64 => {
                s.clone()
            }
            Some(serde_json::Value::Number(n)) if n.is_u64() => n.to_string(),
            _ => {
                errors.push(
                    format!("{path}.properties.cell_id"),
                    "give the cell's id: a string of 1 to 64 characters (e.g. \"206-01-1234-5\")",
                );
                String::new()
            }
        };
        if !cell_id.is_empty() && !seen.insert(cell_id.clone()) {
            errors.push(
                format!("{path}.properties.cell_id"),
                format!("cell {cell_id:?} appears twice; each cell once"),
            );
        }
        let devices = match props.and_then(|p| p.get("active_devices")) {
            Some(v) if v.as_u64().is_some_and(|n| n <= MAX_DEVICES_PER_CELL) => {
                v.as_u64().unwrap_or(0)
            }
            _ => {
                errors.push(
                    format!("{path}.properties.active_devices"),
                    format!(
                        "give the number of active devices in the cell: an integer from 0 to {MAX_DEVICES_PER_CELL}"
                    ),
                );
                0
            }
        };
        let gpath = format!("{path}.geometry");
        let footprint = match &f.geometry {
            Some(g) if g.get("type").and_then(|t| t.as_str()) == Some("Point") => {
                match point(g) {
                    Some(p) if belgium().contains(&p) => sites.push((i, p)),
                    Some(p) => errors.push(
                        format!("{gpath}.coordinates"),
                        format!(
                            "the site [{}, {}] is outside Belgium; its footprint cannot be derived — give a Polygon instead",
                            p.x(),
                            p.y()
                        ),
                    ),
                    None => errors.push(
                        format!("{gpath}.coordinates"),
                        "a Point needs [lon, lat] with finite numbers",
                    ),
                }
                Vec::new()
            }
            Some(g) => {
                let request = AreaRequest {
                    geojson: Some(g.clone()),
                    ..AreaRequest::default()
                };
                match request.validate("g") {
                    Ok(area) => area.polygons,
                    Err(e) => {
                        for fe in e.0 {
                            let rest = fe.path.strip_prefix("g.geojson").unwrap_or(&fe.path);
                            errors.push(format!("{gpath}{rest}"), fe.message);
                        }
                        Vec::new()
                    }
                }
            }
            None => {
                errors.push(
                    gpath,
                    "give the cell's footprint (Polygon or MultiPolygon) or its site (Point)",
                );
                Vec::new()
            }
        };
        cells.push(CellRecord {
            cell_id,
            active_devices: devices,
            footprint,
            derived: false,
        });
    }
    if !errors.is_empty() {
        return errors.finish(CellsUpload {
            cells: Vec::new(),
            derived: 0,
        });
    }
    let derived = sites.len();
    if !sites.is_empty() {
        let points: Vec<Point<f64>> = sites.iter().map(|(_, p)| *p).collect();
        match voronoi_footprints(&points) {
            Ok(footprints) => {
                for ((i, _), fp) in sites.iter().zip(footprints) {
                    cells[*i].footprint = fp;
                    cells[*i].derived = true;
                }
            }
            Err(why) => errors.push("features", why),
        }
    }
    errors.finish(CellsUpload { cells, derived })
}

fn point(g: &serde_json::Value) -> Option<Point<f64>> {
    let c = g.get("coordinates")?.as_array()?;
    let lon = c.first()?.as_f64()?;
    let lat = c.get(1)?.as_f64()?;
    (lon.is_finite() && lat.is_finite()).then(|| Point::new(lon, lat))
}

/// Each site's Voronoi region, clipped to Belgium: the footprint a cell
/// has when the network gives only where its antenna stands.
pub fn voronoi_footprints(sites: &[Point<f64>]) -> Result<Vec<Footprint>, String> {
    let country = belgium();
    if sites.len() == 1 {
        return Ok(vec![to_rings(&MultiPolygon::new(vec![country.clone()]))]);
    }
    let mut unique: HashSet<(u64, u64)> = HashSet::new();
    for p in sites {
        if !unique.insert((p.x().to_bits(), p.y().to_bits())) {
            return Err(format!(
                "two sites stand at [{}, {}]; give each cell its own position or a footprint",
                p.x(),
                p.y()
            ));
        }
    }
    let bounds = country
        .bounding_rect()
        .ok_or("the country outline is empty")?;
    // Voronoi regions on the padded box, then each clipped to the country:
    // the same answer as clipping to it directly, and independent of how
    // the library treats a concave clip.
    let pad = 1.0;
    let frame = geo::Rect::new(
        Coord {
            x: bounds.min().x - pad,
            y: bounds.min().y - pad,
        },
        Coord {
            x: bounds.max().x + pad,
            y: bounds.max().y + pad,
        },
    )
    .to_polygon();
    // Three far ghost sites make any set of real ones (two, or all on one
    // line) a proper triangulation; no point of the frame is nearer to a
    // ghost than to a real site, so the real regions are unchanged.
    let c = frame.exterior().0[0];
    let ghosts = [
        Point::new(c.x - 1000.0, c.y - 1000.0),
        Point::new(c.x + 1000.0, c.y - 1000.0),
        Point::new(c.x, c.y + 1000.0),
    ];
    let multi = MultiPoint::new(sites.iter().copied().chain(ghosts).collect());
    let mut regions = multi
        .voronoi_cells_with_params(VoronoiParams::new().clip(VoronoiClip::Polygon(&frame)))
        .map_err(|e| format!("the sites' Voronoi regions cannot be computed: {e:?}"))?;
    regions.truncate(sites.len());
    if regions.len() != sites.len() {
        return Err(format!(
            "{} Voronoi regions for {} sites; give footprints instead",
            regions.len(),
            sites.len()
        ));
    }
    let country_rect = bounds;
    Ok(regions
        .iter()
        .map(|r| {
            let inside_box = r.bounding_rect().is_some_and(|b| {
                b.min().x >= country_rect.min().x
                    && b.max().x <= country_rect.max().x
                    && b.min().y >= country_rect.min().y
                    && b.max().y <= country_rect.max().y
            });
            // A region well inside the country needs no clipping.
            if inside_box && r.exterior().coords().all(|c| country.contains(c)) {
                to_rings(&MultiPolygon::new(vec![r.clone()]))
            } else {
                to_rings(&r.intersection(country))
            }
        })
        .collect())
}

fn to_rings(mp: &MultiPolygon<f64>) -> Footprint {
    mp.iter()
        .map(|p| {
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(|ring| ring.coords().map(|c| [c.x, c.y]).collect())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::GeodesicArea;

    fn fc(features: &[serde_json::Value]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"type": "FeatureCollection", "features": features}))
            .unwrap()
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_network_name("proximus").is_ok());
        assert!(validate_network_name("base-2").is_ok());
        for bad in ["", "P", "Proximus", "1abc", "a b", &"x".repeat(33)] {
            assert!(validate_network_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn polygons_and_points_load_and_sites_get_clipped_voronoi_regions() {
        let body = fc(&[
            serde_json::json!({"type": "Feature", "properties": {"cell_id": "a", "active_devices": 10},
              "geometry": {"type": "Polygon", "coordinates": [[[4.3,50.8],[4.4,50.8],[4.4,50.9],[4.3,50.9],[4.3,50.8]]]}}),
            serde_json::json!({"type": "Feature", "properties": {"cell_id": "b", "active_devices": 5},
              "geometry": {"type": "Point", "coordinates": [4.35, 50.85]}}),
            serde_json::json!({"type": "Feature", "properties": {"cell_id": "c", "active_devices": 7},
              "geometry": {"type": "Point", "coordinates": [5.5, 50.3]}}),
        ]);
        let up = parse_cells(&body).unwrap();
        assert_eq!(up.derived, 2);
        assert_eq!(up.active_devices(), 22);
        assert!(!up.cells[0].derived && up.cells[1].derived);
        // Two sites split the country between them: their regions add up
        // to Belgium's area (about 30,700 km² for this outline).
        let total: f64 = up.cells[1..]
            .iter()
            .map(|c| c.multipolygon().geodesic_area_unsigned())
            .sum();
        let country = belgium().geodesic_area_unsigned();
        assert!(
            (total - country).abs() / country < 1e-6,
            "{total} vs {country}"
        );
        assert!(!up.cells[0].parents().is_empty());
    }

    #[test]
    fn every_bad_feature_is_named() {
        let body = fc(&[
            serde_json::json!({"type": "Feature", "properties": {"active_devices": -1},
              "geometry": {"type": "Point", "coordinates": [-3.7, 40.4]}}),
            serde_json::json!({"type": "Feature", "properties": {"cell_id": "x", "active_devices": 1},
              "geometry": {"type": "Polygon", "coordinates": [[[4.3,50.8],[4.4,50.8],[4.3,50.8]]]}}),
            serde_json::json!({"type": "Feature", "properties": {"cell_id": "x", "active_devices": 1}}),
        ]);
        let e = parse_cells(&body).unwrap_err();
        let paths: Vec<&str> = e.0.iter().map(|f| f.path.as_str()).collect();
        assert!(
            paths.contains(&"features[0].properties.cell_id"),
            "{paths:?}"
        );
        assert!(paths.contains(&"features[0].properties.active_devices"));
        assert!(paths.contains(&"features[0].geometry.coordinates"));
        assert!(paths.iter().any(|p| p.starts_with("features[1].geometry")));
        assert!(paths.contains(&"features[2].properties.cell_id"));
        assert!(paths.contains(&"features[2].geometry"));
    }
}
