//! The Amazon Location geocoder against a mocked SDK (no emulator exists).

use aws_sdk_location::operation::search_place_index_for_text::SearchPlaceIndexForTextOutput;
use aws_sdk_location::types::{Place, PlaceGeometry, SearchForTextResult};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use bealert_app::ports::{AddressQuery, Geocoder, Precision};
use bealert_aws::location::LocationGeocoder;

fn result(
    label: &str,
    lon: f64,
    lat: f64,
    number: Option<&str>,
    street: Option<&str>,
    interpolated: bool,
) -> SearchForTextResult {
    let mut place = Place::builder()
        .label(label)
        .geometry(PlaceGeometry::builder().point(lon).point(lat).build())
        .interpolated(interpolated);
    if let Some(n) = number {
        place = place.address_number(n);
    }
    if let Some(s) = street {
        place = place.street(s);
    }
    SearchForTextResult::builder().place(place.build()).build()
}

#[tokio::test]
async fn an_address_is_searched_in_belgium_and_its_precision_said() {
    let rule = mock!(aws_sdk_location::Client::search_place_index_for_text)
        .match_requests(|r| {
            r.index_name() == Some("bealert-places")
                && r.text() == Some("Rue de Neufchâteau 12, 6600, Bastogne")
                && r.filter_countries() == ["BEL".to_string()]
        })
        .then_output(|| {
            SearchPlaceIndexForTextOutput::builder()
                .results(result(
                    "Rue de Neufchâteau 12, 6600 Bastogne",
                    5.7151,
                    49.9963,
                    Some("12"),
                    Some("Rue de Neufchâteau"),
                    false,
                ))
                .results(result(
                    "Rue de Neufchâteau, 6600 Bastogne",
                    5.7160,
                    49.9950,
                    Some("12"),
                    Some("Rue de Neufchâteau"),
                    true,
                ))
                .results(result("Bastogne", 5.7184, 50.0035, None, None, false))
                .build()
                .unwrap()
        });
    let client = mock_client!(aws_sdk_location, [&rule]);
    let geocoder = LocationGeocoder {
        client,
        index: "bealert-places".into(),
    };
    let places = geocoder
        .geocode(&AddressQuery {
            street: Some("Rue de Neufchâteau 12".into()),
            postal_code: Some("6600".into()),
            municipality: Some("Bastogne".into()),
        })
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(places.len(), 3);
    assert_eq!(
        (places[0].lat, places[0].lon),
        (49.9963, 5.7151),
        "GeoJSON order [lon, lat] read right"
    );
    assert_eq!(places[0].precision, Precision::Address);
    assert_eq!(
        places[1].precision,
        Precision::Street,
        "an interpolated number is not the building"
    );
    assert_eq!(places[2].precision, Precision::Municipality);
}

#[tokio::test]
async fn an_empty_query_asks_nothing_and_a_failure_is_unavailable() {
    use aws_sdk_location::operation::search_place_index_for_text::SearchPlaceIndexForTextError;
    use aws_sdk_location::types::error::ThrottlingException;
    let rule = mock!(aws_sdk_location::Client::search_place_index_for_text).then_error(|| {
        SearchPlaceIndexForTextError::ThrottlingException(
            ThrottlingException::builder()
                .message("slow down")
                .build()
                .unwrap(),
        )
    });
    let client = mock_client!(aws_sdk_location, RuleMode::MatchAny, [&rule]);
    let geocoder = LocationGeocoder {
        client,
        index: "bealert-places".into(),
    };
    assert!(
        geocoder
            .geocode(&AddressQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(rule.num_calls(), 0);
    let err = geocoder
        .geocode(&AddressQuery {
            postal_code: Some("6600".into()),
            ..AddressQuery::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("slow down"), "{err}");
}
