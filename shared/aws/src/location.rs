//! The AWS home's geocoder: Amazon Location Service (a place index),
//! limited to Belgium. No emulator exists; tests mock the SDK.

use async_trait::async_trait;
use aws_sdk_location::Client;
use bealert_app::ports::{AddressQuery, GeocodeError, Geocoder, Place, Precision};

pub struct LocationGeocoder {
    pub client: Client,
    /// The place index (`BEALERT_PLACE_INDEX`; the template creates one).
    pub index: String,
}

/// The text sent for a query: street, postal code and municipality.
pub fn query_text(q: &AddressQuery) -> String {
    [
        q.street.as_deref(),
        q.postal_code.as_deref(),
        q.municipality.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(", ")
}

#[async_trait]
impl Geocoder for LocationGeocoder {
    async fn geocode(&self, query: &AddressQuery) -> Result<Vec<Place>, GeocodeError> {
        let text = query_text(query);
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .search_place_index_for_text()
            .index_name(&self.index)
            .text(text)
            .filter_countries("BEL")
            .max_results(5)
            .send()
            .await
            .map_err(|e| {
                GeocodeError::Unavailable(
                    aws_sdk_location::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        Ok(out
            .results()
            .iter()
            .filter_map(|r| {
                let place = r.place()?;
                let point = place.geometry()?.point();
                let [lon, lat] = point[..] else { return None };
                // What the service matched says how close the point is.
                let precision =
                    if place.address_number().is_some() && place.interpolated() != Some(true) {
                        Precision::Address
                    } else if place.street().is_some() {
                        Precision::Street
                    } else {
                        Precision::Municipality
                    };
                Some(Place {
                    lat,
                    lon,
                    label: place.label().unwrap_or_default().to_string(),
                    precision,
                })
            })
            .collect())
    }
}
